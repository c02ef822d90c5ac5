"""Statistics the backtest is built from: pure numpy over arrays, no config, no pandas.

ROC AUC (Mann-Whitney U over average ranks) with a stratified bootstrap interval, Wilson
intervals of proportions, the churn rate among the lowest scores, rank-based deciles, and
pairwise-complete Pearson correlation with the connected groups of a correlation graph.

Conventions: churn is the positive class and a LOW score should mean HIGH risk, so AUC is
P(score of a retained account > score of a churned one), ties counting one half.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
LEVEL = 0.95
RESAMPLES = 1000
SEED = 20260131
CHUNK_CELLS = 4_000_000  # resamples x levels drawn at once


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values`, ties given the average of their ranks."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse]


def auc(scores: np.ndarray, churned: np.ndarray) -> float:
    """ROC AUC of a score for churn, low score = high risk (Mann-Whitney U over average ranks):
    P(score of a retained account > score of a churned one) + P(tie) / 2. NaN without both classes."""
    scores, churned = np.asarray(scores, dtype=float), np.asarray(churned, dtype=bool)
    n_pos, n_neg = int(churned.sum()), int((~churned).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = float(average_ranks(scores)[~churned].sum())
    return (rank_sum - n_neg * (n_neg + 1) / 2.0) / (n_pos * n_neg)


def bootstrap_auc(
    scores: np.ndarray, churned: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile interval of the AUC over stratified bootstrap resamples (churned and retained
    accounts resampled separately, so every resample has both), drawn as multinomial counts
    per distinct score: vectorized, in chunks. (NaN, NaN) without both classes."""
    scores, churned = np.asarray(scores, dtype=float), np.asarray(churned, dtype=bool)
    n_pos, n_neg = int(churned.sum()), int((~churned).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan"), float("nan")
    levels, inverse = np.unique(scores, return_inverse=True)
    k = len(levels)
    p_pos = np.bincount(inverse[churned], minlength=k) / n_pos
    p_neg = np.bincount(inverse[~churned], minlength=k) / n_neg
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // k)
    values = []
    for start in range(0, resamples, chunk):  # a few chunks of resamples, each one array
        size = min(chunk, resamples - start)
        pos = rng.multinomial(n_pos, p_pos, size=size).astype(float)
        neg = rng.multinomial(n_neg, p_neg, size=size).astype(float)
        above = n_neg - np.cumsum(neg, axis=1)  # retained accounts scoring above each level
        values.append((pos * (above + neg / 2.0)).sum(axis=1) / (n_pos * n_neg))
    aucs = np.concatenate(values)
    tail = (1 - level) / 2
    low, high = np.quantile(aucs, [tail, 1 - tail])
    return float(low), float(high)


def wilson(churned: np.ndarray | int, accounts: np.ndarray | int, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion churned / accounts, elementwise (NaN for 0 accounts)."""
    k, n = np.asarray(churned, dtype=float), np.asarray(accounts, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def lowest_share_rate(scores: np.ndarray, churned: np.ndarray, share: float = 0.1) -> tuple[int, float]:
    """Churn rate among the `share` lowest scores: ceil(share x n) accounts; accounts tied at the
    cut count in proportion (the expected rate over every way to break the tie), so the
    answer does not depend on row order. Returns (accounts, rate)."""
    scores, churned = np.asarray(scores, dtype=float), np.asarray(churned, dtype=bool)
    take = int(np.ceil(share * len(scores) - 1e-9))
    if take == 0:
        return 0, float("nan")
    cut = np.sort(scores)[take - 1]
    below, tied = scores < cut, scores == cut
    from_tie = take - int(below.sum())
    expected = churned[below].sum() + from_tie * churned[tied].sum() / tied.sum()
    return take, float(expected / take)


def decile_of(scores: np.ndarray, bins: int = 10) -> np.ndarray:
    """Bin 0..bins-1 of each score by its average rank (0 = lowest scores); tied scores share
    a bin, so bins can differ in size, but never depend on row order."""
    ranks = average_ranks(np.asarray(scores, dtype=float))
    return np.minimum(bins - 1, np.floor((ranks - 0.5) * bins / len(ranks))).astype(int)


def pairwise_correlation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of each pair of columns over the rows where both are present, and
    the number of such rows; NaN where a column is constant on them."""
    present = ~np.isnan(values)
    x, m = np.where(present, values, 0.0), present.astype(float)
    n = m.T @ m
    sx = x.T @ m  # [i, j]: sum of column i over rows where j is present too
    sxx = (x * x).T @ m
    sxy = x.T @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = n * sxy - sx * sx.T
        var_i, var_j = n * sxx - sx * sx, n * sxx.T - sx.T * sx.T
        r = cov / np.sqrt(var_i * var_j)
    # a column constant on the shared rows has a variance of 0 up to rounding: no correlation
    scale = np.maximum(np.abs(n * sxx), np.abs(n * sxx.T)) + 1.0
    flat = (var_i <= 1e-12 * scale) | (var_j <= 1e-12 * scale) | ~np.isfinite(r)
    return np.clip(np.where(flat, np.nan, r), -1, 1), n.astype(int)


def components(linked: np.ndarray) -> list[list[int]]:
    """Connected components (of two or more nodes) of a symmetric boolean adjacency matrix."""
    reach = linked | np.eye(len(linked), dtype=bool)
    while True:  # boolean matrix squaring: at most log2(n) rounds
        wider = (reach.astype(np.int64) @ reach.astype(np.int64)) > 0
        if (wider == reach).all():
            break
        reach = wider
    groups = {tuple(int(i) for i in np.flatnonzero(row)) for row in reach}
    return sorted((list(g) for g in groups if len(g) > 1), key=lambda g: g[0])
