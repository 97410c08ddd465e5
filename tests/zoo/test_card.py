"""Model cards: rendered from a model's config.json alone, so the shipped README.md is its rendering."""

import json
from pathlib import Path

import pytest

from sciml.zoo.card import render_card

SHIPPED = sorted((Path(__file__).parents[2] / "models").glob("*/config.json"))


@pytest.mark.parametrize("config_file", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_shipped_card_is_the_rendering_of_its_config(config_file):
    card = render_card(json.loads(config_file.read_text()))
    assert card == (config_file.parent / "README.md").read_text()


def test_card_of_a_model_trained_on_a_file_says_its_test_set_cannot_be_regenerated():
    config = next(c for c in (json.loads(p.read_text()) for p in SHIPPED) if "metrics" in c)
    config["dataset"] = {"path": "flows.h5"}
    del config["metrics"], config["training"]["run_test"]
    card = render_card(config)
    headings = [line for line in card.splitlines() if line.startswith("## ")]
    assert headings == ["## Model", "## Data", "## Training", "## Test metrics", "## Limits"]
    assert "- trained on the file `flows.h5` (no recipe: the test set cannot be regenerated)" in card
    assert "## Test metrics\nNone recorded (the model was not trained on a recipe).\n\n## Limits" in card
    assert card.endswith("papers' best accuracy.\n")


@pytest.mark.parametrize("config_file", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_card_export_line_agrees_with_the_real_model(config_file):
    """The card's ONNX statement (model built on the meta device) is what the real model's weights say."""
    from sciml.zoo.onnx_export import onnx_unsupported_reason
    from sciml.zoo.pretrained import build_described_model

    config = json.loads(config_file.read_text())
    real = build_described_model(config, config_file)
    onnx = onnx_unsupported_reason(real) is None
    export_lines = [line for line in render_card(config).splitlines() if line.startswith("- export: ")]
    assert len(export_lines) == 1
    assert export_lines[0].endswith("or `--format onnx`") is onnx
    assert ("not to ONNX" in export_lines[0]) is not onnx


def test_card_of_a_model_on_a_non_flow_recipe_says_what_its_numbers_are():
    """DCDM's card: no normalization, its own loss, a held-out split of samples (not trajectories)."""
    config = json.loads((Path(__file__).parents[2] / "models" / "dcdm_poisson64" / "config.json").read_text())
    card = render_card(config)
    assert "- inputs and outputs are physical; the model applies no normalization" in card
    assert "- loss: the family's own training loss" in card
    assert "None regenerated (the data recipe is not a flow recipe" in card
    assert "held-out test split (the last samples of its data), at the training resolution:" in card
    config["normalization"]["y_std"] = [2.0]
    del config["training"]["loss"]
    card = render_card(config)
    assert "the normalization (per-field mean and std of the training trajectories) is part" in card
    assert "- loss:" not in card
