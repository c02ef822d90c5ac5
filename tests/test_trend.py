"""`healthscore trend`: the portfolio and one account over the history's snapshots, as a
table with a chart, or CSV / JSON; exact on a small hand-made history."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from test_backfill import hand_project
from typer.testing import CliRunner

from healthscore.backfill import backfill
from healthscore.cli import app
from healthscore.config import load_config
from healthscore.errors import ConfigError, InputMissingError, UsageError
from healthscore.render_trend import bar_widths, render_account, render_portfolio, segment_letters, sparkline
from healthscore.trend import account_trend, portfolio_trend, trend_bytes

runner = CliRunner()
NAN = float("nan")


def backfilled(folder: Path) -> Path:
    """The hand-made project of test_backfill with three days in its history: Jan 10, 20, 30.

    Scores (10 points per login in 30 days): 001 20 -> 80 -> 100, 002 50, 003 90, 004 Unscored.
    """
    config = hand_project(folder)
    backfill(load_config(config), "2026-01-10", every="10d")
    return config


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The backfilled project, shared by the tests that only read it."""
    return backfilled(tmp_path_factory.mktemp("trend"))


def rows(frame: pd.DataFrame) -> list[list[object]]:
    """A frame as lists of plain values (dates as ISO text, missing numbers as None)."""
    records = json.loads(trend_bytes(frame, "json"))
    return [list(record.values()) for record in records]


def test_portfolio_counts_each_day(project: Path) -> None:
    config = load_config(project)
    frame = portfolio_trend(config)
    assert list(frame.columns) == [
        "as_of",
        "accounts",
        "scored",
        "mean_score",
        "mean_change",
        "Critical",
        "At-Risk",
        "Healthy",
        "Thriving",
        "Unscored",
        "config_sha256",
        "config_changed",
    ]
    sha = config.sha256
    assert rows(frame) == [
        ["2026-01-10", 4, 3, 53.3, None, 1, 1, 0, 1, 1, sha, False],
        ["2026-01-20", 4, 3, 73.3, 20.0, 0, 1, 1, 1, 1, sha, False],
        ["2026-01-30", 4, 3, 80.0, 6.7, 0, 1, 0, 2, 1, sha, False],
    ]


def test_one_accounts_scores_over_time(project: Path) -> None:
    config = load_config(project)
    frame = account_trend(config, "001")
    assert list(frame.columns) == [
        "as_of",
        "account_id",
        "health_score",
        "score_change",
        "segment",
        "coverage",
        "group_usage",
        "config_sha256",
        "config_changed",
    ]
    sha = config.sha256
    assert rows(frame) == [
        ["2026-01-10", "001", 20.0, None, "Critical", 1.0, 20.0, sha, False],
        ["2026-01-20", "001", 80.0, 60.0, "Healthy", 1.0, 80.0, sha, False],
        ["2026-01-30", "001", 100.0, 20.0, "Thriving", 1.0, 100.0, sha, False],
    ]
    unscored = account_trend(config, " 004 ")  # spaces around an id are ignored, as in the exports
    assert unscored["segment"].tolist() == ["Unscored"] * 3
    assert "group_usage" not in unscored.columns  # no score in any snapshot: left out
    assert unscored["health_score"].isna().all()


def test_since_keeps_the_later_snapshots(project: Path) -> None:
    config = load_config(project)
    assert portfolio_trend(config, dt.date(2026, 1, 15))["as_of"].astype("str").tolist() == ["2026-01-20", "2026-01-30"]
    later = account_trend(config, "001", dt.date(2026, 1, 20))
    assert later["health_score"].tolist() == [80.0, 100.0]
    assert math.isnan(later["score_change"].iloc[0])  # the change within the rows shown
    with pytest.raises(InputMissingError, match="no snapshot on or after 2026-02-01: the history runs from 2026-01-10"):
        portfolio_trend(config, dt.date(2026, 2, 1))


def test_a_day_scored_by_another_config_is_flagged(tmp_path: Path) -> None:
    project = backfilled(tmp_path)
    other = project.parent / "other.yaml"
    other.write_text(project.read_text(encoding="utf-8") + "# another model\n", encoding="utf-8")
    backfill(load_config(other), "2026-01-30", force=True)
    config = load_config(project)
    portfolio = portfolio_trend(config)
    assert portfolio["config_changed"].tolist() == [False, False, True]
    assert portfolio["config_sha256"].tolist() == [config.sha256, config.sha256, load_config(other).sha256]
    assert account_trend(config, "002")["config_changed"].tolist() == [False, False, True]
    result = runner.invoke(app, ["trend", "-c", str(project)])
    assert "| 2026-01-30* |" in result.stdout
    assert "* scored by another config than the snapshot before it (2026-01-30)" in result.stdout


def test_trend_prints_a_plain_table_and_chart_off_a_terminal(project: Path) -> None:
    result = runner.invoke(app, ["trend", "-c", str(project)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "healthscore trend  |  3 snapshot(s), 2026-01-10 to 2026-01-30  |  4 accounts on the last\n"
        "Mean score  _=#  53.3 -> 80.0 (+26.7)\n"
        "+-------------+----------+--------+-------+--------+----------+---------+---------+----------+----------"
        "+----------------------+\n"
        "| As of       | Accounts | Scored |  Mean | Change | Critical | At-Risk | Healthy | Thriving | Unscored "
        "| Segments             |\n"
        "+-------------+----------+--------+-------+--------+----------+---------+---------+----------+----------"
        "+----------------------+\n"
        "| 2026-01-10  |        4 |      3 |  53.3 |        |        1 |       1 |       0 |        1 |        1 "
        "| CCCCCAAAAATTTTT..... |\n"
        "| 2026-01-20  |        4 |      3 |  73.3 |  +20.0 |        0 |       1 |       1 |        1 |        1 "
        "| AAAAAHHHHHTTTTT..... |\n"
        "| 2026-01-30  |        4 |      3 |  80.0 |   +6.7 |        0 |       1 |       0 |        2 |        1 "
        "| AAAAATTTTTTTTTT..... |\n"
        "+-------------+----------+--------+-------+--------+----------+---------+---------+----------+----------"
        "+----------------------+\n"
        "Segments: C Critical, A At-Risk, H Healthy, T Thriving, . Unscored\n"
    )


def test_trend_of_an_account_prints_its_scores(project: Path) -> None:
    result = runner.invoke(app, ["trend", "001", "-c", str(project)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "001  |  3 snapshot(s), 2026-01-10 to 2026-01-30  |  now Thriving\n"
        "Score  _=#  20.0 -> 100.0 (+80.0)\n"
        "+-------------+-------+--------+----------+----------+-------+\n"
        "| As of       | Score | Change | Segment  | Coverage | usage |\n"
        "+-------------+-------+--------+----------+----------+-------+\n"
        "| 2026-01-10  |  20.0 |        | Critical |     100% |  20.0 |\n"
        "| 2026-01-20  |  80.0 |  +60.0 | Healthy  |     100% |  80.0 |\n"
        "| 2026-01-30  | 100.0 |  +20.0 | Thriving |     100% | 100.0 |\n"
        "+-------------+-------+--------+----------+----------+-------+\n"
    )


def test_csv_and_json_on_stdout_parse_back(project: Path) -> None:
    csv = runner.invoke(app, ["trend", "-c", str(project), "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout), dtype={"as_of": "str"})
    assert frame["as_of"].tolist() == ["2026-01-10", "2026-01-20", "2026-01-30"]
    assert frame["mean_score"].tolist() == [53.3, 73.3, 80.0]
    assert frame["Thriving"].tolist() == [1, 1, 2]
    assert not csv.stdout.startswith("\ufeff")  # stdout never gets a BOM
    one = runner.invoke(app, ["trend", "002", "-c", str(project), "--format", "json", "--since", "2026-01-20"])
    assert one.exit_code == 0, one.output
    records = json.loads(one.stdout)
    assert [(r["as_of"], r["health_score"], r["segment"]) for r in records] == [
        ("2026-01-20", 50.0, "At-Risk"),
        ("2026-01-30", 50.0, "At-Risk"),
    ]
    assert records[0]["score_change"] is None
    assert records[1]["score_change"] == 0.0


def test_csv_neutralizes_text_a_spreadsheet_would_run() -> None:
    frame = pd.DataFrame({"account_id": ["=1+2", "A1"], "health_score": [-5.0, 50.0]})
    assert trend_bytes(frame, "csv") == b"account_id,health_score\n'=1+2,-5.0\nA1,50.0\n"
    with pytest.raises(UsageError, match="unknown trend format 'xml'"):
        trend_bytes(frame, "xml")


def test_unknown_account_is_a_usage_error_naming_close_ids(project: Path) -> None:
    result = runner.invoke(app, ["trend", "0001", "-c", str(project)])
    assert result.exit_code == 2
    assert "usage error: no account '0001' in the history" in result.stderr
    assert "did you mean 001" in result.stderr
    with pytest.raises(UsageError):
        account_trend(load_config(project), "999")


def test_no_history_yet_exits_66_with_a_hint(tmp_path: Path) -> None:
    config = hand_project(tmp_path)
    result = runner.invoke(app, ["trend", "-c", str(config)])
    assert result.exit_code == 66
    assert "no history yet:" in result.stderr
    assert "healthscore backfill -c CONFIG --from DATE" in result.stderr
    with pytest.raises(InputMissingError):
        account_trend(load_config(config), "001")


def test_history_not_configured_exits_78(tmp_path: Path) -> None:
    config = hand_project(tmp_path, history="")
    result = runner.invoke(app, ["trend", "-c", str(config)])
    assert result.exit_code == 78
    assert "`trend` needs a history of scores, and the config has no `history:` section" in result.stderr
    with pytest.raises(ConfigError):
        portfolio_trend(load_config(config))


def test_bad_since_and_format_are_usage_errors(project: Path) -> None:
    since = runner.invoke(app, ["trend", "-c", str(project), "--since", "last week"])
    assert since.exit_code == 2
    assert "--since must be a date like 2026-01-31 or 'today', got 'last week'" in since.stderr
    fmt = runner.invoke(app, ["trend", "-c", str(project), "--format", "xml"])
    assert fmt.exit_code == 2


def test_on_a_terminal_the_chart_uses_blocks_and_colour(project: Path) -> None:
    config = load_config(project)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=120)
    render_portfolio(portfolio_trend(config), config, console)
    render_account(account_trend(config, "001"), config, console)
    text = out.getvalue()
    assert "▁▆█" in text  # the sparkline
    assert "█████" in text  # stacked bars ...
    assert "\x1b[" in text  # ... in colour
    assert "53.3 → 80.0 (+26.7)" in text


def test_sparkline_scales_between_the_lowest_and_highest_value() -> None:
    assert sparkline([0.0, 50.0, 100.0, NAN, 25.0], terminal=True) == "▁▅█ ▃"
    assert sparkline([0.0, 50.0, 100.0, NAN, 25.0], terminal=False) == "_-# ."
    assert sparkline([7.0, 7.0], terminal=True) == "▄▄"
    assert sparkline([NAN], terminal=False) == " "


def test_bars_fill_their_width_by_largest_remainder() -> None:
    widths = bar_widths(np.array([[1, 1, 1], [0, 0, 0], [115, 154, 140]]), 20)
    assert widths.tolist() == [[7, 7, 6], [0, 0, 0], [6, 7, 7]]
    assert segment_letters(["Critical", "Churned", "Unscored"]) == {"Critical": "C", "Churned": "H", "Unscored": "."}
