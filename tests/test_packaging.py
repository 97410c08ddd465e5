"""Shipped files (configs, recipes, zoo, benchmark scripts) are found from a checkout and from an installed
package, configs and recipes resolve by name, and the packaging metadata declares what an install needs."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sciml.bench
import sciml.reproduce.protocol
from sciml.assets import SHIPPED, asset_root, checkout_root, installed_root, resolve_config
from sciml.config import load_yaml
from sciml.datasets.__main__ import main as datasets_main
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError
from sciml.training.config import DataConfig, load_config
from sciml.training.data import resolve_data_path
from sciml.zoo.hub import zoo_root

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def built_package(tmp_path_factory) -> Path:
    """The package as a wheel carries it: ``setup.py build_py`` (the hook the wheel build runs) into a
    temporary folder, outside the checkout. Returns the built ``sciml`` folder."""
    out = tmp_path_factory.mktemp("built")
    command = [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(out)]
    command += ["build_py", "--build-lib", str(out / "lib")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return out / "lib" / "sciml"


def test_the_checkout_copies_are_used_in_a_checkout(monkeypatch):
    monkeypatch.delenv("SCIML_ZOO", raising=False)
    assert checkout_root() == ROOT.resolve()
    assert asset_root() == ROOT.resolve()
    assert zoo_root() == ROOT.resolve() / "models"
    assert ROOT.resolve() / "solvers" == sciml.bench.SOLVERS
    assert ROOT.resolve() / "BENCHMARKS.md" == sciml.bench.DOCUMENT
    assert ROOT.resolve() == sciml.reproduce.protocol.ROOT
    assert all(bench.script.exists() for bench in sciml.bench.BENCHMARKS)


def test_the_zoo_environment_variable_still_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIML_ZOO", str(tmp_path))
    assert zoo_root() == tmp_path


def test_the_built_package_carries_the_shipped_files_and_nothing_else(built_package):
    copy = installed_root(built_package)
    assert sorted(p.name for p in copy.iterdir()) == sorted(SHIPPED)
    assert (copy / "configs" / "quickstart.yaml").read_text() == (
        ROOT / "configs" / "quickstart.yaml"
    ).read_text()
    assert (copy / "models" / "manifest.json").is_file()
    assert (copy / "solvers" / "results").is_dir()
    assert not (copy / "solvers" / "results" / "quick").exists()  # smoke-run records stay out
    files = [p.relative_to(built_package).as_posix() for p in built_package.rglob("*") if p.is_file()]
    assert not [
        f for f in files if "__pycache__" in f or f.endswith(".pyc") or f.startswith(("runs/", "tests/"))
    ]
    assert (built_package / "py.typed").is_file()
    assert not (ROOT / "sciml" / "_assets").exists()  # the build never writes into the source tree


def test_without_a_checkout_the_installed_copy_is_used(built_package):
    assert checkout_root(built_package) is None
    assert asset_root(built_package) == built_package / "_assets"


def test_an_installed_package_outside_the_checkout_finds_its_files(built_package, tmp_path):
    """The built package imported from a folder outside the checkout: configs, recipes, the zoo and the
    benchmark scripts all come from its own copy."""
    code = """
import sys
from pathlib import Path
import sciml, sciml.bench
from sciml.assets import asset_root
from sciml.config import load_yaml
from sciml.datasets.recipes import Recipe
from sciml.zoo.hub import list_models, zoo_root

assets = asset_root()
assert Path(sciml.__file__).parent / "_assets" == assets, (sciml.__file__, assets)
assert zoo_root() == assets / "models" and len(list_models()) > 0
assert sciml.bench.SOLVERS == assets / "solvers" and sciml.bench.DOCUMENT == assets / "BENCHMARKS.md"
assert all(bench.script.exists() for bench in sciml.bench.BENCHMARKS)
assert load_yaml("quickstart")["data"]["recipe"] == "datasets/ns_quick.yaml"
assert Recipe.from_yaml("datasets/ns_quick.yaml").name == "ns_quick"
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("SCIML_ZOO", "PYTHONPATH")}
    env["PYTHONPATH"] = str(built_package.parent)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("name", "shipped"),
    [
        ("quickstart", "configs/quickstart.yaml"),
        ("quickstart.yaml", "configs/quickstart.yaml"),
        ("configs/quickstart.yaml", "configs/quickstart.yaml"),
        ("configs/quickstart", "configs/quickstart.yaml"),
        ("zoo/fno_ns64", "configs/zoo/fno_ns64.yaml"),
        ("paper/fno_ns_v1e-5", "configs/paper/fno_ns_v1e-5.yaml"),
        ("ns_quick", "datasets/ns_quick.yaml"),
        ("datasets/ns_quick.yaml", "datasets/ns_quick.yaml"),
    ],
)
def test_configs_and_recipes_resolve_by_shipped_name_from_any_directory(name, shipped, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config(name) == ROOT.resolve() / shipped


def test_recipes_and_run_configs_load_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Recipe.from_yaml("ns_quick").name == "ns_quick"
    assert load_config("quickstart").model_name == "fno"
    # the quickstart's data: its recipe path resolves to the shipped recipe's cache file
    path = resolve_data_path(DataConfig(recipe="datasets/ns_quick.yaml"), generate_missing=False)
    assert path.name.startswith("ns_quick_n48_seed0_")


def test_a_file_in_the_working_directory_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "quickstart.yaml").write_text("mine: true\n")
    (tmp_path / "ns_quick.yaml").write_text("mine: recipe\n")
    assert load_yaml("configs/quickstart.yaml") == {"mine": True}
    assert load_yaml("ns_quick.yaml") == {"mine": "recipe"}
    assert "data" in load_yaml("quickstart")  # a bare name without a local file: the shipped one


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("ns_quik", "'ns_quick'"),
        ("datasets/ns_quik.yaml", "'ns_quick'"),
        ("quickstrat", "'quickstart'"),
        ("fno_ns46", "'zoo/fno_ns64'"),
    ],
)
def test_a_missing_config_names_the_nearest_shipped_ones(given, suggested, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_yaml(given)
    message = str(err.value)
    assert message.startswith(f"{given}: no such config file") and "\n" not in message
    assert f"did you mean {suggested}" in message or f"or {suggested}" in message


def test_missing_configs_without_a_near_name_or_outside_the_shipped_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"zzzzzz: no such config file.*configs, .*datasets"):
        load_yaml("zzzzzz")
    with pytest.raises(ConfigError, match=r"no such config file$"):
        load_yaml(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="quickstart: no such config file"):
        Recipe.from_yaml("quickstart")  # a run config is not a recipe: recipes resolve in datasets/ only


def test_the_datasets_command_names_the_nearest_recipe(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    assert datasets_main(["generate", "ns_quik", "--out", str(tmp_path / "x.hdf5")]) == 2
    assert "ns_quik: no such config file, nor a shipped name; did you mean 'ns_quick'" in caplog.text
    assert not (tmp_path / "x.hdf5").exists()


def test_the_metadata_declares_the_command_the_typing_marker_and_the_extras():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    command = importlib.metadata.EntryPoint("sciml", scripts["sciml"], "console_scripts").load()
    from sciml.cli import main

    assert command is main
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["sciml"]
    assert (ROOT / "sciml" / "py.typed").is_file()
    extras = project["project"]["optional-dependencies"]
    assert {"test", "netcdf", "hub", "loggers", "docs"} <= set(extras)
    core = " ".join(project["project"]["dependencies"])
    for optional in ("huggingface_hub", "tensorboard", "wandb", "mlflow", "netCDF4", "pytest", "mkdocs"):
        assert optional not in core
    assert "torch>=2.3" in project["project"]["dependencies"]  # torch.amp.GradScaler(device)
