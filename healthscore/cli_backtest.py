"""The `healthscore backtest` and `healthscore cohorts` commands: does the score see churn coming?

Both score the accounts from the exports as of a date (the config's, or --as-of), line the
scores up with an outcomes file (one row per account: a churn flag, or a churn date), and
report; `backtest` also writes backtest.json and backtest_metrics.csv. Kept free of pandas
at import time so that `healthscore --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from healthscore.cli_common import (
    AsOfOption,
    ChurnColumnOption,
    ConfigOption,
    DateColumnOption,
    DebugOption,
    HorizonOption,
    IdColumnOption,
    OutcomesOption,
    errors_to_exit,
    option_date,
)

if TYPE_CHECKING:
    import pandas as pd

    from healthscore.backtest import BacktestReport
    from healthscore.config import Config
    from healthscore.errors import Problem
    from healthscore.pipeline import RunResult

BACKTEST_JSON, BACKTEST_CSV = "backtest.json", "backtest_metrics.csv"

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")]


def backtest(
    config: ConfigOption,
    outcomes: OutcomesOption,
    as_of: AsOfOption = None,
    id_column: IdColumnOption = "account_id",
    churn_column: ChurnColumnOption = "churned",
    date_column: DateColumnOption = None,
    horizon_end: HorizonOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory for backtest.json and backtest_metrics.csv.")
    ] = None,
    min_auc: Annotated[
        float | None,
        typer.Option("--min-auc", min=0, max=1, help="Exit 65 (writing nothing) when the ROC AUC is below this."),
    ] = None,
    corr_threshold: Annotated[
        float,
        typer.Option("--corr-threshold", min=0, max=1, help="List metrics whose scores correlate above this |r|."),
    ] = 0.7,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples for intervals.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (same seed, same intervals).")] = 20260131,
    json_report: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Does the score see churn coming? AUC, churn by segment and decile, lift, per-metric AUC."""
    with errors_to_exit(debug):
        from healthscore.backtest import backtest as measure
        from healthscore.config import load_config
        from healthscore.errors import DataError, Problem

        cfg = load_config(config)
        result, churned = _scored_with_outcomes(
            cfg, as_of, outcomes, id_column, churn_column, date_column, option_date(horizon_end, "--horizon-end")
        )
        report = measure(
            result.table,
            churned,
            cfg,
            as_of=result.as_of,
            score_source=f"scores computed from the exports as of {result.as_of.isoformat()}",
            resamples=resamples,
            seed=seed,
            threshold=corr_threshold,
        )
        report.settings["outcomes"] = {
            "path": str(outcomes),
            "id_column": id_column,
            "churn": f"date column {date_column!r}" if date_column else f"flag column {churn_column!r}",
            "horizon_end": horizon_end,
        }
        if date_column is not None:
            report.warnings += _early_churn(cfg, result, outcomes, id_column, date_column)
        auc = report.overall.auc or 0.0
        below = min_auc is not None and auc < min_auc
        paths = [] if below else _write(cfg, out, report)
        _show(report, paths, json_report)
        if below:
            raise DataError(
                f"ROC AUC {auc:.3f} is below --min-auc {min_auc:g}",
                [Problem("nothing was written", str(outcomes), "look at the per-metric AUC table for weak metrics")],
            )


def cohorts(
    metric: Annotated[str, typer.Argument(help="The metric whose raw value is cut into bins.", show_default=False)],
    config: ConfigOption,
    outcomes: OutcomesOption,
    as_of: AsOfOption = None,
    id_column: IdColumnOption = "account_id",
    churn_column: ChurnColumnOption = "churned",
    date_column: DateColumnOption = None,
    horizon_end: HorizonOption = None,
    bins: Annotated[int, typer.Option("--bins", min=2, max=100, help="How many bins (by rank; ties share one).")] = 10,
    suggest: Annotated[
        bool, typer.Option("--suggest", help="Propose band edges (and linear anchors) where churn changes most.")
    ] = False,
    bands: Annotated[int, typer.Option("--bands", min=2, max=10, help="How many bands --suggest proposes.")] = 3,
    json_report: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Churn rate by bin of one metric's raw value, to choose band thresholds and linear anchors."""
    with errors_to_exit(debug):
        from healthscore.cohorts import check_metric
        from healthscore.cohorts import cohorts as cut
        from healthscore.config import load_config
        from healthscore.errors import UsageError

        cfg = load_config(config)
        if metric not in cfg.metrics:  # before any work
            raise UsageError(f"unknown metric {metric!r}; the config's metrics: {', '.join(cfg.metrics)}")
        result, churned = _scored_with_outcomes(
            cfg, as_of, outcomes, id_column, churn_column, date_column, option_date(horizon_end, "--horizon-end")
        )
        check_metric(result.table, cfg, metric)
        report = cut(
            result.table, churned, cfg, metric, as_of=result.as_of, bins=bins, bands=bands if suggest else None
        )
        if json_report:
            import json

            typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
            return
        from healthscore.render import make_console
        from healthscore.render_backtest import render_cohorts

        render_cohorts(report, make_console(sys.stdout))


def _scored_with_outcomes(
    cfg: Config,
    as_of: str | None,
    outcomes: Path,
    id_column: str,
    churn_column: str,
    date_column: str | None,
    horizon: dt.date | None,
) -> tuple[RunResult, pd.Series]:
    """Score the accounts as of the date, and read each one's outcome (<NA> when unlisted)."""
    from healthscore.outcomes import load_outcomes, outcomes_file
    from healthscore.pipeline import resolve_as_of, run
    from healthscore.presets import with_preset
    from healthscore.render import make_console, render_warnings

    outcomes_file(outcomes)  # a missing file stops before the scoring run
    result = run(cfg, resolve_as_of(cfg, as_of))
    render_warnings(result.summary, make_console(sys.stderr))
    spine = with_preset(cfg.sources[cfg.accounts.source])
    churned = load_outcomes(
        outcomes,
        result.table,
        id_column=id_column,
        churn_column=churn_column,
        date_column=date_column,
        horizon_end=horizon,
        key_transform=spine.key_transform,
    )
    return result, churned


def _early_churn(cfg: Config, result: RunResult, outcomes: Path, id_column: str, date_column: str) -> list[Problem]:
    """A warning when accounts churned on or before the scoring date: their score may already
    reflect the churn (a leak that flatters the backtest)."""
    from healthscore.errors import Problem
    from healthscore.outcomes import load_outcomes
    from healthscore.presets import with_preset

    spine = with_preset(cfg.sources[cfg.accounts.source])
    early = load_outcomes(
        outcomes,
        result.table,
        id_column=id_column,
        date_column=date_column,
        horizon_end=result.as_of,
        key_transform=spine.key_transform,
    )
    count = int(early.fillna(False).sum())
    if not count:
        return []
    return [
        Problem(
            f"{count} account(s) churned on or before the scoring date {result.as_of.isoformat()}: "
            "their score may already show the churn",
            str(outcomes),
            "score as of a date before the outcomes (--as-of)",
        )
    ]


def _write(cfg: Config, out: Path | None, report: BacktestReport) -> list[Path]:
    """backtest.json and backtest_metrics.csv, written atomically under the run lock."""
    import json

    from healthscore.lock import output_lock
    from healthscore.outputs import write_files

    directory = out if out is not None else cfg.resolve(cfg.outputs.dir)
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    table = report.metrics_frame().to_csv(index=False, lineterminator="\n")
    contents = {directory / BACKTEST_JSON: text.encode("utf-8"), directory / BACKTEST_CSV: table.encode("utf-8")}
    with output_lock(directory):
        write_files(contents)
    return list(contents)


def _show(report: BacktestReport, paths: list[Path], as_json: bool) -> None:
    """The report on stdout, as tables or JSON, then the files written."""
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    from healthscore.render import make_console
    from healthscore.render_backtest import render_backtest

    console = make_console(sys.stdout)
    render_backtest(report, console)
    for path in paths:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
