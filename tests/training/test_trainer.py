"""The shared Trainer: exact resume after SIGKILL, DDP equals one process, NaN stop, accumulation, configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sciml.datasets.generate import generate
from sciml.datasets.recipes import Recipe
from sciml.errors import ConfigError
from sciml.evaluate import evaluate_run
from sciml.evaluate import main as evaluate_main
from sciml.metrics import relative_l2
from sciml.train import build_operator, main
from sciml.training.checkpoint import CheckpointError, load_checkpoint, tensor_state_dict
from sciml.training.config import config_from_mapping, load_config
from sciml.training.data import build_data
from sciml.training.trainer import Trainer, TrainingDivergedError

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    recipe = Recipe.from_mapping(
        {
            "name": "tiny_train",
            "solver": {"resolution": 16, "viscosity": 1e-3, "dt": 0.01, "stepper": "heun-cn"},
            "output": {"t_final": 0.4, "record_every": 0.1},
            "n_trajectories": 24,
            "batch_size": 24,
        }
    )
    return generate(recipe, tmp_path_factory.mktemp("data") / "tiny.hdf5", progress=False, device="cpu")


def tiny_config(data_path: Path, run_dir: Path, **train) -> dict:
    return {
        "data": {
            "path": str(data_path),
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
        "optim": {"lr": 1e-3, "scheduler": {"name": "step", "step_size": 2, "gamma": 0.5}},
        "train": {"epochs": 4, "progress": False, "run_dir": str(run_dir), **train},
        "eval": {"plots": False, "rollout_steps": 2},
    }


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def final_weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if atol == 0.0:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)


def test_train_cli_writes_run_directory(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "tiny.yaml", tiny_config(tiny_data, tmp_path / "run"))
    assert main([str(cfg), "train.epochs=2"]) == 0
    run = tmp_path / "run"
    assert (run / "config.yaml").exists()
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2
    report = __import__("json").loads((run / "report" / "metrics.json").read_text())
    assert set(report["test"]["16"]) >= {"l2", "h1", "h-1"}
    assert len(report["rollout_l2"]) == 2
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state["model"])
    # evaluate again, zero-shot on a finer grid (a file, not a recipe: Fourier-resampled test samples)
    again = evaluate_run(run, resolutions=[32], checkpoint="last")
    assert again["test"]["16"]["l2"]["mean"] == pytest.approx(report["test"]["16"]["l2"]["mean"], rel=1e-6)
    assert again["test"]["32"]["source"].startswith("fourier-resampled")
    assert evaluate_main([str(tmp_path / "no-such-run")]) == 2


def test_killed_run_resumes_to_identical_weights(tiny_data, tmp_path):
    epochs = 6
    reference = tmp_path / "reference"
    cfg_ref = write_config(tmp_path / "ref.yaml", tiny_config(tiny_data, reference, epochs=epochs))
    assert main([str(cfg_ref)]) == 0

    killed = tmp_path / "killed"
    cfg = write_config(tmp_path / "killed.yaml", tiny_config(tiny_data, killed, epochs=epochs))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sciml.train", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = killed / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    time.sleep(0.05)  # land somewhere inside a later epoch (or a save)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(load_checkpoint(killed / "checkpoints" / "last.pt")["history"])
    assert 2 <= done < epochs
    assert main([str(cfg), "--resume"]) == 0
    assert_same_weights(final_weights(reference), final_weights(killed))
    history = [yaml.safe_load(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))


def test_interrupted_save_leaves_previous_checkpoint_usable(tiny_data, tmp_path):
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, run, epochs=1))
    assert main([str(cfg)]) == 0
    ckpt = run / "checkpoints" / "last.pt"
    # a save killed half-way leaves only a truncated temporary file beside the good one
    partial = ckpt.with_name(".last.pt.tmp")
    partial.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    assert main([str(cfg), "--resume", "train.epochs=2"]) == 0
    assert len(load_checkpoint(ckpt)["history"]) == 2
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt"):
        load_checkpoint(truncated)


def _trainer(tiny_data, run_dir, **overrides):
    data = tiny_config(tiny_data, run_dir)
    for dotted, value in overrides.items():
        if "__" not in dotted:  # a whole section
            data[dotted] = value
            continue
        section, key = dotted.split("__")
        data[section][key] = value
    config = config_from_mapping(data, name="t")
    bundle = build_data(config.data, unroll=config.train.unroll)
    model = build_operator(config, bundle)
    return Trainer(model, config, bundle.train, bundle.valid, run_dir=run_dir, metadata=bundle.metadata)


def test_gradient_accumulation_matches_the_large_batch(tiny_data, tmp_path):
    big = _trainer(tiny_data, tmp_path / "a", data__batch_size=4, train__epochs=2)
    small = _trainer(tiny_data, tmp_path / "b", data__batch_size=2, optim__accumulate=2, train__epochs=2)
    big.fit()
    small.fit()
    assert_same_weights(tensor_state_dict(big.raw_model), tensor_state_dict(small.raw_model), atol=1e-6)


T1_TINY = {"name": "t1", "modes": 4, "width": 8, "n_layers": 2, "head_init_std": 0.1}


@pytest.mark.parametrize("transform", ["dct", "rfft"])
def test_spectral_loss_trains_t1_like_the_physical_loss(tiny_data, tmp_path, transform):
    # By Parseval the loss on the spectra equals the physical relative L2, so are the gradients and the
    # weights after training; the spectral run never applies the model's inverse transform.
    model = {**T1_TINY, "transform": transform}
    physical = _trainer(tiny_data, tmp_path / "l2", model=model, train__loss="l2", train__epochs=2)
    spectral = _trainer(tiny_data, tmp_path / "sp", model=model, train__loss="spectral", train__epochs=2)
    physical.fit()
    inverse_calls = []
    spectral.raw_model.model.transform.register_forward_hook(
        lambda module, args, kwargs, out: (
            inverse_calls.append(kwargs.get("inverse", False)) if module.training else None
        ),
        with_kwargs=True,
    )  # validation (eval mode) evaluates physical fields, training must not
    spectral.fit()
    assert inverse_calls and not any(inverse_calls)
    assert physical.history[-1]["train_loss"] == pytest.approx(spectral.history[-1]["train_loss"], rel=1e-5)
    a, b = tensor_state_dict(physical.raw_model), tensor_state_dict(spectral.raw_model)
    assert_same_weights(a, b, atol=1e-5)
    assert not torch.equal(a["model.w2"], _trainer(tiny_data, tmp_path / "0", model=model).raw_model.model.w2)


def test_unrolled_training_windows_hold_the_next_frames(tiny_data, tmp_path):
    config = config_from_mapping(tiny_config(tiny_data, tmp_path / "r"), name="t")
    config.data.stride = 1
    one, two = build_data(config.data), build_data(config.data, unroll=2)
    assert one.out_channels == two.out_channels == 1
    # 5 frames per trajectory: 3 windows of 2 + 1 frames, 2 windows of 2 + 2 frames
    assert len(one.train) == 3 * len(one.splits["train"]) and len(two.train) == 2 * len(two.splits["train"])
    assert len(two.valid) == len(one.valid) and two.valid[0]["y"].shape[0] == 1
    first, second = one.train[0], one.train[1]
    unrolled = two.train[0]
    torch.testing.assert_close(unrolled["x"], first["x"], rtol=0, atol=0)
    torch.testing.assert_close(unrolled["y"], torch.cat([first["y"], second["y"]]), rtol=0, atol=0)


def test_unrolled_loss_is_the_mean_error_of_the_rollout(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, tmp_path / "u", train__unroll=3)  # t_in = 2
    model = trainer.raw_model
    batch = next(iter(trainer.loader))
    x, y = batch["x"], batch["y"]
    assert y.shape[1] == 3
    f0, f1 = x[:, :1], x[:, 1:]  # the two input frames
    p2 = model(torch.cat([f0, f1], dim=1))
    p3 = model(torch.cat([f1, p2], dim=1))
    p4 = model(torch.cat([p2, p3], dim=1))
    expected = sum(relative_l2(p, y[:, k : k + 1]).mean() for k, p in enumerate([p2, p3, p4])) / 3
    loss = trainer._training_loss(x, y)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=0)
    loss.backward()  # the gradient reaches the weights through all three steps
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_pushforward_loss_has_gradients_through_the_last_step_only(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, tmp_path / "p", train__unroll=3, train__unroll_gradient="last")
    model = trainer.raw_model
    batch = next(iter(trainer.loader))
    x, y = batch["x"], batch["y"]
    with torch.no_grad():
        p2 = model(x)
        p3 = model(torch.cat([x[:, 1:], p2], dim=1))
    expected = relative_l2(model(torch.cat([p2, p3], dim=1)), y[:, 2:3]).mean()
    loss = trainer._training_loss(x, y, steps=3)
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=0)
    params = [p for p in model.parameters() if p.requires_grad]
    # equal gradients: nothing flows back through the two steps taken without gradients
    for a, b in zip(torch.autograd.grad(loss, params), torch.autograd.grad(expected, params), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_pushforward_draws_every_rollout_length_reproducibly(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, tmp_path / "p", train__unroll=3, train__unroll_gradient="last")
    draws = [trainer._pushforward_steps(i) for i in range(60)]
    assert set(draws) == {1, 2, 3}
    assert draws == [trainer._pushforward_steps(i) for i in range(60)]  # the same after a resume
    batch = next(iter(trainer.loader))
    x, y = batch["x"][:2], batch["y"][:2]
    one_step = relative_l2(trainer.raw_model(x), y[:, :1]).mean()  # one step: the plain next-frame loss
    torch.testing.assert_close(trainer._training_loss(x, y, steps=1), one_step, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"unroll": 0}, r"train.unroll must be an integer >= 1"),
        (
            {"unroll": 2, "unroll_gradient": "first"},
            r"train.unroll_gradient: 'first' is not one of all, last",
        ),
        ({"unroll": 2, "loss": "spectral"}, r"cannot use loss: spectral"),
    ],
)
def test_unroll_config_errors(tiny_data, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(tiny_config(tiny_data, tmp_path, **overrides))


def test_unroll_needs_windows(tiny_data, tmp_path):
    data = tiny_config(tiny_data, tmp_path, unroll=2)
    data["data"].update(mode="initial_to_final", input_time=0, output_time=-1)
    with pytest.raises(ConfigError, match=r"train.unroll 2 rolls a windowed model out; data.mode is "):
        config_from_mapping(data)


def test_spectral_loss_needs_a_model_with_a_transformed_domain(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match=r"train.loss: 'spectral'.*model 'fno' has none"):
        _trainer(tiny_data, tmp_path / "fno", train__loss="spectral")


def test_nan_loss_stops_with_a_clear_error_and_keeps_last_checkpoint(tiny_data, tmp_path):
    trainer = _trainer(tiny_data, tmp_path / "nan", train__epochs=3)
    trainer.config.train.epochs = 1
    trainer.fit()
    good = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.pt")["model"]
    trainer.config.train.epochs = 3
    with torch.no_grad():
        for p in trainer.raw_model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"non-finite training loss.*last.pt"):
        trainer.fit()
    assert_same_weights(good, load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.pt")["model"])


DDP_CASES = {  # name -> (model section or None for the tiny FNO, train options, optim options)
    "fno": (None, {}, {}),
    "t1-spectral-loss": (T1_TINY, {"loss": "spectral"}, {}),
    "fno-unrolled": (None, {"unroll": 2}, {}),
    "fno-pushforward": (None, {"unroll": 2, "unroll_gradient": "last"}, {}),
    # second order (tests/training/test_second_order.py): Hessian estimates averaged like gradients
    "adahessian-accumulated": (None, {}, {"name": "adahessian", "lr": 0.05, "accumulate": 2}),
    "sophia-every-3": (None, {}, {"name": "sophia", "lr": 1e-3, "sophia": {"update_period": 3}}),
}


def valid_means(run_dir: Path) -> list[float]:
    """The validation rel L2 of every epoch of a run."""
    return [json.loads(line)["valid_l2"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ddp_two_processes_equal_one_process(tiny_data, tmp_path):
    """Each case trained by one process and by two (torchrun, gloo): same validation means, same weights.

    The two-process runs share one torchrun job (tests/training/train_each.py trains its configs in turn), so
    the processes start once for all cases.
    """

    def config(run_dir: Path, model: dict | None, train: dict, optim: dict) -> dict:
        data = tiny_config(tiny_data, run_dir, epochs=2, **train)
        data["model"] = model or data["model"]
        data["optim"] = {**data["optim"], **optim}
        return data

    two_configs = []
    for name, case in DDP_CASES.items():
        cfg_one = write_config(tmp_path / f"{name}-one.yaml", config(tmp_path / name / "one", *case))
        assert main([str(cfg_one)]) == 0, name
        two_configs.append(
            str(write_config(tmp_path / f"{name}-two.yaml", config(tmp_path / name / "two", *case)))
        )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29517",
            str(Path(__file__).with_name("train_each.py")),
            *two_configs,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (model, _, optim) in DDP_CASES.items():
        one, two = tmp_path / name / "one", tmp_path / name / "two"
        a, b = final_weights(one), final_weights(two)
        # validation is split over the two processes and all-reduced: the same mean as one process
        assert valid_means(two) == pytest.approx(valid_means(one), rel=1e-5), name
        if model is None:
            assert any(v.is_complex() for v in a.values()), name  # spectral weights are complex
        assert_same_weights(a, b, atol=1e-5 if optim else 1e-6)


def test_config_errors_name_the_nearest_key(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, tmp_path / "r"))
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        load_config(cfg, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="changes the type"):
        load_config(cfg, ["train.epochs=fast"])
    with pytest.raises(ConfigError, match="did you mean 'optim'"):
        load_config(cfg, ["optimizer.lr=1"])
    assert load_config(cfg, ["optim.lr=3e-4"]).optim.lr == pytest.approx(3e-4)
    bad = tiny_config(tiny_data, tmp_path / "r")
    bad["model"]["widht"] = 3
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        build_operator(config_from_mapping(bad), build_data(config_from_mapping(bad).data))
    assert main([str(tmp_path / "missing.yaml")]) == 2


def test_bf16_autocast_keeps_spectral_layers_in_float32(tiny_data, tmp_path):
    from neuralop.layers.spectral_convolution import SpectralConv

    trainer = _trainer(tiny_data, tmp_path / "bf16", train__amp="bf16", train__epochs=1, train__device="cpu")
    seen = []
    for module in trainer.raw_model.modules():
        if isinstance(module, SpectralConv):
            module.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    trainer.fit()
    assert seen and set(seen) == {torch.float32}
    assert torch.isfinite(torch.tensor(trainer.history[-1]["train_loss"]))
