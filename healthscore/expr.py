"""A small, safe expression language evaluated over whole pandas columns.

Used by the config for row filters, derived metrics, formulas and conditions. Text is parsed
with `ast.parse` and checked against an allow-list, then compiled once into closures that
work on whole Series; nothing the user writes is ever run as Python.

Missing values: arithmetic with a missing value gives missing, and division by zero gives
missing (never inf). Every comparison (`==`, `!=`, `<`, `in`, `not in`, ...) involving a
missing value is False: missing is neither equal nor unequal to anything. `and`/`or`/`not`
count missing as False, so `not (x == 1)` is True where x is missing.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, NoReturn, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_list_like,
    is_numeric_dtype,
    is_object_dtype,
)

from healthscore.errors import ConfigError, DataError

__all__ = ["Expression", "ExpressionError", "parse", "predicate"]

MAX_LENGTH = 5000
MAX_DEPTH = 100

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

NUMBER, FLAG, TEXT, TIME, EMPTY = "number", "true/false", "text", "date/time", "all missing"
_OBJECT_KINDS = {"string": TEXT, "boolean": FLAG, "datetime": TIME, "datetime64": TIME, "empty": EMPTY}
_OBJECT_KINDS.update(dict.fromkeys(["integer", "floating", "decimal", "mixed-integer-float"], NUMBER))

_REFUSED = {  # reasons for syntax outside the allow-list, by ast node type
    "Attribute": "attribute access is not allowed",
    "Subscript": "subscripts are not allowed",
    "Lambda": "lambda is not allowed",
    "JoinedStr": "f-strings are not allowed",
    "NamedExpr": "assignment (:=) is not allowed",
    "Starred": "starred arguments are not allowed",
    "IfExp": "if-expressions are not allowed",
    "Dict": "dict literals are not allowed",
    "Set": "set literals are not allowed",
    "List": "lists are only allowed after 'in'",
    "Tuple": "tuples are only allowed after 'in'",
}
_REFUSED.update(dict.fromkeys(["ListComp", "SetComp", "DictComp", "GeneratorExp"], "comprehensions are not allowed"))
_SYMBOLS: dict[type[ast.AST], str] = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@"}
_SYMBOLS.update({ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"})
_SYMBOLS.update({ast.Is: "is", ast.IsNot: "is not"})
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _divide(a: Floats, b: Floats) -> Floats:
    return np.where(b == 0, np.nan, a / b)


def _log1p(x: Floats) -> Floats:
    return np.where(x > -1, np.log1p(x), np.nan)


def _clip(x: Floats, lo: Floats, hi: Floats) -> Floats:
    if np.any(lo > hi):
        raise _Mismatch("clip() lower bound is above its upper bound")
    return np.minimum(np.maximum(x, lo), hi)


_ARITH: dict[type[ast.operator], Callable[[Floats, Floats], Floats]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _divide,
}
_NUMERIC_FUNCTIONS: dict[str, Callable[[list[Floats]], Floats]] = {
    "min": lambda xs: reduce(np.minimum, xs),
    "max": lambda xs: reduce(np.maximum, xs),
    "abs": lambda xs: np.abs(xs[0]),
    "log1p": lambda xs: _log1p(xs[0]),
    "clip": lambda xs: _clip(*xs),
}
_ARITY: dict[str, tuple[int, int | None]] = {  # (fewest, most) arguments; None: no limit
    "is_missing": (1, 1),
    "abs": (1, 1),
    "log1p": (1, 1),
    "round": (1, 2),
    "clip": (3, 3),
    "min": (2, None),
    "max": (2, None),
}


class ExpressionError(ConfigError):
    """A disallowed or malformed expression; `text`, `column` (1-based position in the text)
    and `reason` say what and where."""

    def __init__(self, text: str, column: int, reason: str) -> None:
        super().__init__(f'invalid expression "{text}" at column {column}: {reason}')
        self.text, self.column, self.reason = text, column, reason


class _Mismatch(Exception):
    """Data an operation cannot use; `Expression.evaluate` turns it into a DataError."""


@dataclass(frozen=True)
class _Ctx:
    columns: Mapping[str, Any]
    index: pd.Index


@dataclass(frozen=True)
class _Node:
    run: Callable[[_Ctx], pd.Series]
    label: str  # source text of the node, for error messages

    def floats(self, ctx: _Ctx) -> Floats:
        return _floats(self.run(ctx), self.label)

    def truth(self, ctx: _Ctx) -> Bools:
        return _truth(self.run(ctx), self.label)


@dataclass(frozen=True)
class Expression:
    """A checked, compiled expression; `names` holds every column name it reads."""

    text: str
    names: frozenset[str]
    _root: _Node = field(repr=False, compare=False)

    def evaluate(self, columns: Mapping[str, Any], index: pd.Index) -> pd.Series:
        """Evaluate over `columns` (Series aligned on `index`, or scalars); returns a Series
        on `index`. Raises DataError naming the expression if the data does not fit it."""
        absent = sorted(name for name in self.names if name not in columns)
        if absent:
            raise DataError(
                f'cannot evaluate expression "{self.text}": no column named ' + ", ".join(map(repr, absent))
            )
        try:
            with np.errstate(all="ignore"):  # overflow gives inf, 0/0 and log1p(<-1) give NaN
                return self._root.run(_Ctx(columns, index))
        except _Mismatch as exc:
            raise DataError(f'cannot evaluate expression "{self.text}": {exc}') from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise DataError(f'cannot evaluate expression "{self.text}": {exc}') from exc


def predicate(expr: Expression, columns: Mapping[str, Any], index: pd.Index) -> pd.Series:
    """Evaluate `expr` as a row test: a numpy-bool Series on `index`, missing counted as False.
    Raises DataError if the result is not true/false."""
    result = expr.evaluate(columns, index)
    try:
        return pd.Series(_truth(result, "the result"), index=index, dtype=bool)
    except _Mismatch:
        raise DataError(f'expression "{expr.text}" must give true/false, but it gives {_kind(result)}') from None


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expression:
    """Check and compile `text`; raises ExpressionError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ExpressionError(repr(text), 1, f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError(text, 1, "expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(text, MAX_LENGTH + 1, f"longer than {MAX_LENGTH} characters")
    body = text.lstrip()
    lead = len(text) - len(body)
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        if exc.offset:
            column = lead + _offset(body, exc.lineno or 1, exc.offset - 1) + 1
        else:  # the text ended too early
            column = len(text.rstrip()) + 1
        raise ExpressionError(text, column, f"syntax error: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL characters
        raise ExpressionError(text, 1, str(exc)) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(text, 1, "expression is nested too deeply") from None
    compiler = _Compiler(text, body, lead)
    root = compiler.compile(tree.body)
    return Expression(text, frozenset(compiler.names), root)


def _offset(source: str, lineno: int, char_col: int) -> int:
    """0-based offset in `source` of a 1-based line and 0-based character column."""
    return sum(len(line) + 1 for line in source.split("\n")[: lineno - 1]) + char_col


def _number_literal(node: ast.expr) -> float | None:
    """The value of a finite number constant, optionally signed; None for anything else."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign, node = (-1.0 if isinstance(node.op, ast.USub) else 1.0), node.operand
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            value = sign * float(value)
        except OverflowError:
            return None
        return value if math.isfinite(value) else None
    return None


class _Compiler:
    """Checks a syntax tree against the allow-list and builds `_Node`s; collects names."""

    def __init__(self, text: str, body: str, lead: int) -> None:
        self.text, self.body, self.lead = text, body, lead
        self.names: set[str] = set()
        self.depth = 0

    def fail(self, node: ast.AST, reason: str) -> NoReturn:
        lineno, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        line = self.body.split("\n")[lineno - 1]
        char_col = len(line.encode()[:col].decode(errors="ignore"))  # col_offset counts bytes
        raise ExpressionError(self.text, self.lead + _offset(self.body, lineno, char_col) + 1, reason)

    def node(self, tree: ast.AST, run: Callable[[_Ctx], pd.Series]) -> _Node:
        return _Node(run, ast.get_source_segment(self.body, tree) or self.text)

    def compile(self, tree: ast.expr) -> _Node:
        name = type(tree).__name__
        method = getattr(self, "c_" + name, None)
        if method is None:
            self.fail(tree, _REFUSED.get(name, f"{name} is not allowed"))
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                self.fail(tree, "expression is nested too deeply")
            return cast(Callable[[ast.expr], _Node], method)(tree)
        finally:
            self.depth -= 1

    def c_Constant(self, tree: ast.Constant) -> _Node:
        value = tree.value
        if isinstance(value, (bool, str)):
            dtype = bool if isinstance(value, bool) else "str"
            return self.node(tree, lambda ctx: pd.Series(value, index=ctx.index, dtype=dtype))
        number = _number_literal(tree)
        if value is None:
            self.fail(tree, "None is not allowed")
        if number is None:
            big = isinstance(value, (int, float))
            self.fail(tree, "number is too large" if big else f"{type(value).__name__} constants are not allowed")
        return self.node(tree, lambda ctx: pd.Series(number, index=ctx.index, dtype="float64"))

    def c_Name(self, tree: ast.Name) -> _Node:
        name = tree.id
        self.names.add(name)
        return self.node(tree, lambda ctx: _column(ctx, name))

    def c_UnaryOp(self, tree: ast.UnaryOp) -> _Node:
        if isinstance(tree.op, ast.Invert):
            self.fail(tree, "operator ~ is not allowed")
        operand, op = self.compile(tree.operand), tree.op
        if isinstance(op, ast.Not):
            return self.node(tree, lambda ctx: _bools(~operand.truth(ctx), ctx))
        sign = -1.0 if isinstance(op, ast.USub) else 1.0
        return self.node(tree, lambda ctx: _floats_series(sign * operand.floats(ctx), ctx))

    def c_BinOp(self, tree: ast.BinOp) -> _Node:
        if type(tree.op) not in _ARITH:
            self.fail(tree, f"operator {_SYMBOLS.get(type(tree.op), '?')} is not allowed")
        op = _ARITH[type(tree.op)]
        left, right = self.compile(tree.left), self.compile(tree.right)
        return self.node(tree, lambda ctx: _floats_series(op(left.floats(ctx), right.floats(ctx)), ctx))

    def c_BoolOp(self, tree: ast.BoolOp) -> _Node:
        parts = [self.compile(value) for value in tree.values]
        join = operator.and_ if isinstance(tree.op, ast.And) else operator.or_
        return self.node(tree, lambda ctx: _bools(reduce(join, (part.truth(ctx) for part in parts)), ctx))

    def c_Compare(self, tree: ast.Compare) -> _Node:
        if isinstance(tree.ops[0], (ast.In, ast.NotIn)) and len(tree.ops) == 1:
            return self.membership(tree)
        for op in tree.ops:
            if isinstance(op, (ast.In, ast.NotIn)):
                self.fail(tree, "'in' cannot be chained with other comparisons")
            if type(op) not in _COMPARE:
                self.fail(tree, f"operator {_SYMBOLS.get(type(op), '?')} is not allowed")
        tests = [_COMPARE[type(op)] for op in tree.ops]
        operands = [self.compile(tree.left), *map(self.compile, tree.comparators)]

        texts = [isinstance(t, ast.Constant) and isinstance(t.value, str) for t in (tree.left, *tree.comparators)]
        if len(tests) == 1 and sum(texts) == 1:  # column OP 'text': compared in place, not as two columns
            at = texts.index(True)
            value = str(cast(ast.Constant, (tree.left, *tree.comparators)[at]).value)
            return self.node(tree, self.text_test(tests[0], operands, at, value))

        def run(ctx: _Ctx) -> pd.Series:
            values = [operand.run(ctx) for operand in operands]
            hits = [
                _compare(test, values[i], values[i + 1], operands[i].label, operands[i + 1].label)
                for i, test in enumerate(tests)
            ]
            return _bools(reduce(operator.and_, hits), ctx)

        return self.node(tree, run)

    def text_test(
        self, test: Callable[[Any, Any], Any], operands: list[_Node], at: int, text: str
    ) -> Callable[[_Ctx], pd.Series]:
        """A comparison with the text constant `text` (operand `at`): a text column is compared
        with the text itself (in place, in Arrow); anything else as `_compare` does."""
        other_node = operands[1 - at]

        def run(ctx: _Ctx) -> pd.Series:
            other = other_node.run(ctx)
            if _kind(other) != TEXT:
                a, b = (operand.run(ctx) for operand in operands)
                return _bools(_compare(test, a, b, operands[0].label, operands[1].label), ctx)
            hits = test(text, other) if at == 0 else test(other, text)
            return _bools(hits.to_numpy(dtype=bool, na_value=False) & other.notna().to_numpy(), ctx)

        return run

    def membership(self, tree: ast.Compare) -> _Node:
        box = tree.comparators[0]
        if not isinstance(box, (ast.List, ast.Tuple)):
            self.fail(box, "'in' needs a list of constants, like x in ['a', 'b']")
        values = tuple(self.literal(element) for element in box.elts)
        if len({isinstance(value, str) for value in values}) > 1:
            self.fail(box, "an 'in' list cannot mix text and numbers")
        left, negate = self.compile(tree.left), isinstance(tree.ops[0], ast.NotIn)
        box_label = ast.get_source_segment(self.body, box) or "the list"

        def run(ctx: _Ctx) -> pd.Series:
            series = left.run(ctx)
            hits = _isin(series, values, left.label, box_label)
            return _bools(~hits & series.notna().to_numpy() if negate else hits, ctx)

        return self.node(tree, run)

    def literal(self, tree: ast.expr) -> str | float | bool:
        if isinstance(tree, ast.Constant) and isinstance(tree.value, (str, bool)):
            return tree.value
        number = _number_literal(tree)
        if number is None:
            self.fail(tree, "only text, number or True/False constants are allowed in the list")
        return number

    def c_Call(self, tree: ast.Call) -> _Node:
        if not isinstance(tree.func, ast.Name):
            self.compile(tree.func)
            self.fail(tree, "only the built-in functions can be called")
        name, args = tree.func.id, tree.args
        if name not in _ARITY:
            self.fail(tree, f"unknown function {name!r} (allowed: {', '.join(sorted(_ARITY))})")
        for arg in args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "starred arguments are not allowed")
        if tree.keywords:
            self.fail(tree.keywords[0], "keyword arguments are not allowed")
        low, high = _ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            wanted = "at least 2" if high is None else str(low) if low == high else f"{low} or {high}"
            self.fail(tree, f"{name}() takes {wanted} arguments, not {len(args)}")
        if name == "round":
            return self.rounding(tree)
        nodes = [self.compile(arg) for arg in args]
        if name == "is_missing":
            return self.node(tree, lambda ctx: _bools(nodes[0].run(ctx).isna().to_numpy(), ctx))
        if name == "clip":
            low_bound, high_bound = _number_literal(args[1]), _number_literal(args[2])
            if low_bound is not None and high_bound is not None and low_bound > high_bound:
                self.fail(tree, "clip() lower bound is above its upper bound")
        function = _NUMERIC_FUNCTIONS[name]
        return self.node(tree, lambda ctx: _floats_series(function([node.floats(ctx) for node in nodes]), ctx))

    def rounding(self, tree: ast.Call) -> _Node:
        digits = _number_literal(tree.args[1]) if len(tree.args) == 2 else 0.0
        if digits is None or not digits.is_integer():
            self.fail(tree.args[1], "round() needs a whole-number constant for its digits")
        value, ndigits = self.compile(tree.args[0]), int(digits)
        return self.node(tree, lambda ctx: _floats_series(np.round(value.floats(ctx), ndigits), ctx))


def _column(ctx: _Ctx, name: str) -> pd.Series:
    value = ctx.columns[name]
    if not isinstance(value, pd.Series):
        broadcast = value if is_list_like(value) else [value] * len(ctx.index)
        value = pd.Series(broadcast, index=ctx.index)
    elif not value.index.equals(ctx.index):
        raise _Mismatch(f"column {name!r} is not aligned with the rows being evaluated")
    if isinstance(value.dtype, pd.CategoricalDtype):
        value = value.astype(value.dtype.categories.dtype)
    return value


def _kind(series: pd.Series) -> str:
    """What a column holds, in words used by error messages."""
    dtype = series.dtype
    if is_bool_dtype(dtype):
        return FLAG
    if is_numeric_dtype(dtype):
        return NUMBER
    if is_datetime64_any_dtype(dtype):
        return TIME
    if isinstance(dtype, pd.StringDtype):
        return TEXT
    if is_object_dtype(dtype):
        return _OBJECT_KINDS.get(infer_dtype(series, skipna=True), "mixed values")
    return f"values of dtype {dtype}"


def _floats(series: pd.Series, label: str) -> Floats:
    kind = _kind(series)
    if kind not in (NUMBER, FLAG, EMPTY):
        raise _Mismatch(f"{label} is {kind}, not a number")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _truth(series: pd.Series, label: str) -> Bools:
    kind = _kind(series)
    if kind == EMPTY:
        return np.zeros(len(series), dtype=bool)
    if kind != FLAG:
        raise _Mismatch(f"{label} is {kind}, not true/false")
    return series.to_numpy(dtype=bool, na_value=False)


def _floats_series(values: Floats, ctx: _Ctx) -> pd.Series:
    return pd.Series(values, index=ctx.index, dtype="float64")


def _bools(values: Bools, ctx: _Ctx) -> pd.Series:
    return pd.Series(values, index=ctx.index, dtype=bool)


def _as_time(series: pd.Series, label: str, zone: Any = None) -> pd.Series:
    """`series` as datetimes (text must be ISO 8601); naive ones are put in time zone `zone` if given."""
    try:
        times = pd.to_datetime(series, format="ISO8601")
    except (TypeError, ValueError):
        raise _Mismatch(f"cannot read {label} as a date/time (write dates like '2026-01-31')") from None
    return times.dt.tz_localize(zone) if zone is not None and times.dt.tz is None else times


def _compare(test: Callable[[Any, Any], Any], a: pd.Series, b: pd.Series, la: str, lb: str) -> Bools:
    """Element-wise `test(a, b)`; False wherever either side is missing."""
    ka, kb = _kind(a), _kind(b)
    hits = np.zeros(len(a), dtype=bool)
    if EMPTY in (ka, kb):
        return hits
    x: Any
    y: Any
    if ka in (NUMBER, FLAG) and kb in (NUMBER, FLAG):
        x, y = _floats(a, la), _floats(b, lb)
    elif ka == kb == TEXT:
        x, y = a.array, b.array
    elif {ka, kb} <= {TEXT, TIME}:
        x, y = _as_time(a, la), _as_time(b, lb)
        x, y = _as_time(x, la, y.dt.tz).array, _as_time(y, lb, x.dt.tz).array
    else:
        raise _Mismatch(f"cannot compare {la} ({ka}) with {lb} ({kb})")
    present = a.notna().to_numpy() & b.notna().to_numpy()
    if present.any():
        hits[present] = np.asarray(test(x[present], y[present]), dtype=bool)
    return hits


def _isin(series: pd.Series, values: tuple[str | float | bool, ...], label: str, box: str) -> Bools:
    """Element-wise membership in constant `values`; False wherever `series` is missing."""
    kind = _kind(series)
    if kind == EMPTY or not values:
        return np.zeros(len(series), dtype=bool)
    text = isinstance(values[0], str)
    if kind in (NUMBER, FLAG) and not text:
        hits = np.isin(_floats(series, label), np.array(values, dtype=np.float64))
    elif kind == TEXT and text:
        hits = series.isin(values).to_numpy(dtype=bool)
    elif kind == TIME and text:
        wanted = _as_time(pd.Series(values, dtype=object), box, series.dt.tz)
        hits = series.isin(wanted).to_numpy(dtype=bool)
    else:
        raise _Mismatch(f"cannot compare {label} ({kind}) with {box} ({TEXT if text else NUMBER})")
    return hits & series.notna().to_numpy()
