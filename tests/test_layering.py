"""The package's layering, read from the import statements of every module (lazy imports included)."""

import ast
from pathlib import Path

import pytest

import sciml

ROOT = Path(sciml.__file__).parent

# package -> sciml packages it must never import (layering one way: operators < datasets, metrics < models <
# solvers, training, finetune)
FORBIDDEN = {
    "operators": ("sciml.",),
    "metrics": (
        "sciml.models",
        "sciml.training",
        "sciml.finetune",
        "sciml.zoo",
        "sciml.solvers",
        "sciml.datasets",
    ),
    "datasets": ("sciml.models", "sciml.training", "sciml.finetune", "sciml.zoo"),
    "models": ("sciml.solvers", "sciml.finetune", "sciml.training", "sciml.zoo", "sciml.datasets"),
}
ALLOWED = {"operators": ("sciml.errors",)}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    return names + [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_above_it(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, package
    for path in files:
        own = f"sciml.{package}"
        upward = [
            m
            for m in imported_modules(path)
            if m.startswith(FORBIDDEN[package])
            and not m.startswith(own)
            and not m.startswith(ALLOWED.get(package, ()))
        ]
        assert upward == [], f"{path.relative_to(ROOT)} imports {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sciml.training import Trainer\n")
    assert "sciml.training" in imported_modules(module)
