"""Pressure Poisson systems of incompressible flow on cell-type grids (2-D and 3-D).

Every cell of a regular grid is :data:`SOLID` (an obstacle or wall), :data:`FLUID` (an unknown) or
:data:`AIR` (a free surface). The pressure equation of a projection step couples each fluid cell to its
2 * ndim face neighbours (the 5-point stencil in 2-D, the 7-point stencil in 3-D) with unit grid spacing:

* a fluid neighbour ``j`` enters as ``-p_j``;
* an air neighbour is a Dirichlet condition ``p = 0``: it adds 1 to the diagonal and nothing else;
* a solid neighbour (and the outside of the grid) is a Neumann condition ``dp/dn = 0``: it adds nothing.

So ``(A p)_i = n_i p_i - sum_{fluid j ~ i} p_j`` with ``n_i`` the number of non-solid neighbours of fluid cell
``i``. **Sign:** ``A`` is the *negative* Laplacian (``A = -h^2 Lap`` with ``h = 1``), symmetric and positive
semi-definite on the fluid cells; it is positive *definite* exactly when every connected fluid region touches
air. The generated scenes (:func:`make_scene`) guarantee that by turning fluid pockets sealed from air into
solid, so their ``A`` is SPD.

Two forms of the same operator:

* :func:`apply_laplacian`: matrix-free on whole grids ``[B, 1, *grid]`` in PyTorch (batched, differentiable),
  zero on the non-fluid cells; what the learned solver's loss uses;
* :func:`laplacian_matrix`: the ``scipy.sparse`` CSR matrix on the fluid cells only (``n_fluid x n_fluid``,
  fluid cells in C order), what the classical baselines use; :func:`to_fluid` / :func:`to_grid` move vectors
  between the two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy import ndimage

from sciml.errors import ConfigError

logger = logging.getLogger(__name__)

SOLID = 0
"""Cell code of an obstacle or wall (Neumann: no flux through its faces)."""
FLUID = 1
"""Cell code of an unknown pressure."""
AIR = 2
"""Cell code of a free-surface cell (Dirichlet: pressure 0)."""

SCENE_KINDS = ("empty", "boxes", "spheres", "blobs")
"""Obstacle scenes :func:`make_scene` generates."""


def check_cells(cells: np.ndarray | torch.Tensor, where: str = "cells") -> None:
    """Refuse a cell-type grid that is not 2-D/3-D or holds codes other than SOLID, FLUID, AIR."""
    if cells.ndim not in (2, 3):
        raise ConfigError(
            f"{where}: expected a 2-D or 3-D grid of cell codes, got shape {tuple(cells.shape)}"
        )
    values = torch.as_tensor(cells) if isinstance(cells, np.ndarray) else cells
    bad = (values != SOLID) & (values != FLUID) & (values != AIR)
    if bool(bad.any()):
        raise ConfigError(
            f"{where}: cell codes must be {SOLID} (solid), {FLUID} (fluid) or {AIR} (air), found "
            f"{values[bad].flatten()[0].item()!r}"
        )


def _shifted(field: torch.Tensor, axis: int, step: int) -> torch.Tensor:
    """``field`` (``[B, C, *grid]``) read ``step`` cells along spatial ``axis``: the result at cell ``i`` is
    ``field[i + step]``, 0 where that falls outside the grid."""
    ndim = field.ndim - 2
    pad = [0, 0] * ndim
    pad[2 * (ndim - 1 - axis)] = pad[2 * (ndim - 1 - axis) + 1] = 1  # F.pad lists the last axis first
    return F.pad(field, pad).narrow(2 + axis, 1 + step, field.shape[2 + axis])


def apply_laplacian(u: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """``A u`` on whole grids: ``u`` and ``cells`` are ``[B, 1, *grid]`` (2-D or 3-D); zero off the fluid.

    ``A`` is the SPD negative Laplacian of the module docstring (Neumann at solid cells and at the grid's
    edge, Dirichlet 0 at air). Values of ``u`` on non-fluid cells are ignored.
    """
    if u.shape != cells.shape or u.ndim not in (4, 5):
        raise ConfigError(
            f"apply_laplacian: u and cells must both be [B, 1, *grid] with a 2-D or 3-D grid, got "
            f"{tuple(u.shape)} and {tuple(cells.shape)}"
        )
    fluid = (cells == FLUID).to(u.dtype)
    open_ = (cells != SOLID).to(u.dtype)
    u_fluid = u * fluid
    out = torch.zeros_like(u)
    for axis in range(u.ndim - 2):
        for step in (-1, 1):
            out = out + _shifted(open_, axis, step) * u_fluid - _shifted(u_fluid, axis, step)
    return out * fluid


def fluid_index(cells: np.ndarray) -> np.ndarray:
    """Flat (C-order) grid indices of the fluid cells: unknown ``k`` sits at ``fluid_index(cells)[k]``."""
    return np.flatnonzero(np.asarray(cells) == FLUID)


def laplacian_matrix(cells: np.ndarray) -> sp.csr_matrix:
    """The operator of :func:`apply_laplacian` as a CSR matrix on the fluid cells (float64, SPD when every
    fluid region touches air; see the module docstring)."""
    cells = np.asarray(cells)
    check_cells(cells)
    shape = cells.shape
    flat = cells.ravel()
    index = fluid_index(cells)
    number = np.full(flat.size, -1, dtype=np.int64)
    number[index] = np.arange(index.size)
    coords = np.unravel_index(index, shape)
    diagonal = np.zeros(index.size)
    rows, cols = [], []
    for axis in range(cells.ndim):
        for step in (-1, 1):
            neighbour = list(coords)
            neighbour[axis] = coords[axis] + step
            inside = (neighbour[axis] >= 0) & (neighbour[axis] < shape[axis])
            flat_nb = np.full(index.size, -1, dtype=np.int64)
            flat_nb[inside] = np.ravel_multi_index(tuple(c[inside] for c in neighbour), shape)
            kind = np.full(index.size, SOLID)
            kind[inside] = flat[flat_nb[inside]]
            diagonal += kind != SOLID
            is_fluid = kind == FLUID
            rows.append(np.flatnonzero(is_fluid))
            cols.append(number[flat_nb[is_fluid]])
    row = np.concatenate([np.arange(index.size), *rows])
    col = np.concatenate([np.arange(index.size), *cols])
    data = np.concatenate([diagonal, -np.ones(sum(r.size for r in rows))])
    return sp.csr_matrix((data, (row, col)), shape=(index.size, index.size))


def to_fluid(field: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The fluid-cell values of a grid field (the vector the sparse matrix acts on)."""
    return np.asarray(field).ravel()[fluid_index(cells)]


def to_grid(vector: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """A fluid-cell vector spread back onto the grid (zero on solid and air cells)."""
    grid = np.zeros(np.asarray(cells).size, dtype=np.result_type(vector, np.float32))
    grid[fluid_index(cells)] = vector
    return grid.reshape(np.asarray(cells).shape)


@dataclass(frozen=True)
class SceneSpec:
    """A generated scene: its kind (:data:`SCENE_KINDS`), grid shape and seed."""

    kind: str
    shape: tuple[int, ...]
    seed: int = 0


def make_scene(kind: str, shape: tuple[int, ...], seed: int = 0, air_layers: int = 1) -> np.ndarray:
    """A cell-type grid (``int8``, codes SOLID/FLUID/AIR) of ``shape`` (2-D or 3-D, e.g. 64^2..512^2,
    32^3..128^3): a tank whose walls are the grid's edge (Neumann), open to air in its top ``air_layers``
    cells along the first axis (Dirichlet), holding obstacles drawn from ``seed``:

    * ``empty``: no obstacle;
    * ``boxes``: 3-8 axis-aligned solid boxes;
    * ``spheres``: 3-8 solid discs (2-D) / balls (3-D);
    * ``blobs``: solid where a smoothed Gaussian random field exceeds a threshold (irregular obstacles,
      about a fifth of the tank).

    Obstacles never touch the air layer, and fluid pockets sealed off from air become solid, so the
    scene's operator is SPD. Sizes scale with the grid, so a seed gives the same scene at every resolution
    up to discretization (boxes, spheres) or a similar one (blobs).
    """
    if kind not in SCENE_KINDS:
        raise ConfigError(f"scene kind {kind!r} is not one of {list(SCENE_KINDS)}")
    shape = tuple(int(n) for n in shape)
    if len(shape) not in (2, 3) or min(shape) < 8:
        raise ConfigError(f"scene shape {shape}: expected 2 or 3 axes of at least 8 cells each")
    if not 1 <= air_layers < shape[0] // 2:
        raise ConfigError(
            f"scene air_layers {air_layers}: expected 1 .. {shape[0] // 2 - 1} for shape {shape}"
        )
    rng = np.random.default_rng(seed)
    cells = np.full(shape, FLUID, dtype=np.int8)
    solid = np.zeros(shape, dtype=bool)
    centres = np.stack(np.meshgrid(*[(np.arange(n) + 0.5) / n for n in shape], indexing="ij"))
    margin = air_layers / shape[0] + 0.1  # keep obstacles away from the free surface (first axis, low end)
    if kind in ("boxes", "spheres"):
        for _ in range(int(rng.integers(3, 9))):
            centre = rng.uniform(0.15, 0.85, len(shape))
            centre[0] = rng.uniform(margin + 0.1, 0.85)
            if kind == "boxes":
                half = rng.uniform(0.04, 0.15, len(shape))
                inside = np.all(
                    np.abs(centres - centre.reshape(-1, *[1] * len(shape)))
                    <= half.reshape(-1, *[1] * len(shape)),
                    axis=0,
                )
            else:
                radius = rng.uniform(0.05, 0.14)
                inside = ((centres - centre.reshape(-1, *[1] * len(shape))) ** 2).sum(axis=0) <= radius**2
            solid |= inside
    elif kind == "blobs":
        noise = rng.standard_normal(shape)
        smooth = ndimage.gaussian_filter(noise, sigma=max(shape) / 16, mode="wrap")
        solid = smooth > np.quantile(smooth, 0.8)
    solid &= centres[0] >= margin
    cells[solid] = SOLID
    cells[:air_layers] = AIR
    _seal_pockets(cells)
    return cells


def _seal_pockets(cells: np.ndarray) -> None:
    """Turn fluid regions that touch no air cell into solid (in place), so that ``A`` is definite."""
    labels, count = ndimage.label(cells == FLUID)
    if count == 0:
        return
    open_to_air = ndimage.binary_dilation(cells == AIR) & (labels > 0)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[open_to_air])] = True
    keep[0] = False
    sealed = (labels > 0) & ~keep[labels]
    if sealed.any():
        logger.debug("sealed %d fluid cells cut off from air", int(sealed.sum()))
    cells[sealed] = SOLID
