"""SobolevLoss: values, reductions, gradients, and agreement with neuraloperator's LpLoss."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.errors import ConfigError
from sciml.metrics import SobolevLoss, relative_l2, sobolev_error

neuralop_losses = pytest.importorskip("neuralop.losses")


def fields(shape=(4, 3, 16, 16), seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(*shape, dtype=torch.float64, generator=g)
    pred = target + 0.3 * torch.randn(*shape, dtype=torch.float64, generator=g)
    return pred, target


def test_loss_values_and_reductions():
    pred, target = fields()
    for s in (-1.0, 0.0, 1.0):
        per = sobolev_error(pred, target, s, lengths=2.0, eps=1e-8)
        none = SobolevLoss(s, lengths=2.0, reduction="none")(pred, target)
        torch.testing.assert_close(none, per, rtol=1e-14, atol=0)
        torch.testing.assert_close(SobolevLoss(s, lengths=2.0)(pred, target), per.mean(), rtol=1e-14, atol=0)
        torch.testing.assert_close(
            SobolevLoss(s, lengths=2.0, reduction="sum")(pred, target), per.sum(), rtol=1e-14, atol=0
        )
        absolute = SobolevLoss(s, relative=False, lengths=2.0, reduction="none")(pred, target)
        torch.testing.assert_close(absolute, sobolev_error(pred, target, s, relative=False, lengths=2.0))


def test_sine_closed_form():
    n = 16
    x = torch.arange(n, dtype=torch.float64) / n
    X, _ = torch.meshgrid(x, x, indexing="ij")
    target = torch.sin(2 * math.pi * X)[None, None]
    for s in (-1.0, 0.0, 1.0):
        loss = SobolevLoss(s, eps=0.0)(1.1 * target, target)
        assert float(loss) == pytest.approx(0.1, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_relative_l2_agrees_with_neuralop_lploss(reduction):
    """neuralop's LpLoss(d=2, p=2).rel is sqrt(sum (x - y)^2) / (sqrt(sum y^2) + eps) per (sample, channel)
    over the last two axes, then torch.mean / torch.sum over batch and channels together. Without eps
    it is exactly our relative L2 (the quadrature cancels); its eps is added to the unscaled root sum
    of squares, ours to the L2 norm ``sqrt(mean(y^2) |Omega|)``, so with eps > 0 they differ by O(eps)."""
    pred, target = fields((5, 2, 12, 20))
    lp = neuralop_losses.LpLoss(d=2, p=2, reduction=reduction, eps=0.0)
    ours = SobolevLoss(0.0, reduction=reduction, eps=0.0)
    torch.testing.assert_close(ours(pred, target), lp(pred, target), rtol=1e-12, atol=0)
    lp_eps = neuralop_losses.LpLoss(d=2, p=2, reduction=reduction)  # eps = 1e-8
    torch.testing.assert_close(
        SobolevLoss(0.0, reduction=reduction)(pred, target), lp_eps(pred, target), rtol=1e-7, atol=0
    )
    # per sample and channel: LpLoss on one (sample, channel) at a time
    per = relative_l2(pred, target)
    for b in range(pred.shape[0]):
        for c in range(pred.shape[1]):
            ref = lp(pred[b : b + 1, c : c + 1], target[b : b + 1, c : c + 1])
            assert float(per[b, c]) == pytest.approx(float(ref), rel=1e-12)
    # the relative L2 does not depend on the box (LpLoss's measure cancels too)
    torch.testing.assert_close(
        SobolevLoss(0.0, reduction=reduction, lengths=(3.0, 0.5))(pred, target), ours(pred, target)
    )


def test_default_lploss_sums_over_batch_and_channels():
    pred, target = fields((3, 2, 8, 8))
    lp_default = neuralop_losses.LpLoss(d=2, p=2, eps=0.0)  # reduction="sum"
    ours = SobolevLoss(0.0, reduction="mean", eps=0.0)(pred, target)
    assert float(lp_default(pred, target)) == pytest.approx(float(ours) * 3 * 2, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"s": 0.0},
        {"s": 1.0, "lengths": (2.0, 1.5)},
        {"s": -1.0, "relative": False, "alpha": 10**-1.5, "cutoff": 2},
        {"s": -0.5, "seminorm": True},
        {"s": 1.0, "periodic": False},
        {"s": -1.0, "periodic": (False, True), "grid": "cell"},
    ],
)
def test_gradcheck(kwargs):
    g = torch.Generator().manual_seed(1)
    target = torch.randn(2, 1, 6, 5, dtype=torch.float64, generator=g)
    pred = (target + 0.2 * torch.randn(2, 1, 6, 5, dtype=torch.float64, generator=g)).requires_grad_()
    loss = SobolevLoss(**kwargs)
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (pred,), eps=1e-6, atol=1e-8)


def test_gradient_is_finite_at_a_perfect_prediction():
    target = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    pred = target.clone().requires_grad_()
    SobolevLoss(1.0)(pred, target).backward()
    assert bool(torch.isfinite(pred.grad).all()) and float(pred.grad.abs().max()) == 0.0


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    target = torch.randn(4, 1, 16, 16)
    pred = torch.zeros_like(target, requires_grad=True)
    opt = torch.optim.Adam([pred], lr=0.05)
    loss_fn = SobolevLoss(-1.0)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = loss_fn(pred, target)
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_bad_arguments():
    with pytest.raises(ConfigError):
        SobolevLoss(reduction="max")
    with pytest.raises(ConfigError):
        SobolevLoss(lengths=(1.0, 0.0))
    with pytest.raises(ConfigError):
        SobolevLoss(s=float("inf"))
    with pytest.raises(ConfigError):
        SobolevLoss(cutoff=-2)
    with pytest.raises(ConfigError):
        SobolevLoss(grid="staggered")
    assert "s=-1" in repr(SobolevLoss(-1.0, relative=False))
