"""The run summary as plain data: segments, ARR, histogram, lowest accounts, data warnings.

Built once from the scored table; `render.py` draws it and `--json` prints `to_dict()`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from healthscore.config import Config
from healthscore.errors import Problem, UsageError
from healthscore.join import SourceJoin
from healthscore.movers import Movers, build_movers
from healthscore.scoring import DEFAULT_PROFILE, UNSCORED, UNSCORED_COLOR
from healthscore.sources import SourceData

LOWEST = 10
BINS = 10


@dataclass(frozen=True)
class SegmentRow:
    """One segment's line of the summary."""

    name: str
    color: str
    accounts: int
    share: float
    arr: float | None


@dataclass(frozen=True)
class SourceRow:
    """One source's line of the summary."""

    name: str
    files: int
    rows: int
    unmatched_keys: int
    unmatched_rows: int
    rejected: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class RollupRow:
    """One value of the roll-up column: its accounts, mean score and ARR, in all and per segment."""

    value: str
    accounts: int
    mean_score: float | None
    arr: float | None
    segments: dict[str, int]
    segment_arr: dict[str, float] | None


@dataclass(frozen=True)
class Rollup:
    """Counts, mean score and ARR per segment for each value of one spine column (`--by`)."""

    column: str
    rows: list[RollupRow]


@dataclass(frozen=True)
class Summary:
    """What a run found, ready to render or to serialize."""

    as_of: dt.date
    accounts: int
    scored: int
    mean_score: float | None
    arr_total: float | None
    segments: list[SegmentRow]
    histogram: list[tuple[int, int, int]]
    lowest: list[dict[str, Any]]
    sources: list[SourceRow]
    warnings: list[Problem] = field(default_factory=list)
    by: Rollup | None = None
    movers: Movers | None = None  # with history, against the previous snapshot
    profiles: dict[str, int] | None = None  # accounts per profile, when the config has profiles

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["as_of"] = self.as_of.isoformat()
        data["warnings"] = [w.to_dict() for w in self.warnings]
        data["histogram"] = [{"from": lo, "to": hi, "accounts": n} for lo, hi, n in self.histogram]
        if self.movers is not None:
            data["movers"]["previous_as_of"] = self.movers.previous_as_of.isoformat()
        return data


def build_summary(
    config: Config,
    as_of: dt.date,
    table: pd.DataFrame,
    spine: pd.DataFrame,
    joins: dict[str, SourceJoin],
    sources: dict[str, SourceData],
    warnings: list[Problem],
    *,
    top: int = LOWEST,
    by: str | None = None,
    previous_as_of: dt.date | None = None,
) -> Summary:
    """Summarize a scored table: counts, shares and ARR per segment, the `top` lowest
    accounts, a roll-up by the spine column `by`, and the warnings to show."""
    arr = _arr(config, spine)
    n = len(table)
    scores = table["health_score"]
    segment_rows = []
    names = [(s.name, s.color) for s in config.segments] + [(UNSCORED, UNSCORED_COLOR)]
    for name, color in names:
        in_segment = (table["segment"] == name).to_numpy()
        count = int(in_segment.sum())
        if name == UNSCORED and count == 0:
            continue
        segment_rows.append(
            SegmentRow(
                name,
                color,
                count,
                round(count / n, 4) if n else 0.0,
                None if arr is None else float(arr[in_segment].sum()),
            )
        )
    unscored = int(scores.isna().sum())
    warnings = [*warnings, *_data_warnings(config, table, spine, sources)]
    return Summary(
        as_of=as_of,
        accounts=n,
        scored=n - unscored,
        mean_score=None if scores.isna().all() else round(float(scores.mean()), 1),
        arr_total=None if arr is None else float(arr.sum()),
        segments=segment_rows,
        histogram=_histogram(scores),
        lowest=_lowest(config, table, spine, arr, top),
        sources=[
            SourceRow(
                name,
                len(data.files),
                data.rows_read,
                joins[name].unmatched_keys if name in joins else 0,
                joins[name].unmatched_rows if name in joins else 0,
                sum(data.rejected.values()),
                sum(data.dropped.values()),
            )
            for name, data in sources.items()
        ],
        warnings=warnings,
        by=None if by is None else rollup(table, spine[by], arr, [name for name, _ in names]),
        profiles=_profile_counts(config, table),
        movers=None
        if previous_as_of is None
        else build_movers(table, _names(config, table, spine), arr, previous_as_of, [s.name for s in config.segments]),
    )


BLANK = "(blank)"


def rollup_columns(config: Config) -> list[str]:
    """The columns a summary can be rolled up by: the spine's pass-through columns."""
    return [c for c in config.accounts.columns if c not in {config.accounts.arr}]


def check_rollup_column(config: Config, column: str) -> None:
    """Raise UsageError (exit 2) unless `column` is a pass-through column of the spine."""
    allowed = rollup_columns(config)
    if column not in allowed:
        raise UsageError(
            f"--by {column!r} is not a column of the accounts: use one of {', '.join(allowed) or '(none)'}",
            [Problem("roll-ups group by the pass-through columns", "accounts.columns", "add the column there")],
        )


def rollup(table: pd.DataFrame, values: pd.Series, arr: np.ndarray | None, segments: list[str]) -> Rollup:
    """Accounts, mean score and ARR per value of `values` (blank values together), and per
    segment within each value; rows sorted by value."""
    keys = values.astype("str").where(values.notna(), BLANK).str.strip().replace("", BLANK).to_numpy()
    frame = pd.DataFrame(
        {
            "value": keys,
            "segment": table["segment"].to_numpy(),
            "score": table["health_score"].to_numpy(dtype="float64", na_value=np.nan),
            "arr": arr if arr is not None else 0.0,
        }
    )
    totals = frame.groupby("value", sort=True).agg(
        accounts=("segment", "size"), mean_score=("score", "mean"), arr=("arr", "sum")
    )
    counts = pd.crosstab(frame["value"], frame["segment"]).reindex(index=totals.index, fill_value=0)
    money = frame.pivot_table(index="value", columns="segment", values="arr", aggfunc="sum", fill_value=0.0)
    present = [s for s in segments if s in counts.columns or s != UNSCORED]
    counts = counts.reindex(columns=present, fill_value=0)
    money = money.reindex(index=totals.index, columns=present, fill_value=0.0)
    means = totals["mean_score"].round(1).to_numpy(dtype="float64")
    count_rows = counts.to_dict(orient="index")
    money_rows = money.to_dict(orient="index")
    rows = [
        RollupRow(
            value=str(value),
            accounts=int(accounts),
            mean_score=None if np.isnan(mean) else float(mean),
            arr=None if arr is None else float(total_arr),
            segments={str(s): int(n) for s, n in count_rows[value].items()},
            segment_arr=None if arr is None else {str(s): float(v) for s, v in money_rows[value].items()},
        )
        for value, accounts, mean, total_arr in zip(
            totals.index, totals["accounts"].to_numpy(), means, totals["arr"].to_numpy(dtype="float64"), strict=True
        )
    ]
    return Rollup(values.name if isinstance(values.name, str) else "", rows)


def _data_warnings(
    config: Config, table: pd.DataFrame, spine: pd.DataFrame, sources: dict[str, SourceData]
) -> list[Problem]:
    """Warnings the summary adds: why accounts are Unscored, empty sources, ARR that is not a number."""
    warnings = []
    unscored = table["health_score"].isna()
    low = unscored & (table["coverage"] + 1e-9 < config.score.min_coverage)
    if low.any():
        warnings.append(
            Problem(
                f"{int(low.sum())} account(s) have coverage below {config.score.min_coverage:g} and are Unscored",
                "score.min_coverage",
                "check that their sources have rows for them, or set missing: {fill: ...}",
            )
        )
    if (unscored & ~low).any():
        warnings.append(
            Problem(
                f"{int((unscored & ~low).sum())} account(s) are Unscored because the formula gave no value "
                "(one of its inputs is missing)",
                "score.formula",
                "guard missing inputs with is_missing(...), or set missing: {score: ...} on those metrics",
            )
        )
    for data in sources.values():
        if data.rows_read == 0:
            warnings.append(Problem(f"source {data.name!r} has no rows", data.name))
    if config.accounts.arr:
        values = spine[config.accounts.arr]
        bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
        if bad.any():
            warnings.append(
                Problem(
                    f"{int(bad.sum())} ARR value(s) are not numbers and count as 0, "
                    f"e.g. {values[bad].head(3).tolist()}",
                    f"accounts.arr ({config.accounts.arr})",
                    f"set sources.{config.accounts.source}.types: {{{config.accounts.arr}: float}} and fix the values",
                )
            )
    return warnings


def _arr(config: Config, spine: pd.DataFrame) -> np.ndarray | None:
    if not config.accounts.arr:
        return None
    values = pd.to_numeric(spine[config.accounts.arr], errors="coerce")
    return values.fillna(0.0).to_numpy(dtype="float64")


def _profile_counts(config: Config, table: pd.DataFrame) -> dict[str, int] | None:
    """Accounts per profile (config order, then the default), or None without profiles."""
    if not config.profiles:
        return None
    counts = table["profile"].value_counts()
    return {name: int(counts.get(name, 0)) for name in [*config.profiles, DEFAULT_PROFILE]}


def _names(config: Config, table: pd.DataFrame, spine: pd.DataFrame) -> pd.Series:
    """Each row's account name (its id when the accounts have no name column), like `table`."""
    name_col = config.accounts.name
    if not name_col:
        return table["account_id"]
    return pd.Series(spine[name_col].astype("str").to_numpy(), index=table.index)


def _histogram(scores: pd.Series) -> list[tuple[int, int, int]]:
    """Counts of scored accounts in ten bands 0-10, ..., 90-100 (upper bounds inclusive)."""
    values = scores.dropna().to_numpy()
    edges = np.arange(0, 101, 100 // BINS)
    position = np.clip(np.searchsorted(edges[1:], values, side="left"), 0, BINS - 1)
    counts = np.bincount(position, minlength=BINS)
    return [(int(edges[i]), int(edges[i + 1]), int(counts[i])) for i in range(BINS)]


def _lowest(
    config: Config, table: pd.DataFrame, spine: pd.DataFrame, arr: np.ndarray | None, top: int
) -> list[dict[str, Any]]:
    """The `top` lowest-scoring accounts, shown with the most ARR at stake first."""
    scores = table["health_score"].to_numpy(dtype="float64", na_value=np.nan)
    rows = np.flatnonzero(~np.isnan(scores))
    if 0 < top < len(rows):  # only rows that can be among the lowest are sorted: those up to the cut, ties too
        cut = np.partition(scores[rows], top - 1)[top - 1]
        rows = rows[scores[rows] <= cut]
    frame = table[["account_id", "health_score", "segment", "top_drivers"]].iloc[rows]
    frame["name"] = _names(config, frame, spine.iloc[rows]).to_numpy()  # (not every column of the table taken)
    frame["arr"] = arr[rows] if arr is not None else np.nan
    lowest = frame.sort_values(["health_score", "account_id"], kind="mergesort").head(top)  # scored rows only
    lowest = lowest.sort_values(["arr", "health_score"], ascending=[False, True], kind="mergesort")
    if arr is None:
        lowest["arr"] = None
    columns = ["account_id", "name", "health_score", "segment", "arr", "top_drivers"]
    records = lowest[columns].astype(object).to_dict(orient="records")
    return [{str(k): v for k, v in r.items()} for r in records]
