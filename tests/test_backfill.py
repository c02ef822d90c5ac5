"""`healthscore backfill`: past days scored from the same exports into the history, matching
separate `score --as-of` runs byte for byte; resumable, idempotent, refusing mixed configs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, write_csv
from typer.testing import CliRunner

from healthscore.backfill import BackfillDay, backfill, backfill_dates
from healthscore.cli import app
from healthscore.config import load_config
from healthscore.errors import ConfigError, DataError, LockedError, UsageError
from healthscore.history import snapshot_dates, snapshot_path
from healthscore.lock import output_lock

runner = CliRunner()

SAMPLE_DAYS = [dt.date(2026, 1, d) for d in (6, 11, 16, 21, 26, 31)]
SAMPLE_ARGS = ["--from", "2026-01-06", "--to", "2026-01-31", "--every", "5d"]


def sample_config(directory: Path, extra: str = "") -> Path:
    """configs/default.yaml with absolute sample paths and `history: {path: history}` (relative,
    so that copies in two folders have the same bytes, hence the same config_sha256)."""
    text = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    text = text.replace("../sample_data/", f"{ROOT / 'sample_data'}/").replace("../out/", "out/")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "health.yaml"
    path.write_text(text + "\nhistory: {path: history}\n" + extra, encoding="utf-8")
    return path


def snapshots(directory: Path) -> dict[str, bytes]:
    """Each day's snapshot bytes under directory/history, by folder name."""
    return {p.parent.name: p.read_bytes() for p in sorted((directory / "history").glob("as_of=*/snapshot.parquet"))}


@pytest.fixture(scope="module")
def sample_histories(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """History A by one backfill of six days; history B by six `score --as-of --out` runs,
    oldest first. Returns both folders and the backfill's stdout."""
    root = tmp_path_factory.mktemp("sample")
    config_a, config_b = sample_config(root / "a"), sample_config(root / "b")
    result = runner.invoke(app, ["backfill", "-c", str(config_a), *SAMPLE_ARGS])
    assert result.exit_code == 0, result.output
    for day in SAMPLE_DAYS:
        out = root / "b" / f"out_{day.isoformat()}"
        scored = runner.invoke(app, ["score", "-c", str(config_b), "--as-of", day.isoformat(), "--out", str(out), "-q"])
        assert scored.exit_code == 0, scored.output
    return root / "a", root / "b", result.stdout


@pytest.fixture
def history_copy(sample_histories: tuple[Path, Path, str], tmp_path: Path) -> Path:
    """A copy of the backfilled sample folder (config and history) to change freely."""
    folder = tmp_path / "copy"
    shutil.copytree(sample_histories[0], folder)
    return folder


def test_six_day_backfill_matches_six_separate_score_runs_byte_for_byte(
    sample_histories: tuple[Path, Path, str],
) -> None:
    a, b, stdout = sample_histories
    backfilled, scored = snapshots(a), snapshots(b)
    assert list(backfilled) == [f"as_of={d.isoformat()}" for d in SAMPLE_DAYS]
    assert backfilled == scored
    lines = stdout.splitlines()
    assert [line[:20] for line in lines[:6]] == [f"{d.isoformat()}  scored  " for d in SAMPLE_DAYS]
    assert "500 accounts, 500 scored, mean " in lines[5]
    assert lines[6] == f"backfilled 6 day(s) into {a / 'history'}: 6 scored"
    assert "\x1b[" not in stdout  # not a terminal: plain lines, no progress bar


def test_each_snapshot_holds_that_days_scores(sample_histories: tuple[Path, Path, str]) -> None:
    a, _, _ = sample_histories
    frame = pd.read_parquet(a / "history" / "as_of=2026-01-16" / "snapshot.parquet")
    assert len(frame) == 500
    assert set(frame["as_of"].astype("str")) == {"2026-01-16"}
    assert list(frame.columns[:5]) == ["as_of", "account_id", "health_score", "segment", "coverage"]
    assert frame["config_sha256"].nunique() == 1


def test_a_rerun_skips_every_day_and_changes_nothing(history_copy: Path) -> None:
    before = snapshots(history_copy)
    result = runner.invoke(app, ["backfill", "-c", str(history_copy / "health.yaml"), *SAMPLE_ARGS])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("skipped   already in the history with this config") == 6
    assert "nothing to do: all 6 day(s) are in" in result.stdout
    assert snapshots(history_copy) == before


def test_force_rescores_one_day_to_identical_bytes(history_copy: Path) -> None:
    before = snapshots(history_copy)
    config = history_copy / "health.yaml"
    path = snapshot_path(load_config(config), dt.date(2026, 1, 21))
    inode = path.stat().st_ino
    args = ["backfill", "-c", str(config), "--from", "2026-01-21", "--to", "2026-01-21", "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2026-01-21  rescored  500 accounts")
    assert ": 0 scored, 1 rescored" in result.stdout
    assert path.stat().st_ino != inode  # written again (a new file renamed into place) ...
    assert snapshots(history_copy) == before  # ... to the same bytes


def test_a_deleted_day_is_scored_again_and_only_it(history_copy: Path) -> None:
    before = snapshots(history_copy)
    config = load_config(history_copy / "health.yaml")
    shutil.rmtree(snapshot_path(config, dt.date(2026, 1, 16)).parent)
    seen: list[BackfillDay] = []
    report = backfill(config, "2026-01-06", "2026-01-31", "5d", on_day=seen.append)
    assert [(d.as_of.day, d.status) for d in seen] == [
        (6, "skipped"),
        (11, "skipped"),
        (16, "scored"),
        (21, "skipped"),
        (26, "skipped"),
        (31, "skipped"),
    ]
    assert report.days == seen
    assert snapshots(history_copy) == before


def test_days_of_another_config_are_refused_unless_forced(history_copy: Path) -> None:
    before = snapshots(history_copy)
    other = history_copy / "health.yaml"
    other.write_text(other.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    result = runner.invoke(app, ["backfill", "-c", str(other), "--from", "2026-01-20", "--every", "5d"])
    assert result.exit_code == 2
    assert "3 day(s) in the history were scored by another config: 2026-01-21 (sha256 " in result.stderr
    assert "add --force to rescore them with this config" in result.stderr
    assert snapshots(history_copy) == before
    forced = runner.invoke(app, ["backfill", "-c", str(other), "--from", "2026-01-31", "--force", "-q"])
    assert forced.exit_code == 0, forced.output
    assert forced.stdout == ""
    config = load_config(other)
    assert pd.read_parquet(snapshot_path(config, dt.date(2026, 1, 31)))["config_sha256"].iloc[0] == config.sha256
    assert snapshots(history_copy)["as_of=2026-01-26"] == before["as_of=2026-01-26"]


# --- a small hand-made project --------------------------------------------------------------


def hand_project(tmp_path: Path, history: str = "history: {path: history}") -> Path:
    """Four accounts and their logins; the score is 10 points per login in the 30 days to as_of:

    - 001 logs in on Jan 2-3, Jan 12-17 and Jan 25-26: 2 logins as of Jan 10, 8 as of Jan 20, 10 as of Jan 30
    - 002 on Jan 5-9 (5 logins), 003 on Jan 1-9 (9 logins); 004 never (Unscored)
    """
    days = {"001": [2, 3, *range(12, 18), 25, 26], "002": list(range(5, 10)), "003": list(range(1, 10))}
    rows = "".join(f"{account},2026-01-{d:02d}T09:00:00,login\n" for account, ds in days.items() for d in ds)
    write_csv(tmp_path / "events.csv", "account_id,ts,event\n" + rows)
    write_csv(tmp_path / "crm.csv", "account_id,name\n001,Acme\n002,Beta\n003,Gamma\n004,Delta\n")
    config = tmp_path / "health.yaml"
    config.write_text(
        f"""
version: 1
as_of: 2026-01-30
accounts: {{source: crm, columns: [name]}}
sources:
  crm: {{path: crm.csv, key: account_id}}
  events: {{path: events.csv, key: account_id, time: ts}}
metrics:
  logins: {{source: events, agg: count, window: 30d, scale: {{method: linear, bad: 0, good: 10}}}}
groups:
  usage: {{metrics: [logins]}}
{history}
""",
        encoding="utf-8",
    )
    return config


def test_windows_end_at_each_as_of_so_later_rows_never_count(tmp_path: Path) -> None:
    config = load_config(hand_project(tmp_path))
    report = backfill(config, "2026-01-10", every="10d")
    assert [(d.as_of.isoformat(), d.status) for d in report.days] == [
        ("2026-01-10", "scored"),
        ("2026-01-20", "scored"),
        ("2026-01-30", "scored"),
    ]
    scores = {
        day.day: pd.read_parquet(snapshot_path(config, day)).set_index("account_id")["health_score"].to_dict()
        for day in snapshot_dates(config)
    }
    nan = scores[10]["004"]
    assert pd.isna(nan)
    assert {d: {k: v for k, v in s.items() if k != "004"} for d, s in scores.items()} == {
        10: {"001": 20.0, "002": 50.0, "003": 90.0},
        20: {"001": 80.0, "002": 50.0, "003": 90.0},
        30: {"001": 100.0, "002": 50.0, "003": 90.0},
    }
    assert report.days[0].segments == {"Critical": 1, "At-Risk": 1, "Healthy": 0, "Thriving": 1, "Unscored": 1}


def test_days_step_back_from_to_so_to_is_always_scored() -> None:
    jan = [dt.date(2026, 1, d) for d in (3, 10, 17, 24, 31)]
    assert backfill_dates(dt.date(2026, 1, 1), dt.date(2026, 1, 31), "7d") == jan
    assert backfill_dates(dt.date(2026, 1, 1), dt.date(2026, 1, 31), "1w") == jan
    assert backfill_dates(dt.date(2026, 1, 31), dt.date(2026, 1, 31), "7d") == [dt.date(2026, 1, 31)]
    months = backfill_dates(dt.date(2025, 10, 1), dt.date(2026, 1, 31), "1m")
    assert months == [dt.date(2025, 10, 31), dt.date(2025, 11, 30), dt.date(2025, 12, 31), dt.date(2026, 1, 31)]


@pytest.mark.parametrize(
    ("start", "end", "every", "message"),
    [
        ("2026-02-01", "2026-01-31", "7d", "--from 2026-02-01 is after --to 2026-01-31"),
        ("2026-01-01", "2026-01-31", "0d", "--every must be a duration like 1d, 7d, 2w or 1m, got '0d'"),
        ("2026-01-01", "2026-01-31", "weekly", "--every must be a duration"),
        ("01/01/2026", "2026-01-31", "7d", "--from must be a date like 2026-01-31 or 'today', got '01/01/2026'"),
        ("2026-01-01", "tomorrow", "7d", "--to must be a date like 2026-01-31 or 'today'"),
    ],
)
def test_bad_dates_and_steps_are_usage_errors(tmp_path: Path, start: str, end: str, every: str, message: str) -> None:
    config = hand_project(tmp_path)
    result = runner.invoke(app, ["backfill", "-c", str(config), "--from", start, "--to", end, "--every", every])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "history").exists() or not list((tmp_path / "history").glob("as_of=*"))


def test_a_failing_day_stops_the_backfill_naming_it_and_earlier_days_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import healthscore.backfill as module

    config = load_config(hand_project(tmp_path))
    real_run = module.run

    def failing_run(cfg: object, day: dt.date, **kwargs: object) -> object:
        if day == dt.date(2026, 1, 20):
            raise DataError("events.csv line 7: bad time", [])
        return real_run(cfg, day, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "run", failing_run)
    with pytest.raises(DataError) as info:
        backfill(config, "2026-01-10", every="10d")
    assert info.value.message == "backfill stopped at 2026-01-20: events.csv line 7: bad time"
    assert "1 day(s) written before it stay (2026-01-10 to 2026-01-10)" in str(info.value)
    assert snapshot_dates(config) == [dt.date(2026, 1, 10)]
    monkeypatch.setattr(module, "run", real_run)
    report = backfill(config, "2026-01-10", every="10d")
    assert [d.status for d in report.days] == ["skipped", "scored", "scored"]


def test_a_failing_check_stops_the_backfill_with_exit_65(tmp_path: Path) -> None:
    config = hand_project(tmp_path, "history: {path: history}\nchecks: {max_unscored_share: 0.1}")
    result = runner.invoke(app, ["backfill", "-c", str(config), "--from", "2026-01-10", "--every", "10d"])
    assert result.exit_code == 65
    assert "backfill stopped at 2026-01-10: 1 data-quality check(s) failed" in result.stderr
    assert "no day was written by this run" in result.stderr
    assert not list((tmp_path / "history").glob("as_of=*"))


def test_progress_reports_reading_then_each_day(tmp_path: Path) -> None:
    config = load_config(hand_project(tmp_path))
    calls: list[tuple[str, str, int, int]] = []
    backfill(config, "2026-01-20", every="10d", progress=lambda *call: calls.append(call))
    assert calls[0] == ("read", "crm", 0, 2)
    assert [c for c in calls if c[0] == "backfill"] == [
        ("backfill", "2026-01-20", 0, 2),
        ("backfill", "2026-01-30", 1, 2),
        ("backfill", "", 2, 2),
    ]


def test_a_rerun_with_nothing_to_do_reads_no_source(tmp_path: Path) -> None:
    config = load_config(hand_project(tmp_path))
    backfill(config, "2026-01-30")
    (tmp_path / "events.csv").unlink()  # would fail with exit 66 if it were read
    calls: list[tuple[str, str, int, int]] = []
    report = backfill(config, "2026-01-30", progress=lambda *call: calls.append(call))
    assert [d.status for d in report.days] == ["skipped"]
    assert calls == []


def test_another_backfill_holding_the_lock_stops_it_with_exit_75(tmp_path: Path) -> None:
    config = hand_project(tmp_path)
    with output_lock(tmp_path / "history"):
        result = runner.invoke(app, ["backfill", "-c", str(config), "--from", "2026-01-30"])
    assert result.exit_code == 75
    assert "another healthscore run holds the lock on" in result.stderr
    with pytest.raises(LockedError), output_lock(tmp_path / "history"):
        backfill(load_config(config), "2026-01-30")


def test_keep_refuses_days_it_would_prune_and_prunes_older_ones(tmp_path: Path) -> None:
    config = load_config(hand_project(tmp_path))
    backfill(config, "2026-01-10", "2026-01-10")
    keeping = load_config(hand_project(tmp_path, "history: {path: history, keep: 15d}"))
    with pytest.raises(UsageError) as info:
        backfill(keeping, "2026-01-10", every="10d")
    assert info.value.message.startswith("1 day(s) before 2026-01-15 are older than history.keep (15d) allows")
    report = backfill(keeping, "2026-01-20", every="10d")
    assert [p.name for p in report.pruned] == ["as_of=2026-01-10"]
    assert snapshot_dates(keeping) == [dt.date(2026, 1, 20), dt.date(2026, 1, 30)]


def test_backfill_without_history_is_a_config_error(tmp_path: Path) -> None:
    config = hand_project(tmp_path, history="")
    result = runner.invoke(app, ["backfill", "-c", str(config), "--from", "2026-01-30"])
    assert result.exit_code == 78
    assert "`backfill` needs a history of scores, and the config has no `history:` section" in result.stderr
    assert "add `history: {path: history/}` to the config" in result.stderr
    with pytest.raises(ConfigError):
        backfill(load_config(config), "2026-01-30")


def test_quiet_prints_nothing_but_warnings(tmp_path: Path) -> None:
    config = hand_project(tmp_path)
    result = runner.invoke(app, ["backfill", "-c", str(config), "--from", "2026-01-20", "--every", "10d", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert snapshot_dates(load_config(config)) == [dt.date(2026, 1, 20), dt.date(2026, 1, 30)]
