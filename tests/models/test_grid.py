"""Grid coordinate channels: each kind against its closed form, and what each family feeds its model."""

import math

import pytest
import torch

from sciml.errors import ConfigError
from sciml.models.deeponet import DeepONet
from sciml.models.grid import grid_coordinates
from sciml.models.lsm import LSM2d
from sciml.models.mg_tfno import MultiGridPatching
from sciml.models.registry import ModelContext, build_model

SHAPE = (4, 6)


def closed_form(shape, point) -> torch.Tensor:
    """``[channels, *shape]`` from ``point(axis, i, n) -> list of channel values`` (plain Python floats)."""
    n1, n2 = shape
    rows = [[point(0, i, n1) + point(1, j, n2) for j in range(n2)] for i in range(n1)]
    return torch.tensor(rows, dtype=torch.float64).permute(2, 0, 1)


def test_periodic_points_leave_out_the_end_point_and_scale_by_the_lengths():
    got = grid_coordinates(SHAPE, "periodic", dtype=torch.float64)
    torch.testing.assert_close(got, closed_form(SHAPE, lambda a, i, n: [i / n]), rtol=0, atol=0)
    lengths = (2.0, 0.5)
    got = grid_coordinates(SHAPE, "periodic", lengths, dtype=torch.float64)
    expected = closed_form(SHAPE, lambda a, i, n: [lengths[a] * i / n])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    assert got[0, 1, 0] == 0.5 and got[1, 0, 1] == 0.5 / 6  # channel a varies along axis a only


def test_vertices_include_both_ends():
    got = grid_coordinates(SHAPE, "vertex", dtype=torch.float64)
    expected = closed_form(SHAPE, lambda a, i, n: [i / (n - 1)])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    assert got[0, -1, 0] == 1.0 and got[1, 0, -1] == 1.0


def test_fourier_features_are_sine_then_cosine_per_axis():
    got = grid_coordinates(SHAPE, "fourier", dtype=torch.float64)
    expected = closed_form(
        SHAPE, lambda a, i, n: [math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n)]
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)


def test_any_number_of_axes_dtype_and_device():
    got = grid_coordinates((2, 3, 5), "periodic", dtype=torch.float32, device="cpu")
    assert got.shape == (3, 2, 3, 5) and got.dtype == torch.float32
    assert torch.equal(got[2, 0, 0], torch.arange(5) / 5)
    assert grid_coordinates((7,), "fourier").shape == (2, 7)


def test_tensor_lengths_are_cast_to_the_dtype_entry_by_entry():
    """A float32 buffer of lengths gives the float32-rounded length, also for a float64 grid."""
    lengths = torch.tensor([0.1, 3.3])
    got = grid_coordinates(SHAPE, "periodic", lengths, dtype=torch.float64)
    assert torch.equal(got[0, :, 0], torch.arange(4, dtype=torch.float64) / 4 * float(lengths[0]))
    from_floats = grid_coordinates(SHAPE, "periodic", (0.1, 3.3), dtype=torch.float64)
    assert torch.equal(from_floats[0, :, 0], torch.arange(4, dtype=torch.float64) / 4 * 0.1)


@pytest.mark.parametrize(
    ("shape", "kind", "lengths", "match"),
    [
        (SHAPE, "cell", None, "not one of periodic, vertex, fourier"),
        ((4, 1), "vertex", None, r"at least 2 point"),
        ((), "periodic", None, "at least 1 point"),
        (SHAPE, "periodic", (1.0,), "1 lengths for the 2 axes"),
        (SHAPE, "fourier", (1.0, 1.0), "do not depend on the box lengths"),
    ],
)
def test_bad_arguments_are_config_errors(shape, kind, lengths, match):
    with pytest.raises(ConfigError, match=match):
        grid_coordinates(shape, kind, lengths)


def test_t1_feeds_the_periodic_points_rounded_as_vertices():
    context = ModelContext(in_channels=1, out_channels=1, grid_shape=(8, 8))
    t1 = build_model("t1", {"modes": 4, "width": 4, "n_layers": 1, "head_width": 4}, context)
    x = torch.zeros(3, 1, *SHAPE, dtype=torch.float64)
    fed = t1._grid(x)
    assert fed.shape == (1, 2, *SHAPE)
    torch.testing.assert_close(fed[0], closed_form(SHAPE, lambda a, i, n: [i / n]), rtol=0, atol=1e-15)
    vertices = grid_coordinates((5, 7), "vertex", dtype=torch.float64)
    assert torch.equal(fed[0], vertices[:, :-1, :-1])


def test_lsm_feeds_the_vertices_of_the_unit_box():
    fed = LSM2d.grid(3, *SHAPE, torch.zeros(1, dtype=torch.float64))
    assert fed.shape == (3, 2, *SHAPE)
    assert torch.equal(fed[2], grid_coordinates(SHAPE, "vertex", dtype=torch.float64))


@pytest.mark.parametrize("periodic", [True, False])
def test_deeponet_trunk_rows_are_the_points_in_row_major_order(periodic):
    lengths = (2.0, 0.5)
    net = DeepONet(1, 1, sensors=4, basis=4, periodic=periodic, domain_lengths=lengths)
    rows = net.coordinates(SHAPE, torch.device("cpu"), torch.float64)
    if periodic:
        expected = closed_form(
            SHAPE, lambda a, i, n: [math.sin(2 * math.pi * i / n), math.cos(2 * math.pi * i / n)]
        )
    else:
        expected = closed_form(SHAPE, lambda a, i, n: [lengths[a] * i / n])
    assert rows.shape == (SHAPE[0] * SHAPE[1], 4 if periodic else 2) and rows.is_contiguous()
    torch.testing.assert_close(rows, expected.reshape(len(expected), -1).T, rtol=0, atol=1e-15)


def test_mg_tfno_appends_the_fourier_features_of_the_whole_box():
    fed = MultiGridPatching.position_channels(torch.zeros(2, 3, *SHAPE, dtype=torch.float64))
    assert fed.shape == (2, 4, *SHAPE)
    assert torch.equal(fed[1], grid_coordinates(SHAPE, "fourier", dtype=torch.float64))
