"""`healthscore backtest`: the statistics pinned on hand-made data, outcome files and their
errors, the command's exit codes and files, and the sample data end to end."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, make_config, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from healthscore.backtest import (
    NO_SIGNAL,
    SIGNAL,
    WRONG_SIGN,
    auc,
    backtest,
    bootstrap_auc,
    components,
    decile_of,
    lowest_share_rate,
    pairwise_correlation,
    wilson,
)
from healthscore.cli import app
from healthscore.config import Config
from healthscore.errors import DataError, InputMissingError
from healthscore.outcomes import load_outcomes

runner = CliRunner()
AS_OF = dt.date(2026, 1, 31)
CHURNED_AT = (1, 2, 3, 5)  # of the values 1..10 in the tiny project


# --- statistics on hand-made data ------------------------------------------------------------


def test_auc_by_hand() -> None:
    scores = np.arange(1, 11, dtype=float)
    churned = np.isin(scores, CHURNED_AT)
    # retained (4, 6..10) above churned 1, 2, 3: 6 each; above 5: 5 of 6 -> 23 of 24 pairs
    assert auc(scores, churned) == pytest.approx(23 / 24)
    assert auc(-scores, churned) == pytest.approx(1 / 24)
    assert auc(np.array([1, 1, 2, 2.0]), np.array([True, False, True, False])) == pytest.approx(0.5)  # ties: 1/2
    assert auc(np.array([1, 2, 3.0]), np.array([True, True, False])) == 1.0
    assert np.isnan(auc(scores, np.zeros(10, dtype=bool)))


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert low == pytest.approx([0.0, 0.236593, 0.722467], abs=1e-6)
    assert high == pytest.approx([0.277533, 0.763407, 1.0], abs=1e-6)


def test_lowest_decile_rate_and_ties_at_the_cut() -> None:
    scores = np.arange(20, dtype=float)
    churned = np.isin(scores, [0, 1, 7, 12, 19])
    assert lowest_share_rate(scores, churned) == (2, 1.0)  # lift 1.0 / 0.25 = 4
    tied = np.array([1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19.0])
    churned = np.zeros(20, dtype=bool)
    churned[[0, 1]] = True  # one of the two tied at the cut churned: counts one half
    assert lowest_share_rate(tied, churned) == (2, 0.75)
    assert lowest_share_rate(tied[::-1], churned[::-1]) == (2, 0.75)  # row order does not matter


def test_deciles_by_rank_keep_ties_together() -> None:
    assert decile_of(np.arange(20.0)).tolist() == [i // 2 for i in range(20)]
    bins = decile_of(np.array([0, 0, 0, 0, 0, 1, 2, 3, 4, 5.0]))
    assert len(set(bins[:5].tolist())) == 1
    assert bins[5:].tolist() == [5, 6, 7, 8, 9]


def test_bootstrap_interval_is_seeded_and_holds_the_auc() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=200)
    churned = rng.random(200) < 1 / (1 + np.exp(2 * scores))
    low, high = bootstrap_auc(scores, churned, resamples=500, seed=7)
    assert low < auc(scores, churned) < high
    assert (low, high) == bootstrap_auc(scores, churned, resamples=500, seed=7)
    assert bootstrap_auc(np.arange(6.0), np.array([1, 1, 1, 0, 0, 0], dtype=bool)) == (1.0, 1.0)


def test_pairwise_correlation_matches_pandas_and_components_chain() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(60, 4))
    values[:, 1] += values[:, 0]
    values[rng.random((60, 4)) < 0.2] = np.nan
    r, pairs = pairwise_correlation(values)
    assert r == pytest.approx(pd.DataFrame(values).corr().to_numpy(), abs=1e-9)
    assert pairs[0, 1] == int((~np.isnan(values[:, [0, 1]])).all(axis=1).sum())
    linked = np.zeros((5, 5), dtype=bool)
    linked[0, 1] = linked[1, 0] = linked[1, 3] = linked[3, 1] = True
    assert components(linked) == [[0, 1, 3]]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=2, max_size=40).filter(
        lambda rows: 0 < sum(c for _, c in rows) < len(rows)
    )
)
def test_auc_properties(rows: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in rows], dtype=float)
    churned = np.array([c for _, c in rows])
    value = auc(scores, churned)
    assert 0 <= value <= 1
    assert value + auc(-scores, churned) == pytest.approx(1)
    assert auc(np.exp(scores) * 3 + 1, churned) == pytest.approx(value)  # any increasing transform
    order = np.argsort(-scores, kind="stable")
    assert auc(scores[order], churned[order]) == pytest.approx(value)


# --- the report on a hand-made scored table ----------------------------------------------------


def hand_table() -> tuple[pd.DataFrame, pd.Series, Config]:
    """Ten accounts scored 10..100 from `value` (1..10); `flipped` is its mirror image and
    `flat` the same for everyone; churned at values 1, 2, 3 and 5."""
    value = np.arange(1, 11, dtype=float)
    table = pd.DataFrame(
        {
            "account_id": [f"{i:03d}" for i in range(1, 11)],
            "health_score": value * 10,
            "segment": ["Critical"] * 4 + ["At-Risk"] * 2 + ["Healthy"] * 2 + ["Thriving"] * 2,
            "group_main": value * 10,
            "group_other": 100 - value * 10,
            "value": value,
            "value_score": value,
            "flipped": 11 - value,
            "flipped_score": 10 - value,
            "flat": 5.0,
            "flat_score": 5.0,
        }
    )
    config = make_config(
        Path("."),
        accounts={"source": "crm"},
        sources={"crm": {"path": "crm.csv", "key": "account_id"}},
        metrics={
            name: {"source": "crm", "agg": "value", "field": name, "scale": {"method": "linear", "bad": 0, "good": 10}}
            for name in ("value", "flipped", "flat")
        },
        groups={"main": {"metrics": ["value", "flat"]}, "other": {"metrics": ["flipped"]}},
    )
    churned = pd.Series(np.isin(value, CHURNED_AT), dtype="boolean")
    return table, churned, config


def test_backtest_pins_auc_lift_and_churn_by_segment() -> None:
    table, churned, config = hand_table()
    report = backtest(table, churned, config, as_of=AS_OF, resamples=200)
    assert report.overall.auc == pytest.approx(23 / 24)
    assert report.overall.low is not None
    assert report.overall.high is not None
    assert report.overall.low <= 23 / 24 <= report.overall.high
    assert (report.lowest_accounts, report.lowest_rate, report.lift) == (1, 1.0, 2.5)
    assert [(r.label, r.accounts, r.churned) for r in report.segments] == [
        ("Critical", 4, 3),
        ("At-Risk", 2, 1),
        ("Healthy", 2, 0),
        ("Thriving", 2, 0),
    ]
    assert report.segments[0].rate == 0.75
    assert report.segments_ordered
    assert [r.churned for r in report.deciles] == [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    by_name = {r.name: r for r in report.metrics}
    assert by_name["value"].verdict == SIGNAL
    assert by_name["value"].raw_auc == pytest.approx(23 / 24)
    assert by_name["flipped"].auc == pytest.approx(1 / 24)
    assert by_name["flipped"].verdict == WRONG_SIGN
    assert by_name["flat"].auc == 0.5
    assert by_name["flat"].verdict == NO_SIGNAL
    assert [r.name for r in report.metrics] == ["value", "flat", "flipped"]  # best first
    assert [(c.metrics, c.groups) for c in report.correlated] == [(("value", "flipped"), ("main", "other"))]
    assert report.correlated[0].pairs[0][2] == pytest.approx(-1)
    assert "intervals are wide" in str(report.warnings[0])
    data = report.to_dict()
    assert data["auc"]["auc"] == 0.9583
    assert data["top_decile"]["lift"] == 2.5
    assert data["settings"]["bootstrap"]["resamples"] == 200
    assert list(report.metrics_frame()["name"]) == ["health_score", "main", "other", "value", "flat", "flipped"]


def test_unordered_segments_and_overridden_accounts() -> None:
    table, churned, config = hand_table()
    churned[:] = np.isin(np.arange(1, 11), [1, 9, 10])  # Thriving churns most
    table["override_reason"] = [""] * 9 + ["CSM call"]
    table["computed_score"] = [np.nan] * 9 + [100.0]
    table["computed_segment"] = [""] * 9 + ["Thriving"]
    table.loc[9, ["health_score", "segment"]] = (5.0, "Critical")  # the override, not the model
    report = backtest(table, churned, config, as_of=AS_OF, resamples=100)
    assert not report.segments_ordered
    assert report.segments[-1].churned == 2  # the model's own segment of the overridden account


def test_no_churned_account_is_a_data_error() -> None:
    table, churned, config = hand_table()
    churned[:] = False
    with pytest.raises(DataError, match="AUC is undefined"):
        backtest(table, churned, config, as_of=AS_OF)


# --- outcome files -------------------------------------------------------------------------------


def scored(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"account_id": ids, "health_score": np.linspace(10, 90, len(ids))}, index=range(5, 5 + len(ids))
    )


def test_flags_in_any_spelling_line_up_with_the_table(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "o.csv", "account_id,churned\n007, Yes\n001,RENEWED\n002,0\n003,True\n004,churned\n")
    out = load_outcomes(path, scored(["001", "002", "003", "004", "005", "007"]))
    assert str(out.dtype) == "boolean"
    assert list(out.index) == list(range(5, 11))
    assert out.tolist() == [False, False, True, True, pd.NA, True]


def test_churn_dates_with_a_horizon_and_other_formats(tmp_path: Path) -> None:
    text = "id,lost_on\n001,2026-03-01\n002,\n003,2026-09-30\n"
    table = scored(["001", "002", "003"])
    path = write_csv(tmp_path / "o.csv", text)
    got = load_outcomes(path, table, id_column="id", date_column="lost_on", horizon_end=dt.date(2026, 6, 30))
    assert got.tolist() == [True, False, False]
    assert load_outcomes(path, table, id_column="id", date_column="lost_on").tolist() == [True, False, True]
    frame = pd.DataFrame({"account_id": ["001", "003"], "churned": [True, False]})
    frame.to_parquet(tmp_path / "o.parquet")
    assert load_outcomes(tmp_path / "o.parquet", table).tolist() == [True, pd.NA, False]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("account_id,churned\n001,yes\n999,no\n0042,yes\n", DataError, "2 account id\\(s\\) are not in"),
        ("account_id,churned\n001,yes\n002,no\n001,no\n", DataError, "appear more than once"),
        ("account_id,churned\n001,maybe\n", DataError, "not a churn flag"),
        ("account,churned\n001,yes\n", DataError, "lacks column\\(s\\) 'account_id'"),
        ("account_id,churned\n001,yes\n,no\n", DataError, "have no 'account_id'"),
    ],
)
def test_bad_outcome_files(tmp_path: Path, text: str, kind: type[Exception], message: str) -> None:
    path = write_csv(tmp_path / "o.csv", text)
    with pytest.raises(kind, match=message) as info:
        load_outcomes(path, scored(["001", "002", "042"]))
    problems = "\n".join(map(str, getattr(info.value, "problems", ())))
    assert "line" in problems or "expected" in problems or "unknown" in problems


def test_errors_name_rows_values_and_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "o.csv", "account_id,churned\n001,yes\n002,maybe\n")
    with pytest.raises(DataError) as info:
        load_outcomes(path, scored(["001", "002"]))
    assert "line 3: churned = 'maybe'" in str(info.value)
    path = write_csv(tmp_path / "p.csv", "id,churn\n001,yes\n")
    with pytest.raises(DataError) as info:
        load_outcomes(path, scored(["001"]))
    assert "expected: account_id, churned" in str(info.value)
    assert "found: id, churn" in str(info.value)
    with pytest.raises(InputMissingError):
        load_outcomes(tmp_path / "nope.csv", scored(["001"]))


# --- the command on a tiny project ----------------------------------------------------------------


def tiny_project(tmp: Path, outcomes: str | None = None) -> tuple[Path, Path]:
    """Ten accounts whose score is 10 x `value`; returns the config and the outcomes file."""
    rows = "".join(f"{i:03d},{i},{11 - i}\n" for i in range(1, 11))
    write_csv(tmp / "crm.csv", "account_id,value,flipped\n" + rows)
    config = tmp / "health.yaml"
    config.write_text(
        """
version: 1
as_of: 2026-01-31
accounts: {source: crm}
sources:
  crm: {path: crm.csv, key: account_id}
metrics:
  value: {source: crm, agg: value, field: value, scale: {method: linear, bad: 0, good: 10}}
  flipped: {source: crm, agg: value, field: flipped, scale: {method: linear, bad: 0, good: 10}}
groups:
  main: {weight: 1, metrics: [value]}
  other: {weight: 0, metrics: [flipped]}
outputs: {dir: out}
"""
    )
    flags = "".join(f"{i:03d},{'yes' if i in CHURNED_AT else 'no'}\n" for i in range(1, 11))
    path = write_csv(tmp / "outcomes.csv", outcomes if outcomes is not None else "account_id,churned\n" + flags)
    return config, path


def test_backtest_command_writes_report_files(tmp_path: Path) -> None:
    config, outcomes = tiny_project(tmp_path)
    result = runner.invoke(app, ["backtest", "-c", str(config), "--outcomes", str(outcomes)])
    assert result.exit_code == 0, result.output
    assert "ROC AUC 0.958" in result.stdout
    assert "Top-decile lift 2.50" in result.stdout
    assert "| Critical |        4 |       3 |      75.0% |" in result.stdout
    assert "\x1b[" not in result.stdout
    data = json.loads((tmp_path / "out" / "backtest.json").read_text())
    assert data["auc"]["auc"] == 0.9583
    assert data["segments_ordered"] is True
    metrics = pd.read_csv(tmp_path / "out" / "backtest_metrics.csv")
    assert metrics.set_index("name").loc["flipped", "verdict"] == WRONG_SIGN


@pytest.mark.parametrize(
    ("outcomes", "args", "code", "message"),
    [
        ("account_id,churned\n001,yes\n077,no\n", [], 65, "not in the scored accounts"),
        ("account_id,churned\n001,yes\n001,no\n", [], 65, "more than once"),
        ("account_id,churned\n001,perhaps\n002,no\n", [], 65, "not a churn flag"),
        ("account_id,status\n001,yes\n", [], 65, "lacks column"),
        ("account_id,churned\n001,no\n002,no\n", [], 65, "AUC is undefined"),
        (None, ["--min-auc", "0.99"], 65, "below --min-auc 0.99"),
        (None, ["--horizon-end", "June"], 2, "--horizon-end must be a date"),
    ],
)
def test_backtest_command_exit_codes(
    tmp_path: Path, outcomes: str | None, args: list[str], code: int, message: str
) -> None:
    config, path = tiny_project(tmp_path, outcomes)
    result = runner.invoke(app, ["backtest", "-c", str(config), "--outcomes", str(path), *args])
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert not (tmp_path / "out" / "backtest.json").exists()


def test_backtest_command_missing_outcomes_file_and_dates(tmp_path: Path) -> None:
    config, _ = tiny_project(tmp_path)
    result = runner.invoke(app, ["backtest", "-c", str(config), "--outcomes", str(tmp_path / "nope.csv")])
    assert result.exit_code == 66
    assert "outcomes file not found" in result.stderr
    dates = "account_id,churned_on\n001,2026-01-15\n002,2026-03-01\n003,2026-04-01\n004,\n005,2026-05-01\n"
    write_csv(tmp_path / "dates.csv", dates)
    args = ["--outcomes", str(tmp_path / "dates.csv"), "--date-column", "churned_on", "--json"]
    result = runner.invoke(app, ["backtest", "-c", str(config), *args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["with_outcome"], report["churned"]) == (5, 4)
    assert "churned on or before the scoring date" in json.dumps(report["warnings"])


# --- the sample data -----------------------------------------------------------------------------


DRIVERS = {"active_user_growth", "urgent_tickets_90d", "churn_probability"}  # what the sample's churn follows


def test_sample_backtest_ranks_informative_metrics_above_noise(tmp_path: Path) -> None:
    args = ["-c", str(ROOT / "configs/default.yaml"), "--outcomes", str(ROOT / "sample_data/churn_outcomes.csv")]
    result = runner.invoke(app, ["backtest", *args, "--out", str(tmp_path), "--resamples", "200"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "backtest.json").read_text())
    assert (data["scored_with_outcome"], data["churned"]) == (500, 123)
    assert data["auc"]["auc"] == pytest.approx(0.858, abs=5e-4)
    assert data["auc"]["auc_low"] > 0.78
    assert data["segments_ordered"]
    assert data["top_decile"]["lift"] > 3
    verdicts = {m["name"]: m["verdict"] for m in data["metrics"]}
    noise = {"arr_size", "lifetime_value"}  # churn in the sample does not depend on size
    assert {verdicts[m] for m in noise} == {NO_SIGNAL}
    assert {v for m, v in verdicts.items() if m not in noise} == {SIGNAL}  # h ties the others to the drivers
    aucs = {m["name"]: m["auc"] for m in data["metrics"]}
    assert min(v for m, v in aucs.items() if m not in noise) > max(aucs[m] for m in noise)
    ranked = [m["name"] for m in data["metrics"]]  # best first
    assert set(ranked[: len(DRIVERS)]) == DRIVERS
    assert ranked[0] == "active_user_growth"
    assert ["arr_size", "lifetime_value"] in [sorted(c["metrics"]) for c in data["correlated_metrics"]]
    assert (tmp_path / "backtest_metrics.csv").read_text().startswith("kind,name,label,group,accounts")


def import_generate() -> Any:
    sys.path.insert(0, str(ROOT / "sample_data"))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "sample_data"))
    return generate


def test_sample_outcomes_follow_from_the_shipped_exports() -> None:
    """The outcomes are drawn from the exports themselves: read back from sample_data/, the CRM,
    tickets and usage give the same churn_outcomes.csv as build() does in memory."""
    generate = import_generate()
    _, org = generate.make_accounts(np.random.default_rng(generate.SEED))
    folder = ROOT / "sample_data"
    crm = pd.read_csv(folder / "crm_accounts.csv", dtype=str, keep_default_na=False)
    tickets = pd.read_csv(folder / "zendesk_tickets.csv", dtype=str, keep_default_na=False)
    usage = pq.read_table(folder / "usage_events.parquet")
    written = (folder / "churn_outcomes.csv").read_bytes()
    from_files = generate.make_outcomes(crm, org, tickets, usage)
    assert from_files.to_csv(index=False, lineterminator="\n").encode() == written
    assert generate.build()["outcomes"].to_csv(index=False, lineterminator="\n").encode() == written


def test_sample_churn_follows_the_drivers_and_not_size() -> None:
    generate = import_generate()
    data = generate.build()
    drivers = generate.churn_drivers(data["crm"], data["tickets"], data["usage"])
    outcomes = data["outcomes"].set_index("account_id")
    churned = outcomes["churned"].eq("yes").reindex(drivers.index)
    assert 0.15 < churned.mean() < 0.30
    lost = drivers["user_growth"] <= -0.25  # a quarter of the active users gone
    assert churned[lost].mean() > 3 * churned[~lost].mean()
    urgent = drivers["urgent_tickets_90d"] >= 3
    assert churned[urgent].mean() > 3 * churned[~urgent].mean()
    arr = data["crm"].set_index("Account ID")["Annual Revenue"].reindex(drivers.index)
    assert auc(-arr.to_numpy(dtype=float), churned.to_numpy()) == pytest.approx(0.5, abs=0.05)


def test_a_constant_column_is_correlated_with_nothing() -> None:
    """A metric every account scores the same (e.g. a source with no rows, all filled) has no
    correlation, not +-1 from rounding noise."""
    from healthscore.stats import pairwise_correlation

    values = np.array([[5.0, 1, 2], [5.0, 2, 4], [5.0, 3, 6.5], [5.0, np.nan, 1], [5.0, 7, 3]])
    r, n = pairwise_correlation(values)
    assert np.isnan(r[0]).all()
    assert np.isnan(r[:, 0]).all()
    assert r[1, 2] == pytest.approx(np.corrcoef([1, 2, 3, 7], [2, 4, 6.5, 3])[0, 1])
    assert n[1, 2] == 4
