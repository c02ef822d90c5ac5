"""Rendering a calibration with rich: the fitted weights beside the old ones, and the
cross-validated AUCs. Plain ASCII when the stream is not a terminal."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthscore.calibrate import Calibration


def render_calibration(calibration: Calibration, output: Path, console: Console) -> None:
    """Print the AUCs, the per-metric and per-group weights, notes, and the file written."""
    c = calibration
    as_of = f"  as of {c.as_of.isoformat()}" if c.as_of else ""
    console.print(
        Text.assemble(
            ("healthscore calibrate", "bold"),
            f"{as_of}  ·  {c.accounts} accounts with an outcome and a score, {c.churned} churned",
        )
    )
    better = c.cv_auc > c.cv_auc_current
    console.print(
        Text.assemble(
            f"Cross-validated AUC ({c.folds} folds, nested): ",
            (f"{c.cv_auc:.3f}", "bold green" if better else "bold yellow"),
            f" with the fitted weights vs {c.cv_auc_current:.3f} with the current config",
        )
    )
    console.print(f"lambda {c.lam:.3g}, chosen by {c.folds}-fold cross-validation", highlight=False)
    console.print(_metrics_table(c, console))
    console.print(_groups_table(c, console))
    skipped = [
        f"{n} {what}"
        for n, what in ((c.without_outcome, "accounts without an outcome"), (c.unscored, "unscored accounts"))
        if n
    ]
    if skipped:
        console.print(f"left out: {', '.join(skipped)}", highlight=False)
    for note in c.notes:
        console.print(Text(f"note: {note}"), soft_wrap=True)
    console.print(f"wrote {output}", highlight=False)


def _box(console: Console) -> box.Box:
    return box.SIMPLE_HEAD if console.is_terminal else box.ASCII2


def _metrics_table(c: Calibration, console: Console) -> Table:
    table = Table(title="Weights (% of the score)", box=_box(console), title_justify="left")
    for name, justify in (("Metric", "left"), ("Group", "left"), ("Old", "right"), ("New", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("Beta", justify="right")
    table.add_column("Flag")
    for m in c.metrics:
        flag = Text(m.flag, style="yellow") if m.flag else ""
        table.add_row(m.metric, ", ".join(m.groups), f"{m.old_share:.1f}", f"{m.new_share:.1f}", f"{m.beta:+.3f}", flag)
    return table


def _groups_table(c: Calibration, console: Console) -> Table:
    table = Table(title="Group weights", box=_box(console), title_justify="left")
    table.add_column("Group")
    table.add_column("Old", justify="right")
    table.add_column("New", justify="right")
    table.add_column("Flag")
    for g in c.groups:
        table.add_row(g.group, f"{g.old_weight:.1f}", f"{g.new_weight:.1f}", Text(g.flag, style="yellow"))
    return table
