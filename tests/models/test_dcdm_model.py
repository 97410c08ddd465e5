"""DCDM's CNN (sciml.models.dcdm), its scale-invariant loss, its data and its training by the Trainer."""

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import sciml.zoo
from sciml.datasets.__main__ import main as datasets_cli
from sciml.datasets.recipes import load_recipe
from sciml.errors import ConfigError
from sciml.models.dcdm import DCDM, DCDMNet
from sciml.models.registry import ModelContext, ModelDefinedLoss, build_model, model_defined_loss
from sciml.models.wrappers import Normalized
from sciml.operators.poisson import FLUID, laplacian_matrix, make_scene, to_fluid
from sciml.solvers.dcdm import dcdm
from sciml.train import build_operator, main
from sciml.training.config import config_from_mapping
from sciml.training.data import build_data
from sciml.training.trainer import Trainer
from sciml.zoo.export import export_run

RECIPE = {
    "name": "tiny_ritz",
    "kind": "poisson_ritz",
    "shape": [16, 16],
    "scenes": [{"kind": "empty", "seed": 0}, {"kind": "boxes", "seed": 1}],
    "n_ritz": 60,
    "theta": 5,
    "samples_per_scene": 12,
}


@pytest.fixture
def tiny_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIML_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny_ritz.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def tiny_config(recipe, run_dir, **train) -> dict:
    return {
        "data": {"recipe": str(recipe), "mode": "pairs", "normalize": False, "batch_size": 4},
        "model": {"name": "dcdm", "channels": 4, "down_blocks": 1, "up_blocks": 1},
        "optim": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": 1, "progress": False, "run_dir": str(run_dir), **train},
        "eval": {"plots": False},
    }


def samples(shape=(16, 16), n=3, seed=0):
    cells = make_scene("spheres", shape, seed=seed)
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, 1, *shape)) * (cells == FLUID)
    cell_channel = np.broadcast_to(cells, (n, 1, *shape))
    return torch.tensor(np.concatenate([b, cell_channel], axis=1), dtype=torch.float64), cells


@pytest.mark.parametrize("shape", [(16, 16), (15, 17), (8, 10, 6)])
def test_network_maps_grids_of_any_size_to_one_channel(shape):
    net = DCDMNet(len(shape), channels=4)
    assert net(torch.randn(2, 1, *shape)).shape == (2, 1, *shape)


def test_paper_layer_count():
    net = DCDMNet(3)  # the authors' 64^3 network: 3x3x3 convolutions of 16 channels, 1x1 output
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    assert len(convs) == 5 + 2 * 3 + 2 * 2 + 1
    assert all(c.out_channels == 16 for c in convs[:-1]) and convs[-1].kernel_size == (1, 1, 1)


def test_prediction_and_loss_are_invariant_to_the_scale_of_f():
    x, _ = samples()
    model = DCDM(2, channels=4).double()
    prediction = model(x)
    loss = model.training_loss(x, prediction, prediction)
    with torch.no_grad():  # f -> -3.7 f: the last (linear) layer scaled
        model.net.project.weight.mul_(-3.7)
        model.net.project.bias.mul_(-3.7)
    torch.testing.assert_close(model(x), prediction)
    torch.testing.assert_close(model.training_loss(x, model(x), prediction), loss)
    assert model.net(x[:, :1]).abs().sum() > 0


class ExactInverse(nn.Module):
    """A stand-in network returning 5 A^-1 b for a fixed scene."""

    def __init__(self, cells):
        super().__init__()
        self.cells, self.inverse = cells, np.linalg.inv(laplacian_matrix(cells).toarray())

    def forward(self, b):
        out = torch.zeros_like(b)
        index = torch.from_numpy(np.flatnonzero(self.cells == FLUID))
        flat = b.flatten(1)[:, index].numpy()
        out.flatten(1)[:, index] = torch.from_numpy(5 * flat @ self.inverse.T).to(b.dtype)
        return out


def test_loss_vanishes_and_prediction_is_the_solution_for_an_exact_inverse():
    x, cells = samples()
    model = DCDM(2).double()
    model.net = ExactInverse(cells)
    prediction = model(x)
    assert model.training_loss(x, prediction, prediction).item() < 1e-20
    A = laplacian_matrix(cells)
    expected = np.linalg.solve(A.toarray(), to_fluid(x[0, 0].numpy(), cells))
    np.testing.assert_allclose(to_fluid(prediction[0, 0].numpy(), cells), expected, rtol=1e-8)


def test_direction_drives_the_dcdm_iteration():
    cells = make_scene("boxes", (16, 16), seed=2)
    model = DCDM(2).double()
    model.net = ExactInverse(cells)
    A = laplacian_matrix(cells)
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    result = dcdm(A, b, model.direction(cells), tol=1e-5)  # the network runs in float32
    assert result.iterations == 1


def test_normalized_cell_codes_and_wrong_channels_are_refused():
    x, _ = samples()
    with pytest.raises(ConfigError, match="normalize: false"):
        DCDM(2).double()(x * 0.5)
    with pytest.raises(ConfigError, match="2 input channels"):
        build_model("dcdm", {}, ModelContext(1, 1, (16, 16)))


def test_the_trainer_calls_the_models_own_loss(tiny_recipe, tmp_path):
    config = config_from_mapping(tiny_config(tiny_recipe, tmp_path / "run"))
    data = build_data(config.data)
    assert data.in_channels == 2 and data.out_channels == 1
    model = build_operator(config, data)
    assert isinstance(model, Normalized) and isinstance(model.model, ModelDefinedLoss)
    assert model_defined_loss(model) == model.model.training_loss
    trainer = Trainer(model, config, data.train, data.valid)
    batch = next(iter(trainer.loader))
    x, y = batch["x"], batch["y"]
    expected = model.model.training_loss(x, model(x), y)
    torch.testing.assert_close(trainer._training_loss(x, y), expected)
    assert not torch.allclose(expected, trainer.loss_fn(model(x), y))  # not train.loss (relative L2)


def test_one_epoch_through_the_trainer_cli(tiny_recipe, tmp_path):
    config = tmp_path / "dcdm.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_recipe, tmp_path / "run")))
    assert main([str(config)]) == 0
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(row["train_loss"]) and 0 < row["train_loss"] < 1.5
    assert 0 < row["valid_l2"] <= 1.0 + 1e-6  # the best multiple of f never does worse than 0
    # exported to a zoo: no Navier-Stokes test set; the card names the generated file and its recipe
    folder = export_run(tmp_path / "run", "tiny_dcdm", out=tmp_path / "zoo", progress=False)
    loaded = sciml.zoo.load(path=folder)
    assert isinstance(loaded.operator.model, DCDM) and "metrics" not in loaded.config
    assert f"generated by the recipe `{tiny_recipe}`" in (folder / "README.md").read_text()


def test_model_defined_loss_refuses_unrolled_training(tiny_recipe, tmp_path):
    config = config_from_mapping(tiny_config(tiny_recipe, tmp_path / "run"))
    data = build_data(config.data)
    trainer = Trainer(build_operator(config, data), config, data.train, data.valid)
    trainer.unroll = 2
    batch = next(iter(trainer.loader))
    with pytest.raises(ConfigError, match="defines its own training loss"):
        trainer._training_loss(batch["x"], batch["y"])


def test_recipe_data_hold_unit_rms_right_hand_sides_and_their_solutions(tiny_recipe, tmp_path, caplog):
    config = config_from_mapping(tiny_config(tiny_recipe, tmp_path / "run"))
    source = build_data(config.data).source
    assert len(source) == 24
    item = source[13]  # a sample of the boxes scene
    cells = item["x"][1].numpy().astype(np.int8)
    np.testing.assert_array_equal(cells, make_scene("boxes", (16, 16), seed=1))
    b = to_fluid(item["x"][0].numpy(), cells)
    assert np.sqrt(np.mean(b**2)) == pytest.approx(1.0, rel=1e-5)
    solution = to_fluid(item["y"][0].numpy(), cells)
    np.testing.assert_allclose(laplacian_matrix(cells) @ solution, b, atol=1e-4)
    out = tmp_path / "cli.pt"  # the datasets CLI generates the same file from the recipe
    assert datasets_cli(["generate", str(tiny_recipe), "--out", str(out)]) == 0
    cli, cached = (torch.load(p, weights_only=True) for p in (out, build_data(config.data).path))
    assert all(torch.equal(cli[key], cached[key]) for key in ("x", "y"))
    reseeded = tmp_path / "seed3.pt"  # --seed applies; the flags of flow recipes are refused, not ignored
    assert datasets_cli(["generate", str(tiny_recipe), "--out", str(reseeded), "--seed", "3"]) == 0
    other = torch.load(reseeded, weights_only=True)
    assert torch.equal(other["x"][:, 1], cli["x"][:, 1])  # the same scenes
    assert not torch.allclose(other["x"][:, 0], cli["x"][:, 0])  # other right-hand sides
    for flag in (["--format", "mat"], ["--n", "5"]):
        with caplog.at_level("ERROR"):
            assert datasets_cli(["generate", str(tiny_recipe), "--out", str(tmp_path / "x.pt"), *flag]) == 2
        assert f"{flag[0]} do(es) not apply to a poisson_ritz recipe" in caplog.text
    assert not (tmp_path / "x.pt").exists()


def test_bad_recipe_is_one_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIML_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "scenes": [{"kind": "donut"}]}))
    with pytest.raises(ConfigError, match="kind 'donut'"):
        build_data(config_from_mapping(tiny_config(path, tmp_path / "run")).data)
    path.write_text(yaml.safe_dump({**RECIPE, "kind": "poisson"}))
    with pytest.raises(ConfigError, match=r"bad\.yaml: kind 'poisson' is not a recipe kind"):
        load_recipe(path)
    path.write_text(yaml.safe_dump({**RECIPE, "name": "../escape"}))
    with pytest.raises(ConfigError, match="not a plain file name"):
        load_recipe(path)


def test_shipped_network_beats_an_untrained_one_on_an_unseen_scene():
    """The zoo's dcdm_poisson64 loads (SHA-256 checked) and its direction leaves a far smaller residual after
    one exact line search than the same network untrained, on a scene it never saw."""
    cells = make_scene("blobs", (64, 64), seed=103)
    A = laplacian_matrix(cells)
    rng = np.random.default_rng(0)
    b = rng.standard_normal(A.shape[0])

    def one_step(model):
        f = model.direction(cells)(b / np.linalg.norm(b))
        return np.linalg.norm(b - A @ f * (f @ b) / (f @ (A @ f))) / np.linalg.norm(b)

    trained = sciml.zoo.load("dcdm_poisson64").operator.model
    assert isinstance(trained, DCDM)
    torch.manual_seed(0)
    untrained, shipped = one_step(DCDM(2).eval()), one_step(trained.eval())
    assert shipped < 0.25 and shipped < 0.3 * untrained, (shipped, untrained)
