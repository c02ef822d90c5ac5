"""Bad inputs through the real CLI, the way real exports break.

Each case first scores a good project so `out/` holds a full set of outputs, then breaks
one input and runs again. A failing run must exit with the code of PRODUCT.md section 6
(65 data error, 66 input missing, 78 config error), name the file, the line or column and
the fix on stderr, print nothing on stdout, and leave every previous output byte for byte
with no temp file behind. Contrast cases (inputs that look odd but are fine) must score.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner, Result

from healthscore.cli import app

pytestmark = pytest.mark.usefixtures("csv_read_and_mapped")  # CSV read into memory, then mapped

runner = CliRunner()

LOCK_NAME = ".healthscore.lock"  # the run lock: not an output, rewritten by every run
OUTPUTS = {"health_scores.csv", "health_scores.parquet", "rejects.csv", "run.json"}
TITLES = {65: "data error: ", 66: "input missing: ", 78: "config error: "}
ACCOUNTS = "account_id,name,arr\nA1,Acme,1000\nA2,Beta,2000\nA3,Gamma,500\nA4,Delta,4000\n"
HEADER = "account_id,timestamp,event,minutes"
# the 20 baseline events: A1 has 7 logins and 20 minutes, A2 7 and 22, A3 6 and 18, A4 none
BASE_MINUTES = [20.0, 22.0, 18.0, None]


def event_rows(n: int, sep: str = ",") -> list[str]:
    """n login events in January 2026 (inside the 30-day window of as_of 2026-01-31),
    round-robin over A1..A3, with 1..5 minutes each."""
    return [sep.join([f"A{i % 3 + 1}", f"2026-01-{2 + i % 28:02d}", "login", str(i % 5 + 1)]) for i in range(n)]


def events_csv(n: int = 20, sep: str = ",") -> str:
    """An events CSV: header plus `n` rows (see `event_rows`)."""
    return "\n".join([HEADER.replace(",", sep), *event_rows(n, sep)]) + "\n"


def events_jsonl(n: int) -> list[str]:
    """The events of `event_rows` as JSON lines (without line breaks)."""
    return [
        json.dumps(
            {
                "account_id": f"A{i % 3 + 1}",
                "timestamp": f"2026-01-{2 + i % 28:02d}",
                "event": "login",
                "minutes": i % 5 + 1,
            }
        )
        for i in range(n)
    ]


def squash(text: str) -> str:
    """Text with runs of whitespace as one space (messages may be laid out by rich)."""
    return " ".join(text.split())


class Project:
    """A small project on disk: crm.csv (the spine), an events source with a time column and
    a float column, and health.yaml writing csv + parquet to `out/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.before: dict[str, bytes] = {}
        self.write("crm.csv", ACCOUNTS)
        self.write("events.csv", events_csv(20))
        self.configure()

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def config(self) -> Path:
        return self.root / "health.yaml"

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, content: str | bytes) -> Path:
        """Write a file of the project (text as UTF-8) and return its path."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def configure(
        self, crm: dict[str, Any] | None = None, events: dict[str, Any] | None = None, events_path: str = "events.csv"
    ) -> None:
        """(Re)write health.yaml; `crm` / `events` add or replace keys of those sources."""
        data = {
            "version": 1,
            "as_of": "2026-01-31",
            "accounts": {"source": "crm", "columns": ["name", "arr"], "name": "name", "arr": "arr"},
            "sources": {
                "crm": {"path": "crm.csv", "key": "account_id", **(crm or {})},
                "events": {
                    "path": events_path,
                    "key": "account_id",
                    "time": "timestamp",
                    "types": {"minutes": "float"},
                    **(events or {}),
                },
            },
            "metrics": {
                "logins": {
                    "source": "events",
                    "agg": "count",
                    "window": "30d",
                    "missing": {"fill": 0},
                    "scale": {"method": "linear", "bad": 0, "good": 10},
                },
                "minutes": {
                    "source": "events",
                    "agg": "sum",
                    "field": "minutes",
                    "window": "30d",
                    "scale": {"method": "linear", "bad": 0, "good": 100},
                },
            },
            "groups": {"usage": {"metrics": ["logins", "minutes"]}},
            "outputs": {"dir": "out", "formats": ["csv", "parquet"]},
        }
        self.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def run(self) -> Result:
        return runner.invoke(app, ["score", "-c", str(self.config)])

    def outputs(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.out.iterdir() if p.is_file() and p.name != LOCK_NAME}

    def baseline(self) -> None:
        """Step 1: a good run; its outputs are recorded for `fails` to compare."""
        result = self.succeeds()
        self.before = self.outputs()
        assert set(self.before) == OUTPUTS, result.output

    def succeeds(self) -> Result:
        """A run that must exit 0 and leave no temp file."""
        result = self.run()
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        assert not list(self.out.glob(".*.tmp"))
        return result

    def fails(self, code: int) -> str:
        """Steps 3-4: a run that must exit `code` with a message on stderr only, leaving the
        baseline outputs byte for byte and no temp file; returns stderr, whitespace squashed."""
        assert self.before, "call baseline() first"
        result = self.run()
        assert result.exit_code == code, result.output
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(TITLES[code]), result.stderr
        assert self.outputs() == self.before
        assert not list(self.out.glob(".*.tmp"))
        assert not list(self.out.glob("*.tmp"))
        return squash(result.stderr)

    def table(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "health_scores.csv", dtype={"account_id": str})

    def minutes(self) -> list[float | None]:
        return [None if pd.isna(v) else float(v) for v in self.table()["minutes"]]

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.out / "run.json").read_text(encoding="utf-8"))
        return data

    def rejects(self) -> pd.DataFrame:
        return pd.read_csv(self.out / "rejects.csv", dtype=str, keep_default_na=False)

    def warned(self, result: Result, text: str, where: str) -> None:
        """The run printed a warning holding `text` and run.json records it at `where`."""
        assert text in squash(result.output), result.output
        warnings = self.manifest()["warnings"]
        assert any(text in w["message"] and w["where"] == where for w in warnings), warnings


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


# --- 66: input missing or empty ------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="zero-bytes"),
        pytest.param(b"\n", id="only-a-newline"),
        pytest.param(b"\xef\xbb\xbf\r\n", id="bom-and-crlf"),
    ],
)
def test_an_empty_events_file_is_exit_66(project: Project, content: bytes) -> None:
    project.baseline()
    path = project.write("events.csv", content)
    err = project.fails(66)
    assert f"input missing: source 'events': input file is empty: {path}" in err
    assert "the file has no header and no rows (hint: re-export the data)" in err


def test_a_missing_file_is_exit_66(project: Project) -> None:
    project.baseline()
    path = project.path("events.csv")
    path.unlink()
    err = project.fails(66)
    assert f"source 'events': input file not found: {path}" in err
    assert "sources.events.path is 'events.csv' (hint: paths are relative to the config file)" in err


def test_a_glob_matching_nothing_is_exit_66(project: Project) -> None:
    project.write("exports/events-jan.csv", events_csv(20))
    project.configure(events_path="exports/events-*.csv")
    project.baseline()
    project.path("exports/events-jan.csv").rename(project.path("exports/events-jan.csv.bak"))
    err = project.fails(66)
    assert "source 'events': no file matches exports/events-*.csv" in err
    assert f"{project.root}/exports/events-*.csv: the glob matched nothing (hint: check the path in the config)" in err


def test_a_parquet_folder_without_parquet_files_is_exit_66(project: Project) -> None:
    project.path("usage").mkdir()
    pd.read_csv(io.StringIO(events_csv(20))).to_parquet(project.path("usage/part-0.parquet"))
    project.configure(events_path="usage")
    project.baseline()
    project.path("usage/part-0.parquet").rename(project.path("usage/part-0.csv"))
    err = project.fails(66)
    assert f"source 'events': folder {project.root}/usage holds no .parquet files" in err
    assert "(hint: point `path` at a file or a glob)" in err


def test_a_header_only_events_file_is_a_warning_not_an_error(project: Project) -> None:
    """Contrast: no events at all is a fact (no logins), not a broken file."""
    project.baseline()
    path = project.write("events.csv", HEADER + "\n")
    result = project.succeeds()
    project.warned(
        result, "events.csv has a header but no data rows: source 'events' gets none from it", where=str(path)
    )
    table = project.table()
    assert table["logins"].tolist() == [0, 0, 0, 0]
    assert project.minutes() == [None, None, None, None]
    assert project.manifest()["inputs"]["events"]["rows_read"] == 0


# --- 65: delimiters and structure ----------------------------------------------------------


def test_a_semicolon_file_without_the_expected_columns_lists_expected_and_found(project: Project) -> None:
    project.baseline()
    german = events_csv(20, ";").replace("account_id;timestamp;event;minutes", "Konto;Zeitpunkt;Ereignis;Minuten")
    path = project.write("events.csv", german)
    err = project.fails(65)
    assert f"source 'events': {path} lacks 3 column(s) the config uses" in err
    assert f"{path}: expected: account_id, minutes, timestamp" in err
    assert (
        f"{path}: found: Konto, Zeitpunkt, Ereignis, Minuten (split at each semicolon; "
        "set sources.events.delimiter if that is wrong)"
    ) in err
    assert "column 'account_id' not found (hint: map a header to it with sources.events.rename)" in err


def test_a_semicolon_file_with_decimal_commas_scores(project: Project) -> None:
    """Contrast: a European export read with `decimal: ","` (delimiter found by itself)."""
    project.baseline()
    project.write(
        "events.csv",
        "account_id;timestamp;event;minutes\n"
        "A1;2026-01-30;login;1,5\n"
        "A1;2026-01-29;login;2,25\n"
        "A2;2026-01-30;login;10\n"
        "A3;2026-01-28;login;0,5\n",
    )
    project.configure(events={"decimal": ","})
    project.succeeds()
    assert project.minutes() == [3.75, 10.0, 0.5, None]
    assert project.table()["logins"].tolist() == [2, 1, 1, 0]


def test_ragged_rows_above_max_reject_share_are_exit_65(project: Project) -> None:
    project.baseline()
    rows = event_rows(20)
    rows[2] = "A3,2026-01-04,login"  # line 4
    rows[6] = "A1,2026-01-08"  # line 8
    rows[11] = "A3,2026-01-13,login,3,extra"  # line 13
    project.write("events.csv", "\n".join([HEADER, *rows]) + "\n")
    err = project.fails(65)
    assert (
        "source 'events': 3 of 20 rows (15.0%) cannot be read (2 too few fields, 1 too many fields), "
        "more than max_reject_share 1.0%"
    ) in err
    assert "events.csv line 4: too few fields: 'A3,2026-01-04,login'" in err
    assert "events.csv line 8: too few fields: 'A1,2026-01-08'" in err
    assert "events.csv line 13: too many fields: 'A3,2026-01-13,login,3,extra'" in err
    assert "raise max_reject_share to accept these losses" in err


def test_a_ragged_row_under_max_reject_share_goes_to_rejects_csv(project: Project) -> None:
    """Contrast: 1 broken row of 200 (0.5%) is set aside, counted, warned about."""
    project.baseline()
    rows = event_rows(200)
    rows[49] = 'A2,2026-01-20,"login, web"'  # line 51, three fields: the minutes are missing
    path = project.write("events.csv", "\n".join([HEADER, *rows]) + "\n")
    result = project.succeeds()
    rejects = project.rejects()
    assert rejects.to_dict("records") == [
        {
            "source": "events",
            "file": str(path),
            "line": "51",
            "reason": "too few fields",
            "raw": 'A2,2026-01-20,"login, web"',
        }
    ]
    events = project.manifest()["inputs"]["events"]
    assert events["rejected"] == {"too few fields": 1}
    assert (events["rows_read"], events["rows_used"]) == (200, 199)
    project.warned(result, "1 row(s) of source 'events' were rejected: too few fields", where="events.csv line 51")
    assert project.table()["logins"].tolist() == [67, 66, 66, 0]  # A2 had 67 events


def test_an_unclosed_quote_is_exit_65_with_its_line(project: Project) -> None:
    project.baseline()
    rows = event_rows(20)
    rows[4] = 'A2,2026-01-06,"login,3'  # line 6
    path = project.write("events.csv", "\n".join([HEADER, *rows]) + "\n")
    err = project.fails(65)
    assert f"source 'events': {path} has a double quote that is never closed" in err
    assert "the field opened on line 6 runs to the end of the file" in err
    assert "a quote is unescaped (write it as two quotes)" in err


def test_duplicate_column_names_are_exit_65(project: Project) -> None:
    project.baseline()
    path = project.write("events.csv", events_csv(20).replace("event,minutes", "minutes,minutes", 1))
    err = project.fails(65)
    assert f"source 'events': {path} has duplicate column names" in err
    assert "column 'minutes' appears more than once (hint: rename one in the export or in `rename`)" in err


def test_a_missing_required_column_is_exit_65_listing_found_columns(project: Project) -> None:
    project.baseline()
    path = project.write("events.csv", events_csv(20).replace(",minutes\n", ",mins\n", 1))
    err = project.fails(65)
    assert f"source 'events': {path} lacks 1 column(s) the config uses" in err
    assert f"{path}: column 'minutes' not found (hint: map a header to it with sources.events.rename)" in err
    assert "found: account_id, timestamp, event, mins (split at each comma;" in err
    assert "expected: account_id, minutes, timestamp" in err


# --- 65: values ------------------------------------------------------------------------------


def test_ambiguous_slash_dates_are_exit_65_with_rows_and_both_patterns(project: Project) -> None:
    project.baseline()
    rows = event_rows(20)
    rows[3] = "A1,03/04/2024,login,4"  # line 5
    rows[8] = "A3,05/06/2024,login,4"  # line 10
    project.write("events.csv", "\n".join([HEADER, *rows]) + "\n")
    err = project.fails(65)
    assert "source 'events': 1 column(s) of events.csv hold values of the wrong type" in err
    assert (
        "2 value(s) of column 'timestamp' are not datetime: "
        "events.csv line 5: '03/04/2024'; events.csv line 10: '05/06/2024'"
    ) in err
    assert "set date_format (now 'ISO8601')" in err
    assert "'%m/%d/%Y' (US) or '%d/%m/%Y' (day first)" in err


def test_day_first_dates_get_a_day_first_hint(project: Project) -> None:
    project.baseline()
    rows = event_rows(20)
    rows[3] = "A1,13/04/2024,login,4"  # line 5
    project.write("events.csv", "\n".join([HEADER, *rows]) + "\n")
    err = project.fails(65)
    assert "1 value(s) of column 'timestamp' are not datetime: events.csv line 5: '13/04/2024'" in err
    assert "date_format" in err
    assert "'%d/%m/%Y' (day first: some values have a first part over 12)" in err
    assert "%m/%d/%Y" not in err


def test_a_word_in_a_float_column_is_exit_65_with_file_line_and_value(project: Project) -> None:
    project.baseline()
    rows = event_rows(20)
    rows[5] = "A3,2026-01-07,login,twelve"  # line 7
    project.write("events.csv", "\n".join([HEADER, *rows]) + "\n")
    err = project.fails(65)
    assert "1 value(s) of column 'minutes' are not float: events.csv line 7: 'twelve'" in err
    assert "set `decimal`/`thousands` for formatted numbers, or type the column as string" in err


def test_currency_and_percent_in_a_float_column_score_with_thousands(project: Project) -> None:
    """Contrast: `$1,200.50` and `45%` are numbers once `thousands: ","` says how they are
    written (units are stripped: 45% is 45, the value as the export shows it)."""
    project.baseline()
    project.write(
        "events.csv",
        f'{HEADER}\nA1,2026-01-30,login,"$1,200.50"\nA2,2026-01-30,login,45%\nA3,2026-01-29,login,"1,000"\n',
    )
    project.configure(events={"thousands": ","})
    project.succeeds()
    assert project.minutes() == [1200.5, 45.0, 1000.0, None]


def test_line_numbers_count_a_skipped_preamble(project: Project) -> None:
    project.configure(events={"skip_rows": 2})
    project.write("events.csv", "Usage export\nGenerated 2026-01-31\n" + events_csv(20))
    project.baseline()
    assert project.minutes() == BASE_MINUTES
    rows = event_rows(20)
    rows[5] = "A3,2026-01-07,login,n.a."  # the 6th data row: physical line 9
    project.write("events.csv", "Usage export\nGenerated 2026-01-31\n" + "\n".join([HEADER, *rows]) + "\n")
    err = project.fails(65)
    assert "1 value(s) of column 'minutes' are not float: events.csv line 9: 'n.a.'" in err
    assert "set `decimal`/`thousands` for formatted numbers" in err


# --- 65: broken binary containers --------------------------------------------------------------


@pytest.mark.parametrize("breakage", ["truncated", "csv-named-parquet"])
def test_a_broken_parquet_file_is_exit_65(project: Project, breakage: str) -> None:
    path = project.path("events.parquet")
    pd.read_csv(io.StringIO(events_csv(20))).to_parquet(path)
    project.configure(events_path="events.parquet")
    project.baseline()
    good = path.read_bytes()
    project.write("events.parquet", good[: len(good) * 2 // 3] if breakage == "truncated" else events_csv(20))
    err = project.fails(65)
    assert f"source 'events': {path} is an incomplete or invalid parquet file" in err
    assert "(hint: re-export it; a copy may have been cut short)" in err


@pytest.mark.parametrize("name", ["events.csv.gz", "events.jsonl.gz"])
def test_a_truncated_gzip_file_is_exit_65(project: Project, name: str) -> None:
    text = events_csv(20) if name.endswith(".csv.gz") else "\n".join(events_jsonl(20)) + "\n"
    path = project.write(name, gzip.compress(text.encode("utf-8")))
    project.configure(events_path=name)
    project.baseline()
    assert project.minutes() == BASE_MINUTES
    good = path.read_bytes()
    project.write(name, good[: len(good) // 2])
    err = project.fails(65)
    assert f"source 'events': {path} is an incomplete or invalid gzip file" in err
    assert "(hint: re-download or re-compress the export)" in err


def _xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    pd.read_csv(io.StringIO(events_csv(20))).to_excel(buffer, index=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10", id="png-header"),
        pytest.param(HEADER.encode() + b"\nA1,2026-01-30,login,\x00\x00\x00\n", id="nul-in-a-row"),
        pytest.param(_xlsx_bytes(), id="xlsx"),
        pytest.param(bytes(range(256)) * 4, id="random-bytes"),
    ],
)
def test_a_binary_file_given_as_csv_is_not_a_text_file(project: Project, content: bytes) -> None:
    project.baseline()
    path = project.write("events.csv", content)
    err = project.fails(65)
    assert f"source 'events': {path} is not a text file (a NUL byte on line" in err
    assert "point sources.events.path at the CSV export, set `format` for xlsx/parquet" in err


# --- 65 or a warning: encodings ---------------------------------------------------------------

CP1252_ACCOUNTS = "account_id,name,arr\nA1,Café Müller,1000\nA2,Beta – Ltd,2000\nA3,Gamma,500\nA4,Delta,4000\n"


def test_forced_utf8_on_a_cp1252_file_is_exit_65_naming_byte_and_line(project: Project) -> None:
    project.configure(crm={"encoding": "utf-8"})
    project.baseline()
    raw = CP1252_ACCOUNTS.encode("cp1252")
    path = project.write("crm.csv", raw)
    err = project.fails(65)
    offset = raw.index(b"\xe9")
    assert f"source 'crm': {path} is not valid utf-8 text" in err
    assert f"byte {offset} (0xe9) on line 2 cannot be decoded" in err
    assert "set encoding: auto, or the file's real encoding (cp1252 for Windows exports, utf-16)" in err


def test_auto_encoding_reads_cp1252_with_a_warning_and_keeps_accents(project: Project) -> None:
    """Contrast: the same file under `encoding: auto` scores, warned, accents intact."""
    project.baseline()
    path = project.write("crm.csv", CP1252_ACCOUNTS.encode("cp1252"))
    result = project.succeeds()
    project.warned(result, "crm.csv is not UTF-8: read as cp1252 (Windows-1252)", where=str(path))
    assert "set sources.crm.encoding: cp1252" in squash(result.output)
    text = (project.out / "health_scores.csv").read_text(encoding="utf-8")
    assert "\ufffd" not in text
    assert project.table()["name"].tolist() == ["Café Müller", "Beta – Ltd", "Gamma", "Delta"]
    assert pd.read_parquet(project.out / "health_scores.parquet")["name"].tolist()[:2] == ["Café Müller", "Beta – Ltd"]


# --- Salesforce ids, JSON lines, duplicate keys -------------------------------------------

SF_IDS = ("001M000000qfPySIAU", "a0RE000000IJmcNMAT")  # EXPORTS.md's checked vectors


def _salesforce_project(project: Project, rows: int) -> list[str]:
    """Accounts with 15-character ids, events with the 18-character form; both normalized."""
    project.write("crm.csv", "account_id,name,arr\n001M000000qfPyS,Acme,1000\na0RE000000IJmcN,Beta,2000\n")
    lines = [f"{SF_IDS[i % 2]},2026-01-{2 + i % 28:02d},login,{i % 5 + 1}" for i in range(rows)]
    project.write("events.csv", "\n".join([HEADER, *lines]) + "\n")
    transform = {"key_transform": ["strip", "salesforce18"]}
    project.configure(crm=transform, events=transform)
    project.baseline()
    assert project.table()["account_id"].tolist() == list(SF_IDS)
    return lines


def test_a_wrong_salesforce_suffix_under_the_share_is_rejected_and_warned(project: Project) -> None:
    lines = _salesforce_project(project, 200)
    lines[30] = "001M000000qfPySIAA,2026-01-20,login,3"  # line 32: suffix AA, not AU
    path = project.write("events.csv", "\n".join([HEADER, *lines]) + "\n")
    result = project.succeeds()
    assert project.rejects().to_dict("records") == [
        {
            "source": "events",
            "file": str(path),
            "line": "32",
            "reason": "invalid salesforce id",
            "raw": "001M000000qfPySIAA,2026-01-20,login,3",
        }
    ]
    assert project.manifest()["inputs"]["events"]["rejected"] == {"invalid salesforce id": 1}
    project.warned(
        result,
        "1 row(s) of source 'events' have an 18-character Salesforce id whose checksum suffix is wrong",
        where="events.csv line 32",
    )
    assert project.table()["logins"].tolist() == [99, 100]


def test_wrong_salesforce_suffixes_above_the_share_are_exit_65(project: Project) -> None:
    lines = _salesforce_project(project, 20)
    lines[1] = lines[1].replace("MAT,", "mat,", 1)  # line 3: lower-cased by a spreadsheet
    lines[4] = lines[4].replace("IAU,", "IAX,", 1)  # line 6: mistyped
    path = project.write("events.csv", "\n".join([HEADER, *lines]) + "\n")
    err = project.fails(65)
    assert (
        "source 'events': 2 of 20 rows (10.0%) cannot be read (2 invalid salesforce id), "
        "more than max_reject_share 1.0%"
    ) in err
    assert f"{path.name} line 3: invalid salesforce id: 'a0RE000000IJmcNmat,2026-01-03,login,2'" in err
    assert f"{path.name} line 6: invalid salesforce id: '001M000000qfPySIAX,2026-01-06,login,5'" in err
    assert "raise max_reject_share to accept these losses" in err


def _jsonl_project(project: Project, rows: int) -> list[str]:
    lines = events_jsonl(rows)
    project.write("events.jsonl", "\n".join(lines) + "\n")
    project.configure(events_path="events.jsonl")
    project.baseline()
    return lines


def test_a_malformed_json_line_under_the_share_is_rejected(project: Project) -> None:
    lines = _jsonl_project(project, 200)
    cut = lines[99][:40]  # line 100, cut mid-object
    lines[99] = cut
    path = project.write("events.jsonl", "\n".join(lines) + "\n")
    result = project.succeeds()
    assert project.rejects().to_dict("records") == [
        {"source": "events", "file": str(path), "line": "100", "reason": "malformed json", "raw": cut}
    ]
    assert project.manifest()["inputs"]["events"]["rejected"] == {"malformed json": 1}
    project.warned(result, "1 row(s) of source 'events' were rejected: malformed json", where="events.jsonl line 100")


def test_malformed_json_lines_above_the_share_are_exit_65(project: Project) -> None:
    lines = _jsonl_project(project, 20)
    lines[3], lines[10] = "{oops", '{"account_id": "A2",'
    project.write("events.jsonl", "\n".join(lines) + "\n")
    err = project.fails(65)
    assert "source 'events': 2 of 20 rows (10.0%) cannot be read (2 malformed json)" in err
    assert "events.jsonl line 4: malformed json: '{oops'" in err
    assert """events.jsonl line 11: malformed json: '{"account_id": "A2",'""" in err
    assert "raise max_reject_share" in err


def test_a_duplicate_account_key_is_exit_65_listing_file_and_lines(project: Project) -> None:
    project.baseline()
    project.write("crm.csv", ACCOUNTS + "A2 ,Beta (copy),3000\n")  # line 6; strip makes it A2
    err = project.fails(65)
    assert "the accounts source 'crm' has 1 duplicate account key(s) in 'account_id'" in err
    assert "crm.csv line 3: account 'A2' appears again" in err
    assert "crm.csv line 6: account 'A2' appears again" in err
    assert "(hint: remove the duplicates, or fix key_transform)" in err


def test_a_broken_config_is_exit_78_not_a_data_error(project: Project) -> None:
    """Contrast: a typo in the YAML is the config's fault (78), with a did-you-mean."""
    project.baseline()
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text.replace("    path: events.csv\n", "    path: events.csv\n    delimeter: ';'\n"))
    err = project.fails(78)
    assert f"config error: {project.config} is not valid" in err
    assert "sources.events.delimeter: unknown key (hint: did you mean `delimiter`?)" in err
    assert "data error" not in err


# --- not data: footers, repeated headers, preambles -------------------------------------------


def test_salesforce_report_footer_lines_are_dropped_and_counted(project: Project) -> None:
    project.baseline()
    project.write(
        "crm.csv",
        '"account_id","name","arr"\n"A1","Acme","1000"\n"A2","Beta","2000"\n"A3","Gamma","500"\n'
        '"A4","Delta","4000"\n\n"Grand Totals (4 records)","","7500"\n'
        '"Confidential Information - Do Not Distribute"\n'
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n',
    )
    project.succeeds()
    table = project.table()
    assert table["account_id"].tolist() == ["A1", "A2", "A3", "A4"]
    assert table["arr"].tolist() == [1000.0, 2000.0, 500.0, 4000.0]
    crm = project.manifest()["inputs"]["crm"]
    assert crm["dropped"] == {"report footer": 3}
    assert (crm["rows_read"], crm["rows_used"], crm["rejected"]) == (4, 4, {})
    assert project.rejects().empty


def test_repeated_header_rows_are_dropped_with_a_warning(project: Project) -> None:
    project.baseline()
    rows = event_rows(20)
    project.write("events.csv", "\n".join([HEADER, *rows[:10], HEADER, *rows[10:]]) + "\n")
    result = project.succeeds()
    project.warned(result, "1 repeated header row(s) in source 'events' were dropped", where="sources.events")
    events = project.manifest()["inputs"]["events"]
    assert events["dropped"] == {"repeated header row": 1}
    assert (events["rows_read"], events["rejected"]) == (20, {})
    assert project.minutes() == BASE_MINUTES
    assert project.rejects().empty


def test_a_preamble_is_skipped_with_skip_rows(project: Project) -> None:
    project.baseline()
    project.write("crm.csv", "Accounts report\nGenerated 2026-01-31 by admin,,\n" + ACCOUNTS)
    project.configure(crm={"skip_rows": 2})
    project.succeeds()
    table = project.table()
    assert table["account_id"].tolist() == ["A1", "A2", "A3", "A4"]
    assert table["name"].tolist() == ["Acme", "Beta", "Gamma", "Delta"]
    assert project.minutes() == BASE_MINUTES


def test_three_header_rows_like_qualtrics_are_read(project: Project) -> None:
    project.baseline()
    labels = 'Account,Recorded Date,"What did you do, today?",Minutes'
    import_ids = (
        '"{""ImportId"":""QID1""}","{""ImportId"":""recordedDate"",""timeZone"":""America/Denver""}",'
        '"{""ImportId"":""QID2""}","{""ImportId"":""QID3""}"'
    )
    project.write("events.csv", "\n".join([HEADER, labels, import_ids, *event_rows(20)]) + "\n")
    project.configure(events={"header_rows": 3})
    project.succeeds()
    assert project.minutes() == BASE_MINUTES
    assert project.table()["logins"].tolist() == [7, 7, 6, 0]
    assert project.manifest()["inputs"]["events"]["rows_read"] == 20


# --- where warnings go --------------------------------------------------------------------------


def test_data_warnings_go_to_stderr(project: Project) -> None:
    project.baseline()
    project.write("events.csv", HEADER + "\n")
    result = project.succeeds()
    assert "events.csv has a header but no data rows" in squash(result.stderr)
    assert "events.csv has a header but no data rows" not in result.stdout
