"""The columns of a Parquet file as an Arrow table, and its account key as a Categorical.

`readers.read_parquet` decides which columns to read and turns the table into a frame; this
module reads them: text of few distinct values as dictionaries, and the account key encoded
with one dictionary for all row groups (`keys.encoded`). In a file of many rows, each half
of the row groups has its key read and hashed on its own thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthscore import keys

SMALL_DICTIONARY = 32 * 1024  # bytes of a row group's dictionary page: a column of few distinct values


def parquet_input(raw: bytes | Path) -> pa.BufferReader | str:
    """What pyarrow reads a Parquet file from: its bytes in place, or its path."""
    return pa.BufferReader(raw) if isinstance(raw, bytes) else str(raw)


def few_values(metadata: pq.FileMetaData, fields: int, columns: list[int]) -> list[int]:
    """Of the given text columns, those whose every row group holds a small dictionary (at
    most a byte a row and 32 KiB, like event names or priorities): read as
    dictionaries they become Categoricals, a byte a row instead of the text, compared once
    per distinct value. `fields`: the Arrow schema's field count."""
    if metadata.num_columns != fields:  # nested: Parquet's leaf columns are not the fields
        return []
    text = [i for i in columns if metadata.schema.column(i).logical_type.type == "STRING"]
    return [
        i
        for i in text
        if metadata.num_row_groups > 0
        and all(_few_in(metadata.row_group(r), i) for r in range(metadata.num_row_groups))
    ]


def _few_in(group: pq.RowGroupMetaData, column: int) -> bool:
    """True when the row group's dictionary of the column is small, in bytes and against its rows."""
    size = _dictionary_bytes(group.column(column))
    return size <= SMALL_DICTIONARY and size <= group.num_rows


def _dictionary_bytes(chunk: pq.ColumnChunkMetaData) -> float:
    """The size of a column chunk's dictionary page (infinite without one)."""
    start, data = chunk.dictionary_page_offset, chunk.data_page_offset
    return data - start if chunk.has_dictionary_page and start is not None and 0 <= start < data else float("inf")


def row_group_halves(metadata: pq.FileMetaData) -> list[list[int]] | None:
    """The row groups in two runs of about half the rows each, for two threads; None when
    the file is too short to be worth it or has a single row group (it cannot be split)."""
    sizes = np.array([metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)], dtype=np.int64)
    if len(sizes) < 2 or sizes.sum() < keys.PARALLEL_ROWS:  # (looked up at each call: tests lower it)
        return None
    before = np.cumsum(sizes)[:-1]  # rows before each possible cut (1 .. groups - 1)
    cut = 1 + int(np.argmin(np.abs(2 * before - sizes.sum())))  # the most even one
    return [list(range(cut)), list(range(cut, len(sizes)))]


def read_columns(
    raw: bytes | Path, metadata: pq.FileMetaData, columns: list[str], key: str | None, dictionaries: list[str]
) -> tuple[pa.Table, pd.Categorical | None]:
    """The columns of a Parquet file in file order, `dictionaries` read as dictionaries;
    and apart from them the text column `key`, read first on its own and encoded
    (`keys.encoded`) with one dictionary for all row groups, so that its text is gone
    before the rest is read: a Categorical with sorted categories, as `keys.coded_keys`
    leaves keys (its codes gathered once, no Arrow dictionary for pandas to convert).
    (Parquet's own dictionaries, one per row group, cost far more to unify: 25 s for 50M
    rows of a million keys, against 6 s to encode.) Over many rows in several row groups,
    each half of them has its key read and hashed on its own thread (50M rows: 9 s -> 6 s);
    the other columns are read whole, on Arrow's threads, which is as fast and holds less
    at once. Text that is not UTF-8 fails here."""

    def opened() -> pq.ParquetFile:  # one per thread: a file object is not shared
        return pq.ParquetFile(parquet_input(raw), metadata=metadata, read_dictionary=dictionaries)

    def read(wanted: list[str], groups: list[int] | None = None) -> pa.Table:
        file = opened()
        table = file.read(columns=wanted) if groups is None else file.read_row_groups(groups, wanted, use_threads=False)
        table.validate(full=True)
        return table

    coded = None
    if key is not None:
        halves = row_group_halves(metadata)
        if halves is None:
            parts = [keys.encoded(read([key]).column(0))]
        else:  # each half read and hashed on its own thread
            parts = keys.on_two_threads(lambda g: keys.encoded(read([key], g).column(0), threads=1), halves)
        coded = keys.parts_categorical(parts, parts[0][1].type)
        del parts
    return read([c for c in columns if c != key]), coded
