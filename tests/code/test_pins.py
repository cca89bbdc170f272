"""Versions are pinned once (pyproject.toml); every copy must agree with it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

from florisense_model.pins import (
    SERVING_PACKAGES,
    pinned_versions,
    project_requirements,
    serving_requirements,
)
from tests.support.project import ROOT


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

    for line in project_requirements():
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate():
            continue  # for another platform (tensorflow on ARM)
        assert metadata.version(requirement.name) == str(requirement.specifier)[2:], line


def test_a_model_served_through_onnx_requires_no_tensorflow():
    names = {Requirement(line).name for line in serving_requirements("onnx")}
    assert names == {
        "mlflow-skinny",
        "onnxruntime",
        "pillow",
        "numpy",
        "pandas",
        "prometheus-client",
    }


def test_tensorflow_is_pinned_for_x86_64_and_arm64():
    machines = {"x86_64": "tensorflow-cpu", "aarch64": "tensorflow", "arm64": "tensorflow"}
    for requirements in (project_requirements(), serving_requirements("keras")):
        for machine, expected in machines.items():
            chosen = [
                Requirement(line).name
                for line in requirements
                if Requirement(line).name.startswith("tensorflow")
                and Requirement(line).marker.evaluate({"platform_machine": machine})
            ]
            assert chosen == [expected], (machine, chosen)


ARM64_PLATFORMS = ["manylinux2014_aarch64", *(f"manylinux_2_{v}_aarch64" for v in range(17, 40))]


def test_the_images_pins_resolve_to_wheels_for_linux_arm64(tmp_path):
    """What the two images install (the project's dependencies; mlflow's image adds the
    PostgreSQL driver, Flask-WTF and prometheus-flask-exporter) resolves, for linux/arm64, to
    wheels only. pip evaluates markers for the machine it runs on, so they are evaluated here
    for aarch64 first."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [
        r
        for r in project["optional-dependencies"]["stack"]
        if r.startswith(("Flask-WTF", "prometheus-flask-exporter"))
    ]
    lines = project["dependencies"] + project["optional-dependencies"]["server"] + extras
    arm64 = default_environment() | {"platform_machine": "aarch64"}
    requirements = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(arm64):
            requirement.marker = None
            requirements.append(str(requirement))
    (tmp_path / "requirements.txt").write_text("\n".join(requirements))
    platforms = [arg for platform in ARM64_PLATFORMS for arg in ("--platform", platform)]
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    result = subprocess.run(
        [
            *pip,
            *("--target", str(tmp_path / "target"), *platforms, "--python-version", "3.11"),
            *("--implementation", "cp", "--only-binary=:all:"),
            *("--report", str(tmp_path / "r.json"), "-r", str(tmp_path / "requirements.txt")),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installs = json.loads((tmp_path / "r.json").read_text())["install"]
    wheels = [item["download_info"]["url"].rsplit("/", 1)[1] for item in installs]
    assert all(name.endswith(".whl") for name in wheels), wheels
    assert any(
        re.match(r"tensorflow-2\.21\.0-cp311-cp311-manylinux.*aarch64\.whl", w) for w in wheels
    )
