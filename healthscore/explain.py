"""Explanations: which metrics cost an account the most points.

A metric's points lost are its effective weight times the distance of its score from
a perfect 10, on the 0..100 scale. The `top_drivers` column and `explain` share this.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
            + pd.Series(top_scores[:, rank], index=lost.index).round(1).astype("str")
            + "/10 (-"
            + pd.Series(top_points[:, rank], index=lost.index).round(1).astype("str")
            + ")"
        )
        sep = np.where((text.str.len() > 0).to_numpy() & keep, "; ", "")
        text = text + sep + part.where(keep, "")
    return text
