"""Metrics of fields on grids: Sobolev H^s norms and errors (any real s), spectra, rollout curves, losses.

This layer knows nothing of models, training or dataset readers; geometry comes as arguments
(``lengths``, ``dims``, ``periodic``) or from a metadata object with ``periodic`` and
``domain_lengths`` attributes (:func:`sobolev_error_for`).

Modules by kind: :mod:`~sciml.metrics.sobolev` (norms, errors), :mod:`~sciml.metrics.nonperiodic`
(walled boxes), :mod:`~sciml.metrics.spectral` (energy and enstrophy spectra),
:mod:`~sciml.metrics.temporal` (rollout error curves), :mod:`~sciml.metrics.losses` (``nn.Module`` losses),
:mod:`~sciml.metrics.turbulence` (3D statistics: shell spectrum, dissipation, Re_lambda, PDFs).
"""

from sciml.metrics.losses import SobolevLoss
from sciml.metrics.nonperiodic import sobolev_norm_nonperiodic, tukey_window
from sciml.metrics.sobolev import (
    GridMetadata,
    metadata_options,
    pair_norms,
    relative_h1,
    relative_h_minus_1,
    relative_l2,
    sobolev_error,
    sobolev_error_for,
    sobolev_norm,
)
from sciml.metrics.spectral import (
    default_n_bins,
    energy_spectrum,
    enstrophy,
    kinetic_energy,
    scalar_spectrum,
    shell_wavenumbers,
    vorticity_spectrum,
)
from sciml.metrics.temporal import RolloutSummary, rollout_errors, rollout_summary
from sciml.metrics.turbulence import (
    dissipation,
    energy_spectrum_3d,
    taylor_reynolds_number,
    turbulence_statistics,
)

__all__ = [
    "GridMetadata",
    "RolloutSummary",
    "SobolevLoss",
    "default_n_bins",
    "dissipation",
    "energy_spectrum",
    "energy_spectrum_3d",
    "enstrophy",
    "kinetic_energy",
    "metadata_options",
    "pair_norms",
    "relative_h1",
    "relative_h_minus_1",
    "relative_l2",
    "rollout_errors",
    "rollout_summary",
    "scalar_spectrum",
    "shell_wavenumbers",
    "sobolev_error",
    "sobolev_error_for",
    "sobolev_norm",
    "sobolev_norm_nonperiodic",
    "taylor_reynolds_number",
    "tukey_window",
    "turbulence_statistics",
    "vorticity_spectrum",
]
