"""Sources read on two threads (`pipeline.read_sources` once the largest source is big
enough): the same sources as read in turn, the same progress, and the error of the first
failing source in config order, whichever thread read it."""

from __future__ import annotations

import shutil
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest

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
    assert turn_calls == [("read", name, done, 4) for done, name in enumerate(ORDER)] + [("read", "", 4, 4)]
    # each source announced once before it is read, with how many were read by then
    assert sorted(call[1] for call in beside_calls[:-1]) == sorted(ORDER)
    assert [call[2] for call in beside_calls] == sorted(call[2] for call in beside_calls)
    assert beside_calls[-1] == ("read", "", 4, 4)


@pytest.mark.parametrize("beside", [False, True])
def test_a_side_source_failing_before_the_largest_in_config_order_raises_first(tmp_path: Path, beside: bool) -> None:
    path = sample_copy(tmp_path)
    (tmp_path / "sample_data" / "crm_accounts.csv").unlink()  # crm: read on the second thread, first
    (tmp_path / "sample_data" / "usage_events.parquet").write_bytes(CUT_SHORT)  # usage: after it
    error = failure(path, beside)
    assert isinstance(error, InputMissingError)
    assert "source 'crm'" in error.message


@pytest.mark.parametrize("beside", [False, True])
def test_the_largest_failing_before_a_side_source_in_config_order_raises_first(tmp_path: Path, beside: bool) -> None:
    path = sample_copy(tmp_path)
    (tmp_path / "sample_data" / "usage_events.parquet").write_bytes(CUT_SHORT)
    (tmp_path / "sample_data" / "zendesk_tickets.csv").unlink()  # tickets: last, on the second thread
    error = failure(path, beside)
    assert isinstance(error, DataError)
    assert "source 'usage'" in error.message


@pytest.mark.parametrize("beside", [False, True])
def test_the_largest_failing_alone_raises_its_own_error(tmp_path: Path, beside: bool) -> None:
    path = sample_copy(tmp_path)
    (tmp_path / "sample_data" / "usage_events.parquet").write_bytes(CUT_SHORT)
    error = failure(path, beside)
    assert isinstance(error, DataError)
    assert "source 'usage'" in error.message
    assert "incomplete or invalid parquet file" in error.message
