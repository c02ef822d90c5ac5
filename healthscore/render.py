"""Rendering the summary with rich: the only module that imports rich.

On a terminal it draws coloured tables; otherwise (cron logs, pipes, NO_COLOR,
TERM=dumb) the same content as plain ASCII text without escape codes.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthscore.errors import HealthscoreError
from healthscore.summary import Summary

STYLES = {"red": "bold red", "yellow": "yellow", "green": "green", "blue": "bold blue", "grey": "grey50"}
BAR_WIDTH = 30


class _Console(Console):
    """A rich console that lets a closed pipe (`| head`) reach the CLI's handler, which ends
    quietly with exit 0, instead of rich's own exit 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def make_console(stream: IO[str] | None = None) -> Console:
    """A console on `stream` (stderr by default): colour on a terminal, plain text elsewhere."""
    stream = stream or sys.stderr
    plain = os.environ.get("TERM") == "dumb" or "NO_COLOR" in os.environ or not _isatty(stream)
    if plain:
        return _Console(
            file=stream,
            color_system=None,
            force_terminal=False,
            width=120,
            highlight=False,
            emoji=False,
            soft_wrap=False,
        )
    return _Console(file=stream, highlight=False, emoji=False)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal else box.ASCII2


def _money(value: float | None) -> str:
    if value is None:
        return ""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"${value / limit:,.1f}{suffix}"
    return f"${value:,.0f}"


def render_summary(summary: Summary, console: Console) -> None:
    """Draw the summary: segments, histogram, lowest accounts and sources (warnings are
    diagnostics: `render_warnings` draws them, on stderr)."""
    mean = "n/a" if summary.mean_score is None else f"{summary.mean_score:.1f}"
    console.print(
        Text.assemble(
            ("healthscore", "bold"),
            f"  as of {summary.as_of.isoformat()}  ·  {summary.accounts} accounts, "
            f"{summary.scored} scored, mean score {mean}",
        )
    )
    console.print(_segments_table(summary, console))
    console.print(_histogram(summary, console))
    if summary.lowest:
        console.print(_lowest_table(summary, console))
    console.print(_sources_table(summary, console))


def _segments_table(summary: Summary, console: Console) -> Table:
    with_arr = summary.arr_total is not None
    table = Table(title="Segments", box=_box(console), title_justify="left")
    table.add_column("Segment")
    table.add_column("Accounts", justify="right")
    table.add_column("Share", justify="right")
    if with_arr:
        table.add_column("ARR", justify="right")
        table.add_column("ARR share", justify="right")
    for row in summary.segments:
        cells: list[Text | str] = [
            Text(row.name, style=STYLES.get(row.color, "")),
            str(row.accounts),
            f"{row.share:.1%}",
        ]
        if with_arr:
            total = summary.arr_total or 0.0
            cells += [_money(row.arr), f"{(row.arr or 0.0) / total:.1%}" if total else ""]
        table.add_row(*cells)
    return table


def _histogram(summary: Summary, console: Console) -> Table:
    table = Table(title="Score distribution", box=None, title_justify="left", show_header=False)
    table.add_column(justify="right")
    table.add_column()
    table.add_column(justify="right")
    peak = max((n for _, _, n in summary.histogram), default=0) or 1
    bar = "█" if console.is_terminal else "#"
    for lo, hi, n in summary.histogram:
        table.add_row(f"{lo}-{hi}", bar * round(BAR_WIDTH * n / peak), str(n))
    return table


def _lowest_table(summary: Summary, console: Console) -> Table:
    table = Table(title=f"Lowest {len(summary.lowest)} scores, most ARR first", box=_box(console), title_justify="left")
    for name, justify in (
        ("Account", "left"),
        ("Name", "left"),
        ("Score", "right"),
        ("Segment", "left"),
        ("ARR", "right"),
        ("Top drivers", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in summary.lowest:
        table.add_row(
            str(row["account_id"]),
            str(row["name"]),
            f"{row['health_score']:.1f}",
            row["segment"],
            _money(row["arr"]),
            row["top_drivers"],
        )
    return table


def _sources_table(summary: Summary, console: Console) -> Table:
    table = Table(title="Sources", box=_box(console), title_justify="left")
    for name in ("Source", "Files", "Rows", "Rejected", "Dropped", "Unmatched keys", "Unmatched rows"):
        table.add_column(name, justify="left" if name == "Source" else "right")
    for row in summary.sources:
        table.add_row(
            row.name,
            str(row.files),
            f"{row.rows:,}",
            f"{row.rejected:,}",
            f"{row.dropped:,}",
            str(row.unmatched_keys),
            str(row.unmatched_rows),
        )
    return table


def render_warnings(summary: Summary, console: Console) -> None:
    """List the run's data warnings, one per line."""
    if not summary.warnings:
        return
    console.print(Text(f"{len(summary.warnings)} warning(s):", style="yellow"))
    for warning in summary.warnings:
        console.print(Text(f"  ! {warning}"), soft_wrap=True)


def render_error(error: HealthscoreError, console: Console) -> None:
    """Print an error with every problem it carries, one per line."""
    console.print(Text(f"{error.title}: {error.message}", style="bold red"), soft_wrap=True)
    for problem in error.problems:
        console.print(Text(f"  - {problem}"), soft_wrap=True)
