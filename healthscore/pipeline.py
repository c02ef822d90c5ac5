"""The whole run: read sources, aggregate metrics, join, normalize, score, segment, explain.

`run(config, as_of)` does all of the work and returns a `RunResult`: the scored table in
the output column order, the summary, and the facts the manifest records. It writes
nothing; `outputs.write_outputs` does that.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeVar

import pandas as pd

from healthscore.aggregate import aggregate_source, source_metrics, window_interval
from healthscore.checks import expr_metric_order
from healthscore.config import Config
from healthscore.errors import HealthscoreError, InputMissingError, Problem, UsageError
from healthscore.explain import points_lost, top_drivers
from healthscore.expr import parse
from healthscore.history import (
    MONTH,
    config_changed,
    previous_segments,
    snapshot_before,
    snapshot_near,
    sticky_segments,
    trend_columns,
)
from healthscore.join import SourceJoin, join_metrics, spine_frame
from healthscore.models import MetricConfig
from healthscore.normalize import normalize
from healthscore.overrides import apply_overrides
from healthscore.scoring import (
    Scores,
    choose_profiles,
    finish_scores,
    formula_scores,
    segment_of,
    weighted_scores,
)
from healthscore.sources import SourceData, read_source, source_files
from healthscore.summary import LOWEST, Summary, build_summary, check_rollup_column
from healthscore.table import scored_table

T = TypeVar("T")


@dataclass
class RunResult:
    """Everything a run computed: the scored table, the summary and the manifest's facts."""

    as_of: dt.date
    table: pd.DataFrame
    summary: Summary
    sources: dict[str, SourceData]
    joins: dict[str, SourceJoin]
    warnings: list[Problem]
    timings: dict[str, float] = field(default_factory=dict)
    metric_scores: pd.DataFrame | None = None
    points_lost: pd.DataFrame | None = None
    raw: pd.DataFrame | None = None  # accounts x metrics: the raw metric values
    scores: Scores | None = None  # group scores, effective weights and profiles

    @property
    def rejects(self) -> pd.DataFrame:
        """Every row set aside while reading, over all sources (the rejects.csv rows)."""
        return pd.concat([data.rejects for data in self.sources.values()], ignore_index=True)


def resolve_as_of(config: Config, as_of: dt.date | str | None) -> dt.date:
    """The scoring date: the argument (a date, 'today' or YYYY-MM-DD), else the config's, else today."""
    if isinstance(as_of, dt.date):
        return as_of
    if as_of is None:
        return config.as_of or dt.date.today()
    if as_of.strip().lower() == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(as_of.strip())
    except ValueError:
        raise UsageError(f"--as-of must be a date like 2026-01-31 or 'today', got {as_of!r}") from None


def needed_columns(config: Config) -> dict[str, set[str]]:
    """The columns each source must have: fields, filter names, and the spine's pass-through."""
    needed: dict[str, set[str]] = {config.accounts.source: set(config.accounts.columns)}
    spine = needed[config.accounts.source]
    spine.update(c for c in (config.accounts.name, config.accounts.arr) if c)
    for profile in config.profiles.values():
        spine.update(parse(profile.when).names)
    for metric in config.metrics.values():
        if metric.expr is not None:
            spine.update(parse(metric.expr).names - set(config.metrics))
            continue
        cols = needed.setdefault(str(metric.source), set())
        cols.update(c for c in (metric.field, metric.of.field if metric.of else None) if c)
        for text in (metric.where, metric.of_rows):
            if text:
                cols.update(parse(text).names)
    return needed


def recent_columns(config: Config, as_of: dt.date) -> dict[str, dict[str, pd.Timestamp]]:
    """Per source, the columns counted only by `nunique` metrics over windows (as `field`,
    or `of.field` of a growth), with the earliest time any of those windows starts as of
    that date: rows timed before it need no value there (the active users of 30 days, of
    90 days of events). A column any metric uses otherwise (a filter, another aggregate,
    no window) is not given, nor are the accounts' columns."""
    since: dict[tuple[str, str], pd.Timestamp] = {}
    whole: set[tuple[str, str]] = set()
    for metric in config.metrics.values():
        if metric.source is None or metric.source == config.accounts.source:
            continue
        inner = metric.of if metric.agg == "growth" else metric
        filters = set().union(*(parse(text).names for text in (metric.where, metric.of_rows) if text))
        counted = inner.field if inner is not None and inner.agg == "nunique" else None
        interval = window_interval(metric.window, as_of, 1 if metric.agg == "growth" else 0)
        for column in {c for c in (metric.field, metric.of.field if metric.of else None) if c} | filters:
            if column == counted and column not in filters and interval is not None:
                start = since.get((metric.source, column), interval[0])
                since[(metric.source, column)] = min(start, interval[0])
            else:
                whole.add((metric.source, column))
    recent: dict[str, dict[str, pd.Timestamp]] = {}
    for (source, column), start in since.items():
        if (source, column) not in whole:
            recent.setdefault(source, {})[column] = start
    return recent


Progress = Callable[[str, str, int, int], None]
"""A progress hook: called as (stage, item, done, total) before and after each source is
read ('read') and aggregated ('aggregate'), so a terminal can show a bar."""


def run(
    config: Config,
    as_of: dt.date | str | None = None,
    *,
    progress: Progress | None = None,
    sources: dict[str, SourceData] | None = None,
    top: int = LOWEST,
    by: str | None = None,
    digests: bool = True,
) -> RunResult:
    """Score every account of the spine as of a date; raises HealthscoreError subclasses.

    `sources` may hold sources already read (by `read_sources`); `top` and `by` shape the
    summary (its lowest accounts, and a roll-up by a spine column). Without `digests`, the
    input files' SHA-256 (for run.json) is not taken and their `FileRead.sha256` is ''.
    """
    day = resolve_as_of(config, as_of)
    if by is not None:
        check_rollup_column(config, by)
    report = progress or _no_progress
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def timed(stage: str, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        value = fn()
        timings[stage] = round(time.perf_counter() - start, 4)
        return value

    needed = needed_columns(config)
    spine_name = config.accounts.source
    own = sources is None  # sources this run reads are let go of once aggregated and joined
    if sources is None:
        sources = timed("read", lambda: read_sources(config, report, as_of=day, digests=digests))
    warnings = [w for data in sources.values() for w in data.warnings]
    warnings += [
        Problem(f"source {name!r} is not used by any metric or by accounts, so it was not read", f"sources.{name}")
        for name in config.sources
        if name not in needed
    ]
    if sources[spine_name].frame.empty:
        raise InputMissingError(
            f"the accounts source {spine_name!r} has no rows, so there is nothing to score",
            [Problem("the file has a header but no data rows", f"sources.{spine_name}.path", "re-export the accounts")],
        )
    spine = spine_frame(sources[spine_name])
    by_source = source_metrics(config)
    aggregated, key_rows = timed("aggregate", lambda: _aggregate_all(sources, by_source, day, report))
    raw, joins = _join(config, spine, aggregated, sources, key_rows)
    for name, data in sources.items():
        if own and name != spine_name and not _on_backend(data):
            data.release_rows()
    warnings += [j.warning() for j in joins.values() if j.unmatched_keys]
    raw = timed("derive", lambda: _derive(config, spine, raw))
    metric_scores = timed("normalize", lambda: _normalize_all(config, raw, warnings))
    profile = choose_profiles(config, spine)
    scores = timed("score", lambda: weighted_scores(config, metric_scores, profile))
    if config.score.method == "formula":
        scores = formula_scores(config, scores, metric_scores, raw)
        warnings += scores.warnings
    health = finish_scores(scores, config.score.min_coverage)
    segments = segment_of(health, config.segments)
    previous = snapshot_before(config, day) if config.history is not None else None
    if config.segments_hysteresis and previous is not None:
        ids = pd.Series(spine.index.astype("str"), index=spine.index)
        segments = sticky_segments(config, health, segments, previous_segments(ids, previous))
    audit = None
    if config.overrides is not None:
        health, segments, audit, override_warnings = apply_overrides(config, day, health, segments)
        warnings += override_warnings
    lost = points_lost(scores.effective_weights, metric_scores)
    drivers = top_drivers(lost, metric_scores, {m: config.metric_label(m) for m in config.metrics})
    table = scored_table(config, day, spine, raw, metric_scores, scores, health, segments, drivers, audit)
    if config.history is not None:
        month_ago = snapshot_near(config, day - dt.timedelta(days=MONTH), before=day)
        trend = trend_columns(table, previous, month_ago, [s.name for s in config.segments])
        for position, column in enumerate(trend.columns, start=len(table.columns) - 1):
            table.insert(position, column, trend[column])
        changed = config_changed(config, previous)
        warnings += [changed] if changed else []
    summary = build_summary(
        config,
        day,
        table,
        spine,
        joins,
        sources,
        warnings,
        top=top,
        by=by,
        previous_as_of=previous.as_of if previous is not None else None,
    )
    timings["total"] = round(time.perf_counter() - started, 4)
    return RunResult(day, table, summary, sources, joins, warnings, timings, metric_scores, lost, raw, scores)


PARALLEL_READ_BYTES = 64 << 20  # input of the largest source from which the others are read beside it


def read_sources(
    config: Config, progress: Progress | None = None, as_of: dt.date | None = None, digests: bool = True
) -> dict[str, SourceData]:
    """Read every source the config uses, with the columns its metrics need; the error of
    the first source (in config order) that fails raises, as if they were read in turn.
    Given the date they are scored as of (by one run alone), columns needed only in recent
    rows (`recent_columns`) may be left out of older ones.

    Under `engine: ibis` only the accounts source is read into memory (a `table:` one fetched
    whole); every other source is opened on its backend (`ibis_engine.BackendSource`), where
    `run` aggregates it. Otherwise, when the largest source's files hold PARALLEL_READ_BYTES
    or more, the other sources are read in turn on a second thread meanwhile (much of
    reading runs in Arrow and numpy, without the GIL: L's 50M events beside three sources
    of 1-5M rows, 15-18 s -> 13.5-14 s). Without `digests`, files' SHA-256 is not taken.
    """
    needed = needed_columns(config)
    read = source_reader(config, recent_columns(config, as_of) if as_of is not None else {}, digests)
    sizes = {name: _input_bytes(config, name) for name in needed} if config.engine != "ibis" else {}
    largest = max(sizes, key=lambda name: sizes[name], default=None)
    beside = None if largest is None or len(needed) < 2 or sizes[largest] < PARALLEL_READ_BYTES else largest
    return _each("read", list(needed), lambda name: read(name, needed[name]), progress or _no_progress, beside)


def _input_bytes(config: Config, name: str) -> int:
    """The size of a source's files; 0 when they cannot be listed (reading it says why)."""
    try:
        return sum(path.stat().st_size for path in source_files(config, name))
    except (HealthscoreError, OSError):
        return 0


def _each(stage: str, order: list[str], work: Callable[[str], T], report: Progress, beside: str | None) -> dict[str, T]:
    """`work` on each name of `order`: in turn, or with `beside` done on this thread while
    the others are done in turn on a second one (`_beside`). The progress hook is called
    before each name and at the end, one call at a time from either thread."""
    lock = threading.Lock()
    finished = 0

    def one(name: str) -> T:
        nonlocal finished
        with lock:
            report(stage, name, finished, len(order))
        result = work(name)
        with lock:
            finished += 1
        return result

    done = {name: one(name) for name in order} if beside is None else _beside(one, order, beside)
    report(stage, "", len(order), len(order))
    return done


def _beside(work: Callable[[str], T], order: list[str], largest: str) -> dict[str, T]:
    """`work` on `largest` on this thread and on the other names of `order` in turn on a
    second one, which stops at its first error; then the error of the first name of `order`
    that failed raises (every name before it was done), as if all were done in turn. The
    second thread is a daemon: an interrupted run does not wait for it."""
    outcomes: dict[str, T | Exception] = {}

    def in_turn(names: list[str]) -> None:
        for name in names:
            try:
                outcomes[name] = work(name)
            except Exception as exc:  # raised on the calling thread, in order
                outcomes[name] = exc
                return

    beside = threading.Thread(target=in_turn, args=([n for n in order if n != largest],), daemon=True)
    beside.start()
    in_turn([largest])
    beside.join()
    done: dict[str, T] = {}
    for name in order:  # each name is there, up to the first that failed
        outcome = outcomes[name]
        if isinstance(outcome, Exception):
            raise outcome
        done[name] = outcome
    return done


def source_reader(
    config: Config, recent: dict[str, dict[str, pd.Timestamp]] | None = None, digests: bool = True
) -> Callable[[str, Collection[str]], SourceData]:
    """A function reading one source (by name, with the columns it must have) as the config's
    engine does, columns of `recent` (`recent_columns`) perhaps only in recent rows, files'
    SHA-256 taken if `digests` (in memory); under engine ibis its sources share their
    backend connections."""
    spine_name = config.accounts.source
    if config.engine != "ibis":
        since = recent or {}
        return lambda name, columns: read_source(
            config, name, columns, keep_all=name == spine_name, recent=since.get(name), digests=digests
        )
    from healthscore.ibis_engine import Backends, open_source, read_table_accounts, require_ibis

    require_ibis()
    backends = Backends(config)

    def read(name: str, columns: Collection[str]) -> SourceData:
        if name != spine_name:
            return open_source(config, name, columns, backends)
        if config.sources[name].table is not None:
            return read_table_accounts(config, name, columns, backends)
        return read_source(config, name, columns, keep_all=True)

    return read


def _on_backend(data: SourceData) -> bool:
    """True for a source that stays on an Ibis backend (`ibis_engine.BackendSource`)."""
    return bool(getattr(data, "on_backend", False))


PARALLEL_AGGREGATE_ROWS = 1_000_000  # rows of the largest source from which the others are aggregated beside it


def _aggregate_all(
    sources: dict[str, SourceData], by_source: dict[str, dict[str, MetricConfig]], day: dt.date, report: Progress
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.Series]]:
    """Each source's metrics per account; and, for sources on a backend, the rows of each key
    (what the join counts, since their rows stay there). In memory, from PARALLEL_AGGREGATE_ROWS
    rows in the largest source, the other sources are aggregated in turn on a second thread
    meanwhile (L: tickets' 5M rows and NPS's 1M beside the 50M events, whose aggregation
    is mostly numpy without the GIL); an error raises as if they were aggregated in turn."""
    key_rows: dict[str, pd.Series] = {}

    def one(name: str) -> pd.DataFrame:
        data, metrics = sources[name], by_source[name]
        if not _on_backend(data):
            return aggregate_source(data, metrics, day)
        from healthscore.ibis_engine import BackendSource, aggregate

        assert isinstance(data, BackendSource)
        result = aggregate(data, metrics, day)
        key_rows[name] = result.key_rows
        return result.metrics

    rows = {name: len(sources[name].frame) for name in by_source if not _on_backend(sources[name])}
    largest = max(rows, key=lambda name: rows[name], default=None)
    beside = None  # all in memory, two sources or more, and the largest large enough
    if largest is not None and len(rows) == len(by_source) >= 2 and rows[largest] >= PARALLEL_AGGREGATE_ROWS:
        beside = largest
    return _each("aggregate", list(by_source), one, report, beside), key_rows


def _join(
    config: Config,
    spine: pd.DataFrame,
    aggregated: dict[str, pd.DataFrame],
    sources: dict[str, SourceData],
    key_rows: dict[str, pd.Series],
) -> tuple[pd.DataFrame, dict[str, SourceJoin]]:
    """`join_metrics`, with the join counts of backend sources taken from their rows per key."""
    if not key_rows:
        return join_metrics(config, spine, aggregated, sources)
    from healthscore.ibis_engine import join_stats

    stand_ins = {  # one row per key: what join_metrics needs of a source whose rows stay on the backend
        name: SourceData(name, pd.DataFrame({sources[name].key: rows.index}), sources[name].key, None, [])
        for name, rows in key_rows.items()
    }
    raw, joins = join_metrics(config, spine, aggregated, {**sources, **stand_ins})
    joins.update({name: join_stats(name, rows, spine.index) for name, rows in key_rows.items()})
    return raw, joins


def _no_progress(stage: str, item: str, done: int, total: int) -> None:
    """The default progress hook: nothing to show."""


def _derive(config: Config, spine: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Add expr metrics (in dependency order) computed from other metrics and spine columns."""
    exprs = {n: m for n, m in config.metrics.items() if m.expr is not None}
    deps = {n: set(parse(str(m.expr)).names) & set(config.metrics) for n, m in exprs.items()}
    raw = raw.copy(deep=False)  # columns are added to the copy, the caller's frame is untouched
    for name in expr_metric_order(deps):
        expression = parse(str(exprs[name].expr))
        # names are metrics or spine columns: reading the accounts source checked the latter
        columns = {col: raw[col] if col in config.metrics else spine[col] for col in expression.names}
        value = expression.evaluate(columns, raw.index)
        fill = exprs[name].missing_fill
        raw[name] = value if fill is None else value.fillna(fill)
    return raw[list(config.metrics)]


def _normalize_all(config: Config, raw: pd.DataFrame, warnings: list[Problem]) -> pd.DataFrame:
    """0..10 scores of every metric, with each metric's fixed missing score applied."""
    columns = {}
    for name, metric in config.metrics.items():
        scores, problems = normalize(raw[name], metric, name)
        warnings += problems
        fixed = metric.missing_score
        columns[name] = scores if fixed is None else scores.fillna(fixed)
    return pd.DataFrame(columns, index=raw.index)
