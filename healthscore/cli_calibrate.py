"""The `healthscore calibrate` command: fit the weights to churn outcomes, write a new config.

Kept free of pandas at import time; the work is in `healthscore.calibrate`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

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


def calibrate(
    config: ConfigOption,
    outcomes: OutcomesOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The calibrated config to write, beside the input config.", show_default=False
        ),
    ],
    as_of: AsOfOption = None,
    id_column: IdColumnOption = "account_id",
    churn_column: ChurnColumnOption = "churned",
    date_column: DateColumnOption = None,
    horizon_end: HorizonOption = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds of the cross-validation.")] = 5,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file if it exists.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the calibration as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Fit group and metric weights to churn outcomes and write them into a copy of the config."""
    with errors_to_exit(debug):
        from healthscore.calibrate import calibrate_run, check_calibratable
        from healthscore.calibrated_config import check_output, write_calibrated
        from healthscore.config import load_config
        from healthscore.outcomes import load_outcomes
        from healthscore.pipeline import run
        from healthscore.render import make_console, render_warnings

        horizon = option_date(horizon_end, "--horizon-end")  # a bad date fails before any work
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
