"""What `engine: ibis` accepts in a config: checked at load, without importing Ibis.

`engine_problems` reports, each at its key path, `table` / `connection` under the pandas
engine, a `table` without a connection, connection values that are not URLs, and every read
option the backends cannot honour for a source aggregated there (XLSX and JSON files,
encodings other than UTF-8, European numbers, multi-row headers, dedupe, Salesforce id
checksums, preset columns derived in Python). The accounts source, read in memory, keeps
every option. `checks.py` calls it through `ibis_engine`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from healthscore.errors import ConfigError, Problem
from healthscore.expr import parse
from healthscore.models import Config, SourceConfig
from healthscore.presets import derived_inputs, with_preset
from healthscore.readers import file_format

__all__ = ["NOT_HERE", "SCALE_EXTRA", "engine_problems", "source_columns"]

SCALE_EXTRA = "engine: ibis needs the scale extra: pip install 'healthscore[scale]'"
UTF8 = frozenset({"auto", "utf-8", "utf8", "utf-8-sig", "utf_8"})
NOT_HERE = "use engine: pandas, or load the data into the warehouse and give `table` and `connection`"
NOT_HERE_TABLE = "do it in a view on the backend, or export the table to a file and use engine: pandas"


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
