"""What every command shares: the common options, and errors mapped to exit codes.

Kept free of pandas so that `healthscore --help` stays fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer

from healthscore.allocator import arrow_on_jemalloc
from healthscore.errors import HealthscoreError

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.", show_default=False)]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Scoring date, YYYY-MM-DD or 'today' (default: the config's).")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]

# the churn outcomes of backtest, cohorts and calibrate
OutcomesOption = Annotated[
    Path,
    typer.Option(
        "--outcomes",
        help="CSV/Parquet/XLSX/JSONL file of outcomes: one row per account, with a churn flag or a churn date.",
        show_default=False,
    ),
]
IdColumnOption = Annotated[str, typer.Option("--id-column", help="The outcomes file's account id column.")]
ChurnColumnOption = Annotated[
    str,
    typer.Option("--churn-column", help="The churn flag column: true/false, yes/no, 1/0 or churned/renewed."),
]
DateColumnOption = Annotated[
    str | None,
    typer.Option("--date-column", help="Use a churn date column instead of a flag: churned when the date is given."),
]
HorizonOption = Annotated[
    str | None,
    typer.Option("--horizon-end", help="With --date-column: only churn dates up to this date (YYYY-MM-DD) count."),
]


def option_date(text: str | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD option as a date (UsageError, exit 2, if it is not one)."""
    if text is None:
        return None
    from healthscore.errors import UsageError

    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date like 2026-06-30, got {text!r}") from None


LogFormat = Literal["text", "json"]
HeaderStyle = Literal["names", "labels"]


@contextlib.contextmanager
def errors_to_exit(debug: bool = False, log_format: LogFormat = "text") -> Iterator[None]:
    """Turn library errors into a message on stderr and the exit code of PRODUCT.md section 6.
    Every command's work runs inside it, so it first puts Arrow on jemalloc
    (`allocator.arrow_on_jemalloc`), which help, never reaching it, does not import."""
    arrow_on_jemalloc()
    try:
        yield
    except HealthscoreError as exc:
        if log_format == "json":
            from healthscore.eventlog import log_error

            log_error(sys.stderr, exc)
        else:
            from healthscore.render import make_console, render_error

            render_error(exc, make_console(sys.stderr))
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        _quiet_broken_pipe()
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if debug:
            raise
        if log_format == "json":
            from healthscore.eventlog import emit

            emit(sys.stderr, "error", "internal_error", exit_code=1, kind=type(exc).__name__)
            raise typer.Exit(1) from None
        typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        typer.echo("run again with --debug to see the traceback, and please report it", err=True)
        raise typer.Exit(1) from None


def _quiet_broken_pipe() -> NoReturn:
    """The reader went away (`| head`): stop quietly, without a traceback at interpreter exit."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(0)
