"""The families table from the zoo: quick mode tabulates every shipped entry and judges the targets."""

import importlib.util
import json
from pathlib import Path

import sciml.zoo

SCRIPT = Path(__file__).parents[1] / "solvers" / "bench_zoo_families.py"


def test_quick_mode_tabulates_every_zoo_entry(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_zoo_families", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    record = module.main(["--quick", "--out", str(tmp_path)])
    names = [e.name for e in sciml.zoo.list()]
    assert [r["name"] for r in record["rows"]] == names
    for row in record["rows"]:
        model = sciml.zoo.load(row["name"])
        assert row["test"]["l2"] == model.metrics["l2"]["mean"]
        assert row["inference_ms_per_sample"] > 0
    for target in record["targets"]:
        assert isinstance(target["met"], bool) and target["figures"]
    assert json.loads((tmp_path / "zoo_families_quick.json").read_text())["rows"] == record["rows"]
    assert (tmp_path / "zoo_families_quick.png").stat().st_size > 0
    assert "| TFNO vs FNO |" in module.markdown(record)
