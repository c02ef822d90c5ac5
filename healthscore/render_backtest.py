"""Rendering `healthscore backtest` and `healthscore cohorts` reports with rich.

The same look as `render.py`: coloured tables on a terminal, plain ASCII text without
escape codes elsewhere (pipes, cron logs, NO_COLOR, TERM=dumb).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthscore.backtest import NO_SIGNAL, SIGNAL, WRONG_SIGN, AucRow, BacktestReport, Correlated, RateRow
from healthscore.cohorts import CohortReport, Suggestion
from healthscore.errors import Problem
from healthscore.render import STYLES

VERDICT_STYLES = {SIGNAL: "green", NO_SIGNAL: "yellow", WRONG_SIGN: "bold red"}


def render_backtest(report: BacktestReport, console: Console) -> None:
    """Draw the backtest: headline figures, churn by segment, AUC by group and metric, the
    calibration table by score decile and the correlated metrics."""
    r, sep = report, _sep(console)
    console.print(
        Text.assemble(
            ("healthscore backtest", "bold"),
            f"  as of {r.as_of.isoformat()}{sep}{r.score_source}",
        ),
        soft_wrap=True,
    )
    console.print(
        f"{r.with_outcome} of {r.accounts} accounts have an outcome; {r.scored} of them scored, "
        f"{r.churned} churned ({r.churn_rate:.1%})",
        soft_wrap=True,
    )
    o = r.overall
    console.print(
        Text.assemble(
            "ROC AUC ",
            (f"{o.auc:.3f}", "bold"),
            f" (95% CI {o.low:.3f}-{o.high:.3f}): a churned account scores below a retained one "
            f"{o.auc:.0%} of the time (0.5 = chance)",
        ),
        soft_wrap=True,
    )
    console.print(
        Text.assemble(
            "Top-decile lift ",
            (f"{r.lift:.2f}", "bold"),
            f": {r.lowest_rate:.1%} of the {r.lowest_accounts} lowest scores churned, against {r.churn_rate:.1%}",
        ),
        soft_wrap=True,
    )
    console.print(_rates_table("Churn by segment", "Segment", r.segments, console, colours=_colours(r)))
    if r.segments_ordered:
        console.print("Segments ordered: yes (churn falls from each segment to the next healthier one)")
    else:
        console.print(Text("Segments ordered: NO (a healthier segment churns more than the one before it)", "yellow"))
    console.print(_auc_table("AUC by group (0..100 group score)", r.groups, console, with_group=False))
    console.print(_auc_table("AUC by metric (0..10 score; best first)", r.metrics, console, with_group=True))
    console.print(
        "AUC > 0.5: a higher score goes with less churn. Verdict: signal (interval above 0.5), "
        "no signal (holds 0.5), wrong sign (below). Raw: AUC of the raw value, above 0.5 when "
        "higher values churn less.",
        soft_wrap=True,
    )
    console.print(_rates_table("Calibration by score decile (1 = lowest)", "Decile", r.deciles, console))
    _render_correlated(r, console)
    render_notes(r.warnings, console)


def render_cohorts(report: CohortReport, console: Console) -> None:
    """Draw churn by bin of a metric's raw value, and the suggested bands if any."""
    r, sep = report, _sep(console)
    console.print(
        Text.assemble(
            ("healthscore cohorts", "bold"),
            f"  {r.metric} ({r.label}){sep}as of {r.as_of.isoformat()}{sep}scale now: {r.scale}",
        ),
        soft_wrap=True,
    )
    overall = r.churned / r.accounts
    raw = "n/a" if r.raw_auc is None else f"{r.raw_auc:.3f}"
    console.print(
        f"{r.accounts} accounts with an outcome, {r.churned} churned ({overall:.1%}); "
        f"AUC of the raw value {raw} (above 0.5: higher values churn less)",
        soft_wrap=True,
    )
    table = Table(title="Churn by value", box=_box(console), title_justify="left")
    for name in ("Bin", "Values", "Accounts", "Churned", "Churn rate", "95% CI", "Mean score"):
        table.add_column(name, justify="left" if name in ("Bin", "Values") else "right", no_wrap=True)
    for c in r.cohorts:
        values = _g(c.low) if c.low == c.high else f"{_g(c.low)} - {_g(c.high)}"
        mean = "" if c.score_mean is None else f"{c.score_mean:.1f}"
        table.add_row(c.rate.label, values, *_rate_cells(c.rate), mean)
    if r.missing.accounts:
        table.add_row("", r.missing.label, *_rate_cells(r.missing), "")
    console.print(table)
    if r.suggestion is not None:
        _render_suggestion(r.suggestion, console)
    render_notes(r.warnings, console)


def render_notes(warnings: list[Problem], console: Console) -> None:
    """The report's warnings, one per line."""
    for warning in warnings:
        console.print(Text(f"! {warning}", style="yellow" if console.is_terminal else ""), soft_wrap=True)


def _render_suggestion(s: Suggestion, console: Console) -> None:
    table = Table(title="Suggested bands (where churn changes most)", box=_box(console), title_justify="left")
    for name in ("Values", "Up to", "Score", "Accounts", "Churned", "Churn rate", "95% CI"):
        table.add_column(name, justify="left" if name == "Values" else "right", no_wrap=True)
    for band in s.bands:
        upto = "rest" if band.upto is None else _g(band.upto)
        table.add_row(band.rate.label, upto, _g(band.score), *_rate_cells(band.rate))
    console.print(table)
    console.print(f"  {s.bands_yaml}", soft_wrap=True, highlight=False, markup=False)
    if s.linear_yaml:
        console.print(f"  {s.linear_yaml}", soft_wrap=True, highlight=False, markup=False)
    console.print(Text(f"Note: {s.note}", style="" if s.clear else "yellow"), soft_wrap=True)


def _render_correlated(r: BacktestReport, console: Console) -> None:
    threshold = r.settings["correlation"]["threshold"]
    title = f"Correlated metrics (|r| > {threshold:g}, Pearson on the scores): candidates to merge into one group"
    if not r.correlated:
        console.print(f"{title}: none", soft_wrap=True)
        return
    console.print(title, soft_wrap=True)
    for i, group in enumerate(r.correlated, 1):
        console.print(Text(f"  {i}. {_correlated_line(group)}"), soft_wrap=True)


def _correlated_line(group: Correlated) -> str:
    where = f" (groups: {', '.join(group.groups)})" if group.groups else ""
    links = ", ".join(f"{a}~{b} {r:.2f}" for a, b, r in group.pairs[:6])
    more = f", +{len(group.pairs) - 6} more" if len(group.pairs) > 6 else ""
    return f"{', '.join(group.metrics)}{where}: {links}{more}"


def _auc_table(title: str, rows: list[AucRow], console: Console, with_group: bool) -> Table:
    table = Table(title=title, box=_box(console), title_justify="left")
    table.add_column("Metric" if with_group else "Group")
    if with_group:
        table.add_column("Group")
    for name in ("Accounts", "Churned", "AUC", "95% CI", *(["Raw"] if with_group else []), "Verdict"):
        table.add_column(name, justify="left" if name == "Verdict" else "right", no_wrap=True)
    for row in rows:
        cells: list[str | Text] = [row.name, *([row.group or "(no group)"] if with_group else [])]
        cells += [str(row.accounts), str(row.churned), _fixed(row.auc), _interval(row.low, row.high, "{:.3f}")]
        if with_group:
            cells.append(_fixed(row.raw_auc))
        cells.append(Text(row.verdict, style=VERDICT_STYLES.get(row.verdict, "")))
        table.add_row(*cells)
    return table


def _rates_table(
    title: str, first: str, rows: list[RateRow], console: Console, colours: dict[str, str] | None = None
) -> Table:
    table = Table(title=title, box=_box(console), title_justify="left")
    table.add_column(first)
    with_scores = any(row.score_min is not None for row in rows)
    if with_scores:
        table.add_column("Scores", justify="right", no_wrap=True)
    for name in ("Accounts", "Churned", "Churn rate", "95% CI"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        label = Text(row.label, style=STYLES.get((colours or {}).get(row.label, ""), ""))
        scores = [f"{row.score_min:.1f}-{row.score_max:.1f}"] if with_scores and row.score_min is not None else []
        table.add_row(label, *scores, *_rate_cells(row))
    return table


def _rate_cells(row: RateRow) -> list[str]:
    rate = "" if row.rate is None else f"{row.rate:.1%}"
    return [str(row.accounts), str(row.churned), rate, _interval(row.low, row.high, "{:.1%}")]


def _colours(report: BacktestReport) -> dict[str, str]:
    return report.segment_colours


def _interval(low: float | None, high: float | None, fmt: str) -> str:
    return "" if low is None or high is None else f"{fmt.format(low)}-{fmt.format(high)}"


def _fixed(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _g(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _sep(console: Console) -> str:
    return "  ·  " if console.is_terminal else "  |  "


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal else box.ASCII2
