"""Does the score see churn coming? Statistics of a scored table against known outcomes.

`backtest(table, churned, config)` measures the model's own scores (before any CSM
override) against churn outcomes: ROC AUC of the health score with a bootstrap interval,
churn rate per segment and per score decile with Wilson intervals, top-decile lift, the
AUC of every group and metric, and groups of strongly correlated metrics. The statistics
themselves (AUC, bootstrap, Wilson, deciles, correlation) are plain numpy in
`healthscore.stats`; this module applies them to a scored table, and `render_backtest`
draws the report.

Conventions: churn is the positive class and a LOW score should mean HIGH risk, so AUC is
P(score of a retained account > score of a churned one), ties counting one half. Metric
scores (0..10) are already oriented (higher = healthier), so an AUC clearly below 0.5 is
a metric with the wrong sign.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.stats import (
    LEVEL,
    RESAMPLES,
    SEED,
    auc,
    average_ranks,
    bootstrap_auc,
    components,
    decile_of,
    lowest_share_rate,
    pairwise_correlation,
    wilson,
)

__all__ = [  # the statistics are re-exported: cohorts, calibrate and the tests import them from here
    "CORRELATION",
    "LEVEL",
    "MIN_CLASS",
    "MIN_PAIRS",
    "NO_SIGNAL",
    "RESAMPLES",
    "SEED",
    "SIGNAL",
    "TOO_FEW",
    "WRONG_SIGN",
    "AucRow",
    "BacktestReport",
    "Correlated",
    "RateRow",
    "as_float",
    "auc",
    "auc_row",
    "average_ranks",
    "backtest",
    "bootstrap_auc",
    "check_classes",
    "components",
    "correlated_metrics",
    "count_rates",
    "decile_of",
    "decile_rates",
    "group_rows",
    "is_ordered",
    "lowest_share_rate",
    "metric_rows",
    "model_scores",
    "pairwise_correlation",
    "rate_rows",
    "rounded",
    "segment_rates",
    "wilson",
]

CORRELATION = 0.7
MIN_CLASS = 10  # fewer churned (or retained) accounts than this: a warning that intervals are wide
MIN_PAIRS = 10  # pairs of scores needed before a correlation counts

SIGNAL, NO_SIGNAL, WRONG_SIGN, TOO_FEW = "signal", "no signal", "wrong sign", "too few"


@dataclass(frozen=True)
class AucRow:
    """The AUC of one score (overall, a group or a metric) over the accounts that have it."""

    kind: str  # score, group, metric
    name: str
    label: str
    accounts: int
    churned: int
    auc: float | None
    low: float | None
    high: float | None
    verdict: str
    group: str = ""
    raw_auc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data (rounded)."""
        names = {"kind": self.kind, "name": self.name, "label": self.label, "group": self.group}
        counts = {"accounts": self.accounts, "churned": self.churned}
        values = {"auc": self.auc, "auc_low": self.low, "auc_high": self.high, "raw_auc": self.raw_auc}
        return names | counts | {k: rounded(v) for k, v in values.items()} | {"verdict": self.verdict}


@dataclass(frozen=True)
class RateRow:
    """Churn among a set of accounts (a segment or a score decile), with a Wilson interval."""

    label: str
    accounts: int
    churned: int
    rate: float | None
    low: float | None
    high: float | None
    score_min: float | None = None
    score_max: float | None = None
    score_mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data (rounded)."""
        row = {
            "label": self.label,
            "accounts": self.accounts,
            "churned": self.churned,
            "churn_rate": rounded(self.rate),
            "rate_low": rounded(self.low),
            "rate_high": rounded(self.high),
        }
        if self.score_min is not None:
            row |= {"score_min": self.score_min, "score_max": self.score_max, "score_mean": rounded(self.score_mean)}
        return row


@dataclass(frozen=True)
class Correlated:
    """Metrics whose scores correlate above the threshold (linked pairwise): candidates to merge."""

    metrics: tuple[str, ...]
    groups: tuple[str, ...]  # the config groups they sit in
    min_r: float  # the smallest |r| between two of them (chains can link weakly related ones)
    max_r: float
    pairs: tuple[tuple[str, str, float], ...]  # the links above the threshold, strongest first

    def to_dict(self) -> dict[str, Any]:
        """The group as plain data (rounded)."""
        pairs = [{"a": a, "b": b, "r": rounded(r)} for a, b, r in self.pairs]
        span = {"min_r": rounded(self.min_r), "max_r": rounded(self.max_r)}
        return {"metrics": list(self.metrics), "groups": list(self.groups), **span, "pairs": pairs}


@dataclass
class BacktestReport:
    """Everything `healthscore backtest` reports, built before anything is rendered."""

    as_of: dt.date
    score_source: str
    accounts: int
    with_outcome: int
    scored: int
    churned: int
    overall: AucRow
    lift: float
    lowest_accounts: int
    lowest_rate: float
    segments: list[RateRow]
    segments_ordered: bool
    deciles: list[RateRow]
    groups: list[AucRow]
    metrics: list[AucRow]
    correlated: list[Correlated]
    settings: dict[str, Any]
    warnings: list[Problem] = field(default_factory=list)
    segment_colours: dict[str, str] = field(default_factory=dict)  # for rendering

    @property
    def churn_rate(self) -> float:
        """The churn rate over the scored accounts with an outcome."""
        return self.churned / self.scored

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain data: backtest.json."""
        return {
            "as_of": self.as_of.isoformat(),
            "score_source": self.score_source,
            "accounts": self.accounts,
            "with_outcome": self.with_outcome,
            "scored_with_outcome": self.scored,
            "churned": self.churned,
            "churn_rate": rounded(self.churn_rate),
            "auc": self.overall.to_dict(),
            "top_decile": {
                "accounts": self.lowest_accounts,
                "churn_rate": rounded(self.lowest_rate),
                "lift": rounded(self.lift),
            },
            "segments": [row.to_dict() for row in self.segments],
            "segments_ordered": self.segments_ordered,
            "deciles": [row.to_dict() for row in self.deciles],
            "groups": [row.to_dict() for row in self.groups],
            "metrics": [row.to_dict() for row in self.metrics],
            "correlated_metrics": [c.to_dict() for c in self.correlated],
            "settings": self.settings,
            "warnings": [w.to_dict() for w in self.warnings],
        }

    def metrics_frame(self) -> pd.DataFrame:
        """One row per score, group and metric with its AUC: backtest_metrics.csv."""
        rows = [row.to_dict() for row in [self.overall, *self.groups, *self.metrics]]
        return pd.DataFrame(rows)


def model_scores(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The model's own health score and segment per account: overridden accounts get back
    their computed values (an override is a CSM's call, not the model's)."""
    score, segment = table["health_score"].astype(float), table["segment"].astype("object")
    if "override_reason" in table.columns:
        overridden = table["override_reason"].fillna("").astype("str").ne("")
        score = score.mask(overridden, table["computed_score"].astype(float))
        segment = segment.mask(overridden, table["computed_segment"])
    return score, segment


def backtest(
    table: pd.DataFrame,
    churned: pd.Series,
    config: Config,
    *,
    as_of: dt.date,
    score_source: str = "",
    resamples: int = RESAMPLES,
    seed: int = SEED,
    threshold: float = CORRELATION,
) -> BacktestReport:
    """Measure a scored table against churn outcomes (a 'boolean' Series indexed like the table,
    <NA> where unknown). DataError when the scored accounts with an outcome are all churned
    or all retained (the AUC is then undefined)."""
    score, segment = model_scores(table)
    known = churned.notna().to_numpy(dtype=bool)
    flags = churned.fillna(False).to_numpy(dtype=bool)
    scored = known & score.notna().to_numpy(dtype=bool)
    y, health = flags[scored], score.to_numpy(dtype=float)[scored]
    check_classes(int(y.sum()), int((~y).sum()))
    boot = {"resamples": resamples, "seed": seed, "level": LEVEL}
    overall = auc_row("score", "health_score", "Health score", health, y, boot)
    take, rate = lowest_share_rate(health, y)
    settings = {
        "bootstrap": {**boot, "method": "stratified percentile bootstrap"},
        "correlation": {
            "method": "pearson",
            "on": "metric scores",
            "pairs": "pairwise complete",
            "threshold": threshold,
        },
        "deciles": "by average rank of the health score; 1 = lowest scores",
        "top_decile": "the ceil(10 %) lowest scores; ties at the cut counted in proportion",
    }
    order = [band.name for band in config.segments]
    segments = segment_rates(segment[known], flags[known], order)
    return BacktestReport(
        as_of=as_of,
        score_source=score_source,
        accounts=len(table),
        with_outcome=int(known.sum()),
        scored=int(scored.sum()),
        churned=int(y.sum()),
        overall=overall,
        lift=rate / float(y.mean()),
        lowest_accounts=take,
        lowest_rate=rate,
        segments=segments,
        segments_ordered=is_ordered(segments, order),
        deciles=decile_rates(health, y),
        groups=group_rows(table, flags, known, config, boot),
        metrics=metric_rows(table, flags, known, config, boot),
        correlated=correlated_metrics(table, config, threshold),
        settings=settings,
        warnings=_small_sample_warnings(int(y.sum()), int((~y).sum()), int(known.sum()) - int(scored.sum())),
        segment_colours={band.name: band.color for band in config.segments},
    )


def auc_row(
    kind: str, name: str, label: str, scores: np.ndarray, y: np.ndarray, boot: dict[str, Any], **extra: Any
) -> AucRow:
    """AUC with its bootstrap interval and verdict: signal (interval above 0.5), wrong sign
    (below), no signal (holds 0.5), too few (one class missing)."""
    value = auc(scores, y)
    if np.isnan(value):
        return AucRow(kind, name, label, len(y), int(y.sum()), None, None, None, TOO_FEW, **extra)
    low, high = bootstrap_auc(scores, y, boot["resamples"], boot["seed"], boot["level"])
    verdict = SIGNAL if low > 0.5 else WRONG_SIGN if high < 0.5 else NO_SIGNAL
    return AucRow(kind, name, label, len(y), int(y.sum()), value, low, high, verdict, **extra)


def rate_rows(labels: list[str], keys: np.ndarray, y: np.ndarray, values: list[Any]) -> list[RateRow]:
    """Churn per key value (in the order of `values`), with Wilson intervals."""
    codes = pd.Index(values).get_indexer(keys)
    accounts = np.bincount(codes[codes >= 0], minlength=len(values))
    churned = np.bincount(codes[codes >= 0], weights=y[codes >= 0], minlength=len(values)).astype(int)
    return count_rates(labels, accounts, churned)


def count_rates(labels: list[str], accounts: np.ndarray, churned: np.ndarray) -> list[RateRow]:
    """Churn rates from counts of accounts and churned accounts, with Wilson intervals."""
    low, high = wilson(churned, accounts)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = churned / accounts
    return [
        RateRow(label, int(n), int(k), as_float(r), as_float(lo), as_float(hi))
        for label, n, k, r, lo, hi in zip(labels, accounts, churned, rate, low, high, strict=True)
    ]


def segment_rates(segment: pd.Series, y: np.ndarray, order: list[str]) -> list[RateRow]:
    """Churn per segment in config order (lowest first), then any other segment (Unscored)."""
    others = sorted(set(segment.astype("str")) - set(order))
    values = [*order, *others]
    return rate_rows(values, segment.astype("str").to_numpy(), y, values)


def is_ordered(rows: list[RateRow], order: list[str]) -> bool:
    """True when churn falls (or stays) from each segment to the next healthier one."""
    rates = [row.rate for row in rows if row.label in order and row.rate is not None]
    return all(a >= b for a, b in itertools.pairwise(rates))


def decile_rates(scores: np.ndarray, y: np.ndarray, bins: int = 10) -> list[RateRow]:
    """The calibration table: churn per score decile (1 = lowest scores), with score ranges."""
    bin_of = decile_of(scores, bins)
    values = sorted(set(bin_of.tolist()))
    rows = rate_rows([str(b + 1) for b in values], bin_of, y, values)
    frame = pd.DataFrame({"bin": bin_of, "score": scores}).groupby("bin")["score"].agg(["min", "max", "mean"])
    return [
        RateRow(row.label, row.accounts, row.churned, row.rate, row.low, row.high, float(lo), float(hi), float(mean))
        for row, lo, hi, mean in zip(rows, frame["min"], frame["max"], frame["mean"], strict=True)
    ]


def group_rows(
    table: pd.DataFrame, flags: np.ndarray, known: np.ndarray, config: Config, boot: dict[str, Any]
) -> list[AucRow]:
    """The AUC of each group's 0..100 score, over accounts with an outcome and that group."""
    rows = []
    for name in config.groups:  # a handful of groups, each one vectorized
        values = table[f"group_{name}"].to_numpy(dtype=float)
        use = known & ~np.isnan(values)
        rows.append(auc_row("group", name, config.group_label(name), values[use], flags[use], boot))
    return rows


def metric_rows(
    table: pd.DataFrame, flags: np.ndarray, known: np.ndarray, config: Config, boot: dict[str, Any]
) -> list[AucRow]:
    """The AUC of each metric's 0..10 score (and of its raw value, when numeric), over the
    accounts with an outcome that have the metric; best first."""
    group_of = {m: g for g, group in config.groups.items() for m in group.metrics}
    rows = []
    for name in config.metrics:  # one vectorized AUC per metric
        if f"{name}_score" not in table.columns:
            continue
        score = table[f"{name}_score"].to_numpy(dtype=float)
        raw = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        has = known & ~np.isnan(score) & table[name].notna().to_numpy(dtype=bool)
        raw_auc = as_float(auc(raw[has], flags[has])) if not np.isnan(raw[has]).any() else None
        extra = {"group": group_of.get(name, ""), "raw_auc": raw_auc}
        rows.append(auc_row("metric", name, config.metric_label(name), score[has], flags[has], boot, **extra))
    return sorted(rows, key=lambda r: (r.auc is None, -(r.auc or 0.0), r.name))


def correlated_metrics(table: pd.DataFrame, config: Config, threshold: float) -> list[Correlated]:
    """Groups of metrics linked by |r| > threshold between their scores over all accounts
    (pairwise complete rows, at least MIN_PAIRS of them); outcomes play no part."""
    names = [m for m in config.metrics if f"{m}_score" in table.columns]
    if len(names) < 2:
        return []
    values = table[[f"{m}_score" for m in names]].to_numpy(dtype=float)
    r, overlap = pairwise_correlation(values)
    linked = (np.abs(np.nan_to_num(r)) > threshold) & (overlap >= MIN_PAIRS)
    np.fill_diagonal(linked, False)
    group_of = {m: g for g, group in config.groups.items() for m in group.metrics}
    found = []
    for members in components(linked):
        inner = np.abs(r[np.ix_(members, members)])[~np.eye(len(members), dtype=bool)]
        metrics = tuple(names[i] for i in members)
        groups = tuple(sorted({group_of.get(m, "") for m in metrics} - {""}))
        links = [(names[i], names[j], float(r[i, j])) for i in members for j in members if i < j and linked[i, j]]
        pairs = tuple(sorted(links, key=lambda link: -abs(link[2])))
        found.append(Correlated(metrics, groups, float(np.nanmin(inner)), float(np.nanmax(inner)), pairs))
    return found


def check_classes(n_churned: int, n_retained: int) -> None:
    """DataError when the AUC is undefined: no churned or no retained scored account."""
    if n_churned and n_retained:
        return
    which = "churned" if not n_churned else "retained"
    raise DataError(
        f"no scored account with an outcome {'churned' if not n_churned else 'stayed'}: the AUC is undefined",
        [
            Problem(
                f"{n_churned} churned and {n_retained} retained scored accounts have an outcome",
                "outcomes",
                f"a backtest needs both churned and retained accounts; add {which} accounts or check the churn column",
            )
        ],
    )


def _small_sample_warnings(n_churned: int, n_retained: int, unscored: int) -> list[Problem]:
    """Warnings that the figures rest on few accounts, or that some could not be scored."""
    warnings = []
    if min(n_churned, n_retained) < MIN_CLASS:
        warnings.append(
            Problem(
                f"only {n_churned} churned and {n_retained} retained scored accounts: the intervals are wide",
                "outcomes",
                "treat the figures as a rough indication; backtest over a longer period for more outcomes",
            )
        )
    if unscored:
        warnings.append(
            Problem(f"{unscored} account(s) with an outcome are Unscored and left out of the AUC", "outcomes")
        )
    return warnings


def as_float(value: Any) -> float | None:
    """A float, or None for NaN."""
    number = float(value)
    return None if np.isnan(number) else number


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A float rounded for JSON and CSV output; None stays None."""
    return None if value is None else round(float(value), digits)
