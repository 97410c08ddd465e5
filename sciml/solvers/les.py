r"""Eddy-viscosity closures for large-eddy simulation on the coarse grid of :class:`NavierStokes3D`.

Each closure gives an eddy viscosity :math:`\nu_t(\mathbf{x})`; the solver adds the explicit term
:math:`\nabla\cdot(2\nu_t\mathsf{S})` (dealiased and projected with the advection,
:class:`sciml.solvers.navier_stokes_3d.VelocityEquation3D`). With :math:`g_{ij} = \partial_j u_i`,
:math:`S_{ij} = (g_{ij} + g_{ji})/2` and :math:`|S| = \sqrt{2 S_{ij} S_{ij}}`, and the filter width
:math:`\Delta` = the grid spacing :math:`L/N`:

* :class:`Smagorinsky` (Smagorinsky 1963): :math:`\nu_t = (C_s\Delta)^2 |S|`.
* :class:`DynamicSmagorinsky` (Germano, Piomelli, Moin & Cabot, Phys. Fluids A 3, 1991; Lilly, Phys. Fluids
  A 4, 1992): :math:`\nu_t = C\Delta^2|S|` with :math:`C = C_s^2` from the Germano identity at a test filter
  of width :math:`\alpha\Delta` (:math:`\alpha = 2`, a sharp spectral cutoff at :math:`|k_i| < N/(2\alpha)`),
  by Lilly's least squares averaged over the homogeneous box:

  .. math::
      L_{ij} = \widehat{u_i u_j} - \hat u_i\hat u_j,\qquad
      M_{ij} = 2\Delta^2\big(\widehat{|S|S_{ij}} - \alpha^2|\hat S|\hat S_{ij}\big),\qquad
      C = \max\Big(0, \frac{\langle L_{ij} M_{ij}\rangle}{\langle M_{ij} M_{ij}\rangle}\Big).

  (The trace of :math:`L` drops out: :math:`M` is traceless.)
* :class:`WALE` (Nicoud & Ducros, Flow Turb. Combust. 62, 1999): with :math:`g^2 = g g` and the traceless
  symmetric part :math:`S^d_{ij} = \tfrac12(g^2_{ij} + g^2_{ji}) - \tfrac13\delta_{ij} g^2_{kk}`,

  .. math::
      \nu_t = (C_w\Delta)^2 \frac{(S^d_{ij}S^d_{ij})^{3/2}}{(S_{ij}S_{ij})^{5/2} + (S^d_{ij}S^d_{ij})^{5/4}},

  which vanishes for pure shear (where :math:`g^2 = 0`) and near walls.

Gradients come from :meth:`SpectralBox3D.gradient` (spectral derivatives). Everything is batched over the
leading axis and averaged per field.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from sciml.errors import SolverError
from sciml.solvers.navier_stokes_3d import SpectralBox3D

logger = logging.getLogger(__name__)

__all__ = [
    "CLOSURES",
    "WALE",
    "DynamicSmagorinsky",
    "Smagorinsky",
    "dynamic_coefficient",
    "make_closure",
    "smagorinsky_viscosity",
    "strain_magnitude",
    "strain_rate",
    "wale_viscosity",
]


def strain_rate(gradient: torch.Tensor) -> torch.Tensor:
    """``S_ij = (g_ij + g_ji) / 2`` of gradients ``[..., 3, 3, N, N, N]`` or ``[3, 3]``
    (``g[i, j] = d u_i / d x_j``)."""
    i, j = _pair_axes(gradient)
    return 0.5 * (gradient + gradient.transpose(i, j))


def _pair_axes(tensor: torch.Tensor) -> tuple[int, int]:
    """The two tensor axes of ``[..., 3, 3, *grid]`` (grid: 3 axes, or none for ``[..., 3, 3]``)."""
    grid = 0 if tensor.ndim == 2 else 3
    return tensor.ndim - grid - 2, tensor.ndim - grid - 1


def _contract(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a_ij b_ij`` of tensors ``[..., 3, 3, *grid]``."""
    i, j = _pair_axes(a)
    return (a * b).sum(dim=(i, j))


def strain_magnitude(strain: torch.Tensor) -> torch.Tensor:
    """``|S| = sqrt(2 S_ij S_ij)``."""
    return torch.sqrt(2.0 * _contract(strain, strain))


def smagorinsky_viscosity(gradient: torch.Tensor, delta: float, constant: float) -> torch.Tensor:
    """``(C_s Delta)^2 |S|`` of gradients ``[..., 3, 3, *grid]``."""
    return (constant * delta) ** 2 * strain_magnitude(strain_rate(gradient))


def wale_viscosity(gradient: torch.Tensor, delta: float, constant: float) -> torch.Tensor:
    """The WALE eddy viscosity (module docstring) of gradients ``[..., 3, 3, *grid]``."""
    i, j = _pair_axes(gradient)
    # g2_ij = g_ik g_kj over the tensor axes, pointwise on the grid
    g = gradient.movedim((i, j), (-2, -1))
    g2 = g @ g
    trace = torch.diagonal(g2, dim1=-2, dim2=-1).sum(-1)
    eye = torch.eye(3, dtype=g.dtype, device=g.device)
    traceless = 0.5 * (g2 + g2.transpose(-2, -1)) - eye * (trace[..., None, None] / 3.0)
    strain = 0.5 * (g + g.transpose(-2, -1))
    sd_sd = (traceless * traceless).sum(dim=(-2, -1))
    s_s = (strain * strain).sum(dim=(-2, -1))
    denominator = s_s**2.5 + sd_sd**1.25
    ratio = torch.where(denominator > 0, sd_sd**1.5 / denominator.clamp_min(torch.finfo(g.dtype).tiny), 0.0)
    return (constant * delta) ** 2 * ratio


def _test_filter(spectrum: torch.Tensor, box: SpectralBox3D, ratio: float) -> torch.Tensor:
    """Sharp spectral test filter of width ``ratio * Delta``: keeps ``|k_i| < N / (2 ratio)``."""
    n = box.resolution
    integer = torch.fft.fftfreq(n, d=1.0 / n, device=spectrum.device, dtype=torch.float64).abs()
    keep = (2 * ratio * integer < n).to(spectrum.real.dtype)
    m = n // 2 + 1
    mask = keep.view(n, 1, 1) * keep.view(1, n, 1) * keep[:m].view(1, 1, m)
    return spectrum * mask


def dynamic_coefficient(
    velocity_hat: torch.Tensor, gradient: torch.Tensor, box: SpectralBox3D, test_filter_ratio: float = 2.0
) -> torch.Tensor:
    r"""Germano-Lilly coefficient :math:`C = C_s^2` per field ``[B]`` (module docstring), clipped at 0.

    Args:
        velocity_hat: velocity spectra ``[B, 3, N, N, N//2+1]``.
        gradient: their gradient on the grid ``[B, 3, 3, N, N, N]``.
        box: the grid's spectral operators.
        test_filter_ratio: test-filter width over grid-filter width :math:`\alpha`.
    """
    delta = box.spacing
    u = box.to_physical(velocity_hat)
    u_test = box.to_physical(_test_filter(velocity_hat, box, test_filter_ratio))
    strain = 0.5 * (gradient + gradient.transpose(1, 2))
    magnitude = strain_magnitude(strain)
    gradient_test = box.gradient(_test_filter(velocity_hat, box, test_filter_ratio))
    strain_test = 0.5 * (gradient_test + gradient_test.transpose(1, 2))
    magnitude_test = strain_magnitude(strain_test)

    def filtered(field: torch.Tensor) -> torch.Tensor:
        return box.to_physical(_test_filter(box.to_spectral(field), box, test_filter_ratio))

    products = u[:, :, None] * u[:, None, :]
    leonard = filtered(products) - u_test[:, :, None] * u_test[:, None, :]
    model = (
        2.0
        * delta**2
        * (
            filtered(magnitude[:, None, None] * strain)
            - test_filter_ratio**2 * magnitude_test[:, None, None] * strain_test
        )
    )
    numerator = (leonard * model).sum(dim=(1, 2)).mean(dim=(-3, -2, -1))
    denominator = (model * model).sum(dim=(1, 2)).mean(dim=(-3, -2, -1))
    coefficient = torch.where(
        denominator > 0, numerator / denominator.clamp_min(torch.finfo(u.dtype).tiny), 0.0
    )
    return coefficient.clamp_min(0.0)


@dataclass
class Smagorinsky:
    """Constant-coefficient Smagorinsky closure, ``nu_t = (C_s Delta)^2 |S|``, Delta = grid spacing."""

    constant: float = 0.17

    def __post_init__(self) -> None:
        if not self.constant >= 0:
            raise SolverError(f"Smagorinsky: constant must be >= 0, got {self.constant}")

    def viscosity(
        self, velocity_hat: torch.Tensor, gradient: torch.Tensor, box: SpectralBox3D
    ) -> torch.Tensor:
        """``nu_t`` ``[B, N, N, N]``."""
        return smagorinsky_viscosity(gradient, box.spacing, self.constant)


@dataclass
class DynamicSmagorinsky:
    """Dynamic Smagorinsky (Germano identity, Lilly's least squares, box average, clipped >= 0).

    ``last_coefficient`` holds the coefficient ``C = C_s^2`` ``[B]`` of the latest evaluation.
    """

    test_filter_ratio: float = 2.0

    def __post_init__(self) -> None:
        if not self.test_filter_ratio > 1:
            raise SolverError(
                f"DynamicSmagorinsky: test_filter_ratio must be > 1, got {self.test_filter_ratio}"
            )
        self.last_coefficient: torch.Tensor | None = None

    def viscosity(
        self, velocity_hat: torch.Tensor, gradient: torch.Tensor, box: SpectralBox3D
    ) -> torch.Tensor:
        """``nu_t = C Delta^2 |S|`` ``[B, N, N, N]``."""
        coefficient = dynamic_coefficient(velocity_hat, gradient, box, self.test_filter_ratio)
        self.last_coefficient = coefficient.detach()
        magnitude = strain_magnitude(0.5 * (gradient + gradient.transpose(1, 2)))
        return coefficient.view(-1, 1, 1, 1) * box.spacing**2 * magnitude


@dataclass
class WALE:
    """Wall-adapting local eddy viscosity (Nicoud & Ducros 1999); ``C_w = 0.5`` (their 0.5-0.6 range)."""

    constant: float = 0.5

    def __post_init__(self) -> None:
        if not self.constant >= 0:
            raise SolverError(f"WALE: constant must be >= 0, got {self.constant}")

    def viscosity(
        self, velocity_hat: torch.Tensor, gradient: torch.Tensor, box: SpectralBox3D
    ) -> torch.Tensor:
        """``nu_t`` ``[B, N, N, N]``."""
        return wale_viscosity(gradient, box.spacing, self.constant)


CLOSURES: dict[str, type[Smagorinsky] | type[DynamicSmagorinsky] | type[WALE]] = {
    "smagorinsky": Smagorinsky,
    "dynamic_smagorinsky": DynamicSmagorinsky,
    "wale": WALE,
}
"""Every closure, by name."""


def make_closure(name: str, **options: float) -> Smagorinsky | DynamicSmagorinsky | WALE:
    """The closure called ``name`` (a key of :data:`CLOSURES`) with its options."""
    if name not in CLOSURES:
        raise SolverError(f"unknown LES closure {name!r}; expected one of {tuple(CLOSURES)}")
    try:
        return CLOSURES[name](**options)
    except TypeError as err:
        raise SolverError(f"LES closure {name!r}: bad options {options} ({err})") from err
