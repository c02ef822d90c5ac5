"""Numbers and times parsed by pyarrow's CSV reader as it reads, on the quick path, and
text columns of few distinct values read dictionary-encoded.

The text path reads every column as text, then `coerce` casts the columns the config types
(Arrow's cast, a column at a time on one thread: M's 10M events, their times and
durations, 0.32 s, and 300 MB of text held until then). A column typed `float`, and the
time column, can instead be parsed by the CSV reader itself, on its threads, with the
same parser. Only where the values come out as the text path would make them: a value
the parser refuses (padded, formatted, a unit, another form of time) fails the typed read,
and the file is read again as text; values the text path treats apart (`inf`, `nan`,
`-0`, a time column with no value at all) send the file back to the text path too.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from healthscore.coerce import ZONE_OFFSET, ZONED, holds_text
from healthscore.models import SourceConfig
from healthscore.presets import renames_for
from healthscore.textfile import Text


def typed_columns(
    data: Text, start: int, names: list[str], delimiter: str, source: SourceConfig
) -> dict[int, pa.DataType]:
    """The columns of a CSV body (`data[start:]`, header `names`) to parse as numbers or
    times, by position: those the config types `float` (unless `thousands` or `decimal`
    rewrite numbers first), and the time column, as times with a zone offset or without,
    as its first value has (the text path's first cast; unless a `date_format` is set or
    the config types it as epoch numbers). The config names columns as the source renames
    them (its preset, then its own `rename`)."""
    renames = renames_for(source, names)
    names = [renames.get(name, name) for name in names]
    if len(set(names)) != len(names):
        return {}
    typed: dict[int, pa.DataType] = {}
    if source.thousands is None and source.decimal == ".":
        typed = {
            i: pa.float64()
            for i, name in enumerate(names)
            if source.types.get(name) == "float" and name not in (source.key, source.time)
        }
    kind = source.types.get(source.time, "datetime") if source.time else None
    if source.time in names and kind not in ("int", "float") and source.date_format.upper() == "ISO8601":
        at = names.index(source.time)
        first = _first_values(data, start, delimiter)
        value = first[at] if at < len(first) else ""
        if value and value == value.strip():
            typed[at] = ZONED if ZONE_OFFSET.search(value) else pa.timestamp("us")
    return typed


def _first_values(data: Text, start: int, delimiter: str) -> list[str]:
    """The values of the first record of `data[start:]` (quotes resolved)."""
    end = data.find(b"\n", start)
    line = data[start : end if end >= 0 else len(data)].rstrip(b"\r").decode("utf-8", errors="replace")
    return next(csv.reader([line], delimiter=delimiter), [])


def as_text_would(table: pa.Table, typed: Mapping[int, pa.DataType]) -> bool:
    """True when the typed columns hold what the text path makes of their text: numbers
    all finite and no negative zero (it refuses `inf` and `nan` as bad values, and pandas
    reads `-0` as 0.0 or -0.0 by the whole column), times not all missing (for a column
    of none, pandas picks the type)."""
    for at, kind in typed.items():
        column = table.column(at)
        if pa.types.is_floating(kind):
            if not all(_finite_and_signless(chunk) for chunk in column.chunks):
                return False
        elif len(column) and column.null_count == len(column):
            return False
    return True


NEGATIVE_ZERO = np.float64(-0.0).view(np.int64)  # its bits: the sign bit alone


def _finite_and_signless(chunk: pa.Array) -> bool:
    """True when a chunk of float64 holds no infinity, NaN or -0.0, by numpy over its values
    in place (10M values: 16 ms against 47 ms by Arrow's compute, which divided by each
    value to find -0.0). The slots of nulls are looked at too: pyarrow's CSV reader leaves
    them 0.0, and anything else would only send the file to the text path."""
    data = chunk.buffers()[1]
    if data is None:
        return True
    values = np.frombuffer(data, dtype=np.float64, count=chunk.offset + len(chunk))[chunk.offset :]
    return bool(np.isfinite(values).all()) and not bool((values.view(np.int64) == NEGATIVE_ZERO).any())


FEW_DISTINCT = 1000  # distinct values of a sample's text column read dictionary-encoded, at most
ROWS_A_VALUE = 50  # and rows of the sample for each distinct value, at least


def few_valued(sample: pa.Table, columns: list[int], source: SourceConfig) -> list[int]:
    """Of the given text columns of a parsed sample of a CSV body, those of few distinct
    values (at most FEW_DISTINCT, and ROWS_A_VALUE rows a value: event names, plans,
    priorities) holding a value that is not a number: read dictionary-encoded, as Parquet's
    such columns are, they become Categoricals, a few bytes a row instead of their text,
    compared and counted once per distinct value. Since that value is in the whole column
    too, `coerce` would never have made the column numbers. A column of more values
    further on is still read right, only slower."""
    few = []
    for at in columns:
        values = sample.column(at)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        distinct = pc.unique(values.combine_chunks().drop_null())
        many = not 0 < len(distinct) <= FEW_DISTINCT or len(distinct) * ROWS_A_VALUE > len(values)
        if not many and holds_text(pd.Series(distinct.to_pandas(), dtype="str"), source):
            few.append(at)
    return few
