"""`healthscore validate`: every problem of every source in one run, the exit code `score`
would give, facts per source (rows, dates, keys) and per metric window, and nothing written."""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from conftest import ROOT
from typer.testing import CliRunner, Result

from healthscore.cli import app
from healthscore.config import load_config
from healthscore.render import make_console
from healthscore.render_validate import render_validation
from healthscore.validate import SourceReport, ValidationReport, validate, validate_file

runner = CliRunner()

CRM = "account_id,name,arr\nA1,Acme,1000\nA2,Beta,2000\nA3,Gamma,500\nA4,Delta,4000\n"
EVENTS = (
    "account_id,timestamp,event,minutes\n"
    "A1,2025-12-20,login,5\n"  # before the 30d window (2026-01-02..2026-01-31): the window is covered
    "A1,2026-01-10,login,3\n"
    "A2,2026-01-15,login,4\n"
    "A3,2026-01-30,login,2\n"
)
TICKETS = (
    "account_id,created_at,priority\n"
    "A1,2025-12-28,low\n"
    "A1,2026-01-05,high\n"
    "A2,2026-01-20,high\n"
    "A2,2026-01-21,low\n"
    "A3,2026-01-29,low\n"
)
NPS = "account_id,responded_at,score\nA1,2025-10-15,9\nA2,2025-12-01,7\nA3,2026-01-25,3\n"  # 90d window from 2025-11-03
CONFIG: dict[str, Any] = {
    "version": 1,
    "as_of": "2026-01-31",
    "accounts": {"source": "crm", "columns": ["name", "arr"], "name": "name", "arr": "arr"},
    "sources": {
        "crm": {"path": "crm.csv", "key": "account_id"},
        "events": {"path": "events.csv", "key": "account_id", "time": "timestamp", "types": {"minutes": "float"}},
        "tickets": {"path": "tickets.csv", "key": "account_id", "time": "created_at"},
        "nps": {"path": "nps.csv", "key": "account_id", "time": "responded_at", "types": {"score": "int"}},
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
        "urgent": {
            "source": "tickets",
            "agg": "count",
            "where": "priority == 'high'",
            "window": "30d",
            "missing": {"fill": 0},
            "scale": {"method": "linear", "bad": 5, "good": 0},
        },
        "nps": {
            "source": "nps",
            "agg": "nps",
            "field": "score",
            "window": "90d",
            "scale": {"method": "linear", "bad": -100, "good": 100},
        },
    },
    "groups": {
        "usage": {"metrics": ["logins", "minutes"]},
        "support": {"metrics": ["urgent"]},
        "nps": {"metrics": ["nps"]},
    },
    "outputs": {"dir": "out", "formats": ["csv"]},
}


class Project:
    """Four small sources (crm, events, tickets, nps) and health.yaml, in a folder; `data`
    is the config as a dict, written again by `save`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data: dict[str, Any] = copy.deepcopy(CONFIG)
        for name, text in (("crm.csv", CRM), ("events.csv", EVENTS), ("tickets.csv", TICKETS), ("nps.csv", NPS)):
            self.write(name, text)
        self.save()

    @property
    def config(self) -> Path:
        return self.root / "health.yaml"

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def save(self) -> None:
        self.config.write_text(yaml.safe_dump(self.data, sort_keys=False), encoding="utf-8")

    def validate(self, *args: str) -> Result:
        """`healthscore validate -c health.yaml ARGS`; never writes the outputs folder."""
        result = runner.invoke(app, ["validate", "-c", str(self.config), *args])
        assert "Traceback" not in result.output
        assert not (self.root / "out").exists()
        return result

    def report(self, as_of: str | None = None) -> ValidationReport:
        self.save()
        return validate(load_config(self.config), as_of)

    def json(self, *args: str) -> dict[str, Any]:
        result = self.validate("--json", *args)
        data: dict[str, Any] = json.loads(result.stdout)
        assert data["exit_code"] == result.exit_code
        return data


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def squash(text: str) -> str:
    return " ".join(text.split())


def source(report: ValidationReport, name: str) -> SourceReport:
    return next(s for s in report.sources if s.name == name)


def problems_of(report: ValidationReport) -> list[tuple[str | None, int, str]]:
    return [(i.source, i.exit_code, i.message) for i in report.issues]


# --- exit 0 ----------------------------------------------------------------------------------


def test_a_clean_project_is_ready_to_score(project: Project) -> None:
    result = project.validate()
    assert result.exit_code == 0, result.output
    out = squash(result.stdout)
    assert f"OK: {project.config} is ready to score 4 accounts as of 2026-01-31" in out
    assert "| crm (accounts) | 1 | 4 | 0 | - | 4 accounts | | OK |" in out
    assert "| events | 1 | 4 | 0 | 2025-12-20..2026-01-30 | 75.0% of 3 |" not in out  # all 3 keys match
    assert "| events | 1 | 4 | 0 | 2025-12-20..2026-01-30 | 100.0% of 3 | 100.0% of 4 | OK |" in out
    assert "| logins | events | 30d | 2026-01-02..2026-01-31 | 3 | OK |" in out
    assert "| nps | nps | 90d | 2025-11-03..2026-01-31 | 2 | OK |" in out
    assert "warning" not in out
    assert "\x1b[" not in result.stdout
    assert result.stderr == ""


def test_the_report_counts_what_score_would_score(project: Project) -> None:
    report = project.report()
    assert (report.ok, report.exit_code, report.accounts, report.scored) == (True, 0, 4, 4)
    assert report.as_of == dt.date(2026, 1, 31)
    assert report.segments is not None
    assert sum(report.segments.values()) == 4
    events = report.sources[1]
    assert (events.name, events.status, events.rows, events.rows_used) == ("events", "ok", 4, 4)
    assert events.columns == ("account_id", "timestamp", "minutes")
    assert (events.time_min, events.time_max) == (dt.datetime(2025, 12, 20), dt.datetime(2026, 1, 30))


def test_the_sample_data_and_default_config_are_ready() -> None:
    result = runner.invoke(app, ["validate", "-c", str(ROOT / "configs" / "default.yaml")])
    assert result.exit_code == 0, result.output
    out = squash(result.stdout)
    assert "is ready to score 500 accounts as of 2026-01-31" in out
    assert "| tickets | 1 | 2,953 | 0 | 2025-11-01..2026-01-31 | 99.0% of 403 | 99.5% of 2,953 | WARN |" in out
    assert "4 key(s) (15 rows) match no account" in out  # the warning `score` gives too
    assert "the first 88 day(s) of its 180d window 2025-08-05..2026-01-31 have no data" in out  # nps from 2025-11-01


def test_a_header_only_events_file_is_not_an_error(project: Project) -> None:
    """As for `score`: no events at all is a fact, with a warning, not a broken file."""
    project.write("events.csv", "account_id,timestamp,event,minutes\n")
    result = project.validate()
    assert result.exit_code == 0, result.output
    assert "events.csv has a header but no data rows" in squash(result.stdout)


# --- every problem at once --------------------------------------------------------------------


def test_every_problem_of_every_source_is_listed_in_one_run(project: Project) -> None:
    (project.root / "events.csv").unlink()
    project.write("tickets.csv", TICKETS.replace("priority", "prio"))
    project.write("nps.csv", NPS.replace("2025-12-01", "yesterday"))
    result = project.validate()
    assert result.exit_code == 66, result.output
    out = squash(result.stdout)
    assert "3 problem(s):" in out
    assert f"x [events] input missing: source 'events': input file not found: {project.root / 'events.csv'}" in out
    assert "- sources.events.path is 'events.csv' (hint: paths are relative to the config file)" in out
    assert f"x [tickets] data error: source 'tickets': {project.root / 'tickets.csv'} lacks 1 column(s)" in out
    assert "column 'priority' not found (hint: map a header to it with sources.tickets.rename)" in out
    assert "x [nps] data error: source 'nps': 1 column(s) of nps.csv hold values of the wrong type" in out
    assert "nps.csv line 3: 'yesterday'" in out
    assert "| events | - | - | - | - | - | - | ERROR |" in out
    assert "| crm (accounts) | 1 | 4 | 0 | - | 4 accounts | | OK |" in out
    assert out.endswith("3 problem(s), 0 warning(s): exit 66, input missing or empty; fix them before scoring")


def test_only_data_problems_are_exit_65(project: Project) -> None:
    project.write("tickets.csv", TICKETS.replace("priority", "prio"))
    project.write("nps.csv", NPS.replace("2025-12-01", "yesterday"))
    report = project.report()
    assert report.exit_code == 65
    assert [(i.source, i.exit_code) for i in report.issues] == [("tickets", 65), ("nps", 65)]
    assert report.accounts is None  # the run was not attempted


def test_aggregation_problems_of_two_sources_are_both_listed(project: Project) -> None:
    """Found after reading, still one source at a time: text summed, and NPS beyond 0..10."""
    project.data["sources"]["events"]["types"] = {}
    project.write("events.csv", EVENTS.replace("login,3", "login,three"))
    project.write("nps.csv", NPS.replace(",3\n", ",42\n"))  # 2026-01-25, in the window
    report = project.report()
    assert report.exit_code == 65
    assert problems_of(report) == [
        (
            "events",
            65,
            "metric 'minutes': agg sum needs numbers, but column 'minutes' of source 'events' holds text",
        ),
        (
            "nps",
            65,
            "metric 'nps': agg nps needs scores from 0 to 10, but column 'score' of source 'nps' has 1 outside "
            "that range",
        ),
    ]


def test_duplicate_and_blank_account_keys(project: Project) -> None:
    project.write("crm.csv", CRM + "A2,Beta again,10\n,Nobody,5\n")
    report = project.report()
    assert report.exit_code == 65
    crm = source(report, "crm")
    assert crm.keys is not None
    assert (crm.keys.keys, crm.keys.duplicate_keys, crm.keys.blank_keys) == (4, 1, 1)
    assert problems_of(report)[0] == (
        "crm",
        65,
        "the accounts source 'crm' has 1 duplicate account key(s) in 'account_id'",
    )
    assert "| crm (accounts) | 1 | 6 | 1 | - | 4 accounts | 1 duplicated, 1 blank | ERROR |" in squash(_text(report))


def test_accounts_without_rows_are_exit_66(project: Project) -> None:
    project.write("crm.csv", "account_id,name,arr\n")
    report = project.report()
    assert report.exit_code == 66
    assert problems_of(report) == [("crm", 66, "the accounts source 'crm' has no rows, so there is nothing to score")]


# --- dates against windows ---------------------------------------------------------------------


def test_a_window_without_rows_is_exit_65_naming_metric_window_and_dates(project: Project) -> None:
    project.write("tickets.csv", "account_id,created_at,priority\nA1,2025-10-01,high\nA2,2025-11-15,low\n")
    result = project.validate()
    assert result.exit_code == 65, result.output
    out = squash(result.stdout)
    assert (
        "x [tickets] data error: metrics.urgent.window: metric 'urgent': source 'tickets' has no rows in its 30d "
        "window 2026-01-02..2026-01-31, so the metric would be empty for every account (hint: score a day the data "
        "covers with --as-of, or re-export the source with the dates the window needs)"
    ) in out
    assert "- the rows of source 'tickets' run from 2025-10-01 to 2025-11-15" in out
    assert "| urgent | tickets | 30d | 2026-01-02..2026-01-31 | 0 | EMPTY: no rows |" in out
    assert "source 'tickets' ends on 2025-11-15, 77 days before as_of 2026-01-31" in out  # stale, a warning
    earlier = project.report("2025-11-20")  # a day the tickets cover, but not the events
    assert [(i.source, i.where) for i in earlier.issues] == [
        ("events", "metrics.logins.window"),
        ("events", "metrics.minutes.window"),
    ]


def test_growth_needs_rows_in_the_window_before_too(project: Project) -> None:
    project.data["metrics"]["growth"] = {
        "source": "events",
        "agg": "growth",
        "of": {"agg": "count"},
        "window": "14d",
        "scale": {"method": "linear", "bad": -1, "good": 1},
    }
    project.data["groups"]["usage"]["metrics"].append("growth")
    project.write("events.csv", "account_id,timestamp,event,minutes\nA1,2026-01-20,login,1\nA2,2026-01-30,login,2\n")
    report = project.report()
    assert report.exit_code == 65
    assert problems_of(report)[-1] == (
        "events",
        65,
        "metric 'growth': source 'events' has no rows in the 14d window before its own (2026-01-04..2026-01-17), "
        "which growth compares with, so the metric would be empty for every account",
    )
    growth = next(w for w in report.windows if w.metric == "growth")
    assert (growth.previous_start, growth.start, growth.previous_rows, growth.rows) == (
        dt.date(2026, 1, 4),
        dt.date(2026, 1, 18),
        0,
        2,
    )


def test_a_window_the_data_starts_inside_of_is_a_warning(project: Project) -> None:
    project.write("nps.csv", "account_id,responded_at,score\nA1,2025-12-13,9\nA2,2026-01-28,7\n")
    result = project.validate()
    assert result.exit_code == 0, result.output
    out = squash(result.stdout)
    assert (
        "! [nps] metrics.nps.window: metric 'nps': source 'nps' starts on 2025-12-13, so the first 40 day(s) of its "
        "90d window 2025-11-03..2026-01-31 have no data (hint: re-export more history, or use a shorter window)"
    ) in out
    assert "| nps | nps | 90d | 2025-11-03..2026-01-31 | 2 | PARTIAL: first 40 day(s) missing |" in out
    assert out.endswith(f"OK: {project.config} is ready to score 4 accounts as of 2026-01-31 (1 warning(s))")
    assert "| nps | 1 | 2 | 0 | 2025-12-13..2026-01-28 | 100.0% of 2 | 100.0% of 2 | WARN |" in out


def test_rows_all_after_as_of_and_rows_years_ahead_are_warned(project: Project) -> None:
    project.data["metrics"]["days_since_ticket"] = {
        "source": "tickets",
        "agg": "days_since",
        "scale": {"method": "linear", "bad": 30, "good": 0},
    }
    project.data["metrics"].pop("urgent")
    project.data["groups"]["support"]["metrics"] = ["days_since_ticket"]
    project.write("tickets.csv", "account_id,created_at,priority\nA1,2026-02-10,high\nA2,2029-03-01,low\n")
    report = project.report()
    messages = [w.message for w in report.warnings]
    assert (
        "all 2 rows of source 'tickets' are dated after as_of 2026-01-31 (from 2026-02-10 to 2029-03-01), "
        "so its metrics ignore them"
    ) in messages
    assert (
        "1 row(s) of source 'tickets' are dated more than a year after as_of 2026-01-31 (latest 2029-03-01)" in messages
    )
    assert source(report, "tickets").rows_after_as_of == 2


# --- keys and checks ---------------------------------------------------------------------------


def test_key_match_figures_are_exact(project: Project) -> None:
    project.write("tickets.csv", TICKETS + "X9,2026-01-10,low\nX9,2026-01-11,high\nX8,2026-01-12,low\n")
    report = project.report()
    tickets = source(report, "tickets")
    assert tickets.keys is not None
    assert tickets.keys.to_dict() == {
        "keys": 5,
        "matched_keys": 3,
        "key_share": 0.6,
        "rows": 8,
        "matched_rows": 5,
        "row_share": 0.625,
        "blank_keys": 0,
        "duplicate_keys": 0,
    }
    assert tickets.status == "warn"
    assert [w.message for w in report.warnings if w.source == "tickets"] == [
        "2 key(s) (3 rows) match no account, e.g. X8, X9"
    ]
    assert "| tickets | 1 | 8 | 0 | 2025-12-28..2026-01-29 | 60.0% of 5 | 62.5% of 8 | WARN |" in squash(_text(report))


def test_max_unmatched_share_exceeded_is_exit_65(project: Project) -> None:
    project.write("tickets.csv", TICKETS + "X9,2026-01-10,low\nX9,2026-01-11,high\nX8,2026-01-12,low\n")
    project.data["checks"] = {"max_unmatched_share": 0.1}
    report = project.report()
    assert report.exit_code == 65
    assert [(i.source, i.where, i.message) for i in report.issues] == [
        (
            "tickets",
            "sources.tickets.key",
            "37.5% of the rows of source 'tickets' (3 of 8) match no account, more than checks.max_unmatched_share "
            "10.0%",
        )
    ]
    assert report.accounts == 4  # the run itself went through


def test_fail_on_warnings_turns_the_runs_warnings_into_problems(project: Project) -> None:
    project.write("tickets.csv", TICKETS + "X9,2026-01-10,low\n")
    assert project.validate().exit_code == 0
    result = project.validate("--fail-on-warnings")
    assert result.exit_code == 65, result.output
    out = squash(result.stdout)
    assert "x [tickets] data error: source tickets: warning: 1 key(s) (1 rows) match no account, e.g. X9" in out
    assert "! [tickets]" not in out  # listed once, as a problem
    project.data["checks"] = {"fail_on_warnings": True}
    project.save()
    assert project.validate().exit_code == 65


# --- config errors, JSON, nothing written ------------------------------------------------------


def test_a_bad_config_is_exit_78_with_every_problem(project: Project) -> None:
    project.data["metrics"]["logins"]["window"] = "thirty"
    project.data["metrics"]["nps"]["source"] = "survey"
    project.save()
    result = project.validate()
    assert result.exit_code == 78
    err = squash(result.stderr)
    assert err.startswith(f"config error: {project.config} is not valid")
    assert 'metrics.logins.window: expected a duration like 30d, 12w, 6m or 1y, got "thirty"' in err
    assert "metrics.nps.source" in err
    data = project.json()
    assert (data["exit_code"], data["ok"], data["as_of"], data["sources"]) == (78, False, None, [])
    assert [p["title"] for p in data["problems"]] == ["config error"]
    assert len(data["problems"][0]["details"]) == 2


def test_a_missing_config_file_is_exit_66(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate", "-c", str(tmp_path / "nope.yaml")]).exit_code == 66
    report = validate_file(tmp_path / "nope.yaml")
    assert report.exit_code == 66


def test_a_bad_as_of_is_a_usage_error(project: Project) -> None:
    result = project.validate("--as-of", "31/01/2026")
    assert result.exit_code == 2
    assert "--as-of must be a date like 2026-01-31 or 'today'" in result.stderr


def test_json_output_is_the_librarys_report(project: Project) -> None:
    (project.root / "events.csv").unlink()
    data = project.json()
    assert data == json.loads(json.dumps(project.report().to_dict()))
    assert (data["exit_code"], data["ok"], data["as_of"]) == (66, False, "2026-01-31")
    assert [(p["source"], p["exit_code"]) for p in data["problems"]] == [("events", 66)]
    assert [s["status"] for s in data["sources"]] == ["ok", "error", "ok", "ok"]
    assert data["sources"][2]["time"] == {
        "column": "created_at",
        "min": "2025-12-28T00:00:00",
        "max": "2026-01-29T00:00:00",
        "rows_after_as_of": 0,
    }
    assert data["windows"][0]["metric"] == "urgent"  # events could not be read: no windows for it


def test_validate_writes_nothing_even_with_history(project: Project) -> None:
    project.data["history"] = {"path": "history"}
    project.save()
    before = sorted(p.name for p in project.root.iterdir())
    assert project.validate().exit_code == 0
    assert project.validate("--json").exit_code == 0
    assert sorted(p.name for p in project.root.iterdir()) == before


# --- exit 0 means `score` would succeed --------------------------------------------------------


def _break_nothing(project: Project) -> None:
    """Leave the project as it is."""


def _missing_file(project: Project) -> None:
    (project.root / "events.csv").unlink()


def _missing_column(project: Project) -> None:
    project.write("tickets.csv", TICKETS.replace("priority", "prio"))


def _bad_number(project: Project) -> None:
    project.write("events.csv", EVENTS.replace("login,4", "login,four"))


def _unmatched_share(project: Project) -> None:
    project.write("tickets.csv", TICKETS + "X9,2026-01-10,low\n")
    project.data["checks"] = {"max_unmatched_share": 0.1}
    project.save()


def _partial_window(project: Project) -> None:
    project.write("nps.csv", "account_id,responded_at,score\nA1,2025-12-13,9\n")


def _too_few_accounts(project: Project) -> None:
    project.data["checks"] = {"min_accounts": 10}
    project.save()


BREAKAGES = [
    (_break_nothing, 0),
    (_missing_file, 66),
    (_missing_column, 65),
    (_bad_number, 65),
    (_unmatched_share, 65),
    (_partial_window, 0),
    (_too_few_accounts, 65),
]


@pytest.mark.parametrize(("breakage", "code"), BREAKAGES)
def test_validate_exits_as_score_would(project: Project, breakage: Callable[[Project], None], code: int) -> None:
    breakage(project)
    assert project.validate().exit_code == code
    scored = runner.invoke(app, ["score", "-c", str(project.config)])
    assert scored.exit_code == code, scored.output


def _text(report: ValidationReport) -> str:
    """The plain-text rendering of a report."""
    import io

    stream = io.StringIO()
    render_validation(report, make_console(stream))
    return stream.getvalue()


def test_an_unused_source_is_warned_about_once(project: Project) -> None:
    project.data["sources"]["extra"] = {"path": "nowhere.csv", "key": "account_id"}
    report = project.report()
    assert report.exit_code == 0  # not read, so its missing file is no problem
    assert [w.message for w in report.warnings] == [
        "source 'extra' is not used by any metric or by accounts, so it was not read"
    ]


# --- engine: ibis: sources read and checked on their backend -----------------------------------

IBIS_MISSING = next(
    (
        f"{module} is not installed (pip install 'healthscore[scale]')"
        for module in ("ibis", "duckdb")
        if not importlib.util.find_spec(module)
    ),
    "",
)
needs_ibis = pytest.mark.skipif(bool(IBIS_MISSING), reason=IBIS_MISSING or "ibis is installed")
TIMES = {"events": "timestamp", "tickets": "created_at", "nps": "responded_at"}


def facts(report: ValidationReport) -> dict[str, Any]:
    """The report as JSON data without where the sources were read from (paths, tables, files)."""
    data = report.to_dict()
    data.pop("config")
    for source in data["sources"]:
        for where in ("path", "table", "files"):
            source.pop(where)
    return data


def frames(project: Project) -> dict[str, pd.DataFrame]:
    """The project's CSV files as typed frames: text keys, times, numbers."""
    found = {}
    for name in ("crm", "events", "tickets", "nps"):
        frame = pd.read_csv(project.root / f"{name}.csv", dtype={"account_id": "str"})
        if name in TIMES:
            frame[TIMES[name]] = pd.to_datetime(frame[TIMES[name]])
        found[name] = frame
    return found


def lake(project: Project, tables: dict[str, str]) -> Path:
    """lake.duckdb holding the project's sources as typed tables (`tables`: source -> table,
    `schema.table` in a schema), and the config reading every source from there."""
    import duckdb

    path = project.root / "lake.duckdb"
    with duckdb.connect(str(path)) as con:
        for name, frame in frames(project).items():
            table = tables[name]
            if "." in table:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
            con.unregister("frame")
    project.data.update(engine="ibis", connection="duckdb://lake.duckdb")
    for name, table in tables.items():
        source = project.data["sources"][name]
        source.pop("path")
        source["table"] = table
    project.save()
    return path


@needs_ibis
def test_engine_ibis_over_parquet_gives_the_facts_of_the_pandas_engine(project: Project) -> None:
    expected = project.report()
    for name, frame in frames(project).items():
        frame.to_parquet(project.root / f"{name}.parquet", index=False)
        if name != "crm":  # the accounts stay a CSV file, read in memory
            project.data["sources"][name]["path"] = f"{name}.parquet"
    project.data["engine"] = "ibis"
    report = project.report()
    assert (report.exit_code, report.accounts, report.scored) == (0, 4, 4)
    assert facts(report) == facts(expected)
    events = source(report, "events")
    assert (events.rows, events.rows_used, events.columns) == (4, 4, ("account_id", "timestamp", "minutes"))
    assert (events.time_min, events.time_max) == (dt.datetime(2025, 12, 20), dt.datetime(2026, 1, 30))
    assert [f.path for f in events.files] == [str(project.root / "events.parquet")]
    result = project.validate()
    assert result.exit_code == 0, result.output
    out = squash(result.stdout)
    assert "| events | 1 | 4 | 0 | 2025-12-20..2026-01-30 | 100.0% of 3 | 100.0% of 4 | OK |" in out
    assert "| nps | nps | 90d | 2025-11-03..2026-01-31 | 2 | OK |" in out


@needs_ibis
def test_engine_ibis_over_duckdb_tables(project: Project) -> None:
    """Every source a `table:`, the accounts too (fetched whole), in a DuckDB file; the facts
    are those of the same rows as CSV files under the pandas engine, and nothing is written."""
    project.write("tickets.csv", TICKETS + "X9,2026-01-10,low\nX9,2026-01-11,high\n")
    expected = project.report()
    lake(project, {"crm": "crm", "events": "events", "tickets": "support.tickets", "nps": "nps"})
    before = sorted(p.name for p in project.root.iterdir())
    report = project.report()
    assert (report.exit_code, report.accounts, report.scored) == (0, 4, 4)
    assert facts(report) == facts(expected)
    tickets = source(report, "tickets")
    assert (tickets.path, tickets.table, tickets.status) == ("", "support.tickets", "warn")
    assert [(f.path, f.rows) for f in tickets.files] == [("duckdb://lake.duckdb#support.tickets", 7)]
    assert tickets.keys is not None
    assert (tickets.keys.keys, tickets.keys.matched_keys, tickets.keys.rows, tickets.keys.matched_rows) == (4, 3, 7, 5)
    assert [w.message for w in report.warnings] == ["1 key(s) (2 rows) match no account, e.g. X9"]
    result = project.validate()
    assert result.exit_code == 0, result.output
    out = squash(result.stdout)
    assert "| crm (accounts) | 1 | 4 | 0 | - | 4 accounts | | OK |" in out
    assert "| tickets | 1 | 7 | 0 | 2025-12-28..2026-01-29 | 75.0% of 4 | 71.4% of 7 | WARN |" in out
    assert "| urgent | tickets | 30d | 2026-01-02..2026-01-31 | 6 | OK |" in out
    assert project.validate("--json").exit_code == 0
    assert sorted(p.name for p in project.root.iterdir()) == before


@needs_ibis
def test_engine_ibis_a_missing_table_is_exit_66_and_other_problems_are_listed_too(project: Project) -> None:
    lake(project, {"crm": "crm", "events": "events", "tickets": "tickets", "nps": "nps"})
    project.data["sources"]["tickets"]["table"] = "support.tickets"  # not there: `tickets` is in main
    project.data["sources"]["events"]["types"] = {"minutes": "string"}  # summed: not numbers
    project.save()
    before = sorted(p.name for p in project.root.iterdir())
    result = project.validate()
    assert result.exit_code == 66, result.output
    out = squash(result.stdout)
    assert "2 problem(s):" in out
    assert (
        "x [tickets] input missing: source 'tickets': table 'support.tickets' not found on duckdb://lake.duckdb"
    ) in out
    assert (
        "- sources.tickets.table is 'support.tickets' (hint: check the table's name "
        "(`db.table` names its schema) and the connection)"
    ) in out
    assert (
        "x [events] data error: metric 'minutes': agg sum needs numbers, but column 'minutes' of source 'events' "
        "holds text"
    ) in out
    assert "| tickets | - | - | - | - | - | - | ERROR |" in out
    assert "| nps | 1 | 3 | 0 | 2025-10-15..2026-01-25 | 100.0% of 3 | 100.0% of 3 | OK |" in out
    assert out.endswith("2 problem(s), 0 warning(s): exit 66, input missing or empty; fix them before scoring")
    assert sorted(p.name for p in project.root.iterdir()) == before
    assert runner.invoke(app, ["score", "-c", str(project.config)]).exit_code == 66


@needs_ibis
def test_engine_ibis_an_empty_window_is_found_on_the_backend(project: Project) -> None:
    project.write("tickets.csv", "account_id,created_at,priority\nA1,2025-10-01,high\nA2,2025-11-15,low\n")
    expected = project.report()
    lake(project, {"crm": "crm", "events": "events", "tickets": "tickets", "nps": "nps"})
    report = project.report()
    assert report.exit_code == 65
    assert report.issues == expected.issues
    assert [w.message for w in report.warnings] == [w.message for w in expected.warnings]
    assert facts(report) == facts(expected)


def _nps_out_of_range(project: Project) -> None:
    """Found by the aggregation's results: under engine ibis, by the final run."""
    project.write("nps.csv", NPS.replace(",3\n", ",42\n"))


@needs_ibis
@pytest.mark.parametrize(("breakage", "code"), [*BREAKAGES, (_nps_out_of_range, 65)])
def test_validate_exits_as_score_would_under_engine_ibis(
    project: Project, breakage: Callable[[Project], None], code: int
) -> None:
    """The CSV files read by an in-memory DuckDB."""
    project.data["engine"] = "ibis"
    project.save()
    breakage(project)
    assert project.validate().exit_code == code
    scored = runner.invoke(app, ["score", "-c", str(project.config)])
    assert scored.exit_code == code, scored.output
