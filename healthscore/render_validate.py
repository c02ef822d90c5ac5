"""Rendering a validation report with rich: sources, windows, problems, warnings, verdict.

Like `render.py`, coloured tables on a terminal and plain ASCII elsewhere (cron logs,
pipes, NO_COLOR); the console comes from `render.make_console`.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthscore.validate_report import KeyFacts, SourceReport, ValidationReport, WindowCoverage, exit_meaning

STATUS_STYLES = {"ok": "green", "warn": "yellow", "partial": "yellow", "error": "bold red", "empty": "bold red"}


def render_validation(report: ValidationReport, console: Console) -> None:
    """Draw the report: a table of sources, a table of metric windows, every problem with its
    details and hint, every warning, and a last line with the verdict and the exit code."""
    as_of = f"  as of {report.as_of}" if report.as_of else ""
    console.print(Text.assemble(("healthscore validate", "bold"), f"  {report.config}{as_of}"))
    if report.sources:
        console.print(_sources_table(report, console))
    if report.windows:
        console.print(_windows_table(report, console))
    if report.issues:
        console.print(Text(f"{len(report.issues)} problem(s):", style="bold red"))
    for issue in report.issues:
        where = f" {issue.where}:" if issue.where else ""
        source = f"[{issue.source}] " if issue.source else ""
        hint = f" (hint: {issue.hint})" if issue.hint else ""
        console.print(Text(f"  x {source}{issue.title}:{where} {issue.message}{hint}"), soft_wrap=True)
        for detail in issue.details:
            console.print(Text(f"      - {detail}"), soft_wrap=True)
    if report.warnings:
        console.print(Text(f"{len(report.warnings)} warning(s):", style="yellow"))
    for warning in report.warnings:
        source = f"[{warning.source}] " if warning.source else ""
        console.print(Text(f"  ! {source}{warning.problem}"), soft_wrap=True)
    if report.segments:
        counts = ", ".join(f"{name} {count:,}" for name, count in report.segments.items())
        scored = f"{report.scored or 0:,} of {report.accounts or 0:,} accounts scored"
        console.print(f"Segments as of {report.as_of}: {counts} ({scored})", soft_wrap=True)
    console.print(verdict(report), style="bold green" if report.ok else "bold red", soft_wrap=True)


def verdict(report: ValidationReport) -> str:
    """The report's last line: ready to score, or the problems and what the exit code means."""
    warned = f" ({len(report.warnings)} warning(s))" if report.warnings else ""
    if report.ok:
        return f"OK: {report.config} is ready to score {report.accounts} accounts as of {report.as_of}{warned}"
    code = report.exit_code
    return (
        f"{len(report.issues)} problem(s), {len(report.warnings)} warning(s): "
        f"exit {code}, {exit_meaning(code)}; fix them before scoring"
    )


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal else box.ASCII2


def _status(value: str) -> Text:
    return Text(value.upper(), style=STATUS_STYLES.get(value, ""))


def _sources_table(report: ValidationReport, console: Console) -> Table:
    table = Table(title="Sources", box=_box(console), title_justify="left")
    for name in ("Source", "Files", "Rows", "Rejected", "Time range", "Keys matched", "Rows matched", "Status"):
        table.add_column(
            name, justify="right" if name in ("Files", "Rows", "Rejected") else "left", no_wrap=name == "Time range"
        )
    for source in report.sources:
        table.add_row(
            source.name + (" (accounts)" if source.is_accounts else ""),
            str(len(source.files)) if source.read else "-",
            f"{source.rows:,}" if source.rows is not None else "-",
            f"{sum(source.rejected.values()):,}" if source.read else "-",
            _time_range(source),
            *_key_cells(source),
            _status(source.status),
        )
    return table


def _time_range(source: SourceReport) -> str:
    if source.time_min is None or source.time_max is None:
        return "-" if source.time_column is None or not source.read else "no rows"
    return f"{source.time_min.date()}..{source.time_max.date()}"


def _share(part: int, whole: int, share: float | None) -> str:
    return "-" if share is None else f"{share:.1%} of {whole:,}"


def _key_cells(source: SourceReport) -> tuple[str, str]:
    keys: KeyFacts | None = source.keys
    if keys is None:
        return "-", "-"
    if source.is_accounts:
        notes = [f"{keys.duplicate_keys:,} duplicated"] if keys.duplicate_keys else []
        notes += [f"{keys.blank_keys:,} blank"] if keys.blank_keys else []
        return f"{keys.keys:,} accounts", ", ".join(notes)
    return _share(keys.matched_keys, keys.keys, keys.key_share), _share(keys.matched_rows, keys.rows, keys.row_share)


def _windows_table(report: ValidationReport, console: Console) -> Table:
    table = Table(title="Metric windows", box=_box(console), title_justify="left")
    for name in ("Metric", "Source", "Window", "Dates", "Rows", "Status"):
        table.add_column(name, justify="right" if name == "Rows" else "left")
    for window in report.windows:
        table.add_row(
            window.metric,
            window.source,
            window.window + (" x2" if window.previous_start else ""),
            f"{window.previous_start or window.start}..{window.end}",
            _window_rows(window),
            _window_status(window),
        )
    return table


def _window_rows(window: WindowCoverage) -> str:
    if window.previous_rows is None:
        return f"{window.rows:,}"
    return f"{window.previous_rows:,} + {window.rows:,}"


def _window_status(window: WindowCoverage) -> Text:
    if window.status == "partial":
        return Text(f"PARTIAL: first {window.missing_days} day(s) missing", style=STATUS_STYLES["partial"])
    if window.status == "empty":
        return Text("EMPTY: no rows", style=STATUS_STYLES["empty"])
    return _status(window.status)
