"""Print the pinned requirements for the named packages, read from pyproject.toml (the one place
versions are pinned), so Docker images install exactly the tested versions."""

import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
wanted = {name.lower() for name in sys.argv[2:]}
lines = project["dependencies"] + [
    r for extra in project["optional-dependencies"].values() for r in extra
]
found = [line for line in lines if line.split("==")[0].strip().lower() in wanted]
missing = wanted - {line.split("==")[0].strip().lower() for line in found}
if missing:
    sys.exit(f"not pinned in pyproject.toml: {', '.join(sorted(missing))}")
print("\n".join(found))
