"""Sobolev H^s norms (any real s) and errors of fields on grids; metadata-aware dispatch.

On a periodic box ``Omega = [0, L_1) x ... x [0, L_d)`` sampled at ``N = n_1 ... n_d`` points, with
Fourier coefficients ``c_k = FFT(u)_k / N`` and ``kappa_k = (2 pi k_j / L_j)_j``,

    ||u||^2_{H^s} = |Omega| * sum_k (alpha + |kappa_k|^2)^s |c_k|^2            (alpha = 1 by default)
    |u|^2_{H^s}   = |Omega| * sum_{k != 0} |kappa_k|^(2s) |c_k|^2               (seminorm)

computed with one real FFT (see :mod:`sciml.metrics._fourier`). ``s = 0`` is the discrete L2 norm
``mean(u^2) |Omega|``; ``s = 1`` adds ``||grad u||^2``; ``s = -1`` is the dual norm used as a smoothing,
large-scale-weighted error. ``cutoff`` keeps only modes with integer wavenumber magnitude ``|k| <= cutoff``.

At the Nyquist index of an even axis the grid cannot tell ``cos(pi n x / L)`` from its alias: that
mode's coefficient is 1 (not 1/2 + 1/2), so its norm is ``(alpha + (pi n / L)^2)^s |Omega|``, the exact
norm of the grid function (twice the continuous value), while ``sin(pi n x / L)`` vanishes on the grid.

Non-periodic axes never go through the periodic formula: see :mod:`sciml.metrics.nonperiodic`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from sciml.errors import ConfigError
from sciml.metrics._common import (
    box_lengths,
    common_pair,
    grid_kinds,
    periodic_flags,
    real_field,
    sobolev_order,
    spatial_dims,
)
from sciml.metrics._fourier import check_options, spectral_norms, spectral_pair_norms
from sciml.metrics.nonperiodic import nonperiodic_norms

logger = logging.getLogger(__name__)


class GridMetadata(Protocol):
    """What the metrics read from a dataset's metadata (``sciml.datasets.DatasetMetadata`` fits).

    Only ``periodic`` and ``domain_lengths`` are required; ``spatial_dims`` and ``coords`` (when present)
    tell vertex grids from cell-centred ones on non-periodic axes.
    """

    periodic: Sequence[bool]
    domain_lengths: Sequence[float]


def sobolev_norm(
    u: torch.Tensor,
    s: float,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    seminorm: bool = False,
    cutoff: float | None = None,
    squared: bool = False,
    *,
    periodic: bool | Sequence[bool] = True,
    alpha: float = 1.0,
    grid: str | Sequence[str] = "vertex",
    taper: float = 0.25,
) -> torch.Tensor:
    """H^s norm of ``u`` over its spatial axes: one value per index of the other axes.

    Periodic (default): ``||u||^2_{H^s} = |Omega| sum_k (alpha + |2 pi k / L|^2)^s |c_k|^2`` with
    ``c_k = rfftn(u)_k / N`` (half-spectrum columns weighted by their multiplicity); seminorm:
    ``|Omega| sum_{k != 0} |2 pi k / L|^(2s) |c_k|^2``; ``cutoff``: only ``|k| <= cutoff``.
    With any axis non-periodic, :func:`sciml.metrics.nonperiodic.sobolev_norm_nonperiodic` is used
    (finite differences for integer ``s >= 0``, a windowed spectral approximation otherwise).

    Args:
        u: real field ``[..., *grid]`` (float32/float64, any device; differentiable).
        s: Sobolev index, any real number (negative too).
        lengths: box lengths (one number or one per spatial axis; default 1.0).
        dims: spatial axes (default: the last two).
        seminorm: homogeneous weight ``|kappa|^(2s)``, mean mode dropped.
        cutoff: keep only modes with integer wavenumber magnitude ``|k| <= cutoff``.
        squared: return ``||u||^2`` instead of ``||u||``.
        periodic: periodicity of the spatial axes (one bool or one per axis).
        alpha: the shift in ``(alpha + |kappa|^2)^s`` (1 is the standard norm).
        grid: non-periodic axes only, ``"vertex"`` or ``"cell"``.
        taper: non-periodic, non-integer ``s`` only: the window's taper fraction.

    Returns:
        ``u.shape`` without the spatial axes (e.g. ``[B, C]`` for ``[B, C, X, Y]``).
    """
    u = real_field(u)
    s = sobolev_order(s)
    dims_t = spatial_dims(u.ndim, dims)
    m = len(dims_t)
    lengths_t = box_lengths(lengths, m)
    flags = periodic_flags(periodic, m)
    cutoff, alpha = check_options(cutoff, alpha)
    if all(flags):
        norms = spectral_norms(u, s, lengths_t, dims_t, seminorm, cutoff, alpha)
    else:
        norms = nonperiodic_norms(
            u, s, lengths_t, dims_t, flags, grid_kinds(grid, m), seminorm, cutoff, alpha, float(taper)
        )
    return norms.square() if squared else norms


def pair_norms(
    pred: torch.Tensor,
    target: torch.Tensor,
    s: float,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    seminorm: bool = False,
    cutoff: float | None = None,
    *,
    periodic: bool | Sequence[bool] = True,
    alpha: float = 1.0,
    grid: str | Sequence[str] = "vertex",
    taper: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(||pred - target||_{H^s}, ||target||_{H^s})``, each one value per non-spatial index.

    The building block of the errors, rollout curves and losses (arguments as in :func:`sobolev_norm`).
    """
    pred, target = common_pair(pred, target)
    s = sobolev_order(s)
    dims_t = spatial_dims(pred.ndim, dims)
    m = len(dims_t)
    lengths_t = box_lengths(lengths, m)
    flags = periodic_flags(periodic, m)
    cutoff, alpha = check_options(cutoff, alpha)
    if all(flags):
        return spectral_pair_norms(pred, target, s, lengths_t, dims_t, seminorm, cutoff, alpha)
    both = torch.stack([pred - target, target])
    norms = nonperiodic_norms(
        both,
        s,
        lengths_t,
        tuple(d + 1 for d in dims_t),
        flags,
        grid_kinds(grid, m),
        seminorm,
        cutoff,
        alpha,
        float(taper),
    )
    return norms[0], norms[1]


def error_from_norms(
    diff: torch.Tensor, target: torch.Tensor, relative: bool, squared: bool, eps: float
) -> torch.Tensor:
    """``||d|| / (||t|| + eps)`` (relative) or ``||d||`` (absolute); squared: ``||d||^2 / (||t||^2 + eps)``.

    Takes the norms ``d = ||pred - target||`` and ``t = ||target||`` (see :func:`pair_norms`).
    """
    if squared:
        diff, target = diff.square(), target.square()
    if not relative:
        return diff
    return diff / (target + eps) if eps else diff / target


def sobolev_error(
    pred: torch.Tensor,
    target: torch.Tensor,
    s: float,
    relative: bool = True,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    seminorm: bool = False,
    cutoff: float | None = None,
    squared: bool = False,
    eps: float = 0.0,
    *,
    periodic: bool | Sequence[bool] = True,
    alpha: float = 1.0,
    grid: str | Sequence[str] = "vertex",
    taper: float = 0.25,
) -> torch.Tensor:
    """H^s error per sample and channel: ``||pred - target||_{H^s} / (||target||_{H^s} + eps)``.

    With ``relative=False`` the absolute ``||pred - target||_{H^s}``; with ``squared`` the squares
    (``||d||^2 / (||t||^2 + eps)``). Both norms come from one FFT each of ``pred - target`` and ``target``
    with one shared weight tensor. Other arguments as in :func:`sobolev_norm`. A zero target with
    ``eps = 0`` gives ``inf`` (or ``nan`` when the prediction is zero too).

    Returns:
        ``pred.shape`` without the spatial axes (e.g. ``[B, C]``).
    """
    diff, target_norm = pair_norms(
        pred,
        target,
        s,
        lengths,
        dims,
        seminorm,
        cutoff,
        periodic=periodic,
        alpha=alpha,
        grid=grid,
        taper=taper,
    )
    return error_from_norms(diff, target_norm, relative, squared, float(eps))


def relative_l2(
    pred: torch.Tensor,
    target: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Relative L2 error ``||pred - target||_{L2} / ||target||_{L2}`` per sample and channel (s = 0)."""
    return sobolev_error(pred, target, 0.0, True, lengths, dims, **kwargs)


def relative_h1(
    pred: torch.Tensor,
    target: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Relative H1 error ``||pred - target||_{H1} / ||target||_{H1}`` per sample and channel (s = 1)."""
    return sobolev_error(pred, target, 1.0, True, lengths, dims, **kwargs)


def relative_h_minus_1(
    pred: torch.Tensor,
    target: torch.Tensor,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Relative H^-1 error ``||pred - target||_{H^-1} / ||target||_{H^-1}`` per sample and channel."""
    return sobolev_error(pred, target, -1.0, True, lengths, dims, **kwargs)


def _infer_grid(metadata: Any, axis: int, length: float) -> str:
    """``"cell"`` when the coordinates of ``axis`` are cell centres covering ``length``, else vertex."""
    names = getattr(metadata, "spatial_dims", None)
    coords = getattr(metadata, "coords", None)
    if not names or not coords or axis >= len(names) or names[axis] not in coords:
        return "vertex"
    c = np.asarray(coords[names[axis]], dtype=np.float64).reshape(-1)
    if c.size < 2:
        return "vertex"
    dx = (c[-1] - c[0]) / (c.size - 1)
    if math.isclose(c.size * dx, length, rel_tol=1e-6):
        return "cell"
    if not math.isclose((c.size - 1) * dx, length, rel_tol=1e-6):
        logger.warning(
            "axis %s: coordinates span %g with %d points, domain length %g; taking a vertex grid",
            names[axis],
            c[-1] - c[0],
            c.size,
            length,
        )
    return "vertex"


def metadata_options(metadata: GridMetadata, ndim: int) -> dict[str, Any]:
    """``lengths``, ``dims``, ``periodic`` and ``grid`` keyword arguments for a field of ``ndim`` axes.

    The spatial axes are the last ``len(metadata.periodic)``; lengths come from
    ``metadata.domain_lengths``; on non-periodic axes the grid kind is read off ``metadata.coords``
    (cell centres when ``n * dx`` equals the length, vertices otherwise).
    """
    try:
        periodic = tuple(bool(p) for p in metadata.periodic)
        lengths = tuple(float(v) for v in metadata.domain_lengths)
    except AttributeError as exc:
        raise ConfigError(f"metadata needs 'periodic' and 'domain_lengths' attributes: {exc}") from None
    if not periodic:
        raise ConfigError("metadata.periodic is empty: cannot tell periodic from walled axes")
    if len(lengths) != len(periodic):
        raise ConfigError(
            f"metadata.domain_lengths {lengths} and metadata.periodic {periodic} differ in length"
        )
    m = len(periodic)
    if ndim < m:
        raise ConfigError(f"a field with {ndim} dims has no {m} trailing spatial dims")
    grid = tuple("vertex" if p else _infer_grid(metadata, i, lengths[i]) for i, p in enumerate(periodic))
    return {
        "lengths": box_lengths(lengths, m),
        "dims": tuple(range(ndim - m, ndim)),
        "periodic": periodic,
        "grid": grid,
    }


def sobolev_error_for(
    pred: torch.Tensor,
    target: torch.Tensor,
    s: float,
    metadata: GridMetadata,
    relative: bool = True,
    **kwargs: Any,
) -> torch.Tensor:
    """:func:`sobolev_error` with the geometry taken from a dataset's metadata.

    All axes periodic: the spectral formula on ``metadata.domain_lengths``. Any axis non-periodic
    (mixed or all walls): the non-periodic variant (finite differences for integer ``s >= 0``, the
    windowed approximation otherwise), periodic axes still treated as periodic. ``kwargs`` (e.g.
    ``seminorm``, ``squared``, ``eps``, ``grid``) go to :func:`sobolev_error` and override the metadata.
    """
    options = metadata_options(metadata, pred.ndim) | kwargs
    return sobolev_error(pred, target, s, relative, **options)
