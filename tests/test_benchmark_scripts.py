"""Every benchmark script runs in its quick mode, writes a JSON record with its ratios, and renders it."""

import json
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("script", "ratio_key", "extra"),
    [
        ("bench_navier_stokes", "rows", []),
        ("bench_metrics", "ratios", []),
        ("bench_trainer", "ratio_sciml_to_hand_loop", []),
        ("bench_families", "rows", ["--configs", "configs/deeponet_ns.yaml"]),
        ("bench_t1", "rows", []),
        ("chebyshev_tucker", "ratios", []),
        ("bench_throughput", "rows", []),
        ("bench_scaling", "series", []),
        ("bench_surrogate", "rows", []),
    ],
)
def test_quick_mode_writes_json(script, ratio_key, extra, tmp_path, load_script):
    out = tmp_path / f"{script}.json"
    module = load_script(script)
    module.main(["--quick", "--out", str(out), *extra])
    record = json.loads(out.read_text())
    assert record[ratio_key]
    assert record["torch"] and record["date"] and "--quick" in record["command"]
    if hasattr(module, "markdown"):  # what BENCHMARKS.md shows: a table beside the command that made it
        text = module.markdown(record)
        assert f"`{record['command']}`" in text and "|---|" in text
    if "plot" in record:
        assert Path(record["plot"]).stat().st_size > 0
