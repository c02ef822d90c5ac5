"""Cross-checks of a parsed config: the references between its sections.

Each check adds `Problem`s with the key path where the fix belongs; nothing raises
until all of them have run, so the user sees every problem at once.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Collection, Iterable

from healthscore.config import Config
from healthscore.errors import Problem
from healthscore.expr import ExpressionError, parse
from healthscore.history import TREND_COLUMNS
from healthscore.models import AGGS_NEEDING_TIME
from healthscore.overrides import AUDIT_COLUMNS
from healthscore.presets import PRESETS
from healthscore.scoring import DEFAULT_PROFILE
from healthscore.table import reserved_columns


class _Known:
    """The config, plus the paths of parts dropped because of problems already reported.

    A dropped entry (`metrics.nps`) still counts as a known name, so nothing refers to it as
    unknown; a dropped section (`segments`) skips the checks that need it.
    """

    def __init__(self, config: Config, broken: frozenset[str]) -> None:
        self.config, self.broken = config, broken

    def names(self, section: str) -> list[str]:
        """Names of a section's entries, the valid ones in file order, then the dropped ones."""
        valid = list(getattr(self.config, section))
        dropped = sorted(p.removeprefix(section + ".") for p in self.broken if p.startswith(section + "."))
        return valid + [n for n in dropped if n not in valid]

    def whole(self, section: str) -> bool:
        """True if the whole section was dropped (its names are not known)."""
        return section in self.broken

    def complete(self, section: str) -> bool:
        """True if nothing of the section was dropped."""
        return not self.whole(section) and not any(p.startswith(section + ".") for p in self.broken)


def cross_check(config: Config, broken: Collection[str] = ()) -> list[Problem]:
    """Every problem of references between sections (sources, metrics, groups, segments...).

    `broken` holds the paths of entries or sections left out of `config` because of problems
    already reported (see `parse_config`); their names count as known.
    """
    known = _Known(config, frozenset(broken))
    problems: list[Problem] = []
    _check_sources(known, problems)
    _check_metrics(known, problems)
    _check_groups(known, problems)
    _check_score(known, problems)
    _check_segments(known, problems)
    _check_profiles(known, problems)
    _check_output_columns(known, problems)
    _check_engine(known, problems)
    return problems


def _check_engine(known: _Known, problems: list[Problem]) -> None:
    """`engine` against the sources: tables need engine ibis, which refuses some read options."""
    if known.whole("sources"):
        return
    from healthscore.ibis_config import engine_problems  # imports no Ibis

    problems += engine_problems(known.config)


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


def _check_sources(known: _Known, problems: list[Problem]) -> None:
    config = known.config
    sources = known.names("sources")
    if not known.whole("accounts") and not known.whole("sources") and config.accounts.source not in sources:
        problems.append(_unknown("source", config.accounts.source, sources, "accounts.source"))
    for name, source in config.sources.items():
        if source.preset is not None and source.preset not in PRESETS:
            problems.append(_unknown("preset", source.preset, PRESETS, f"sources.{name}.preset"))


def _check_metrics(known: _Known, problems: list[Problem]) -> None:
    config = known.config
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
            if not known.whole("sources") and metric.source not in known.names("sources"):
                problems.append(_unknown("source", metric.source, known.names("sources"), f"{where}.source"))
            continue
        needs_time = metric.agg in AGGS_NEEDING_TIME or metric.window is not None
        if needs_time and source.time is None:
            what = "a window" if metric.window is not None else f"agg {metric.agg}"
            problems.append(
                Problem(
                    f"{what} needs event times, but source {metric.source!r} has no `time` column",
                    f"{where}.window" if metric.window is not None else f"{where}.agg",
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
        name: set(parse(m.expr).names) & set(config.metrics) - {name}  # self-reference is reported apart
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


def _check_groups(known: _Known, problems: list[Problem]) -> None:
    config = known.config
    metrics = known.names("metrics")
    for name, group in config.groups.items():
        for metric in group.metrics:
            if not known.whole("metrics") and metric not in metrics:
                problems.append(_unknown("metric", metric, metrics, f"groups.{name}.metrics"))
    if known.whole("score") or config.score.method != "weights":
        return
    if not known.names("groups"):
        if not known.whole("groups"):
            problems.append(
                Problem(
                    "score.method weights needs at least one group",
                    "groups",
                    "add groups of metrics with weights, or set score.method: formula",
                )
            )
    elif known.complete("groups") and sum(g.weight for g in config.groups.values()) <= 0:
        problems.append(Problem("group weights must have a positive total", "groups", "give some group a weight"))


def _check_score(known: _Known, problems: list[Problem]) -> None:
    if known.whole("score"):
        return
    config = known.config
    score = config.score
    if score.method == "formula" and not score.formula:
        problems.append(Problem("score.method formula needs a `formula`", "score.formula"))
    if not score.formula:
        return
    names = _check_expression(score.formula, "score.formula", problems)
    if known.whole("metrics") or known.whole("groups"):
        return
    groups, metrics = known.names("groups"), known.names("metrics")
    meanings: dict[str, list[str]] = {}
    for group in groups:
        meanings.setdefault(group, []).append(f"the score of group {group!r}")
    for metric in metrics:
        meanings.setdefault(metric, []).append(f"the score of metric {metric!r}")
        meanings.setdefault(f"{metric}_value", []).append(f"the raw value of metric {metric!r}")
    for name in sorted(names):
        if name not in meanings:
            problems.append(_unknown("name", name, meanings, "score.formula"))
        elif len(meanings[name]) > 1:
            problems.append(
                Problem(
                    f"{name!r} in the formula is ambiguous: {' or '.join(meanings[name])}",
                    "score.formula",
                    "rename the group or metric so each name means one thing",
                )
            )


def formula_names(config: Config) -> set[str]:
    """Names a formula may use: groups (0..100), metrics (0..10), `<metric>_value` (raw)."""
    return {*config.groups, *config.metrics, *(f"{m}_value" for m in config.metrics)}


def _check_segments(known: _Known, problems: list[Problem]) -> None:
    if known.whole("segments"):
        return
    segments = known.config.segments
    if not segments:
        problems.append(Problem("at least one segment is needed", "segments"))
        return
    maxima = [s.max for s in segments]
    if any(b <= a for a, b in itertools.pairwise(maxima)):
        shown = ", ".join(f"{m:g}" for m in maxima)
        problems.append(
            Problem(f"segment maxima must increase, got {shown}", "segments", "list the segments from worst to best")
        )
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
    if known.config.segments_hysteresis and known.config.history is None:
        problems.append(
            Problem(
                "segments_hysteresis compares each account with its previous snapshot, so it needs history",
                "segments_hysteresis",
                "add history: {path: history/}, or remove segments_hysteresis",
            )
        )


def _check_profiles(known: _Known, problems: list[Problem]) -> None:
    config = known.config
    groups = known.names("groups")
    if DEFAULT_PROFILE in known.names("profiles"):
        problems.append(
            Problem(
                f"the profile name {DEFAULT_PROFILE!r} is taken by the accounts no profile matches",
                f"profiles.{DEFAULT_PROFILE}",
                "rename the profile",
            )
        )
    for name, profile in config.profiles.items():
        where = f"profiles.{name}"
        _check_expression(profile.when, f"{where}.when", problems)
        for group in profile.weights:
            if not known.whole("groups") and group not in groups:
                problems.append(_unknown("group", group, groups, f"{where}.weights"))
        total = sum(profile.weights.get(g, c.weight) for g, c in config.groups.items())
        if known.complete("groups") and config.groups and total <= 0:
            problems.append(Problem("profile group weights must have a positive total", where))


def _check_output_columns(known: _Known, problems: list[Problem]) -> None:
    """Metric names must not write an output column twice: each metric writes `<name>` (its raw
    value) and `<name>_score`, beside the scorer's own columns, `group_<g>` and `accounts.columns`."""
    config = known.config
    written = {col: "a column the scorer writes" for col in sorted(reserved_columns(config))}
    written.update({f"group_{g}": f"the score column of group {g!r}" for g in known.names("groups")})
    if config.overrides is not None:
        written.update(dict.fromkeys(AUDIT_COLUMNS, "a column the overrides add"))
    if config.history is not None:
        written.update(dict.fromkeys(TREND_COLUMNS, "a column the history adds"))
    if not known.whole("accounts"):
        for col in config.accounts.columns:
            if col in written:
                problems.append(
                    Problem(
                        f"the pass-through column {col!r} clashes with {written[col]}",
                        "accounts.columns",
                        f"remove {col!r} from accounts.columns, or rename it in the source",
                    )
                )
            written.setdefault(col, "a pass-through column (accounts.columns)")
    metrics = known.names("metrics")
    for name in metrics:
        where, hint = f"metrics.{name}", f"rename the metric: it writes the columns {name} and {name}_score"
        base = name.removesuffix("_score")
        if base != name and base in metrics:
            problems.append(Problem(f"metric {name!r} clashes with the score column of metric {base!r}", where, hint))
        for col in (name, f"{name}_score"):
            if col in written:
                problems.append(
                    Problem(f"metric {name!r} writes the column {col!r}, already {written[col]}", where, hint)
                )
