"""The model zoo: export from a run, offline load by name or by path=, checksums, card reproduction.

A tiny run (16^2 recipe, two epochs) is exported into a temporary zoo; the last test checks every entry
shipped in ``models/`` at reduced size (first two fresh test trajectories against the card).
"""

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

import sciml.zoo
from sciml.errors import ConfigError, DataFormatError
from sciml.evaluate import main as evaluate_main
from sciml.train import run
from sciml.training.config import config_from_mapping
from sciml.zoo.evaluation import compare_with_card, evaluate_pretrained
from sciml.zoo.export import export_run, pretrained_from_run
from sciml.zoo.files import IntegrityError, read_json
from sciml.zoo.hub import read_manifest

ROOT = Path(__file__).parents[2]
TINY_RECIPE = {
    "name": "tiny_zoo",
    "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
    "output": {"t_final": 0.5, "record_every": 0.1},
    "n_trajectories": 12,
    "batch_size": 12,
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A temporary zoo with one exported windowed FNO (``tiny_fno``); SCIML_ZOO, SCIML_CACHE point there."""
    base = tmp_path_factory.mktemp("zoo_env")
    saved = {k: os.environ.get(k) for k in ("SCIML_ZOO", "SCIML_CACHE")}
    os.environ["SCIML_ZOO"] = str(base / "zoo")
    os.environ["SCIML_CACHE"] = str(base / "cache")
    recipe = base / "tiny_zoo.yaml"
    recipe.write_text(yaml.safe_dump(TINY_RECIPE))
    config = config_from_mapping(
        {
            "data": {
                "recipe": str(recipe),
                "mode": "window",
                "t_in": 2,
                "t_out": 1,
                "fields": ["vorticity"],
                "train": 0.5,
                "valid": 0.25,
                "test": 0.25,
                "batch_size": 4,
            },
            "model": {"name": "fno", "modes": 4, "width": 8, "n_layers": 2},
            "optim": {"lr": 3e-3},
            "train": {"epochs": 2, "progress": False},
            "eval": {"plots": False, "rollout_steps": 3},
        },
        name="tiny",
    )
    run_dir = run(config, run_dir=base / "run")
    export_run(run_dir, "tiny_fno", n_test=4, description="tiny test model", progress=False)
    yield base
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_export_writes_the_documented_folder(zoo):
    folder = zoo / "zoo" / "tiny_fno"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = read_json(folder / "config.json")
    assert config["model"]["name"] == "fno" and config["task"]["t_in"] == 2
    assert config["dataset"]["recipe"]["name"] == "tiny_zoo"
    assert config["evaluation"]["seed"] != config["dataset"]["recipe"]["seed"]
    assert len(config["normalization"]["x_mean"]) == 2 and config["versions"]["sciml"]
    manifest = read_manifest(zoo / "zoo")
    assert manifest["models"]["tiny_fno"]["sha256"] == config["weights"]["sha256"]
    card = (folder / "README.md").read_text()
    assert f"{config['metrics']['l2']['mean']:.4g}" in card
    assert "python -m sciml.evaluate zoo:tiny_fno" in card
    assert [e.name for e in sciml.zoo.list()] == ["tiny_fno"]


def test_loaded_model_equals_the_trained_one(zoo):
    loaded = sciml.zoo.load("tiny_fno")
    reference = pretrained_from_run(zoo / "run", "ref")
    reference.eval()
    x = torch.randn(3, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x), rtol=0, atol=0)
    by_path = sciml.zoo.PretrainedOperator.from_pretrained(path=zoo / "zoo" / "tiny_fno")
    assert loaded.verified and not by_path.verified
    with torch.no_grad():
        torch.testing.assert_close(by_path(x), loaded(x), rtol=0, atol=0)
    # complex spectral weights went through safetensors as complex tensors
    assert any(p.is_complex() for p in loaded.parameters())
    # the rollout feeds predictions back: its first step is one forward pass
    frames = x[:, :, None]
    with torch.no_grad():
        roll = loaded.rollout(frames, steps=2)
        assert roll.shape == (3, 2, 1, 16, 16)
        torch.testing.assert_close(roll[:, 0], loaded(x))


def test_save_pretrained_round_trips_to_any_folder(zoo, tmp_path):
    model = sciml.zoo.load("tiny_fno")
    folder = model.save_pretrained(tmp_path / "copy")
    again = sciml.zoo.PretrainedOperator.from_pretrained(path=folder)
    assert again.config["weights"]["sha256"] == model.config["weights"]["sha256"]
    assert not list(tmp_path.glob(".copy*"))  # no staging folder left behind


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_tampered_weights_are_refused(zoo, tmp_path, damage):
    folder = sciml.zoo.load("tiny_fno").save_pretrained(tmp_path / "m")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "flip":
        data[-5] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="SHA-256") as err:
        sciml.zoo.load(path=folder)
    assert "model.safetensors" in str(err.value)


def test_tampered_zoo_config_is_refused_by_the_manifest(zoo):
    config_path = zoo / "zoo" / "tiny_fno" / "config.json"
    original = config_path.read_text()
    try:
        edited = json.loads(original)
        edited["normalization"]["y_std"] = [x * 2 for x in edited["normalization"]["y_std"]]
        config_path.write_text(json.dumps(edited))
        with pytest.raises(IntegrityError, match="manifest"):
            sciml.zoo.load("tiny_fno")
    finally:
        config_path.write_text(original)


def test_unknown_names_and_folders_get_clear_errors(zoo, tmp_path):
    with pytest.raises(ConfigError, match="tiny_fno"):
        sciml.zoo.load("tiny_fn")
    with pytest.raises(DataFormatError, match=r"config\.json"):
        sciml.zoo.load(path=tmp_path)
    with pytest.raises(ConfigError, match="path="):
        sciml.zoo.load(str(tmp_path))


def test_card_metrics_reproduce_and_a_wrong_card_is_caught(zoo, capsys):
    assert evaluate_main(["zoo:tiny_fno"]) == 0
    assert evaluate_main(["zoo:tiny_fno", "--n-test", "2"]) == 0
    assert "reproduced" in capsys.readouterr().out
    assert evaluate_main([f"pretrained:{zoo / 'zoo' / 'tiny_fno'}", "--n-test", "2"]) == 0
    model = sciml.zoo.load("tiny_fno")
    measured = evaluate_pretrained(model, n_trajectories=2, progress=False)
    card = json.loads(json.dumps(model.metrics))
    card["per_trajectory"]["l2"][1] *= 1.05
    got, want = measured["per_trajectory"]["l2"][1], card["per_trajectory"]["l2"][1]
    assert compare_with_card(measured, card) == [f"l2[trajectory 1]: measured {got:.6g}, card {want:.6g}"]
    assert len(measured["rollout_l2"]) == 3


def test_convert_stores_an_entry_in_half_precision_with_the_error_change_measured(zoo, capsys):
    import shutil

    from safetensors.torch import load_file

    from sciml.zoo.__main__ import main as zoo_main
    from sciml.zoo.export import convert_entry
    from sciml.zoo.hub import register

    original = zoo / "zoo" / "tiny_fno"
    shutil.copytree(original, zoo / "zoo" / "tiny_half")
    register(zoo / "zoo" / "tiny_half", zoo / "zoo")
    before = read_json(original / "config.json")["metrics"]
    assert zoo_main(["convert", "tiny_half", "--weights-dtype", "float16"]) == 0
    config = read_json(zoo / "zoo" / "tiny_half" / "config.json")
    assert config["weights"]["dtype"] == "float16"
    # the float32 error is measured again on the card's trajectories: the number the float32 card holds
    assert config["half_precision"]["rel_l2_float32"] == pytest.approx(before["l2"]["mean"], rel=1e-6)
    assert config["half_precision"]["rel_l2_stored"] == config["metrics"]["l2"]["mean"]
    tensors = load_file(zoo / "zoo" / "tiny_half" / "model.safetensors")
    kinds = {t.dtype for t in tensors.values() if t.is_floating_point() or t.is_complex()}
    assert torch.float16 in kinds and torch.float32 not in kinds  # complex weights as float16 parts
    assert not any(t.is_complex() for t in tensors.values())
    assert config["half_precision"]["complex_as_real"] is True
    assert (
        "- weights stored in float16 (complex ones as float16 real and imaginary parts)"
        in (zoo / "zoo" / "tiny_half" / "README.md").read_text()
    )
    assert evaluate_main(["zoo:tiny_half"]) == 0  # the card states what the stored weights give
    assert "reproduced" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="stored in float16 already"):
        convert_entry("tiny_half", "float16", progress=False)
    with pytest.raises(ConfigError, match="weights_dtype"):
        convert_entry("tiny_half", "int8", progress=False)


def test_verify_reproduce_regenerates_the_cards_and_names_a_miss(zoo, capsys):
    from sciml.zoo.__main__ import main as zoo_main

    assert zoo_main(["verify", "tiny_fno", "--reproduce", "1"]) == 0
    assert "tiny_fno: card reproduced on its first 1 test trajectories" in capsys.readouterr().out
    folder = zoo / "zoo" / "tiny_fno"
    saved = (folder / "config.json").read_text()
    try:  # a card whose first trajectory's error is 5% off, its manifest entry updated to match
        from sciml.zoo.hub import register

        config = json.loads(saved)
        config["metrics"]["per_trajectory"]["l2"][0] *= 1.05
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        register(folder, zoo / "zoo")
        assert zoo_main(["verify", "tiny_fno", "--reproduce", "1"]) == 2
        assert "tiny_fno: l2[trajectory 0]: measured" in capsys.readouterr().out
    finally:
        (folder / "config.json").write_text(saved)
        register(folder, zoo / "zoo")


SHIPPED = sorted(read_manifest(ROOT / "models")["models"])


# Every shipped card is regenerated and checked by `python -m sciml.zoo verify --reproduce 1` (a step of
# .ci/run: the cpu-scale and 3-D entries need tens of seconds of solves each); here the entries of the 64^2
# FNO-setting data (one test trajectory shared by both), and DCDM's entry without a regenerable test set.
CHECKED_HERE = ["dcdm_poisson64", "fno_ns64", "lsm_ns64"]


def test_every_shipped_card_is_checked_by_ci():
    assert set(CHECKED_HERE) <= set(SHIPPED)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m sciml.zoo verify --reproduce 1" in ci


@pytest.mark.parametrize("name", CHECKED_HERE)
def test_shipped_entry_loads_offline_and_reproduces_its_card(name, monkeypatch):
    monkeypatch.setenv("SCIML_ZOO", str(ROOT / "models"))
    model = sciml.zoo.load(name)
    if "recipe" not in model.config["dataset"]:  # no Navier-Stokes test set to regenerate (e.g. DCDM)
        assert "metrics" not in model.config
        assert read_manifest(ROOT / "models")["models"][name]["test_l2"] is None
        return
    measured = evaluate_pretrained(model, n_trajectories=1, progress=False)  # per trajectory: the first
    assert compare_with_card(measured, model.metrics) == []


def test_the_shipped_zoo_stays_small():
    total = sum(p.stat().st_size for p in (ROOT / "models").rglob("*") if p.is_file())
    assert total < 30 * 2**20


def test_build_takes_a_shipped_config_by_name_and_hints_at_a_typo(tmp_path):
    """``sciml zoo build zoo/fno_ns64`` names a shipped config, like ``sciml train``; a typo is one
    ConfigError naming the nearest shipped configs (before any training starts)."""
    from sciml.assets import resolve_config
    from sciml.zoo.export import build_entry

    assert resolve_config("zoo/fno_ns64").is_file()
    with pytest.raises(ConfigError, match="fno_ns64"):
        build_entry("zoo/fno_ns46", out=tmp_path, run_root=tmp_path)
