"""CSM overrides: a file of account_id, segment and/or score, reason, expires_on.

An active override (expires_on on or after as_of) sets the published segment (and the
score, when it gives one); the model's own values stay beside it in `computed_score`
and `computed_segment`. Overrides without a reason or an expiry are refused: they go
stale otherwise.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from healthscore.config import Config
from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.scoring import segment_of

REQUIRED = ("account_id", "reason", "expires_on")
AUDIT_COLUMNS = ("override_reason", "computed_score", "computed_segment")  # added to the scored table


def read_overrides(config: Config) -> pd.DataFrame:
    """The override file as text columns, validated; DataError lists every bad row."""
    assert config.overrides is not None
    path = config.resolve(config.overrides.path)
    if not path.is_file():
        raise InputMissingError(f"overrides file not found: {path}", [Problem("", "overrides.path")])
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing or not ({"segment", "score"} & set(frame.columns)):
        raise DataError(
            f"overrides file {path} lacks columns",
            [Problem(f"expected account_id, segment and/or score, reason, expires_on; found {list(frame.columns)}")],
        )
    for col in ("segment", "score", "author"):
        if col not in frame.columns:
            frame[col] = ""
    frame = frame.transform(lambda column: column.str.strip())
    frame["line"] = np.arange(2, len(frame) + 2)
    _validate(frame, config, path.name)
    return frame


def _validate(frame: pd.DataFrame, config: Config, name: str) -> None:
    names = {s.name for s in config.segments}
    score = pd.to_numeric(frame["score"].replace("", np.nan), errors="coerce")
    expires = pd.to_datetime(frame["expires_on"], format="ISO8601", errors="coerce")
    checks = {
        "no reason given": frame["reason"] == "",
        "no expires_on date (YYYY-MM-DD)": expires.isna(),
        "neither segment nor score": (frame["segment"] == "") & (frame["score"] == ""),
        f"segment is not one of {sorted(names)}": (frame["segment"] != "") & ~frame["segment"].isin(names),
        "score is not a number in 0..100": (frame["score"] != "") & ~score.between(0, 100),
        "account listed twice": frame["account_id"].duplicated(keep=False),
    }
    problems = [
        Problem(f"account {acc!r}: {reason}", f"{name} line {line}", "every override needs a reason and an expiry")
        for reason, bad in checks.items()
        for acc, line in zip(frame.loc[bad, "account_id"], frame.loc[bad, "line"], strict=True)
    ]
    if problems:
        raise DataError(f"the overrides file {name} has {len(problems)} problem(s)", problems)


def apply_overrides(
    config: Config, as_of: dt.date, health: pd.Series, segments: pd.DataFrame
) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, list[Problem]]:
    """Published score and segments after active overrides, the audit columns, and warnings."""
    frame = read_overrides(config)
    warnings: list[Problem] = []
    active = pd.to_datetime(frame["expires_on"], format="ISO8601") >= pd.Timestamp(as_of)
    if (~active).any():
        expired = frame.loc[~active, "account_id"].tolist()
        warnings.append(Problem(f"{len(expired)} expired override(s) ignored: {expired[:5]}", "overrides"))
    frame = frame.loc[active].set_index("account_id")
    unknown = frame.index.difference(health.index)
    if len(unknown):
        warnings.append(Problem(f"{len(unknown)} override(s) name unknown accounts: {list(unknown[:5])}", "overrides"))
    frame = frame.reindex(health.index)
    given_score = pd.to_numeric(frame["score"].replace("", np.nan), errors="coerce")
    new_health = given_score.round(1).combine_first(health)
    new_segments = segments.copy()  # the model's segments (hysteresis included) where no score is given
    scored = given_score.notna().to_numpy()
    if scored.any():
        new_segments.loc[scored] = segment_of(new_health[scored], config.segments).to_numpy()
    named = frame["segment"].fillna("").ne("").to_numpy()
    if named.any():
        chosen = frame["segment"][named]
        new_segments.loc[named, "segment"] = chosen
        new_segments.loc[named, "color"] = chosen.map({s.name: s.color for s in config.segments})
        new_segments.loc[named, "action"] = chosen.map({s.name: s.action for s in config.segments})
    overridden = frame["reason"].notna()
    audit_values = (frame["reason"].fillna(""), health.where(overridden), segments["segment"].where(overridden, ""))
    audit = pd.DataFrame(dict(zip(AUDIT_COLUMNS, audit_values, strict=True)))
    return new_health, new_segments, audit, warnings
