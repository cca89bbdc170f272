"""Pinned requirements, read from pyproject.toml (the one place versions are pinned)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

# What the served model imports; the registered model's pip_requirements pin exactly these.
SERVING_PACKAGES = ("mlflow", "tensorflow-cpu", "keras", "pillow", "numpy", "pandas")

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def project_requirements() -> list[str]:
    """The `[project].dependencies` pins, from the source tree or the installed distribution."""
    if _PYPROJECT.is_file():
        with _PYPROJECT.open("rb") as handle:
            return list(tomllib.load(handle)["project"]["dependencies"])
    requires = metadata.requires("florisense") or []
    return [req for req in requires if "extra ==" not in req]


def pinned_versions(requirements: list[str] | None = None) -> dict[str, str]:
    """Map canonical package name to its exact pinned version; refuses unpinned entries."""
    pins: dict[str, str] = {}
    for line in requirements if requirements is not None else project_requirements():
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"requirement {line!r} is not pinned with a single '=='")
        pins[_canonical(req.name)] = specs[0].version
    return pins


def serving_requirements() -> list[str]:
    """pip_requirements for the registered model: the serving packages at their pinned versions."""
    pins = pinned_versions()
    return [f"{name}=={pins[_canonical(name)]}" for name in SERVING_PACKAGES]
