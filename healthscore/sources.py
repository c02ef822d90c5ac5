"""Reading sources: files, globs or Parquet folders of CSV, Parquet, JSON lines or XLSX
into typed frames.

Every source comes back with its key column as normalized text, its columns renamed and
typed as the config (and its preset) says, and a record of each file read for the
manifest. Nothing is lost without a trace: rows that cannot be used are rejected with
their file, line, reason and raw text (rejects.csv), lines that are not data (report
footers, repeated headers, duplicate events) are counted, and values of the wrong type
stop the run with the file, line and column named.
"""

from __future__ import annotations

import glob
import hashlib
from collections import Counter
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from healthscore.coerce import apply_types
from healthscore.config import Config
from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.keys import code_counts, coded_keys, key_codes
from healthscore.models import SourceConfig
from healthscore.origins import Lines, Origins
from healthscore.presets import derive_columns, derived_inputs, lowercase_columns, renames_for, with_preset
from healthscore.readers import FOOTER_LINE, REPORT_FOOTER, FileFrame, file_format, is_footer, read_file
from healthscore.textfile import Text, file_text, is_gzip, sniff_delimiter

__all__ = ["FileRead", "Origins", "SourceData", "read_source", "sniff_delimiter", "source_files"]

_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")  # hashlib releases the GIL
REJECTS_COLUMNS = ["source", "file", "line", "reason", "raw"]
EMPTY_KEY, BAD_ID, NO_TIME = "empty key", "invalid salesforce id", "missing time"
MALFORMED = frozenset({"too few fields", "too many fields", "malformed json", BAD_ID})  # count to max_reject_share


@dataclass(frozen=True)
class FileRead:
    """One input file as read: where, how many data rows (rejected ones included), how many
    were rejected, and its SHA-256 ('' where a run did not take it)."""

    path: str
    rows: int
    sha256: str
    rejected: int = 0


@dataclass
class SourceData:
    """A source read and typed; `frame` holds the key column `key` normalized (a Categorical
    of sorted text; plain text for the accounts), `origins` each row's file and line (None
    for frames made in memory).

    `rejects` lists rows set aside (source, file, line, reason, raw); `dropped` counts lines
    that are not data, by reason.
    """

    name: str
    frame: pd.DataFrame
    key: str
    time: str | None
    files: list[FileRead]
    warnings: list[Problem] = field(default_factory=list)
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECTS_COLUMNS))
    dropped: dict[str, int] = field(default_factory=dict)
    origins: Origins | None = None
    released: int | None = None  # the rows `release_rows` let go of
    _coded: tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.Index] | None = field(
        default=None, init=False, repr=False, compare=False
    )  # `key_counts` of `frame`, held with it

    def release_rows(self) -> None:
        """Let go of the rows (once aggregated, by a run that read the source itself): a
        source of tens of millions of rows is most of a run's memory. Counts stay."""
        self.released = len(self.frame)
        self.frame, self.origins, self._coded = self.frame.iloc[:0], None, None

    def key_counts(self) -> tuple[np.ndarray, np.ndarray, pd.Index]:
        """The key column's codes and sorted distinct keys (`keys.key_codes`), with the rows
        of each code (`keys.code_counts`), worked out once for the frame: aggregating and
        joining both need them (M's 10M events counted again: 0.03 s)."""
        if self._coded is None or self._coded[0] is not self.frame:
            codes, keys = key_codes(self.frame[self.key])
            self._coded = (self.frame, codes, code_counts(codes, len(keys)), keys)
        return self._coded[1], self._coded[2], self._coded[3]

    @property
    def rows_used(self) -> int:
        """Rows kept for scoring (after rejects, footers and duplicates)."""
        return self.released if self.released is not None else len(self.frame)

    @property
    def rows_read(self) -> int:
        """Data rows read over all files of the source (rejected ones included)."""
        return sum(f.rows for f in self.files)

    @property
    def rejected(self) -> dict[str, int]:
        """Rejected rows by reason."""
        return {str(k): int(v) for k, v in self.rejects["reason"].value_counts(sort=False).items()}

    @property
    def rows_without_key(self) -> int:
        """Rows rejected for an empty key."""
        return self.rejected.get(EMPTY_KEY, 0)

    @property
    def rows_without_time(self) -> int:
        """Rows without a time, outside every window (rejected, but kept on the spine)."""
        return self.rejected.get(NO_TIME, 0)


def source_files(config: Config, name: str) -> list[Path]:
    """The files a source's path, glob or Parquet folder names, sorted; InputMissingError if
    there are none."""
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
    if pattern.is_dir():
        paths = sorted(p for p in pattern.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq"))
        if not paths:
            raise InputMissingError(
                f"source {name!r}: folder {pattern} holds no .parquet files",
                [Problem("a folder is read as one Parquet dataset", str(pattern), "point `path` at a file or a glob")],
            )
        return paths
    if not pattern.is_file():
        raise InputMissingError(
            f"source {name!r}: input file not found: {pattern}",
            [Problem(f"sources.{name}.path is {source.path!r}", hint="paths are relative to the config file")],
        )
    return [pattern]


def read_source(
    config: Config,
    name: str,
    needed: Collection[str] | None = None,
    keep_all: bool = False,
    recent: Mapping[str, pd.Timestamp] | None = None,
    digests: bool = True,
) -> SourceData:
    """Read, rename, type and key-normalize one source; `needed` columns must all be present.

    With `needed` given, only those columns (plus key and time) are kept, unless `keep_all`
    (for the accounts source, whose columns pass through and whose rows without a time
    are kept). Columns of `recent` (`pipeline.recent_columns`) are needed only in rows
    timed from their start on: Parquet files may leave them null in older row groups.
    Each file's SHA-256 (for run.json) is taken beside the parsing if `digests`; else its
    `sha256` is '' (M's 640 MB of CSV took 0.45 CPU-s of two cores to hash).
    """
    own = config.sources[name]
    source = with_preset(own)
    derived, inputs = derived_inputs(source, needed or ())
    required = {source.key, *([source.time] if source.time else []), *own.types, *inputs}
    required |= (set(needed or ()) - derived) | ({own.dedupe} if own.dedupe else set())
    wanted = required | ({source.dedupe} if source.dedupe else set())
    # key, time, typed, dedupe and derivation columns are read whole; only plain columns may be left null
    protected = {source.key, source.time, *source.types, *own.types, *inputs, source.dedupe, own.dedupe}
    since = {c: t for c, t in (recent or {}).items() if c in wanted - protected and source.time and not keep_all}
    root = config.resolve(own.path)
    paths = source_files(config, name)
    frames, lines, files, rejects, dropped, notes = [], [], [], [], Counter[str](), []
    for path in paths:
        # Parquet is read from its path (only the columns needed ever in memory), a large CSV
        # file mapped (`textfile.file_text`), the rest as bytes
        fmt = file_format(source, path) if not is_gzip(path) else "gzip"
        raw = None if fmt == "parquet" else file_text(path) if fmt == "csv" else path.read_bytes()
        sha256 = _HASHER.submit(_sha256, path if raw is None else raw) if digests else None  # while it is parsed

        def missing(names: list[str]) -> list[str]:
            renames = renames_for(source, names)
            return sorted(required - {renames.get(n, n) for n in names})

        def select(names: list[str]) -> tuple[list[str], str | None]:
            renames = renames_for(source, names)
            keys = [n for n in names if renames.get(n, n) == source.key]
            keep = names if needed is None or keep_all else [n for n in names if renames.get(n, n) in wanted]
            return keep, keys[0] if len(keys) == 1 and not keep_all else None

        def recent_of(names: list[str]) -> tuple[str, dict[str, pd.Timestamp]] | None:
            renames = renames_for(source, names)
            times = [n for n in names if renames.get(n, n) == source.time]
            starts = {n: since[renames.get(n, n)] for n in names if renames.get(n, n) in since}
            return (times[0], starts) if len(times) == 1 and starts else None

        read = read_file(path, raw, source, name, missing, select, recent_of if since else None)
        frame = read.frame.rename(columns=renames_for(source, [str(c) for c in read.frame.columns]))
        frame = _with_partitions(frame, path, root)
        _check_columns(frame, path, name, required, whole=needed is None or keep_all, delimiter=read.delimiter)
        if needed is not None and not keep_all:
            frame = frame[[c for c in frame.columns if c in wanted]]
        frame, kept, screened = _screen_rows(frame, read, source, keep_time=keep_all)
        rejected = _rejects_of(name, path, pd.concat([read.rejected, screened], ignore_index=True))
        files.append(FileRead(str(path), len(frame) + len(rejected), sha256.result() if sha256 else "", len(rejected)))
        rejects.append(rejected)
        dropped.update(read.dropped)
        notes += read.notes
        if len(read.frame) == 0 and len(read.rejected) == 0:
            notes.append(
                Problem(f"{path.name} has a header but no data rows: source {name!r} gets none from it", str(path))
            )
        frames.append(frame)
        lines.append(kept)
        del raw, read  # the file's bytes (rejected rows have their text by now): not beside the typing below
    frame = _concat(frames, source.key, as_text=keep_all)
    rejected = pd.concat(rejects, ignore_index=True)
    _check_reject_share(name, own, rejected, sum(f.rows for f in files))
    frame, origins = _dedupe(frame, Origins.of_files([str(p) for p in paths], lines), source, dropped)
    infer = file_format(source, paths[0]) in ("csv", "xlsx")
    frame = apply_types(frame, source.types, source, origins, infer=infer, name=name)
    frame = lowercase_columns(derive_columns(frame, source), source)
    data = SourceData(name, frame, source.key, source.time, files, notes, rejected, dict(+dropped), origins)
    data.warnings += _reject_warnings(data)
    return data


def _sha256(content: Text | Path) -> str:
    """The SHA-256 of bytes (a mapped file's), or of a file read a block at a time."""
    if not isinstance(content, Path):
        return hashlib.sha256(content).hexdigest()
    with content.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _concat(frames: list[pd.DataFrame], key: str, as_text: bool) -> pd.DataFrame:
    """The files' rows as one frame, plain text for the key when `as_text` (the accounts,
    whose keys become the index). A column Categorical in every file (the key; Parquet's
    and CSV's text of few distinct values) stays one, its categories united and sorted:
    pandas' concatenation would make text of it (10M event names: 1.4 s against 0.02 s)."""
    frame = frames[0]
    if len(frames) > 1:
        coded = [c for c in frame.columns if all(isinstance(f.get(c), pd.Series) and _coded(f[c]) for f in frames)]
        order = list(dict.fromkeys(c for f in frames for c in f.columns))
        frame = pd.concat([f.drop(columns=coded) for f in frames], ignore_index=True)
        for column in coded:
            united = union_categoricals([f[column] for f in frames], sort_categories=True)
            frame[column] = pd.Series(united, index=frame.index)
        frame = frame[order]
    if as_text:
        frame[key] = frame[key].astype("str")
    return frame


def _coded(column: pd.Series) -> bool:
    return isinstance(column.dtype, pd.CategoricalDtype)


def _with_partitions(frame: pd.DataFrame, path: Path, root: Path) -> pd.DataFrame:
    """Hive-style partition folders (`date=2026-01-31/part-0.parquet`) as text columns, for
    files of a Parquet folder that lack a column of that name."""
    if not root.is_dir():
        return frame
    for part in path.relative_to(root).parts[:-1]:
        column, sep, value = part.partition("=")
        if sep and column and column not in frame.columns:
            frame[column] = value
    return frame


REASONS = (None, EMPTY_KEY, BAD_ID, NO_TIME)


def _screen_rows(
    frame: pd.DataFrame, read: FileFrame, source: SourceConfig, keep_time: bool
) -> tuple[pd.DataFrame, Lines, pd.DataFrame]:
    """Normalize the key and set aside rows that cannot be used: footers with an empty key
    (dropped, counted in `read.dropped`), empty keys, Salesforce ids with a wrong checksum
    suffix, and (unless `keep_time`) rows without a time. Returns the rows kept, their
    lines, and the rejected rows (line, reason, raw)."""
    keys, bad_ids = coded_keys(frame[source.key], source.key_transform)
    codes = keys.array.codes  # type: ignore[attr-defined]  # the Categorical's own, not a copy
    no_key = codes < 0
    footer_keys = np.append(pd.Series(keys.cat.categories).str.fullmatch(REPORT_FOOTER).to_numpy(dtype=bool), False)
    untimed = frame[source.time].isna().to_numpy() if source.time and not keep_time else np.zeros(0, dtype=bool)
    if not (no_key.any() or footer_keys.any() or bad_ids.any() or untimed.any()):  # every row kept, as most often:
        frame[source.key] = keys  # no row masks (some ten passes over M's 10M rows: 0.15 s)
        return frame, read.lines, _rejected(read, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
    footer = footer_keys[codes]  # in the key's column, checked once per distinct key
    if no_key.any():
        footer[no_key] = _footer_rows(frame.loc[no_key])
    if footer.any():
        read.dropped[FOOTER_LINE] += int(footer.sum())
    reason = np.zeros(len(frame), dtype=np.int8)  # an index into REASONS; 0 is none
    reason[no_key & ~footer] = REASONS.index(EMPTY_KEY)
    reason[~no_key & bad_ids] = REASONS.index(BAD_ID)
    if len(untimed):
        reason[(reason == 0) & ~footer & untimed] = REASONS.index(NO_TIME)
    frame[source.key] = keys
    out = reason > 0
    positions = np.flatnonzero(out)
    rejected = _rejected(read, positions, reason[positions])
    drop = out | footer
    if not drop.any():
        return frame, read.lines, rejected
    return frame.loc[~drop].reset_index(drop=True), read.lines[~drop], rejected


def _rejected(read: FileFrame, positions: np.ndarray, reasons: np.ndarray) -> pd.DataFrame:
    """The rows of a file at `positions`, set aside for `reasons` (indices into REASONS):
    their lines, reasons and raw text."""
    return pd.DataFrame(
        {
            "line": read.lines[positions],
            "reason": np.array(REASONS, dtype=object)[reasons],
            "raw": read.raw(positions) if len(positions) else [],
        }
    )


def _footer_rows(rows: pd.DataFrame) -> np.ndarray:
    """Rows (with an empty key) whose first non-empty value is a report footer line."""
    values = rows.astype("str").where(rows.notna())
    values = values.mask(values.apply(lambda col: col.str.strip() == ""))
    first = values.bfill(axis=1).iloc[:, 0] if values.shape[1] else pd.Series("", index=rows.index)
    return is_footer(first.fillna("").astype("str"))


def _rejects_of(name: str, path: Path, rejected: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows of one file in the rejects.csv columns, by line."""
    out = rejected.assign(source=name, file=str(path))[REJECTS_COLUMNS]
    return out.astype({"line": "int64"}).sort_values("line", kind="stable", ignore_index=True)


def _check_reject_share(name: str, source: SourceConfig, rejected: pd.DataFrame, rows: int) -> None:
    """DataError when malformed rows (ragged, bad JSON, bad ids) exceed max_reject_share."""
    malformed = rejected[rejected["reason"].isin(MALFORMED)]
    if rows == 0 or len(malformed) / rows <= source.max_reject_share:
        return
    counts = ", ".join(f"{n} {reason}" for reason, n in malformed["reason"].value_counts().items())
    examples = [
        Problem(f"{reason}: {raw[:120]!r}", f"{Path(file).name} line {line}")
        for file, line, reason, raw in malformed[["file", "line", "reason", "raw"]].head(5).itertuples(index=False)
    ]
    share = len(malformed) / rows
    raise DataError(
        f"source {name!r}: {len(malformed)} of {rows} rows ({share:.1%}) cannot be read ({counts}), "
        f"more than max_reject_share {source.max_reject_share:.1%}",
        [
            *examples,
            Problem(
                "too many broken rows to trust the rest",
                f"sources.{name}",
                "check the delimiter and the export; or raise max_reject_share to accept these losses",
            ),
        ],
    )


def _dedupe(
    frame: pd.DataFrame, origins: Origins, source: SourceConfig, dropped: Counter[str]
) -> tuple[pd.DataFrame, Origins]:
    """Drop later rows repeating the `dedupe` column's value (events sent twice), counted."""
    if not source.dedupe or source.dedupe not in frame.columns:
        return frame, origins
    column = frame[source.dedupe]
    repeated = (column.duplicated() & column.notna()).to_numpy()
    if repeated.any():
        dropped[f"duplicate {source.dedupe}"] += int(repeated.sum())
        return frame.loc[~repeated].reset_index(drop=True), origins.take(~repeated)
    return frame, origins


def _reject_warnings(data: SourceData) -> list[Problem]:
    """One warning per reason for rejected rows and for repeated header rows."""
    warnings = []
    for reason, count in data.rejected.items():
        rows = data.rejects[data.rejects["reason"] == reason]
        where = ", ".join(
            f"{Path(f).name} line {ln}" for f, ln in zip(rows["file"].head(3), rows["line"].head(3), strict=True)
        )
        text, hint = {
            EMPTY_KEY: (f"have an empty {data.key!r} and are not scored", "fill in the key in the export"),
            NO_TIME: (f"have no {data.time!r} and are left out of its metrics", f"fill in {data.time!r} in the export"),
            BAD_ID: ("have an 18-character Salesforce id whose checksum suffix is wrong", "re-export the ids"),
        }.get(reason, (f"were rejected: {reason}", "fix the export"))
        warnings.append(
            Problem(f"{count} row(s) of source {data.name!r} {text}", where, f"{hint}; rows in rejects.csv")
        )
    if data.dropped.get("repeated header row"):
        warnings.append(
            Problem(
                f"{data.dropped['repeated header row']} repeated header row(s) in source {data.name!r} were dropped",
                f"sources.{data.name}",
                "files were concatenated with their headers; nothing else to do",
            )
        )
    return warnings


def _check_columns(
    frame: pd.DataFrame, path: Path, name: str, required: Collection[str], whole: bool, delimiter: str | None
) -> None:
    """DataError for duplicate column names (among the columns used, unless the frame is kept
    `whole`) and for required columns the file lacks, listing those expected and found."""
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
        found = ", ".join(map(str, frame.columns[:40])) + (" ..." if frame.shape[1] > 40 else "")
        split = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter or "", "")
        how = f" (split at each {split}; set sources.{name}.delimiter if that is wrong)" if split else ""
        raise DataError(
            f"source {name!r}: {path} lacks {len(missing)} column(s) the config uses",
            [
                Problem(f"expected: {', '.join(sorted(map(str, required)))}", str(path)),
                Problem(f"found: {found}{how}", str(path)),
                *(
                    Problem(f"column {c!r} not found", str(path), f"map a header to it with sources.{name}.rename")
                    for c in missing
                ),
            ],
        )
