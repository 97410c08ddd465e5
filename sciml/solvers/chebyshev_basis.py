r"""Level 1 of the Chebyshev-Tucker format: tensor-product Chebyshev interpolation on a box.

A function on :math:`\prod_i [a_i, b_i]` is sampled at the Chebyshev points of the second kind
:math:`x_j = \cos(\pi j / n)`, :math:`j = 0..n`, mapped affinely to each side (:func:`chebyshev_points`), and
its interpolant is written as

.. math:: f(x) \approx \sum_{i_1 \dots i_d} C_{i_1 \dots i_d}\, T_{i_1}(t_1) \cdots T_{i_d}(t_d),
          \qquad t_k = \frac{2 x_k - a_k - b_k}{b_k - a_k},

with the coefficients computed per axis by a DCT-I: :math:`c = \mathrm{DCT\text{-}I}(v)/n`, then the first
and the last coefficient halved (:func:`coefficients_from_values`). Also here: the Chebyshev-Vandermonde
matrix (evaluation), the derivative recurrence, the integrals :math:`\int_{-1}^1 T_k` and the
:math:`L^2(-1, 1)` Gram matrix of :math:`T_0..T_n` with its Cholesky transforms (the ``norm="l2"`` option).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.fft
import scipy.linalg
import tensorly as tl

from sciml.errors import ConfigError, SolverError
from sciml.solvers.tensor_backend import Backend, backend_of, is_torch, resolve_backend

__all__ = [
    "DENSE_DCT_MAX",
    "chebyshev_points",
    "chebyshev_vandermonde",
    "coefficients_from_values",
    "dct_coefficients",
    "dct_matrix",
    "derivative_coefficients",
    "integral_weights",
    "l2_gram",
    "l2_transforms",
    "vandermonde",
]


def chebyshev_points(n: int, a: float = -1.0, b: float = 1.0) -> np.ndarray:
    r"""The ``n + 1`` Chebyshev points of the second kind on ``[a, b]``:
    :math:`x_j = \frac{a+b}{2} + \frac{b-a}{2} \cos(\pi j / n)`, :math:`j = 0..n`
    (descending, from ``b`` to ``a``)."""
    if n < 1:
        raise ConfigError(f"Chebyshev degree must be >= 1, got {n}")
    t = np.cos(np.pi * np.arange(n + 1) / n)
    t[np.abs(t) < 1e-15] = 0.0
    return 0.5 * (a + b) + 0.5 * (b - a) * t


def _dct1(c: Any, axis: int) -> Any:
    r"""Unnormalised DCT-I along ``axis``: :math:`y_k = v_0 + (-1)^k v_n + 2\sum_{j=1}^{n-1} v_j
    \cos(\pi j k / n)`; on torch the real part of the FFT of the even extension
    :math:`(v_0, .., v_n, v_{n-1}, .., v_1)` (length :math:`2n`)."""
    if not is_torch(c):
        return scipy.fft.dct(c, type=1, axis=axis)
    import torch

    n = c.shape[axis] - 1
    ext = torch.cat([c, torch.flip(torch.narrow(c, axis, 1, n - 1), dims=(axis,))], dim=axis)
    return torch.narrow(torch.fft.rfft(ext, dim=axis).real, axis, 0, n + 1)


def dct_coefficients(values: Any, axes: Sequence[int] | None, be: Backend) -> Any:
    """:func:`coefficients_from_values` along ``axes`` (default all) in the backend ``be``: ``scipy.fft.dctn``
    on numpy, the FFT of the even extension on torch."""
    c = be.asarray(values)
    axes = tuple(range(c.ndim)) if axes is None else tuple(axes)
    for ax in axes:
        if c.shape[ax] < 2:
            raise SolverError(
                f"need at least 2 values along axis {ax} for Chebyshev coefficients, got {c.shape[ax]}"
            )
    if be.name == "numpy":
        c = scipy.fft.dctn(c, type=1, axes=axes)
    else:
        for ax in axes:
            c = _dct1(c, ax)
    for ax in axes:
        n = c.shape[ax] - 1
        edge = np.full(n + 1, 1.0 / n)
        edge[[0, n]] = 0.5 / n
        shape = [1] * c.ndim
        shape[ax] = n + 1
        c = c * be.asarray(edge.reshape(shape))
    return c


def coefficients_from_values(values: Any, axes: Sequence[int] | None = None) -> Any:
    r"""Chebyshev coefficients from values at the second-kind points along ``axes`` (default all) by DCT-I.

    For values :math:`v_j = p(\cos(\pi j/n))` of :math:`p = \sum_k c_k T_k`:
    :math:`c_k = \frac{1}{n}\mathrm{DCT\text{-}I}(v)_k` for :math:`0 < k < n` and half of it for
    :math:`k = 0, n` (chebfun's ``vals2coeffs``; paper, Sec. 2). Numpy input gives float64 numpy output; a
    floating torch tensor keeps its dtype and device (FFT of the even extension).
    """
    if is_torch(values) and values.is_floating_point():
        be = backend_of(values)
    else:
        be = resolve_backend(None, None, None, values)
    return dct_coefficients(values, axes, be)


# up to this degree the builders apply the DCT-I as a dense matrix (one BLAS product per axis beats the FFT)
DENSE_DCT_MAX = 128


@lru_cache(maxsize=16)
def dct_matrix(n: int) -> np.ndarray:
    """(n+1) x (n+1) matrix of :func:`coefficients_from_values` along one axis: ``c = D @ v``."""
    return coefficients_from_values(np.eye(n + 1), axes=(0,))


def chebyshev_vandermonde(t: np.ndarray, degree: int) -> np.ndarray:
    r"""Matrix :math:`[T_k(t_m)]_{m,k}` for :math:`k = 0..\text{degree}` by the three-term recurrence
    :math:`T_{k+1} = 2 t T_k - T_{k-1}`; ``t`` in the reference interval [-1, 1] (numpy or torch)."""
    if is_torch(t):
        with backend_of(t).context():
            return vandermonde(t.reshape(-1), degree)
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    with backend_of(t).context():
        return vandermonde(t, degree)


def vandermonde(t: Any, degree: int) -> Any:
    """Backend-generic Chebyshev-Vandermonde matrix (call inside the backend's context)."""
    cols = [tl.ones(tl.shape(t), **tl.context(t)), t]
    for _ in range(2, degree + 1):
        cols.append(2.0 * t * cols[-1] - cols[-2])
    return tl.stack(cols[: degree + 1], axis=1)


def derivative_coefficients(c: np.ndarray, scale: float) -> np.ndarray:
    r"""Coefficients (rows) of :math:`d/dx` of a Chebyshev series on an interval with ``scale = 2/(b-a)``:
    :math:`c'_{k-1} = c'_{k+1} + 2 k c_k` for :math:`k = n..1`, then :math:`c'_0 \mathrel{/}= 2`."""
    n = c.shape[0] - 1
    if n == 0:
        return np.zeros_like(c)
    out = np.zeros((n + 2, *c.shape[1:]))
    for k in range(n, 0, -1):
        out[k - 1] = out[k + 1] + 2.0 * k * c[k]
    out[0] *= 0.5
    return out[:n] * scale


def integral_weights(n: int) -> np.ndarray:
    r""":math:`\int_{-1}^1 T_k = 2/(1-k^2)` for even ``k``, 0 for odd (Clenshaw-Curtis weights in coefficient
    space)."""
    k = np.arange(n + 1)
    w = np.zeros(n + 1)
    even = k % 2 == 0
    w[even] = 2.0 / (1.0 - k[even] ** 2)
    return w


def l2_gram(n: int) -> np.ndarray:
    r"""Gram matrix of :math:`T_0..T_n` in :math:`L^2(-1, 1)`:
    :math:`M_{ij} = \int_{-1}^1 T_i T_j = \tfrac12 (w_{i+j} + w_{|i-j|})`, :math:`w_k = \int_{-1}^1 T_k`
    (from :math:`T_i T_j = (T_{i+j} + T_{|i-j|})/2`)."""
    w = integral_weights(2 * n)
    i = np.arange(n + 1)
    return 0.5 * (w[i[:, None] + i[None, :]] + w[np.abs(i[:, None] - i[None, :])])


@lru_cache(maxsize=16)
def l2_transforms(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(L^T, L^{-T})`` with ``L L^T = l2_gram(n)``: coefficients -> L2-orthonormal coordinates and back."""
    lower = np.linalg.cholesky(l2_gram(n))
    return lower.T, scipy.linalg.solve_triangular(lower.T, np.eye(n + 1), lower=False)
