"""Shared test helpers: hand-made sources on disk and configs built in code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from healthscore import textfile
from healthscore.config import Config, parse_config
from healthscore.sources import SourceData

ROOT = Path(__file__).resolve().parent.parent
AS_OF = dt.date(2026, 1, 31)


def write_csv(path: Path, rows: list[dict[str, Any]] | str) -> Path:
    """Write rows (dicts) or raw text as a CSV file and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(rows, str):
        path.write_text(rows, encoding="utf-8")
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    return path


def lines_of(data: SourceData) -> list[int]:
    """The line in its file of each row of a source's frame."""
    assert data.origins is not None
    return [int(line) for line in data.origins.lines]


def make_config(base_dir: Path, **sections: Any) -> Config:
    """A config from keyword sections (accounts=..., sources=..., metrics=..., groups=...)."""
    data: dict[str, Any] = {"version": 1, "as_of": AS_OF.isoformat()}
    data.update(sections)
    return parse_config(data, base_dir=base_dir)


@pytest.fixture
def accounts_csv(tmp_path: Path) -> Path:
    """Four accounts (one id with leading zeros) with tier, ARR and seats."""
    return write_csv(
        tmp_path / "accounts.csv",
        "account_id,name,tier,arr,seats\n"
        "001,Acme,Enterprise,100000,10\n"
        "002,Beta,SMB,5000,2\n"
        "003,Gamma,SMB,20000,4\n"
        "004,Delta,Enterprise,250000,20\n",
    )


def assert_progress_beside(
    stage: str, order: list[str], in_turn: list[tuple[Any, ...]], beside: list[tuple[Any, ...]]
) -> None:
    """Progress calls of a stage done in turn, then on two threads (`pipeline._beside`): in
    turn, each name announced in order with how many were done; beside, each name once, the
    counts never going back; both end with the stage's last call."""
    total = len(order)
    assert in_turn == [(stage, name, done, total) for done, name in enumerate(order)] + [(stage, "", total, total)]
    assert sorted(call[1] for call in beside[:-1]) == sorted(order)
    assert [call[2] for call in beside] == sorted(call[2] for call in beside)
    assert beside[-1] == (stage, "", total, total)


@pytest.fixture(scope="module", params=["read", "mapped"])
def csv_read_and_mapped(request: pytest.FixtureRequest) -> Iterator[str]:
    """A module's tests run twice: CSV files read into memory, then mapped as large ones
    are (`textfile.file_text`), with the same results expected."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "mapped":
            patch.setattr(textfile, "MAP_BYTES", 0)
        yield request.param
