"""`engine: ibis`: each source's metrics aggregated where the data lives, through Ibis.

With `engine: ibis` the events, tickets and survey sources are not read into memory. Each
is opened as an Ibis table on a backend (by default an in-memory DuckDB over its files,
which aggregates files larger than memory; or `table:` on a `connection:` URL such as
duckdb://lake.db, pyspark://local[2], bigquery://project/dataset), typed there as the config
says, and all of its metrics are compiled into ONE grouped aggregation per source, run on
the backend. Only one row per account key comes back, to be joined, normalized and scored
in memory exactly as with the pandas engine. The accounts source (one row per account) is
read in memory as usual; a `table:` accounts source is fetched whole.

The semantics are `aggregate.py`'s, rule for rule: half-open windows `[cutoff - window,
cutoff)` with cutoff the midnight after as_of; missing versus zero; growth, days_since,
share, nps, first/last with their tie rule; `where` filters compiled by `ibis_expr`.

The modules, along the data flow:

- `ibis_config`: what the engine refuses, checked at config load (`engine_problems`);
- `ibis_backends`: the connections of a run (`Backends`) and backend errors;
- `ibis_sources`: a source opened on its backend (`open_source` -> `BackendSource`), and a
  `table:` accounts source fetched (`read_table_accounts`);
- `ibis_coerce`: its columns typed on the backend, and the probe counting its rows;
- `ibis_expr`: `where` / `of_rows` compiled for the backend;
- this module: the aggregation of a source's metrics (`aggregate`) and its join counts;
- `ibis_coverage`: `validate`'s date and key facts of a source, from one query.

Ibis is imported lazily, in the functions that need it: `import healthscore` and the pandas
engine never import it. What `pipeline` and `checks` use is importable from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from healthscore.aggregate import COUNT_LIKE, cutoff_of, window_interval
from healthscore.errors import DataError, Problem
from healthscore.expr import EMPTY
from healthscore.ibis_backends import Backends, backend_call, require_ibis
from healthscore.ibis_config import SCALE_EXTRA, engine_problems
from healthscore.ibis_expr import column_kind, compile_predicate, utc_literal
from healthscore.ibis_sources import BackendSource, open_source, read_table_accounts
from healthscore.join import EXAMPLES, SourceJoin
from healthscore.models import MetricConfig

__all__ = [
    "SCALE_EXTRA",
    "Aggregated",
    "BackendSource",
    "Backends",
    "aggregate",
    "check_aggregation",
    "engine_problems",
    "join_stats",
    "open_source",
    "read_table_accounts",
    "require_ibis",
]


@dataclass(frozen=True)
class Aggregated:
    """What one backend aggregation brings back: the metrics (one row per account key with
    rows up to as_of, like `aggregate_source`), and the rows of every key (for the join)."""

    metrics: pd.DataFrame
    key_rows: pd.Series


def aggregate(data: BackendSource, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> Aggregated:
    """Every metric of one source in ONE grouped query on its backend (with one window column
    per first/last metric), one row per key back; the same values as `aggregate_source`."""
    query = _Query(data, metrics, as_of)
    fetched = backend_call("aggregate its metrics", data.name, query.fetch)
    return query.finish(fetched)


def check_aggregation(data: BackendSource, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> None:
    """Build `aggregate`'s query without running it: raises the DataErrors found while it is
    compiled (fields that hold no numbers, filters the columns cannot evaluate). The checks
    on its results (agg value's one row per account, NPS scores in 0..10) need the run."""
    _Query(data, metrics, as_of)


class _Query:
    """The aggregation of one source: each metric as filtered aggregates over its rows."""

    def __init__(self, data: BackendSource, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> None:
        import ibis

        self.ibis, self.data, self.metrics, self.as_of = ibis, data, metrics, as_of
        table = data.table
        valid = table[data.key].notnull()
        if data.time is not None:
            valid = valid & table[data.time].notnull()
        rows = table.filter(valid)
        edges = self.edges(rows)
        self.rows = rows.mutate(**edges) if edges else rows
        self.aggs: dict[str, Any] = {"_rows": self.rows.count()}
        if data.time is not None:
            self.aggs["_present"] = self.rows.count(where=self.in_time(self.rows))
        for i, (name, metric) in enumerate(metrics.items()):
            self.add(f"m{i}", name, metric)

    # --- conditions ---------------------------------------------------------------------

    def stamp(self, value: pd.Timestamp) -> Any:
        """A naive UTC time as a literal of the tables' time type."""
        return utc_literal(value)

    def in_time(self, rows: Any) -> Any:
        """Rows up to as_of: before the midnight after it."""
        return rows[str(self.data.time)] < self.stamp(cutoff_of(self.as_of))

    def window(self, rows: Any, window: str | None, periods_back: int = 0) -> Any:
        """Rows up to as_of, and within the window (or the window `periods_back` before it)."""
        condition = self.in_time(rows) if self.data.time is not None else self.ibis.literal(True)
        interval = window_interval(window, self.as_of, periods_back)
        if interval is not None and self.data.time is not None:
            time = rows[self.data.time]
            condition = condition & (time >= self.stamp(interval[0])) & (time < self.stamp(interval[1]))
        return condition

    def mask(self, rows: Any, text: str | None, where: str) -> Any:
        """A `where` / `of_rows` filter compiled for the backend; errors name the source."""
        if text is None:
            return self.ibis.literal(True)
        try:
            return compile_predicate(text, rows, self.data.kinds)
        except DataError as exc:
            hint = f"check the columns' types in sources.{self.data.name}.types"
            raise DataError(
                exc.message, [*exc.problems, Problem(f"in source {self.data.name!r}", where, hint)]
            ) from None

    def rows_of(self, rows: Any, name: str, metric: MetricConfig, periods_back: int = 0) -> Any:
        """The rows a metric aggregates: up to as_of, in its window, matching `where`."""
        return self.window(rows, metric.window, periods_back) & self.mask(rows, metric.where, f"metrics.{name}.where")

    # --- first / last -------------------------------------------------------------------

    def edges(self, rows: Any) -> dict[str, Any]:
        """Per first/last metric, each key's earliest (first) or latest (last) time among its
        rows with a value, as a window column (the tie rule needs the rows at that time)."""
        edges = {}
        window = self.ibis.window(group_by=rows[self.data.key])
        for i, (name, metric) in enumerate(self.metrics.items()):
            if metric.agg in ("first", "last"):
                value = rows[str(metric.field)]
                chosen = self.rows_of(rows, name, metric) & value.notnull()
                times = self.ibis.cases((chosen, rows[str(self.data.time)]), else_=self.ibis.null())
                edge = times.min() if metric.agg == "first" else times.max()
                edges[f"_edge{i}"] = edge.over(window)
        return edges

    # --- the aggregates -----------------------------------------------------------------

    def numbers(self, name: str, metric: MetricConfig, column: str, agg: str) -> Any:
        """A numeric field as float64 (true/false as 1/0, a text column without values as
        missing); a DataError like `aggregate._numeric` for text and dates."""
        value = self.rows[column]
        dtype = value.type()
        if dtype.is_boolean():
            return value.cast("int64").cast("float64")
        if dtype.is_numeric():
            return value.cast("float64")
        if column in self.data.empty_text or column_kind(dtype) == EMPTY:
            return self.ibis.null().cast("float64")
        dates = dtype.is_timestamp() or dtype.is_date()
        shown = backend_call(
            "list values",
            self.data.name,
            lambda: self.rows.filter(value.notnull()).select(value.cast("string").name("v")).limit(3).to_pandas(),
        )
        hint = f"set sources.{self.data.name}.types: {{{column}: float}}, or pick a numeric field"
        raise DataError(
            f"metric {name!r}: agg {agg} needs numbers, but column {column!r} of source {self.data.name!r} "
            f"holds {'dates' if dates else 'text'}",
            [
                Problem(
                    f"e.g. {shown['v'].astype('str').tolist()}",
                    f"metrics.{name}.field",
                    "for dates use agg days_since, or pick a numeric field" if dates else hint,
                )
            ],
        )

    def add(self, out: str, name: str, metric: MetricConfig) -> None:
        """The aggregates of one metric, named `out` or `out:part`."""
        rows, agg = self.rows, str(metric.agg)
        if agg == "value":
            when = self.in_time(rows) if self.data.time is not None else self.ibis.literal(True)
            self.aggs[out] = rows[str(metric.field)].max(where=when)
            return
        if agg == "growth":
            assert metric.of is not None
            field = None if metric.of.agg == "count" else metric.of.field
            inner = MetricConfig(source=metric.source, agg=metric.of.agg, field=field, where=metric.where)
            for part, back in (("now", 0), ("before", 1)):
                chosen = self.window(rows, metric.window, back) & self.mask(rows, metric.where, f"metrics.{name}.where")
                self.aggs[f"{out}:{part}"] = self.simple(name, inner, chosen)
            return
        chosen = self.rows_of(rows, name, metric)
        if agg == "share":
            of_rows = self.mask(rows, metric.of_rows, f"metrics.{name}.of_rows")
            self.aggs[f"{out}:n"] = rows.count(where=chosen)
            self.aggs[f"{out}:k"] = rows.count(where=chosen & of_rows)
        elif agg == "nps":
            score = self.numbers(name, metric, str(metric.field), "nps")
            answered = chosen & score.notnull()
            self.aggs[f"{out}:n"] = rows.count(where=answered)
            self.aggs[f"{out}:p"] = rows.count(where=answered & (score >= 9))
            self.aggs[f"{out}:d"] = rows.count(where=answered & (score <= 6))
            self.aggs[f"{out}:bad"] = rows.count(where=answered & ((score < 0) | (score > 10)))
        elif agg == "days_since":
            self.aggs[out] = rows[str(self.data.time)].max(where=chosen)
        elif agg in ("first", "last"):
            value = rows[str(metric.field)]
            edge = rows[f"_edge{out.removeprefix('m')}"]
            at_edge = chosen & value.notnull() & (rows[str(self.data.time)] == edge)
            self.aggs[out] = value.min(where=at_edge) if agg == "first" else value.max(where=at_edge)
        else:
            self.aggs[out] = self.simple(name, metric, chosen)

    def simple(self, name: str, metric: MetricConfig, chosen: Any) -> Any:
        """count, sum, mean, median, min, max or nunique over the `chosen` rows."""
        agg, rows = str(metric.agg), self.rows
        if agg == "count":
            return rows.count(where=chosen)
        if agg == "nunique":
            return rows[str(metric.field)].nunique(where=chosen)
        values = self.numbers(name, metric, str(metric.field), agg)
        if agg == "median":  # the values outside the rows as missing: Ibis' PySpark median mishandles `where`
            return self.ibis.cases((chosen, values), else_=self.ibis.null().cast("float64")).median()
        return getattr(values, agg)(where=chosen)

    # --- running it and reading the result ----------------------------------------------

    def fetch(self) -> pd.DataFrame:
        """Run the query: one row per key with rows (and `_key`, `_rows`, `_present`)."""
        key = self.data.key
        fetched: pd.DataFrame = self.rows.group_by(self.rows[key].name("_key")).aggregate(**self.aggs).to_pandas()
        return fetched

    def finish(self, fetched: pd.DataFrame) -> Aggregated:
        """The per-key result as `aggregate_source` gives it: keys with rows up to as_of, sorted;
        count-like aggregates 0 where no row matched; nps, share, growth and days_since derived."""
        fetched = fetched.sort_values("_key", kind="stable").set_index("_key")
        key_rows = fetched["_rows"].astype("int64").rename_axis("account_id").rename("rows")
        present = fetched["_present"] if "_present" in fetched.columns else fetched["_rows"]
        grouped = fetched.loc[present.to_numpy() > 0]
        index = pd.Index(grouped.index.astype("str"), name="account_id")
        grouped.index = index
        result = pd.DataFrame(index=index)
        for i, (name, metric) in enumerate(self.metrics.items()):
            result[name] = self.value(grouped, present.loc[grouped.index.to_numpy()], f"m{i}", name, metric)
        return Aggregated(result[list(self.metrics)], key_rows)

    def value(self, grouped: pd.DataFrame, present: pd.Series, out: str, name: str, metric: MetricConfig) -> pd.Series:
        """One metric's per-key values from its aggregates (`out`, `out:part`), as `_finish`."""
        agg = metric.agg
        if agg == "value":
            self.check_single(present, name)
            return _plain(grouped[out])
        if agg == "nps":
            n, p, d = (grouped[f"{out}:{k}"].astype("float64") for k in "npd")
            self.check_nps(int(grouped[f"{out}:bad"].sum()), name, metric)
            return 100.0 * (p - d) / n.where(n > 0)
        if agg == "share":
            n, k = grouped[f"{out}:n"].astype("float64"), grouped[f"{out}:k"].astype("float64")
            return k / n.where(n > 0)
        if agg == "days_since":
            latest = pd.to_datetime(grouped[out], utc=True).dt.tz_convert(None).dt.normalize()
            return (pd.Timestamp(self.as_of) - latest).dt.days.astype("float64")
        if agg == "growth":
            assert metric.of is not None
            now, before = (self.inner(grouped[f"{out}:{part}"], metric.of.agg) for part in ("now", "before"))
            base = before.where(before != 0)
            return (now - before) / base.abs()
        return self.inner(grouped[out], str(agg)) if agg != "first" and agg != "last" else _plain(grouped[out])

    @staticmethod
    def inner(values: pd.Series, agg: str) -> pd.Series:
        """A simple aggregate's values as floats; count-like ones 0 where nothing matched."""
        numbers = pd.to_numeric(values).astype("float64")
        return numbers.fillna(0.0) if agg in COUNT_LIKE else numbers

    def check_single(self, present: pd.Series, name: str) -> None:
        """agg value needs one row per account (up to as_of), as `aggregate._value_column`."""
        repeated = present[present > 1]
        if len(repeated):
            raise DataError(
                f"metric {name!r}: agg value needs one row per account, but source {self.data.name!r} has several",
                [
                    Problem(
                        f"{len(repeated)} key(s) repeat, e.g. {list(repeated.index[:5])}",
                        f"metrics.{name}.agg",
                        "use agg last (by time), mean or max instead of value",
                    )
                ],
            )

    def check_nps(self, outside: int, name: str, metric: MetricConfig) -> None:
        """NPS scores outside 0..10 are a DataError, as `aggregate._nps_inputs` says."""
        if not outside:
            return
        score = self.numbers(name, metric, str(metric.field), "nps")
        chosen = self.rows_of(self.rows, name, metric) & ((score < 0) | (score > 10))
        found = backend_call(
            "list NPS scores",
            self.data.name,
            lambda: self.rows.filter(chosen).select(score.name("s")).distinct().order_by("s").limit(5).to_pandas(),
        )
        raise DataError(
            f"metric {name!r}: agg nps needs scores from 0 to 10, but column {metric.field!r} of source "
            f"{self.data.name!r} has {outside} outside that range",
            [
                Problem(
                    f"e.g. {found['s'].astype('float64').tolist()}",
                    f"metrics.{name}.field",
                    "check the column; for another scale use agg mean, or share with of_rows",
                )
            ],
        )


def _plain(values: pd.Series) -> pd.Series:
    """Backend values as the pandas engine holds them: times naive UTC, the rest as they come."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive: pd.Series = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return naive
    return values


def join_stats(name: str, key_rows: pd.Series, accounts: pd.Index) -> SourceJoin:
    """How a backend source's keys met the spine, from its rows per key (as `join._join_stats`)."""
    matched = key_rows.index.isin(accounts)
    unmatched = key_rows[~matched]
    examples = tuple(sorted(unmatched.index.astype("str").tolist())[:EXAMPLES])
    return SourceJoin(name, len(key_rows), int(matched.sum()), len(unmatched), int(unmatched.sum()), examples)
