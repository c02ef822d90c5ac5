"""The `healthscore explain` command: why one account has its score.

Kept free of pandas at import time so that `healthscore --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from healthscore.cli_common import AsOfOption, ConfigOption, DebugOption, errors_to_exit


def explain(
    account: Annotated[str, typer.Argument(help="The account id, as in the account_id column.", show_default=False)],
    config: ConfigOption,
    as_of: AsOfOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    debug: DebugOption = False,
) -> None:
    """Explain one account's score: each group and metric with its value, score, weight and the points it costs."""
    with errors_to_exit(debug):
        import json

        from healthscore.config import load_config
        from healthscore.explain import explain_account
        from healthscore.pipeline import run
        from healthscore.render import make_console, render_warnings
        from healthscore.render_explain import render_explanation

        cfg = load_config(config)
        result = run(cfg, as_of)
        explanation = explain_account(result, cfg, account)
        render_warnings(result.summary, make_console(sys.stderr))
        if json_out:
            typer.echo(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
        else:
            render_explanation(explanation, make_console(sys.stdout))
