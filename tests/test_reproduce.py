"""The papers' reproduction commands: the smoke scale end to end, and the rules a smaller scale must keep."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from sciml.bench import REGISTRY, render_document
from sciml.errors import ConfigError
from sciml.reproduce import PAPERS
from sciml.reproduce.__main__ import main
from sciml.reproduce.measures import ratio_claim
from sciml.reproduce.protocol import Scale, merge
from sciml.reproduce.runner import side_overrides


def _summary(**sides: list[float]) -> dict:
    import statistics

    return {
        label: {
            "e": {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "values": v}
        }
        for label, v in sides.items()
    }


def test_ratio_claim_decides_only_outside_the_seed_spread():
    clearly_better = _summary(a=[0.50, 0.52, 0.48], b=[1.00, 1.02, 0.98])
    words, met = ratio_claim(clearly_better, "a", "b", "e", 1.0, "rel L2")
    assert met is True and words.startswith("0.5x")
    clearly_worse = _summary(a=[2.0, 2.1, 1.9], b=[1.00, 1.02, 0.98])
    assert ratio_claim(clearly_worse, "a", "b", "e", 1.0, "rel L2")[1] is False
    overlapping = _summary(a=[0.9, 1.1, 1.0], b=[1.0, 0.95, 1.05])
    words, met = ratio_claim(overlapping, "a", "b", "e", 1.0, "rel L2")
    assert met is None and "within the seed spread" in words
    # the spread is the ratio's, propagated from both sides: a 10% spread on each side is ~14% on the ratio
    ratio_words = ratio_claim(_summary(a=[0.9, 1.1], b=[1.8, 2.2]), "a", "b", "e", 0.9, "x")[0]
    assert "0.5x ± 0.1" in ratio_words


def test_scaled_overrides_are_equal_for_both_sides_and_keep_the_schedule_shape(tmp_path):
    paper = PAPERS["lsm"]
    scale = paper.scales["cpu"]
    recipe = tmp_path / "recipe.yaml"
    by_side = {side.label: side_overrides(side, scale, 3, recipe) for side in paper.sides}
    for overrides in by_side.values():
        for common in scale.common:
            assert common in overrides
        assert f"train.epochs={scale.epochs}" in overrides
        # StepLR(100, 0.5) over 500 epochs keeps its shape over 20: halve every 4 epochs
        assert "optim.scheduler.step_size=4" in overrides
        assert "train.seed=3" in overrides and f"data.recipe={recipe}" in overrides
    assert "model.width=32" in by_side["LSM"]  # the paper's d = 64, halved
    assert "model.width=10" in by_side["FNO"]  # the FNO paper's width 20, halved
    assert "model.patch_size=2" in by_side["LSM"] and not any("patch" in o for o in by_side["FNO"])


def test_width_factor_option_scales_every_side_alike_and_says_so(tmp_path):
    from sciml.reproduce.runner import with_width_factor

    paper = PAPERS["lsm"]
    scale = paper.scales["cpu"]
    assert with_width_factor(scale, None) is scale and with_width_factor(scale, scale.width_factor) is scale
    quarter = with_width_factor(scale, 0.25)
    assert quarter.width_factor == 0.25 and quarter.note.startswith(scale.note)
    assert "--width-factor 0.25" in quarter.note
    by_side = {side.label: side_overrides(side, quarter, 0, tmp_path / "r.yaml") for side in paper.sides}
    assert "model.width=16" in by_side["LSM"] and "model.width=5" in by_side["FNO"]  # 64 and 20 x 0.25
    with pytest.raises(ConfigError, match="width factor"):
        with_width_factor(scale, -1.0)


def test_every_scale_only_changes_what_the_issue_allows():
    allowed_common = (
        "data.train=",
        "data.test=",
        "data.valid=",
        "data.batch_size=",
        "eval.",
        "train.progress=",
    )
    allowed_common += ("model.modes=", "model.model_kwargs.modes=", "model.patch_size=")
    smoke_only = ("data.output_time=", "train.unroll=", "data.t_in=", "data.t_out=", "model.latent_steps=")
    smoke_only += ("model.modes_t=",)
    allowed_recipe = {"solver", "output", "n_trajectories", "batch_size"}
    for paper in PAPERS.values():
        assert set(paper.scales) == {"smoke", "cpu", "paper"}, paper.name
        assert paper.scales["paper"].recipe == {} and paper.scales["paper"].common == ()
        assert paper.scales["paper"].width_factor == 1.0 and paper.scales["paper"].epochs is None
        assert len(paper.scales["cpu"].seeds) >= 2, paper.name  # a seed spread
        for scale in paper.scales.values():
            assert set(scale.recipe) <= allowed_recipe, (paper.name, scale.name)
            allowed = allowed_common + (smoke_only if scale.name == "smoke" else ())
            for override in scale.common + tuple(o for v in scale.per_side.values() for o in v):
                assert override.startswith(allowed), (paper.name, scale.name, override)
            if scale.recipe.get("solver"):
                assert set(scale.recipe["solver"]) <= {"resolution", "dt", "stepper"}
            # the note the table prints says what the scale does
            if "n_trajectories" in scale.recipe:
                assert f"{scale.recipe['n_trajectories']} trajectories" in scale.note, (
                    paper.name,
                    scale.name,
                )
            if scale.epochs is not None:
                assert f"{scale.epochs} epoch" in scale.note, (paper.name, scale.name)


def test_merge_is_nested_and_leaves_its_inputs_alone():
    base = {"solver": {"resolution": 256, "dt": 1e-4}, "n": 1}
    merged = merge(base, {"solver": {"resolution": 32}, "n": 5})
    assert merged == {"solver": {"resolution": 32, "dt": 1e-4}, "n": 5}
    assert base == {"solver": {"resolution": 256, "dt": 1e-4}, "n": 1}


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_smoke_reproduction_writes_record_table_and_figure(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"{name}.json"
    assert main([name, "--quick", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    paper = PAPERS[name]
    assert record["paper"] == name and record["scale"] == "smoke" and record["seeds"] == [0]
    assert set(record["summary"]) == {side.label for side in paper.sides}
    for label, metrics in record["summary"].items():
        for metric, entry in metrics.items():
            assert entry["mean"] is not None and entry["mean"] == entry["mean"], (label, metric)
        assert len(record["curves"][label]) == 1 and len(record["curves"][label][0]) == 1  # one epoch
    assert [c["claim"] for c in record["claims"]] == [c.text for c in paper.claims]
    table = out.with_suffix(".md").read_text()
    for published in paper.published:
        assert f"| {published.source} |" in table  # the paper's number in the row beside ours
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # the runs are kept and reused: a second call trains nothing and measures the same
    timed_now = {"step_ms", "speedup_vs_fno"}  # measured again by each call, on the reused models

    def trained(summary: dict) -> dict:
        return {side: {k: v for k, v in m.items() if k not in timed_now} for side, m in summary.items()}

    first = trained(record["summary"])
    assert main([name, "--quick", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    assert trained(json.loads(out.read_text())["summary"]) == first


def test_a_run_of_another_config_is_refused_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    assert main(["t1", "--quick", "--work", str(work)]) == 0
    saved = work / "FNO" / "seed0" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    config["optim"]["lr"] = 0.5
    saved.write_text(yaml.safe_dump(config))
    assert main(["t1", "--quick", "--work", str(work)]) == 2  # one clear error, nothing retrained
    assert yaml.safe_load(saved.read_text())["optim"]["lr"] == 0.5
    assert main(["t1", "--quick", "--work", str(work), "--fresh"]) == 0


def test_unknown_scale_is_a_config_error(tmp_path):
    from sciml.reproduce.runner import reproduce

    paper = PAPERS["t1"]
    broken = type(paper)(**{**vars(paper), "scales": {"smoke": Scale("smoke", seeds=(0,))}})
    with pytest.raises(ConfigError, match="unknown scale 'cpu'"):
        reproduce(broken, "cpu", tmp_path)


def test_reproductions_render_into_the_benchmarks_document(tmp_path):
    record = {
        "paper": "t1",
        "title": "T1 vs FNO",
        "scale": "cpu",
        "scale_note": "note.",
        "paper_budget": "",
        "seeds": [0, 1, 2],
        "command": "python -m sciml.reproduce t1 --scale cpu",
        "minutes": 3.0,
        "sides": {"T1": {}, "FNO": {}},
        "metrics": [["test_l2", "test rel L2"]],
        "summary": {
            "T1": {"test_l2": {"mean": 0.1, "std": 0.01, "values": [0.09, 0.1, 0.11]}},
            "FNO": {"test_l2": {"mean": 0.2, "std": 0.02, "values": [0.18, 0.2, 0.22]}},
        },
        "published": [],
        "claims": [{"claim": "T1 error <= FNO's", "ours": "0.5x", "met": True}],
        "curve_metric": "train_loss",
        "curves": {},
        "figure": "reproduce_t1.png",
    }
    (tmp_path / REGISTRY["reproduce_t1"].json).write_text(json.dumps(record))
    rendered = render_document(None, tmp_path)
    assert "reproduce_t1" in rendered.rendered
    assert "| T1 | test rel L2 | 0.1 ± 0.01 | - |" in rendered.text
    assert "| T1 error <= FNO's | 0.5x | **met** |" in rendered.text


def test_zoo_export_of_a_reproduction_states_protocol_and_scale(tmp_path, monkeypatch):
    from sciml.zoo import load

    monkeypatch.chdir(tmp_path)
    zoo = tmp_path / "zoo"
    assert main(["t1", "--quick", "--work", str(tmp_path / "work"), "--zoo", str(zoo)]) == 0
    manifest = json.loads((zoo / "manifest.json").read_text())
    assert {"t1_t1_smoke", "t1_fno_smoke"} <= set(manifest["models"])
    model = load(path=zoo / "t1_t1_smoke")
    card = (zoo / "t1_t1_smoke" / "README.md").read_text()
    assert "smoke scale" in card and "configs/paper/t1_ns_v1e-3.yaml" in card
    assert model.config["training"]["command"].startswith("python -m sciml.reproduce t1")

    # the same runs (reused) exported again: only the T1 side, its real weights stored in float16
    half_zoo = tmp_path / "half"
    argv = ["t1", "--quick", "--work", str(tmp_path / "work"), "--zoo", str(half_zoo)]
    assert main([*argv, "--zoo-dtype", "float16", "--zoo-sides", "T1"]) == 0
    assert set(json.loads((half_zoo / "manifest.json").read_text())["models"]) == {"t1_t1_smoke"}
    stored = load_file(half_zoo / "t1_t1_smoke" / "model.safetensors")
    full = load_file(zoo / "t1_t1_smoke" / "model.safetensors")
    for key, value in full.items():
        expected = value.to(torch.float16) if value.is_floating_point() else value
        assert stored[key].dtype == expected.dtype and torch.equal(stored[key], expected), key
    half = load(path=half_zoo / "t1_t1_smoke")
    for key, value in half.operator.model.state_dict().items():  # loaded back as float32, rounded values
        assert value.dtype == full[key].dtype and torch.equal(value, stored[key].to(value.dtype)), key
    config = half.config
    assert config["weights"]["dtype"] == "float16"
    assert config["half_precision"]["rel_l2_stored"] == config["metrics"]["l2"]["mean"]
    assert config["half_precision"]["rel_l2_float32"] == pytest.approx(model.metrics["l2"]["mean"], rel=1e-6)
    card = (half_zoo / "t1_t1_smoke" / "README.md").read_text()
    assert config["half_precision"]["complex_as_real"] is False  # T1's weights are all real
    assert "- weights stored in float16 to keep the zoo small: test rel L2" in card
    with pytest.raises(SystemExit):  # argparse: not a storage precision
        main([*argv, "--zoo-dtype", "float8"])
    assert main([*argv, "--zoo-sides", "T2"]) == 2  # one ConfigError naming the sides


def test_measures_are_cached_beside_the_run_and_redone_when_it_changes(tmp_path):
    from types import SimpleNamespace

    from sciml.reproduce.runner import MEASURES_FILE, measure_side

    calls: list[int] = []

    def measure(run, report, factor=1.0):
        calls.append(1)
        return {"error": report["error"] * factor}

    paper = SimpleNamespace(name="fake", measure=measure)
    scale = SimpleNamespace(measure_options={"factor": 2.0})
    run_dir = tmp_path / "run"
    (run_dir / "report").mkdir(parents=True)
    (run_dir / "report" / "metrics.json").write_text('{"error": 0.25}')
    assert measure_side(paper, scale, None, run_dir, {"error": 0.25}) == {"error": 0.5}
    assert measure_side(paper, scale, None, run_dir, {"error": 0.25}) == {"error": 0.5}
    assert len(calls) == 1 and (run_dir / "report" / MEASURES_FILE).exists()
    (run_dir / "report" / "metrics.json").write_text('{"error": 0.5}')  # the run was trained again
    assert measure_side(paper, scale, None, run_dir, {"error": 0.5}) == {"error": 1.0}
    other = SimpleNamespace(measure_options={"factor": 3.0})  # other options: measured again
    assert measure_side(paper, other, None, run_dir, {"error": 0.5}) == {"error": 1.5}
    assert len(calls) == 3


def test_a_side_two_comparisons_share_is_trained_once(tmp_path, monkeypatch, caplog):
    # the TFNO side of the MG-TFNO comparison is the TFNO comparison's TFNO: same config, same recipe content
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "reproduce"
    assert main(["tfno", "--quick", "--work", str(root / "tfno" / "smoke")]) == 0
    with caplog.at_level("INFO", logger="sciml.reproduce"):
        assert main(["mg_tfno", "--quick", "--work", str(root / "mg_tfno" / "smoke")]) == 0
    assert "reusing the finished run" in caplog.text
    first, copied = (root / paper / "smoke" / "TFNO" / "seed0" for paper in ("tfno", "mg_tfno"))
    assert json.loads((copied / "report" / "metrics.json").read_text()) == json.loads(
        (first / "report" / "metrics.json").read_text()
    )
    saved = yaml.safe_load((copied / "config.yaml").read_text())
    assert saved["data"]["recipe"] == str(root / "mg_tfno" / "smoke" / "recipe.yaml")  # its own work's recipe
    # the MG sides were trained (no equal run anywhere)
    assert (root / "mg_tfno" / "smoke" / "MG-TFNO_1_level" / "seed0" / "report" / "metrics.json").exists()


def test_seeds_run_in_separate_calls_share_one_work_and_add_up(tmp_path, monkeypatch, caplog):
    # --only-seeds: shards of one reproduction (e.g. a process per core), then a last call reuses them all
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    shard = tmp_path / "shard.json"
    assert main(["t1", "--quick", "--work", str(work), "--only-seeds", "3", "--out", str(shard)]) == 0
    assert json.loads(shard.read_text())["seeds"] == [3]
    assert (work / "T1" / "seed3" / "report" / "metrics.json").exists()
    assert not (work / "T1" / "seed0").exists()
    out = tmp_path / "all.json"
    with caplog.at_level("INFO", logger="sciml.reproduce"):
        assert main(["t1", "--quick", "--work", str(work), "--only-seeds", "0,3", "--out", str(out)]) == 0
    assert f"reusing the finished run {work / 'T1' / 'seed3'}" in caplog.text
    record = json.loads(out.read_text())
    assert record["seeds"] == [0, 3]
    first = json.loads(shard.read_text())["summary"]["T1"]["test_l2"]["values"]
    assert record["summary"]["T1"]["test_l2"]["values"][1] == first[0]  # seed 3's run, not trained again
    assert len(record["summary"]["FNO"]["params"]["values"]) == 2


@pytest.mark.parametrize("arguments", [["--only-seeds", "a"], ["--only-seeds", "1,"], ["--seeds", "two"]])
def test_seed_options_that_are_no_integers_are_refused_by_the_parser(arguments, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["t1", "--quick", "--work", str(tmp_path / "work"), *arguments])
    assert exit_info.value.code == 2 and not (tmp_path / "work").exists()
    assert "seeds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--only-seeds", "1,1"], "seeds [1, 1]: expected distinct non-negative seeds"),
        (["--only-seeds", "-1"], "seeds [-1]: expected distinct non-negative seeds"),
        (["--seeds", "0"], "seeds=0: expected a number of seeds >= 1"),  # was read as "every seed"
        (["--trajectories", "1"], "trajectories: 1 is not an integer >= 2"),
    ],
)
def test_bad_seeds_and_counts_are_one_error_before_anything_runs(arguments, message, tmp_path, caplog):
    with caplog.at_level("ERROR", logger="sciml.reproduce"):
        assert main(["t1", "--quick", "--work", str(tmp_path / "work"), *arguments]) == 2
    assert message in caplog.text and not (tmp_path / "work").exists()


def test_seeds_and_only_seeds_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["t1", "--quick", "--work", str(tmp_path / "work"), "--seeds", "1", "--only-seeds", "2"])
    assert exit_info.value.code == 2 and "exclude each other" in capsys.readouterr().err


def test_reproduce_refuses_repeated_seeds_and_a_count_of_none(tmp_path):
    from sciml.reproduce.runner import reproduce

    with pytest.raises(ConfigError, match=r"seeds \[1, 1\]"):
        reproduce(PAPERS["t1"], "smoke", tmp_path, seeds=[1, 1])
    with pytest.raises(ConfigError, match="seeds=0"):
        reproduce(PAPERS["t1"], "smoke", tmp_path, seeds=0)


def test_trajectories_option_changes_the_data_of_every_side_alike_and_says_so(tmp_path):
    from sciml.reproduce.runner import scaled_recipe, with_trajectories

    paper = PAPERS["t1"]
    scale = paper.scales["cpu"]
    assert with_trajectories(scale, None) is scale
    assert with_trajectories(scale, scale.recipe["n_trajectories"]) is scale
    more = with_trajectories(scale, 600)
    assert more.recipe["n_trajectories"] == 600 and scale.recipe["n_trajectories"] == 200  # a copy
    assert more.recipe["solver"] == scale.recipe["solver"] and more.note.startswith(scale.note)
    assert "--trajectories 600" in more.note and "instead of the scale's 200" in more.note
    recipe = yaml.safe_load(scaled_recipe(paper, more, tmp_path).read_text())
    assert recipe["n_trajectories"] == 600 and recipe["solver"]["resolution"] == 64
    paper_scale = with_trajectories(paper.scales["paper"], 50)  # the paper's recipe, fewer trajectories
    assert paper_scale.recipe == {"n_trajectories": 50} and "the recipe's count" in paper_scale.note
    for bad in (1, 0, -3):
        with pytest.raises(ConfigError, match="trajectories"):
            with_trajectories(scale, bad)
