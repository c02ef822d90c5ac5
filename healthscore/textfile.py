"""Raw bytes to checked UTF-8 text, and delimited text split into records, vectorized.

`to_utf8` undoes gzip and decodes strictly (never a U+FFFD in the data). `scan_records`
finds where each CSV record starts and ends and how many fields it has, with numpy over
the bytes (quote parity, not a Python loop), so ragged rows can be set aside by line
number before pandas parses the rest.
"""

from __future__ import annotations

import codecs
import gzip
import mmap
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from healthscore.errors import DataError, Problem
from healthscore.parallel import on_two_threads

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 50
NEWLINE, RETURN, QUOTE = ord("\n"), ord("\r"), ord('"')


Text = bytes | mmap.mmap
"""A file's bytes: read into memory, or a large file mapped (`file_text`). A map offers what
the quick CSV path uses (find, rfind, slices as bytes, its buffer to numpy and Arrow), not
every method of bytes (and its `in` compares byte by byte: 10 s for 640 MB), so `as_bytes`
copies it for the rest."""

MAP_BYTES = 64 << 20  # files of this size or more are mapped, not read


def file_text(path: Path) -> Text:
    """A file's bytes; on Linux a regular file of MAP_BYTES or more mapped read-only, its
    pages those the page cache holds (MAP_POPULATE), not copied into fresh memory the kernel
    zeroes first (M's 640 MB of events: 0.03 s against 0.3-0.55 s). Like Polars' and
    DuckDB's maps, a file cut short by another program while it is read ends the process
    (SIGBUS): exports should be replaced whole (written aside, then renamed)."""
    populate = getattr(mmap, "MAP_POPULATE", None)  # Linux's; elsewhere files are read as they were
    with path.open("rb") as file:
        info = os.fstat(file.fileno())
        if populate is None or info.st_size < MAP_BYTES or not stat.S_ISREG(info.st_mode):
            return file.read()
        try:
            return mmap.mmap(file.fileno(), 0, flags=mmap.MAP_PRIVATE | populate, prot=mmap.PROT_READ)
        except (OSError, ValueError):  # a file system without maps
            return file.read()


def as_bytes(text: Text) -> bytes:
    """The text as bytes: itself, or a mapped file copied into memory."""
    return text if isinstance(text, bytes) else text[:]


@dataclass(frozen=True)
class Decoded:
    """A file's text as UTF-8 bytes (a mapped file as it is), the encoding it was read with,
    and whether that was a fallback guess the user should hear about."""

    data: Text
    encoding: str
    fallback: bool = False


def is_gzip(path: Path) -> bool:
    """True for a gzip-compressed file, by its suffix."""
    return path.suffix.lower() == ".gz"


def gunzip(raw: bytes, path: Path, name: str) -> bytes:
    """The content of a gzip file; DataError if it is cut short or not gzip at all."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"source {name!r}: {path} is an incomplete or invalid gzip file",
            [Problem(str(exc) or type(exc).__name__, str(path), "re-download or re-compress the export")],
        ) from None


def is_empty(raw: Text) -> bool:
    """True for a file holding nothing but a byte-order mark and whitespace."""
    if not isinstance(raw, bytes):  # a mapped file: its start tells, unless it is blank throughout
        return is_empty(raw[:65536]) and is_empty(raw[:])
    body = raw.removeprefix(UTF8_BOM)
    if body.startswith(UTF16_BOMS):
        body = body[2:].replace(b"\x00", b"")
    return not body or body.isspace()  # isspace stops at the first other byte: no copy of the file


def to_utf8(raw: Text, configured: str, path: Path, name: str) -> Decoded:
    """Decode a text file strictly and return it as UTF-8 without a BOM.

    `auto`: UTF-16 when the file starts with its BOM, else UTF-8 (BOM or not), else cp1252
    (Windows exports; latin-1 would garble curly quotes and dashes), flagged as a fallback.
    A forced encoding that does not fit, or bytes no encoding explains, is a DataError.
    A mapped file of UTF-8 without a BOM stays mapped; any other is copied to be decoded.
    """
    encoding = configured.lower().replace("_", "-")
    if not isinstance(raw, bytes):
        as_is = encoding in ("auto", "utf-8", "utf8", "utf-8-sig") and raw[:3] != UTF8_BOM
        if as_is and raw[:2] not in UTF16_BOMS and _mapped_utf8(raw):
            return _checked(Decoded(raw, "utf-8" if encoding == "auto" else "utf-8-sig"), path, name)  # as below
        raw = raw[:]
    if not raw.startswith(UTF16_BOMS) and "16" not in encoding and "32" not in encoding:
        _checked(Decoded(raw, encoding), path, name)  # binary: say so before any decoding error
    if encoding == "auto":
        if raw.startswith(UTF16_BOMS):
            encoding = "utf-16"
        elif _is_utf8(raw):
            return _checked(Decoded(raw.removeprefix(UTF8_BOM), "utf-8"), path, name)
        else:
            encoding = "cp1252"
    elif encoding in ("utf-8", "utf8", "utf-8-sig"):
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = (
            "the file is neither UTF-8 nor cp1252: set sources.<name>.encoding to its encoding (e.g. latin-1)"
            if configured == "auto"
            else "set encoding: auto, or the file's real encoding (cp1252 for Windows exports, utf-16)"
        ).replace("<name>", name)
        raise DataError(
            f"source {name!r}: {path} is not valid {exc.encoding} text",
            [Problem(f"byte {exc.start} (0x{raw[exc.start]:02x}) on line {line} cannot be decoded", str(path), hint)],
        ) from None
    except LookupError:
        raise DataError(
            f"source {name!r}: unknown encoding {configured!r}",
            [Problem(f"sources.{name}.encoding", hint="use auto, utf-8, utf-16, cp1252 or a Python codec name")],
        ) from None
    decoded = Decoded(
        text.removeprefix("\ufeff").encode("utf-8"), encoding, fallback=configured == "auto" and encoding == "cp1252"
    )
    return _checked(decoded, path, name)


def _is_utf8(raw: bytes) -> bool:
    if raw.isascii():  # most exports; no decoded copy of the file
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mapped_utf8(raw: mmap.mmap) -> bool:
    """`_is_utf8` of a mapped file, a step at a time (no copy of it all, nor its text): all
    ASCII (most exports) by numpy on two threads (M's 640 MB: 21 ms against 77 ms by
    `bytes.isascii` of each step's copy); otherwise ASCII steps are only checked as such,
    unless a character began in the step before."""
    if every_step(raw, lambda step: int(step.max(initial=0)) < 0x80):
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for i in range(0, len(raw), COUNT_STEP):
            step = raw[i : i + COUNT_STEP]
            if not step.isascii() or decoder.getstate()[0]:
                decoder.decode(step)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _checked(decoded: Decoded, path: Path, name: str) -> Decoded:
    """DataError for text holding NUL bytes: a binary file (or UTF-16 without its BOM). Over
    PARALLEL_BYTES, whether there is one is found by numpy on two threads first (M's 640 MB:
    23 ms against 46 ms for one search)."""
    data = decoded.data
    if len(data) >= PARALLEL_BYTES and every_step(data, lambda step: int(step.min(initial=1)) > 0):
        return decoded
    position = data.find(b"\x00")
    if position >= 0:
        line = decoded.data[:position].count(b"\n") + 1
        raise DataError(
            f"source {name!r}: {path} is not a text file (a NUL byte on line {line})",
            [
                Problem(
                    "binary data or UTF-16 text without a byte-order mark",
                    str(path),
                    f"point sources.{name}.path at the CSV export, set `format` for xlsx/parquet, "
                    "or set encoding: utf-16",
                )
            ],
        )
    return decoded


@dataclass(frozen=True)
class Records:
    """The non-blank records of delimited text: byte spans (end excludes the line break),
    the 1-based line each starts on, and how many fields each has."""

    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    fields: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def text(self, data: bytes, i: int) -> str:
        """The raw text of record i."""
        return data[self.starts[i] : self.ends[i]].decode("utf-8", errors="replace")


def skip_lines(data: Text, count: int) -> tuple[Text, int]:
    """Drop the first `count` physical lines (a report's preamble); return the rest and how
    many lines were dropped."""
    if count == 0:
        return data, 0
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    if len(newlines) < count:
        return b"", len(newlines) + 1
    return data[newlines[count - 1] + 1 :], count


def scan_records(data: bytes, delimiter: str, first_line: int = 1) -> Records:
    """Split UTF-8 CSV bytes into records: line breaks and delimiters inside double quotes
    do not count (RFC 4180 quoting; a doubled quote toggles twice). Blank records (only
    spaces, tabs or CR) are left out. DataError-free: an unclosed quote shows up as the
    last record running to the end, which `readers.read_csv` reports (an odd count of quotes)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if len(buf) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Records(empty, empty, empty, empty)
    newlines = np.flatnonzero(buf == NEWLINE)
    quotes = np.flatnonzero(buf == QUOTE)
    breaks = _outside(newlines, quotes)
    starts = np.concatenate(([0], breaks + 1)).astype(np.int64)
    ends = np.concatenate((breaks, [len(buf)])).astype(np.int64)
    ends = np.where((ends > starts) & (buf[np.maximum(ends - 1, 0)] == ord("\r")), ends - 1, ends)
    lines = np.searchsorted(newlines, starts) + first_line
    filled = _filled(buf, starts, ends, delimiter)
    starts, ends, lines = starts[filled], ends[filled], lines[filled]
    if len(starts) == 0:
        return Records(starts, ends, lines.astype(np.int64), np.zeros(0, dtype=np.int64))
    seps = _outside(np.flatnonzero(buf == ord(delimiter)), quotes)
    fields = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    return Records(starts, ends, lines.astype(np.int64), fields.astype(np.int64))


def _filled(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, delimiter: str) -> np.ndarray:
    """Which records are not blank: some byte is the delimiter or not a space, tab or CR (as
    pandas skips blank lines). Most records start with such a byte; only the others are
    looked at byte by byte (vectorized over the bytes of just those records)."""
    delim = ord(delimiter)
    first = buf[np.minimum(starts, len(buf) - 1)]
    filled: np.ndarray = (starts < ends) & ((first > ord(" ")) | (first == delim))
    doubtful = np.flatnonzero(~filled & (starts < ends))
    if len(doubtful):
        lengths = ends[doubtful] - starts[doubtful]
        offsets = np.cumsum(lengths) - lengths  # where each record's bytes begin in `picked`
        positions = np.arange(int(lengths.sum())) + np.repeat(starts[doubtful] - offsets, lengths)
        picked = buf[positions]
        visible = np.concatenate(([0], np.cumsum((picked > ord(" ")) | (picked == delim))))
        filled[doubtful] = visible[offsets + lengths] > visible[offsets]
    return filled


def _outside(positions: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """The positions not inside a quoted field: an even number of quotes before them."""
    if len(quotes) == 0:
        return positions
    outside: np.ndarray = positions[np.searchsorted(quotes, positions) % 2 == 0]
    return outside


COUNT_STEP = 1 << 20  # bytes compared at a time by `count_bytes` and `holds_byte`: a temporary in cache
PARALLEL_BYTES = 64 << 20  # from this many bytes on, `count_bytes` counts each half on its own thread


def count_bytes(data: Text | memoryview, wanted: bytes, start: int = 0, threads: int = 2) -> list[int]:
    """How many times each byte of `wanted` occurs in `data[start:]`, without copying it:
    numpy compares a step at a time, 4-5x as fast as `bytes.count` (640 MB: 0.06 s against
    0.25-0.32 s), each step once for all the bytes while it is in cache, and over 64 MiB
    each half of the text on its own thread unless `threads` is 1 (640 MB, two bytes:
    0.11 s -> 0.06 s)."""
    view = np.frombuffer(data, dtype=np.uint8)[start:]
    if len(view) < PARALLEL_BYTES or threads == 1:
        return _counts(view, wanted)
    halves = on_two_threads(lambda half: _counts(half, wanted), [view[: len(view) // 2], view[len(view) // 2 :]])
    return [first + second for first, second in zip(*halves, strict=True)]


def _counts(view: np.ndarray, wanted: bytes) -> list[int]:
    """`count_bytes` on one thread."""
    counts = [0] * len(wanted)
    for i in range(0, len(view), COUNT_STEP):
        step = view[i : i + COUNT_STEP]
        for k, byte in enumerate(wanted):
            counts[k] += int(np.count_nonzero(step == byte))
    return counts


def returns_end_lines(data: Text, start: int = 0) -> bool:
    """True when every carriage return of `data[start:]` is followed by a line feed (CRLF
    line ends only), a step at a time."""
    view = np.frombuffer(data, dtype=np.uint8)[start:]
    for i in range(0, len(view), COUNT_STEP):
        step = view[i : i + COUNT_STEP + 1]  # and the byte after the step, after its last CR
        returns = np.flatnonzero(step[:COUNT_STEP] == RETURN)
        if len(returns) and (returns[-1] + 1 == len(step) or (step[returns + 1] != NEWLINE).any()):
            return False
    return True


def holds_byte(data: bytes | memoryview, byte: int) -> bool:
    """True when `byte` occurs in `data`: a step at a time, up to the first that holds it."""
    return not every_step(data, lambda step: not bool((step == byte).any()))


def every_step(data: Text | bytes | memoryview, test: Callable[[np.ndarray], bool]) -> bool:
    """True when `test` holds for each COUNT_STEP bytes of `data` (as uint8, not copied), up
    to the first it fails for; from PARALLEL_BYTES on, each half on its own thread (numpy's
    comparisons and reductions run without the GIL)."""
    view = np.frombuffer(data, dtype=np.uint8)

    def steps(part: np.ndarray) -> bool:
        return all(test(part[i : i + COUNT_STEP]) for i in range(0, len(part), COUNT_STEP))

    if len(view) < PARALLEL_BYTES:
        return steps(view)
    return all(on_two_threads(steps, [view[: len(view) // 2], view[len(view) // 2 :]]))


def sniff_delimiter(sample: str) -> str:
    """The delimiter of CSV text (a header line, or the first lines of a file): of `,` `;` tab
    `|` outside quotes, the one found as often as on the header on the most lines, then the
    most frequent on the header, then `,`; `,` when the header has none of them."""
    return delimiter_ranking(sample)[0]


def delimiter_ranking(sample: str) -> list[str]:
    """The candidate delimiters, most likely first (see `sniff_delimiter`); `,` leads when the
    header holds none of them."""
    lines = [line for line in sample.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines:
        return list(DELIMITERS)
    unquoted = ["".join(part for i, part in enumerate(line.split('"')) if i % 2 == 0) for line in lines]

    def rank(delimiter: str) -> tuple[int, int, bool]:
        counts = [text.count(delimiter) for text in unquoted]
        agreeing = sum(count == counts[0] for count in counts) if counts[0] else 0
        return agreeing, counts[0], delimiter == ","

    ranked = sorted(DELIMITERS, key=rank, reverse=True)
    if not unquoted[0].count(ranked[0]):
        return list(DELIMITERS)
    return ranked


def drop_spans(data: bytes, starts: np.ndarray, ends: np.ndarray) -> bytes:
    """The bytes with the given spans (and the line break after each) removed, vectorized."""
    if len(starts) == 0:
        return data
    buf = np.frombuffer(data, dtype=np.uint8)
    stops = np.minimum(ends + 1, len(buf))  # take the newline too (a CR sits before it, inside)
    marks = np.zeros(len(buf) + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, stops, -1)
    kept: bytes = buf[np.cumsum(marks[:-1]) == 0].tobytes()
    return kept
