"""What the explanation of one account holds: the plain data `healthscore explain` prints.

An `AccountExplanation` has the account's score, segment and coverage, a `GroupExplanation`
per group and a `MetricExplanation` per metric (weights, contribution and points lost), and
its `OverrideInfo` when a CSM override is active; `to_dict()` is `explain --json` and
`render_explain` draws the rest. `explain.explain_account` builds it from a run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

MetricStatus = Literal["scored", "missing", "fixed_score", "filled"]
JsonScalar = str | int | float | bool | None
DECIMALS = 6  # of the numbers in to_dict(), like the raw values of the scored table


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


def _round(value: JsonScalar) -> JsonScalar:
    """Numbers rounded for JSON (and -0.0 made 0.0)."""
    return round(value, DECIMALS) + 0.0 if isinstance(value, float) else value
