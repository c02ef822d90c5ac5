"""Checking a config and its inputs without writing anything: `validate(config, as_of)`.

Every source the config uses is read on its own, so a broken file never hides the problems
of another; each problem keeps its source and its exit code (66 input missing or empty, 65
data error). For the sources read, the report records the facts `score` relies on: files
and rows, the time range against each metric's window, the keys matched among the accounts.
When nothing is wrong so far, the rest of the run is done in memory (aggregate, join,
normalize, score) and the `checks:` thresholds are applied, so exit 0 means `score` with
the same config and as_of would succeed, short of problems writing its outputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from healthscore.aggregate import aggregate_source, cutoff_of, source_metrics, window_interval
from healthscore.config import Config, load_config
from healthscore.errors import DataError, HealthscoreError, InputMissingError, Problem
from healthscore.join import spine_frame
from healthscore.models import MetricConfig
from healthscore.pipeline import RunResult, needed_columns, resolve_as_of, run
from healthscore.quality import check_failures
from healthscore.sources import FILE, LINE, SourceData, read_source

__all__ = [
    "EXIT_MEANINGS",
    "FileFacts",
    "Issue",
    "KeyFacts",
    "SourceReport",
    "ValidationReport",
    "ValidationWarning",
    "WindowCoverage",
    "exit_meaning",
    "validate",
    "validate_file",
]

STALE_DAYS = 7  # a timed source ending more than this many days before as_of is called stale
FUTURE_DAYS = 366  # rows dated more than this after as_of suggest a wrong date format
EXIT_PRIORITY = (78, 66, 65)  # the code a report exits with when it holds several kinds of problem
EXIT_MEANINGS = {
    0: "score would run",
    2: "usage error",
    65: "data error: input rows or values unusable",
    66: "input missing or empty",
    73: "output cannot be created",
    78: "config error",
}

Status = Literal["ok", "warn", "error"]
WindowStatus = Literal["ok", "partial", "empty"]


@dataclass(frozen=True)
class Issue:
    """A problem that would stop `score`: its exit code and title, the source it belongs to
    (None for the config or the run as a whole), what is wrong, where, how to fix it, and the
    details an error carried."""

    exit_code: int
    title: str
    message: str
    source: str | None = None
    where: str = ""
    hint: str = ""
    details: tuple[Problem, ...] = ()

    @classmethod
    def of_error(cls, error: HealthscoreError, source: str | None = None) -> Issue:
        """The issue of a raised error, with every problem it lists as a detail."""
        return cls(error.exit_code, error.title, error.message, source, details=error.problems)

    @classmethod
    def of_problem(cls, problem: Problem, source: str | None, kind: type[HealthscoreError] = DataError) -> Issue:
        """An issue from one Problem (a broken check, say), with the exit code of `kind`."""
        return cls(kind.exit_code, kind.title, problem.message, source, problem.where, problem.hint)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "exit_code": self.exit_code,
            "title": self.title,
            "source": self.source,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
            "details": [p.to_dict() for p in self.details],
        }


@dataclass(frozen=True)
class ValidationWarning:
    """A data warning (exit 0 unless warnings fail the run), with the source it is about."""

    message: str
    where: str = ""
    hint: str = ""
    source: str | None = None

    @classmethod
    def of(cls, problem: Problem, source: str | None) -> ValidationWarning:
        """The warning of a Problem, tagged with its source."""
        return cls(problem.message, problem.where, problem.hint, source)

    @property
    def problem(self) -> Problem:
        """The warning as a Problem, as `score` reports it."""
        return Problem(self.message, self.where, self.hint)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {"source": self.source, **self.problem.to_dict()}


@dataclass(frozen=True)
class FileFacts:
    """One file of a source as read: rows (rejected ones included) and rejected rows."""

    path: str
    rows: int
    rejected: int


@dataclass(frozen=True)
class KeyFacts:
    """How a source's keys meet the accounts: distinct keys and rows (with a key) found among
    the accounts' keys; for the accounts source itself, its blank and duplicate keys."""

    keys: int
    matched_keys: int
    rows: int
    matched_rows: int
    blank_keys: int = 0
    duplicate_keys: int = 0

    @property
    def key_share(self) -> float | None:
        """Matched share of the distinct keys (None without keys)."""
        return self.matched_keys / self.keys if self.keys else None

    @property
    def row_share(self) -> float | None:
        """Matched share of the rows (None without rows)."""
        return self.matched_rows / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, shares included."""
        return {
            "keys": self.keys,
            "matched_keys": self.matched_keys,
            "key_share": _rounded(self.key_share),
            "rows": self.rows,
            "matched_rows": self.matched_rows,
            "row_share": _rounded(self.row_share),
            "blank_keys": self.blank_keys,
            "duplicate_keys": self.duplicate_keys,
        }


@dataclass(frozen=True)
class SourceReport:
    """What validation found about one source; the facts are None when it could not be read."""

    name: str
    path: str
    is_accounts: bool
    status: Status
    files: tuple[FileFacts, ...] = ()
    rows: int | None = None  # data rows read, rejected ones included
    rows_used: int | None = None
    columns: tuple[str, ...] = ()
    time_column: str | None = None
    time_min: dt.datetime | None = None
    time_max: dt.datetime | None = None
    rows_after_as_of: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)
    keys: KeyFacts | None = None

    @property
    def read(self) -> bool:
        """Whether the source could be read."""
        return self.rows is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "name": self.name,
            "path": self.path,
            "accounts": self.is_accounts,
            "status": self.status,
            "files": [{"path": f.path, "rows": f.rows, "rejected": f.rejected} for f in self.files],
            "rows": self.rows,
            "rows_used": self.rows_used,
            "columns": list(self.columns),
            "time": None
            if self.time_column is None
            else {
                "column": self.time_column,
                "min": _iso(self.time_min),
                "max": _iso(self.time_max),
                "rows_after_as_of": self.rows_after_as_of,
            },
            "rejected": dict(self.rejected),
            "dropped": dict(self.dropped),
            "keys": None if self.keys is None else self.keys.to_dict(),
        }


@dataclass(frozen=True)
class WindowCoverage:
    """A windowed metric's dates against its source's rows. `start`..`end` are the window's
    first and last days (end is as_of); a growth metric also compares the window before,
    from `previous_start`. `missing_days` counts the window's first days before the data starts."""

    metric: str
    source: str
    window: str
    start: dt.date
    end: dt.date
    rows: int
    status: WindowStatus
    previous_start: dt.date | None = None
    previous_rows: int | None = None
    missing_days: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "metric": self.metric,
            "source": self.source,
            "window": self.window,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "previous_start": _iso(self.previous_start),
            "previous_rows": self.previous_rows,
            "missing_days": self.missing_days,
            "status": self.status,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Everything `validate` found: per source facts, window coverage, the problems that would
    stop `score` and the warnings; `accounts`, `scored` and `segments` come from the in-memory
    run, done only when nothing was wrong before it."""

    config: str
    as_of: dt.date | None
    sources: tuple[SourceReport, ...] = ()
    windows: tuple[WindowCoverage, ...] = ()
    issues: tuple[Issue, ...] = ()
    warnings: tuple[ValidationWarning, ...] = ()
    accounts: int | None = None
    scored: int | None = None
    segments: Mapping[str, int] | None = None

    @property
    def exit_code(self) -> int:
        """78 for a config problem, else 66 for a missing or empty input, else 65 for a data
        problem, else 0 (warnings alone do not fail)."""
        codes = {issue.exit_code for issue in self.issues}
        for code in EXIT_PRIORITY:
            if code in codes:
                return code
        return max(codes, default=0)

    @property
    def ok(self) -> bool:
        """Whether `score` would run."""
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what `validate --json` prints)."""
        return {
            "config": self.config,
            "as_of": _iso(self.as_of),
            "ok": self.ok,
            "exit_code": self.exit_code,
            "accounts": self.accounts,
            "scored": self.scored,
            "segments": None if self.segments is None else dict(self.segments),
            "sources": [s.to_dict() for s in self.sources],
            "windows": [w.to_dict() for w in self.windows],
            "problems": [i.to_dict() for i in self.issues],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def validate_file(
    path: str | Path, as_of: dt.date | str | None = None, *, fail_on_warnings: bool = False
) -> ValidationReport:
    """Load a config file and validate it; a config that cannot be loaded (78 invalid, 66
    absent) gives a report holding that one issue instead of raising. A bad `as_of` raises
    UsageError."""
    try:
        config = load_config(path)
    except HealthscoreError as exc:
        return ValidationReport(str(path), None, issues=(Issue.of_error(exc),))
    return validate(config, as_of, fail_on_warnings=fail_on_warnings)


def validate(config: Config, as_of: dt.date | str | None = None, *, fail_on_warnings: bool = False) -> ValidationReport:
    """Check every input of `config` as of a date without writing anything; every problem of
    every source is collected. `fail_on_warnings` (or `checks.fail_on_warnings`) turns the
    run's data warnings into problems, as it does for `score` (the window warnings only
    validation finds stay warnings). Raises only UsageError (a bad `as_of`)."""
    day = resolve_as_of(config, as_of)
    needed = needed_columns(config)
    sources, issues = _read_each(config, needed)
    warnings = [ValidationWarning.of(w, name) for name, data in sources.items() for w in data.warnings]
    warnings += [
        ValidationWarning(
            f"source {name!r} is not used by any metric or by accounts, so it was not read", f"sources.{name}", "", name
        )
        for name in config.sources
        if name not in needed
    ]
    accounts = sources.get(config.accounts.source)
    if accounts is not None:
        issues += _accounts_issues(accounts)
    for name, metrics in source_metrics(config).items():
        if name in sources:  # what aggregation would refuse (non-numeric fields...), per source
            try:
                aggregate_source(sources[name], metrics, day)
            except HealthscoreError as exc:
                issues.append(Issue.of_error(exc, name))
    windows, window_issues, window_warnings = _coverage(config, sources, day)
    issues += window_issues
    warnings += window_warnings
    result: RunResult | None = None
    if not issues:
        try:
            result = run(config, day, sources=sources)
        except HealthscoreError as exc:
            issues.append(Issue.of_error(exc, _source_of(exc.problems[0].where if exc.problems else "", config)))
        else:
            failures = check_failures(result, config, fail_on_warnings)
            issues += [Issue.of_problem(p, _source_of(p.where, config)) for p in failures]
            warnings = _with_run_warnings(warnings, result, config, fail_on_warnings or config.checks.fail_on_warnings)
    return ValidationReport(
        config=str(config.path) if config.path is not None else "config",
        as_of=day,
        sources=tuple(_source_report(config, name, sources, issues, warnings, day) for name in needed),
        windows=tuple(windows),
        issues=tuple(issues),
        warnings=tuple(warnings),
        accounts=result.summary.accounts if result else None,
        scored=result.summary.scored if result else None,
        segments={row.name: row.accounts for row in result.summary.segments} if result else None,
    )


def _read_each(config: Config, needed: Mapping[str, set[str]]) -> tuple[dict[str, SourceData], list[Issue]]:
    """Every source the config uses, read on its own with the columns it needs; the problem
    of each source that cannot be read, tagged with its name."""
    sources: dict[str, SourceData] = {}
    issues: list[Issue] = []
    for name, columns in needed.items():
        try:
            sources[name] = read_source(config, name, columns, keep_all=name == config.accounts.source)
        except HealthscoreError as exc:
            issues.append(Issue.of_error(exc, name))
    return sources, issues


def _with_run_warnings(
    warnings: list[ValidationWarning], result: RunResult, config: Config, fail_on_warnings: bool
) -> list[ValidationWarning]:
    """Add the warnings only the run finds (unmatched keys, normalization, Unscored accounts).
    When warnings fail the run, `check_failures` has made the run's warnings problems: they
    leave this list (validation's own warnings about windows stay)."""
    seen = {w.problem for w in warnings}
    added = [ValidationWarning.of(p, _source_of(p.where, config)) for p in result.summary.warnings if p not in seen]
    if not fail_on_warnings:
        return warnings + added
    run_warnings = set(result.summary.warnings)
    return [w for w in warnings if w.problem not in run_warnings]


def _accounts_issues(data: SourceData) -> list[Issue]:
    """The accounts source's own problems: no rows (66) and duplicate keys (65)."""
    if data.frame.empty:
        return [
            Issue.of_error(
                InputMissingError(
                    f"the accounts source {data.name!r} has no rows, so there is nothing to score",
                    [Problem("the file has a header but no data rows", f"sources.{data.name}.path", "re-export it")],
                ),
                data.name,
            )
        ]
    try:
        spine_frame(data)
    except HealthscoreError as exc:
        return [Issue.of_error(exc, data.name)]
    return []


def _coverage(
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


def _source_of(where: str, config: Config) -> str | None:
    """The source a problem's location names (`sources.X...`, `source X`, `X`, `metrics.M...`)."""
    for name in config.sources:
        if where in (name, f"source {name}", f"sources.{name}") or where.startswith(f"sources.{name}."):
            return name
    if where.startswith("metrics."):
        metric = config.metrics.get(where.split(".")[1])
        return metric.source if metric is not None else None
    return None


def _source_report(
    config: Config,
    name: str,
    sources: Mapping[str, SourceData],
    issues: Sequence[Issue],
    warnings: Sequence[ValidationWarning],
    day: dt.date,
) -> SourceReport:
    """One source's facts and status (error if any problem names it, warn if a warning does)."""
    status: Status = (
        "error"
        if any(i.source == name for i in issues)
        else "warn"
        if any(w.source == name for w in warnings)
        else "ok"
    )
    is_accounts = name == config.accounts.source
    path = config.sources[name].path
    data = sources.get(name)
    if data is None:
        return SourceReport(name, path, is_accounts, status)
    time_min = time_max = None
    after = 0
    if data.time is not None:
        times = data.frame[data.time].dropna()
        if not times.empty:
            time_min, time_max = pd.Timestamp(times.min()).to_pydatetime(), pd.Timestamp(times.max()).to_pydatetime()
            after = int((times >= cutoff_of(day)).sum())
    accounts = sources.get(config.accounts.source)
    return SourceReport(
        name=name,
        path=path,
        is_accounts=is_accounts,
        status=status,
        files=tuple(FileFacts(f.path, f.rows, f.rejected) for f in data.files),
        rows=data.rows_read,
        rows_used=len(data.frame),
        columns=tuple(str(c) for c in data.frame.columns if c not in (FILE, LINE)),
        time_column=data.time,
        time_min=time_min,
        time_max=time_max,
        rows_after_as_of=after,
        rejected=data.rejected,
        dropped=dict(data.dropped),
        keys=_key_facts(data, accounts, is_accounts),
    )


def _key_facts(data: SourceData, accounts: SourceData | None, is_accounts: bool) -> KeyFacts | None:
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


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def exit_meaning(code: int) -> str:
    """What an exit code of `validate` means, in a few words."""
    return EXIT_MEANINGS.get(code, "error")
