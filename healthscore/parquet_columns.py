"""The columns of a Parquet file as an Arrow table, and its account key as a Categorical.

`readers.read_parquet` decides which columns to read and turns the table into a frame; this
module reads them: text of few distinct values as dictionaries, and the account key coded
with one dictionary for all row groups (`keys.parts_categorical`): from the row groups' own
dictionaries where the file holds it as codes, else hashed, each half of the row groups
on its own thread in a file of many rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthscore import keys
from healthscore.parallel import begun, on_two_threads

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
    raw: bytes | Path,
    metadata: pq.FileMetaData,
    columns: list[str],
    key: str | None,
    dictionaries: list[str],
    skipped: Mapping[str, list[int]] | None = None,
) -> tuple[pa.Table, pd.Categorical | None]:
    """The columns of a Parquet file in file order, `dictionaries` read as dictionaries,
    but for the text column `key`, which comes apart, coded with one dictionary for all row
    groups (`keys.parts_categorical`): a Categorical with sorted categories, as
    `keys.coded_keys` leaves keys (no Arrow dictionary for pandas to convert). A key the
    file holds as dictionary codes throughout (`coded_throughout`) is read as them with the
    other columns, in one read on Arrow's threads, so only each row group's distinct keys
    are hashed (M's 10M keys: 0.54-0.69 s for all columns against 0.65-0.75 s read apart).
    Any other key is read as text first, on its own, hashed (`keys.encoded`), so that its
    text is gone before the rest is read; over many rows in several row groups, each half
    of them has its key read and coded on its own thread (50M rows: 9 s -> 6 s), and the
    other columns are read whole, on Arrow's threads, which is as fast and holds less at
    once. A column of `skipped` (`stale_groups`; not the key, not a dictionary) is read in
    its other row groups only, null in those listed, begun on the two threads before the
    other columns are read (`_recent_begun`). Text that is not UTF-8 fails here.
    """
    skipped = skipped or {}
    rest = [c for c in columns if c != key]

    def read(wanted: list[str], groups: list[int] | None = None, as_dictionary: list[str] = dictionaries) -> pa.Table:
        file = pq.ParquetFile(parquet_input(raw), metadata=metadata, read_dictionary=as_dictionary)  # one per thread
        if groups is not None:  # (on a thread of its own)
            table = file.read_row_groups(groups, wanted, use_threads=False)
            table.validate(full=True)
            return table
        table = file.read(columns=wanted)
        validate_in_halves(table)
        return table

    if key is not None and coded_throughout(metadata, key):  # the row groups' own dictionaries, with the rest
        recent = _recent_begun(raw, metadata, skipped)
        table = read([c for c in columns if c not in skipped], as_dictionary=[*dictionaries, key])
        column = table.column(key)
        parts = [(chunk.indices, chunk.dictionary) for chunk in column.chunks]
        table = _with_skipped(table.drop_columns([key]), metadata, rest, skipped, recent())
        return table, keys.parts_categorical(parts, column.type.value_type)
    coded = None
    if key is not None:
        many = outgrew_dictionary(metadata, key)

        def key_parts(groups: list[int] | None) -> tuple[np.ndarray, pa.Array]:
            return keys.encoded(read([key], groups).column(0), threads=1 if groups else 2, many=many)

        halves = row_group_halves(metadata)
        parts = [key_parts(None)] if halves is None else on_two_threads(key_parts, halves)
        coded = keys.parts_categorical(parts, parts[0][1].type)
        del parts
    recent = _recent_begun(raw, metadata, skipped)
    return _with_skipped(read([c for c in rest if c not in skipped]), metadata, rest, skipped, recent()), coded


def validate_in_halves(table: pa.Table) -> None:
    """`table.validate(full=True)` (text is UTF-8, dictionary codes in range ...: pyarrow
    does not check what it decodes), each half of the rows on its own thread over many
    rows (M's 10M events: 49 ms -> 25 ms)."""
    if table.num_rows < keys.PARALLEL_ROWS:
        table.validate(full=True)
        return
    half = table.num_rows // 2
    on_two_threads(lambda rows: rows.validate(full=True), [table.slice(0, half), table.slice(half)])


DICTIONARY_ROW_BYTES = 3.0  # compressed bytes a row of data pages holding dictionary codes only
PAGE_HEADERS = 1024  # bytes of a column chunk's data page headers and levels, besides the codes


def coded_throughout(metadata: pq.FileMetaData, name: str) -> bool:
    """True when, as far as the sizes in the footer tell, every row group holds the text
    column `name` as dictionary codes only: a dictionary page, then data pages of at most 3
    bytes a row after compression (codes of 24 bits at most), besides their headers. A
    writer whose dictionary grew too big (pyarrow's past 1 MiB: L's million keys) writes the
    remaining values themselves, 4 bytes a row and more before compression. Read as
    dictionaries, such a column has only each row group's distinct values hashed (M's 10M
    keys, 3.6M entries: 0.35-0.48 s against 0.6-1.2 s); where the writer gave up, pyarrow
    hashes each value decoding it and reading is slower. A wrong guess costs time, never a
    value."""
    found = _text_chunks(metadata, name)
    return found is not None and all(_codes_only(group, found[0]) for group in found[1])


def outgrew_dictionary(metadata: pq.FileMetaData, name: str) -> bool:
    """True when a row group of the text column `name` has a dictionary page but not codes
    only (`coded_throughout`): its writer gave up the dictionary there, so the column holds
    many distinct values (pyarrow's writer gives up past 1 MiB of them, some 70k keys),
    whose hashing is quicker in partitions (`keys.encoded(many=True)`). A wrong guess costs
    time, never a value."""
    found = _text_chunks(metadata, name)
    return found is not None and any(
        group.column(found[0]).has_dictionary_page and not _codes_only(group, found[0]) for group in found[1]
    )


def _text_chunks(metadata: pq.FileMetaData, name: str) -> tuple[int, list[pq.RowGroupMetaData]] | None:
    """The leaf column of the text column `name` and the row groups holding rows; None when
    it is not one text column or there are no rows."""
    leaves = [i for i in range(metadata.num_columns) if metadata.schema.column(i).path == name]
    if len(leaves) != 1 or metadata.schema.column(leaves[0]).logical_type.type != "STRING":
        return None
    groups = [metadata.row_group(r) for r in range(metadata.num_row_groups)]
    groups = [group for group in groups if group.num_rows > 0]  # an empty one may have no pages
    return (leaves[0], groups) if groups else None


def _codes_only(group: pq.RowGroupMetaData, column: int) -> bool:
    """`coded_throughout` for one row group's chunk of the column."""
    chunk = group.column(column)
    data = chunk.total_compressed_size - _dictionary_bytes(chunk)  # -inf without a dictionary page
    return bool(0 <= data <= DICTIONARY_ROW_BYTES * group.num_rows + PAGE_HEADERS)


PER_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
DAY_NS = 86_400 * 10**9


def stale_groups(
    metadata: pq.FileMetaData, schema: pa.Schema, time: str, starts: Mapping[str, pd.Timestamp]
) -> dict[str, list[int]]:
    """Of `starts` (columns needed only from a time on: `pipeline.recent_columns`), each
    column's row groups whose every time is before its start, by the footer's statistics
    of the timestamp or date column `time`: raw values, UTC instants or naive wall-clock
    times as sources hold them. Only columns with such row groups are given; none where
    the statistics cannot tell (no time column of those types, INT96 times, nested
    columns). A row group without statistics (all times missing) is never stale."""
    if metadata.num_columns != len(schema) or schema.get_field_index(time) < 0:
        return {}
    index = schema.get_field_index(time)
    kind = schema.field(index).type
    if pa.types.is_timestamp(kind) and metadata.schema.column(index).physical_type == "INT64":
        per = PER_UNIT_NS[kind.unit]
    elif pa.types.is_date32(kind):
        per = DAY_NS
    else:
        return {}
    latest = []
    for r in range(metadata.num_row_groups):
        stats = metadata.row_group(r).column(index).statistics
        latest.append(stats.max_raw if stats is not None and stats.has_min_max else None)
    stale = {}
    for column, start in starts.items():
        bound = start.value // per  # start is a midnight: exact in any unit
        groups = [r for r, last in enumerate(latest) if last is not None and last < bound]
        if groups:
            stale[column] = groups
    return stale


def _recent_begun(
    raw: bytes | Path, metadata: pq.FileMetaData, skipped: Mapping[str, list[int]]
) -> Callable[[], dict[str, pa.ChunkedArray]]:
    """Each column of `skipped` read in the row groups not listed for it, begun on the two
    threads (`parallel.begun`), each half of its rows on its own over many rows (pyarrow
    decodes a column's row groups one after another); what this returns waits for them.
    Begun before the file's other columns are read on Arrow's threads, they fill what those
    leave idle: M's `user_id` in 30 row groups beside the key, event, time and duration,
    0.69-0.72 s -> 0.64-0.68 s for the events' read."""
    jobs = [(name, some) for name, groups in skipped.items() for some in _halves(metadata, _fresh(metadata, groups))]

    def read_part(job: tuple[str, list[int]]) -> pa.ChunkedArray:
        name, groups = job
        file = pq.ParquetFile(parquet_input(raw), metadata=metadata)
        table = file.read_row_groups(groups, [name], use_threads=False)
        table.validate(full=True)
        return table.column(0)

    done = begun(read_part, jobs)

    def columns() -> dict[str, pa.ChunkedArray]:
        read: dict[str, list[pa.ChunkedArray]] = {name: [] for name in skipped}
        for (name, _), column in zip(jobs, done(), strict=True):
            read[name].append(column)
        return {name: _joined(read[name], metadata, name) for name in skipped}

    return columns


def _fresh(metadata: pq.FileMetaData, stale: list[int]) -> list[int]:
    """The row groups not listed in `stale`."""
    listed = set(stale)
    return [r for r in range(metadata.num_row_groups) if r not in listed]


def _halves(metadata: pq.FileMetaData, groups: list[int]) -> list[list[int]]:
    """The row groups in two runs of about half their rows each over many rows, else in one
    (none without groups)."""
    if not groups:
        return []
    rows = np.cumsum([metadata.row_group(r).num_rows for r in groups])
    if len(groups) < 2 or rows[-1] < keys.PARALLEL_ROWS:  # (looked up at each call: tests lower it)
        return [groups]
    cut = 1 + int(np.argmin(np.abs(2 * rows[:-1] - rows[-1])))
    return [groups[:cut], groups[cut:]]


def _joined(parts: list[pa.ChunkedArray], metadata: pq.FileMetaData, name: str) -> pa.ChunkedArray:
    """A column read in parts as one; empty, of the file's type for it, without parts."""
    if not parts:
        return pa.chunked_array([], metadata.schema.to_arrow_schema().field(name).type)
    return pa.chunked_array([chunk for part in parts for chunk in part.chunks], parts[0].type)


def _with_skipped(
    table: pa.Table,
    metadata: pq.FileMetaData,
    order: list[str],
    skipped: Mapping[str, list[int]],
    recent: Mapping[str, pa.ChunkedArray],
) -> pa.Table:
    """`table` with each column of `skipped`, read in the row groups not listed for it
    (`recent`, from `_recent_begun`), null in those, put in its place among `order` (the
    columns' file order)."""
    sizes = [metadata.row_group(r).num_rows for r in range(metadata.num_row_groups)]
    for name in [c for c in order if c in skipped]:
        stale = set(skipped[name])
        column = recent[name]
        nulls = pa.nulls(max(sizes[r] for r in stale), column.type)  # one, sliced for every stale group
        chunks: list[pa.Array] = []
        offset = 0
        for r, rows in enumerate(sizes):
            if r in stale:
                chunks.append(nulls.slice(0, rows))
            else:
                chunks += column.slice(offset, rows).chunks
                offset += rows
        position = sum(1 for c in order[: order.index(name)] if c in table.column_names)
        table = table.add_column(position, name, pa.chunked_array(chunks, column.type))
    return table


def values_at(raw: bytes | Path, metadata: pq.FileMetaData, columns: list[str], positions: np.ndarray) -> pa.Table:
    """The columns' values in the rows at `positions` (ascending or not), read from the row
    groups holding them alone: what `_with_skipped` left null, for a rejected row's raw text."""
    starts = np.cumsum([0, *(metadata.row_group(r).num_rows for r in range(metadata.num_row_groups))])
    group = np.searchsorted(starts, positions, side="right") - 1
    wanted = np.unique(group)
    before = np.zeros(len(starts), dtype=np.int64)  # rows of the wanted groups read before each one
    before[wanted] = np.cumsum([0, *(starts[wanted + 1] - starts[wanted])[:-1]])
    table = pq.ParquetFile(parquet_input(raw), metadata=metadata).read_row_groups(wanted.tolist(), columns)
    return table.take(positions - starts[group] + before[group])
