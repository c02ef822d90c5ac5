"""Trend: the history's snapshots read back as a portfolio view or one account's scores over time.

Both views are plain frames built with one groupby over the concatenated snapshots (no loop
per account or per day), so the CLI can render them as a table and a chart, or write them
as CSV or JSON for spreadsheets and scripts.

- `portfolio_trend`: one row per as_of: accounts, scored accounts, mean score and its
  change, the count of each segment (the config's order, then names only older snapshots
  have, then Unscored), and the config hash that scored the day.
- `account_trend`: one row per as_of holding the account: its score and the change since
  the row before, segment, coverage, group scores and profile.

`config_changed` marks a day scored by another config than the day before it: scores on
either side of it come from two models and compare with care.
"""

from __future__ import annotations

import datetime as dt
from typing import NoReturn

import pandas as pd

from healthscore.config import Config
from healthscore.errors import ConfigError, InputMissingError, Problem, UsageError
from healthscore.history import history_root, read_history, snapshot_dates
from healthscore.scoring import UNSCORED

TREND_FORMATS = ("table", "csv", "json")
PORTFOLIO_COLUMNS = ("as_of", "accounts", "scored", "mean_score", "mean_change")
HISTORY_HINT = (
    "run `healthscore score -c CONFIG --out DIR` (each run adds its day), "
    "or seed past days with `healthscore backfill -c CONFIG --from DATE`"
)


def require_history(config: Config, command: str) -> None:
    """ConfigError (exit 78) when the config has no `history:` section, which `command` needs."""
    if config.history is None:
        raise ConfigError(
            f"`{command}` needs a history of scores, and the config has no `history:` section",
            [Problem("not set", "history", "add `history: {path: history/}` to the config (paths are relative to it)")],
        )


def parse_day(value: dt.date | str, option: str) -> dt.date:
    """A date option's value: a date, 'today' or YYYY-MM-DD; UsageError (exit 2) otherwise."""
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    if text.lower() == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} must be a date like 2026-01-31 or 'today', got {value!r}") from None


def load_history(config: Config, account: str | None = None, since: dt.date | None = None) -> pd.DataFrame:
    """The snapshots as one frame (see `history.read_history`), from `since` on, optionally
    for one account; InputMissingError (exit 66) when there is no snapshot at all."""
    require_history(config, "trend")
    dates = snapshot_dates(config)
    if not dates:
        raise InputMissingError(
            f"no history yet: {history_root(config)} holds no as_of=YYYY-MM-DD/snapshot.parquet",
            [Problem("the history is empty", "history.path", HISTORY_HINT)],
        )
    if since is not None and dates[-1] < since:
        raise InputMissingError(
            f"no snapshot on or after {since.isoformat()}: the history runs from "
            f"{dates[0].isoformat()} to {dates[-1].isoformat()}",
            [Problem("--since is after the last snapshot", "--since", "give an earlier --since, or leave it out")],
        )
    frame = read_history(config, account)
    if since is not None:
        frame = frame[frame["as_of"] >= since].reset_index(drop=True)
    return frame


def portfolio_trend(config: Config, since: dt.date | None = None) -> pd.DataFrame:
    """Per as_of (oldest first): as_of, accounts, scored, mean_score (one decimal, over the
    scored accounts), mean_change (since the row before), one count column per segment
    (config order, then segments only older snapshots name, then Unscored), config_sha256
    and config_changed (another config than the row before)."""
    history = load_history(config, since=since)
    by_day = history.groupby("as_of", sort=True)
    mean = by_day["health_score"].mean().round(1) + 0.0
    frame = pd.DataFrame(
        {
            "accounts": by_day.size(),
            "scored": by_day["health_score"].count(),
            "mean_score": mean,
            "mean_change": mean.diff().round(1) + 0.0,
        }
    )
    counts = history.groupby(["as_of", "segment"], sort=True).size().unstack(fill_value=0)
    order = segment_order(config, counts.columns)
    counts = counts.reindex(columns=order, fill_value=0).astype("int64")
    counts.columns = pd.Index([f"{c}_segment" if c in PORTFOLIO_COLUMNS else c for c in counts.columns])
    frame = frame.join(counts)
    shas = _config_hashes(history).groupby(history["as_of"], sort=True).first()
    frame["config_sha256"] = shas
    frame["config_changed"] = _changed(shas)
    return frame.rename_axis("as_of").reset_index()


def account_trend(config: Config, account_id: str, since: dt.date | None = None) -> pd.DataFrame:
    """One account's history (oldest first): as_of, account_id, health_score, score_change
    (since the row before), segment, coverage, its group scores (config order first; groups
    it never had a score in are left out), profile when there are profiles, config_sha256 and
    config_changed. UsageError (exit 2) naming close ids when no snapshot holds the account."""
    wanted = account_id.strip()
    rows = load_history(config, wanted, since)
    if rows.empty:
        _unknown_account(config, wanted, since)
    rows = rows.reset_index(drop=True)
    groups = [f"group_{g}" for g in config.groups if f"group_{g}" in rows.columns]
    groups += [c for c in rows.columns if c.startswith("group_") and c not in groups]
    groups = [c for c in groups if rows[c].notna().any()]
    frame = pd.DataFrame(
        {
            "as_of": rows["as_of"],
            "account_id": rows["account_id"],
            "health_score": rows["health_score"],
            "score_change": rows["health_score"].diff().round(1) + 0.0,
            "segment": rows["segment"],
            "coverage": rows["coverage"] if "coverage" in rows.columns else float("nan"),
        }
    )
    for column in groups:
        frame[column] = rows[column]
    if "profile" in rows.columns and rows["profile"].notna().any():
        frame["profile"] = rows["profile"]
    shas = _config_hashes(rows)
    frame["config_sha256"] = shas
    frame["config_changed"] = _changed(shas)
    return frame


def segment_order(config: Config, seen: pd.Index | list[str]) -> list[str]:
    """Segment names in display order: the config's, then names only the history has (older
    configs), sorted, then Unscored."""
    names = [s.name for s in config.segments]
    extra = sorted(str(s) for s in seen if s not in names and s != UNSCORED)
    return [*names, *extra, UNSCORED]


def trend_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """A trend frame as CSV (like `score -o - --format csv`: cells that a spreadsheet would
    run as a formula neutralized, no BOM) or JSON (a list of records); dates as ISO text."""
    from healthscore.outputs import table_bytes
    from healthscore.spreadsheet import neutralize_formulas

    if fmt == "csv":
        return table_bytes(neutralize_formulas(frame), "csv")
    if fmt == "json":
        return table_bytes(frame, "json")
    raise UsageError(f"unknown trend format {fmt!r}; choose one of {', '.join(TREND_FORMATS)}")


def _config_hashes(history: pd.DataFrame) -> pd.Series:
    """Each row's config_sha256 ('' where a snapshot did not record it)."""
    if "config_sha256" not in history.columns:
        return pd.Series("", index=history.index, dtype="str")
    return history["config_sha256"].fillna("").astype("str")


def _changed(shas: pd.Series) -> pd.Series:
    """True where the config hash differs from the row before's (never on the first row)."""
    before = shas.shift()
    return (shas.ne(before) & before.notna()).astype("bool")


def _unknown_account(config: Config, account_id: str, since: dt.date | None) -> NoReturn:
    """Raise for an account no snapshot (from `since` on) holds: InputMissingError when only
    --since leaves it out, else UsageError suggesting close ids."""
    from healthscore.account_ids import close_ids

    ids = pd.Series(read_history(config)["account_id"].drop_duplicates().astype("str").to_numpy(), dtype="str")
    if since is not None and ids.eq(account_id).any():
        raise InputMissingError(
            f"account {account_id!r} has no snapshot on or after {since.isoformat()}",
            [Problem("--since leaves out every day it was scored", "--since", "give an earlier --since")],
        )
    close = close_ids(ids, account_id)
    raise UsageError(
        f"no account {account_id!r} in the history ({history_root(config)})",
        [
            Problem(
                f"did you mean {', '.join(close)}?" if close else "no similar account id",
                hint="account ids match exactly, as in the account_id column of the scored table",
            )
        ],
    )
