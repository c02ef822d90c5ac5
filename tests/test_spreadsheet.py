"""Spreadsheet safety and the XLSX workbook: formula injection, typed cells, fills, summary,
drivers, repairs of text Excel cannot hold, and byte-identical output."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import AS_OF, make_config

from healthscore import spreadsheet
from healthscore.config import Config
from healthscore.errors import Problem
from healthscore.pipeline import RunResult, run
from healthscore.spreadsheet import (
    count_formula_cells,
    drivers_frame,
    labelled_columns,
    neutralize_formulas,
    xlsx_bytes,
)

LONG = "x" * 40_000
NOTES = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTabbed", "\rCR", LONG, "bell\x07here", "#DIV/0!", None]
SEGMENTS = [  # one colour name, one unknown colour, one hex colour, one more name; Unscored is grey
    {"name": "Critical", "max": 40, "color": "red"},
    {"name": "At-Risk", "max": 60, "color": "chartreuse"},
    {"name": "Healthy", "max": 80, "color": "#336699"},
    {"name": "Thriving", "max": 100, "color": "blue"},
]
EXPECTED_FILL = {"Critical": "F4CCCC", "At-Risk": None, "Healthy": "336699", "Thriving": "CFE2F3", "Unscored": "E0E0E0"}


# ---------------------------------------------------------------- neutralize_formulas (CSV)


def test_neutralize_formulas_prefixes_text_only() -> None:
    frame = pd.DataFrame(
        {
            "text": pd.Series(["=1+2", "+1", "-5", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", None], dtype="str"),
            "number": [-5.0, 3.0, -0.5, 1.0, 2.0, 3.0, 4.0, 5.0, np.nan],
            "mixed": pd.Series([-5, "-5", None, dt.date(2026, 1, 1), "=x", 7, "ok", np.nan, "+"], dtype=object),
        }
    )
    out = neutralize_formulas(frame)
    assert out["text"].tolist()[:8] == ["'=1+2", "'+1", "'-5", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b"]
    assert pd.isna(out["text"].iloc[8])
    assert out["text"].dtype == frame["text"].dtype
    assert out["number"].dtype == "float64"
    assert out["number"].tolist()[:8] == [-5.0, 3.0, -0.5, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert np.isnan(out["number"].iloc[8])
    assert out["mixed"].tolist()[:7] == [-5, "'-5", None, dt.date(2026, 1, 1), "'=x", 7, "ok"]
    assert np.isnan(out["mixed"].iloc[7])
    assert out["mixed"].iloc[8] == "'+"
    assert frame["text"].iloc[0] == "=1+2"  # the input is left as it was
    assert count_formula_cells(frame) == 6 + 3


def test_neutralize_formulas_escapes_header_names() -> None:
    frame = pd.DataFrame({"=cmd|' /C calc'!A0": ["a"], "-x": ["b"], "ok": ["c"], 7: ["d"]})
    out = neutralize_formulas(frame)
    assert list(out.columns) == ["'=cmd|' /C calc'!A0", "'-x", "ok", 7]
    assert out.iloc[0].tolist() == ["a", "b", "c", "d"]
    assert count_formula_cells(frame) == 2


def test_neutralize_formulas_on_a_frame_without_text() -> None:
    frame = pd.DataFrame({"a": [-1, 2], "b": [dt.date(2026, 1, 1), None]})
    out = neutralize_formulas(frame)
    pd.testing.assert_frame_equal(out, frame)
    assert count_formula_cells(frame) == 0


# ---------------------------------------------------------------- a small scored project


def tiny_project(base: Path, **extra: Any) -> Config:
    """Ten accounts whose CRM pass-through columns hold every awkward value; one is Unscored."""
    n = len(NOTES)
    crm = pd.DataFrame(
        {
            "account_id": [f"A{i:02d}" for i in range(n)],
            "name": [f"Acct {i}" for i in range(n)],
            "note": NOTES,
            "balance": [-5.5 + i for i in range(n)],
            "renewal": [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(n - 1)] + [dt.date(1899, 12, 1)],
            "seen": [dt.datetime(2026, 1, 30, 8, 15, 30) + dt.timedelta(hours=i) for i in range(n)],
            "arr": [1000.0 * (i + 1) for i in range(n)],
            # A08's 29.99 logins cost 0.02 points: below explain.MIN_POINTS, so not a driver
            "logins": [*(i * 3 for i in range(n - 2)), 29.99, None],
            "nps": [(-1) ** i * 10 * i for i in range(n - 1)] + [None],
        }
    )
    crm.to_parquet(base / "crm.parquet")
    sections: dict[str, Any] = {
        "accounts": {
            "source": "crm",
            "columns": ["name", "note", "balance", "renewal", "seen", "arr"],
            "name": "name",
            "arr": "arr",
        },
        "sources": {"crm": {"path": "crm.parquet", "key": "account_id"}},
        "metrics": {
            "logins": {
                "source": "crm",
                "agg": "value",
                "field": "logins",
                "scale": {"method": "linear", "bad": 0, "good": 30},
            },
            "nps": {
                "source": "crm",
                "agg": "value",
                "field": "nps",
                "scale": {"method": "linear", "bad": -100, "good": 100},
                "label": "NPS",
            },
        },
        "groups": {
            "usage": {"weight": 60, "metrics": ["logins"], "label": "Product usage"},
            "sentiment": {"weight": 40, "metrics": ["nps"], "label": "=Sentiment"},
        },
        "segments": SEGMENTS,
    }
    sections.update(extra)
    return make_config(base, **sections)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Config]:
    config = tiny_project(tmp_path_factory.mktemp("tiny"))
    return run(config), config


@pytest.fixture(scope="module")
def workbook(scored: tuple[RunResult, Config]) -> tuple[Any, list[Problem]]:
    data, problems = xlsx_bytes(*scored)
    return openpyxl.load_workbook(io.BytesIO(data)), problems


def column(ws: Any, header: str) -> list[Any]:
    """The data cells under a header of the first row."""
    headers = [c.value for c in ws[1]]
    return [row[headers.index(header)] for row in ws.iter_rows(min_row=2)]


def test_the_project_covers_every_segment(scored: tuple[RunResult, Config]) -> None:
    result, _ = scored
    assert set(result.table["segment"]) == set(EXPECTED_FILL)


# ---------------------------------------------------------------- Scores sheet


def test_scores_sheet_layout(workbook: tuple[Any, list[Problem]], scored: tuple[RunResult, Config]) -> None:
    book, _ = workbook
    result, _ = scored
    assert book.sheetnames == ["Scores", "Summary", "Drivers"]
    ws = book["Scores"]
    assert [c.value for c in ws[1]] == list(result.table.columns)
    assert all(c.data_type == "s" and c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:T{len(result.table) + 1}"
    assert ws.max_row == len(result.table) + 1
    widths = {letter: ws.column_dimensions[letter].width for letter in "ABCD"}
    assert widths["A"] == len("account_id") + 3  # from the header
    assert widths["B"] == 8  # "Acct 0" and "name" are short: the minimum
    assert widths["C"] == 60  # the 40,000-character note, capped
    assert widths["D"] == len("balance") + 3


def test_scores_sheet_cells_are_typed(workbook: tuple[Any, list[Problem]], scored: tuple[RunResult, Config]) -> None:
    book, _ = workbook
    result, config = scored
    ws = book["Scores"]
    balance = [c.value for c in column(ws, "balance")]
    assert balance == [-5.5 + i for i in range(10)]
    assert all(isinstance(v, float | int) for v in balance)
    nps = [c.value for c in column(ws, "nps")]
    assert nps == [(-1) ** i * 10 * i for i in range(9)] + [None]
    renewal = column(ws, "renewal")
    assert [c.value for c in renewal[:2]] == [dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 2)]
    assert {c.number_format for c in renewal[:9]} == {"yyyy-mm-dd"}
    assert (renewal[9].value, renewal[9].data_type) == ("1899-12-01", "s")  # before Excel's calendar
    seen = column(ws, "seen")
    assert seen[0].value == dt.datetime(2026, 1, 30, 8, 15, 30)
    assert seen[0].is_date
    assert seen[0].number_format == "yyyy-mm-dd hh:mm:ss"
    as_of = column(ws, "as_of")
    assert {c.value for c in as_of} == {dt.datetime(2026, 1, 31)}
    assert {c.number_format for c in as_of} == {"yyyy-mm-dd"}
    for name in spreadsheet.score_columns(result.table, config):
        cells = column(ws, name)
        expected = result.table[name].tolist()
        assert [c.value for c in cells] == [None if pd.isna(v) else v for v in expected], name
        assert {c.number_format for c in cells if c.value is not None} == {"0.0"}, name
    assert column(ws, "health_score")[9].value is None  # Unscored: no score, no cell
    assert {c.number_format for c in column(ws, "coverage")} == {"0%"}


def test_formula_looking_text_stays_text(workbook: tuple[Any, list[Problem]]) -> None:
    book, _ = workbook
    notes = column(book["Scores"], "note")
    assert [c.value for c in notes[:6]] == NOTES[:6]  # tab and CR kept, nothing evaluated
    assert all(c.data_type == "s" for c in notes[:9])
    assert notes[8].value == "#DIV/0!"  # text, not an error cell
    assert notes[9].value is None


def test_segment_cells_filled_with_segment_colour(workbook: tuple[Any, list[Problem]]) -> None:
    book, _ = workbook
    for sheet in ("Scores", "Drivers"):
        for cell in column(book[sheet], "segment"):
            fill = cell.fill.fgColor.rgb[-6:] if cell.fill.fill_type == "solid" else None
            assert fill == EXPECTED_FILL[cell.value], (sheet, cell.value)


def test_control_characters_and_long_text_are_repaired_and_warned(workbook: tuple[Any, list[Problem]]) -> None:
    book, problems = workbook
    notes = column(book["Scores"], "note")
    assert notes[6].value == LONG[:32_767]
    assert notes[7].value == "bellhere"
    assert problems == [
        Problem(
            "1 cell(s) held control characters, stripped", "Scores sheet", "Excel cannot store them; clean the source"
        ),
        Problem("1 cell(s) were longer than 32,767 characters, truncated", "Scores sheet", "Excel's limit per cell"),
    ]


def test_formulas_are_written_only_when_allowed(scored: tuple[RunResult, Config]) -> None:
    data, _ = xlsx_bytes(*scored, allow_formulas=True)
    notes = column(openpyxl.load_workbook(io.BytesIO(data))["Scores"], "note")
    assert (notes[0].data_type, notes[0].value) == ("f", '=HYPERLINK("http://x")')
    assert [(c.data_type, c.value) for c in notes[1:4]] == [("s", "+1"), ("s", "-2"), ("s", "@SUM(A1)")]
    assert (notes[8].data_type, notes[8].value) == ("s", "#DIV/0!")


def test_label_headers_are_text(scored: tuple[RunResult, Config]) -> None:
    result, config = scored
    data, _ = xlsx_bytes(result, config, labels=True)
    book = openpyxl.load_workbook(io.BytesIO(data))
    headers = book["Scores"][1]
    assert [c.value for c in headers] == list(labelled_columns(result.table, config).values())
    assert [c.value for c in headers][11:17] == [
        "Product usage (0-100)",
        "=Sentiment (0-100)",
        "logins",
        "logins (0-10)",
        "NPS",
        "NPS (0-10)",
    ]
    assert all(c.data_type == "s" for c in headers)  # "=Sentiment (0-100)" is not a formula
    assert [c.value for c in book["Drivers"][1]][:7] == [
        "Account ID",
        "name",
        "Health score",
        "Segment",
        "Driver 1",
        "Driver 1 score (0-10)",
        "Driver 1 points lost",
    ]


def test_labelled_columns_are_unique(tmp_path: Path) -> None:
    config = tiny_project(
        tmp_path,
        groups={
            "usage": {"weight": 60, "metrics": ["logins"], "label": "NPS"},
            "sentiment": {"weight": 40, "metrics": ["nps"]},
        },
    )
    table = pd.DataFrame(columns=["account_id", "name", "health_score", "group_usage", "nps", "nps_score", "as_of"])
    assert labelled_columns(table, config) == {
        "account_id": "Account ID",
        "name": "name",
        "health_score": "Health score",
        "group_usage": "NPS (0-100)",
        "nps": "NPS",
        "nps_score": "NPS (0-10)",
        "as_of": "As of",
    }
    table = pd.DataFrame(columns=["logins", "nps"])
    renamed = tiny_project(
        tmp_path,
        metrics={
            "logins": {"source": "crm", "agg": "value", "field": "logins", "label": "NPS"},
            "nps": {"source": "crm", "agg": "value", "field": "nps", "label": "NPS"},
        },
    )
    assert labelled_columns(table, renamed) == {"logins": "NPS", "nps": "NPS (nps)"}


# ---------------------------------------------------------------- Summary and Drivers sheets


def test_summary_sheet(workbook: tuple[Any, list[Problem]], scored: tuple[RunResult, Config]) -> None:
    book, _ = workbook
    summary = scored[0].summary
    rows = list(book["Summary"].iter_rows())
    assert [c.value for c in rows[0]] == ["Segment", "Accounts", "Share", "ARR"]
    segments = rows[1 : 1 + len(summary.segments)]
    assert [[c.value for c in row] for row in segments] == [
        [s.name, s.accounts, s.share, s.arr] for s in summary.segments
    ]
    assert {row[2].number_format for row in segments} == {"0.0%"}
    assert {row[3].number_format for row in segments} == {"#,##0"}
    total = rows[1 + len(summary.segments)]
    assert [c.value for c in total] == ["Total", 10, 1, 55_000]
    facts = {row[0].value: row[1] for row in rows[2 + len(summary.segments) :] if row and row[0].value}
    assert facts["As of"].value == dt.datetime.combine(AS_OF, dt.time())
    assert facts["As of"].number_format == "yyyy-mm-dd"
    assert facts["Accounts scored"].value == summary.scored == 9
    assert facts["Mean score"].value == summary.mean_score
    assert facts["Mean score"].number_format == "0.0"


def test_drivers_agree_with_top_drivers(workbook: tuple[Any, list[Problem]], scored: tuple[RunResult, Config]) -> None:
    book, _ = workbook
    result, _ = scored
    ws = book["Drivers"]
    headers = [c.value for c in ws[1]]
    assert headers == [
        "account_id",
        "name",
        "health_score",
        "segment",
        *[f"driver_{k}{suffix}" for k in (1, 2) for suffix in ("", "_score", "_points_lost")],
    ]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J11"
    texts = []
    for row in ws.iter_rows(min_row=2, values_only=True):
        triples = [row[i : i + 3] for i in range(4, len(row), 3) if row[i] is not None]
        points = [p for _, _, p in triples]
        assert points == sorted(points, reverse=True)
        texts.append("; ".join(f"{label} {score:.1f}/10 (-{lost:.1f})" for label, score, lost in triples))
    assert texts == result.table["top_drivers"].tolist()
    assert [row[0] for row in ws.iter_rows(min_row=2, values_only=True)] == result.table["account_id"].tolist()
    assert {c.number_format for c in column(ws, "driver_1_points_lost") if c.value is not None} == {"0.0"}


def test_drivers_frame_follows_the_table_by_account(scored: tuple[RunResult, Config]) -> None:
    result, config = scored
    shuffled = result.table.iloc[::-1]
    frame = drivers_frame(result, config, table=shuffled)
    assert frame["account_id"].tolist() == shuffled["account_id"].tolist()
    straight = drivers_frame(result, config).set_index("account_id")
    pd.testing.assert_frame_equal(frame.set_index("account_id"), straight.loc[frame["account_id"]])


# ---------------------------------------------------------------- determinism and streaming


def test_same_input_gives_identical_bytes(scored: tuple[RunResult, Config]) -> None:
    first, _ = xlsx_bytes(*scored)
    second, _ = xlsx_bytes(*scored)
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert core.count("2026-01-31T00:00:00Z") == 2  # created and modified are the as_of, not the clock


def test_rows_written_in_chunks_are_the_same(scored: tuple[RunResult, Config], monkeypatch: pytest.MonkeyPatch) -> None:
    whole, _ = xlsx_bytes(*scored)
    monkeypatch.setattr(spreadsheet, "CHUNK_ROWS", 3)
    chunked, _ = xlsx_bytes(*scored)
    assert chunked == whole


def test_a_sheet_file_openpyxl_names_otherwise_is_an_error(
    scored: tuple[RunResult, Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = spreadsheet._FixedTimeZip.__init__

    def misnamed(self: Any, file: Any, rows: dict[str, Any]) -> None:
        real(self, file, {f"elsewhere/{name}": chunks for name, chunks in rows.items()})

    monkeypatch.setattr(spreadsheet._FixedTimeZip, "__init__", misnamed)
    with pytest.raises(RuntimeError, match="to put the data rows in"):
        xlsx_bytes(*scored)


# ---------------------------------------------------------------- another reader


# LibreOffice's CSV filter: comma, double quote, UTF-8, from line 1, ..., cells as shown (9th)
AS_SHOWN = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false"


@pytest.mark.skipif(
    not (shutil.which("libreoffice") or shutil.which("soffice")),
    reason="LibreOffice (libreoffice/soffice) is not installed; it is the only independent XLSX reader here",
)
def test_libreoffice_reads_the_scores_sheet(scored: tuple[RunResult, Config], tmp_path: Path) -> None:
    result, config = scored
    data, _ = xlsx_bytes(result, config)
    (tmp_path / "scores.xlsx").write_bytes(data)
    office = shutil.which("libreoffice") or shutil.which("soffice")
    subprocess.run(
        [str(office), "--headless", "--convert-to", AS_SHOWN, "--outdir", str(tmp_path), str(tmp_path / "scores.xlsx")],
        check=True,
        capture_output=True,
        timeout=180,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    with open(tmp_path / "scores.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(result.table.columns)
    cells = {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}
    table = result.table
    assert cells["account_id"] == table["account_id"].tolist()
    assert cells["note"][:4] == NOTES[:4]  # shown as typed text, never evaluated as formulas
    # numbers stay numbers, shown in their formats: scores with one decimal, coverage in percent
    for name in ("health_score", "group_usage", "logins_score", "nps_score"):
        assert cells[name] == [f"{v:.1f}" if pd.notna(v) else "" for v in table[name]], name
    assert cells["coverage"] == [f"{v:.0%}" for v in table["coverage"]]
    assert [float(v) for v in cells["balance"]] == table["balance"].tolist()  # negative numbers too
    assert cells["renewal"] == [d.isoformat() for d in table["renewal"]]  # dates as dates
    assert cells["seen"] == [t.strftime("%Y-%m-%d %H:%M:%S") for t in table["seen"]]
    assert cells["segment"] == table["segment"].tolist()
