"""`healthscore init`: guesses over the shipped sample and over oddly named exports, and the
written config running end to end."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthscore.config import load_config
from healthscore.errors import InputMissingError, UsageError
from healthscore.init import FileGuess, export_files, refuse_overwrite, report, survey, write_config
from healthscore.init_model import LOW_CONFIDENCE, header_tokens, key_name_score
from healthscore.pipeline import run

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"


def by_name(guesses: list[FileGuess]) -> dict[str, FileGuess]:
    return {g.path.name: g for g in guesses}


def header(guess: FileGuess, part: str) -> str:
    """The file's header of the column guessed for a part."""
    return guess.header_of(guess.columns[part].column)


@pytest.fixture(scope="module")
def sample_guesses() -> list[FileGuess]:
    return survey(SAMPLE)


def test_sample_roles_presets_keys_and_times(sample_guesses: list[FileGuess]) -> None:
    files = by_name(sample_guesses)
    outcomes = files.pop("churn_outcomes.csv")  # the backtest's outcomes: no input of the score
    assert outcomes.role == "unknown"
    assert "churn outcomes (column 'churned')" in outcomes.reason
    assert "healthscore backtest --outcomes" in outcomes.reason
    roles = {name: g.role for name, g in files.items()}
    assert roles == {
        "crm_accounts.csv": "accounts",
        "zendesk_tickets.csv": "tickets",
        "nps_responses.csv": "survey",
        "usage_events.parquet": "usage",
    }
    assert files["zendesk_tickets.csv"].preset == "zendesk_tickets"
    assert [g.preset for name, g in files.items() if name != "zendesk_tickets.csv"] == [None] * 3
    keys = {name: header(g, "key") for name, g in files.items()}
    assert keys == {
        "crm_accounts.csv": "Account ID",
        "zendesk_tickets.csv": "Organization",
        "nps_responses.csv": "account_id",
        "usage_events.parquet": "account_id",
    }
    times = {name: header(g, "time") for name, g in files.items() if "time" in g.columns}
    assert times == {
        "zendesk_tickets.csv": "Created at",
        "nps_responses.csv": "responded_at",
        "usage_events.parquet": "timestamp",
    }
    crm = files["crm_accounts.csv"]
    assert {p: header(crm, p) for p in ("name", "arr", "owner", "region", "tier")} == {
        "name": "Account Name",
        "arr": "Annual Revenue",
        "owner": "Account Owner",
        "region": "Region",
        "tier": "Tier",
    }
    assert header(files["nps_responses.csv"], "score") == "score"
    assert header(files["usage_events.parquet"], "event") == "event"
    assert all(g.confidence >= LOW_CONFIDENCE and g.columns["key"].confidence >= 0.9 for g in files.values())


def test_sample_config_scores_every_account(sample_guesses: list[FileGuess], tmp_path: Path) -> None:
    output = tmp_path / "health.yaml"
    text = write_config(sample_guesses, SAMPLE, output)
    assert output.read_text(encoding="utf-8") == text
    assert "# CHECK:" not in text  # every guess on the sample is sure
    config = load_config(output)
    assert config.sources["tickets"].preset == "zendesk_tickets"
    assert config.as_of is not None
    assert config.as_of.isoformat() == "2026-01-31"
    result = run(config)
    table = result.table
    assert len(table) == 500
    assert (table["segment"] != "Unscored").mean() >= 0.95
    assert set(config.groups) == {"adoption", "sentiment", "support", "revenue"}
    assert {"nps_180d", "tickets_30d", "urgent_tickets_90d", "csat_90d", "logins_30d", "active_days_30d"} <= set(
        config.metrics
    )


def test_report_names_role_key_and_time(sample_guesses: list[FileGuess]) -> None:
    lines = report(sample_guesses)
    tickets = lines.index(next(line for line in lines if line.startswith(f"{SAMPLE / 'zendesk_tickets.csv'}:")))
    assert "support tickets (sources.tickets, preset zendesk_tickets)" in lines[tickets]
    assert "key 'Organization'" in lines[tickets + 1]
    assert "time 'Created at'" in lines[tickets + 1]
    assert not any("CHECK" in line for line in lines)


# --- exports named and shaped differently ----------------------------------------------------

ANSWER = "How likely are you to recommend us to a colleague? (0-10)"


def make_exports(folder: Path) -> Path:
    """Four exports with unusual names, delimiters, formats and date styles, 40 accounts."""
    rng = np.random.default_rng(11)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"C-{1000 + i}" for i in range(40)]
    accounts = pd.DataFrame(
        {
            "Customer ID": ids,
            "Company": [f"Company {i}, Inc." for i in range(40)],
            "Annual Contract Value": rng.integers(5, 200, 40) * 1000,
            "CSM": rng.choice(["Ana", "Bo", "Cy"], 40),
        }
    )
    accounts.to_csv(folder / "Accounts Export (3).csv", sep=";", index=False)
    end = pd.Timestamp("2026-03-15")
    opened = end - pd.to_timedelta(rng.integers(0, 120 * 24, 300), unit="h")
    tickets = pd.DataFrame(
        {
            "org_id": rng.choice(ids, 300),
            "opened": opened.strftime("%m/%d/%Y %H:%M"),
            "sev": rng.choice(["P1", "P2", "P3", "P4"], 300),
            "state": rng.choice(["open", "pending", "closed"], 300),
        }
    )
    tickets.to_csv(folder / "tickets-2026.csv", index=False)
    answers = pd.DataFrame(
        {
            "customer": rng.choice(ids, 120),
            "submitted": end - pd.to_timedelta(rng.integers(0, 200, 120), unit="D"),
            ANSWER: rng.integers(0, 11, 120),
        }
    )
    answers.to_excel(folder / "survey.xlsx", index=False)
    seconds = int((end - pd.Timestamp("1970-01-01")).total_seconds()) - rng.integers(0, 90 * 86400, 3000)
    names = rng.choice(["login", "export", "report_view", "share", "search"], 3000)
    lines = [
        json.dumps({"acct": a, "ts": int(t), "name": n})
        for a, t, n in zip(rng.choice(ids[:36], 3000), seconds, names, strict=True)
    ]
    (folder / "events.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return folder


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_exports(tmp_path_factory.mktemp("exports"))


def test_odd_exports_roles_keys_times_and_options(exports: Path) -> None:
    files = by_name(survey(exports))
    assert {name: g.role for name, g in files.items()} == {
        "Accounts Export (3).csv": "accounts",
        "tickets-2026.csv": "tickets",
        "survey.xlsx": "survey",
        "events.jsonl.gz": "usage",
    }
    assert {name: header(g, "key") for name, g in files.items()} == {
        "Accounts Export (3).csv": "Customer ID",
        "tickets-2026.csv": "org_id",
        "survey.xlsx": "customer",
        "events.jsonl.gz": "acct",
    }
    assert {name: header(g, "time") for name, g in files.items() if "time" in g.columns} == {
        "tickets-2026.csv": "opened",
        "survey.xlsx": "submitted",
        "events.jsonl.gz": "ts",
    }
    accounts, tickets = files["Accounts Export (3).csv"], files["tickets-2026.csv"]
    assert accounts.options == {"delimiter": ";"}
    assert tickets.options == {"date_format": "%m/%d/%Y %H:%M"}
    assert (header(accounts, "arr"), header(accounts, "owner"), header(accounts, "name")) == (
        "Annual Contract Value",
        "CSM",
        "Company",
    )
    assert (header(tickets, "priority"), header(tickets, "status")) == ("sev", "state")
    assert header(files["survey.xlsx"], "score") == ANSWER
    assert header(files["events.jsonl.gz"], "event") == "name"


def test_odd_exports_config_runs_and_marks_unsure_lines(exports: Path, tmp_path: Path) -> None:
    guesses = survey(exports)
    output = tmp_path / "configs" / "health.yaml"
    output.parent.mkdir()
    text = write_config(guesses, exports, output)
    result = run(load_config(output))
    assert len(result.table) == 40
    assert (result.table["segment"] != "Unscored").mean() >= 0.8
    assert result.summary is not None
    lines = text.splitlines()
    unsure = [(g, part, found) for g in guesses for part, found in g.columns.items() if found.low]
    assert unsure, "the vague `name` header of the events should be an unsure guess"
    for g, part, found in unsure:
        shown = f"{part}: {g.header_of(found.column)!r}"
        marked = [line for line in lines if shown in line]
        assert marked, shown
        assert all("# CHECK:" in line for line in marked), shown
    sure = [line for line in lines if line.strip().startswith(("key:", "time:"))]
    assert len(sure) == 7
    assert not any("CHECK" in line for line in sure)
    assert any(line.startswith("  CHECK sources.usage") for line in report(guesses))


def test_paths_are_relative_to_a_config_beside_the_exports_else_absolute(tmp_path: Path) -> None:
    exports = make_exports(tmp_path / "project" / "exports")
    beside = tmp_path / "project" / "config" / "health.yaml"
    beside.parent.mkdir()
    text = write_config(survey(exports), exports, beside)
    config = load_config(beside)
    assert config.sources["accounts"].path == "../exports/Accounts Export (3).csv"
    assert config.resolve(config.sources["accounts"].path) == (exports / "Accounts Export (3).csv").resolve()
    assert '"../exports/' in text
    far = tmp_path / "elsewhere" / "deep" / "health.yaml"
    far.parent.mkdir(parents=True)
    write_config(survey(exports), exports, far)
    assert load_config(far).sources["accounts"].path == str((exports / "Accounts Export (3).csv").resolve())


# --- refusals and unreadable input ------------------------------------------------------------


def test_never_overwrites_without_force(exports: Path, tmp_path: Path) -> None:
    guesses = survey(exports)
    output = tmp_path / "health.yaml"
    output.write_text("# mine\n", encoding="utf-8")
    with pytest.raises(UsageError) as raised:
        write_config(guesses, exports, output)
    assert raised.value.exit_code == 2
    assert "--force" in str(raised.value)
    assert output.read_text(encoding="utf-8") == "# mine\n"
    with pytest.raises(UsageError):
        refuse_overwrite(output, force=False)
    refuse_overwrite(output, force=True)
    refuse_overwrite(tmp_path / "new.yaml", force=False)
    write_config(guesses, exports, output, force=True)
    assert output.read_text(encoding="utf-8").startswith("# healthscore config")


def test_folder_without_readable_exports(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "notes.txt").write_text("not an export", encoding="utf-8")
    with pytest.raises(InputMissingError) as raised:
        survey(tmp_path)
    assert raised.value.exit_code == 66
    assert str(tmp_path) in raised.value.message
    assert {Path(p.where).name for p in raised.value.problems} == {"empty.csv", "broken.parquet"}
    with pytest.raises(InputMissingError):
        survey(tmp_path / "missing")


def test_unreadable_and_hidden_files_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("*.py", "*.md", "usage_*", "nps_*"))
    (folder / "broken.csv").write_bytes(b'a,b\n"1,2\n')
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "old.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    assert ".hidden" not in {p.parent.name for p in export_files(folder)}
    guesses = by_name(survey(folder))
    assert guesses["broken.csv"].role == "unreadable"
    assert f"{folder / 'broken.csv'}: skipped: cannot read it" in "\n".join(report(list(guesses.values())))
    text = write_config(list(guesses.values()), folder, folder / "health.yaml")
    assert "#   broken.csv: cannot read it" in text
    assert len(run(load_config(folder / "health.yaml")).table) == 500


def test_no_accounts_file_is_input_missing(exports: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no_accounts"
    shutil.copytree(exports, folder, ignore=shutil.ignore_patterns("Accounts*"))
    guesses = survey(folder)
    assert "no accounts file found" in report(guesses)[-1]
    with pytest.raises(InputMissingError) as raised:
        write_config(guesses, folder, tmp_path / "health.yaml")
    assert raised.value.exit_code == 66
    assert not (tmp_path / "health.yaml").exists()


@pytest.mark.parametrize(
    ("text", "tokens", "score"),
    [
        ("Account ID", ("account", "id"), 1.0),
        ("accountId", ("account", "id"), 1.0),
        ("acct", ("account",), 0.7),
        ("org_id", ("organization", "id"), 1.0),
        ("Ticket ID", ("ticket", "id"), 0.0),
        ("Account Name", ("account", "name"), 0.0),
        ("ID", ("id",), 0.4),
    ],
)
def test_header_tokens_and_key_names(text: str, tokens: tuple[str, ...], score: float) -> None:
    assert header_tokens(text) == tokens
    assert key_name_score(header_tokens(text)) == score


def test_the_init_command_writes_a_config_that_scores(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from healthscore.cli import app

    runner = CliRunner()
    output = tmp_path / "health.yaml"
    result = runner.invoke(app, ["init", str(ROOT / "sample_data"), "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "zendesk_tickets.csv: support tickets (sources.tickets, preset zendesk_tickets)" in result.stdout
    assert f"wrote {output}" in result.stdout
    scored = runner.invoke(app, ["score", "-c", str(output), "--out", str(tmp_path / "out"), "-q"])
    assert scored.exit_code == 0, scored.output
    again = runner.invoke(app, ["init", str(ROOT / "sample_data"), "-o", str(output)])
    assert again.exit_code == 2
    assert "pass --force" in again.stderr
    missing = runner.invoke(app, ["init", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.yaml")])
    assert missing.exit_code == 66
