"""`validate`'s coverage facts of a source that stays on its backend, from one query.

What `coverage` computes in memory from a source's frame (its first and last time, the rows
after as_of and years ahead, the rows in each metric window) and the rows of each key (for
the key-match facts) come, for a `BackendSource`, from ONE aggregation on its backend,
grouped by key: one row per key comes back and is summed here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from healthscore.aggregate import cutoff_of
from healthscore.coverage import Interval, TimeFacts, future_cutoff
from healthscore.ibis_backends import backend_call
from healthscore.ibis_expr import utc_literal
from healthscore.ibis_sources import BackendSource

__all__ = ["backend_facts"]


def backend_facts(data: BackendSource, intervals: list[Interval], day: dt.date) -> tuple[TimeFacts | None, pd.Series]:
    """The source's `TimeFacts` as of `day` (None without a time column or rows) and its rows
    per key (indexed by key, sorted), from one grouped query over the rows `score` uses."""
    table = data.table
    valid = table[data.key].notnull()
    if data.time is not None:
        valid = valid & table[data.time].notnull()
    rows = table.filter(valid)
    aggs: dict[str, Any] = {"_rows": rows.count()}
    if data.time is not None:
        time = rows[data.time]
        aggs["_first"], aggs["_last"] = time.min(), time.max()
        aggs["_after"] = rows.count(where=time >= utc_literal(cutoff_of(day)))
        aggs["_far"] = rows.count(where=time >= utc_literal(future_cutoff(day)))
        for i, (start, end) in enumerate(intervals):
            aggs[f"_window{i}"] = rows.count(where=(time >= utc_literal(start)) & (time < utc_literal(end)))
    query = rows.group_by(rows[data.key].name("_key")).aggregate(**aggs)
    fetched: pd.DataFrame = backend_call("count its rows per key and window", data.name, query.to_pandas)
    keys = pd.Index(fetched["_key"].astype("str"), name="account_id")
    key_rows = pd.Series(fetched["_rows"].astype("int64").to_numpy(), index=keys, name="rows").sort_index()
    if data.time is None or fetched.empty:
        return None, key_rows
    facts = TimeFacts(
        column=data.time,
        rows=int(key_rows.sum()),
        first=_naive_utc(fetched["_first"].min()),
        last=_naive_utc(fetched["_last"].max()),
        after=int(fetched["_after"].sum()),
        far=int(fetched["_far"].sum()),
        in_windows={interval: int(fetched[f"_window{i}"].sum()) for i, interval in enumerate(intervals)},
    )
    return facts, key_rows


def _naive_utc(value: Any) -> pd.Timestamp:
    """A backend time as the in-memory engine holds it: naive UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
