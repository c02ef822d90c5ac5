"""Churn by cohort of one metric's raw value: the evidence for choosing bands and anchors.

`cohorts(table, churned, config, metric)` cuts the accounts with an outcome into bins of
the metric's raw value (deciles by default; tied values share a bin) and gives each bin's
churn rate with a Wilson interval; accounts without a value get a row of their own.
`suggest_bands` then splits the bins into a few contiguous bands where churn changes
most (the split of greatest binomial likelihood, found by dynamic programming over bins)
and turns them into a `bands` scale, plus `linear` anchors when churn moves one way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthscore.backtest import RateRow, as_float, check_classes, count_rates, rate_rows, rounded
from healthscore.config import Config
from healthscore.errors import Problem, UsageError
from healthscore.stats import auc, decile_of

BINS = 10
BANDS = 3
MISSING = "(no value)"


@dataclass(frozen=True)
class Cohort:
    """One bin of raw values: its range, its churn and the metric's mean score in it."""

    low: float
    high: float
    rate: RateRow
    score_mean: float | None

    def to_dict(self) -> dict[str, Any]:
        """The bin as plain data (rounded)."""
        return {"low": self.low, "high": self.high, **self.rate.to_dict(), "score_mean": rounded(self.score_mean)}


@dataclass(frozen=True)
class Band:
    """A suggested band: values up to `upto` (inclusive; None = the rest) get `score` points."""

    upto: float | None
    score: float
    rate: RateRow

    def to_dict(self) -> dict[str, Any]:
        """The band as plain data (rounded)."""
        return {"upto": self.upto, "score": self.score, **self.rate.to_dict()}


@dataclass(frozen=True)
class Suggestion:
    """Bands where churn changes most, as a `scale:` for the config, and linear anchors
    when churn falls (or rises) steadily across them."""

    bands: tuple[Band, ...]
    linear: tuple[float, float] | None
    note: str
    clear: bool  # the worst and best bands' 95 % intervals do not overlap

    @property
    def bands_yaml(self) -> str:
        """The bands as a one-line `scale:` of the config."""
        items = [f"{{upto: {_g(b.upto)}, score: {_g(b.score)}}}" for b in self.bands[:-1]]
        items.append(f"{{score: {_g(self.bands[-1].score)}}}")
        return f"scale: {{method: bands, bands: [{', '.join(items)}]}}"

    @property
    def linear_yaml(self) -> str | None:
        """The linear anchors as a one-line `scale:`, if churn moves one way."""
        if self.linear is None:
            return None
        return f"scale: {{method: linear, bad: {_g(self.linear[0])}, good: {_g(self.linear[1])}}}"

    def to_dict(self) -> dict[str, Any]:
        """The suggestion as plain data."""
        return {
            "bands": [b.to_dict() for b in self.bands],
            "bands_yaml": self.bands_yaml,
            "linear": None if self.linear is None else {"bad": self.linear[0], "good": self.linear[1]},
            "linear_yaml": self.linear_yaml,
            "note": self.note,
            "clear": self.clear,
        }


@dataclass
class CohortReport:
    """Churn by bin of one metric's raw value, built before anything is rendered."""

    metric: str
    label: str
    scale: str
    as_of: dt.date
    accounts: int
    churned: int
    raw_auc: float | None  # AUC of the raw value; above 0.5: higher values churn less
    cohorts: list[Cohort]
    missing: RateRow
    suggestion: Suggestion | None = None
    warnings: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The whole report as plain data."""
        return {
            "metric": self.metric,
            "label": self.label,
            "scale": self.scale,
            "as_of": self.as_of.isoformat(),
            "accounts": self.accounts,
            "churned": self.churned,
            "raw_auc": rounded(self.raw_auc),
            "cohorts": [c.to_dict() for c in self.cohorts],
            "missing": self.missing.to_dict(),
            "suggestion": None if self.suggestion is None else self.suggestion.to_dict(),
            "warnings": [w.to_dict() for w in self.warnings],
        }


def cohorts(
    table: pd.DataFrame,
    churned: pd.Series,
    config: Config,
    metric: str,
    *,
    as_of: dt.date,
    bins: int = BINS,
    bands: int | None = None,
) -> CohortReport:
    """Churn by bin of `metric`'s raw value over the accounts with an outcome; with `bands`,
    a suggestion of that many bands. UsageError for an unknown or non-numeric metric."""
    check_metric(table, config, metric)
    known = churned.notna().to_numpy(dtype=bool)
    y = churned.fillna(False).to_numpy(dtype=bool)[known]
    check_classes(int(y.sum()), int((~y).sum()))
    raw = pd.to_numeric(table[metric], errors="coerce").to_numpy(dtype=float)[known]
    has = ~np.isnan(raw)
    score_column = f"{metric}_score"
    scores = table[score_column].to_numpy(dtype=float)[known] if score_column in table else np.full(len(y), np.nan)
    rows = value_cohorts(raw[has], y[has], scores[has], bins)
    missing = count_rates([MISSING], np.array([(~has).sum()]), np.array([y[~has].sum()]))[0]
    report = CohortReport(
        metric=metric,
        label=config.metric_label(metric),
        scale=config.metrics[metric].scale.method,
        as_of=as_of,
        accounts=len(y),
        churned=int(y.sum()),
        raw_auc=as_float(auc(raw[has], y[has])),
        cohorts=rows,
        missing=missing,
    )
    if bands is not None:
        report.suggestion = suggest_bands(rows, bands)
    if len(rows) < 2:
        report.warnings.append(Problem(f"{metric} takes a single value here: there is nothing to cut", metric))
    return report


def check_metric(table: pd.DataFrame, config: Config, metric: str) -> None:
    """UsageError unless `metric` is a metric of the config with a numeric raw value."""
    if metric not in config.metrics or metric not in table.columns:
        raise UsageError(
            f"unknown metric {metric!r}",
            [Problem(f"metrics of the config: {', '.join(config.metrics)}", "METRIC", "name one of them")],
        )
    values = table[metric]
    if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)):
        raise UsageError(
            f"metric {metric!r} is not numeric ({values.dtype}): cohorts cut numbers into bins",
            [Problem("pick a numeric metric", "METRIC")],
        )


def value_cohorts(raw: np.ndarray, y: np.ndarray, scores: np.ndarray, bins: int) -> list[Cohort]:
    """Bins of raw values by average rank (tied values share a bin), lowest values first."""
    if len(raw) == 0:
        return []
    bin_of = decile_of(raw, bins)
    values = sorted(set(bin_of.tolist()))
    rates = rate_rows([str(i + 1) for i in range(len(values))], bin_of, y, values)
    frame = pd.DataFrame({"bin": bin_of, "raw": raw, "score": scores}).groupby("bin")
    ranges = frame["raw"].agg(["min", "max"])
    means = frame["score"].mean()
    return [
        Cohort(float(lo), float(hi), rate, as_float(mean))
        for rate, lo, hi, mean in zip(rates, ranges["min"], ranges["max"], means, strict=True)
    ]


def suggest_bands(rows: list[Cohort], bands: int) -> Suggestion | None:
    """Cut the bins into at most `bands` contiguous bands of greatest binomial likelihood;
    band scores 0..10 fall linearly with churn rate (the worst band 0, the best 10)."""
    if len(rows) < 2:
        return None
    n = np.array([c.rate.accounts for c in rows], dtype=float)
    k = np.array([c.rate.churned for c in rows], dtype=float)
    ends = best_split(n, k, min(bands, len(rows)))
    starts = [0, *(e + 1 for e in ends[:-1])]
    totals = [(int(n[a : b + 1].sum()), int(k[a : b + 1].sum())) for a, b in zip(starts, ends, strict=True)]
    labels = [_span(rows[a].low, rows[b].high) for a, b in zip(starts, ends, strict=True)]
    rates = count_rates(labels, np.array([t[0] for t in totals]), np.array([t[1] for t in totals]))
    churn = np.array([r.rate or 0.0 for r in rates])
    spread = churn.max() - churn.min()
    points = np.round(10 * (churn.max() - churn) / spread, 1) if spread > 0 else np.full(len(churn), 10.0)
    suggested = tuple(
        Band(None if i == len(ends) - 1 else rows[b].high, float(p), rate)
        for i, (b, p, rate) in enumerate(zip(ends, points, rates, strict=True))
    )
    worst, best = rates[int(np.argmax(churn))], rates[int(np.argmin(churn))]
    clear = spread > 0 and (best.high or 0.0) < (worst.low or 0.0)
    linear, note = _linear(suggested, rows, starts, ends)
    if not clear:
        note = (
            "the bands' churn rates lie within each other's 95 % intervals: no clear evidence that this "
            "metric separates churn (consider a lower weight)"
        )
        linear = None
    return Suggestion(suggested, linear, note, clear)


def best_split(accounts: np.ndarray, churned: np.ndarray, parts: int) -> list[int]:
    """The last bin of each of `parts` contiguous segments of bins that maximize the binomial
    log-likelihood of per-segment churn rates (dynamic programming over bins, vectorized)."""
    size = len(accounts)
    cn, ck = np.concatenate([[0], np.cumsum(accounts)]), np.concatenate([[0], np.cumsum(churned)])
    first, last = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    seg_n, seg_k = cn[last + 1] - cn[first], ck[last + 1] - ck[first]
    cost = np.where(last >= first, _deviance(seg_k, seg_n), np.inf)  # cost[first, last]
    best, back = cost[0].copy(), []  # best[j]: bins 0..j in one segment so far
    for _ in range(1, parts):  # one round per extra band (a handful)
        options = best[:-1, None] + cost[1:, :]  # previous segments end at i, the new one is i+1..j
        choice = np.argmin(options, axis=0)
        back.append(choice)
        best = np.concatenate([[np.inf], options[choice, np.arange(size)][1:]])
    ends, j = [size - 1], size - 1
    for choice in reversed(back):
        j = int(choice[j])
        ends.insert(0, j)
    return ends


def _deviance(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Minus the binomial log-likelihood of k churned of n at the rate k / n (0 log 0 = 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / np.maximum(n, 1), 0.0)
        terms = np.where(k > 0, k * np.log(np.where(p > 0, p, 1)), 0.0)
        terms += np.where(n - k > 0, (n - k) * np.log(np.where(p < 1, 1 - p, 1)), 0.0)
    return -terms


def _linear(
    bands: tuple[Band, ...], rows: list[Cohort], starts: list[int], ends: list[int]
) -> tuple[tuple[float, float] | None, str]:
    """Linear anchors from the bands when churn moves one way across them: `bad` at the edge
    of the worst band, `good` at the edge of the best one."""
    churn = np.array([b.rate.rate or 0.0 for b in bands])
    steps = np.diff(churn)
    if len(bands) < 2 or not ((steps <= 0).all() or (steps >= 0).all()) or not steps.any():
        return None, "churn does not move one way with the value: bands fit, a linear scale does not"
    if steps.sum() < 0:  # churn falls as the value grows: higher is better
        return (rows[ends[0]].high, rows[starts[-1]].low), "churn falls as the value grows (higher is better)"
    return (rows[starts[-1]].low, rows[ends[0]].high), "churn rises with the value (lower is better)"


def _span(low: float, high: float) -> str:
    """A range of values as shown: `3 - 5`, or `0` when it holds one value."""
    return _g(low) if low == high else f"{_g(low)} - {_g(high)}"


def _g(value: float | None) -> str:
    """A number as written in YAML: integers without a decimal point, else 4 significant digits."""
    if value is None:
        return "~"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
