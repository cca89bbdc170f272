"""The layout keeps its promises: the model's own code is a closed boundary, modules stay small,
and test modules share code only through tests/support."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.project import ROOT

PACKAGE = ROOT / "florisense_model"
MODEL = PACKAGE / "model"
# Nothing a served model needs: training, plotting, the stack's tools.
NOT_FOR_SERVING = ("sklearn", "matplotlib", "imagehash", "boto3", "psutil", "keras.applications")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(MODEL.glob("*.py")), ids=lambda p: p.name)
def test_the_model_code_imports_nothing_else_from_the_package(module):
    for name in imported_modules(module):
        if name.startswith("florisense_model"):
            assert name.startswith("florisense_model.model"), (module.name, name)
        assert not name.startswith(NOT_FOR_SERVING), (module.name, name)


@pytest.mark.parametrize(
    "module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_of_the_package_is_over_350_lines(module):
    assert len(module.read_text(encoding="utf-8").splitlines()) <= 350


def test_no_test_module_imports_another_test_module():
    for path in (ROOT / "tests").rglob("*.py"):
        for name in imported_modules(path):
            if name.startswith("tests."):
                assert name.startswith("tests.support"), (path.relative_to(ROOT), name)
