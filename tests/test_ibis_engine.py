"""engine: ibis gives the pandas engine's scores: on the sample data, on hand-made edge cases
for every aggregation, on DuckDB tables, and on Spark where pyspark and Java are installed."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import AS_OF, ROOT

import healthscore
from healthscore.config import load_config, parse_config
from healthscore.errors import ConfigError, DataError
from healthscore.pipeline import RunResult, read_sources, run

ibis = pytest.importorskip("ibis", reason="engine: ibis needs the scale extra (pip install 'healthscore[scale]')")
duckdb = pytest.importorskip("duckdb")

SPARK_MISSING = [
    reason
    for reason, absent in (
        ("pyspark is not installed (pip install pyspark)", importlib.util.find_spec("pyspark") is None),
        ("java is not on PATH (Spark needs Java 17)", shutil.which("java") is None),
    )
    if absent
]
SPARK_URL = (
    "pyspark://local[2]?spark.ui.enabled=false&spark.sql.shuffle.partitions=1"
    "&spark.sql.execution.arrow.pyspark.enabled=true"
)


# --- helpers ------------------------------------------------------------------------------


def sample_config(tmp_path: Path, **top: Any) -> Path:
    """configs/default.yaml with absolute sample paths, outputs in tmp_path, and `top` keys."""
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    for source in data["sources"].values():
        source["path"] = str((ROOT / "configs" / source["path"]).resolve())
    data["outputs"]["dir"] = str(tmp_path / "out")
    data.update(top)
    path = tmp_path / f"{top.get('engine', 'pandas')}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame, tolerance: float = 1e-9) -> float:
    """The two scored tables hold the same accounts, columns and values: text and counts
    exactly, other numbers to `tolerance`. Returns the largest numeric difference."""
    assert list(a.columns) == list(b.columns)
    a, b = a.set_index("account_id").sort_index(), b.set_index("account_id").sort_index()
    assert a.index.equals(b.index)
    worst = 0.0
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            xs, ys = x.to_numpy(dtype="float64", na_value=np.nan), y.to_numpy(dtype="float64", na_value=np.nan)
            assert (np.isnan(xs) == np.isnan(ys)).all(), f"{column}: missing in one engine only"
            both = ~np.isnan(xs)
            diff = float(np.max(np.abs(xs[both] - ys[both]))) if both.any() else 0.0
            assert diff <= tolerance, f"{column}: differs by {diff}"
            worst = max(worst, diff)
        else:
            shown_x = x.astype("str").where(x.notna(), "<NA>")
            shown_y = y.astype("str").where(y.notna(), "<NA>")
            assert shown_x.equals(shown_y), f"{column}: {pd.DataFrame({'pandas': x, 'ibis': y})[shown_x != shown_y]}"
    return worst


def assert_same_run(a: RunResult, b: RunResult) -> float:
    """Same scored table, raw metric values, join counts and source counts."""
    worst = assert_same_table(a.table, b.table)
    assert a.raw is not None
    assert b.raw is not None
    raw_a, raw_b = a.raw.reset_index(names="account_id"), b.raw.reset_index(names="account_id")
    worst = max(worst, assert_same_table(raw_a, raw_b))
    assert a.joins == b.joins
    for name, data in a.sources.items():
        other = b.sources[name]
        assert (data.rows_read, data.rows_used, data.rejected) == (other.rows_read, other.rows_used, other.rejected)
    return worst


def both_engines(tmp_path: Path, sections: dict[str, Any], **ibis_top: Any) -> tuple[RunResult, RunResult]:
    """Run one config with engine pandas and engine ibis (with `ibis_top` keys)."""
    data = {"version": 1, "as_of": AS_OF.isoformat(), **sections}
    pandas_run = run(parse_config(data, base_dir=tmp_path))
    ibis_run = run(parse_config({**data, "engine": "ibis", **ibis_top}, base_dir=tmp_path))
    return pandas_run, ibis_run


# --- the sample ---------------------------------------------------------------------------


def test_sample_scores_equal_the_pandas_engine(tmp_path: Path) -> None:
    pandas_run = run(load_config(sample_config(tmp_path)))
    ibis_run = run(load_config(sample_config(tmp_path, engine="ibis")))
    assert assert_same_run(pandas_run, ibis_run) <= 1e-9
    assert [str(w) for w in pandas_run.warnings] == [str(w) for w in ibis_run.warnings]
    usage = ibis_run.sources["usage"]
    assert type(usage).__name__ == "BackendSource"
    assert [(f.rows, f.sha256) for f in usage.files] == [(f.rows, f.sha256) for f in pandas_run.sources["usage"].files]


def test_sample_backfill_days_from_one_read(tmp_path: Path) -> None:
    """Sources opened once serve several days (as `backfill` does), each its own query."""
    config = load_config(sample_config(tmp_path, engine="ibis"))
    opened = read_sources(config)
    pandas_config = load_config(sample_config(tmp_path))
    for day in (dt.date(2026, 1, 10), dt.date(2025, 12, 1)):
        assert_same_run(run(pandas_config, day), run(config, day, sources=opened))


# --- hand-made edge cases -----------------------------------------------------------------

CRM = "account_id,name,seats\nA1,One,10\nA2,Two,5\nA3,Three,2\nA4,Four,8\nA5,Five,3\nA6,Six,4\nA7,Seven,1\n"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def event_rows() -> pd.DataFrame:
    """Events placed on the window edges (30d: [2026-01-02, 2026-02-01) for as_of 2026-01-31)."""
    rows = [
        # A1: at the 30d window's first instant, just before it, as_of's last second, the cutoff, later
        ("A1", "2026-01-02 00:00:00", "login", 1.0, "u1", "beta", True, 9),
        ("A1", "2026-01-01 23:59:59", "login", 2.0, "u2", "zeta", False, 10),
        ("A1", "2026-01-01 23:59:59", "view", 7.0, "u2", "alpha", False, None),
        ("A1", "2026-01-31 23:59:59", "login", 3.0, "u1", "basic", True, 6),
        ("A1", "2026-01-31 23:59:59", "export", 3.0, "u3", "pro", None, 7),
        ("A1", "2026-02-01 00:00:00", "login", 100.0, "u9", "zzz", True, 0),
        ("A1", "2026-02-05 08:00:00", "login", 100.0, "u9", "zzz", True, 0),
        # A2: rows, but none of them a login
        ("A2", "2026-01-20 12:00:00", "view", 5.0, "u1", "pro", False, 8),
        ("A2", "2025-12-20 12:00:00", "view", None, "u1", None, False, None),
        # A3: rows only after as_of
        ("A3", "2026-02-02 00:00:00", "login", 1.0, "u1", "pro", True, 10),
        # A4: key with padding and lower case (key_transform strip, upper)
        (" a4 ", "2026-01-30 09:00:00", "login", 4.0, "u1", "pro", True, 10),
        ("A4", "2025-12-10 09:00:00", "login", 0.0, "u2", "pro", True, 0),
        ("A4", "2025-12-11 09:00:00", "login", None, "u3", "pro", True, None),
        # A5: missing values, NPS answers of every kind
        ("A5", "2026-01-10 00:00:00", "login", None, "u1", "pro", None, 10),
        ("A5", "2026-01-11 00:00:00", "login", float("nan"), "u2", "pro", True, 9),
        ("A5", "2026-01-12 00:00:00", "view", 2.5, "u3", None, False, 7),
        ("A5", "2026-01-13 00:00:00", "view", 2.5, "u4", "pro", False, 6),
        ("A5", "2026-01-14 00:00:00", "view", -1.5, None, "pro", False, 0),
        ("A5", "2026-01-15 00:00:00", "view", 0.5, "u5", "pro", False, None),
        # A6: four users the window before, two in this one; nothing the 7 days before
        ("A6", "2025-12-05 10:00:00", "login", 1.0, "u1", "pro", True, 9),
        ("A6", "2025-12-06 10:00:00", "login", 2.0, "u2", "pro", True, 9),
        ("A6", "2025-12-07 10:00:00", "login", 3.0, "u3", "pro", True, 9),
        ("A6", "2025-12-08 10:00:00", "login", 4.0, "u4", "pro", True, 9),
        ("A6", "2026-01-29 10:00:00", "login", 5.0, "u1", "pro", True, 9),
        ("A6", "2026-01-30 10:00:00", "login", 5.0, "u2", "pro", True, 9),
        # rejected: empty key, missing time; and a key no account has
        ("", "2026-01-20 00:00:00", "login", 1.0, "u1", "pro", True, 9),
        ("A7", None, "login", 1.0, "u1", "pro", True, 9),
        ("X9", "2026-01-20 00:00:00", "login", 1.0, "u1", "pro", True, 9),
        ("X9", "2026-01-21 00:00:00", "login", 1.0, "u1", "pro", True, 9),
    ]
    frame = pd.DataFrame(rows, columns=["account", "ts", "event", "value", "user", "plan", "flag", "score"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    frame["score"] = frame["score"].astype("Int64")
    frame["flag"] = frame["flag"].astype("boolean")
    return frame


PLANS = {"alpha": 1, "basic": 4, "beta": 6, "pro": 10, "zeta": 3, "zzz": 0}
METRICS: dict[str, dict[str, Any]] = {
    "logins_30d": {"agg": "count", "where": "event == 'login'", "window": "30d"},
    "logins": {"agg": "count", "where": "event == 'login'", "missing": {"fill": 0}},
    "rows_7d": {"agg": "count", "window": "7d"},
    "value_sum": {"agg": "sum", "field": "value", "window": "30d"},
    "value_mean": {"agg": "mean", "field": "value", "where": "event == 'login'"},
    "value_median": {"agg": "median", "field": "value", "window": "90d"},
    "value_min": {"agg": "min", "field": "value", "window": "30d"},
    "value_max": {"agg": "max", "field": "value"},
    "users_30d": {"agg": "nunique", "field": "user", "window": "30d"},
    "days_since_login": {"agg": "days_since", "where": "event == 'login'"},
    "days_since_30d": {"agg": "days_since", "window": "30d"},
    "first_plan": {"agg": "first", "field": "plan", "scale": {"method": "categorical", "map": PLANS}},
    "last_plan": {"agg": "last", "field": "plan", "window": "30d", "scale": {"method": "categorical", "map": PLANS}},
    "first_value": {"agg": "first", "field": "value", "window": "90d"},
    "last_value": {"agg": "last", "field": "value"},
    "nps": {"agg": "nps", "field": "score", "window": "180d"},
    "login_share": {
        "agg": "share",
        "where": "event in ['login', 'view']",
        "of_rows": "event == 'login'",
        "window": "30d",
    },
    "user_growth": {"agg": "growth", "of": {"agg": "nunique", "field": "user"}, "window": "30d"},
    "count_growth": {"agg": "growth", "of": {"agg": "count"}, "window": "7d"},
    "mean_growth": {"agg": "growth", "of": {"agg": "mean", "field": "value"}, "window": "30d"},
    "big_values": {"agg": "count", "where": "value > 1 and not is_missing(plan)"},
    "rounded": {"agg": "count", "where": "round(value) == 2 or round(value, 1) == -1.5"},
    "divided": {"agg": "count", "where": "value / (value - value) > 1 or is_missing(value / 0)"},
    "recent": {"agg": "count", "where": "ts >= '2026-01-15' and ts < '2026-01-31T12:00:00'"},
    "flagged": {"agg": "count", "where": "flag"},
    "not_flagged": {"agg": "count", "where": "not flag"},
    "not_pro": {"agg": "count", "where": "plan not in ['pro']"},
    "functions": {"agg": "count", "where": "abs(value - 2) <= clip(value, 0, 1) or min(value, 3) == 3"},
    "more_functions": {"agg": "count", "where": "max(value, 0) > 50 or log1p(value) > 1.2 or -value > 1"},
    "numbers_in": {"agg": "count", "where": "score in [9, 10] or value not in [1, 2.5]"},
    "chained": {"agg": "count", "where": "0 < value <= 3 and flag == True"},
    "arithmetic": {"agg": "sum", "field": "value", "where": "value * 2 + 1 - score / 2 > 0"},
}


def edge_sections(events: dict[str, Any], crm: dict[str, Any] | None = None) -> dict[str, Any]:
    metrics = {name: {"source": "events", **spec} for name, spec in METRICS.items()}
    metrics["seats"] = {"source": "crm", "agg": "value", "field": "seats"}
    return {
        "accounts": {"source": "crm", "columns": ["name"]},
        "sources": {"crm": crm or {"path": "crm.csv", "key": "account_id"}, "events": events},
        "metrics": metrics,
        "groups": {"all": {"metrics": list(metrics)}},
        "score": {"min_coverage": 0.1},
    }


EVENTS = {"key": "account", "time": "ts", "key_transform": ["strip", "upper"]}


@pytest.fixture
def edge_files(tmp_path: Path) -> Path:
    """crm.csv, and the edge-case events as events.parquet and events.csv (with NaN tokens)."""
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    frame = event_rows()
    frame.to_parquet(tmp_path / "events.parquet", index=False)
    text = frame.astype(object).where(frame.notna(), None)
    text["ts"] = frame["ts"].astype("str").where(frame["ts"].notna(), None)
    text.loc[text["value"].isna() & (text.index % 2 == 0), "value"] = "NaN"  # an NA token
    text.to_csv(tmp_path / "events.csv", index=False)
    return tmp_path


@pytest.mark.parametrize(
    "events",
    [
        pytest.param({"path": "events.parquet", **EVENTS}, id="parquet"),
        pytest.param({"path": "events.csv", "types": {"flag": "bool", "score": "int"}, **EVENTS}, id="csv-typed"),
        pytest.param({"path": "events.csv", "types": {"flag": "bool"}, **EVENTS}, id="csv-inferred"),
    ],
)
def test_every_aggregation_equals_the_pandas_engine(edge_files: Path, events: dict[str, Any]) -> None:
    pandas_run, ibis_run = both_engines(edge_files, edge_sections(events))
    assert_same_run(pandas_run, ibis_run)
    raw = ibis_run.raw
    assert raw is not None
    assert raw.loc["A1", "logins_30d"] == 2  # the window's first instant and as_of's last second
    assert raw.loc["A1", "last_plan"] == "pro"  # tied at the latest time: the largest value
    assert raw.loc["A1", "first_plan"] == "alpha"  # tied at the earliest time: the smallest value
    assert raw.loc["A2", "logins_30d"] == 0
    assert np.isnan(raw.loc["A2", "value_mean"])
    assert np.isnan(raw.loc["A3", "logins_30d"])
    assert raw.loc["A3", "logins"] == 0
    assert raw.loc["A4", "logins_30d"] == 1  # " a4 " normalized to A4
    assert raw.loc["A6", "user_growth"] == -0.5
    assert ibis_run.sources["events"].rejected == {"empty key": 1, "missing time": 1}
    assert ibis_run.joins["events"].examples == ("X9",)
    assert ibis_run.joins["events"].unmatched_rows == 2


def test_rejected_rows_are_listed(edge_files: Path) -> None:
    pandas_run, ibis_run = both_engines(edge_files, edge_sections({"path": "events.parquet", **EVENTS}))
    rejects = ibis_run.rejects
    assert rejects[["source", "line", "reason"]].to_numpy().tolist() == [
        ["events", 26, "empty key"],
        ["events", 27, "missing time"],
    ]
    pd.testing.assert_frame_equal(rejects, pandas_run.rejects, check_dtype=False)
    assert [str(w) for w in ibis_run.warnings] == [str(w) for w in pandas_run.warnings]


def test_times_and_keys_of_other_types(tmp_path: Path) -> None:
    """Integer keys, epoch times in milliseconds, and text times with offsets, Z or no time."""
    (tmp_path / "crm.csv").write_text("account_id\n1\n2\n3\n", encoding="utf-8")
    stamps = pd.to_datetime(
        ["2026-01-02 00:00:00", "2026-01-01 23:59:59", "2026-01-31 23:59:59", "2026-02-01 00:00:00"]
    )
    pd.DataFrame(
        {"account": [1, 2, 2, 3], "ms": (stamps.astype("int64") // 10**6).astype("int64"), "n": [1.0, 2.0, 3.0, 4.0]}
    ).to_parquet(tmp_path / "epochs.parquet", index=False)
    (tmp_path / "offsets.csv").write_text(
        "account,at,n\n"
        "1,2026-01-02T01:00:00+02:00,1\n"  # 2026-01-01 23:00 UTC: before the 30d window
        "1,2026-01-31T23:30:00-01:00,2\n"  # 2026-02-01 00:30 UTC: after as_of
        "2,2026-01-31T23:59:59Z,3\n"
        "2,2026-01-02,4\n"
        "3,2026-01-15 12:00,5\n",
        encoding="utf-8",
    )
    for events in ({"path": "epochs.parquet", "time": "ms"}, {"path": "offsets.csv", "time": "at"}):
        metrics = {
            "n_30d": {"source": "events", "agg": "count", "window": "30d"},
            "days": {"source": "events", "agg": "days_since"},
            "last_n": {"source": "events", "agg": "last", "field": "n"},
        }
        sections = {
            "accounts": {"source": "crm"},
            "sources": {"crm": {"path": "crm.csv", "key": "account_id"}, "events": {"key": "account", **events}},
            "metrics": metrics,
            "groups": {"all": {"metrics": list(metrics)}},
        }
        assert_same_run(*both_engines(tmp_path, sections))


def test_duckdb_options_in_the_connection_url(tmp_path: Path) -> None:
    """Files on an in-memory DuckDB with a memory limit: it spills to disk rather than fail."""
    url = f"duckdb://?threads=1&memory_limit=100MB&temp_directory={tmp_path / 'spill'}"
    pandas_run = run(load_config(sample_config(tmp_path)))
    assert_same_run(pandas_run, run(load_config(sample_config(tmp_path, engine="ibis", connection=url))))


def duckdb_file(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """A DuckDB database file holding `tables`."""
    with duckdb.connect(str(path)) as con:
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
    return path


def test_tables_on_a_duckdb_file(edge_files: Path) -> None:
    crm = pd.read_csv(edge_files / "crm.csv", dtype=str).astype({"seats": "int64"})
    duckdb_file(edge_files / "lake.duckdb", {"events": event_rows(), "accounts": crm})
    pandas_config = parse_config(
        {"version": 1, "as_of": AS_OF.isoformat(), **edge_sections({"path": "events.parquet", **EVENTS})},
        base_dir=edge_files,
    )
    sections = edge_sections(
        {"table": "events", **EVENTS}, crm={"table": "accounts", "key": "account_id", "types": {"seats": "int"}}
    )
    table_config = parse_config(
        {"version": 1, "as_of": AS_OF.isoformat(), "engine": "ibis", "connection": "duckdb://lake.duckdb", **sections},
        base_dir=edge_files,
    )
    pandas_run, ibis_run = run(pandas_config), run(table_config)
    assert_same_table(pandas_run.table, ibis_run.table)
    assert ibis_run.sources["events"].files[0].path == "duckdb://lake.duckdb#events"
    assert ibis_run.joins == pandas_run.joins


def test_data_errors_match_the_pandas_engine(edge_files: Path) -> None:
    events = {"path": "events.parquet", **EVENTS}
    for metric, match in (
        ({"agg": "mean", "field": "plan"}, "agg mean needs numbers, but column 'plan' of source 'events' holds text"),
        ({"agg": "count", "where": "plan > 1"}, 'cannot evaluate expression "plan > 1": cannot compare plan'),
        ({"agg": "count", "where": "value"}, 'expression "value" must give true/false, but it gives number'),
        ({"agg": "value", "field": "value"}, "agg value needs one row per account, but source 'events' has several"),
        ({"agg": "nps", "field": "value"}, "agg nps needs scores from 0 to 10"),
    ):
        sections = edge_sections(events)
        sections["metrics"] = {"bad": {"source": "events", **metric}}
        sections["groups"] = {"all": {"metrics": ["bad"]}}
        for engine in ("pandas", "ibis"):
            data = {"version": 1, "as_of": AS_OF.isoformat(), "engine": engine, **sections}
            with pytest.raises(DataError, match=match.replace("(", r"\(")):
                run(parse_config(data, base_dir=edge_files))


# --- the config -------------------------------------------------------------------------


def problems(data: dict[str, Any], tmp_path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"version": 1, **data}, base_dir=tmp_path)
    return [(p.where, p.message) for p in caught.value.problems]


def minimal(**sources: dict[str, Any]) -> dict[str, Any]:
    return {
        "accounts": {"source": "crm"},
        "sources": {"crm": {"path": "crm.csv", "key": "account_id"}, **sources},
        "metrics": {"n": {"source": next(iter(sources)), "agg": "count"}},
        "groups": {"g": {"metrics": ["n"]}},
    }


def test_table_sources_need_engine_ibis_and_a_connection(tmp_path: Path) -> None:
    data = minimal(events={"table": "events", "key": "account", "connection": "duckdb://lake.duckdb"})
    assert problems(data, tmp_path) == [
        ("sources.events.table", "a `table` source needs engine: ibis"),
        ("sources.events.connection", "`connection` applies to engine: ibis"),
    ]
    data = {**minimal(events={"table": "events", "key": "account"}), "engine": "ibis"}
    assert problems(data, tmp_path) == [("sources.events.table", "a `table` needs a `connection`")]
    data = {**minimal(events={"table": "events", "key": "a", "path": "e.csv"}), "engine": "ibis", "connection": "x"}
    assert problems(data, tmp_path) == [
        ("sources.events", "give `path` (a file) or `table` (a table on `connection`), not both"),
        ("connection", "expected an Ibis URL like duckdb://lake.db, got 'x'"),
    ]


def test_options_engine_ibis_cannot_honour_are_refused_at_load(tmp_path: Path) -> None:
    data = minimal(
        nps={"preset": "qualtrics_responses", "path": "nps.csv", "key": "external_reference"},
        tickets={"path": "t.csv", "key": "org", "decimal": ",", "encoding": "cp1252", "dedupe": "id"},
        crm2={"path": "x.xlsx", "key": "id", "key_transform": ["strip", "salesforce18"]},
    )
    data["engine"] = "ibis"
    found = problems(data, tmp_path)
    assert found == [
        (
            "sources.nps.header_rows",
            "engine: ibis does not support header_rows: 3 (set by preset qualtrics_responses)",
        ),
        ("sources.tickets.encoding", "engine: ibis does not support encoding cp1252"),
        ("sources.tickets.decimal", 'engine: ibis does not support decimal: ","'),
        ("sources.tickets.dedupe", "engine: ibis does not support dedupe"),
        ("sources.crm2.format", "engine: ibis does not support XLSX files"),
        ("sources.crm2.key_transform", "engine: ibis does not support key_transform salesforce18"),
    ]


def test_a_table_takes_no_file_options_and_ignores_its_presets(tmp_path: Path) -> None:
    nps = {"table": "nps", "preset": "qualtrics_responses", "key": "ref", "dedupe": "id", "key_transform": ["upper"]}
    data = {**minimal(nps=nps), "engine": "ibis", "connection": "duckdb://lake.duckdb"}
    assert problems(data, tmp_path) == [("sources.nps.dedupe", "`dedupe` applies to files, not to a `table`")]


def test_the_accounts_file_keeps_every_read_option(tmp_path: Path) -> None:
    data = minimal(events={"path": "e.parquet", "key": "account"})
    data["sources"]["crm"] = {"path": "crm.csv", "key": "id", "decimal": ",", "key_transform": ["salesforce18"]}
    config = parse_config({"version": 1, "engine": "ibis", **data}, base_dir=tmp_path)
    assert config.engine == "ibis"


def test_missing_ibis_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ibis" else real(name, *a))
    data = {**minimal(events={"path": "e.parquet", "key": "account"}), "engine": "ibis"}
    assert problems(data, tmp_path) == [
        ("engine", "engine: ibis needs the scale extra: pip install 'healthscore[scale]'")
    ]


def test_the_pandas_engine_never_imports_ibis() -> None:
    code = (
        "import sys, healthscore\n"
        "healthscore.run(healthscore.load_config('configs/default.yaml'))\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('ibis', 'duckdb', 'pyspark')], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_schema_describes_the_engine_keys() -> None:
    schema = healthscore.config.config_schema()
    assert schema["properties"]["engine"]["enum"] == ["pandas", "ibis"]
    source = schema["$defs"]["SourceConfig"]
    assert {"table", "connection", "path"} <= set(source["properties"])
    assert "path" not in source.get("required", [])


# --- Spark ------------------------------------------------------------------------------


@pytest.mark.skipif(bool(SPARK_MISSING), reason="; ".join(SPARK_MISSING) or "Spark is available")
def test_sample_on_spark_equals_the_pandas_engine(tmp_path: Path) -> None:
    """The sample config on PySpark in local mode: the files read and aggregated by Spark."""
    pandas_run = run(load_config(sample_config(tmp_path)))
    config = load_config(sample_config(tmp_path, engine="ibis", connection=SPARK_URL))
    try:
        spark_run = run(config)
    finally:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()
    assert assert_same_run(pandas_run, spark_run) <= 1e-9


# --- expressions --------------------------------------------------------------------------

EXPRESSIONS = [
    "x > 1",
    "x == 2.5 or x < -1",
    "not (x >= 0)",
    "round(x) == 2",
    "round(x) == 0",
    "round(x, 1) == 0.2",
    "round(x, -1) == 10",
    "abs(x) > 1 and not is_missing(s)",
    "x / (x - x) > 0 or is_missing(x / 0)",
    "log1p(x) > 0.5",
    "clip(x, 0, 2) == 2",
    "min(x, 1) < 1 or max(x, 3) > 3",
    "x * 2 - 1 >= 3",
    "-x < 0",
    "x in [0.5, 1.5, 2.5]",
    "x not in [0.5, 1.5]",
    "x in []",
    "x not in []",
    "s == 'a'",
    "s != 'a'",
    "s < 'b'",
    "s in ['a', 'c']",
    "s not in ['a']",
    "t >= '2026-01-15'",
    "t < '2026-01-20T12:00:00'",
    "'2026-01-10' <= t <= '2026-01-20'",
    "t in ['2026-01-15 00:00:00']",
    "b",
    "not b",
    "b == True",
    "b == 1 and x > 0",
    "b in [True]",
    "e == 1",
    "is_missing(e)",
    "not e",
    "e not in ['a']",
    "0 < x < 3",
    "1 + 1 == 2",
    "is_missing(1)",
]


@pytest.fixture(scope="module")
def expression_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Any]:
    """The same rows in pandas (as the pandas readers give them) and as a DuckDB table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from healthscore.ibis_engine import Backends

    path = tmp_path_factory.mktemp("expressions") / "rows.parquet"
    x = [0.5, 1.5, 2.5, -0.5, -1.5, 0.15, 0.25, 15.0, 25.0, 2.0**60, None, float("nan"), 1.0, 0.0]
    n = len(x)
    times = pd.date_range("2026-01-09", periods=n, freq="D")
    table = pa.table(
        {
            "id": list(range(n)),
            "x": pa.array(x, type=pa.float64(), from_pandas=False),
            "s": ["a", "b", "c", None, "a", "B", "", "a", "c", "b", None, "a", "b", "c"],
            "t": pa.array([None, *times[1:]], type=pa.timestamp("us")),
            "b": [True, False, None, True, False, True, None, False, True, True, False, None, True, False],
            "e": pa.nulls(n),
        }
    )
    pq.write_table(table, path)
    frame = pd.read_parquet(path)
    config = parse_config({"version": 1, **minimal(events={"path": "e.parquet", "key": "k"})}, base_dir=path.parent)
    con = Backends(config).get(None)
    rows = con.read_parquet(str(path))
    rows = rows.mutate(x=ibis.cases((rows.x.isnan(), ibis.null().cast("float64")), else_=rows.x))
    return frame, rows


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_expressions_compile_to_the_same_rows(expression_rows: tuple[pd.DataFrame, Any], text: str) -> None:
    from healthscore.expr import parse, predicate
    from healthscore.ibis_expr import compile_predicate

    frame, rows = expression_rows
    expected = predicate(parse(text), {c: frame[c] for c in frame.columns}, frame.index).tolist()
    query = rows.select("id", hit=compile_predicate(text, rows)).order_by("id")
    assert query.to_pandas()["hit"].astype(bool).tolist() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("s > 1", 'cannot evaluate expression "s > 1": cannot compare s (text) with 1 (number)'),
        ("s + 1 > 0", 'cannot evaluate expression "s + 1 > 0": s is text, not a number'),
        ("x and b", 'cannot evaluate expression "x and b": x is number, not true/false'),
        ("x + 1", 'expression "x + 1" must give true/false, but it gives number'),
        ("nope == 1", "cannot evaluate expression \"nope == 1\": no column named 'nope'"),
        ("t > 'soon'", "cannot evaluate expression \"t > 'soon'\": cannot read 'soon' as a date/time"),
    ],
)
def test_expression_errors_are_those_of_the_pandas_engine(
    expression_rows: tuple[pd.DataFrame, Any], text: str, message: str
) -> None:
    from healthscore.expr import parse, predicate
    from healthscore.ibis_expr import compile_predicate

    frame, rows = expression_rows
    for evaluate in (
        lambda: predicate(parse(text), {c: frame[c] for c in frame.columns if c != "nope"}, frame.index),
        lambda: compile_predicate(text, rows),
    ):
        with pytest.raises(DataError) as caught:
            evaluate()
        assert caught.value.message.startswith(message)


def test_a_backend_out_of_memory_is_not_a_data_error() -> None:
    """Running out of memory is no fault of the data: exit 1 with what to change, not 65."""
    from healthscore.errors import HealthscoreError
    from healthscore.ibis_backends import backend_call

    def oom() -> None:
        raise RuntimeError("Out of Memory Error: failed to allocate data of size 16.0 MiB (1.0 MiB/1.0 MiB used)")

    with pytest.raises(HealthscoreError) as info:
        backend_call("aggregate", "usage", oom)
    assert not isinstance(info.value, DataError)
    assert info.value.exit_code == 1
    assert "ran out of memory" in info.value.message
    assert "memory_limit" in str(info.value.problems[0])

    def bad() -> None:
        raise RuntimeError("Conversion Error: could not convert string 'x' to INT64")

    with pytest.raises(DataError):
        backend_call("read", "usage", bad)
