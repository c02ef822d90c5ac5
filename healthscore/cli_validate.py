"""The `healthscore validate` command: check a config and every input, writing nothing.

Kept free of pandas at import time, like the other command modules.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from healthscore.cli_common import AsOfOption, ConfigOption, DebugOption, errors_to_exit


def validate(
    config: ConfigOption,
    as_of: AsOfOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON (config errors included).")
    ] = False,
    fail_on_warnings: Annotated[
        bool,
        typer.Option("--fail-on-warnings", help="Exit 65 if the run has any data warning, as `score` would."),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Check the config and every input without writing anything; exit 0 means `score` would run.

    Lists every problem of every source at once: files, columns, types, window dates, keys, checks.

    Exit 65 data error, 66 input missing or empty, 78 config error.
    """
    with errors_to_exit(debug):
        import json

        from healthscore.config import load_config
        from healthscore.render import make_console
        from healthscore.render_validate import render_validation
        from healthscore.validate import validate as check
        from healthscore.validate import validate_file

        if json_out:  # a config that cannot be loaded is a report too
            report = validate_file(config, as_of, fail_on_warnings=fail_on_warnings)
            print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:  # config errors go to stderr, as for every command
            report = check(load_config(config), as_of, fail_on_warnings=fail_on_warnings)
            render_validation(report, make_console(sys.stdout))
        if report.exit_code:
            raise typer.Exit(report.exit_code)
