"""Strict YAML configs and dataset recipes."""

from pathlib import Path

import pytest

from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError

RECIPES = sorted((Path(__file__).parents[1] / "datasets").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_parse(path):
    recipe = Recipe.from_yaml(path)
    assert recipe.name == path.stem
    assert recipe.solver.resolution % recipe.output_resolution == 0
    assert Recipe.from_mapping(__import__("yaml").safe_load(recipe.to_yaml())) == recipe


def _quick(**changes):
    data = {
        "name": "t",
        "solver": {"resolution": 16, "viscosity": 1e-3},
        "output": {"t_final": 1.0, "record_every": 0.5},
        "n_trajectories": 2,
    }
    data.update(changes)
    return data


def test_unknown_key_names_the_nearest_valid_key():
    with pytest.raises(ConfigError, match=r"unknown key 'viscosty'.*did you mean 'viscosity'"):
        Recipe.from_mapping(_quick(solver={"resolution": 16, "viscosty": 1e-3}))
    with pytest.raises(ConfigError, match=r"n_trajectory.*did you mean 'n_trajectories'"):
        Recipe.from_mapping({**_quick(), "n_trajectory": 3})


def test_types_are_checked_and_ints_become_floats():
    recipe = Recipe.from_mapping(_quick(solver={"resolution": 16, "viscosity": 1}))
    assert isinstance(recipe.solver.viscosity, float)
    with pytest.raises(ConfigError, match=r"solver.resolution: expected an integer, found 'big'"):
        Recipe.from_mapping(_quick(solver={"resolution": "big", "viscosity": 1e-3}))
    with pytest.raises(ConfigError, match="missing required key"):
        Recipe.from_mapping(_quick(solver={"resolution": 16}))


def test_inconsistent_recipes_are_refused():
    with pytest.raises(ConfigError, match="must divide"):
        Recipe.from_mapping(_quick(output={"t_final": 1.0, "record_every": 0.5, "resolution": 12}))
    with pytest.raises(ConfigError, match="n_trajectories"):
        Recipe.from_mapping(_quick(n_trajectories=0))


def test_bad_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        Recipe.from_yaml(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        Recipe.from_yaml(tmp_path / "missing.yaml")
