"""Calibrate: fit the group and metric weights of a config to churn outcomes.

The model is P(churn) = sigmoid(b0 - sum_m beta_m * s_m) over the 0..10 scores s_m of the
metrics the groups use, so beta_m > 0 means that a higher score goes with less churn (the
right sign), and beta_m is the drop in the churn log-odds per score point. The betas come
from an L2-regularized logistic regression solved by Newton's method in numpy (features
standardized, intercept unpenalized): with a few dozen features and a few thousand accounts
that is a handful of small linear solves, so neither scipy nor scikit-learn is needed.

Missing scores are handled as in scoring. There a missing metric's weight goes to the
present metrics of its group, which is the same as giving the missing metric the group's
score (the weighted mean of its present metrics under the config's weights); a group with no
present metric takes the account's health score. The fit imputes exactly those values.

The regularization strength (lambda) is chosen from a grid by stratified k-fold
cross-validation, maximizing the mean AUC of the health score the derived weights give
(computed by `scoring.weighted_scores`, so missing data counts as in a real run); ties go to
the stronger penalty. The reported AUC is nested: in each outer fold lambda is chosen by an
inner cross-validation on the training part, the weights are fitted there and the held-out
part is scored, so the figure is not flattered by the choice of lambda. The current config's
AUC is its own score's on the same held-out parts. Folds are seeded: same input, same output.

Betas become weights: a metric's share of the score is proportional to max(beta, 0), so a
metric whose effect has the wrong sign gets 0 and is flagged, never inverted. A group's
weight is the sum of its metrics' shares (a metric in several groups is split as before),
metric weights within a group are its shares over the group's total, and both are
normalized to 100. A group whose metrics all get 0 gets weight 0 and keeps its metric
weights (a group's metric weights must have a positive total).

The arithmetic from betas to weights is in `calibrate_weights`; writing the fitted weights
into a copy of the config file is `calibrated_config`'s job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from healthscore.calibrate_weights import derive_weights, round_to_total, with_weights
from healthscore.calibrated_config import (
    calibrated_text,
    check_output,
    group_edits,
    header_lines,
    relative_to,
    write_calibrated,
)
from healthscore.config import Config
from healthscore.errors import ConfigError, DataError, Problem, UsageError
from healthscore.scoring import DEFAULT_PROFILE, Scores, metric_weight_matrix, weighted_scores
from healthscore.stats import auc

if TYPE_CHECKING:
    from healthscore.pipeline import RunResult

__all__ = [  # the writer is re-exported: the CLI and the tests import it from here
    "GROUP_ZEROED",
    "LAMBDAS",
    "NO_VARIATION",
    "SEED",
    "TOO_LITTLE_DATA",
    "WRONG_SIGN",
    "Calibration",
    "GroupWeight",
    "MetricWeight",
    "calibrate_run",
    "calibrated_text",
    "check_calibratable",
    "check_output",
    "derive_weights",
    "fit_logistic",
    "fit_weights",
    "group_edits",
    "header_lines",
    "imputed_scores",
    "membership",
    "relative_to",
    "round_to_total",
    "score_auc",
    "stratified_folds",
    "with_weights",
    "write_calibrated",
]

LAMBDAS = tuple(float(v) for v in np.logspace(-4, 1, 11))  # penalty on the mean log-loss
SEED = 0
WRONG_SIGN = "wrong sign: set to 0"
NO_VARIATION = "no variation: set to 0"
TOO_LITTLE_DATA = "too little data: set to 0"
MIN_OBSERVED = 10  # accounts with an outcome that must have a metric's own score for it to be fitted
GROUP_ZEROED = "no metric with the right sign: weight 0"


@dataclass(frozen=True)
class MetricWeight:
    """One metric's fit: its beta per score point (> 0 is the right sign) and its share of the
    score in percent, before and after, with every metric present."""

    metric: str
    groups: tuple[str, ...]
    beta: float
    old_share: float
    new_share: float
    flag: str = ""


@dataclass(frozen=True)
class GroupWeight:
    """One group's weights before and after: the group's weight and its metrics' weights,
    each normalized to 100 (the old ones too, so they compare)."""

    group: str
    old_weight: float
    new_weight: float
    old_metrics: dict[str, float]
    new_metrics: dict[str, float]
    flag: str = ""


@dataclass(frozen=True)
class Calibration:
    """The fitted weights, how they were chosen, and the cross-validated AUCs beside the
    current config's (same folds; AUC of the score ranking churned accounts lowest)."""

    metrics: tuple[MetricWeight, ...]
    groups: tuple[GroupWeight, ...]
    lam: float
    folds: int
    seed: int
    accounts: int
    churned: int
    without_outcome: int
    unscored: int
    cv_auc: float
    cv_auc_current: float
    fold_auc: tuple[float, ...]
    fold_auc_current: tuple[float, ...]
    lambda_auc: tuple[tuple[float, float], ...]
    as_of: dt.date | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The calibration as plain JSON-ready data."""
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat() if self.as_of else None
        data["lambda_auc"] = [{"lambda": lam, "cv_auc": value} for lam, value in self.lambda_auc]
        return data


@dataclass(frozen=True)
class _Data:
    """What every fit shares: the accounts with an outcome and a score, and the old weights."""

    config: Config
    metrics: list[str]  # the metrics the groups use, in config order
    scores: pd.DataFrame  # accounts x all metrics, 0..10, NaN = missing (what scoring sees)
    profile: pd.Series
    x: np.ndarray  # accounts x metrics: the scores with missing ones imputed as scoring does
    y: np.ndarray  # churned
    health: np.ndarray  # the current config's (unrounded) health score
    member: np.ndarray  # groups x metrics: 1 where the group holds the metric
    old_within: np.ndarray  # groups x metrics: within-group weights, rows summing to 1
    old_share: np.ndarray  # groups x metrics: effective shares of the score, summing to 1
    sparse: np.ndarray  # per metric: fewer than MIN_OBSERVED accounts have its own score (not fitted)


def score_auc(score: np.ndarray, churned: np.ndarray) -> float:
    """The ROC AUC of a health score for churn, a low score meaning high risk (`stats.auc`),
    over the accounts that have a score; NaN without both classes."""
    keep = ~np.isnan(score)
    return auc(score[keep], churned[keep])


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number (0..folds-1) per row, each class spread evenly over the folds; seeded."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype="int64")
    offset = 0
    for label in (True, False):
        rows = rng.permutation(np.flatnonzero(y == label))
        fold[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return fold


def fit_logistic(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """L2-penalized logistic regression P(y) = sigmoid(b0 + x @ b) by damped Newton steps,
    minimizing mean log-loss + lam/2 |b|^2 (b0 unpenalized); returns (b0, b)."""
    n, k = x.shape
    a = np.column_stack([np.ones(n), x])
    penalty = np.full(k + 1, lam)
    penalty[0] = 0.0
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    w = np.zeros(k + 1)
    w[0] = np.log(rate / (1 - rate))

    def objective(v: np.ndarray) -> float:
        z = a @ v
        return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * v * v))

    current = objective(w)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) / n + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a / n + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-6 and objective(w - size * step) > current + 1e-15:
            size /= 2
        w = w - size * step
        previous, current = current, objective(w)
        if previous - current < 1e-12 and float(np.max(np.abs(size * step))) < 1e-8:
            break
    return float(w[0]), w[1:]


def fit_weights(
    config: Config,
    metric_scores: pd.DataFrame,
    churned: pd.Series,
    *,
    profile: pd.Series | None = None,
    folds: int = 5,
    seed: int = SEED,
    lambdas: tuple[float, ...] = LAMBDAS,
    as_of: dt.date | None = None,
) -> Calibration:
    """Fit weights to `churned` (boolean, indexed like `metric_scores`, NA = unknown) from the
    0..10 metric scores of a run; raises ConfigError for a formula config, DataError for too
    few churned or retained accounts."""
    if folds < 2:
        raise UsageError(f"--folds must be at least 2, got {folds}")
    check_calibratable(config)
    profile = profile if profile is not None else pd.Series(DEFAULT_PROFILE, index=metric_scores.index)
    data, without_outcome, unscored = _prepare(config, metric_scores, churned, profile)
    _check_counts(data.y, folds)
    fold = stratified_folds(data.y, folds, seed)
    fitted, current = [], []
    for f in range(folds):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        lam, _ = _choose_lambda(data, train, folds, seed + 1 + f, lambdas)
        fitted.append(score_auc(_health(data, test, _betas(data, train, lam)), data.y[test]))
        current.append(score_auc(data.health[test], data.y[test]))
    everyone = np.arange(len(data.y))
    lam, curve = _choose_lambda(data, everyone, folds, seed, lambdas)
    betas = _betas(data, everyone, lam)
    metrics, groups = _describe(data, betas)
    return Calibration(
        metrics=metrics,
        groups=groups,
        lam=lam,
        folds=folds,
        seed=seed,
        accounts=len(data.y),
        churned=int(data.y.sum()),
        without_outcome=without_outcome,
        unscored=unscored,
        cv_auc=float(np.nanmean(fitted)),
        cv_auc_current=float(np.nanmean(current)),
        fold_auc=tuple(fitted),
        fold_auc_current=tuple(current),
        lambda_auc=curve,
        as_of=as_of,
        notes=_notes(config),
    )


def _notes(config: Config) -> tuple[str, ...]:
    """What the reader of a calibration should know about this config."""
    if not config.profiles:
        return ()
    return (
        f"profiles ({', '.join(config.profiles)}) keep their own group weights: only the default weights are "
        "fitted, and the AUCs score each account with its profile's",
    )


def calibrate_run(
    config: Config, result: RunResult, churned: pd.Series, *, folds: int = 5, seed: int = SEED
) -> Calibration:
    """`fit_weights` over a run's metric scores and profiles, `churned` being indexed like
    `result.table` (as `outcomes.load_outcomes` returns it)."""
    if result.metric_scores is None or result.scores is None:
        raise ValueError("the run result holds no metric scores")
    by_account = pd.Series(churned.to_numpy(), index=result.table["account_id"].astype("str"), dtype="boolean")
    metric_scores = result.metric_scores
    aligned = by_account.reindex(metric_scores.index.astype("str")).set_axis(metric_scores.index)
    profile = result.scores.profile
    return fit_weights(config, metric_scores, aligned, profile=profile, folds=folds, seed=seed, as_of=result.as_of)


def check_calibratable(config: Config) -> None:
    """ConfigError (78) unless the config scores by weights: a formula's score does not follow them."""
    if config.score.method != "weights" or not config.groups:
        raise ConfigError(
            "calibrate fits the weights of score.method: weights, and this config scores with a formula",
            [
                Problem(
                    "the formula, not the group and metric weights, makes the health score",
                    "score.method",
                    "calibrate a copy with `score: {method: weights}` and groups, then carry the fitted weights "
                    "into the formula by hand",
                )
            ],
        )


def _prepare(
    config: Config, metric_scores: pd.DataFrame, churned: pd.Series, profile: pd.Series
) -> tuple[_Data, int, int]:
    """The accounts with an outcome and a score, their imputed scores, and the old weights;
    plus how many accounts had no outcome, and how many with one had no score."""
    metrics = [m for m in config.metrics if any(m in g.metrics for g in config.groups.values())]
    scores = weighted_scores(config, metric_scores, profile)
    scored = (scores.health.notna() & (scores.coverage + 1e-9 >= config.score.min_coverage)).to_numpy()
    outcome = churned.reindex(metric_scores.index).astype("boolean")
    known = outcome.notna().to_numpy()
    keep = known & scored
    x = imputed_scores(config, metric_scores[metrics], scores, metrics)
    # a metric (almost) nobody has would be fitted on imputed values alone: hold it constant, so it gets 0
    sparse = metric_scores[metrics].loc[keep].notna().sum().to_numpy() < MIN_OBSERVED
    x[:, sparse] = 0.0
    member = membership(config, metrics)
    within = metric_weight_matrix(config, metrics)
    group_weight = np.array([g.weight for g in config.groups.values()], dtype="float64")
    share = within * (group_weight / group_weight.sum())[:, None]
    data = _Data(
        config=config,
        metrics=metrics,
        scores=metric_scores.loc[keep],
        profile=profile.loc[keep],
        x=x[keep],
        y=outcome.fillna(False).to_numpy(dtype=bool)[keep],
        health=scores.health.to_numpy(dtype="float64")[keep],
        member=member,
        old_within=within,
        old_share=share,
        sparse=sparse,
    )
    return data, int((~known).sum()), int((known & ~scored).sum())


def membership(config: Config, metrics: list[str]) -> np.ndarray:
    """Groups x metrics: 1 where the group holds the metric (whatever its weight), else 0."""
    return np.array([[m in g.metrics for m in metrics] for g in config.groups.values()], dtype="float64")


def imputed_scores(config: Config, scores: pd.DataFrame, result: Scores, metrics: list[str]) -> np.ndarray:
    """The 0..10 scores with each missing one replaced by its group's score (the mean over the
    groups holding the metric), or by the health score when none of them has data."""
    s = scores.to_numpy(dtype="float64")
    member = membership(config, metrics)
    groups = result.groups.to_numpy(dtype="float64") / 10.0
    have = ~np.isnan(groups)
    total = np.where(have, groups, 0.0) @ member
    count = have.astype("float64") @ member
    fallback = (result.health.to_numpy(dtype="float64") / 10.0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(count > 0, total / count, fallback)
    return np.where(np.isnan(s), fill, s)


def _check_counts(y: np.ndarray, folds: int) -> None:
    """DataError (65) unless each class has enough accounts for nested k-fold cross-validation."""
    need = 2 * folds
    churned, retained = int(y.sum()), int((~y).sum())
    if min(churned, retained) < need:
        raise DataError(
            f"too few outcomes to calibrate: {churned} churned and {retained} retained accounts with a score",
            [
                Problem(
                    f"{folds}-fold cross-validation needs at least {need} of each",
                    hint="add outcomes, or lower --folds (at least 2)",
                )
            ],
        )


def _betas(data: _Data, rows: np.ndarray, lam: float) -> np.ndarray:
    """Per-point betas (> 0: a higher score, less churn) fitted on `rows`; 0 for a constant metric."""
    x = data.x[rows]
    mean, std = x.mean(axis=0), x.std(axis=0)
    varies = std > 1e-12
    safe = np.where(varies, std, 1.0)
    z = np.where(varies, (x - mean) / safe, 0.0)
    _, coef = fit_logistic(z, data.y[rows].astype("float64"), lam)
    return np.where(varies, -coef / safe, 0.0)


def _health(data: _Data, rows: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """The health score of `rows` under the weights derived from `betas` (0 for all when no
    beta has the right sign: a constant score ranks nobody)."""
    weights = derive_weights(betas, data.member, data.old_within, data.old_share)
    if weights is None:
        return np.zeros(len(rows))
    config = with_weights(data.config, data.metrics, *weights)
    scores = weighted_scores(config, data.scores.iloc[rows], data.profile.iloc[rows])
    return scores.health.to_numpy(dtype="float64")


def _choose_lambda(
    data: _Data, rows: np.ndarray, folds: int, seed: int, lambdas: tuple[float, ...]
) -> tuple[float, tuple[tuple[float, float], ...]]:
    """The lambda with the best mean AUC over stratified folds of `rows` (ties: the larger),
    and the mean AUC of each lambda."""
    fold = stratified_folds(data.y[rows], folds, seed)
    curve = []
    for lam in lambdas:
        values = []
        for f in range(folds):
            train, test = rows[fold != f], rows[fold == f]
            values.append(score_auc(_health(data, test, _betas(data, train, lam)), data.y[test]))
        curve.append((lam, float(np.nanmean(values))))
    best = max(value for _, value in curve)
    chosen = max(lam for lam, value in curve if value >= best - 1e-12)
    return chosen, tuple(curve)


def _describe(data: _Data, betas: np.ndarray) -> tuple[tuple[MetricWeight, ...], tuple[GroupWeight, ...]]:
    """The per-metric and per-group report of a final fit, with weights rounded as written."""
    weights = derive_weights(betas, data.member, data.old_within, data.old_share)
    if weights is None:
        raise DataError(
            "no metric's score goes with less churn: every fitted effect has the wrong sign or none",
            [Problem("calibrate found nothing to weight", hint="check the churn column: true or yes means churned")],
        )
    group, within = weights
    names = list(data.config.groups)
    new_group = round_to_total(group)
    new_within = np.array([round_to_total(row) for row in within])
    old_group = data.old_share.sum(axis=1) * 100
    groups = []
    for i, name in enumerate(names):
        held = list(data.config.groups[name].metrics)
        cols = [data.metrics.index(m) for m in held]
        groups.append(
            GroupWeight(
                group=name,
                old_weight=round(float(old_group[i]), 1),
                new_weight=float(new_group[i]),
                old_metrics={m: round(float(data.old_within[i, c] * 100), 1) for m, c in zip(held, cols, strict=True)},
                new_metrics={m: float(new_within[i, c]) for m, c in zip(held, cols, strict=True)},
                flag=GROUP_ZEROED if group[i] <= 0 else "",
            )
        )
    new_share = (new_group[:, None] / 100) * new_within
    varies = data.x.std(axis=0) > 1e-12
    metrics = tuple(
        MetricWeight(
            metric=m,
            groups=tuple(n for i, n in enumerate(names) if data.member[i, j]),
            beta=float(betas[j]),
            old_share=round(float(data.old_share[:, j].sum() * 100), 1),
            new_share=round(float(new_share[:, j].sum()), 1),
            flag=TOO_LITTLE_DATA
            if data.sparse[j]
            else NO_VARIATION
            if not varies[j]
            else WRONG_SIGN
            if betas[j] < 0
            else "",
        )
        for j, m in enumerate(data.metrics)
    )
    return metrics, tuple(groups)
