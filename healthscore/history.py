"""History: one snapshot of scores per as_of, and the trend columns read from it.

Snapshots live under `history.path` as `as_of=YYYY-MM-DD/snapshot.parquet` (a Parquet
dataset partitioned by as_of). Re-running a day replaces only that day's file; with
`history.keep`, days older than as_of - keep are pruned after a successful write.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthscore.aggregate import duration_offset
from healthscore.config import Config
from healthscore.errors import DataError, Problem

SNAPSHOT = "snapshot.parquet"
PREFIX = "as_of="
# added to the scored table, in this order, just before as_of
TREND_COLUMNS = ("previous_score", "score_change", "score_change_30d", "previous_segment", "segment_changed")
NEW = "new"  # segment_changed of an account with no earlier snapshot
MONTH = 30  # days back for score_change_30d
SNAPSHOT_COLUMNS = ("account_id", "health_score", "segment", "config_sha256")


@dataclass(frozen=True)
class Snapshot:
    """One earlier day's scores, indexed by account_id (health_score, segment, config_sha256)."""

    as_of: dt.date
    frame: pd.DataFrame

    @property
    def config_sha256(self) -> str:
        """The sha256 of the config that scored that day ('' if unknown)."""
        if "config_sha256" not in self.frame:
            return ""
        values = self.frame["config_sha256"].dropna()
        return str(values.iloc[0]) if len(values) else ""


def history_root(config: Config) -> Path:
    """The folder holding the snapshots."""
    assert config.history is not None
    return config.resolve(config.history.path)


def snapshot_path(config: Config, as_of: dt.date) -> Path:
    """Where the snapshot of one as_of lives."""
    return history_root(config) / f"{PREFIX}{as_of.isoformat()}" / SNAPSHOT


def snapshot_dates(config: Config) -> list[dt.date]:
    """The as_of dates that have a snapshot, oldest first."""
    root = history_root(config)
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


def read_snapshot(config: Config, as_of: dt.date, columns: tuple[str, ...] = SNAPSHOT_COLUMNS) -> Snapshot:
    """The snapshot of one day, indexed by account_id; DataError if it cannot be read."""
    path = snapshot_path(config, as_of)
    try:
        available = pq.read_schema(path).names
        frame = pd.read_parquet(path, columns=[c for c in columns if c in available])
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise DataError(
            f"cannot read history snapshot {path}",
            [Problem(str(exc), str(path), "delete that day's folder and score the day again")],
        ) from None
    return Snapshot(as_of, frame.set_index("account_id"))


def snapshot_before(config: Config, as_of: dt.date) -> Snapshot | None:
    """The latest snapshot strictly before as_of, or None."""
    earlier = [d for d in snapshot_dates(config) if d < as_of]
    return read_snapshot(config, earlier[-1]) if earlier else None


def snapshot_near(config: Config, target: dt.date, before: dt.date) -> Snapshot | None:
    """The snapshot nearest to `target` (earlier on a tie), within history.tolerance_30d of it
    and strictly before `before`, or None."""
    assert config.history is not None
    tolerance = (pd.Timestamp(target) + duration_offset(config.history.tolerance_30d)).date() - target
    candidates = [d for d in snapshot_dates(config) if d < before and abs(d - target) <= tolerance]
    if not candidates:
        return None
    return read_snapshot(config, min(candidates, key=lambda d: (abs(d - target), d)))


def previous_segments(table_ids: pd.Series, previous: Snapshot | None) -> pd.Series:
    """Each account's segment in the previous snapshot ('' when it had none), like `table_ids`."""
    if previous is None:
        return pd.Series("", index=table_ids.index, dtype="str")
    values = previous.frame["segment"].reindex(table_ids.to_numpy()).to_numpy()
    return pd.Series(values, index=table_ids.index).fillna("").astype("str")


def trend_columns(
    table: pd.DataFrame, previous: Snapshot | None, month_ago: Snapshot | None, segment_order: list[str]
) -> pd.DataFrame:
    """previous_score, score_change, score_change_30d, previous_segment and segment_changed
    ('up', 'down', 'same', 'changed' to or from Unscored, or 'new') per row of the scored table."""
    ids = table["account_id"]

    def score_in(snapshot: Snapshot | None) -> pd.Series:
        if snapshot is None:
            return pd.Series(np.nan, index=table.index, dtype="float64")
        values = snapshot.frame["health_score"].reindex(ids.to_numpy()).to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(values, index=table.index)

    prev_score = score_in(previous)
    prev_segment = previous_segments(ids, previous)
    rank = {name: i for i, name in enumerate(segment_order)}
    now = table["segment"].map(rank).to_numpy(dtype="float64", na_value=np.nan)
    before = prev_segment.map(rank).to_numpy(dtype="float64", na_value=np.nan)
    changed = np.select(
        [prev_segment.eq("").to_numpy(), now > before, now < before, table["segment"].eq(prev_segment).to_numpy()],
        [NEW, "up", "down", "same"],
        default="changed",  # to or from Unscored
    )
    return pd.DataFrame(
        {
            "previous_score": prev_score,
            "score_change": (table["health_score"] - prev_score).round(1) + 0.0,
            "score_change_30d": (table["health_score"] - score_in(month_ago)).round(1) + 0.0,
            "previous_segment": prev_segment,
            "segment_changed": pd.Series(changed, index=table.index, dtype="str"),
        }
    )


def sticky_segments(config: Config, health: pd.Series, segments: pd.DataFrame, previous: pd.Series) -> pd.DataFrame:
    """Segments with hysteresis: an account leaves its previous segment only when its score
    is past that segment's band edge by at least `segments_hysteresis` points."""
    band = config.segments_hysteresis
    names = [s.name for s in config.segments]
    maxima = np.array([s.max for s in config.segments], dtype="float64")
    at = {name: i for i, name in enumerate(names)}
    prev = previous.map(at).to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(prev)
    prev_i = np.where(known, prev, 0).astype("int64")
    upper = maxima[prev_i]
    lower = np.where(prev_i > 0, maxima[np.maximum(prev_i - 1, 0)], -np.inf)
    score = health.to_numpy(dtype="float64", na_value=np.nan)
    now = segments["segment"].map(at).to_numpy(dtype="float64", na_value=np.nan)
    eps = 1e-9
    moved_up = (now > prev) & (score - upper >= band - eps)
    moved_down = (now < prev) & (lower - score >= band - eps)
    stay = known & ~np.isnan(score) & (now != prev) & ~moved_up & ~moved_down
    if not stay.any():
        return segments
    sticky = segments.copy()
    for attr in ("segment", "color", "action"):
        options = np.array([getattr(s, "name" if attr == "segment" else attr) for s in config.segments], dtype=object)
        sticky[attr] = sticky[attr].where(~stay, pd.Series(options[prev_i], index=sticky.index, dtype="str"))
    return sticky


def config_changed(config: Config, previous: Snapshot | None) -> Problem | None:
    """A warning when the previous snapshot was scored by another config (scores not comparable)."""
    if previous is None or not config.sha256 or not previous.config_sha256 or previous.config_sha256 == config.sha256:
        return None
    return Problem(
        f"the config changed since the snapshot of {previous.as_of.isoformat()} "
        f"(sha256 {previous.config_sha256[:12]} -> {config.sha256[:12]}): score changes compare two models",
        "history",
        "read score_change with care for this run, or backfill the history with this config",
    )


def snapshot_bytes(table: pd.DataFrame, config: Config) -> bytes:
    """The snapshot of one run: as_of, account_id, score, segment, coverage, groups, profile, config hash."""
    columns = ["as_of", "account_id", "health_score", "segment", "coverage"]
    columns += [c for c in table.columns if c.startswith("group_") or c == "profile"]
    frame = table[columns].assign(config_sha256=config.sha256)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def expired_dates(config: Config, as_of: dt.date) -> list[dt.date]:
    """Snapshot days older than as_of - history.keep (none without `keep`)."""
    assert config.history is not None
    if config.history.keep is None:
        return []
    cutoff = (pd.Timestamp(as_of) - duration_offset(config.history.keep)).date()
    return [d for d in snapshot_dates(config) if d < cutoff]


def prune(config: Config, as_of: dt.date) -> list[Path]:
    """Delete the day folders `expired_dates` names; return them."""
    folders = [snapshot_path(config, day).parent for day in expired_dates(config, as_of)]
    for folder in folders:
        shutil.rmtree(folder)
    return folders


def read_history(config: Config, account: str | None = None) -> pd.DataFrame:
    """Every snapshot as one frame (as_of, account_id, health_score, segment, groups ...),
    oldest first, optionally for one account; empty when there is no history."""
    dates = snapshot_dates(config)
    if not dates:
        return pd.DataFrame(columns=["as_of", "account_id", "health_score", "segment"])
    filters = [("account_id", "==", account)] if account is not None else None
    tables = []
    for day in dates:  # one file per scored day; groups may differ between configs
        path = snapshot_path(config, day)
        try:
            tables.append(pq.read_table(path, filters=filters))
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataError(
                f"cannot read history snapshot {path}",
                [Problem(str(exc), str(path), "delete that day's folder and score the day again")],
            ) from None
    frame: pd.DataFrame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    return frame.sort_values(["as_of", "account_id"], kind="mergesort").reset_index(drop=True)
