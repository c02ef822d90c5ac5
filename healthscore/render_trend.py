"""Rendering `healthscore trend` and `backfill` with rich.

The same look as `render.py`: on a terminal, coloured tables, a sparkline (▁▂▃▄▅▆▇█) and
coloured stacked bars; elsewhere (pipes, cron logs, NO_COLOR, TERM=dumb) the same content
in plain ASCII: the sparkline drawn with `_.-=#` and each bar with one letter per segment.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthscore.backfill import BackfillDay, BackfillReport
from healthscore.config import Config
from healthscore.errors import Problem
from healthscore.render import STYLES
from healthscore.scoring import UNSCORED, UNSCORED_COLOR
from healthscore.trend import PORTFOLIO_COLUMNS, segment_order

SPARKS = "▁▂▃▄▅▆▇█"
ASCII_SPARKS = "_.-=#"
SPARK_POINTS = 60  # the sparkline shows at most this many snapshots, the latest
BAR_WIDTH = 20
UNSCORED_MARK = "."
WIDEST = 1000  # characters: a plain-text table is never cut below its natural width up to this
DATE_WIDTH = 11  # 2026-01-31 and its * mark
NUMBER_WIDTH = 5  # 100.0, -12.3


def sparkline(values: Sequence[float] | np.ndarray, terminal: bool) -> str:
    """One character per value, its height scaled between the values' minimum and maximum
    (the middle one when all are equal); a missing value is a space."""
    levels = SPARKS if terminal else ASCII_SPARKS
    data = np.asarray(values, dtype="float64")
    known = ~np.isnan(data)
    if not known.any():
        return " " * len(data)
    low, high = float(np.nanmin(data)), float(np.nanmax(data))
    span = high - low
    scaled = np.full(len(data), (len(levels) - 1) // 2) if span == 0 else (data - low) / span * (len(levels) - 1)
    index = np.where(known, np.rint(np.nan_to_num(scaled)), 0).astype("int64")
    chars = np.array(list(levels))[index]
    return "".join(np.where(known, chars, " "))


def bar_widths(counts: np.ndarray, width: int) -> np.ndarray:
    """Each row's counts as cell widths summing to `width` (largest remainders round up);
    all zero for a row of zeros."""
    counts = np.asarray(counts, dtype="float64")
    totals = counts.sum(axis=1, keepdims=True)
    exact = np.divide(counts * width, totals, out=np.zeros_like(counts), where=totals > 0)
    widths = np.floor(exact).astype("int64")
    short = np.where(totals[:, 0] > 0, width - widths.sum(axis=1), 0)
    order = np.argsort(-(exact - widths), axis=1, kind="stable")
    ranks = np.argsort(order, axis=1, kind="stable")
    result: np.ndarray = widths + (ranks < short[:, None]).astype("int64")
    return result


def segment_letters(names: Sequence[str]) -> dict[str, str]:
    """A distinct letter per segment for plain-text bars (its first unused letter, else a
    digit); Unscored is '.'."""
    letters: dict[str, str] = {}
    for position, name in enumerate(names):
        if name == UNSCORED:
            letters[name] = UNSCORED_MARK
            continue
        used = set(letters.values())
        free = [c for c in name.upper() if c.isalnum() and c not in used]
        letters[name] = free[0] if free else str(position % 10)
    return letters


def render_portfolio(frame: pd.DataFrame, config: Config, console: Console) -> None:
    """Draw the portfolio trend: a header, a sparkline of the mean score, and one row per
    as_of with its counts and a bar of its segments."""
    terminal = console.is_terminal
    days = _dates(frame)
    sep = "  ·  " if terminal else "  |  "
    console.print(
        Text.assemble(
            ("healthscore trend", "bold"),
            f"{sep}{len(days)} snapshot(s), {days[0].isoformat()} to {days[-1].isoformat()}",
            f"{sep}{int(frame['accounts'].iloc[-1])} accounts on the last",
        )
    )
    console.print(_spark_line("Mean score", frame["mean_score"], terminal))
    segments = [c for c in frame.columns if c not in PORTFOLIO_COLUMNS and not c.startswith("config_")]
    names = segment_order(config, segments)
    names = [n for n in names if n in segments] + [c for c in segments if c not in names]
    names = [n for n in names if n != UNSCORED or frame[n].any()]  # the column only when some are Unscored
    colors = _colors(config)
    letters = segment_letters(names)
    table = _table(console)
    table.add_column("As of", no_wrap=True, min_width=DATE_WIDTH)
    for header in ("Accounts", "Scored", "Mean", "Change"):
        table.add_column(header, justify="right", no_wrap=True, min_width=NUMBER_WIDTH)
    for name in names:
        table.add_column(Text(name, style=STYLES.get(colors.get(name, ""), "")), justify="right", no_wrap=True)
    table.add_column("Segments", no_wrap=True, min_width=BAR_WIDTH)
    counts = frame[names].to_numpy(dtype="int64")
    widths = bar_widths(counts, BAR_WIDTH)
    changed = frame["config_changed"].to_numpy(dtype=bool)
    for i, day in enumerate(days):  # one row per snapshot day
        table.add_row(
            day.isoformat() + ("*" if changed[i] else ""),
            f"{int(frame['accounts'].iloc[i]):,}",
            f"{int(frame['scored'].iloc[i]):,}",
            _one(frame["mean_score"].iloc[i]),
            _signed(frame["mean_change"].iloc[i]),
            *(f"{int(n):,}" for n in counts[i]),
            _bar(names, widths[i], colors, letters, terminal),
        )
    _print_table(table, console)
    if not terminal:
        console.print("Segments: " + ", ".join(f"{letters[n]} {n}" for n in names))
    _config_note(frame, console)


def render_account(frame: pd.DataFrame, config: Config, console: Console) -> None:
    """Draw one account's trend: a header with its latest score and segment, a sparkline of
    its score, and one row per as_of with its score, change, segment, coverage and groups."""
    terminal = console.is_terminal
    days = _dates(frame)
    sep = "  ·  " if terminal else "  |  "
    colors = _colors(config)
    last = frame.iloc[-1]
    segment = str(last["segment"])
    console.print(
        Text.assemble(
            (str(last["account_id"]), "bold"),
            f"{sep}{len(days)} snapshot(s), {days[0].isoformat()} to {days[-1].isoformat()}{sep}now ",
            (segment, STYLES.get(colors.get(segment, ""), "")),
        )
    )
    console.print(_spark_line("Score", frame["health_score"], terminal))
    groups = [c for c in frame.columns if c.startswith("group_")]
    table = _table(console)
    table.add_column("As of", no_wrap=True, min_width=DATE_WIDTH)
    for header in ("Score", "Change"):
        table.add_column(header, justify="right", no_wrap=True, min_width=NUMBER_WIDTH)
    table.add_column("Segment", no_wrap=True)
    table.add_column("Coverage", justify="right", no_wrap=True)
    for column in groups:
        table.add_column(column.removeprefix("group_").replace("_", " "), justify="right", min_width=NUMBER_WIDTH)
    with_profile = "profile" in frame.columns
    if with_profile:
        table.add_column("Profile")
    changed = frame["config_changed"].to_numpy(dtype=bool)
    group_values = frame[groups].to_numpy(dtype="float64")
    for i, day in enumerate(days):  # one row per snapshot day
        name = str(frame["segment"].iloc[i])
        cells: list[Text | str] = [
            day.isoformat() + ("*" if changed[i] else ""),
            _one(frame["health_score"].iloc[i]),
            _signed(frame["score_change"].iloc[i]),
            Text(name, style=STYLES.get(colors.get(name, ""), "")),
            _percent(frame["coverage"].iloc[i]),
            *(_one(v) for v in group_values[i]),
        ]
        if with_profile:
            cells.append(str(frame["profile"].iloc[i]))
        table.add_row(*cells)
    _print_table(table, console)
    _config_note(frame, console)


def render_backfill_day(day: BackfillDay, console: Console) -> None:
    """One plain line for a day of a backfill, as it is done."""
    console.print(Text(_day_line(day)), soft_wrap=True)


def render_backfill(report: BackfillReport, console: Console, days: bool = True) -> None:
    """What a backfill did: each day (unless `days` is False: already shown one by one),
    then one line of totals, and the days pruned."""
    if days:
        for day in report.days:
            render_backfill_day(day, console)
    scored, rescored, skipped = (report.count(s) for s in ("scored", "rescored", "skipped"))
    if scored + rescored == 0:
        console.print(
            Text(f"nothing to do: all {skipped} day(s) are in {report.root} with this config (--force rescores them)"),
            soft_wrap=True,
        )
    else:
        parts = [f"{scored} scored"] + [f"{n} {s}" for n, s in ((rescored, "rescored"), (skipped, "skipped")) if n]
        console.print(
            Text(f"backfilled {len(report.days)} day(s) into {report.root}: {', '.join(parts)}"), soft_wrap=True
        )
    if report.pruned:
        names = ", ".join(p.name for p in report.pruned)
        console.print(Text(f"pruned {len(report.pruned)} day(s) older than history.keep: {names}"), soft_wrap=True)


def render_problems(problems: Sequence[Problem], console: Console) -> None:
    """List data warnings, one per line (as `render.render_warnings` does for a run)."""
    if not problems:
        return
    console.print(Text(f"{len(problems)} warning(s):", style="yellow"))
    for problem in problems:
        console.print(Text(f"  ! {problem}"), soft_wrap=True)


def _day_line(day: BackfillDay) -> str:
    """`2026-01-31  scored    500 accounts, 498 scored, mean 61.2` or `... skipped  ...`."""
    head = f"{day.as_of.isoformat()}  {day.status:<8}"
    if day.status == "skipped":
        return f"{head}  already in the history with this config"
    mean = "n/a" if day.mean_score is None else f"{day.mean_score:.1f}"
    counts = ", ".join(f"{name} {n}" for name, n in day.segments.items())
    return f"{head}  {day.accounts} accounts, {day.scored} scored, mean {mean}" + (f" ({counts})" if counts else "")


def _spark_line(label: str, values: pd.Series, terminal: bool) -> Text:
    """`label  ▁▃▅█  first -> last (change)` over the latest SPARK_POINTS values."""
    shown = values.to_numpy(dtype="float64", na_value=np.nan)[-SPARK_POINTS:]
    known = shown[~np.isnan(shown)]
    note = f" (last {SPARK_POINTS})" if len(values) > SPARK_POINTS else ""
    if not len(known):
        return Text(f"{label}  no score in these snapshots")
    first, last = float(known[0]), float(known[-1])
    arrow = "→" if terminal else "->"
    return Text.assemble(
        f"{label}{note}  ",
        (sparkline(shown, terminal), "bold" if terminal else ""),
        f"  {first:.1f} {arrow} {last:.1f} ({_signed(round(last - first, 1)) or '0.0'})",
    )


def _bar(names: list[str], widths: np.ndarray, colors: dict[str, str], letters: dict[str, str], terminal: bool) -> Text:
    """A stacked bar: each segment's share of the accounts, in its colour (or its letter)."""
    bar = Text()
    for name, width in zip(names, widths, strict=True):
        if terminal:
            bar.append("█" * int(width), style=STYLES.get(colors.get(name, ""), ""))
        else:
            bar.append(letters[name] * int(width))
    return bar


def _print_table(table: Table, console: Console) -> None:
    """Print a table; off a terminal (a log, a file, a pipe) as wide as it needs rather than
    cut to the console's width."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    console.width = max(width, console.measure(table, options=console.options.update_width(WIDEST)).maximum)
    try:
        console.print(table)
    finally:
        console.width = width


def _config_note(frame: pd.DataFrame, console: Console) -> None:
    """A footnote for the days (marked *) scored by another config than the day before."""
    changed = frame[frame["config_changed"].to_numpy(dtype=bool)]
    if changed.empty:
        return
    days = ", ".join(day.isoformat() for day in _dates(changed))
    console.print(
        Text(
            f"* scored by another config than the snapshot before it ({days}): "
            "changes across it compare two models, read them with care",
            style="yellow" if console.is_terminal else "",
        ),
        soft_wrap=True,
    )


def _dates(frame: pd.DataFrame) -> list[dt.date]:
    """The frame's as_of column as dates."""
    return [pd.Timestamp(d).date() for d in frame["as_of"].astype("str")]


def _colors(config: Config) -> dict[str, str]:
    """Segment name -> colour name, Unscored included."""
    return {**{s.name: s.color for s in config.segments}, UNSCORED: UNSCORED_COLOR}


def _table(console: Console) -> Table:
    """An empty table: ASCII boxes off a terminal; on one, rules only and padding kept tight
    so that a row of group scores fits 120 columns."""
    if not console.is_terminal:
        return Table(box=box.ASCII2)
    return Table(box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False, show_edge=False)


def _one(value: object) -> str:
    """A number with one decimal; empty when missing."""
    number = _number(value)
    return "" if number is None else f"{number:.1f}"


def _signed(value: object) -> str:
    """A change with its sign (+1.5, -0.3, 0.0); empty when missing."""
    number = _number(value)
    return "" if number is None else f"{number:+.1f}".replace("+0.0", "0.0").replace("-0.0", "0.0")


def _percent(value: object) -> str:
    """A share as a whole percentage; empty when missing."""
    number = _number(value)
    return "" if number is None else f"{number:.0%}"


def _number(value: object) -> float | None:
    """A cell as a float, None when missing."""
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
