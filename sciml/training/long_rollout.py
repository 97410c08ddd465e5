"""Long autoregressive rollouts of a 3-D flow model: when does it blow up or drift from the reference?

A windowed model (``t_in`` frames in, ``t_out`` out, time-major channels: :mod:`sciml.training.rollout`)
is rolled out ``steps`` times, one step at a time through :func:`~sciml.training.rollout.rollout` and
:func:`~sciml.training.rollout.advance_window`, keeping no fields: after every step the kinetic energy and
shell spectrum of each predicted frame's velocity are taken (:mod:`sciml.metrics.turbulence`) and compared
with the reference statistics, the time average over reference frames (e.g. filtered DNS of statistically
steady forced turbulence, where a long prediction can only be compared in statistics: the trajectories
decorrelate after a few eddy turnovers). The report says at which predicted frame the energy left
``energy_tolerance`` or the spectrum ``spectrum_tolerance`` (drift) and where it blew up
(:func:`~sciml.metrics.turbulence.first_departure`); a rollout that blows up stops there.

Yang, Wang, Wang (IFactFormer-m, arXiv:2412.18840) judge their long rollouts the same way: energy spectra
and statistics of the prediction against those of the filtered DNS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sciml.errors import ConfigError
from sciml.metrics.turbulence import (
    energy_spectrum_3d,
    first_departure,
    kinetic_energy_3d,
    spectrum_log_distance,
)
from sciml.training.rollout import advance_window, rollout

logger = logging.getLogger(__name__)


@dataclass
class LongRollout:
    """Statistics of every predicted frame of a long rollout and where they left the reference.

    ``energy`` ``[T]`` and ``spectra`` ``[T, K]`` are batch means; ``spectrum_distance`` ``[T]`` is
    :func:`~sciml.metrics.turbulence.spectrum_log_distance` from ``reference_spectrum``; ``blowup`` and
    ``drift`` are the first predicted frames (0-based) that blew up or drifted, ``None`` if none did.
    """

    wavenumbers: list[float]
    energy: list[float]
    spectra: list[list[float]]
    spectrum_distance: list[float]
    reference_energy: float
    reference_spectrum: list[float]
    blowup: int | None
    drift: int | None
    tolerances: dict[str, float] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        """Number of predicted frames evaluated (fewer than asked when the rollout blew up)."""
        return len(self.energy)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable view (non-finite numbers as ``None``)."""

        def clean(values: Any) -> Any:
            if isinstance(values, list):
                return [clean(v) for v in values]
            return values if values is None or math.isfinite(values) else None

        return {
            "frames": self.frames,
            "blowup": self.blowup,
            "drift": self.drift,
            "tolerances": self.tolerances,
            "reference_energy": self.reference_energy,
            "energy": clean(self.energy),
            "spectrum_distance": clean(self.spectrum_distance),
            "wavenumbers": self.wavenumbers,
            "reference_spectrum": self.reference_spectrum,
            "spectra": clean(self.spectra),
        }


@torch.no_grad()
def long_rollout(
    model: Callable[[torch.Tensor], torch.Tensor],
    window: torch.Tensor,
    steps: int,
    reference: torch.Tensor,
    velocity_channels: Sequence[int] = (0, 1, 2),
    domain_length: float = 2.0 * math.pi,
    energy_tolerance: float = 0.5,
    spectrum_tolerance: float = math.log(2.0),
    blowup_factor: float = 10.0,
    max_shell: int | None = None,
) -> LongRollout:
    """Roll ``model`` out ``steps`` times from ``window [B, t_in * C, N, N, N]`` and track its statistics.

    ``reference [T_ref, C, N, N, N]``, frames with the model's ``C`` channels, gives the reference energy
    and spectrum (means over its frames); ``velocity_channels`` are the 3 of the ``C`` channels holding
    ``u, v, w``. Tolerances as in :func:`~sciml.metrics.turbulence.first_departure`. Spectra are compared on
    shells ``1 .. max_shell`` (default ``(N - 1) // 3``, the largest shell whole inside the 2/3-dealiased
    band of the grid: filtered or dealiased data hold no energy beyond it, so a log ratio there would
    compare round-off).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"long_rollout: steps must be an integer >= 1, got {steps!r}")
    channels = list(velocity_channels)
    if len(channels) != 3:
        raise ConfigError(f"long_rollout: velocity_channels must name 3 channels, got {channels}")
    if reference.ndim != 5 or max(channels) >= reference.shape[1] or window.shape[1] % reference.shape[1]:
        raise ConfigError(
            f"long_rollout: reference frames [T, C, N, N, N] with the velocity in channels {channels} and C "
            f"dividing the window's {window.shape[1]} channels, got {tuple(reference.shape)}"
        )
    ref_velocity = reference[:, channels]
    k, ref_spectra = energy_spectrum_3d(ref_velocity, domain_length)
    ref_spectrum = ref_spectra.mean(dim=0)
    ref_energy = float(kinetic_energy_3d(ref_velocity).mean())
    top = (reference.shape[-1] - 1) // 3 if max_shell is None else int(max_shell)
    c = reference.shape[1]
    energy: list[float] = []
    spectra: list[list[float]] = []
    distance: list[float] = []
    departure: dict[str, int | None] = {"blowup": None, "drift": None}
    for step in range(steps):
        predicted = rollout(model, window, 1, gradient="none")
        frames = predicted.reshape(predicted.shape[0], -1, c, *predicted.shape[2:])
        for t in range(frames.shape[1]):
            velocity = frames[:, t, channels]
            finite = bool(torch.isfinite(velocity).all())
            e = float(kinetic_energy_3d(velocity).mean()) if finite else math.inf
            spectrum = energy_spectrum_3d(velocity, domain_length)[1].mean(dim=0) if finite else None
            energy.append(e)
            spectra.append(spectrum.tolist() if spectrum is not None else [math.inf] * len(k))
            distance.append(
                math.inf
                if spectrum is None
                else float(spectrum_log_distance(spectrum, ref_spectrum, (1, top)))
            )
        departure = first_departure(
            torch.tensor(energy),
            torch.tensor(distance),
            ref_energy,
            energy_tolerance,
            spectrum_tolerance,
            blowup_factor,
        )
        if departure["blowup"] is not None:
            logger.info("long rollout blew up at predicted frame %d (step %d)", departure["blowup"], step + 1)
            break
        window = advance_window(window, predicted.to(window.dtype))
    return LongRollout(
        wavenumbers=k.tolist(),
        energy=energy,
        spectra=spectra,
        spectrum_distance=distance,
        reference_energy=ref_energy,
        reference_spectrum=ref_spectrum.tolist(),
        blowup=departure["blowup"],
        drift=departure["drift"],
        tolerances={
            "energy": energy_tolerance,
            "spectrum": spectrum_tolerance,
            "blowup_factor": blowup_factor,
            "max_shell": top,
        },
    )


def plot_long_rollouts(path: Path, results: dict[str, LongRollout], frame_time: float = 1.0) -> None:
    """Energy over the reference's and spectrum distance per predicted frame (drift and blow-up marked), and
    the last finite spectrum of each rollout against the reference spectrum; one curve per name."""
    from matplotlib.figure import Figure

    from sciml.bench.record import save_figure

    fig = Figure(figsize=(15, 4.2))
    ax_e, ax_d, ax_s = fig.subplots(1, 3)
    first = next(iter(results.values()))
    k = torch.tensor(first.wavenumbers)
    ax_s.loglog(k[1:], torch.tensor(first.reference_spectrum)[1:], color="k", label="reference")
    for i, (name, r) in enumerate(results.items()):
        t = [frame_time * (j + 1) for j in range(r.frames)]
        color = f"C{i}"
        ax_e.semilogy(t, [e / r.reference_energy for e in r.energy], color=color, label=name)
        ax_d.semilogy(t, r.spectrum_distance, color=color, label=name)
        for marker, step in (("o", r.drift), ("x", r.blowup)):
            if step is not None:
                ax_e.plot(t[step], min(r.energy[step] / r.reference_energy, 1e6), marker, color=color)
        finite = [s for s, e in zip(r.spectra, r.energy, strict=True) if math.isfinite(e)]
        if finite:
            ax_s.loglog(
                k[1:], torch.tensor(finite[-1])[1:], color=color, linestyle="--", label=f"{name} (last)"
            )
    ax_e.axhline(1.0, color="k", linewidth=0.8)
    ax_e.set_xlabel("time")
    ax_e.set_ylabel("energy / reference (o: drift, x: blow-up)")
    ax_d.axhline(first.tolerances.get("spectrum", math.log(2.0)), color="k", linewidth=0.8, linestyle=":")
    ax_d.set_xlabel("time")
    ax_d.set_ylabel("spectrum distance mean |ln E/E_ref|")
    ax_s.set_xlabel("wavenumber k")
    ax_s.set_ylabel("E(k)")
    for ax in (ax_e, ax_d, ax_s):
        ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
