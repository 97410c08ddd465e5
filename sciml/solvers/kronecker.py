r"""Multilinear algebra on tensor grids: mode products and Kronecker-structured solves (torch).

A tensor :math:`\mathcal U \in \mathbb R^{N_1 \times \dots \times N_D}` is the reshaped vector
:math:`\mathrm{vec}(\mathcal U)` (row-major), and a Kronecker product acts one mode at a time, so that no
:math:`N \times N` matrix (:math:`N = \prod_d N_d`) is ever formed:

* :math:`(M_1 \otimes \dots \otimes M_D)\,\mathrm{vec}(\mathcal U)
  = \mathrm{vec}(\mathcal U \times_1 M_1 \dots \times_D M_D)` (:func:`mode_dot` per mode);
* with :math:`K_d = L_d L_d^\top` (Cholesky),
  :math:`(K_1 \otimes \dots \otimes K_D)^{-1}\mathrm{vec}(\mathcal U)
  = \mathrm{vec}(\mathcal U \times_1 K_1^{-1} \dots \times_D K_D^{-1})` (:func:`kron_solve`), and the
  quadratic form :math:`\mathrm{vec}(\mathcal U)^\top (\otimes_d K_d)^{-1} \mathrm{vec}(\mathcal U)` is
  :math:`\|\mathcal U \times_1 L_1^{-1} \dots \times_D L_D^{-1}\|_F^2` (:func:`kron_whiten`);
* :math:`\log|K_1 \otimes \dots \otimes K_D| = \sum_d (N/N_d)\log|K_d|`,
  :math:`\log|K_d| = 2\sum_i \log (L_d)_{ii}` (:func:`kron_logdet`; ``linear_operator``'s Kronecker
  ``logdet`` clamps eigenvalues at 1e-7, hence computed here).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["kron_logdet", "kron_solve", "kron_whiten", "mode_apply", "mode_dot", "solve_upper"]


def mode_apply(tensor: Tensor, mode: int, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply ``fn`` to the mode-``mode`` unfolding ``(N_mode, prod of the others)`` and fold back.

    ``fn`` may change the length of the mode (``(n, r) -> (m, r)``).
    """
    moved = torch.movedim(tensor, mode, 0)
    shape = moved.shape
    out = fn(moved.reshape(shape[0], -1))
    return torch.movedim(out.reshape(out.shape[0], *shape[1:]), 0, mode)


def mode_dot(tensor: Tensor, matrix: Tensor, mode: int) -> Tensor:
    r"""Mode product :math:`\mathcal T \times_{mode} M`: contracts the matrix's columns with axis ``mode``."""
    if tensor.dim() == 1:
        return matrix @ tensor
    if mode == tensor.dim() - 1:
        return tensor @ matrix.transpose(-1, -2)
    return mode_apply(tensor, mode, lambda t: matrix @ t)


def solve_upper(upper: Tensor, rhs: Tensor) -> Tensor:
    """``upper^{-1} rhs`` for an upper-triangular matrix."""
    return torch.linalg.solve_triangular(upper, rhs, upper=True)


def kron_solve(chol_factors: Sequence[Tensor], tensor: Tensor) -> Tensor:
    r""":math:`\mathcal U \times_1 K_1^{-1} \dots \times_D K_D^{-1}` from the Cholesky factors :math:`L_d` of
    :math:`K_d`, i.e. :math:`(K_1 \otimes \dots \otimes K_D)^{-1}\mathrm{vec}(\mathcal U)` reshaped."""
    out = tensor
    for mode, chol in enumerate(chol_factors):
        out = mode_apply(out, mode, lambda t, c=chol: torch.cholesky_solve(t, c))
    return out


def kron_whiten(chol_factors: Sequence[Tensor], tensor: Tensor) -> Tensor:
    r""":math:`\mathcal U \times_1 L_1^{-1} \dots \times_D L_D^{-1}`; its squared norm is
    :math:`\mathrm{vec}(\mathcal U)^\top (\otimes_d K_d)^{-1} \mathrm{vec}(\mathcal U)`."""
    out = tensor
    for mode, chol in enumerate(chol_factors):
        out = mode_apply(out, mode, lambda t, c=chol: torch.linalg.solve_triangular(c, t, upper=False))
    return out


def kron_logdet(chol_factors: Sequence[Tensor]) -> Tensor:
    r""":math:`\log|K_1 \otimes \dots \otimes K_D| = \sum_d (N/N_d)\, 2\sum_i \log (L_d)_{ii}`."""
    sizes = [c.shape[0] for c in chol_factors]
    n = math.prod(sizes)
    return sum(
        (n // size) * 2.0 * torch.log(torch.diagonal(c)).sum()
        for size, c in zip(sizes, chol_factors, strict=True)
    )  # type: ignore[return-value]
