"""History: trend columns (previous, 30-day change, segment moves, new accounts), keep/pruning,
replacing one day only, a changed config flagged, hysteresis at the band edges, and movers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_config, write_csv
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.config import Config
from healthscore.errors import ConfigError
from healthscore.history import snapshot_dates, snapshot_path, sticky_segments
from healthscore.outputs import write_outputs
from healthscore.pipeline import RunResult, run
from healthscore.scoring import segment_of

runner = CliRunner()


def model(tmp_path: Path, **extra: Any) -> Config:
    """Accounts whose score is their CRM `health` value x 10 (linear 0..10), with ARR."""
    return make_config(
        tmp_path,
        accounts={"source": "crm", "columns": ["name", "arr", "health"], "name": "name", "arr": "arr"},
        sources={"crm": {"path": "crm.csv", "key": "account_id", "types": {"health": "float", "arr": "float"}}},
        metrics={"h": {"expr": "health", "scale": {"method": "linear", "bad": 0, "good": 10}}},
        groups={"g": {"metrics": ["h"]}},
        history={"path": "history", **extra.pop("history", {})},
        **extra,
    )


def day(tmp_path: Path, config: Config, as_of: str, healths: dict[str, float | None]) -> RunResult:
    """Score one day with the given health values (score = 10 x value) and write its outputs."""
    lines = [f"{a},Acct {a},{100 * (i + 1)},{'' if h is None else h}" for i, (a, h) in enumerate(healths.items())]
    write_csv(tmp_path / "crm.csv", "account_id,name,arr,health\n" + "\n".join(lines) + "\n")
    result = run(config, as_of)
    write_outputs(result, config, str(tmp_path / "out"))
    return result


def test_trend_columns_against_the_previous_and_the_month_old_snapshot(tmp_path: Path) -> None:
    config = model(tmp_path)
    first = day(tmp_path, config, "2026-01-01", {"A": 5, "B": 7, "C": 3})
    assert first.table["segment_changed"].tolist() == ["new", "new", "new"]
    assert first.table["previous_score"].isna().all()
    assert first.table["score_change_30d"].isna().all()
    assert first.summary.movers is None  # nothing to compare with
    day(tmp_path, config, "2026-01-24", {"A": 6, "B": 4, "C": 3, "D": 8})
    table = day(tmp_path, config, "2026-01-31", {"A": 6.5, "B": 3, "C": 1, "D": 8, "E": 9}).table
    rows = table.set_index("account_id")
    assert rows["previous_score"].tolist()[:4] == [60.0, 40.0, 30.0, 80.0]
    assert np.isnan(rows.at["E", "previous_score"])
    assert rows["score_change"].tolist()[:4] == [5.0, -10.0, -20.0, 0.0]
    # 2026-01-01 is exactly 30 days back: the month-old snapshot; D and E were not in it
    assert rows["score_change_30d"].tolist()[:3] == [15.0, -40.0, -20.0]
    assert rows["score_change_30d"].iloc[3:].isna().all()
    assert rows["previous_segment"].tolist() == ["At-Risk", "Critical", "Critical", "Healthy", ""]
    assert rows["segment_changed"].tolist() == ["up", "same", "same", "same", "new"]
    assert list(table.columns[-6:]) == [
        "previous_score",
        "score_change",
        "score_change_30d",
        "previous_segment",
        "segment_changed",
        "as_of",
    ]


def test_the_30d_snapshot_is_the_nearest_within_the_tolerance(tmp_path: Path) -> None:
    config = model(tmp_path, history={"tolerance_30d": "3d"})
    day(tmp_path, config, "2025-12-27", {"A": 1})  # 35 days back: outside 3 days
    assert run(config, "2026-01-31").table["score_change_30d"].isna().all()
    day(tmp_path, config, "2025-12-30", {"A": 2})  # 32 days back
    day(tmp_path, config, "2026-01-03", {"A": 4})  # 28 days back: nearer 30 is 32 (2 days) vs 28 (2 days): earlier wins
    write_csv(tmp_path / "crm.csv", "account_id,name,arr,health\nA,x,1,5\n")
    assert run(config, "2026-01-31").table["score_change_30d"].tolist() == [30.0]


def test_segment_changed_down_and_to_unscored(tmp_path: Path) -> None:
    config = model(tmp_path)
    day(tmp_path, config, "2026-01-24", {"A": 9, "B": 5})
    table = run(config, "2026-01-31").table  # crm.csv unchanged: all the same
    assert table["segment_changed"].tolist() == ["same", "same"]
    write_csv(tmp_path / "crm.csv", "account_id,name,arr,health\nA,x,1,2\nB,y,2,\n")
    assert run(config, "2026-01-31").table["segment_changed"].tolist() == ["down", "changed"]


def test_rerunning_a_day_replaces_only_that_day(tmp_path: Path) -> None:
    config = model(tmp_path)
    day(tmp_path, config, "2026-01-24", {"A": 5})
    day(tmp_path, config, "2026-01-31", {"A": 6})
    before = snapshot_path(config, dt.date(2026, 1, 24)).read_bytes()
    day(tmp_path, config, "2026-01-31", {"A": 9})
    assert snapshot_path(config, dt.date(2026, 1, 24)).read_bytes() == before
    latest = pd.read_parquet(snapshot_path(config, dt.date(2026, 1, 31)))
    assert latest["health_score"].tolist() == [90.0]
    assert snapshot_dates(config) == [dt.date(2026, 1, 24), dt.date(2026, 1, 31)]


def test_keep_prunes_old_days_after_a_successful_write(tmp_path: Path) -> None:
    config = model(tmp_path, history={"keep": "30d"})
    for as_of in ("2025-12-01", "2025-12-31", "2026-01-15"):
        day(tmp_path, config, as_of, {"A": 5})
    assert snapshot_dates(config) == [dt.date(2025, 12, 31), dt.date(2026, 1, 15)]  # 12-01 is 45 days before 01-15
    day(tmp_path, config, "2026-01-31", {"A": 5})
    assert snapshot_dates(config) == [dt.date(2026, 1, 15), dt.date(2026, 1, 31)]  # 12-31 < 01-01
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["history_pruned"] == ["2025-12-31"]
    assert not (tmp_path / "history" / "as_of=2025-12-31").exists()


def test_a_changed_config_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text("account_id,name,arr,health\nA,x,1,5\n")
    path = tmp_path / "h.yaml"
    text = """version: 1
accounts: {source: crm, columns: [name, arr, health], name: name, arr: arr}
sources: {crm: {path: crm.csv, key: account_id, types: {health: float}}}
metrics: {h: {expr: health, scale: {method: linear, bad: 0, good: 10}}}
groups: {g: {metrics: [h]}}
history: {path: history}
outputs: {dir: out}
"""
    path.write_text(text)
    assert runner.invoke(app, ["score", "-c", str(path), "--as-of", "2026-01-24", "-q"]).exit_code == 0
    same = runner.invoke(app, ["score", "-c", str(path), "--as-of", "2026-01-31", "-q"])
    assert "config changed" not in same.stderr
    path.write_text(text.replace("good: 10", "good: 8"))
    changed = runner.invoke(app, ["score", "-c", str(path), "--as-of", "2026-01-31", "-q"])
    assert changed.exit_code == 0
    assert "the config changed since the snapshot of 2026-01-24" in changed.stderr


# --- hysteresis ----------------------------------------------------------------------------


def sticky(config: Config, scores: list[float], previous: list[str]) -> list[str]:
    health = pd.Series(scores, dtype="float64")
    segments = segment_of(health, config.segments)
    result = sticky_segments(config, health, segments, pd.Series(previous, dtype="str"))
    return result["segment"].tolist()


@pytest.mark.parametrize(
    ("score", "previous", "expected"),
    [
        (58.0, "Healthy", "At-Risk"),  # 2 points under the Healthy edge (60): moves
        (58.1, "Healthy", "Healthy"),  # 1.9 under: stays
        (60.0, "Healthy", "Healthy"),  # the edge itself is At-Risk's, but only 0 under
        (62.0, "At-Risk", "Healthy"),  # 2 over At-Risk's top (60): moves
        (61.9, "At-Risk", "At-Risk"),
        (81.0, "At-Risk", "Thriving"),  # far past: straight to where the score is
        (38.0, "At-Risk", "Critical"),
        (38.1, "At-Risk", "At-Risk"),
        (50.0, "At-Risk", "At-Risk"),  # no change of band: nothing to hold
        (59.0, "", "At-Risk"),  # new accounts go where their score is
        (59.0, "Gone", "At-Risk"),  # an unknown previous segment holds nothing
    ],
)
def test_hysteresis_at_the_band_edges(tmp_path: Path, score: float, previous: str, expected: str) -> None:
    config = model(tmp_path, segments_hysteresis=2)
    assert sticky(config, [score], [previous]) == [expected]


def test_hysteresis_keeps_colour_and_action_with_the_segment(tmp_path: Path) -> None:
    config = model(tmp_path, segments_hysteresis=2)
    health = pd.Series([59.0, np.nan])
    held = sticky_segments(config, health, segment_of(health, config.segments), pd.Series(["Healthy", "Healthy"]))
    healthy = next(s for s in config.segments if s.name == "Healthy")
    assert held.iloc[0].tolist() == ["Healthy", healthy.color, healthy.action]
    assert held.iloc[1]["segment"] == "Unscored"  # no score: nothing to hold on to


def test_hysteresis_end_to_end_and_off_by_default(tmp_path: Path) -> None:
    config = model(tmp_path, segments_hysteresis=2)
    day(tmp_path, config, "2026-01-24", {"A": 6.5, "B": 6.5})
    table = day(tmp_path, config, "2026-01-31", {"A": 5.9, "B": 5.8}).table
    assert table["segment"].tolist() == ["Healthy", "At-Risk"]
    assert table["segment_changed"].tolist() == ["same", "down"]
    plain = model(tmp_path / "plain")
    (tmp_path / "plain").mkdir(exist_ok=True)
    write_csv(tmp_path / "plain" / "crm.csv", (tmp_path / "crm.csv").read_text())
    assert run(plain, "2026-01-31").table["segment"].tolist() == ["At-Risk", "At-Risk"]


def test_hysteresis_needs_history(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(
            tmp_path,
            accounts={"source": "crm"},
            sources={"crm": {"path": "crm.csv", "key": "account_id"}},
            metrics={"h": {"expr": "1", "scale": {"method": "linear", "bad": 0, "good": 1}}},
            groups={"g": {"metrics": ["h"]}},
            segments_hysteresis=2,
        )
    assert any("segments_hysteresis" in p.where and "needs history" in p.message for p in info.value.problems)


# --- movers in the summary -----------------------------------------------------------------


def test_movers_drops_gains_transitions_and_arr_moved_down(tmp_path: Path) -> None:
    config = model(tmp_path)
    day(tmp_path, config, "2026-01-24", {"A": 7, "B": 5, "C": 9, "D": 3, "E": 5})
    result = day(tmp_path, config, "2026-01-31", {"A": 3, "B": 5.5, "C": 5, "D": 6.5, "E": 4.5, "F": 2})
    movers = result.summary.movers
    assert movers is not None
    assert movers.previous_as_of == dt.date(2026, 1, 24)
    # ties in the change are listed by account id
    assert [(r["account_id"], r["score_change"]) for r in movers.drops] == [("A", -40.0), ("C", -40.0), ("E", -5.0)]
    assert [(r["account_id"], r["score_change"]) for r in movers.gains] == [("D", 35.0), ("B", 5.0)]
    assert movers.drops[0]["arr"] == 100.0
    assert movers.drops[0]["previous_segment"] == "Healthy"
    # A Healthy -> Critical, C Thriving -> At-Risk, D Critical -> Healthy, E At-Risk -> At-Risk, F new
    assert movers.transitions == {
        "new": {"Critical": 1},
        "Critical": {"Healthy": 1},
        "At-Risk": {"At-Risk": 2},
        "Healthy": {"Critical": 1},
        "Thriving": {"At-Risk": 1},
    }
    assert movers.moved_down == {"Critical": 1, "At-Risk": 1}
    assert movers.arr_moved_down == {"Critical": 100.0, "At-Risk": 300.0}
    assert movers.moved_up == 1
    data = result.summary.to_dict()["movers"]
    assert data["previous_as_of"] == "2026-01-24"
    assert json.dumps(data)


def test_movers_render_in_the_summary(tmp_path: Path) -> None:
    config = model(tmp_path)
    day(tmp_path, config, "2026-01-24", {"A": 7, "B": 5})
    write_csv(tmp_path / "crm.csv", "account_id,name,arr,health\nA,Acct A,100,3\nB,Acct B,200,6.5\n")
    path = tmp_path / "h.yaml"
    path.write_text(
        "version: 1\naccounts: {source: crm, columns: [name, arr, health], name: name, arr: arr}\n"
        "sources: {crm: {path: crm.csv, key: account_id, types: {health: float, arr: float}}}\n"
        "metrics: {h: {expr: health, scale: {method: linear, bad: 0, good: 10}}}\n"
        "groups: {g: {metrics: [h]}}\nhistory: {path: history}\n"
    )
    result = runner.invoke(app, ["score", "-c", str(path), "--as-of", "2026-01-31", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Since 2026-01-24: 1 account(s) moved down a segment (1 into Critical $100), 1 moved up" in out
    assert "Biggest drops" in out
    assert "Healthy -> Critical" in out
    assert "-40.0" in out
    assert "Biggest gains" in out
    assert "At-Risk -> Healthy" in out
    assert "Segment moves" in out
    assert "Before \\ now" in out


def test_score_stops_while_a_backfill_holds_the_history(tmp_path: Path) -> None:
    """`score --out` also takes the history folder's lock, so it cannot interleave with a backfill."""
    from healthscore.lock import output_lock

    (tmp_path / "crm.csv").write_text("account_id,name,arr,health\nA,x,1,5\n")
    path = tmp_path / "h.yaml"
    path.write_text(
        "version: 1\naccounts: {source: crm, columns: [name, arr, health], name: name, arr: arr}\n"
        "sources: {crm: {path: crm.csv, key: account_id, types: {health: float}}}\n"
        "metrics: {h: {expr: health, scale: {method: linear, bad: 0, good: 10}}}\n"
        "groups: {g: {metrics: [h]}}\nhistory: {path: history}\n"
    )
    with output_lock(tmp_path / "history"):
        held = runner.invoke(app, ["score", "-c", str(path), "--as-of", "2026-01-31", "--out", str(tmp_path / "o")])
    assert held.exit_code == 75
    assert not (tmp_path / "o" / "health_scores.csv").exists()
    free = runner.invoke(app, ["score", "-c", str(path), "--as-of", "2026-01-31", "--out", str(tmp_path / "o")])
    assert free.exit_code == 0


def test_overrides_keep_the_segments_hysteresis_held(tmp_path: Path) -> None:
    """An override file must not recompute the segments of accounts it does not override."""
    write_csv(
        tmp_path / "o.csv",
        "account_id,segment,score,reason,author,expires_on\n"
        "B,Thriving,,old call,ana,2026-01-01\n"  # expired
        "C,,95,renewed,ana,2026-12-31\n",
    )
    config = model(tmp_path, segments_hysteresis=2, overrides={"path": "o.csv"})
    day(tmp_path, config, "2026-01-24", {"A": 6.5, "B": 6.5, "C": 5})
    table = day(tmp_path, config, "2026-01-31", {"A": 5.9, "B": 5.8, "C": 5}).table
    # A is held in Healthy (1 point past the edge); B moves (2 points); C's given score sets its segment
    assert table["segment"].tolist() == ["Healthy", "At-Risk", "Thriving"]
    assert table["health_score"].tolist() == [59.0, 58.0, 95.0]
