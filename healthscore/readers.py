"""One input file to a frame of its data rows, whatever the format, with nothing lost.

Each reader returns a `FileFrame`: the rows (columns named as the file names them, header
whitespace and BOM stripped), the line or row each came from, the rows set aside with a
reason (ragged rows, malformed JSON), and counts of lines that are not data (report
footers, repeated header rows). Rejected rows keep their raw text for rejects.csv.
"""

from __future__ import annotations

import io
import json
import re
import threading
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pj
import pyarrow.parquet as pq

from healthscore.csv_typed import as_text_would, few_valued, typed_columns
from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.keys import dictionary_categorical
from healthscore.models import SourceConfig
from healthscore.origins import Lines, RowLines
from healthscore.parallel import on_two_threads
from healthscore.parquet_columns import few_values, parquet_input, read_columns, stale_groups, values_at
from healthscore.presets import renames_for
from healthscore.textfile import (
    RETURN,
    Decoded,
    Records,
    Text,
    as_bytes,
    count_bytes,
    delimiter_ranking,
    drop_spans,
    gunzip,
    holds_byte,
    is_empty,
    is_gzip,
    returns_end_lines,
    scan_records,
    skip_lines,
    to_utf8,
)

REJECT_COLUMNS = ("line", "reason", "raw")
TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # the `str` dtype pandas reads text as
SALESFORCE_FOOTER = (
    r"grand totals \(\d+ records?\)|confidential information - do not distribute"
    r"|copyright \(c\) [\d-]+ salesforce\.com, inc\. all rights reserved\."
)
REPORT_FOOTER = re.compile(SALESFORCE_FOOTER, re.IGNORECASE)  # never an account's key
FOOTER = re.compile(rf"{SALESFORCE_FOOTER}|(grand )?totals?:?", re.IGNORECASE)  # when the key is empty
TOO_FEW, TOO_MANY, MALFORMED_JSON = "too few fields", "too many fields", "malformed json"
FOOTER_LINE, REPEATED_HEADER = "report footer", "repeated header row"

MissingColumns = Callable[[list[str]], list[str]]
Select = Callable[[list[str]], tuple[list[str], str | None]]
"""Of a file's headers, those to read (in file order) and the one holding the account key
(read dictionary-encoded, so it becomes a Categorical coded once per distinct key). With
a key, Parquet text columns of few distinct values are read as Categoricals too."""


Recent = Callable[[list[str]], tuple[str, dict[str, pd.Timestamp]] | None]
"""Of a file's headers, the one holding the time, and those needed only from a time on
(`pipeline.recent_columns`) with that time: Parquet reads them only in the row groups
that may hold such times (`parquet_columns.stale_groups`); None: all are read whole."""


def select_all(headers: list[str]) -> tuple[list[str], str | None]:
    """The default selection: every column, no key column known."""
    return headers, None


# what pandas, pyarrow, openpyxl and the json module raise on a damaged or hostile file
UNREADABLE = (
    ValueError,  # pandas ParserError / EmptyDataError, json, UnicodeError
    pd.errors.ParserWarning,  # raised as an error by _parse_rows
    OSError,
    KeyError,
    IndexError,
    TypeError,
    RecursionError,
    zipfile.BadZipFile,
    zlib.error,
    ElementTree.ParseError,
    pa.ArrowException,
)


@dataclass
class FileFrame:
    """A file's data rows and what was set aside; `raw(positions)` gives rows' raw text."""

    frame: pd.DataFrame
    lines: Lines
    raw: Callable[[np.ndarray], list[str]]
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REJECT_COLUMNS)))
    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[Problem] = field(default_factory=list)
    delimiter: str | None = None


def file_format(source: SourceConfig, path: Path) -> str:
    """The format of a file: the source's `format`, else from the suffix (csv by default)."""
    if source.format:
        return source.format
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    for fmt, endings in (
        ("parquet", (".parquet", ".pq")),
        ("jsonl", (".jsonl", ".ndjson", ".json")),
        ("xlsx", (".xlsx", ".xlsm")),
    ):
        if suffixes and suffixes[-1] in endings:
            return fmt
    return "csv"


def clean_names(names: Iterable[object]) -> list[str]:
    """Header names with surrounding whitespace and any BOM removed."""
    return [str(n).replace("\ufeff", "").strip() for n in names]


def read_file(
    path: Path,
    raw: Text | None,
    source: SourceConfig,
    name: str,
    missing: MissingColumns,
    select: Select = select_all,
    recent: Recent | None = None,
) -> FileFrame:
    """Read one file of a source, from its bytes `raw`, or from the path when `raw` is None
    (Parquet: then only the columns read are ever in memory), a large CSV file perhaps
    mapped (`textfile.file_text`); `missing(names)` says which expected columns a header
    lacks (used to confirm the delimiter), `select(names)` which
    columns to read (Parquet reads no others), `recent` which of them Parquet may leave
    null in row groups older than needed. Raises DataError / InputMissingError."""
    if raw is not None and is_gzip(path):
        raw = gunzip(as_bytes(raw), path, name)
    if path.stat().st_size == 0 if raw is None else is_empty(raw):
        raise InputMissingError(
            f"source {name!r}: input file is empty: {path}",
            [Problem("the file has no header and no rows", str(path), "re-export the data")],
        )
    fmt = file_format(source, path)
    if fmt == "parquet":
        return read_parquet(path, path if raw is None else as_bytes(raw), name, select, recent)
    if raw is None:
        raise ValueError(f"{path}: only Parquet is read from its path")  # a caller's mistake, not the data's
    try:
        if fmt == "csv":
            return read_csv(path, raw, source, name, missing, select)
        if fmt == "jsonl":
            return read_jsonl(path, as_bytes(raw), source, name)
        return read_xlsx(path, as_bytes(raw), source, name)
    except UNREADABLE as exc:  # the parsers' own errors on damaged files, as one DataError
        raise DataError(
            f"source {name!r}: cannot read {path} as {fmt}",
            [
                Problem(
                    f"{type(exc).__name__}: {_first_line(exc)}",
                    str(path),
                    f"check the file, or set sources.{name}.format",
                )
            ],
        ) from None


# --- CSV --------------------------------------------------------------------------------


def read_csv(
    path: Path, raw: Text, source: SourceConfig, name: str, missing: MissingColumns, select: Select = select_all
) -> FileFrame:
    """Delimited text: decoded, preamble skipped, ragged records rejected, footers dropped;
    on the quick path the key column `select` names is read dictionary-encoded. A mapped
    file (`textfile.file_text`) stays so on the quick path; any other copies it."""
    decoded = to_utf8(raw, source.encoding, path, name)
    notes = _fallback_note(decoded, path, name)
    text = decoded.data
    if text.find(b"\n") < 0 and text.find(b"\r") >= 0:  # (find: a map's `in` goes byte by byte)
        text = as_bytes(text).replace(b"\r", b"\n")  # old Mac line ends (Excel's "CSV (Macintosh)")
    data, skipped = skip_lines(text, source.skip_rows)
    quotes, line_feeds = count_bytes(data, b'"\n')
    if quotes % 2:  # a quote never closed
        records = scan_records(as_bytes(data), ",", skipped + 1)
        raise DataError(
            f"source {name!r}: {path} has a double quote that is never closed",
            [
                Problem(
                    f"the field opened on line {records.lines[-1] if len(records) else skipped + 1} runs to the "
                    "end of the file",
                    str(path),
                    "the export was cut short or a quote is unescaped (write it as two quotes)",
                )
            ],
        )
    quick = _read_csv_quickly(data, source, skipped, missing, select, line_feeds)
    if quick is not None:
        quick.notes = notes
        return drop_repeated_headers(quick, list(quick.frame.columns))
    data = as_bytes(data)  # the record scan's path: a mapped file copied
    delimiter, records, names = _choose_delimiter(data, source, skipped, missing)
    header_rows = min(source.header_rows, len(records))
    body = Records(*(a[header_rows:] for a in (records.starts, records.ends, records.lines, records.fields)))
    if len(names) > 1 and names[-1] == "" and len(body) and (body.fields == len(names) - 1).all():
        names = names[:-1]  # a trailing delimiter on the header only
    names = _fill_blank_names(names, data, records, header_rows, delimiter)
    expected = len(names)
    trailing = len(body) > 0 and bool((body.fields == expected + 1).all()) and _all_end_with(data, body, delimiter)
    if trailing:
        expected += 1  # a trailing delimiter on every data row: an unnamed empty last column
    ragged = body.fields != expected
    texts = pd.Series([body.text(data, int(i)) for i in np.flatnonzero(ragged)], dtype="str")
    footer = np.zeros(len(body), dtype=bool)
    footer[np.flatnonzero(ragged)] = is_footer(texts)
    bad = ragged & ~footer
    reasons = np.where(body.fields[bad] < expected, TOO_FEW, TOO_MANY)
    rejected = pd.DataFrame({"line": body.lines[bad], "reason": reasons, "raw": texts[~footer[ragged]].to_numpy()})
    keep = ~ragged
    start = int(body.starts[0]) if len(body) else len(data)
    clean = drop_spans(data[start:], body.starts[ragged] - start, body.ends[ragged] - start)
    frame = _parse_rows(clean, delimiter, expected, source, rows=int(keep.sum()))
    kept = Records(*(a[keep] for a in (body.starts, body.ends, body.lines, body.fields)))
    if len(frame) != len(kept):
        raise DataError(
            f"source {name!r}: cannot split {path} into rows",
            [Problem("a double quote inside an unquoted field confuses the rows", str(path), "quote that field")],
        )
    frame.columns = pd.Index([*names, "_trailing"] if trailing else names)
    if trailing:
        frame = frame.drop(columns="_trailing")
    result = FileFrame(frame, kept.lines, lambda pos: [kept.text(data, int(i)) for i in pos], rejected)
    result.dropped[FOOTER_LINE] += int(footer.sum())
    result.notes, result.delimiter = notes, delimiter
    return drop_repeated_headers(result, names)


def _fallback_note(decoded: Decoded, path: Path, name: str) -> list[Problem]:
    """The warning for a file that was not UTF-8 and was read as cp1252."""
    if not decoded.fallback:
        return []
    return [
        Problem(
            f"{path.name} is not UTF-8: read as cp1252 (Windows-1252)",
            str(path),
            f"check accented names in the output; set sources.{name}.encoding: cp1252 to say so and "
            "silence this, or the file's real encoding",
        )
    ]


# bytes of whole lines parsed typed before the whole file: a '$' on M's first line stops it
# there, not 0.17 s into a typed read of it all
TYPED_SAMPLE = 1 << 20


def _read_csv_quickly(
    data: Text, source: SourceConfig, skipped: int, missing: MissingColumns, select: Select, line_feeds: int
) -> FileFrame | None:
    """A well-formed file read by pyarrow alone, without the record scan: one header line
    with every expected column and no blank name, then one record per line, each exactly
    as wide as the header (so nothing is ragged, blank or a footer), no value holding a
    quote or a line break. None for anything else, which the scan then reads and explains.
    `line_feeds`: how many the text holds."""
    end = data.find(b"\n")
    header = data[: end if end >= 0 else len(data)].rstrip(b"\r")
    if source.header_rows != 1 or end < 0 or not header.strip() or header.count(b'"') % 2:
        return None
    line = Records(*(np.array([v], dtype=np.int64) for v in (0, len(header), skipped + 1, 0)))
    sample = data[:65536].decode("utf-8", errors="ignore")
    candidates = [source.delimiter] if source.delimiter != "auto" else delimiter_ranking(sample)
    for delimiter in candidates:
        names = _split_record(header, line, 0, delimiter)
        if not missing(names):
            break
    else:
        return None
    start = end + 1  # the body, data[start:], is never copied out: it may be gigabytes
    if len(names) < 2 or "" in names or start == len(data):
        return None
    lines = line_feeds - 1 + (0 if data[-1:] == b"\n" else 1)  # the header's own line feed is before `start`
    keep, key = select(names)
    key_at = names.index(key) if key in names else None
    typed, few = _parsed_as(data, start, names, delimiter, source, key_at, keep)
    table = _arrow_rows(data, delimiter, len(names), source, start, key_at, True, typed, few) if typed else None
    if table is None or not as_text_would(table, typed):
        table = _arrow_rows(data, delimiter, len(names), source, start, key_at, record_a_line=True, few=few)
    if table is None or table.num_rows != lines or _holds_any(table, b'"\n\r'):  # blank lines, breaks or quotes
        return None
    frame = _rows_frame(table)
    frame.columns = pd.Index(names)
    body = memoryview(data)[start:]
    numbers = RowLines(lines, first=skipped + 2)  # one record a line, after the header
    return FileFrame(frame, numbers, lambda positions: line_texts(body, positions), delimiter=delimiter)


def _parsed_as(
    data: Text, start: int, names: list[str], delimiter: str, source: SourceConfig, key: int | None, keep: list[str]
) -> tuple[dict[int, pa.DataType], list[int]]:
    """How the quick path reads a CSV body's columns besides as text: numbers and times
    (`csv_typed.typed_columns`), and, in a source with a key (not the accounts), selected
    text of few distinct values as dictionaries (`csv_typed.few_valued`). Over more than
    TYPED_SAMPLE bytes both are tried on that many bytes of whole lines first: a value
    refused there leaves every column text, and the distinct values are counted there."""
    typed = typed_columns(data, start, names, delimiter, source)
    cut = data.rfind(b"\n", start, start + TYPED_SAMPLE) + 1 if len(data) - start > TYPED_SAMPLE else 0
    if cut <= start:
        return typed, []
    sample = _arrow_rows(data[:cut], delimiter, len(names), source, start, key, True, typed) if typed else None
    if sample is None:
        typed = {}
        sample = _arrow_rows(data[:cut], delimiter, len(names), source, start, key, True) if key is not None else None
    if sample is None or key is None:
        return typed, []
    renames = renames_for(source, names)
    others = {*source.types, source.time, source.key}
    plain = [
        i for i, n in enumerate(names) if i != key and i not in typed and n in keep and renames.get(n, n) not in others
    ]
    return typed, few_valued(sample, plain, source)


def _holds_any(table: pa.Table, found: bytes) -> bool:
    """True when a parsed value holds any of the bytes `found`, searched in the text columns'
    bytes in place, not value by value. The quick path refuses values holding
    - a double quote: an escaped one, or a quote inside an unquoted field (an inch mark in
      `12" screen`), which pyarrow keeps as it is while the record scan pairs it with the
      next one;
    - a line break (LF or CR): a value that spans lines, or the last value of one of
      pyarrow's blocks split inside a quoted value (`_arrow_rows` with `record_a_line`),
      which keeps the break the block ends at; a CR alone would be one that pyarrow took
      its LF from (`_return_alone`).
    Such files take the scan."""
    views = [_value_bytes(values) for values in _text_values(table)]  # (a CSV block's column each)
    return any(any(counts) for counts in on_two_threads(lambda view: count_bytes(view, found, threads=1), views))


def _text_values(table: pa.Table) -> list[pa.Array]:
    """The text of a table's text columns, chunk by chunk (of a dictionary-encoded column,
    its dictionaries), leaving out chunks without a byte of text (and typed columns)."""
    chunks = [c.dictionary if pa.types.is_dictionary(c.type) else c for column in table.columns for c in column.chunks]
    return [chunk for chunk in chunks if _is_text(chunk.type) and chunk.buffers()[2] is not None]


def _value_bytes(values: pa.Array) -> memoryview:
    """The bytes of a text array's values in place, without their offsets."""
    return memoryview(values.buffers()[2])


def line_texts(body: bytes | memoryview, positions: np.ndarray) -> list[str]:
    """The raw text of the given lines (0-based) of text holding one record a line."""
    if len(positions) == 0:
        return []
    breaks = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(body)]))
    texts = (bytes(body[starts[i] : ends[i]]).decode("utf-8", errors="replace") for i in positions)
    return [text.removesuffix("\r") for text in texts]


def _choose_delimiter(
    data: bytes, source: SourceConfig, skipped: int, missing: MissingColumns
) -> tuple[str, Records, list[str]]:
    """The delimiter, the records and the header names. With `auto`, the first of the ranked
    candidates whose header has every expected column; if none has, the most likely one
    (the column check then lists what was expected and what was found)."""
    sample = data[:65536].decode("utf-8", errors="ignore")
    candidates = [source.delimiter] if source.delimiter != "auto" else delimiter_ranking(sample)
    best: tuple[str, Records, list[str]] | None = None
    for delimiter in candidates:
        records = scan_records(data, delimiter, skipped + 1)
        names = _split_record(data, records, 0, delimiter) if len(records) else []
        if best is None:
            best = (delimiter, records, names)
        if not missing(names):
            return delimiter, records, names
    assert best is not None
    return best


def _split_record(data: bytes, records: Records, i: int, delimiter: str) -> list[str]:
    """The fields of one record (quotes resolved), as cleaned names."""
    text = data[records.starts[i] : records.ends[i]]
    row = pd.read_csv(
        io.BytesIO(text), sep=delimiter, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False
    )
    return clean_names(row.iloc[0].tolist()) if len(row) else []


def _fill_blank_names(names: list[str], data: bytes, records: Records, header_rows: int, delimiter: str) -> list[str]:
    """Blank names of the first header row taken from the second one (SurveyMonkey puts the
    sub-answer there), else `column_<n>`."""
    second = _split_record(data, records, 1, delimiter) if header_rows > 1 else []
    return [n or (second[i] if i < len(second) and second[i] else f"column_{i + 1}") for i, n in enumerate(names)]


def _all_end_with(data: bytes, records: Records, delimiter: str) -> bool:
    buf = np.frombuffer(data, dtype=np.uint8)
    return bool((buf[records.ends - 1] == ord(delimiter)).all())


def is_footer(texts: pd.Series) -> np.ndarray:
    """Text (a line, or a row's first value) that is a report's footer: without quotes,
    surrounding delimiters and repeated spaces, it matches FOOTER. Missing text is not."""
    stripped = texts.str.replace('"', "", regex=False).str.strip(" \t,;|").str.replace(r"\s+", " ", regex=True)
    return np.asarray(stripped.str.fullmatch(FOOTER).fillna(False), dtype=bool)


def _parse_rows(clean: bytes, delimiter: str, width: int, source: SourceConfig, rows: int) -> pd.DataFrame:
    """Records of exactly `width` fields as text columns; configured NA tokens only. `rows`
    is how many records the scan found: pyarrow's parser (multi-threaded, ~10x faster) is
    taken when it reads exactly that many, pandas' otherwise (whitespace-only lines, stray
    quotes), which also explains what is wrong."""
    if not clean.strip():
        return pd.DataFrame({i: pd.Series(dtype="str") for i in range(width)})
    fast = _parse_rows_quickly(clean, delimiter, width, source)
    if fast is not None and len(fast) == rows:
        return fast
    return parse_rows_with_pandas(clean, delimiter, width, source)


_WARNING_FILTERS = threading.Lock()


def parse_rows_with_pandas(clean: bytes, delimiter: str, width: int, source: SourceConfig) -> pd.DataFrame:
    """Records of exactly `width` fields as text columns by pandas' parser (the path for files
    pyarrow does not read as the scan did); a row split differently than the scan is an error."""
    # the warning filters are the process's: one thread at a time changes and restores them
    # (sources may be read on two threads), so another's exit never drops this one's filter
    with _WARNING_FILTERS, warnings.catch_warnings():
        # pandas only warns when a row has more fields than names ("loss of data"): a stray
        # quote split a record differently than the scan did. Never lose data silently.
        warnings.simplefilter("error", pd.errors.ParserWarning)
        frame: pd.DataFrame = pd.read_csv(  # type: ignore[call-overload]
            io.BytesIO(clean),
            sep=delimiter,
            header=None,
            names=list(range(width)),
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_values=list(source.na_values),
            skip_blank_lines=True,
            encoding="utf-8",
        )
    return frame


def _parse_rows_quickly(clean: bytes, delimiter: str, width: int, source: SourceConfig) -> pd.DataFrame | None:
    """`_parse_rows` by pyarrow.csv, every column read as text (the same values as pandas
    gives for well-formed rows); None when pyarrow refuses the text, when it holds a
    carriage return that does not end a line (pandas and pyarrow split those differently),
    or when pyarrow lost the LF of a quoted CRLF (`_return_alone`)."""
    table = _arrow_rows(clean, delimiter, width, source)
    return None if table is None or _return_alone(table) else _rows_frame(table)


# bytes of text pyarrow parses at a time, a thread each; each block has its own dictionary of the
# key, so fewer blocks hold less (10M rows: 200 MiB less than pyarrow's 1 MiB blocks)
CSV_BLOCK = 16 << 20


def _arrow_rows(
    data: Text,
    delimiter: str,
    width: int,
    source: SourceConfig,
    start: int = 0,
    key: int | None = None,
    record_a_line: bool = False,
    typed: Mapping[int, pa.DataType] | None = None,
    few: Collection[int] = (),
) -> pa.Table | None:
    """`_parse_rows_quickly` of `data[start:]` as an Arrow table of columns `0`..`width-1`,
    column `key` and the columns `few` dictionary-encoded, the columns `typed` parsed to
    their types; None where `_parse_rows_quickly` gives None, or a value does not parse as
    its type.

    With `record_a_line`, pyarrow is told that no value spans lines, so it splits its blocks
    at any line break instead of finding quote-aware splits on one thread (whole M CSV runs:
    5.5-6.0 s against 6.5-6.7 s). A split inside a quoted value then leaves the break in the
    block's last value, or loses rows: the caller must refuse tables with fewer rows than
    lines or a line break in a value, as `_read_csv_quickly` does."""
    if data.find(b"\r", start) >= 0 and not returns_end_lines(data, start):  # find: memchr, for LF files
        return None
    names = [str(i) for i in range(width)]
    coded = {key, *few}
    types = {
        n: pa.dictionary(pa.int32(), pa.string()) if i in coded else pa.large_string() for i, n in enumerate(names)
    }
    types.update({names[i]: kind for i, kind in (typed or {}).items()})
    try:
        return pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(data).slice(start)),  # no copy of the text
            read_options=pcsv.ReadOptions(column_names=names, block_size=CSV_BLOCK),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=not record_a_line),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=list(source.na_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid:
        return None


def _return_alone(table: pa.Table) -> bool:
    """True when a value holds a carriage return without the line feed after it. Every CR
    of the text starts a CRLF (`_arrow_rows` checked), so this is pyarrow's doing: a block
    edge between a quoted value's CR and LF loses the LF (apache/arrow#51368, open in
    pyarrow 26). Such text goes to pandas' parser. (The quick path refuses any value holding
    a CR: one record a line leaves none in a value.)"""
    return any(
        holds_byte(_value_bytes(values), RETURN)  # no CR at all: the common case, found by a byte search
        and pc.sum(pc.count_substring(values, "\r")) != pc.sum(pc.count_substring(values, "\r\n"))
        for values in _text_values(table)
    )


def _rows_frame(table: pa.Table) -> pd.DataFrame:
    """The columns of `_arrow_rows` as pandas text, a dictionary-encoded one (the key) as a
    Categorical with sorted categories, typed ones (numbers, times) as pandas has them."""
    columns = {
        i: pd.Series(dictionary_categorical(column), copy=False)
        if pa.types.is_dictionary(column.type)
        else pd.Series(column, dtype=TEXT, copy=False)
        if _is_text(column.type)
        else _typed_column(column)
        for i, column in enumerate(table.columns)
    }
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), copy=False)


def _typed_column(column: pa.ChunkedArray) -> pd.Series:
    """A column `csv_typed` parsed as read, as pandas: times with a zone offset as the
    naive UTC times `coerce` makes of them (pyarrow gives their UTC instants; made zoned
    by pandas, then naive again, 10M times took 0.25 s), numbers as they are."""
    if pa.types.is_timestamp(column.type) and column.type.tz == "UTC":
        column = column.cast(pa.timestamp(column.type.unit))  # the same instants, the zone left off
    values: pd.Series = column.to_pandas()
    return values


def drop_repeated_headers(result: FileFrame, names: list[str]) -> FileFrame:
    """Drop rows that repeat the header (files concatenated with their headers), counted.
    The rows are not looked at one by one unless a value of the first column holds the
    first name (`_may_hold`)."""
    frame = result.frame
    if frame.empty or frame.shape[1] == 0 or not _may_hold(frame.iloc[:, 0], names[0]):
        return result
    first = frame.iloc[:, 0].astype("str").str.strip() == names[0]
    if not first.any():
        return result
    candidates = frame.loc[first].astype("str").apply(lambda col: col.str.strip())
    repeated = pd.Series(False, index=frame.index)
    repeated[first] = (candidates.to_numpy() == np.array(names, dtype=object)).all(axis=1)
    if repeated.any():
        keep = ~repeated.to_numpy()
        raw, positions = result.raw, np.flatnonzero(keep)
        result.frame = frame.loc[keep].reset_index(drop=True)
        result.lines = result.lines[keep]
        result.raw = lambda pos: raw(positions[pos])
        result.dropped[REPEATED_HEADER] += int(repeated.sum())
    return result


def _may_hold(column: pd.Series, name: str) -> bool:
    """False when no value of the column holds `name`: searched in a Categorical's categories
    (the quick path's key), in other text by one Arrow search (10M values: 0.16 s, against
    0.37 s for a byte search of the whole file and more for a text copy of a Categorical).
    A column of numbers or times (parsed as read) holds no text at all."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_datetime64_any_dtype(column.dtype):
        return False
    values = pd.Series(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) else column
    return bool(values.astype("str").str.contains(name, regex=False).any())


# --- JSON lines, Parquet, XLSX ------------------------------------------------------------


def read_jsonl(path: Path, raw: bytes, source: SourceConfig, name: str) -> FileFrame:
    """JSON lines (or one JSON array): nested objects flattened to `a.b` columns, lists of
    values joined with `|`. Malformed lines are rejected with their line number."""
    decoded = to_utf8(raw, source.encoding, path, name)
    data = as_bytes(decoded.data)
    if data.lstrip().startswith(b"["):
        result = _read_json_array(path, data, name)
        result.notes = _fallback_note(decoded, path, name)
        return result
    records = scan_lines(data)
    try:
        table = pj.read_json(io.BytesIO(data))
        if table.num_rows != len(records):
            raise pa.ArrowInvalid("row count differs from the line count")
        frame, rejected = _arrow_frame(flatten(table)), pd.DataFrame(columns=list(REJECT_COLUMNS))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        frame, rejected, records = _parse_lines_slowly(data, records)
    frame.columns = pd.Index(clean_names(list(frame.columns)), dtype=object)
    result = FileFrame(frame, records.lines, lambda pos: [records.text(data, int(i)) for i in pos], rejected)
    result.notes = _fallback_note(decoded, path, name)
    return result


def scan_lines(data: bytes) -> Records:
    """The non-blank lines of text as records (JSON lines hold no raw line breaks)."""
    return scan_records(data.replace(b'"', b" "), "\x00")  # no quoting in JSON lines' structure; no NUL in text


def _parse_lines_slowly(data: bytes, records: Records) -> tuple[pd.DataFrame, pd.DataFrame, Records]:
    """Line-by-line JSON parsing, taken only when the fast reader refuses the file: finds the
    malformed lines (rejected) and tolerates values whose type changes between lines."""
    parsed, bad = [], []
    for i in range(len(records)):  # the error path only; the fast path reads whole files
        text = records.text(data, i)
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            parsed.append(value)
        else:
            bad.append(i)
    bad_index = np.array(bad, dtype=np.int64)
    rejected = pd.DataFrame(
        {
            "line": records.lines[bad_index],
            "reason": MALFORMED_JSON,
            "raw": [records.text(data, int(i)) for i in bad_index],
        }
    )
    keep = np.ones(len(records), dtype=bool)
    keep[bad_index] = False
    kept = Records(*(a[keep] for a in (records.starts, records.ends, records.lines, records.fields)))
    frame = pd.json_normalize(parsed) if parsed else pd.DataFrame()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, list)).any():
            frame[col] = frame[col].map(lambda v: "|".join(map(str, v)) if isinstance(v, list) else v)
    return frame, rejected, kept


def _read_json_array(path: Path, data: bytes, name: str) -> FileFrame:
    """A file holding one JSON array of objects; rows are numbered by their position."""
    try:
        items = json.loads(data)
    except ValueError as exc:
        raise DataError(
            f"source {name!r}: {path} is not valid JSON",
            [Problem(str(exc), str(path), "export JSON lines (one object per line) or a JSON array")],
        ) from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise DataError(
            f"source {name!r}: {path} is not a JSON array of objects",
            [Problem('each row must be an object like {"account_id": ...}', str(path))],
        )
    if not items:
        raise InputMissingError(
            f"source {name!r}: {path} holds an empty JSON array",
            [Problem("the file has no rows", str(path), "re-export the data")],
        )
    frame = pd.json_normalize(items)
    frame.columns = pd.Index(clean_names(list(frame.columns)), dtype=object)
    return FileFrame(frame, RowLines(len(frame)), _row_json(frame))


def flatten(table: pa.Table) -> pa.Table:
    """Struct columns flattened to `parent.child` columns; list columns joined with `|`."""
    while any(pa.types.is_struct(t) for t in table.schema.types):
        table = table.flatten()
    columns = [
        _joined(column) if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def _joined(column: pa.ChunkedArray) -> pa.Array:
    """A list column as text: the non-null elements joined with `|` (missing when none).
    Flattened and grouped, not `binary_join`, which crashes pyarrow 26 on nulls in lists."""
    lists = column.combine_chunks()
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(lists)
    if not pa.types.is_nested(flat.type):  # nested lists or structs: their text as pandas shows them
        flat = pc.cast(flat, pa.string())  # numbers as written (1, not 1.0)
    values = pd.Series(flat.to_pandas(), dtype=object)
    present = values.notna().to_numpy()
    text = values[present].astype("str").groupby(parents[present]).agg("|".join)
    out = np.full(len(lists), None, dtype=object)
    out[text.index.to_numpy(dtype=np.int64)] = text.to_numpy(dtype=object)
    return pa.array(out, type=pa.string())


def _arrow_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas, integers kept exact (nullable Int64, not float); the
    table is used up (the caller keeps no other reference)."""
    frame: pd.DataFrame = table.to_pandas(
        types_mapper=lambda t: pd.Int64Dtype() if pa.types.is_integer(t) else None,
        self_destruct=True,  # each column's Arrow memory freed once converted: not both copies at once
        split_blocks=True,
    )
    return frame


def read_parquet(
    path: Path, raw: bytes | Path, name: str, select: Select = select_all, recent: Recent | None = None
) -> FileFrame:
    """A Parquet file (its bytes, or its path), only the columns `select` picks (a text key
    dictionary-encoded), those `recent` names null in row groups older than they are needed
    from (a rejected row's raw text still has their values); a truncated or non-Parquet
    file is a DataError naming it."""
    try:
        opened = pq.ParquetFile(parquet_input(raw))  # the footer, parsed once
        metadata, schema = opened.metadata, opened.schema_arrow
        headers = clean_names(schema.names)
        keep, key = select(headers) if len(set(headers)) == len(headers) else select_all(headers)
        picked = [i for i, h in enumerate(headers) if h in set(keep)]
        # with a key to aggregate by (not the accounts, whose columns pass through as read),
        # columns of few distinct values are read as Categoricals
        few = [] if key is None else few_values(metadata, len(schema), [i for i in picked if headers[i] != key])
        text_key = next((schema.names[i] for i in picked if headers[i] == key and _is_text(schema.types[i])), None)
        columns = [schema.names[i] for i in picked]
        found = recent(headers) if recent is not None and len(set(headers)) == len(headers) else None
        skipped: dict[str, list[int]] = {}
        if found is not None:  # plain columns only: not the key, not those read as dictionaries
            plain = {headers[i]: schema.names[i] for i in picked if headers[i] != key and i not in few}
            starts = {plain[h]: start for h, start in found[1].items() if h in plain}
            skipped = stale_groups(metadata, schema, schema.names[headers.index(found[0])], starts)
        table, coded = read_columns(raw, metadata, columns, text_key, [schema.names[i] for i in few], skipped)
        frame = _arrow_frame(table)
        if text_key is not None and coded is not None:  # the key, read apart, back in its place
            frame.insert(columns.index(text_key), text_key, pd.Series(coded, index=frame.index, copy=False))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"source {name!r}: {path} is an incomplete or invalid parquet file",
            [Problem(_first_line(exc), str(path), "re-export it; a copy may have been cut short")],
        ) from None
    frame.columns = pd.Index([headers[i] for i in picked], dtype=object)
    if not skipped:
        return FileFrame(frame, RowLines(len(frame)), _row_json(frame))
    header_of = {schema.names[i]: headers[i] for i in picked}

    def whole(positions: np.ndarray) -> pd.DataFrame:  # the skipped columns' values, read again
        values = _arrow_frame(values_at(raw, metadata, list(skipped), positions))
        return values.set_axis([header_of[c] for c in skipped], axis=1)

    return FileFrame(frame, RowLines(len(frame)), _row_json(frame, whole))


def _is_text(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype))


def read_xlsx(path: Path, raw: bytes, source: SourceConfig, name: str) -> FileFrame:
    """The first sheet (or `sheet`) of a workbook; `skip_rows` and `header_rows` as for CSV."""
    try:
        grid = pd.read_excel(io.BytesIO(raw), sheet_name=source.sheet or 0, header=None, dtype=object)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"source {name!r}: cannot read {path} as xlsx",
            [Problem(_first_line(exc), str(path), f"check the file and sources.{name}.sheet")],
        ) from None
    grid = grid.iloc[source.skip_rows :]
    filled = grid.notna().any(axis=1).to_numpy()
    grid = grid.iloc[int(np.argmax(filled)) if filled.any() else len(grid) :]  # blank rows before the header
    names = clean_names(["" if pd.isna(v) else v for v in grid.iloc[0]]) if len(grid) else []
    names = [n or f"column_{i + 1}" for i, n in enumerate(names)]
    body = grid.iloc[source.header_rows :].dropna(how="all")
    frame = body.set_axis(names, axis=1).reset_index(drop=True)
    lines = (body.index.to_numpy() + 1).astype(np.int64)  # spreadsheet row numbers
    result = FileFrame(frame, lines, _row_json(frame))
    return drop_repeated_headers(result, names)


def _row_json(
    frame: pd.DataFrame, whole: Callable[[np.ndarray], pd.DataFrame] | None = None
) -> Callable[[np.ndarray], list[str]]:
    """Raw text of rows that have none (Parquet, XLSX, JSON arrays): each row as JSON,
    with the columns `whole` gives (values the frame left out) put back."""

    def raw(positions: np.ndarray) -> list[str]:
        rows = frame.iloc[np.asarray(positions, dtype=np.int64)]
        if whole is not None and len(rows):
            values = whole(np.asarray(positions, dtype=np.int64)).set_axis(rows.index)
            rows = rows.assign(**{str(c): values[c] for c in values.columns})
        text = rows.to_json(orient="records", lines=True, date_format="iso", default_handler=str)
        return text.splitlines() if len(rows) else []

    return raw


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
