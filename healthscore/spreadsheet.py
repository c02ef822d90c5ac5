"""Spreadsheet outputs: formula-injection defence for CSV, and the XLSX workbook.

`neutralize_formulas` prefixes text that a spreadsheet would run as a formula with `'`
(OWASP ASVS 1.2.10, CWE-1236). `xlsx_bytes` writes the Scores, Summary and Drivers
sheets. openpyxl builds the workbook (styles, header rows, frozen panes, filters,
widths, the Summary sheet); the data rows of the two big sheets are rendered column by
column with pandas string operations and streamed into openpyxl's sheet files in
chunks, which is many times faster than one openpyxl cell object per value. Every text
cell is stored as text, never as a formula; text Excel cannot hold is repaired and
counted; the same input gives the same bytes (fixed document and zip entry times).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from healthscore.config import Config
from healthscore.errors import Problem
from healthscore.explain import MIN_POINTS, ranked_drivers
from healthscore.pipeline import RunResult
from healthscore.summary import Summary

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_CELL_CHARS = 32_767  # Excel's limit for one cell
# what XML 1.0 and so Excel cannot hold: C0 controls but tab, LF and CR; U+FFFE, U+FFFF. The
# characters themselves, not escapes: pyarrow's RE2 reads them, and Python's `re` is far slower
CONTROL_CHARACTERS = "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"
SCORE_FORMAT, SHARE_FORMAT, MONEY_FORMAT = "0.0", "0.0%", "#,##0"
DATE_FORMATS = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss"}
# light fills (the pastel row of the common spreadsheet palettes) so black text stays readable
FILLS = {
    "red": "F4CCCC",
    "orange": "FCE5CD",
    "yellow": "FFF2CC",
    "green": "D9EAD3",
    "blue": "CFE2F3",
    "purple": "D9D2E9",
    "grey": "E0E0E0",
    "gray": "E0E0E0",
}
CORE_LABELS = {"account_id": "Account ID"}  # other columns of the scorer: "health_score" -> "Health score"
REPAIRS = {  # kind of repair: (warning, hint)
    "control": ("cell(s) held control characters, stripped", "Excel cannot store them; clean the source"),
    "long": (f"cell(s) were longer than {MAX_CELL_CHARS:,} characters, truncated", "Excel's limit per cell"),
}
WIDTH_SAMPLE, MIN_WIDTH, MAX_WIDTH, NUMBER_WIDTH = 1_000, 8, 60, 11
CHUNK_ROWS = 10_000
EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # serial day 0 for dates from 1900-03-01 on
FIRST_SERIAL = 61  # 1900-03-01; Excel's day numbers before it count a 29 February 1900 that never was
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
ZIP64_FROM = 1 << 30  # estimated sheet bytes above which zip64 is used (Excel dislikes it needlessly)
CELL_XML_BYTES = 48  # markup around one value, for that estimate
Rows = tuple[int, Iterator[bytes]]  # a sheet's estimated size and its data rows as XML chunks


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and header names starting with = + - @ tab or CR
    begin with `'`, so spreadsheets show them as text; numbers and missing values are kept."""
    out = frame.copy()
    for position in range(out.shape[1]):
        out.isetitem(position, _change_text(out.iloc[:, position], _escape)[0].array)
    out.columns = pd.Index([f"'{c}" if isinstance(c, str) and c.startswith(FORMULA_STARTS) else c for c in out.columns])
    return out


def count_formula_cells(frame: pd.DataFrame) -> int:
    """How many text cells and header names `neutralize_formulas` would change."""
    cells = sum(_change_text(frame.iloc[:, i], _escape)[1] for i in range(frame.shape[1]))
    return cells + sum(isinstance(c, str) and c.startswith(FORMULA_STARTS) for c in frame.columns)


def _escape(texts: pd.Series) -> pd.Series:
    return texts.where(~texts.str.startswith(FORMULA_STARTS), "'" + texts)


def _change_text(values: pd.Series, change: Callable[[pd.Series], pd.Series]) -> tuple[pd.Series, int]:
    """`change` applied to the text cells of a column (other cells kept); the column and the cells changed."""
    if not pd.api.types.is_string_dtype(values.dtype) or values.empty:
        return values, 0
    if isinstance(values.dtype, pd.StringDtype | pd.ArrowDtype):
        is_text = values.notna().to_numpy()
    else:  # an object column may mix text with numbers and dates
        is_text = values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    texts = values[is_text].astype("str").reset_index(drop=True)
    changed = change(texts)
    differs = (changed != texts).to_numpy(dtype=bool)
    if not differs.any():
        return values, 0
    out = values.copy()
    out.iloc[np.flatnonzero(is_text)[differs]] = changed[differs].to_numpy(dtype=object)
    return out, int(differs.sum())


def labelled_columns(table: pd.DataFrame, config: Config) -> dict[str, str]:
    """Each column of a scored table and its human header (metric and group labels from the
    config, words for the scorer's own columns, CRM columns as named); headers are unique."""
    labels: dict[str, str] = {}
    for col in table.columns:
        name = str(col)
        if name in config.accounts.columns:
            label = name
        elif name in config.metrics:
            label = config.metric_label(name)
        elif name.endswith("_score") and name.removesuffix("_score") in config.metrics:
            label = f"{config.metric_label(name.removesuffix('_score'))} (0-10)"
        elif name.startswith("group_") and name.removeprefix("group_") in config.groups:
            label = f"{config.group_label(name.removeprefix('group_'))} (0-100)"
        else:
            label = CORE_LABELS.get(name, name.replace("_", " ").capitalize())
        labels[name] = label if label not in labels.values() else f"{label} ({name})"
    return labels


def score_columns(table: pd.DataFrame, config: Config) -> list[str]:
    """The columns of a scored table that hold 0..100 or 0..10 scores (shown with one decimal)."""
    scores = {"health_score", "computed_score", "previous_score", "score_change"}
    scores.update(f"group_{g}" for g in config.groups)
    scores.update(f"{m}_score" for m in config.metrics)
    return [c for c in table.columns if c in scores]


def drivers_frame(result: RunResult, config: Config, *, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per account of the table: key, name, score, segment and the metrics costing the most points
    (label, 0..10 score, points lost; most first), chosen as `explain.top_drivers` chooses them."""
    table = result.table if table is None else table
    keep = ["account_id", *[c for c in (config.accounts.name,) if c and c in table.columns]]
    frame = table[[*keep, "health_score", "segment"]].reset_index(drop=True)
    if result.points_lost is None or result.metric_scores is None or not len(result.points_lost.columns):
        return frame
    keys = pd.Index(table["account_id"].astype("str"))
    lost = result.points_lost.set_axis(result.points_lost.index.astype("str")).reindex(keys)
    metric_scores = result.metric_scores[lost.columns]
    scores = metric_scores.set_axis(metric_scores.index.astype("str")).reindex(keys)
    order, points, top_scores = ranked_drivers(lost.fillna(0.0), scores)  # the choice top_drivers makes
    labels = np.array([config.metric_label(c) if c in config.metrics else str(c) for c in lost.columns], dtype=object)
    for rank in range(order.shape[1]):
        shown = pd.Series(points[:, rank] >= MIN_POINTS)
        frame[f"driver_{rank + 1}"] = pd.Series(labels[order[:, rank]], dtype="str").where(shown)
        frame[f"driver_{rank + 1}_score"] = pd.Series(top_scores[:, rank]).round(1).where(shown)
        frame[f"driver_{rank + 1}_points_lost"] = pd.Series(points[:, rank]).round(1).where(shown)
    return frame


class _Repairs:
    """Text Excel cannot hold, changed to fit and counted per kind and sheet for the run's warnings."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {kind: {} for kind in REPAIRS}

    def column(self, values: pd.Series, sheet: str) -> pd.Series:
        """The column with control characters stripped and long text cut, changes counted."""
        values, stripped = _change_text(values, lambda t: t.str.replace(CONTROL_CHARACTERS, "", regex=True))
        values, cut = _change_text(values, lambda t: t.str.slice(0, MAX_CELL_CHARS))
        for kind, count in (("control", stripped), ("long", cut)):
            if count:
                self.counts[kind][sheet] = self.counts[kind].get(sheet, 0) + count
        return values

    def frame(self, frame: pd.DataFrame, sheet: str) -> pd.DataFrame:
        """Every cell of the frame repaired (the header is repaired where it is written)."""
        out = frame.copy()
        for position in range(out.shape[1]):
            out.isetitem(position, self.column(out.iloc[:, position], sheet).array)
        return out

    def texts(self, texts: list[str], sheet: str) -> list[str]:
        """A list of text repaired."""
        return [str(t) for t in self.column(pd.Series(texts, dtype="str"), sheet).tolist()]

    def problems(self) -> list[Problem]:
        """One warning per kind of repair made."""
        return [
            Problem(
                f"{sum(sheets.values())} {REPAIRS[kind][0]}", ", ".join(f"{s} sheet" for s in sheets), REPAIRS[kind][1]
            )
            for kind, sheets in self.counts.items()
            if sheets
        ]


def xlsx_bytes(
    result: RunResult, config: Config, allow_formulas: bool = False, labels: bool = False
) -> tuple[bytes, list[Problem]]:
    """The run as an .xlsx workbook (Scores, Summary, Drivers), and one warning per kind of cell
    that had to change to fit Excel (control characters stripped, text over 32,767 cut)."""
    repairs = _Repairs()
    table = repairs.frame(result.table, "Scores")
    names = labelled_columns(table, config) if labels else {str(c): str(c) for c in table.columns}
    colors = table["color"] if "color" in table.columns else None
    workbook = Workbook(write_only=True)
    workbook.properties.created = workbook.properties.modified = dt.datetime.combine(result.as_of, dt.time())
    workbook.properties.creator = "healthscore"
    headers = repairs.texts([names[str(c)] for c in table.columns], "Scores")
    scores = score_columns(table, config)
    rows = {"Scores": _table_sheet(workbook, "Scores", table, headers, scores, colors, allow_formulas)}
    _write_summary(workbook.create_sheet("Summary"), result.summary, repairs)
    drivers = drivers_frame(result, config, table=table)
    for col in drivers.columns[drivers.columns.str.fullmatch(r"driver_\d+")]:
        drivers[col] = repairs.column(drivers[col], "Drivers")
    headers = [_driver_header(str(c), names) if labels else str(c) for c in drivers.columns]
    numbers = [c for c in drivers.columns if c == "health_score" or re.fullmatch(r"driver_\d+_(score|points_lost)", c)]
    rows["Drivers"] = _table_sheet(workbook, "Drivers", drivers, headers, numbers, colors, allow_formulas)
    return _save(workbook, rows), repairs.problems()


def _driver_header(column: str, names: dict[str, str]) -> str:
    """The human header of a Drivers sheet column."""
    match = re.fullmatch(r"driver_(\d+)(_score|_points_lost)?", column)
    if match is None:
        return names.get(column, column)
    suffix = {"_score": " score (0-10)", "_points_lost": " points lost"}.get(match.group(2) or "", "")
    return f"Driver {match.group(1)}{suffix}"


def _proto(ws: Any, **style: Any) -> Any:
    """An empty openpyxl cell carrying a style (font, fill, number_format); its `style_id`
    registers the style in the workbook, for the rows written as XML."""
    cell = WriteOnlyCell(ws)
    for name, value in style.items():
        setattr(cell, name, value)
    return cell


def _styled(ws: Any, text: bool = False, **style: Any) -> Callable[[Any], Any]:
    """A maker of openpyxl cells sharing one style; with `text`, never a formula or an error code."""

    def make(value: Any) -> Any:
        cell = _proto(ws, **style)
        cell.value = value
        if text:
            cell.data_type = "s"
        return cell

    return make


def _fill(color: str) -> PatternFill | None:
    """A light fill for a colour name, or the colour itself for #RRGGBB; None for other colours."""
    name = color.strip().lower()
    code = FILLS.get(name) or (name[1:] if re.fullmatch(r"#[0-9a-f]{6}", name) else None)
    return None if code is None else PatternFill(fill_type="solid", start_color=code.upper(), end_color=code.upper())


def _widths(frame: pd.DataFrame, headers: list[str]) -> list[float]:
    """Column widths from the header and the first rows' text, capped."""
    sample = frame.head(WIDTH_SAMPLE)
    widths = []
    for position, header in enumerate(headers):
        values = sample.iloc[:, position].dropna()
        longest = int(values.astype("str").str.len().max()) if len(values) else 0
        if pd.api.types.is_numeric_dtype(values.dtype):
            longest = min(longest, NUMBER_WIDTH)  # General shows about ten digits of a long fraction
        widths.append(float(min(max(len(header) + 3, longest + 2, MIN_WIDTH), MAX_WIDTH)))
    return widths


def _table_sheet(
    workbook: Any,
    title: str,
    frame: pd.DataFrame,
    headers: list[str],
    scores: list[str],
    colors: pd.Series | None,
    allow: bool,
) -> Rows:
    """A table sheet with openpyxl's bold text header, frozen pane, autofilter and widths; returns
    its data rows as XML chunks (the segment cell filled with the row's colour from `colors`)."""
    ws = workbook.create_sheet(title)
    for position, width in enumerate(_widths(frame, headers), start=1):
        ws.column_dimensions[get_column_letter(position)].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(max(len(headers), 1))}{len(frame) + 1}"
    bold = _styled(ws, text=True, font=Font(bold=True))
    ws.append([bold(h) for h in headers])
    styles: dict[str, Any] = {c: f' s="{_proto(ws, number_format=SCORE_FORMAT).style_id}"' for c in scores}
    if "coverage" in frame.columns:
        styles["coverage"] = f' s="{_proto(ws, number_format="0%").style_id}"'
    if colors is not None and "segment" in frame.columns:
        fills = {c: f' s="{_proto(ws, fill=f).style_id}"' for c in colors.unique() if (f := _fill(str(c))) is not None}
        styles["segment"] = colors.map(fills).fillna("").astype("str").reset_index(drop=True)
    dates = {kind: f' s="{_proto(ws, number_format=f).style_id}"' for kind, f in DATE_FORMATS.items()}
    estimate = int(frame.memory_usage(deep=True).sum()) + frame.size * CELL_XML_BYTES
    return estimate, _rows_xml(frame, styles, dates, allow)


def _rows_xml(frame: pd.DataFrame, styles: dict[str, Any], dates: dict[str, str], allow: bool) -> Iterator[bytes]:
    """The data rows (from sheet row 2) as XML, a chunk of rows at a time, built column-wise."""
    letters = [get_column_letter(i + 1) for i in range(frame.shape[1])]
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start : start + CHUNK_ROWS].reset_index(drop=True)
        numbers = _number_text(pd.Series(np.arange(start + 2, start + 2 + len(chunk))))
        cells: list[Any] = []
        for position, name in enumerate(frame.columns):
            style = styles.get(name, "")
            if isinstance(style, pd.Series):
                style = style.iloc[start : start + CHUNK_ROWS].reset_index(drop=True)
            cells.append(_cells_xml(chunk.iloc[:, position], letters[position] + numbers, style, dates, allow))
        rows = ('<row r="' + numbers + '">').str.cat(cells, sep="") + "</row>"
        yield "".join(rows.tolist()).encode("utf-8")


def _cells_xml(values: pd.Series, refs: pd.Series, style: Any, dates: dict[str, str], allow: bool) -> pd.Series:
    """One column's <c> elements; '' where the value is missing (no cell is written)."""
    kind, values = _kind(values)
    if kind == "number":
        finite = pd.Series(np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan)))
        body, attrs = "<v>" + _number_text(values.where(finite)) + "</v>", style
    elif kind == "bool":
        body, attrs = "<v>" + values.map({True: "1", False: "0"}).astype("str") + "</v>", ' t="b"'
    elif kind == "text":
        body, attrs = _text_xml(values, allow)
        attrs = style + attrs
    else:
        serial = (values - EXCEL_EPOCH) / pd.Timedelta(days=1)
        body, attrs = "<v>" + _number_text(serial.where(serial >= FIRST_SERIAL)) + "</v>", dates[kind]
        early = values.notna() & serial.lt(FIRST_SERIAL)  # before Excel's calendar: shown as ISO text
        if early.any():
            early_body, text_attrs = _text_xml(values.where(early).astype("str"), allow)
            body, attrs = body.fillna(early_body), pd.Series(attrs, index=values.index).where(~early, text_attrs)
    cells: pd.Series = ('<c r="' + refs + '"' + attrs + ">" + body + "</c>").fillna("")
    return cells


def _number_text(values: pd.Series) -> pd.Series:
    """Numbers as the shortest text that reads back the same (Arrow's cast; missing stays missing)."""
    return pd.Series(pc.cast(pa.array(values, from_pandas=True), pa.string()), dtype="str")


def _kind(values: pd.Series) -> tuple[str, pd.Series]:
    """How a column is written (number, bool, date, datetime or text) and its values for that."""
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_date(dtype.pyarrow_dtype):
        return "date", values.astype("datetime64[ms]")
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime", values.dt.tz_localize(None)  # Excel has no time zones: keep the wall time
    if pd.api.types.is_datetime64_dtype(dtype):
        return ("date" if (values.dropna() == values.dropna().dt.normalize()).all() else "datetime"), values
    if pd.api.types.is_bool_dtype(dtype):
        return "bool", values
    if pd.api.types.is_numeric_dtype(dtype):
        return "number", values
    inferred = pd.api.types.infer_dtype(values, skipna=True) if pd.api.types.is_object_dtype(dtype) else "string"
    try:
        if inferred in ("date", "datetime", "datetime64"):
            return _kind(pd.to_datetime(values))
    except (ValueError, TypeError, OverflowError):  # mixed time zones or years Excel cannot hold
        return "text", values.astype("str")
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "number", pd.to_numeric(values)
    return ("bool", values) if inferred == "boolean" else ("text", values.astype("str"))


def _text_xml(texts: pd.Series, allow: bool) -> tuple[pd.Series, Any]:
    """Inline-string bodies for text cells (empty text: no cell), or formulas when `allow`."""
    escaped = (
        texts.where(texts != "")
        .str.replace("&", "&amp;", regex=False)
        .str.replace("<", "&lt;", regex=False)
        .str.replace(">", "&gt;", regex=False)
        .str.replace("\r", "&#13;", regex=False)  # XML readers turn a raw CR into LF
    )
    edges = texts.str.strip() != texts  # leading or trailing white space is kept only when marked
    body = "<is><t" + pd.Series(' xml:space="preserve"', texts.index).where(edges, "") + ">" + escaped + "</t></is>"
    if not allow:
        return body, ' t="inlineStr"'
    formula = (texts.str.startswith("=") & (texts.str.len() > 1)).fillna(False).astype(bool)
    return body.where(~formula, "<f>" + escaped.str.slice(1) + "</f>"), pd.Series(' t="inlineStr"', texts.index).where(
        ~formula, ""
    )


def _write_summary(ws: Any, summary: Summary, repairs: _Repairs) -> None:
    """Segments with accounts, share and ARR, a total, then as_of, accounts scored and the mean score."""
    has_arr = summary.arr_total is not None
    for position, width in enumerate((22, 12, 10, 16), start=1):
        ws.column_dimensions[get_column_letter(position)].width = width
    bold = _styled(ws, text=True, font=Font(bold=True))
    share, money, score = (_styled(ws, number_format=f) for f in (SHARE_FORMAT, MONEY_FORMAT, SCORE_FORMAT))
    ws.append([bold(h) for h in ["Segment", "Accounts", "Share", *(["ARR"] if has_arr else [])]])
    names = repairs.texts([row.name for row in summary.segments], "Summary")
    for name, row in zip(names, summary.segments, strict=True):
        fill = _fill(row.color)
        cell = (_styled(ws, text=True, fill=fill) if fill else _styled(ws, text=True))(name)
        ws.append([cell, row.accounts, share(row.share), *([money(row.arr)] if has_arr else [])])
    total_share = 1.0 if summary.accounts else 0.0
    ws.append([bold("Total"), summary.accounts, share(total_share), *([money(summary.arr_total)] if has_arr else [])])
    ws.append([])
    ws.append([bold("As of"), _styled(ws, number_format=DATE_FORMATS["date"])(summary.as_of)])
    ws.append([bold("Accounts scored"), summary.scored])
    ws.append([bold("Mean score"), None if summary.mean_score is None else score(summary.mean_score)])


class _FixedTimeZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed time and mode, so equal content gives equal bytes;
    `rows` holds data rows to splice into sheets (entry name -> XML chunks)."""

    def __init__(self, file: io.BytesIO, rows: dict[str, Rows]) -> None:
        super().__init__(file, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self.rows = dict(rows)

    def _entry(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
        info.compress_type = self.compression
        info.external_attr = 0o600 << 16
        return info

    def writestr(self, zinfo_or_arcname: str | zipfile.ZipInfo, data: Any, *args: Any) -> None:
        """Add an entry from memory, at the fixed time."""
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = self._entry(zinfo_or_arcname)
        super().writestr(zinfo_or_arcname, data, *args)

    def write(self, filename: Any, arcname: Any = None, *args: Any) -> None:
        """Add an entry from a file (openpyxl's streamed sheets, data rows spliced in), at the fixed time."""
        name = str(arcname or os.path.basename(filename))
        info = self._entry(name)
        info.file_size = os.path.getsize(filename)
        estimate, chunks = self.rows.pop(name, (-1, iter(())))
        with open(filename, "rb") as source, self.open(info, "w", force_zip64=estimate > ZIP64_FROM) as target:
            if estimate < 0:
                shutil.copyfileobj(source, target, 1 << 20)
                return
            head, tail = source.read().split(b"</sheetData>")  # the sheet holds only its header row
            target.write(head)
            for chunk in chunks:
                target.write(chunk)
            target.write(b"</sheetData>" + tail)


def _save(workbook: Any, rows: dict[str, Rows]) -> bytes:
    """The workbook's bytes with the data rows of the named sheets spliced in, at fixed zip times."""
    buffer = io.BytesIO()
    titles = [ws.title for ws in workbook.worksheets]
    paths = {f"xl/worksheets/sheet{titles.index(title) + 1}.xml": chunks for title, chunks in rows.items()}
    archive = _FixedTimeZip(buffer, paths)
    ExcelWriter(workbook, archive).save()
    if archive.rows:  # openpyxl named its sheet files otherwise: the data would be missing
        raise RuntimeError(f"no sheet file {', '.join(archive.rows)} to put the data rows in")
    return buffer.getvalue()
