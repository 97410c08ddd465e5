"""The one autoregressive rollout (sciml.training.rollout) and the evaluations built on it."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sciml.errors import ConfigError
from sciml.metrics import sobolev_error_for
from sciml.training.report import evaluate_rollouts
from sciml.training.rollout import advance_window, rollout
from sciml.zoo.pretrained import PretrainedOperator

T_IN, T_OUT, C, N = 3, 2, 2, 8  # three frames of two fields in, two frames out, 8 x 8 grid


def windowed_model(seed: int = 0) -> nn.Module:
    """A small nonlinear windowed model ``[B, T_IN * C, N, N] -> [B, T_OUT * C, N, N]`` in float64."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(T_IN * C, 8, 3, padding=1, padding_mode="circular"), nn.Tanh(), nn.Conv2d(8, T_OUT * C, 1)
    ).double()


def manual_rollout(model: nn.Module, window: torch.Tensor, steps: int, with_grad: list[bool]) -> list:
    """The predictions of ``steps`` steps written out: the newest ``T_IN`` frames are the next input."""
    predictions = []
    for step in range(steps):
        with torch.set_grad_enabled(with_grad[step]):
            predictions.append(model(window))
        window = torch.cat([window, predictions[-1]], dim=1)[:, T_OUT * C :]
    return predictions


def parameter_gradients(loss: torch.Tensor, model: nn.Module) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(model.parameters())))


def test_advance_window_drops_the_oldest_frames():
    window = torch.arange(6.0).reshape(1, 6, 1, 1)  # frames (0, 1), (2, 3), (4, 5) of two fields
    predicted = torch.tensor([6.0, 7.0, 8.0, 9.0]).reshape(1, 4, 1, 1)
    assert advance_window(window, predicted).flatten().tolist() == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


def test_rollout_all_is_the_manual_loop_with_gradients_through_every_step():
    model = windowed_model()
    window = torch.randn(2, T_IN * C, N, N, dtype=torch.float64)
    predictions = rollout(model, window, 3, gradient="all")
    expected = manual_rollout(model, window, 3, [True] * 3)
    assert predictions.shape == (2, 3 * T_OUT * C, N, N)
    torch.testing.assert_close(predictions, torch.cat(expected, dim=1), rtol=0, atol=0)
    last = predictions[:, -T_OUT * C :].square().sum()
    for got, want in zip(
        parameter_gradients(last, model), parameter_gradients(expected[-1].square().sum(), model), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_rollout_last_differentiates_the_last_step_only():
    # the pushforward trick: the first steps - 1 predictions are constants for the gradient
    model = windowed_model()
    window = torch.randn(2, T_IN * C, N, N, dtype=torch.float64)
    predictions = rollout(model, window, 3, gradient="last")
    pushforward = manual_rollout(model, window, 3, [False, False, True])
    through_all = manual_rollout(model, window, 3, [True, True, True])
    torch.testing.assert_close(predictions, torch.cat(pushforward, dim=1), rtol=0, atol=0)
    first_steps = predictions[:, : -T_OUT * C].sum()
    unused = torch.autograd.grad(first_steps, list(model.parameters()), allow_unused=True, retain_graph=True)
    assert all(g is None or not g.any() for g in unused)  # the earlier predictions carry no gradient
    loss = predictions[:, -T_OUT * C :].square().sum()
    got = parameter_gradients(loss, model)
    for a, b in zip(got, parameter_gradients(pushforward[-1].square().sum(), model), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    full = parameter_gradients(through_all[-1].square().sum(), model)
    assert any(not torch.allclose(a, b) for a, b in zip(got, full, strict=True))
    one_step = rollout(model, window, 1, gradient="last")  # one step: the plain, differentiable prediction
    assert one_step.requires_grad


def test_rollout_none_builds_no_graph():
    model = windowed_model()
    window = torch.randn(1, T_IN * C, N, N, dtype=torch.float64, requires_grad=True)
    predictions = rollout(model, window, 2, gradient="none")
    assert not predictions.requires_grad
    torch.testing.assert_close(predictions, rollout(model, window, 2, gradient="all"), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("steps", "gradient", "message"),
    [
        (2, "first", r"rollout: gradient 'first' is not one of all, last, none"),
        (0, "all", r"rollout: steps must be an integer >= 1, got 0"),
        (1.5, "all", r"rollout: steps must be an integer >= 1, got 1.5"),
    ],
)
def test_rollout_refuses_bad_arguments(steps, gradient, message):
    with pytest.raises(ConfigError, match=message):
        rollout(windowed_model(), torch.zeros(1, T_IN * C, N, N, dtype=torch.float64), steps, gradient)


class Trajectories:
    """Trajectories ``[T, C, N, N]`` in memory, on a periodic unit box."""

    def __init__(self, frames: list[torch.Tensor]) -> None:
        self.frames = frames
        self.metadata = SimpleNamespace(periodic=(True, True), domain_lengths=(1.0, 1.0))

    def read(self, index: int) -> torch.Tensor:
        return self.frames[index]


def test_evaluate_rollouts_gives_the_error_of_every_predicted_frame():
    model = windowed_model()
    model.train()
    torch.manual_seed(1)
    source = Trajectories([torch.randn(8, C, N, N, dtype=torch.float64) for _ in range(3)])
    curves = evaluate_rollouts(model, source, [2, 0], T_IN, T_OUT, 5, source.metadata)
    assert not model.training
    # 8 frames: 3 in, then room for two steps of two frames (not the five asked for)
    assert curves.shape == (2, 2 * T_OUT)
    for row, index in zip(curves, [2, 0], strict=True):
        frames = source.read(index)
        window = frames[:T_IN].reshape(1, T_IN * C, N, N)
        with torch.no_grad():
            predictions = manual_rollout(model, window, 2, [False, False])
        expected = []
        for step, prediction in enumerate(predictions):
            truth = frames[T_IN + step * T_OUT : T_IN + (step + 1) * T_OUT]
            predicted = prediction.float().reshape(truth.shape)  # as the report: float32 predictions
            expected.append(sobolev_error_for(predicted, truth, 0.0, source.metadata))
        torch.testing.assert_close(row, torch.cat(expected).mean(dim=-1), rtol=1e-12, atol=0)


def test_evaluate_rollouts_refuses_a_trajectory_too_short_for_one_step():
    source = Trajectories([torch.zeros(T_IN + T_OUT - 1, C, N, N, dtype=torch.float64)])
    with pytest.raises(ConfigError, match=r"trajectory 0 has 4 frames, fewer than t_in \+ t_out = 5"):
        evaluate_rollouts(windowed_model(), source, [0], T_IN, T_OUT, 2, source.metadata)


def test_pretrained_rollout_is_the_shared_rollout_without_gradients():
    model = windowed_model().float()
    config = {
        "name": "tiny",
        "task": {"mode": "window", "t_in": T_IN, "t_out": T_OUT},
        "normalization": {
            "x_mean": [0.5] * T_IN * C,
            "x_std": [2.0] * T_IN * C,
            "y_mean": [-1.0] * T_OUT * C,
            "y_std": [3.0] * T_OUT * C,
        },
    }
    operator = PretrainedOperator(model, config)
    frames = torch.randn(2, T_IN, C, N, N)
    predicted = operator.rollout(frames, steps=3)
    assert predicted.shape == (2, 3 * T_OUT, C, N, N) and not predicted.requires_grad
    expected = rollout(operator, frames.reshape(2, T_IN * C, N, N), 3, gradient="all")
    torch.testing.assert_close(predicted, expected.reshape(2, 3 * T_OUT, C, N, N), rtol=0, atol=0)
