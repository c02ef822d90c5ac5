"""The README's walk-throughs stay true: every `healthscore` command of these sections runs
on the sample data with exit 0, and the output they quote is what the command prints."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from healthscore.cli import app

README = ROOT / "README.md"
SECTIONS = ("## Why is this account red?", "### Checking a config before it runs")
runner = CliRunner()


def section(title: str) -> str:
    """One README section, from its heading to the next `## ` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(title + "\n")
    end = text.find("\n## ", start + len(title))
    return text[start : end if end >= 0 else len(text)]


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of one language."""
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def commands(text: str) -> list[list[str]]:
    """The healthscore commands of the section's sh blocks, as argument lists (comments dropped)."""
    found = []
    for block in blocks(text, "sh"):
        for line in block.splitlines():
            if line.startswith(".venv/bin/healthscore "):
                words = shlex.split(line, comments=True)[1:]
                found.append(words[: words.index(">")] if ">" in words else words)
    return found


def invoke(args: list[str], tmp_path: Path, where: Path = ROOT) -> str:
    """Run one command from the repository root (the README's paths are relative to it)."""
    cwd = Path.cwd()
    os.chdir(where)
    try:
        result = runner.invoke(app, [a.replace("/tmp/", f"{tmp_path}/") for a in args])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


@pytest.mark.parametrize("title", SECTIONS)
def test_readme_commands_run(title: str, tmp_path: Path) -> None:
    found = commands(section(title))
    assert found, f"no commands in {title}"
    for args in found:
        invoke(args, tmp_path)


def test_explain_output_quoted_in_the_readme_is_what_it_prints(tmp_path: Path) -> None:
    text = section("## Why is this account red?")
    printed = invoke(commands(text)[0], tmp_path)
    quoted = blocks(text, "text")[0].splitlines()
    whole = [line for line in quoted if line != "..." and "..." not in line]
    assert len(whole) >= 8
    for line in whole:
        assert line in printed, line


def copy_layout(tmp_path: Path) -> None:
    """The repository's layout in tmp_path: configs/default.yaml and sample_data/ (linked)."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    (tmp_path / "configs" / "default.yaml").write_bytes((ROOT / "configs" / "default.yaml").read_bytes())


def test_does_it_predict_churn_runs_as_written(tmp_path: Path) -> None:
    """Run in a copy of the layout: calibrate writes configs/calibrated.yaml beside the config."""
    copy_layout(tmp_path)
    text = section("## Does it predict churn?")
    printed = "".join(invoke(args, tmp_path, where=tmp_path) for args in commands(text))
    assert (tmp_path / "out" / "backtest.json").is_file()
    assert (tmp_path / "configs" / "calibrated.yaml").is_file()
    quoted = [line for block in blocks(text, "text") for line in block.splitlines()]
    assert len(quoted) >= 12
    for line in quoted:
        assert line in printed, line


def test_watching_the_trend_runs_as_written(tmp_path: Path) -> None:
    """The section's shell steps (copy the config, append a history) done in a copy of the
    repository's layout, then its commands; the output it quotes is what they print."""
    text = section("## Watching the trend")
    shell = blocks(text, "sh")[0].splitlines()
    assert shell[0] == "cp configs/default.yaml configs/trend.yaml"
    assert shell[1].startswith("echo '")
    assert shell[1].endswith("' >> configs/trend.yaml")
    copy_layout(tmp_path)
    config = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    appended = shell[1].removeprefix("echo '").removesuffix("' >> configs/trend.yaml")
    (tmp_path / "configs" / "trend.yaml").write_text(config + appended + "\n", encoding="utf-8")
    printed = "".join(invoke(args, tmp_path, where=tmp_path) for args in commands(text))
    assert (tmp_path / "out" / "history").is_dir()
    quoted = [line for block in blocks(text, "text") for line in block.splitlines()]
    assert len(quoted) >= 15
    for line in quoted:
        assert line in printed, line
