"""Whole runs: one small model computed by hand, the sample data against golden files,
determinism, row-order independence, overrides and history."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, make_config, write_csv

import healthscore
from healthscore.config import Config, load_config
from healthscore.errors import DataError
from healthscore.outputs import table_bytes, write_outputs
from healthscore.pipeline import run

GOLDEN = Path(__file__).parent / "golden"


def hand_model(tmp_path: Path, accounts_csv: Path, **extra: object) -> Config:
    """Three groups over logins (usage), NPS (survey) and ARR (CRM); values worked out below."""
    write_csv(
        tmp_path / "events.csv",
        "account_id,ts,event\n"
        + "".join(f"001,2026-01-{d:02d}T10:00:00,login\n" for d in range(20, 26))
        + "001,2025-12-20T10:00:00,login\n"  # 42 days before as_of: outside the 30d window
        + "001,2026-02-01T00:00:00,login\n"  # after as_of: never counts
        + "002,2026-01-31T23:59:00,login\n002,2026-01-02T00:00:00,login\n"
        + "".join(f"004,2026-01-{d:02d}T08:00:00,login\n" for d in range(10, 20))
        + "004,2026-01-11T08:00:00,export\n",
    )
    write_csv(
        tmp_path / "nps.csv",
        "account_id,score,at\n001,10,2026-01-03\n001,9,2026-01-04\n001,6,2026-01-05\n002,3,2026-01-06\n"
        "004,9,2026-01-07\n004,10,2026-01-08\n",
    )
    sections: dict[str, object] = {
        "accounts": {"source": "crm", "columns": ["name", "tier"], "name": "name", "arr": "arr"},
        "sources": {
            "crm": {"path": accounts_csv.name, "key": "account_id", "types": {"arr": "float"}},
            "events": {"path": "events.csv", "key": "account_id", "time": "ts"},
            "nps": {"path": "nps.csv", "key": "account_id", "time": "at"},
        },
        "metrics": {
            "logins": {
                "source": "events",
                "agg": "count",
                "where": "event == 'login'",
                "window": "30d",
                "scale": {"method": "linear", "bad": 0, "good": 10},
                "missing": {"fill": 0},
                "kind": "leading",
            },
            "nps": {
                "source": "nps",
                "agg": "nps",
                "field": "score",
                "scale": {"method": "linear", "bad": -100, "good": 100},
            },
            "arr_size": {"source": "crm", "agg": "value", "field": "arr", "scale": {"method": "percentile"}},
        },
        "groups": {
            "usage": {"weight": 50, "metrics": ["logins"]},
            "sentiment": {"weight": 30, "metrics": ["nps"]},
            "revenue": {"weight": 20, "metrics": ["arr_size"]},
        },
        "outputs": {"dir": "out", "formats": ["csv", "parquet", "json", "jsonl"]},
    }
    sections.update(extra)
    return make_config(tmp_path, **sections)


def test_one_model_computed_by_hand(tmp_path: Path, accounts_csv: Path) -> None:
    table = run(hand_model(tmp_path, accounts_csv)).table.set_index("account_id")
    # 001: 6 logins -> 6.0; NPS (2 promoters - 1 detractor)/3 = 33.3 -> 6.67; ARR rank 3 of 4 -> 6.67
    #      0.5 * 60 + 0.3 * 66.7 + 0.2 * 66.7 = 63.3
    # 002: 2 logins -> 2.0; NPS -100 -> 0; ARR rank 1 -> 0: 0.5 * 20 = 10.0
    # 003: no events (fill 0) -> 0; no NPS: sentiment's weight goes to the others;
    #      ARR rank 2 -> 3.33: (50 * 0 + 20 * 33.3) / 70 = 9.5, coverage 0.7
    # 004: 10 logins -> 10; NPS 100 -> 10; ARR rank 4 -> 10: 100.0
    assert table["logins"].tolist() == [6, 2, 0, 10]
    assert table["nps"].round(2).tolist()[:2] == [33.33, -100.0]
    assert pd.isna(table.loc["003", "nps"])
    assert table["health_score"].tolist() == [63.3, 10.0, 9.5, 100.0]
    assert table["coverage"].tolist() == [1.0, 1.0, 0.7, 1.0]
    assert table["segment"].tolist() == ["Healthy", "Critical", "Critical", "Thriving"]
    assert table["color"].tolist() == ["green", "red", "red", "blue"]
    assert table.loc["001", ["group_usage", "group_sentiment", "group_revenue"]].tolist() == [60.0, 66.7, 66.7]
    assert pd.isna(table.loc["003", "group_sentiment"])
    assert table.loc["001", "top_drivers"] == "logins 6.0/10 (-20.0); nps 6.7/10 (-10.0); arr_size 6.7/10 (-6.7)"
    assert table.loc["004", "top_drivers"] == ""
    assert list(table.columns[:5]) == ["name", "tier", "health_score", "segment", "color"]
    assert list(table.columns[-3:]) == ["top_drivers", "action", "as_of"]


def test_min_coverage_makes_an_account_unscored(tmp_path: Path, accounts_csv: Path) -> None:
    config = hand_model(tmp_path, accounts_csv, score={"min_coverage": 0.8})
    table = run(config).table.set_index("account_id")
    assert pd.isna(table.loc["003", "health_score"])
    assert table.loc["003", "segment"] == "Unscored"
    assert table.loc["003", "color"] == "grey"
    assert run(config).summary.scored == 3


def test_formula_method(tmp_path: Path, accounts_csv: Path) -> None:
    config = hand_model(
        tmp_path, accounts_csv, score={"method": "formula", "formula": "clip(usage + 2 * logins_value, 0, 100)"}
    )
    table = run(config).table.set_index("account_id")
    assert table["health_score"].tolist() == [72.0, 24.0, 0.0, 100.0]


def test_outputs_are_byte_identical_across_runs(tmp_path: Path, accounts_csv: Path) -> None:
    config = hand_model(tmp_path, accounts_csv)
    first = {p.name: p.read_bytes() for p in write_outputs(run(config), config) if p.name != "run.json"}
    second = {p.name: p.read_bytes() for p in write_outputs(run(config), config) if p.name != "run.json"}
    assert set(first) == {
        "health_scores.csv",
        "health_scores.parquet",
        "health_scores.json",
        "health_scores.jsonl",
        "rejects.csv",
    }
    assert first == second


def test_manifest_records_inputs_outputs_and_counts(tmp_path: Path, accounts_csv: Path) -> None:
    import json

    config = hand_model(tmp_path, accounts_csv)
    write_outputs(run(config), config)
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["as_of"] == "2026-01-31"
    assert manifest["healthscore_version"] == healthscore.__version__
    events = manifest["inputs"]["events"]
    assert events["rows_read"] == 21
    assert events["files"][0]["sha256"] == hashlib.sha256((tmp_path / "events.csv").read_bytes()).hexdigest()
    assert events["join"]["unmatched_keys"] == 0
    assert manifest["segments"] == {"Critical": 2, "At-Risk": 0, "Healthy": 1, "Thriving": 1}
    csv_out = next(o for o in manifest["outputs"] if o["path"].endswith(".csv"))
    assert csv_out["sha256"] == hashlib.sha256((tmp_path / "out" / "health_scores.csv").read_bytes()).hexdigest()
    assert set(manifest["timings"]) >= {"read", "aggregate", "score"}
    assert manifest["metrics"]["logins"] == {
        "label": "logins",
        "kind": "leading",
        "source": "events",
        "agg": "count",
        "window": "30d",
        "scale": "linear",
    }


def test_unmatched_keys_are_reported_not_dropped(tmp_path: Path, accounts_csv: Path) -> None:
    config = hand_model(tmp_path, accounts_csv)
    with (tmp_path / "nps.csv").open("a") as f:
        f.write("999,10,2026-01-09\n999,8,2026-01-10\n")
    result = run(config)
    assert result.joins["nps"].unmatched_keys == 1
    assert result.joins["nps"].unmatched_rows == 2
    assert any("match no account" in w.message and "999" in w.message for w in result.summary.warnings)
    assert len(result.table) == 4


def test_duplicate_account_keys_are_a_data_error(tmp_path: Path, accounts_csv: Path) -> None:
    with accounts_csv.open("a") as f:
        f.write(" 002 ,Beta again,SMB,1,1\n")
    with pytest.raises(DataError) as info:
        run(hand_model(tmp_path, accounts_csv))
    assert info.value.exit_code == 65
    assert "duplicate account key" in info.value.message
    assert any("accounts.csv line 3" in p.where for p in info.value.problems)
    assert any("accounts.csv line 6" in p.where for p in info.value.problems)


def test_overrides_replace_the_segment_until_they_expire(tmp_path: Path, accounts_csv: Path) -> None:
    write_csv(
        tmp_path / "overrides.csv",
        "account_id,segment,score,reason,author,expires_on\n"
        "002,Healthy,,Champion promoted,ana,2026-02-28\n"
        "004,,35,Acquired by a competitor,bo,2026-01-31\n"
        "001,Critical,,Old escalation,bo,2026-01-30\n",
    )
    result = run(hand_model(tmp_path, accounts_csv, overrides={"path": "overrides.csv"}))
    table = result.table.set_index("account_id")
    assert table.loc["002", ["health_score", "segment", "color"]].tolist() == [10.0, "Healthy", "green"]
    assert table.loc["002", ["computed_score", "computed_segment"]].tolist() == [10.0, "Critical"]
    assert table.loc["002", "override_reason"] == "Champion promoted"
    # a score override recomputes the segment; it expires at the end of its day
    assert table.loc["004", ["health_score", "segment", "computed_score"]].tolist() == [35.0, "Critical", 100.0]
    # expired: the model's values stand, and the summary says it was ignored
    assert table.loc["001", ["segment", "override_reason"]].tolist() == ["Healthy", ""]
    assert any("expired override" in w.message for w in result.summary.warnings)


def test_override_without_reason_is_a_data_error(tmp_path: Path, accounts_csv: Path) -> None:
    write_csv(tmp_path / "o.csv", "account_id,segment,reason,expires_on\n002,Healthy,,2026-02-28\n003,Great,x,\n")
    with pytest.raises(DataError) as info:
        run(hand_model(tmp_path, accounts_csv, overrides={"path": "o.csv"}))
    messages = [str(p) for p in info.value.problems]
    assert any("'002': no reason given" in m and "o.csv line 2" in m for m in messages)
    assert any("'003': no expires_on" in m for m in messages)
    assert any("'003': segment is not one of" in m for m in messages)


def test_history_gives_previous_score_and_change(tmp_path: Path, accounts_csv: Path) -> None:
    config = hand_model(tmp_path, accounts_csv, history={"path": "history"})
    earlier = run(config, "2026-01-24")
    write_outputs(earlier, config)
    assert (tmp_path / "history" / "as_of=2026-01-24" / "snapshot.parquet").is_file()
    later = run(config, "2026-01-31").table.set_index("account_id")
    previous = earlier.table.set_index("account_id")
    assert later["previous_score"].tolist() == previous["health_score"].tolist()
    expected = (later["health_score"] - previous["health_score"]).round(1)
    assert later["score_change"].tolist() == expected.tolist()
    assert later["previous_segment"].tolist() == previous["segment"].tolist()
    assert list(later.columns[-6:]) == [
        "previous_score",
        "score_change",
        "score_change_30d",
        "previous_segment",
        "segment_changed",
        "as_of",
    ]


# --- the shipped sample data ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_run() -> healthscore.RunResult:
    return run(load_config(ROOT / "configs" / "default.yaml"))


def test_sample_run_matches_golden_files(sample_run: healthscore.RunResult) -> None:
    """The sample run's CSV is pinned; regenerate with UPDATE_GOLDEN=1 after a deliberate change."""
    produced = table_bytes(sample_run.table, "csv")
    golden = GOLDEN / "sample_health_scores.csv"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(produced)
    assert produced == golden.read_bytes()


def test_sample_run_has_the_structure_a_cs_team_expects(sample_run: healthscore.RunResult) -> None:
    summary = sample_run.summary
    assert summary.accounts == 500
    assert sum(row.accounts for row in summary.segments) == 500
    assert {row.name for row in summary.segments} >= {"Critical", "At-Risk", "Healthy", "Thriving"}
    assert sample_run.joins["tickets"].unmatched_keys == 4
    table = sample_run.table
    assert table["account_id"].str.startswith("0").any()  # leading zeros kept
    assert "NA" in set(table["region"])  # the region North America is not a missing value
    assert table["health_score"].between(0, 100).all()


def test_minimal_config_runs() -> None:
    result = run(load_config(ROOT / "configs" / "minimal.yaml"))
    assert len(result.table) == 500
    assert result.table["health_score"].notna().sum() > 400


def test_shuffled_inputs_give_identical_output(tmp_path: Path, sample_run: healthscore.RunResult) -> None:
    data = tmp_path / "sample_data"
    data.mkdir()
    for name in ("crm_accounts.csv", "zendesk_tickets.csv", "nps_responses.csv"):
        frame = pd.read_csv(ROOT / "sample_data" / name, dtype=str, keep_default_na=False)
        frame.sample(frac=1.0, random_state=7).to_csv(data / name, index=False)
    usage = pd.read_parquet(ROOT / "sample_data" / "usage_events.parquet")
    usage.sample(frac=1.0, random_state=7).to_parquet(data / "usage_events.parquet", index=False)
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(ROOT / "configs" / "default.yaml", configs / "default.yaml")
    shuffled = run(load_config(configs / "default.yaml")).table
    shuffled = shuffled.sort_values("account_id").reset_index(drop=True)
    original = sample_run.table.sort_values("account_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(shuffled, original)


def test_a_field_blank_in_every_row_is_missing_not_an_error(tmp_path: Path, accounts_csv: Path) -> None:
    write_csv(tmp_path / "tickets.csv", "account_id,opened,hours\n001,2026-01-20,\n002,2026-01-21,\n")
    config = hand_model(
        tmp_path,
        accounts_csv,
        sources={
            "crm": {"path": accounts_csv.name, "key": "account_id", "types": {"arr": "float"}},
            "tickets": {"path": "tickets.csv", "key": "account_id", "time": "opened"},
        },
        metrics={"hours": {"source": "tickets", "agg": "median", "field": "hours", "scale": {"method": "percentile"}}},
        groups={"support": {"metrics": ["hours"]}},
        score={"min_coverage": 0},
    )
    result = run(config)
    assert result.table["hours"].isna().all()
    assert result.table["segment"].eq("Unscored").all()


def test_formula_gaps_are_explained(tmp_path: Path, accounts_csv: Path) -> None:
    config = hand_model(tmp_path, accounts_csv, score={"method": "formula", "formula": "nps_value + 100"})
    result = run(config)
    assert pd.isna(result.table.set_index("account_id").loc["003", "health_score"])
    messages = [w.message for w in result.summary.warnings]
    assert "1 account(s) are Unscored because the formula gave no value (one of its inputs is missing)" in messages


def test_a_run_lets_go_of_the_event_rows_it_read_but_not_of_sources_it_was_given() -> None:
    """Once aggregated and joined, a source's rows are most of a run's memory: a run that
    read them lets go of them (counts stay, for the summary and the manifest)."""
    from healthscore.pipeline import read_sources

    config = load_config(ROOT / "configs" / "default.yaml")
    own = run(config)
    given = read_sources(config)
    rows = {name: len(data.frame) for name, data in given.items()}
    again = run(config, sources=given)
    pd.testing.assert_frame_equal(own.table, again.table)
    for name, data in own.sources.items():
        assert data.rows_used == rows[name] == again.sources[name].rows_used
        assert len(data.frame) == (rows[name] if name == config.accounts.source else 0)
        assert len(again.sources[name].frame) == rows[name]  # the caller's sources are untouched
