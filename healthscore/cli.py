"""The command line: parse options, call the library, render, map errors to exit codes.

Heavy modules (pandas, the pipeline) are imported inside the commands so that
`healthscore --help` stays fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TextIO

import typer

from healthscore import __version__
from healthscore.allocator import keep_freed_memory, numpy_settings
from healthscore.cli_backtest import backtest, cohorts
from healthscore.cli_calibrate import calibrate
from healthscore.cli_common import ConfigOption, HeaderStyle, LogFormat, errors_to_exit
from healthscore.cli_explain import explain
from healthscore.cli_history import backfill, trend
from healthscore.cli_validate import validate

if TYPE_CHECKING:
    from healthscore.config import Config
    from healthscore.pipeline import Progress
    from healthscore.summary import Summary

app = typer.Typer(
    name="healthscore",
    help="Score B2B customer health from CRM, support, survey and usage exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"healthscore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Score B2B customer health from CRM, support, survey and usage exports."""


@app.command()
def score(
    config: ConfigOption,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Scoring date, YYYY-MM-DD or 'today' (default: the config's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: outputs.dir of the config).")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write only the scored table to this file, or '-' for stdout."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Format for -o: csv, parquet, json, jsonl or xlsx.")
    ] = None,
    excel: Annotated[
        bool,
        typer.Option(
            "--excel/--no-excel", help="Start CSV files with a UTF-8 BOM so Excel reads them (never on stdout)."
        ),
    ] = True,
    allow_formulas: Annotated[
        bool,
        typer.Option(
            "--allow-formulas",
            help="Keep text starting with = + - @ as is (default: prefixed with ' in CSV, text in xlsx).",
        ),
    ] = False,
    headers: Annotated[
        HeaderStyle, typer.Option("--headers", help="CSV/XLSX column headers: names, or the labels of the config.")
    ] = "names",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No summary; only warnings and errors (on stderr).")
    ] = False,
    json_summary: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Roll the summary up by an accounts column (region, tier, owner ...)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=0, help="How many of the lowest-scoring accounts the summary lists.")
    ] = 10,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    fail_on_warnings: Annotated[
        bool,
        typer.Option("--fail-on-warnings", help="Exit 65, writing nothing, if the run has any data warning."),
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option("--log-format", help="text (a summary) or json (one JSON object per line on stderr)."),
    ] = "text",
) -> None:
    """Score every account and write the scored table, run.json and a summary."""
    with errors_to_exit(debug, log_format):
        from healthscore.config import load_config
        from healthscore.errors import UsageError
        from healthscore.lock import output_lock
        from healthscore.outputs import TableOptions, format_of, write_outputs, write_single
        from healthscore.pipeline import RunResult, run
        from healthscore.quality import enforce_checks
        from healthscore.summary import check_rollup_column

        if output is not None and out is not None:
            raise UsageError("give either --out DIR (all outputs) or -o FILE (the table only), not both")
        if output is not None:
            format_of(output, fmt)  # a bad --format fails before any work
        elif fmt is not None:
            raise UsageError("--format goes with -o FILE; for --out, set outputs.formats in the config")
        started = dt.datetime.now(dt.UTC)
        options = TableOptions(excel=excel, allow_formulas=allow_formulas, labels=headers == "labels")
        cfg = load_config(config)
        if by is not None:
            check_rollup_column(cfg, by)  # before any work
        bars = log_format == "text" and not quiet

        def scored() -> RunResult:
            with _progress(bars) as hook:  # the inputs' SHA-256 only for run.json, which -o does not write
                result = run(cfg, as_of, progress=hook, top=top, by=by, digests=output is None)
            _import_meanwhile(RENDERER if log_format == "text" else None)  # while the outputs are written
            return result

        if output is not None:  # one file, written atomically: no manifest, no history, no lock
            result = scored()
            enforce_checks(result, cfg, fail_on_warnings)
            written = write_single(result, cfg, output, fmt, sys.stdout.buffer, options)
            paths, removed = ([written] if written else []), []
        else:
            directory = out if out is not None else cfg.resolve(cfg.outputs.dir)
            with output_lock(directory), _history_lock(cfg, directory):  # a second run stops here, exit 75
                removed = _clean_temps(cfg, directory)
                result = scored()
                enforce_checks(result, cfg, fail_on_warnings)
                paths = write_outputs(result, cfg, str(out) if out else None, started, options)
        _note_removed(removed, quiet, log_format)
        if log_format == "json":
            from healthscore.eventlog import log_run

            log_run(sys.stderr, result, paths)
            if json_summary and not quiet:
                _report(result.summary, [], sys.stderr if output == "-" else sys.stdout, quiet, True)
            return
        summary_stream = sys.stderr if output == "-" else sys.stdout
        _report(result.summary, paths, summary_stream, quiet, json_summary)


RENDERER = "healthscore.render"  # the summary's and the warnings' rendering (with rich: 0.03 s to import)


def _import_meanwhile(module: str | None) -> None:
    """Begin importing `module` on another thread (`parallel.begun`): the outputs are written
    meanwhile, mostly in Arrow without the GIL (M's scores: 0.15 s). The command's own
    import then waits for it, or raises its error; the thread's is never shown."""
    if module is not None:
        import importlib

        from healthscore.parallel import begun

        begun(importlib.import_module, [module])


@contextlib.contextmanager
def _progress(wanted: bool) -> Iterator[Progress | None]:
    """Progress bars on stderr when `wanted` and stderr is a terminal; else no hook (and,
    unless `wanted`, no import of rich: quiet runs from cron draw nothing)."""
    if wanted:
        from healthscore.render import make_console, progress_bars, shows_progress

        if shows_progress(sys.stderr):
            with progress_bars(make_console(sys.stderr)) as hook:
                yield hook
            return
    yield None


@contextlib.contextmanager
def _history_lock(cfg: Config, directory: Path) -> Iterator[None]:
    """Also hold the history folder's lock (backfill takes it), unless it is the output folder."""
    from healthscore.history import history_root
    from healthscore.lock import output_lock

    if cfg.history is None or history_root(cfg).resolve() == Path(directory).resolve():
        yield
        return
    with output_lock(history_root(cfg)):
        yield


def _clean_temps(cfg: Config, directory: Path) -> list[Path]:
    """Remove temp files that killed runs left beside the outputs (we hold the lock) and in
    history folders (not covered by the lock: only those over an hour old)."""
    from healthscore.lock import clean_stale_temps

    removed = clean_stale_temps(directory)
    if cfg.history is not None:
        for folder in sorted(cfg.resolve(cfg.history.path).glob("as_of=*")):
            removed += clean_stale_temps(folder, older_than=3600)
    return removed


def _note_removed(removed: list[Path], quiet: bool, log_format: LogFormat) -> None:
    """Say on stderr which stale temp files were removed."""
    if not removed:
        return
    if log_format == "json":
        from healthscore.eventlog import emit

        emit(sys.stderr, "info", "stale_temps_removed", paths=[str(p) for p in removed])
    elif not quiet:
        typer.echo(f"removed {len(removed)} temp file(s) left by a killed run: {removed[0].parent}", err=True)


@app.command()
def init(
    directory: Annotated[
        Path,
        typer.Argument(help="Folder of exports (CSV, TSV, Parquet, XLSX, JSON lines; .gz too).", show_default=False),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The config file to write.")] = Path("health.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the config file if it exists.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
) -> None:
    """Look at a folder of exports and write a commented config that `score` runs as-is."""
    with errors_to_exit(debug):
        from healthscore.init import refuse_overwrite, report, survey, write_config

        refuse_overwrite(output, force)  # before reading anything
        guesses = survey(directory)
        for line in report(guesses):  # first, so a failed write still shows what was found
            typer.echo(line)
        write_config(guesses, directory, output, force=force)
        typer.echo(f"wrote {output}: check the lines marked CHECK:, then run: healthscore score -c {output}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config file (for editor completion and checks)."""
    with errors_to_exit():
        import json

        from healthscore.config import config_schema

        typer.echo(json.dumps(config_schema(), indent=2, ensure_ascii=False))


def _report(summary: Summary, paths: list[Path], stream: TextIO, quiet: bool, as_json: bool) -> None:
    """Print the summary (as text or JSON) and the files written, unless quiet; data warnings
    go to stderr in any case (in the JSON summary too)."""
    import json

    from healthscore.render import make_console, render_summary, render_warnings  # (RENDERER)

    render_warnings(summary, make_console(sys.stderr))
    if quiet:
        return
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False), file=stream)
        return
    console = make_console(stream)
    render_summary(summary, console)
    for path in paths:
        console.print(f"wrote {path}", highlight=False)


app.command()(validate)
app.command()(explain)
app.command()(backtest)
app.command()(cohorts)
app.command()(calibrate)
app.command()(trend)
app.command()(backfill)


def main() -> None:
    """Entry point of the `healthscore` command: runs it, then ends the process (`_end`)."""
    keep_freed_memory()  # a process that exits when done: freed memory reused, not zeroed again
    numpy_settings()  # before numpy loads
    try:
        app(prog_name="healthscore")
    except SystemExit as done:  # how click ends every command, with its status
        _end(done.code)
    _end(0)


def _end(code: object) -> NoReturn:
    """End the process with SystemExit's `code` (None, a status, or a message for stderr
    and status 1) once stdout and stderr are flushed, without the interpreter's teardown
    of every module and object, which cost 0.11-0.14 s of a 3.4 s run (10M events): by now
    every file is written and closed, and there is nothing left to run."""
    status = 0 if code is None else code if isinstance(code, int) else 1
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError):  # the reader went away (`| head`): it wants no more
            stream.flush()
    os._exit(status)
