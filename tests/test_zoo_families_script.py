"""The families table from the zoo: quick mode tabulates every shipped entry and judges the targets."""

import json

import sciml.zoo


def test_quick_mode_tabulates_every_zoo_entry(tmp_path, load_script):
    module = load_script("bench_zoo_families")
    record = module.main(["--quick", "--out", str(tmp_path)])
    names = [e.name for e in sciml.zoo.list() if e.has_test_metrics]
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
