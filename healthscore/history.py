"""History: one snapshot of scores per as_of, and the trend columns read from it.

Snapshots live under `history.path` as `as_of=YYYY-MM-DD/snapshot.parquet` (a Parquet
dataset partitioned by as_of). Re-running a day replaces only that day's file.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthscore.config import Config
from healthscore.errors import DataError, Problem

SNAPSHOT = "snapshot.parquet"
PREFIX = "as_of="
TREND_COLUMNS = ("previous_score", "score_change", "previous_segment")  # added to the scored table


def snapshot_path(config: Config, as_of: dt.date) -> Path:
    """Where the snapshot of one as_of lives."""
    assert config.history is not None
    return config.resolve(config.history.path) / f"{PREFIX}{as_of.isoformat()}" / SNAPSHOT


def snapshot_dates(config: Config) -> list[dt.date]:
    """The as_of dates that have a snapshot, oldest first."""
    assert config.history is not None
    root = config.resolve(config.history.path)
    if not root.is_dir():
        return []
    dates = []
    for folder in root.glob(f"{PREFIX}*"):  # one per scored day, not per account
        try:
            day = dt.date.fromisoformat(folder.name.removeprefix(PREFIX))
        except ValueError:
            continue
        if (folder / SNAPSHOT).is_file():
            dates.append(day)
    return sorted(dates)


def previous_snapshot(config: Config, as_of: dt.date) -> pd.DataFrame | None:
    """The latest snapshot strictly before as_of, indexed by account_id, or None."""
    earlier = [d for d in snapshot_dates(config) if d < as_of]
    if not earlier:
        return None
    path = snapshot_path(config, earlier[-1])
    try:
        frame = pd.read_parquet(path, columns=["account_id", "health_score", "segment"])
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read history snapshot {path}", [Problem(str(exc), str(path))]) from None
    return frame.set_index("account_id")


def trend_columns(table: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """previous_score, score_change and previous_segment per row of the scored table."""
    if previous is None:
        prev_score = pd.Series(float("nan"), index=table.index)
        prev_segment = pd.Series("", index=table.index, dtype="str")
    else:
        prev = previous.reindex(table["account_id"])
        prev_score = pd.Series(prev["health_score"].to_numpy(dtype="float64"), index=table.index)
        prev_segment = pd.Series(prev["segment"].to_numpy(), index=table.index).fillna("").astype("str")
    change = (table["health_score"] - prev_score).round(1) + 0.0
    return pd.DataFrame(dict(zip(TREND_COLUMNS, (prev_score, change, prev_segment), strict=True)))


def snapshot_bytes(table: pd.DataFrame, config: Config) -> bytes:
    """The snapshot of one run: as_of, account_id, score, segment, coverage, groups, config hash."""
    columns = ["as_of", "account_id", "health_score", "segment", "coverage"]
    columns += [c for c in table.columns if c.startswith("group_") or c == "profile"]
    frame = table[columns].assign(config_sha256=config.sha256)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()
