"""Columns needed only in recent rows (`pipeline.recent_columns`), which a run reading
Parquet leaves null in row groups older than any window counting them
(`parquet_columns.stale_groups`): the scores, the rejects and their raw text are those of
reading every column whole."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import AS_OF, make_config, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore import keys, parquet_columns
from healthscore.config import Config
from healthscore.pipeline import read_sources, recent_columns, run

DAY = pd.Timestamp(AS_OF)
NEXT = DAY + pd.Timedelta(days=1)  # the cutoff: midnight after as_of


def usage_config(tmp_path: Path, metrics: dict[str, Any], **usage: Any) -> Config:
    """A config of the accounts and a `usage` source of events.parquet, scoring `metrics`."""
    write_csv(tmp_path / "accounts.csv", "account_id,name\nA1,Acme\nA2,Beta\nA3,Gamma\n")
    return make_config(
        tmp_path,
        accounts={"source": "accounts"},
        sources={
            "accounts": {"path": "accounts.csv", "key": "account_id"},
            "usage": {"path": "events.parquet", "key": "account_id", "time": "ts", **usage},
        },
        metrics={name: {"source": "usage", **m, "scale": {"method": "percentile"}} for name, m in metrics.items()},
        groups={"usage": {"metrics": list(metrics)}},
    )


ACTIVE = {"agg": "nunique", "field": "user_id", "window": "7d"}


def test_recent_columns_are_those_only_windowed_nunique_counts(tmp_path: Path) -> None:
    metrics = {
        "active": ACTIVE,
        "active_growth": {"agg": "growth", "of": {"agg": "nunique", "field": "user_id"}, "window": "10d"},
        "plans": {"agg": "nunique", "field": "plan", "window": "30d"},
        "plans_ever": {"agg": "nunique", "field": "plan"},  # no window: every row
        "pages": {"agg": "nunique", "field": "page", "window": "7d"},
        "page_views": {"agg": "count", "where": "page != ''", "window": "7d"},  # a filter: every row
        "devices": {"agg": "nunique", "field": "device", "where": "device != 'bot'", "window": "7d"},
        "last_feature": {"agg": "last", "field": "feature", "window": "7d"},
    }
    recent = recent_columns(usage_config(tmp_path, metrics), AS_OF)
    assert recent == {"usage": {"user_id": NEXT - pd.Timedelta(days=20)}}  # the growth's window before


def test_recent_columns_of_calendar_months(tmp_path: Path) -> None:
    config = usage_config(tmp_path, {"active": {**ACTIVE, "window": "1m"}})
    assert recent_columns(config, dt.date(2026, 3, 31)) == {"usage": {"user_id": pd.Timestamp("2026-03-01")}}


def write_groups(path: Path, rows: pd.DataFrame, sizes: list[int], time: str = "ts", coded: bool = True) -> None:
    """`rows` (times in `time`, the rest text) as a Parquet file of row groups of the given
    sizes; text as dictionary codes, unless not `coded`."""
    schema = pa.schema({time: pa.timestamp("us"), **{c: pa.string() for c in rows.columns if c != time}})
    with pq.ParquetWriter(path, schema, use_dictionary=coded) as writer:
        for start, size in zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
            writer.write_table(pa.Table.from_pandas(rows.iloc[start : start + size], schema, preserve_index=False))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("zone", [None, "UTC", "America/New_York"])
def test_stale_groups_are_those_of_times_all_before_the_start(tmp_path: Path, unit: str, zone: str | None) -> None:
    def at(text: str | None) -> pd.Timestamp | None:
        when = None if text is None else pd.Timestamp(text)
        return when if when is None or zone is None else when.tz_localize("UTC").tz_convert(zone)

    days = [
        [at("2026-01-01 00:00"), at("2026-01-20 23:59:59")],
        [at("2026-01-21 00:00"), at("2026-01-02 00:00")],  # the start itself: not stale
        [at(None), at(None)],  # no statistics: never stale
        [at("2026-01-20 23:59:59"), at(None)],
    ]
    kind = pa.timestamp(unit, tz=zone)
    table = {"ts": pa.array([t for d in days for t in d], kind), "u": pa.array(["x"] * 8)}
    pq.write_table(pa.table(table), tmp_path / "t.parquet", row_group_size=2)
    opened = pq.ParquetFile(tmp_path / "t.parquet")
    start = {"u": pd.Timestamp("2026-01-21"), "v": pd.Timestamp("2026-01-22")}
    stale = parquet_columns.stale_groups(opened.metadata, opened.schema_arrow, "ts", start)
    assert stale == {"u": [0, 3], "v": [0, 1, 3]}
    assert (
        parquet_columns.stale_groups(opened.metadata, opened.schema_arrow, "ts", {"u": pd.Timestamp("2025-12-31")})
        == {}
    )


def test_stale_groups_of_dates_and_of_times_that_are_not_timestamps(tmp_path: Path) -> None:
    dates = pa.array([dt.date(2026, 1, 19), dt.date(2026, 1, 20), dt.date(2026, 1, 21), None])
    table = pa.table({"d": dates, "text": dates.cast(pa.string()), "n": pa.array([1, 2, 3, 4]), "u": ["x"] * 4})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=1)
    opened = pq.ParquetFile(tmp_path / "t.parquet")
    start = {"u": pd.Timestamp("2026-01-21")}
    assert parquet_columns.stale_groups(opened.metadata, opened.schema_arrow, "d", start) == {"u": [0, 1]}
    for time in ("text", "n", "absent"):  # the footer cannot tell
        assert parquet_columns.stale_groups(opened.metadata, opened.schema_arrow, time, start) == {}


def events(days: int) -> dict[str, list[Any]]:
    """Events of A1..A3 over `days` days ending with as_of, two a day each; a row of an
    empty key and one without a time in the first day."""
    times, keys, users = [], [], []
    for day in range(days):
        stamp = DAY - pd.Timedelta(days=days - 1 - day) + pd.Timedelta(hours=9)
        for n, key in enumerate(["A1", "A2", "A3", "A1", "A2", "A3"]):
            times.append(stamp + pd.Timedelta(minutes=n))
            keys.append(key)
            users.append(f"u{(day * 7 + n) % 5}")
    times[1], keys[2], users[3] = None, "", None
    return {"ts": times, "account_id": keys, "user_id": users}


def run_both(config: Config) -> tuple[Any, Any]:
    """A run reading its own sources (recent columns left out of old rows) and one given
    every column whole."""
    return run(config), run(config, sources=read_sources(config))


@pytest.mark.parametrize("halves", [False, True])
@pytest.mark.parametrize("coded", [True, False])  # the key read with the rest (its row groups' dictionaries), or apart
def test_old_row_groups_are_not_read_for_recent_columns_and_nothing_else_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, halves: bool, coded: bool
) -> None:
    if halves:  # the recent row groups read in two halves, one on each thread, as over many rows
        monkeypatch.setattr(keys, "PARALLEL_ROWS", 2)
    rows = pd.DataFrame(events(30))
    write_groups(tmp_path / "events.parquet", rows, [6] * 30, coded=coded)  # a day each
    assert parquet_columns.coded_throughout(pq.read_metadata(tmp_path / "events.parquet"), "account_id") == coded
    metrics = {"active": ACTIVE, "logins": {"agg": "count", "window": "30d"}}
    config = usage_config(tmp_path, metrics)
    recent = read_sources(config, as_of=AS_OF)["usage"]
    whole = read_sources(config)["usage"]
    old = (recent.frame["ts"] < DAY - pd.Timedelta(days=6)).to_numpy()  # 7 days: the window
    assert recent.frame["user_id"][old].isna().all()
    assert whole.frame["user_id"][old].notna().any()
    pd.testing.assert_series_equal(recent.frame["user_id"][~old], whole.frame["user_id"][~old])
    pd.testing.assert_frame_equal(recent.frame.drop(columns="user_id"), whole.frame.drop(columns="user_id"))
    # the empty key's row, in the oldest row group, is rejected with its user as written
    pd.testing.assert_frame_equal(recent.rejects, whole.rejects)
    assert '"user_id":"u2"' in recent.rejects.loc[recent.rejects["reason"] == "empty key", "raw"].iloc[0]
    own, given = run_both(config)
    pd.testing.assert_frame_equal(own.table, given.table)
    pd.testing.assert_frame_equal(own.rejects, given.rejects)


@pytest.mark.parametrize("coded", [True, False])
def test_recent_row_groups_are_begun_before_the_other_columns_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coded: bool
) -> None:
    """The recent columns' reads are on the two threads while Arrow's read the rest."""
    write_groups(tmp_path / "events.parquet", pd.DataFrame(events(30)), [6] * 30, coded=coded)
    config = usage_config(tmp_path, {"active": ACTIVE, "logins": {"agg": "count", "window": "30d"}})
    steps: list[tuple[str, tuple[str, ...]]] = []  # (how, columns) of each read
    read_whole, read_groups = pq.ParquetFile.read, pq.ParquetFile.read_row_groups

    def whole(self: pq.ParquetFile, columns: list[str] | None = None, **kwargs: Any) -> pa.Table:
        steps.append(("whole", tuple(columns or ())))
        return read_whole(self, columns, **kwargs)

    def groups(self: pq.ParquetFile, row_groups: list[int], columns: list[str] | None = None, **kw: Any) -> pa.Table:
        steps.append(("groups", tuple(columns or ())))
        return read_groups(self, row_groups, columns, **kw)

    def begun(work: Any, items: Any) -> Any:  # run at once, in order, so the steps say when it was begun
        done = [work(item) for item in items]
        return lambda: done

    monkeypatch.setattr(pq.ParquetFile, "read", whole)
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", groups)
    monkeypatch.setattr(parquet_columns, "begun", begun)
    read_sources(config, as_of=AS_OF)
    rest = next(i for i, (how, columns) in enumerate(steps) if how == "whole" and "ts" in columns)
    assert ("groups", ("user_id",)) in steps[:rest]  # (where not coded, the key was read apart before both)


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=8),
    window=st.sampled_from(["1d", "3d", "7d", "30d"]),
    growth=st.booleans(),
    shuffled=st.booleans(),
)
def test_scores_and_rejects_equal_reading_every_column(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[int], window: str, growth: bool, shuffled: bool
) -> None:
    tmp_path = tmp_path_factory.mktemp("recent")
    rows = pd.DataFrame(events(20))
    if shuffled:  # row groups of overlapping times
        rows = rows.sample(frac=1, random_state=len(cuts)).reset_index(drop=True)
    bounds = np.unique(np.clip(np.cumsum(cuts), 0, len(rows)))
    write_groups(tmp_path / "events.parquet", rows, np.diff([0, *bounds[bounds < len(rows)], len(rows)]).tolist())
    metrics: dict[str, Any] = {"active": {**ACTIVE, "window": window}, "events": {"agg": "count"}}
    if growth:
        metrics["growth"] = {"agg": "growth", "of": {"agg": "nunique", "field": "user_id"}, "window": window}
    own, given = run_both(usage_config(tmp_path, metrics))
    pd.testing.assert_frame_equal(own.table, given.table)
    pd.testing.assert_frame_equal(own.rejects, given.rejects)


def test_files_of_a_glob_with_a_renamed_time_column_score_as_read_whole(tmp_path: Path) -> None:
    """Each file of a glob is pruned by its own row groups, the time column found by the
    name the source renames it from."""
    rows = pd.DataFrame(events(30))
    for part, days in (("a", range(0, 15)), ("b", range(15, 30))):
        piece = rows.iloc[days[0] * 6 : (days[-1] + 1) * 6].reset_index(drop=True)
        when = piece.rename(columns={"ts": "when"})
        write_groups(tmp_path / f"events-{part}.parquet", when, [6] * len(days), time="when")
    config = usage_config(tmp_path, {"active": ACTIVE, "logins": {"agg": "count"}})
    usage = config.sources["usage"].model_copy(update={"path": "events-*.parquet", "rename": {"when": "ts"}})
    config = config.model_copy(update={"sources": {**config.sources, "usage": usage}})
    recent = read_sources(config, as_of=AS_OF)["usage"].frame
    assert recent["user_id"].isna().sum() > read_sources(config)["usage"].frame["user_id"].isna().sum()
    own, given = run_both(config)
    pd.testing.assert_frame_equal(own.table, given.table)
    pd.testing.assert_frame_equal(own.rejects, given.rejects)
