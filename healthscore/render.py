"""Rendering the summary, warnings, errors and progress with rich (this module and the
render_* modules of other commands are the only ones that import rich).

On a terminal it draws coloured tables; otherwise (cron logs, pipes, NO_COLOR,
TERM=dumb) the same content as plain ASCII text without escape codes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from healthscore.errors import HealthscoreError
from healthscore.movers import Movers
from healthscore.summary import Rollup, Summary

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
    if summary.profiles is not None:
        shown = ", ".join(f"{name} {count:,}" for name, count in summary.profiles.items())
        console.print(f"Profiles: {shown}", highlight=False)
    console.print(_histogram(summary, console))
    if summary.lowest:
        console.print(_lowest_table(summary, console))
    if summary.movers is not None:
        _render_movers(summary, summary.movers, console)
    if summary.by is not None:
        console.print(_rollup_table(summary, summary.by, console))
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


def _render_movers(summary: Summary, movers: Movers, console: Console) -> None:
    """Movement since the previous snapshot: a sentence, drops, gains and the transition matrix."""
    down = sum(movers.moved_down.values())
    parts = []
    for name, count in movers.moved_down.items():
        money = f" {_money(movers.arr_moved_down[name])}" if movers.arr_moved_down is not None else ""
        parts.append(f"{count} into {name}{money}")
    detail = f" ({', '.join(parts)})" if parts else ""
    console.print(
        f"Since {movers.previous_as_of.isoformat()}: {down} account(s) moved down a segment{detail}, "
        f"{movers.moved_up} moved up",
        highlight=False,
    )
    for title, rows in (("Biggest drops", movers.drops), ("Biggest gains", movers.gains)):
        if rows:
            console.print(_movers_table(title, rows, summary.arr_total is not None, console))
    matrix = Table(title="Segment moves", box=_box(console), title_justify="left")
    columns = list(dict.fromkeys(c for row in movers.transitions.values() for c in row))
    colors = {row.name: row.color for row in summary.segments}
    matrix.add_column("Before \\ now")
    for name in columns:
        matrix.add_column(Text(name, style=STYLES.get(colors.get(name, ""), "")), justify="right")
    for before, row in movers.transitions.items():
        matrix.add_row(before, *(f"{row.get(c, 0):,}" for c in columns))
    console.print(matrix)


def _movers_table(title: str, rows: list[dict[str, Any]], with_arr: bool, console: Console) -> Table:
    table = Table(title=title, box=_box(console), title_justify="left")
    for name in ("Account", "Name", "Was", "Now", "Change", "Segment", *(["ARR"] if with_arr else [])):
        table.add_column(name, justify="left" if name in {"Account", "Name", "Segment"} else "right")
    for row in rows:
        segment = (
            row["segment"]
            if row["segment"] == row["previous_segment"]
            else f"{row['previous_segment']} -> {row['segment']}"
        )
        cells = [str(row["account_id"]), str(row["name"]), f"{row['previous_score']:.1f}", f"{row['health_score']:.1f}"]
        cells += [f"{row['score_change']:+.1f}", segment]
        table.add_row(*cells, *([_money(row["arr"])] if with_arr else []))
    return table


def _rollup_table(summary: Summary, rollup: Rollup, console: Console) -> Table:
    """One row per value of the --by column: accounts, mean score, ARR, and each segment's
    accounts (and ARR, when the accounts have one)."""
    with_arr = summary.arr_total is not None
    table = Table(title=f"By {rollup.column}", box=_box(console), title_justify="left")
    table.add_column(rollup.column)
    for name in ("Accounts", "Mean score", *(["ARR"] if with_arr else [])):
        table.add_column(name, justify="right")
    colors = {row.name: row.color for row in summary.segments}
    names = list(rollup.rows[0].segments) if rollup.rows else []
    for name in names:
        table.add_column(Text(name, style=STYLES.get(colors.get(name, ""), "")), justify="right")
    for row in rollup.rows:
        cells = [row.value, f"{row.accounts:,}", "n/a" if row.mean_score is None else f"{row.mean_score:.1f}"]
        if with_arr:
            cells.append(_money(row.arr))
        for name in names:
            count = f"{row.segments[name]:,}"
            money = row.segment_arr[name] if row.segment_arr is not None else None
            cells.append(f"{count} ({_money(money)})" if with_arr and row.segments[name] else count)
        table.add_row(*cells)
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


STAGES = {"read": "Reading", "aggregate": "Aggregating"}
PROGRESS_DELAY = 1.0


def shows_progress(stream: IO[str]) -> bool:
    """Progress bars only on a terminal that takes colour: never in logs, pipes, NO_COLOR or TERM=dumb."""
    return _isatty(stream) and os.environ.get("TERM") != "dumb" and "NO_COLOR" not in os.environ


@contextlib.contextmanager
def progress_bars(console: Console, delay: float = PROGRESS_DELAY) -> Iterator[Callable[[str, str, int, int], None]]:
    """A progress hook for `pipeline.run` drawing one bar per stage on `console`. The bars
    appear only once the run has taken `delay` seconds (a quick run shows none) and are
    cleared when it ends."""
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def hook(stage: str, item: str, done: int, total: int) -> None:
        label = STAGES.get(stage, stage.capitalize())
        if stage not in tasks:
            tasks[stage] = bars.add_task(label, total=total)
        bars.update(tasks[stage], completed=done, description=f"{label} {item}".rstrip())

    lock = threading.Lock()
    finished = False

    def start() -> None:
        with lock:  # never start after the run has ended
            if not finished:
                bars.start()

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield hook
    finally:
        timer.cancel()
        with lock:
            finished = True
            bars.stop()


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
