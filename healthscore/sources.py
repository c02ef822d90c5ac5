"""Reading sources: files or globs of CSV, Parquet, JSON lines or XLSX into typed frames.

Every source comes back with its key column as normalized text, its columns renamed and
typed as the config says, and a record of each file read (rows, sha256) for the manifest.
Unusable values stop the run with the file, line and column named; nothing is dropped
without being counted.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from healthscore.coerce import apply_types
from healthscore.config import Config, SourceConfig
from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.keys import normalize_keys
from healthscore.presets import PRESETS

LINE = "_line"
FILE = "_file"
DELIMITERS = (",", ";", "\t", "|")


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


def read_source(config: Config, name: str, needed: Collection[str] | None = None) -> SourceData:
    """Read, rename, type and key-normalize one source; `needed` columns must all be present.

    With `needed` given, only those columns (plus key and time) are kept.
    """
    source = config.sources[name]
    preset = PRESETS.get(source.preset) if source.preset else None
    rename = {**(preset.rename if preset else {}), **source.rename}
    types = {**(preset.types if preset else {}), **source.types}
    required = {source.key, *([source.time] if source.time else []), *(needed or ())}
    paths = source_files(config, name)
    frames, files = [], []
    for i, path in enumerate(paths):
        raw = path.read_bytes()
        frame = _read_file(path, raw, source, name)
        frame = frame.rename(columns={c: rename.get(c, c) for c in frame.columns})
        _check_columns(frame, path, name, required)
        if needed is not None:
            frame = frame[[c for c in frame.columns if c in required]]
        frame[FILE] = i
        frame[LINE] = _line_numbers(len(frame), path, source)
        frames.append(frame)
        files.append(FileRead(str(path), len(frame), hashlib.sha256(raw).hexdigest()))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    labels = [str(p) for p in paths]
    if preset:
        for col in preset.lowercase:
            if col in frame.columns and col not in source.types:
                frame[col] = frame[col].str.lower()
    frame = apply_types(frame, types, source, labels, infer=_is_text_format(source, paths[0]))
    data = SourceData(name, frame, source.key, source.time, files)
    _normalize_key(data, source, labels)
    return data


def _is_text_format(source: SourceConfig, path: Path) -> bool:
    return file_format(source, path) == "csv"


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


def _read_file(path: Path, raw: bytes, source: SourceConfig, name: str) -> pd.DataFrame:
    if not raw.strip():
        raise InputMissingError(
            f"source {name!r}: input file is empty: {path}",
            [Problem("the file has no header and no rows", str(path), "re-export the data")],
        )
    fmt = file_format(source, path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
        if fmt == "xlsx":
            return pd.read_excel(path, sheet_name=source.sheet or 0, dtype=object)
        return _read_csv(path, raw, source)
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


def _read_csv(path: Path, raw: bytes, source: SourceConfig) -> pd.DataFrame:
    encoding = "utf-8-sig" if source.encoding in ("auto", "utf-8") else source.encoding
    delimiter: str = source.delimiter
    if delimiter == "auto":
        delimiter = sniff_delimiter(raw.split(b"\n", 1)[0].decode(encoding, errors="replace"))
    frame = pd.read_csv(
        path,
        sep=delimiter,
        dtype=str,
        encoding=encoding,
        keep_default_na=False,
        na_values=list(source.na_values),
        skip_blank_lines=True,
    )
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame


def sniff_delimiter(header: str) -> str:
    """The most frequent of `,` `;` tab `|` in a header line outside quotes (`,` on a tie)."""
    unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _line_numbers(rows: int, path: Path, source: SourceConfig) -> pd.Series:
    """The 1-based line of each data row (header is line 1 for CSV and XLSX)."""
    offset = 1 if file_format(source, path) in ("jsonl", "parquet") else 2
    return pd.Series(range(offset, offset + rows), dtype="int64")


def _check_columns(frame: pd.DataFrame, path: Path, name: str, required: Collection[str]) -> None:
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
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
    frame = data.frame
    keys = normalize_keys(frame[source.key], source.key_transform)
    frame[source.key] = keys
    no_key = keys.isna()
    if no_key.any():
        data.rows_without_key = int(no_key.sum())
        sample = frame.loc[no_key, [FILE, LINE]].head(3)
        where = ", ".join(f"{Path(labels[f]).name} line {ln}" for f, ln in zip(sample[FILE], sample[LINE], strict=True))
        data.warnings.append(
            Problem(
                f"{data.rows_without_key} row(s) of source {data.name!r} have an empty {source.key!r} and are not scored",
                where,
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
                    data.name,
                )
            )
