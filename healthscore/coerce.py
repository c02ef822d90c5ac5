"""Column types: text columns converted to the types the config names, vectorized.

A value that does not convert is never silently turned into a missing value: the
run stops with the file, line, column and value, and how to fix it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.errors import DataError, Problem
from healthscore.models import SourceConfig
from healthscore.origins import Origins

TRUE_TOKENS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_TOKENS = frozenset({"false", "f", "no", "n", "0"})
MAX_EXAMPLES = 5
UNITS = r"[%$€£¥₹\s\u00a0]"  # stripped from numbers in columns typed int or float
PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"  # as pyarrow and pandas read it
SLASH_DATE = r"\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})\b.*"


def apply_types(
    frame: pd.DataFrame,
    types: Mapping[str, str],
    source: SourceConfig,
    origins: Origins,
    infer: bool,
    name: str = "",
) -> pd.DataFrame:
    """Convert configured columns; the time column becomes datetime; with `infer`, text columns
    whose every value is a number become numbers (unless they look like ids: leading zeros, or
    too many digits for a float). Raises DataError listing bad values of source `name`."""
    frame = frame.copy(deep=False)  # columns are replaced, never changed in place (copy-on-write)
    problems: list[Problem] = []
    wanted = dict(types)
    if source.time and source.time in frame.columns:
        kind = wanted.get(source.time, "datetime")
        if kind in ("int", "float"):  # epoch numbers in a text file
            numbers, bad = _to_number(frame[source.time], source)
            if not bad.any():
                frame[source.time] = numbers
        wanted[source.time] = kind if kind in ("date", "datetime") else "datetime"  # times, whatever the type
    wanted.pop(source.key, None)  # keys are always text
    for column, kind in wanted.items():
        if column not in frame.columns:
            continue
        converted, bad = convert(frame[column], kind, source)
        if bad.any():
            problems.append(_bad_values(frame, column, kind, bad, origins, source))
        else:
            frame[column] = converted
    if problems:
        files = ", ".join(sorted({Path(label).name for label in origins.labels}))
        prefix = f"source {name!r}: " if name else ""
        raise DataError(f"{prefix}{len(problems)} column(s) of {files} hold values of the wrong type", problems)
    if infer:
        skip = {*wanted, source.key}
        for column in frame.columns:
            if column not in skip and _is_text(frame[column]):
                number = _as_numbers(frame[column], source)
                if number is not None:
                    frame[column] = number
    return frame


def _as_numbers(values: pd.Series, source: SourceConfig) -> pd.Series | None:
    """A text column as numbers if every value is one and they do not look like ids, else None."""
    if holds_text(values.head(200), source):  # cheap early exit for text columns
        return None
    number, bad = _to_number(values, source)
    if bad.any() or number.isna().all() or _looks_like_ids(values):
        return None
    return number


def holds_text(values: pd.Series, source: SourceConfig) -> bool:
    """True when a text value is not a number (by the source's `decimal` and `thousands`):
    a column holding it is never inferred to be numbers."""
    return bool(_to_number(values, source)[1].any())


def _looks_like_ids(values: pd.Series) -> bool:
    """Numbers that are really identifiers: a leading zero (`007`, zip codes) or more digits
    than a float holds exactly; turned into numbers they would lose characters."""
    text = values.dropna().astype("str").str.strip()
    return bool(text.str.match(r"[+-]?0\d|[+-]?\d{16,}").any())


def _is_text(values: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(values.dtype) or values.dtype == object


def convert(values: pd.Series, kind: str, source: SourceConfig) -> tuple[pd.Series, pd.Series]:
    """Convert a column to `kind`; return the converted column and a mask of values that failed."""
    if kind == "string":
        text = values.astype("str")
        return text.where(values.notna()), pd.Series(False, index=values.index)
    if kind in ("int", "float"):
        number, bad = _to_number(values, source, units=True)
        if kind == "int":
            unfit = number.notna() & ((number != np.floor(number)) | (number.abs() >= 2.0**63))
            return number.where(~unfit).astype("Float64").round().astype("Int64"), bad | unfit
        return number, bad
    if kind == "bool":
        return _to_bool(values)
    return _to_datetime(values, source, date_only=kind == "date")


def _to_number(values: pd.Series, source: SourceConfig, units: bool = False) -> tuple[pd.Series, pd.Series]:
    """Numbers from a column; text per `decimal`/`thousands`, with `%` and currency signs
    removed when `units` (a column the config types as a number). Blank text is missing.
    Returns the numbers and a mask of the values that are not numbers.

    Text that is a plain number (`12`, `-3.5`, `1e6`) is parsed by pyarrow in one pass;
    only the other values (blank, padded, formatted, or not numbers) take the string
    clean-up of `_to_number_slowly`, so the result is the same either way."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64"), pd.Series(False, index=values.index)
    if source.thousands == ".":  # `1.500` is then 1500, not the plain number 1.5
        return _to_number_slowly(values, source, units)
    number, plain = _plain_numbers(values)
    bad = plain & ~np.isfinite(number)  # "inf" or 1e999 in an export is not a value
    rest = values.notna().to_numpy() & ~plain
    if rest.any():
        rest_number, rest_bad = _to_number_slowly(values[rest], source, units)
        number[rest], bad[rest] = rest_number.to_numpy(), rest_bad.to_numpy()
    zero = number == 0
    if zero.any() and values[zero].astype("str").str.contains("-", regex=False).any():
        return _to_number_slowly(values, source, units)  # pandas reads `-0` as 0.0 or -0.0 by the whole column
    number[bad] = np.nan
    return pd.Series(number, index=values.index, dtype="float64"), pd.Series(bad, index=values.index)


def _plain_numbers(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The values written as plain decimal numbers, parsed (NaN elsewhere), and their mask."""
    text = pa.array(values.astype("str"), type=pa.large_string())
    every = _all_numbers(text)
    if every is not None:
        return every, text.is_valid().to_numpy(zero_copy_only=False)
    plain = pc.fill_null(pc.match_substring_regex(text, PLAIN_NUMBER), False)
    parsed = pc.cast(pc.if_else(plain, text, pa.scalar(None, pa.large_string())), pa.float64())
    number = np.array(parsed.to_numpy(zero_copy_only=False), dtype="float64")  # writable: filled in later
    return number, np.asarray(plain.to_numpy(zero_copy_only=False), dtype=bool)


def _all_numbers(text: pa.Array) -> np.ndarray | None:
    """The text parsed as float64 (NaN where missing) when every value is a finite decimal
    number, the common case, by one cast without the pattern; None otherwise."""
    try:
        parsed = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:  # some value is not a number: `_plain_numbers` sorts them out
        return None
    number = np.array(parsed.to_numpy(zero_copy_only=False), dtype="float64")  # writable: filled in later
    present = parsed.is_valid().to_numpy(zero_copy_only=False)
    return number if np.isfinite(number[present]).all() else None  # "inf" and 1e999 are not values


def _to_number_slowly(values: pd.Series, source: SourceConfig, units: bool) -> tuple[pd.Series, pd.Series]:
    """`_to_number` for text of any form: stripped, units and thousands separators removed,
    `decimal` made a point, then parsed by pandas."""
    text = values.astype("str").str.strip()
    if units:
        text = text.str.replace(UNITS, "", regex=True)
    values = values.where(text != "")
    if source.thousands:
        text = text.str.replace(source.thousands, "", regex=False)
    if source.decimal != ".":
        text = text.str.replace(source.decimal, ".", regex=False)
    number = pd.to_numeric(text.where(values.notna()), errors="coerce").astype("float64")
    number = number.where(np.isfinite(number))  # "inf" or 1e999 in an export is not a value
    return number, values.notna() & number.isna()


def _to_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), pd.Series(False, index=values.index)
    text = values.astype("str").str.strip().str.lower()
    values = values.where(text != "")  # a blank cell is missing, as for numbers and dates
    is_true, is_false = text.isin(TRUE_TOKENS), text.isin(FALSE_TOKENS)
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[is_true] = True
    result[is_false] = False
    return result, values.notna() & ~(is_true | is_false)


def _to_datetime(values: pd.Series, source: SourceConfig, date_only: bool) -> tuple[pd.Series, pd.Series]:
    """Parse times to naive UTC (aware times converted, naive taken as UTC); numbers are epochs."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # typed already (Parquet): no parse
        naive = values.dt.tz_convert(None) if isinstance(values.dtype, pd.DatetimeTZDtype) else values
        return (naive.dt.normalize() if date_only else naive), pd.Series(False, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.astype("float64")
        integers = pd.api.types.is_integer_dtype(values.dtype)
        exact = values.astype("Int64") if integers else numbers  # floats would round off ns
        unit = epoch_unit(numbers)
        parsed = pd.to_datetime(exact, unit=unit, utc=True, errors="coerce")  # type: ignore[call-overload]
    elif (objects := _python_times(values)) is not None:
        parsed = objects
    else:
        fmt = None if source.date_format.upper() == "ISO8601" else source.date_format
        text = values
        # Arrow refuses padded or blank text: tried on the text as read, it saves the clean-up
        quick = _iso_times_quickly(values) if fmt is None and isinstance(values.dtype, pd.StringDtype) else None
        if quick is None:
            text = values.astype("str").str.strip().where(values.notna())
            values = values.where(text != "")  # a blank cell is a missing time, not a bad one
            quick = _iso_times_quickly(text.where(text != "")) if fmt is None else None
        try:
            parsed = (
                quick
                if quick is not None
                else pd.to_datetime(text, format=fmt or "ISO8601", utc=True, errors="coerce", cache=False)
            )
        except (ValueError, TypeError):
            parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    parsed = parsed.dt.tz_convert(None)
    if date_only:
        parsed = parsed.dt.normalize()
    return parsed, values.notna() & parsed.isna()


def _python_times(values: pd.Series) -> pd.Series | None:
    """Dates held as Python objects (Parquet dates) as UTC midnights, converted by Arrow
    rather than written out as text and parsed back; None when the column holds anything
    else (datetimes among them: Arrow would cut their time of day off), or nothing."""
    if not pd.api.types.is_object_dtype(values.dtype):
        return None
    kinds = set(pd.unique(values.map(type, na_action="ignore").dropna()))  # a C loop, not a Python one
    if kinds != {dt.date}:
        return None
    utc = pc.cast(pa.array(values, type=pa.date32(), from_pandas=True), pa.timestamp("us"))
    return pd.Series(utc.to_numpy(zero_copy_only=False), index=values.index).dt.tz_localize("UTC")


def _iso_times_quickly(text: pd.Series) -> pd.Series | None:
    """ISO 8601 text parsed by Arrow (in C++, some 10x faster than pandas) when every value
    has a zone offset, or none has (then taken as UTC); None for anything else (a date
    without a time, mixed forms, nanoseconds), for pandas to parse and to report."""
    array = pa.array(text, type=pa.large_string())
    if array.null_count == len(array):  # nothing to parse: pandas decides the dtype
        return None
    for target in _casts_to_try(array):
        try:
            parsed = pc.cast(array, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        utc = pc.cast(parsed, pa.timestamp("us")) if target.tz else parsed  # the instants, in UTC
        return pd.Series(utc.to_numpy(zero_copy_only=False), index=text.index).dt.tz_localize("UTC")
    return None


ZONED = pa.timestamp("us", tz="UTC")
ZONE_OFFSET = re.compile(r":\d\d(:\d\d(\.\d*)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$")  # a time's minutes, then its offset


def _casts_to_try(array: pa.Array) -> tuple[pa.DataType, pa.DataType]:
    """Both casts of `_iso_times_quickly` (only one can succeed: each refuses the other's
    text), the likelier first, as the first value says. A cast that fails on a whole column
    is slow: 0.6 s for a million naive times tried as zoned ones, against 0.02 s to parse."""
    first = array[pc.index(array.is_valid(), True).as_py()].as_py()
    naive = pa.timestamp("us")
    return (ZONED, naive) if ZONE_OFFSET.search(first.strip()) else (naive, ZONED)


def epoch_unit(numbers: pd.Series) -> str:
    """The unit of epoch times by their size: seconds up to year ~5138, then ms, us, ns."""
    largest = numbers.abs().max()
    for unit, limit in (("s", 1e11), ("ms", 1e14), ("us", 1e17)):
        if not largest >= limit:  # also true for an all-missing column
            return unit
    return "ns"


def _date_hint(bad: pd.Series, source: SourceConfig) -> str:
    """How to fix dates that did not parse; for day/month dates, which order the values
    prove (a first part over 12 is a day) or that the order is ambiguous."""
    now = f"set date_format (now {source.date_format!r}) to the pattern of these values"
    parts = bad.astype("str").str.extract(SLASH_DATE).dropna().astype(int)
    if parts.empty:
        return f"{now}, e.g. '%Y-%m-%d %H:%M'; every value of the column must follow it"
    sep = str(bad.astype("str").str.extract(r"\d{1,2}([/.-])").dropna().iloc[0, 0])
    day_first, month_first = (parts[0] > 12).any(), (parts[1] > 12).any()
    year = "%Y" if (parts[2] >= 100).all() else "%y"
    us, eu = f"%m{sep}%d{sep}{year}", f"%d{sep}%m{sep}{year}"
    if day_first and month_first:
        return f"{now}: these values mix day-first and month-first dates; re-export with one format"
    if day_first:
        return f"{now}: {eu!r} (day first: some values have a first part over 12)"
    if month_first:
        return f"{now}: {us!r} (month first: some values have a second part over 12)"
    return f"{now}: {us!r} (US) or {eu!r} (day first); these values fit both, check the exporting tool's locale"


def _bad_values(
    frame: pd.DataFrame, column: str, kind: str, bad: pd.Series, origins: Origins, source: SourceConfig
) -> Problem:
    positions = np.flatnonzero(bad.to_numpy(dtype=bool))[:MAX_EXAMPLES]
    values = frame[column].iloc[positions]
    examples = "; ".join(f"{at}: {value!r}" for at, value in zip(origins.where(positions), values, strict=True))
    count = int(bad.sum())
    if kind in ("date", "datetime"):
        hint = _date_hint(frame.loc[bad, column], source)
    elif kind in ("int", "float"):
        hint = "fix the values, or set `decimal`/`thousands` for formatted numbers, or type the column as string"
    else:
        hint = "fix the values, or type the column as string"
    return Problem(f"{count} value(s) of column {column!r} are not {kind}: {examples}", column, hint)
