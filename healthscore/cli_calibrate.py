"""The `healthscore calibrate` command: fit the weights to churn outcomes, write a new config.

Kept free of pandas at import time; the work is in `healthscore.calibrate`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from healthscore.cli_common import AsOfOption, ConfigOption, DebugOption, errors_to_exit


def calibrate(
    config: ConfigOption,
    outcomes: Annotated[
        Path,
        typer.Option(
            "--outcomes",
            help="Churn outcomes per account (CSV, Parquet, XLSX or JSON lines): an id and a churned flag.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The calibrated config to write, beside the input config.", show_default=False
        ),
    ],
    as_of: AsOfOption = None,
    id_column: Annotated[str, typer.Option("--id-column", help="The outcomes' account id column.")] = "account_id",
    churn_column: Annotated[
        str, typer.Option("--churn-column", help="The outcomes' churn flag column (yes/no, true/false, 1/0).")
    ] = "churned",
    date_column: Annotated[
        str | None,
        typer.Option("--date-column", help="Use a churn date column instead of a flag: churned when it has a date."),
    ] = None,
    horizon_end: Annotated[
        str | None,
        typer.Option("--horizon-end", help="With --date-column: only churn dates up to this date (YYYY-MM-DD) count."),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds of the cross-validation.")] = 5,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the calibration as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Fit group and metric weights to churn outcomes and write them into a copy of the config."""
    with errors_to_exit(debug):
        from healthscore.calibrate import calibrate_run, check_calibratable, check_output, write_calibrated
        from healthscore.config import load_config
        from healthscore.outcomes import load_outcomes
        from healthscore.pipeline import run
        from healthscore.render import make_console, render_warnings

        horizon = _date(horizon_end)  # a bad date fails before any work
        cfg = load_config(config)
        check_calibratable(cfg)
        check_output(cfg, config, output, force)  # before any work
        result = run(cfg, as_of)
        churned = load_outcomes(
            outcomes,
            result.table,
            id_column=id_column,
            churn_column=churn_column,
            date_column=date_column,
            horizon_end=horizon,
        )
        fitted = calibrate_run(cfg, result, churned, folds=folds)
        written = write_calibrated(config, output, fitted, outcomes)
        render_warnings(result.summary, make_console(sys.stderr))
        if json_out:
            typer.echo(json.dumps({**fitted.to_dict(), "output": str(written)}, indent=2, ensure_ascii=False))
            return
        from healthscore.render_calibrate import render_calibration

        render_calibration(fitted, written, make_console(sys.stdout))


def _date(text: str | None) -> dt.date | None:
    """--horizon-end as a date; UsageError (2) when it is not one."""
    if text is None:
        return None
    from healthscore.errors import UsageError

    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--horizon-end must be a date like 2026-12-31, got {text!r}") from None
