"""Churn outcomes per account, read from a file and lined up with a scored table.

The outcomes file (CSV, Parquet, XLSX or JSON lines, read by the package's own readers)
lists accounts with what happened to them: a churn flag (`true/false`, `yes/no`, `1/0`,
`churned/renewed`), or a churn date (churned when the date is present and not after the
horizon). Unknown, duplicated or unreadable entries are errors, never skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.keys import normalize_keys
from healthscore.models import KeyTransform, SourceConfig
from healthscore.readers import read_file

CHURNED_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0", "churned", "churn", "lost"})
RETAINED_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0", "renewed", "retained", "active"})
SHOWN = 5  # entries listed in an error before "... and N more"


def load_outcomes(
    path: str | Path,
    table: pd.DataFrame,
    *,
    id_column: str = "account_id",
    churn_column: str = "churned",
    date_column: str | None = None,
    horizon_end: dt.date | None = None,
    key_transform: Sequence[KeyTransform] = ("strip",),
) -> pd.Series:
    """Churn outcome per row of the scored `table` (its `account_id` column): a pandas
    'boolean' Series indexed like `table`, <NA> for accounts the file does not list."""
    frame, lines = _read(Path(path), id_column, date_column or churn_column)
    where = str(path)
    ids = normalize_keys(frame[id_column], key_transform)
    _check_ids(ids, lines, table, where, id_column)
    if date_column is not None:
        churned = churn_from_dates(frame[date_column], lines, where, date_column, horizon_end)
    else:
        churned = churn_from_flags(frame[churn_column], lines, where, churn_column)
    by_id = pd.Series(churned, index=pd.Index(ids.to_numpy(dtype=object)), dtype="boolean")
    result = table["account_id"].astype("object").map(by_id).astype("boolean")
    result.name = "churned"
    return result


def churn_from_flags(values: pd.Series, lines: np.ndarray, where: str, column: str) -> np.ndarray:
    """Flags to booleans (case-insensitive words, see CHURNED_WORDS / RETAINED_WORDS);
    DataError naming the row and value of any other value, blanks included."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=bool)
    text = values.astype("string").str.strip().str.lower()
    churned = text.isin(CHURNED_WORDS).fillna(False).to_numpy(dtype=bool)
    retained = text.isin(RETAINED_WORDS).fillna(False).to_numpy(dtype=bool)
    bad = ~(churned | retained)
    if bad.any():
        shown = values.astype("object").to_numpy()[bad]
        raise DataError(
            f"outcomes file {where}: {int(bad.sum())} value(s) of column {column!r} are not a churn flag",
            [
                *(
                    Problem(f"{column} = {_value(v)}", f"{where}: line {int(n)}")
                    for n, v in zip(lines[bad][:SHOWN], shown[:SHOWN], strict=True)
                ),
                *_more(int(bad.sum())),
                Problem(
                    "expected true/false, yes/no, 1/0 or churned/renewed (any case)",
                    where,
                    "fix those rows, remove accounts whose outcome is not known yet, or use --date-column",
                ),
            ],
        )
    return churned


def churn_from_dates(
    values: pd.Series, lines: np.ndarray, where: str, column: str, horizon_end: dt.date | None
) -> np.ndarray:
    """Churned when the date is present and on or before `horizon_end` (any date without
    one); a blank date means the account stayed. Unparseable dates are a DataError."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        dates = pd.Series(values.to_numpy(), index=values.index)
    else:
        text = values.astype("string").str.strip()
        text = text.mask(text == "")
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
        bad = (dates.isna() & text.notna()).to_numpy(dtype=bool)
        if bad.any():
            shown = text.to_numpy(dtype=object)[bad]
            raise DataError(
                f"outcomes file {where}: {int(bad.sum())} value(s) of column {column!r} are not dates",
                [
                    *(
                        Problem(f"{column} = {_value(v)}", f"{where}: line {int(n)}")
                        for n, v in zip(lines[bad][:SHOWN], shown[:SHOWN], strict=True)
                    ),
                    *_more(int(bad.sum())),
                    Problem("expected a date like 2026-03-31, or a blank cell for no churn", where),
                ],
            )
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    present = dates.notna().to_numpy(dtype=bool)
    if horizon_end is None:
        return present
    return present & (dates <= pd.Timestamp(horizon_end)).to_numpy(dtype=bool)


def outcomes_file(path: str | Path) -> Path:
    """The outcomes file's path; InputMissingError (exit 66) if there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise InputMissingError(
            f"outcomes file not found: {path}",
            [Problem("no such file" if not path.exists() else "not a file", str(path), "check the --outcomes path")],
        )
    return path


def _read(path: Path, id_column: str, churn_column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The file's rows and their line numbers, with both columns present (else DataError)."""
    outcomes_file(path)
    source = SourceConfig(path=str(path), key=id_column)
    needed = [id_column, churn_column]

    def missing(names: list[str]) -> list[str]:
        return [c for c in needed if c not in names]

    read = read_file(path, path.read_bytes(), source, "outcomes", missing)
    if len(read.rejected):
        rows = read.rejected.head(SHOWN)
        raise DataError(
            f"outcomes file {path}: {len(read.rejected)} row(s) cannot be read",
            [
                *(
                    Problem(f"{reason}: {raw}", f"{path}: line {int(line)}")
                    for line, reason, raw in zip(rows["line"], rows["reason"], rows["raw"], strict=True)
                ),
                *_more(len(read.rejected)),
            ],
        )
    frame = read.frame
    absent = missing([str(c) for c in frame.columns])
    if absent:
        found = ", ".join(map(str, frame.columns[:40])) + (" ..." if frame.shape[1] > 40 else "")
        raise DataError(
            f"outcomes file {path} lacks column(s) {', '.join(map(repr, absent))}",
            [
                Problem(f"expected: {', '.join(needed)}", str(path)),
                Problem(f"found: {found}", str(path), "name the columns with --id-column and --churn-column"),
            ],
        )
    if frame.empty:
        raise InputMissingError(
            f"outcomes file {path} has no rows",
            [Problem("the file has a header but no accounts", str(path), "export the outcomes again")],
        )
    return frame, np.asarray(read.lines)  # an outcomes file is small: its lines as an array


def _check_ids(ids: pd.Series, lines: np.ndarray, table: pd.DataFrame, where: str, column: str) -> None:
    """DataError for blank, duplicated or unknown account ids, each listed (first few and a count)."""
    blank = ids.isna().to_numpy(dtype=bool)
    if blank.any():
        raise DataError(
            f"outcomes file {where}: {int(blank.sum())} row(s) have no {column!r}",
            [
                *(Problem(f"{column} is blank", f"{where}: line {int(n)}") for n in lines[blank][:SHOWN]),
                *_more(int(blank.sum())),
            ],
        )
    repeated = ids.duplicated(keep=False).to_numpy(dtype=bool)
    if repeated.any():
        dupes = pd.DataFrame({"id": ids[repeated].to_numpy(), "line": lines[repeated]})
        listed = dupes.groupby("id", sort=True)["line"].agg(lambda s: ", ".join(map(str, s)))
        raise DataError(
            f"outcomes file {where}: {len(listed)} account id(s) appear more than once",
            [
                *(Problem(f"{column} {i!r} on lines {n}", where) for i, n in listed.head(SHOWN).items()),
                *_more(len(listed)),
                Problem("each account needs exactly one outcome", where, "keep one row per account"),
            ],
        )
    known = pd.Index(table["account_id"].dropna().astype("str"))
    unknown = ~ids.isin(known).to_numpy(dtype=bool)
    if unknown.any():
        sample = ", ".join(repr(i) for i in ids[unknown].head(SHOWN))
        more = f" and {int(unknown.sum()) - SHOWN} more" if unknown.sum() > SHOWN else ""
        example = f" (they look like {known[0]!r})" if len(known) else ""
        raise DataError(
            f"outcomes file {where}: {int(unknown.sum())} account id(s) are not in the scored accounts",
            [
                Problem(f"unknown: {sample}{more}", where),
                Problem(
                    f"the ids of column {column!r} must be those of the account spine{example}",
                    where,
                    "check the id column (--id-column), lost leading zeros, or remove accounts no longer in the CRM",
                ),
            ],
        )


def _more(count: int) -> list[Problem]:
    """The "... and N more" line under a list cut at SHOWN entries."""
    return [Problem(f"... and {count - SHOWN} more")] if count > SHOWN else []


def _value(value: object) -> str:
    """A cell as shown in a message: blanks named as such."""
    blank = value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
    return "(blank)" if blank else repr(value)
