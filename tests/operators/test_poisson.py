"""The cell-type Poisson operators (sciml.operators.poisson): matrix-free vs sparse, SPD, boundaries."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from sciml.errors import ConfigError
from sciml.operators.poisson import (
    AIR,
    FLUID,
    SCENE_KINDS,
    SOLID,
    apply_laplacian,
    laplacian_matrix,
    make_scene,
    to_fluid,
    to_grid,
)

SHAPES = [(16, 16), (12, 20), (8, 10, 12)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_matrix_free_laplacian_equals_the_sparse_matrix(shape, kind):
    cells = make_scene(kind, shape, seed=4)
    A = laplacian_matrix(cells)
    u = np.random.default_rng(0).standard_normal(shape)
    expected = to_grid(A @ to_fluid(u, cells), cells)
    got = apply_laplacian(torch.from_numpy(u)[None, None], torch.from_numpy(cells)[None, None])[0, 0]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)
    assert np.all(got.numpy()[cells != FLUID] == 0)


@pytest.mark.parametrize("shape", [(16, 16), (8, 8, 8)])
@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_scene_matrices_are_symmetric_positive_definite(shape, kind):
    A = laplacian_matrix(make_scene(kind, shape, seed=1)).toarray()
    np.testing.assert_array_equal(A, A.T)
    assert np.linalg.eigvalsh(A)[0] > 1e-6
    assert np.all(np.diag(A) > 0) and np.all(A - np.diag(np.diag(A)) <= 0)  # an M-matrix: IC(0) exists


def test_closed_form_solution_with_air_on_top_and_walls_elsewhere():
    # Cells 1..n-1 of each column are fluid under one air cell; walls (Neumann) elsewhere: with b = 1 the
    # columns decouple and p_i = i (2n - 1 - i) / 2 solves -p_{i-1} + 2 p_i - p_{i+1} = 1 with p_0 = 0
    # (Dirichlet at the air) and p_{n-1} - p_{n-2} = 1 (no flux through the bottom wall).
    n, width = 12, 5
    cells = np.full((n, width), FLUID, dtype=np.int8)
    cells[0] = AIR
    A = laplacian_matrix(cells)
    p = np.linalg.solve(A.toarray(), np.ones(A.shape[0]))
    i = np.arange(1, n)
    exact = i * (2 * n - 1 - i) / 2.0
    np.testing.assert_allclose(to_grid(p, cells)[1:], np.repeat(exact[:, None], width, axis=1), rtol=1e-12)


def test_solid_cells_carry_no_flux_and_air_cells_fix_zero():
    cells = np.full((3, 3), FLUID, dtype=np.int8)
    cells[0, 1], cells[2, 1] = AIR, SOLID
    A = laplacian_matrix(cells)
    centre = list(np.flatnonzero(cells.ravel() == FLUID)).index(4)
    row = A.toarray()[centre]
    assert row[centre] == 3  # fluid left and right, air above; the solid below adds nothing
    assert sorted(row[row != 0])[:2] == [-1, -1] and np.count_nonzero(row) == 3


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_scenes_are_reproducible_and_every_fluid_region_touches_air(kind):
    a, b = make_scene(kind, (32, 32), seed=7), make_scene(kind, (32, 32), seed=7)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {SOLID, FLUID, AIR}
    assert np.all(a[0] == AIR)
    if kind != "empty":
        assert (a == SOLID).sum() > 0
        assert not np.array_equal(a, make_scene(kind, (32, 32), seed=8))
    labels, count = ndimage.label(a == FLUID)
    touching = np.unique(labels[ndimage.binary_dilation(a == AIR) & (labels > 0)])
    assert set(touching) == set(range(1, count + 1))


def test_large_scenes_in_2d_and_3d():
    for shape in [(512, 512), (64, 64, 64)]:
        cells = make_scene("spheres", shape, seed=0)
        assert cells.shape == shape and (cells == FLUID).mean() > 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_scene("donut", (16, 16)), "scene kind 'donut'"),
        (lambda: make_scene("boxes", (16,)), "2 or 3 axes"),
        (lambda: laplacian_matrix(np.full((4, 4), 5)), "cell codes"),
        (lambda: apply_laplacian(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5)), "apply_laplacian"),
    ],
)
def test_bad_inputs_raise_one_config_error(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
