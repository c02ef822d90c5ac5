"""Checking a config and its inputs without writing anything: `validate(config, as_of)`.

Every source the config uses is read on its own, so a broken file never hides the problems
of another; each problem keeps its source and its exit code (66 input missing or empty, 65
data error). For the sources read, the report records the facts `score` relies on: files
and rows, the time range against each metric's window, the keys matched among the accounts.
When nothing is wrong so far, the rest of the run is done (aggregate, join, normalize,
score) and the `checks:` thresholds are applied, so exit 0 means `score` with
the same config and as_of would succeed, short of problems writing its outputs.

Sources are read as the config's engine reads them (`pipeline.source_reader`). Under
`engine: ibis` a source other than the accounts stays on its backend: its aggregation is
compiled but not run (which finds fields that hold no numbers and filters its columns cannot
evaluate), and its coverage facts come from one grouped query there (`ibis_coverage`); what
only the aggregation's results show (agg value's one row per account, NPS scores in 0..10)
is found by the final run.

This module runs the checks; the report types are in `validate_report`, and the date,
window and key coverage facts are computed in `coverage`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from healthscore.aggregate import aggregate_source, source_metrics
from healthscore.config import Config, load_config
from healthscore.coverage import (
    TimeFacts,
    key_facts,
    key_facts_of_counts,
    time_coverage,
    time_facts,
    time_range,
    window_intervals,
)
from healthscore.errors import HealthscoreError, InputMissingError, Problem
from healthscore.join import spine_frame
from healthscore.pipeline import RunResult, needed_columns, resolve_as_of, run, source_reader
from healthscore.quality import check_failures
from healthscore.sources import SourceData
from healthscore.validate_report import (
    EXIT_MEANINGS,
    FileFacts,
    Issue,
    KeyFacts,
    SourceReport,
    Status,
    ValidationReport,
    ValidationWarning,
    WindowCoverage,
    exit_meaning,
)

if TYPE_CHECKING:
    from healthscore.ibis_sources import BackendSource

__all__ = [  # the report types are re-exported: render_validate and the tests import them from here
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
        issues += _accounts_issues(config, accounts)
    issues += _aggregation_issues(config, sources, day)
    facts, key_rows, fact_issues = _coverage_facts(config, sources, day)
    issues += fact_issues
    windows, window_issues, window_warnings = time_coverage(config, facts, day)
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
        sources=tuple(_source_report(config, name, sources, facts, key_rows, issues, warnings) for name in needed),
        windows=tuple(windows),
        issues=tuple(issues),
        warnings=tuple(warnings),
        accounts=result.summary.accounts if result else None,
        scored=result.summary.scored if result else None,
        segments={row.name: row.accounts for row in result.summary.segments} if result else None,
    )


def _read_each(config: Config, needed: Mapping[str, set[str]]) -> tuple[dict[str, SourceData], list[Issue]]:
    """Every source the config uses, read on its own with the columns it needs, as the
    config's engine reads it (under engine ibis, opened on its backend); the problem of each
    source that cannot be read, tagged with its name."""
    sources: dict[str, SourceData] = {}
    issues: list[Issue] = []
    try:
        read = source_reader(config)
    except HealthscoreError as exc:  # Ibis missing: the config check has said so already
        return sources, [Issue.of_error(exc)]
    for name, columns in needed.items():
        try:
            sources[name] = read(name, columns)
        except HealthscoreError as exc:
            issues.append(Issue.of_error(exc, name))
    return sources, issues


def _aggregation_issues(config: Config, sources: Mapping[str, SourceData], day: dt.date) -> list[Issue]:
    """What aggregating each source would refuse (fields that hold no numbers, filters its
    columns cannot evaluate ...), source by source: a source in memory is aggregated, one on
    a backend has its query compiled without running it."""
    issues: list[Issue] = []
    for name, metrics in source_metrics(config).items():
        data = sources.get(name)
        if data is None:
            continue
        try:
            backend = _backend(data)
            if backend is None:
                aggregate_source(data, metrics, day)
            else:
                from healthscore.ibis_engine import check_aggregation

                check_aggregation(backend, metrics, day)
        except HealthscoreError as exc:
            issues.append(Issue.of_error(exc, name))
    return issues


def _coverage_facts(
    config: Config, sources: Mapping[str, SourceData], day: dt.date
) -> tuple[dict[str, TimeFacts | None], dict[str, pd.Series], list[Issue]]:
    """Each source's `TimeFacts` (None without dated rows), computed in memory or by one
    query on its backend; for backend sources also their rows per key (the key facts), and
    the problem of each whose query failed."""
    by_source = source_metrics(config)
    facts: dict[str, TimeFacts | None] = {}
    key_rows: dict[str, pd.Series] = {}
    issues: list[Issue] = []
    for name, data in sources.items():
        intervals = window_intervals(by_source.get(name, {}), day)
        backend = _backend(data)
        if backend is None:
            facts[name] = time_facts(data, intervals, day)
            continue
        from healthscore.ibis_coverage import backend_facts

        try:
            facts[name], key_rows[name] = backend_facts(backend, intervals, day)
        except HealthscoreError as exc:
            issues.append(Issue.of_error(exc, name))
    return facts, key_rows, issues


def _backend(data: SourceData) -> BackendSource | None:
    """`data` if it stays on an Ibis backend (`ibis_sources.BackendSource`), else None; Ibis's
    modules are imported only for such a source."""
    if not getattr(data, "on_backend", False):
        return None
    from healthscore.ibis_sources import BackendSource

    assert isinstance(data, BackendSource)
    return data


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


def _accounts_issues(config: Config, data: SourceData) -> list[Issue]:
    """The accounts source's own problems: no rows (66) and duplicate keys (65)."""
    if data.frame.empty:
        problem = (
            Problem("the table has no rows", f"sources.{data.name}.table", "check the table and the connection")
            if config.sources[data.name].table is not None
            else Problem("the file has a header but no data rows", f"sources.{data.name}.path", "re-export it")
        )
        return [
            Issue.of_error(
                InputMissingError(
                    f"the accounts source {data.name!r} has no rows, so there is nothing to score", [problem]
                ),
                data.name,
            )
        ]
    try:
        spine_frame(data)
    except HealthscoreError as exc:
        return [Issue.of_error(exc, data.name)]
    return []


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
    facts: Mapping[str, TimeFacts | None],
    key_rows: Mapping[str, pd.Series],
    issues: Sequence[Issue],
    warnings: Sequence[ValidationWarning],
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
    path, table = config.sources[name].path, config.sources[name].table
    data = sources.get(name)
    if data is None:
        return SourceReport(name, path, is_accounts, status, table)
    time_min, time_max, after = time_range(facts.get(name))
    accounts = sources.get(config.accounts.source)
    backend = _backend(data)
    if backend is None:
        columns = [str(c) for c in data.frame.columns]
        keys = key_facts(data, accounts, is_accounts)
    else:
        columns = backend.columns
        counted = key_rows.get(name)
        keys = None if counted is None else key_facts_of_counts(counted, accounts, backend.rows_without_key)
    return SourceReport(
        name=name,
        path=path,
        is_accounts=is_accounts,
        status=status,
        table=table,
        files=tuple(FileFacts(f.path, f.rows, f.rejected) for f in data.files),
        rows=data.rows_read,
        rows_used=data.rows_used,
        columns=tuple(columns),
        time_column=data.time,
        time_min=time_min,
        time_max=time_max,
        rows_after_as_of=after,
        rejected=data.rejected,
        dropped=dict(data.dropped),
        keys=keys,
    )
