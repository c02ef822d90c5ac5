"""Explanations: which metrics cost an account the most points.

A metric's points lost are its effective weight times the distance of its score from
a perfect 10, on the 0..100 scale. The `top_drivers` column and `explain_account` (the
`healthscore explain` command) share this.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import numbers
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np
import pandas as pd

from healthscore.errors import Problem, UsageError
from healthscore.expr import parse
from healthscore.scoring import group_weight_matrix, metric_weight_matrix, segment_of

if TYPE_CHECKING:
    from healthscore.config import Config
    from healthscore.models import MetricConfig
    from healthscore.pipeline import RunResult

TOP_DRIVERS = 3
MIN_POINTS = 0.05


def points_lost(effective_weights: pd.DataFrame, metric_scores: pd.DataFrame) -> pd.DataFrame:
    """Accounts x metrics: points of the 0..100 score each metric costs (0 when missing)."""
    gap = (10.0 - metric_scores[effective_weights.columns]).fillna(0.0)
    return effective_weights * gap * 10.0


def ranked_drivers(
    lost: pd.DataFrame, metric_scores: pd.DataFrame, n: int = TOP_DRIVERS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per account, the column positions of the `n` metrics costing the most points (most
    first, ties by column order), their points lost, and their 0..10 scores; a driver is
    shown only when its points reach MIN_POINTS."""
    values = lost.to_numpy(dtype="float64")
    order = np.argsort(-values, axis=1, kind="stable")[:, :n]
    rows = np.arange(len(lost))[:, None]
    scores = metric_scores[lost.columns].to_numpy(dtype="float64")
    return order, values[rows, order], scores[rows, order]


def top_drivers(
    lost: pd.DataFrame, metric_scores: pd.DataFrame, labels: dict[str, str], n: int = TOP_DRIVERS
) -> pd.Series:
    """Per account, the `n` metrics costing the most points, e.g. 'NPS 2.0/10 (-12.8)'; '' if none."""
    if lost.empty or not len(lost.columns):
        return pd.Series("", index=lost.index, dtype="str")
    names = np.array([labels.get(c, c) for c in lost.columns], dtype=object)
    order, top_points, top_scores = ranked_drivers(lost, metric_scores, n)
    text = pd.Series("", index=lost.index, dtype="str")
    for rank in range(min(n, len(lost.columns))):
        keep = top_points[:, rank] >= MIN_POINTS
        part = (
            pd.Series(names[order[:, rank]], index=lost.index, dtype="str")
            + " "
            + (pd.Series(top_scores[:, rank], index=lost.index).round(1) + 0.0).astype("str")  # no -0.0
            + "/10 (-"
            + pd.Series(top_points[:, rank], index=lost.index).round(1).astype("str")
            + ")"
        )
        sep = np.where((text.str.len() > 0).to_numpy() & keep, "; ", "")
        text = text + sep + part.where(keep, "")
    return text


# ---- one account, explained ------------------------------------------------------------------

MetricStatus = Literal["scored", "missing", "fixed_score", "filled"]
JsonScalar = str | int | float | bool | None
DECIMALS = 6  # of the numbers in to_dict(), like the raw values of the scored table
SUGGESTIONS = 3
SAMPLE = 20_000  # ids difflib looks at for suggestions (the error path; kept bounded)


@dataclass(frozen=True)
class MetricExplanation:
    """One metric of one account: its value and score, and what it does to the 0..100 score.

    Weights are fractions of the whole score (0..1): `weight` as configured for the
    account's profile, before missing data moved any of it; `effective_weight` after.
    `contribution` (effective weight x score x 10) and `points_lost` (effective weight x
    (10 - score) x 10) are points of the 0..100 score. In a group's list the numbers are
    the metric's share through that group; in the flat list, its totals (a metric in
    several groups, which is rare, has one entry per group and one flat total).
    """

    name: str
    label: str
    group: str | None  # the group of this entry; in the flat list None when in no group or in several
    groups: tuple[str, ...]  # every group the metric belongs to
    raw: JsonScalar
    score: float | None  # 0..10; None when missing
    weight: float
    effective_weight: float
    contribution: float
    points_lost: float
    status: MetricStatus
    note: str = ""  # e.g. where a missing metric's weight went

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data (no NaN; numbers rounded to 6 decimals)."""
        return {
            "name": self.name,
            "label": self.label,
            "group": self.group,
            "groups": list(self.groups),
            "raw": _round(self.raw) if isinstance(self.raw, float) else self.raw,
            "score": _round(self.score),
            "weight": _round(self.weight),
            "effective_weight": _round(self.effective_weight),
            "contribution": _round(self.contribution),
            "points_lost": _round(self.points_lost),
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True)
class GroupExplanation:
    """One group of one account: its 0..100 score and its metrics, most points lost first.

    `weight` is the group's share of the score (0..1) for the account's profile;
    `effective_weight` its share once groups without data gave theirs away. Contribution
    and points lost are points of the 0..100 score, the sums of its metrics' figures.
    """

    name: str
    label: str
    weight: float
    effective_weight: float
    score: float | None  # 0..100; None when no metric of the group had data
    contribution: float
    points_lost: float
    has_data: bool
    metrics: tuple[MetricExplanation, ...]
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data (no NaN; numbers rounded to 6 decimals)."""
        return {
            "name": self.name,
            "label": self.label,
            "weight": _round(self.weight),
            "effective_weight": _round(self.effective_weight),
            "score": _round(self.score),
            "contribution": _round(self.contribution),
            "points_lost": _round(self.points_lost),
            "has_data": self.has_data,
            "note": self.note,
            "metrics": [m.to_dict() for m in self.metrics],
        }


@dataclass(frozen=True)
class OverrideInfo:
    """An active CSM override of the account: why, and what the model had computed."""

    reason: str
    computed_score: float | None
    computed_segment: str

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data."""
        return {
            "reason": self.reason,
            "computed_score": _round(self.computed_score),
            "computed_segment": self.computed_segment,
        }


@dataclass(frozen=True)
class AccountExplanation:
    """Why one account has its score: groups and metrics sorted by the points they cost.

    `health_score` is the published score (one decimal, None when Unscored, an override's
    when one is active); `unrounded_score` the model's own, before rounding. Under the
    weights method the metric contributions add up to `unrounded_score` and the points
    lost to 100 minus it; under the formula method they come from the weights all the
    same (see `notes`). Weights are fractions (0..1) of the whole score.
    """

    account_id: str
    name: str | None
    as_of: dt.date
    health_score: float | None
    unrounded_score: float | None
    segment: str
    color: str
    action: str
    coverage: float
    min_coverage: float
    profile: str | None  # None when the config has no profiles
    method: Literal["weights", "formula"]
    formula: str | None
    override: OverrideInfo | None
    top_drivers: str
    groups: tuple[GroupExplanation, ...]
    metrics: tuple[MetricExplanation, ...]  # every metric, most points lost first
    notes: tuple[str, ...] = ()

    @property
    def weights_score(self) -> float:
        """The score the weights model gives: the sum of the metric contributions."""
        return float(sum(m.contribution for m in self.metrics))

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data: dates as ISO text, no NaN, numbers rounded to 6 decimals."""
        return {
            "account_id": self.account_id,
            "name": self.name,
            "as_of": self.as_of.isoformat(),
            "health_score": _round(self.health_score),
            "unrounded_score": _round(self.unrounded_score),
            "segment": self.segment,
            "color": self.color,
            "action": self.action,
            "coverage": _round(self.coverage),
            "min_coverage": self.min_coverage,
            "profile": self.profile,
            "method": self.method,
            "formula": self.formula,
            "weights_score": _round(self.weights_score),
            "override": None if self.override is None else self.override.to_dict(),
            "top_drivers": self.top_drivers,
            "notes": list(self.notes),
            "groups": [g.to_dict() for g in self.groups],
            "metrics": [m.to_dict() for m in self.metrics],
        }


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

    flat = [
        entry(i, model.member_of[m][0] if len(model.member_of[m]) == 1 else None, 1.0) for i, m in enumerate(metrics)
    ]
    groups = []
    group_scores = result.scores.groups.iloc[pos] if len(result.scores.groups.columns) else None
    for g, name in enumerate(model.groups):
        members = [
            entry(i, name, float(model.share[g, i])) for i, m in enumerate(metrics) if name in model.member_of[m]
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


def find_account(table: pd.DataFrame, config: Config, account_id: str) -> int:
    """The row position of `account_id` in the scored table; UsageError with close ids if absent."""
    ids = table["account_id"].astype("str")
    for candidate in dict.fromkeys((account_id, account_id.strip())):
        hits = np.flatnonzero((ids == candidate).to_numpy())
        if len(hits):
            return int(hits[0])
    source = config.accounts.source
    where = f"{source!r} ({config.resolve(config.sources[source].path)})" if source in config.sources else repr(source)
    close = close_ids(ids, account_id)
    hint = "account ids match exactly, as in the account_id column of the scored table"
    problem = Problem(f"did you mean {', '.join(close)}?" if close else "no similar account id", hint=hint)
    raise UsageError(f"no account {account_id!r} in the accounts source {where}", [problem])


def close_ids(ids: pd.Series, wanted: str, n: int = SUGGESTIONS) -> list[str]:
    """Up to `n` account ids like `wanted`: the same apart from case and spaces, then ids that
    contain it, then difflib's closest among a bounded sample of ids of similar length."""
    folded = ids.str.strip().str.casefold()
    target = wanted.strip().casefold()
    found = list(dict.fromkeys(ids[folded == target]))
    if target and len(found) < n:
        containing = ids[folded.str.contains(target, regex=False)]
        found += sorted(dict.fromkeys(containing), key=lambda s: (len(s), s))[: n * 3]
    if len(found) < n and target:
        length = folded.str.len()
        near = ids[(length - len(target)).abs() <= 2].head(SAMPLE)
        by_folded = dict(zip(near.str.strip().str.casefold(), near, strict=True))
        found += [by_folded[c] for c in difflib.get_close_matches(target, list(by_folded), n=n, cutoff=0.6)]
    return list(dict.fromkeys(found))[:n]


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


def _round(value: JsonScalar) -> JsonScalar:
    """Numbers rounded for JSON (and -0.0 made 0.0)."""
    return round(value, DECIMALS) + 0.0 if isinstance(value, float) else value


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
