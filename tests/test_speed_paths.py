"""The fast paths give exactly what the general paths give.

1. `coerce._to_number`: plain numbers parsed by pyarrow, the rest by the string clean-up,
   equals the string clean-up of every value (numbers, sign of zero, bad-value mask).
2. `readers._parse_rows_quickly` (pyarrow.csv) reads the same text values as pandas.
3. `join.join_metrics` (one Arrow lookup of each source's keys) equals reindexing the
   aggregates and matching every row's key.
4. `explain.top_drivers` (joined in Arrow) equals formatting each account's drivers in Python.
5. `summary._lowest` (the lowest accounts picked by a partition) equals sorting every account.
6. `scoring.weighted_scores` a block of accounts at a time equals all accounts at once.
7. Window bounds and the as_of cutoff compared in the times' own unit (s to ns), as
   int64, equal pandas' comparison.
8. `origins.RowLines` (the lines of Parquet rows and of a well-formed CSV's, computed when
   asked) equals an array of lines.
9. `parquet_columns.read_columns` with the key read and hashed in two halves of the row
   groups, each on its own thread, equals reading the file whole; validating a table in
   halves fails where validating it whole does.
10. `aggregate._coded_mask` (rows compared with the few codes that hit, or miss) equals
   looking up each row's flag.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_config
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from healthscore import aggregate, explain, keys, parquet_columns, scoring
from healthscore.coerce import _to_number, _to_number_slowly
from healthscore.explain import MIN_POINTS, top_drivers
from healthscore.join import EXAMPLES, SourceJoin, join_metrics
from healthscore.models import SourceConfig
from healthscore.origins import Origins, RowLines
from healthscore.readers import _parse_rows_quickly, parse_rows_with_pandas
from healthscore.sources import SourceData
from healthscore.summary import _lowest

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


# --- 3. the join (one Arrow lookup per source) equals reindexing and matching every row's key

KEYS = ["a", "b", "c", "x", "y", "z", "A"]
JOIN_CONFIG = make_config(
    Path("."),
    accounts={"source": "crm"},
    sources={"crm": {"path": "crm.csv", "key": "id"}, "usage": {"path": "usage.csv", "key": "k", "time": "at"}},
    metrics={
        "n": {"source": "usage", "agg": "count", "missing": {"fill": 0}, "scale": {"method": "percentile"}},
        "plan": {
            "source": "usage",
            "agg": "last",
            "field": "plan",
            "scale": {"method": "categorical", "map": {"pa": 10}},
        },
    },
    groups={"g": {"metrics": ["n"]}},
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.one_of(st.none(), st.sampled_from(KEYS)), max_size=30),
    accounts=st.lists(st.sampled_from(["a", "b", "c", "d", "x"]), unique=True, min_size=1),
    valued=st.sets(st.sampled_from(KEYS)),
)
def test_join_equals_reindexing_and_row_by_row_matching(
    rows: list[str | None], accounts: list[str], valued: set[str]
) -> None:
    spine = pd.DataFrame({"id": pd.Series(accounts, dtype="str")}).set_index("id", drop=False)
    frame = pd.DataFrame({"k": pd.Series(rows, dtype="str")})
    # the aggregate holds some of the keys with rows (the others' rows all fall after as_of), sorted
    held = sorted(set(frame["k"].dropna()) & valued)
    values = pd.DataFrame(
        {"n": np.arange(len(held), dtype="float64") + 1, "plan": pd.Series([f"p{k}" for k in held], dtype="str")},
        index=pd.Index(held, dtype="str"),
    )
    data = SourceData("usage", frame, "k", None, [])
    raw, joins = join_metrics(JOIN_CONFIG, spine, {"usage": values}, {"usage": data})
    expected = values.reindex(spine.index)
    pd.testing.assert_series_equal(raw["n"], expected["n"].fillna(0), check_names=False)
    pd.testing.assert_series_equal(raw["plan"], expected["plan"], check_names=False)
    column = frame["k"].dropna()
    unmatched = column[~column.isin(accounts)]
    assert joins["usage"] == SourceJoin(
        "usage",
        column.nunique(),
        column.nunique() - unmatched.nunique(),
        unmatched.nunique(),
        len(unmatched) + int(frame["k"].isna().sum()),
        tuple(sorted(unmatched.unique().tolist())[:EXAMPLES]),
    )


# --- 4. top drivers joined in Arrow equal the text formatted account by account

POINTS = st.one_of(
    st.just(float("nan")), st.sampled_from([0.0, 0.04, 0.049, 0.05, 0.051, 7.5, 7.45]), st.floats(0, 100)
)


@settings(max_examples=200, deadline=None)
@given(
    lost=hnp.arrays("float64", st.tuples(st.integers(0, 12), st.integers(1, 5)), elements=POINTS),
    scores=st.lists(st.one_of(st.just(float("nan")), st.floats(0, 10)), min_size=5, max_size=5),
    block=st.sampled_from([1, 2, 5, explain.BLOCK]),
)
def test_top_drivers_equal_formatting_row_by_row(lost: np.ndarray, scores: list[float], block: int) -> None:
    """Accounts in blocks of any size (one account, or all of them in one)."""
    columns = [f"m{i}" for i in range(lost.shape[1])]
    index = pd.Index([f"A{i}" for i in range(len(lost))], dtype="str")
    frame = pd.DataFrame(lost, index=index, columns=columns)
    metric_scores = pd.DataFrame([scores[: len(columns)]] * len(lost), index=index, columns=columns)
    labels = {"m0": "Logins (30d)", "m1": "NPS"}
    with patch.object(explain, "BLOCK", block):
        got = top_drivers(frame, metric_scores, labels)

    def text(number: float) -> str:
        return str(round(number, 1) + 0.0)

    expected = []
    for row, row_scores in zip(lost, metric_scores.to_numpy(), strict=True):
        order = sorted(range(len(columns)), key=lambda i: (np.isnan(row[i]), -np.nan_to_num(row[i]), i))[:3]
        parts = [
            f"{labels.get(columns[i], columns[i])} {text(row_scores[i])}/10 (-{text(row[i])})"
            for i in order
            if row[i] >= MIN_POINTS
        ]
        expected.append("; ".join(parts))
    assert got.index.equals(index)
    assert got.tolist() == expected


# --- 5. the lowest accounts picked by a partition equal those of sorting every account

SUMMARY_CONFIG = make_config(
    Path("."),
    accounts={"source": "crm"},
    sources={"crm": {"path": "crm.csv", "key": "id"}},
    metrics={"a": {"source": "crm", "agg": "value", "field": "a", "scale": {"method": "identity"}}},
    groups={"g": {"metrics": ["a"]}},
)


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(
        st.one_of(st.just(float("nan")), st.sampled_from([0.0, 12.5, 40.0]), st.floats(0, 100)), max_size=40
    ),
    top=st.integers(0, 12),
)
def test_lowest_by_partition_equals_sorting_every_account(scores: list[float], top: int) -> None:
    ids = [f"A{(7 * i) % 41:02d}" for i in range(len(scores))]
    table = pd.DataFrame(
        {"account_id": ids, "health_score": scores, "segment": "s", "top_drivers": ""}, dtype=object
    ).astype({"health_score": "float64"})
    arr = np.arange(len(scores), dtype="float64") % 3
    frame = table[["account_id", "health_score", "segment", "top_drivers"]].assign(name=table["account_id"], arr=arr)
    lowest = frame.dropna(subset=["health_score"]).sort_values(["health_score", "account_id"], kind="mergesort")
    lowest = lowest.head(top).sort_values(["arr", "health_score"], ascending=[False, True], kind="mergesort")
    got = _lowest(SUMMARY_CONFIG, table, table, arr, top)
    assert [(r["account_id"], r["health_score"], r["arr"]) for r in got] == list(
        zip(lowest["account_id"], lowest["health_score"], lowest["arr"], strict=True)
    )


# --- 6. scores computed a block of accounts at a time equal all accounts at once

WEIGHTS_CONFIG = make_config(
    Path("."),
    accounts={"source": "crm"},
    sources={"crm": {"path": "crm.csv", "key": "id"}},
    metrics={m: {"source": "crm", "agg": "value", "field": m, "scale": {"method": "identity"}} for m in "abcd"},
    groups={
        "g1": {"weight": 3, "metrics": {"a": 1, "b": 3}},
        "g2": {"weight": 0, "metrics": ["c"]},
        "g3": {"metrics": ["d"]},
    },
)


@settings(max_examples=100, deadline=None)
@given(
    scores=hnp.arrays(
        "float64", st.tuples(st.integers(0, 20), st.just(4)), elements=st.one_of(st.just(np.nan), st.floats(0, 10))
    ),
    block=st.integers(1, 7),
)
def test_weighted_scores_by_blocks_equal_all_at_once(scores: np.ndarray, block: int) -> None:
    frame = pd.DataFrame(
        scores, columns=list("abcd"), index=pd.Index([f"A{i}" for i in range(len(scores))], dtype="str")
    )
    profile = pd.Series("default", index=frame.index, dtype="str")
    whole = scoring.weighted_scores(WEIGHTS_CONFIG, frame, profile)
    with patch.object(scoring, "BLOCK", block):
        blocks = scoring.weighted_scores(WEIGHTS_CONFIG, frame, profile)
    # the same to rounding: a matrix product's last bit can depend on the shape BLAS is given
    for got, want in [
        (blocks.health, whole.health),
        (blocks.coverage, whole.coverage),
        (blocks.groups, whole.groups),
        (blocks.effective_weights, whole.effective_weights),
    ]:
        assert got.index.equals(want.index)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=1e-12, equal_nan=True)


# --- 7. window bounds compared in the times' own unit equal pandas' comparison


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_window_bounds_in_any_unit(unit: str) -> None:
    texts = ["2026-01-01 00:00:00", "2025-12-31 23:59:59.999999", None, "2026-01-31 00:00:00", "2026-01-30 23:00:00"]
    times = pd.Series(pd.to_datetime(texts, format="ISO8601").as_unit(unit))
    interval = (pd.Timestamp("2026-01-01"), pd.Timestamp("2026-01-31"))
    data = SourceData("usage", pd.DataFrame({"t": times}), "k", "t", [])
    got = aggregate._in_interval(data.frame, data, interval)
    assert (
        got.tolist() == ((times >= interval[0]) & (times < interval[1])).tolist() == [True, False, False, False, True]
    )
    cutoff = aggregate.cutoff_of(dt.date(2026, 1, 30))  # midnight after as_of: Jan 31 00:00 is not before it
    assert aggregate._before(times, cutoff).tolist() == [True, True, False, False, True]
    assert aggregate._before(times.dt.tz_localize("UTC"), cutoff.tz_localize("UTC")).tolist() == [
        True,
        True,
        False,
        False,
        True,
    ]  # (tz-aware times are compared by pandas)


# --- 8. rows' lines computed when asked equal an array of them


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 30), first=st.integers(1, 5), data=st.data())
def test_row_lines_equal_an_array_of_lines(count: int, first: int, data: st.DataObject) -> None:
    lines, array = RowLines(count, first), np.arange(first, first + count, dtype=np.int64)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=count, max_size=count)), dtype=bool)
    positions = np.array(
        data.draw(st.lists(st.integers(-count, count - 1), max_size=8)) if count else [], dtype=np.int64
    )
    start, stop, step = (data.draw(st.one_of(st.none(), st.integers(-40, 40))) for _ in range(3))
    assert np.array_equal(lines[mask], array[mask])
    assert np.array_equal(lines[positions], array[positions])
    if step != 0:
        assert np.array_equal(lines[start:stop:step], array[start:stop:step])
    assert np.array_equal(np.asarray(lines), array)
    assert len(lines) == count
    with pytest.raises(IndexError):
        lines[np.array([count])]
    with pytest.raises(IndexError):
        lines[np.ones(count + 1, dtype=bool)]
    origins = Origins.of_files(["a.parquet", "b.csv"], [lines, np.array([2, 5])])
    assert np.array_equal(origins.lines, np.concatenate([array, [2, 5]]))


# --- 9. a Parquet key read in two halves of the row groups equals reading it whole


def _parquet_bytes(table: pa.Table, groups: list[int], **options: Any) -> bytes:
    """The table as Parquet, its rows in row groups of the given sizes (summing to its rows);
    `options` for pyarrow's ParquetWriter."""
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, **options) as writer:
        start = 0
        for size in groups:
            writer.write_table(table.slice(start, size), row_group_size=max(size, 1))
            start += size
    return sink.getvalue()


@pytest.mark.parametrize(
    ("groups", "want"),
    [([10, 10, 10, 70], [[0, 1, 2], [3]]), ([70, 10, 10, 10], [[0], [1, 2, 3]]), ([1, 1, 1, 1], [[0, 1], [2, 3]])],
)
def test_row_groups_split_in_halves_by_rows(groups: list[int], want: list[list[int]]) -> None:
    table = pa.table({"n": np.arange(sum(groups), dtype=np.float64)})
    metadata = pq.ParquetFile(pa.BufferReader(_parquet_bytes(table, groups))).metadata
    with patch.object(keys, "PARALLEL_ROWS", 0):
        assert parquet_columns.row_group_halves(metadata) == want
    with patch.object(keys, "PARALLEL_ROWS", sum(groups) + 1):  # too short to split
        assert parquet_columns.row_group_halves(metadata) is None


def test_a_key_is_read_as_codes_only_where_every_row_group_holds_codes_only() -> None:
    """`coded_throughout`: a text column written with dictionaries, not one written
    without, nor one whose dictionary outgrew the writer's limit (its values then written
    as they are: `outgrew_dictionary`), nor a number column, nor a file of no row groups."""
    many = pa.array([f"ACC-{i * 7919 % 3001:04d}-{i * 2654435761 % 10**9:09d}" for i in range(3000)], pa.string())
    table = pa.table({"k": many, "n": np.arange(3000)})

    def coded(**options: Any) -> bool:
        raw = _parquet_bytes(table, [1000, 2000], **options)
        return parquet_columns.coded_throughout(pq.ParquetFile(pa.BufferReader(raw)).metadata, "k")

    def outgrew(**options: Any) -> bool:
        raw = _parquet_bytes(table, [1000, 2000], **options)
        return parquet_columns.outgrew_dictionary(pq.ParquetFile(pa.BufferReader(raw)).metadata, "k")

    assert coded()
    assert not outgrew()
    assert not coded(use_dictionary=False)
    assert not outgrew(use_dictionary=False)  # no dictionary tried: nothing tells how many keys
    assert not coded(dictionary_pagesize_limit=4096)  # 3000 keys outgrow it: written as text
    assert outgrew(dictionary_pagesize_limit=4096)
    numbers = pq.ParquetFile(pa.BufferReader(_parquet_bytes(table, [3000]))).metadata
    assert not parquet_columns.coded_throughout(numbers, "n")
    assert not parquet_columns.coded_throughout(numbers, "missing")
    empty = pq.ParquetFile(pa.BufferReader(_parquet_bytes(table.slice(0, 0), []))).metadata
    assert empty.num_row_groups == 0
    assert not parquet_columns.coded_throughout(empty, "k")


def test_one_row_group_is_never_split() -> None:
    metadata = pq.ParquetFile(pa.BufferReader(_parquet_bytes(pa.table({"n": [1.0, 2.0]}), [2]))).metadata
    with patch.object(keys, "PARALLEL_ROWS", 0):
        assert parquet_columns.row_group_halves(metadata) is None


@settings(max_examples=80, deadline=None)
@given(
    ids=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é", ""])), min_size=1, max_size=30),
    data=st.data(),
    key=st.sampled_from([None, "k"]),
    columns=st.sampled_from([["k"], ["k", "n"], ["e", "k", "n"], ["n", "e"]]),
    dictionary=st.booleans(),
)
def test_parquet_read_in_two_halves_equals_read_whole(
    ids: list[str | None], data: st.DataObject, key: str | None, columns: list[str], dictionary: bool
) -> None:
    """Either way the key is coded: from the row groups' dictionaries (a file written with
    them) or by hashing its text (one written without)."""
    rows = len(ids)
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), max_size=4)))
    groups = [b - a for a, b in zip([0, *cuts], [*cuts, rows], strict=True)]
    events = [["login", None, "open"][i % 3] for i in range(rows)]
    table = pa.table({"k": pa.array(ids, pa.string()), "n": np.arange(rows, dtype=np.float64), "e": events})
    raw = _parquet_bytes(table, groups, use_dictionary=dictionary)
    metadata = pq.ParquetFile(pa.BufferReader(raw)).metadata
    assert parquet_columns.coded_throughout(metadata, "k") is dictionary
    picked = [c for c in table.column_names if c in columns]  # file order
    read_key = key if key in picked else None

    def read(parallel_from: int) -> tuple[pa.Table, pd.Categorical | None]:
        with patch.object(keys, "PARALLEL_ROWS", parallel_from):
            return parquet_columns.read_columns(raw, metadata, picked, read_key, ["e"] if "e" in picked else [])

    for got, key_column in (read(10**12), read(0)):
        assert got.column_names == [c for c in picked if c != read_key]
        assert got.num_rows == rows
        for name in got.column_names:
            if name == "e":
                assert pa.types.is_dictionary(got.column(name).type)
            assert got.column(name).to_pylist() == table.column(name).to_pylist()
        if read_key is None:
            assert key_column is None
        else:  # the key: its text as written, missing where null, categories sorted and distinct
            assert key_column is not None
            assert [None if pd.isna(v) else v for v in key_column] == ids
            categories = list(key_column.categories)
            assert categories == sorted(set(categories)) == sorted({i for i in ids if i is not None})


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 40),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64]),
    block=st.integers(1, 9),
    data=st.data(),
)
def test_code_counts_in_blocks_equal_one_bincount(size: int, dtype: type, block: int, data: st.DataObject) -> None:
    """Rows per code counted a block at a time: -1 counts nowhere, the largest code (127 for
    int8) is not widened past its type, and the last block may be short."""
    codes = data.draw(hnp.arrays(dtype, st.integers(0, 30), elements=st.integers(-1, size - 1)))
    with patch.object(keys, "COUNT_BLOCK", block):
        counts = keys.code_counts(codes, size)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, np.bincount(codes[codes >= 0].astype(np.int64), minlength=size))
    assert keys.code_counts(np.full(3, 127, dtype=np.int8), 128).tolist() == [0] * 127 + [3]


@pytest.mark.parametrize("bad_row", [None, 0, 3, 5])
def test_validating_in_halves_finds_bad_text_in_either_half(
    bad_row: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each half of the rows is validated on its own thread: text that is not UTF-8, in
    either half, fails as validating the whole table does."""
    monkeypatch.setattr(keys, "PARALLEL_ROWS", 2)
    values = [b"ab", b"c", b"de", b"f", b"gh", b"i"]
    if bad_row is not None:
        values[bad_row] = b"\xff"
    data = b"".join(values)
    offsets = np.cumsum([0, *(len(v) for v in values)]).astype(np.int32)
    text = pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    table = pa.table({"n": pa.array(range(6)), "t": text})
    if bad_row is None:
        parquet_columns.validate_in_halves(table)
        table.validate(full=True)
        return
    with pytest.raises(pa.ArrowInvalid):
        table.validate(full=True)
    with pytest.raises(pa.ArrowInvalid):
        parquet_columns.validate_in_halves(table)


# --- 10. a mask of codes built by comparing with a few codes equals looking each row's up


@settings(max_examples=300, deadline=None)
@given(
    categories=st.integers(0, 12),
    dtype=st.sampled_from([np.int8, np.int16, np.int32]),
    data=st.data(),
)
def test_coded_mask_equals_looking_up_each_row(categories: int, dtype: type, data: st.DataObject) -> None:
    """Few codes hitting, few missing, or many of each (looked up): code -1 (missing) is the
    last flag, and a mask of all or none comes out whole."""
    hits = np.array(data.draw(st.lists(st.booleans(), min_size=categories + 1, max_size=categories + 1)))
    codes = data.draw(hnp.arrays(dtype, st.integers(0, 40), elements=st.integers(-1, categories - 1)))
    got = aggregate._coded_mask(hits, codes)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, np.array([hits[c] for c in codes.tolist()], dtype=bool))


def test_coded_mask_exact() -> None:
    codes = np.array([0, 1, -1, 2, 1, 0], dtype=np.int8)
    assert aggregate._coded_mask(np.array([False, True, False, False]), codes).tolist() == [0, 1, 0, 0, 1, 0]
    assert aggregate._coded_mask(np.array([True, False, True, True]), codes).tolist() == [1, 0, 1, 1, 0, 1]
    assert aggregate._coded_mask(np.array([False, False, False, True]), codes).tolist() == [0, 0, 1, 0, 0, 0]
