"""BENCHMARKS.md is generated from the JSON records: no drift, narrative kept, quick runs kept apart."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sciml.bench import DOCUMENT, RESULTS, render, render_document
from sciml.bench.render import find_blocks, replace_blocks
from sciml.errors import ConfigError

ROOT = Path(__file__).parents[1]

NARRATIVE = """# Title

Some text with `code` and a table:

| a | b |
|---|---|

<!-- bench:bench_metrics -->
old metrics table
<!-- /bench:bench_metrics -->

Middle text, kept verbatim.   Odd  spacing too.
<!-- bench:bench_t1 -->
<!-- /bench:bench_t1 -->
End.
"""


def test_committed_document_matches_the_committed_records():
    rendered = render_document(DOCUMENT.read_text(), RESULTS)
    assert not rendered.stale, rendered.stale
    assert rendered.text == DOCUMENT.read_text(), "BENCHMARKS.md drifted: run `python -m sciml.bench render`"
    assert {"bench_navier_stokes", "bench_metrics", "bench_trainer", "bench_t1"} <= set(rendered.rendered)


def test_check_fails_on_a_changed_figure(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    shutil.copy(DOCUMENT, doc)
    assert render(doc, RESULTS, check=True) == 0
    text = doc.read_text()
    assert "| **1.12** |" in text  # sobolev_norm / rfft2 in the metrics block
    doc.write_text(text.replace("| **1.12** |", "| **1.02** |"))
    assert render(doc, RESULTS, check=True) == 1
    assert render(doc, RESULTS) == 0  # re-rendering repairs it
    assert doc.read_text() == text


def test_replacement_keeps_the_text_outside_the_markers_verbatim():
    out = replace_blocks(
        NARRATIVE, {"bench_metrics": "NEW\n| x |\n", "bench_t1": "T1"}, {"bench_metrics", "bench_t1"}
    )
    assert "old metrics table" not in out
    assert "<!-- bench:bench_metrics -->\nNEW\n| x |\n<!-- /bench:bench_metrics -->" in out
    assert "<!-- bench:bench_t1 -->\nT1\n<!-- /bench:bench_t1 -->" in out
    outside = [NARRATIVE[: NARRATIVE.index("<!-- bench:bench_metrics")]]
    outside.append(
        NARRATIVE[
            NARRATIVE.index("<!-- /bench:bench_metrics -->") + 30 : NARRATIVE.index("<!-- bench:bench_t1")
        ]
    )
    outside.append(NARRATIVE[NARRATIVE.index("<!-- /bench:bench_t1 -->") + 24 :])
    for piece in outside:
        assert piece in out
    assert replace_blocks(out, {"bench_metrics": "NEW\n| x |"}) == out  # idempotent
    assert replace_blocks(NARRATIVE, {}) == NARRATIVE  # nothing to render: nothing changes


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a\n<!-- bench:bench_metrics -->\nb\n", "never closed"),
        ("a\n<!-- /bench:bench_metrics -->\n", "without an opening"),
        ("<!-- bench:bench_metrics -->\n<!-- /bench:bench_t1 -->\n", "does not match"),
        ("<!-- bench:bench_metrics -->\n<!-- bench:bench_t1 -->\n", "inside the unclosed"),
        ("<!-- bench:bench_metrics --><!-- /bench:bench_metrics -->" * 2, "twice"),
        ("x\n<!-- bench:no_such_bench -->\n<!-- /bench:no_such_bench -->\n", "unknown benchmark marker"),
    ],
)
def test_marker_errors_are_config_errors_with_the_line(text, match):
    with pytest.raises(ConfigError, match=match):
        replace_blocks(text, {}, {"bench_metrics", "bench_t1"})
    with pytest.raises(ConfigError, match="line"):
        find_blocks(text, {"bench_metrics", "bench_t1"})


def test_quick_run_writes_its_own_json_and_document(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sciml.bench", "all", "--quick", "--only", "bench_metrics"]
    result = subprocess.run(
        [*command, "--results", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = tmp_path / "metrics.json"
    doc = tmp_path / "BENCHMARKS.md"
    assert "--quick" in record.read_text()
    text = doc.read_text()
    assert text.startswith("# Benchmarks (quick mode)")
    assert "<!-- bench:bench_metrics -->\n`python solvers/bench_metrics.py --quick" in text
    assert "<!-- /bench:bench_metrics -->" in text
    assert render(doc, tmp_path, quick=True, check=True) == 0
    assert DOCUMENT.read_text() == render_document(DOCUMENT.read_text(), RESULTS).text  # untouched
