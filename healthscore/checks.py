"""Cross-checks of a parsed config: the references between its sections.

Each check adds `Problem`s with the key path where the fix belongs; nothing raises
until all of them have run, so the user sees every problem at once.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable

from healthscore.config import AGGS_NEEDING_TIME, Config
from healthscore.errors import Problem
from healthscore.expr import ExpressionError, parse
from healthscore.presets import PRESETS


def cross_check(config: Config) -> list[Problem]:
    """Every problem of references between sections (sources, metrics, groups, segments...)."""
    problems: list[Problem] = []
    _check_sources(config, problems)
    _check_metrics(config, problems)
    _check_groups(config, problems)
    _check_score(config, problems)
    _check_segments(config, problems)
    _check_profiles(config, problems)
    return problems


def _unknown(kind: str, name: str, known: Iterable[str], where: str) -> Problem:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean `{close[0]}`?" if close else f"known {kind}s: {', '.join(known) or 'none'}"
    return Problem(f"unknown {kind} {name!r}", where, hint)


def _check_expression(text: str, where: str, problems: list[Problem]) -> set[str]:
    """Parse an expression, recording a problem if it is invalid; return the names it uses."""
    try:
        return set(parse(text).names)
    except ExpressionError as exc:
        problems.append(Problem(str(exc), where))
        return set()


def _check_sources(config: Config, problems: list[Problem]) -> None:
    if config.accounts.source not in config.sources:
        problems.append(_unknown("source", config.accounts.source, config.sources, "accounts.source"))
    for name, source in config.sources.items():
        if source.preset is not None and source.preset not in PRESETS:
            problems.append(_unknown("preset", source.preset, PRESETS, f"sources.{name}.preset"))


def _check_metrics(config: Config, problems: list[Problem]) -> None:
    for name, metric in config.metrics.items():
        where = f"metrics.{name}"
        if metric.expr is not None:
            names = _check_expression(metric.expr, f"{where}.expr", problems)
            if name in names:
                problems.append(Problem("an expr metric cannot refer to itself", f"{where}.expr"))
            continue
        assert metric.source is not None  # ensured by MetricConfig
        source = config.sources.get(metric.source)
        if source is None:
            problems.append(_unknown("source", metric.source, config.sources, f"{where}.source"))
            continue
        needs_time = metric.agg in AGGS_NEEDING_TIME or metric.window is not None
        if needs_time and source.time is None:
            what = "a window" if metric.window is not None else f"agg {metric.agg}"
            problems.append(
                Problem(
                    f"{what} needs event times, but source {metric.source!r} has no `time` column",
                    where,
                    f"set sources.{metric.source}.time to its timestamp column",
                )
            )
        for key in ("where", "of_rows"):
            text = getattr(metric, key)
            if text is not None:
                _check_expression(text, f"{where}.{key}", problems)
    _check_expr_cycles(config, problems)


def _check_expr_cycles(config: Config, problems: list[Problem]) -> None:
    deps = {
        name: set(parse(m.expr).names) & set(config.metrics)
        for name, m in config.metrics.items()
        if m.expr is not None and not _fails(m.expr)
    }
    try:
        expr_metric_order(deps)
    except ValueError as exc:
        problems.append(Problem(str(exc), "metrics", "break the cycle between expr metrics"))


def _fails(text: str) -> bool:
    try:
        parse(text)
    except ExpressionError:
        return True
    return False


def expr_metric_order(deps: dict[str, set[str]]) -> list[str]:
    """Expr metrics ordered so each comes after the expr metrics it uses; ValueError on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError("expr metrics refer to each other in a cycle: " + " -> ".join(path))
        state[name] = 1
        for dep in sorted(deps[name]):
            if dep in deps:
                visit(dep, (*path, dep))
        state[name] = 2
        order.append(name)

    for name in sorted(deps):
        visit(name, (name,))
    return order


def _check_groups(config: Config, problems: list[Problem]) -> None:
    for name, group in config.groups.items():
        for metric in group.metrics:
            if metric not in config.metrics:
                where = f"groups.{name}.metrics"
                problems.append(_unknown("metric", metric, config.metrics, where))
    if config.score.method == "weights":
        if not config.groups:
            problems.append(
                Problem(
                    "score.method weights needs at least one group",
                    "groups",
                    "add groups of metrics with weights, or set score.method: formula",
                )
            )
        elif sum(g.weight for g in config.groups.values()) <= 0:
            problems.append(Problem("group weights must have a positive total", "groups"))


def _check_score(config: Config, problems: list[Problem]) -> None:
    score = config.score
    if score.method == "formula" and not score.formula:
        problems.append(Problem("score.method formula needs a `formula`", "score.formula"))
    if score.formula:
        names = _check_expression(score.formula, "score.formula", problems)
        known = formula_names(config)
        for name in sorted(names - known):
            problems.append(_unknown("name", name, known, "score.formula"))


def formula_names(config: Config) -> set[str]:
    """Names a formula may use: groups (0..100), metrics (0..10), `<metric>_value` (raw)."""
    return {*config.groups, *config.metrics, *(f"{m}_value" for m in config.metrics)}


def _check_segments(config: Config, problems: list[Problem]) -> None:
    segments = config.segments
    if not segments:
        problems.append(Problem("at least one segment is needed", "segments"))
        return
    maxima = [s.max for s in segments]
    if any(b <= a for a, b in itertools.pairwise(maxima)):
        problems.append(Problem(f"segment maxima must increase, got {maxima}", "segments"))
    if maxima[-1] != 100:
        problems.append(
            Problem(
                f"the last segment must end at max: 100, got {maxima[-1]:g}",
                f"segments.{len(maxima) - 1}.max",
            )
        )
    names = [s.name for s in segments]
    if len(set(names)) != len(names) or "Unscored" in names:
        problems.append(Problem("segment names must be unique and not 'Unscored'", "segments"))


def _check_profiles(config: Config, problems: list[Problem]) -> None:
    for name, profile in config.profiles.items():
        where = f"profiles.{name}"
        _check_expression(profile.when, f"{where}.when", problems)
        for group in profile.weights:
            if group not in config.groups:
                problems.append(_unknown("group", group, config.groups, f"{where}.weights"))
        total = sum(profile.weights.get(g, c.weight) for g, c in config.groups.items())
        if config.groups and total <= 0:
            problems.append(Problem("profile group weights must have a positive total", where))
