"""Join: per-source metric values onto the account spine, with unmatched keys counted.

The spine (accounts.source) has one row per account; every output row is one of its
accounts. Keys of other sources that match no account are reported, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.keys import among, key_codes
from healthscore.sources import SourceData

EXAMPLES = 5


@dataclass(frozen=True)
class SourceJoin:
    """How one source's keys met the spine."""

    source: str
    keys: int
    matched_keys: int
    unmatched_keys: int
    unmatched_rows: int
    examples: tuple[str, ...]

    def warning(self) -> Problem:
        """The data warning for this source's unmatched keys."""
        return Problem(
            f"{self.unmatched_keys} key(s) ({self.unmatched_rows} rows) match no account, "
            f"e.g. {', '.join(self.examples)}",
            f"source {self.source}",
            "check the key column and key_transform (case, padding, id format)",
        )

    def to_dict(self) -> dict[str, object]:
        """Plain data for the manifest."""
        return {
            "keys": self.keys,
            "matched_keys": self.matched_keys,
            "unmatched_keys": self.unmatched_keys,
            "unmatched_rows": self.unmatched_rows,
            "unmatched_examples": list(self.examples),
        }


def spine_frame(data: SourceData) -> pd.DataFrame:
    """The accounts source indexed by its key (named account_id); duplicate keys are a DataError."""
    frame = data.frame
    keys = frame[data.key]
    repeated = keys.duplicated(keep=False)
    if repeated.any():
        positions = np.flatnonzero(repeated.to_numpy())
        dup = pd.DataFrame({"key": keys.to_numpy()[positions], "position": positions})
        dup = dup.sort_values(["key", "position"]).head(3 * EXAMPLES)  # positions run file by file, line by line
        where = (
            data.origins.where(dup["position"].to_numpy())
            if data.origins is not None
            else [f"row {p + 1}" for p in dup["position"]]
        )
        problems = [Problem(f"account {key!r} appears again", at) for key, at in zip(dup["key"], where, strict=True)]
        count = keys[repeated].nunique()
        raise DataError(
            f"the accounts source {data.name!r} has {count} duplicate account key(s) in {data.key!r}",
            [*problems, Problem("each account must appear once", hint="remove the duplicates, or fix key_transform")],
        )
    spine = frame.set_index(data.key, drop=False)
    spine.index.name = "account_id"
    return spine


def join_metrics(
    config: Config, spine: pd.DataFrame, aggregated: dict[str, pd.DataFrame], sources: dict[str, SourceData]
) -> tuple[pd.DataFrame, dict[str, SourceJoin]]:
    """Aggregate metric values reindexed onto the spine (with `missing.fill` applied), and join stats."""
    raw = pd.DataFrame(index=spine.index)
    joins: dict[str, SourceJoin] = {}
    for name, values in aggregated.items():
        joins[name] = _join_stats(name, sources[name], spine.index)
        aligned = values.reindex(spine.index)  # the keys looked up once per source
        for metric in values.columns:
            raw[metric] = aligned[metric]
    for name in config.metrics:
        if name not in raw.columns:
            raw[name] = pd.Series(float("nan"), index=spine.index)  # expr metrics, filled in later
        fill = config.metrics[name].missing_fill
        if fill is not None and config.metrics[name].expr is None:
            raw[name] = raw[name].fillna(fill)
    return raw, joins


def _join_stats(name: str, data: SourceData, accounts: pd.Index) -> SourceJoin:
    """How the source's keys meet the spine: each distinct key looked up once (the source's
    rows are factorized to codes, not matched one by one)."""
    codes, keys = key_codes(data.frame[data.key])
    present = codes >= 0
    rows_per_key = np.bincount(codes[present], minlength=len(keys))
    uniques = keys[rows_per_key > 0]
    rows_per_key = rows_per_key[rows_per_key > 0]
    unmatched = ~among(uniques, accounts)
    unmatched_rows = int(rows_per_key[unmatched].sum()) + int((~present).sum())  # a missing key matches nothing
    examples = tuple(sorted(uniques[unmatched].tolist())[:EXAMPLES])
    distinct, unmatched_keys = len(uniques), int(unmatched.sum())
    return SourceJoin(name, distinct, distinct - unmatched_keys, unmatched_keys, unmatched_rows, examples)
