"""Generate a Navier-Stokes dataset from a recipe with the built-in pseudo-spectral solvers (2D vorticity, or
3D forced homogeneous isotropic turbulence for a recipe with a ``hit`` section).

Trajectories are solved in batches (with a progress bar) and streamed into one file, in The Well's HDF5
schema (default) or FNO's MATLAB v7.3 layout. The file is written under a temporary name of its own and
renamed only when complete, while holding a lock on the output, so that processes generating the same
output take turns and readers only ever see complete files.

Reproducibility: a recipe fixes the data up to floating-point round-off, not bit for bit. Regenerating
it with another number of threads (``OMP_NUM_THREADS``), another torch version, device or machine gives
values equal to about 1e-7 relative in float32 (FFT and reduction orders differ). Each file records
the recipe and these settings (attribute ``generation``, see :func:`generation_settings`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import sciml
from sciml.config import to_dict
from sciml.datasets.recipes import HitSection, Recipe
from sciml.datasets.resample import fourier_resample
from sciml.datasets.writers.base import output_lock, remove_stale_temporaries
from sciml.errors import ConfigError
from sciml.metrics.turbulence import turbulence_statistics, vorticity_3d
from sciml.progress import progress_disable
from sciml.solvers.navier_stokes import NavierStokes2D, gaussian_random_field
from sciml.solvers.navier_stokes_3d import NavierStokes3D, random_solenoidal_field, spectral_filter

logger = logging.getLogger(__name__)

FORMATS = {"well": ".hdf5", "mat": ".mat"}


def _advance(bar: tqdm, base: int, batch: int, steps_done: int) -> None:
    """Move a progress bar counting trajectory-steps to ``base + batch * steps_done``."""
    bar.update(base + batch * steps_done - bar.n)


def default_cache_dir() -> Path:
    """Where generated files go: ``$SCIML_CACHE`` or ``./.cache/sciml`` (gitignored)."""
    return Path(os.environ.get("SCIML_CACHE", Path.cwd() / ".cache" / "sciml"))


def default_output_path(recipe: Recipe, file_format: str = "well", first_index: int = 0) -> Path:
    """The cache file name of a recipe (its name, seed, size and a hash of its content).

    The key holds only what determines the data: the recipe (and the first trajectory index). It does not
    hold the thread count, torch version or device: these change the data only to round-off (about 1e-7
    relative in float32), so a key per setting would regenerate the same data needlessly. The settings a
    file was generated with are recorded inside it instead (:func:`generation_settings`).
    """
    digest = hashlib.sha256(recipe.to_yaml().encode()).hexdigest()[:8]
    start = f"_from{first_index}" if first_index else ""
    stem = f"{recipe.name}_n{recipe.n_trajectories}{start}_seed{recipe.seed}_{digest}"
    return default_cache_dir() / f"{stem}{FORMATS[file_format]}"


def generation_settings(device: torch.device, dtype: torch.dtype, first_index: int = 0) -> dict[str, Any]:
    """What the generated values depend on besides the recipe (to round-off), stored in every file.

    Keys: ``sciml_version``, ``torch_version``, ``numpy_version``, ``python_version``, ``platform``,
    ``torch_num_threads``, ``OMP_NUM_THREADS`` (``None`` when unset), ``device``, ``device_name``,
    ``dtype`` (of the solve; stored frames are float32) and ``first_index``.
    """
    return {
        "sciml_version": sciml.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "torch_num_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine(),
        "dtype": str(dtype).removeprefix("torch."),
        "first_index": int(first_index),
    }


def trajectory_seed(seed: int, index: int) -> int:
    """The seed of trajectory ``index``'s initial condition: depends on (seed, index) only."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0] >> 1)


def initial_conditions(
    recipe: Recipe, indices: range, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Initial vorticity of trajectories ``indices`` ``[len(indices), N, N]`` on the solver grid."""
    ic, solver = recipe.initial_condition, recipe.solver
    domain_length = make_solver(recipe).domain_length
    fields = [
        gaussian_random_field(
            1,
            solver.resolution,
            alpha=ic.alpha,
            tau=ic.tau,
            sigma=ic.sigma,
            domain_length=domain_length,
            seed=trajectory_seed(recipe.seed, i),
            dtype=dtype,
            device=device,
        )
        for i in indices
    ]
    return torch.cat(fields)


def make_solver(recipe: Recipe, resolution: int | None = None, dt: float | None = None) -> NavierStokes2D:
    """The solver a recipe describes; with ``resolution`` / ``dt``, the same problem (viscosity, forcing,
    drag, box, stepper) on another grid or with another step, e.g. on the stored grid of the data. A 3D
    recipe (with a ``hit`` section) is refused: its solver is :func:`make_solver_3d`'s."""
    if recipe.hit is not None:
        raise ConfigError(
            f"recipe {recipe.name} is 3D (it has a hit section): its solver is make_solver_3d(recipe), "
            "not the 2D vorticity solver"
        )
    s = recipe.solver
    return NavierStokes2D(
        resolution=resolution or s.resolution,
        viscosity=s.viscosity,
        domain_length=s.domain_length,
        forcing=s.forcing,
        drag=s.drag,
        dt=dt or s.dt,
        stepper=s.stepper,
    )


def make_solver_3d(recipe: Recipe, resolution: int | None = None, dt: float | None = None) -> NavierStokes3D:
    """The 3D solver of a recipe with a ``hit`` section (optionally on another grid or with another step)."""
    s, hit = recipe.solver, _hit_section(recipe)
    return NavierStokes3D(
        resolution=resolution or s.resolution,
        viscosity=s.viscosity,
        domain_length=s.domain_length or 2.0 * np.pi,
        forcing=s.forcing,
        injection_rate=hit.injection_rate,
        forcing_wavenumber=hit.forcing_wavenumber,
        dt=dt or s.dt,
        stepper=s.stepper,
    )


def _hit_section(recipe: Recipe) -> HitSection:
    """The recipe's ``hit`` section, or a ConfigError when it is a 2D recipe."""
    if recipe.hit is None:
        raise ConfigError(f"recipe {recipe.name} has no hit section: it describes a 2D dataset")
    return recipe.hit


def initial_velocities(
    recipe: Recipe, indices: range, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Initial velocities of 3D trajectories ``indices`` ``[len(indices), 3, N, N, N]`` on the solver grid."""
    hit, solver = _hit_section(recipe), make_solver_3d(recipe)
    fields = [
        random_solenoidal_field(
            1,
            solver.resolution,
            peak_wavenumber=hit.peak_wavenumber,
            energy=hit.initial_energy,
            domain_length=solver.domain_length,
            seed=trajectory_seed(recipe.seed, i),
            dtype=dtype,
            device=device,
        )
        for i in indices
    ]
    return torch.cat(fields)


def downsample(field: torch.Tensor, resolution: int, method: str) -> torch.Tensor:
    """Reduce ``[..., N, N]`` to ``[..., n, n]``: pointwise subsampling (FNO's) or spectral truncation
    (:func:`sciml.datasets.resample.fourier_resample`, which drops the small grid's Nyquist mode)."""
    if resolution == field.shape[-1]:
        return field
    if method == "subsample":
        step = field.shape[-1] // resolution
        return field[..., ::step, ::step].contiguous()
    return fourier_resample(field, (resolution, resolution))


def generate(
    recipe: Recipe,
    out: str | Path | None = None,
    *,
    file_format: str = "well",
    device: str | torch.device | None = None,
    n_trajectories: int | None = None,
    seed: int | None = None,
    first_index: int = 0,
    progress: bool = True,
    reuse_existing: bool = False,
) -> Path:
    """Run the recipe and write the dataset file; returns its path.

    Safe to run in several processes at once on one output: each writes a temporary file of its own and
    publishes it by an atomic rename while holding ``<output>.lock``, so the others wait and every
    reader sees a complete file. The file records the recipe and :func:`generation_settings`; data
    regenerated elsewhere equal it to round-off (about 1e-7 relative in float32), not bit for bit.

    Args:
        recipe: what to generate.
        out: output file (default: :func:`default_output_path` in the cache).
        file_format: ``"well"`` (The Well HDF5 schema) or ``"mat"`` (FNO .mat v7.3).
        device: where to solve (default: CUDA when available, else CPU).
        n_trajectories: override the recipe's count (e.g. a reduced test set).
        seed: override the recipe's seed (e.g. a fresh test set).
        first_index: the file holds trajectories ``first_index ...`` of the recipe (each trajectory depends
            only on the seed and its index, so a subset can be regenerated alone).
        progress: show a tqdm progress bar (on a terminal only: :mod:`sciml.progress`).
        reuse_existing: when the output exists once the lock is held (e.g. another process finished it
            while this one waited), return it without solving again. Otherwise it is replaced.
    """
    if file_format not in FORMATS:
        raise ConfigError(f"unknown output format {file_format!r}; expected one of {sorted(FORMATS)}")
    if recipe.dimensions == 3 and file_format != "well":
        raise ConfigError(
            f"recipe {recipe.name} is 3D: format {file_format!r} holds 2D fields only; expected 'well'"
        )
    if n_trajectories is not None or seed is not None:
        recipe = Recipe.from_mapping(
            {
                **to_dict(recipe),
                "n_trajectories": n_trajectories or recipe.n_trajectories,
                "seed": recipe.seed if seed is None else seed,
            }
        )
    path = Path(out) if out is not None else default_output_path(recipe, file_format, first_index)
    device = _solver_device(device)
    with output_lock(path):
        if reuse_existing and path.exists():
            logger.info("%s exists (written by another process meanwhile); using it", path)
            return path
        remove_stale_temporaries(path)
        _solve_and_write(recipe, path, file_format, device, first_index, progress)
    logger.info("wrote %s", path)
    return path


def _frame_times(recipe: Recipe) -> np.ndarray:
    """The times of the recorded frames: every ``record_every`` from the end of the warm-up to ``t_final``
    after it."""
    o = recipe.output
    return o.warmup + o.record_every * np.arange(round(o.t_final / o.record_every) + 1)


def _progress_bar(recipe: Recipe, dt: float, progress: bool) -> Any:
    """The generation's progress bar, counted in trajectory-steps (warm-up included)."""
    steps_per_trajectory = round((recipe.output.warmup + recipe.output.t_final) / dt)
    return tqdm(
        total=recipe.n_trajectories * steps_per_trajectory,
        disable=progress_disable(progress),
        unit="traj-step",
        unit_scale=True,
        desc=f"generate {recipe.name}",
    )


def _solve_and_write(
    recipe: Recipe, path: Path, file_format: str, device: torch.device, first_index: int, progress: bool
) -> None:
    """Solve the recipe's trajectories batch by batch and stream them into ``path`` (atomically)."""
    if recipe.dimensions == 3:
        _solve_and_write_3d(recipe, path, device, first_index, progress)
        return
    dtype = torch.float64 if recipe.dtype == "float64" else torch.float32
    solver = make_solver(recipe)
    o = recipe.output
    n_out = recipe.output_resolution
    times = _frame_times(recipe)
    writer_cls = _writer_class(file_format)
    attributes = {
        "recipe": recipe.to_yaml(),
        "dataset_name": recipe.name,
        "forcing": str(recipe.solver.forcing),
        "stepper": recipe.solver.stepper,
        "solver_resolution": recipe.solver.resolution,
        "dt": recipe.solver.dt,
        "drag": solver.drag,
        "generation": generation_settings(device, dtype, first_index),
    }
    bar = _progress_bar(recipe, solver.dt, progress)
    logger.info(
        "generating %s: %d trajectories on %s -> %s", recipe.name, recipe.n_trajectories, device, path
    )
    with writer_cls(
        path,
        n_trajectories=recipe.n_trajectories,
        times=times,
        grid_shape=(n_out, n_out),
        domain_lengths=(solver.domain_length, solver.domain_length),
        viscosity=solver.viscosity,
        attributes=attributes,
    ) as writer:
        for start in range(0, recipe.n_trajectories, recipe.batch_size):
            indices = range(start, min(start + recipe.batch_size, recipe.n_trajectories))
            w0 = initial_conditions(
                recipe, range(first_index + indices.start, first_index + indices.stop), device, dtype
            )
            if o.warmup > 0:
                w0 = solver.simulate(
                    w0, o.warmup, o.warmup, progress=functools.partial(_advance, bar, bar.n, len(indices))
                ).vorticity
                w0 = w0[:, -1]
            trajectory = solver.simulate(
                w0, o.t_final, o.record_every, progress=functools.partial(_advance, bar, bar.n, len(indices))
            )
            w = downsample(trajectory.vorticity, n_out, o.downsample)
            u, v = solver.velocity(trajectory.vorticity)
            velocity = torch.stack(
                [downsample(u, n_out, o.downsample), downsample(v, n_out, o.downsample)], -1
            )
            writer.write(start, w.float().cpu().numpy(), velocity.float().cpu().numpy())
    bar.close()


def _solve_and_write_3d(
    recipe: Recipe, path: Path, device: torch.device, first_index: int, progress: bool
) -> None:
    """The 3D (hit) recipe: DNS after the warm-up, spectrally filtered to the output grid, then written.

    The filtered frames are small, so every batch is solved first and the file is written at the end with
    the statistics in its attributes: ``statistics`` (JSON) holds ``dns`` (on the solver grid) and
    ``filtered`` (on the stored grid), each the averages over every recorded frame of every trajectory of
    :func:`sciml.metrics.turbulence.turbulence_statistics` (energy, u_rms, dissipation, Taylor microscale,
    Re_lambda, Kolmogorov scale, k_max eta, the shell spectrum E(k)).
    """
    from sciml.datasets.writers.the_well import TheWellWriter

    dtype = torch.float64 if recipe.dtype == "float64" else torch.float32
    solver = make_solver_3d(recipe)
    o = recipe.output
    n_out = recipe.output_resolution
    times = _frame_times(recipe)
    bar = _progress_bar(recipe, solver.dt, progress)
    logger.info(
        "generating %s (3D): %d trajectories on %s -> %s", recipe.name, recipe.n_trajectories, device, path
    )
    velocities, vorticities, dns_stats, filtered_stats = [], [], [], []
    for start in range(0, recipe.n_trajectories, recipe.batch_size):
        indices = range(start, min(start + recipe.batch_size, recipe.n_trajectories))
        u0 = initial_velocities(
            recipe, range(first_index + indices.start, first_index + indices.stop), device, dtype
        )
        if o.warmup > 0:
            advance = functools.partial(_advance, bar, bar.n, len(indices))
            u0 = solver.simulate(u0, o.warmup, o.warmup, progress=advance).velocity[:, -1]
        advance = functools.partial(_advance, bar, bar.n, len(indices))
        velocity = solver.simulate(u0, o.t_final, o.record_every, progress=advance).velocity
        dns_stats.append(
            (len(indices), turbulence_statistics(velocity, solver.viscosity, solver.domain_length))
        )
        filtered = spectral_filter(velocity, n_out)
        filtered_stats.append(
            (len(indices), turbulence_statistics(filtered, solver.viscosity, solver.domain_length))
        )
        velocities.append(filtered.movedim(2, -1).float().cpu().numpy())
        vorticities.append(vorticity_3d(filtered, solver.domain_length).movedim(2, -1).float().cpu().numpy())
    bar.close()
    dns = _weighted_mean(dns_stats)
    statistics = {
        "dns": dns,
        "filtered": _weighted_mean(filtered_stats),
        "dns_resolution": solver.resolution,
        "filter": f"sharp spectral cutoff |k_i| < {n_out}/3 (the {n_out}^3 grid's 2/3-dealiased band)",
        "frames": "every recorded frame of every trajectory (after the warm-up)",
    }
    logger.info(
        "%s: DNS Re_lambda %.1f, dissipation %.4f, k_max eta %.2f",
        recipe.name,
        dns["re_lambda"],
        dns["dissipation"],
        dns["k_max_eta"],
    )
    attributes = {
        "recipe": recipe.to_yaml(),
        "dataset_name": recipe.name,
        "forcing": str(recipe.solver.forcing),
        "stepper": recipe.solver.stepper,
        "solver_resolution": recipe.solver.resolution,
        "dt": recipe.solver.dt,
        "injection_rate": solver.injection_rate,
        "statistics": statistics,
        "generation": generation_settings(device, dtype, first_index),
    }
    with TheWellWriter(
        path,
        n_trajectories=recipe.n_trajectories,
        times=times,
        grid_shape=(n_out, n_out, n_out),
        domain_lengths=(solver.domain_length,) * 3,
        viscosity=solver.viscosity,
        attributes=attributes,
    ) as writer:
        start = 0
        for velocity_frames, vorticity_frames in zip(velocities, vorticities, strict=True):
            writer.write(start, vorticity_frames, velocity_frames)
            start += velocity_frames.shape[0]


def _weighted_mean(parts: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Average per-batch statistics, weighted by the batch sizes (lists elementwise)."""
    total = sum(weight for weight, _ in parts)
    keys = parts[0][1].keys()
    result: dict[str, Any] = {}
    for key in keys:
        if isinstance(parts[0][1][key], list):
            columns = zip(*(stats[key] for _, stats in parts), strict=True)
            weights = [weight for weight, _ in parts]
            result[key] = [
                sum(w * v for w, v in zip(weights, column, strict=True)) / total for column in columns
            ]
        else:
            result[key] = sum(weight * stats[key] for weight, stats in parts) / total
    return result


def _solver_device(device: str | torch.device | None) -> torch.device:
    """The device to solve on (default: CUDA when available); a :class:`ConfigError` when unusable."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(
            f"device {device!r} is no torch device; expected e.g. 'cpu', 'cuda', 'cuda:1'"
        ) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available here; expected 'cpu'")
    return resolved


def _writer_class(file_format: str) -> type:
    if file_format == "mat":
        from sciml.datasets.writers.fno_mat import FnoMatWriter

        return FnoMatWriter
    from sciml.datasets.writers.the_well import TheWellWriter

    return TheWellWriter
