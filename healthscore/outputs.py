"""Outputs: the scored table in csv / parquet / json / jsonl / xlsx, rejects.csv and the
run.json manifest.

CSV and XLSX are spreadsheet formats: text cells that a spreadsheet would run as a
formula are neutralized (unless `allow_formulas`), a CSV file gets a UTF-8 BOM so Excel
reads it as UTF-8 (never on stdout), and `labels` puts human labels in the header.

Every file is written to a temporary file in its target directory and renamed into
place only after all of them were written, so a failed run leaves the previous
outputs untouched and a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from healthscore import __version__
from healthscore.config import Config
from healthscore.errors import OutputError, Problem, UsageError
from healthscore.history import expired_dates, prune, snapshot_bytes, snapshot_path
from healthscore.pipeline import RunResult

FORMATS = ("csv", "parquet", "json", "jsonl", "xlsx")
MANIFEST = "run.json"
UTF8_BOM = b"\xef\xbb\xbf"
REJECTS = "rejects.csv"


@dataclass(frozen=True)
class TableOptions:
    """How the table is written for spreadsheets: a UTF-8 BOM on CSV files (`excel`), text
    that looks like a formula left as is (`allow_formulas`), human labels as headers."""

    excel: bool = True
    allow_formulas: bool = False
    labels: bool = False


def output_bytes(
    result: RunResult, config: Config, fmt: str, options: TableOptions = TableOptions()
) -> tuple[bytes, list[Problem]]:
    """The scored table in one output format, with the warnings writing it raised (cells
    Excel cannot hold); deterministic for the same run."""
    if fmt not in ("csv", "xlsx"):
        return table_bytes(result.table, fmt), []
    # only the spreadsheet formats need `spreadsheet`, which imports openpyxl (~0.3 s)
    from healthscore.spreadsheet import labelled_columns, neutralize_formulas, xlsx_bytes

    if fmt == "xlsx":
        return xlsx_bytes(result, config, allow_formulas=options.allow_formulas, labels=options.labels)
    frame = _text_frame(result.table)
    if options.labels:
        frame = frame.rename(columns=labelled_columns(result.table, config))
    if not options.allow_formulas:
        frame = neutralize_formulas(frame)
    data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return (UTF8_BOM + data if options.excel else data), []


def rejects_bytes(rejects: pd.DataFrame, options: TableOptions = TableOptions()) -> bytes:
    """rejects.csv, treated as a spreadsheet CSV like the table (raw text can hold formulas)."""
    from healthscore.spreadsheet import neutralize_formulas

    frame = rejects if options.allow_formulas else neutralize_formulas(rejects)
    data = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return UTF8_BOM + data if options.excel else data


def table_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """The table as plain data in csv, parquet, json or jsonl (no spreadsheet treatment),
    deterministic for the same table."""
    if fmt == "csv":
        return _text_frame(table).to_csv(index=False, lineterminator="\n").encode("utf-8")
    if fmt in ("json", "jsonl"):
        records = json.loads(_text_frame(table).to_json(orient="records", double_precision=10))
        if fmt == "jsonl":
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
        return (json.dumps(records, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    if fmt == "parquet":
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), sink, compression="zstd")
        return sink.getvalue()
    raise UsageError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _text_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO text, so CSV and JSON show 2026-01-31 rather than timestamps."""
    out = table.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if isinstance(dtype, pd.ArrowDtype) and pa.types.is_date(dtype.pyarrow_dtype):
            out[col] = out[col].astype("str").where(out[col].notna())
        elif pd.api.types.is_datetime64_any_dtype(out[col].dtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


def format_of(path: str, fmt: str | None) -> str:
    """The output format: the one asked for, else from the file's suffix."""
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    if path == "-":
        return "csv"
    raise UsageError(f"cannot tell the format of {path!r} from its suffix; add --format")


def _file_mode() -> int:
    """The mode a new file gets under the current umask (temp files are created 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _staged(paths: list[Path]) -> Iterator[list[IO[bytes]]]:
    """Temp files beside each target; renamed onto the targets only if the block succeeds.

    Every temp file is complete and synced before the first rename, and targets are
    checked to be renamable, so a failure leaves all previous outputs as they were.
    """
    temps: list[tuple[Any, Path]] = []
    try:
        for path in paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in `finally`
                    dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
                )
            except OSError as exc:
                raise OutputError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
            temps.append((handle, path))
        yield [h for h, _ in temps]
        mode = _file_mode()
        for handle, path in temps:
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
            handle.close()
            if path.is_dir():
                raise OutputError(f"cannot write {path}: a directory is in the way")
        for handle, path in temps:
            os.replace(handle.name, path)
    except OSError as exc:
        raise OutputError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None
    finally:
        for handle, _ in temps:
            handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(handle.name)


def write_files(contents: dict[Path, bytes]) -> None:
    """Write several files atomically as a set: all are replaced, or none."""
    paths = list(contents)
    with _staged(paths) as handles:
        for handle, path in zip(handles, paths, strict=True):
            handle.write(contents[path])


def write_outputs(
    result: RunResult,
    config: Config,
    out_dir: str | None = None,
    started: dt.datetime | None = None,
    options: TableOptions = TableOptions(),
) -> list[Path]:
    """Write the scored table in each configured format, rejects.csv (the rows set aside while
    reading, header only when none) and run.json; return the paths written. Warnings from
    writing (cells Excel cannot hold) join the summary's before the manifest is built."""
    directory = Path(out_dir) if out_dir else config.resolve(config.outputs.dir)
    contents = {}
    for fmt in config.outputs.formats:
        data, problems = output_bytes(result, config, fmt, options)
        contents[directory / f"{config.outputs.name}.{fmt}"] = data
        _add_warnings(result, problems)
    expired = []
    if config.history is not None:
        contents[snapshot_path(config, result.as_of)] = snapshot_bytes(result.table, config)
        expired = expired_dates(config, result.as_of)
    contents[directory / REJECTS] = rejects_bytes(result.rejects, options)
    manifest = build_manifest(result, config, contents, started)
    if expired:
        manifest["history_pruned"] = [day.isoformat() for day in expired]
    contents[directory / MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    write_files(contents)
    if expired:  # only once this day's outputs are all in place
        prune(config, result.as_of)
    return list(contents)


def _add_warnings(result: RunResult, problems: list[Problem]) -> None:
    """Warnings from writing join the summary's, once, however often the result is written."""
    result.summary.warnings.extend(p for p in problems if p not in result.summary.warnings)


def write_single(
    result: RunResult,
    config: Config,
    target: str,
    fmt: str | None,
    stdout: IO[bytes],
    options: TableOptions = TableOptions(),
) -> Path | None:
    """Write only the table to one file (atomically) or to stdout for `-` (never with a BOM);
    returns the path."""
    fmt = format_of(target, fmt)
    if target == "-":
        options = TableOptions(excel=False, allow_formulas=options.allow_formulas, labels=options.labels)
    data, problems = output_bytes(result, config, fmt, options)
    _add_warnings(result, problems)
    if target == "-":
        stdout.write(data)
        stdout.flush()
        return None
    write_files({Path(target): data})
    return Path(target)


def _absolute(path: str | Path) -> str:
    """A path as an absolute one, so the manifest reads the same wherever the run started."""
    return str(Path(path).resolve())


def build_manifest(
    result: RunResult, config: Config, contents: dict[Path, bytes], started: dt.datetime | None = None
) -> dict[str, Any]:
    """The run manifest: what was read, what was written, what went wrong, how long it took."""
    summary = result.summary
    return {
        "healthscore_version": __version__,
        "as_of": result.as_of.isoformat(),
        "started_at": (started or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "config": {"path": _absolute(config.path) if config.path else None, "sha256": config.sha256},
        "inputs": {
            name: {
                "files": [
                    {"path": _absolute(f.path), "rows": f.rows, "rejected": f.rejected, "sha256": f.sha256}
                    for f in data.files
                ],
                "rows_read": data.rows_read,
                "rows_used": data.rows_used,
                "rejected": data.rejected,
                "dropped": data.dropped,
                **({"join": result.joins[name].to_dict()} if name in result.joins else {}),
            }
            for name, data in result.sources.items()
        },
        "metrics": {
            name: {
                "label": config.metric_label(name),
                "kind": metric.kind,
                "source": metric.source,
                "agg": metric.agg,
                "window": metric.window,
                "scale": metric.scale.method,
            }
            for name, metric in config.metrics.items()
        },
        "accounts": summary.accounts,
        "scored": summary.scored,
        "segments": {row.name: row.accounts for row in summary.segments},
        "warnings": [w.to_dict() for w in summary.warnings],
        "outputs": [
            {"path": _absolute(path), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in contents.items()
        ],
        "timings": result.timings,
    }
