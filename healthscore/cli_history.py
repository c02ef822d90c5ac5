"""The `healthscore trend` and `backfill` commands: the history of scores, read and seeded.

Kept free of pandas at import time, like the other command modules: the library
(`healthscore.trend`, `healthscore.backfill`) does the work, `render_trend` draws it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from healthscore.cli_common import ConfigOption, DebugOption, errors_to_exit

if TYPE_CHECKING:
    from healthscore.pipeline import Progress

TrendFormat = Literal["table", "csv", "json"]


def trend(
    config: ConfigOption,
    account: Annotated[
        str | None,
        typer.Argument(help="An account id: its scores over time (default: the whole portfolio).", show_default=False),
    ] = None,
    fmt: Annotated[
        TrendFormat,
        typer.Option("--format", help="table (with a chart), or csv / json on stdout for spreadsheets and scripts."),
    ] = "table",
    since: Annotated[
        str | None, typer.Option("--since", help="Only snapshots on or after this date (YYYY-MM-DD).")
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Show the history of scores: per as_of the segment counts and mean score, or one account's
    score, segment and group scores over time. Needs `history:` in the config (exit 78), and
    snapshots written by `score --out` or `backfill` (exit 66 without any)."""
    with errors_to_exit(debug):
        from healthscore.config import load_config
        from healthscore.trend import account_trend, parse_day, portfolio_trend, trend_bytes

        cfg = load_config(config)
        first = parse_day(since, "--since") if since is not None else None
        frame = portfolio_trend(cfg, first) if account is None else account_trend(cfg, account, first)
        if fmt != "table":
            sys.stdout.buffer.write(trend_bytes(frame, fmt))
            sys.stdout.flush()
            return
        from healthscore.render import make_console
        from healthscore.render_trend import render_account, render_portfolio

        console = make_console(sys.stdout)
        if account is None:
            render_portfolio(frame, cfg, console)
        else:
            render_account(frame, cfg, console)


def backfill(
    config: ConfigOption,
    from_: Annotated[
        str, typer.Option("--from", help="The first day that may be scored (YYYY-MM-DD).", show_default=False)
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The last day, always scored: YYYY-MM-DD or 'today' (default: the config's as_of, else today).",
        ),
    ] = None,
    every: Annotated[str, typer.Option("--every", help="Days apart, stepping back from --to: 1d, 7d, 2w, 1m.")] = "7d",
    force: Annotated[
        bool,
        typer.Option("--force", help="Rescore days already in the history, and replace days of another config."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No report; only warnings and errors.")] = False,
    debug: DebugOption = False,
) -> None:
    """Score past days from the same exports into the history (each day's windows end at that
    day): from --to back to --from every --every, oldest first. Days this config already scored
    are skipped, so a rerun resumes a stopped backfill and changes nothing; days scored by
    another config are refused unless --force."""
    with errors_to_exit(debug):
        from healthscore.backfill import BackfillDay
        from healthscore.backfill import backfill as run_backfill
        from healthscore.config import load_config
        from healthscore.render import make_console, shows_progress
        from healthscore.render_trend import render_backfill, render_backfill_day, render_problems

        cfg = load_config(config)
        console = make_console(sys.stdout)
        bars = not quiet and shows_progress(sys.stderr)

        def show(day: BackfillDay) -> None:
            if not (quiet or bars):  # off a terminal: one line per day as it is done
                render_backfill_day(day, console)

        with _progress(bars) as hook:
            report = run_backfill(cfg, from_, to, every, force=force, progress=hook, on_day=show)
        stderr = make_console(sys.stderr)
        render_problems(report.warnings, stderr)
        if report.removed and not quiet:
            stderr.print(f"removed {len(report.removed)} temp file(s) left by a killed run", highlight=False)
        if not quiet:
            render_backfill(report, console, days=bars)


@contextlib.contextmanager
def _progress(wanted: bool) -> Iterator[Progress | None]:
    """Progress bars on stderr when `wanted` (a terminal that takes colour); else no hook."""
    if not wanted:
        yield None
        return
    from healthscore.render import make_console, progress_bars

    with progress_bars(make_console(sys.stderr)) as hook:
        yield hook
