"""`healthscore cohorts`: churn by bin of a metric's raw value, and the suggested bands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, write_csv
from test_backtest import AS_OF, hand_table, tiny_project
from typer.testing import CliRunner

from healthscore.backtest import RateRow
from healthscore.cli import app
from healthscore.cohorts import Cohort, best_split, cohorts, suggest_bands
from healthscore.errors import UsageError

runner = CliRunner()


def test_best_split_finds_the_steps() -> None:
    accounts = np.full(6, 20.0)
    churned = np.array([2, 2, 10, 10, 18, 18.0])
    assert best_split(accounts, churned, 3) == [1, 3, 5]
    assert best_split(accounts, churned, 2) in ([1, 5], [3, 5])
    assert best_split(accounts, churned, 1) == [5]


def cohort(low: float, high: float, accounts: int, churned: int) -> Cohort:
    rate = RateRow(str(low), accounts, churned, churned / accounts, None, None)
    return Cohort(low, high, rate, None)


def test_suggested_bands_and_linear_anchors() -> None:
    rows = [cohort(0, 0, 100, 5), cohort(1, 2, 100, 6), cohort(3, 5, 100, 30), cohort(6, 9, 100, 60)]
    s = suggest_bands(rows, 3)
    assert s is not None
    assert s.clear
    assert [(b.upto, b.score, b.rate.accounts, b.rate.churned) for b in s.bands] == [
        (2.0, 10.0, 200, 11),
        (5.0, 5.5, 100, 30),
        (None, 0.0, 100, 60),
    ]
    assert s.bands_yaml == "scale: {method: bands, bands: [{upto: 2, score: 10}, {upto: 5, score: 5.5}, {score: 0}]}"
    assert s.linear_yaml == "scale: {method: linear, bad: 6, good: 2}"  # churn rises: lower is better
    flat = suggest_bands([cohort(0, 1, 50, 10), cohort(2, 3, 50, 11), cohort(4, 5, 50, 9)], 3)
    assert flat is not None
    assert not flat.clear
    assert flat.linear is None
    assert "no clear evidence" in flat.note


def test_cohorts_of_a_hand_made_table() -> None:
    table, churned, config = hand_table()
    table.loc[[0, 1], "value"] = np.nan  # two accounts without a value: a row of their own
    report = cohorts(table, churned, config, "value", as_of=AS_OF, bins=4, bands=2)
    assert [(c.low, c.high, c.rate.accounts, c.rate.churned) for c in report.cohorts] == [
        (3.0, 4.0, 2, 1),
        (5.0, 6.0, 2, 1),
        (7.0, 8.0, 2, 0),
        (9.0, 10.0, 2, 0),
    ]
    assert (report.missing.accounts, report.missing.churned) == (2, 2)
    assert report.suggestion is not None
    assert [b.upto for b in report.suggestion.bands] == [6.0, None]
    with pytest.raises(UsageError, match="unknown metric"):
        cohorts(table, churned, config, "nope", as_of=AS_OF)


def test_cohorts_command_on_the_tiny_project(tmp_path: Path) -> None:
    config, outcomes = tiny_project(tmp_path)
    args = ["cohorts", "value", "-c", str(config), "--outcomes", str(outcomes), "--bins", "5", "--suggest"]
    result = runner.invoke(app, [*args, "--bands", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["churned"] for c in data["cohorts"]] == [2, 1, 1, 0, 0]
    assert data["suggestion"]["bands"][0]["upto"] == 6
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "Suggested bands" in result.stdout
    result = runner.invoke(app, ["cohorts", "nope", "-c", str(config), "--outcomes", str(outcomes)])
    assert result.exit_code == 2
    assert "unknown metric 'nope'" in result.stderr
    write_csv(tmp_path / "bad.csv", "account_id,churned\n001,yes\n001,no\n")
    result = runner.invoke(app, ["cohorts", "value", "-c", str(config), "--outcomes", str(tmp_path / "bad.csv")])
    assert result.exit_code == 65


SAMPLE = ["-c", str(ROOT / "configs/default.yaml"), "--outcomes", str(ROOT / "sample_data/churn_outcomes.csv")]


def test_sample_cohorts_suggest_bands_for_urgent_tickets() -> None:
    result = runner.invoke(app, ["cohorts", "urgent_tickets_90d", *SAMPLE, "--suggest", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rates = [c["churn_rate"] for c in data["cohorts"]]
    assert rates == sorted(rates)
    assert data["raw_auc"] < 0.2  # a churn driver of the sample: more urgent tickets, more churn
    suggestion = data["suggestion"]
    assert len(suggestion["bands"]) == 3
    assert suggestion["clear"]
    bands = "[{upto: 0, score: 10}, {upto: 4, score: 8.5}, {score: 0}]"
    assert suggestion["bands_yaml"] == f"scale: {{method: bands, bands: {bands}}}"
    assert suggestion["linear_yaml"] == "scale: {method: linear, bad: 5, good: 0}"
    assert [b["churned"] for b in suggestion["bands"]] == [14, 33, 76]


def test_sample_cohorts_of_active_user_growth() -> None:
    result = runner.invoke(app, ["cohorts", "active_user_growth", *SAMPLE, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["raw_auc"] > 0.85  # the sample's main churn driver: losing users, churning
    rates = [c["churn_rate"] for c in data["cohorts"]]
    assert rates == sorted(rates, reverse=True)
    assert rates[0] > 0.9
    assert rates[-1] == 0
