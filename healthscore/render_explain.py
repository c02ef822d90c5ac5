"""Rendering one account's explanation (`healthscore explain`) with rich.

The same look as `render.py`: a rich table with colour on a terminal, plain ASCII text
without escape codes elsewhere (pipes, cron logs, NO_COLOR, TERM=dumb).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthscore.explanation import AccountExplanation, GroupExplanation, JsonScalar, MetricExplanation
from healthscore.render import STYLES

MISSING_STYLE = "grey50"


def render_explanation(explanation: AccountExplanation, console: Console) -> None:
    """Draw why an account has its score: a header, notes, then one table of groups and their
    metrics, most points lost first, with where each missing metric's weight went."""
    e = explanation
    sep = "  ·  " if console.is_terminal else "  |  "
    title = Text.assemble((e.account_id, "bold"), f"  {e.name}" if e.name else "", f"{sep}as of {e.as_of.isoformat()}")
    console.print(title)
    score = "No score" if e.health_score is None else f"Health score {_one(e.health_score)}/100"
    line = Text.assemble(
        (score, "bold"),
        "  ",
        (e.segment, STYLES.get(e.color, "")),
        f"{sep}coverage {_percent(e.coverage)}",
        f"{sep}profile {e.profile}" if e.profile else "",
    )
    console.print(line)
    if e.action:
        console.print(Text(f"Action: {e.action}"), soft_wrap=True)
    for note in e.notes:
        console.print(Text(f"Note: {note}"), soft_wrap=True)
    console.print(_table(e, console))
    console.print(Text(_footer(e), style="grey50" if console.is_terminal else ""), soft_wrap=True)


def _table(e: AccountExplanation, console: Console) -> Table:
    """One table: group rows, each followed by its metrics (indented), most points lost first."""
    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else box.ASCII2, title_justify="left")
    table.add_column("Metric")
    for name in ("Raw", "Score", "Weight", "Effective", "Contribution", "Points lost"):
        table.add_column(name, justify="right", no_wrap=True)
    for group in e.groups:
        _group_rows(table, group, console)
    ungrouped = [m for m in e.metrics if not m.groups]
    if ungrouped:
        table.add_row(Text("(in no group: no weight)", style="bold"), end_section=False)
        for metric in ungrouped:
            _metric_rows(table, metric, console)
    return table


def _group_rows(table: Table, group: GroupExplanation, console: Console) -> None:
    """A group's own row, its metrics' rows, and the note of a group without data."""
    score = "no data" if group.score is None else f"{_one(group.score)}/100"
    table.add_row(
        Text(group.label, style="bold"),
        "",
        Text(score, style="bold"),
        _percent(group.weight),
        _percent(group.effective_weight),
        _one(group.contribution),
        Text(_one(group.points_lost), style="bold"),
    )
    if group.note:
        table.add_row(_note(group.note, console))
    for metric in group.metrics:
        _metric_rows(table, metric, console, note=group.has_data)  # else the group's note says it all


def _metric_rows(table: Table, metric: MetricExplanation, console: Console, note: bool = True) -> None:
    """A metric's row (marked when missing), and its note beneath."""
    style = MISSING_STYLE if metric.status == "missing" and console.is_terminal else ""
    marker = {"missing": " (missing)", "fixed_score": " (fixed score)", "filled": " (filled)"}.get(metric.status, "")
    table.add_row(
        Text(f"  {metric.label}{marker}", style=style),
        _raw(metric.raw),
        "-" if metric.score is None else f"{_one(metric.score)}/10",
        _percent(metric.weight),
        _percent(metric.effective_weight),
        _one(metric.contribution),
        _one(metric.points_lost),
        style=style,
    )
    if note and metric.note and (metric.status in ("missing", "fixed_score") or not metric.groups):
        table.add_row(_note(metric.note, console))


def _note(text: str, console: Console) -> Table:
    """A note under a row, in the Metric column, indented (wrapped lines too)."""
    grid = Table.grid(expand=True)
    grid.add_column(width=7, no_wrap=True)
    grid.add_column()
    arrow = "↳" if console.is_terminal else "->"
    grid.add_row(f"    {arrow} ", Text(text, style="italic grey50" if console.is_terminal else ""))
    return grid


def _footer(e: AccountExplanation) -> str:
    """How to read the numbers, with the sums that tie them to the score."""
    lost = sum(m.points_lost for m in e.metrics)
    sums = f"they add up to {_one(e.weights_score)} and {_one(lost)}"
    if e.method == "weights" and e.unrounded_score is not None:
        sums += f" (= 100 - {_one(e.weights_score)})"
    filled = any(m.status == "filled" for m in e.metrics)
    return (
        "Weight: share of the whole score as configured; Effective: after missing data moved weight"
        + ("; (filled): no data, given the missing.fill value" if filled else "")
        + f".\nContribution = effective x score x 10; Points lost = effective x (10 - score) x 10: {sums}."
    )


def _one(value: float) -> str:
    """One decimal, never -0.0."""
    return f"{round(value, 1) + 0.0:.1f}"


def _percent(share: float) -> str:
    """A 0..1 share as a percentage with one decimal."""
    return f"{round(100 * share, 1) + 0.0:.1f}%"


def _raw(value: JsonScalar) -> str:
    """A raw metric value, short: thousands separated, about three significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.3g}"
