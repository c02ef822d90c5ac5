"""Sources read on two threads (`pipeline.read_sources` once the largest source is big
enough): the same sources as read in turn, the same progress, and the error of the first
failing source in config order, whichever thread read it."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest
from conftest import assert_progress_beside

from healthscore import pipeline
from healthscore.config import load_config
from healthscore.errors import DataError, HealthscoreError, InputMissingError

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["crm", "usage", "nps", "tickets"]  # configs/default.yaml (by first use); usage (Parquet) is the largest
CUT_SHORT = b"PAR1" + bytes(2 << 20)  # a broken Parquet file that is still the largest input


def sample_copy(tmp_path: Path) -> Path:
    """The default config and the sample data, copied where a test may break them."""
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "default.yaml", tmp_path / "configs" / "default.yaml")
    return tmp_path / "configs" / "default.yaml"


def read(config_path: Path, beside: bool) -> tuple[dict[str, pipeline.SourceData], list[tuple[str, str, int, int]]]:
    """`read_sources` in turn (`beside` False) or with the others beside the largest."""
    calls: list[tuple[str, str, int, int]] = []
    with patch.object(pipeline, "PARALLEL_READ_BYTES", 0 if beside else 1 << 62):
        sources = pipeline.read_sources(load_config(config_path), lambda *call: calls.append(call))
    return sources, calls


def failure(config_path: Path, beside: bool) -> HealthscoreError:
    with pytest.raises(HealthscoreError) as caught:
        read(config_path, beside)
    return caught.value


def test_the_config_reads_its_sources_in_this_order() -> None:
    config = load_config(ROOT / "configs" / "default.yaml")
    assert list(pipeline.needed_columns(config)) == ORDER
    sizes = {name: pipeline._input_bytes(config, name) for name in ORDER}
    assert max(sizes, key=lambda name: sizes[name]) == "usage"


def test_sources_read_beside_the_largest_equal_those_read_in_turn() -> None:
    path = ROOT / "configs" / "default.yaml"
    (in_turn, turn_calls), (beside, beside_calls) = read(path, False), read(path, True)
    assert list(beside) == list(in_turn) == ORDER  # config order, whichever thread read each
    for name in ORDER:
        pd.testing.assert_frame_equal(beside[name].frame, in_turn[name].frame)
        assert [f.sha256 for f in beside[name].files] == [f.sha256 for f in in_turn[name].files]
    assert_progress_beside("read", ORDER, turn_calls, beside_calls)


@pytest.mark.parametrize("beside", [False, True])
@pytest.mark.parametrize(
    ("missing", "raised", "source"),
    [
        ("crm_accounts.csv", InputMissingError, "crm"),  # crm: first, on the second thread
        ("zendesk_tickets.csv", DataError, "usage"),  # tickets: last, on the second thread
        (None, DataError, "usage"),  # the largest failing alone
    ],
)
def test_the_first_failing_source_in_config_order_raises(
    tmp_path: Path, beside: bool, missing: str | None, raised: type[HealthscoreError], source: str
) -> None:
    """usage (the largest, read on this thread) is cut short, and maybe another source's file is missing."""
    path = sample_copy(tmp_path)
    (tmp_path / "sample_data" / "usage_events.parquet").write_bytes(CUT_SHORT)
    if missing is not None:
        (tmp_path / "sample_data" / missing).unlink()
    error = failure(path, beside)
    assert type(error) is raised
    assert f"source {source!r}" in error.message
    if source == "usage":
        assert "incomplete or invalid parquet file" in error.message
