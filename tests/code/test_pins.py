"""Versions are pinned once (pyproject.toml); every copy must agree with it."""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from florisense_model.pins import SERVING_PACKAGES, pinned_versions, serving_requirements
from tests.conftest import ROOT


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pinned_versions(project["dependencies"])  # raises on any unpinned entry
    for extra in ("dev", "stack", "server"):
        assert pinned_versions(project["optional-dependencies"][extra])


def test_conda_yaml_pins_equal_pyproject():
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pinned_versions(pip_section) == pinned_versions()
    assert "python=3.11" in conda["dependencies"]


def test_model_requirements_are_the_serving_subset_of_the_pins():
    pins = pinned_versions()
    requirements = serving_requirements()
    assert [Requirement(r).name for r in requirements] == list(SERVING_PACKAGES)
    for line in requirements:
        req = Requirement(line)
        assert str(req.specifier) == f"=={pins[req.name]}"


def test_installed_versions_match_the_pins():
    from importlib import metadata

    for name, version in pinned_versions().items():
        assert metadata.version(name) == version, name
