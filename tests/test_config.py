"""Strict YAML configs and dataset recipes."""

from pathlib import Path

import pytest

from sciml.datasets.recipes import Recipe, load_recipe
from sciml.errors import ConfigError
from sciml.training.config import DataConfig, TrainConfig, config_from_mapping

RECIPES = sorted((Path(__file__).parents[1] / "datasets").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_shipped_recipes_parse(path):
    recipe = load_recipe(path)  # any kind: Navier-Stokes, or DCDM's poisson_ritz
    assert recipe.name == path.stem
    if isinstance(recipe, Recipe):
        assert recipe.solver.resolution % recipe.output_resolution == 0
    assert type(recipe).from_mapping(__import__("yaml").safe_load(recipe.to_yaml())) == recipe


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


RUN = {"data": {"path": "data.h5"}, "model": {"name": "fno"}}


@pytest.mark.parametrize(
    ("section", "key", "value", "allowed", "nearest"),
    [
        ("train", "loss", "h-2", "l2, h1, h-1, mse, spectral", "h-1"),
        ("train", "amp", "bf61", "auto, bf16, fp16, none", "bf16"),
        ("train", "resume", "must!", "never, auto, must", "must"),
        ("train", "unroll_gradient", "lats", "all, last", "last"),
        ("optim", "name", "adamW", "adamw, adam, sgd, adahessian, sophia", "adamw"),
        ("optim.scheduler", "name", "cosin", "none, step, cosine, onecycle", "cosine"),
        ("optim.scheduler", "interval", "steps", "epoch, step", "step"),
        ("data", "mode", "windows", "initial_to_final, window, pairs", "window"),
    ],
)
def test_a_value_outside_a_choice_names_key_value_choices_and_nearest(section, key, value, allowed, nearest):
    data = {**RUN, "data": dict(RUN["data"])}
    node = data
    for name in section.split("."):
        node = node.setdefault(name, {})
    node[key] = value
    message = rf"run\.yaml: {section}\.{key}: '{value}' is not one of {allowed}; did you mean '{nearest}'\?$"
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data, where="run.yaml")


def test_choices_are_checked_on_configs_built_in_python_too():
    with pytest.raises(ConfigError, match=r"^data\.mode: 'pair' is not one of .*did you mean 'pairs'\?"):
        DataConfig(path="data.h5", mode="pair")
    with pytest.raises(ConfigError, match=r"train\.loss: 7 is not one of l2, h1"):
        TrainConfig(loss=7)
    assert config_from_mapping(RUN).train.loss == "l2"
