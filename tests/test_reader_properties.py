"""Property and fuzz tests of the readers (hypothesis).

1. Any bytes, as any format, give a SourceData or a HealthscoreError, never U+FFFD.
2. CSV-like (and JSON-lines) text: every non-blank record is a kept row, a rejected row or
   a dropped footer/header, exactly once, and a kept row holds its record's fields.
3. Frames round-trip through `to_csv` (separators, encodings) and `to_parquet`.
4. Salesforce 18-character ids: the suffix checks, separates case variants, is idempotent.
5. `scan_records` agrees with Python's csv module on RFC 4180 text.

Known reader bugs are pinned by minimal reproductions marked xfail(strict=True) at the end
(KNOWN BUGS); where a property's generator steps around one, a comment names the test that
pins it. When a bug is fixed its xfail turns into a failure (strict): remove the mark and
the generator's exclusion.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import lines_of, make_config
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from healthscore.errors import HealthscoreError
from healthscore.keys import salesforce18, salesforce_suffix_ok
from healthscore.models import DEFAULT_NA_VALUES
from healthscore.sources import SourceData, read_source
from healthscore.textfile import scan_records

CSV_READ_AND_MAPPED = pytest.mark.usefixtures("csv_read_and_mapped")  # CSV read into memory, then mapped

KEY = "account_id"
REASONS = frozenset(
    {"too few fields", "too many fields", "malformed json", "empty key", "invalid salesforce id", "missing time"}
)
DROPPED = frozenset({"report footer", "repeated header row"})
FFFD = ("\ufffd".encode(), "\ufffd".encode("utf-16-le"), "\ufffd".encode("utf-16-be"), b"&#65533;", b"&#xfffd;")

# Deterministic (CI-stable): a fixed seed, no example database, no deadline.
BASE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# Properties known to fail (xfail): stop at the first failure, no shrinking (saves time).
NO_SHRINK = (Phase.explicit, Phase.generate)


def examples(n: int, shrink: bool = True) -> settings:
    return settings(BASE, max_examples=n, phases=tuple(Phase) if shrink else NO_SHRINK)


def strings(pieces: str | list[str], min_size: int = 0, max_size: int = 6) -> st.SearchStrategy[str]:
    """Text made of the given pieces (characters, or short strings like CRLF)."""
    return st.lists(st.sampled_from(list(pieces)), min_size=min_size, max_size=max_size).map("".join)


def read_bytes(raw: bytes, filename: str, **source: Any) -> SourceData:
    """Read `raw` saved as `filename` as the only source `s`, keyed by account_id."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / filename).write_bytes(raw)
        source.setdefault("key", KEY)
        config = make_config(
            base,
            accounts={"source": "s"},
            sources={"s": {"path": filename, **source}},
            metrics={"m": {"source": "s", "agg": "count"}},
            groups={"g": {"metrics": ["m"]}},
        )
        return read_source(config, "s")


def text_values(data: SourceData) -> list[str]:
    """Every text the reader returns: column names, text cells, rejected rows' raw text."""
    values = [str(c) for c in data.frame.columns]
    for name in data.frame.columns:
        values += [v for v in data.frame[name].tolist() if isinstance(v, str)]
    return values + [v for v in data.rejects["raw"].tolist() if isinstance(v, str)]


def may_hold_fffd(raw: bytes) -> bool:
    """Whether the file itself spells U+FFFD (plain, gzipped or inside a zip), so that the
    character may rightly be in the data."""
    blobs = [raw]
    with contextlib.suppress(OSError, EOFError, ValueError):
        blobs.append(gzip.decompress(raw))
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            blobs += [zf.read(info) for info in zf.infolist()]
    except Exception:  # any damaged zip: then no member can hold it
        pass
    return any(token in blob.lower() for blob in blobs for token in FFFD)


def check_read_or_error(raw: bytes, filename: str, **source: Any) -> SourceData | None:
    """Read: a SourceData, or None for a HealthscoreError; any other exception fails the
    test. The data holds no U+FFFD the file does not spell, and known reject reasons."""
    try:
        data = read_bytes(raw, filename, **source)
    except HealthscoreError:
        return None
    if not may_hold_fffd(raw):
        assert [v for v in text_values(data) if "\ufffd" in v] == []
    assert set(data.rejects["reason"]) <= REASONS
    assert set(data.dropped) <= DROPPED
    return data


# --- 1. any bytes -------------------------------------------------------------------------


def unzip(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rezip(members: dict[str, bytes]) -> bytes:
    """A zip of the members with fixed timestamps (also in docProps/core.xml): the same
    bytes on every run."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            if name == "docProps/core.xml":
                content = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2026-01-31T00:00:00Z", content)
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 31, 0, 0, 0)), content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def seed_files() -> dict[str, list[bytes]]:
    """Valid files of each format (the fuzzer damages them): text keys, ints with a
    missing value, floats, times, a value with a line break, non-ASCII."""
    frame = pd.DataFrame(
        {
            KEY: ["007", "Acme, Inc.", 'say "hi"', "Café"],
            "n": pd.Series([1, 2, None, 4], dtype="Int64"),
            "x": [1.5, None, -2.25, 0.1],
            "t": pd.to_datetime(pd.Series(["2026-01-02 00:00", "2026-01-03 10:00", None, "2025-12-31 00:00"])),
            "note": ["a\nb", "", None, "é"],
        }
    )
    text = frame.to_csv(index=False)
    parquet, snappy, xlsx = io.BytesIO(), io.BytesIO(), io.BytesIO()
    frame.to_parquet(parquet, index=False, compression=None)  # strings stored as they are
    frame.to_parquet(snappy, index=False)
    frame.to_excel(xlsx, index=False)
    return {
        "csv": [text.encode(), text.encode("utf-16"), text.encode("cp1252"), text.replace(",", ";").encode()],
        "jsonl": [
            frame.to_json(orient="records", lines=True, date_format="iso").encode(),
            b'{"account_id": "A", "a": {"b": [1, 2]}}\n{"account_id": 5, "a": 3}\n',
            b'[{"account_id": "A", "v": 1}, {"account_id": "B"}]',
        ],
        "parquet": [parquet.getvalue(), snappy.getvalue()],
        "xlsx": [rezip(unzip(xlsx.getvalue()))],
    }


SEEDS = seed_files()


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few bytes overwritten, inserted or deleted, or cut short."""
    raw = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "set" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del raw[at : at + draw(st.integers(1, 8))]
        else:
            del raw[at:]
    return bytes(raw)


@st.composite
def zip_member_mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """An xlsx whose zip is intact but one member (XML) is damaged."""
    members = unzip(seed)
    name = draw(st.sampled_from(sorted(members)))
    members[name] = draw(mutated([members[name]]))
    return rezip(members)


TEXTISH_PIECES = [*(bytes([c]) for c in b',;\t|"\n\r aA1{}[]:'), b"\r\n", b"\xc3\xa9", b"\xe9", b"\x00", b"\x1d"]
TEXTISH_BYTES = st.lists(
    st.sampled_from([*TEXTISH_PIECES, b"account_id", b"\xef\xbb\xbf", b"\xff\xfe"]), max_size=30
).map(b"".join)


def fuzz_bytes(filename: str) -> st.SearchStrategy[bytes]:
    """Random bytes, text-like bytes, and damaged valid files of the file's format."""
    fmt = filename.split(".")[1]
    options = [st.binary(max_size=200), TEXTISH_BYTES, mutated(SEEDS[fmt])]
    if filename.endswith(".gz"):
        plain = st.one_of(TEXTISH_BYTES, mutated(SEEDS["csv"]))
        options += [plain.map(lambda b: gzip.compress(b, mtime=0)), mutated([gzip.compress(SEEDS["csv"][0], mtime=0)])]
    if fmt == "xlsx":
        options.append(zip_member_mutated(SEEDS["xlsx"][0]))
    return st.one_of(options)


def fuzz(filename: str, data: st.DataObject) -> None:
    raw = data.draw(fuzz_bytes(filename), label="raw")
    share = data.draw(st.sampled_from([0.01, 1.0]), label="max_reject_share")
    check_read_or_error(raw, filename, max_reject_share=share)


@CSV_READ_AND_MAPPED
@pytest.mark.parametrize("filename", ["x.csv", "x.jsonl", "x.parquet", "x.csv.gz"])
@examples(100)
@given(data=st.data())
def test_any_bytes_are_read_or_a_healthscore_error(filename: str, data: st.DataObject) -> None:
    fuzz(filename, data)


@pytest.mark.parametrize(
    "filename",
    [
        pytest.param("x.xlsx"),
    ],
)
@examples(100, shrink=False)
@given(data=st.data())
def test_any_bytes_are_read_or_a_healthscore_error_known_bugs(filename: str, data: st.DataObject) -> None:
    fuzz(filename, data)


# --- 2. CSV-like text: every record accounted for ----------------------------------------

DELIMITERS = (",", ";", "\t", "|")
PLAIN = strings("aAb01 é-.", max_size=5)
QUOTED = strings([*"aA1 é,;\t|\n", '""', "\r\n"]).map(lambda s: f'"{s}"')
STRAY = st.one_of(  # a quote that opens no field: after a space, after a closing quote, mid-field
    QUOTED.map(lambda q: " " + q), QUOTED.map(lambda q: q + "x"), st.tuples(PLAIN, PLAIN).map('"'.join)
)
NOISE = strings([*',;\t|" aA1é', "\r\n"], max_size=12)
FOOTERS = (
    '"Grand Totals (3 records)"',
    "Total:",
    '"Confidential Information - Do Not Distribute"',
    '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."',
)
NAMES = ("n", "name", "Amount", "note")
SHARES = st.sampled_from([0.01, 1.0, 1.0, 1.0])  # max_reject_share: mostly read on past rejects


def with_line_ends(draw: st.DrawFn, lines: list[str]) -> str:
    """Lines joined by LF or CRLF, the last maybe without one; maybe a BOM in front."""
    ends = [draw(st.sampled_from(["\n", "\r\n"])) for _ in lines]
    ends[-1] = draw(st.sampled_from(["", "\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return bom + "".join(line + end for line, end in zip(lines, ends, strict=True))


@st.composite
def csvish(draw: st.DrawFn, stray_quotes: bool) -> tuple[str, str]:
    """CSV-like text and its delimiter: a header with account_id and 1-3 other names (so it
    shows the delimiter), maybe after blank lines; then rows of about the header's width
    (plain, quoted, empty and NA fields), blank lines, report footers, repeated headers and,
    with `stray_quotes`, fields with a quote that opens nothing and noise lines."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
    names.insert(draw(st.integers(0, len(names))), KEY)
    quote = draw(st.booleans())
    header = delimiter.join(f'"{n}"' if quote else n for n in names)
    field = st.one_of(PLAIN, QUOTED, st.sampled_from(["", "NULL", " x "]), *([STRAY] if stray_quotes else []))
    kinds = ["row", "row", "row", "blank", "footer", "header", *(["noise"] if stray_quotes else [])]
    lines = [draw(st.sampled_from(["", " ", "\t"])) for _ in range(draw(st.integers(0, 1)))] + [header]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind == "row":
            width = draw(st.sampled_from([len(names)] * 4 + [max(len(names) - 1, 1), len(names) + 1]))
            lines.append(delimiter.join(draw(field) for _ in range(width)))
        elif kind == "noise":
            lines.append(draw(NOISE))
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", " ", "\t", "  \t"])))
        elif kind == "footer":
            lines.append(draw(st.sampled_from(FOOTERS)) + draw(st.sampled_from(["", delimiter + "150"])))
        else:
            lines.append(header)
    return with_line_ends(draw, lines), delimiter


def is_blank(record: str, delimiter: str) -> bool:
    """A blank record: only spaces, tabs and CRs, and no delimiter (a line of tabs in a
    tab-separated file is a row of empty fields)."""
    return all(c in " \t\r" for c in record) and delimiter not in record


def parity_records(text: str, delimiter: str) -> list[tuple[int, str]]:
    """The non-blank records of CSV text as the reader documents them: split at line feeds
    outside double quotes (quote parity), a CR before the LF dropped, blank records left
    out. Returns (1-based line the record starts on, record text)."""
    records, start, line, start_line, quoted = [], 0, 1, 1, False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == "\n":
            line += 1
            if not quoted:
                records.append((start_line, text[start:i].removesuffix("\r")))
                start, start_line = i + 1, line
    records.append((start_line, text[start:].removesuffix("\r")))
    return [(n, r) for n, r in records if not is_blank(r, delimiter)]


def csv_rows(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def expected_cell(field: str, numeric: bool, is_key: bool) -> Any:
    """A field as the reader should return it: NA tokens missing, the key stripped, number
    columns as floats (blank is missing), text as it is."""
    if field in DEFAULT_NA_VALUES:
        return None
    if is_key:
        return field.strip() or None
    if numeric:
        return float(field.strip()) if field.strip() else None
    return field


def check_accounted(text: str, delimiter: str, data: SourceData) -> None:
    """The invariants of a successful read of CSV text (decoded, BOM removed):

    - every kept row's `_line` and every rejected row's line is the first line of a
      non-blank record other than the header (the first non-blank record);
    - no record gives two rows: kept lines are distinct, rejected lines are distinct, and
      no line is both kept and rejected;
    - kept + rejected + dropped (footers, repeated headers) = non-blank records - 1;
    - a rejected row's raw text is its record's text; reasons come from the known set;
    - a kept row holds exactly its record's fields as Python's csv module splits the
      record: one CSV row, as many fields as columns (bar one empty field after a
      trailing delimiter), each value equal to its field (NA tokens missing, the key
      stripped, numeric columns as floats).
    """
    records = parity_records(text, delimiter)
    body = dict(records[1:])
    kept, rejected = lines_of(data), data.rejects["line"].tolist()
    assert set(kept) | set(rejected) <= set(body)
    assert len(set(kept)) == len(kept)
    assert len(set(rejected)) == len(rejected)
    assert not set(kept) & set(rejected)
    assert len(kept) + len(rejected) + sum(data.dropped.values()) == len(body)
    for line, raw in zip(rejected, data.rejects["raw"], strict=True):
        assert raw == body[line]
    columns = list(data.frame.columns)
    for position, line in enumerate(kept):
        parsed = csv_rows(body[line], delimiter)
        assert len(parsed) == 1, f"line {line}: {body[line]!r} is not one CSV record"
        fields = parsed[0]
        if len(fields) == len(columns) + 1 and fields[-1] == "" and body[line].endswith(delimiter):
            fields = fields[:-1]  # a trailing delimiter on every data row
        assert len(fields) == len(columns), f"line {line}: {body[line]!r} kept as {len(columns)} fields"
        for name, field in zip(columns, fields, strict=True):
            numeric = pd.api.types.is_float_dtype(data.frame[name].dtype)
            value, want = data.frame[name].iloc[position], expected_cell(field, numeric, name == KEY)
            assert pd.isna(value) if want is None else value == want, (line, name, field, value)


def check_csvish(text: str, delimiter: str, explicit: bool, share: float) -> None:
    options = {"delimiter": delimiter} if explicit else {}
    data = check_read_or_error(text.encode(), "x.csv", max_reject_share=share, **options)
    if data is not None:
        check_accounted(text.removeprefix("\ufeff"), delimiter, data)


@CSV_READ_AND_MAPPED
@examples(200)
@given(case=csvish(stray_quotes=False), explicit=st.booleans(), share=SHARES)
def test_csv_records_are_all_accounted_for(case: tuple[str, str], explicit: bool, share: float) -> None:
    check_csvish(*case, explicit=explicit, share=share)


@CSV_READ_AND_MAPPED
@examples(200, shrink=False)
@given(case=csvish(stray_quotes=True), explicit=st.booleans(), share=SHARES)
def test_csv_records_with_stray_quotes_are_all_accounted_for(
    case: tuple[str, str], explicit: bool, share: float
) -> None:
    check_csvish(*case, explicit=explicit, share=share)


# JSON lines: the same accounting, one record a non-blank line.

# No null inside a list: BUG 12 (test_json_list_holding_null_*) crashes the process.
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | strings('aé "\\/', max_size=3),
    lambda inner: (
        st.lists(inner.filter(lambda v: v is not None), max_size=2)
        | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),
    max_leaves=4,
)
JSON_KEY = st.one_of(strings("aA0 é", max_size=4), st.integers(-(10**6), 10**6), st.none())
MALFORMED_JSON = ('{"account_id": "A"', "[1, 2]", "42", '"x"', "not json", "{'account_id': 'A'}", "{}")


@st.composite
def json_lines(draw: st.DrawFn, blank_lines: bool) -> str:
    """JSON lines: objects with a text/int/null key and nested values, malformed lines,
    maybe blank lines; LF or CRLF; maybe a BOM."""
    ascii_only = draw(st.booleans())
    good = st.builds(lambda k, v: json.dumps({KEY: k, "v": v}, ensure_ascii=ascii_only), JSON_KEY, JSON_VALUE)
    kinds = [good, good, good, st.sampled_from(MALFORMED_JSON)]
    if blank_lines:
        kinds.append(st.sampled_from(["", " ", "\t"]))
    lines = draw(st.permutations([draw(good), *draw(st.lists(st.one_of(kinds), max_size=7))]))
    return with_line_ends(draw, lines)


def expected_json_key(line: str) -> str | None:
    value = json.loads(line).get(KEY)
    return None if value is None else (str(value).strip() or None)


def check_json_lines(text: str, share: float) -> None:
    data = check_read_or_error(text.encode(), "x.jsonl", max_reject_share=share)
    if data is None:
        return
    lines = {n: line.removesuffix("\r") for n, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1)}
    body = {n: line for n, line in lines.items() if line.strip(" \t\r")}
    kept, rejected = lines_of(data), data.rejects["line"].tolist()
    assert set(kept) | set(rejected) <= set(body)
    assert len(set(kept)) == len(kept)
    assert len(set(rejected)) == len(rejected)
    assert not set(kept) & set(rejected)
    assert len(kept) + len(rejected) + sum(data.dropped.values()) == len(body)
    for line, reason, raw in data.rejects[["line", "reason", "raw"]].itertuples(index=False):
        assert raw == body[line]
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            assert reason == "empty key"
            assert expected_json_key(raw) is None
        else:
            assert reason == "malformed json"
    for position, line in enumerate(kept):
        assert data.frame[KEY].iloc[position] == expected_json_key(body[line])


@examples(150)
@given(text=json_lines(blank_lines=False), share=SHARES)
def test_json_lines_are_all_accounted_for(text: str, share: float) -> None:
    check_json_lines(text, share)


@examples(150, shrink=False)
@given(text=json_lines(blank_lines=True), share=SHARES)
def test_json_lines_with_blank_lines_are_all_accounted_for(text: str, share: float) -> None:
    check_json_lines(text, share)


# --- 3. round trip --------------------------------------------------------------------------

# No lone CR: to_csv leaves it unquoted (with lineterminator "\n"), and then no CSV reader
# (pandas, the csv module) can tell it from a line break. A CRLF inside a value is quoted.
VALUE_CHARS = [*"0aZé ,;|\t\"'\n", "\r\n", "日", "\u00a0"]
TOKENS = st.sampled_from(["NA", "null", "None", "nan", "-", "N/A", "#N/A", "account_id"])
TYPES = {"name": "string", "x": "float", "n": "int", "d": "date", "ts": "datetime", "b": "bool"}
EXACT_INT = 2**53  # BUG 5: typed ints beyond 2**53 lose digits (test_typed_int_keeps_every_digit)


def key_fits(key: str, strip: bool) -> bool:
    """Keys that read back as themselves: not blank; without surrounding whitespace when
    the key is stripped (the default key_transform)."""
    return bool(key.strip()) and (key == key.strip() or not strip)


@st.composite
def frames(draw: st.DrawFn, strip: bool, missing_text: bool, int_bound: int = EXACT_INT) -> pd.DataFrame:
    """A frame to write and read back: text keys (leading zeros, number-like, inner spaces,
    commas, quotes, line breaks, non-ASCII, NA-like tokens); a text column with empty
    strings or (`missing_text`) missing values, not both, as to_csv writes both as
    nothing; floats with exact short decimals, ints, dates, times and booleans, each
    maybe missing."""
    n = draw(st.integers(0, 6))
    keys = st.one_of(strings("0123456789.e-", min_size=1), strings(VALUE_CHARS, min_size=1), TOKENS).filter(
        lambda k: key_fits(k, strip)
    )
    text = st.one_of(strings(VALUE_CHARS), TOKENS)
    text = st.one_of(st.none(), text.filter(bool)) if missing_text else text
    floats = st.integers(-(10**12), 10**12).flatmap(lambda i: st.sampled_from([i, i / 100, i / 1e6, i * 1e10]))
    times = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))
    # a blank bool is missing only when "" is an NA token (BUG 4: test_blank_bool_is_missing)
    bools = st.one_of(st.none(), st.booleans()) if missing_text else st.booleans()

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(values, min_size=n, max_size=n))

    return pd.DataFrame(
        {
            KEY: pd.Series(column(keys), dtype="str"),
            "name": pd.Series(column(text), dtype="str"),
            "x": pd.Series(column(st.one_of(st.none(), floats)), dtype="float64"),
            "n": pd.Series(column(st.one_of(st.none(), st.integers(-int_bound, int_bound))), dtype="Int64"),
            "d": pd.Series(pd.to_datetime(column(st.one_of(st.none(), st.dates(dt.date(1900, 1, 1))))), dtype="M8[us]"),
            "ts": pd.Series(pd.to_datetime(column(st.one_of(st.none(), times))), dtype="M8[us]"),
            "b": pd.Series(column(bools), dtype="boolean"),
        }
    )


def is_text_keys(keys: pd.Series) -> bool:
    """Keys of a source other than the accounts are a Categorical of text (coded once per
    distinct key); the accounts' keys are text."""
    if isinstance(keys.dtype, pd.CategoricalDtype):
        return pd.api.types.is_string_dtype(keys.cat.categories.dtype) and keys.cat.categories.is_monotonic_increasing
    return pd.api.types.is_string_dtype(keys.dtype)


def plain(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {str(c): [None if pd.isna(v) else v for v in frame[c].tolist()] for c in frame.columns}


def check_round_trip(frame: pd.DataFrame, raw: bytes, filename: str, lines: list[int], **source: Any) -> None:
    """Read back equals the frame: columns, order, values (keys as text, exactly), types."""
    data = read_bytes(raw, filename, types=TYPES, **source)
    got = data.frame
    assert list(got.columns) == list(frame.columns)
    assert plain(got) == plain(frame)
    assert lines_of(data) == lines
    assert data.rejects.empty
    assert not data.dropped
    assert is_text_keys(got[KEY])
    assert pd.api.types.is_string_dtype(got["name"].dtype)
    assert [str(got[c].dtype) for c in ("x", "n", "b")] == ["float64", "Int64", "boolean"]
    assert pd.api.types.is_datetime64_dtype(got["d"].dtype)
    assert pd.api.types.is_datetime64_dtype(got["ts"].dtype)


def csv_lines(frame: pd.DataFrame) -> list[int]:
    """The line each row starts on: 2, then each row's line breaks push the next one down."""
    lines, line = [], 2
    for key, name in zip(frame[KEY], frame["name"], strict=True):
        lines.append(line)
        line += 1 + sum(v.count("\n") for v in (key, name) if isinstance(v, str))
    return lines


def csv_round_trip(frame: pd.DataFrame, sep: str, encoding: str, terminator: str, strip: bool, missing: bool) -> None:
    raw = frame.to_csv(index=False, sep=sep, lineterminator=terminator).encode(encoding)
    options = {"na_values": [""] if missing else [], "key_transform": ["strip"] if strip else []}
    check_round_trip(frame, raw, "x.csv", csv_lines(frame), **options)


@pytest.mark.parametrize(
    ("sep", "encoding", "terminator"),
    [
        (",", "utf-8", "\n"),
        (";", "utf-8", "\n"),
        ("\t", "utf-8", "\n"),
        (",", "utf-8-sig", "\r\n"),
        (";", "utf-16", "\n"),
        ("\t", "utf-16", "\r\n"),
    ],
)
@examples(35)
@given(data=st.data())
def test_csv_round_trip(sep: str, encoding: str, terminator: str, data: st.DataObject) -> None:
    strip, missing = data.draw(st.booleans(), label="strip"), data.draw(st.booleans(), label="missing_text")
    frame = data.draw(frames(strip, missing), label="frame")
    csv_round_trip(frame, sep, encoding, terminator, strip, missing)


@examples(60)
@given(data=st.data())
def test_parquet_round_trip(data: st.DataObject) -> None:
    strip, missing = data.draw(st.booleans(), label="strip"), data.draw(st.booleans(), label="missing_text")
    frame = data.draw(frames(strip, missing), label="frame")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    lines = list(range(1, len(frame) + 1))
    check_round_trip(frame, buffer.getvalue(), "x.parquet", lines, key_transform=["strip"] if strip else [])


# --- 4. Salesforce ids -----------------------------------------------------------------------

SF15 = st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=15, max_size=15)


def sf18(ids: list[str]) -> list[str]:
    return salesforce18(pd.Series(ids, dtype="str")).tolist()


def suffix_ok(ids: list[str]) -> list[bool]:
    return salesforce_suffix_ok(pd.Series(ids, dtype="str")).tolist()


def test_salesforce18_documented_vectors() -> None:
    assert sf18(["a0RE000000IJmcN", "001M000000qfPyS"]) == ["a0RE000000IJmcNMAT", "001M000000qfPySIAU"]
    assert suffix_ok(["a0RE000000IJmcNMAT", "001M000000qfPySIAU", "a0RE000000IJmcNMAU"]) == [True, True, False]


@examples(150)
@given(short=SF15, data=st.data())
def test_salesforce18_suffix(short: str, data: st.DataObject) -> None:
    """The 18-character form keeps the 15 characters, its suffix checks, and extending it
    again changes nothing; ids differing only in case differ case-insensitively once
    extended; one case flip in the first 15 characters breaks the check."""
    [long] = sf18([short])
    assert (len(long), long[:15]) == (18, short)
    assert suffix_ok([long]) == [True]
    assert sf18([long]) == [long]
    letters = [i for i, c in enumerate(short) if c.isalpha()]
    if not letters:
        return
    flips = data.draw(st.sets(st.sampled_from(letters), min_size=1), label="flips")
    other = "".join(c.swapcase() if i in flips else c for i, c in enumerate(short))
    [other_long] = sf18([other])
    assert other_long.lower() != long.lower()
    i = data.draw(st.sampled_from(letters), label="flip")
    assert suffix_ok([long[:i] + long[i].swapcase() + long[i + 1 :]]) == [False]


# --- 5. scan_records against the csv module --------------------------------------------------


@st.composite
def quoted_csv(draw: st.DrawFn) -> tuple[str, str, list[tuple[int, str]]]:
    """RFC 4180 text: fields plain (no quote, delimiter or line break) or quoted (anything,
    quotes doubled), LF or CRLF between records, some records blank. Returns the text, its
    delimiter and each record's (first line, text). Never empty (BUG 1:
    test_scan_records_of_no_bytes)."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    plain_field = strings([c for c in "aZ1 é;,|\t.-\ufeff" if c != delimiter], max_size=4)
    quoted_field = strings([*"a ,;|\t\n\r", '"', "\r\n"], max_size=5).map(lambda s: '"' + s.replace('"', '""') + '"')
    record = st.lists(st.one_of(plain_field, quoted_field), min_size=1, max_size=5).map(delimiter.join)
    records = draw(st.lists(st.one_of(record, st.sampled_from(["", " ", "\t "])), min_size=1, max_size=8))
    ends = [draw(st.sampled_from(["\n", "\r\n"])) for _ in records]
    if draw(st.booleans()) and records[-1]:
        ends[-1] = ""
    text, spans, line = "", [], 1
    for record_text, end in zip(records, ends, strict=True):
        spans.append((line, record_text))
        text += record_text + end
        line += (record_text + end).count("\n")
    return text, delimiter, spans


@examples(300)
@given(case=quoted_csv())
def test_scan_records_agrees_with_the_csv_module(case: tuple[str, str, list[tuple[int, str]]]) -> None:
    """Same non-blank records as the csv module, with the same field counts; each record's
    first line and text (without its line break) as written."""
    text, delimiter, spans = case
    rows = csv_rows(text, delimiter)
    assert len(rows) == len(spans)  # the generator writes valid CSV: one row per record
    pairs = zip(spans, rows, strict=True)
    filled = [(line, record, row) for (line, record), row in pairs if not is_blank(record, delimiter)]
    data = text.encode()
    found = scan_records(data, delimiter)
    assert found.fields.tolist() == [len(row) for _, _, row in filled]
    assert found.lines.tolist() == [line for line, _, _ in filled]
    assert [found.text(data, i) for i in range(len(found))] == [record for _, record, _ in filled]


# --- KNOWN BUGS: minimal reproductions --------------------------------------------------------
# Each is how the reader should behave; each fails today (xfail, strict: a fix makes it pass,
# and then strict turns it into a failure so that the mark is removed).


def read_or_error(raw: bytes, filename: str, **source: Any) -> SourceData | None:
    """A SourceData, or None for a HealthscoreError (any other exception propagates)."""
    try:
        return read_bytes(raw, filename, **source)
    except HealthscoreError:
        return None


@CSV_READ_AND_MAPPED
@pytest.mark.parametrize(
    ("raw", "filename", "source"),
    [
        (b"\xff\xfe\xff\xfe", "x.csv", {}),  # UTF-16 BOM, then nothing but a second BOM
        (b"\xff\xfe\xff\xfe", "x.jsonl", {}),
        (b"account_id,n\nA,1\n", "x.csv", {"skip_rows": 2}),  # skip_rows eats every line
    ],
)
def test_text_that_is_empty_after_decoding_or_skipping_is_an_error(
    raw: bytes, filename: str, source: dict[str, Any]
) -> None:
    assert read_or_error(raw, filename, **source) is None


def test_scan_records_of_no_bytes() -> None:
    assert len(scan_records(b"", ",")) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"account_id\rx,y\n",  # a lone CR in the header of a file with LFs: ParserError
        b"\raccount_id\nA\n",  # the header starts with a lone CR: EmptyDataError
        b'x"\n"',  # a quote mid-field in the header: ParserError (EOF inside string)
        b"\xef\xbb\xbf\xef\xbb\xbf",  # two UTF-8 BOMs, nothing else: EmptyDataError
    ],
)
@CSV_READ_AND_MAPPED
def test_header_pandas_cannot_split_is_an_error(raw: bytes) -> None:
    read_or_error(raw, "x.csv")


@CSV_READ_AND_MAPPED
def test_stray_quote_spanning_lines_is_an_error_or_a_reject() -> None:
    data = read_or_error(b'account_id,n\nA, "\n"\n', "x.csv", max_reject_share=1.0)
    assert data is None or len(data.rejects) == 1


@CSV_READ_AND_MAPPED
@pytest.mark.filterwarnings("ignore:Length of header or names")  # pandas' ParserWarning: the symptom
def test_stray_quote_row_is_not_kept_with_fields_lost() -> None:
    # the csv module and pandas see 3 fields (A | ' "x' | 'y"'), quote parity sees 2: the
    # row is kept as A, ' "x' and 'y"' is dropped without a trace (pandas ParserWarning)
    data = read_or_error(b'account_id,n\nA, "x,y"\n', "x.csv", max_reject_share=1.0)
    assert data is None or data.rejects["line"].tolist() == [2]


def test_blank_bool_is_missing() -> None:
    # blank ints, floats and times are missing with the same na_values
    data = read_bytes(b"account_id,b,x\nA,,\nB,true,1\n", "x.csv", na_values=[], types={"b": "bool", "x": "float"})
    assert data.frame["b"].tolist() == [pd.NA, True]


@pytest.mark.xfail(strict=True, reason="BUG 5: typed int goes through float64 (digits lost, int64 ends rejected)")
@pytest.mark.parametrize("value", [2**53 + 1, 2**63 - 1, -(2**63), 12345678901234567])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_typed_int_keeps_every_digit(value: int, fmt: str) -> None:
    frame = pd.DataFrame({KEY: ["A"], "n": pd.Series([value], dtype="Int64")})
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.to_csv(buffer, index=False)
    else:
        frame.to_parquet(buffer, index=False)
    data = read_bytes(buffer.getvalue(), f"x.{fmt}", types={"n": "int"})
    assert data.frame["n"].tolist() == [value]


@pytest.mark.xfail(strict=True, reason="BUG 5: typed int goes through float64")
@examples(20, shrink=False)
@given(data=st.data())
def test_csv_round_trip_of_any_int64(data: st.DataObject) -> None:
    frame = data.draw(frames(strip=True, missing_text=True, int_bound=2**63 - 1), label="frame")
    csv_round_trip(frame, ",", "utf-8", "\n", strip=True, missing=True)


@pytest.mark.parametrize("raw", [b'{"account_id": "A"}\n\n{"account_id": "B"}\n', b'{"account_id": "A"}\n\n'])
def test_blank_json_lines_are_skipped(raw: bytes) -> None:
    data = read_bytes(raw, "x.jsonl")
    assert data.rejects.empty


def test_json_lone_surrogate_is_an_error_or_a_reject() -> None:
    read_or_error(b'{"account_id": "a\\ud800"}\n', "x.jsonl")


def test_deeply_nested_json_array_is_an_error() -> None:
    assert read_or_error(b"[" * 100_000, "x.json") is None


@pytest.mark.xfail(strict=True, reason="BUG 9: JSON number keys depend on the other lines / lose digits")
@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        (b'{"account_id": 5.0}\n{"account_id": "x"}\n', ["5", "x"]),  # "5" alone, "5.0" next to a text key
        (b'{"account_id": 12345678901234567890}\n', ["12345678901234567890"]),  # read as 1.2345678901234567e+19
    ],
)
def test_json_number_keys_are_whole_number_text(raw: bytes, keys: list[str]) -> None:
    assert read_bytes(raw, "x.jsonl").frame[KEY].tolist() == keys


def read_in_subprocess(raw: bytes, filename: str) -> subprocess.CompletedProcess[bytes]:
    """Read in a child process (a crash there does not take pytest down): exit status 0
    for a SourceData or a HealthscoreError, 1 for another exception, -11 for a segfault."""
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_reader_properties import read_or_error\n"
        "read_or_error(sys.stdin.buffer.read(), sys.argv[2])\n"
    )
    tests = str(Path(__file__).resolve().parent)
    return subprocess.run(
        [sys.executable, "-c", script, tests, filename], input=raw, capture_output=True, timeout=120, check=False
    )


def test_json_list_holding_null_does_not_crash_the_process() -> None:
    # flatten(): pc.binary_join(pc.cast(list column, list<string>)) on pyarrow 26
    result = read_in_subprocess(b'{"account_id": "A", "v": [null, 1]}\n', "x.jsonl")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]


def test_json_list_holding_null_keeps_its_values() -> None:
    data = read_bytes(b'{"account_id": "A", "v": [1, null, 3]}\n', "x.jsonl")
    [value] = data.frame["v"].tolist()
    assert isinstance(value, str)
    assert [part for part in value.split("|") if part not in ("", "None", "null")] == ["1", "3"]


def test_json_list_of_lists_holding_nulls_is_read() -> None:
    read_or_error(b'{"account_id": "A", "v": [[], [null, null]]}\n', "x.jsonl")


def parquet_with_invalid_utf8(column: str) -> bytes:
    """A Parquet file whose string column `column` holds bytes that are not UTF-8."""
    table = pd.DataFrame({KEY: ["Ké", "B"], "note": ["Né", "y"]})
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False, compression=None)
    raw = buffer.getvalue()
    value = ("Ké" if column == KEY else "Né").encode()
    assert raw.count(value) >= 1
    return raw.replace(value, value[:1] + b"\xff\xfe")


@pytest.mark.parametrize("column", [KEY, "note"])
def test_parquet_text_that_is_not_utf8_is_an_error(column: str) -> None:
    # key: ArrowInvalid from the key's .str.strip(); other columns: read_source returns and
    # the first use of the values raises UnicodeDecodeError
    data = read_or_error(parquet_with_invalid_utf8(column), "x.parquet")
    assert data is None or text_values(data)


def xlsx_with(member: str, change: Any) -> bytes:
    members = unzip(SEEDS["xlsx"][0])
    members[member] = change(members[member])
    return rezip(members)


def xlsx_with_bad_deflate() -> bytes:
    raw = bytearray(SEEDS["xlsx"][0])
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 10] ^= 0xFF
    return bytes(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(xlsx_with("xl/worksheets/sheet1.xml", lambda _: b"<worksheet"), id="xml-cut-short"),
        pytest.param(xlsx_with("xl/workbook.xml", lambda _: b"<x"), id="workbook-xml-cut-short"),
        pytest.param(
            xlsx_with("xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"summaryBelow", b"summaryBelowX")),
            id="unknown-attribute",
        ),
        pytest.param(xlsx_with_bad_deflate(), id="bad-deflate-stream"),
    ],
)
def test_damaged_xlsx_is_an_error(raw: bytes) -> None:
    assert read_or_error(raw, "x.xlsx") is None


@CSV_READ_AND_MAPPED
def test_trailing_delimiter_on_the_header_only() -> None:
    # read_csv checks `names[-1] == ""` after _fill_blank_names has renamed it column_3
    data = read_bytes(b"account_id,n,\nA,1\nB,2\n", "x.csv")
    assert data.frame[KEY].tolist() == ["A", "B"]
    assert list(data.frame.columns) == [KEY, "n"]
