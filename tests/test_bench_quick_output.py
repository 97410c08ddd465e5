"""``--quick`` never writes into the recorded results ``solvers/results/``, however a script is started."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pytest

import sciml.bench
from sciml.bench.record import output_path, run_script
from sciml.errors import ConfigError

SCRIPTS = [bench for bench in sciml.bench.BENCHMARKS if bench.module is None]


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file directly in ``folder``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    """A checkout's ``solvers/results`` (a copy of the recorded files) as the results folders, and the
    checkout as the working directory, as when a script is run by hand from the repository root."""
    recorded = tmp_path / "solvers" / "results"
    shutil.copytree(sciml.bench.RESULTS, recorded, ignore=shutil.ignore_patterns("quick"))
    monkeypatch.setattr(sciml.bench, "RESULTS", recorded)
    monkeypatch.setattr(sciml.bench, "QUICK_RESULTS", recorded / "quick")
    monkeypatch.chdir(tmp_path)
    return recorded


def test_every_script_is_covered():
    scripts = sorted(p.stem for p in sciml.bench.SOLVERS.glob("*.py"))
    assert scripts == sorted(bench.name for bench in SCRIPTS)


def test_a_quick_run_by_hand_leaves_the_recorded_results_byte_identical(results, load_script):
    before = digests(results)
    load_script("bench_metrics").main(["--quick", "--resolution", "32"])
    assert digests(results) == before
    assert (results / "quick" / "metrics.json").stat().st_size > 0
    assert (results / "quick" / "metrics.png").stat().st_size > 0


@pytest.mark.parametrize("bench", SCRIPTS, ids=lambda bench: bench.name)
def test_quick_refuses_an_out_in_the_recorded_results(bench, results, load_script):
    before = digests(results)
    out = results if bench.out_is_dir else results / bench.json
    with pytest.raises(ConfigError, match="--quick never writes into the recorded results"):
        load_script(bench.name).main(["--quick", "--out", str(out)])
    assert digests(results) == before


def test_output_path_defaults(results):
    assert output_path(None, "t1.json", quick=False) == Path("solvers/results/t1.json")
    assert output_path(None, "t1.json", quick=True) == Path("solvers/results/quick/t1.json")
    assert output_path(None, "", quick=True) == Path("solvers/results/quick")
    assert output_path("elsewhere/t1.json", "t1.json", quick=True) == Path("elsewhere/t1.json")
    assert output_path(results / "t1.json", "t1.json", quick=False) == results / "t1.json"


def test_a_script_started_by_hand_reports_the_refusal_in_one_line(results, load_script, monkeypatch, caplog):
    out = results / "navier_stokes.json"
    monkeypatch.setattr("sys.argv", ["solvers/bench_navier_stokes.py", "--quick", "--out", str(out)])
    before = digests(results)
    assert run_script(load_script("bench_navier_stokes").main) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"error: --out {out}: --quick never writes into")
    assert digests(results) == before
