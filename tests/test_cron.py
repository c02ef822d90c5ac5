"""Running from cron: data-quality checks, --fail-on-warnings, JSON logs, and the config schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import ROOT, write_csv
from typer.testing import CliRunner

from healthscore.cli import app

runner = CliRunner()


def project(tmp: Path, checks: str = "") -> Path:
    """Three accounts; usage rows for two of them and one row whose key matches no account."""
    write_csv(tmp / "crm.csv", "account_id,name\n001,Acme\n002,Beta\n003,Gamma\n")
    write_csv(
        tmp / "usage.csv",
        "account_id,when\n001,2026-01-30\n001,2026-01-29\n002,2026-01-30\n999,2026-01-30\n",
    )
    config = tmp / "health.yaml"
    config.write_text(
        f"""
version: 1
as_of: 2026-01-31
accounts: {{source: crm, columns: [name]}}
sources:
  crm: {{path: crm.csv, key: account_id}}
  usage: {{path: usage.csv, key: account_id, time: when}}
metrics:
  logins: {{source: usage, agg: count, window: 30d, missing: {{fill: 0}}, scale: {{method: linear, bad: 0, good: 2}}}}
groups:
  usage: {{metrics: [logins]}}
outputs: {{dir: out, formats: [csv]}}
{checks}
"""
    )
    return config


def outputs(tmp: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((tmp / "out").iterdir()) if p.name != ".healthscore.lock"}


def test_a_clean_run_passes_its_checks(tmp_path: Path) -> None:
    config = project(tmp_path, "checks: {min_accounts: 3, max_unmatched_share: 0.5}")
    assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 0


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ("checks: {min_accounts: 100}", "3 account(s), fewer than checks.min_accounts 100"),
        (
            "checks: {max_unmatched_share: 0.05}",
            "25.0% of the rows of source 'usage' (1 of 4) match no account, more than checks.max_unmatched_share 5.0%",
        ),
        ("checks: {fail_on_warnings: true}", "warning: 1 key(s) (1 rows) match no account, e.g. 999"),
    ],
)
def test_a_broken_check_is_exit_65_and_replaces_nothing(tmp_path: Path, checks: str, message: str) -> None:
    config = project(tmp_path)
    assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 0
    before = outputs(tmp_path)
    config.write_text(config.read_text().replace("\n\n", f"\n{checks}\n"))
    config = project(tmp_path, checks)
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 65
    assert "data-quality check(s) failed; no output was written or replaced" in result.stderr
    assert message in result.stderr
    assert outputs(tmp_path) == before


def test_fail_on_warnings_flag(tmp_path: Path) -> None:
    config = project(tmp_path)
    result = runner.invoke(app, ["score", "-c", str(config), "--fail-on-warnings"])
    assert result.exit_code == 65
    assert "match no account" in result.stderr
    assert outputs(tmp_path) == {}


def test_json_log_lines(tmp_path: Path) -> None:
    config = project(tmp_path)
    result = runner.invoke(app, ["score", "-c", str(config), "--log-format", "json"])
    assert result.exit_code == 0
    assert result.stdout == ""
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [r["event"] for r in records] == [
        "source_read",
        "source_read",
        "data_warning",
        "output_written",
        "output_written",
        "output_written",
        "done",
    ]
    assert all({"time", "level", "event"} <= set(r) for r in records)
    usage = records[1]
    assert (usage["source"], usage["rows"], usage["unmatched_rows"]) == ("usage", 4, 1)
    assert records[2]["level"] == "warning"
    done = records[-1]
    assert (done["accounts"], done["scored"], done["warnings"]) == (3, 3, 1)
    assert sum(done["segments"].values()) == 3


def test_json_log_of_an_error(tmp_path: Path) -> None:
    config = project(tmp_path)
    (tmp_path / "usage.csv").unlink()
    result = runner.invoke(app, ["score", "-c", str(config), "--log-format", "json"])
    assert result.exit_code == 66
    [record] = [json.loads(line) for line in result.stderr.splitlines()]
    assert (record["level"], record["event"], record["exit_code"]) == ("error", "failed", 66)
    assert "usage.csv" in record["message"]


def test_schema_accepts_the_shipped_configs_and_rejects_a_typo() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in (ROOT / "configs").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["as_of"] = str(data.get("as_of", "2026-01-31"))  # YAML dates are dates; JSON has strings
        jsonschema.validate(data, schema)
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    data["as_of"] = str(data["as_of"])
    data["sources"]["crm"]["delimeter"] = ";"
    with pytest.raises(jsonschema.ValidationError, match="delimeter"):
        jsonschema.validate(data, schema)


def test_a_second_run_while_one_holds_the_lock_exits_75_at_once(tmp_path: Path) -> None:
    config = project(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from healthscore.lock import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('locked', flush=True); sys.stdin.read()",
            str(tmp_path / "out"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        result = runner.invoke(app, ["score", "-c", str(config)])
        assert result.exit_code == 75
        assert f"pid {holder.pid}, started 20" in result.stderr
        assert outputs(tmp_path) == {}  # it did no work
    finally:
        holder.kill()
        holder.wait()
    assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 0  # a killed holder blocks nothing


def test_temp_files_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    config = project(tmp_path)
    (tmp_path / "out").mkdir()
    stale = [tmp_path / "out" / ".health_scores.csv.k3j_9x2a.tmp", tmp_path / "out" / ".run.json.abcdefgh.tmp"]
    for path in stale:
        path.write_text("half")
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 0
    assert not any(path.exists() for path in stale)
    assert "removed 2 temp file(s) left by a killed run" in result.stderr
    assert set(outputs(tmp_path)) == {"health_scores.csv", "rejects.csv", "run.json"}


def test_a_closed_stdout_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    config = project(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthscore", "score", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the summary is printed (`| head` that exited)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert b"Traceback" not in err
    assert (tmp_path / "out" / "run.json").exists()  # the outputs were written before the summary
