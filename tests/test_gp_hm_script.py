"""The GP-HM benchmark script (solvers/gp_hm.py) runs in its quick mode and records every problem."""

import json
import math
from pathlib import Path

import matplotlib
import pytest

from sciml.bench.memory import PeakMemory


def _forbid_backend_change(*args, **kwargs):
    pytest.fail(f"matplotlib.use{args} called: a benchmark must not change the caller's backend")


def test_quick_mode_writes_every_problem(tmp_path, load_script, monkeypatch):
    monkeypatch.setattr(matplotlib, "use", _forbid_backend_change)
    module = load_script("gp_hm")
    # one linear and one nonlinear problem keep the smoke test short; every problem runs the same code path
    problems = ["poisson1d_sin100x", "allen_cahn1d_sin100x"]
    argv = ["--quick", "--out", str(tmp_path), "--problems", ",".join(problems), "--memory-sizes", "40,80"]
    result = module.main(argv)
    record = json.loads((tmp_path / "gp_hm_quick.json").read_text())
    assert record["problems"] == problems
    assert "--quick" in record["command"] and record["torch"] and record["date"]
    for name in record["problems"]:
        rows = [r for r in record["rows"] if r["problem"] == name]
        assert {r["method"] for r in rows} >= set(module.METHODS), name
        assert all(math.isfinite(r["rel_l2"]) for r in rows), name
        if name.startswith("poisson"):
            assert {"fd2", "chebyshev"} <= {r["method"] for r in rows}, name
    timing = record["timing_400x400"][0]
    assert timing["grid"] == [400, 400] and timing["seconds_per_iteration"] > 0
    assert math.isclose(timing["ratio_to_jax_reference"], timing["seconds_per_iteration"] / 1.1)
    assert [m["grid"] for m in record["memory_scaling"]] == [[40, 40], [80, 80]]
    assert all(m["peak_rss_increase_mb"] >= 0 for m in record["memory_scaling"])
    with PeakMemory() as probe:  # the one peak-memory tool of the package measured the figures
        pass
    assert {m["measured_with"] for m in record["memory_scaling"]} == {probe.method}
    for plot in record["plots"]:
        assert Path(plot).exists()
    assert result["rows"] == record["rows"]
