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
  ``logdet`` clamps eigenvalues at 1e-7, hence computed here);
* a Kronecker sum :math:`\sum_d I \otimes M_d \otimes I + cI` is inverted by fast diagonalisation
  (:class:`KroneckerSumSolver`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from sciml.errors import SolverError

__all__ = [
    "KroneckerSumSolver",
    "kron_logdet",
    "kron_solve",
    "kron_whiten",
    "mode_apply",
    "mode_dot",
    "solve_upper",
]


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


class KroneckerSumSolver:
    r"""Solves :math:`\big(\sum_d I \otimes \dots \otimes M_d \otimes \dots \otimes I + c\,I\big)\,
    \mathrm{vec}(\mathcal X) = \mathrm{vec}(\mathcal B)` (and the transposed system), with
    :math:`\mathcal X \times_d M_d` the mode product, by the method that is stable for the dimension:

    * one dimension: an LU factorisation of :math:`M_1 + c I`;
    * two: the Bartels-Stewart algorithm for the Sylvester equation
      :math:`(M_1 + \tfrac c2 I) X + X (M_2 + \tfrac c2 I)^\top = B` on the real Schur forms (orthogonal
      transformations only, so non-normal :math:`M_d` such as spectral differentiation matrices stay accurate;
      LAPACK ``trsyl`` through SciPy, on the CPU), :math:`O(N_1 N_2 (N_1 + N_2))` per solve;
    * three or more: fast diagonalisation, :math:`M_d = P_d \Lambda_d P_d^{-1}` (complex eigen-decomposition),
      :math:`\mathcal X = \big((\mathcal B \times_d P_d^{-1}) / (\textstyle\sum_d \lambda_d + c)\big)
      \times_d P_d`, :math:`O(N \sum_d N_d)` per solve; accurate when the eigenvectors are well conditioned.
      Eigenvalue sums smaller than ``floor`` times the largest are raised to that size (a singular sum has
      no inverse; the solver is then a bounded approximation, as a preconditioner needs).
    """

    def __init__(self, matrices: Sequence[Tensor], shift: float = 0.0, floor: float = 1e-12) -> None:
        real = matrices[0].dtype
        self.dims = len(matrices)
        self.complex_dtype = torch.complex128 if real == torch.float64 else torch.complex64
        if self.dims == 1:
            eye = torch.eye(matrices[0].shape[0], dtype=real, device=matrices[0].device)
            self.lu = torch.linalg.lu_factor(matrices[0] + shift * eye)
            return
        if self.dims == 2:
            import scipy.linalg

            self.schur = []
            for mat in matrices:
                shifted = mat.detach().cpu().double().numpy() + 0.5 * shift * np.eye(mat.shape[0])
                self.schur.append(scipy.linalg.schur(shifted, output="real"))
            return
        self.vectors: list[Tensor] = []
        self.inverse_vectors: list[Tensor] = []
        total: Tensor | None = None
        for mode, mat in enumerate(matrices):
            lam, vec = torch.linalg.eig(mat)
            self.vectors.append(vec.to(self.complex_dtype))
            self.inverse_vectors.append(torch.linalg.inv(vec).to(self.complex_dtype))
            lam = lam.to(self.complex_dtype).reshape([-1 if i == mode else 1 for i in range(self.dims)])
            total = lam + shift if total is None else total + lam
        assert total is not None
        largest = float(total.abs().max()) if total.numel() else 0.0
        limit = floor * largest if largest > 0 else 1.0
        total = torch.where(total.abs() < limit, torch.full_like(total, limit), total)
        self.inverse_eigenvalues = 1.0 / total

    def _sylvester(self, rhs: Tensor, transpose: bool) -> Tensor:
        r"""Bartels-Stewart: :math:`A = Q_1 T_1 Q_1^\top`, :math:`B = Q_2 T_2 Q_2^\top` (real Schur), then
        :math:`T_1 Y + Y T_2^\top = Q_1^\top C Q_2` by LAPACK ``trsyl`` and :math:`X = Q_1 Y Q_2^\top` (the
        transposed system: :math:`T_1^\top`, :math:`T_2`)."""
        from scipy.linalg.lapack import dtrsyl

        (t1, q1), (t2, q2) = self.schur
        c = q1.T @ rhs.detach().cpu().double().numpy() @ q2
        op1, op2 = ("T", "N") if transpose else ("N", "T")
        y, scale, info = dtrsyl(t1, t2, c, trana=op1, tranb=op2, isgn=1)
        if info < 0:
            raise SolverError(f"LAPACK trsyl rejected argument {-info} of the Sylvester solve")
        x = q1 @ (y / scale) @ q2.T  # info == 1: close eigenvalues were perturbed (fine for a preconditioner)
        return torch.as_tensor(x, dtype=rhs.dtype, device=rhs.device)

    def solve(self, rhs: Tensor, transpose: bool = False) -> Tensor:
        r""":math:`\mathcal X` for the right-hand side ``rhs`` (real, of shape ``(N_1, ..., N_D)``); with
        ``transpose`` the transposed system."""
        if self.dims == 1:
            return torch.linalg.lu_solve(*self.lu, rhs.reshape(-1, 1), adjoint=transpose).reshape(rhs.shape)
        if self.dims == 2:
            return self._sylvester(rhs, transpose)
        y = rhs.to(self.complex_dtype)
        first = [v.transpose(0, 1) for v in self.vectors] if transpose else self.inverse_vectors
        last = [v.transpose(0, 1) for v in self.inverse_vectors] if transpose else self.vectors
        for mode, mat in enumerate(first):
            y = mode_dot(y, mat, mode)
        y = y * self.inverse_eigenvalues
        for mode, mat in enumerate(last):
            y = mode_dot(y, mat, mode)
        return y.real.to(rhs.dtype)
