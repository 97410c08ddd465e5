"""Argument checks shared by the Chebyshev-Tucker builders and the Newton-kernel helpers.

Each returns the checked value in the form the algorithms use, or raises one
:class:`~sciml.errors.ConfigError` (a bad setting) or :class:`~sciml.errors.SolverError` (bad data) naming the
argument, its value and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sciml.errors import ConfigError, SolverError
from sciml.solvers.tensor_backend import is_torch, to_numpy

__all__ = ["check_box", "check_degrees", "check_finite", "check_tol"]


def check_tol(tol: float) -> float:
    """A tolerance in (0, 1), as a float."""
    if not (isinstance(tol, (int, float, np.floating)) and 0.0 < float(tol) < 1.0):
        raise ConfigError(f"tolerance must be a number in (0, 1), got {tol!r}")
    return float(tol)


def check_box(box: Sequence[Sequence[float]] | np.ndarray, d: int | None = None) -> np.ndarray:
    """``box`` as a float64 ``(d, 2)`` array of finite ``(a_i, b_i)`` with ``a_i < b_i`` (``d`` sides if
    given)."""
    try:
        arr = np.asarray(to_numpy(box) if is_torch(box) else box, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"box must be a sequence of (a, b) pairs, got {box!r}") from exc
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 1:
        raise ConfigError(f"box must have shape (d, 2) of (a_i, b_i) pairs, got shape {arr.shape}")
    if d is not None and arr.shape[0] != d:
        raise ConfigError(f"box has {arr.shape[0]} sides but the data has dimension {d}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"box bounds must be finite, got {arr.tolist()}")
    width = arr[:, 1] - arr[:, 0]
    if np.any(width <= 0):
        bad = int(np.argmin(width))
        raise ConfigError(
            f"box side {bad} is [{arr[bad, 0]}, {arr[bad, 1]}] of width {width[bad]}; "
            "expected lo < hi (positive width)"
        )
    return arr


def check_degrees(degree: int | Sequence[int], d: int) -> tuple[int, ...]:
    """One Chebyshev degree ``>= 1`` per dimension (an int is used for every dimension)."""
    degs = (degree,) * d if isinstance(degree, (int, np.integer)) else tuple(degree)
    if len(degs) != d:
        raise ConfigError(f"degree must be an int or {d} ints (one per dimension), got {degree!r}")
    for k in degs:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"each Chebyshev degree must be an integer >= 1, got {degree!r}")
    return tuple(int(k) for k in degs)


def check_finite(values: Any, what: str) -> None:
    """Raise :class:`SolverError` naming ``what``, the first bad index and the count unless every entry of
    ``values`` (numpy or torch) is finite."""
    if is_torch(values):
        import torch

        if bool(torch.isfinite(values).all()):
            return
        values = to_numpy(values)
    elif np.all(np.isfinite(values)):
        return
    bad = np.argwhere(~np.isfinite(values))[0]
    raise SolverError(
        f"{what} must be finite; found {values[tuple(bad)]} at index {tuple(int(i) for i in bad)} "
        f"({int(np.sum(~np.isfinite(values)))} non-finite entries)"
    )
