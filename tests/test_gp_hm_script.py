"""The GP-HM benchmark script (solvers/gp_hm.py) runs in its quick mode and records every problem."""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "solvers" / "gp_hm.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gp_hm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_mode_writes_every_problem(tmp_path):
    module = load_script()
    result = module.main(["--quick", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "gp_hm_quick.json").read_text())
    assert record["problems"] == [case.name for case in module.CASES]
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
    assert [m["grid"] for m in record["memory_scaling"]] == [[100, 100], [200, 200]]
    assert all(m["peak_rss_increase_mb"] >= 0 for m in record["memory_scaling"])
    for plot in record["plots"]:
        assert Path(plot).exists()
    assert result["rows"] == record["rows"]
