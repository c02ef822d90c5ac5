"""Explanations: which metrics cost an account the most points.

A metric's points lost are its effective weight times the distance of its score from
a perfect 10, on the 0..100 scale. The `top_drivers` column and `explain_account` (the
`healthscore explain` command) share this. The explanation's data types are in
`explanation`, the lookup of an account id (with close ids suggested) in `account_ids`.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.account_ids import close_ids, find_account
from healthscore.explanation import (
    AccountExplanation,
    GroupExplanation,
    JsonScalar,
    MetricExplanation,
    MetricStatus,
    OverrideInfo,
)
from healthscore.expr import parse
from healthscore.parallel import on_two_threads
from healthscore.scoring import BLOCK, group_weight_matrix, metric_weight_matrix, segment_of

if TYPE_CHECKING:
    from healthscore.config import Config
    from healthscore.models import MetricConfig
    from healthscore.pipeline import RunResult

__all__ = [  # the explanation types and close_ids are re-exported: render_explain, trend and the tests use them
    "MIN_POINTS",
    "TOP_DRIVERS",
    "AccountExplanation",
    "GroupExplanation",
    "JsonScalar",
    "MetricExplanation",
    "OverrideInfo",
    "close_ids",
    "explain_account",
    "find_account",
    "json_value",
    "points_lost",
    "ranked_drivers",
    "top_drivers",
]

TOP_DRIVERS = 3
MIN_POINTS = 0.05


def points_lost(effective_weights: pd.DataFrame, metric_scores: pd.DataFrame) -> pd.DataFrame:
    """Accounts x metrics: points of the 0..100 score each metric costs (0 when missing);
    the two frames hold the same accounts in the same order (a run's)."""
    if not effective_weights.index.equals(metric_scores.index):
        raise ValueError("points_lost needs effective weights and metric scores of the same accounts, in order")
    gap = 10.0 - metric_scores[effective_weights.columns].to_numpy(dtype="float64")
    gap[np.isnan(gap)] = 0.0
    lost = effective_weights.to_numpy(dtype="float64") * gap * 10.0  # numpy, not pandas' alignment on account ids
    return pd.DataFrame(lost, index=effective_weights.index, columns=effective_weights.columns, copy=False)


def ranked_drivers(
    lost: pd.DataFrame, metric_scores: pd.DataFrame, n: int = TOP_DRIVERS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per account, the column positions of the `n` metrics costing the most points (most
    first, ties by column order), their points lost, and their 0..10 scores; a driver is
    shown only when its points reach MIN_POINTS."""
    return _ranked(lost.to_numpy(dtype="float64"), metric_scores[lost.columns].to_numpy(dtype="float64"), n)


def _ranked(values: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`ranked_drivers` of points lost `values` and metric `scores` (accounts x metrics)."""
    order = np.argsort(-values, axis=1, kind="stable")[:, :n]
    return order, np.take_along_axis(values, order, axis=1), np.take_along_axis(scores, order, axis=1)


def top_drivers(
    lost: pd.DataFrame, metric_scores: pd.DataFrame, labels: dict[str, str], n: int = TOP_DRIVERS
) -> pd.Series:
    """Per account, the `n` metrics costing the most points, e.g. 'NPS 2.0/10 (-12.8)'; '' if none.

    The text is joined in Arrow, from the labels and numbers each formatted once, a block
    of accounts at a time (a block's arrays are reused rather than mapped anew), two blocks
    at once (Arrow and numpy let go of the GIL)."""
    if lost.empty or not len(lost.columns):
        return pd.Series("", index=lost.index, dtype="str")
    names = pa.array([labels.get(c, c) for c in lost.columns], type=pa.large_string())
    values = lost.to_numpy(dtype="float64")
    scores = metric_scores[lost.columns].to_numpy(dtype="float64")
    blocks = on_two_threads(
        lambda start: _drivers_text(names, values[start : start + BLOCK], scores[start : start + BLOCK], n),
        range(0, len(lost), BLOCK),
    )
    return pd.Series(pa.chunked_array(blocks, type=pa.large_string()).to_pandas().array, index=lost.index)


def _drivers_text(names: pa.Array, values: np.ndarray, scores: np.ndarray, n: int) -> pa.Array:
    """The top drivers' text of a block of accounts (points lost `values`, metric `scores`)."""
    order, top_points, top_scores = _ranked(values, scores, n)
    text = pa.repeat(_literal(""), len(values))
    for rank in range(order.shape[1]):
        keep = top_points[:, rank] >= MIN_POINTS
        part = pc.binary_join_element_wise(
            names.take(order[:, rank]),
            _literal(" "),
            _one_decimal(top_scores[:, rank]),
            _literal("/10 (-"),
            _one_decimal(top_points[:, rank]),
            _literal(")"),
            _literal(""),  # the separator between the pieces
        )
        after = pc.binary_join_element_wise(text, part, _literal("; "))
        text = pc.if_else(keep, pc.if_else(pc.greater(pc.binary_length(text), 0), after, part), text)
    return text


def _literal(value: str) -> pa.Scalar:
    """A text constant for the Arrow joins above."""
    return pa.scalar(value, type=pa.large_string())


def _one_decimal(values: np.ndarray) -> pa.Array:
    """Numbers rounded to one decimal as text ('12.0', never '-0.0'; 'nan' for NaN), each
    distinct value formatted once."""
    codes, distinct = pd.factorize(np.round(values, 1) + 0.0)  # NaN is code -1
    texts = pa.array([*(str(v) for v in distinct), "nan"], type=pa.large_string())
    return texts.take(np.where(codes < 0, len(distinct), codes))


# ---- one account, explained ------------------------------------------------------------------


def explain_account(result: RunResult, config: Config, account_id: str) -> AccountExplanation:
    """Explain one account of a run: every group and metric with its score, weights,
    contribution and points lost (the `top_drivers` numbers). An unknown id raises
    UsageError naming the accounts source and suggesting close ids."""
    if result.metric_scores is None or result.points_lost is None or result.scores is None:
        raise ValueError("the run result lacks metric scores, points lost or scores")
    pos = find_account(result.table, config, account_id)
    row = result.table.iloc[pos]
    metrics = list(result.metric_scores.columns)
    scores = result.metric_scores.iloc[pos].to_numpy(dtype="float64")
    effective = result.scores.effective_weights.iloc[pos][metrics].to_numpy(dtype="float64")
    lost = result.points_lost.iloc[pos][metrics].to_numpy(dtype="float64")
    profile = str(result.scores.profile.iloc[pos])
    model = _Model(config, metrics, result.scores.profile.iloc[[pos]], ~np.isnan(scores))
    entry = _metric_entries(config, model, row, scores, effective, lost)
    flat = [
        entry(i, model.member_of[m][0] if len(model.member_of[m]) == 1 else None, 1.0) for i, m in enumerate(metrics)
    ]
    group_scores = result.scores.groups.iloc[pos] if len(result.scores.groups.columns) else None
    groups = _group_explanations(config, model, group_scores, entry)
    explanation = AccountExplanation(
        account_id=str(row["account_id"]),
        name=_account_name(result, config, row, pos),
        as_of=result.as_of,
        health_score=_float(row["health_score"]),
        unrounded_score=_float(result.scores.health.iloc[pos]),
        segment=str(row["segment"]),
        color=str(row["color"]),
        action=str(row["action"]),
        coverage=float(result.scores.coverage.iloc[pos]),
        min_coverage=config.score.min_coverage,
        profile=profile if config.profiles else None,
        method=config.score.method,
        formula=config.score.formula if config.score.method == "formula" else None,
        override=_override(row),
        top_drivers=str(row.get("top_drivers", "")),
        groups=tuple(_by_points_lost(groups)),
        metrics=tuple(_by_points_lost(flat)),
    )
    band = _band(config, explanation.health_score)
    return replace(explanation, notes=tuple(_account_notes(explanation, band)))


Ranked = TypeVar("Ranked", MetricExplanation, GroupExplanation)


class _Model:
    """The weights model as it applies to one account: nominal and effective shares."""

    def __init__(self, config: Config, metrics: list[str], profile: pd.Series, present: np.ndarray) -> None:
        self.groups = list(config.groups)
        self.metrics = metrics
        self.present = present
        n_groups = len(self.groups)
        self.member_of: dict[str, tuple[str, ...]] = {
            m: tuple(g for g in self.groups if m in config.groups[g].metrics) for m in metrics
        }
        if not n_groups:
            self.group_share = np.zeros(0)
            self.group_has_data = np.zeros(0, dtype=bool)
            self.within = np.zeros((0, len(metrics)))
            self.nominal = np.zeros((0, len(metrics)))
            self.share = np.zeros((0, len(metrics)))
            return
        weights = group_weight_matrix(config, profile)[0]
        self.group_share = weights / weights.sum()
        self.within = metric_weight_matrix(config, metrics)  # groups x metrics, rows sum to 1
        self.nominal = self.group_share[:, None] * self.within  # share of the score with all data present
        present_weight = self.within @ present.astype("float64")
        self.group_has_data = present_weight > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            # each metric's effective weight through each of its groups, as a share of its total
            through = np.where(self.group_has_data[:, None], self.within * present / present_weight[:, None], 0.0)
            through = through * np.where(self.group_has_data, weights, 0.0)[:, None]
            total = through.sum(axis=0)
            self.share = np.where(total > 0, through / total, 0.0)
        # a metric in a single group gets share 1 there (x / x), so its figures are the run's exactly
        for i, m in enumerate(metrics):
            if len(self.member_of[m]) == 1:
                self.share[:, i] = 0.0
                self.share[self.groups.index(self.member_of[m][0]), i] = 1.0


MetricEntry = Callable[[int, str | None, float], MetricExplanation]


def _metric_entries(
    config: Config, model: _Model, row: pd.Series, scores: np.ndarray, effective: np.ndarray, lost: np.ndarray
) -> MetricEntry:
    """The maker of one account's metric entries: `entry(i, group, share)` explains metric i
    through `group` (None: its flat total) with `share` of its effective weight and points lost."""
    metrics = model.metrics
    raws = {m: json_value(row[m]) if m in row.index else None for m in metrics}
    status = {m: _status(config.metrics[m], raws[m], scores[i]) for i, m in enumerate(metrics)}
    notes_of = {m: _metric_note(config, model, m, status[m]) for m in metrics}

    def entry(i: int, group: str | None, share: float) -> MetricExplanation:
        m = metrics[i]
        score = None if np.isnan(scores[i]) else float(scores[i]) + 0.0
        weight = model.nominal[:, i].sum() if group is None else model.nominal[model.groups.index(group), i]
        eff = float(effective[i]) * share
        return MetricExplanation(
            name=m,
            label=config.metric_label(m),
            group=group,
            groups=model.member_of[m],
            raw=raws[m],
            score=score,
            weight=float(weight),
            effective_weight=eff,
            contribution=0.0 if score is None else eff * score * 10.0,
            points_lost=float(lost[i]) * share,
            status=status[m],
            note=notes_of[m],
        )

    return entry


def _group_explanations(
    config: Config, model: _Model, group_scores: pd.Series | None, entry: MetricEntry
) -> list[GroupExplanation]:
    """Each group of the account, in config order, with its metrics' shares through it (most
    points lost first) and their sums."""
    groups = []
    for g, name in enumerate(model.groups):
        members = [
            entry(i, name, float(model.share[g, i])) for i, m in enumerate(model.metrics) if name in model.member_of[m]
        ]
        members = _by_points_lost(members)
        value = np.nan if group_scores is None else float(group_scores[name])
        groups.append(
            GroupExplanation(
                name=name,
                label=config.group_label(name),
                weight=float(model.group_share[g]),
                effective_weight=float(sum(m.effective_weight for m in members)),
                score=None if np.isnan(value) else value + 0.0,
                contribution=float(sum(m.contribution for m in members)),
                points_lost=float(sum(m.points_lost for m in members)),
                has_data=bool(model.group_has_data[g]),
                metrics=tuple(members),
                note=_group_note(config, model, g),
            )
        )
    return groups


def json_value(value: object) -> JsonScalar:
    """A table cell as JSON-ready data: None for missing, plain numbers, dates as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number + 0.0
    if isinstance(value, pd.Timestamp | dt.datetime):
        stamp = pd.Timestamp(value)
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _float(value: object) -> float | None:
    """A number, or None when missing."""
    number = json_value(value)
    return float(number) + 0.0 if isinstance(number, int | float) and not isinstance(number, bool) else None


def _by_points_lost(items: list[Ranked]) -> list[Ranked]:
    """Most points lost first; ties keep their order (the config's)."""
    return sorted(items, key=lambda item: -item.points_lost)


def _status(metric: MetricConfig, raw: JsonScalar, score: float) -> MetricStatus:
    """How the metric's score came about for this account."""
    if np.isnan(score):
        return "missing"
    if raw is None and metric.missing_score is not None:
        return "fixed_score"
    if metric.missing_fill is not None and raw == metric.missing_fill:
        return "filled"
    return "scored"


def _shown(value: float | bool | str | None) -> str:
    """A config value as YAML would show it: 0 not 0.0, true not True."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _metric_note(config: Config, model: _Model, metric: str, status: MetricStatus) -> str:
    """What happened to a metric's weight: where a missing one's went, a fixed score, a fill."""
    spec = config.metrics[metric]
    groups = model.member_of[metric]
    if not groups:
        users = [n for n, m in config.metrics.items() if m.expr is not None and metric in parse(m.expr).names]
        used = f"; used by {', '.join(users)}" if users else ""
        return f"in no group: carries no weight{used}"
    if status == "fixed_score":
        policy = "neutral" if spec.missing == "neutral" else f"{{score: {spec.missing_score:g}}}"
        return f"no data: fixed score {spec.missing_score:g}/10 (missing: {policy})"
    if status == "filled":
        fill = _shown(spec.missing_fill)
        return f"no data counts as {fill} (missing: {{fill: {fill}}})"
    if status != "missing":
        return ""
    i = model.metrics.index(metric)
    parts = []
    for group in groups:
        g = model.groups.index(group)
        share = _percent(float(model.nominal[g, i]))
        label = config.group_label(group)
        if model.group_has_data[g]:
            others = [
                config.metric_label(m)
                for j, m in enumerate(model.metrics)
                if model.present[j] and model.within[g, j] > 0 and m != metric
            ]
            parts.append(f"its {share} of the score went to the other metrics of {label}: {', '.join(others)}")
        else:
            parts.append(
                f"group {label} had no data: its {_percent(float(model.group_share[g]))} went to the other groups"
            )
    return "; ".join(parts)


def _group_note(config: Config, model: _Model, g: int) -> str:
    """For a group without data, where its weight went."""
    if model.group_has_data[g]:
        return ""
    share = _percent(float(model.group_share[g]))
    takers = [
        config.group_label(name)
        for k, name in enumerate(model.groups)
        if model.group_has_data[k] and model.group_share[k] > 0
    ]
    if not takers:
        return f"no data: its {share} of the score had nowhere to go (no group had data)"
    went = f"no data: its {share} of the score went to the other groups, in proportion to their weights"
    return f"{went}: {', '.join(takers)}"


def _account_name(result: RunResult, config: Config, row: pd.Series, pos: int) -> str | None:
    """The account's name from the accounts.name column, if the config names one."""
    column = config.accounts.name
    if column is None:
        return None
    if column in row.index:
        value = json_value(row[column])
    else:
        frame = result.sources[config.accounts.source].frame
        value = json_value(frame[column].iloc[pos]) if column in frame.columns else None
    return None if value is None else str(value)


def _override(row: pd.Series) -> OverrideInfo | None:
    """The account's active CSM override, from the audit columns of the scored table."""
    reason = json_value(row.get("override_reason"))
    if not reason:
        return None
    return OverrideInfo(str(reason), _float(row.get("computed_score")), str(json_value(row.get("computed_segment"))))


def _band(config: Config, score: float | None) -> str | None:
    """The segment whose band holds the score (None when there is no score)."""
    if score is None:
        return None
    return str(segment_of(pd.Series([score]), config.segments)["segment"].iloc[0])


def _account_notes(e: AccountExplanation, band: str | None) -> list[str]:
    """Plain sentences about the score as a whole: formula, override, a held segment, coverage."""
    notes = []
    if e.method == "formula":
        score = "no score" if e.unrounded_score is None else f"{e.unrounded_score:.1f}"
        notes.append(
            f"score.method is formula: the health score ({score}) comes from the formula {e.formula}. "
            f"The contributions and points lost below come from the group and metric weights, which give "
            f"{e.weights_score:.1f}, not from the formula."
            if e.groups
            else f"score.method is formula: the health score ({score}) comes from the formula {e.formula}; "
            "the config has no groups, so no metric carries a weight."
        )
    if e.override is not None:
        computed = "no score" if e.override.computed_score is None else f"{e.override.computed_score:.1f}"
        notes.append(
            f"overridden by a CSM ({e.override.reason}): the model computed {computed}, "
            f"{e.override.computed_segment}; the figures below are the model's."
        )
    if e.override is None and band is not None and band != e.segment:
        notes.append(
            f"the score is in the {band} band; the segment stays {e.segment} from the previous run "
            "until the score moves far enough past the band edge (segments_hysteresis)."
        )
    if e.health_score is None and e.override is None:
        if e.coverage + 1e-9 < e.min_coverage:
            notes.append(
                f"Unscored: only {_percent(e.coverage)} of the weight had data, below "
                f"score.min_coverage {_percent(e.min_coverage)}."
            )
        else:
            notes.append("Unscored: no metric with weight had data.")
    elif e.coverage < 1 - 1e-9:
        notes.append(f"coverage {_percent(e.coverage)}: the missing metrics' weight went to those with data.")
    return notes
