"""Join: per-source metric values onto the account spine, with unmatched keys counted.

The spine (accounts.source) has one row per account; every output row is one of its
accounts. Keys of other sources that match no account are reported, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.extensions import ExtensionDtype

from healthscore.config import Config
from healthscore.errors import DataError, Problem
from healthscore.keys import positions_in, same_text, text_array
from healthscore.parallel import on_two_threads
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
    """Aggregate metric values put onto the spine (with `missing.fill` applied), and join stats.

    Each source's distinct keys are looked up among the accounts once, in Arrow: that one
    lookup both places its values and counts its unmatched keys. The sources are looked up
    two at a time (Arrow hashes without the GIL: L's 7 lookups of a million keys, 1.8 s)."""
    accounts = text_array(spine.index)
    columns: dict[str, Any] = {}
    joins: dict[str, SourceJoin] = {}
    lookups = on_two_threads(lambda name: _lookup(accounts, sources[name], aggregated[name].index), list(aggregated))
    for (name, values), (keys, rows, keyless, row_of, value_row_of) in zip(aggregated.items(), lookups, strict=True):
        joins[name] = _join_stats(name, keys, rows, keyless, row_of)
        for metric in values.columns:
            column = values[metric]
            held = column.array if isinstance(column.dtype, ExtensionDtype) else column.to_numpy()
            columns[metric] = pd.api.extensions.take(held, value_row_of, allow_fill=True)  # -1: missing
    raw = pd.DataFrame(columns, index=spine.index)
    for name in config.metrics:
        if name not in raw.columns:
            raw[name] = pd.Series(float("nan"), index=spine.index)  # expr metrics, filled in later
        fill = config.metrics[name].missing_fill
        if fill is not None and config.metrics[name].expr is None:
            raw[name] = raw[name].fillna(fill)
    return raw, joins


def _lookup(
    accounts: pa.Array, data: SourceData, valued: pd.Index
) -> tuple[pd.Index, np.ndarray, int, np.ndarray, np.ndarray]:
    """A source's keys and rows (`_keys_with_rows`), and per account its row among those
    keys and among the keys with values `valued` (-1 where it has none)."""
    keys, rows, keyless = _keys_with_rows(data)
    row_of = positions_in(accounts, keys)  # per account, its row among the source's keys
    # keys whose rows all fall after as_of have no values
    return keys, rows, keyless, row_of, row_of if same_text(valued, keys) else positions_in(accounts, valued)


def _keys_with_rows(data: SourceData) -> tuple[pd.Index, np.ndarray, int]:
    """The source's distinct keys (sorted), the rows of each, and the rows without a key
    (the rows are factorized to codes, not matched one by one)."""
    codes, rows, keys = data.key_counts()
    return keys[rows > 0], rows[rows > 0], len(codes) - int(rows.sum())


def _join_stats(name: str, keys: pd.Index, rows: np.ndarray, keyless: int, row_of: np.ndarray) -> SourceJoin:
    """How the source's keys met the spine, from each account's row among them (`row_of`);
    a missing key matches nothing."""
    matched = np.zeros(len(keys), dtype=bool)
    matched[row_of[row_of >= 0]] = True
    unmatched = ~matched
    examples = tuple(sorted(keys[unmatched].astype("str").tolist())[:EXAMPLES])
    unmatched_keys = int(unmatched.sum())
    return SourceJoin(
        name, len(keys), len(keys) - unmatched_keys, unmatched_keys, int(rows[unmatched].sum()) + keyless, examples
    )
