"""Tests for the restricted expression language in healthscore.expr."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore.errors import ConfigError, DataError
from healthscore.expr import Expression, ExpressionError, parse, predicate

NAN = float("nan")


def run(text: str, /, **columns: Any) -> list[Any]:
    """Evaluate `text` over keyword columns (lists become Series on a 0..n-1 index)."""
    series = {k: v if isinstance(v, pd.Series) else pd.Series(v) for k, v in columns.items()}
    index = next(iter(series.values())).index if series else pd.RangeIndex(3)
    return parse(text).evaluate(series, index).tolist()


def flags(text: str, /, **columns: Any) -> list[bool]:
    """Row test via `predicate` (lists become Series on a 0..n-1 index)."""
    series = {k: v if isinstance(v, pd.Series) else pd.Series(v) for k, v in columns.items()}
    index = next(iter(series.values())).index
    result = predicate(parse(text), series, index)
    assert result.dtype == np.dtype(bool)
    return result.tolist()


def same(got: list[Any], want: list[float]) -> bool:
    """Equal lists of floats where NaN equals NaN."""
    return len(got) == len(want) and all(
        (math.isnan(g) and math.isnan(w)) or math.isclose(g, w) for g, w in zip(got, want, strict=True)
    )


# ---- arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("a + b", [5.0, 2.0, -1.0]),
        ("a - b", [-3.0, 2.0, 7.0]),
        ("a * b", [4.0, 0.0, -12.0]),
        ("a / b", [0.25, NAN, -0.75]),
        ("-a", [-1.0, -2.0, -3.0]),
        ("+a", [1.0, 2.0, 3.0]),
        ("1 + a * 2", [3.0, 5.0, 7.0]),
        ("(1 + a) * 2", [4.0, 6.0, 8.0]),
        ("a - -b", [5.0, 2.0, -1.0]),
        ("a / 2 / 2", [0.25, 0.5, 0.75]),
    ],
)
def test_arithmetic(text: str, want: list[float]) -> None:
    got = parse(text).evaluate({"a": pd.Series([1, 2, 3]), "b": pd.Series([4, 0, -4])}, pd.RangeIndex(3))
    assert got.dtype == np.float64
    assert same(got.tolist(), want)


def test_division_by_zero_is_missing_never_inf() -> None:
    got = run("a / b", a=[1.0, -1.0, 0.0, 3.0], b=[0.0, 0.0, 0.0, 1.5])
    assert same(got, [NAN, NAN, NAN, 2.0])
    assert same(run("1 / 0", a=[1]), [NAN])


def test_arithmetic_result_is_float64_for_every_numeric_dtype() -> None:
    for dtype in ["int64", "Int64", "float64", "Float64", "bool", "int8"]:
        column = pd.Series([1, 0], dtype=dtype)
        assert parse("x * 2").evaluate({"x": column}, column.index).dtype == np.float64


def test_booleans_count_as_zero_and_one_in_arithmetic() -> None:
    assert run("10 * (tier == 'E') + 1", tier=["E", "S"]) == [11.0, 1.0]


# ---- comparisons and logic --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("x == 2", [False, True, False]),
        ("x != 2", [True, False, True]),
        ("x < 2", [True, False, False]),
        ("x <= 2", [True, True, False]),
        ("x > 2", [False, False, True]),
        ("x >= 2", [False, True, True]),
        ("0 < x <= 2", [True, True, False]),
        ("1 < x < 3", [False, True, False]),
        ("x == y", [True, False, False]),
        ("x < y", [False, True, False]),
        ("2 == x", [False, True, False]),
        ("x > 1 and x < 3", [False, True, False]),
        ("x < 2 or x > 2", [True, False, True]),
        ("not x == 2", [True, False, True]),
        ("not (x > 1 and y > 1)", [True, False, True]),
        ("x == 1 or x == 2 or x == 3", [True, True, True]),
        ("x in [1, 3]", [True, False, True]),
        ("x in (2,)", [False, True, False]),
        ("x not in [1, 3]", [False, True, False]),
        ("x in [-1.5, 2.0]", [False, True, False]),
        ("x in []", [False, False, False]),
        ("True", [True, True, True]),
        ("flag", [True, False, True]),
        ("flag and x > 1", [False, False, True]),
        ("flag == True", [True, False, True]),
    ],
)
def test_comparisons_and_logic(text: str, want: list[bool]) -> None:
    assert flags(text, x=[1, 2, 3], y=[1, 5, 0], flag=[True, False, True]) == want


def test_text_comparison_is_exact_and_case_sensitive() -> None:
    tier = pd.Series(["Enterprise", "enterprise", "Enterprise ", "SMB"], dtype="str")
    assert flags("tier == 'Enterprise'", tier=tier) == [True, False, False, False]
    assert flags("tier in ['SMB', 'enterprise']", tier=tier) == [False, True, False, True]
    assert flags("tier < 'F'", tier=tier) == [True, False, True, False]
    assert flags("tier == other", tier=tier, other=["Enterprise", "x", "y", "SMB"]) == [True, False, False, True]


def test_datetime_compares_with_date_text() -> None:
    when = pd.Series(
        pd.to_datetime(pd.Series(["2025-12-31", "2026-01-01", None, "2026-03-05T10:00"]), format="ISO8601")
    )
    assert flags("when >= '2026-01-01'", when=when) == [False, True, False, True]
    assert flags("'2026-01-01' < when", when=when) == [False, False, False, True]
    assert flags("when in ['2026-01-01', '2025-12-31']", when=when) == [True, True, False, False]
    assert flags("when == other", when=when, other=when) == [True, True, False, True]
    day = pd.Series(["2026-01-02", None, "2026-01-01", "2026-03-05T10:00:00"], dtype=object)
    assert flags("when < day", when=when, day=day) == [True, False, False, False]


def test_naive_date_text_is_read_in_the_column_time_zone() -> None:
    when = pd.to_datetime(pd.Series(["2026-01-01", "2026-02-01", None])).dt.tz_localize("America/New_York")
    assert flags("when == '2026-01-01'", when=when) == [True, False, False]
    assert flags("when == '2026-01-01T05:00Z'", when=when) == [True, False, False]
    assert flags("when > '2026-01-15'", when=when) == [False, True, False]
    assert flags("when in ['2026-02-01']", when=when) == [False, True, False]


# ---- missing values, for each dtype -----------------------------------------------------

MISSING_COLUMNS = {
    "float64": (pd.Series([1.0, NAN, 2.0]), 1),
    "Int64": (pd.Series([1, pd.NA, 2], dtype="Int64"), 1),
    "Float64": (pd.Series([1.0, None, 2.0], dtype="Float64"), 1),
    "str": (pd.Series(["a", None, "b"], dtype="str"), "'a'"),
    "object": (pd.Series(["a", None, "b"], dtype=object), "'a'"),
    "boolean": (pd.Series([True, pd.NA, False], dtype="boolean"), True),
    "datetime64": (pd.to_datetime(pd.Series(["2026-01-01", None, "2026-02-01"])), "'2026-01-01'"),
}


@pytest.mark.parametrize("dtype", sorted(MISSING_COLUMNS))
def test_missing_values_never_compare(dtype: str) -> None:
    column, value = MISSING_COLUMNS[dtype]
    assert flags(f"x == {value}", x=column) == [True, False, False]
    assert flags(f"x != {value}", x=column) == [False, False, True]
    assert flags(f"not (x == {value})", x=column) == [False, True, True]
    assert flags(f"x in [{value}]", x=column) == [True, False, False]
    assert flags(f"x not in [{value}]", x=column) == [False, False, True]
    assert flags("is_missing(x)", x=column) == [False, True, False]
    assert flags("not is_missing(x)", x=column) == [True, False, True]
    if dtype not in ("boolean",):
        assert flags(f"x < {value} or x >= {value}", x=column) == [True, False, True]


def test_plain_bool_column_has_no_missing() -> None:
    assert flags("is_missing(flag) or flag", flag=[True, False]) == [True, False]


def test_is_missing_recognises_every_missing_marker() -> None:
    column = pd.Series([None, NAN, pd.NA, pd.NaT, "x", 0], dtype=object)
    assert flags("is_missing(x)", x=column) == [True, True, True, True, False, False]


@pytest.mark.parametrize(
    "column",
    [
        pd.Series([1.0, NAN]),
        pd.Series([1, pd.NA], dtype="Int64"),
        pd.Series([1.0, None], dtype="Float64"),
        pd.Series([1, None], dtype=object),
    ],
)
def test_arithmetic_with_missing_gives_missing(column: pd.Series) -> None:
    got = parse("x * 2 + 1").evaluate({"x": column}, column.index)
    assert got.dtype == np.float64
    assert same(got.tolist(), [3.0, NAN])


def test_all_missing_object_column_compares_false_with_anything() -> None:
    column = pd.Series([None, None], dtype=object)
    assert flags("x == 'a' or x == 1 or x in ['a']", x=column) == [False, False]
    assert flags("x", x=column) == [False, False]


def test_predicate_counts_missing_booleans_as_false() -> None:
    assert flags("flag", flag=pd.Series([True, pd.NA, False], dtype="boolean")) == [True, False, False]
    assert flags("not flag", flag=pd.Series([True, pd.NA, False], dtype="boolean")) == [False, True, True]


# ---- functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("clip(x, 0, 10)", [0.0, 2.5, 10.0, NAN]),
        ("clip(x, lo, hi)", [-1.0, 2.5, 12.0, NAN]),
        ("clip(x, -1, hi)", [-1.0, 2.5, 12.0, NAN]),
        ("min(x, 3)", [-5.0, 2.5, 3.0, NAN]),
        ("max(x, 3)", [3.0, 3.0, 40.0, NAN]),
        ("min(x, lo, hi)", [-5.0, 2.0, 3.0, NAN]),
        ("max(x, lo, 0)", [0.0, 2.5, 40.0, NAN]),
        ("max(lo, hi)", [10.0, 3.0, 12.0, NAN]),
        ("abs(x)", [5.0, 2.5, 40.0, NAN]),
        ("round(x)", [-5.0, 2.0, 40.0, NAN]),
        ("round(x / 3, 2)", [-1.67, 0.83, 13.33, NAN]),
        ("round(x * 10, -2)", [-0.0, 0.0, 400.0, NAN]),
        ("log1p(abs(x) - 1)", [math.log1p(4), math.log1p(1.5), math.log1p(39), NAN]),
        ("log1p(x)", [NAN, math.log1p(2.5), math.log1p(40), NAN]),
        ("log1p(lo - 1)", [NAN, math.log1p(1), math.log1p(2), math.log1p(3)]),
    ],
)
def test_functions(text: str, want: list[float]) -> None:
    got = run(text, x=[-5.0, 2.5, 40.0, NAN], lo=[-1.0, 2.0, 3.0, 4.0], hi=[10.0, 3.0, 12.0, NAN])
    assert same(got, want), got


def test_min_max_propagate_missing_unlike_sql() -> None:
    assert same(run("min(x, 3)", x=[NAN, 1.0]), [NAN, 1.0])
    assert same(run("max(3, x)", x=[NAN, 1.0]), [NAN, 3.0])


def test_clip_with_crossed_bounds() -> None:
    with pytest.raises(ExpressionError, match="lower bound is above"):
        parse("clip(x, 10, 0)")
    with pytest.raises(DataError, match="lower bound is above"):
        run("clip(x, lo, 0)", x=[1.0, 2.0], lo=[0.0, 5.0])


# ---- constants, names, results ----------------------------------------------------------


def test_constants_broadcast_onto_the_index() -> None:
    index = pd.Index(["acme", "globex", "initech"], name="account_id")
    number = parse("1 + 2 * 3").evaluate({}, index)
    assert number.index.equals(index)
    assert number.dtype == np.float64
    assert number.tolist() == [7.0, 7.0, 7.0]
    flag = predicate(parse("'a' == 'a'"), {}, index)
    assert flag.tolist() == [True, True, True]
    assert flag.dtype == np.dtype(bool)
    assert parse("'x'").evaluate({}, index).tolist() == ["x", "x", "x"]


def test_scalar_columns_broadcast() -> None:
    index = pd.RangeIndex(2)
    columns = {"x": pd.Series([1.0, 5.0]), "limit": 2, "tier": "SMB", "gone": None}
    assert parse("x * limit").evaluate(columns, index).tolist() == [2.0, 10.0]
    assert predicate(parse("x > limit and tier == 'SMB'"), columns, index).tolist() == [False, True]
    assert predicate(parse("is_missing(gone)"), columns, index).tolist() == [True, True]


def test_results_keep_the_given_index() -> None:
    index = pd.Index([10, 20, 30])
    columns = {"x": pd.Series([1.0, 2.0, 3.0], index=index)}
    assert parse("x / 2").evaluate(columns, index).index.equals(index)
    assert predicate(parse("x > 1"), columns, index).index.equals(index)


def test_empty_frame() -> None:
    index = pd.RangeIndex(0)
    columns = {"x": pd.Series([], dtype="float64"), "t": pd.Series([], dtype="str")}
    assert parse("x / 0 + 1").evaluate(columns, index).tolist() == []
    assert predicate(parse("t == 'a' and x > 1"), columns, index).tolist() == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("logins_30d / seats", {"logins_30d", "seats"}),
        (
            "clip(0.6*adoption + 0.4*sentiment - 5*urgent_tickets_90d_value, 0, 100)",
            {"adoption", "sentiment", "urgent_tickets_90d_value"},
        ),
        ("priority in ['urgent', 'high']", {"priority"}),
        ("is_missing(x) or min(a, b) > max(a, c)", {"x", "a", "b", "c"}),
        ("round(log1p(abs(v)), 2)", {"v"}),
        ("1 + 2", set()),
        ("min", {"min"}),
    ],
)
def test_names(text: str, names: set[str]) -> None:
    assert parse(text).names == frozenset(names)


def test_expression_is_a_frozen_value() -> None:
    expr = parse("a + 1")
    assert isinstance(expr, Expression)
    assert expr.text == "a + 1"
    assert expr == parse("a + 1")
    assert hash(expr) == hash(parse("a + 1"))
    with pytest.raises(AttributeError):
        expr.text = "b"  # type: ignore[misc]


def test_categorical_column_compares_by_its_values() -> None:
    tier = pd.Series(["SMB", "Enterprise", None], dtype="category")
    assert flags("tier == 'SMB' or tier in ['Enterprise']", tier=tier) == [True, True, False]


# ---- data errors at evaluation ----------------------------------------------------------


def test_unknown_name_is_a_data_error_naming_expression_and_columns() -> None:
    with pytest.raises(DataError) as info:
        parse("seats + logins / bogus").evaluate({"seats": pd.Series([1])}, pd.RangeIndex(1))
    assert str(info.value) == (
        "cannot evaluate expression \"seats + logins / bogus\": no column named 'bogus', 'logins'"
    )
    assert info.value.exit_code == 65


def test_text_compared_with_number_is_a_data_error() -> None:
    with pytest.raises(DataError) as info:
        run("tier > 3", tier=pd.Series(["SMB", "Enterprise"], dtype="str"))
    assert str(info.value) == ('cannot evaluate expression "tier > 3": cannot compare tier (text) with 3 (number)')
    with pytest.raises(DataError, match=r"cannot compare seats \(number\) with \['a'\] \(text\)"):
        run("seats in ['a']", seats=[1, 2])
    with pytest.raises(DataError, match=r"cannot compare when \(date/time\) with 1 \(number\)"):
        run("when == 1", when=pd.Series(pd.to_datetime(["2026-01-01"])))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tier * 2", "tier is text, not a number"),
        ("when + 1", "when is date/time, not a number"),
        ("seats and tier == 'a'", "seats is number, not true/false"),
        ("not tier", "tier is text, not true/false"),
        ("when > 'not a date'", "cannot read 'not a date' as a date/time"),
        ("when > '31/01/2026'", "cannot read '31/01/2026' as a date/time"),
        ("m == 'a'", r"cannot compare m \(mixed values\) with 'a' \(text\)"),
        ("gap * 2", "gap is values of dtype timedelta64"),
        ("clip(tier, 0, 1)", "tier is text, not a number"),
    ],
)
def test_wrong_types_are_data_errors(text: str, message: str) -> None:
    columns = {
        "tier": pd.Series(["a", "b"], dtype="str"),
        "seats": pd.Series([1, 2]),
        "when": pd.Series(pd.to_datetime(["2026-01-01", "2026-01-02"])),
        "m": pd.Series(["a", 1], dtype=object),
        "gap": pd.Series(pd.to_timedelta(["1D", "2D"])),
    }
    with pytest.raises(DataError, match=message) as info:
        parse(text).evaluate(columns, pd.RangeIndex(2))
    assert f'expression "{text}"' in str(info.value)


def test_predicate_rejects_non_boolean_results() -> None:
    with pytest.raises(DataError, match='expression "x \\+ 1" must give true/false, but it gives'):
        flags("x + 1", x=[1.0])


def test_misaligned_column_is_a_data_error() -> None:
    with pytest.raises(DataError, match="not aligned"):
        parse("x + 1").evaluate({"x": pd.Series([1.0], index=[5])}, pd.RangeIndex(1))


# ---- rejected at parse time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("__import__('os').system('x')", 1, "attribute access is not allowed"),
        ("().__class__", 1, "attribute access is not allowed"),
        ("a.b > 1", 1, "attribute access is not allowed"),
        ("a**2", 1, "operator ** is not allowed"),
        ("x + y ** 2", 5, "operator ** is not allowed"),
        ("a // 2", 1, "operator // is not allowed"),
        ("1 + a % 2", 5, "operator % is not allowed"),
        ("a & b", 1, "operator & is not allowed"),
        ("~a", 1, "operator ~ is not allowed"),
        ("a is b", 1, "operator is is not allowed"),
        ("lambda: 1", 1, "lambda is not allowed"),
        ("[x for x in y]", 1, "comprehensions are not allowed"),
        ('f"{a}"', 1, "f-strings are not allowed"),
        ("a if b else c", 1, "if-expressions are not allowed"),
        ("open('f')", 1, "unknown function 'open'"),
        ("x > 0 and eval('1')", 11, "unknown function 'eval'"),
        ("x[0]", 1, "subscripts are not allowed"),
        ("None", 1, "None is not allowed"),
        ("x == None", 6, "None is not allowed"),
        ("{1: 2}", 1, "dict literals are not allowed"),
        ("{1}", 1, "set literals are not allowed"),
        ("[1, 2]", 1, "lists are only allowed after 'in'"),
        ("(x := 1)", 2, "assignment (:=) is not allowed"),
        ("max(*a)", 5, "starred arguments are not allowed"),
        ("max(a, b=1)", 8, "keyword arguments are not allowed"),
        ("b'x'", 1, "bytes constants are not allowed"),
        ("1j", 1, "complex constants are not allowed"),
        ("...", 1, "ellipsis constants are not allowed"),
        ("x in y", 6, "'in' needs a list of constants"),
        ("x in [y]", 7, "only text, number or True/False constants"),
        ("x in ['a', 1]", 6, "cannot mix text and numbers"),
        ("a < b in [1]", 1, "'in' cannot be chained"),
        ("clip(x)", 1, "clip() takes 3 arguments, not 1"),
        ("min(x)", 1, "min() takes at least 2 arguments, not 1"),
        ("round(x, y)", 10, "whole-number constant"),
        ("round(x, 1.5)", 10, "whole-number constant"),
        ("(lambda: 1)()", 2, "lambda is not allowed"),
        ("'a'()", 1, "only the built-in functions can be called"),
        ("1e999", 1, "number is too large"),
        ("a +", 4, "syntax error"),
        ("x == 'é' and a.b", 14, "attribute access is not allowed"),
        ("  a.b", 3, "attribute access is not allowed"),
        ("(a +\n b.c)", 7, "attribute access is not allowed"),
    ],
)
def test_rejected_constructs(text: str, column: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    error = info.value
    assert reason in error.reason
    assert (error.text, error.column) == (text, column)
    assert isinstance(error, ConfigError)
    assert error.exit_code == 78


def test_error_message_format() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("a.b > 1")
    assert str(info.value) == ('invalid expression "a.b > 1" at column 1: attribute access is not allowed')


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "expression is empty"),
        ("   ", "expression is empty"),
        (42, "expected text, got int"),
        (None, "expected text, got NoneType"),
        ("(" * 300 + "1" + ")" * 300, "syntax error"),
        ("-" * 500 + "1", "nested too deeply"),
        ("a" + " + a" * 3000, "longer than 5000 characters"),
    ],
)
def test_unusable_input(value: Any, reason: str) -> None:
    with pytest.raises(ExpressionError, match=reason):
        parse(value)


def test_long_flat_expressions_are_fine() -> None:
    text = " + ".join(["a"] * 90)
    assert run(text, a=[1.0]) == [90.0]


# ---- properties -------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(finite, finite)
def test_addition_of_literals_matches_python(a: float, b: float) -> None:
    got = parse(str(a) + " + " + str(b)).evaluate({}, pd.RangeIndex(1)).iloc[0]
    assert got == a + b


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), min_size=1, max_size=20), finite, finite)
def test_clip_stays_within_bounds(values: list[float], lo: float, hi: float) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    x = pd.Series(values)
    got = parse(f"clip(x, {lo!r}, {hi!r})").evaluate({"x": x}, x.index)
    present = got.notna()
    assert (present == x.notna()).all()
    assert ((got[present] >= lo) & (got[present] <= hi)).all()
