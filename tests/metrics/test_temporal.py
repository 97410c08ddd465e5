"""Rollout error curves and their summary."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from sciml.errors import ConfigError
from sciml.metrics import rollout_errors, rollout_summary, sobolev_error


def rollout(B=3, T=5, C=2, n=16):
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    base = torch.sin(2 * math.pi * X) * torch.cos(2 * math.pi * 2 * Y)
    target = base.expand(B, T, C, n, n) * torch.arange(1, C + 1, dtype=torch.float64).view(1, 1, C, 1, 1)
    growth = 1.0 + 0.1 * torch.arange(T, dtype=torch.float64).view(1, T, 1, 1, 1)
    return target * growth, target.clone()


@pytest.mark.parametrize("s", [-1.0, 0.0, 1.0])
def test_rollout_error_values_and_shapes(s):
    pred, target = rollout()
    err = rollout_errors(pred, target, s=s)
    assert err.shape == (3, 5)
    expected = (0.1 * torch.arange(5, dtype=torch.float64)).expand(3, 5)
    torch.testing.assert_close(err, expected, rtol=1e-12, atol=1e-14)
    # the same curve with time on axis 2
    err2 = rollout_errors(pred.transpose(1, 2), target.transpose(1, 2), s=s, time_dim=2)
    torch.testing.assert_close(err2, err)
    # and it is sobolev_error per frame
    per = sobolev_error(pred, target, s).mean(-1)
    torch.testing.assert_close(err, per)


def test_channel_reductions():
    pred, target = rollout(B=2, T=3, C=2)
    pred = pred.clone()
    pred[:, :, 1] = target[:, :, 1] * 1.2  # channel 1 (amplitude 2): error 0.2 at every step
    pred[:, :, 0] = target[:, :, 0] * 1.1  # channel 0 (amplitude 1): error 0.1
    mean = rollout_errors(pred, target)
    torch.testing.assert_close(mean, torch.full((2, 3), 0.15, dtype=torch.float64))
    joint = rollout_errors(pred, target, channel_reduction="joint")
    expected = math.sqrt((0.01 * 1 + 0.04 * 4) / (1 + 4))
    torch.testing.assert_close(joint, torch.full((2, 3), expected, dtype=torch.float64))
    none = rollout_errors(pred, target, channel_reduction="none")
    assert none.shape == (2, 3, 2)
    absolute = rollout_errors(pred, target, relative=False, channel_reduction="none")
    assert float(absolute[0, 0, 1] / absolute[0, 0, 0]) == pytest.approx(4.0, rel=1e-12)


@dataclass
class Meta:
    periodic: tuple[bool, ...]
    domain_lengths: tuple[float, ...]


def test_rollout_with_metadata_and_no_channel_axis():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 4, 12, 10, dtype=torch.float64, generator=g)
    pred = target + 0.1 * torch.randn(2, 4, 12, 10, dtype=torch.float64, generator=g)
    err = rollout_errors(pred, target, s=1, metadata=Meta((False, False), (1.0, 2.0)))
    assert err.shape == (2, 4)
    ref = sobolev_error(pred, target, 1, lengths=(1.0, 2.0), periodic=False)
    torch.testing.assert_close(err, ref)


def test_summary():
    errors = torch.tensor([[0.01, 0.05, 0.2, 0.4], [0.02, 0.3, 0.1, 0.5]], dtype=torch.float64)
    summary = rollout_summary(errors, threshold=0.15)
    torch.testing.assert_close(summary.mean, torch.tensor([0.015, 0.175, 0.15, 0.45], dtype=torch.float64))
    assert summary.first_exceed == 1
    assert summary.first_exceed_per_sample.tolist() == [2, 1]
    assert summary.overall_mean == pytest.approx(float(errors.mean()))
    never = rollout_summary(errors, threshold=1.0)
    assert never.first_exceed is None and never.first_exceed_per_sample.tolist() == [-1, -1]
    no_threshold = rollout_summary(errors[:1])
    assert no_threshold.first_exceed is None and float(no_threshold.std.abs().max()) == 0.0
    assert set(summary.to_dict()) >= {"mean", "first_exceed", "first_exceed_per_sample"}
    with pytest.raises(ConfigError):
        rollout_summary(errors[0])


def test_bad_arguments():
    pred, target = rollout()
    with pytest.raises(ConfigError):
        rollout_errors(pred, target, time_dim=0)
    with pytest.raises(ConfigError):
        rollout_errors(pred, target, time_dim=-1)  # a spatial axis
    with pytest.raises(ConfigError):
        rollout_errors(pred, target, channel_reduction="max")
