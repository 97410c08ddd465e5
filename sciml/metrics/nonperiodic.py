"""Sobolev norms of fields on boxes with walls (non-periodic axes), where the Fourier formula does not apply.

A non-periodic field's periodic extension jumps at the walls, so the spectral H^s formula would measure
that artificial jump (for ``u = x`` on ``[0, 1]`` the periodic H1 norm grows without bound with the
resolution). Here, instead:

* integer ``s >= 0``: quadrature of finite-difference derivatives,
  ``||u||^2_{H^s} = sum_{|a| <= s} alpha^(s-|a|) s! / ((s-|a|)! a_1! ... a_d!) * int |D^a u|^2 dx``,
  the multinomial weights of ``(alpha + |xi|^2)^s`` so that the value agrees with the Fourier definition
  for smooth fields (for ``s = 1``: ``alpha * L2 + ||grad u||^2``). Derivatives are second-order central
  differences inside, second-order one-sided at the walls (first derivative ``(-3 f_0 + 4 f_1 - f_2)/2h``,
  second ``(2 f_0 - 5 f_1 + 4 f_2 - f_3)/h^2``), periodic central differences on periodic axes; a
  derivative of order ``m`` along one axis is ``D2^(m // 2) D1^(m % 2)``. The integral is the trapezoid
  rule on vertex grids (walls are grid points) and the midpoint rule on cell-centred grids (a Riemann
  sum on periodic axes). ``s = 0`` is therefore the exact discrete L2 norm, and the first (second)
  derivatives are exact for polynomials of degree 2 (3).
* negative or fractional ``s``: an approximation, documented as such: the field is multiplied by a Tukey
  window along each non-periodic axis (flat in the middle, a cosine taper over ``taper/2`` of the box at
  each wall) and the periodic formula is applied to the windowed field, which vanishes smoothly at the
  walls, on the period ``n h`` (``L`` on cell grids, ``L + h`` on vertex grids). This is the exact
  H^s norm of the tapered field ``window * u``; content within ``taper/2`` of a wall is down-weighted,
  so it underestimates the norm of fields that live near the walls (it is best used for relative errors).

The periodic formula is never applied to a non-periodic axis without the window.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from functools import reduce
from itertools import product

import torch

from sciml.errors import ConfigError
from sciml.metrics._common import (
    box_lengths,
    grid_kinds,
    periodic_flags,
    real_field,
    sobolev_order,
    spatial_dims,
    to_trailing,
)
from sciml.metrics._fourier import check_options, root, spectral_norms


def _spacing(n: int, length: float, periodic: bool, grid: str) -> float:
    if periodic or grid == "cell":
        return length / n
    if n < 2:
        raise ConfigError("a vertex grid on a non-periodic axis needs at least 2 points")
    return length / (n - 1)


def _quadrature(n: int, length: float, periodic: bool, grid: str) -> torch.Tensor:
    """1D quadrature weights (float64): Riemann on periodic axes, midpoint on cells, trapezoid on vertices."""
    h = _spacing(n, length, periodic, grid)
    q = torch.full((n,), h, dtype=torch.float64)
    if not periodic and grid == "vertex":
        q[0] = q[-1] = 0.5 * h
    return q


def _outer(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    out = vectors[0]
    for v in vectors[1:]:
        out = out.unsqueeze(-1) * v
    return out


def _d1(f: torch.Tensor, axis: int, h: float, periodic: bool) -> torch.Tensor:
    """First derivative along ``axis``: central inside, second-order one-sided at walls."""
    if periodic:
        return (torch.roll(f, -1, axis) - torch.roll(f, 1, axis)) / (2 * h)
    n = f.shape[axis]
    if n < 3:
        raise ConfigError(f"a first derivative on a non-periodic axis needs >= 3 points, got {n}")

    def at(i: int, length: int = 1) -> torch.Tensor:
        return f.narrow(axis, i, length)

    first = -3 * at(0) + 4 * at(1) - at(2)
    inner = at(2, n - 2) - at(0, n - 2)
    last = 3 * at(n - 1) - 4 * at(n - 2) + at(n - 3)
    return torch.cat([first, inner, last], dim=axis) / (2 * h)


def _d2(f: torch.Tensor, axis: int, h: float, periodic: bool) -> torch.Tensor:
    """Second derivative along ``axis``: 3-point central inside, 4-point one-sided at walls."""
    if periodic:
        return (torch.roll(f, -1, axis) - 2 * f + torch.roll(f, 1, axis)) / (h * h)
    n = f.shape[axis]
    if n < 4:
        raise ConfigError(f"a second derivative on a non-periodic axis needs >= 4 points, got {n}")

    def at(i: int, length: int = 1) -> torch.Tensor:
        return f.narrow(axis, i, length)

    first = 2 * at(0) - 5 * at(1) + 4 * at(2) - at(3)
    inner = at(2, n - 2) - 2 * at(1, n - 2) + at(0, n - 2)
    last = 2 * at(n - 1) - 5 * at(n - 2) + 4 * at(n - 3) - at(n - 4)
    return torch.cat([first, inner, last], dim=axis) / (h * h)


def _derivative(f: torch.Tensor, axis: int, order: int, h: float, periodic: bool) -> torch.Tensor:
    """``D^order`` along one axis as ``D2^(order // 2) D1^(order % 2)``."""
    for _ in range(order // 2):
        f = _d2(f, axis, h, periodic)
    if order % 2:
        f = _d1(f, axis, h, periodic)
    return f


def tukey_window(n: int, taper: float, grid: str) -> torch.Tensor:
    """Tukey window (float64) at the ``n`` grid points of a non-periodic axis.

    With ``t`` the position in ``[0, 1]`` (``i/(n-1)`` on vertices, ``(i+1/2)/n`` on cells):
    ``w = (1 - cos(2 pi t / taper)) / 2`` for ``t < taper/2``, mirrored at the other wall, 1 in between.
    """
    if grid == "vertex":
        t = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    else:
        t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    edge = torch.minimum(t, 1.0 - t)
    ramp = 0.5 * (1.0 - torch.cos(2.0 * math.pi * edge / taper))
    return torch.where(edge < 0.5 * taper, ramp, torch.ones_like(t))


def _fd_sq_norms(
    u: torch.Tensor,
    order: int,
    lengths: tuple[float, ...],
    periodic: tuple[bool, ...],
    grid: tuple[str, ...],
    seminorm: bool,
    alpha: float,
) -> torch.Tensor:
    m = len(lengths)
    sizes = tuple(u.shape[-m:])
    axes = tuple(range(u.ndim - m, u.ndim))
    h = [_spacing(n, L, p, g) for n, L, p, g in zip(sizes, lengths, periodic, grid, strict=True)]
    quad = _outer(
        [_quadrature(n, L, p, g) for n, L, p, g in zip(sizes, lengths, periodic, grid, strict=True)]
    )
    quad = quad.to(device=u.device, dtype=u.dtype)

    def integral(f: torch.Tensor) -> torch.Tensor:
        return torch.tensordot(f.square(), quad, dims=m)

    if seminorm and order == 0:  # the L2 norm of the fluctuation (the mean mode dropped, as in Fourier)
        mean = torch.tensordot(u, quad, dims=m) / quad.sum()
        return integral(u - mean.reshape(mean.shape + (1,) * m))

    cache: dict[tuple[int, ...], torch.Tensor] = {(0,) * m: u}

    def derivative(a: tuple[int, ...]) -> torch.Tensor:
        if a not in cache:
            j = max(i for i, aj in enumerate(a) if aj)  # peel the last differentiated axis
            parent = a[:j] + (0,) * (m - j)
            cache[a] = _derivative(derivative(parent), axes[j], a[j], h[j], periodic[j])
        return cache[a]

    terms = []
    for a in product(range(order + 1), repeat=m):
        size = sum(a)
        if size > order or (seminorm and size != order):
            continue
        coef = alpha ** (order - size) * math.factorial(order)
        coef /= math.factorial(order - size) * math.prod(math.factorial(aj) for aj in a)
        terms.append(coef * integral(derivative(a)))
    return reduce(operator.add, terms)


def _windowed_norms(
    u: torch.Tensor,
    s: float,
    lengths: tuple[float, ...],
    periodic: tuple[bool, ...],
    grid: tuple[str, ...],
    seminorm: bool,
    cutoff: float | None,
    alpha: float,
    taper: float,
) -> torch.Tensor:
    m = len(lengths)
    sizes = tuple(u.shape[-m:])
    windows, periods = [], []
    for n, L, p, g in zip(sizes, lengths, periodic, grid, strict=True):
        windows.append(torch.ones(n, dtype=torch.float64) if p else tukey_window(n, taper, g))
        periods.append(L if p else n * _spacing(n, L, p, g))
    window = _outer(windows).to(device=u.device, dtype=u.dtype)
    dims = tuple(range(u.ndim - m, u.ndim))
    return spectral_norms(u * window, s, tuple(periods), dims, seminorm, cutoff, alpha)


def nonperiodic_norms(
    u: torch.Tensor,
    s: float,
    lengths: tuple[float, ...],
    dims: tuple[int, ...],
    periodic: tuple[bool, ...],
    grid: tuple[str, ...],
    seminorm: bool = False,
    cutoff: float | None = None,
    alpha: float = 1.0,
    taper: float = 0.25,
) -> torch.Tensor:
    """H^s norms over ``dims`` of a field with walls (validated arguments); see the module doc."""
    u = to_trailing(u, dims)
    if float(s).is_integer() and s >= 0:
        if cutoff is not None:
            raise ConfigError(
                "cutoff selects Fourier modes; the finite-difference norm of a non-periodic field "
                f"(integer s={s:g}) has none"
            )
        return root(_fd_sq_norms(u, int(s), lengths, periodic, grid, seminorm, alpha))
    if not (0.0 < taper <= 1.0):
        raise ConfigError(f"taper must be in (0, 1], got {taper}")
    return _windowed_norms(u, s, lengths, periodic, grid, seminorm, cutoff, alpha, taper)


def sobolev_norm_nonperiodic(
    u: torch.Tensor,
    s: float,
    lengths: float | Sequence[float] | None = None,
    dims: int | Sequence[int] | None = None,
    seminorm: bool = False,
    cutoff: float | None = None,
    squared: bool = False,
    *,
    periodic: bool | Sequence[bool] = False,
    grid: str | Sequence[str] = "vertex",
    alpha: float = 1.0,
    taper: float = 0.25,
) -> torch.Tensor:
    """H^s norm of a field on a box with walls, one value per index of the non-spatial axes.

    Integer ``s >= 0`` (exact discrete definitions):

        ||u||^2_{H^s} = sum_{|a| <= s} alpha^(s-|a|) s! / ((s-|a|)! a!) * Q(|D^a u|^2),

    ``D^a`` second-order finite differences (one-sided at walls), ``Q`` the trapezoid rule on
    ``grid="vertex"`` axes (points ``i L/(n-1)``), the midpoint rule on ``grid="cell"`` axes (points
    ``(i+1/2) L/n``), the Riemann sum on periodic axes. ``s = 0`` gives ``Q(u^2)``; ``s = 1`` gives
    ``alpha Q(u^2) + Q(|grad u|^2)``. The seminorm keeps only ``|a| = s`` (for ``s = 0``: the L2 norm of
    ``u`` minus its mean).

    Negative or fractional ``s`` (an approximation): the periodic formula applied to the field times a
    Tukey window along the non-periodic axes (the norm of the tapered field; near-wall content is
    down-weighted); ``cutoff`` is honoured there only.

    Args:
        u: real field ``[..., *grid]``.
        s: Sobolev index (any real number).
        lengths: box lengths (``None``: 1.0 each); on a vertex axis the distance between the wall points.
        dims: spatial axes (default: the last two).
        seminorm: drop the lower-order terms.
        cutoff: Fourier cutoff ``|k| <= cutoff`` (windowed variant only).
        squared: return the squared norm.
        periodic: which spatial axes are periodic (one bool, or one per axis); default none.
        grid: ``"vertex"`` or ``"cell"`` (one, or one per axis).
        alpha: the shift in ``(alpha + |xi|^2)^s``.
        taper: fraction of each non-periodic axis covered by the window's two cosine ramps.
    """
    u = real_field(u)
    s = sobolev_order(s)
    dims_t = spatial_dims(u.ndim, dims)
    m = len(dims_t)
    cutoff, alpha = check_options(cutoff, alpha)
    norms = nonperiodic_norms(
        u,
        s,
        box_lengths(lengths, m),
        dims_t,
        periodic_flags(periodic, m),
        grid_kinds(grid, m),
        seminorm,
        cutoff,
        alpha,
        float(taper),
    )
    return norms.square() if squared else norms
