"""Tests for per-account aggregation over time windows (healthscore.aggregate)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import AS_OF, make_config, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore.aggregate import aggregate_source, cutoff_of, window_interval
from healthscore.config import Config
from healthscore.errors import DataError
from healthscore.pipeline import run
from healthscore.sources import SourceData, read_source

NAN = float("nan")
CRM = "account_id,name\nA,Acme\nB,Beta\nC,Gamma\nD,Delta\n"


def events_config(tmp_path: Path, events: str, metrics: dict[str, dict[str, Any]], **source: Any) -> Config:
    """A config with spine `crm` (accounts A-D) and source `ev` (`events` CSV, time column `t`)."""
    write_csv(tmp_path / "crm.csv", CRM)
    write_csv(tmp_path / "ev.csv", events)
    return make_config(
        tmp_path,
        accounts={"source": "crm", "columns": ["name"]},
        sources={
            "crm": {"path": "crm.csv", "key": "account_id"},
            "ev": {"path": "ev.csv", "key": "account_id", "time": "t", **source},
        },
        metrics={name: {"source": "ev", **m} for name, m in metrics.items()},
        groups={"g": {"metrics": list(metrics)}},
    )


def aggregate(tmp_path: Path, events: str, metrics: dict[str, dict[str, Any]], as_of: dt.date = AS_OF) -> pd.DataFrame:
    """Read `events` as source `ev` and aggregate the given metrics as of `as_of`."""
    config = events_config(tmp_path, events, metrics)
    data = read_source(config, "ev")
    return aggregate_source(data, {n: config.metrics[n] for n in metrics}, as_of)


def values(result: pd.DataFrame, metric: str) -> dict[str, Any]:
    """A metric column as {account: value}, missing values as None, floats rounded to 9 places."""
    out: dict[str, Any] = {}
    for key, value in result[metric].items():
        if pd.isna(value):
            out[str(key)] = None
        elif isinstance(value, float | np.floating):
            out[str(key)] = round(float(value), 9)
        else:
            out[str(key)] = value
    return out


# --- windows ------------------------------------------------------------------------------

WINDOW_EVENTS = (
    "account_id,t,event\n"
    "A,2026-01-31 23:59:59,login\n"  # last second of as_of: counts
    "A,2026-02-01 00:00:00,login\n"  # the day after as_of: never counts
    "A,2026-01-02 00:00:00,login\n"  # first instant of a 30d window
    "A,2026-01-01 23:59:59,login\n"  # just before it
    "B,2026-01-15 12:00:00,login\n"
    "C,2025-06-01 00:00:00,login\n"
    "E,2026-03-01 00:00:00,login\n"  # only rows after as_of
)


def test_window_is_the_calendar_days_ending_at_as_of(tmp_path: Path) -> None:
    result = aggregate(tmp_path, WINDOW_EVENTS, {"n30": {"agg": "count", "window": "30d"}, "all": {"agg": "count"}})
    assert values(result, "n30") == {"A": 2.0, "B": 1.0, "C": 0.0}
    assert values(result, "all") == {"A": 3.0, "B": 1.0, "C": 1.0}


def test_as_of_in_the_past_reproduces_the_earlier_value(tmp_path: Path) -> None:
    metrics = {"n30": {"agg": "count", "window": "30d"}, "all": {"agg": "count"}, "ds": {"agg": "days_since"}}
    past = dt.date(2026, 1, 15)
    result = aggregate(tmp_path, WINDOW_EVENTS, metrics, as_of=past)
    assert values(result, "n30") == {"A": 2.0, "B": 1.0, "C": 0.0}
    assert values(result, "all") == {"A": 2.0, "B": 1.0, "C": 1.0}
    assert values(result, "ds") == {"A": 13.0, "B": 0.0, "C": 228.0}
    earlier_rows = "\n".join(WINDOW_EVENTS.splitlines()[:1] + WINDOW_EVENTS.splitlines()[3:7]) + "\n"
    (tmp_path / "again").mkdir()
    truncated = aggregate(tmp_path / "again", earlier_rows, metrics, as_of=past)
    pd.testing.assert_frame_equal(result, truncated)


def test_window_interval_calendar_offsets() -> None:
    as_of = dt.date(2026, 3, 31)
    ts = pd.Timestamp
    assert cutoff_of(as_of) == ts("2026-04-01")
    assert window_interval("30d", as_of) == (ts("2026-03-02"), ts("2026-04-01"))
    assert window_interval("2w", as_of) == (ts("2026-03-18"), ts("2026-04-01"))
    assert window_interval("1m", as_of) == (ts("2026-03-01"), ts("2026-04-01"))
    assert window_interval("1m", as_of, periods_back=1) == (ts("2026-02-01"), ts("2026-03-01"))
    assert window_interval("6m", as_of) == (ts("2025-10-01"), ts("2026-04-01"))
    assert window_interval("1y", as_of) == (ts("2025-04-01"), ts("2026-04-01"))
    assert window_interval("30d", as_of, periods_back=1) == (ts("2026-01-31"), ts("2026-03-02"))
    assert window_interval(None, as_of) is None


def test_month_window_counts_calendar_months(tmp_path: Path) -> None:
    events = "account_id,t\nA,2026-02-28 23:59:59\nA,2026-03-01 00:00:00\nA,2026-03-31 12:00:00\n"
    result = aggregate(tmp_path, events, {"m1": {"agg": "count", "window": "1m"}}, as_of=dt.date(2026, 3, 31))
    assert values(result, "m1") == {"A": 2.0}


# --- one test per aggregation -------------------------------------------------------------

EVENTS = (
    "account_id,t,event,user,value,score,satisfaction\n"
    "A,2026-01-31 09:00,login,u1,10,10,good\n"
    "A,2026-01-29 09:00,login,u2,2,9,good\n"
    "A,2026-01-20 09:00,view,u1,5,8,bad\n"
    "A,2026-01-10 09:00,login,u3,3,6,offered\n"
    "A,2025-12-20 09:00,login,u1,7,0,good\n"
    "B,2026-01-25 09:00,view,u4,4,,offered\n"
    "B,2026-01-05 09:00,view,u4,6,10,\n"
    "C,2025-12-10 09:00,login,u5,1,7,good\n"
    "C,2025-12-05 09:00,login,u6,1,8,bad\n"
)
LOGIN = "event == 'login'"


def agg_of(tmp_path: Path, metric: dict[str, Any], as_of: dt.date = AS_OF) -> dict[str, Any]:
    return values(aggregate(tmp_path, EVENTS, {"m": metric}, as_of), "m")


def test_count_with_where(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "count", "where": LOGIN, "window": "30d"}) == {"A": 3.0, "B": 0.0, "C": 0.0}
    assert agg_of(tmp_path, {"agg": "count", "where": LOGIN}) == {"A": 4.0, "B": 0.0, "C": 2.0}


def test_sum(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "sum", "field": "value", "where": LOGIN, "window": "30d"}) == {
        "A": 15.0,
        "B": 0.0,
        "C": 0.0,
    }


def test_mean(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "mean", "field": "value", "where": LOGIN, "window": "30d"}) == {
        "A": 5.0,
        "B": None,
        "C": None,
    }


def test_median(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "median", "field": "value", "window": "30d"}) == {"A": 4.0, "B": 5.0, "C": None}
    assert agg_of(tmp_path, {"agg": "median", "field": "value", "where": LOGIN}) == {"A": 5.0, "B": None, "C": 1.0}


def test_min_and_max(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "min", "field": "value", "window": "30d"}) == {"A": 2.0, "B": 4.0, "C": None}
    assert agg_of(tmp_path, {"agg": "max", "field": "value", "window": "30d"}) == {"A": 10.0, "B": 6.0, "C": None}


def test_nunique(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "nunique", "field": "user", "window": "30d"}) == {"A": 3, "B": 1, "C": 0}
    assert agg_of(tmp_path, {"agg": "nunique", "field": "user", "where": LOGIN}) == {"A": 3, "B": 0, "C": 2}


def test_first_and_last_by_time(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "first", "field": "value", "window": "30d"}) == {"A": 3.0, "B": 6.0, "C": None}
    assert agg_of(tmp_path, {"agg": "last", "field": "value", "window": "30d"}) == {"A": 10.0, "B": 4.0, "C": None}
    assert agg_of(tmp_path, {"agg": "last", "field": "event", "where": LOGIN}) == {
        "A": "login",
        "B": None,
        "C": "login",
    }


def test_first_and_last_ties_in_time_do_not_depend_on_row_order(tmp_path: Path) -> None:
    """Rows tied at the first/last time: first takes the smallest value, last the largest,
    whatever the row order and whichever other metrics the source has."""
    rows = ["A,2026-01-30 10:00,x,3", "A,2026-01-30 10:00,y,1", "A,2026-01-30 10:00,z,2", "A,2026-01-01,w,9"]
    rows += ["B,2026-01-05,b,5", "B,2026-01-05,a,7", "B,2026-01-20,c,"]  # the latest row has no v
    metrics = {
        "first_v": {"agg": "first", "field": "v"},
        "last_v": {"agg": "last", "field": "v"},
        "first_e": {"agg": "first", "field": "e"},
        "last_e": {"agg": "last", "field": "e"},
    }
    results = []
    for i, order in enumerate([rows, rows[::-1], [rows[k] for k in (1, 6, 3, 5, 2, 0, 4)]]):
        (tmp_path / str(i)).mkdir()
        events = "account_id,t,e,v\n" + "\n".join(order) + "\n"
        results.append(aggregate(tmp_path / str(i), events, metrics))
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)
    assert values(results[0], "first_v") == {"A": 9.0, "B": 5.0}
    assert values(results[0], "last_v") == {"A": 3.0, "B": 7.0}
    assert values(results[0], "first_e") == {"A": "w", "B": "a"}
    assert values(results[0], "last_e") == {"A": "z", "B": "c"}
    (tmp_path / "alone").mkdir()
    alone = aggregate(tmp_path / "alone", "account_id,t,e,v\n" + "\n".join(rows) + "\n", {"last_e": metrics["last_e"]})
    assert values(alone, "last_e") == {"A": "z", "B": "c"}


def test_days_since(tmp_path: Path) -> None:
    assert agg_of(tmp_path, {"agg": "days_since", "where": LOGIN}) == {"A": 0.0, "B": None, "C": 52.0}
    assert agg_of(tmp_path, {"agg": "days_since", "where": "event == 'view'"}) == {"A": 11.0, "B": 6.0, "C": None}
    assert agg_of(tmp_path, {"agg": "days_since"}, as_of=dt.date(2026, 2, 3)) == {"A": 3.0, "B": 9.0, "C": 55.0}


def test_nps(tmp_path: Path) -> None:
    # A in 30d: 10, 9 promoters; 8 passive; 6 detractor -> (2 - 1) / 4
    assert agg_of(tmp_path, {"agg": "nps", "field": "score", "window": "30d"}) == {"A": 25.0, "B": 100.0, "C": None}
    # all time: A 10, 9, 8, 6, 0 -> (2 - 2) / 5; C 7, 8 -> 0 / 2
    assert agg_of(tmp_path, {"agg": "nps", "field": "score"}) == {"A": 0.0, "B": 100.0, "C": 0.0}
    only_detractors = "account_id,t,score\nA,2026-01-30,0\nA,2026-01-30,6\nB,2026-01-30,\n"
    (tmp_path / "d").mkdir()
    result = aggregate(tmp_path / "d", only_detractors, {"nps": {"agg": "nps", "field": "score"}})
    assert values(result, "nps") == {"A": -100.0, "B": None}


def test_share(tmp_path: Path) -> None:
    metric = {
        "agg": "share",
        "where": "satisfaction in ['good', 'bad']",
        "of_rows": "satisfaction == 'good'",
        "window": "30d",
    }
    assert agg_of(tmp_path, metric) == {"A": round(2 / 3, 9), "B": None, "C": None}
    assert agg_of(tmp_path, {**metric, "window": None}) == {"A": 0.75, "B": None, "C": 0.5}


def test_share_without_where_is_over_all_rows(tmp_path: Path) -> None:
    metric = {"agg": "share", "of_rows": LOGIN, "window": "30d"}
    assert agg_of(tmp_path, metric) == {"A": 0.75, "B": 0.0, "C": None}


GROWTH_EVENTS = (
    "account_id,t,user\n"
    # current window [2026-01-02, 2026-02-01), previous [2025-12-03, 2026-01-02)
    "A,2026-01-30,u1\nA,2026-01-20,u2\nA,2026-01-02,u3\nA,2026-01-03,u3\n"
    "A,2026-01-01 23:59,u1\nA,2025-12-03,u2\nA,2025-12-02 23:59,u9\n"
    "B,2026-01-10,u4\n"  # nothing before: previous 0 -> missing
    "C,2025-12-20,u5\nC,2025-12-21,u6\n"  # nothing now: -100%
    "D,2025-01-01,u7\n"  # nothing in either window: missing
)


def test_growth_of_nunique_users(tmp_path: Path) -> None:
    metric = {"agg": "growth", "of": {"agg": "nunique", "field": "user"}, "window": "30d"}
    result = aggregate(tmp_path, GROWTH_EVENTS, {"g": metric})
    assert values(result, "g") == {"A": 0.5, "B": None, "C": -1.0, "D": None}


def test_growth_of_count_and_mean(tmp_path: Path) -> None:
    metrics = {
        "gc": {"agg": "growth", "of": {"agg": "count"}, "window": "30d"},
        "gm": {"agg": "growth", "of": {"agg": "mean", "field": "v"}, "window": "30d", "where": "v > 0"},
    }
    events = "account_id,t,v\nA,2026-01-30,6\nA,2026-01-29,0\nA,2026-01-28,6\nA,2025-12-30,4\nA,2025-12-29,-1\n"
    result = aggregate(tmp_path, events, metrics)
    assert values(result, "gc") == {"A": 0.5}
    assert values(result, "gm") == {"A": 0.5}


def test_value_reads_one_row_per_account(tmp_path: Path) -> None:
    write_csv(tmp_path / "crm.csv", "account_id,onboarding\nA,80\nB,\nC,100\n")
    config = make_config(
        tmp_path,
        accounts={"source": "crm"},
        sources={"crm": {"path": "crm.csv", "key": "account_id"}},
        metrics={"onb": {"source": "crm", "agg": "value", "field": "onboarding"}},
        groups={"g": {"metrics": ["onb"]}},
    )
    result = aggregate_source(read_source(config, "crm"), config.metrics, AS_OF)
    assert values(result, "onb") == {"A": 80.0, "B": None, "C": 100.0}


def test_value_with_duplicate_keys_is_a_data_error_suggesting_last(tmp_path: Path) -> None:
    events = "account_id,t,plan\nA,2026-01-01,pro\nB,2026-01-01,basic\nA,2026-01-02,basic\nB,2026-01-03,pro\n"
    with pytest.raises(DataError) as info:
        aggregate(tmp_path, events, {"plan": {"agg": "value", "field": "plan"}})
    assert info.value.exit_code == 65
    text = str(info.value)
    assert "'A'" in text
    assert "'B'" in text
    assert "agg last" in text


# --- missing is not zero ------------------------------------------------------------------

ALL_AGGS: dict[str, dict[str, Any]] = {
    "count": {"agg": "count"},
    "sum": {"agg": "sum", "field": "value"},
    "nunique": {"agg": "nunique", "field": "user"},
    "mean": {"agg": "mean", "field": "value"},
    "median": {"agg": "median", "field": "value"},
    "min": {"agg": "min", "field": "value"},
    "max": {"agg": "max", "field": "value"},
    "first": {"agg": "first", "field": "value"},
    "last": {"agg": "last", "field": "value"},
    "nps": {"agg": "nps", "field": "score"},
    "share": {"agg": "share", "of_rows": "satisfaction == 'good'"},
    "days_since": {"agg": "days_since"},
}
COUNT_LIKE = {"count", "sum", "nunique"}


def test_missing_is_not_zero(tmp_path: Path) -> None:
    """No rows at all: missing everywhere. Rows, none matching `where`: 0 for count-like, else missing."""
    metrics = {name: {**m, "where": "event == 'purchase'"} for name, m in ALL_AGGS.items()}
    config = events_config(tmp_path, EVENTS, metrics)
    table = run(config).table.set_index("account_id")
    for name in ALL_AGGS:
        column = table[name]
        assert pd.isna(column["D"]), name  # D has no rows in the source
        if name in COUNT_LIKE:
            assert column[["A", "B", "C"]].tolist() == [0, 0, 0], name
        else:
            assert column[["A", "B", "C"]].isna().all(), name


def test_full_run_carries_raw_values(tmp_path: Path) -> None:
    metrics = {"logins": {"agg": "count", "where": LOGIN, "window": "30d"}, "nps": {"agg": "nps", "field": "score"}}
    table = run(events_config(tmp_path, EVENTS, metrics)).table.set_index("account_id")
    assert table.loc[["A", "B", "C"], "logins"].tolist() == [3, 0, 0]
    assert pd.isna(table.loc["D", "logins"])  # no rows at all: missing, not 0
    assert table.loc[["A", "B", "C"], "nps"].tolist() == [0.0, 100.0, 0.0]
    assert math.isnan(table.loc["D", "nps"])


def test_rows_without_time_are_left_out(tmp_path: Path) -> None:
    events = "account_id,t\nA,2026-01-30\nA,\nB,\n"
    config = events_config(tmp_path, events, {"n": {"agg": "count"}})
    data = read_source(config, "ev")
    assert data.rows_without_time == 2
    assert values(aggregate_source(data, config.metrics, AS_OF), "n") == {"A": 1.0}


def test_source_with_only_future_rows_gives_an_empty_result(tmp_path: Path) -> None:
    events = "account_id,t,value,user\nA,2026-03-01,1,u\n"
    metrics = {n: m for n, m in ALL_AGGS.items() if n not in ("nps", "share")}
    result = aggregate(tmp_path, events, metrics)
    assert len(result) == 0
    assert sorted(result.columns) == sorted(metrics)


# --- row order never matters --------------------------------------------------------------

DAYS = [pd.Timestamp("2025-12-20") + pd.Timedelta(days=d) for d in range(0, 50, 7)]
PROPERTY_METRICS: dict[str, dict[str, Any]] = {
    **{name: {**m, "where": "event == 'login'"} for name, m in ALL_AGGS.items()},
    "count30": {"agg": "count", "window": "30d"},
    "last_event": {"agg": "last", "field": "event"},
    "first_user": {"agg": "first", "field": "user", "window": "30d"},
    "share_all": {"agg": "share", "of_rows": "event == 'login'", "window": "30d"},
    "growth": {"agg": "growth", "of": {"agg": "nunique", "field": "user"}, "window": "30d"},
    "growth_sum": {"agg": "growth", "of": {"agg": "sum", "field": "value"}, "window": "2w"},
    "latest_score": {"agg": "last", "field": "score"},
    "count_1m": {"agg": "count", "window": "1m"},
}
_PROPERTY_CONFIG: list[Config] = []


def property_config() -> Config:
    if not _PROPERTY_CONFIG:
        _PROPERTY_CONFIG.append(
            make_config(
                Path("."),
                accounts={"source": "ev"},
                sources={"ev": {"path": "unused.csv", "key": "account_id", "time": "t"}},
                metrics={name: {"source": "ev", **m} for name, m in PROPERTY_METRICS.items()},
                groups={"g": {"metrics": list(PROPERTY_METRICS)}},
            )
        )
    return _PROPERTY_CONFIG[0]


event_rows = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from(DAYS),
        st.sampled_from(["login", "view"]),
        st.sampled_from(["u1", "u2", "u3"]),
        st.integers(-3, 20),
        st.one_of(st.none(), st.integers(0, 10)),
        st.sampled_from(["good", "bad", None]),
    ),
    min_size=1,
    max_size=25,
)


def as_source(rows: list[tuple[Any, ...]]) -> SourceData:
    frame = pd.DataFrame(rows, columns=["account_id", "t", "event", "user", "value", "score", "satisfaction"])
    frame["value"] = frame["value"].astype("float64")
    frame["score"] = frame["score"].astype("float64")
    frame["account_id"] = frame["account_id"].astype("str")
    return SourceData("ev", frame, "account_id", "t", [])


@settings(max_examples=35, deadline=None)
@given(rows=event_rows, seed=st.integers(0, 2**32 - 1))
def test_shuffling_rows_changes_no_aggregate(rows: list[tuple[Any, ...]], seed: int) -> None:
    config = property_config()
    shuffled = list(np.random.default_rng(seed).permutation(len(rows)))
    before = aggregate_source(as_source(rows), config.metrics, AS_OF)
    after = aggregate_source(as_source([rows[i] for i in shuffled]), config.metrics, AS_OF)
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=20, deadline=None)
@given(rows=event_rows, past=st.sampled_from([dt.date(2026, 1, 1), dt.date(2026, 1, 10), dt.date(2025, 12, 31)]))
def test_a_past_as_of_ignores_later_rows(rows: list[tuple[Any, ...]], past: dt.date) -> None:
    config = property_config()
    full = aggregate_source(as_source(rows), config.metrics, past)
    earlier = [r for r in rows if r[1] < cutoff_of(past)]
    if not earlier:
        assert len(full) == 0
        return
    pd.testing.assert_frame_equal(full, aggregate_source(as_source(earlier), config.metrics, past))


def test_numeric_agg_over_text_is_a_data_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        aggregate(tmp_path, EVENTS, {"m": {"agg": "sum", "field": "event"}})
    assert "holds text" in str(info.value)
    assert "types" in info.value.problems[0].hint


def test_nps_scores_outside_0_to_10_are_a_data_error(tmp_path: Path) -> None:
    events = "account_id,t,score\nA,2026-01-30,9\nA,2026-01-30,11\nB,2025-01-01,-1\n"
    with pytest.raises(DataError) as info:
        aggregate(tmp_path, events, {"nps": {"agg": "nps", "field": "score", "window": "30d"}})
    assert "0 to 10" in str(info.value)
    assert "[11.0]" in str(info.value)  # the -1 lies outside the window


def test_result_columns_follow_the_metrics_order(tmp_path: Path) -> None:
    metrics = {
        "g": {"agg": "growth", "of": {"agg": "count"}, "window": "30d"},
        "n": {"agg": "count"},
        "n30": {"agg": "count", "window": "30d"},
        "d": {"agg": "days_since"},
    }
    assert list(aggregate(tmp_path, EVENTS, metrics).columns) == ["g", "n", "n30", "d"]


def test_field_missing_from_the_source_is_a_data_error(tmp_path: Path) -> None:
    write_csv(tmp_path / "crm.csv", "account_id,name\nA,Acme\n")
    config = make_config(
        tmp_path,
        accounts={"source": "crm"},
        sources={"crm": {"path": "crm.csv", "key": "account_id"}},
        metrics={"onb": {"source": "crm", "agg": "value", "field": "onboarding"}},
        groups={"g": {"metrics": ["onb"]}},
    )
    with pytest.raises(DataError) as info:
        aggregate_source(read_source(config, "crm"), config.metrics, AS_OF)
    assert "column 'onboarding' not found" in str(info.value)
    assert "columns found: account_id, name" in str(info.value)
