"""What a paper reproduction is: the sides it compares, the scales it runs at, the numbers it reports.

A :class:`Paper` names the configs of its comparison (``configs/paper/*.yaml``: each side's architecture and
training recipe exactly as its paper's code has them), the published numbers, and the claim to check. A
:class:`Scale` says what a smaller run changes, and it may change only what the issue allows: the data
size, the number of epochs and, where the paper's size cannot run on the machine, the resolution or the
width, **equally for both sides** (one ``common`` list of overrides for all sides, and for the width one
factor applied to every side's width keys). Everything else (architecture shape, optimizer, schedule shape,
loss, protocol) stays the paper's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciml.assets import asset_root

ROOT = asset_root()  # the checkout, or the copy of configs/ and datasets/ installed with the package
SCALES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class Side:
    """One model of a comparison: a label, its faithful config, and the config keys that hold its width.

    ``width_keys`` are dotted config paths (``model.width`` or ``model.model_kwargs.width``) that a scale's
    ``width_factor`` multiplies.
    """

    label: str
    config: str
    width_keys: tuple[str, ...] = ("model.width",)

    @property
    def config_path(self) -> Path:
        """The config file in the checkout."""
        return ROOT / self.config


@dataclass(frozen=True)
class Scale:
    """How one scale departs from the paper's recipe (the same for every side).

    Attributes:
        name: ``smoke`` (a test: seconds), ``cpu`` (about an hour on 2 cores, several seeds) or ``paper``.
        seeds: the training seeds (mean and spread are over them).
        epochs: epochs of every side (``None``: the paper's); a step schedule keeps its shape (its
            ``step_size`` is scaled by the same factor as the epochs).
        recipe: overrides of the data recipe (nested mappings merged into the recipe, e.g. a coarser
            solve or fewer trajectories); ``{}`` keeps the paper's data.
        common: config overrides (``section.key=value``) applied to every side.
        per_side: overrides of one side only, for what the resolution forces on one architecture and not
            the other (LSM's patch size, an FNO's number of modes on a grid too small for the paper's).
        width_factor: every side's width keys multiplied by this (1: the papers' widths).
        measure_options: keyword arguments of the paper's ``measure`` at this scale (e.g. fewer refiner
            iterations in a smoke test).
        note: what this scale changes, in words, for the table.
    """

    name: str
    seeds: tuple[int, ...]
    epochs: int | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    common: tuple[str, ...] = ()
    per_side: dict[str, tuple[str, ...]] = field(default_factory=dict)
    width_factor: float = 1.0
    measure_options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Published:
    """A number from the paper: what it measures, its value and where it is printed."""

    metric: str
    side: str
    value: float
    source: str


@dataclass(frozen=True)
class Claim:
    """The direction of a paper's claim, checked on the seed means.

    ``check(summary)`` gets ``{side: {metric: {"mean", "std", "values"}}}`` and returns ``(ours, met)``: the
    measured figure in words (e.g. ``"0.84x (LSM 0.151 +- 0.004 vs FNO 0.180 +- 0.006)"``) and whether the
    claim holds *outside the seed spread* (``None`` when it cannot be decided).
    """

    text: str
    check: Callable[[dict[str, dict[str, dict[str, Any]]]], tuple[str, bool | None]]


@dataclass(frozen=True)
class Paper:
    """One paper's comparison: sides, scales, metrics, published numbers and claims.

    ``measure(run, report, **scale.measure_options)`` maps a finished training run (a
    :class:`sciml.train.RestoredRun`) and its report to ``{metric: float}``; ``metrics`` lists
    ``(metric, description)`` in the table's order; ``extra``, when given, measures something across sides
    once per reproduction on the first seed's run of every side (``{side: run}``, e.g. an interleaved
    train-step timing) and returns it as ``{side: {metric: float}}``.
    """

    name: str
    title: str
    sides: tuple[Side, ...]
    scales: dict[str, Scale]
    metrics: tuple[tuple[str, str], ...]
    measure: Callable[..., dict[str, float]]
    published: tuple[Published, ...] = ()
    claims: tuple[Claim, ...] = ()
    curve_metric: str = "train_loss"
    extra: Callable[[dict[str, Any]], dict[str, dict[str, float]]] | None = None
    paper_budget: str = ""


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in (nested mappings key by key; a copy, both inputs unchanged)."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
