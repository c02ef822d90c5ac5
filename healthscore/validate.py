"""Checking a config and its inputs without writing anything: `validate(config, as_of)`.

Every source the config uses is read on its own, so a broken file never hides the problems
of another; each problem keeps its source and its exit code (66 input missing or empty, 65
data error). For the sources read, the report records the facts `score` relies on: files
and rows, the time range against each metric's window, the keys matched among the accounts.
When nothing is wrong so far, the rest of the run is done in memory (aggregate, join,
normalize, score) and the `checks:` thresholds are applied, so exit 0 means `score` with
the same config and as_of would succeed, short of problems writing its outputs.

This module runs the checks; the report types are in `validate_report`, and the date,
window and key coverage facts are computed in `coverage`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

from healthscore.aggregate import aggregate_source, source_metrics
from healthscore.config import Config, load_config
from healthscore.coverage import key_facts, time_coverage, time_range
from healthscore.errors import HealthscoreError, InputMissingError, Problem
from healthscore.join import spine_frame
from healthscore.pipeline import RunResult, needed_columns, resolve_as_of, run
from healthscore.quality import check_failures
from healthscore.sources import FILE, LINE, SourceData, read_source
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
        issues += _accounts_issues(accounts)
    for name, metrics in source_metrics(config).items():
        if name in sources:  # what aggregation would refuse (non-numeric fields...), per source
            try:
                aggregate_source(sources[name], metrics, day)
            except HealthscoreError as exc:
                issues.append(Issue.of_error(exc, name))
    windows, window_issues, window_warnings = time_coverage(config, sources, day)
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
    time_min, time_max, after = time_range(data, day)
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
        keys=key_facts(data, accounts, is_accounts),
    )
