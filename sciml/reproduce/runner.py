"""Run one paper's comparison at one scale: train every side for every seed, measure, summarize, report.

Every side trains through the shared :func:`sciml.train.run` from its faithful config plus the scale's
overrides (recorded, so that any single run can be repeated with ``python -m sciml.train CONFIG
OVERRIDES...``). Runs live in ``WORK/<side>/seed<k>/`` and are reused when they finished with the same
config, so an interrupted reproduction continues where it stopped (a run killed mid-training resumes from
its last checkpoint). The result is one JSON record, a markdown table (the paper's published figure in the
row beside ours) and a PNG of the learning curves of every seed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import statistics
import textwrap
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure

from sciml.atomic import write_text_atomically
from sciml.bench.record import environment, save_figure, write_record
from sciml.errors import ConfigError, SciMLError
from sciml.reproduce.protocol import ROOT, Paper, Scale, Side, merge
from sciml.train import restore_run, run
from sciml.training.config import load_config

logger = logging.getLogger("sciml.reproduce")


# ------------------------------------------------------------------------------------------ configs
def _dotted(tree: dict[str, Any], dotted: str, where: str) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"{where}: no key {dotted!r} (a width key of the reproduction)")
        node = node[key]
    return node


def shared_recipe(paper: Paper) -> Path:
    """The data recipe every side of ``paper`` trains on (ConfigError when the sides disagree)."""
    recipes = {}
    for side in paper.sides:
        data = yaml.safe_load(side.config_path.read_text())
        recipes[side.label] = (ROOT / data["data"]["recipe"]).resolve()
    if len(set(recipes.values())) != 1:
        raise ConfigError(f"reproduce {paper.name}: the sides train on different recipes: {recipes}")
    return next(iter(recipes.values()))


def scaled_recipe(paper: Paper, scale: Scale, work: Path) -> Path:
    """The recipe of this scale: the paper's own file, or a copy with the scale's changes in ``work``.

    A changed recipe gets the name ``<name>-<scale>`` so that its generated data never mixes with the
    paper's in the dataset cache.
    """
    source = shared_recipe(paper)
    if not scale.recipe:
        return source
    mapping = merge(yaml.safe_load(source.read_text()), scale.recipe)
    mapping["name"] = f"{mapping['name']}-{scale.name}"
    mapping["description"] = f"{mapping.get('description', '')} [{scale.name} scale of {source.name}]".strip()
    path = work / "recipe.yaml"
    write_text_atomically(path, yaml.safe_dump(mapping, sort_keys=False))
    return path


def side_overrides(side: Side, scale: Scale, seed: int, recipe: Path) -> list[str]:
    """The ``section.key=value`` overrides that turn ``side``'s paper config into this scale's run."""
    data = yaml.safe_load(side.config_path.read_text())
    paper_epochs = int(data["train"]["epochs"])
    overrides = [
        f"data.recipe={recipe}",
        f"train.seed={seed}",
        *scale.common,
        *scale.per_side.get(side.label, ()),
    ]
    if scale.epochs is not None and scale.epochs != paper_epochs:
        overrides.append(f"train.epochs={scale.epochs}")
        schedule = data.get("optim", {}).get("scheduler", {})
        if schedule.get("name") == "step" and schedule.get("interval", "epoch") == "epoch":
            step = max(1, round(int(schedule.get("step_size", 100)) * scale.epochs / paper_epochs))
            overrides.append(f"optim.scheduler.step_size={step}")
    if scale.width_factor != 1.0:
        for key in side.width_keys:
            width = _dotted(data, key, str(side.config_path))
            overrides.append(f"{key}={max(1, round(width * scale.width_factor))}")
    return overrides


# ------------------------------------------------------------------------------------------ one run
def run_folder(work: Path, side: Side, seed: int) -> Path:
    """Where a side's run of one seed lives: ``work/<side>/seed<k>`` (spaces in the label become ``_``)."""
    return work / side.label.replace(" ", "_") / f"seed{seed}"


def _comparable(config: Any) -> dict[str, Any]:
    """A run config as a dict whose data recipe is the recipe's content, not its path (two reproductions
    write the same scaled recipe into their own work folders)."""
    tree = config.to_dict()
    tree["train"]["resume"] = None
    recipe = Path(str(tree["data"].get("recipe") or ""))
    if recipe.is_file():
        tree["data"]["recipe"] = yaml.safe_load(recipe.read_text())
    return tree


def equal_finished_run(config: Any, candidates: Iterable[Path]) -> Path | None:
    """The first of ``candidates`` (run folders) that finished a run of the same config on the same recipe
    content, or None."""
    wanted = _comparable(config)
    for folder in candidates:
        saved = folder / "config.yaml"
        if not saved.is_file() or not (folder / "report" / "metrics.json").is_file():
            continue
        try:
            old = load_config(saved)
        except SciMLError:
            continue
        if _comparable(old) == wanted:
            return folder
    return None


def train_side(side: Side, overrides: list[str], run_dir: Path, elsewhere: Iterable[Path] = ()) -> Path:
    """Train one side (or reuse a finished run of the same config; continue a killed one).

    ``elsewhere``: run folders of other reproductions; a finished one of the same config (e.g. the TFNO side
    that the TFNO and the MG-TFNO comparisons share) is copied into ``run_dir`` instead of training again.
    """
    config = load_config(side.config_path, overrides)
    config.train.resume = "auto"
    config.train.name = None
    saved = run_dir / "config.yaml"
    if not saved.exists():
        found = equal_finished_run(config, elsewhere)
        if found is not None:
            logger.info("reusing the finished run %s of the same config", found)
            staging = run_dir.with_name(f".{run_dir.name}.copy-{os.getpid()}")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(found, staging)
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, run_dir)
            write_text_atomically(run_dir / "config.yaml", config.to_yaml())  # its recipe path: this work's
    if saved.exists():
        old = load_config(saved)
        old.train.resume = config.train.resume
        if old.to_dict() != config.to_dict():
            raise ConfigError(
                f"{run_dir} holds a run of another config; remove it or run the reproduction with --fresh"
            )
        if (run_dir / "report" / "metrics.json").exists():
            logger.info("reusing the finished run %s", run_dir)
            return run_dir
    return run(config, run_dir)


MEASURES_FILE = "reproduce_measures.json"
"""Beside a run's report: its measured figures, keyed by what they depend on (reused on a rerun)."""


def measure_side(
    paper: Paper, scale: Scale, run: Any, run_dir: Path, report: dict[str, Any]
) -> dict[str, float]:
    """``paper.measure`` of one finished run, cached in ``run_dir/report/`` under a key of the paper, the
    measure options and the hash of the run's final report, so that an interrupted reproduction does not
    repeat an expensive measurement (the refiner's takes minutes) and a retrained run is measured again."""
    import hashlib

    report_path = run_dir / "report" / "metrics.json"
    key = {
        "paper": paper.name,
        "options": {k: scale.measure_options[k] for k in sorted(scale.measure_options)},
        "report_sha256": hashlib.sha256(report_path.read_bytes()).hexdigest(),
    }
    cache = run_dir / "report" / MEASURES_FILE
    if cache.exists():
        try:
            saved = json.loads(cache.read_text())
        except json.JSONDecodeError:
            saved = {}
        if saved.get("key") == key:
            logger.info("reusing the measures of %s", run_dir)
            return {k: float(v) for k, v in saved["measured"].items()}
    measured = {k: float(v) for k, v in paper.measure(run, report, **scale.measure_options).items()}
    write_text_atomically(cache, json.dumps({"key": key, "measured": measured}, indent=1) + "\n")
    return measured


def _summary(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return {
        "mean": statistics.fmean(finite) if finite else None,
        "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
        "values": values,
    }


# ------------------------------------------------------------------------------------------ a paper
def reproduce(
    paper: Paper,
    scale_name: str,
    work: Path,
    out: Path | None = None,
    seeds: int | Sequence[int] | None = None,
    command: str | None = None,
    zoo: Path | None = None,
    zoo_test_trajectories: int = 20,
    zoo_dtype: str = "float32",
    zoo_sides: Sequence[str] | None = None,
    width_factor: float | None = None,
    trajectories: int | None = None,
) -> dict[str, Any]:
    """Train and measure ``paper``'s comparison at ``scale_name``; write the record, table and PNG.

    ``work`` holds the runs; ``out`` is the record's path (default ``work/<paper>_<scale>.json``; the
    table and the figure go beside it with the suffixes ``.md`` and ``.png``). ``seeds`` takes the first
    that many of the scale's seeds. With ``zoo`` (a zoo folder), the first seed's run of every side is
    exported there as ``<paper>_<side>_<scale>`` (:func:`export_to_zoo`; only the sides named in
    ``zoo_sides`` when given, with the real weights stored in ``zoo_dtype``). ``width_factor`` replaces the
    scale's factor on every side's widths (1: the papers' widths), equally for all sides, and is named in the
    table's scale note; keep such runs in their own ``work`` folder, as those of ``trajectories`` (the data
    recipe's number of trajectories instead of the scale's, for every side). ``seeds`` as a list runs
    exactly those seeds instead (processes running disjoint lists can share ``work``). Returns the record.
    """
    if zoo_sides is not None:
        labels = [side.label for side in paper.sides]
        unknown = [s for s in zoo_sides if s not in labels]
        if unknown:
            raise ConfigError(f"reproduce {paper.name}: --zoo-sides {unknown} are not sides; known: {labels}")
    if scale_name not in paper.scales:
        raise ConfigError(
            f"reproduce {paper.name}: unknown scale {scale_name!r}; known: {list(paper.scales)}"
        )
    scale = with_trajectories(with_width_factor(paper.scales[scale_name], width_factor), trajectories)
    chosen = chosen_seeds(paper.name, scale, seeds)
    work.mkdir(parents=True, exist_ok=True)
    recipe = scaled_recipe(paper, scale, work)
    start = time.perf_counter()
    per_side: dict[str, dict[str, list[float]]] = {}
    curves: dict[str, list[list[float]]] = {}
    first_runs: dict[str, Any] = {}
    sides: dict[str, Any] = {}
    for side in paper.sides:
        for k, seed in enumerate(chosen):
            overrides = side_overrides(side, scale, seed, recipe)
            run_dir = run_folder(work, side, seed)
            logger.info(
                "%s %s: %s, seed %d (%d/%d)", paper.name, scale.name, side.label, seed, k + 1, len(chosen)
            )
            elsewhere = [
                folder
                for folder in sorted(
                    work.parent.parent.glob(f"*/{scale.name}/{run_dir.parent.name}/{run_dir.name}")
                )
                if folder.resolve() != run_dir.resolve()
            ]
            train_side(side, overrides, run_dir, elsewhere)
            report = json.loads((run_dir / "report" / "metrics.json").read_text())
            run = restore_run(run_dir)
            measured = measure_side(paper, scale, run, run_dir, report)
            logger.info(
                "%s seed %d: %s", side.label, seed, ", ".join(f"{k} {v:.4g}" for k, v in measured.items())
            )
            for metric, value in measured.items():
                per_side.setdefault(side.label, {}).setdefault(metric, []).append(float(value))
            history = run.state.get("history", [])  # the checkpoint's epochs (metrics.jsonl is made from it)
            curves.setdefault(side.label, []).append([float(h[paper.curve_metric]) for h in history])
            first_runs.setdefault(side.label, run)
            overrides_text = [o for o in overrides if not o.startswith(("train.seed=", "data.recipe="))]
            sides[side.label] = {"config": side.config, "overrides": overrides_text}
    summary = {label: {m: _summary(v) for m, v in metrics.items()} for label, metrics in per_side.items()}
    if paper.extra is not None:
        for label, metrics in paper.extra(first_runs).items():
            for metric, value in metrics.items():
                summary[label][metric] = _summary([float(value)])
    claims = []
    for claim in paper.claims:
        ours, met = claim.check(summary)
        claims.append({"claim": claim.text, "ours": ours, "met": met})
    record: dict[str, Any] = {
        "paper": paper.name,
        "title": paper.title,
        "scale": scale.name,
        "scale_note": scale.note,
        "width_factor": scale.width_factor,
        "paper_budget": paper.paper_budget,
        "seeds": list(chosen),
        "recipe": _relative(recipe),
        "command": command or f"python -m sciml.reproduce {paper.name} --scale {scale.name}",
        **environment("cpu"),
        "minutes": (time.perf_counter() - start) / 60,
        "train_minutes_total": sum(sum(m.get("train_minutes", [])) for m in per_side.values()),
        "sides": sides,
        "metrics": [list(m) for m in paper.metrics],
        "summary": summary,
        "published": [vars(p) for p in paper.published],
        "claims": claims,
        "curve_metric": paper.curve_metric,
        "curves": curves,
    }
    if zoo is not None:
        record["zoo"] = export_to_zoo(
            paper,
            scale,
            work,
            chosen[0],
            zoo,
            record["command"],
            zoo_test_trajectories,
            weights_dtype=zoo_dtype,
            sides=zoo_sides,
        )
    out = out or work / f"{paper.name}_{scale.name}.json"
    record["figure"] = out.with_suffix(".png").name
    record["record"] = out.name
    write_record(out, record)
    write_text_atomically(out.with_suffix(".md"), markdown(record) + "\n")
    plot_curves(record, out.with_suffix(".png"))
    logger.info("%s %s: %.1f min, record %s", paper.name, scale.name, record["minutes"], out)
    return record


def chosen_seeds(paper_name: str, scale: Scale, seeds: int | Sequence[int] | None) -> tuple[int, ...]:
    """The seeds to run: the scale's (``None``), its first ``seeds`` (a count >= 1), or exactly the given
    list (distinct, non-negative); anything else is a :class:`ConfigError`."""
    if seeds is None:
        return tuple(scale.seeds)
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"reproduce {paper_name}: seeds={seeds}: expected a number of seeds >= 1")
        return tuple(scale.seeds[:seeds])
    if not seeds or len(set(seeds)) != len(seeds) or any(seed < 0 for seed in seeds):
        raise ConfigError(
            f"reproduce {paper_name}: seeds {list(seeds)}: expected distinct non-negative seeds"
        )
    return tuple(seeds)


def with_width_factor(scale: Scale, factor: float | None) -> Scale:
    """``scale`` with every side's widths multiplied by ``factor`` instead of the scale's own factor (``None``
    or the same factor: unchanged); its note says so."""
    if factor is None or factor == scale.width_factor:
        return scale
    if not (math.isfinite(factor) and factor > 0):
        raise ConfigError(f"width factor: {factor!r} is not a positive number")
    note = (
        f"{scale.note} Widths x{factor:g} of the papers' for every side (--width-factor {factor:g}; the "
        f"scale's own factor is {scale.width_factor:g})."
    )
    return dataclasses.replace(scale, width_factor=factor, note=note.strip())


def with_trajectories(scale: Scale, count: int | None) -> Scale:
    """``scale`` with ``count`` trajectories in the data recipe instead of the scale's (``None`` or the same
    count: unchanged), for every side alike; the train / test fractions stay the configs', and the note
    says so."""
    if count is None or count == scale.recipe.get("n_trajectories"):
        return scale
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ConfigError(f"trajectories: {count!r} is not an integer >= 2 (a train and a test trajectory)")
    before = scale.recipe.get("n_trajectories")
    instead = f"the scale's {before}" if before is not None else "the recipe's count"
    note = (
        f"{scale.note} {count} trajectories for every side instead of {instead} (--trajectories {count}; "
        "the same train / test fractions)."
    )
    recipe = merge(scale.recipe, {"n_trajectories": count})
    return dataclasses.replace(scale, recipe=recipe, note=note.strip())


def zoo_name(paper: Paper, side: Side, scale: Scale) -> str:
    """The zoo name of a side's model at a scale: ``<paper>_<side>_<scale>``, lower case, no spaces."""
    return f"{paper.name}_{side.label}_{scale.name}".lower().replace(" ", "_")


def export_to_zoo(
    paper: Paper,
    scale: Scale,
    work: Path,
    seed: int,
    zoo: Path,
    command: str,
    n_test: int = 20,
    weights_dtype: str = "float32",
    sides: Sequence[str] | None = None,
) -> list[str]:
    """Export the ``seed`` run of every side (or of those labelled in ``sides``) to the zoo folder ``zoo``;
    the card states protocol and scale, and ``weights_dtype`` the storage precision of the real weights.

    Returns the exported names. The card's description names the paper, the faithful config, the scale and
    what the scale changed; its command is the reproduction's.
    """
    from sciml.zoo.export import export_run

    names = []
    for side in paper.sides:
        if sides is not None and side.label not in sides:
            continue
        name = zoo_name(paper, side, scale)
        description = (
            f"{side.label} of the {paper.name} reproduction ({paper.title}), {scale.name} scale, seed "
            f"{seed}: {side.config} with the paper's protocol. {scale.note}"
        )
        export_run(
            run_folder(work, side, seed),
            name,
            out=zoo,
            description=description,
            checkpoint="last",
            n_test=n_test,
            command=command,
            progress=False,
            weights_dtype=weights_dtype,
        )
        names.append(name)
    return names


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------------ outputs
def _mean_std(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "-"
    mean, std, n = entry["mean"], entry["std"], len(entry["values"])
    if n == 1:
        return _fmt(mean)
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _fmt(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    return f"{value:.3e}"


def markdown(record: dict[str, Any]) -> str:
    """The reproduction as markdown: command, scale, the table with the paper's numbers, the claims."""
    from sciml.bench.render import met, para, provenance, table

    published = {(p["side"], p["metric"]): p for p in record["published"]}
    rows = []
    for label in record["sides"]:
        for metric, description in record["metrics"]:
            entry = record["summary"].get(label, {}).get(metric)
            if entry is None:
                continue
            paper = published.get((label, metric))
            rows.append(
                [
                    label,
                    description,
                    _mean_std(entry),
                    _fmt(paper["value"]) if paper else "-",
                    paper["source"] if paper else "",
                ]
            )
    seeds = len(record["seeds"])
    lines = [
        provenance(record, record.get("record", f"{record['paper']}_{record['scale']}.json")),
        "",
        para(
            f"Scale `{record['scale']}`: {record['scale_note']} "
            + (f"Mean ± standard deviation over {seeds} seeds" if seeds != 1 else "One seed, no spread")
            + f" ({', '.join(map(str, record['seeds']))}); training "
            f"{record.get('train_minutes_total', 0.0):.0f} min in all, this invocation "
            f"{record['minutes']:.0f} min (runs already finished are reused)."
        ),
        "",
        table(["side", "metric", "ours", "paper", "paper's source"], rows),
    ]
    if record["claims"]:
        lines += [
            "",
            table(
                ["claim", "ours", "verdict"],
                [
                    [c["claim"], c["ours"], met(c["met"]) if c["met"] is not None else "undecided"]
                    for c in record["claims"]
                ],
            ),
        ]
    lines += ["", f"Learning curves ({record['curve_metric']} per epoch, every seed): `{record['figure']}`."]
    if record.get("paper_budget"):
        lines += ["", para(f"The paper's own recipe (`--scale paper`): {record['paper_budget']}")]
    return "\n".join(lines)


def plot_curves(record: dict[str, Any], path: Path) -> None:
    """Every seed's learning curve of every side, one colour per side (log scale)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for i, (label, runs) in enumerate(record["curves"].items()):
        color = f"C{i}"
        for k, curve in enumerate(runs):
            if curve:
                ax.plot(
                    np.arange(1, len(curve) + 1),
                    curve,
                    color=color,
                    alpha=0.8,
                    label=label if k == 0 else None,
                )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(record["curve_metric"].replace("_", " "))
    ax.set_title(textwrap.fill(f"{record['title']} ({record['scale']} scale)", 70), fontsize=9)
    ax.legend()
    save_figure(fig, path)
