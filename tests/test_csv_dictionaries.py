"""CSV text columns of few distinct values read dictionary-encoded on the quick path
(`csv_typed.few_valued`, chosen on a sample of the first lines): Categoricals, as Parquet
gives such columns, and the same scores as reading them as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from conftest import make_config, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from healthscore import csv_typed, readers
from healthscore.models import SourceConfig
from healthscore.pipeline import read_sources, run


def test_few_valued_columns_are_text_of_few_distinct_values() -> None:
    rows = 200
    sample = pa.table(
        {
            "event": ["login", "export", None, "share"] * (rows // 4),
            "user": [f"u{i}" for i in range(rows)],  # a value every row or so
            "plan": ["1", "2", "3", "4"] * (rows // 4),  # numbers: `coerce` may make them so
            "blank": pa.nulls(rows, pa.large_string()),
            "number": pa.array([1.5] * rows),  # parsed as read
            "mixed": ["1", "2", "n/a", "4"] * (rows // 4),
        }
    )
    source = SourceConfig(path="x.csv", key="k")
    assert csv_typed.few_valued(sample, list(range(6)), source) == [0, 5]
    assert csv_typed.few_valued(sample.slice(0, 150), [0], source) == [0]  # 3 values, 50 rows each
    assert csv_typed.few_valued(sample.slice(0, 149), [0], source) == []
    decimal = SourceConfig(path="x.csv", key="k", decimal=",")
    commas = pa.table({"rate": ["1,5", "2,5"] * 100})  # numbers written with a decimal comma
    assert csv_typed.few_valued(commas, [0], decimal) == []
    assert csv_typed.few_valued(commas, [0], source) == [0]


def usage_config(tmp_path: Path) -> Any:
    write_csv(tmp_path / "accounts.csv", "account_id,name\nA1,Acme\nA2,Beta\nA3,Gamma\n")
    metrics = {
        "logins": {"agg": "count", "where": "event == 'login'"},
        "features": {"agg": "nunique", "field": "event", "where": "event != 'login'"},
        "plan_total": {"agg": "sum", "field": "plan"},  # numbers throughout: inferred, never a dictionary
        "codes": {"agg": "nunique", "field": "code", "window": "30d"},
        "last_event": {"agg": "last", "field": "event", "scale": {"method": "categorical", "map": {"login": 10}}},
    }
    return make_config(
        tmp_path,
        accounts={"source": "accounts"},
        sources={
            "accounts": {"path": "accounts.csv", "key": "account_id"},
            "usage": {"path": "events.csv", "key": "account_id", "time": "ts"},
        },
        metrics={
            name: {"source": "usage", "scale": {"method": "percentile"}, **metric} for name, metric in metrics.items()
        },
        groups={"usage": {"metrics": list(metrics)}},
    )


EVENTS = ["login", "export", "share", "", "Login"]


@settings(max_examples=40, deadline=None)
@given(
    picks=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(EVENTS), st.integers(0, 3)), min_size=60, max_size=200),
    codes_later=st.integers(0, 3000),
)
def test_scores_equal_reading_the_columns_as_text(
    tmp_path_factory: pytest.TempPathFactory, picks: list[tuple[int, str, int]], codes_later: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("few")
    lines = [
        f"A{key + 1},2026-01-{1 + i % 28:02d}T10:00:00,{event},{plan},{'c' + str(i) if i >= codes_later else 'c'}"
        for i, (key, event, plan) in enumerate(picks)
    ]
    write_csv(tmp_path / "events.csv", "account_id,ts,event,plan,code\n" + "\n".join(lines) + "\n")
    config = usage_config(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "TYPED_SAMPLE", 1024)  # a sample of the first lines, as of a large file
        patch.setattr(csv_typed, "ROWS_A_VALUE", 2)
        coded = run(config)
        patch.setattr(csv_typed, "FEW_DISTINCT", 0)
        text = run(config)
    pd.testing.assert_frame_equal(coded.table, text.table)


def test_event_names_of_a_large_csv_are_a_categorical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [f"A{1 + i % 3},2026-01-{1 + i % 28:02d}T10:00:00,{EVENTS[i % 3]},{i % 4},c{i}" for i in range(600)]
    write_csv(tmp_path / "events.csv", "account_id,ts,event,plan,code\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(readers, "TYPED_SAMPLE", 8192)  # some 200 lines
    frame = read_sources(usage_config(tmp_path))["usage"].frame
    assert isinstance(frame["event"].dtype, pd.CategoricalDtype)
    assert frame["event"].tolist() == [EVENTS[i % 3] for i in range(600)]
    assert str(frame["plan"].dtype) == "float64"  # inferred numbers, as before
    assert str(frame["code"].dtype) == "str"  # a value a row


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_glob_keeps_text_of_few_values_one_categorical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The files of a glob, each with its own categories of event names, come together as
    one Categorical (not text, which pandas makes of differing categories), the same rows
    and scores as read as text."""
    events = {"a": EVENTS[:3], "b": ["share", "invite", "login"]}
    for part, names in events.items():
        lines = [f"A{1 + i % 3},2026-01-{1 + i % 28:02d}T10:00:00,{names[i % 3]},{i % 4},c{i}" for i in range(600)]
        text = "account_id,ts,event,plan,code\n" + "\n".join(lines) + "\n"
        write_csv(tmp_path / f"events-{part}.csv", text)
        if fmt == "parquet":
            frame = pd.read_csv(tmp_path / f"events-{part}.csv", dtype=str).astype({"plan": "int64"})
            frame.to_parquet(tmp_path / f"events-{part}.parquet", index=False)
    monkeypatch.setattr(readers, "TYPED_SAMPLE", 8192)
    config = usage_config(tmp_path)
    usage = config.sources["usage"].model_copy(update={"path": f"events-*.{fmt}"})
    config = config.model_copy(update={"sources": {**config.sources, "usage": usage}})
    frame = read_sources(config)["usage"].frame
    assert isinstance(frame["event"].dtype, pd.CategoricalDtype)
    assert list(frame["event"].cat.categories) == sorted({*events["a"], *events["b"]})
    assert frame["event"].tolist() == [names[i % 3] for names in events.values() for i in range(600)]
    coded = run(config).table
    if fmt == "csv":  # the same scores as the columns read as text
        monkeypatch.setattr(csv_typed, "FEW_DISTINCT", 0)
        pd.testing.assert_frame_equal(coded, run(config).table)
