"""`engine: ibis`: sources opened on their backend, and a `table:` accounts source fetched.

`open_source` opens one source where its data lives (its files read by the backend, or a
`table` on its connection), picks and renames the columns the config uses, types them there
(`ibis_coerce.Typer`), and returns a `BackendSource`: a lazy Ibis table plus what the probe
counted (rows per file for the manifest, rejected rows with the first `REJECTS_KEPT` listed
for rejects.csv). Nothing else is read. `read_table_accounts` fetches a `table:` accounts
source whole (one row per account) and types it in memory, like a file.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from healthscore.aggregate import NUMERIC_AGGS
from healthscore.coerce import apply_types
from healthscore.errors import DataError, InputMissingError, Problem
from healthscore.ibis_backends import FILE_COL, MEMORY, ROW_COL, Backends, backend_call, shown_url
from healthscore.ibis_coerce import Typer
from healthscore.keys import checked_keys
from healthscore.models import Config, SourceConfig
from healthscore.origins import Origins, RowLines
from healthscore.presets import derive_columns, derived_inputs, lowercase_columns, renames_for, with_preset
from healthscore.readers import clean_names, file_format
from healthscore.sources import EMPTY_KEY, NO_TIME, REJECTS_COLUMNS, FileRead, SourceData, source_files
from healthscore.textfile import sniff_delimiter

__all__ = ["REJECTS_KEPT", "BackendSource", "open_source", "read_table_accounts"]

REJECTS_KEPT = 1000  # rejected rows per source listed in rejects.csv (all are counted)
SNIFF_BYTES = 65536


@dataclass
class BackendSource(SourceData):
    """A source that stays on its backend: `table` holds its rows as a lazy Ibis table
    expression (key normalized, columns typed, times in UTC), aggregated per run.

    `frame` has no columns: only its length (the rows used) is meaningful. Rejected rows are
    counted exactly (`rejected`); the first `REJECTS_KEPT` are listed in `rejects`.
    """

    on_backend: ClassVar[bool] = True  # what `pipeline` asks, without importing this module

    table: Any = None
    kinds: dict[str, str] = field(default_factory=dict)  # column -> what it holds (expr.py kinds)
    empty_text: frozenset[str] = frozenset()  # text columns without a value (missing numbers)
    reject_counts: dict[str, int] = field(default_factory=dict)

    @property
    def rejected(self) -> dict[str, int]:
        """Rejected rows by reason, counted on the backend."""
        return dict(self.reject_counts)

    @property
    def columns(self) -> list[str]:
        """The columns of `table` under their config names (without the row-origin columns)."""
        return [str(c) for c in self.table.columns if c not in (FILE_COL, ROW_COL)]


def open_source(config: Config, name: str, needed: Collection[str], backends: Backends) -> BackendSource:
    """Open a source on its backend with the columns `needed`: renamed, checked, typed and
    key-normalized there, its rows counted (per file where the backend says) and its
    rejected rows (empty key, missing time) counted and sampled. Nothing else is read."""
    own = config.sources[name]
    source = with_preset(own)
    url = own.connection or config.connection
    backend = backends.get(url)
    if own.table is not None:
        raw, paths, fmt = _open_table(backend, name, own.table, url), [], "table"
    else:
        paths = source_files(config, name)
        fmt = file_format(source, paths[0])
        raw = backend_call("read its files", name, lambda: _read_files(backend, paths, fmt, source, config, name))
    required = {source.key, *([source.time] if source.time else []), *own.types, *needed}
    rows = _renamed(raw, source, name, required, paths or [_reference(url, own.table)])
    typer = Typer(name, source, rows, csv=fmt == "csv", numeric=_numeric_fields(config, name))
    stats = backend_call("count its rows", name, lambda: typer.probe())
    table, kinds = typer.typed(stats)
    counts = {EMPTY_KEY: int(stats["_no_key"].sum()), NO_TIME: int(stats["_no_time"].sum())}
    counts = {reason: n for reason, n in counts.items() if n}
    rows_read = int(stats["_rows"].sum())
    files = _files(stats, paths, _reference(url, own.table))
    rejects = _rejects(name, typer, files[0].path if len(files) == 1 else "") if counts else _no_rejects()
    used = rows_read - sum(counts.values())
    data = BackendSource(
        name,
        pd.DataFrame(index=pd.RangeIndex(used)),
        source.key,
        source.time,
        files,
        rejects=rejects,
        table=table,
        kinds=kinds,
        empty_text=typer.empty_text(stats),
        reject_counts=counts,
    )
    data.warnings += _reject_warnings(data, sum(counts.values()) > len(rejects))
    return data


def _reference(url: str | None, table: str | None) -> str:
    """How a table source is named in the manifest and messages: URL#table."""
    return f"{shown_url(url or MEMORY)}#{table}" if table else shown_url(url or MEMORY)


def _open_table(backend: Any, source: str, name: str, url: str | None) -> Any:
    """The table `name` of a source (`db.table` or `catalog.db.table` name its database); an
    InputMissingError (exit 66, as for a missing file) when the backend has no such table."""
    from ibis.common.exceptions import TableNotFound

    *database, table = name.split(".")

    def lookup() -> Any:
        try:
            if not database:
                return backend.table(table)
            return backend.table(table, database=tuple(database) if len(database) > 1 else database[0])
        except TableNotFound:
            raise InputMissingError(
                f"source {source!r}: table {name!r} not found on {shown_url(url or MEMORY)}",
                [
                    Problem(
                        f"sources.{source}.table is {name!r}",
                        hint="check the table's name (`db.table` names its schema) and the connection",
                    )
                ],
            ) from None

    return backend_call(f"open table {name}", source, lookup)


def _is_duckdb(backend: Any) -> bool:
    return str(getattr(backend, "name", "")) == "duckdb"


def _read_files(backend: Any, paths: list[Path], fmt: str, source: SourceConfig, config: Config, name: str) -> Any:
    """The files of a source as one Ibis table, columns as the files name them; on DuckDB with
    each row's file (and Parquet row number) for the manifest and rejects.csv."""
    files = [str(p) for p in paths]
    folder = config.resolve(source.path).is_dir()
    duck = _is_duckdb(backend)
    if fmt == "parquet":
        if duck:
            options: dict[str, Any] = {"filename": FILE_COL, "file_row_number": True, "union_by_name": True}
            if folder:
                options.update(hive_partitioning=True, hive_types_autocast=False)
            table = backend.read_parquet(files, **options)
            return table.rename({ROW_COL: "file_row_number"})
        return backend.read_parquet(str(config.resolve(source.path)))  # a file, a glob or a folder
    delimiter = source.delimiter if source.delimiter != "auto" else _sniff(paths[0])
    if duck:
        return backend.read_csv(
            files,
            all_varchar=True,
            header=True,
            delim=delimiter,
            quote='"',
            escape='"',
            filename=FILE_COL,
            union_by_name=len(files) > 1,
        )
    return backend.read_csv(
        files, header=True, inferSchema=False, sep=delimiter, quote='"', escape='"', multiLine=True, mode="FAILFAST"
    )


def _sniff(path: Path) -> str:
    """The delimiter of a CSV file, from its first bytes, as the pandas reader would guess it."""
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    return sniff_delimiter(head.decode("utf-8", errors="replace").lstrip("\ufeff"))


def _renamed(raw: Any, source: SourceConfig, name: str, required: set[str], where: list[Path] | list[str]) -> Any:
    """The required columns of `raw` under their config names (headers cleaned, preset and
    source renames applied), plus the row-origin columns; a DataError for columns absent or
    named twice."""
    headers = [c for c in raw.columns if c not in (FILE_COL, ROW_COL)]
    cleaned = clean_names(headers)
    renames = renames_for(source, cleaned)
    names = [renames.get(c, c) for c in cleaned]
    label = str(where[0]) if len(where) == 1 else f"{len(where)} files"
    twice = sorted({n for n in names if n in required and names.count(n) > 1})
    if twice:
        raise DataError(
            f"source {name!r}: {label} has duplicate column names",
            [Problem(f"column {c!r} appears more than once", label, "rename one in `rename`") for c in twice],
        )
    missing = sorted(required - set(names))
    if missing:
        found = ", ".join(map(str, cleaned[:40])) + (" ..." if len(cleaned) > 40 else "")
        raise DataError(
            f"source {name!r}: {label} lacks {len(missing)} column(s) the config uses",
            [
                Problem(f"expected: {', '.join(sorted(required))}", label),
                Problem(f"found: {found}", label),
                *(
                    Problem(f"column {c!r} not found", label, f"map a header to it with sources.{name}.rename")
                    for c in missing
                ),
            ],
        )
    chosen = {new: raw[old] for old, new in zip(headers, names, strict=True) if new in required}
    chosen.update({c: raw[c] for c in (FILE_COL, ROW_COL) if c in raw.columns})
    return raw.select(**chosen)


def _numeric_fields(config: Config, name: str) -> set[str]:
    """The fields of source `name` that numeric aggregates (sum, mean, nps ...) read."""
    fields = set()
    for metric in config.metrics.values():
        if metric.source != name:
            continue
        if metric.agg in NUMERIC_AGGS and metric.field:
            fields.add(metric.field)
        if metric.of is not None and metric.of.agg in NUMERIC_AGGS and metric.of.field:
            fields.add(metric.of.field)
    return fields


# --- the manifest and rejects.csv ---------------------------------------------------------


def _files(stats: pd.DataFrame, paths: list[Path], reference: str) -> list[FileRead]:
    """The manifest's files: rows and rejected rows per file where the backend says which
    file a row came from (else one entry for the whole source), with each file's sha256."""
    rejected = stats["_no_key"] + stats["_no_time"]
    if FILE_COL in stats.columns:
        rows = dict(zip(stats[FILE_COL].astype("str"), stats["_rows"].astype("int64"), strict=True))
        bad = dict(zip(stats[FILE_COL].astype("str"), rejected.astype("int64"), strict=True))
        return [FileRead(str(p), int(rows.get(str(p), 0)), _sha256(p), int(bad.get(str(p), 0))) for p in paths]
    label = str(paths[0]) if len(paths) == 1 else (str(paths[0].parent) if paths else reference)
    digest = _sha256(paths[0]) if len(paths) == 1 else ""
    return [FileRead(label, int(stats["_rows"].sum()), digest, int(rejected.sum()))]


def _sha256(path: Path) -> str:
    """A file's sha256, read in chunks (files may be larger than memory)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame(columns=REJECTS_COLUMNS)


def _rejects(name: str, typer: Typer, label: str) -> pd.DataFrame:
    """The first REJECTS_KEPT rows without a key or a time, in file and row order where the
    backend knows them, as rejects.csv rows: `raw` is the row's columns as read, as JSON;
    `line` the Parquet row number (0 where the backend does not number rows, as for CSV)."""
    rows, key = typer.rows, typer.key()
    time = typer.source.time
    no_time = typer.plan[time][1].isnull() if time is not None else typer.ibis.literal(False)
    data_columns = [c for c in rows.columns if c not in (FILE_COL, ROW_COL)]
    order = [c for c in (FILE_COL, ROW_COL) if c in rows.columns] + data_columns
    query = rows.filter(key.isnull() | no_time).mutate(_hs_no_key=key.isnull()).order_by(order).limit(REJECTS_KEPT)
    found = backend_call("list its rejected rows", name, lambda: query.to_pandas())
    if found.empty:
        return _no_rejects()
    raw = found[data_columns].to_json(orient="records", lines=True, date_format="iso", default_handler=str)
    files = found[FILE_COL].astype("str").to_numpy() if FILE_COL in found.columns else label
    lines = found[ROW_COL].astype("int64").to_numpy() + 1 if ROW_COL in found.columns else 0
    reasons = np.where(found["_hs_no_key"].to_numpy(dtype=bool), EMPTY_KEY, NO_TIME)
    return pd.DataFrame({"source": name, "file": files, "line": lines, "reason": reasons, "raw": raw.splitlines()})


def _reject_warnings(data: BackendSource, capped: bool) -> list[Problem]:
    """One warning per reason for rejected rows, as `sources._reject_warnings`."""
    warnings = []
    for reason, count in data.rejected.items():
        text, hint = {
            EMPTY_KEY: (f"have an empty {data.key!r} and are not scored", "fill in the key in the export"),
            NO_TIME: (f"have no {data.time!r} and are left out of its metrics", f"fill in {data.time!r} in the export"),
        }[reason]
        listed = f"; the first {REJECTS_KEPT} are in rejects.csv" if capped else "; rows in rejects.csv"
        rows = data.rejects[data.rejects["reason"] == reason].head(3)
        where = ", ".join(
            f"{Path(str(f)).name} line {line}" if line else Path(str(f)).name
            for f, line in zip(rows["file"], rows["line"], strict=True)
        )
        warnings.append(
            Problem(f"{count} row(s) of source {data.name!r} {text}", where or f"sources.{data.name}", hint + listed)
        )
    return warnings


# --- a `table:` accounts source -----------------------------------------------------------


def read_table_accounts(config: Config, name: str, needed: Collection[str], backends: Backends) -> SourceData:
    """The accounts source from a `table:`: fetched whole (one row per account), ordered by
    key, then typed, key-normalized and preset-derived in memory like a file; the `needed`
    columns must be there (or derivable by the preset)."""
    own = config.sources[name]
    source = with_preset(own)
    url = own.connection or config.connection
    reference = _reference(url, own.table)
    raw = _open_table(backends.get(url), name, str(own.table), url)
    derived, inputs = derived_inputs(source, needed)
    required = {source.key, *([source.time] if source.time else []), *own.types, *inputs, *(set(needed) - derived)}
    renamed = _renamed(raw, source, name, set(_all_renamed(raw, source)) | required, [reference])
    frame = backend_call("fetch the accounts", name, lambda: renamed.order_by(source.key).to_pandas())
    frame = frame.reset_index(drop=True)
    origins = Origins.of_files([reference], [RowLines(len(frame))])  # rows, as fetched
    frame = apply_types(frame, source.types, source, origins, infer=False, name=name)
    keys, bad_ids = checked_keys(frame[source.key], source.key_transform)
    reasons = pd.Series(None, index=frame.index, dtype="object")
    reasons[keys.isna().to_numpy()] = EMPTY_KEY
    reasons[keys.notna().to_numpy() & bad_ids.to_numpy()] = "invalid salesforce id"
    frame[source.key] = keys
    out = reasons.notna().to_numpy()
    rejects = pd.DataFrame(
        {
            "source": name,
            "file": reference,
            "line": origins.lines[out],
            "reason": reasons[out].to_numpy(),
            "raw": frame.loc[out]
            .to_json(orient="records", lines=True, date_format="iso", default_handler=str)
            .splitlines()
            if out.any()
            else [],
        }
    )
    frame = frame.loc[~out].reset_index(drop=True)
    frame = lowercase_columns(derive_columns(frame, source), source)
    files = [FileRead(reference, len(frame) + len(rejects), "", len(rejects))]
    return SourceData(name, frame, source.key, source.time, files, rejects=rejects, origins=origins.take(~out))


def _all_renamed(raw: Any, source: SourceConfig) -> list[str]:
    """Every column of a table under its config name (the accounts pass all columns through)."""
    cleaned = clean_names(raw.columns)
    renames = renames_for(source, cleaned)
    return [renames.get(c, c) for c in cleaned]
