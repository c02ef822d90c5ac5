"""From fitted betas to config weights, for `calibrate`: pure arithmetic on weight matrices.

A metric's share of the score is proportional to max(beta, 0); a group's weight is the sum
of its metrics' shares and its metric weights are their shares over that sum
(`derive_weights`). `with_weights` puts such weights into a copy of a config, and
`round_to_total` rounds them for writing so that they still add up to 100.
"""

from __future__ import annotations

import numpy as np

from healthscore.config import Config


def derive_weights(
    betas: np.ndarray, member: np.ndarray, old_within: np.ndarray, old_share: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Group weights (summing to 1) and within-group weights (groups x metrics, rows summing
    to 1) giving each metric a share of the score proportional to max(beta, 0); None when no
    beta is positive. A zero-weight group keeps its old within-group weights."""
    share = np.clip(betas, 0.0, None)
    if share.sum() <= 0:
        return None
    share = share / share.sum()
    column = old_share.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        split = np.where(column > 0, old_share / column, member / member.sum(axis=0))
        contribution = split * share[None, :]
        group = contribution.sum(axis=1)
        within = np.where(group[:, None] > 0, contribution / group[:, None], old_within)
    return group, within


def with_weights(config: Config, metrics: list[str], group: np.ndarray, within: np.ndarray) -> Config:
    """A copy of `config` with new group weights and within-group weights (same order as
    `config.groups` and `metrics`), as percentages."""
    groups = {
        name: g.model_copy(
            update={
                "weight": float(group[i] * 100),
                "metrics": {m: float(within[i, metrics.index(m)] * 100) for m in g.metrics},
            }
        )
        for i, (name, g) in enumerate(config.groups.items())
    }
    return config.model_copy(update={"groups": groups})


def round_to_total(values: np.ndarray, total: float = 100.0, decimals: int = 1) -> np.ndarray:
    """Non-negative `values` scaled to `total` and rounded to `decimals` so that they still add
    up to exactly `total` (largest remainders get the leftover units; ties by position)."""
    scale = 10**decimals
    units = round(total * scale)
    scaled = values / values.sum() * units
    floor = np.floor(scaled)
    leftover = max(0, round(float(units - floor.sum())))
    order = np.argsort(-(scaled - floor), kind="stable")
    floor[order[:leftover]] += 1
    return np.asarray(floor / scale, dtype="float64")
