"""`engine: ibis`: a source's columns typed on its backend, as `coerce.py` types them in memory.

`Typer` compiles each column's conversion (keys to normalized text, times to UTC, `types`
to int, float, bool, string, date or datetime, CSV text columns whose every value is a
number to numbers), runs ONE probe aggregation counting rows, empty keys, missing times and
values that do not convert (per file where the backend knows files), and from what the
probe found builds the typed table, or a `DataError` listing values that do not convert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from healthscore.coerce import FALSE_TOKENS, TRUE_TOKENS, UNITS
from healthscore.errors import DataError, Problem
from healthscore.ibis_backends import FILE_COL, ROW_COL, backend_call
from healthscore.ibis_expr import column_kind
from healthscore.models import SourceConfig
from healthscore.presets import preset_of

__all__ = ["Typer"]

ID_LIKE = r"^([+-]?0\d|[+-]?\d{16,})"  # numbers that are identifiers, as coerce._looks_like_ids
UNITS_RE2 = UNITS.replace("\\u00a0", "\u00a0")  # RE2 (DuckDB) has no \u escapes


class Typer:
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
        examples = backend_call(
            "list bad values", self.name, lambda: self.rows.filter(bad).select(*shown).limit(5).to_pandas()
        )
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
