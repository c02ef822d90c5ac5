"""The summary for people: roll-ups by a spine column (--by), the lowest accounts (--top),
the JSON summary being the library's object, and progress bars only where they belong."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, make_config, write_csv
from rich.console import Console
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.config import Config
from healthscore.errors import UsageError
from healthscore.pipeline import run
from healthscore.render import progress_bars
from healthscore.summary import BLANK, rollup

runner = CliRunner()
SAMPLE = str(ROOT / "configs" / "default.yaml")


def _tiers(tmp_path: Path, with_arr: bool = True) -> Config:
    """Five accounts over two tiers (one blank), scored by one linear metric of the CRM."""
    write_csv(
        tmp_path / "crm.csv",
        "account_id,tier,arr,health\n"
        "A,Enterprise,100,1\n"  # score 10 -> Critical
        "B,Enterprise,300,9\n"  # 90 -> Thriving
        "C,SMB,10,5\n"  # 50 -> At-Risk
        "D,SMB,20,7\n"  # 70 -> Healthy
        "E,,5,\n",  # no value -> Unscored
    )
    return make_config(
        tmp_path,
        accounts={"source": "crm", "columns": ["tier", "arr", "health"], **({"arr": "arr"} if with_arr else {})},
        sources={"crm": {"path": "crm.csv", "key": "account_id", "types": {"health": "float", "arr": "float"}}},
        metrics={"h": {"expr": "health", "scale": {"method": "linear", "bad": 0, "good": 10}}},
        groups={"g": {"metrics": ["h"]}},
    )


def test_rollup_counts_mean_and_arr_per_segment(tmp_path: Path) -> None:
    summary = run(_tiers(tmp_path), by="tier").summary
    assert summary.by is not None
    assert summary.by.column == "tier"
    rows = {row.value: row for row in summary.by.rows}
    assert list(rows) == [BLANK, "Enterprise", "SMB"]  # sorted, blank values together
    enterprise, smb, blank = rows["Enterprise"], rows["SMB"], rows[BLANK]
    assert (enterprise.accounts, enterprise.mean_score, enterprise.arr) == (2, 50.0, 400.0)
    assert enterprise.segments == {"Critical": 1, "At-Risk": 0, "Healthy": 0, "Thriving": 1, "Unscored": 0}
    assert enterprise.segment_arr == {
        "Critical": 100.0,
        "At-Risk": 0.0,
        "Healthy": 0.0,
        "Thriving": 300.0,
        "Unscored": 0.0,
    }
    assert (smb.accounts, smb.mean_score, smb.arr) == (2, 60.0, 30.0)
    assert smb.segments["At-Risk"] == 1
    assert smb.segments["Healthy"] == 1
    assert (blank.accounts, blank.mean_score, blank.segments["Unscored"]) == (1, None, 1)
    # every account is counted once: the roll-up adds up to the segments table
    for segment in summary.segments:
        assert sum(row.segments[segment.name] for row in summary.by.rows) == segment.accounts


def test_rollup_without_arr_has_no_money(tmp_path: Path) -> None:
    summary = run(_tiers(tmp_path, with_arr=False), by="tier").summary
    assert summary.by is not None
    assert all(row.arr is None and row.segment_arr is None for row in summary.by.rows)
    assert "Unscored" in summary.by.rows[0].segments  # shown only because an account is Unscored


def test_rollup_leaves_out_unscored_when_none_are() -> None:
    table = pd.DataFrame({"segment": ["Critical", "Healthy"], "health_score": [10.0, 70.0]})
    result = rollup(table, pd.Series(["x", "x"], name="region"), None, ["Critical", "Healthy", "Unscored"])
    assert result.rows[0].segments == {"Critical": 1, "Healthy": 1}
    assert result.rows[0].mean_score == 40.0


def test_by_an_unknown_column_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    config = _tiers(tmp_path)
    (tmp_path / "crm.csv").unlink()  # not read: the option is checked first
    with pytest.raises(UsageError, match="'owner' is not a column of the accounts: use one of tier, health"):
        run(config, by="owner")


def test_top_limits_the_lowest_accounts(tmp_path: Path) -> None:
    config = _tiers(tmp_path)
    assert [row["account_id"] for row in run(config, top=2).summary.lowest] == ["A", "C"]  # most ARR first
    assert len(run(config).summary.lowest) == 4  # the default 10, of 4 scored
    assert run(config, top=0).summary.lowest == []


def test_cli_by_and_top_on_the_sample(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "-c", SAMPLE, "--out", str(tmp_path), "--by", "region", "--top", "3"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Lowest 3 scores, most ARR first" in out
    assert "By region" in out
    for region in ("APAC", "EMEA", "LATAM", "NA"):
        assert f"| {region} " in out
    assert "\x1b[" not in out


def test_cli_json_summary_is_the_library_object(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "-c", SAMPLE, "--out", str(tmp_path), "--json", "--by", "tier", "--top", "5"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    from healthscore.config import load_config

    expected = run(load_config(SAMPLE), by="tier", top=5).summary.to_dict()
    assert printed == json.loads(json.dumps(expected))
    assert [row["value"] for row in printed["by"]["rows"]] == ["Enterprise", "Mid-Market", "SMB"]
    assert len(printed["lowest"]) == 5


def test_cli_by_unknown_column_exits_2_naming_the_choices(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "-c", SAMPLE, "--out", str(tmp_path / "out"), "--by", "country"])
    assert result.exit_code == 2
    assert "use one of name, owner, region, tier, renewal_date" in result.stderr
    assert not (tmp_path / "out").exists()


def test_progress_bars_draw_each_stage_on_a_terminal(tmp_path: Path) -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    with progress_bars(console, delay=0.0) as hook:
        time.sleep(0.05)  # the timer thread starts the display
        run(_tiers(tmp_path), progress=hook)
    drawn = stream.getvalue()
    assert "Reading" in drawn
    assert "Aggregating" in drawn
    assert "1/1" in drawn


def test_progress_bars_stay_hidden_for_a_quick_run(tmp_path: Path) -> None:
    stream = io.StringIO()
    with progress_bars(Console(file=stream, force_terminal=True), delay=60.0) as hook:
        run(_tiers(tmp_path), progress=hook)
    assert stream.getvalue() == ""


def test_progress_hook_sees_every_source_read_and_aggregated(tmp_path: Path) -> None:
    calls: list[tuple[str, str, int, int]] = []
    run(_tiers(tmp_path), progress=lambda *args: calls.append(args))
    # an expr-only config reads the CRM and aggregates nothing
    assert calls == [("read", "crm", 0, 1), ("read", "", 1, 1), ("aggregate", "", 0, 0)]
    calls.clear()
    from healthscore.config import load_config

    run(load_config(SAMPLE), progress=lambda *args: calls.append(args))
    assert calls[:5] == [
        ("read", "crm", 0, 4),
        ("read", "usage", 1, 4),
        ("read", "nps", 2, 4),
        ("read", "tickets", 3, 4),
        ("read", "", 4, 4),
    ]
    assert [c for c in calls if c[0] == "aggregate"][-1] == ("aggregate", "", 4, 4)


def test_no_progress_off_a_terminal(tmp_path: Path) -> None:
    """CliRunner's stderr is not a terminal: no bars, no escape codes."""
    result = runner.invoke(app, ["score", "-c", SAMPLE, "--out", str(tmp_path)], env={"TERM": "xterm"})
    assert result.exit_code == 0
    assert "Reading" not in result.stderr
    assert "\x1b[" not in result.stderr
