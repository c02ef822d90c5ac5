"""The expression language of `expr.py` compiled to Ibis expressions, for `engine: ibis`.

`where` and `of_rows` filters then run on the backend (DuckDB, Spark, a warehouse) inside the
aggregation query instead of over pandas columns. The text is first checked by `expr.parse`
(the same allow-list, the same errors), then its syntax tree is walked again here to build
an Ibis expression. The semantics are those of `expr.py`:

- arithmetic on numbers (true/false count as 1/0); division by zero gives missing;
- every comparison (`==`, `<`, `in`, `not in` ...) involving a missing value is false;
- `and` / `or` / `not` count missing as false;
- text compared with a date/time column is read as an ISO 8601 date/time (UTC when it has
  no offset);
- `is_missing`, `abs`, `log1p`, `clip`, `min`, `max` and `round` (half to even, like numpy)
  with missing in, missing out.

What a column holds (number, true/false, text, date/time, all missing) is known from the
table's schema, so type mismatches are reported when the query is built, as the DataError
`Expression.evaluate` raises. Float columns are expected with NaN already turned into
missing (the engine does so when it reads a source), as pandas reads them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import pandas as pd

from healthscore.errors import DataError
from healthscore.expr import EMPTY, FLAG, NUMBER, TEXT, TIME, parse

__all__ = ["column_kind", "compile_predicate", "utc_literal"]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_EXACT_FLOAT = 2.0**52  # from here on every float is a whole number: round() leaves it


class _Mismatch(Exception):
    """Data an operation cannot use; reported as the DataError `Expression.evaluate` raises."""


def column_kind(dtype: Any) -> str:
    """What an Ibis column type holds, in the words of `expr.py`'s messages."""
    if dtype.is_boolean():
        return FLAG
    if dtype.is_numeric():
        return NUMBER
    if dtype.is_string():
        return TEXT
    if dtype.is_timestamp() or dtype.is_date():
        return TIME
    if dtype.is_null() or (dtype.is_unknown() and 'kind="NULL"' in str(dtype)):  # DuckDB's NULL type
        return EMPTY
    return f"values of type {dtype}"


@dataclass(frozen=True)
class _Value:
    """A compiled node: the Ibis expression, what it holds, its source text, and its value
    when it is a constant (for dates written as text, and clip bounds)."""

    expr: Any
    kind: str
    label: str
    constant: str | float | bool | None = None


def compile_predicate(text: str, table: Any, kinds: Mapping[str, str] | None = None) -> Any:
    """`text` as an Ibis boolean expression over `table`, never missing (missing counts as
    false), like `expr.predicate`. `kinds` may override what columns hold (column -> kind).

    Raises ExpressionError (a ConfigError) for text outside the language, and DataError if a
    column is absent, the columns' types do not fit the expression, or the result is not
    true/false.
    """
    import ibis

    expression = parse(text)  # the allow-list and its error messages
    absent = sorted(name for name in expression.names if name not in table.columns)
    if absent:
        raise DataError(f'cannot evaluate expression "{text}": no column named ' + ", ".join(map(repr, absent)))
    body = text.lstrip()
    known = {name: column_kind(table[name].type()) for name in expression.names}
    known.update({k: v for k, v in (kinds or {}).items() if k in known})
    try:
        value = _Compiler(body, table, known).compile(ast.parse(body, mode="eval").body)
    except _Mismatch as exc:
        raise DataError(f'cannot evaluate expression "{text}": {exc}') from None
    if value.kind == EMPTY:
        return ibis.literal(False)
    if value.kind != FLAG:
        raise DataError(f'expression "{text}" must give true/false, but it gives {value.kind}')
    return value.expr.fill_null(False)


class _Compiler:
    """Walks a syntax tree `expr.parse` accepted and builds `_Value`s over one table."""

    def __init__(self, body: str, table: Any, kinds: Mapping[str, str]) -> None:
        import ibis

        self.ibis, self.body, self.table, self.kinds = ibis, body, table, kinds

    def label(self, tree: ast.AST) -> str:
        return ast.get_source_segment(self.body, tree) or self.body

    def compile(self, tree: ast.expr) -> _Value:
        method: Callable[[Any], _Value] | None = getattr(self, "c_" + type(tree).__name__, None)
        if method is None:  # parse() refuses everything without a method here
            self.refuse(f"{type(tree).__name__} is not supported")
        return method(tree)

    def refuse(self, reason: str) -> NoReturn:
        raise _Mismatch(reason)

    # --- leaves -------------------------------------------------------------------------

    def c_Constant(self, tree: ast.Constant) -> _Value:
        value, label = tree.value, self.label(tree)
        if isinstance(value, bool):
            return _Value(self.ibis.literal(value), FLAG, label, value)
        if isinstance(value, str):
            return _Value(self.ibis.literal(value, type="string"), TEXT, label, value)
        assert isinstance(value, (int, float))  # parse() admits no other constants
        number = float(value)
        return _Value(self.ibis.literal(number, type="float64"), NUMBER, label, number)

    def c_Name(self, tree: ast.Name) -> _Value:
        kind = self.kinds[tree.id]
        column = self.table[tree.id]
        if kind == EMPTY:
            column = self.ibis.null().cast("float64")
        return _Value(column, kind, tree.id)

    # --- operators ----------------------------------------------------------------------

    def c_UnaryOp(self, tree: ast.UnaryOp) -> _Value:
        operand, label = self.compile(tree.operand), self.label(tree)
        if isinstance(tree.op, ast.Not):
            return _Value(~self.truth(operand), FLAG, label)
        if isinstance(operand.constant, float) and not isinstance(operand.constant, bool):
            number = -operand.constant if isinstance(tree.op, ast.USub) else operand.constant
            return _Value(self.ibis.literal(number, type="float64"), NUMBER, label, number)
        floats = self.floats(operand)
        return _Value(-floats if isinstance(tree.op, ast.USub) else floats, NUMBER, label)

    def c_BinOp(self, tree: ast.BinOp) -> _Value:
        a, b = self.floats(self.compile(tree.left)), self.floats(self.compile(tree.right))
        op = tree.op
        if isinstance(op, ast.Add):
            result = a + b
        elif isinstance(op, ast.Sub):
            result = a - b
        elif isinstance(op, ast.Mult):
            result = a * b
        else:  # ast.Div: division by zero gives missing, never inf
            result = a / b.nullif(0.0)
        return _Value(result, NUMBER, self.label(tree))

    def c_BoolOp(self, tree: ast.BoolOp) -> _Value:
        parts = [self.truth(self.compile(value)) for value in tree.values]
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if isinstance(tree.op, ast.And) else (result | part)
        return _Value(result, FLAG, self.label(tree))

    def c_Compare(self, tree: ast.Compare) -> _Value:
        if isinstance(tree.ops[0], (ast.In, ast.NotIn)):
            return self.membership(tree)
        operands = [self.compile(tree.left), *map(self.compile, tree.comparators)]
        hits = [self.compare(_COMPARE[type(op)], operands[i], operands[i + 1]) for i, op in enumerate(tree.ops)]
        result = hits[0]
        for hit in hits[1:]:
            result = result & hit
        return _Value(result, FLAG, self.label(tree))

    def compare(self, test: Callable[[Any, Any], Any], a: _Value, b: _Value) -> Any:
        """`test(a, b)` as a never-missing boolean: false wherever either side is missing."""
        kinds = {a.kind, b.kind}
        if EMPTY in kinds:
            return self.ibis.literal(False)
        if kinds <= {NUMBER, FLAG}:
            return test(self.floats(a), self.floats(b)).fill_null(False)
        if kinds == {TEXT}:
            return test(a.expr, b.expr).fill_null(False)
        if kinds <= {TEXT, TIME}:
            return test(self.time(a), self.time(b)).fill_null(False)
        self.refuse(f"cannot compare {a.label} ({a.kind}) with {b.label} ({b.kind})")

    def membership(self, tree: ast.Compare) -> _Value:
        box = tree.comparators[0]
        assert isinstance(box, (ast.List, ast.Tuple))  # parse() allows nothing else after `in`
        values = [self.compile(element).constant for element in box.elts]
        left, negate = self.compile(tree.left), isinstance(tree.ops[0], ast.NotIn)
        text = bool(values) and isinstance(values[0], str)
        box_label = self.label(box)
        if left.kind == EMPTY or not values:
            hits = self.ibis.literal(False)
        elif left.kind in (NUMBER, FLAG) and not text:
            hits = self.floats(left).isin([float(v) for v in values if v is not None])
        elif left.kind == TEXT and text:
            hits = left.expr.isin([str(v) for v in values])
        elif left.kind == TIME and text:
            hits = self.time(left).isin([self.utc(self.timestamp(str(v), box_label)) for v in values])
        else:
            wanted = TEXT if text else NUMBER
            self.refuse(f"cannot compare {left.label} ({left.kind}) with {box_label} ({wanted})")
        hits = hits.fill_null(False)
        if negate:
            present = self.ibis.literal(False) if left.kind == EMPTY else left.expr.notnull()
            hits = ~hits & present
        return _Value(hits, FLAG, self.label(tree))

    # --- functions ----------------------------------------------------------------------

    def c_Call(self, tree: ast.Call) -> _Value:
        assert isinstance(tree.func, ast.Name)  # parse() allows only the built-in functions
        name, label = tree.func.id, self.label(tree)
        if name == "round":
            return self.rounding(tree)
        args = [self.compile(arg) for arg in tree.args]
        if name == "is_missing":
            missing = self.ibis.literal(True) if args[0].kind == EMPTY else args[0].expr.isnull()
            return _Value(missing, FLAG, label)
        if name == "clip" and not all(isinstance(arg.constant, float) for arg in args[1:]):
            self.refuse("under engine ibis clip() needs number constants for its bounds")
        floats = [self.floats(arg) for arg in args]
        if name == "abs":
            result = floats[0].abs()
        elif name == "log1p":
            x = floats[0]
            result = self.ibis.cases((x > -1.0, (x + 1.0).ln()), else_=self.null())
        elif name == "clip":
            result = self.least([self.greatest(floats[:2]), floats[2]])
        else:
            result = self.least(floats) if name == "min" else self.greatest(floats)
        return _Value(result, NUMBER, label)

    def rounding(self, tree: ast.Call) -> _Value:
        """round(x, digits) half to even, as numpy: x scaled by 10**digits, rounded to the
        nearest whole number (ties to the even one), scaled back."""
        digits = int(self.compile(tree.args[1]).constant or 0) if len(tree.args) == 2 else 0
        x = self.floats(self.compile(tree.args[0]))
        scale = 10.0 ** abs(digits)
        y = x * scale if digits >= 0 else x / scale
        low = self.floor(y)
        rest = y - low
        odd = (low - self.floor(low / 2.0) * 2.0) == 1.0
        nearest = self.ibis.cases(
            (rest > 0.5, low + 1.0),
            (rest < 0.5, low),
            (odd, low + 1.0),
            else_=low,
        )
        nearest = self.ibis.cases((y.abs() >= _EXACT_FLOAT, y), else_=nearest)
        result = nearest / scale if digits >= 0 else nearest * scale
        return _Value(result, NUMBER, self.label(tree))

    # --- conversions --------------------------------------------------------------------

    def null(self) -> Any:
        return self.ibis.null().cast("float64")

    def floats(self, value: _Value) -> Any:
        """A value as float64 (true/false as 1/0); a _Mismatch for text or dates."""
        if value.kind == EMPTY:
            return self.null()
        if value.kind == NUMBER:
            return value.expr.cast("float64")
        if value.kind == FLAG:
            return value.expr.cast("int64").cast("float64")
        self.refuse(f"{value.label} is {value.kind}, not a number")

    def truth(self, value: _Value) -> Any:
        """A value as a never-missing boolean (missing is false); a _Mismatch if not true/false."""
        if value.kind == EMPTY:
            return self.ibis.literal(False)
        if value.kind != FLAG:
            self.refuse(f"{value.label} is {value.kind}, not true/false")
        return value.expr.fill_null(False)

    def time(self, value: _Value) -> Any:
        """A date/time value in UTC; text constants are read as ISO 8601, text columns cast."""
        if value.kind == TIME:
            return value.expr.cast("timestamp('UTC')")
        if isinstance(value.constant, str):
            return self.utc(self.timestamp(value.constant, value.label))
        return value.expr.try_cast("timestamp('UTC')")

    def timestamp(self, text: str, label: str) -> pd.Timestamp:
        """ISO 8601 text as a naive UTC timestamp (offsets converted, no offset taken as UTC)."""
        try:
            stamp = pd.Timestamp(pd.to_datetime(text, format="ISO8601"))
        except (TypeError, ValueError):
            self.refuse(f"cannot read {label} as a date/time (write dates like '2026-01-31')")
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp

    def utc(self, stamp: pd.Timestamp) -> Any:
        """A naive UTC timestamp as an Ibis literal of type timestamp('UTC')."""
        return utc_literal(stamp)

    def floor(self, x: Any) -> Any:
        """The largest whole number not above x, as a float (SQL's floor may go through a
        64-bit integer, which large floats overflow): x less its fractional part, which SQL's
        `%` gives with the sign of x."""
        fraction = x % 1.0
        return x - fraction - self.ibis.cases((fraction < 0.0, 1.0), else_=0.0)

    def least(self, values: list[Any]) -> Any:
        """The smallest of `values`, missing if any is (SQL's least skips missing values)."""
        return self.ibis.cases((_any_null(values), self.null()), else_=self.ibis.least(*values))

    def greatest(self, values: list[Any]) -> Any:
        """The largest of `values`, missing if any is."""
        return self.ibis.cases((_any_null(values), self.null()), else_=self.ibis.greatest(*values))


def utc_literal(stamp: pd.Timestamp) -> Any:
    """A naive UTC timestamp as an Ibis literal of type timestamp('UTC'), the type of the
    times the engine reads (`ibis_coerce`)."""
    import ibis

    return ibis.literal(stamp.tz_localize("UTC").to_pydatetime(), type="timestamp('UTC')")


def _any_null(values: list[Any]) -> Any:
    result = values[0].isnull()
    for value in values[1:]:
        result = result | value.isnull()
    return result
