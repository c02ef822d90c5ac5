"""`--log-format json`: one JSON object per line on stderr (level, event, and counts), for
log shippers. No colours, no free text to parse."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, TextIO

from healthscore.errors import HealthscoreError
from healthscore.pipeline import RunResult


def emit(stream: TextIO, level: str, event: str, **fields: Any) -> None:
    """Write one log line: time, level, event, then the fields (JSON-ready values)."""
    record = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "level": level, "event": event}
    record.update(fields)
    stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    stream.flush()


def log_run(stream: TextIO, result: RunResult, paths: list[Path]) -> None:
    """The events of a finished run: one per source read, per warning, per file written, then
    `done` with the segment counts."""
    for name, data in result.sources.items():
        join = result.joins.get(name)
        emit(
            stream,
            "info",
            "source_read",
            source=name,
            files=len(data.files),
            rows=data.rows_read,
            rejected=data.rejected,
            dropped=data.dropped,
            unmatched_keys=join.unmatched_keys if join else 0,
            unmatched_rows=join.unmatched_rows if join else 0,
        )
    for warning in result.summary.warnings:
        emit(stream, "warning", "data_warning", **warning.to_dict())
    for path in paths:
        emit(stream, "info", "output_written", path=str(path))
    summary = result.summary
    emit(
        stream,
        "info",
        "done",
        as_of=result.as_of.isoformat(),
        accounts=summary.accounts,
        scored=summary.scored,
        segments={row.name: row.accounts for row in summary.segments},
        warnings=len(summary.warnings),
        seconds=result.timings.get("total"),
    )


def log_error(stream: TextIO, error: HealthscoreError) -> None:
    """The event of a run that stopped on an error, with its exit code and every problem."""
    emit(
        stream,
        "error",
        "failed",
        exit_code=error.exit_code,
        kind=error.title,
        message=error.message,
        problems=[p.to_dict() for p in error.problems],
    )
