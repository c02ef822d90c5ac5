"""Date and key coverage of the sources, for `validate`: the facts `score` relies on.

For each timed source, its rows against as_of (all after it, ending long before it, dated
years ahead) and against the window of each of its metrics (a window without rows is a
problem, one the data starts inside of a warning); for every source, how its keys meet
the accounts' keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

from healthscore.aggregate import cutoff_of, source_metrics, window_interval
from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.models import MetricConfig
from healthscore.sources import SourceData
from healthscore.validate_report import Issue, KeyFacts, ValidationWarning, WindowCoverage

STALE_DAYS = 7  # a timed source ending more than this many days before as_of is called stale
FUTURE_DAYS = 366  # rows dated more than this after as_of suggest a wrong date format


def time_coverage(
    config: Config, sources: Mapping[str, SourceData], day: dt.date
) -> tuple[list[WindowCoverage], list[Issue], list[ValidationWarning]]:
    """Each timed source's rows against as_of and against the windows of its metrics: a
    window with no rows is a problem, a window the data starts inside of is a warning, and so
    are rows all after as_of, a source ending long before it, and rows dated years ahead."""
    windows: list[WindowCoverage] = []
    issues: list[Issue] = []
    warnings: list[ValidationWarning] = []
    cutoff = cutoff_of(day)
    for name, metrics in source_metrics(config).items():
        data = sources.get(name)
        if data is None or data.time is None:
            continue
        times = data.frame[data.time].dropna()
        if times.empty:  # a header-only export: the reader has warned, and `score` runs
            continue
        first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
        warnings += _time_warnings(name, data.time, times, first, last, day, cutoff)
        for metric_name, metric in metrics.items():
            if metric.window is None:
                continue
            coverage = _window_coverage(metric_name, name, metric, times, first, day)
            windows.append(coverage)
            if coverage.status == "empty":
                issues.append(_empty_window_issue(coverage, first, last))
            elif coverage.status == "partial":
                warnings.append(_partial_window_warning(coverage, first))
    return windows, issues, warnings


def _time_warnings(
    name: str,
    column: str,
    times: pd.Series,
    first: pd.Timestamp,
    last: pd.Timestamp,
    day: dt.date,
    cutoff: pd.Timestamp,
) -> list[ValidationWarning]:
    """Warnings about a timed source's dates as a whole, against as_of."""
    where = f"sources.{name}.time"
    warnings = []
    if first >= cutoff:
        warnings.append(
            ValidationWarning(
                f"all {len(times):,} rows of source {name!r} are dated after as_of {day} (from {first.date()} "
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
    far = times >= cutoff + pd.Timedelta(days=FUTURE_DAYS)
    if far.any():
        warnings.append(
            ValidationWarning(
                f"{int(far.sum()):,} row(s) of source {name!r} are dated more than a year after as_of {day} "
                f"(latest {last.date()})",
                where,
                f"check column {column!r} and sources.{name}.date_format",
                name,
            )
        )
    return warnings


def _window_coverage(
    metric_name: str, source: str, metric: MetricConfig, times: pd.Series, first: pd.Timestamp, day: dt.date
) -> WindowCoverage:
    """One windowed metric's coverage: rows in its window (and, for growth, the window before)."""
    window = str(metric.window)
    current = window_interval(window, day)
    assert current is not None  # a window is set
    rows = _rows_between(times, current)
    previous_start, previous_rows = None, None
    start = current[0]
    if metric.agg == "growth":
        previous = window_interval(window, day, periods_back=1)
        assert previous is not None
        previous_start, previous_rows, start = previous[0].date(), _rows_between(times, previous), previous[0]
    missing = max(0, (first.normalize() - start).days)
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


def time_range(data: SourceData, day: dt.date) -> tuple[dt.datetime | None, dt.datetime | None, int]:
    """The first and last time of a timed source's rows, and how many rows fall after as_of;
    (None, None, 0) for a source without a time column or without dated rows."""
    time_min = time_max = None
    after = 0
    if data.time is not None:
        times = data.frame[data.time].dropna()
        if not times.empty:
            time_min, time_max = pd.Timestamp(times.min()).to_pydatetime(), pd.Timestamp(times.max()).to_pydatetime()
            after = int((times >= cutoff_of(day)).sum())
    return time_min, time_max, after


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
    matched = keys.isin(pd.Index(accounts.frame[accounts.key]))
    return KeyFacts(
        keys=int(keys.nunique()),
        matched_keys=int(keys[matched].nunique()),
        rows=len(keys),
        matched_rows=int(matched.sum()),
        blank_keys=data.rows_without_key,
    )
