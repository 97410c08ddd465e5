"""Dataset recipes: the YAML description of a generated Navier-Stokes dataset (2D vorticity, or 3D forced
homogeneous isotropic turbulence with a ``hit`` section, e.g. ``datasets/hit_quick.yaml``).

A recipe fixes everything that determines the data: the solver (resolution, viscosity, forcing, drag,
time step, stepper), the initial-condition distribution, the recorded frames (output resolution, horizon,
interval, warm-up), the number of trajectories and the seed. Trajectory ``i`` depends only on
``(seed, i)``, so any subset can be regenerated, e.g. a fresh test set with another seed.

Example (``datasets/ns_quick.yaml``)::

    name: ns_quick
    solver: {resolution: 64, viscosity: 1.0e-3, forcing: fno, dt: 2.0e-3, stepper: heun-cn}
    initial_condition: {alpha: 2.5, tau: 7.0}
    output: {resolution: 32, t_final: 10.0, record_every: 1.0}
    n_trajectories: 48
    seed: 0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sciml.config import from_dict, load_yaml, to_dict
from sciml.errors import ConfigError


@dataclass
class SolverSection:
    """Arguments of :class:`sciml.solvers.navier_stokes.NavierStokes2D`."""

    resolution: int
    viscosity: float
    forcing: str | None = "fno"
    domain_length: float | None = None
    drag: float | None = None
    dt: float = 1e-4
    stepper: str = "cn-euler"


@dataclass
class InitialConditionSection:
    """Gaussian random field N(0, sigma^2 (-Lap + tau^2)^-alpha) of the initial vorticity (FNO's)."""

    alpha: float = 2.5
    tau: float = 7.0
    sigma: float | None = None


@dataclass
class OutputSection:
    """What is recorded: frames every ``record_every`` from ``warmup`` to ``warmup + t_final``."""

    t_final: float
    record_every: float
    resolution: int | None = None
    downsample: str = "subsample"
    warmup: float = 0.0


@dataclass
class HitSection:
    """3D forced homogeneous isotropic turbulence: with this section the recipe runs
    :class:`sciml.solvers.navier_stokes_3d.NavierStokes3D` (``solver.forcing``: ``linear`` or ``band``,
    ``solver.domain_length`` default 2 pi) from random solenoidal fields, and stores the velocity spectrally
    filtered to the output grid (``output.downsample: spectral``, a sharp cutoff at the output grid's
    2/3-dealiased band). ``initial_condition`` is not used.

    Attributes:
        injection_rate: power P the forcing injects (the mean dissipation once statistically steady).
        forcing_wavenumber: k_f of the band forcing (modes ``|k| <= k_f``, units of 2 pi / L).
        peak_wavenumber: peak of the initial spectrum ``k^4 exp(-2 (k / k_p)^2)``.
        initial_energy: kinetic energy of the initial fields.
    """

    injection_rate: float = 0.1
    forcing_wavenumber: float = 2.0
    peak_wavenumber: float = 3.0
    initial_energy: float = 0.5


RECIPE_FOLDERS = ("datasets",)
"""The shipped folder of dataset recipes (names resolve there)."""

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A recipe name (it becomes a cache file name): no path separators, no "..", no hidden files."""


@dataclass
class Recipe:
    """A generated dataset: solver, initial conditions, recorded frames, size and seed."""

    name: str
    solver: SolverSection
    output: OutputSection
    n_trajectories: int
    initial_condition: InitialConditionSection = field(default_factory=InitialConditionSection)
    seed: int = 0
    batch_size: int = 16
    dtype: str = "float32"
    description: str = ""
    hit: HitSection | None = None

    def __post_init__(self) -> None:
        # the name becomes a cache file name: no path separators, no "..", no hidden files
        if not isinstance(self.name, str) or not SAFE_NAME.fullmatch(self.name):
            raise ConfigError(
                f"recipe name {self.name!r} is not a plain file name: expected letters, digits, '.', '_' "
                "or '-', starting with a letter or digit"
            )
        if self.n_trajectories < 1:
            raise ConfigError(f"recipe {self.name}: n_trajectories must be >= 1, got {self.n_trajectories}")
        if self.batch_size < 1:
            raise ConfigError(f"recipe {self.name}: batch_size must be >= 1, got {self.batch_size}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"recipe {self.name}: dtype must be float32 or float64, got {self.dtype!r}")
        if self.output.downsample not in ("subsample", "spectral"):
            raise ConfigError(
                f"recipe {self.name}: output.downsample must be 'subsample' or 'spectral', "
                f"got {self.output.downsample!r}"
            )
        if self.hit is not None:
            self._check_hit()
        out = self.output_resolution
        if out > self.solver.resolution or self.solver.resolution % out:
            raise ConfigError(
                f"recipe {self.name}: output.resolution {out} must divide solver.resolution "
                f"{self.solver.resolution}"
            )

    def _check_hit(self) -> None:
        """The 3D recipe's own constraints (ConfigError naming the key)."""
        from sciml.solvers.navier_stokes_3d import FORCINGS

        if self.solver.forcing not in FORCINGS:
            raise ConfigError(
                f"recipe {self.name}: solver.forcing must be one of {FORCINGS} for a 3D (hit) recipe, "
                f"got {self.solver.forcing!r}"
            )
        if self.output.downsample != "spectral":
            raise ConfigError(
                f"recipe {self.name}: output.downsample must be 'spectral' for a 3D (hit) recipe (the DNS is "
                f"filtered spectrally), got {self.output.downsample!r}"
            )
        if self.solver.drag:
            raise ConfigError(
                f"recipe {self.name}: solver.drag is not used in 3D; expected none, got {self.solver.drag}"
            )
        for key in ("injection_rate", "forcing_wavenumber", "peak_wavenumber", "initial_energy"):
            value = getattr(self.hit, key)
            if not isinstance(value, int | float) or not value > 0 or value == float("inf"):
                raise ConfigError(f"recipe {self.name}: hit.{key} must be a finite number > 0, got {value!r}")

    @property
    def dimensions(self) -> int:
        """2 for the vorticity recipes, 3 with a ``hit`` section."""
        return 2 if self.hit is None else 3

    @property
    def output_resolution(self) -> int:
        """Grid points per side of the stored frames."""
        return self.output.resolution or self.solver.resolution

    def to_yaml(self) -> str:
        """The recipe as YAML text (stored inside generated files)."""
        data = to_dict(self)
        if data["hit"] is None:  # 2D recipes read (and hash) as before the 3D section existed
            del data["hit"]
        return yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "recipe") -> Recipe:
        """Build and validate a recipe from a mapping (strict: unknown keys are errors)."""
        return from_dict(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        """Read a recipe file: a path, or the name of a shipped recipe (``ns_quick`` or
        ``datasets/ns_quick.yaml``, from any working directory; see :func:`sciml.assets.resolve_config`)."""
        return cls.from_mapping(load_yaml(path, folders=RECIPE_FOLDERS), where=str(path))


def recipe_from_mapping(data: dict[str, Any], where: str = "recipe") -> Any:
    """A recipe of any kind from its mapping: no ``kind`` key is a Navier-Stokes :class:`Recipe`,
    ``kind: poisson_ritz`` DCDM's Poisson data (:class:`sciml.datasets.poisson_ritz.PoissonRitzRecipe`)."""
    kind = data.get("kind")
    if kind is None:
        return Recipe.from_mapping(data, where)
    if kind == "poisson_ritz":
        from sciml.datasets.poisson_ritz import PoissonRitzRecipe

        return PoissonRitzRecipe.from_mapping(data, where)
    raise ConfigError(
        f"{where}: kind {kind!r} is not a recipe kind (expected no kind for Navier-Stokes, or 'poisson_ritz')"
    )


def load_recipe(path: str | Path) -> Any:
    """Read a recipe file of any kind (:func:`recipe_from_mapping`); ``path`` as for
    :meth:`Recipe.from_yaml`."""
    return recipe_from_mapping(load_yaml(path, folders=RECIPE_FOLDERS), where=str(path))
