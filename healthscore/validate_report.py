"""What `healthscore validate` reports, as plain data: the report types and exit codes.

A `ValidationReport` holds one `SourceReport` per source read (its files, rows, time
range and `KeyFacts`), the `WindowCoverage` of each windowed metric, the `Issue`s that
would stop `score` and the `ValidationWarning`s; `to_dict()` is what `validate --json`
prints and `render_validate` draws the rest. Building the report is `validate.py`'s job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from healthscore.errors import DataError, HealthscoreError, Problem

EXIT_PRIORITY = (78, 66, 65)  # the code a report exits with when it holds several kinds of problem
EXIT_MEANINGS = {
    0: "score would run",
    2: "usage error",
    65: "data error: input rows or values unusable",
    66: "input missing or empty",
    73: "output cannot be created",
    78: "config error",
}

Status = Literal["ok", "warn", "error"]
WindowStatus = Literal["ok", "partial", "empty"]


@dataclass(frozen=True)
class Issue:
    """A problem that would stop `score`: its exit code and title, the source it belongs to
    (None for the config or the run as a whole), what is wrong, where, how to fix it, and the
    details an error carried."""

    exit_code: int
    title: str
    message: str
    source: str | None = None
    where: str = ""
    hint: str = ""
    details: tuple[Problem, ...] = ()

    @classmethod
    def of_error(cls, error: HealthscoreError, source: str | None = None) -> Issue:
        """The issue of a raised error, with every problem it lists as a detail."""
        return cls(error.exit_code, error.title, error.message, source, details=error.problems)

    @classmethod
    def of_problem(cls, problem: Problem, source: str | None, kind: type[HealthscoreError] = DataError) -> Issue:
        """An issue from one Problem (a broken check, say), with the exit code of `kind`."""
        return cls(kind.exit_code, kind.title, problem.message, source, problem.where, problem.hint)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "exit_code": self.exit_code,
            "title": self.title,
            "source": self.source,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
            "details": [p.to_dict() for p in self.details],
        }


@dataclass(frozen=True)
class ValidationWarning:
    """A data warning (exit 0 unless warnings fail the run), with the source it is about."""

    message: str
    where: str = ""
    hint: str = ""
    source: str | None = None

    @classmethod
    def of(cls, problem: Problem, source: str | None) -> ValidationWarning:
        """The warning of a Problem, tagged with its source."""
        return cls(problem.message, problem.where, problem.hint, source)

    @property
    def problem(self) -> Problem:
        """The warning as a Problem, as `score` reports it."""
        return Problem(self.message, self.where, self.hint)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {"source": self.source, **self.problem.to_dict()}


@dataclass(frozen=True)
class FileFacts:
    """One file of a source as read: rows (rejected ones included) and rejected rows."""

    path: str
    rows: int
    rejected: int


@dataclass(frozen=True)
class KeyFacts:
    """How a source's keys meet the accounts: distinct keys and rows (with a key) found among
    the accounts' keys; for the accounts source itself, its blank and duplicate keys."""

    keys: int
    matched_keys: int
    rows: int
    matched_rows: int
    blank_keys: int = 0
    duplicate_keys: int = 0

    @property
    def key_share(self) -> float | None:
        """Matched share of the distinct keys (None without keys)."""
        return self.matched_keys / self.keys if self.keys else None

    @property
    def row_share(self) -> float | None:
        """Matched share of the rows (None without rows)."""
        return self.matched_rows / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, shares included."""
        return {
            "keys": self.keys,
            "matched_keys": self.matched_keys,
            "key_share": _rounded(self.key_share),
            "rows": self.rows,
            "matched_rows": self.matched_rows,
            "row_share": _rounded(self.row_share),
            "blank_keys": self.blank_keys,
            "duplicate_keys": self.duplicate_keys,
        }


@dataclass(frozen=True)
class SourceReport:
    """What validation found about one source; the facts are None when it could not be read."""

    name: str
    path: str
    is_accounts: bool
    status: Status
    table: str | None = None  # a `table:` source (engine ibis): its table, and `path` is ""
    files: tuple[FileFacts, ...] = ()
    rows: int | None = None  # data rows read, rejected ones included
    rows_used: int | None = None
    columns: tuple[str, ...] = ()
    time_column: str | None = None
    time_min: dt.datetime | None = None
    time_max: dt.datetime | None = None
    rows_after_as_of: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)
    keys: KeyFacts | None = None

    @property
    def read(self) -> bool:
        """Whether the source could be read."""
        return self.rows is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "name": self.name,
            "path": self.path,
            "table": self.table,
            "accounts": self.is_accounts,
            "status": self.status,
            "files": [{"path": f.path, "rows": f.rows, "rejected": f.rejected} for f in self.files],
            "rows": self.rows,
            "rows_used": self.rows_used,
            "columns": list(self.columns),
            "time": None
            if self.time_column is None
            else {
                "column": self.time_column,
                "min": _iso(self.time_min),
                "max": _iso(self.time_max),
                "rows_after_as_of": self.rows_after_as_of,
            },
            "rejected": dict(self.rejected),
            "dropped": dict(self.dropped),
            "keys": None if self.keys is None else self.keys.to_dict(),
        }


@dataclass(frozen=True)
class WindowCoverage:
    """A windowed metric's dates against its source's rows. `start`..`end` are the window's
    first and last days (end is as_of); a growth metric also compares the window before,
    from `previous_start`. `missing_days` counts the window's first days before the data starts."""

    metric: str
    source: str
    window: str
    start: dt.date
    end: dt.date
    rows: int
    status: WindowStatus
    previous_start: dt.date | None = None
    previous_rows: int | None = None
    missing_days: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "metric": self.metric,
            "source": self.source,
            "window": self.window,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "previous_start": _iso(self.previous_start),
            "previous_rows": self.previous_rows,
            "missing_days": self.missing_days,
            "status": self.status,
        }


@dataclass(frozen=True)
class ValidationReport:
    """Everything `validate` found: per source facts, window coverage, the problems that would
    stop `score` and the warnings; `accounts`, `scored` and `segments` come from the in-memory
    run, done only when nothing was wrong before it."""

    config: str
    as_of: dt.date | None
    sources: tuple[SourceReport, ...] = ()
    windows: tuple[WindowCoverage, ...] = ()
    issues: tuple[Issue, ...] = ()
    warnings: tuple[ValidationWarning, ...] = ()
    accounts: int | None = None
    scored: int | None = None
    segments: Mapping[str, int] | None = None

    @property
    def exit_code(self) -> int:
        """78 for a config problem, else 66 for a missing or empty input, else 65 for a data
        problem, else 0 (warnings alone do not fail)."""
        codes = {issue.exit_code for issue in self.issues}
        for code in EXIT_PRIORITY:
            if code in codes:
                return code
        return max(codes, default=0)

    @property
    def ok(self) -> bool:
        """Whether `score` would run."""
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what `validate --json` prints)."""
        return {
            "config": self.config,
            "as_of": _iso(self.as_of),
            "ok": self.ok,
            "exit_code": self.exit_code,
            "accounts": self.accounts,
            "scored": self.scored,
            "segments": None if self.segments is None else dict(self.segments),
            "sources": [s.to_dict() for s in self.sources],
            "windows": [w.to_dict() for w in self.windows],
            "problems": [i.to_dict() for i in self.issues],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def _rounded(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def exit_meaning(code: int) -> str:
    """What an exit code of `validate` means, in a few words."""
    return EXIT_MEANINGS.get(code, "error")
