"""Normalization: a metric's raw values over the scored accounts -> 0..10 scores.

Missing raw values stay missing (NaN). Population methods (minmax, percentile, zscore
and their log forms) look only at the accounts that have a value; `direction:
lower_is_better` inverts their result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthscore.coerce import FALSE_TOKENS, TRUE_TOKENS
from healthscore.errors import DataError, Problem
from healthscore.models import POPULATION_METHODS, MetricConfig, ScaleConfig

NEUTRAL = 5.0


def normalize(values: pd.Series, metric: MetricConfig, name: str = "metric") -> tuple[pd.Series, list[Problem]]:
    """0..10 scores of one metric's raw values, and warnings (e.g. unmapped categories)."""
    scale = metric.scale
    warnings: list[Problem] = []
    index = values.index
    # by position: pandas looks values up in a text index (copying a million account ids
    # to Python objects) in operations as plain as a comparison with a number
    values = values.reset_index(drop=True)
    if scale.method == "categorical":
        scores = _categorical(values, scale, name, warnings)
    elif scale.method == "boolean":
        scores = _boolean(values, name)
    else:
        numbers = _numbers(values, name, scale.method)
        scores = _numeric_method(numbers, scale)
        if metric.direction == "lower_is_better" and scale.method in POPULATION_METHODS:
            scores = 10.0 - scores
    return pd.Series(scores.to_numpy(dtype="float64"), index=index, name=name), warnings


def _numeric_method(x: pd.Series, scale: ScaleConfig) -> pd.Series:
    method: str = scale.method
    if method.startswith("log_"):
        x = np.sign(x) * np.log1p(x.abs())
        method = method.removeprefix("log_")
    if method == "linear":
        assert scale.bad is not None
        assert scale.good is not None
        return (10.0 * (x - scale.bad) / (scale.good - scale.bad)).clip(0.0, 10.0)
    if method == "bands":
        return bands(x, scale)
    if method == "identity":
        return x.clip(0.0, 10.0)
    if method == "percentile":
        return percentile(x)
    x = _finite(x)
    if scale.clip is not None:
        present = x.dropna()
        if len(present):
            lo, hi = np.percentile(present, scale.clip)
            x = x.clip(lo, hi)
    return minmax(x) if method == "minmax" else zscore(x, scale.z)


def _finite(x: pd.Series) -> pd.Series:
    """+-inf replaced by the extreme finite present values, so one inf cannot flatten minmax/zscore."""
    finite = x[np.isfinite(x)]
    lo, hi = (finite.min(), finite.max()) if len(finite) else (-1.0, 1.0)
    return x.clip(lo, hi)


def percentile(x: pd.Series) -> pd.Series:
    """10 x (average rank - 1) / (n - 1) over the present values; 5 when only one value."""
    n = int(x.notna().sum())
    if n <= 1:
        return pd.Series(np.where(x.notna(), NEUTRAL, np.nan), index=x.index)
    return 10.0 * (x.rank(method="average") - 1.0) / (n - 1)


def minmax(x: pd.Series) -> pd.Series:
    """Linear from the smallest (0) to the largest (10) present value; 5 when all are equal."""
    lo, hi = x.min(), x.max()
    if not hi > lo:
        return pd.Series(np.where(x.notna(), NEUTRAL, np.nan), index=x.index)
    scaled: pd.Series = ((x - lo) * (10.0 / (hi - lo))).clip(0.0, 10.0)  # clip: rounding at the top end
    return scaled


def zscore(x: pd.Series, z: float) -> pd.Series:
    """Standard score clipped at +-z, mapped linearly onto 0..10 (the mean gets 5)."""
    std = x.std(ddof=0)
    if not std > 0:
        return pd.Series(np.where(x.notna(), NEUTRAL, np.nan), index=x.index)
    standard = ((x - x.mean()) / std).clip(-z, z)
    return (10.0 * (standard + z) / (2 * z)).clip(0.0, 10.0)


def bands(x: pd.Series, scale: ScaleConfig) -> pd.Series:
    """Points of the first band whose inclusive `upto` holds the value (the last takes the rest)."""
    assert scale.bands is not None
    uptos = np.array([b.upto for b in scale.bands[:-1]], dtype="float64")
    points = np.array([b.score for b in scale.bands], dtype="float64")
    position = np.searchsorted(uptos, x.to_numpy(dtype="float64", na_value=np.nan), side="left")
    return pd.Series(np.where(x.notna(), points[position], np.nan), index=x.index)


def _numbers(values: pd.Series, name: str, method: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        raise DataError(
            f"metric {name!r}: scale method {method} needs numbers, got text",
            [
                Problem(
                    f"e.g. {values[bad].head(3).tolist()}",
                    f"metrics.{name}.scale",
                    "use method categorical with a `map`, or aggregate a numeric field",
                )
            ],
        )
    return numbers.astype("float64")


def _boolean(values: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        flags = values.astype("float64")
        return (flags != 0).astype("float64").where(flags.notna()) * 10.0
    text = values.astype("str").str.strip().str.lower().where(values.notna())
    truth = pd.Series(np.nan, index=values.index)
    truth[text.isin(TRUE_TOKENS)] = 10.0
    truth[text.isin(FALSE_TOKENS)] = 0.0
    bad = text.notna() & truth.isna()
    if bad.any():
        raise DataError(
            f"metric {name!r}: method boolean needs true/false values",
            [
                Problem(
                    f"e.g. {values[bad].head(3).tolist()}",
                    f"metrics.{name}.scale",
                    "use method categorical with a `map` for other values",
                )
            ],
        )
    return truth


def _categorical(values: pd.Series, scale: ScaleConfig, name: str, warnings: list[Problem]) -> pd.Series:
    assert scale.map is not None
    text = _category_text(values)
    scores = text.map(scale.map).astype("float64")
    # a value missing from the map may still match a key but for case and spaces ("good" vs Good)
    folded = {str(k).strip().casefold(): v for k, v in reversed(scale.map.items())}
    scores = scores.fillna(text.str.strip().str.casefold().map(folded).astype("float64"))
    unmapped = text.notna() & scores.isna()
    if unmapped.any():
        examples = sorted(text[unmapped].unique().tolist())[:5]
        warnings.append(
            Problem(
                f"{int(unmapped.sum())} value(s) not in the map count as missing: {examples}",
                f"metrics.{name}.scale.map",
                "add them to the map",
            )
        )
    return scores


def _category_text(values: pd.Series) -> pd.Series:
    """Values as map keys: whole numbers without a trailing .0 (3.0 -> "3"), missing kept missing."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.astype("float64")
        whole = numbers.where((numbers.abs() < 2**53) & (numbers == np.round(numbers)))
        text = numbers.astype("str").mask(whole.notna(), whole.astype("Int64").astype("str"))
    else:
        text = values.astype("str")
    return text.where(values.notna())
