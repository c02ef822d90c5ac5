"""Reading sources: files or globs of CSV, Parquet, JSON lines or XLSX into typed frames.

Every source comes back with its key column as normalized text, its columns renamed and
typed as the config says, and a record of each file read (rows, sha256) for the manifest.
Unusable values stop the run with the file, line and column named; nothing is dropped
without being counted.
"""

from __future__ import annotations

import glob
import hashlib
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from healthscore.coerce import apply_types
from healthscore.config import Config
from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.keys import normalize_keys
from healthscore.models import SourceConfig
from healthscore.presets import PRESETS

LINE = "_line"
FILE = "_file"
DELIMITERS = (",", ";", "\t", "|")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
EXTRA = "_extra"
SNIFF_BYTES, SNIFF_LINES = 65536, 50
FOOTER_ROWS = 8
REPORT_FOOTER = (
    r"Grand Totals \(\d+ records?\)|Confidential Information - Do Not Distribute"
    r"|Copyright \(c\) [\d-]+ salesforce\.com, inc\. All rights reserved\."
)


@dataclass(frozen=True)
class FileRead:
    """One input file as read: where, how many data rows, and its checksum."""

    path: str
    rows: int
    sha256: str


@dataclass
class SourceData:
    """A source read and typed; `frame` holds the key column `key` as normalized text."""

    name: str
    frame: pd.DataFrame
    key: str
    time: str | None
    files: list[FileRead]
    rows_without_key: int = 0
    rows_without_time: int = 0
    warnings: list[Problem] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Data rows read over all files of the source."""
        return sum(f.rows for f in self.files)


def source_files(config: Config, name: str) -> list[Path]:
    """The files a source's path or glob names, sorted; InputMissingError if there are none."""
    source = config.sources[name]
    pattern = config.resolve(source.path)
    if glob.has_magic(str(pattern)):
        paths = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise InputMissingError(
                f"source {name!r}: no file matches {source.path}",
                [Problem("the glob matched nothing", str(pattern), "check the path in the config")],
            )
        return paths
    if not pattern.is_file():
        what = "is a directory, not a file" if pattern.is_dir() else "not found"
        raise InputMissingError(
            f"source {name!r}: input file {what}: {pattern}",
            [Problem(f"sources.{name}.path is {source.path!r}", hint="paths are relative to the config file")],
        )
    return [pattern]


def read_source(config: Config, name: str, needed: Collection[str] | None = None, keep_all: bool = False) -> SourceData:
    """Read, rename, type and key-normalize one source; `needed` columns must all be present.

    With `needed` given, only those columns (plus key and time) are kept, unless `keep_all`
    (for the accounts source, whose columns pass through).
    """
    source = config.sources[name]
    preset = PRESETS.get(source.preset) if source.preset else None
    rename = {**(preset.rename if preset else {}), **source.rename}
    types = {**(preset.types if preset else {}), **source.types}
    required = {source.key, *([source.time] if source.time else []), *(needed or ()), *source.types}
    paths = source_files(config, name)
    frames, files, notes = [], [], []
    for i, path in enumerate(paths):
        raw = path.read_bytes()
        frame, lines = _read_file(path, raw, source, name)
        if file_format(source, path) == "csv":
            frame, lines, footer = drop_report_footer(frame, lines)
            if footer:
                notes.append(Problem(f"{footer} report footer line(s) at the end are not data: left out", path.name))
        frame = frame.rename(columns={c: rename.get(c, c) for c in frame.columns})
        _check_columns(frame, path, name, required, whole=needed is None or keep_all)
        if needed is not None and not keep_all:
            frame = frame[[c for c in frame.columns if c in required]]
        frame[FILE] = i
        frame[LINE] = lines
        frames.append(frame)
        files.append(FileRead(str(path), len(frame), hashlib.sha256(raw).hexdigest()))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    labels = [str(p) for p in paths]
    if preset:
        for col in preset.lowercase:
            if col in frame.columns and col not in source.types:
                frame[col] = frame[col].astype("str").str.lower().where(frame[col].notna())
    infer = file_format(source, paths[0]) in ("csv", "xlsx")
    frame = apply_types(frame, types, source, labels, infer=infer, name=name)
    data = SourceData(name, frame, source.key, source.time, files, warnings=notes)
    _normalize_key(data, source, labels)
    return data


def file_format(source: SourceConfig, path: Path) -> str:
    """The format of a file: the source's `format`, else from the suffix (csv by default)."""
    if source.format:
        return source.format
    suffixes = [s.lower() for s in path.suffixes]
    for fmt, endings in (
        ("parquet", (".parquet", ".pq")),
        ("jsonl", (".jsonl", ".ndjson", ".json")),
        ("xlsx", (".xlsx",)),
    ):
        if any(s in endings for s in suffixes):
            return fmt
    return "csv"


def _read_file(path: Path, raw: bytes, source: SourceConfig, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """One file as a frame of its data rows, and the 1-based line (row) of each in the file."""
    if is_empty(raw):
        raise InputMissingError(
            f"source {name!r}: input file is empty: {path}",
            [Problem("the file has no header and no rows", str(path), "re-export the data")],
        )
    fmt = file_format(source, path)
    try:
        if fmt == "csv":
            return _read_csv(path, raw, source, name)
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        elif fmt == "jsonl":
            frame = pd.read_json(io.BytesIO(raw), lines=True, dtype=False)
        else:
            frame = pd.read_excel(io.BytesIO(raw), sheet_name=source.sheet or 0, dtype=object)
        first = 2 if fmt == "xlsx" else 1  # an xlsx header is row 1; parquet and jsonl have none
        return frame, np.arange(first, first + len(frame), dtype="int64")
    except (DataError, InputMissingError):
        raise
    except UnicodeDecodeError as exc:
        raise DataError(
            f"source {name!r}: {path} is not valid {exc.encoding} text",
            [
                Problem(
                    f"byte {exc.start} cannot be decoded",
                    str(path),
                    f"set sources.{name}.encoding: cp1252 (Windows exports) or utf-16",
                )
            ],
        ) from None
    except ImportError as exc:
        raise DataError(f"source {name!r}: cannot read {fmt} files: {exc}") from None
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parser errors derive from these
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"source {name!r}: cannot read {path} as {fmt}",
            [Problem(reason, str(path), f"check the file, or set sources.{name}.format")],
        ) from None


def is_empty(raw: bytes) -> bool:
    """True for a file holding nothing but a byte-order mark and whitespace."""
    body = raw.removeprefix(UTF8_BOM)
    if body.startswith(UTF16_BOMS):
        body = body[2:].replace(b"\x00", b"")
    return not body.strip()


def csv_encoding(raw: bytes, configured: str) -> str:
    """The encoding to read a CSV with. `auto` means UTF-16 if the file starts with its BOM,
    else UTF-8 (a BOM dropped), falling back to cp1252 (see `_read_csv`)."""
    if configured == "auto" and raw.startswith(UTF16_BOMS):
        return "utf-16"
    if configured.lower().replace("_", "-") in ("auto", "utf-8", "utf8"):
        return "utf-8-sig"
    return configured


def _read_csv(path: Path, raw: bytes, source: SourceConfig, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    encoding = csv_encoding(raw, source.encoding)
    try:
        frame = _parse_csv(raw, encoding, source)
    except UnicodeDecodeError:
        if source.encoding != "auto":
            raise
        encoding = "cp1252"  # Windows exports; latin-1 would garble curly quotes and dashes
        frame = _parse_csv(raw, encoding, source)
    lines = None if "16" in encoding or "32" in encoding else record_lines(raw, len(frame))
    if lines is None:
        lines = np.arange(2, 2 + len(frame), dtype="int64")
    if EXTRA in frame.columns:
        extra = frame[EXTRA].notna().to_numpy()
        if extra.any():
            raise DataError(
                f"source {name!r}: {path} has rows with more fields than its header",
                [Problem(f"line {lines[np.argmax(extra)]} has one field too many", str(path), "check the delimiter")],
            )
        frame = frame.drop(columns=EXTRA)  # a trailing delimiter on every data row
    return frame, lines


def _parse_csv(raw: bytes, encoding: str, source: SourceConfig) -> pd.DataFrame:
    """Parse CSV bytes as text columns, keeping the header's names as written (duplicates
    too, unlike pandas, which renames them), and never using a column as the index."""
    delimiter: str = source.delimiter
    if delimiter == "auto":
        sample = raw[:SNIFF_BYTES].decode(encoding, errors="replace")
        if len(raw) > SNIFF_BYTES:
            sample = sample.rsplit("\n", 1)[0]  # drop a line cut short
        delimiter = sniff_delimiter(sample)
    common = {"sep": delimiter, "dtype": str, "encoding": encoding, "keep_default_na": False}
    header = pd.read_csv(io.BytesIO(raw), header=None, nrows=1, **common).iloc[0]  # type: ignore[call-overload]
    frame: pd.DataFrame = pd.read_csv(  # type: ignore[call-overload]
        io.BytesIO(raw), na_values=list(source.na_values), skip_blank_lines=True, **common
    )
    names = [str(h).strip().lstrip("\ufeff").strip() or str(c) for h, c in zip(header, frame.columns, strict=False)]
    if not isinstance(frame.index, pd.RangeIndex):
        # every data row has one field more than the header: pandas made the first its index
        frame = frame.reset_index()
        names.append(EXTRA)
    if len(names) == len(frame.columns):
        frame.columns = pd.Index(names)
    return frame


def sniff_delimiter(sample: str) -> str:
    """The delimiter of CSV text (a header line, or the first lines of a file): of `,` `;` tab
    `|` outside quotes, the one found as often as on the header on the most lines, then the
    most frequent on the header, then `,`; `,` when the header has none of them."""
    lines = [line for line in sample.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines:
        return ","
    unquoted = ["".join(part for i, part in enumerate(line.split('"')) if i % 2 == 0) for line in lines]

    def rank(delimiter: str) -> tuple[int, int, bool]:
        counts = [text.count(delimiter) for text in unquoted]
        agreeing = sum(count == counts[0] for count in counts) if counts[0] else 0
        return agreeing, counts[0], delimiter == ","

    best = max(DELIMITERS, key=rank)
    return best if unquoted[0].count(best) else ","


def record_lines(raw: bytes, rows: int) -> np.ndarray | None:
    """The 1-based line where each of `rows` data records of ASCII-compatible CSV bytes starts,
    skipping blank lines as the parser does and counting newlines inside quoted fields; None
    when the records found do not number `rows` + 1 (header included)."""
    body = raw.rstrip(b" \t\r\n")
    if body.count(b"\n") == rows:  # the usual file: one line per record, no blank lines
        return np.arange(2, rows + 2, dtype="int64")
    buf = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    quotes = np.flatnonzero(buf == ord('"'))
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]  # not inside quotes
    starts = np.concatenate(([0], ends + 1))
    filled = np.logical_or.reduceat(buf > ord(" "), starts)  # not blank (only spaces, tabs, CR)
    lines = (np.searchsorted(newlines, starts) + 1)[filled]
    return lines[1:].astype("int64") if len(lines) == rows + 1 else None


def drop_report_footer(frame: pd.DataFrame, lines: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Drop the footer block a Salesforce report export ends with ("Grand Totals (N records)",
    "Confidential Information - Do Not Distribute", the copyright line), which would otherwise
    be read as rows; returns the frame, its line numbers and how many rows were dropped."""
    if frame.empty or frame.shape[1] == 0:
        return frame, lines, 0
    last = frame.iloc[-FOOTER_ROWS:, 0].astype("str").str.strip()  # a footer has a few lines at most
    footer = last.str.fullmatch(REPORT_FOOTER, case=False).fillna(False).to_numpy(dtype=bool)
    dropped = int(np.logical_and.accumulate(footer[::-1]).sum())  # the trailing run of footer rows
    if not dropped:
        return frame, lines, 0
    return frame.iloc[:-dropped], lines[:-dropped], dropped


def _check_columns(frame: pd.DataFrame, path: Path, name: str, required: Collection[str], whole: bool) -> None:
    """DataError for duplicate column names (among the columns used, unless the frame is kept
    `whole`) and for required columns the file lacks, listing the columns it has."""
    repeated = frame.columns[frame.columns.duplicated()]
    duplicated = sorted({str(c) for c in repeated if whole or c in required})
    if duplicated:
        raise DataError(
            f"source {name!r}: {path} has duplicate column names",
            [
                Problem(f"column {c!r} appears more than once", str(path), "rename one in the export or in `rename`")
                for c in duplicated
            ],
        )
    missing = sorted(set(required) - set(frame.columns))
    if missing:
        found = ", ".join(map(str, frame.columns))
        raise DataError(
            f"source {name!r}: {path} lacks {len(missing)} column(s) the config uses",
            [
                Problem(
                    f"column {c!r} not found",
                    str(path),
                    f"columns found: {found}; map a header to it with sources.{name}.rename",
                )
                for c in missing
            ],
        )


def _normalize_key(data: SourceData, source: SourceConfig, labels: list[str]) -> None:
    """Normalize the key column; count, warn about and drop rows without a key; count and warn
    about rows without a time (kept, but outside every window)."""
    frame = data.frame
    keys = normalize_keys(frame[source.key], source.key_transform)
    frame[source.key] = keys
    no_key = keys.isna()
    if no_key.any():
        data.rows_without_key = int(no_key.sum())
        data.warnings.append(
            Problem(
                f"{data.rows_without_key} row(s) of source {data.name!r} have an empty {source.key!r} "
                "and are not scored",
                _where(frame, no_key, labels),
                "fill in the key in the export",
            )
        )
        data.frame = frame.loc[~no_key].reset_index(drop=True)
    if source.time:
        no_time = data.frame[source.time].isna()
        if no_time.any():
            data.rows_without_time = int(no_time.sum())
            data.warnings.append(
                Problem(
                    f"{data.rows_without_time} row(s) of source {data.name!r} have no {source.time!r} "
                    "and are left out of its metrics",
                    _where(data.frame, no_time, labels),
                    f"fill in {source.time!r} in the export",
                )
            )


def _where(frame: pd.DataFrame, rows: pd.Series, labels: list[str], examples: int = 3) -> str:
    """The file and line of the first few `rows`, e.g. `tickets.csv line 4, tickets.csv line 9`."""
    sample = frame.loc[rows, [FILE, LINE]].head(examples)
    return ", ".join(f"{Path(labels[f]).name} line {ln}" for f, ln in zip(sample[FILE], sample[LINE], strict=True))
