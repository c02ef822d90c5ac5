"""Scoring: 0..10 metric scores -> 0..100 group scores -> health score, coverage, segment.

Weights are normalized: within a group over its metrics, overall over the groups. A
missing metric's weight goes to the present metrics of its group; a group with no
present metric gives its weight to the present groups. `coverage` is the share of the
total weight that had data. All of it is matrix arithmetic over accounts x metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from healthscore.config import Config
from healthscore.errors import Problem
from healthscore.expr import parse, predicate
from healthscore.models import SegmentConfig

UNSCORED = "Unscored"
UNSCORED_COLOR = "grey"
UNSCORED_ACTION = "Check the data: too little of it to score this account"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Scores:
    """Per-account results of scoring, all indexed like the spine."""

    health: pd.Series  # 0..100, one decimal, NaN when Unscored
    coverage: pd.Series  # 0..1
    groups: pd.DataFrame  # one 0..100 column per group
    effective_weights: pd.DataFrame  # per account and metric, the share of the score it carries
    profile: pd.Series
    warnings: tuple[Problem, ...] = ()


def choose_profiles(config: Config, spine: pd.DataFrame) -> pd.Series:
    """Each account's profile: the first whose `when` holds on its spine columns, else default."""
    profile = pd.Series(DEFAULT_PROFILE, index=spine.index, dtype="str")
    undecided = pd.Series(True, index=spine.index)
    for name, prof in config.profiles.items():
        expression = parse(prof.when)
        columns = {c: spine[c] for c in expression.names if c in spine.columns}
        hit = predicate(expression, columns, spine.index) & undecided
        profile[hit] = name
        undecided &= ~hit
    return profile


def group_weight_matrix(config: Config, profile: pd.Series) -> np.ndarray:
    """Accounts x groups matrix of group weights, each account's row from its profile."""
    names = list(config.groups)
    default = np.array([config.groups[g].weight for g in names], dtype="float64")
    matrix = np.tile(default, (len(profile), 1))
    for name, prof in config.profiles.items():
        row = np.array([prof.weights.get(g, config.groups[g].weight) for g in names], dtype="float64")
        matrix[(profile == name).to_numpy()] = row
    return matrix


def metric_weight_matrix(config: Config, metrics: list[str]) -> np.ndarray:
    """Groups x metrics matrix of within-group weights, each row normalized to sum to 1."""
    matrix = np.zeros((len(config.groups), len(metrics)))
    for i, group in enumerate(config.groups.values()):
        for metric, weight in group.metrics.items():
            matrix[i, metrics.index(metric)] = weight
        matrix[i] /= matrix[i].sum()
    return matrix


BLOCK = 1 << 16  # accounts scored at a time: a block's arrays are reused, not mapped anew (page faults)


def weighted_scores(config: Config, metric_scores: pd.DataFrame, profile: pd.Series) -> Scores:
    """Group scores, health score (unrounded), coverage and effective weights by the weights method."""
    metrics = list(metric_scores.columns)
    index = metric_scores.index
    if not config.groups:  # formula-only configs
        return Scores(
            health=pd.Series(np.nan, index=index),
            coverage=pd.Series(0.0, index=index),
            groups=pd.DataFrame(index=index),
            profile=profile,
            effective_weights=pd.DataFrame(0.0, index=index, columns=metrics),
        )
    scores = metric_scores.to_numpy(dtype="float64")
    w = metric_weight_matrix(config, metrics)  # G x k
    g_weights = group_weight_matrix(config, profile)  # n x G
    n = len(index)
    health, coverage = np.empty(n), np.empty(n)
    # column-major, as a DataFrame holds its columns: taken as they are, not copied
    group, effective = np.empty((len(config.groups), n)).T, np.empty((len(metrics), n)).T
    for start in range(0, n, BLOCK):  # the same arithmetic, a block of accounts at a time
        rows = slice(start, start + BLOCK)
        health[rows], coverage[rows], group[rows], effective[rows] = _weighted(scores[rows], g_weights[rows], w)
    return Scores(
        health=pd.Series(health, index=index),
        coverage=pd.Series(coverage, index=index),
        groups=pd.DataFrame(group, index=index, columns=list(config.groups), copy=False),
        effective_weights=pd.DataFrame(effective, index=index, columns=metrics, copy=False),
        profile=profile,
    )


def _weighted(
    s: np.ndarray, g_weights: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Health, coverage, group scores and effective weights of accounts with metric scores
    `s` (n x k, NaN missing), group weights `g_weights` (n x G) and within-group weights `w`."""
    present = ~np.isnan(s)
    s0 = np.where(present, s, 0.0)
    g_norm = g_weights / g_weights.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        present_weight = present.astype("float64") @ w.T  # n x G: weight share of present metrics
        group = 10.0 * (s0 @ w.T) / present_weight  # n x G, NaN for a group with nothing present
        g_present = present_weight > 0
        g_eff = np.where(g_present, g_weights, 0.0)
        g_total = g_eff.sum(axis=1, keepdims=True)
        g_eff = g_eff / g_total
        health = np.nansum(np.where(g_present, group, 0.0) * g_eff, axis=1)
        # no score when the groups with data all weigh 0 (not a score of 0)
        health = np.where(g_total[:, 0] > 0, health, np.nan)
        # metric m's effective weight: sum over groups of group share x its share among present
        # metrics, i.e. present[m] x sum_g (g_eff / present_weight)[g] w[g, m]
        per_weight = np.nan_to_num(np.where(g_present, g_eff / present_weight, 0.0))  # NaN: no group weighs
        effective = present * (per_weight @ w)
    coverage = ((g_norm @ w) * present).sum(axis=1)
    return health, coverage, group, effective


def formula_scores(config: Config, base: Scores, metric_scores: pd.DataFrame, raw: pd.DataFrame) -> Scores:
    """The health score from `score.formula` over group scores, metric scores and raw values."""
    assert config.score.formula is not None
    expression = parse(config.score.formula)
    columns: dict[str, pd.Series] = {}
    for name in expression.names:
        if name in base.groups.columns:
            columns[name] = base.groups[name]
        elif name in metric_scores.columns:
            columns[name] = metric_scores[name]
        else:
            columns[name] = pd.to_numeric(raw[name.removesuffix("_value")], errors="coerce")
    value = expression.evaluate(columns, metric_scores.index).astype("float64")
    outside = int(((value < 0) | (value > 100)).sum())
    warnings = (
        [
            Problem(
                f"the formula gave {outside} score(s) outside 0..100; clipped",
                "score.formula",
                "wrap the formula in clip(..., 0, 100)",
            )
        ]
        if outside
        else []
    )
    used = {m for m in expression.names if m in config.metrics} | {
        m.removesuffix("_value") for m in expression.names if m.endswith("_value")
    }
    for group in expression.names & set(config.groups):
        used |= set(config.groups[group].metrics)
    coverage = base.coverage
    if not config.groups and used:
        coverage = metric_scores[sorted(used)].notna().mean(axis=1)
    return Scores(
        health=value.clip(0.0, 100.0),
        coverage=coverage,
        groups=base.groups,
        effective_weights=base.effective_weights,
        profile=base.profile,
        warnings=tuple(warnings),
    )


def finish_scores(scores: Scores, min_coverage: float) -> pd.Series:
    """The published health score: one decimal, empty below min_coverage."""
    rounded = np.round(scores.health.to_numpy(dtype="float64"), 1) + 0.0  # + 0.0: -0.0 (a clipped formula) is 0.0
    covered = scores.coverage.to_numpy(dtype="float64") + 1e-9 >= min_coverage
    return pd.Series(np.where(covered, rounded, np.nan), index=scores.health.index)


def segment_of(score: pd.Series, segments: tuple[SegmentConfig, ...]) -> pd.DataFrame:
    """Segment, colour and action per account; inclusive upper bounds; empty score -> Unscored."""
    maxima = np.array([s.max for s in segments])
    values = np.round(score.to_numpy(dtype="float64", na_value=np.nan), 1)  # bands apply to the published score
    position = np.searchsorted(maxima, np.nan_to_num(values, nan=0.0), side="left")
    position = np.minimum(position, len(segments) - 1)
    scored = ~np.isnan(values)

    def pick(attr: str, unscored: str) -> pd.Series:  # taken in Arrow: no Python string per account
        options = pa.array([*(getattr(s, attr) for s in segments), unscored], pa.large_string())
        return pd.Series(options.take(np.where(scored, position, len(segments))), index=score.index, dtype="str")

    return pd.DataFrame(
        {
            "segment": pick("name", UNSCORED),
            "color": pick("color", UNSCORED_COLOR),
            "action": pick("action", UNSCORED_ACTION),
        }
    )
