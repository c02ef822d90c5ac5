"""Who moved since the previous snapshot: biggest drops and gains, the segment transition
matrix, and the ARR that moved down into each segment. Built from the scored table's trend
columns (history.trend_columns); part of the summary when there is an earlier snapshot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MOVERS = 5


@dataclass(frozen=True)
class Movers:
    """Movement against the snapshot of `previous_as_of`."""

    previous_as_of: dt.date
    drops: list[dict[str, Any]]  # biggest score falls first
    gains: list[dict[str, Any]]  # biggest score rises first
    transitions: dict[str, dict[str, int]]  # previous segment ('new' for none) -> segment -> accounts
    moved_down: dict[str, int]  # segment -> accounts that moved down into it
    arr_moved_down: dict[str, float] | None  # segment -> their ARR (None without ARR)
    moved_up: int


def build_movers(
    table: pd.DataFrame,
    names: pd.Series,
    arr: np.ndarray | None,
    previous_as_of: dt.date,
    segment_order: list[str],
    n: int = MOVERS,
) -> Movers:
    """Movers of a scored table carrying the trend columns; `names` and `arr` are per row."""
    frame = pd.DataFrame(
        {
            "account_id": table["account_id"].to_numpy(),
            "name": names.to_numpy(),
            "previous_score": table["previous_score"].to_numpy(dtype="float64", na_value=np.nan),
            "health_score": table["health_score"].to_numpy(dtype="float64", na_value=np.nan),
            "score_change": table["score_change"].to_numpy(dtype="float64", na_value=np.nan),
            "previous_segment": table["previous_segment"].replace("", "new").to_numpy(),
            "segment": table["segment"].to_numpy(),
            "arr": arr if arr is not None else np.nan,
        }
    )
    changed = frame.dropna(subset=["score_change"])
    order = ["score_change", "account_id"]
    drops = changed[changed["score_change"] < 0].sort_values(order, kind="mergesort").head(n)
    gains = changed[changed["score_change"] > 0].sort_values(order, ascending=[False, True], kind="mergesort").head(n)
    transitions = pd.crosstab(frame["previous_segment"], frame["segment"])
    rows = [s for s in ["new", *segment_order, "Unscored"] if s in transitions.index]
    columns = [s for s in [*segment_order, "Unscored"] if s in transitions.columns]
    transitions = transitions.reindex(index=rows, columns=columns, fill_value=0)
    down = table["segment_changed"].eq("down").to_numpy()
    into = frame.loc[down].groupby("segment", sort=False)["arr"].agg(["size", "sum"])
    present = [s for s in segment_order if s in into.index]
    sizes, sums = into["size"].to_dict(), into["sum"].to_dict()
    return Movers(
        previous_as_of=previous_as_of,
        drops=_records(drops, arr is not None),
        gains=_records(gains, arr is not None),
        transitions={
            str(p): {str(c): int(v) for c, v in row.items() if v} for p, row in transitions.to_dict("index").items()
        },
        moved_down={s: int(sizes[s]) for s in present},
        arr_moved_down=None if arr is None else {s: float(sums[s]) for s in present},
        moved_up=int(table["segment_changed"].eq("up").sum()),
    )


def _records(frame: pd.DataFrame, with_arr: bool) -> list[dict[str, Any]]:
    """Rows as plain JSON-ready dicts (NaN as None)."""
    columns = ["account_id", "name", "previous_score", "health_score", "score_change", "previous_segment", "segment"]
    columns += ["arr"] if with_arr else []
    records = frame[columns].astype(object).where(frame[columns].notna(), None).to_dict(orient="records")
    return [{str(k): v for k, v in r.items()} for r in records]
