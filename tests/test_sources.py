"""Tests for reading sources (healthscore.sources, coerce, keys): files into typed, keyed frames."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import lines_of, make_config, write_csv

from healthscore.config import Config
from healthscore.errors import DataError, InputMissingError
from healthscore.keys import normalize_keys, salesforce18
from healthscore.sources import SourceData, read_source, sniff_delimiter

pytestmark = pytest.mark.usefixtures("csv_read_and_mapped")  # CSV read into memory, then mapped


def config_for(tmp_path: Path, **source: Any) -> Config:
    """A config whose only source `s` (the spine) is read with the given source keys."""
    source.setdefault("key", "account_id")
    return make_config(
        tmp_path,
        accounts={"source": "s"},
        sources={"s": source},
        metrics={"m": {"source": "s", "agg": "count"}},
        groups={"g": {"metrics": ["m"]}},
    )


def read(tmp_path: Path, needed: set[str] | None = None, **source: Any) -> SourceData:
    """Read source `s` configured by keyword arguments."""
    return read_source(config_for(tmp_path, **source), "s", needed)


def column(data: SourceData, name: str) -> list[Any]:
    """A column of a read source as a plain list (missing values as None)."""
    values = data.frame[name]
    return [None if pd.isna(v) else v for v in values.tolist()]


def write_bytes(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


# --- keys ---------------------------------------------------------------------------------


def test_keys_keep_leading_zeros_and_every_digit(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,n\n007,1\n12345678901234567890,2\n 42 ,3\n")
    data = read(tmp_path, path="a.csv")
    assert column(data, "account_id") == ["007", "12345678901234567890", "42"]


def test_parquet_int_key_is_text_without_decimal_point(tmp_path: Path) -> None:
    pd.DataFrame({"account_id": np.array([123, 9007199254740993], dtype="int64"), "n": [1, 2]}).to_parquet(
        tmp_path / "a.parquet"
    )
    data = read(tmp_path, path="a.parquet")
    assert column(data, "account_id") == ["123", "9007199254740993"]


def test_float_keys_with_nan_become_whole_number_text(tmp_path: Path) -> None:
    pd.DataFrame({"account_id": [12345.0, np.nan, 7.0, 2.5], "n": [1, 2, 3, 4]}).to_parquet(tmp_path / "a.parquet")
    data = read(tmp_path, path="a.parquet")
    assert column(data, "account_id") == ["12345", "7", "2.5"]
    assert data.rows_without_key == 1


def test_huge_float_keys_do_not_crash() -> None:
    keys = normalize_keys(pd.Series([1.5e19, 2.0, np.nan]), ["strip"])
    assert keys.tolist()[1] == "2"
    assert isinstance(keys.tolist()[0], str)
    assert pd.isna(keys.tolist()[2])


@pytest.mark.parametrize(
    ("transforms", "raw", "expected"),
    [
        (["strip"], [" Acme ", "acme"], ["Acme", "acme"]),
        (["strip", "lower"], [" Acme ", "ACME"], ["acme", "acme"]),
        (["upper"], ["ab", "Ab "], ["AB", "AB "]),
        ([], [" a "], [" a "]),
    ],
)
def test_key_transforms(transforms: list[str], raw: list[str], expected: list[str]) -> None:
    assert normalize_keys(pd.Series(raw, dtype="str"), transforms).tolist() == expected


def test_salesforce18_documented_vectors() -> None:
    ids = pd.Series(["a0RE000000IJmcN", "001M000000qfPyS", "a0RE000000IJmcNMAT", "short"], dtype="str")
    assert salesforce18(ids).tolist() == ["a0RE000000IJmcNMAT", "001M000000qfPySIAU", "a0RE000000IJmcNMAT", "short"]


def test_salesforce18_keeps_case_variants_distinct_and_joins_forms(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "a.csv",
        "account_id,n\na0RE000000IJmcN,1\na0RE000000IJMCN,2\na0re000000ijmcnmat,3\n",
    )
    data = read(tmp_path, path="a.csv", key_transform=["strip", "salesforce18", "lower"], max_reject_share=0.5)
    keys = column(data, "account_id")
    assert keys[0] == "a0re000000ijmcnmat"
    assert keys[1] != keys[0]
    # an 18-character id whose suffix does not check (here lower-cased upstream) is rejected
    assert data.rejects[["line", "reason"]].values.tolist() == [[4, "invalid salesforce id"]]
    assert data.rejects["raw"].tolist() == ["a0re000000ijmcnmat,3"]


def test_rows_with_empty_key_are_counted_with_a_warning(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,n\nA,1\n,2\n   ,3\nB,4\n")
    data = read(tmp_path, path="a.csv")
    assert column(data, "account_id") == ["A", "B"]
    assert data.rows_without_key == 2
    assert data.rows_read == 4
    assert len(data.warnings) == 1
    assert "2 row(s)" in data.warnings[0].message
    assert "a.csv line 3" in data.warnings[0].where


def test_rows_without_time_are_rejected_with_a_warning(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,t\nA,2026-01-01\nB,\nC,N/A\n")
    data = read(tmp_path, path="a.csv", time="t")
    assert data.rows_without_time == 2
    assert column(data, "account_id") == ["A"]  # no metric could use the others
    assert data.rejects[["line", "reason", "raw"]].values.tolist() == [
        [3, "missing time", "B,"],
        [4, "missing time", "C,N/A"],
    ]
    [warning] = data.warnings
    assert "2 row(s)" in warning.message
    assert "'t'" in warning.message
    assert warning.where == "a.csv line 3, a.csv line 4"


# --- columns: rename, types, NA -----------------------------------------------------------


def test_rename_maps_headers(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "Account ID,Annual Revenue\n1,10\n")
    data = read(tmp_path, path="a.csv", rename={"Account ID": "account_id", "Annual Revenue": "arr"})
    assert column(data, "account_id") == ["1"]
    assert column(data, "arr") == [10.0]


def test_types_convert_every_kind(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "a.csv",
        "account_id,s,i,f,b,d,ts\n"
        "1,0042,3,1.5,yes,2026-01-02,2026-01-02T03:04:05\n"
        "2,x,,2,False,2026-01-03 10:00:00,2026-01-02T03:04:05+02:00\n",
    )
    types = {"s": "string", "i": "int", "f": "float", "b": "bool", "d": "date", "ts": "datetime"}
    data = read(tmp_path, path="a.csv", types=types)
    assert column(data, "s") == ["0042", "x"]
    assert column(data, "i") == [3, None]
    assert str(data.frame["i"].dtype) == "Int64"
    assert column(data, "f") == [1.5, 2.0]
    assert column(data, "b") == [True, False]
    assert column(data, "d") == [pd.Timestamp("2026-01-02"), pd.Timestamp("2026-01-03")]
    assert column(data, "ts") == [pd.Timestamp("2026-01-02 03:04:05"), pd.Timestamp("2026-01-02 01:04:05")]


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("int", "1.5"),
        ("int", "abc"),
        ("int", "1e20"),
        ("float", "1,5"),
        ("float", "inf"),
        ("bool", "maybe"),
        ("date", "31/01/2026"),
        ("datetime", "x"),
    ],
)
def test_bad_typed_values_are_a_data_error_naming_file_line_column(tmp_path: Path, kind: str, bad: str) -> None:
    write_csv(tmp_path / "events.csv", f'account_id,v\nA,\nB,"{bad}"\n')
    with pytest.raises(DataError) as info:
        read(tmp_path, path="events.csv", types={"v": kind})
    assert info.value.exit_code == 65
    text = str(info.value)
    assert "events.csv line 3" in text
    assert "'v'" in text
    assert repr(bad) in text
    assert "hint:" in text
    assert info.value.problems[0].hint


def test_bad_values_in_two_files_of_a_glob_name_each_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "d" / "a.csv", "account_id,v\nA,1\nB,x\n")
    write_csv(tmp_path / "d" / "b.csv", "account_id,v\nC,y\n")
    with pytest.raises(DataError) as info:
        read(tmp_path, path="d/*.csv", types={"v": "float"})
    assert "a.csv line 3" in str(info.value)
    assert "b.csv line 2" in str(info.value)


def test_na_values_only_as_configured(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,region,plan,note\n1,NA,None,N/A\n2,EU,Pro,-\n")
    data = read(tmp_path, path="a.csv")
    assert column(data, "region") == ["NA", "EU"]
    assert column(data, "plan") == ["None", "Pro"]
    assert column(data, "note") == [None, "-"]
    custom = read(tmp_path, path="a.csv", na_values=["-", "NA"])
    assert column(custom, "region") == [None, "EU"]
    assert column(custom, "note") == ["N/A", None]


def test_date_format_strptime_pattern(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,t\nA,03/04/2026\nB,12/31/2025\n")
    data = read(tmp_path, path="a.csv", time="t", date_format="%m/%d/%Y")
    assert column(data, "t") == [pd.Timestamp("2026-03-04"), pd.Timestamp("2025-12-31")]


def test_iso_times_with_offsets_become_naive_utc(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "a.csv",
        "account_id,t\nA,2026-01-31T23:30:00-05:00\nB,2026-01-31T01:00:00+02:00\n"
        "C,2026-01-31 12:00:00\nD,2026-01-31T00:00:00Z\n",
    )
    data = read(tmp_path, path="a.csv", time="t")
    assert column(data, "t") == [
        pd.Timestamp("2026-02-01 04:30"),
        pd.Timestamp("2026-01-30 23:00"),
        pd.Timestamp("2026-01-31 12:00"),
        pd.Timestamp("2026-01-31 00:00"),
    ]
    assert data.frame["t"].dt.tz is None


def test_epoch_seconds_and_millis_in_parquet_and_jsonl(tmp_path: Path) -> None:
    seconds = 1769860800  # 2026-01-31 12:00:00 UTC
    pd.DataFrame({"account_id": ["A", "B"], "t": [seconds, seconds + 60]}).to_parquet(tmp_path / "s.parquet")
    pd.DataFrame({"account_id": ["A"], "t": [seconds * 1000 + 500]}).to_parquet(tmp_path / "ms.parquet")
    write_csv(tmp_path / "e.jsonl", f'{{"account_id": "A", "t": {seconds}}}\n{{"account_id": 5, "t": null}}\n')
    noon = pd.Timestamp("2026-01-31 12:00")
    assert column(read(tmp_path, path="s.parquet", time="t"), "t") == [noon, noon + pd.Timedelta(minutes=1)]
    assert column(read(tmp_path, path="ms.parquet", time="t"), "t") == [noon + pd.Timedelta(milliseconds=500)]
    jsonl = read(tmp_path, path="e.jsonl", time="t")
    assert column(jsonl, "t") == [noon]
    assert jsonl.rejects["raw"].tolist() == ['{"account_id": 5, "t": null}']
    assert jsonl.rows_without_time == 1


def test_parquet_timestamps_with_zone_become_naive_utc(tmp_path: Path) -> None:
    times = pd.to_datetime(["2026-01-31 23:30"]).tz_localize("America/New_York")
    pd.DataFrame({"account_id": ["A"], "t": times}).to_parquet(tmp_path / "a.parquet")
    assert column(read(tmp_path, path="a.parquet", time="t"), "t") == [pd.Timestamp("2026-02-01 04:30")]


def test_decimal_comma_with_thousands_dot(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", 'account_id;arr;n\nA;1.234,5;"2,5"\nB;10;3\n')
    data = read(tmp_path, path="a.csv", decimal=",", thousands=".", types={"arr": "float"})
    assert column(data, "arr") == [1234.5, 10.0]
    assert column(data, "n") == [2.5, 3.0]


def test_text_columns_with_leading_zeros_or_long_ids_are_not_made_numbers(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,zip,user,n\nA,02116,12345678901234567890,1\nB,10001,2,2\n")
    data = read(tmp_path, path="a.csv")
    assert column(data, "zip") == ["02116", "10001"]
    assert column(data, "user") == ["12345678901234567890", "2"]
    assert column(data, "n") == [1.0, 2.0]


# --- files and formats --------------------------------------------------------------------


def test_glob_reads_many_csvs_as_one(tmp_path: Path) -> None:
    write_csv(tmp_path / "usage" / "2026-01.csv", "account_id,n\nA,1\nB,2\n")
    write_csv(tmp_path / "usage" / "2026-02.csv", "account_id,n\nA,3\n")
    data = read(tmp_path, path="usage/*.csv")
    assert column(data, "account_id") == ["A", "B", "A"]
    assert column(data, "n") == [1.0, 2.0, 3.0]
    assert [Path(f.path).name for f in data.files] == ["2026-01.csv", "2026-02.csv"]
    assert [f.rows for f in data.files] == [2, 1]
    assert data.rows_read == 3


def test_json_lines(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "e.jsonl",
        '{"account_id": "007", "event": "login", "t": "2026-01-02T00:00:00Z"}\n'
        '{"account_id": "008", "event": "view", "t": "2026-01-03T00:00:00Z"}\n',
    )
    data = read(tmp_path, path="e.jsonl", time="t")
    assert column(data, "account_id") == ["007", "008"]
    assert column(data, "event") == ["login", "view"]
    assert column(data, "t") == [pd.Timestamp("2026-01-02"), pd.Timestamp("2026-01-03")]


def test_parquet(tmp_path: Path) -> None:
    pd.DataFrame({"account_id": ["A", "B"], "score": [9, 3], "event": ["x", None]}).to_parquet(tmp_path / "a.pq")
    data = read(tmp_path, path="a.pq", format="parquet")
    assert column(data, "score") == [9, 3]
    assert column(data, "event") == ["x", None]
    assert lines_of(data) == [1, 2]


def test_delimiter_auto_picks_semicolon(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id;name;arr\nA;Acme, Inc.;1\nB;Beta;2\n")
    data = read(tmp_path, path="a.csv")
    assert [c for c in data.frame.columns if not c.startswith("_")] == ["account_id", "name", "arr"]
    assert column(data, "name") == ["Acme, Inc.", "Beta"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("a,b,c", ","), ("a;b;c", ";"), ("a\tb", "\t"), ("a|b|c", "|"), ('"x;y",b', ","), ("a", ","), ("a;b,c;d", ";")],
)
def test_sniff_delimiter(header: str, expected: str) -> None:
    assert sniff_delimiter(header) == expected


def test_utf8_bom_is_stripped_from_first_header(tmp_path: Path) -> None:
    write_bytes(tmp_path / "a.csv", "\ufeffaccount_id,n\nA,1\n".encode())
    data = read(tmp_path, path="a.csv", encoding="utf-8")
    assert "account_id" in data.frame.columns
    assert column(read(tmp_path, path="a.csv"), "account_id") == ["A"]


def test_cp1252_export_is_read_with_encoding_auto(tmp_path: Path) -> None:
    write_bytes(tmp_path / "a.csv", "account_id,name\nA,Café “Noir”\n".encode("cp1252"))
    assert column(read(tmp_path, path="a.csv"), "name") == ["Café “Noir”"]
    with pytest.raises(DataError) as info:
        read(tmp_path, path="a.csv", encoding="utf-8")
    assert "encoding" in str(info.value)


def test_utf16_export_is_read_with_encoding_auto(tmp_path: Path) -> None:
    write_bytes(tmp_path / "a.csv", "account_id;name\nA;Café\n".encode("utf-16"))
    assert column(read(tmp_path, path="a.csv"), "name") == ["Café"]


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,v\nA,1\n\nB,2\n\n\nC,x\n")
    with pytest.raises(DataError) as info:
        read(tmp_path, path="a.csv", types={"v": "int"})
    assert "a.csv line 7: 'x'" in str(info.value)


def test_missing_file_is_input_missing_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError) as info:
        read(tmp_path, path="exports/nope.csv")
    assert info.value.exit_code == 66
    assert str(tmp_path / "exports" / "nope.csv") in str(info.value)


def test_glob_matching_nothing_is_input_missing(tmp_path: Path) -> None:
    (tmp_path / "usage").mkdir()
    with pytest.raises(InputMissingError) as info:
        read(tmp_path, path="usage/*.parquet")
    assert info.value.exit_code == 66
    assert "usage/*.parquet" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"])
def test_empty_file_is_input_missing(tmp_path: Path, content: bytes) -> None:
    write_bytes(tmp_path / "a.csv", content)
    with pytest.raises(InputMissingError) as info:
        read(tmp_path, path="a.csv")
    assert info.value.exit_code == 66
    assert "a.csv" in str(info.value)


def test_empty_parquet_file_is_input_missing(tmp_path: Path) -> None:
    write_bytes(tmp_path / "a.parquet", b"")
    with pytest.raises(InputMissingError):
        read(tmp_path, path="a.parquet")


def test_missing_column_names_file_column_and_columns_found(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "Account ID,event\nA,login\n")
    with pytest.raises(DataError) as info:
        read(tmp_path, needed={"event", "user_id"}, path="a.csv")
    assert info.value.exit_code == 65
    problems = info.value.problems
    assert [p.message for p in problems] == [
        "expected: account_id, event, user_id",
        "found: Account ID, event (split at each comma; set sources.s.delimiter if that is wrong)",
        "column 'account_id' not found",
        "column 'user_id' not found",
    ]
    assert all(p.where == str(tmp_path / "a.csv") for p in problems)
    assert "sources.s.rename" in problems[-1].hint


@pytest.mark.parametrize(
    ("text", "rename"),
    [("account_id,n,n\nA,1,2\n", {}), ("account_id,a,b\nA,1,2\n", {"a": "n", "b": "n"})],
)
def test_duplicate_column_names_are_a_data_error(tmp_path: Path, text: str, rename: dict[str, str]) -> None:
    write_csv(tmp_path / "a.csv", text)
    with pytest.raises(DataError) as info:
        read(tmp_path, path="a.csv", rename=rename)
    assert info.value.exit_code == 65
    assert "'n' appears more than once" in str(info.value)


def test_needed_keeps_only_used_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,t,event,junk\nA,2026-01-01,login,1\n")
    data = read(tmp_path, needed={"event"}, path="a.csv", time="t")
    assert sorted(data.frame.columns) == ["account_id", "event", "t"]


def test_each_rows_file_and_line_follow_the_rows_kept(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,t,event\nA,2026-01-01,login\n\n,2026-01-02,login\nB,2026-01-02,x\n")
    write_csv(tmp_path / "b.csv", "account_id,t,event\nC,2026-01-03,login\nC,2026-01-03,login\n")
    data = read(tmp_path, needed={"event"}, path="*.csv", time="t")
    assert data.origins is not None
    assert data.origins.where(np.arange(len(data.frame))) == [
        "a.csv line 2",
        "a.csv line 5",
        "b.csv line 2",
        "b.csv line 3",
    ]
    assert data.origins.take(np.array([False, True, False, True])).where(np.arange(2)) == [
        "a.csv line 5",
        "b.csv line 3",
    ]


def test_file_read_sha256_is_the_files_checksum(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "account_id,n\nA,1\nB,2\n")
    data = read(tmp_path, path="a.csv")
    assert data.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.files[0].rows == 2
    assert data.files[0].path == str(path)


def test_file_read_without_a_digest_has_no_checksum_and_the_same_rows(tmp_path: Path) -> None:
    """A run that writes no run.json (score -o) does not hash its inputs."""
    write_csv(tmp_path / "a.csv", "account_id,n\nA,1\nB,2\n")
    pd.DataFrame({"account_id": ["A", "B", " A"], "n": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "b.parquet")
    for path, rows in (("a.csv", 2), ("b.parquet", 3)):
        config = config_for(tmp_path, path=path)
        hashed, unhashed = read_source(config, "s"), read_source(config, "s", digests=False)
        assert [(f.path, f.rows, f.rejected, f.sha256) for f in unhashed.files] == [(str(tmp_path / path), rows, 0, "")]
        assert len(hashed.files[0].sha256) == 64
        pd.testing.assert_frame_equal(hashed.frame, unhashed.frame)


def test_parquet_read_from_its_path_has_its_checksum_and_rows(tmp_path: Path) -> None:
    """Parquet is read from the path (never whole into memory) and hashed a block at a time."""
    pd.DataFrame({"account_id": ["A", "B", " A"], "n": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "a.parquet")
    data = read(tmp_path, path="a.parquet")
    assert data.files[0].sha256 == hashlib.sha256((tmp_path / "a.parquet").read_bytes()).hexdigest()
    assert data.files[0].rows == 3
    assert data.frame["n"].tolist() == [1.0, 2.0, 3.0]
    assert data.origins is not None
    assert data.origins.where(np.arange(3)) == ["a.parquet line 1", "a.parquet line 2", "a.parquet line 3"]


def test_an_empty_parquet_file_is_input_missing(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_bytes(b"")
    with pytest.raises(InputMissingError, match="input file is empty"):
        read(tmp_path, path="a.parquet")


def test_zendesk_preset_maps_headers(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "tickets.csv",
        "ID,Organization,Created at,Priority,Satisfaction Score,Resolution time,Extra column\n"
        "101,Acme,2026-01-30 10:00:00,Urgent,Good,4,x\n"
        "102,Acme,2026-01-31 11:00:00,Low,Not Offered,,y\n",
    )
    data = read(tmp_path, path="tickets.csv", preset="zendesk_tickets", key="organization", time="created_at")
    frame = data.frame
    assert column(data, "organization") == ["Acme", "Acme"]
    assert column(data, "created_at") == [pd.Timestamp("2026-01-30 10:00"), pd.Timestamp("2026-01-31 11:00")]
    assert column(data, "satisfaction") == ["good", "not offered"]
    assert column(data, "priority") == ["urgent", "low"]
    assert column(data, "resolution_hours") == [4.0, None]
    assert frame["resolution_hours"].dtype == "float64"
    assert column(data, "ticket_id") == ["101", "102"]


def test_trailing_delimiter_on_every_row_does_not_shift_columns(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,n\nA,1,\nB,2,\n")
    data = read(tmp_path, path="a.csv")
    assert column(data, "account_id") == ["A", "B"]
    assert column(data, "n") == [1.0, 2.0]
    assert [c for c in data.frame.columns if not c.startswith("_")] == ["account_id", "n"]


@pytest.mark.parametrize(
    ("text", "where"),
    [("account_id,n\nA,1,x\nB,2,y\n", "line 2"), ("account_id,n\nA,1\n\nB,2,y\n", "line 4")],
)
def test_rows_with_more_fields_than_the_header_are_a_data_error(tmp_path: Path, text: str, where: str) -> None:
    write_csv(tmp_path / "a.csv", text)
    with pytest.raises(DataError) as info:
        read(tmp_path, path="a.csv")
    assert info.value.exit_code == 65
    assert "a.csv" in str(info.value)
    assert where in str(info.value)


def test_salesforce_report_footer_is_not_read_as_rows(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "sf.csv",
        '"Account Name","Amount"\n"Acme","100"\n"Beta","50"\n\n"Grand Totals (2 records)","150"\n\n'
        '"Confidential Information - Do Not Distribute"\n\n'
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n',
    )
    data = read(tmp_path, path="sf.csv", key="Account Name")
    assert column(data, "Account Name") == ["Acme", "Beta"]
    assert column(data, "Amount") == [100.0, 50.0]
    assert data.rows_read == 2
    assert data.dropped == {"report footer": 3}  # counted for the manifest, not warned about
    assert data.warnings == []


def test_xlsx_numbers_are_numbers_and_keys_text(tmp_path: Path) -> None:
    pd.DataFrame({"account_id": [101, 102], "arr": [1.5, 2], "tier": ["a", "b"]}).to_excel(
        tmp_path / "a.xlsx", index=False
    )
    data = read(tmp_path, path="a.xlsx")
    assert column(data, "account_id") == ["101", "102"]
    assert column(data, "arr") == [1.5, 2.0]
    assert data.frame["arr"].dtype == "float64"
    assert lines_of(data) == [2, 3]


def test_preset_lower_cases_a_column_without_text(tmp_path: Path) -> None:
    frame = pd.DataFrame({"Organization": ["A"], "Created at": ["2026-01-01"], "Satisfaction Score": [np.nan]})
    frame.to_parquet(tmp_path / "t.parquet")
    data = read(tmp_path, path="t.parquet", preset="zendesk_tickets", key="organization", time="created_at")
    assert column(data, "satisfaction") == [None]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("Name, full;Amount\nBob;5\nAcme, Inc;7\n", ";"),
        ("a,b;c\n1,2;3\n4,5\n", ","),
        ("a;b\n1,5;2\n3,5;4\n", ";"),
        ('a,"b;c;d"\n1,2\n', ","),
        ("", ","),
    ],
)
def test_sniff_delimiter_uses_the_first_lines(sample: str, expected: str) -> None:
    assert sniff_delimiter(sample) == expected


def test_delimiter_auto_never_returns_one_mangled_column(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id;Name, full;arr\nA;Bob;1,5\nB;Acme, Inc;2\n")
    data = read(tmp_path, path="a.csv", decimal=",")
    assert column(data, "Name, full") == ["Bob", "Acme, Inc"]
    assert column(data, "arr") == [1.5, 2.0]


def test_directory_path_is_input_missing(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    with pytest.raises(InputMissingError) as info:
        read(tmp_path, path="exports")
    assert "holds no .parquet files" in str(info.value)


def test_keep_all_keeps_every_column_but_still_checks_needed(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,name,tier\nA,Acme,SMB\n")
    config = config_for(tmp_path, path="a.csv")
    data = read_source(config, "s", {"name"}, keep_all=True)
    assert sorted(data.frame.columns) == ["account_id", "name", "tier"]
    with pytest.raises(DataError) as info:
        read_source(config, "s", {"owner"}, keep_all=True)
    assert "column 'owner' not found" in str(info.value)


def test_epoch_seconds_in_a_csv_time_column_typed_int(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,t\nA,1769860800\nB,\n")
    data = read(tmp_path, path="a.csv", time="t", types={"t": "int"})
    assert column(data, "t") == [pd.Timestamp("2026-01-31 12:00")]
    assert data.rows_without_time == 1
    write_csv(tmp_path / "b.csv", "account_id,t\nA,2026-01-31\n")
    typed_text = read(tmp_path, path="b.csv", time="t", types={"t": "string"})
    assert column(typed_text, "t") == [pd.Timestamp("2026-01-31")]  # the time column is always times


def test_duplicate_columns_that_are_not_used_do_not_matter(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", "account_id,event,Custom [list],Custom [list]\nA,login,x,y\n")
    data = read(tmp_path, needed={"event"}, path="a.csv")
    assert column(data, "event") == ["login"]
    with pytest.raises(DataError):
        read(tmp_path, needed={"Custom [list]"}, path="a.csv")


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (1769860800, "2026-01-31 12:00:00"),
        (1769860800_250, "2026-01-31 12:00:00.250"),
        (1769860800_000_250, "2026-01-31 12:00:00.000250"),
        (1769860800_000_000_001, "2026-01-31 12:00:00.000000001"),
    ],
)
def test_epoch_units_by_size(tmp_path: Path, epoch: int, expected: str) -> None:
    pd.DataFrame({"account_id": ["A"], "t": [epoch]}).to_parquet(tmp_path / "a.parquet")
    assert column(read(tmp_path, path="a.parquet", time="t"), "t") == [pd.Timestamp(expected)]


def test_out_of_range_epoch_is_a_data_error(tmp_path: Path) -> None:
    pd.DataFrame({"account_id": ["A"], "t": [1e30]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(DataError) as info:
        read(tmp_path, path="a.parquet", time="t")
    assert "a.parquet line 1" in str(info.value)


def test_key_counts_are_worked_out_once_for_each_frame() -> None:
    """Aggregating and joining share one count of each key's rows; a new frame, or rows let
    go of, count again."""
    keys = pd.Series(pd.Categorical(["B", "A", None, "B"], categories=["A", "B", "C"]))
    data = SourceData("usage", pd.DataFrame({"account_id": keys}), "account_id", None, [])
    codes, counts, distinct = data.key_counts()
    assert codes.tolist() == [1, 0, -1, 1]
    assert counts.tolist() == [1, 2, 0]
    assert list(distinct) == ["A", "B", "C"]
    assert data.key_counts()[1] is counts  # not counted again
    data.frame = pd.DataFrame({"account_id": pd.Series(["C", "C"], dtype="str")})
    codes, counts, distinct = data.key_counts()
    assert codes.tolist() == [0, 0]
    assert counts.tolist() == [2]
    assert list(distinct) == ["C"]
    data.release_rows()
    assert data._coded is None
    assert data.key_counts()[1].tolist() == []


def test_a_run_counts_each_source_s_keys_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from healthscore import aggregate, pipeline, sources

    write_csv(tmp_path / "accounts.csv", "account_id,name\nA1,Acme\nA2,Beta\n")
    write_csv(tmp_path / "usage.csv", "account_id,ts\nA1,2026-01-30\nA1,2026-01-29\nA9,2026-01-28\n")
    config = make_config(
        tmp_path,
        accounts={"source": "accounts"},
        sources={
            "accounts": {"path": "accounts.csv", "key": "account_id"},
            "usage": {"path": "usage.csv", "key": "account_id", "time": "ts"},
        },
        metrics={"events": {"source": "usage", "agg": "count", "scale": {"method": "percentile"}}},
        groups={"usage": {"metrics": ["events"]}},
    )
    counted: list[int] = []
    count = sources.code_counts

    def counting(codes: np.ndarray, size: int) -> np.ndarray:
        counted.append(len(codes))
        return count(codes, size)

    monkeypatch.setattr(sources, "code_counts", counting)
    monkeypatch.setattr(aggregate, "code_counts", counting)
    result = pipeline.run(config)
    assert counted == [3]  # the usage's three rows, for its aggregation and its join alike
    assert result.joins["usage"].unmatched_rows == 1
    assert result.table["events"].iloc[0] == 2
