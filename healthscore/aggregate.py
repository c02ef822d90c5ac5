"""Metrics: each source aggregated per account over time windows ending at as_of.

Windows are half-open intervals `[cutoff - window, cutoff)` where `cutoff` is midnight
after as_of, so a 30d window holds the 30 calendar days ending with as_of. Rows dated
after as_of never count. All metrics of one source and window come from one grouped pass.

Missing is not zero: an account with no rows in a source has no value for its metrics;
an account with rows, none matching, has 0 for count-like aggregates (count, sum,
nunique) and no value for the others. `first` and `last` go by time; rows tied at that
time give their smallest (first) or largest (last) value, so row order never matters.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
import pandas as pd

from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.expr import Expression, parse, predicate
from healthscore.models import DURATION_RE, MetricConfig
from healthscore.sources import FILE, LINE, SourceData

COUNT_LIKE = frozenset({"count", "sum", "nunique"})
NUMERIC_AGGS = frozenset({"sum", "mean", "median", "min", "max", "nps"})
Interval = tuple[pd.Timestamp, pd.Timestamp] | None


def cutoff_of(as_of: dt.date) -> pd.Timestamp:
    """The exclusive upper time bound of a run: midnight after as_of."""
    return pd.Timestamp(as_of) + pd.Timedelta(days=1)


def duration_offset(text: str) -> pd.DateOffset | pd.Timedelta:
    """A duration such as 30d, 12w, 6m or 1y as an offset (months and years are calendar ones)."""
    match = DURATION_RE.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    n, unit = int(match.group(1)), match.group(2)
    if unit == "d":
        return pd.Timedelta(days=n)
    if unit == "w":
        return pd.Timedelta(weeks=n)
    return pd.DateOffset(months=n) if unit == "m" else pd.DateOffset(years=n)


def window_interval(window: str | None, as_of: dt.date, periods_back: int = 0) -> Interval:
    """The [start, end) interval of a window ending at as_of, or `periods_back` windows earlier."""
    if window is None:
        return None
    offset = duration_offset(window)
    end = cutoff_of(as_of)
    for _ in range(periods_back):
        end = end - offset
    return end - offset, end


def source_metrics(config: Config) -> dict[str, dict[str, MetricConfig]]:
    """The aggregate (non-expr) metrics of each source, in config order."""
    by_source: dict[str, dict[str, MetricConfig]] = defaultdict(dict)
    for name, metric in config.metrics.items():
        if metric.source is not None:
            by_source[metric.source][name] = metric
    return dict(by_source)


def aggregate_source(data: SourceData, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> pd.DataFrame:
    """One row per account key present in the source (up to as_of), one column per metric."""
    _check_fields(data, metrics)
    frame = data.frame
    if data.time is not None:
        in_time = frame[data.time].notna() & (frame[data.time] < cutoff_of(as_of))
        frame = frame.loc[in_time]
    codes, keys = pd.factorize(frame[data.key], sort=True)
    index = pd.Index(keys, name="account_id")
    masks = _MaskCache(frame, data.name)
    result = pd.DataFrame(index=index)
    by_interval: dict[Interval, dict[str, MetricConfig]] = defaultdict(dict)
    for name, metric in metrics.items():
        if metric.agg == "value":
            result[name] = _value_column(frame, data, name, metric, index)
        elif metric.agg == "growth":
            result[name] = _growth(frame, codes, index, masks, data, name, metric, as_of)
        else:
            by_interval[window_interval(metric.window, as_of)][name] = metric
    for interval, group in by_interval.items():
        columns = _grouped_pass(frame, codes, index, masks, data, group, interval, as_of)
        for name in group:
            result[name] = columns[name]
    return result[list(metrics)]


def _check_fields(data: SourceData, metrics: Mapping[str, MetricConfig]) -> None:
    """A DataError naming the columns the metrics aggregate that the source lacks."""
    fields = {f for m in metrics.values() for f in (m.field, m.of.field if m.of else None) if f}
    absent = sorted(fields - set(data.frame.columns))
    if absent:
        found = ", ".join(str(c) for c in data.frame.columns if c not in (FILE, LINE))
        raise DataError(
            f"source {data.name!r} lacks {len(absent)} column(s) its metrics use",
            [Problem(f"column {c!r} not found", f"source {data.name}", f"columns found: {found}") for c in absent],
        )


class _MaskCache:
    """Row masks of `where` / `of_rows` expressions, each evaluated once per source."""

    def __init__(self, frame: pd.DataFrame, source: str) -> None:
        self.frame, self.source, self.cache = frame, source, dict[str, np.ndarray]()

    def get(self, text: str | None, where: str) -> np.ndarray:
        """The mask of one expression; `where` (a key path) locates an evaluation error."""
        if text is None:
            return np.ones(len(self.frame), dtype=bool)
        if text not in self.cache:
            expression: Expression = parse(text)
            columns = {c: self.frame[c] for c in expression.names if c in self.frame.columns}
            try:
                self.cache[text] = predicate(expression, columns, self.frame.index).to_numpy(dtype=bool)
            except DataError as exc:
                hint = f"check the columns' types in sources.{self.source}.types"
                raise DataError(
                    exc.message, [*exc.problems, Problem(f"in source {self.source!r}", where, hint)]
                ) from None
        return self.cache[text]


def _numeric(frame: pd.DataFrame, source: str, metric: str, field: str, agg: str) -> pd.Series:
    values = frame[field]
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    if values.isna().all():  # an empty export or a column blank in every row: no numbers, no error
        return pd.Series(np.nan, index=values.index, dtype="float64")
    dates = pd.api.types.is_datetime64_any_dtype(values.dtype)
    hint = f"set sources.{source}.types: {{{field}: float}}, or pick a numeric field"
    raise DataError(
        f"metric {metric!r}: agg {agg} needs numbers, but column {field!r} of source {source!r} "
        f"holds {'dates' if dates else 'text'}",
        [
            Problem(
                f"e.g. {[str(v) for v in values.dropna().head(3)]}",
                f"metrics.{metric}.field",
                "for dates use agg days_since, or pick a numeric field" if dates else hint,
            )
        ],
    )


def _grouped_pass(
    frame: pd.DataFrame,
    codes: np.ndarray,
    index: pd.Index,
    masks: _MaskCache,
    data: SourceData,
    metrics: Mapping[str, MetricConfig],
    interval: Interval,
    as_of: dt.date,
) -> dict[str, pd.Series]:
    """Every metric of one source and window from one groupby over the rows in the window."""
    inputs: dict[str, pd.Series | np.ndarray] = {}
    named: dict[str, tuple[str, str]] = {}
    in_window = _in_interval(frame, data, interval)
    for name, m in metrics.items():
        mask = masks.get(m.where, f"metrics.{name}.where")
        if m.agg == "count":
            inputs[name] = mask.astype("int64")
            named[name] = (name, "sum")
        elif m.agg == "nps":
            inputs.update(_nps_inputs(frame, data, name, m, mask & in_window))
            named.update({k: (k, "sum") for k in (f"{name}:n", f"{name}:p", f"{name}:d")})
        elif m.agg == "share":
            of_rows = mask & masks.get(m.of_rows, f"metrics.{name}.of_rows")
            inputs[f"{name}:n"], inputs[f"{name}:k"] = mask.astype("int64"), of_rows.astype("int64")
            named.update({k: (k, "sum") for k in (f"{name}:n", f"{name}:k")})
        elif m.agg == "days_since":
            assert data.time is not None
            inputs[name] = frame[data.time].where(mask)
            named[name] = (name, "max")
        elif m.agg in ("first", "last"):
            assert data.time is not None
            inputs[name] = _at_edge_time(frame[str(m.field)], frame[data.time], codes, mask & in_window, m.agg)
            named[name] = (name, "min" if m.agg == "first" else "max")
        else:
            field = str(m.field)
            values = _numeric(frame, data.name, name, field, m.agg) if m.agg in NUMERIC_AGGS else frame[field]
            inputs[name] = values.where(mask)
            named[name] = (name, str(m.agg))
    table = pd.DataFrame(inputs, index=frame.index)
    grouped = table.loc[in_window].groupby(codes[in_window], sort=True).agg(**named)
    grouped.index = index[grouped.index]
    return {name: _finish(grouped, name, m, index, as_of) for name, m in metrics.items()}


def _nps_inputs(
    frame: pd.DataFrame, data: SourceData, name: str, m: MetricConfig, rows: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-row 0/1 columns of an nps metric: answered (`:n`), promoter (`:p`), detractor (`:d`).
    Scores outside 0..10 are a DataError: another scale read as NPS would be silently wrong."""
    score = _numeric(frame, data.name, name, str(m.field), "nps").to_numpy()
    answered = rows & ~np.isnan(score)
    outside = answered & ((score < 0) | (score > 10))
    if outside.any():
        raise DataError(
            f"metric {name!r}: agg nps needs scores from 0 to 10, but column {m.field!r} of source "
            f"{data.name!r} has {int(outside.sum())} outside that range",
            [
                Problem(
                    f"e.g. {sorted(set(score[outside].tolist()))[:5]}",
                    f"metrics.{name}.field",
                    "check the column; for another scale use agg mean, or share with of_rows",
                )
            ],
        )
    return {
        f"{name}:n": answered.astype("int64"),
        f"{name}:p": (answered & (score >= 9)).astype("int64"),
        f"{name}:d": (answered & (score <= 6)).astype("int64"),
    }


def _at_edge_time(values: pd.Series, times: pd.Series, codes: np.ndarray, rows: np.ndarray, agg: str) -> pd.Series:
    """`values` of the rows at each account's earliest (`first`) or latest (`last`) time among
    `rows` with a value, others missing. Rows tied at that time are then reduced by min (first)
    or max (last) of the value, so the result depends neither on row order nor on other metrics."""
    when = times.where(rows & values.notna().to_numpy())
    edge = when.groupby(codes).transform("min" if agg == "first" else "max")
    return values.where(when == edge)


def _in_interval(frame: pd.DataFrame, data: SourceData, interval: Interval) -> np.ndarray:
    if interval is None or data.time is None:
        return np.ones(len(frame), dtype=bool)
    times = frame[data.time]
    return ((times >= interval[0]) & (times < interval[1])).to_numpy()


def _finish(grouped: pd.DataFrame, name: str, m: MetricConfig, index: pd.Index, as_of: dt.date) -> pd.Series:
    """Turn the raw grouped columns of one metric into its per-account value."""
    if m.agg == "nps":
        n, p, d = (grouped[f"{name}:{k}"] for k in "npd")
        value = (100.0 * (p - d) / n.where(n > 0)).reindex(index)
    elif m.agg == "share":
        n, k = grouped[f"{name}:n"], grouped[f"{name}:k"]
        value = (k / n.where(n > 0)).reindex(index)
    elif m.agg == "days_since":
        latest = grouped[name].dt.normalize()
        value = ((pd.Timestamp(as_of) - latest).dt.days.astype("float64")).reindex(index)
    else:
        value = grouped[name].reindex(index)
        if m.agg in COUNT_LIKE:
            value = value.fillna(0).astype("float64")
    return value.rename(name)


def _value_column(frame: pd.DataFrame, data: SourceData, name: str, m: MetricConfig, index: pd.Index) -> pd.Series:
    keys = frame[data.key]
    duplicated = keys[keys.duplicated()].unique()
    if len(duplicated):
        raise DataError(
            f"metric {name!r}: agg value needs one row per account, but source {data.name!r} has several",
            [
                Problem(
                    f"{len(duplicated)} key(s) repeat, e.g. {list(duplicated[:5])}",
                    f"metrics.{name}.agg",
                    "use agg last (by time), mean or max instead of value",
                )
            ],
        )
    return pd.Series(frame[str(m.field)].to_numpy(), index=pd.Index(keys, name="account_id")).reindex(index)


def _growth(
    frame: pd.DataFrame,
    codes: np.ndarray,
    index: pd.Index,
    masks: _MaskCache,
    data: SourceData,
    name: str,
    m: MetricConfig,
    as_of: dt.date,
) -> pd.Series:
    """Change of the inner aggregate over the window against the window before it, as a fraction."""
    assert m.of is not None
    field = None if m.of.agg == "count" else m.of.field  # count takes no field
    inner = MetricConfig(source=m.source, agg=m.of.agg, field=field, where=m.where, window=m.window)
    current = _grouped_pass(frame, codes, index, masks, data, {name: inner}, window_interval(m.window, as_of), as_of)[
        name
    ]
    previous = _grouped_pass(
        frame, codes, index, masks, data, {name: inner}, window_interval(m.window, as_of, periods_back=1), as_of
    )[name]
    base = previous.where(previous != 0)
    return ((current - previous) / base.abs()).rename(name)
