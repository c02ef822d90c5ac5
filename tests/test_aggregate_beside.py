"""Sources aggregated on two threads (`pipeline._aggregate_all` once the largest source has
enough rows): the same metrics as aggregated in turn, the same progress, and the error of
the first failing source in the metrics' order, whichever thread aggregated it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from unittest.mock import patch

import pandas as pd
import pytest
from conftest import assert_progress_beside

from healthscore import pipeline
from healthscore.aggregate import aggregate_source, source_metrics
from healthscore.config import load_config
from healthscore.errors import DataError
from healthscore.models import MetricConfig
from healthscore.sources import SourceData

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["usage", "nps", "tickets", "crm"]  # configs/default.yaml's sources by first metric; usage has most rows
Calls = list[tuple[str, str, int, int]]
Sample = tuple[dict[str, SourceData], dict[str, dict[str, MetricConfig]], dt.date]  # read once for all tests


@pytest.fixture(scope="module")
def sample() -> Sample:
    config = load_config(ROOT / "configs" / "default.yaml")
    return pipeline.read_sources(config), source_metrics(config), pipeline.resolve_as_of(config, None)


def aggregate(sample: Sample, beside: bool) -> tuple[dict[str, pd.DataFrame], Calls]:
    """`_aggregate_all` in turn (`beside` False) or with the others beside the largest."""
    sources, by_source, day = sample
    calls: Calls = []
    with patch.object(pipeline, "PARALLEL_AGGREGATE_ROWS", 0 if beside else 1 << 62):
        aggregated, key_rows = pipeline._aggregate_all(sources, by_source, day, lambda *call: calls.append(call))
    assert key_rows == {}  # no source on a backend
    return aggregated, calls


def test_the_config_aggregates_its_sources_in_this_order(sample: Sample) -> None:
    sources, by_source, _ = sample
    assert list(by_source) == ORDER
    assert max(ORDER, key=lambda name: len(sources[name].frame)) == "usage"


def test_sources_aggregated_beside_the_largest_equal_those_aggregated_in_turn(sample: Sample) -> None:
    (in_turn, turn_calls), (beside, beside_calls) = aggregate(sample, False), aggregate(sample, True)
    assert list(beside) == list(in_turn) == ORDER
    for name in ORDER:
        pd.testing.assert_frame_equal(beside[name], in_turn[name])
    assert_progress_beside("aggregate", ORDER, turn_calls, beside_calls)


@pytest.mark.parametrize("beside", [False, True])
@pytest.mark.parametrize(
    ("failing", "raised"),
    [
        ({"tickets"}, "tickets"),  # a side source alone
        ({"usage", "nps"}, "usage"),  # the largest, before a side source
        ({"nps", "crm"}, "nps"),  # two side sources: the first in order
    ],
)
def test_the_first_failing_source_in_order_raises(sample: Sample, beside: bool, failing: set[str], raised: str) -> None:
    def breaking(data: SourceData, metrics: Mapping[str, MetricConfig], as_of: dt.date) -> pd.DataFrame:
        if data.name in failing:
            raise DataError(f"source {data.name!r} broke")
        return aggregate_source(data, metrics, as_of)

    with patch.object(pipeline, "aggregate_source", breaking), pytest.raises(DataError) as caught:
        aggregate(sample, beside)
    assert caught.value.message == f"source {raised!r} broke"
