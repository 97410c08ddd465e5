"""``python -m sciml.evaluate zoo:NAME --n-test N`` compares like with like and claims only what it shows."""

from __future__ import annotations

import re

import numpy as np
import pytest

import sciml.zoo
from sciml.evaluate import main as evaluate_main
from sciml.zoo.evaluation import compare_like_with_like

ERRORS = ("l2", "h1", "h-1")


def metrics_of(per_trajectory: dict[str, list[float]]) -> dict:
    """Card metrics, or what :func:`sciml.zoo.evaluation.evaluate_pretrained` measured (the same layout):
    the per-trajectory values and their means."""
    n = len(next(iter(per_trajectory.values())))
    return {
        "n_trajectories": n,
        "seed": 1000,
        **{name: {"mean": float(np.mean(values))} for name, values in per_trajectory.items()},
        "per_trajectory": per_trajectory,
    }


# the card of the issue: a 20-trajectory mean whose first two trajectories lie about 3% below it
CARD = metrics_of({name: [0.97, 0.972] + [1.0 + 0.002 * i for i in range(18)] for name in ERRORS})


def test_a_reduced_evaluation_is_set_against_the_same_trajectories_of_the_card():
    measured = metrics_of({name: [0.9705, 0.9715] for name in ERRORS})
    assert abs(measured["h1"]["mean"] - CARD["h1"]["mean"]) > 0.02 * CARD["h1"]["mean"]  # the gap
    comparison = compare_like_with_like("m", measured, CARD)
    assert comparison.reproduced and comparison.n_compared == 2 and comparison.n_card == 20
    for name in ERRORS:
        got, want = comparison.rows[name]
        assert want == pytest.approx(0.971) and got == pytest.approx(0.971)
    lines = comparison.lines()
    assert "compared with the card's values for the same 2 trajectories (the card: 20)" in lines[0]
    assert lines[-1] == (
        "card metrics reproduced within 2% on the first 2 of the card's 20 test trajectories, "
        "trajectory by trajectory"
    )


def test_a_miss_is_never_reported_as_reproduced():
    measured = metrics_of({name: [0.97, 0.972 * 1.05] for name in ERRORS})
    comparison = compare_like_with_like("m", measured, CARD)
    assert not comparison.reproduced
    text = "\n".join(comparison.lines())
    assert "card metrics NOT reproduced within 2%" in text
    assert "reproduced within 2% on" not in text.replace("NOT reproduced", "")
    assert "l2[trajectory 1]: measured 1.0206, card 0.972" in text


def test_more_trajectories_than_the_card_compare_the_ones_it_holds():
    card = metrics_of({name: [1.0, 2.0] for name in ERRORS})
    measured = metrics_of({name: [1.0, 2.0, 9.0] for name in ERRORS})
    comparison = compare_like_with_like("m", measured, card)
    assert comparison.n_compared == 2
    assert comparison.rows["l2"] == (pytest.approx(1.5), pytest.approx(1.5))
    assert comparison.reproduced


def test_a_card_without_per_trajectory_values_claims_nothing_for_a_subset():
    card = {
        k: v
        for k, v in metrics_of({name: [1.0, 2.0, 3.0] for name in ERRORS}).items()
        if k != "per_trajectory"
    }
    measured = metrics_of({name: [1.0, 2.0] for name in ERRORS})
    comparison = compare_like_with_like("m", measured, card)
    assert not comparison.reproduced
    assert all(want is None for _, want in comparison.rows.values())
    assert " n/a " in "\n".join(comparison.lines())


def test_the_cli_table_and_verdict_agree_for_a_shipped_model(capsys):
    assert evaluate_main(["zoo:fno_ns64", "--n-test", "2"]) == 0
    out = capsys.readouterr().out
    card = sciml.zoo.load("fno_ns64").metrics
    assert card["n_trajectories"] > 2
    rows = dict(
        (m[1], (float(m[2]), float(m[3])))
        for m in re.finditer(r"^(\S+)\s+([0-9.e-]+)\s+([0-9.e-]+)\s+\S+%$", out, re.M)
    )
    assert set(rows) == set(ERRORS)
    for name, (got, want) in rows.items():
        assert want == pytest.approx(np.mean(card["per_trajectory"][name][:2]), rel=1e-4)  # the same 2
        assert abs(got - want) <= 0.02 * want  # the verdict below claims it
    assert "card metrics reproduced within 2% on the first 2 of the card's" in out


def test_a_model_without_a_regenerable_test_set_is_one_clear_error(caplog):
    """DCDM's entry (a poisson_ritz recipe): a message naming the model and its data, no traceback."""
    assert evaluate_main(["zoo:dcdm_poisson64"]) != 0
    message = "dcdm_poisson64: no test set can be regenerated (trained on datasets/poisson_ritz64.yaml"
    assert message in caplog.text


def test_the_zoo_list_aligns_its_columns(capsys):
    from sciml.zoo.__main__ import main as zoo_main

    assert zoo_main(["list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()[1:]
    entries = sciml.zoo.list()
    assert len(rows) == len(entries)
    column = max(len(e.name) for e in entries) + 1  # the family column follows the longest name
    assert header[column:].startswith("family")
    for row, entry in zip(rows, entries, strict=True):
        assert row.startswith(entry.name) and row[column:].startswith(entry.family), row
