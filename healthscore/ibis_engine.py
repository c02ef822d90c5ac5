"""`engine: ibis`: each source's metrics aggregated where the data lives, through Ibis.

With `engine: ibis` the events, tickets and survey sources are not read into memory. Each
is opened as an Ibis table on a backend (by default an in-memory DuckDB over its files,
which aggregates files larger than memory; or `table:` on a `connection:` URL such as
duckdb://lake.db, pyspark://local[2], bigquery://project/dataset), typed there as the config
says, and all of its metrics are compiled into ONE grouped aggregation per source, run on
the backend. Only one row per account key comes back, to be joined, normalized and scored
in memory exactly as with the pandas engine. The accounts source (one row per account) is
read in memory as usual; a `table:` accounts source is fetched whole.

The semantics are `aggregate.py`'s, rule for rule: half-open windows `[cutoff - window,
cutoff)` with cutoff the midnight after as_of; missing versus zero; growth, days_since,
share, nps, first/last with their tie rule; `where` filters compiled by `ibis_expr`.

What the in-memory readers do that a backend cannot (report footers, repeated headers,
multi-row headers, XLSX and JSON files, encodings other than UTF-8, European number
formats, Salesforce id checksums, dedupe, derived preset columns) is refused at config load
by `engine_problems`, naming each source and option.

Ibis is imported lazily, in the functions that need it: `import healthscore` and the pandas
engine never import it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import importlib.util
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd

from healthscore.aggregate import COUNT_LIKE, NUMERIC_AGGS, cutoff_of, window_interval
from healthscore.coerce import FALSE_TOKENS, TRUE_TOKENS, UNITS, apply_types
from healthscore.errors import ConfigError, DataError, HealthscoreError, InputMissingError, Problem
from healthscore.expr import EMPTY, parse
from healthscore.ibis_expr import column_kind, compile_predicate
from healthscore.join import EXAMPLES, SourceJoin
from healthscore.keys import checked_keys
from healthscore.models import Config, MetricConfig, SourceConfig
from healthscore.presets import derive_columns, derived_inputs, lowercase_columns, preset_of, renames_for, with_preset
from healthscore.readers import clean_names, file_format
from healthscore.sources import EMPTY_KEY, FILE, LINE, NO_TIME, REJECTS_COLUMNS, FileRead, SourceData, source_files
from healthscore.textfile import sniff_delimiter

__all__ = [
    "SCALE_EXTRA",
    "Aggregated",
    "BackendSource",
    "Backends",
    "aggregate",
    "engine_problems",
    "join_stats",
    "open_source",
    "read_table_accounts",
]

SCALE_EXTRA = "engine: ibis needs the scale extra: pip install 'healthscore[scale]'"
MEMORY = "duckdb://"  # the connection of files when none is given: an in-memory DuckDB
REJECTS_KEPT = 1000  # rejected rows per source listed in rejects.csv (all are counted)
SNIFF_BYTES = 65536
FILE_COL, ROW_COL = "_hs_file", "_hs_row"  # where a row came from (DuckDB files only)
UTF8 = frozenset({"auto", "utf-8", "utf8", "utf-8-sig", "utf_8"})
ID_LIKE = r"^([+-]?0\d|[+-]?\d{16,})"  # numbers that are identifiers, as coerce._looks_like_ids
UNITS_RE2 = UNITS.replace("\\u00a0", "\u00a0")  # RE2 (DuckDB) has no \u escapes
NOT_HERE = "use engine: pandas, or load the data into the warehouse and give `table` and `connection`"
NOT_HERE_TABLE = "do it in a view on the backend, or export the table to a file and use engine: pandas"


# --- the config check ---------------------------------------------------------------------


def engine_problems(config: Config) -> list[Problem]:
    """Every config problem of the engine choice: `table` / `connection` without engine ibis,
    a table without a connection, and options engine ibis cannot honour, each at its key
    path. Imports nothing of Ibis (it only looks whether Ibis is installed)."""
    problems: list[Problem] = []
    if config.engine != "ibis":
        if config.connection is not None:
            problems.append(Problem("`connection` applies to engine: ibis", "connection", "add engine: ibis"))
        for name, source in config.sources.items():
            if source.table is not None:
                problems.append(
                    Problem(
                        "a `table` source needs engine: ibis",
                        f"sources.{name}.table",
                        f"add engine: ibis ({SCALE_EXTRA.split(': ', 1)[1]}), or export the table to a file",
                    )
                )
            if source.connection is not None:
                problems.append(Problem("`connection` applies to engine: ibis", f"sources.{name}.connection"))
        return problems
    if importlib.util.find_spec("ibis") is None:
        problems.append(Problem(SCALE_EXTRA, "engine", "or set engine: pandas"))
    for where, url in [("connection", config.connection)] + [
        (f"sources.{n}.connection", s.connection) for n, s in config.sources.items()
    ]:
        if url is not None and "://" not in url:
            problems.append(
                Problem(f"expected an Ibis URL like duckdb://lake.db, got {url!r}", where, "see docs/engines.md")
            )
    for name, source in config.sources.items():
        spine = name == config.accounts.source
        if source.table is not None and source.connection is None and config.connection is None:
            problems.append(
                Problem(
                    "a `table` needs a `connection`",
                    f"sources.{name}.table",
                    "add connection: duckdb://lake.db (or any Ibis URL) to the source or at the top level",
                )
            )
        if source.table is not None:
            problems += _file_options(name, source)
        if not spine:
            problems += _unsupported(config, name, source)
    return problems


_FILE_ONLY = ("format", "encoding", "delimiter", "na_values", "sheet", "skip_rows", "header_rows", "dedupe")


def _file_options(name: str, source: SourceConfig) -> list[Problem]:
    """Read options a table source sets, which apply to files only."""
    return [
        Problem(f"`{key}` applies to files, not to a `table`", f"sources.{name}.{key}", "remove it")
        for key in _FILE_ONLY
        if key in source.model_fields_set
    ]


def _unsupported(config: Config, name: str, own: SourceConfig) -> list[Problem]:
    """What engine ibis cannot do for a source aggregated on the backend, option by option."""
    source = with_preset(own)
    by_preset = f" (set by preset {own.preset})" if own.preset else ""
    found: list[tuple[str, str, bool]] = []  # (key, what, set by the preset)

    def refuse(key: str, what: str) -> None:
        by_preset = key not in own.model_fields_set
        if own.table is not None and (key in _FILE_ONLY or by_preset):
            return  # a table: file options are reported by _file_options, a preset's read options ignored
        found.append((key, what, by_preset))

    if not source.table:
        fmt = file_format(source, Path(source.path))
        if fmt in ("xlsx", "jsonl"):
            refuse("format", {"xlsx": "XLSX files", "jsonl": "JSON files"}[fmt])
        if source.encoding.lower() not in UTF8:
            refuse("encoding", f"encoding {source.encoding}")
    if source.decimal != ".":
        refuse("decimal", f'decimal: "{source.decimal}"')
    if source.thousands is not None:
        refuse("thousands", f'thousands: "{source.thousands}"')
    if source.skip_rows:
        refuse("skip_rows", "skip_rows")
    if source.header_rows != 1:
        refuse("header_rows", f"header_rows: {source.header_rows}")
    if source.sheet is not None:
        refuse("sheet", "sheet")
    if source.dedupe is not None:
        refuse("dedupe", "dedupe")
    if source.date_format.upper() != "ISO8601":
        refuse("date_format", f"date_format {source.date_format!r} (only ISO 8601 dates)")
    if "salesforce18" in source.key_transform:
        refuse("key_transform", "key_transform salesforce18")
    derived, _ = derived_inputs(source, source_columns(config, name))
    if derived:
        refuse("preset", f"the columns preset {own.preset} derives ({', '.join(sorted(derived))})")
    return [
        Problem(
            f"engine: ibis does not support {what}{by_preset if preset else ''}",
            f"sources.{name}.{key}",
            NOT_HERE if own.table is None else NOT_HERE_TABLE,
        )
        for key, what, preset in found
    ]


def source_columns(config: Config, name: str) -> set[str]:
    """The columns of source `name` its metrics use: fields and names in `where` / `of_rows`."""
    columns: set[str] = set()
    for metric in config.metrics.values():
        if metric.source != name:
            continue
        columns.update(c for c in (metric.field, metric.of.field if metric.of else None) if c)
        for text in (metric.where, metric.of_rows):
            if text:
                columns.update(_names(text))
    return columns


def _names(text: str) -> frozenset[str]:
    try:
        return parse(text).names
    except ConfigError:  # reported by the metric checks
        return frozenset()


# --- connections --------------------------------------------------------------------------


def require_ibis() -> Any:
    """The ibis module; a ConfigError saying how to install it when it is absent."""
    try:
        import ibis
    except ImportError:
        raise ConfigError(SCALE_EXTRA, [Problem(SCALE_EXTRA, "engine", "or set engine: pandas")]) from None
    return ibis


def shown_url(url: str) -> str:
    """A connection URL without its password or secret query values, for messages and the manifest."""
    url = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"([?&][^=&]*(?:password|secret|token|key)[^=&]*=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


class Backends:
    """The Ibis connections of one run, opened on first use and shared by URL. Files without
    a connection share one in-memory DuckDB."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.open: dict[str, Any] = {}

    def get(self, url: str | None) -> Any:
        """The backend of `url` (None: the in-memory DuckDB)."""
        key = url or MEMORY
        if key not in self.open:
            self.open[key] = self.connect(key)
        return self.open[key]

    def connect(self, url: str) -> Any:
        """Open a connection. duckdb://FILE is relative to the config file and opened read-only;
        pyspark://MASTER builds a Spark session (see docs/engines.md); any other URL goes to
        `ibis.connect`."""
        ibis = require_ibis()
        scheme, _, rest = url.partition("://")
        try:
            if scheme == "duckdb":
                path, _, query = rest.partition("?")
                options = dict(parse_qsl(query))
                if path in ("", ":memory:"):
                    return ibis.duckdb.connect(**options)
                database = self.config.resolve(path)
                if not database.is_file():
                    raise InputMissingError(
                        f"DuckDB database not found: {database}",
                        [Problem(f"connection {url!r}", hint="duckdb://FILE is relative to the config file")],
                    )
                return ibis.duckdb.connect(str(database), read_only=True, **options)
            if scheme == "pyspark":
                return ibis.pyspark.connect(_spark_session(rest))
            return ibis.connect(url)
        except HealthscoreError:
            raise
        except ImportError as exc:
            raise ConfigError(
                f"connection {shown_url(url)!r} needs a package that is not installed: {exc.name}",
                [Problem(str(exc), "connection", f"pip install 'ibis-framework[{scheme}]'")],
            ) from None
        except Exception as exc:  # each backend has its own errors
            raise InputMissingError(
                f"cannot connect to {shown_url(url)}",
                [Problem(_first_line(exc), "connection", "check the URL, the credentials and the network")],
            ) from None


def _spark_session(rest: str) -> Any:
    """A Spark session for pyspark://MASTER?conf=value: MASTER like local[2], spark://host:7077
    or yarn; sc://host:15002 is Spark Connect (Databricks Connect); empty takes the default."""
    from pyspark.sql import SparkSession

    master, _, query = rest.partition("?")
    builder = SparkSession.builder.appName("healthscore")
    if master.startswith("sc://"):
        builder = builder.remote(master)
    elif master:
        builder = builder.master(master)
    for key, value in parse_qsl(query):
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(what: str, source: str, fn: Any) -> Any:
    """Run a backend call; backend errors become a DataError naming the source."""
    try:
        return fn()
    except HealthscoreError:
        raise
    except Exception as exc:  # DuckDB, Spark and warehouses each raise their own errors
        raise DataError(
            f"source {source!r}: the backend could not {what}",
            [Problem(_first_line(exc), f"sources.{source}", "check the data; " + NOT_HERE)],
        ) from None


# --- a source on a backend ----------------------------------------------------------------


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


def open_source(config: Config, name: str, needed: Collection[str], backends: Backends) -> BackendSource:
    """Open a source on its backend with the columns `needed`: renamed, checked, typed and
    key-normalized there, its rows counted (per file where the backend says) and its
    rejected rows (empty key, missing time) counted and sampled. Nothing else is read."""
    own = config.sources[name]
    source = with_preset(own)
    url = own.connection or config.connection
    backend = backends.get(url)
    if own.table is not None:
        raw, paths, fmt = _run(f"open table {own.table}", name, lambda: _table(backend, own.table)), [], "table"
    else:
        paths = source_files(config, name)
        fmt = file_format(source, paths[0])
        raw = _run("read its files", name, lambda: _read_files(backend, paths, fmt, source, config, name))
    required = {source.key, *([source.time] if source.time else []), *own.types, *needed}
    rows = _renamed(raw, source, name, required, paths or [_reference(url, own.table)])
    typer = _Typer(name, source, rows, csv=fmt == "csv", numeric=_numeric_fields(config, name))
    stats = _run("count its rows", name, lambda: typer.probe())
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


def _table(backend: Any, name: str) -> Any:
    """A table by name; `db.table` or `catalog.db.table` name its database."""
    *database, table = name.split(".")
    if not database:
        return backend.table(table)
    return backend.table(table, database=tuple(database) if len(database) > 1 else database[0])


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


class _Typer:
    """Types a source's columns on the backend as `coerce.apply_types` does in memory.

    `probe()` runs one aggregation (per file, where the backend knows files) counting rows,
    empty keys, missing times, values that do not convert to their configured type, and for
    CSV text columns whether every value is a number (type inference); `typed()` then builds
    the typed table from what the probe found.
    """

    def __init__(self, name: str, source: SourceConfig, rows: Any, csv: bool, numeric: set[str]) -> None:
        import ibis

        self.ibis, self.name, self.source, self.rows, self.csv = ibis, name, source, rows, csv
        self.numeric = numeric
        self.na = [str(v) for v in source.na_values]
        self.columns = [c for c in rows.columns if c not in (FILE_COL, ROW_COL)]
        self.plan = self.conversions()

    def value(self, column: str) -> Any:
        """A raw column, with the CSV NA tokens as missing."""
        raw = self.rows[column]
        if self.csv and raw.type().is_string() and self.na:
            return self.ibis.cases((raw.isin(self.na), self.ibis.null().cast("string")), else_=raw)
        return raw

    def key(self) -> Any:
        """The key as text with `key_transform` applied; empty keys missing."""
        raw = self.value(self.source.key)
        dtype = raw.type()
        if dtype.is_floating():
            whole = ((raw % 1.0) == 0.0) & (raw.abs() < 2.0**63)
            text = self.ibis.cases((whole, raw.cast("int64").cast("string")), else_=raw.cast("string"))
        else:
            text = raw if dtype.is_string() else raw.cast("string")
        for transform in self.source.key_transform:
            text = {"strip": text.strip, "lower": text.lower, "upper": text.upper}[transform]()
        return text.nullif("")

    def conversion(self, column: str, kind: str) -> tuple[Any, Any | None]:
        """A column converted to `kind` (int, float, bool, string, date, datetime), and the
        mask of values that do not convert (None when none can fail)."""
        raw = self.value(column)
        dtype = raw.type()
        if kind == "string":
            return (raw if dtype.is_string() else raw.cast("string")), None
        if kind in ("int", "float"):
            if dtype.is_boolean() or dtype.is_numeric():
                number, bad = raw.cast("float64"), None
            elif dtype.is_string():
                text = raw.strip().re_replace(UNITS_RE2, "").nullif("")
                parsed = text.try_cast("float64")
                number = self.ibis.cases(
                    (parsed.isinf() | parsed.isnan(), self.ibis.null().cast("float64")), else_=parsed
                )
                bad = text.notnull() & number.isnull()
            else:
                return raw, raw.notnull()
            if kind == "float":
                return number, bad
            unfit = number.notnull() & (((number % 1.0) != 0.0) | (number.abs() >= 2.0**63))
            return number.cast("int64"), unfit if bad is None else (bad | unfit)
        if kind == "bool":
            if dtype.is_boolean():
                return raw, None
            text = raw.cast("string").strip().lower().nullif("")
            value = self.ibis.cases(
                (text.isin(sorted(TRUE_TOKENS)), True), (text.isin(sorted(FALSE_TOKENS)), False), else_=None
            ).cast("boolean")
            return value, text.notnull() & value.isnull()
        return self.times(raw, date_only=kind == "date")

    def times(self, raw: Any, date_only: bool, unit: str | None = None) -> tuple[Any, Any | None]:
        """Dates and times as UTC timestamps (naive ones taken as UTC, numbers as epoch times
        in `unit`), and the mask of values that are not dates."""
        dtype, bad = raw.type(), None
        utc = "timestamp('UTC')"
        if dtype.is_timestamp() or dtype.is_date():
            stamp = raw.cast(utc)
        elif dtype.is_numeric() and not dtype.is_boolean():
            micros = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}[unit or "s"]
            epoch = self.ibis.literal(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), type=utc)
            stamp = epoch + (raw.cast("float64") * micros).round().cast("int64").as_interval("us")
        elif dtype.is_string():
            text = raw.strip().nullif("")
            stamp = text.try_cast(utc)
            bad = text.notnull() & stamp.isnull()
        else:
            return raw, raw.notnull()
        return (stamp.truncate("D") if date_only else stamp), bad

    def conversions(self) -> dict[str, tuple[str, Any, Any | None]]:
        """Per typed column: its kind, its converted expression and its bad-value mask."""
        types = dict(self.source.types)
        types.pop(self.source.key, None)  # keys are always text
        time = self.source.time
        plan: dict[str, tuple[str, Any, Any | None]] = {}
        for column in self.columns:
            if column == self.source.key:
                continue
            if column == time:
                kind = types.get(column, "datetime")
                raw = self.value(column)
                if kind in ("int", "float") and raw.type().is_string():
                    number, _ = self.conversion(column, "float")
                    plan[column] = ("epoch", number, raw.strip().nullif("").notnull() & number.isnull())
                elif raw.type().is_numeric() and not raw.type().is_boolean():
                    plan[column] = ("epoch", raw.cast("float64"), None)
                else:
                    stamp, bad = self.times(raw, date_only=kind == "date")
                    plan[column] = (kind if kind == "date" else "datetime", stamp, bad)
            elif column in types:
                converted, bad = self.conversion(column, types[column])
                plan[column] = (types[column], converted, bad)
        return plan

    def candidates(self, plan: Mapping[str, object]) -> list[str]:
        """CSV text columns without a type: numbers if every value is one (type inference)."""
        if not self.csv:
            return []
        return [c for c in self.columns if c != self.source.key and c not in plan]

    def probe(self) -> pd.DataFrame:
        """One aggregation over the source (per file where known): rows, empty keys, missing
        times, bad values per typed column, inference facts, epoch sizes."""
        plan = self.plan
        key = self.key()
        rows, ibis = self.rows, self.ibis
        aggs: dict[str, Any] = {"_rows": rows.count(), "_no_key": rows.count(where=key.isnull())}
        time = self.source.time
        if time is not None:
            kind, stamp, _ = plan[time]
            aggs["_no_time"] = rows.count(where=key.notnull() & stamp.isnull())
            if kind == "epoch":
                aggs["epoch"] = stamp.abs().max()
        else:
            aggs["_no_time"] = rows.count(where=ibis.literal(False))
        for i, (_, _, bad) in enumerate(plan.values()):
            if bad is not None:
                aggs[f"bad{i}"] = rows.count(where=bad)
        for i, column in enumerate(self.candidates(plan)):
            text = self.value(column).strip()
            filled = text.notnull() & (text != "")
            parsed = text.try_cast("float64")
            aggs[f"filled{i}"] = rows.count(where=filled)
            aggs[f"notnum{i}"] = rows.count(where=filled & (parsed.isnull() | parsed.isinf() | parsed.isnan()))
            aggs[f"idlike{i}"] = rows.count(where=text.re_search(ID_LIKE))
        for i, column in enumerate(sorted(self.numeric)):
            if column in self.columns and self.value(column).type().is_string():
                aggs[f"values{i}"] = rows.count(where=self.value(column).notnull())
        grouped = rows.group_by(FILE_COL) if FILE_COL in rows.columns else rows
        result: pd.DataFrame = grouped.aggregate(**aggs).to_pandas()
        return result

    def empty_text(self, stats: pd.DataFrame) -> frozenset[str]:
        """Text columns read by numeric aggregates that hold no value (missing numbers)."""
        return frozenset(
            column
            for i, column in enumerate(sorted(self.numeric))
            if f"values{i}" in stats.columns and int(stats[f"values{i}"].sum()) == 0
        )

    def typed(self, stats: pd.DataFrame) -> tuple[Any, dict[str, str]]:
        """The typed table (key, time and every column as the config says, CSV numbers
        inferred, preset categories lower-cased, float NaN as missing) and the column kinds.
        A DataError lists values that do not convert, as the pandas engine does."""
        plan, ibis = self.plan, self.ibis
        problems = []
        for i, (column, (kind, _, bad)) in enumerate(plan.items()):
            count = int(stats[f"bad{i}"].sum()) if f"bad{i}" in stats.columns else 0
            if count:
                problems.append(self.bad_values(column, kind, bad, count))
        if problems:
            raise DataError(f"source {self.name!r}: {len(problems)} column(s) hold values of the wrong type", problems)
        columns: dict[str, Any] = {self.source.key: self.key()}
        for column, (kind, converted, _) in plan.items():
            if kind == "epoch":
                largest = float(stats["epoch"].max()) if "epoch" in stats.columns else float("nan")
                converted, _ = self.times(converted, date_only=False, unit=_epoch_unit(largest))
            columns[column] = converted
        for i, column in enumerate(self.candidates(plan)):
            text = self.value(column)
            numbers = (
                int(stats[f"filled{i}"].sum()) > 0
                and int(stats[f"notnum{i}"].sum()) == 0
                and int(stats[f"idlike{i}"].sum()) == 0
            )
            columns[column] = text.strip().nullif("").try_cast("float64") if numbers else text
        for column in self.columns:
            columns.setdefault(column, self.value(column))
        preset = preset_of(self.source)
        for column in preset.lowercase if preset else ():
            if column in columns and column not in self.source.types and columns[column].type().is_string():
                columns[column] = columns[column].lower()
        for column, value in columns.items():
            if value.type().is_floating():
                columns[column] = ibis.cases((value.isnan(), ibis.null().cast("float64")), else_=value)
        columns.update({c: self.rows[c] for c in (FILE_COL, ROW_COL) if c in self.rows.columns})
        table = self.rows.select(**columns)
        kinds = {c: column_kind(table[c].type()) for c in columns if c not in (FILE_COL, ROW_COL)}
        return table, kinds

    def bad_values(self, column: str, kind: str, bad: Any, count: int) -> Problem:
        """The problem of a column with values that do not convert, with a few of them."""
        shown = [self.rows[column].cast("string").name("value")]
        if FILE_COL in self.rows.columns:
            shown.append(self.rows[FILE_COL].name("file"))
        examples = _run("list bad values", self.name, lambda: self.rows.filter(bad).select(*shown).limit(5).to_pandas())
        listed = "; ".join(
            (f"{Path(str(row['file'])).name}: " if "file" in examples.columns else "") + repr(row["value"])
            for row in examples.to_dict(orient="records")
        )
        kind = "datetime" if kind == "epoch" else kind
        hint = (
            "write dates in ISO 8601 (2026-01-31, 2026-01-31T12:00:00Z); for other formats use engine: pandas"
            if kind in ("date", "datetime")
            else "fix the values, or type the column as string"
        )
        return Problem(f"{count} value(s) of column {column!r} are not {kind}: {listed}", column, hint)


def _epoch_unit(largest: float) -> str:
    """The unit of epoch times by their size, as `coerce.epoch_unit`."""
    for unit, limit in (("s", 1e11), ("ms", 1e14), ("us", 1e17)):
        if not largest >= limit:
            return unit
    return "ns"


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


def _rejects(name: str, typer: _Typer, label: str) -> pd.DataFrame:
    """The first REJECTS_KEPT rows without a key or a time, in file and row order where the
    backend knows them, as rejects.csv rows: `raw` is the row's columns as read, as JSON;
    `line` the Parquet row number (0 where the backend does not number rows, as for CSV)."""
    rows, key = typer.rows, typer.key()
    time = typer.source.time
    no_time = typer.plan[time][1].isnull() if time is not None else typer.ibis.literal(False)
    data_columns = [c for c in rows.columns if c not in (FILE_COL, ROW_COL)]
    order = [c for c in (FILE_COL, ROW_COL) if c in rows.columns] + data_columns
    query = rows.filter(key.isnull() | no_time).mutate(_hs_no_key=key.isnull()).order_by(order).limit(REJECTS_KEPT)
    found = _run("list its rejected rows", name, lambda: query.to_pandas())
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
    raw = _run(f"open table {own.table}", name, lambda: _table(backends.get(url), str(own.table)))
    derived, inputs = derived_inputs(source, needed)
    required = {source.key, *([source.time] if source.time else []), *own.types, *inputs, *(set(needed) - derived)}
    renamed = _renamed(raw, source, name, set(_all_renamed(raw, source)) | required, [reference])
    frame = _run("fetch the accounts", name, lambda: renamed.order_by(source.key).to_pandas())
    frame = frame.reset_index(drop=True)
    frame[FILE], frame[LINE] = 0, np.arange(1, len(frame) + 1, dtype=np.int64)
    frame = apply_types(frame, source.types, source, [reference], infer=False, name=name)
    keys, bad_ids = checked_keys(frame[source.key], source.key_transform)
    reasons = pd.Series(None, index=frame.index, dtype="object")
    reasons[keys.isna().to_numpy()] = EMPTY_KEY
    reasons[keys.notna().to_numpy() & bad_ids.to_numpy()] = "invalid salesforce id"
    frame[source.key] = keys
    out = reasons.notna().to_numpy()
    data_columns = [c for c in frame.columns if c not in (FILE, LINE)]
    rejects = pd.DataFrame(
        {
            "source": name,
            "file": reference,
            "line": frame.loc[out, LINE].to_numpy(),
            "reason": reasons[out].to_numpy(),
            "raw": frame.loc[out, data_columns]
            .to_json(orient="records", lines=True, date_format="iso", default_handler=str)
            .splitlines()
            if out.any()
            else [],
        }
    )
    frame = frame.loc[~out].reset_index(drop=True)
    frame = lowercase_columns(derive_columns(frame, source), source)
    files = [FileRead(reference, len(frame) + len(rejects), "", len(rejects))]
    return SourceData(name, frame, source.key, source.time, files, rejects=rejects)


def _all_renamed(raw: Any, source: SourceConfig) -> list[str]:
    """Every column of a table under its config name (the accounts pass all columns through)."""
    cleaned = clean_names(raw.columns)
    renames = renames_for(source, cleaned)
    return [renames.get(c, c) for c in cleaned]


# --- the aggregation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Aggregated:
    """What one backend aggregation brings back: the metrics (one row per account key with
    rows up to as_of, like `aggregate_source`), and the rows of every key (for the join)."""

    metrics: pd.DataFrame
    key_rows: pd.Series


def aggregate(data: BackendSource, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> Aggregated:
    """Every metric of one source in ONE grouped query on its backend (with one window column
    per first/last metric), one row per key back; the same values as `aggregate_source`."""
    query = _Query(data, metrics, as_of)
    fetched = _run("aggregate its metrics", data.name, query.fetch)
    return query.finish(fetched)


class _Query:
    """The aggregation of one source: each metric as filtered aggregates over its rows."""

    def __init__(self, data: BackendSource, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> None:
        import ibis

        self.ibis, self.data, self.metrics, self.as_of = ibis, data, metrics, as_of
        table = data.table
        valid = table[data.key].notnull()
        if data.time is not None:
            valid = valid & table[data.time].notnull()
        rows = table.filter(valid)
        edges = self.edges(rows)
        self.rows = rows.mutate(**edges) if edges else rows
        self.aggs: dict[str, Any] = {"_rows": self.rows.count()}
        if data.time is not None:
            self.aggs["_present"] = self.rows.count(where=self.in_time(self.rows))
        for i, (name, metric) in enumerate(metrics.items()):
            self.add(f"m{i}", name, metric)

    # --- conditions ---------------------------------------------------------------------

    def stamp(self, value: pd.Timestamp) -> Any:
        """A naive UTC time as a literal of the tables' time type."""
        return self.ibis.literal(value.tz_localize("UTC").to_pydatetime(), type="timestamp('UTC')")

    def in_time(self, rows: Any) -> Any:
        """Rows up to as_of: before the midnight after it."""
        return rows[str(self.data.time)] < self.stamp(cutoff_of(self.as_of))

    def window(self, rows: Any, window: str | None, periods_back: int = 0) -> Any:
        """Rows up to as_of, and within the window (or the window `periods_back` before it)."""
        condition = self.in_time(rows) if self.data.time is not None else self.ibis.literal(True)
        interval = window_interval(window, self.as_of, periods_back)
        if interval is not None and self.data.time is not None:
            time = rows[self.data.time]
            condition = condition & (time >= self.stamp(interval[0])) & (time < self.stamp(interval[1]))
        return condition

    def mask(self, rows: Any, text: str | None, where: str) -> Any:
        """A `where` / `of_rows` filter compiled for the backend; errors name the source."""
        if text is None:
            return self.ibis.literal(True)
        try:
            return compile_predicate(text, rows, self.data.kinds)
        except DataError as exc:
            hint = f"check the columns' types in sources.{self.data.name}.types"
            raise DataError(
                exc.message, [*exc.problems, Problem(f"in source {self.data.name!r}", where, hint)]
            ) from None

    def rows_of(self, rows: Any, name: str, metric: MetricConfig, periods_back: int = 0) -> Any:
        """The rows a metric aggregates: up to as_of, in its window, matching `where`."""
        return self.window(rows, metric.window, periods_back) & self.mask(rows, metric.where, f"metrics.{name}.where")

    # --- first / last -------------------------------------------------------------------

    def edges(self, rows: Any) -> dict[str, Any]:
        """Per first/last metric, each key's earliest (first) or latest (last) time among its
        rows with a value, as a window column (the tie rule needs the rows at that time)."""
        edges = {}
        window = self.ibis.window(group_by=rows[self.data.key])
        for i, (name, metric) in enumerate(self.metrics.items()):
            if metric.agg in ("first", "last"):
                value = rows[str(metric.field)]
                chosen = self.rows_of(rows, name, metric) & value.notnull()
                times = self.ibis.cases((chosen, rows[str(self.data.time)]), else_=self.ibis.null())
                edge = times.min() if metric.agg == "first" else times.max()
                edges[f"_edge{i}"] = edge.over(window)
        return edges

    # --- the aggregates -----------------------------------------------------------------

    def numbers(self, name: str, metric: MetricConfig, column: str, agg: str) -> Any:
        """A numeric field as float64 (true/false as 1/0, a text column without values as
        missing); a DataError like `aggregate._numeric` for text and dates."""
        value = self.rows[column]
        dtype = value.type()
        if dtype.is_boolean():
            return value.cast("int64").cast("float64")
        if dtype.is_numeric():
            return value.cast("float64")
        if column in self.data.empty_text or column_kind(dtype) == EMPTY:
            return self.ibis.null().cast("float64")
        dates = dtype.is_timestamp() or dtype.is_date()
        shown = _run(
            "list values",
            self.data.name,
            lambda: self.rows.filter(value.notnull()).select(value.cast("string").name("v")).limit(3).to_pandas(),
        )
        hint = f"set sources.{self.data.name}.types: {{{column}: float}}, or pick a numeric field"
        raise DataError(
            f"metric {name!r}: agg {agg} needs numbers, but column {column!r} of source {self.data.name!r} "
            f"holds {'dates' if dates else 'text'}",
            [
                Problem(
                    f"e.g. {shown['v'].astype('str').tolist()}",
                    f"metrics.{name}.field",
                    "for dates use agg days_since, or pick a numeric field" if dates else hint,
                )
            ],
        )

    def add(self, out: str, name: str, metric: MetricConfig) -> None:
        """The aggregates of one metric, named `out` or `out:part`."""
        rows, agg = self.rows, str(metric.agg)
        if agg == "value":
            when = self.in_time(rows) if self.data.time is not None else self.ibis.literal(True)
            self.aggs[out] = rows[str(metric.field)].max(where=when)
            return
        if agg == "growth":
            assert metric.of is not None
            field = None if metric.of.agg == "count" else metric.of.field
            inner = MetricConfig(source=metric.source, agg=metric.of.agg, field=field, where=metric.where)
            for part, back in (("now", 0), ("before", 1)):
                chosen = self.window(rows, metric.window, back) & self.mask(rows, metric.where, f"metrics.{name}.where")
                self.aggs[f"{out}:{part}"] = self.simple(name, inner, chosen)
            return
        chosen = self.rows_of(rows, name, metric)
        if agg == "share":
            of_rows = self.mask(rows, metric.of_rows, f"metrics.{name}.of_rows")
            self.aggs[f"{out}:n"] = rows.count(where=chosen)
            self.aggs[f"{out}:k"] = rows.count(where=chosen & of_rows)
        elif agg == "nps":
            score = self.numbers(name, metric, str(metric.field), "nps")
            answered = chosen & score.notnull()
            self.aggs[f"{out}:n"] = rows.count(where=answered)
            self.aggs[f"{out}:p"] = rows.count(where=answered & (score >= 9))
            self.aggs[f"{out}:d"] = rows.count(where=answered & (score <= 6))
            self.aggs[f"{out}:bad"] = rows.count(where=answered & ((score < 0) | (score > 10)))
        elif agg == "days_since":
            self.aggs[out] = rows[str(self.data.time)].max(where=chosen)
        elif agg in ("first", "last"):
            value = rows[str(metric.field)]
            edge = rows[f"_edge{out.removeprefix('m')}"]
            at_edge = chosen & value.notnull() & (rows[str(self.data.time)] == edge)
            self.aggs[out] = value.min(where=at_edge) if agg == "first" else value.max(where=at_edge)
        else:
            self.aggs[out] = self.simple(name, metric, chosen)

    def simple(self, name: str, metric: MetricConfig, chosen: Any) -> Any:
        """count, sum, mean, median, min, max or nunique over the `chosen` rows."""
        agg, rows = str(metric.agg), self.rows
        if agg == "count":
            return rows.count(where=chosen)
        if agg == "nunique":
            return rows[str(metric.field)].nunique(where=chosen)
        values = self.numbers(name, metric, str(metric.field), agg)
        if agg == "median":  # the values outside the rows as missing: Ibis' PySpark median mishandles `where`
            return self.ibis.cases((chosen, values), else_=self.ibis.null().cast("float64")).median()
        return getattr(values, agg)(where=chosen)

    # --- running it and reading the result ----------------------------------------------

    def fetch(self) -> pd.DataFrame:
        """Run the query: one row per key with rows (and `_key`, `_rows`, `_present`)."""
        key = self.data.key
        fetched: pd.DataFrame = self.rows.group_by(self.rows[key].name("_key")).aggregate(**self.aggs).to_pandas()
        return fetched

    def finish(self, fetched: pd.DataFrame) -> Aggregated:
        """The per-key result as `aggregate_source` gives it: keys with rows up to as_of, sorted;
        count-like aggregates 0 where no row matched; nps, share, growth and days_since derived."""
        fetched = fetched.sort_values("_key", kind="stable").set_index("_key")
        key_rows = fetched["_rows"].astype("int64").rename_axis("account_id").rename("rows")
        present = fetched["_present"] if "_present" in fetched.columns else fetched["_rows"]
        grouped = fetched.loc[present.to_numpy() > 0]
        index = pd.Index(grouped.index.astype("str"), name="account_id")
        grouped.index = index
        result = pd.DataFrame(index=index)
        for i, (name, metric) in enumerate(self.metrics.items()):
            result[name] = self.value(grouped, present.loc[grouped.index.to_numpy()], f"m{i}", name, metric)
        return Aggregated(result[list(self.metrics)], key_rows)

    def value(self, grouped: pd.DataFrame, present: pd.Series, out: str, name: str, metric: MetricConfig) -> pd.Series:
        """One metric's per-key values from its aggregates (`out`, `out:part`), as `_finish`."""
        agg = metric.agg
        if agg == "value":
            self.check_single(present, name)
            return _plain(grouped[out])
        if agg == "nps":
            n, p, d = (grouped[f"{out}:{k}"].astype("float64") for k in "npd")
            self.check_nps(int(grouped[f"{out}:bad"].sum()), name, metric)
            return 100.0 * (p - d) / n.where(n > 0)
        if agg == "share":
            n, k = grouped[f"{out}:n"].astype("float64"), grouped[f"{out}:k"].astype("float64")
            return k / n.where(n > 0)
        if agg == "days_since":
            latest = pd.to_datetime(grouped[out], utc=True).dt.tz_convert(None).dt.normalize()
            return (pd.Timestamp(self.as_of) - latest).dt.days.astype("float64")
        if agg == "growth":
            assert metric.of is not None
            now, before = (self.inner(grouped[f"{out}:{part}"], metric.of.agg) for part in ("now", "before"))
            base = before.where(before != 0)
            return (now - before) / base.abs()
        return self.inner(grouped[out], str(agg)) if agg != "first" and agg != "last" else _plain(grouped[out])

    @staticmethod
    def inner(values: pd.Series, agg: str) -> pd.Series:
        """A simple aggregate's values as floats; count-like ones 0 where nothing matched."""
        numbers = pd.to_numeric(values).astype("float64")
        return numbers.fillna(0.0) if agg in COUNT_LIKE else numbers

    def check_single(self, present: pd.Series, name: str) -> None:
        """agg value needs one row per account (up to as_of), as `aggregate._value_column`."""
        repeated = present[present > 1]
        if len(repeated):
            raise DataError(
                f"metric {name!r}: agg value needs one row per account, but source {self.data.name!r} has several",
                [
                    Problem(
                        f"{len(repeated)} key(s) repeat, e.g. {list(repeated.index[:5])}",
                        f"metrics.{name}.agg",
                        "use agg last (by time), mean or max instead of value",
                    )
                ],
            )

    def check_nps(self, outside: int, name: str, metric: MetricConfig) -> None:
        """NPS scores outside 0..10 are a DataError, as `aggregate._nps_inputs` says."""
        if not outside:
            return
        score = self.numbers(name, metric, str(metric.field), "nps")
        chosen = self.rows_of(self.rows, name, metric) & ((score < 0) | (score > 10))
        found = _run(
            "list NPS scores",
            self.data.name,
            lambda: self.rows.filter(chosen).select(score.name("s")).distinct().order_by("s").limit(5).to_pandas(),
        )
        raise DataError(
            f"metric {name!r}: agg nps needs scores from 0 to 10, but column {metric.field!r} of source "
            f"{self.data.name!r} has {outside} outside that range",
            [
                Problem(
                    f"e.g. {found['s'].astype('float64').tolist()}",
                    f"metrics.{name}.field",
                    "check the column; for another scale use agg mean, or share with of_rows",
                )
            ],
        )


def _plain(values: pd.Series) -> pd.Series:
    """Backend values as the pandas engine holds them: times naive UTC, the rest as they come."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        naive: pd.Series = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return naive
    return values


def join_stats(name: str, key_rows: pd.Series, accounts: pd.Index) -> SourceJoin:
    """How a backend source's keys met the spine, from its rows per key (as `join._join_stats`)."""
    matched = key_rows.index.isin(accounts)
    unmatched = key_rows[~matched]
    examples = tuple(sorted(unmatched.index.astype("str").tolist())[:EXAMPLES])
    return SourceJoin(name, len(key_rows), int(matched.sum()), len(unmatched), int(unmatched.sum()), examples)
