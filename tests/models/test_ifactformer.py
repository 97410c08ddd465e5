"""IFactFormer-m / -o and the implicit FNO on 3-D grids: the factorized kernel integral against its closed
form, weight sharing and the scaled implicit update, periodic-shift equivariance (which holds, which not),
and one epoch of each 3-D family (with FNO-3D) through ``sciml.train`` on a tiny forced-HIT file, where the
Trainer's loss on 3-D windows is the per-(sample, channel) relative L2 over the three spatial axes."""

import json
from pathlib import Path

import pytest
import torch

from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError
from sciml.models import ModelContext, build_model
from sciml.models.ifactformer import factorized_kernel_integral
from sciml.training.config import config_from_mapping
from sciml.training.data import build_data
from sciml.training.trainer import Trainer

TWO_PI = 2 * torch.pi
CONTEXT = ModelContext(6, 3, (8, 6, 4), (TWO_PI,) * 3, (True,) * 3)
SMALL = {"dim": 8, "heads": 2, "dim_head": 4, "kernel_multiplier": 2, "n_layers": 3}


def test_factorized_kernel_integral_parallel_and_chained_closed_forms():
    """A delta value at p: -m answers on the three axis lines through p with K_a[:, p_a]; -o with the outer
    product K_x[:, p_x] K_y[:, p_y] K_z[:, p_z] everywhere (the separable kernel), whatever the order."""
    torch.manual_seed(0)
    n = (5, 4, 3)
    kernels = [torch.randn(1, 1, k, k, dtype=torch.float64) for k in n]
    v = torch.zeros(1, 1, *n, 1, dtype=torch.float64)
    p = (2, 1, 0)
    v[0, 0, p[0], p[1], p[2], 0] = 1.0
    m = factorized_kernel_integral(kernels, v, "parallel")[0, 0]  # [*n, 3]
    cols = [kernels[a][0, 0, :, p[a]] for a in range(3)]
    expected_m = torch.zeros(*n, 3, dtype=torch.float64)
    expected_m[:, p[1], p[2], 0] = cols[0]
    expected_m[p[0], :, p[2], 1] = cols[1]
    expected_m[p[0], p[1], :, 2] = cols[2]
    torch.testing.assert_close(m, expected_m, rtol=0, atol=1e-14)
    o = factorized_kernel_integral(kernels, v, "chained")[0, 0, ..., 0]
    torch.testing.assert_close(o, torch.einsum("i,j,k->ijk", *cols), rtol=0, atol=1e-14)
    # a general v: the chained map is the 3-D kernel sum K_x[i,a] K_y[j,b] K_z[k,c] v[a,b,c]
    w = torch.randn(1, 1, *n, 2, dtype=torch.float64)
    full = torch.einsum("ia,jb,kc,abcd->ijkd", *(k[0, 0] for k in kernels), w[0, 0])
    torch.testing.assert_close(factorized_kernel_integral(kernels, w, "chained")[0, 0], full)
    with pytest.raises(ConfigError, match="variant 'serial'"):
        factorized_kernel_integral(kernels, w, "serial")


def test_shapes_weight_sharing_scaled_update_and_shift_equivariance():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 6, 4)
    for variant in ("parallel", "chained"):
        model = build_model("ifactformer", {**SMALL, "variant": variant}, CONTEXT)
        y = model(x)
        assert y.shape == (2, 3, 8, 6, 4)
        # implicit: one layer's weights, iterated; the depth adds no parameter
        counts = {
            sum(
                p.numel()
                for p in build_model(
                    "ifactformer", {**SMALL, "variant": variant, "n_layers": L}, CONTEXT
                ).parameters()
            )
            for L in (1, 3, 12)
        }
        assert len(counts) == 1
        # the paper's scaled update u <- u + F(u) / L, by hand
        u = model.lift(x.movedim(1, -1))
        for _ in range(3):
            u = u + model.layer(u) / 3
        torch.testing.assert_close(model.project(u).movedim(-1, 1), y)
        # periodic shifts by whole cells commute with the model (rotary frequencies are whole wavenumbers)
        shifted = torch.roll(x, shifts=(3, 2, 1), dims=(2, 3, 4))
        torch.testing.assert_close(
            model(shifted), torch.roll(y, (3, 2, 1), dims=(2, 3, 4)), atol=1e-5, rtol=1e-5
        )
        # the paper's absolute position features break it (default for walled axes)
        absolute = build_model(
            "ifactformer", {**SMALL, "variant": variant, "absolute_positions": True}, CONTEXT
        )
        gap = (absolute(shifted) - torch.roll(absolute(x), (3, 2, 1), dims=(2, 3, 4))).abs().max()
        assert gap > 1e-3
    walled = ModelContext(6, 3, (8, 6, 4), (TWO_PI, 2.0, TWO_PI), (True, False, True))
    assert build_model("ifactformer", SMALL, walled).positions is not None
    # the two variants differ on the same input (their mixing layers differ in kind and width)
    m = build_model("ifactformer", {**SMALL, "variant": "parallel"}, CONTEXT)
    o = build_model("ifactformer", {**SMALL, "variant": "chained"}, CONTEXT)
    assert m.layer.out[0].in_features == 3 * o.layer.out[0].in_features
    # IFNO: one shared spectral layer, iterated; shift-equivariant (no grid embedding)
    ifno = build_model("ifno", {"modes": 3, "width": 8, "n_layers": 4}, CONTEXT)
    assert sum(p.numel() for p in ifno.parameters()) == sum(
        p.numel() for p in build_model("ifno", {"modes": 3, "width": 8, "n_layers": 9}, CONTEXT).parameters()
    )
    torch.testing.assert_close(
        ifno(shifted), torch.roll(ifno(x), (3, 2, 1), dims=(2, 3, 4)), atol=1e-5, rtol=1e-5
    )
    for bad, message in (
        ({"variant": "serial"}, "variant 'serial'"),
        ({"dim_head": 3, "kernel_multiplier": 1}, "must be even"),
        ({"n_layers": 0}, "n_layers must be a positive integer"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_model("ifactformer", {**SMALL, **bad}, CONTEXT)
    with pytest.raises(ConfigError, match="modes"):
        build_model("ifno", {"modes": [3, 3]}, CONTEXT)


@pytest.fixture(scope="module")
def tiny_hit(tmp_path_factory) -> Path:
    """4 trajectories of 5 frames of forced HIT on 8^3 (16^3 DNS, spectrally filtered)."""
    recipe = Recipe.from_mapping(
        {
            "name": "tiny_hit",
            "solver": {
                "resolution": 16,
                "viscosity": 0.05,
                "forcing": "band",
                "dt": 0.05,
                "stepper": "heun-cn",
            },
            "hit": {"injection_rate": 0.1, "peak_wavenumber": 2.0},
            "output": {
                "resolution": 8,
                "downsample": "spectral",
                "warmup": 0.1,
                "t_final": 0.4,
                "record_every": 0.1,
            },
            "n_trajectories": 4,
            "batch_size": 4,
            "dtype": "float64",
        }
    )
    return generate(recipe, tmp_path_factory.mktemp("hit") / "hit.hdf5", progress=False, device="cpu")


def hit_config(path: Path, run_dir: Path, model: dict, **train) -> dict:
    return {
        "data": {
            "path": str(path),
            "mode": "window",
            "t_in": 2,
            "t_out": 1,
            "fields": ["velocity_x", "velocity_y", "velocity_z"],
            "train": 0.5,
            "valid": 0.25,
            "test": 0.25,
            "batch_size": 2,
        },
        "model": model,
        "train": {"epochs": 1, "progress": False, "run_dir": str(run_dir), **train},
        "eval": {"plots": False, "rollout_steps": 2},
    }


def test_trainer_loss_on_3d_windows_is_the_relative_l2_over_three_axes(tiny_hit, tmp_path):
    config = config_from_mapping(
        hit_config(
            tiny_hit, tmp_path / "r", {"name": "fno", "modes": [3, 3, 3], "width": 4, "n_layers": 1}, unroll=2
        ),
        name="t",
    )
    data = build_data(config.data, unroll=2)
    item = data.train[0]
    assert item["x"].shape == (6, 8, 8, 8) and item["y"].shape == (6, 8, 8, 8)  # 2 frames x 3 components
    assert data.out_channels == 3
    source = data.source.read(int(data.splits["train"][0]))[:, :3]
    torch.testing.assert_close(item["y"], source[2:4].reshape(6, 8, 8, 8))
    trainer = Trainer(torch.nn.Linear(1, 1), config, data.train, metadata=data.metadata)
    pred, y = torch.randn(2, 3, 8, 8, 8), torch.randn(2, 3, 8, 8, 8)
    direct = ((pred - y).square().sum((2, 3, 4)).sqrt() / y.square().sum((2, 3, 4)).sqrt()).mean()
    torch.testing.assert_close(trainer.loss_fn(pred, y), direct, rtol=1e-5, atol=0)


@pytest.mark.parametrize(
    "model",
    [
        {"name": "ifactformer", "variant": "chained", **SMALL},
        {"name": "fno", "modes": [3, 3, 3], "width": 8, "n_layers": 2},
        {"name": "ifno", "modes": 3, "width": 8, "n_layers": 3},
    ],
    ids=["ifactformer-o", "fno-3d", "ifno"],
)
def test_each_3d_family_trains_one_epoch_through_sciml_train(tiny_hit, tmp_path, model):
    from sciml.train import main

    run_dir = tmp_path / "run"
    cfg = hit_config(tiny_hit, run_dir, model, unroll=2)
    cfg["eval"]["plots"] = model.get("variant") == "chained"  # the 3-D report figures, once
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    assert main([str(path)]) == 0
    report = json.loads((run_dir / "report" / "metrics.json").read_text())
    assert 0 < report["test"]["8"]["l2"]["mean"] < 10 and len(report["rollout_l2"]) == 2
    if cfg["eval"]["plots"]:
        assert {"prediction.png", "spectrum.png", "rollout.png"} <= {
            p.name for p in (run_dir / "report").iterdir()
        }


def test_bench_turbulence_quick_trains_ifactformer_m_and_compares_with_les(tmp_path):
    """IFactFormer-m trained one epoch by sciml.train inside the benchmark (quick mode: an 8^3 file), then
    the LES closures on the same frames; the LES from the filtered frame is close to the filtered DNS in
    the short term (the same equations, a coarser grid), and every row renders."""
    from solvers.bench_turbulence import main, markdown

    out = tmp_path / "turbulence.json"
    record = main(["--quick", "--models", "IFactFormer-m", "--out", str(out)])
    assert json.loads(out.read_text())["rows"] == record["rows"]
    methods = [row["method"] for row in record["rows"]]
    assert methods[0] == "IFactFormer-m" and "LES dynamic Smagorinsky" in methods and "LES WALE" in methods
    for row in record["rows"]:
        assert len(row["short_term_l2"]) == record["horizon"] and row["ms_per_frame"] > 0
        if row["kind"] == "LES":
            assert row["short_term_l2"][0] < 0.2 and row["long_blowup_frame"] is None
    text = markdown(record)
    assert f"`{record['command']}`" in text and "|---|" in text and "IFactFormer-m target" in text
    assert Path(record["plot"]).stat().st_size > 0 and Path(record["plot_long"]).stat().st_size > 0
