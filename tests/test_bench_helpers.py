"""The helpers the benchmark scripts share: timings, atomic records and figures, matplotlib left alone."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from sciml.bench.record import bar_chart, environment, save_figure, write_record, write_record_and_plot
from sciml.bench.timing import interleaved_times, seconds_per_call, synchronize

ROOT = Path(__file__).parents[1]
PNG = b"\x89PNG\r\n\x1a\n"

DRAW_WITH_A_SENTINEL_BACKEND = """
import sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # the user's choice, which nothing of ours may change
import sciml.bench
import sciml.bench.record
import sciml.training.plots

scripts = [b.load() for b in sciml.bench.BENCHMARKS if b.script.exists()]
out = Path(sys.argv[1])
sciml.training.plots.plot_losses(out / "losses.png", [{"epoch": 1, "train_loss": 1.0, "valid_l2": 0.5}])
sciml.bench.record.bar_chart(out / "bars.png", ["a", "b"], [1.0, 2.0], "title", "y", reference=1.5)
zoo = next(s for s in scripts if s.__name__.endswith("bench_zoo_families"))
zoo.plot([{"name": "fno", "family": "fno", "params": 10, "test": {"l2": 0.1}}], out / "zoo.png")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules, len(scripts))
"""


def test_drawing_leaves_the_matplotlib_backend_and_pyplot_alone(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MPLBACKEND", None)
    result = subprocess.run(
        [sys.executable, "-c", DRAW_WITH_A_SENTINEL_BACKEND, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    backend, pyplot_imported, n_scripts = result.stdout.split()
    assert backend == "svg" and pyplot_imported == "False" and int(n_scripts) >= 10
    for name in ("losses.png", "bars.png", "zoo.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.png", "losses.png", "zoo.png"]


def test_seconds_per_call_warms_up_then_averages_the_timed_calls():
    calls = []

    def work() -> None:
        calls.append(time.perf_counter())
        time.sleep(0.01)

    seconds = seconds_per_call(work, "cpu", repeats=3, warmup=2)
    assert len(calls) == 5
    assert 0.01 <= seconds < calls[-1] - calls[2] + 0.02  # the mean of the three timed calls


def test_interleaved_times_runs_the_rounds_in_order():
    log = []
    fns = {"a": lambda: log.append("a"), "b": lambda: log.append("b")}
    times = interleaved_times(fns, 2, torch.device("cpu"), repeats=2, warmup=1, warmup_each=1)
    assert log == ["a", "b"] + (["a"] * 3 + ["b"] * 3) * 2
    assert list(times) == ["a", "b"] and all(len(t) == 2 and min(t) >= 0 for t in times.values())
    synchronize("cpu")  # nothing to wait for, and no error


def test_records_and_figures_are_written_whole_or_not_at_all(tmp_path):
    record = {"benchmark": "x", **environment()}
    path = write_record(tmp_path / "deep" / "x.json", record)
    assert json.loads(path.read_text()) == record
    with pytest.raises(TypeError):
        write_record(path, {"bad": object()})
    assert json.loads(path.read_text()) == record  # the earlier record is untouched
    figure = tmp_path / "deep" / "fig.png"
    save_figure(Figure(), figure)
    assert figure.read_bytes().startswith(PNG)
    with pytest.raises(ValueError):
        save_figure(Figure(), tmp_path / "deep" / "fig.not-a-format")
    assert sorted(p.name for p in path.parent.iterdir()) == ["fig.png", "x.json"]  # no temporary left


def test_record_and_plot_and_bar_chart(tmp_path):
    def plot(record, png):
        return bar_chart(png, list(record["values"]), list(record["values"].values()), "t", "y")

    path = write_record_and_plot(tmp_path / "r.json", {"values": {"a": 1.0, "b": 3.0}}, plot)
    assert json.loads(path.read_text())["values"] == {"a": 1.0, "b": 3.0}
    assert (tmp_path / "r.png").read_bytes().startswith(PNG)
