"""The fast paths of the speed work give exactly what the general (slow) paths give.

1. `aggregate.aggregate_source` (numpy reductions over integer key codes) equals a plain
   pandas groupby reference written here, and plain-text keys equal Categorical keys.
2. `keys.coded_keys` (once per distinct value) equals `keys.checked_keys` row by row;
   `keys.among` (Arrow) equals `Index.isin`.
3. `coerce._iso_times_quickly` (Arrow) is None or exactly `pd.to_datetime(format="ISO8601")`.
4. `expr`: `column OP 'text'` (`_Compiler.text_test`, in place) equals the general comparison
   of two columns.
5. `readers.read_csv` through `_read_csv_quickly` (pyarrow alone) equals the record scan.
6. `readers.read_parquet` reads only the selected columns, the key as a Categorical; through
   `read_source` a non-accounts key is a sorted Categorical, the accounts key plain text.
7. `coerce`: numbers by one Arrow cast (`_all_numbers`) and times parsed from the text as
   read equal the pattern and the clean-up paths; `readers._holds_any` (a byte search)
   equals a search value by value, and `textfile.count_bytes` equals `bytes.count`.
8. `keys.encoded` (Arrow, in two halves on two threads for long columns) codes every value.
9. A row test on one Categorical column (Parquet text of few values) is evaluated once per
   distinct value and equals the test on the text; aggregates of such columns equal text's.

Each disagreement these tests found (mixed JSON keys, nullable text compared with text,
times with nothing to parse, a quote inside an unquoted CSV field) was fixed in the package.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import mmap
import tempfile
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import make_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from healthscore import aggregate as aggregate_module
from healthscore import coerce, csv_typed, readers, textfile
from healthscore import keys as keys_module
from healthscore.aggregate import aggregate_source
from healthscore.coerce import _iso_times_quickly, convert
from healthscore.errors import DataError
from healthscore.expr import parse, predicate
from healthscore.keys import among, ascending, checked_keys, coded_keys, distinct_dtype, salesforce18
from healthscore.models import MetricConfig, OfConfig, SourceConfig
from healthscore.origins import Origins
from healthscore.readers import FileFrame, read_csv, read_parquet
from healthscore.sources import SourceData, read_source

FAST = settings(max_examples=120, deadline=None, derandomize=True, database=None)

# --- 1. aggregation: numpy over key codes == a pandas groupby reference --------------------

AS_OF = dt.date(2026, 1, 31)
CUTOFF = pd.Timestamp("2026-02-01")  # midnight after AS_OF, written out (not cutoff_of)
OFFSETS: dict[str, pd.Timedelta | pd.DateOffset] = {"7d": pd.Timedelta(days=7), "1m": pd.DateOffset(months=1)}
ROW_TESTS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {  # `where` / `of_rows` as pandas masks
    "e == 'login'": lambda rows: rows["e"].notna() & (rows["e"] == "login"),
    "e != 'login'": lambda rows: rows["e"].notna() & (rows["e"] != "login"),  # missing is never unequal
    "v > 1": lambda rows: rows["v"] > 1,
}
FIELDS = {"sum": "v", "mean": "v", "median": "v", "min": "v", "max": "v", "first": "v", "last": "u"}
FIELDS |= {"nunique": "u", "nps": "s"}
AGGS = ["count", "sum", "mean", "median", "min", "max", "nunique", "share", "nps", "days_since", "first", "last"]
SCOPES = [(None, None), ("7d", "e == 'login'"), ("1m", "e != 'login'")]  # (window, where)


def _metrics() -> dict[str, MetricConfig]:
    metrics: dict[str, MetricConfig] = {}
    for agg in AGGS:
        for window, where in SCOPES:
            of_rows = ("v > 1" if window else "e == 'login'") if agg == "share" else None
            metrics[f"{agg}_{window}_{where}"] = MetricConfig(
                source="ev", agg=agg, field=FIELDS.get(agg), window=window, where=where, of_rows=of_rows
            )
    metrics["growth_count_7d"] = MetricConfig(source="ev", agg="growth", of=OfConfig(agg="count"), window="7d")
    metrics["growth_sum_1m_login"] = MetricConfig(
        source="ev", agg="growth", of=OfConfig(agg="sum", field="v"), window="1m", where="e == 'login'"
    )
    metrics["growth_nunique_7d"] = MetricConfig(  # of text: computed on other threads, then waited for
        source="ev", agg="growth", of=OfConfig(agg="nunique", field="u"), window="7d"
    )
    return metrics


METRICS = _metrics()


def _selected(base: pd.DataFrame, window: str | None, where: str | None, back: int = 0) -> pd.DataFrame:
    """The rows of `base` (already up to as_of) in the window `back` periods before as_of, matching `where`."""
    rows = base
    if window is not None:
        end = CUTOFF
        for _ in range(back):
            end = end - OFFSETS[window]
        rows = rows[(rows["t"] >= end - OFFSETS[window]) & (rows["t"] < end)]
    return rows[ROW_TESTS[where](rows)] if where is not None else rows


def _reduce_reference(rows: pd.DataFrame, m: MetricConfig, accounts: pd.Index) -> pd.Series:
    """One metric per account by pandas groupby, reindexed on every account with rows."""
    agg, field = str(m.agg), m.field
    if agg == "count":
        return rows.groupby("k").size().reindex(accounts, fill_value=0).astype(float)
    if agg == "share":
        assert m.of_rows is not None
        n = rows.groupby("k").size().reindex(accounts, fill_value=0)
        k = rows[ROW_TESTS[m.of_rows](rows)].groupby("k").size().reindex(accounts, fill_value=0)
        return (k / n.where(n > 0)).astype(float)
    if agg == "days_since":
        latest = rows.groupby("k")["t"].max().reindex(accounts)
        days: pd.Series = (pd.Timestamp(AS_OF) - latest.dt.floor("D")).dt.days
        return days.astype(float)
    assert field is not None
    if agg == "nunique":
        return rows.groupby("k")[field].nunique().reindex(accounts, fill_value=0).astype(float)
    present = rows[rows[field].notna()]
    by_key = present.groupby("k")[field]
    if agg == "sum":
        return by_key.sum().reindex(accounts, fill_value=0.0).astype(float)
    if agg in ("mean", "median", "min", "max"):
        return by_key.agg(agg).reindex(accounts).astype(float)
    if agg == "nps":
        promoters = (present[field] >= 9).astype(float).groupby(present["k"]).sum()
        detractors = (present[field] <= 6).astype(float).groupby(present["k"]).sum()
        return (100.0 * (promoters - detractors) / by_key.size()).reindex(accounts).astype(float)
    if agg in ("first", "last"):  # by time; ties at that time: the smallest (first) or largest (last) value
        ordered = present.sort_values(["k", "t", field])
        picked = ordered.groupby("k")[field].first() if agg == "first" else ordered.groupby("k")[field].last()
        return picked.reindex(accounts)
    raise AssertionError(agg)


def reference(frame: pd.DataFrame, metrics: dict[str, MetricConfig]) -> pd.DataFrame:
    """The module docstring's semantics, straightforwardly: key `k`, time `t`."""
    base = frame[frame["k"].notna() & frame["t"].notna() & (frame["t"] < CUTOFF)]
    accounts = pd.Index(sorted(set(base["k"])), name="account_id")
    scopes: dict[tuple[str | None, str | None, int], pd.DataFrame] = {}

    def rows(window: str | None, where: str | None, back: int = 0) -> pd.DataFrame:
        if (window, where, back) not in scopes:
            scopes[window, where, back] = _selected(base, window, where, back)
        return scopes[window, where, back]

    columns: dict[str, pd.Series] = {}
    for name, m in metrics.items():
        if m.agg == "growth":
            assert m.of is not None
            assert m.window is not None
            inner = MetricConfig(source="ev", agg=m.of.agg, field=m.of.field)
            current, previous = (_reduce_reference(rows(m.window, m.where, back), inner, accounts) for back in (0, 1))
            columns[name] = (current - previous) / previous.abs().where(previous != 0)
        else:
            columns[name] = _reduce_reference(rows(m.window, m.where), m, accounts)
    return pd.DataFrame(columns, index=accounts)


def assert_close(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same accounts and metrics; equal values (floats to 1e-9 relative), missing where missing."""
    assert got.index.tolist() == want.index.tolist()
    assert got.columns.tolist() == want.columns.tolist()
    for name in want.columns:
        for key, a, b in zip(want.index, got[name].tolist(), want[name].tolist(), strict=True):
            where = f"metric {name}, account {key}: got {a!r}, want {b!r}"
            if pd.isna(b):
                assert pd.isna(a), where
            elif isinstance(b, str):
                assert a == b, where
            else:
                assert not pd.isna(a), where
                assert math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0), where


def events(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A source frame from (key, time, event, user, value, score) tuples, typed as sources type them."""
    k, t, e, u, v, s = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [], [], [])
    return pd.DataFrame(
        {
            "k": pd.Series(k, dtype="str"),
            "t": pd.Series([pd.NaT if x is None else pd.Timestamp(x) for x in t], dtype="datetime64[us]"),
            "e": pd.Series(e, dtype="str"),
            "u": pd.Series(u, dtype="str"),
            "v": pd.Series(v, dtype="float64"),
            "s": pd.Series(s, dtype="float64"),
        }
    )


def aggregate(frame: pd.DataFrame, metrics: dict[str, MetricConfig] = METRICS) -> pd.DataFrame:
    return aggregate_source(SourceData("ev", frame, "k", "t", []), metrics, AS_OF)


def with_coded_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its key as `read_source` leaves it: a Categorical of sorted text."""
    keys, _ = coded_keys(frame["k"], ["strip"])
    assert isinstance(keys.dtype, pd.CategoricalDtype)
    assert keys.cat.categories.is_monotonic_increasing
    return frame.assign(k=keys)


NAN = float("nan")
HAND_MADE = [
    ("A", "2026-01-31 23:59:59.999999", "login", "u1", 3.0, 10.0),  # the last instant of as_of: counts
    ("A", "2026-02-01 00:00:00", "login", "u9", 100.0, 0.0),  # midnight after as_of: never counts
    ("A", "2026-01-25 00:00:00", "logout", "u2", 1.0, 6.0),  # the first instant of the 7d window
    ("A", "2026-01-24 23:59:59", "login", "u1", NAN, 9.0),  # just before it
    ("A", "2026-01-10 08:00:00", None, None, 7.5, NAN),
    ("B", "2026-01-30 10:00:00", "logout", "u3", NAN, 7.0),
    ("B", None, "login", "u3", 5.0, 10.0),  # no time: counts nowhere
    ("C", "2025-11-01 00:00:00", "login", "u1", -2.5, 9.0),  # outside every window
    ("D", "2026-03-01 00:00:00", "login", "u1", 1.0, 9.0),  # only after as_of: no row in the result
]


def test_aggregate_hand_made_exact_values() -> None:
    """Exact values worked out by hand: checks aggregate_source and the reference alike."""
    want = {  # up to as_of: A has 4 rows (Jan 31 23:59:59.999999, Jan 25, Jan 24, Jan 10), B 1, C 1
        "count_None_None": [4.0, 1.0, 1.0],
        "sum_None_None": [11.5, 0.0, -2.5],  # B's only value is missing: 0, not missing
        "mean_None_None": [11.5 / 3, NAN, -2.5],
        "median_None_None": [3.0, NAN, -2.5],
        "min_None_None": [1.0, NAN, -2.5],
        "max_None_None": [7.5, NAN, -2.5],
        "nunique_None_None": [2.0, 1.0, 1.0],
        "share_None_None": [0.5, 0.0, 1.0],  # of_rows e == 'login'
        "nps_None_None": [100.0 / 3, 0.0, 100.0],  # A: 10, 6, 9; B: 7 (passive); C: 9
        "days_since_None_None": [0.0, 1.0, 91.0],
        "first_None_None": [7.5, NAN, -2.5],
        "last_None_None": ["u1", "u3", "u1"],
        "count_7d_e == 'login'": [1.0, 0.0, 0.0],  # [Jan 25, Feb 1): A's Jan 31 login (Jan 25 is a logout)
        "sum_7d_e == 'login'": [3.0, 0.0, 0.0],
        "mean_7d_e == 'login'": [3.0, NAN, NAN],
        "median_7d_e == 'login'": [3.0, NAN, NAN],
        "min_7d_e == 'login'": [3.0, NAN, NAN],
        "max_7d_e == 'login'": [3.0, NAN, NAN],
        "nunique_7d_e == 'login'": [1.0, 0.0, 0.0],
        "share_7d_e == 'login'": [1.0, NAN, NAN],  # of_rows v > 1
        "nps_7d_e == 'login'": [100.0, NAN, NAN],
        "days_since_7d_e == 'login'": [0.0, NAN, NAN],
        "first_7d_e == 'login'": [3.0, NAN, NAN],
        "last_7d_e == 'login'": ["u1", NAN, NAN],
        "growth_count_7d": [1.0, NAN, NAN],  # A: 2 rows this week, 1 (Jan 24) the week before; B: 1 vs 0
    }
    metrics = {name: METRICS[name] for name in want}
    expected = pd.DataFrame(want, index=pd.Index(["A", "B", "C"], name="account_id"))
    frame = events(HAND_MADE)
    assert_close(aggregate(frame, metrics), expected)
    assert_close(aggregate(with_coded_keys(frame), metrics), expected)
    assert_close(reference(frame, metrics), expected)


BOUNDARIES = [  # instants around the edges of as_of, the 7d and 1m windows and the windows before them
    CUTOFF + delta
    for base in (pd.Timedelta(0), -pd.Timedelta(days=7), -pd.Timedelta(days=14), -pd.Timedelta(days=31))
    for delta in (base, base - pd.Timedelta(microseconds=1))
] + [pd.Timestamp("2025-12-01"), pd.Timestamp("2025-11-30 23:59:59"), CUTOFF + pd.Timedelta(days=1)]
TIMES = st.one_of(
    st.none(),
    st.sampled_from(BOUNDARIES),
    st.integers(-75 * 24 * 60, 3 * 24 * 60).map(lambda minutes: CUTOFF + pd.Timedelta(minutes=minutes)),
)
ROWS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["A", "B", "C", "D", "E"]), st.sampled_from([None])),
        TIMES,
        st.sampled_from(["login", "logout", None]),
        st.sampled_from(["u1", "u2", "u3", None]),
        st.sampled_from([NAN, -2.5, 0.0, 0.5, 1.0, 3.0, 7.25, 1e6]),  # sums of these are exact
        st.sampled_from([NAN, 0.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0]),
    ),
    max_size=30,
)


@settings(FAST, max_examples=80)  # some 60 ms an example
@given(rows=ROWS)
def test_aggregate_equals_groupby_reference_and_key_dtype_does_not_matter(rows: list[tuple[Any, ...]]) -> None:
    frame = events(rows)
    as_text = aggregate(frame)
    assert_close(as_text, reference(frame, METRICS))
    as_categorical = aggregate(with_coded_keys(frame))
    pd.testing.assert_frame_equal(as_text, as_categorical, check_exact=True)
    pd.testing.assert_frame_equal(as_text, aggregate(with_categorical_text(frame)), check_exact=True)


def with_categorical_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its text fields as Parquet text of few values reads: Categoricals
    whose categories are in order of appearance, not sorted."""
    return frame.assign(
        **{c: pd.Categorical(frame[c], categories=pd.unique(frame[c].dropna())[::-1]) for c in ("e", "u")}
    )


def test_aggregate_value_is_the_same_for_text_and_categorical_keys() -> None:
    frame = events(
        [
            ("B", "2026-01-02", "x", "u1", 2.0, NAN),
            ("A", "2026-01-03", None, "u2", NAN, NAN),
            ("C", "2026-02-02", "x", "u3", 5.0, NAN),  # after as_of: C is absent
        ]
    )
    metrics = {
        "v": MetricConfig(source="ev", agg="value", field="v"),
        "u": MetricConfig(source="ev", agg="value", field="u"),
    }
    as_text = aggregate(frame, metrics)
    assert_close(
        as_text, pd.DataFrame({"v": [NAN, 2.0], "u": ["u2", "u1"]}, index=pd.Index(["A", "B"], name="account_id"))
    )
    pd.testing.assert_frame_equal(as_text, aggregate(with_coded_keys(frame), metrics), check_exact=True)
    pd.testing.assert_frame_equal(as_text, aggregate(with_categorical_text(frame), metrics), check_exact=True)
    twice = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    for keyed in (twice, with_coded_keys(twice)):
        with pytest.raises(DataError, match="agg value needs one row per account"):
            aggregate(keyed, metrics)


# --- 2. keys: coded once per distinct value == checked row by row ---------------------------

SF15 = "001Ab000000AbCd"
SF18 = str(salesforce18(pd.Series([SF15]))[0])
KEY_INPUTS: dict[str, pd.Series] = {
    "text": pd.Series([" a ", "A", "a", None, "", "  ", "b", "a", "\tB"], dtype="str"),
    "object text": pd.Series([" a", None, np.nan, "B ", "", "b", " a"], dtype=object),
    "floats": pd.Series([1.0, 2.0, np.nan, 1.0, 2.5, 1e20, -0.0, 12345678.0, 7.0]),
    "ints": pd.Series([7, 1, 7, 123456789012, -3]),
    "nullable ints": pd.Series([1, None, 3, 1], dtype="Int64"),
    "bools": pd.Series([True, False, True]),
    "categorical text": pd.Series(pd.Categorical([" b", "a", None, " b", "A", ""])),
    "salesforce ids": pd.Series(
        [SF15, SF15.lower(), SF18, SF18.lower(), SF15 + "XYZ", f" {SF15} ", None, "", "short", SF18], dtype="str"
    ),
}
TRANSFORMS = [["strip"], ["lower"], ["strip", "upper"], ["salesforce18"], ["strip", "salesforce18", "lower"], []]


def as_texts(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values.tolist()]


def assert_coded_equals_checked(values: pd.Series, transforms: list[str]) -> None:
    want, want_bad = checked_keys(values, transforms)
    got, got_bad = coded_keys(values, transforms)
    assert isinstance(got.dtype, pd.CategoricalDtype)
    categories = got.cat.categories.tolist()
    assert categories == sorted(set(categories))  # sorted, distinct text
    assert all(isinstance(c, str) for c in categories)
    assert as_texts(got) == as_texts(want)
    assert got_bad.tolist() == want_bad.tolist()
    assert got.index.equals(values.index)
    assert got.name == values.name


@pytest.mark.parametrize("transforms", TRANSFORMS, ids=lambda t: "+".join(t) or "none")
@pytest.mark.parametrize("name", list(KEY_INPUTS))
def test_coded_keys_equal_checked_keys(name: str, transforms: list[str]) -> None:
    values = KEY_INPUTS[name]
    values = values.set_axis(np.arange(len(values)) * 3 + 100).rename("account_id")
    assert_coded_equals_checked(values, transforms)


def test_coded_keys_salesforce_exact() -> None:
    assert SF18 == "001Ab000000AbCdIAK"  # chunks 001Ab, 00000, 0AbCd: upper-case bits 8, 0, 10 -> I, A, K
    keys, bad = coded_keys(KEY_INPUTS["salesforce ids"], ["strip", "salesforce18"])
    assert as_texts(keys) == [
        SF18,
        SF15.lower() + "AAA",
        SF18,
        SF18.lower(),
        SF15 + "XYZ",
        SF18,
        None,
        None,
        "short",
        SF18,
    ]
    assert bad.tolist() == [False, False, False, True, True, False, False, False, False, False]


@FAST
@given(
    texts=st.lists(st.one_of(st.none(), st.text(" aAbB\t", max_size=3)), max_size=20),
    transforms=st.sampled_from(TRANSFORMS),
    categorical=st.booleans(),
)
def test_coded_keys_equal_checked_keys_property(
    texts: list[str | None], transforms: list[str], categorical: bool
) -> None:
    values = pd.Series(texts, dtype="str")
    assert_coded_equals_checked(values.astype("category") if categorical else values, transforms)


@pytest.mark.parametrize("values", [[1.0, 1, "x"], [1, 1.0, "x"], [True, 1]])
def test_coded_keys_of_mixed_python_numbers(values: list[Any]) -> None:
    assert_coded_equals_checked(pd.Series(values, dtype=object), ["strip"])


def test_coded_keys_of_float_categories_read_as_a_float_column_would_be() -> None:
    """A Categorical of whole floats (a Parquet key written from a pandas Categorical) gives
    the keys a float column gives ('2', not '2.0'), which is how `key_to_text` writes them."""

    def texts(keys: pd.Series) -> list[object]:
        return keys.astype(object).where(keys.notna(), None).tolist()

    keys, _ = coded_keys(pd.Series(pd.Categorical([2.0, 1.5, None, 2.0])), ["strip"])
    assert texts(keys) == ["2", "1.5", None, "2"]
    assert texts(keys) == texts(coded_keys(pd.Series([2.0, 1.5, None, 2.0]), ["strip"])[0])


AMONG_CASES = [
    (pd.Index(["a", "b", "c"]), pd.Index(["b", "z"])),
    (pd.Index(["a", None, "c"], dtype="str"), pd.Index(["a"])),
    (pd.Index(["a", None, "c"], dtype="str"), pd.Index(["a", None], dtype="str")),
    (pd.Index(["a", "nan", "None"], dtype=object), pd.Index([np.nan, None], dtype=object)),
    (pd.Index([], dtype="str"), pd.Index(["a"])),
    (pd.Index(["a"]), pd.Index([], dtype="str")),
    (pd.Index(["A", "a", " a", "a "]), pd.Index(["a"])),
    (pd.CategoricalIndex(["a", "b", "a"]), pd.Index(["b"])),
    (pd.Index(["é", "e\u0301"]), pd.Index(["é"])),
]


@pytest.mark.parametrize(("values", "known"), AMONG_CASES)
def test_among_equals_isin(values: pd.Index, known: pd.Index) -> None:
    got = among(values, known)
    assert got.dtype == bool
    assert got.tolist() == values.isin(known).tolist()


def test_among_exact() -> None:
    assert among(pd.Index(["A", "a", None], dtype="str"), pd.Index(["a", "b"])).tolist() == [False, True, False]


@FAST
@given(
    values=st.lists(st.one_of(st.none(), st.text("ab ", max_size=2)), max_size=12),
    known=st.lists(st.one_of(st.none(), st.text("ab ", max_size=2)), max_size=6),
)
def test_among_equals_isin_property(values: list[str | None], known: list[str | None]) -> None:
    v, k = pd.Index(values, dtype="str"), pd.Index(known, dtype="str")
    assert among(v, k).tolist() == v.isin(k).tolist()


# --- 3. ISO 8601 times: Arrow == pandas, or None ----------------------------------------------

QUICK, SLOW, EITHER = "quick", "slow", "either"  # whether _iso_times_quickly must parse, must refuse, or may do either
ISO_CASES: list[tuple[str, list[str | None]]] = [
    (QUICK, ["2026-01-31T10:00:00Z", "2026-02-01T00:00:00Z", None]),
    (QUICK, ["2026-01-31T10:00:00+02:00", "2026-01-31T23:30:00-05:30", "2026-01-31 01:00:00+00:00"]),
    (QUICK, ["2026-01-31 10:00:00", "2026-01-31T23:59:59", None]),
    (QUICK, ["2026-01-31 10:00", "2026-01-31T11:30"]),  # no seconds
    (QUICK, ["2026-01-31 10:00:00.123", "2026-01-31 10:00:00.123456", "2026-01-31 10:00:00"]),
    (QUICK, ["2026-01-31T10:00:00.5Z", "2026-01-31T10:00:00.25+01:00"]),
    (EITHER, ["2026-01-31", "2026-02-01", None]),  # date only
    (EITHER, ["2026-01-31", "2026-01-31 10:00"]),
    (EITHER, ["2026-01-31T10:00:00+0200", "2026-01-31T10:00:00+02"]),
    (EITHER, ["0001-01-01T00:00:00", "9999-12-31T23:59:59"]),
    (EITHER, ["2026-01", "20260131T100000"]),
    (SLOW, ["2026-01-31T10:00:00Z", "2026-01-31T10:00:00"]),  # mixed zoned and unzoned
    (SLOW, ["2026-01-31T10:00:00", "2026-01-31T10:00:00+01:00"]),
    (SLOW, ["2026-01-31T10:00:00.123456789", "2026-01-31T10:00:00"]),  # nanoseconds
    (SLOW, ["2026-01-31T10:00:00.123456789Z"]),
    (SLOW, ["2026-02-30", "2026-01-01"]),  # no such day
    (SLOW, ["2025-02-29 10:00:00", "2024-02-29 10:00:00"]),
    (SLOW, ["2026-13-01"]),
    (SLOW, ["2026-01-01 25:00:00"]),
    (SLOW, ["not a date", "2026-01-31"]),
    (SLOW, ["2026-01-31t10:00:00z"]),
]


@pytest.mark.parametrize(("path", "texts"), ISO_CASES, ids=[" | ".join(str(v) for v in t) for _, t in ISO_CASES])
@pytest.mark.parametrize("index", ["default", "shuffled", "labels"])
def test_iso_times_quickly_is_none_or_what_pandas_gives(path: str, texts: list[str | None], index: str) -> None:
    text = pd.Series(texts, dtype="str")
    if index == "shuffled":
        text = text.set_axis(np.arange(len(texts))[::-1] * 7 + 3)
    elif index == "labels":
        text = text.set_axis([f"row{i}" for i in range(len(texts))])
    quick = _iso_times_quickly(text)
    if path == SLOW:
        assert quick is None
        return
    if path == QUICK:
        assert quick is not None
    if quick is not None:
        slow = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        pd.testing.assert_series_equal(quick, slow, check_exact=True)
        assert quick.index.equals(text.index)


@pytest.mark.parametrize(
    ("texts", "zoned_first"),
    [
        (["2026-01-31 10:00:00", "2026-01-31T10:00:00Z"], False),
        ([None, None, " 2026-01-31T10:00:00Z ", "x"], True),
        (["2026-01-31T10:00:00+02:00"], True),
        (["2026-01-31T10:00:00-0530"], True),
        (["2026-01-31T10:00:00.5+01"], True),
        (["2026-01-31", None], False),
    ],
)
def test_iso_casts_tried_in_the_order_the_first_value_suggests(texts: list[str | None], zoned_first: bool) -> None:
    """A whole column of naive times tried as zoned ones fails slowly (6 s for 10M values),
    so the first value picks which cast goes first; either way both may be tried."""
    first, second = coerce._casts_to_try(pa.array(texts, pa.large_string()))
    assert {first, second} == {pa.timestamp("us"), pa.timestamp("us", tz="UTC")}
    assert (first.tz is not None) == zoned_first


def test_iso_times_quickly_exact_instants() -> None:
    text = pd.Series(["2026-01-31T10:00:00+02:00", "2026-01-31T10:00:00.5-01:00", None], dtype="str", index=[5, 3, 9])
    quick = _iso_times_quickly(text)
    assert quick is not None
    assert str(quick.dtype) == "datetime64[us, UTC]"
    assert quick.index.tolist() == [5, 3, 9]
    assert quick.iloc[0] == pd.Timestamp("2026-01-31 08:00", tz="UTC")
    assert quick.iloc[1] == pd.Timestamp("2026-01-31 11:00:00.5", tz="UTC")
    assert pd.isna(quick.iloc[2])
    naive = _iso_times_quickly(pd.Series(["2026-01-31 10:00", "2026-01-31T23:59:59.25"], dtype="str"))
    assert naive is not None  # taken as UTC
    assert naive.tolist() == [
        pd.Timestamp("2026-01-31 10:00", tz="UTC"),
        pd.Timestamp("2026-01-31 23:59:59.25", tz="UTC"),
    ]


@pytest.mark.parametrize("texts", [[None, None], []])
def test_iso_times_quickly_without_values(texts: list[str | None]) -> None:
    text = pd.Series(texts, dtype="str")
    quick = _iso_times_quickly(text)
    if quick is not None:
        pd.testing.assert_series_equal(quick, pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"))


# --- 4. expressions: column OP 'text' in place == the general comparison -----------------------

IDX = pd.Index([10, 20, 30, 40, 50, 60])


def times_on_idx(texts: list[str | None]) -> pd.Series:
    """Naive times on IDX from ISO 8601 text (None: missing)."""
    return pd.Series(pd.to_datetime(pd.Series(texts, dtype="str"), format="ISO8601").to_numpy(), index=IDX)


EXPR_COLUMNS: dict[str, pd.Series] = {
    "str": pd.Series(["a", "b", None, "B", "", "c"], dtype="str", index=IDX),
    "object": pd.Series(["a", "b", None, "B", np.nan, "c"], dtype=object, index=IDX),
    "categorical": pd.Series(pd.Categorical(["a", "b", None, "B", "c", "b"]), index=IDX),
    "time": times_on_idx(["2026-01-30", "2026-01-31 12:00", None, "2026-02-01", "2026-01-31", "2026-01-31"]),
    "zoned time": times_on_idx(
        ["2026-01-30", "2026-01-31 12:00", None, "2026-02-01", "2026-01-31", "2025-12-31"]
    ).dt.tz_localize("UTC"),
    "all missing": pd.Series([None] * 6, dtype=object, index=IDX),
    "numbers": pd.Series([1.0, 2.0, np.nan, 3.0, 4.0, 5.0], index=IDX),
    "flags": pd.Series([True, False, True, False, True, False], index=IDX),
    "mixed": pd.Series(["a", 1, None, "b", 2.0, "c"], dtype=object, index=IDX),
}
OPS = ["==", "!=", "<", "<=", ">", ">="]
CONSTANTS = ["b", "2026-01-31", "", "not a date"]


def outcome(text: str, columns: dict[str, Any]) -> tuple[str, Any]:
    """The row test's values, or the DataError's message with the expression's text left out."""
    try:
        return "values", predicate(parse(text), columns, IDX).tolist()
    except DataError as exc:
        return "error", exc.message.replace(f'"{text}"', '"<expression>"')


@pytest.mark.parametrize("constant", CONSTANTS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", list(EXPR_COLUMNS))
def test_text_constant_comparison_equals_general_comparison(name: str, op: str, constant: str) -> None:
    columns = {"x": EXPR_COLUMNS[name], "k": constant}  # k: the same text as a column (the general path)
    for fast, slow in ((f"x {op} '{constant}'", f"x {op} k"), (f"'{constant}' {op} x", f"k {op} x")):
        kind, got = outcome(fast, columns)
        want = outcome(slow, columns)
        if kind == "error":
            got = got.replace(f"'{constant}'", "k")  # the error names the constant by its source text
        assert (kind, got) == want, fast


def test_missing_text_is_false_for_every_operator() -> None:
    columns = {"event": pd.Series(["login", None, "logout", np.nan, "Login", "login"], dtype="str", index=IDX)}
    want = {
        "event == 'login'": [True, False, False, False, False, True],
        "event != 'login'": [False, False, True, False, True, False],
        "'login' != event": [False, False, True, False, True, False],
        "event < 'login'": [False, False, False, False, True, False],  # 'L' < 'l'
        "event >= 'login'": [True, False, True, False, False, True],
        "not (event == 'login')": [False, True, True, True, True, False],  # `not` counts missing as False
    }
    for text, values in want.items():
        assert predicate(parse(text), columns, IDX).tolist() == values, text


def test_text_order_comparisons_exact() -> None:
    columns = {"name": pd.Series(["a", "b", "c", None, "ba", "B"], dtype="str", index=IDX)}
    assert predicate(parse("'b' < name"), columns, IDX).tolist() == [False, False, True, False, True, False]
    assert predicate(parse("name <= 'b'"), columns, IDX).tolist() == [True, True, False, False, False, True]
    assert predicate(parse("name > 'b'"), columns, IDX).tolist() == [False, False, True, False, True, False]
    assert predicate(parse("name != 'x'"), columns, IDX).tolist() == [True, True, True, False, True, True]
    result = parse("name == 'b'").evaluate(columns, IDX)
    assert result.index.equals(IDX)
    assert result.dtype == bool


def test_datetime_column_compares_with_text_as_times() -> None:
    times = ["2026-01-30 23:59", "2026-01-31", "2026-01-31 00:00:01", None, "2026-02-01", "2026-01-31"]
    columns = {"t": times_on_idx(times)}
    # as text '2026-01-31 00:00:00' == '2026-01-31' would be False: compared as times it is True
    assert predicate(parse("t == '2026-01-31'"), columns, IDX).tolist() == [False, True, False, False, False, True]
    assert predicate(parse("t >= '2026-01-31'"), columns, IDX).tolist() == [False, True, True, False, True, True]
    assert predicate(parse("'2026-01-31T12:00' > t"), columns, IDX).tolist() == [True, True, True, False, False, True]
    assert predicate(parse("t != '2026-01-31'"), columns, IDX).tolist() == [True, False, True, False, True, False]
    zoned = {"t": columns["t"].dt.tz_localize("Europe/Berlin")}
    assert predicate(parse("t < '2026-01-31'"), zoned, IDX).tolist() == [True, False, False, False, False, False]


def test_number_column_compared_with_text_raises_the_general_paths_error() -> None:
    columns = {"n": pd.Series([1.0, np.nan, 3.0, 4.0, 5.0, 6.0], index=IDX), "k": "login"}
    with pytest.raises(DataError) as fast:
        predicate(parse("n == 'login'"), columns, IDX)
    with pytest.raises(DataError) as slow:
        predicate(parse("n == k"), columns, IDX)
    assert (
        fast.value.message
        == "cannot evaluate expression \"n == 'login'\": cannot compare n (number) with 'login' (text)"
    )
    assert slow.value.message == 'cannot evaluate expression "n == k": cannot compare n (number) with k (text)'
    with pytest.raises(DataError, match=r"cannot compare 'login' \(text\) with n \(number\)"):
        predicate(parse("'login' != n"), columns, IDX)


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
@pytest.mark.parametrize("op", OPS)
def test_nullable_string_column_compared_with_text(storage: str, op: str) -> None:
    column = pd.Series(["a", None, "b", "a", "c", "B"], dtype=f"string[{storage}]", index=IDX)
    assert outcome(f"x {op} 'a'", {"x": column}) == outcome(f"x {op} k", {"x": column, "k": "a"})


# --- 5. CSV: the quick read == the record scan ---------------------------------------------------

CSV_CASES: list[tuple[str, bytes, dict[str, Any], bool]] = [  # (name, file, source keys, quick path taken)
    ("plain", b"account_id,n,event\nA,1,login\nB,2,logout\nC,,x\n", {}, True),
    ("quoted delimiters", b'account_id,name,n\nA,"Acme, Inc.",1\nB,"x",2\n', {}, True),
    ("escaped quotes take the scan", b'account_id,name,n\nA,"Acme, Inc.",1\nB,"Say ""hi""",2\n', {}, False),
    ("crlf", b"account_id,n\r\nA,1\r\nB,2\r\n", {}, True),
    ("no final newline", b"account_id,n\nA,1\nB,2", {}, True),
    ("semicolon", b"account_id;n;v\nA;1;2,5\nB;2;3,5\n", {}, True),
    ("semicolon configured", b"account_id;n\nA;1,5\n", {"delimiter": ";"}, True),
    ("tab", b"account_id\tn\nA\t1\nB\t2\n", {}, True),
    ("na tokens", b'account_id,n,e\nA,NULL,n/a\nB,,x\nC,"","NA"\n', {}, True),
    ("bom and padded header", "\ufeff account_id , n \nA,1\n".encode(), {}, True),
    ("skip_rows preamble", b"Report: usage\nGenerated 2026-01-31\naccount_id,n\nA,1\nB,2\n", {"skip_rows": 2}, True),
    ("repeated header rows", b"account_id,n\nA,1\naccount_id,n\nB,2\n account_id , n\nC,3\n", {}, True),
    ("not utf-8", "account_id,name\nA,Zoë\nB,Łódź\n".encode(), {}, True),
    ("cp1252", "account_id,name\nA,Zoë\n".encode("cp1252"), {}, True),
    ("old mac line ends", b"account_id,n\rA,1\rB,2\r", {}, True),
    ("blank line in the middle", b"account_id,n\nA,1\n\nB,2\n", {}, False),
    ("whitespace line", b"account_id,n\nA,1\n   \nB,2\n", {}, False),
    ("blank lines at the end", b"account_id,n\r\nA,1\r\n\r\n\r\n", {}, False),
    ("line break in quotes", b'account_id,note\nA,"line one\nline two"\nB,x\n', {}, False),
    ("line break in quotes late", b"account_id,n\n" + b"A,1\n" * 50 + b'B,"x\r\ny"\n', {}, False),
    ("report footer", b"account_id,n\nA,1\nB,2\nGrand Totals (2 records)\n", {}, False),
    ("trailing delimiter on every row", b"account_id,n,\nA,1,\nB,2,\n", {}, False),
    ("trailing delimiter on rows only", b"account_id,n\nA,1,\nB,2,\n", {}, False),
    ("too few fields", b"account_id,n,e\nA,1,x\nB,2\nC,3,z\n", {"max_reject_share": 1.0}, False),
    ("too many fields", b"account_id,n\nA,1\nB,2,3\nC,3\n", {"max_reject_share": 1.0}, False),
    ("lone carriage return in quotes", b'account_id,n\nA,"x\ry"\nB,2\n', {}, False),
    ("blank header name", b"account_id,,n\nA,1,2\n", {}, False),
    ("one column", b"account_id\nA\nB\n", {}, False),
    ("header only", b"account_id,n\n", {}, False),
    ("two header rows", b"account_id,n\nsub,x\nA,1\n", {"header_rows": 2}, False),
]


def read_text(raw: bytes, source: dict[str, Any], keyed: bool = False) -> FileFrame:
    """`read_csv` of the text; `keyed`: with the key column selected (as sources read all but
    the accounts), which the quick path reads dictionary-encoded."""
    config = SourceConfig(path="x.csv", key="account_id", **source)
    select = (lambda names: (names, "account_id")) if keyed else readers.select_all
    return read_csv(Path("x.csv"), raw, config, "s", lambda names: sorted({"account_id"} - set(names)), select)


def as_plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with Categorical columns as text, as the scan reads them."""
    return frame.assign(
        **{c: frame[c].astype(readers.TEXT) for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    )


def assert_same_read(fast: FileFrame, slow: FileFrame) -> None:
    pd.testing.assert_frame_equal(as_plain_text(fast.frame), slow.frame, check_exact=True)
    assert np.asarray(fast.lines).tolist() == np.asarray(slow.lines).tolist()
    assert np.asarray(fast.lines).dtype == np.asarray(slow.lines).dtype
    assert fast.rejected.columns.tolist() == slow.rejected.columns.tolist()
    assert fast.rejected.to_dict("records") == slow.rejected.to_dict("records")
    everything = np.arange(len(fast.frame))
    assert fast.raw(everything) == slow.raw(everything)
    some = everything[::-2]  # a subset, out of order
    assert fast.raw(some) == slow.raw(some)
    assert fast.raw(np.array([], dtype=np.int64)) == slow.raw(np.array([], dtype=np.int64)) == []
    assert +fast.dropped == +slow.dropped  # zero counts do not matter (sources keep `+dropped`)
    assert fast.delimiter == slow.delimiter
    assert [p.message for p in fast.notes] == [p.message for p in slow.notes]


def read_both_ways(
    monkeypatch: pytest.MonkeyPatch, raw: bytes, source: dict[str, Any], keyed: bool = False
) -> tuple[FileFrame, FileFrame, bool]:
    """The read with the quick path (and whether it was taken), and with the quick path off."""
    quick = readers._read_csv_quickly
    returned: list[FileFrame | None] = []

    def recording(*args: Any, **kwargs: Any) -> FileFrame | None:
        result = quick(*args, **kwargs)
        returned.append(result)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(readers, "_read_csv_quickly", recording)
        fast = read_text(raw, source, keyed)
    with monkeypatch.context() as patch:
        patch.setattr(readers, "_read_csv_quickly", lambda *args, **kwargs: None)
        slow = read_text(raw, source, keyed)
    assert len(returned) == 1
    return fast, slow, returned[0] is not None


@pytest.mark.parametrize("keyed", [False, True], ids=["key as text", "key dictionary-encoded"])
@pytest.mark.parametrize(("raw", "source", "taken"), [c[1:] for c in CSV_CASES], ids=[c[0] for c in CSV_CASES])
def test_read_csv_quick_path_equals_record_scan(
    monkeypatch: pytest.MonkeyPatch, raw: bytes, source: dict[str, Any], taken: bool, keyed: bool
) -> None:
    fast, slow, quick = read_both_ways(monkeypatch, raw, source, keyed)
    assert quick == taken
    if quick and "account_id" in fast.frame.columns:
        assert isinstance(fast.frame["account_id"].dtype, pd.CategoricalDtype) == keyed
    assert_same_read(fast, slow)


def test_read_csv_quick_path_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = b'Report\naccount_id,n\r\nA,"1,5"\r\naccount_id,n\r\nB,NULL\r\n'
    fast, slow, quick = read_both_ways(monkeypatch, raw, {"skip_rows": 1})
    assert quick
    assert fast.frame.columns.tolist() == ["account_id", "n"]
    assert as_texts(fast.frame["account_id"]) == ["A", "B"]
    assert as_texts(fast.frame["n"]) == ["1,5", None]  # NULL is missing
    assert np.asarray(fast.lines).tolist() == [3, 5]
    assert fast.raw(np.array([1, 0])) == ["B,NULL", 'A,"1,5"']
    assert dict(fast.dropped) == {"repeated header row": 1}
    assert_same_read(fast, slow)


def test_read_csv_rejects_and_footers_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = b"account_id,n\nA,1\nB\n\nC,3,4\nD,4\nGrand Totals (4 records)\n"
    fast, slow, quick = read_both_ways(monkeypatch, raw, {})
    assert not quick
    assert fast.frame["account_id"].tolist() == ["A", "D"]
    assert np.asarray(fast.lines).tolist() == [2, 6]
    assert fast.rejected.to_dict("records") == [
        {"line": 3, "reason": "too few fields", "raw": "B"},
        {"line": 5, "reason": "too many fields", "raw": "C,3,4"},
    ]
    assert dict(fast.dropped) == {"report footer": 1}
    assert_same_read(fast, slow)


PLAIN_FIELDS = ["A", "b", "1", "NA", "", " ", "é", "account_id", "Grand Totals (3 records)", "Total:"]
QUOTED_PIECES = ["a", ",", ";", "\n", "\r\n", "\r", '""', " "]
FIELD = st.one_of(
    st.sampled_from(PLAIN_FIELDS),
    st.lists(st.sampled_from(QUOTED_PIECES), max_size=4).map(lambda pieces: '"' + "".join(pieces) + '"'),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> bytes:
    """A header, then records of 0 to 4 fields (0: a blank line), quotes only around whole fields.
    (A quote inside an unquoted field is left out: see test_read_csv_stray_quote_in_a_field.)"""
    delimiter = draw(st.sampled_from([",", ";"]))
    header = delimiter.join(draw(st.sampled_from([["account_id", "n"], ["account_id", "n", "x"], ["x", "account_id"]])))
    records = draw(st.lists(st.lists(FIELD, max_size=4).map(delimiter.join), max_size=8))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    last = draw(st.sampled_from([end, ""]))
    return (end.join([header, *records]) + last).encode()


def outcome_of_read(raw: bytes, keyed: bool = False) -> FileFrame | str:
    try:
        return read_text(raw, {"max_reject_share": 1.0}, keyed)
    except (DataError, ValueError) as exc:  # pandas' ParserError is a ValueError (read_file reports it)
        return f"{type(exc).__name__}: {exc}"


@settings(FAST, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=csv_texts())
def test_read_csv_quick_path_equals_record_scan_property(monkeypatch: pytest.MonkeyPatch, raw: bytes) -> None:
    fast = outcome_of_read(raw)
    with monkeypatch.context() as patch:
        patch.setattr(readers, "_read_csv_quickly", lambda *args, **kwargs: None)
        slow = outcome_of_read(raw)
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
    else:
        assert_same_read(fast, slow)


@settings(FAST, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=csv_texts(), block=st.integers(min_value=1, max_value=80), keyed=st.booleans())
def test_read_csv_quick_path_in_small_blocks_equals_record_scan(
    monkeypatch: pytest.MonkeyPatch, raw: bytes, block: int, keyed: bool
) -> None:
    """pyarrow parses the text a block at a time (`readers.CSV_BLOCK`): with blocks of a few
    bytes (some shorter than a line, which pyarrow refuses, so the scan reads the file) and
    block edges inside quoted values, the read still equals the record scan by pandas'
    parser alone (pyarrow's parse of the scanned records taken out too)."""
    with monkeypatch.context() as patch:
        patch.setattr(readers, "CSV_BLOCK", block)
        fast = outcome_of_read(raw, keyed)
    with monkeypatch.context() as patch:
        patch.setattr(readers, "_read_csv_quickly", lambda *args, **kwargs: None)
        patch.setattr(readers, "_parse_rows_quickly", lambda *args, **kwargs: None)
        slow = outcome_of_read(raw, keyed)
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
    else:
        assert_same_read(fast, slow)


@settings(FAST, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(st.sampled_from(["A", "b", "", "é", "C1"]), st.sampled_from(["1", "", "x y"])), min_size=1),
    block=st.sampled_from([16, 24, 64]),  # (a block must hold a line: pyarrow refuses less)
)
def test_read_csv_quick_path_keys_over_many_blocks(
    monkeypatch: pytest.MonkeyPatch, rows: list[tuple[str, str]], block: int
) -> None:
    """A well-formed file read by the quick path in many small blocks, each with its own
    dictionary of the key: the keys come out as the record scan reads them."""
    raw = ("account_id,n\n" + "".join(f"{key},{n}\n" for key, n in rows)).encode()
    monkeypatch.setattr(readers, "CSV_BLOCK", block)
    fast, slow, quick = read_both_ways(monkeypatch, raw, {"max_reject_share": 1.0}, keyed=True)
    assert quick
    assert_same_read(fast, slow)


@pytest.mark.parametrize("kind", ["categorical", "text", "object"])
def test_repeated_headers_found_in_a_first_column_of_any_kind(kind: str) -> None:
    """The first column is searched for the first name before any row is looked at: in a
    Categorical's categories (the quick path's key), or in text; padded repeats count."""
    values = ["A", " account_id ", "B", None, "account_idx"]
    column = {
        "categorical": pd.Series(values, dtype="category"),
        "text": pd.Series(values, dtype=readers.TEXT),
        "object": pd.Series(values, dtype=object),
    }[kind]
    frame = pd.DataFrame({"account_id": column, "n": ["1", " n", "2", "3", "n"]})
    read = FileFrame(frame, np.arange(2, 7), lambda positions: [f"line {p}" for p in positions])
    out = readers.drop_repeated_headers(read, ["account_id", "n"])
    assert out.frame["account_id"].astype(object).where(out.frame["account_id"].notna(), None).tolist() == [
        "A",
        "B",
        None,
        "account_idx",
    ]
    assert np.asarray(out.lines).tolist() == [2, 4, 5, 6]
    assert out.raw(np.array([1])) == ["line 2"]
    assert dict(out.dropped) == {"repeated header row": 1}
    untouched = FileFrame(frame.copy(), np.arange(2, 7), lambda positions: [])
    assert len(readers.drop_repeated_headers(untouched, ["id", "n"]).frame) == 5


@pytest.mark.parametrize("block", range(1, 13))
def test_read_csv_block_split_inside_a_quoted_line_break(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """pyarrow, told that no value spans lines, may split a block inside a quoted value: at
    4 bytes the body `A,"x<LF>,"<LF>` parses as two rows, (A, "x<LF>") and ("", "<LF>"), as
    many rows as lines and no quote in a value. The line break left in a value makes the
    quick path refuse it, and the scan reads the one record."""
    raw = b'account_id,n\nA,"x\n,"\n'
    monkeypatch.setattr(readers, "CSV_BLOCK", block)
    fast, slow, quick = read_both_ways(monkeypatch, raw, {"max_reject_share": 1.0})
    assert not quick
    assert_same_read(fast, slow)
    assert fast.frame.astype(object).values.tolist() == [["A", "x\n,"]]


@pytest.mark.parametrize("block", range(1, 48))
def test_read_csv_block_edge_between_a_quoted_cr_and_lf(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Values spanning CRLF lines: where a block of pyarrow's ends between a quoted CR and
    its LF, pyarrow drops the LF ('c\\r\\r\\nd' for 'c\\r\\n\\r\\nd' at 23 bytes). Such
    a parse is refused (pandas' parser reads the records), and every value keeps its breaks."""
    raw = b'account_id,n\r\n"x","aaa\r\nbbb"\r\n"y","c\r\n\r\nd"\r\n'
    monkeypatch.setattr(readers, "CSV_BLOCK", block)
    read = read_text(raw, {"max_reject_share": 1.0})
    assert read.frame.astype(object).values.tolist() == [["x", "aaa\r\nbbb"], ["y", "c\r\n\r\nd"]]


@pytest.mark.parametrize(
    "raw",
    [
        b'account_id,size,n\nA,27",32"\nB,24,1\n',  # quick: A | 27" | 32"; scan: line 2 too few fields
        b'account_id,n\nA",1"\nB,2\n',
        b'account_id,note,size\nA,ok,1\nB,5" screen,"big\n',  # quick: size 'big\n'; scan: line 3 too few fields
    ],
)
def test_read_csv_stray_quote_in_a_field(monkeypatch: pytest.MonkeyPatch, raw: bytes) -> None:
    fast, slow, _ = read_both_ways(monkeypatch, raw, {"max_reject_share": 1.0})
    assert_same_read(fast, slow)


# --- 6. Parquet: only the selected columns, the key as a Categorical --------------------------


def parquet_bytes(frame: pd.DataFrame, use_dictionary: bool = True) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, use_dictionary=use_dictionary)
    return buffer.getvalue()


EVENTS = pd.DataFrame(
    {
        "extra": ["x", "y", "z", "w"],
        "account_id": ["b", "a", "b", None],
        "n": pd.array([1, 2, None, 4], dtype="Int64"),
        "t": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]),
    }
)


@pytest.mark.parametrize(
    ("use_dictionary", "reads"),
    [
        (True, [["account_id", "n"]]),  # a key held as dictionary codes: read with the rest, as them
        (False, [["account_id"], ["n"]]),  # a key held as text: on its own first, then the rest
    ],
)
def test_read_parquet_reads_only_the_selected_columns(
    monkeypatch: pytest.MonkeyPatch, use_dictionary: bool, reads: list[list[str]]
) -> None:
    asked: list[list[str]] = []
    original = pq.ParquetFile.read

    def spy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        asked.append(list(kwargs["columns"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read", spy)
    seen: list[list[str]] = []

    def select(headers: list[str]) -> tuple[list[str], str | None]:
        seen.append(headers)
        return ["n", "account_id"], "account_id"

    read = read_parquet(Path("e.parquet"), parquet_bytes(EVENTS, use_dictionary), "ev", select)
    assert seen == [["extra", "account_id", "n", "t"]]
    assert asked == reads  # nothing else
    assert read.frame.columns.tolist() == ["account_id", "n"]
    key = read.frame["account_id"]
    assert isinstance(key.dtype, pd.CategoricalDtype)
    assert as_texts(key) == ["b", "a", "b", None]
    assert read.frame["n"].tolist() == [1, 2, pd.NA, 4]
    assert np.asarray(read.lines).tolist() == [1, 2, 3, 4]
    assert read.raw(np.array([1])) == ['{"account_id":"a","n":2}']


def test_read_parquet_without_a_text_key_reads_plain_columns() -> None:
    everything = read_parquet(Path("e.parquet"), parquet_bytes(EVENTS), "ev")
    assert everything.frame.columns.tolist() == ["extra", "account_id", "n", "t"]
    assert not isinstance(everything.frame["account_id"].dtype, pd.CategoricalDtype)
    numbers = EVENTS.assign(account_id=[3, 1, 3, 2])
    read = read_parquet(Path("e.parquet"), parquet_bytes(numbers), "ev", lambda h: (["account_id", "t"], "account_id"))
    assert read.frame.columns.tolist() == ["account_id", "t"]
    assert read.frame["account_id"].tolist() == [3, 1, 3, 2]
    assert not isinstance(read.frame["account_id"].dtype, pd.CategoricalDtype)


def test_read_source_keys_categorical_except_for_the_accounts(tmp_path: Path) -> None:
    pd.DataFrame({"account_id": ["c", "a", "b"], "name": ["C", "A", "B"], "tier": ["x", "y", "z"]}).to_parquet(
        tmp_path / "crm.parquet"
    )
    (tmp_path / "ev").mkdir()
    EVENTS.assign(account_id=[" b", "d", "b", "a"]).to_parquet(tmp_path / "ev" / "part-1.parquet")
    EVENTS.assign(account_id=["c", "a ", "c", "a"]).to_parquet(tmp_path / "ev" / "part-0.parquet")
    config = make_config(
        tmp_path,
        accounts={"source": "crm", "columns": ["name"]},
        sources={
            "crm": {"path": "crm.parquet", "key": "account_id"},
            "ev": {"path": "ev/*.parquet", "key": "account_id", "time": "t"},
        },
        metrics={"m": {"source": "ev", "agg": "sum", "field": "n"}},
        groups={"g": {"metrics": ["m"]}},
    )
    events_data = read_source(config, "ev", ["n"])
    key = events_data.frame["account_id"]
    assert isinstance(key.dtype, pd.CategoricalDtype)
    assert key.cat.categories.tolist() == ["a", "b", "c", "d"]
    assert key.cat.categories.is_monotonic_increasing
    assert all(isinstance(c, str) for c in key.cat.categories)
    assert sorted(str(k) for k in as_texts(key)) == sorted(["c", "a", "c", "a", "b", "d", "b", "a"])  # stripped
    assert "extra" not in events_data.frame.columns
    result = aggregate_source(events_data, {"m": config.metrics["m"]}, AS_OF)
    assert result["m"].to_dict() == {"a": 2.0 + 4.0 + 4.0, "b": 1.0, "c": 1.0, "d": 2.0}
    as_text = SourceData("ev", events_data.frame.assign(account_id=key.astype("str")), "account_id", "t", [])
    pd.testing.assert_frame_equal(aggregate_source(as_text, {"m": config.metrics["m"]}, AS_OF), result)

    accounts = read_source(config, "crm", ["name"], keep_all=True)
    spine_key = accounts.frame["account_id"]
    assert not isinstance(spine_key.dtype, pd.CategoricalDtype)
    assert pd.api.types.is_string_dtype(spine_key.dtype)
    assert spine_key.tolist() == ["c", "a", "b"]
    assert {"name", "tier"} <= set(accounts.frame.columns)  # the accounts' columns pass through


# --- 7. numbers and times from text, quotes in CSV values ------------------------------------

NUMBER_TEXTS = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from(["12", "-3.5", "+4", ".5", "5.", "1e6", "1E-3", "0", "-0", "0.0", "007", "1e999", "-1e999"]),
        st.sampled_from(["inf", "-inf", "nan", "NaN", "Infinity", " 7 ", "", "1,5", "12%", "$3", "x", "1_000"]),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
    ),
    max_size=12,
)


@FAST
@given(texts=NUMBER_TEXTS, kind=st.sampled_from(["int", "float"]))
def test_numbers_by_one_cast_equal_the_pattern_path(texts: list[str | None], kind: str) -> None:
    values = pd.Series(texts, dtype="str")
    source = SourceConfig(path="x.csv", key="k")
    fast, fast_bad = convert(values, kind, source)
    with pytest.MonkeyPatch.context() as patch:  # the pattern path alone
        patch.setattr(coerce, "_all_numbers", lambda text: None)
        slow, slow_bad = convert(values, kind, source)
    pd.testing.assert_series_equal(fast, slow, check_exact=True)
    pd.testing.assert_series_equal(fast_bad, slow_bad, check_exact=True)


def test_numbers_by_one_cast_take_every_plain_number_and_refuse_the_rest() -> None:
    numbers = coerce._all_numbers(pa.array(["1", None, "-2.5", "1e3", ".5"], type=pa.large_string()))
    assert numbers is not None
    np.testing.assert_array_equal(numbers, [1.0, np.nan, -2.5, 1000.0, 0.5])
    for refused in (["1", "x"], ["1", "inf"], ["1e999"], ["1", ""], ["nan"]):
        assert coerce._all_numbers(pa.array(refused, type=pa.large_string())) is None, refused


TIME_TEXTS = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from(["2026-01-31T10:00:00Z", "2026-01-31 10:00:00+02:00", "2026-01-31", "2026-01-31T23:59:59.5"]),
        st.sampled_from([" 2026-01-31T10:00:00Z", "2026-01-31T10:00:00Z ", "", "  ", "yesterday", "2026-02-30"]),
    ),
    max_size=8,
)


@FAST
@given(texts=TIME_TEXTS, kind=st.sampled_from(["datetime", "date"]))
def test_times_from_the_text_as_read_equal_the_cleaned_up_path(texts: list[str | None], kind: str) -> None:
    """The raw text goes to Arrow first; as object text (which skips that try) the clean-up
    path parses the same column: both give the same times and the same bad values."""
    source = SourceConfig(path="x.csv", key="k", time="t")
    fast, fast_bad = convert(pd.Series(texts, dtype="str"), kind, source)
    slow, slow_bad = convert(pd.Series(texts, dtype=object), kind, source)
    pd.testing.assert_series_equal(fast, slow, check_exact=True)
    pd.testing.assert_series_equal(fast_bad, slow_bad, check_exact=True)


@FAST
@given(
    data=st.binary(max_size=64) | st.lists(st.sampled_from([b"\n", b"\r", b'"', b"ab"]), max_size=40).map(b"".join),
    wanted=st.lists(st.sampled_from([ord("\n"), ord("\r"), ord('"'), 0]), min_size=1, max_size=3).map(bytes),
    start=st.integers(min_value=0, max_value=70),
    step=st.sampled_from([1, 3, 8, 1 << 22]),
    halves_from=st.sampled_from([0, 5, 1 << 30]),
)
def test_count_bytes_equals_bytes_count(data: bytes, wanted: bytes, start: int, step: int, halves_from: int) -> None:
    """The byte counts a step at a time, several bytes at once, in halves on two threads or
    not, equal `bytes.count` from any start, whatever the step; so does the check that
    every CR ends a line (CRLF), across steps."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(textfile, "COUNT_STEP", step)
        patch.setattr(textfile, "PARALLEL_BYTES", halves_from)
        expected = [data.count(bytes([byte]), start) for byte in wanted]
        assert textfile.count_bytes(data, wanted, start) == expected
        assert textfile.count_bytes(data, wanted, start, threads=1) == expected
        crlf_only = data.count(b"\r", start) == data.count(b"\r\n", start)
        assert textfile.returns_end_lines(data, start) == crlf_only
        assert [textfile.holds_byte(data[start:], byte) for byte in wanted] == [count > 0 for count in expected]


@pytest.mark.parametrize("at", [0, textfile.COUNT_STEP - 1, textfile.COUNT_STEP, 2 * textfile.COUNT_STEP + 5])
@pytest.mark.parametrize("byte", [b'"', b"\n"])
def test_holds_any_finds_a_byte_anywhere_in_a_column(at: int, byte: bytes) -> None:
    """The byte search goes a step at a time: a quote or a line break on either side of a
    step's edge is found."""
    size = 2 * textfile.COUNT_STEP + 10
    text = bytearray(b"a" * size)
    clean = [text.decode()[: size // 2], text.decode()[size // 2 :]]
    assert not readers._holds_any(pa.table({"c": pa.array(clean, pa.large_string())}), b'"\n')
    text[at] = byte[0]
    values = [text.decode()[: size // 2], None, text.decode()[size // 2 :]]
    found = pa.table({"n": pa.array(["1", "2", "3"]), "c": pa.array(values, pa.large_string())})
    assert readers._holds_any(found, b'"\n')
    assert not readers._holds_any(found, b"|")


@FAST
@given(
    values=st.lists(st.one_of(st.none(), st.text('ab"\n\r,', max_size=4)), max_size=10),
    chunks=st.integers(min_value=1, max_value=3),
    encoded=st.booleans(),
    found=st.sampled_from([b'"', b"\n", b'"\n', b'"\n\r', b"ab"]),
)
def test_holds_any_equals_a_search_value_by_value(
    values: list[str | None], chunks: int, encoded: bool, found: bytes
) -> None:
    """Over chunked columns, plain or dictionary-encoded (each chunk with its own dictionary)."""
    parts = [values[i::chunks] for i in range(chunks)]
    arrays = [pa.array(part, pa.large_string()) for part in parts]
    column = pa.chunked_array([a.dictionary_encode() for a in arrays] if encoded else arrays)
    table = pa.table({"c": column})
    assert readers._holds_any(table, found) == any(v is not None and set(v) & set(found.decode()) for v in values)


@pytest.mark.parametrize("zone", [None, "UTC", "America/New_York"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("kind", ["datetime", "date"])
def test_typed_times_pass_through_as_parsing_them_would(zone: str | None, unit: str, kind: str) -> None:
    """Parquet times are typed already: converted to naive UTC as `pd.to_datetime(utc=True)` would."""
    times = pd.Series(
        pd.to_datetime(["2026-01-31 23:30:00", None, "2026-03-08 07:15:30"]).as_unit(unit), index=[4, 2, 9]
    )
    values = times.dt.tz_localize(zone) if zone else times
    got, bad = convert(values, kind, SourceConfig(path="x.parquet", key="k", time="t"))
    want = pd.to_datetime(values, utc=True).dt.tz_convert(None)
    pd.testing.assert_series_equal(got, want.dt.normalize() if kind == "date" else want, check_exact=True)
    assert not bad.any()
    assert bad.index.equals(values.index)


PYTHON_TIMES = st.one_of(
    st.none(),
    st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)),
    st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 12, 31)),
    st.datetimes(
        dt.datetime(1900, 1, 2),
        dt.datetime(2200, 12, 30),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))]),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.one_of(
        st.lists(st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31))), max_size=12),
        st.lists(PYTHON_TIMES, max_size=12),
    ),
    kind=st.sampled_from(["datetime", "date"]),
)
def test_python_times_equal_parsing_their_text(values: list[Any], kind: str) -> None:
    """Dates held as Python objects (Parquet dates), converted by Arrow, give what parsing
    their ISO text gives; any other mix of objects (datetimes, aware or naive, among dates)
    is parsed as text, as before."""
    column = pd.Series(values, dtype=object, index=np.arange(len(values)) * 2)
    source = SourceConfig(path="x.parquet", key="k", time="t")
    got, bad = convert(column, kind, source)
    text = pd.Series([v.isoformat() if v is not None else None for v in values], dtype="str", index=column.index)
    want, want_bad = convert(text, kind, source)
    pd.testing.assert_series_equal(got, want, check_exact=True)
    assert bad.tolist() == want_bad.tolist()


# --- 8. text encoded to codes, on one thread or two ------------------------------------------


@FAST
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é", "", " a"])), max_size=40),
    chunks=st.integers(min_value=1, max_value=5),
    parallel_from=st.sampled_from([0, 3, 10**9]),
)
def test_encoded_codes_give_back_every_value(values: list[str | None], chunks: int, parallel_from: int) -> None:
    """Whatever the chunking and whether the halves are hashed on two threads and merged:
    the dictionary holds each value once and dictionary[code] is the value (-1: missing)."""
    parts = [values[len(values) * i // chunks : len(values) * (i + 1) // chunks] for i in range(chunks)]
    column = pa.chunked_array([pa.array(part, pa.large_string()) for part in parts], type=pa.large_string())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keys_module, "PARALLEL_ROWS", parallel_from)
        codes, dictionary = keys_module.encoded(column)
    assert codes.dtype == np.int32
    distinct = dictionary.to_pylist()
    assert len(set(distinct)) == len(distinct) == len({v for v in values if v is not None})
    assert [None if c < 0 else distinct[c] for c in codes] == values


@FAST
@given(
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet="ab\u00e9\U0001f600 ", max_size=10)), min_size=1, max_size=60
    ),
    chunks=st.integers(min_value=1, max_value=4),
    large=st.booleans(),
)
def test_encoded_in_partitions_gives_back_every_value(values: list[str | None], chunks: int, large: bool) -> None:
    """Text of many distinct values hashed a partition at a time (split by four bits of one
    of its last bytes): each value once in the dictionary, dictionary[code] the value, an
    empty value and a null wherever they are; chunks sliced out of one array (offsets)."""
    kind = pa.large_string() if large else pa.string()
    whole = pa.array(["x", *values], kind).slice(1)  # offsets that do not start at 0
    cuts = [len(values) * i // chunks for i in range(chunks + 1)]
    column = pa.chunked_array([whole.slice(a, b - a) for a, b in pairwise(cuts)], type=kind)
    codes, dictionary = keys_module.encoded(column, threads=1, many=True)
    distinct = dictionary.to_pylist()
    assert len(set(distinct)) == len(distinct) == len({v for v in values if v is not None})
    assert [None if c < 0 else distinct[c] for c in codes] == values


def test_text_of_varied_bytes_is_partitioned_and_of_one_byte_not() -> None:
    varied = pa.chunked_array([pa.array([f"ACC-{i:07d}" for i in range(100)])])
    groups = keys_module._partition_of(varied)
    assert groups is not None
    assert groups.tolist() == [i % 10 for i in range(100)]  # the last digit's low four bits
    assert keys_module._partition_of(pa.chunked_array([pa.array(["same"] * 50)])) is None
    mixed = pa.chunked_array(
        [pa.array(["a", "", None, "b", "\u00e9", "\U0001f600", "ab", " ", "", "a", None, "c"] * 3)]
    )
    assert keys_module._partition_of(mixed) is not None
    codes, dictionary = keys_module.encoded(mixed, threads=1, many=True)
    assert [None if c < 0 else dictionary.to_pylist()[c] for c in codes] == mixed.to_pylist()
    assert sorted(dictionary.to_pylist()) == sorted({v for v in mixed.to_pylist() if v is not None})
    assert keys_module._partition_of(pa.chunked_array([pa.array([1, 2])])) is None


def test_parquet_key_encoded_in_two_halves_reads_the_same(tmp_path: Path) -> None:
    frame = pd.DataFrame({"account_id": ["c", "a", None, "b", "a", "d", "c", "e"], "n": np.arange(8.0)})
    frame.to_parquet(tmp_path / "x.parquet", row_group_size=3)  # three row groups, three chunks
    select = lambda names: (names, "account_id")  # noqa: E731
    one = read_parquet(tmp_path / "x.parquet", tmp_path / "x.parquet", "s", select)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keys_module, "PARALLEL_ROWS", 0)
        two = read_parquet(tmp_path / "x.parquet", tmp_path / "x.parquet", "s", select)
    for read in (one, two):
        assert isinstance(read.frame["account_id"].dtype, pd.CategoricalDtype)
        assert read.frame["account_id"].astype(object).where(read.frame["account_id"].notna(), None).tolist() == [
            "c",
            "a",
            None,
            "b",
            "a",
            "d",
            "c",
            "e",
        ]


# --- 9. a row test on one Categorical column, once per distinct value ------------------------

ONE_COLUMN_TESTS = [
    "e == 'login'",
    "e != 'login'",
    "e in ['login', 'b']",
    "e not in ['login']",
    "is_missing(e)",
    "not is_missing(e) and e != 'b'",
    "e > 'b'",
]


@FAST
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["login", "b", "c", ""])), max_size=20),
    test=st.sampled_from(ONE_COLUMN_TESTS),
)
def test_row_test_per_category_equals_the_test_on_text(values: list[str | None], test: str) -> None:
    text = pd.DataFrame({"e": pd.Series(values, dtype="str")})
    categorical = text.assign(e=pd.Categorical(values, categories=pd.unique(text["e"].dropna())[::-1]))
    want = aggregate_module._MaskCache(text, "ev").get(test, "metrics.m.where")
    got = aggregate_module._MaskCache(categorical, "ev").get(test, "metrics.m.where")
    np.testing.assert_array_equal(got, want)


def test_row_test_per_category_reports_errors_as_the_text_test_does() -> None:
    categorical = pd.DataFrame({"e": pd.Categorical(["a", "b"])})
    with pytest.raises(DataError) as info:
        aggregate_module._MaskCache(categorical, "ev").get("e > 3", "metrics.m.where")
    assert "metrics.m.where" in str([p.where for p in info.value.problems])


def test_parquet_text_of_few_values_is_read_as_categoricals_only_with_a_key(tmp_path: Path) -> None:
    rows = 5000
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i % 50}" for i in range(rows)],
            "event": [["login", "open", None][i % 3] for i in range(rows)],
            "user_id": [f"user-{i:06d}" for i in range(rows)],  # all distinct: a big dictionary
            "n": np.arange(rows, dtype="float64"),
        }
    )
    frame.to_parquet(tmp_path / "e.parquet", row_group_size=2000)
    path = tmp_path / "e.parquet"
    keyed = read_parquet(path, path, "ev", lambda names: (names, "account_id"))
    assert isinstance(keyed.frame["event"].dtype, pd.CategoricalDtype)
    assert keyed.frame["event"].astype(object).where(keyed.frame["event"].notna(), None).tolist() == [
        ["login", "open", None][i % 3] for i in range(rows)
    ]
    assert not isinstance(keyed.frame["user_id"].dtype, pd.CategoricalDtype)
    assert keyed.frame["user_id"].tolist() == frame["user_id"].tolist()
    whole = read_parquet(path, path, "crm")  # no key: the accounts' columns pass through as read
    assert not any(isinstance(whole.frame[c].dtype, pd.CategoricalDtype) for c in whole.frame.columns)


@FAST
@given(rows=ROWS, part_rows=st.integers(1, 4))
def test_nunique_over_many_rows_in_account_parts_equals_in_one(rows: list[tuple[Any, ...]], part_rows: int) -> None:
    """The path for millions of rows (accounts split in parts, two at a time) on small data."""
    frame = with_coded_keys(events(rows))
    metrics = {
        "users": MetricConfig(source="ev", agg="nunique", field="u"),
        "n": MetricConfig(source="ev", agg="count"),
    }
    whole = aggregate(frame, metrics)
    assert isinstance(frame["u"].array, pd.arrays.ArrowStringArray)  # the path of Arrow text
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aggregate_module, "NUNIQUE_PART_ROWS", part_rows)
        parts = aggregate(frame, metrics)
    pd.testing.assert_frame_equal(parts, whole, check_exact=True)


@FAST
@given(
    pairs=st.lists(st.tuples(st.integers(0, 30), st.integers(-1, 40)), max_size=60),
    n=st.sampled_from([41, 64, 1 << 22]),
    accounts=st.sampled_from([0, 31, 40]),
)
def test_distinct_pairs_flagged_or_sorted_count_the_distinct_values(
    pairs: list[tuple[int, int]], n: int, accounts: int
) -> None:
    """Distinct values per account, by flags (few possible pairs) or by sorting (2^22
    values: too many to flag), equal the count of a set per account, missing values (-1)
    counting nowhere, for at least `accounts` accounts."""
    codes = np.array([c for c, _ in pairs], dtype=np.int32)
    values = np.array([v for _, v in pairs], dtype=np.int32)
    got = aggregate_module._Rows._distinct_pairs(codes, values, n, accounts)
    present = [c for c, v in pairs if v >= 0]
    size = max(accounts, max(present) + 1 if present else 0)
    expected = [len({v for c, v in pairs if c == k and v >= 0}) for k in range(size)]
    assert got.dtype == np.float64
    assert got.tolist() == expected


@FAST
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "bc", "", "é"])), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    data=st.data(),
)
def test_ascending_take_chunk_by_chunk_equals_arrows_take(
    values: list[str | None], cuts: list[int], data: st.DataObject
) -> None:
    """nunique's take of ascending rows, chunk by chunk, gives what pyarrow's take gives,
    whatever the chunks (empty ones too) and the rows (none, all, first or last of a chunk)."""
    bounds = [0, *sorted(min(c, len(values)) for c in cuts), len(values)]
    text = pa.chunked_array([pa.array(values[a:b], pa.string()) for a, b in pairwise(bounds)], type=pa.string())
    rows = np.array(sorted(data.draw(st.sets(st.integers(0, max(len(values) - 1, 0)))) if values else []), np.int64)
    got = aggregate_module._ascending_take(text)(rows)
    assert got.to_pylist() == text.take(rows).to_pylist()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], True),
        (["a"], True),
        (["a", "b"], True),
        (["Z", "a", "é", "ü"], True),
        (["b", "a"], False),
        (["a", "a"], False),
        ([None, "a"], False),
        (["a", None], False),
    ],
)
def test_ascending_is_strict_code_point_order(values: list[str | None], expected: bool) -> None:
    assert ascending(pd.Index(values, dtype="str")) is expected
    assert ascending(pa.array(values, pa.string())) is expected


@pytest.mark.parametrize("fast_path", [True, False])
def test_distinct_dtype_equals_the_checked_dtype(fast_path: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not fast_path:  # a pandas without the private fast path: the public constructor
        monkeypatch.delattr(pd.CategoricalDtype, "_from_fastpath")
    categories = pd.Index(["a", "b", "é"], dtype="str")
    assert distinct_dtype(categories) == pd.CategoricalDtype(categories)
    codes = np.array([2, -1, 0], dtype=np.int8)
    got = pd.Categorical.from_codes(codes, dtype=distinct_dtype(categories), validate=False)
    assert [None if pd.isna(v) else v for v in got] == ["é", None, "a"]


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "é", "", "B", "a "])), max_size=8)),
    null_in_dictionary=st.booleans(),
    many=st.booleans(),
)
def test_dictionary_categorical_equals_the_chunks_values(
    chunks: list[list[str | None]], null_in_dictionary: bool, many: bool
) -> None:
    """A dictionary per chunk (as pyarrow's CSV blocks have): the same values, missing where
    null, whether a null is in the indices or in the dictionary, categories sorted; and
    whether the dictionaries are hashed whole or, as many values, in partitions and halves."""

    def encoded(values: list[str | None]) -> pa.DictionaryArray:
        coded = pa.array(values, pa.string()).dictionary_encode()
        if not null_in_dictionary or None not in values:
            return coded
        dictionary = pa.concat_arrays([coded.dictionary, pa.array([None], pa.string())])
        indices = pc.fill_null(coded.indices, len(coded.dictionary))
        return pa.DictionaryArray.from_arrays(indices, dictionary)

    column = pa.chunked_array([encoded(c) for c in chunks], type=pa.dictionary(pa.int32(), pa.string()))
    with pytest.MonkeyPatch.context() as patch:
        if many:  # every part counts as one of many values: partitions (and halves, on two threads)
            patch.setattr(keys_module, "MANY_PER_PART", 0)
            patch.setattr(keys_module, "PARALLEL_ROWS", 0)
        got = keys_module.dictionary_categorical(column)
    assert [None if pd.isna(v) else v for v in got] == [v for c in chunks for v in c]
    assert list(got.categories) == sorted({v for c in chunks for v in c if v is not None})


NUMBER_TEXTS = [
    "1",
    "0",
    "-0",
    "-0.0",
    "1.5",
    "-2e3",
    ".5",
    "5.",
    "+7",
    " 2",
    "inf",
    "nan",
    "NA",
    "",
    '"3"',
    '"1,5"',
    "$5",
    "x",
]
TIME_TEXTS = [
    "2026-01-31T10:00:00Z",
    "2026-01-31 10:00:00+02:00",
    "2026-01-31 10:00:00",
    "2026-01-31T10:00",
    "2026-01-31",
    "2026-01-31T10:00:00.123456Z",
    "2026-01-31T10:00:00.123456789",
    " 2026-01-31 10:00:00",
    "",
    "NA",
    "null",  # missing, as the first value too: a column of no times
    "2026-02-30",
    "x",
]


def typed_then_coerced(raw: bytes, source: SourceConfig) -> pd.DataFrame | list[str]:
    """The quick path's frame after `apply_types`, or the DataError's messages."""
    read = read_csv(Path("x.csv"), raw, source, "s", lambda names: [], lambda names: (names, "account_id"))
    try:
        return coerce.apply_types(read.frame, source.types, source, Origins.of_files(["x.csv"], [read.lines]), False)
    except DataError as exc:
        return [str(exc), *(str(p) for p in exc.problems)]


@FAST
@given(
    numbers=st.lists(st.sampled_from(NUMBER_TEXTS), min_size=1, max_size=8),
    times=st.lists(st.sampled_from(TIME_TEXTS), min_size=1, max_size=8),
    time_kind=st.sampled_from(["datetime", "date"]),
)
def test_numbers_and_times_parsed_as_read_equal_the_text_path(
    numbers: list[str], times: list[str], time_kind: str
) -> None:
    """A float column and the time column parsed by the CSV reader as it reads give the
    same frame, or the same errors, as reading them as text and typing them after."""
    rows = [f"A{i},{n},{t}" for i, (n, t) in enumerate(zip(numbers, times * len(numbers), strict=False))]
    raw = ("account_id,n,t\n" + "\n".join(rows) + "\n").encode()
    source = SourceConfig(path="x.csv", key="account_id", time="t", types={"n": "float", "t": time_kind})
    typed = typed_then_coerced(raw, source)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "typed_columns", lambda *args: {})
        as_text = typed_then_coerced(raw, source)
    if isinstance(typed, pd.DataFrame):
        assert isinstance(as_text, pd.DataFrame)
        pd.testing.assert_frame_equal(as_plain_text(typed), as_plain_text(as_text), check_exact=True)
        signs = [np.signbit(frame["n"].to_numpy(dtype="float64")).tolist() for frame in (typed, as_text)]
        assert signs[0] == signs[1]  # -0.0 equals 0.0, but is written apart
    else:
        assert typed == as_text


def test_finite_and_signless_looks_only_at_a_chunks_own_values() -> None:
    """The check of typed numbers reads each chunk's values in place: a slice's offset
    counts, a null's slot (0.0) passes, -0.0 and non-finite values fail."""
    values = pa.array([1.0, -0.0, None, 2.5, float("inf")])
    assert [csv_typed._finite_and_signless(values.slice(at, 2)) for at in range(4)] == [False, False, True, False]
    assert csv_typed._finite_and_signless(pa.array([0.0, None, 3.0]))
    assert not csv_typed._finite_and_signless(pa.array([0.0, float("nan")]))
    assert csv_typed._finite_and_signless(pa.array([], pa.float64()))
    assert csv_typed._finite_and_signless(pa.nulls(3, pa.float64()))


def test_numbers_and_times_are_parsed_as_read_where_they_can_be(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain numbers and ISO times come out of the CSV reader typed; a value it refuses
    sends the file back to the text path, with the same values in the end."""
    asked: list[dict[int, pa.DataType] | None] = []
    arrow_rows = readers._arrow_rows

    def spy(*args: Any, **kwargs: Any) -> pa.Table | None:
        asked.append(args[7] if len(args) > 7 else kwargs.get("typed"))
        return arrow_rows(*args, **kwargs)

    monkeypatch.setattr(readers, "_arrow_rows", spy)
    source = SourceConfig(path="x.csv", key="account_id", time="t", types={"n": "float"})
    plain = b"account_id,n,t\nA,1.5,2026-01-31T10:00:00Z\nB,,2026-01-31T11:00:00Z\n"
    read = read_csv(Path("x.csv"), plain, source, "s", lambda names: [], lambda names: (names, "account_id"))
    assert asked == [{1: pa.float64(), 2: pa.timestamp("us", tz="UTC")}]
    assert str(read.frame["n"].dtype) == "float64"
    assert str(read.frame["t"].dtype) == "datetime64[us]"  # UTC, as `coerce` leaves times
    assert read.frame["t"].tolist() == [pd.Timestamp("2026-01-31 10:00"), pd.Timestamp("2026-01-31 11:00")]
    asked.clear()
    units = b"account_id,n,t\nA,1.5,2026-01-31T10:00:00Z\nB,$2,2026-01-31T11:00:00Z\n"
    read = read_csv(Path("x.csv"), units, source, "s", lambda names: [], lambda names: (names, "account_id"))
    assert asked == [{1: pa.float64(), 2: pa.timestamp("us", tz="UTC")}, None]  # refused, then read as text
    assert read.frame["n"].tolist() == ["1.5", "$2"]


@pytest.mark.parametrize(
    ("header", "rename", "typed"),
    [
        ("when,acct,secs", {"when": "t", "acct": "account_id", "secs": "n"}, {2: pa.float64(), 0: pa.timestamp("us")}),
        ("n,t,account_id", {"n": "t", "t": "n"}, {1: pa.float64(), 0: pa.timestamp("us")}),  # names swapped
    ],
)
def test_columns_parsed_as_read_are_the_configs_after_renaming(
    header: str, rename: dict[str, str], typed: dict[int, pa.DataType]
) -> None:
    first = {"when,acct,secs": "2026-01-31 10:00,A,1.5", "n,t,account_id": "2026-01-31 10:00,1.5,A"}[header]
    data = f"{header}\n{first}\n".encode()
    source = SourceConfig(path="x.csv", key="account_id", time="t", types={"n": "float"}, rename=rename)
    start = data.index(b"\n") + 1
    assert csv_typed.typed_columns(data, start, header.split(","), ",", source) == typed


def test_numbers_formatted_early_are_refused_on_a_sample_before_the_whole_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose first lines hold a number pyarrow refuses (`$2`) is tried typed on its
    first lines only, then read as text: never parsed typed as a whole."""
    asked: list[tuple[int, bool]] = []
    arrow_rows = readers._arrow_rows

    def spy(*args: Any, **kwargs: Any) -> pa.Table | None:
        asked.append((len(args[0]), bool(args[7] if len(args) > 7 else kwargs.get("typed"))))
        return arrow_rows(*args, **kwargs)

    monkeypatch.setattr(readers, "_arrow_rows", spy)
    monkeypatch.setattr(readers, "TYPED_SAMPLE", 64)
    source = SourceConfig(path="x.csv", key="account_id", time="t", types={"n": "float"})
    rows = [f"A{i},{'$2' if i == 1 else i},2026-01-31T10:00:00Z" for i in range(40)]
    raw = ("account_id,n,t\n" + "\n".join(rows) + "\n").encode()
    read = read_csv(Path("x.csv"), raw, source, "s", lambda names: [], lambda names: (names, "account_id"))
    sample, text, whole = asked
    assert sample[1]  # typed,
    assert sample[0] < len(raw)  # the first lines only
    assert text == (sample[0], False)  # as text, its distinct values counted (`few_valued`)
    assert whole == (len(raw), False)  # then the whole file as text
    assert read.frame["n"].tolist()[:3] == ["0", "$2", "2"]
    asked.clear()
    clean = raw.replace(b"$2", b"2")
    read = read_csv(Path("x.csv"), clean, source, "s", lambda names: [], lambda names: (names, "account_id"))
    assert [typed for _, typed in asked] == [True, True]  # the sample, then the whole file, typed
    assert str(read.frame["n"].dtype) == "float64"


def test_large_regular_files_are_mapped_and_small_ones_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"account_id\nA\n")
    assert textfile.file_text(path) == b"account_id\nA\n"
    monkeypatch.setattr(textfile, "MAP_BYTES", 4)
    mapped = textfile.file_text(path)
    assert not isinstance(mapped, bytes)
    assert textfile.as_bytes(mapped) == b"account_id\nA\n"
    (tmp_path / "empty.csv").write_bytes(b"")
    assert textfile.file_text(tmp_path / "empty.csv") == b""  # nothing to map: read
    monkeypatch.delattr(mmap, "MAP_POPULATE")  # not Linux: read as before
    assert textfile.file_text(path) == b"account_id\nA\n"


UTF8_PIECES = [
    b"a",
    b"\n",
    b",",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xe9",
    b"\xc3",
    b"\xa9",
    b"\x00",
    b"\r",
]


@FAST
@given(
    pieces=st.lists(st.sampled_from(UTF8_PIECES), max_size=30),
    bom=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]),
    step=st.sampled_from([1, 2, 3, 1 << 20]),
    encoding=st.sampled_from(["auto", "utf-8", "cp1252"]),
    halves_from=st.sampled_from([0, 1 << 30]),
)
@example(
    pieces=[b"\xc3", b"a", b"\xa9"], bom=b"", step=1, encoding="auto", halves_from=0
)  # a character cut by an ASCII step
@example(pieces=[b"a", b"a", b"\x00"], bom=b"", step=1, encoding="auto", halves_from=0)  # a NUL in the second half
def test_a_mapped_file_decodes_as_its_bytes_do(
    pieces: list[bytes], bom: bytes, step: int, encoding: str, halves_from: int
) -> None:
    """`to_utf8` of a mapped file (checked a step at a time, a character maybe across two
    steps, ASCII and NUL each half on its own thread or not) gives the text, encoding and
    fallback, or the error, its bytes give."""
    raw = bom + b"".join(pieces)

    def decoded(text: textfile.Text) -> tuple[bytes, str, bool] | str:
        try:
            out = textfile.to_utf8(text, encoding, Path("x.csv"), "s")
        except DataError as exc:
            return str(exc) + "".join(str(p) for p in exc.problems)
        return textfile.as_bytes(out.data), out.encoding, out.fallback

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        path = Path(folder) / "x.csv"
        path.write_bytes(raw)
        patch.setattr(textfile, "MAP_BYTES", 1)
        patch.setattr(textfile, "COUNT_STEP", step)
        patch.setattr(textfile, "PARALLEL_BYTES", halves_from)
        mapped = textfile.file_text(path)
        assert isinstance(mapped, bytes) == (len(raw) == 0)
        assert decoded(mapped) == decoded(raw)
        assert textfile.is_empty(mapped) == textfile.is_empty(raw)
