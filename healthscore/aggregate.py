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
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.extensions import ExtensionArray
from pandas.arrays import ArrowExtensionArray

from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.expr import Expression, parse, predicate
from healthscore.keys import code_counts, encoded
from healthscore.models import DURATION_RE, MetricConfig
from healthscore.parallel import begun
from healthscore.sources import SourceData

COUNT_LIKE = frozenset({"count", "sum", "nunique"})
NUMERIC_AGGS = frozenset({"sum", "mean", "median", "min", "max", "nps"})
Interval = tuple[pd.Timestamp, pd.Timestamp] | None
Column = np.ndarray | ExtensionArray  # a metric's value per account code
Later = Callable[[], np.ndarray]  # a metric's value per account code, being computed on other threads


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
    codes, counts, keys = data.key_counts()
    if data.time is not None:  # rows without a time or after as_of count nowhere
        counted = _before(frame[data.time], cutoff_of(as_of))
        if not counted.all():  # rows per key less those of the rows left out (few: not all rows again)
            counts = counts - code_counts(codes.take(np.flatnonzero(~counted)), len(keys))
            codes = np.where(counted, codes, -1)
    rows = _Rows(frame, codes, len(keys), _MaskCache(frame, data.name), data)
    columns: dict[str, Column] = {}
    by_interval: dict[Interval, dict[str, MetricConfig]] = defaultdict(dict)
    for name, metric in metrics.items():
        if metric.agg == "value":
            columns[name] = _value_column(rows, name, metric, keys)
        elif metric.agg == "growth":
            columns[name] = _growth(rows, name, metric, as_of)
        else:
            by_interval[window_interval(metric.window, as_of)][name] = metric
    later: dict[str, Later] = {}
    for interval, group in by_interval.items():
        for name, value in _grouped_pass(rows, group, interval, as_of).items():
            if callable(value):
                later[name] = value
            else:
                columns[name] = value
    present = counts > 0
    columns.update({name: value() for name, value in later.items()})  # computed meanwhile (`_Rows.nunique`)
    result = pd.DataFrame({name: columns[name] for name in metrics}, index=keys)
    return result if present.all() else result.loc[present]


def _check_fields(data: SourceData, metrics: Mapping[str, MetricConfig]) -> None:
    """A DataError naming the columns the metrics aggregate that the source lacks."""
    fields = {f for m in metrics.values() for f in (m.field, m.of.field if m.of else None) if f}
    absent = sorted(fields - set(data.frame.columns))
    if absent:
        found = ", ".join(str(c) for c in data.frame.columns)
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
            names = [c for c in expression.names if c in self.frame.columns]
            try:
                dtype = self.frame[names[0]].dtype if len(names) == 1 else None
                if isinstance(dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(dtype.categories.dtype):
                    self.cache[text] = _per_category(expression, self.frame[names[0]])
                else:
                    columns = {c: _as_text(self.frame[c]) for c in names}
                    self.cache[text] = predicate(expression, columns, self.frame.index).to_numpy(dtype=bool)
            except DataError as exc:
                hint = f"check the columns' types in sources.{self.source}.types"
                raise DataError(
                    exc.message, [*exc.problems, Problem(f"in source {self.source!r}", where, hint)]
                ) from None
        return self.cache[text]


def _per_category(expression: Expression, column: pd.Series) -> np.ndarray:
    """A row test on one Categorical column, evaluated once per distinct value (and once
    for a missing one), then looked up by each row's code: expressions are row by row."""
    categories = column.cat.categories
    values = pd.concat([pd.Series(categories), pd.Series([None], dtype=categories.dtype)], ignore_index=True)
    name = str(column.name)
    hits: np.ndarray = predicate(expression, {name: values}, values.index).to_numpy(dtype=bool)
    codes: np.ndarray = column.array.codes  # type: ignore[attr-defined]
    return _coded_mask(hits, codes)


FEW_CODES = 4  # codes compared one by one, from which a mask of codes is looked up per row instead


def _coded_mask(hits: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The rows whose code hits: `hits` holds a flag per category code and one more, last,
    for code -1 (missing). With few codes hitting, or few missing it, the rows are compared
    with each of those codes (M's `event == 'login'` over 10M rows: 3 ms against 25 ms of a
    lookup per row); otherwise each row's flag is looked up."""
    flip = 2 * int(np.count_nonzero(hits)) > len(hits)  # compare with the codes that miss
    chosen = np.flatnonzero(~hits if flip else hits)
    if len(chosen) > FEW_CODES:
        looked_up: np.ndarray = hits.take(codes, mode="wrap")  # (wrap: code -1 picks the last)
        return looked_up
    mask = np.zeros(len(codes), dtype=bool)
    for position in chosen.tolist():
        mask |= codes == (-1 if position == len(hits) - 1 else position)
    if flip:
        np.logical_not(mask, out=mask)
    return mask


def _as_text(column: pd.Series) -> pd.Series:
    """A Categorical column (the account key, or Parquet text of few distinct values, as
    sources read them) as plain text, which expressions compare and metrics give; any
    other column as it is."""
    return column.astype("str") if isinstance(column.dtype, pd.CategoricalDtype) else column


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


# rows of text hashed together for nunique (accounts split in parts): small enough for a
# part's hash table to stay in cache, large enough that each part's own steps stay cheap
NUNIQUE_PART_ROWS = 125_000
DENSE_PAIRS = 1 << 24  # possible (account, value) pairs flagged rather than sorted, however few the rows


class _Rows:
    """A source's rows as arrays for grouped reductions: each row's account code (-1 for a
    row that counts nowhere) among `size` keys, and fields converted once however many
    metrics use them. Reductions are numpy ones over the codes (bincount, ufunc.at)."""

    def __init__(self, frame: pd.DataFrame, codes: np.ndarray, size: int, masks: _MaskCache, data: SourceData):
        self.frame, self.codes, self.size, self.masks, self.data = frame, codes, size, masks, data
        self.valid = codes >= 0
        self._numbers: dict[str, np.ndarray] = {}
        self._windows: dict[Interval, np.ndarray] = {}

    def window(self, interval: Interval) -> np.ndarray:
        """The rows that count and fall in the interval; one mask per interval (growth's
        current window is usually its source's other metrics' window)."""
        if interval not in self._windows:
            self._windows[interval] = self.valid & _in_interval(self.frame, self.data, interval)
        return self._windows[interval]

    def numbers(self, field: str, metric: str, agg: str) -> np.ndarray:
        """The field as float64 (NaN where missing); a DataError for text and dates."""
        if field not in self._numbers:
            self._numbers[field] = _numeric(self.frame, self.data.name, metric, field, agg).to_numpy(dtype="float64")
        return self._numbers[field]

    def count(self, selected: np.ndarray) -> np.ndarray:
        """Selected rows per account, as floats."""
        return np.bincount(_picked(self.codes, selected), minlength=self.size).astype("float64")

    def total(self, selected: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Sum of `values` over the selected rows per account (0 with none)."""
        at = np.flatnonzero(selected)
        return np.bincount(self.codes.take(at), weights=values.take(at), minlength=self.size)

    def extreme(self, selected: np.ndarray, values: np.ndarray, agg: str) -> np.ndarray:
        """Per-account min or max of the selected values (NaN with none); values hold no NaN."""
        out = np.full(self.size, np.inf if agg == "min" else -np.inf)
        at = np.flatnonzero(selected)
        codes = self.codes.take(at)
        (np.minimum if agg == "min" else np.maximum).at(out, codes, values.take(at))
        out[np.isinf(out) & (np.bincount(codes, minlength=self.size) == 0)] = np.nan  # (an account with none)
        return out

    def median(self, selected: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per-account median of the selected values (NaN with none), the two middle values
        averaged for an even count; values hold no NaN."""
        at = np.flatnonzero(selected)
        codes, picked = self.codes.take(at), values.take(at)
        order = np.lexsort((picked, codes))
        ordered = picked[order]
        n = np.bincount(codes, minlength=self.size)
        start = np.cumsum(n) - n
        out = np.full(self.size, np.nan)
        has = n > 0
        low, high = start[has] + (n[has] - 1) // 2, start[has] + n[has] // 2
        out[has] = (ordered[low] + ordered[high]) / 2
        return out

    def nunique(self, selected: np.ndarray, field: str) -> np.ndarray | Later:
        """Distinct non-missing values of the field per account: the distinct (account, value)
        pairs, the values coded among the selected rows only (a window holds a fraction).
        Of Arrow text, computed on two threads while the caller goes on (`Later`)."""
        column = self.frame[field]
        if isinstance(column.array, ArrowExtensionArray):  # hashed in Arrow, a part of the accounts at a time
            return self._distinct_text(column.array.__arrow_array__(), selected)
        values: np.ndarray
        at = np.flatnonzero(selected)
        if isinstance(column.dtype, pd.CategoricalDtype):
            values, n = column.array.codes.take(at), len(column.cat.categories)  # type: ignore[attr-defined]
        else:
            values, uniques = pd.factorize(column.take(at))
            n = len(uniques)
        return self._distinct_pairs(self.codes.take(at), values, n, self.size)

    def _distinct_text(self, text: pa.ChunkedArray, selected: np.ndarray) -> Later:
        """`nunique` of Arrow text over the selected rows, begun on two threads. Over many
        rows the accounts are split in parts of about NUNIQUE_PART_ROWS rows, each part's rows
        taken and hashed on its own, two parts at a time: a part's hash table is small enough
        to stay in cache, and distinct pairs never span two parts. The rows are put in part
        order once (a stable sort of small numbers); each part counts only its own accounts.
        (Before, each part picked its rows by a pass over all of them, which made small parts
        dear: L's nunique of user_id 3.1-3.3 s in parts of 500k rows, 2.0-2.4 s in parts of
        125k.) Picking and ordering the rows is begun on one of the threads too, which then
        begins the parts: the source's other metrics are computed meanwhile from the start
        (M: 0.07 s of one core, before, picking the rows)."""
        codes, size = self.codes, self.size
        pairs = self._distinct_pairs

        def parts_begun(_: object) -> Callable[[], list[tuple[int, np.ndarray]]]:
            rows = np.flatnonzero(selected)
            picked = codes.take(rows)
            parts = max(1, len(rows) // NUNIQUE_PART_ROWS)
            kind = np.int16 if parts <= np.iinfo(np.int16).max else np.int32  # (int16: a radix sort)
            wide = np.int32 if max(size, 1) * parts < 2**31 else np.int64  # account code times parts fits
            part = (picked.astype(wide) * parts // max(size, 1)).astype(kind)  # accounts in order
            order = np.argsort(part, kind="stable")
            ends = np.cumsum(np.bincount(part, minlength=parts))
            del part
            take = _ascending_take(text)

            def count(k: int) -> tuple[int, np.ndarray]:
                mine = order[(ends[k - 1] if k else 0) : ends[k]]  # ascending: the sort is stable
                values, distinct = encoded(take(rows[mine]), threads=1)
                accounts = picked[mine]
                first = int(accounts.min()) if len(mine) else 0  # the part's accounts: first .. last
                return first, pairs(accounts - first, values, len(distinct), 0)

            return begun(count, range(parts))  # (begun from a thread of the two, never waited for on one)

        prepared = begun(parts_begun, [None])

        def gathered() -> np.ndarray:
            out = np.zeros(size)
            for first, counts in prepared()[0]():
                out[first : first + len(counts)] += counts
            return out

        return gathered

    @staticmethod
    def _distinct_pairs(codes: np.ndarray, values: np.ndarray, n: int, accounts: int) -> np.ndarray:
        """Per account, the distinct values among rows of account `codes` and value codes
        `values` (-1: missing) below `n`: for at least `accounts` accounts (0: up to the
        largest code among the rows). Where accounts times values is small (a few dozen
        event names), each possible pair gets a flag, in no more bytes than the pairs take
        themselves, instead of sorting the pairs: M's 3M pairs 0.2 s -> 0.02 s."""
        # (account, value) pairs as one int64 each; no copies beyond that one array (L has 17M pairs)
        width = max(n, 1)
        pairs = codes.astype(np.int64)
        pairs *= width
        pairs += values
        if (values < 0).any():  # missing values count nowhere
            pairs = pairs[values >= 0]
        span = max(accounts, int(pairs.max()) // width + 1 if len(pairs) else 0)  # accounts counted
        if span * width <= max(DENSE_PAIRS, 8 * len(pairs)):  # a flag per possible pair: no sort
            seen = np.zeros(span * width, dtype=bool)
            seen[pairs] = True
            distinct: np.ndarray = np.count_nonzero(seen.reshape(span, width), axis=1)
            return distinct.astype("float64")
        pairs.sort()  # sorting beats hashing millions of pairs
        first = np.ones(len(pairs), dtype=bool)
        np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
        return np.bincount(pairs[first] // width, minlength=accounts).astype("float64")

    def latest(self, selected: np.ndarray) -> np.ndarray:
        """Per account, the latest time among the selected rows (NaT with none)."""
        assert self.data.time is not None
        times = self.frame[self.data.time].to_numpy()
        out = np.full(self.size, np.datetime64("NaT"), dtype=times.dtype).view("int64")  # NaT is int64's minimum
        at = np.flatnonzero(selected)
        np.maximum.at(out, self.codes.take(at), times.view("int64").take(at))
        return out.view(times.dtype)


def _picked(values: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """`values[selected]` by the selected positions and a take: numpy's boolean indexing
    is several times slower over a scattered mask (10M codes, 30% selected: 50 ms against
    11 ms), and aggregation picks a source's rows for nearly every metric."""
    picked: np.ndarray = values.take(np.flatnonzero(selected))
    return picked


def _ascending_take(text: pa.ChunkedArray) -> Callable[[np.ndarray], pa.ChunkedArray]:
    """A take of ascending row positions from chunked text, chunk by chunk: pyarrow's take
    on a chunked array passes over all of its chunks at each call (L's CSV text, 190
    chunks of 50M rows, cost 10 CPU-s more over nunique's 136 parts than over 34)."""
    starts = np.cumsum([0, *(len(chunk) for chunk in text.chunks)])

    def take(at: np.ndarray) -> pa.ChunkedArray:
        cuts = np.searchsorted(at, starts)  # where each chunk's rows start among `at`
        pieces = [
            text.chunk(c).take(at[cuts[c] : cuts[c + 1]] - starts[c])
            for c in range(text.num_chunks)
            if cuts[c + 1] > cuts[c]
        ]
        return pa.chunked_array(pieces, type=text.type)

    return take


def _grouped_pass(
    rows: _Rows, metrics: Mapping[str, MetricConfig], interval: Interval, as_of: dt.date
) -> dict[str, Column | Later]:
    """Every metric of one source and window, each a value per account code (or being
    computed: `Later`)."""
    window = rows.window(interval)
    return {
        name: _reduce(rows, name, m, window & rows.masks.get(m.where, f"metrics.{name}.where"), as_of)
        for name, m in metrics.items()
    }


def _reduce(rows: _Rows, name: str, m: MetricConfig, selected: np.ndarray, as_of: dt.date) -> Column | Later:
    """One metric's value per account code from its selected rows (in the window, matching
    `where`); count-like aggregates are 0 where no row is selected, the others NaN."""
    if m.agg == "count":
        return rows.count(selected)
    if m.agg == "share":
        n = rows.count(selected)
        k = rows.count(selected & rows.masks.get(m.of_rows, f"metrics.{name}.of_rows"))
        return _ratio(k, n)
    if m.agg == "days_since":
        latest = rows.latest(selected).astype("datetime64[D]")
        days = (np.datetime64(as_of, "D") - latest).astype("float64")
        days[np.isnat(latest)] = np.nan
        return days
    if m.agg in ("first", "last"):
        return _first_or_last(rows, m, selected)
    if m.agg == "nunique":
        return rows.nunique(selected, str(m.field))
    values = rows.numbers(str(m.field), name, str(m.agg))
    present = selected & ~np.isnan(values)
    if m.agg == "nps":
        return _nps(rows, name, m, present, values)
    if m.agg == "sum":
        return rows.total(present, values)
    if m.agg == "mean":
        n = rows.count(present)
        return _ratio(rows.total(present, values), n)
    if m.agg == "median":
        return rows.median(present, values)
    return rows.extreme(present, values, str(m.agg))


def _now(value: Column | Later) -> Column:
    """A metric's values, waited for if they are being computed."""
    return value() if callable(value) else value


def _nps(rows: _Rows, name: str, m: MetricConfig, answered: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Net promoter score per account: promoters (9-10) minus detractors (0-6), in percent of
    the answers. Scores outside 0..10 are a DataError: another scale read as NPS would be
    silently wrong."""
    outside = answered & ((score < 0) | (score > 10))
    if outside.any():
        raise DataError(
            f"metric {name!r}: agg nps needs scores from 0 to 10, but column {m.field!r} of source "
            f"{rows.data.name!r} has {int(outside.sum())} outside that range",
            [
                Problem(
                    f"e.g. {sorted(set(score[outside].tolist()))[:5]}",
                    f"metrics.{name}.field",
                    "check the column; for another scale use agg mean, or share with of_rows",
                )
            ],
        )
    n = rows.count(answered)
    net = rows.count(answered & (score >= 9)) - rows.count(answered & (score <= 6))
    return _ratio(100.0 * net, n)


def _first_or_last(rows: _Rows, m: MetricConfig, selected: np.ndarray) -> ExtensionArray:
    """The field's value at each account's earliest (`first`) or latest (`last`) time among
    the selected rows with a value. Rows tied at that time are reduced by min (first) or max
    (last) of the value, so the result depends neither on row order nor on other metrics."""
    assert rows.data.time is not None
    values, times = _as_text(rows.frame[str(m.field)]), rows.frame[rows.data.time]
    when = times.where(selected & values.notna().to_numpy())
    edge = when.groupby(rows.codes).transform("min" if m.agg == "first" else "max")
    at_edge = (when == edge).to_numpy()
    picked = values[at_edge].groupby(rows.codes[at_edge]).agg("min" if m.agg == "first" else "max")
    out: ExtensionArray = picked.reindex(pd.RangeIndex(rows.size)).array
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator per account, NaN where the denominator is 0."""
    out: np.ndarray = np.divide(numerator, denominator, out=np.full(len(numerator), np.nan), where=denominator > 0)
    return out


def _in_interval(frame: pd.DataFrame, data: SourceData, interval: Interval) -> np.ndarray:
    if interval is None or data.time is None:
        return np.ones(len(frame), dtype=bool)
    times = frame[data.time].to_numpy()  # datetime64 as held: NaT compares false, as in pandas
    start, end = (bound.to_datetime64().astype(times.dtype) for bound in interval)  # day bounds: exact in any unit
    if times.dtype.kind == "M":  # as int64, twice as fast: NaT is int64's minimum, before any start
        times, start, end = times.view("int64"), start.view("int64"), end.view("int64")
    inside: np.ndarray = times >= start
    inside &= times < end
    return inside


def _before(times: pd.Series, cutoff: pd.Timestamp) -> np.ndarray:
    """A mask of the times before `cutoff` (NaT is not), compared as int64 where they are
    numpy datetimes (a third of the time pandas takes)."""
    values = times.to_numpy()
    if values.dtype.kind != "M":
        return (times.notna() & (times < cutoff)).to_numpy(dtype=bool)
    ints = values.view("int64")
    counted: np.ndarray = ints < cutoff.to_datetime64().astype(values.dtype).view("int64")
    counted &= ints != np.iinfo(np.int64).min  # NaT
    return counted


def _value_column(rows: _Rows, name: str, m: MetricConfig, keys: pd.Index) -> ExtensionArray:
    """The field's value per account code, from the one row each account may have."""
    positions = np.flatnonzero(rows.valid)
    codes = rows.codes[positions]
    repeats = np.bincount(codes, minlength=rows.size) > 1
    if repeats.any():
        duplicated = keys[repeats]
        raise DataError(
            f"metric {name!r}: agg value needs one row per account, but source {rows.data.name!r} has several",
            [
                Problem(
                    f"{len(duplicated)} key(s) repeat, e.g. {list(duplicated[:5])}",
                    f"metrics.{name}.agg",
                    "use agg last (by time), mean or max instead of value",
                )
            ],
        )
    values = _as_text(rows.frame[str(m.field)].iloc[positions])
    out: ExtensionArray = values.set_axis(codes).reindex(pd.RangeIndex(rows.size)).array
    return out


def _growth(rows: _Rows, name: str, m: MetricConfig, as_of: dt.date) -> np.ndarray:
    """Change of the inner aggregate over the window against the window before it, as a fraction."""
    assert m.of is not None
    field = None if m.of.agg == "count" else m.of.field  # count takes no field
    inner = MetricConfig(source=m.source, agg=m.of.agg, field=field, where=m.where, window=m.window)
    windows = (window_interval(m.window, as_of, back) for back in (0, 1))
    current, previous = (
        np.asarray(_now(_grouped_pass(rows, {name: inner}, interval, as_of)[name]), "float64") for interval in windows
    )
    base = np.where(previous != 0, np.abs(previous), np.nan)
    change: np.ndarray = (current - previous) / base
    return change
