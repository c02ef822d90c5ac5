"""The command line: exit codes, messages, stdout/stderr discipline, and one real subprocess."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pandas as pd
import pytest
from conftest import ROOT, write_csv
from typer.testing import CliRunner

from healthscore.cli import app

runner = CliRunner()


def outputs(directory: Path) -> dict[str, bytes]:
    """The output files of a directory and their bytes (not the run lock, which is no output)."""
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and p.name != ".healthscore.lock"}


def small_project(tmp: Path) -> Path:
    """A config over two tiny sources, written to disk; returns the config path."""
    write_csv(tmp / "crm.csv", "Account ID,Name,ARR\n001,Acme,1000\n002,Beta,2000\n003,Gamma,500\n")
    write_csv(
        tmp / "usage.csv",
        "account_id,when,event\n001,2026-01-30,login\n001,2026-01-29,login\n002,2026-01-30,login\n",
    )
    config = tmp / "health.yaml"
    config.write_text(
        """
version: 1
as_of: 2026-01-31
accounts: {source: crm, columns: [name, arr], name: name, arr: arr}
sources:
  crm: {path: crm.csv, key: account_id, rename: {"Account ID": account_id, Name: name, ARR: arr}}
  usage: {path: usage.csv, key: account_id, time: when}
metrics:
  logins: {source: usage, agg: count, window: 30d, missing: {fill: 0}, scale: {method: linear, bad: 0, good: 2}}
groups:
  usage: {metrics: [logins]}
outputs: {dir: out, formats: [csv, parquet]}
"""
    )
    return config


def test_score_writes_outputs_and_prints_a_plain_summary(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "3 accounts, 3 scored" in result.stdout
    assert "\x1b[" not in result.stdout  # not a terminal: no escape codes
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        ".healthscore.lock",
        "health_scores.csv",
        "health_scores.parquet",
        "rejects.csv",
        "run.json",
    }
    table = pd.read_csv(tmp_path / "out" / "health_scores.csv", dtype=str)
    assert table["account_id"].tolist() == ["001", "002", "003"]
    assert table["health_score"].tolist() == ["100.0", "50.0", "0.0"]


def test_stdout_holds_only_the_csv_with_dash(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    result = runner.invoke(app, ["score", "-c", str(config), "-o", "-", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("account_id,name,arr,health_score,segment")
    assert len(result.stdout.splitlines()) == 4
    assert "3 accounts" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_single_file_output_formats(tmp_path: Path, fmt: str) -> None:
    config = small_project(tmp_path)
    target = tmp_path / f"scores.{fmt}"
    result = runner.invoke(app, ["score", "-c", str(config), "-o", str(target), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    if fmt == "parquet":
        assert pd.read_parquet(target)["health_score"].tolist() == [100.0, 50.0, 0.0]
    elif fmt == "json":
        assert [r["account_id"] for r in json.loads(target.read_text())] == ["001", "002", "003"]
    else:
        assert json.loads(target.read_text().splitlines()[1])["health_score"] == 50.0


def test_only_a_run_writing_run_json_hashes_its_inputs(tmp_path: Path) -> None:
    """The inputs' SHA-256 goes to run.json only, which -o does not write: not taken there."""
    config = small_project(tmp_path)
    with patch("healthscore.sources._sha256", side_effect=AssertionError("hashed")) as hashing:
        result = runner.invoke(app, ["score", "-c", str(config), "-o", str(tmp_path / "s.csv"), "-q"])
        assert result.exit_code == 0, result.output
        assert hashing.call_count == 0
    result = runner.invoke(app, ["score", "-c", str(config), "-q"])
    assert result.exit_code == 0, result.output
    inputs = json.loads((tmp_path / "out" / "run.json").read_text())["inputs"]
    digests = [f["sha256"] for source in inputs.values() for f in source["files"]]
    assert digests
    assert all(len(d) == 64 for d in digests)


def test_as_of_option_moves_the_window(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    result = runner.invoke(app, ["score", "-c", str(config), "--as-of", "2026-01-29", "-o", "-"])
    rows = result.stdout.splitlines()
    assert rows[1].split(",")[3] == "50.0"  # only the login of the 29th counts for 001
    assert rows[1].endswith(",2026-01-29")


def test_json_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "-c", str(small_project(tmp_path)), "--json"])
    summary = json.loads(result.stdout)
    assert summary["accounts"] == 3
    assert [s["name"] for s in summary["segments"]] == ["Critical", "At-Risk", "Healthy", "Thriving"]


def test_missing_config_file_is_exit_66(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 66
    assert "config file not found" in result.stderr
    assert "nope.yaml" in result.stderr


def test_missing_input_file_is_exit_66_and_names_it(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    (tmp_path / "usage.csv").unlink()
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 66
    assert "usage.csv" in result.stderr
    assert "not found" in result.stderr


def test_missing_column_is_exit_65_naming_file_column_and_found(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_csv(tmp_path / "usage.csv", "account_id,time,event\n001,2026-01-30,login\n")
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 65
    assert "usage.csv" in result.stderr
    assert "column 'when' not found" in result.stderr
    assert "expected: account_id, when" in result.stderr
    assert "found: account_id, time, event" in result.stderr


def test_bad_values_are_exit_65_with_line(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_csv(tmp_path / "usage.csv", "account_id,when,event\n001,2026-01-30,login\n002,yesterday,login\n")
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 65
    assert "usage.csv line 3: 'yesterday'" in result.stderr
    assert "date_format" in result.stderr


def test_bad_config_is_exit_78_with_every_problem(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    text = config.read_text().replace("window: 30d", "window: thirty, widnow: 3d")
    config.write_text(text.replace("metrics: [logins]", "metrics: [logins, nps]"))
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 78
    err = " ".join(result.stderr.split())
    assert 'metrics.logins.window: expected a duration like 30d, 12w, 6m or 1y, got "thirty"' in err
    assert "metrics.logins.widnow: unknown key (hint: did you mean `window`?)" in err


def test_unsafe_expression_is_a_config_error(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    config.write_text(config.read_text().replace("window: 30d,", "window: 30d, where: \"__import__('os').getcwd()\","))
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 78
    assert "metrics.logins.where" in result.stderr


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    assert runner.invoke(app, ["score", "-c", str(config), "--out", "x", "-o", "y.csv"]).exit_code == 2
    assert runner.invoke(app, ["score", "-c", str(config), "-o", "y.txt"]).exit_code == 2
    assert runner.invoke(app, ["score", "--bogus"]).exit_code == 2
    bad_date = runner.invoke(app, ["score", "-c", str(config), "--as-of", "31/01/2026"])
    assert bad_date.exit_code == 2
    assert "--as-of must be a date like 2026-01-31" in bad_date.stderr
    headers = runner.invoke(app, ["score", "-c", str(config), "--headers", "pretty"])
    assert headers.exit_code == 2


def test_csv_for_excel_bom_on_files_never_on_stdout_and_formulas_neutralized(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_csv(
        tmp_path / "crm.csv", 'Account ID,Name,ARR\n001,"=HYPERLINK(""http://x"")",1000\n002,-Beta,2000\n003,@G,500\n'
    )
    target = tmp_path / "scores.csv"
    assert runner.invoke(app, ["score", "-c", str(config), "-o", str(target), "-q"]).exit_code == 0
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfaccount_id,name,arr,health_score")
    table = pd.read_csv(target, dtype=str)  # pandas drops the BOM
    assert table["name"].tolist() == ['\'=HYPERLINK("http://x")', "'-Beta", "'@G"]
    assert table["arr"].tolist() == ["1000.0", "2000.0", "500.0"]  # numbers stay numbers
    stdout = runner.invoke(app, ["score", "-c", str(config), "-o", "-", "--format", "csv"])
    assert stdout.stdout.startswith("account_id,")  # no BOM on a pipe
    assert "'-Beta" in stdout.stdout
    plain = runner.invoke(app, ["score", "-c", str(config), "-o", str(target), "--no-excel", "--allow-formulas", "-q"])
    assert plain.exit_code == 0
    assert target.read_bytes().startswith(b"account_id,")
    assert pd.read_csv(target, dtype=str)["name"].tolist() == ['=HYPERLINK("http://x")', "-Beta", "@G"]


def test_xlsx_output_and_labelled_headers(tmp_path: Path) -> None:
    import openpyxl

    config = small_project(tmp_path)
    target = tmp_path / "scores.xlsx"
    result = runner.invoke(app, ["score", "-c", str(config), "-o", str(target), "--headers", "labels", "-q"])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(target)
    assert book.sheetnames == ["Scores", "Summary", "Drivers"]
    scores = book["Scores"]
    assert [c.value for c in scores[1]][:4] == ["Account ID", "name", "arr", "Health score"]
    assert [scores.cell(row=r, column=4).value for r in (2, 3, 4)] == [100.0, 50.0, 0.0]
    labelled = runner.invoke(app, ["score", "-c", str(config), "-o", str(tmp_path / "l.csv"), "--headers", "labels"])
    assert labelled.exit_code == 0
    assert pd.read_csv(tmp_path / "l.csv").columns[:4].tolist() == ["Account ID", "name", "arr", "Health score"]


def test_failed_run_leaves_previous_outputs_untouched(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 0
    before = outputs(tmp_path / "out")
    write_csv(tmp_path / "usage.csv", "account_id,when,event\n001,not a date,login\n")
    assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 65
    after = outputs(tmp_path / "out")
    assert after == before


def test_unwritable_output_is_exit_73(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    (tmp_path / "blocker").write_text("a file where a directory should be")
    result = runner.invoke(app, ["score", "-c", str(config), "--out", str(tmp_path / "blocker" / "out")])
    assert result.exit_code == 73
    assert "cannot write" in result.stderr


def test_internal_errors_are_exit_1_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr("healthscore.pipeline.run", boom)
    result = runner.invoke(app, ["score", "-c", str(small_project(tmp_path))])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: unexpected" in result.stderr
    assert "--debug" in result.stderr


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "-c", str(small_project(tmp_path)), "-q"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("argv", "status", "out", "err"),
    [
        (["--version"], 0, "healthscore ", ""),
        (["score", "-c", "/nonexistent/health.yaml", "-q"], 66, "", "config file not found: /nonexistent/health.yaml"),
        (["no-such-command"], 2, "", "No such command"),
    ],
)
def test_the_command_ends_with_its_status_and_all_its_output(argv: list[str], status: int, out: str, err: str) -> None:
    """The process ends without the interpreter's teardown (`cli._end`), its output flushed."""
    done = subprocess.run([sys.executable, "-m", "healthscore", *argv], capture_output=True, text=True)
    assert done.returncode == status
    assert done.stdout.startswith(out)
    assert err in done.stderr


def test_end_flushes_what_is_buffered_and_skips_the_teardown() -> None:
    code = (
        "import atexit, sys\n"
        "from healthscore.cli import _end\n"
        "atexit.register(lambda: print('teardown ran'))\n"
        "sys.stdout.write('kept in the buffer')\n"
        "_end(sys.argv[1] if sys.argv[1] != 'none' else None)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, "none"], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "kept in the buffer", "")
    done = subprocess.run([sys.executable, "-c", code, "a message"], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (1, "kept in the buffer", "a message\n")


def test_every_command_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "score" in result.stdout
    score_help = runner.invoke(app, ["score", "--help"])
    for option in ("--config", "--as-of", "--out", "--output", "--format", "--quiet"):
        assert option in score_help.stdout


def test_import_does_not_pull_in_cli_packages() -> None:
    code = "import sys, healthscore; healthscore.load_config; print('typer' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("argv", [["--help"], ["score", "--help"], ["validate", "--help"]])
def test_help_imports_neither_pandas_nor_pyarrow(argv: list[str]) -> None:
    """Help is instant: the heavy packages are imported by the commands that use them."""
    code = (
        "import runpy, sys\n"
        "import healthscore.cli\n"
        "healthscore.cli._end = sys.exit  # to look at the modules after the command\n"
        f"sys.argv = ['healthscore', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('healthscore', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage" in done.stdout
    assert done.stderr.strip() == "[]"


def test_quiet_runs_set_up_no_progress_bars() -> None:
    """Without bars wanted (--quiet, JSON logs), rich is not even imported for them."""
    code = (
        "import sys\n"
        "from healthscore.cli import _progress\n"
        "with _progress(False) as hook:\n"
        "    print(hook, 'rich' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "False"]


def test_make_run_command_as_a_subprocess(tmp_path: Path) -> None:
    """The command `make run` runs, through `python -m healthscore`, into a temp directory."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "healthscore",
            "score",
            "-c",
            str(ROOT / "configs" / "default.yaml"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "500 accounts" in proc.stdout
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [".healthscore.lock", "health_scores.csv", "health_scores.parquet", "rejects.csv", "run.json"]
    assert io.StringIO(proc.stdout).read().count("\x1b[") == 0


def test_a_typed_column_that_is_absent_is_exit_65(tmp_path: Path) -> None:
    """A typo in `types` is not silently ignored."""
    config = small_project(tmp_path)
    config.write_text(config.read_text().replace("time: when}", "time: when, types: {evnt: string}}"))
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 65
    assert "column 'evnt' not found" in result.stderr


def test_outputs_get_ordinary_file_modes(tmp_path: Path) -> None:
    """Temp files are 0600; the published outputs follow the umask like any new file."""
    config = small_project(tmp_path)
    old = os.umask(0o022)
    try:
        assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}  # the lock too
    assert set(modes.values()) == {0o644}


def test_a_failure_while_publishing_leaves_every_previous_output(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    assert runner.invoke(app, ["score", "-c", str(config)]).exit_code == 0
    out = tmp_path / "out"
    (out / "health_scores.parquet").unlink()
    (out / "health_scores.parquet").mkdir()  # the second target cannot be replaced
    before = outputs(out)
    write_csv(tmp_path / "usage.csv", "account_id,when,event\n003,2026-01-30,login\n")
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 73
    assert "a directory is in the way" in result.stderr
    assert outputs(out) == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_accounts_with_a_header_only_are_exit_66(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_csv(tmp_path / "crm.csv", "Account ID,Name,ARR\n")
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 66
    assert "has no rows" in result.stderr


def test_arr_that_is_not_a_number_is_warned_about(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    write_csv(tmp_path / "crm.csv", "Account ID,Name,ARR\n001,Acme,1000\n002,Beta,lots\n003,Gamma,500\n")
    result = runner.invoke(app, ["score", "-c", str(config), "--json"])
    warnings = json.loads(result.stdout)["warnings"]
    assert any("1 ARR value(s) are not numbers" in w["message"] and "'lots'" in w["message"] for w in warnings)


def test_a_filter_that_fails_on_the_data_names_its_metric(tmp_path: Path) -> None:
    config = small_project(tmp_path)
    config.write_text(config.read_text().replace("window: 30d,", 'window: 30d, where: "event > 3",'))
    result = runner.invoke(app, ["score", "-c", str(config)])
    assert result.exit_code == 65
    assert "metrics.logins.where: in source 'usage'" in " ".join(result.stderr.split())


@pytest.mark.parametrize("single", [True, False])
def test_the_renderer_is_imported_meanwhile_as_the_outputs_are_written(tmp_path: Path, single: bool) -> None:
    """Rich's import (0.03 s) overlaps the writing of the outputs, which holds no GIL."""
    from healthscore import cli, outputs

    steps: list[str] = []
    single, several = outputs.write_single, outputs.write_outputs

    def record(step: str, write: Any) -> Any:
        return lambda *args, **kwargs: (steps.append(step), write(*args, **kwargs))[1]

    config = small_project(tmp_path)
    with (
        patch.object(cli, "_import_meanwhile", lambda module: steps.append(f"import {module}")),
        patch.object(outputs, "write_single", record("write", single)),
        patch.object(outputs, "write_outputs", record("write", several)),
    ):
        one = ["-o", str(tmp_path / "table.parquet")] if single else []
        result = runner.invoke(app, ["score", "-c", str(config), "-q", *one])
        assert result.exit_code == 0, result.output
        json_log = runner.invoke(
            app, ["score", "-c", str(config), "--log-format", "json", "-o", str(tmp_path / "t.csv")]
        )
        assert json_log.exit_code == 0, json_log.output
    assert steps == ["import healthscore.render", "write", "import None", "write"]


def test_a_module_imported_meanwhile_shows_no_error_of_its_own(capfd: pytest.CaptureFixture[str]) -> None:
    """A module that fails to import fails where the command imports it, with its error, once."""
    from healthscore.cli import _import_meanwhile
    from healthscore.parallel import on_two_threads

    _import_meanwhile("healthscore_no_such_module")
    on_two_threads(lambda _: None, [0, 1])  # the two threads are through with the import
    assert capfd.readouterr().err == ""
    with pytest.raises(ModuleNotFoundError, match="healthscore_no_such_module"):
        __import__("healthscore_no_such_module")
