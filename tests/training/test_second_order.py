"""AdaHessian and Sophia (issue 19): the Hutchinson estimate, each paper's update by hand and against
pytorch_optimizer, AdaHessian's spatial averaging, complex parameters as real pairs, gradient accumulation,
exact resume, DDP 2 processes == 1, and every family trained by ``sciml.train`` with both."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from pytorch_optimizer import AdaHessian as LibraryAdaHessian
from pytorch_optimizer import SophiaH as LibrarySophiaH
from test_reliability import Killed, kill_at, metrics_rows
from test_trainer import _trainer, assert_same_weights, final_weights, tiny_config, write_config
from torch import nn

from sciml.errors import ConfigError
from sciml.models import available_models
from sciml.train import main
from sciml.training.checkpoint import load_checkpoint, tensor_state_dict
from sciml.training.config import config_from_mapping, load_config
from sciml.training.second_order import AdaHessian, Sophia, kernel_groups, real_view

ROOT = Path(__file__).parents[2]


def _small_family_arguments() -> dict:
    """The tiny model sections of tests/models/test_registry.py (one per family)."""
    spec = importlib.util.spec_from_file_location("registry_sizes", ROOT / "tests/models/test_registry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SMALL


def quadratic(theta: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1/2 theta^T A theta + b^T theta`` (gradient ``A theta + b``, Hessian ``A``)."""
    return 0.5 * theta @ (a @ theta) + b @ theta


def take_estimate(optimizer, loss: torch.Tensor) -> torch.Tensor:
    """One fresh Hutchinson estimate (new probes) of the first parameter; the parameters do not move."""
    optimizer.backward_with_hessian(loss)
    estimate = optimizer.hessian_estimate[0].clone()
    optimizer.zero_grad(set_to_none=True)  # no gradient: the step only draws the next probes
    optimizer.step()
    return estimate


# ------------------------------------------------------------------ the estimate
@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_estimate_converges_to_the_hessian_diagonal(probe):
    torch.manual_seed(0)
    m = torch.randn(5, 5, dtype=torch.float64)
    a = m @ m.T + torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64))
    b = torch.randn(5, dtype=torch.float64)
    theta = nn.Parameter(torch.randn(5, dtype=torch.float64))
    optimizer = AdaHessian([theta], lr=0.0, probe=probe, seed=1)
    draws = torch.stack([take_estimate(optimizer, quadratic(theta, a, b)) for _ in range(4000)])
    # the mean of z * (A z) is diag(A); its standard error is ~ the off-diagonal size / sqrt(4000)
    torch.testing.assert_close(draws.mean(0), torch.diagonal(a), rtol=0.05, atol=0.0)
    assert draws.std(0).max() > 0.1  # not exact per draw: A has off-diagonal terms


def test_rademacher_estimate_of_a_diagonal_hessian_is_exact():
    a = torch.tensor([0.5, 2.0, -3.0], dtype=torch.float64)
    theta = nn.Parameter(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
    optimizer = Sophia([theta], probe="rademacher")
    for _ in range(3):
        estimate = take_estimate(
            optimizer, quadratic(theta, torch.diag(a), torch.zeros(3, dtype=torch.float64))
        )
        torch.testing.assert_close(estimate, a, rtol=0, atol=1e-15)


# ------------------------------------------------------------------ the papers' updates, by hand
def run_steps(optimizer, theta, grads, estimates):
    for g, d in zip(grads, estimates, strict=True):
        theta.grad = g.clone()
        if d is not None:
            optimizer.set_hessian_estimate([d])
        optimizer.step()


def test_adahessian_steps_are_the_papers_update():
    lr, (b1, b2), eps, wd, k = 0.1, (0.9, 0.999), 1e-4, 0.01, 0.5
    theta = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    grads = [
        torch.tensor([0.3, -0.1, 2.0], dtype=torch.float64),
        torch.tensor([-0.2, 0.4, 1.0], dtype=torch.float64),
    ]
    estimates = [
        torch.tensor([2.0, -0.5, 4.0], dtype=torch.float64),
        torch.tensor([1.0, 0.7, -3.0], dtype=torch.float64),
    ]
    optimizer = AdaHessian([theta], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, hessian_power=k)
    expected = theta.detach().clone()
    m = v = torch.zeros(3, dtype=torch.float64)
    for t, (g, d) in enumerate(zip(grads, estimates, strict=True), start=1):
        # Algorithm 1 of Yao et al.: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) D^2; both debiased,
        # v_hat to the power k / 2
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * d * d
        m_hat, v_hat = m / (1 - b1**t), (v / (1 - b2**t)) ** (k / 2)
        expected = expected - lr * (m_hat / (v_hat + eps) + wd * expected)  # decoupled weight decay
    run_steps(optimizer, theta, grads, estimates)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-14, atol=1e-14)


def test_adahessian_first_step_with_unit_rate_is_newtons_step():
    a, b = (
        torch.tensor([4.0, 0.25, 2.0], dtype=torch.float64),
        torch.tensor([1.0, -1.0, 3.0], dtype=torch.float64),
    )
    theta = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = AdaHessian([theta], lr=1.0, eps=0.0)
    optimizer.backward_with_hessian(quadratic(theta, torch.diag(a), b))
    optimizer.step()
    torch.testing.assert_close(theta.detach(), -b / a, rtol=1e-14, atol=0)  # the minimum of the quadratic


def test_sophia_steps_are_the_papers_update():
    lr, (b1, b2), gamma, eps, wd, k = 0.05, (0.96, 0.99), 0.01, 1e-12, 0.1, 2
    theta = nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64))
    grads = [torch.tensor([0.3, -0.1, 2.0, 1e-4], dtype=torch.float64) * (1 + s) for s in range(4)]
    fresh = [
        torch.tensor([20.0, -0.5, 400.0, 1.0], dtype=torch.float64),
        torch.tensor([10.0, 0.7, 300.0, 2.0], dtype=torch.float64),
    ]
    estimates = [fresh[0], None, fresh[1], None]  # refreshed every k = 2 steps, the first one included
    optimizer = Sophia([theta], lr=lr, betas=(b1, b2), gamma=gamma, eps=eps, weight_decay=wd, update_period=k)
    expected = theta.detach().clone()
    m = h = torch.zeros(4, dtype=torch.float64)
    for g, d in zip(grads, estimates, strict=True):
        # Algorithm 3 of Liu et al.: m = b1 m + (1 - b1) g; h = b2 h + (1 - b2) h_hat on refresh steps;
        # theta -= lr wd theta; theta -= lr clip(m / max(gamma h, eps), 1)
        m = b1 * m + (1 - b1) * g
        if d is not None:
            h = b2 * h + (1 - b2) * d
        expected = expected - lr * wd * expected
        expected = expected - lr * torch.clamp(m / torch.clamp(gamma * h, min=eps), -1, 1)
    assert [optimizer.hessian_due() for _ in range(1)] == [True]
    run_steps(optimizer, theta, grads, estimates)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-14, atol=1e-14)
    assert optimizer.param_groups[0]["step"] == 4 and optimizer.hessian_due()


def test_updates_equal_pytorch_optimizer_given_the_same_estimates():
    """Where the libraries' rules agree with ours (real parameters, no spatial averaging): the same steps."""
    torch.manual_seed(0)
    start = [torch.randn(4, 3), torch.randn(5)]
    grads = [[torch.randn(4, 3), torch.randn(5)] for _ in range(5)]
    estimates = [[torch.randn(4, 3), torch.randn(5)] for _ in range(5)]

    def trajectory(optimizer_class, due, **options):
        params = [nn.Parameter(s.clone()) for s in start]
        optimizer = optimizer_class(params, **options)
        for step, (g, d) in enumerate(zip(grads, estimates, strict=True)):
            for p, gi in zip(params, g, strict=True):
                p.grad = gi.clone()
            if optimizer_class in (AdaHessian, Sophia):
                if due(step):
                    optimizer.set_hessian_estimate(d)
                optimizer.step()
            else:
                optimizer.step(hessian=[di.clone() for di in d] if due(step) else None)
        return [p.detach() for p in params]

    every = lambda step: True  # noqa: E731
    ours = trajectory(AdaHessian, every, lr=0.1, eps=1e-4, weight_decay=0.01, hessian_power=0.7)
    theirs = trajectory(LibraryAdaHessian, every, lr=0.1, eps=1e-4, weight_decay=0.01, hessian_power=0.7)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    # SophiaH's rule is lr' clip(m / max(h, eps'), p); ours lr clip(m / max(gamma h, eps), 1): the same with
    # lr' = lr / gamma, p = gamma, eps' = eps / gamma
    lr, gamma, eps = 0.01, 0.05, 1e-12
    third = lambda step: step % 3 == 0  # noqa: E731
    ours = trajectory(Sophia, third, lr=lr, gamma=gamma, eps=eps, update_period=3)
    theirs = trajectory(LibrarySophiaH, third, lr=lr / gamma, p=gamma, eps=eps / gamma, update_period=3)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ AdaHessian's spatial averaging
class Kernels(nn.Module):
    """A 3x3 Conv2d, a 1-point Conv1d (a channel mixer: no block) and a complex 4-d spectral-like weight."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, kernel_size=3)
        self.mixer = nn.Conv1d(2, 2, kernel_size=1)
        self.spectral = nn.Parameter(torch.randn(2, 2, 3, 3, dtype=torch.complex64))


def test_adahessian_averages_the_estimate_over_each_conv_kernel_block():
    torch.manual_seed(0)
    model = Kernels()
    params = list(model.parameters())
    curvature = [torch.rand_like(real_view(p)) + 0.5 for p in params]  # a diagonal Hessian per parameter

    def loss() -> torch.Tensor:
        return sum(0.5 * (c * real_view(p) ** 2).sum() for c, p in zip(curvature, params, strict=True))

    groups = kernel_groups(model, params)
    assert [g["kernel_dims"] for g in groups] == [(), (2, 3)]
    assert groups[1]["params"] == [model.conv.weight]
    optimizer = AdaHessian(groups, lr=0.1, eps=0.0)
    start = [real_view(p.detach()).clone() for p in params]
    optimizer.backward_with_hessian(loss())
    optimizer.step()
    for p, c, theta0 in zip(params, curvature, start, strict=True):
        if p is model.conv.weight:
            # Eq. 9 of Yao et al.: D_s[ib + j] = sum_k D[ib + k] / b over blocks of b = 3 x 3 kernel entries
            blocks = c.reshape(-1, 9)
            c = blocks.mean(1, keepdim=True).expand_as(blocks).reshape(c.shape)
        # first step, k = 1: theta -= lr g / |D_s|, with g = c_raw theta
        raw = curvature[[q is p for q in params].index(True)]
        expected = theta0 - 0.1 * raw * theta0 / c.abs()
        torch.testing.assert_close(real_view(p.detach()), expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ complex parameters as real pairs
def spectral_loss(w: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """A real loss of a complex weight mixing its real and imaginary parts (products, an FFT, |.|^4)."""
    y = a @ w
    return (y.abs() ** 4).sum() + (w.real * w.imag).pow(2).sum() + torch.fft.fft(w).real.pow(3).sum()


@pytest.mark.parametrize("optimizer_class", [AdaHessian, Sophia])
def test_complex_parameters_are_treated_as_real_and_imaginary_pairs(optimizer_class):
    torch.manual_seed(0)
    a = torch.randn(6, 6, dtype=torch.complex128) / 3
    w = nn.Parameter(torch.randn(6, dtype=torch.complex128) / 2)
    x = nn.Parameter(torch.view_as_real(w.detach()).clone())  # the same numbers as a real parameter
    real_loss = lambda v: spectral_loss(torch.view_as_complex(v), a)  # noqa: E731

    # the torch convention: the gradient of a real loss is dL/dRe + i dL/dIm
    torch.testing.assert_close(
        real_view(torch.autograd.grad(spectral_loss(w, a), w)[0]), torch.autograd.grad(real_loss(x), x)[0]
    )
    # the estimate is z * (H z) in the real coordinates, H the 12 x 12 Hessian of the real function
    complex_opt = optimizer_class([w], lr=1e-3, probe="rademacher", seed=5, update_period=1)
    real_opt = optimizer_class([x], lr=1e-3, probe="rademacher", seed=5, update_period=1)
    complex_opt.backward_with_hessian(spectral_loss(w, a))
    real_opt.backward_with_hessian(real_loss(x))
    z = real_opt._probes[0]
    hessian = torch.autograd.functional.hessian(real_loss, x.detach()).reshape(12, 12)
    exact = z * (hessian @ z.reshape(-1)).reshape(6, 2)
    torch.testing.assert_close(complex_opt.hessian_estimate[0], exact, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(real_opt.hessian_estimate[0], exact, rtol=1e-10, atol=1e-10)
    # and the whole trajectory of the complex parameter is that of its real view
    for step in range(4):
        if step:
            complex_opt.backward_with_hessian(spectral_loss(w, a))
            real_opt.backward_with_hessian(real_loss(x))
        complex_opt.step()
        real_opt.step()
        complex_opt.zero_grad()
        real_opt.zero_grad()
    torch.testing.assert_close(torch.view_as_real(w.detach()), x.detach(), rtol=1e-10, atol=1e-12)
    assert not torch.equal(x.detach(), torch.view_as_real(w.detach()) * 0)


# ------------------------------------------------------------------ the Trainer
def test_accumulated_half_batches_give_the_estimate_of_the_whole_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    whole, halves = (AdaHessian(list(model.parameters()), seed=2) for _ in range(2))
    whole.backward_with_hessian(nn.functional.mse_loss(model(x), y))
    grads_whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    for part in (slice(0, 4), slice(4, 8)):  # mean loss of half a batch, divided by the 2 micro-batches
        halves.backward_with_hessian(nn.functional.mse_loss(model(x[part]), y[part]) / 2)
    for a, b in zip(whole.hessian_estimate, halves.hessian_estimate, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for a, p in zip(grads_whole, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-7)


SOPHIA_EVERY_3 = {"sophia": {"update_period": 3}}


@pytest.mark.parametrize(
    "optim", [{"name": "adahessian", "lr": 0.05}, {"name": "sophia", "lr": 1e-3, **SOPHIA_EVERY_3}]
)
def test_accumulation_of_two_half_batches_trains_like_the_whole_batch(tiny_data, tmp_path, optim):
    big = _trainer(tiny_data, tmp_path / "a", data__batch_size=4, train__epochs=2, optim={**optim})
    small = _trainer(
        tiny_data, tmp_path / "b", data__batch_size=2, train__epochs=2, optim={**optim, "accumulate": 2}
    )
    big.fit()
    small.fit()
    assert_same_weights(tensor_state_dict(big.raw_model), tensor_state_dict(small.raw_model), atol=1e-5)


@pytest.mark.parametrize(
    "optim", [{"name": "adahessian", "lr": 0.05}, {"name": "sophia", "lr": 1e-3, **SOPHIA_EVERY_3}]
)
def test_bf16_autocast_and_clipping_train_with_second_order(tiny_data, tmp_path, optim):
    trainer = _trainer(
        tiny_data,
        tmp_path / "r",
        train__amp="bf16",
        train__device="cpu",
        train__epochs=1,
        optim={**optim, "grad_clip": 0.5},
    )
    before = {k: v.clone() for k, v in tensor_state_dict(trainer.raw_model).items()}
    trainer.fit()
    assert torch.isfinite(torch.tensor(trainer.history[-1]["train_loss"]))
    after = tensor_state_dict(trainer.raw_model)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert trainer.optimizer.param_groups[0]["step"] == trainer.step > 0


@pytest.mark.parametrize(
    "optim", [{"name": "adahessian", "lr": 0.05}, {"name": "sophia", "lr": 1e-3, **SOPHIA_EVERY_3}]
)
def test_killed_second_order_run_resumes_bit_exactly(tiny_data, tmp_path, monkeypatch, optim):
    def config(run_dir: Path) -> dict:
        data = tiny_config(tiny_data, run_dir, epochs=3)
        data["optim"] = {**data["optim"], **optim}
        return data

    reference = tmp_path / "reference"
    assert main([str(write_config(tmp_path / "ref.yaml", config(reference)))]) == 0
    run_dir = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", config(run_dir))
    with monkeypatch.context() as patch:
        kill_at(patch, "last.pt", occurrence=2, when="before")  # killed while committing epoch 2
        with pytest.raises(Killed):
            main([str(cfg)])
    assert len(load_checkpoint(run_dir / "checkpoints" / "last.pt")["history"]) == 1
    assert main([str(cfg), "--resume"]) == 0
    assert_same_weights(final_weights(reference), final_weights(run_dir))
    a, b = (load_checkpoint(d / "checkpoints" / "last.pt")["optimizer"] for d in (reference, run_dir))
    assert torch.equal(a["probe_generator"], b["probe_generator"])
    for index, state in a["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["state"][index][key]), (index, key)
    assert metrics_rows(run_dir) == metrics_rows(reference)


# DDP, 2 processes == 1 with AdaHessian (accumulated) and Sophia: in the torchrun job of
# tests/training/test_trainer.py::test_ddp_two_processes_equal_one_process (DDP_CASES).


OWN_DATA = {
    "dcdm"
}  # families whose input is not a flow field (dcdm: a Poisson right-hand side and cell codes)


@pytest.mark.parametrize("name", ["adahessian", "sophia"])
def test_every_family_trains_one_epoch_from_the_command_line(tiny_data, tmp_path, name):
    small = _small_family_arguments()
    families = [f for f in available_models() if f not in OWN_DATA]
    assert {"fno", "t1", "lsm"} <= set(families)
    for family in families:
        data = tiny_config(tiny_data, tmp_path / family, epochs=1)
        data["model"] = {"name": family, **small.get(family, {})}
        data["eval"] = {"plots": False}
        cfg = write_config(tmp_path / f"{family}.yaml", data)
        assert main([str(cfg), f"optim.name={name}", "optim.lr=1e-3"]) == 0, family
        state = load_checkpoint(tmp_path / family / "checkpoints" / "last.pt")
        assert "probe_generator" in state["optimizer"], family
        assert state["history"][0]["train_loss"] > 0, family


# ------------------------------------------------------------------ configuration
def test_second_order_options_are_checked_with_one_clear_error(tiny_data, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tiny_data, tmp_path / "r"))
    config = load_config(
        cfg, ["optim.name=sophia", "optim.sophia.gamma=0.05", "optim.sophia.update_period=5"]
    )
    assert (config.optim.sophia.gamma, config.optim.sophia.update_period) == (0.05, 5)
    assert config.optim.sophia.betas == [0.96, 0.99] and config.optim.adahessian.hessian_power == 1.0
    bad = {
        "optim.adahessian.hessian_power=1.5": r"adahessian\.hessian_power must be a number > 0 and <= 1",
        "optim.adahessian.update_period=0": r"optim\.adahessian\.update_period must be an integer >= 1",
        "optim.sophia.gamma=-1": r"optim\.sophia\.gamma must be a number > 0, got -1",
        "optim.sophia.probe=normal": r"probe",
        "optim.sophia.gama=1": r"did you mean 'gamma'",
    }
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(cfg, [override])
    with pytest.raises(ConfigError, match=r"optim\.sophia\.betas must be two numbers in \[0, 1\)"):
        data = tiny_config(tiny_data, tmp_path / "r")
        data["optim"]["sophia"] = {"betas": [0.9]}
        config_from_mapping(data)
    for train, message in (({"compile": True}, "torch.compile"), ({"amp": "fp16"}, "fp16")):
        with pytest.raises(ConfigError, match=message):
            _trainer(
                tiny_data,
                tmp_path / "x",
                optim={"name": "adahessian"},
                train={**tiny_config(tiny_data, tmp_path / "x")["train"], **train},
            )


# ------------------------------------------------------------------ the benchmark
def test_benchmark_quick_mode_writes_its_record_and_learning_curves(tmp_path, load_script):
    module = load_script("bench_optimizers")
    out = tmp_path / "optimizers.json"
    record = module.main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text())["benchmark"] == "second_order_optimizers"
    assert out.with_suffix(".png").stat().st_size > 0
    (family,) = record["families"]
    cost = family["step_cost"]
    # timings: only what no load can flip (which step is slower is a benchmark's finding, not a test's)
    ratios = ("adahessian", "sophia_refresh", "sophia_plain")
    assert all(math.isfinite(cost[k]) and cost[k] > 0 for k in (*ratios, "adamw_step_ms"))
    low, high = sorted((cost["sophia_refresh"], cost["sophia_plain"]))
    assert low <= cost["sophia_amortized"] <= high  # (refresh + (k - 1) plain) / k lies between them
    for name in ("adamw", "adahessian", "sophia"):
        curve = family["runs"][0]["curves"][name]
        assert len(curve["step"]) == len(curve["seconds"]) == len(curve["test_l2"]) == family["epochs"] + 1
    text = module.markdown(record)
    assert f"`{record['command']}`" in text and "|---|" in text and "equal wall time" in text


def test_gp_hm_benchmark_quick_mode_runs_every_arm_with_the_precision_cap(tmp_path, load_script):
    """bench_optimizers_gp --quick: every arm on the GP-HM objective; AdaHessian survives its first steps
    only because log tau is capped (its Newton-like step along tau_b, curvature ~1e-17, is otherwise +inf)."""
    module = load_script("bench_optimizers_gp")
    out = tmp_path / "optimizers_gp.json"
    record = module.main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text())["benchmark"] == "second_order_optimizers_gp_hm"
    assert out.with_suffix(".png").stat().st_size > 0
    (case,) = record["cases"]
    runs = {run["arm"]: run for run in case["runs"]}
    assert set(runs) == {"exact", "adam+lbfgs", "adam", "adahessian", "sophia"}
    for name in ("adam", "adahessian", "sophia"):
        run = runs[name]
        assert run["failure"] is None and run["steps"] == 6, name
        seconds = [point[0] for point in run["curve"]]
        assert len(seconds) == 2 and seconds == sorted(seconds), name  # every 5 steps and at the end
    summary = module.summarize(case)
    assert summary["adam"]["rel_l2"] == runs["adam"]["curve"][-1][1]
    text = module.markdown(record)
    assert f"`{record['command']}`" in text and "|---|" in text and "adahessian" in text
