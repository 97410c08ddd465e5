"""Run the benchmark scripts of ``solvers/`` and render BENCHMARKS.md from the JSON records they write.

``python -m sciml.bench all [--quick] [--only NAME,...]`` runs the scripts, then re-renders the document;
``python -m sciml.bench render [--check]`` only re-renders (or checks for drift). Each script
``solvers/<name>.py`` has ``main(argv) -> dict`` (writes a JSON record) and ``markdown(record) -> str``
(renders it); the document holds one generated block per script between ``<!-- bench:<name> -->`` and
``<!-- /bench:<name> -->``, and the text around the blocks is kept verbatim (see :mod:`sciml.bench.render`).

Quick mode writes its records to ``solvers/results/quick/`` and renders the ``BENCHMARKS.md`` there, so
that a smoke run never overwrites the measured figures of the top-level ``BENCHMARKS.md``.

The helpers the scripts share live beside this module: :mod:`sciml.bench.timing` (device-synchronized
timings, interleaved rounds), :mod:`sciml.bench.memory` (peak memory of a block), :mod:`sciml.bench.record`
(the environment, the JSON record, the PNG) and :mod:`sciml.bench.render` (the generated blocks of the
document). :func:`load_script` imports a script by path (the tests use it too).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sciml.assets import asset_root
from sciml.atomic import write_text_atomically
from sciml.bench.render import append_section, find_blocks, replace_blocks
from sciml.errors import ConfigError

logger = logging.getLogger("sciml.bench")

ROOT = asset_root()  # the checkout, or the copy of solvers/ and BENCHMARKS.md installed with the package
SOLVERS = ROOT / "solvers"
RESULTS = SOLVERS / "results"
QUICK_RESULTS = RESULTS / "quick"
DOCUMENT = ROOT / "BENCHMARKS.md"

QUICK_HEADER = """# Benchmarks (quick mode)

Smoke-test figures from `python -m sciml.bench all --quick`: tiny problems and few repeats, to check that
every script runs and renders. They are not measurements; the measured figures are in the top-level
`BENCHMARKS.md` (full mode). Generated from the JSON records next to this file; do not edit by hand.
"""

FULL_HEADER = """# Benchmarks

Every block between `bench:` markers is generated from `solvers/results/*.json` by
`python -m sciml.bench render`; `python -m sciml.bench all` reruns the scripts first.
"""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script of ``solvers/`` and where its record goes.

    Attributes:
        name: the script ``solvers/<name>.py`` and the marker name ``bench:<name>``.
        title: the section title when its block is appended to a document that lacks it.
        json: the record's file name in full mode.
        quick_json: the record's file name in quick mode (default: ``json``).
        out_is_dir: the script's ``--out`` is a folder (it names its JSON itself), not the JSON path.
        quick_args: extra arguments in quick mode.
        full_args: extra arguments in full mode.
        module: a package module that plays the script's part (its ``main(argv)`` and
            ``markdown(record)``), e.g. ``sciml.reproduce.__main__`` for the papers' reproductions;
            ``None`` for ``solvers/<name>.py``.
    """

    name: str
    title: str
    json: str
    quick_json: str | None = None
    out_is_dir: bool = False
    quick_args: tuple[str, ...] = ()
    full_args: tuple[str, ...] = ()
    module: str | None = None

    @property
    def script(self) -> Path:
        """The script's path (for a ``module`` benchmark: the module's file)."""
        if self.module is not None:
            spec = importlib.util.find_spec(self.module)
            return Path(spec.origin) if spec is not None and spec.origin else SOLVERS / f"{self.name}.py"
        return SOLVERS / f"{self.name}.py"

    @property
    def command(self) -> str:
        """How to run it by hand (without ``--out``), in full mode."""
        head = (
            f"python -m {self.module.removesuffix('.__main__')}" if self.module else f"python {self.script}"
        )
        return " ".join([head, *self.full_args])

    def load(self) -> ModuleType:
        """The module with ``main(argv)`` and ``markdown(record)``."""
        return importlib.import_module(self.module) if self.module else load_script(self.name)

    def record_name(self, quick: bool) -> str:
        """The record's file name in this mode."""
        return (self.quick_json or self.json) if quick else self.json


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "bench_navier_stokes", "Navier-Stokes solver: step cost, accuracy, convergence", "navier_stokes.json"
    ),
    Benchmark("bench_metrics", "Sobolev evaluators: cost vs one rfft2", "metrics.json"),
    Benchmark("bench_trainer", "Training loop overhead", "trainer.json"),
    Benchmark("bench_t1", "T1 (Transform Once) train step vs FNO", "t1.json"),
    Benchmark("bench_throughput", "Training throughput of every family", "throughput.json"),
    Benchmark("bench_scaling", "Data-parallel scaling (torchrun)", "scaling.json"),
    Benchmark("bench_surrogate", "Surrogates vs the solver", "surrogate.json"),
    Benchmark("bench_families", "Model families, same data and budget", "families.json"),
    Benchmark("bench_optimizers", "Second-order optimizers (issue 19)", "optimizers.json"),
    Benchmark("bench_optimizers_gp", "Second-order optimizers on the GP-HM objective", "optimizers_gp.json"),
    Benchmark("bench_dcdm", "DCDM vs CG, IC-PCG and AMG (issue 20)", "dcdm.json"),
    Benchmark("bench_navier_stokes_3d", "3-D Navier-Stokes and LES (issue 18)", "navier_stokes_3d.json"),
    Benchmark("bench_loader", "Data loading (issue 17)", "loader.json"),
    Benchmark("bench_turbulence", "3-D turbulence: IFactFormer, FNO-3D, LES (issue 18)", "turbulence.json"),
    Benchmark(
        "bench_zoo_families",
        "Every family on the 64^2 FNO-setting data (the zoo)",
        "zoo_families.json",
        quick_json="zoo_families_quick.json",
        out_is_dir=True,
    ),
    Benchmark("gp_hm", "GP-HM solver", "gp_hm.json", quick_json="gp_hm_quick.json", out_is_dir=True),
    Benchmark("chebyshev_tucker", "Chebyshev-Tucker vs full-grid Tucker", "chebyshev_tucker.json"),
    Benchmark(
        "bench_spectral_refiner", "Spectral-Refiner fine-tuning", "spectral_refiner.json", out_is_dir=True
    ),
)
REPRODUCTIONS: tuple[Benchmark, ...] = tuple(
    Benchmark(
        f"reproduce_{paper}",
        f"Paper reproduction: {paper}",
        f"reproduce_{paper}.json",
        module="sciml.reproduce.__main__",
        quick_args=(paper,),
        full_args=(paper, "--scale", "cpu"),
    )
    for paper in ("lsm", "t1", "tfno", "mg_tfno", "refiner")
)
"""The papers' comparisons at the cpu scale (``python -m sciml.reproduce PAPER --scale cpu``)."""
BENCHMARKS = BENCHMARKS + REPRODUCTIONS
REGISTRY: dict[str, Benchmark] = {b.name: b for b in BENCHMARKS}


def select(only: str | list[str] | None) -> list[Benchmark]:
    """The registered benchmarks named in ``only`` (comma-separated or a list; all when empty)."""
    if not only:
        return list(BENCHMARKS)
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; known: {', '.join(REGISTRY)}")
    return [REGISTRY[n] for n in names]


def load_script(name: str) -> ModuleType:
    """Import ``solvers/<name>.py`` of the checkout by path (cached in ``sys.modules``)."""
    module_name = f"sciml_bench_scripts.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = SOLVERS / f"{name}.py"
    if not path.exists():
        raise ConfigError(f"benchmark script {path} does not exist")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _display(path: Path) -> str:
    """``path`` relative to the working directory when below it (short commands in the records)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_benchmark(bench: Benchmark, results: Path, quick: bool, extra: list[str] | None = None) -> Path:
    """Run one script's ``main`` with ``--out`` in ``results``; returns the path of its JSON record."""
    results.mkdir(parents=True, exist_ok=True)
    record = results / bench.record_name(quick)
    out = results if bench.out_is_dir else record
    argv = (["--quick", *bench.quick_args] if quick else list(bench.full_args)) + ["--out", _display(out)]
    argv += list(extra or [])
    logger.info("== %s: %s %s", bench.name, bench.command, " ".join(argv))
    bench.load().main(argv)
    if not record.exists():
        raise ConfigError(f"{bench.name} did not write its record {record}")
    return record


def run_all(benchmarks: list[Benchmark], results: Path, quick: bool) -> dict[str, Any]:
    """Run every benchmark (a failure is logged and the others still run); returns seconds and failures."""
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for bench in benchmarks:
        if not bench.script.exists():
            logger.warning("skipping %s: %s does not exist (yet)", bench.name, bench.script)
            continue
        start = time.perf_counter()
        try:
            run_benchmark(bench, results, quick)
        except Exception as err:  # keep going: one broken script must not hide the others' figures
            logger.error("%s failed:\n%s", bench.name, traceback.format_exc())
            failed[bench.name] = f"{type(err).__name__}: {err}"
        seconds[bench.name] = time.perf_counter() - start
        logger.info("== %s: %.1f s", bench.name, seconds[bench.name])
        if quick and seconds[bench.name] > 60:
            logger.warning(
                "%s took %.0f s in quick mode (the target is under a minute)", bench.name, seconds[bench.name]
            )
    return {"seconds": seconds, "failed": failed}


@dataclass
class Rendered:
    """The result of rendering a document: its new text and what could not be rendered."""

    text: str
    rendered: list[str]
    skipped: dict[str, str]
    stale: dict[str, str]


def render_document(text: str | None, results: Path, quick: bool = False) -> Rendered:
    """Render every registered block whose record exists in ``results`` into ``text``.

    Existing blocks are replaced in place; a record whose block is missing gets a new section at the end.
    A script without ``markdown(record)`` is skipped (noted in ``skipped``); a block whose record is
    missing is kept as it is (noted in ``stale``). ``text=None`` starts a new document.
    """
    if text is None:
        text = QUICK_HEADER if quick else FULL_HEADER
    present = {block.name for block in find_blocks(text, REGISTRY)}
    contents: dict[str, str] = {}
    skipped: dict[str, str] = {}
    stale: dict[str, str] = {}
    appended: list[Benchmark] = []
    for bench in BENCHMARKS:
        path = results / bench.record_name(quick)
        if not path.exists():
            if bench.name in present:
                stale[bench.name] = f"no record {path}; the block is kept as it is"
            continue
        if not bench.script.exists():
            skipped[bench.name] = f"{bench.script} does not exist"
            continue
        markdown = getattr(bench.load(), "markdown", None)
        if markdown is None:
            skipped[bench.name] = f"{bench.script} has no markdown(record) yet"
            continue
        record = json.loads(path.read_text())
        contents[bench.name] = markdown(record)
        if bench.name not in present:
            appended.append(bench)
    text = replace_blocks(text, contents, REGISTRY)
    for bench in appended:
        text = append_section(text, bench.name, bench.title, contents[bench.name])
    for name, why in skipped.items():
        logger.info("not rendered: %s (%s)", name, why)
    for name, why in stale.items():
        logger.warning("stale block %s: %s", name, why)
    return Rendered(text=text, rendered=sorted(contents), skipped=skipped, stale=stale)


def render(doc: Path, results: Path, quick: bool = False, check: bool = False) -> int:
    """Re-render ``doc`` from the records in ``results`` (or with ``check``, compare); returns an exit code.

    With ``check`` nothing is written: the exit code is 1 when the document differs from what the records
    render (the diff is logged) or when a block has no record.
    """
    current = doc.read_text() if doc.exists() else None
    result = render_document(current, results, quick)
    if check:
        if current == result.text and not result.stale:
            logger.info("%s matches the records in %s", doc, results)
            return 0
        if current != result.text:
            diff = difflib.unified_diff(
                (current or "").splitlines(keepends=True),
                result.text.splitlines(keepends=True),
                fromfile=str(doc),
                tofile="rendered from the records",
            )
            logger.error("%s has drifted from the records in %s:\n%s", doc, results, "".join(diff))
        return 1
    if current != result.text:
        write_text_atomically(doc, result.text)  # creates the folder when missing
        logger.info("rendered %s into %s", ", ".join(result.rendered) or "nothing", doc)
    else:
        logger.info("%s is up to date", doc)
    return 0


__all__ = [
    "BENCHMARKS",
    "REGISTRY",
    "Benchmark",
    "Rendered",
    "load_script",
    "render",
    "render_document",
    "run_all",
    "run_benchmark",
    "select",
]
