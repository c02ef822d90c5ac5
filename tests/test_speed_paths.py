"""The fast paths give exactly what the general paths give.

1. `coerce._to_number`: plain numbers parsed by pyarrow, the rest by the string clean-up,
   equals the string clean-up of every value (numbers, sign of zero, bad-value mask).
2. `readers._parse_rows_quickly` (pyarrow.csv) reads the same text values as pandas.
3. `join._join_stats` from factorized keys equals matching every row's key.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore.coerce import _to_number, _to_number_slowly
from healthscore.join import EXAMPLES, SourceJoin, _join_stats
from healthscore.models import SourceConfig
from healthscore.readers import _parse_rows_quickly, parse_rows_with_pandas
from healthscore.sources import SourceData

TOKENS = ["1", "0", "-0", "+3", "12.5", ".5", "5.", "1e3", "1E-2", "inf", "nan", "", " ", " 7 ", "$4", "5%"]
TOKENS += ["1,5", "1.500", "1'000", "1 000", "abc", "0x10", "1_0", "-", "e5", "99999999999999999999", "\u00a05"]
SOURCES = [
    SourceConfig(path="x.csv", key="k"),
    SourceConfig(path="x.csv", key="k", decimal=","),
    SourceConfig(path="x.csv", key="k", thousands=","),
    SourceConfig(path="x.csv", key="k", thousands=".", decimal=","),
    SourceConfig(path="x.csv", key="k", thousands=" "),
    SourceConfig(path="x.csv", key="k", thousands="_"),
]


def _same(values: pd.Series, source: SourceConfig, units: bool) -> None:
    number, bad = _to_number(values, source, units)
    expected_number, expected_bad = _to_number_slowly(values, source, units)
    assert bad.tolist() == expected_bad.tolist()
    got, want = number.to_numpy(), expected_number.to_numpy()
    assert np.array_equal(np.isnan(got), np.isnan(want))
    # pandas' parser (the string path) can be one unit in the last place off; Arrow's rounds
    # correctly ('+3E30' is 3e30 by Arrow, 3.0000000000000003e30 by pandas)
    np.testing.assert_array_max_ulp(np.nan_to_num(got), np.nan_to_num(want), maxulp=1)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert number.index.equals(values.index)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.one_of(st.none(), st.sampled_from(TOKENS), st.text("0123456789.,-+eE $%", max_size=6))),
    source=st.sampled_from(SOURCES),
    units=st.booleans(),
)
def test_to_number_fast_path_equals_the_string_path(texts: list[str | None], source: SourceConfig, units: bool) -> None:
    _same(pd.Series(texts, dtype="str", index=np.arange(len(texts)) * 3), source, units)


def test_plain_numbers_are_rounded_correctly() -> None:
    number, bad = _to_number(pd.Series(["+3E30", "0.1", "123456789.123456789"], dtype="str"), SOURCES[0])
    assert number.tolist() == [3e30, 0.1, 123456789.123456789]
    assert not bad.any()


@pytest.mark.parametrize(
    "texts",
    [
        ["-0", "1"],  # an integer column: pandas gives 0.0
        ["-0", "1.5"],  # a float column: pandas gives -0.0
        ["-0", " 5"],
        [None, "-%0"],
        ["-0.0", "-$0", "2"],
        ["1", "2", None, "3.25", "1e5"],
        ["007", "1,234", "5"],
    ],
)
def test_to_number_edge_cases(texts: list[str | None]) -> None:
    for source in SOURCES:
        for units in (False, True):
            _same(pd.Series(texts, dtype="str"), source, units)


def test_to_number_object_column() -> None:
    """Mixed Python values (as from a workbook) go through their text, like the string path."""
    values = pd.Series([1, 2.5, "3", None, True, "x"], dtype=object)
    _same(values, SOURCES[0], units=True)


# --- 2. CSV rows: pyarrow's parser, when it reads as many rows as the scan found, equals pandas'


@settings(max_examples=400, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([*'ab1 ,;"\n\r\tNé', "NA", "null", "n/a", '""', "\r\n"]), max_size=40),
    delimiter=st.sampled_from([",", ";"]),
    width=st.integers(1, 4),
)
def test_csv_fast_parse_equals_pandas(pieces: list[str], delimiter: str, width: int) -> None:
    clean = "".join(pieces).encode("utf-8")
    source = SourceConfig(path="x.csv", key="k")
    fast = _parse_rows_quickly(clean, delimiter, width, source)
    if fast is None or not clean.strip():
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            slow = parse_rows_with_pandas(clean, delimiter, width, source)
    except (ValueError, pd.errors.ParserWarning):
        return  # pandas refuses text pyarrow reads: the reader then stops with pandas' error
    if len(slow) != len(fast):
        return  # the reader takes pyarrow's rows only when their count is the scan's
    pd.testing.assert_frame_equal(fast, slow, check_column_type=False, check_index_type=False)


# --- 3. join statistics from factorized keys equal those of matching every row's key


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.sampled_from(["a", "b", "c", "x", "y", "z", "A"]), max_size=30))
def test_join_stats_equal_row_by_row_matching(keys: list[str]) -> None:
    accounts = pd.Index(["a", "b", "c", "d"], name="account_id")
    frame = pd.DataFrame({"k": pd.Series(keys, dtype="str")})
    stats = _join_stats("usage", SourceData("usage", frame, "k", None, []), accounts)
    column = frame["k"]
    matched = column.isin(accounts)
    unmatched = column[~matched]
    assert stats == SourceJoin(
        "usage",
        column.nunique(),
        column.nunique() - unmatched.nunique(),
        unmatched.nunique(),
        int((~matched).sum()),
        tuple(sorted(unmatched.unique().tolist())[:EXAMPLES]),
    )
