"""Backfill: score past dates from today's exports to seed the history on day one.

Every metric window ends at its as_of (rows dated later never count), so scoring the same
exports as of an earlier day gives that day's scores as a `score --as-of DAY --out DIR` run
would have written them. `backfill` reads the sources once, then scores each day oldest
first (segment hysteresis and the trend columns read the snapshot before) and writes only
that day's snapshot, atomically.

The days run from `end` back to `start` every `every`: `end` is always scored, `start` only
when it falls on that grid (`--from 2026-01-01 --to 2026-01-31 --every 7d` scores Jan 3,
10, 17, 24 and 31).

- Resumable and idempotent: a day whose snapshot was written by the same config (same
  config_sha256) is skipped, so a run stopped half-way continues where it stopped, and a
  rerun changes nothing; `force` rescores such days, to the same bytes when the exports
  did not change.
- Days scored by another config are refused (all named at once) unless `force`: a history
  that mixes two models shows score changes that only the model made.
- The history's run lock is held throughout, so two backfills never interleave.
- A day that fails (bad data, a broken `checks:` threshold) stops the backfill naming it;
  the days before it stay written and a rerun resumes from there.
- With `history.keep`, days older than `end - keep` are refused (they would be pruned at
  once), and snapshots older than that are pruned at the end, as a `score` run would.

Only dated rows go back in time: columns without a time (the CRM's ARR, onboarding share,
churn probability) hold today's export values on every backfilled day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from healthscore.aggregate import duration_offset
from healthscore.config import Config
from healthscore.errors import HealthscoreError, Problem, UsageError
from healthscore.history import history_root, prune, read_snapshot, snapshot_bytes, snapshot_path
from healthscore.lock import clean_stale_temps, output_lock
from healthscore.models import DURATION_RE
from healthscore.outputs import write_files
from healthscore.pipeline import Progress, read_sources, resolve_as_of, run
from healthscore.quality import enforce_checks
from healthscore.trend import parse_day, require_history

Status = Literal["scored", "rescored", "skipped"]
STAGE = "backfill"  # the progress stage of scoring one day
TEMP_AGE = 3600.0  # seconds: temp files older than this in a day's folder were left by a killed run


@dataclass(frozen=True)
class BackfillDay:
    """One day of a backfill: scored (new), rescored (replaced, with `force`) or skipped
    (already in the history with this config); counts only for the days scored."""

    as_of: dt.date
    status: Status
    accounts: int | None = None
    scored: int | None = None
    mean_score: float | None = None
    segments: dict[str, int] = field(default_factory=dict)


@dataclass
class BackfillReport:
    """What a backfill did: each day in date order, the data warnings of the days scored
    (each once), the snapshot folders pruned and the stale temp files removed."""

    root: Path
    days: list[BackfillDay] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    pruned: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """How many days have this status."""
        return sum(day.status == status for day in self.days)


def every_offset(every: str) -> pd.DateOffset | pd.Timedelta:
    """The step of `--every` (7d, 2w, 1m, 1y); UsageError (exit 2) for anything else."""
    match = DURATION_RE.match(every.strip())
    if match is None or int(match.group(1)) == 0:
        raise UsageError(f"--every must be a duration like 1d, 7d, 2w or 1m, got {every!r}")
    return duration_offset(every.strip())


def backfill_dates(start: dt.date, end: dt.date, every: str) -> list[dt.date]:
    """The days to score, oldest first: `end`, then every `every` back while not before `start`
    (so `end` is always one; months step back from `end` by calendar months: Jan 31, Dec 31, Nov 30)."""
    if start > end:
        raise UsageError(f"--from {start.isoformat()} is after --to {end.isoformat()}")
    step = every_offset(every)
    anchor = pd.Timestamp(end)
    days: list[dt.date] = []
    k = 0
    while (day := (anchor - step * k).date()) >= start:  # one step per day to score, not per row
        days.append(day)
        k += 1
    return days[::-1]


def backfill(
    config: Config,
    start: dt.date | str,
    end: dt.date | str | None = None,
    every: str = "7d",
    *,
    force: bool = False,
    progress: Progress | None = None,
    on_day: Callable[[BackfillDay], None] | None = None,
) -> BackfillReport:
    """Score each day of `backfill_dates(start, end, every)` into the history (see the module
    docstring); `end` defaults to the config's as_of, else today. `progress` is called as
    ('read', source, done, total) while reading and ('backfill', day, done, total) while
    scoring; `on_day` with each day once it is written or skipped. Raises UsageError for bad
    dates or days of another config, ConfigError without `history:`, and the failing day's
    error (its date first in the message) when a day cannot be scored."""
    require_history(config, "backfill")
    last = parse_day(end, "--to") if end is not None else resolve_as_of(config, None)
    days = backfill_dates(parse_day(start, "--from"), last, every)
    _refuse_pruned(config, days, last)
    report = BackfillReport(history_root(config))
    hook = progress or _no_progress
    announce = on_day or _no_day
    with output_lock(report.root):  # a second backfill stops here at once, exit 75
        existing = {day for day in days if snapshot_path(config, day).is_file()}
        skip = set() if force else _same_config(config, existing)
        todo = [day for day in days if day not in skip]
        for day in todo:
            report.removed += clean_stale_temps(snapshot_path(config, day).parent, older_than=TEMP_AGE)
        sources = read_sources(config, hook) if todo else {}
        warnings: dict[Problem, None] = {}
        done = 0
        for day in days:
            if day in skip:
                report.days.append(BackfillDay(day, "skipped"))
                announce(report.days[-1])
                continue
            hook(STAGE, day.isoformat(), done, len(todo))
            try:
                result = run(config, day, sources=sources)
                enforce_checks(result, config)
                write_files({snapshot_path(config, day): snapshot_bytes(result.table, config)})
            except HealthscoreError as exc:
                raise _stopped(exc, day, report) from None
            summary = result.summary
            warnings.update(dict.fromkeys(summary.warnings))
            report.days.append(
                BackfillDay(
                    day,
                    "rescored" if day in existing else "scored",
                    summary.accounts,
                    summary.scored,
                    None if summary.mean_score is None else round(summary.mean_score, 1),
                    {row.name: row.accounts for row in summary.segments},
                )
            )
            announce(report.days[-1])
            done += 1
        if todo:
            hook(STAGE, "", len(todo), len(todo))
        report.warnings = list(warnings)
        report.pruned = prune(config, last)
    return report


def _same_config(config: Config, existing: set[dt.date]) -> set[dt.date]:
    """The days whose snapshot this config wrote; UsageError naming every day another config
    wrote (a corrupt snapshot raises DataError naming it)."""
    columns = ("account_id", "config_sha256")
    hashes = {day: read_snapshot(config, day, columns).config_sha256 for day in sorted(existing)}
    other = sorted(day for day, sha in hashes.items() if sha != config.sha256)
    if other:
        shown = ", ".join(f"{day.isoformat()} (sha256 {hashes[day][:12] or 'unknown'})" for day in other)
        raise UsageError(
            f"{len(other)} day(s) in the history were scored by another config: {shown}",
            [
                Problem(
                    f"this config's sha256 is {config.sha256[:12] or 'unknown'}; a history mixing two models "
                    "shows changes that only the model made",
                    str(history_root(config)),
                    "add --force to rescore them with this config, or leave them out with --from/--to",
                )
            ],
        )
    return existing


def _refuse_pruned(config: Config, days: list[dt.date], last: dt.date) -> None:
    """UsageError when some days are older than `last - history.keep`: pruned as soon as written."""
    assert config.history is not None
    if config.history.keep is None:
        return
    cutoff = (pd.Timestamp(last) - duration_offset(config.history.keep)).date()
    old = [day for day in days if day < cutoff]
    if old:
        raise UsageError(
            f"{len(old)} day(s) before {cutoff.isoformat()} are older than history.keep ({config.history.keep}) "
            f"allows, and would be pruned at once (from {old[0].isoformat()})",
            [Problem("too far back", "history.keep", f"start --from at {cutoff.isoformat()} or later, or raise keep")],
        )


def _stopped(exc: HealthscoreError, day: dt.date, report: BackfillReport) -> HealthscoreError:
    """The failing day's error (same class, same exit code) with its date and what was kept."""
    written = [d.as_of.isoformat() for d in report.days if d.status != "skipped"]
    kept = (
        f"{len(written)} day(s) written before it stay ({written[0]} to {written[-1]})"
        if written
        else "no day was written by this run"
    )
    resume = Problem(kept, str(report.root), "fix the problem, then run the same backfill again to resume")
    return type(exc)(f"backfill stopped at {day.isoformat()}: {exc.message}", [*exc.problems, resume])


def _no_progress(stage: str, item: str, done: int, total: int) -> None:
    """The default progress hook: nothing to show."""


def _no_day(day: BackfillDay) -> None:
    """The default day hook: nothing to show."""
