"""Normalization: every scale method pinned with hand-computed values, plus properties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from healthscore.errors import DataError
from healthscore.models import MetricConfig
from healthscore.normalize import normalize

NAN = float("nan")
POPULATION = ["minmax", "percentile", "zscore", "log_minmax", "log_percentile", "log_zscore"]
BANDS = [{"upto": 2, "score": 10}, {"upto": 5, "score": 6}, {"score": 2}]
SCALES: dict[str, dict[str, Any]] = {
    "linear": {"method": "linear", "bad": 2, "good": 12},
    "bands": {"method": "bands", "bands": BANDS},
    "identity": {"method": "identity"},
    "boolean": {"method": "boolean"},
    **{m: {"method": m} for m in POPULATION},
}


def metric(direction: str = "higher_is_better", **scale: Any) -> MetricConfig:
    """A metric whose only interesting part is its scale (and direction)."""
    return MetricConfig(source="crm", agg="value", field="x", scale=scale, direction=direction)


def scores(values: list[Any] | pd.Series, direction: str = "higher_is_better", **scale: Any) -> list[float]:
    """The 0..10 scores of raw values as a plain list (NaN for missing)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype="float64")
    result, warnings = normalize(series, metric(direction, **scale), "x")
    assert warnings == []
    return result.tolist()


def same(actual: list[float], expected: list[float]) -> bool:
    """Element-wise equal within 1e-9, NaN equal to NaN."""
    return len(actual) == len(expected) and all(
        (math.isnan(a) and math.isnan(e)) or a == pytest.approx(e, abs=1e-9)
        for a, e in zip(actual, expected, strict=True)
    )


# ---- linear ----------------------------------------------------------------------------------


def test_linear_maps_bad_to_0_good_to_10_and_clamps() -> None:
    assert same(scores([-5, 2, 4.5, 7, 12, 20, NAN], method="linear", bad=2, good=12), [0, 0, 2.5, 5, 10, 10, NAN])


def test_linear_with_bad_above_good_means_lower_is_better() -> None:
    assert same(scores([0, 1, 2.5, 5, 9], method="linear", bad=5, good=0), [10, 8, 5, 0, 0])


def test_linear_with_negative_anchors() -> None:
    # NPS -100..100: 0 is the middle
    assert same(scores([-100, -60, 0, 100], method="linear", bad=-100, good=100), [0, 2, 5, 10])


def test_direction_is_refused_for_non_population_methods() -> None:
    with pytest.raises(ValidationError, match="swap `bad` and `good`"):
        metric("lower_is_better", method="linear", bad=0, good=1)


# ---- bands -----------------------------------------------------------------------------------


def test_bands_upto_is_inclusive_and_last_band_takes_the_rest() -> None:
    assert same(scores([0, 2, 3, 5, 6], method="bands", bands=BANDS), [10, 10, 6, 6, 2])


def test_bands_edges_and_missing() -> None:
    values = [-50, 2.0001, 4.9999, 5.0001, 1e9, NAN]
    assert same(scores(values, method="bands", bands=BANDS), [10, 6, 6, 2, 2, NAN])


def test_bands_with_one_band_give_its_points_to_everything() -> None:
    assert same(scores([0, 100, NAN], method="bands", bands=[{"score": 7}]), [7, 7, NAN])


def test_bands_four_thresholds_days_since_login() -> None:
    days = [{"upto": 3, "score": 10}, {"upto": 14, "score": 6}, {"upto": 30, "score": 3}, {"score": 0}]
    assert same(scores([0, 3, 4, 14, 15, 30, 31], method="bands", bands=days), [10, 10, 6, 6, 3, 3, 0])


# ---- minmax ----------------------------------------------------------------------------------


def test_minmax_over_present_values() -> None:
    assert same(scores([2, 4, NAN, 6, 10], method="minmax"), [0, 2.5, NAN, 5, 10])


def test_minmax_lower_is_better_inverts() -> None:
    assert same(scores([2, 4, NAN, 6, 10], "lower_is_better", method="minmax"), [10, 7.5, NAN, 5, 0])


def test_minmax_all_equal_gives_neutral() -> None:
    assert same(scores([3, 3, NAN], method="minmax"), [5, 5, NAN])


def test_minmax_clip_at_percentiles() -> None:
    values = list(range(101))  # percentiles 5 and 95 are 5 and 95
    result = scores(values, method="minmax", clip=[5, 95])
    assert same([result[i] for i in (0, 5, 20, 50, 95, 100)], [0, 0, 10 * 15 / 90, 5, 10, 10])


def test_minmax_clip_tames_an_outlier() -> None:
    # clip [0, 75] of [0, 1, 2, 100]: the 75th percentile is 2 + 0.25*98 = 26.5
    assert same(scores([0, 1, 2, 100], method="minmax", clip=[0, 75]), [0, 10 / 26.5, 20 / 26.5, 10])


def test_minmax_an_infinite_value_does_not_flatten_the_others() -> None:
    assert same(scores([1, 2, 3, math.inf, NAN], method="minmax"), [0, 5, 10, 10, NAN])
    assert same(scores([-math.inf, 1, 2, 3], method="minmax"), [0, 0, 5, 10])


# ---- percentile ------------------------------------------------------------------------------


def test_percentile_average_rank_over_present_values() -> None:
    # ranks 1, 2.5, 2.5, 4 over n = 4 present values -> 10 x (rank - 1) / 3
    assert same(scores([10, 20, NAN, 20, 40], method="percentile"), [0, 5, NAN, 5, 10])


def test_percentile_uneven_ties() -> None:
    # ranks 2, 2, 2, 4, 5 over n = 5 -> 10 x (rank - 1) / 4
    assert same(scores([0, 0, 0, 7, 9], method="percentile"), [2.5, 2.5, 2.5, 7.5, 10])


def test_percentile_lower_is_better_inverts() -> None:
    assert same(scores([10, 20, NAN, 20, 40], "lower_is_better", method="percentile"), [10, 5, NAN, 5, 0])


def test_percentile_single_value_is_neutral_and_empty_stays_empty() -> None:
    assert same(scores([NAN, 42, NAN], method="percentile"), [NAN, 5, NAN])
    assert same(scores([NAN, NAN], method="percentile"), [NAN, NAN])
    assert same(scores([], method="percentile"), [])


def test_percentile_all_tied_is_neutral() -> None:
    assert same(scores([3, 3, 3], method="percentile"), [5, 5, 5])


# ---- zscore ----------------------------------------------------------------------------------


def test_zscore_maps_mean_to_5_and_clips_at_z() -> None:
    # mean 5, population std 5: standard scores -1, -1, 1, 1
    assert same(scores([0, 0, 10, 10, NAN], method="zscore"), [2.5, 2.5, 7.5, 7.5, NAN])
    assert same(scores([0, 0, 10, 10], method="zscore", z=1), [0, 0, 10, 10])
    assert same(scores([0, 0, 10, 10], method="zscore", z=0.5), [0, 0, 10, 10])
    assert scores([0, 5, 10], method="zscore")[1] == 5  # the mean


def test_zscore_hand_computed() -> None:
    # [1..5]: mean 3, std sqrt(2); z = 1 clips 1 and 5
    half = 10 * (1 - 1 / math.sqrt(2)) / 2
    assert same(scores([1, 2, 3, 4, 5, NAN], method="zscore", z=1), [0, half, 5, 10 - half, 10, NAN])


def test_zscore_lower_is_better_and_constant() -> None:
    assert same(scores([0, 0, 10, 10], "lower_is_better", method="zscore"), [7.5, 7.5, 2.5, 2.5])
    assert same(scores([4, 4, NAN], method="zscore"), [5, 5, NAN])


def test_zscore_clip_percentiles_first() -> None:
    # clip [0, 75] of [0, 0, 10, 10, 1000] -> [0, 0, 10, 10, 10]: mean 6, std sqrt(24)
    sd = math.sqrt(24)
    low, high = 10 * (-6 / sd + 2) / 4, 10 * (4 / sd + 2) / 4
    assert same(scores([0, 0, 10, 10, 1000], method="zscore", clip=[0, 75]), [low, low, high, high, high])


# ---- log forms -------------------------------------------------------------------------------


def test_log_minmax_uses_log1p() -> None:
    e = math.e
    assert same(scores([0, e - 1, e**2 - 1, NAN], method="log_minmax"), [0, 5, 10, NAN])


def test_log_forms_are_sign_symmetric_for_negative_values() -> None:
    e = math.e
    assert same(scores([-(e - 1), 0, e - 1], method="log_minmax"), [0, 5, 10])


def test_log_percentile_is_percentile_of_the_logs() -> None:
    assert same(scores([0, 9, 99, 99, 5000], method="log_percentile"), [0, 2.5, 6.25, 6.25, 10])


def test_log_zscore_hand_computed() -> None:
    # logs 0, 1, 2: mean 1, population std sqrt(2/3); z = 2
    e, sd = math.e, math.sqrt(2 / 3)
    low = 10 * (2 - 1 / sd) / 4
    assert same(scores([0, e - 1, e**2 - 1], method="log_zscore"), [low, 5, 10 - low])
    assert same(scores([0, e - 1, e**2 - 1], "lower_is_better", method="log_zscore"), [10 - low, 5, low])


def test_log_minmax_lower_is_better() -> None:
    e = math.e
    assert same(scores([0, e - 1, e**2 - 1], "lower_is_better", method="log_minmax"), [10, 5, 0])


# ---- boolean, categorical, identity ---------------------------------------------------------


def test_boolean_true_is_10() -> None:
    flags = pd.Series([True, False, pd.NA], dtype="boolean")
    assert same(scores(flags, method="boolean"), [10, 0, NAN])
    assert same(scores([1, 0, 2, NAN], method="boolean"), [10, 0, 10, NAN])


def test_boolean_text() -> None:
    text = pd.Series(["true", "False", " YES ", "no", None, "y", "N"], dtype="str")
    assert same(scores(text, method="boolean"), [10, 0, 10, 0, NAN, 10, 0])


def test_boolean_unknown_text_is_a_data_error() -> None:
    with pytest.raises(DataError, match="boolean"):
        normalize(pd.Series(["true", "maybe"], dtype="str"), metric(method="boolean"), "x")


def test_categorical_map_and_unmapped_values_warn() -> None:
    values = pd.Series(["Good", "Bad", None, "Offered", "Good", "Offered", "Meh"], dtype="str")
    result, warnings = normalize(values, metric(method="categorical", map={"Good": 10, "Bad": 0}), "csat")
    assert same(result.tolist(), [10, 0, NAN, NAN, 10, NAN, NAN])
    assert len(warnings) == 1
    assert warnings[0].where == "metrics.csat.scale.map"
    assert warnings[0].message == "3 value(s) not in the map count as missing: ['Meh', 'Offered']"


def test_categorical_matches_case_and_spaces_when_no_exact_key() -> None:
    # the zendesk preset lower-cases satisfaction; the documented map is {Good: 10, Bad: 0}
    values = pd.Series(["good", " BAD ", "Good", "bad"], dtype="str")
    result, warnings = normalize(values, metric(method="categorical", map={"Good": 10, "Bad": 0, "bad": 1}), "x")
    assert result.tolist() == [10, 0, 10, 1]  # an exact key wins
    assert warnings == []


def test_categorical_numeric_values_match_whole_number_keys() -> None:
    values = pd.Series([1.0, 2.0, NAN, 2.5])  # floats because of the missing value
    result, warnings = normalize(values, metric(method="categorical", map={"1": 0, "2": 7, "2.5": 9}), "x")
    assert same(result.tolist(), [0, 7, NAN, 9])
    assert warnings == []


def test_identity_clamps_to_0_10() -> None:
    assert same(scores([-1, 0, 3.5, 10, 12, NAN], method="identity"), [0, 0, 3.5, 10, 10, NAN])


def test_text_for_a_numeric_method_is_a_data_error() -> None:
    with pytest.raises(DataError, match="needs numbers"):
        normalize(pd.Series(["3", "lots"], dtype="str"), metric(method="minmax"), "x")


def test_numbers_as_text_and_nullable_integers() -> None:
    assert same(scores(pd.Series(["2", "12", None], dtype="str"), method="linear", bad=2, good=12), [0, 10, NAN])
    assert same(scores(pd.Series([1, None, 3], dtype="Int64"), method="minmax"), [0, NAN, 10])


# ---- shared behaviour ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCALES))
def test_missing_raw_values_stay_missing(name: str) -> None:
    values = pd.Series([1.0, NAN, 0.0, NAN, 3.0], index=list("abcde"))
    result, _ = normalize(values, metric(**SCALES[name]), "m")
    assert result.name == "m"
    assert list(result.index) == list("abcde")
    assert result.dtype == "float64"
    assert result.isna().tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("method", POPULATION)
def test_lower_is_better_is_ten_minus_higher_is_better(method: str) -> None:
    values = [3.0, NAN, 0.5, 8.0, 8.0, 120.0]
    higher = scores(values, method=method)
    lower = scores(values, "lower_is_better", method=method)
    assert same(lower, [10 - h for h in higher])


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
raw_values = st.lists(st.one_of(finite, st.just(NAN)), min_size=0, max_size=12)
monotone_scales = ["linear", "identity", *POPULATION]


@settings(max_examples=40, deadline=None)
@given(values=raw_values, name=st.sampled_from(sorted(SCALES)), lower=st.booleans())
def test_scores_stay_within_0_10(values: list[float], name: str, lower: bool) -> None:
    direction = "lower_is_better" if lower and name in POPULATION else "higher_is_better"
    result = scores(values, direction, **SCALES[name])
    present = [r for r in result if not math.isnan(r)]
    assert all(0 <= r <= 10 for r in present)
    assert [math.isnan(r) for r in result] == [math.isnan(v) for v in values]


@settings(max_examples=40, deadline=None)
@given(values=raw_values, name=st.sampled_from(monotone_scales))
def test_higher_raw_value_never_scores_lower(values: list[float], name: str) -> None:
    result = scores(values, **SCALES[name])
    pairs = [(v, r) for v, r in zip(values, result, strict=True) if not math.isnan(v)]
    for (v1, r1), (v2, r2) in zip(sorted(pairs), sorted(pairs)[1:], strict=False):
        assert v1 <= v2
        assert r1 <= r2 + 1e-9


@settings(max_examples=40, deadline=None)
@given(values=raw_values, name=st.sampled_from(sorted(SCALES)), seed=st.integers(0, 2**32 - 1))
def test_permuting_accounts_permutes_scores(values: list[float], name: str, seed: int) -> None:
    series = pd.Series(values, index=[f"a{i}" for i in range(len(values))], dtype="float64")
    shuffled = series.sample(frac=1.0, random_state=np.random.RandomState(seed))
    before, _ = normalize(series, metric(**SCALES[name]), "x")
    after, _ = normalize(shuffled, metric(**SCALES[name]), "x")
    assert np.allclose(after.reindex(series.index).to_numpy(), before.to_numpy(), atol=1e-9, equal_nan=True)
