"""The Spectral-Refiner benchmark runs in quick mode and writes its JSON record and plot."""

import json
import math


def test_quick_mode_writes_json_and_png(tmp_path, load_script):
    module = load_script("bench_spectral_refiner")
    returned = module.main(["--quick", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "spectral_refiner.json").read_text())
    assert record["benchmark"] == "spectral_refiner" == returned["benchmark"]
    assert record["torch"] and record["date"] and "--quick" in record["command"]
    assert record["n_windows"] == len(record["rows"]) == 2
    keys = {"rel_l2_before", "rel_l2_after", "residual_before", "residual_after", "residual_truth"}
    assert keys <= set(record["mean"])
    for row in record["rows"]:
        assert keys | {"window", "best_iteration"} <= set(row)
        assert all(math.isfinite(row[k]) and row[k] >= 0 for k in keys)
        assert row["residual_after"] <= row["residual_before"]  # the best iterate is kept
    assert all(math.isfinite(v) for v in record["ratios"].values())
    assert len(record["residual_history_mean"]) == record["settings"]["iterations"] + 1
    assert (tmp_path / "spectral_refiner.png").stat().st_size > 0
