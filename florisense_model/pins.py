"""Pinned requirements, read from pyproject.toml (the one place versions are pinned).

Standard library only, so the Dockerfiles run this same file (`python pins.py pyproject.toml
mlflow boto3 ...`) before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

# What the served model imports; the registered model's pip_requirements pin exactly these.
# mlflow-skinny is MLflow without its server and UI dependencies (it serves models).
SERVING_PACKAGES = (
    "mlflow-skinny", "onnxruntime", "pillow", "numpy", "pandas", "prometheus-client",
)  # fmt: skip
# A version served through Keras (no compiled graph) needs TensorFlow too: tensorflow-cpu on
# x86_64, tensorflow on ARM, by platform marker.
KERAS_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras")

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# name[extras]==version[; environment marker]
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*==\s*([^\s;,]+)\s*(;.*)?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project(pyproject: Path = _PYPROJECT) -> dict:
    with pyproject.open("rb") as handle:
        return tomllib.load(handle)["project"]


def project_requirements() -> list[str]:
    """The `[project].dependencies` pins, from the source tree or the installed distribution."""
    if _PYPROJECT.is_file():
        return list(_project()["dependencies"])
    requires = metadata.requires("florisense") or []
    return [req for req in requires if "extra ==" not in req]


def pinned_versions(requirements: list[str] | None = None) -> dict[str, str]:
    """Map canonical package name to its exact pinned version; refuses unpinned entries."""
    pins: dict[str, str] = {}
    for line in requirements if requirements is not None else project_requirements():
        match = _PIN.match(line)
        if not match:
            raise ValueError(f"requirement {line!r} is not pinned with a single '=='")
        pins[canonical(match.group(1))] = match.group(3)
    return pins


def serving_requirements(runtime: str = "onnx") -> list[str]:
    """pip_requirements for a model served through `runtime` (an ONNX one or "keras"): the
    pinned lines, platform markers included, so the model installs on x86_64 and ARM alike,
    written as pip and MLflow write them (packaging's normal form)."""
    from packaging.requirements import Requirement  # not at the top: the Dockerfiles run this file

    names = SERVING_PACKAGES + (KERAS_PACKAGES if runtime == "keras" else ())
    by_name = {canonical(_PIN.match(line).group(1)): line for line in project_requirements()}
    return [str(Requirement(by_name[canonical(name)])) for name in names]


def requirement_lines(pyproject: Path, names: list[str]) -> list[str]:
    """The pinned lines (markers included) of `names`, from the dependencies and every extra;
    no names: the dependencies."""
    project = _project(pyproject)
    if not names:
        return list(project["dependencies"])
    lines = project["dependencies"] + [
        line for extra in project.get("optional-dependencies", {}).values() for line in extra
    ]
    wanted = {canonical(name) for name in names}
    found = [line for line in lines if (m := _PIN.match(line)) and canonical(m.group(1)) in wanted]
    missing = wanted - {canonical(_PIN.match(line).group(1)) for line in found}
    if missing:
        raise SystemExit(f"not pinned in {pyproject}: {', '.join(sorted(missing))}")
    return found


if __name__ == "__main__":
    # The Dockerfiles: `python pins.py pyproject.toml [NAME...]` prints a requirements file;
    # the name `--serving` stands for a registered model's own requirements (SERVING_PACKAGES).
    names = [n for arg in sys.argv[2:] for n in (SERVING_PACKAGES if arg == "--serving" else [arg])]
    print("\n".join(requirement_lines(Path(sys.argv[1]), names)))
