"""Date and key coverage of the sources, for `validate`: the facts `score` relies on.

For each timed source, its rows against as_of (all after it, ending long before it, dated
years ahead) and against the window of each of its metrics (a window without rows is a
problem, one the data starts inside of a warning); for every source, how its keys meet
the accounts' keys.

The facts of a source's times are a `TimeFacts` (counts and first / last time), computed
here from a source in memory, or by `ibis_coverage` with one query on a source's backend;
the judgements (`time_coverage`) are the same for both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from healthscore.aggregate import cutoff_of, source_metrics, window_interval
from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.keys import among, code_counts, key_codes
from healthscore.models import MetricConfig
from healthscore.sources import SourceData
from healthscore.validate_report import Issue, KeyFacts, ValidationWarning, WindowCoverage

Interval = tuple[pd.Timestamp, pd.Timestamp]  # [start, end) in naive UTC

STALE_DAYS = 7  # a timed source ending more than this many days before as_of is called stale
FUTURE_DAYS = 366  # rows dated more than this after as_of suggest a wrong date format


@dataclass(frozen=True)
class TimeFacts:
    """A timed source's dated rows (those `score` uses) against as_of: its time column, how
    many rows, the first and last time (naive UTC), how many fall after as_of and how many
    `FUTURE_DAYS` or more after it, and how many fall in each window interval its metrics
    read (`window_intervals`)."""

    column: str
    rows: int
    first: pd.Timestamp
    last: pd.Timestamp
    after: int
    far: int
    in_windows: Mapping[Interval, int]


def window_intervals(metrics: Mapping[str, MetricConfig], day: dt.date) -> list[Interval]:
    """Every window interval the metrics read as of `day` (for growth, the window before too)."""
    intervals: list[Interval] = []
    for metric in metrics.values():
        if metric.window is None:
            continue
        for back in (0, 1) if metric.agg == "growth" else (0,):
            interval = window_interval(metric.window, day, periods_back=back)
            if interval is not None and interval not in intervals:
                intervals.append(interval)
    return intervals


def future_cutoff(day: dt.date) -> pd.Timestamp:
    """Rows from this time on are dated "more than a year after as_of"."""
    return cutoff_of(day) + pd.Timedelta(days=FUTURE_DAYS)


def time_facts(data: SourceData, intervals: list[Interval], day: dt.date) -> TimeFacts | None:
    """The `TimeFacts` of a source in memory; None without a time column or dated rows."""
    if data.time is None:
        return None
    times = data.frame[data.time].dropna()
    if times.empty:  # a header-only export: the reader has warned, and `score` runs
        return None
    return TimeFacts(
        column=data.time,
        rows=len(times),
        first=pd.Timestamp(times.min()),
        last=pd.Timestamp(times.max()),
        after=int((times >= cutoff_of(day)).sum()),
        far=int((times >= future_cutoff(day)).sum()),
        in_windows={interval: _rows_between(times, interval) for interval in intervals},
    )


def time_coverage(
    config: Config, facts: Mapping[str, TimeFacts | None], day: dt.date
) -> tuple[list[WindowCoverage], list[Issue], list[ValidationWarning]]:
    """Each timed source's rows (its `facts`) against as_of and against the windows of its
    metrics: a window with no rows is a problem, a window the data starts inside of is a
    warning, and so are rows all after as_of, a source ending long before it, and rows dated
    years ahead."""
    windows: list[WindowCoverage] = []
    issues: list[Issue] = []
    warnings: list[ValidationWarning] = []
    for name, metrics in source_metrics(config).items():
        found = facts.get(name)
        if found is None:
            continue
        warnings += _time_warnings(name, found, day)
        for metric_name, metric in metrics.items():
            if metric.window is None:
                continue
            coverage = _window_coverage(metric_name, name, metric, found, day)
            windows.append(coverage)
            if coverage.status == "empty":
                issues.append(_empty_window_issue(coverage, found.first, found.last))
            elif coverage.status == "partial":
                warnings.append(_partial_window_warning(coverage, found.first))
    return windows, issues, warnings


def _time_warnings(name: str, facts: TimeFacts, day: dt.date) -> list[ValidationWarning]:
    """Warnings about a timed source's dates as a whole, against as_of."""
    where = f"sources.{name}.time"
    first, last = facts.first, facts.last
    warnings = []
    if first >= cutoff_of(day):
        warnings.append(
            ValidationWarning(
                f"all {facts.rows:,} rows of source {name!r} are dated after as_of {day} (from {first.date()} "
                f"to {last.date()}), so its metrics ignore them",
                where,
                "score a later day with --as-of, or check the export",
                name,
            )
        )
    elif (lag := (day - last.date()).days) > STALE_DAYS:
        warnings.append(
            ValidationWarning(
                f"source {name!r} ends on {last.date()}, {lag} days before as_of {day}: its metrics see no "
                "data for those days",
                where,
                "re-export it (a stale export?), or score an earlier day with --as-of",
                name,
            )
        )
    if facts.far:
        warnings.append(
            ValidationWarning(
                f"{facts.far:,} row(s) of source {name!r} are dated more than a year after as_of {day} "
                f"(latest {last.date()})",
                where,
                f"check column {facts.column!r} and sources.{name}.date_format",
                name,
            )
        )
    return warnings


def _window_coverage(
    metric_name: str, source: str, metric: MetricConfig, facts: TimeFacts, day: dt.date
) -> WindowCoverage:
    """One windowed metric's coverage: rows in its window (and, for growth, the window before)."""
    window = str(metric.window)
    current = window_interval(window, day)
    assert current is not None  # a window is set
    rows = facts.in_windows[current]
    previous_start, previous_rows = None, None
    start = current[0]
    if metric.agg == "growth":
        previous = window_interval(window, day, periods_back=1)
        assert previous is not None
        previous_start, previous_rows, start = previous[0].date(), facts.in_windows[previous], previous[0]
    missing = max(0, (facts.first.normalize() - start).days)
    empty = rows == 0 or previous_rows == 0
    return WindowCoverage(
        metric=metric_name,
        source=source,
        window=window,
        start=current[0].date(),
        end=day,
        rows=rows,
        status="empty" if empty else "partial" if missing else "ok",
        previous_start=previous_start,
        previous_rows=previous_rows,
        missing_days=0 if empty else missing,
    )


def _rows_between(times: pd.Series, interval: tuple[pd.Timestamp, pd.Timestamp]) -> int:
    return int(((times >= interval[0]) & (times < interval[1])).sum())


def _window_text(coverage: WindowCoverage) -> str:
    return f"{coverage.window} window {coverage.start}..{coverage.end}"


def _empty_window_issue(coverage: WindowCoverage, first: pd.Timestamp, last: pd.Timestamp) -> Issue:
    """The problem of a window without rows: the metric would be empty for every account."""
    if coverage.rows == 0:
        what = f"has no rows in its {_window_text(coverage)}"
    else:
        before = coverage.start - dt.timedelta(days=1)
        what = (
            f"has no rows in the {coverage.window} window before its own ({coverage.previous_start}..{before}), "
            "which growth compares with"
        )
    return Issue(
        DataError.exit_code,
        DataError.title,
        f"metric {coverage.metric!r}: source {coverage.source!r} {what}, so the metric would be empty for "
        "every account",
        coverage.source,
        f"metrics.{coverage.metric}.window",
        "score a day the data covers with --as-of, or re-export the source with the dates the window needs",
        (Problem(f"the rows of source {coverage.source!r} run from {first.date()} to {last.date()}"),),
    )


def _partial_window_warning(coverage: WindowCoverage, first: pd.Timestamp) -> ValidationWarning:
    """The warning of a window the data starts inside of."""
    if coverage.previous_start is not None:
        span = f"its two {coverage.window} windows ({coverage.previous_start}..{coverage.end})"
    else:
        span = f"its {_window_text(coverage)}"
    return ValidationWarning(
        f"metric {coverage.metric!r}: source {coverage.source!r} starts on {first.date()}, so the first "
        f"{coverage.missing_days} day(s) of {span} have no data",
        f"metrics.{coverage.metric}.window",
        "re-export more history, or use a shorter window",
        coverage.source,
    )


def time_range(facts: TimeFacts | None) -> tuple[dt.datetime | None, dt.datetime | None, int]:
    """The first and last time of a timed source's rows, and how many rows fall after as_of;
    (None, None, 0) for a source without a time column or without dated rows."""
    if facts is None:
        return None, None, 0
    return facts.first.to_pydatetime(), facts.last.to_pydatetime(), facts.after


def key_facts(data: SourceData, accounts: SourceData | None, is_accounts: bool) -> KeyFacts | None:
    """Distinct keys and rows of a source found among the accounts' keys (None when the
    accounts could not be read); for the accounts themselves, their duplicate keys."""
    keys = data.frame[data.key]
    if is_accounts:
        repeated = keys[keys.duplicated(keep=False)]
        distinct = int(keys.nunique())
        return KeyFacts(distinct, distinct, len(keys), len(keys), data.rows_without_key, int(repeated.nunique()))
    if accounts is None:
        return None
    codes, seen = key_codes(keys)
    rows = code_counts(codes, len(seen))
    matched = among(seen, pd.Index(accounts.frame[accounts.key])) & (rows > 0)
    return KeyFacts(
        keys=int((rows > 0).sum()),
        matched_keys=int(matched.sum()),
        rows=len(keys),
        matched_rows=int(rows[matched].sum()),
        blank_keys=data.rows_without_key,
    )


def key_facts_of_counts(key_rows: pd.Series, accounts: SourceData | None, blank_keys: int) -> KeyFacts | None:
    """`key_facts` of a source whose rows stay on a backend, from its rows per key (`key_rows`,
    indexed by key); None when the accounts could not be read."""
    if accounts is None:
        return None
    matched = among(key_rows.index, pd.Index(accounts.frame[accounts.key]))
    return KeyFacts(
        keys=len(key_rows),
        matched_keys=int(matched.sum()),
        rows=int(key_rows.sum()),
        matched_rows=int(key_rows[matched].sum()),
        blank_keys=blank_keys,
    )
