"""Scoring: weights, missing data, coverage, segments, formula, profiles, drivers.

Most tests score metrics read straight from the accounts file (`agg: value`) with
`scale: identity`, so each raw value is its 0..10 score and every expected number below
can be worked out by hand.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_config, write_csv
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from healthscore.config import Config, parse_config
from healthscore.explain import points_lost, top_drivers
from healthscore.models import SegmentConfig
from healthscore.pipeline import RunResult, run
from healthscore.scoring import (
    UNSCORED_ACTION,
    Scores,
    finish_scores,
    segment_of,
    weighted_scores,
)

NAN = float("nan")
SEGMENTS = [
    {"name": "Critical", "max": 40, "color": "red", "action": "Escalate"},
    {"name": "At-Risk", "max": 60, "color": "yellow", "action": "Check in"},
    {"name": "Healthy", "max": 80, "color": "green"},
    {"name": "Thriving", "max": 100, "color": "blue", "action": "Ask for a reference"},
]
# g1 (weight 3): a x1, b x3; g2 (weight 1): c, d equally. Shares: g1 .75, g2 .25.
GROUPS = {"g1": {"weight": 3, "metrics": {"a": 1, "b": 3}}, "g2": {"weight": 1, "metrics": ["c", "d"]}}


def value_metric(field: str, **extra: Any) -> dict[str, Any]:
    """A metric read from the accounts file, scored as is (identity) unless `scale` is given."""
    return {"source": "crm", "agg": "value", "field": field, "scale": {"method": "identity"}, **extra}


def config_for(tmp: Path, rows: list[dict[str, Any]], metrics: dict[str, Any] | None = None, **sections: Any) -> Config:
    """A config over an accounts file of `rows`; metrics default to identity a, b, c, d."""
    write_csv(tmp / "crm.csv", rows)
    columns = [c for c in ("tier",) if c in rows[0]]
    sections.setdefault("groups", GROUPS)
    sections.setdefault("segments", SEGMENTS)
    return make_config(
        tmp,
        accounts={"source": "crm", "columns": columns},
        sources={"crm": {"path": "crm.csv", "key": "account_id", "types": {"account_id": "string"}}},
        metrics=metrics or {m: value_metric(m) for m in "abcd"},
        **sections,
    )


def scored(tmp: Path, rows: list[dict[str, Any]], **kwargs: Any) -> pd.DataFrame:
    """The scored table indexed by account_id."""
    return run(config_for(tmp, rows, **kwargs)).table.set_index("account_id")


def result_for(tmp: Path, rows: list[dict[str, Any]], **kwargs: Any) -> RunResult:
    """The whole run result (table, warnings, metric scores, points lost)."""
    return run(config_for(tmp, rows, **kwargs))


def row(account: str, a: float = 2, b: float = 6, c: float = 8, d: float = 4, **more: Any) -> dict[str, Any]:
    """One accounts-file row; the defaults give g1 = 50, g2 = 60, health 52.5."""
    return {"account_id": account, "a": a, "b": b, "c": c, "d": d, **more}


# ---- the weights method ----------------------------------------------------------------------


def test_full_data_weighted_means(tmp_path: Path) -> None:
    table = scored(tmp_path, [row("A")])
    # g1 = 10 x (2x1 + 6x3)/4 = 50; g2 = 10 x (8 + 4)/2 = 60; health = .75x50 + .25x60
    assert table.loc["A", "group_g1"] == 50.0
    assert table.loc["A", "group_g2"] == 60.0
    assert table.loc["A", "health_score"] == 52.5
    assert table.loc["A", "coverage"] == 1.0
    assert table.loc["A", "segment"] == "At-Risk"


def test_missing_metric_weight_goes_to_its_group(tmp_path: Path) -> None:
    result = result_for(tmp_path, [row("A", a=NAN), row("B", c=NAN), row("Z")])
    table = result.table.set_index("account_id")
    # A: g1 = b alone = 60; health = .75x60 + .25x60; coverage = 1 - .75 x 1/4
    assert table.loc["A", "group_g1"] == 60.0
    assert table.loc["A", "health_score"] == 60.0
    assert table.loc["A", "coverage"] == pytest.approx(0.8125, abs=1e-3)
    # B: g2 = d alone = 40; health = .75x50 + .25x40; coverage = 1 - .25 x 1/2
    assert table.loc["B", "group_g2"] == 40.0
    assert table.loc["B", "health_score"] == 47.5
    assert table.loc["B", "coverage"] == pytest.approx(0.875, abs=1e-3)
    assert math.isnan(table.loc["A", "a_score"])


def test_group_without_data_gives_its_weight_to_the_others(tmp_path: Path) -> None:
    rows = [row("A", c=NAN, d=NAN), row("B", a=NAN, b=NAN), row("C", a=NAN, b=NAN, c=NAN, d=NAN)]
    table = scored(tmp_path, rows, score={"min_coverage": 0})
    assert table.loc["A", "health_score"] == 50.0  # g1 alone
    assert table.loc["A", "coverage"] == 0.75
    assert math.isnan(table.loc["A", "group_g2"])
    assert table.loc["B", "health_score"] == 60.0  # g2 alone
    assert table.loc["B", "coverage"] == 0.25
    assert math.isnan(table.loc["C", "health_score"])  # nothing at all: no score, not 0
    assert table.loc["C", "segment"] == "Unscored"
    assert table.loc["C", "coverage"] == 0.0


def test_below_min_coverage_is_unscored(tmp_path: Path) -> None:
    rows = [row("A", a=NAN, b=NAN), row("B", b=NAN), row("C", c=NAN, d=NAN)]
    table = scored(tmp_path, rows)  # default min_coverage 0.5
    assert math.isnan(table.loc["A", "health_score"])  # coverage .25
    assert table.loc["A", "segment"] == "Unscored"
    assert table.loc["A", "color"] == "grey"
    assert table.loc["A", "action"] == UNSCORED_ACTION
    assert table.loc["A", "coverage"] == 0.25
    assert math.isnan(table.loc["B", "health_score"])  # coverage 1 - .75 x 3/4 = .4375
    assert table.loc["B", "coverage"] == pytest.approx(0.438, abs=1e-3)
    assert table.loc["C", "health_score"] == 50.0  # coverage .75


def test_min_coverage_boundary_is_inclusive(tmp_path: Path) -> None:
    groups = {"g1": {"weight": 1, "metrics": ["a"]}, "g2": {"weight": 1, "metrics": ["b"]}}
    table = scored(tmp_path, [row("A", b=NAN)], groups=groups, score={"min_coverage": 0.5})
    assert table.loc["A", "coverage"] == 0.5
    assert table.loc["A", "health_score"] == 20.0


def test_effective_weights_sum_to_one_and_skip_missing(tmp_path: Path) -> None:
    result = result_for(tmp_path, [row("A"), row("B", a=NAN), row("C", a=NAN, b=NAN, c=NAN, d=NAN)])
    lost = result.points_lost
    assert lost is not None
    table = result.table.set_index("account_id")
    assert result.metric_scores is not None
    # full: a .75x.25, b .75x.75, c and d .25x.5; points lost = weight x (10 - score) x 10
    assert lost.loc["A"].tolist() == pytest.approx([15.0, 22.5, 2.5, 7.5])
    assert lost.loc["A"].sum() == pytest.approx(100 - table.loc["A", "health_score"])
    # without a: b carries all of g1
    assert lost.loc["B"].tolist() == pytest.approx([0.0, 0.75 * 4 * 10, 2.5, 7.5])
    assert lost.loc["C"].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_zero_weight_group_alone_gives_no_score(tmp_path: Path) -> None:
    groups = {"g1": {"weight": 1, "metrics": ["a"]}, "g0": {"weight": 0, "metrics": ["b"]}}
    table = scored(tmp_path, [row("A", a=NAN), row("B")], groups=groups, score={"min_coverage": 0})
    assert math.isnan(table.loc["A", "health_score"])  # only a weightless group has data
    assert table.loc["A", "segment"] == "Unscored"
    assert table.loc["B", "health_score"] == 20.0  # g0 carries nothing
    assert table.loc["B", "group_g0"] == 60.0


def test_metric_in_no_group_and_zero_weight_metric(tmp_path: Path) -> None:
    groups = {"g1": {"weight": 1, "metrics": {"a": 1, "b": 0}}}
    table = scored(tmp_path, [row("A"), row("B", a=NAN)], groups=groups, score={"min_coverage": 0})
    assert table.loc["A", "health_score"] == 20.0  # b weighs 0; c and d are in no group
    assert math.isnan(table.loc["B", "health_score"])  # b present but weightless
    assert table.loc["B", "coverage"] == 0.0


# ---- missing policies ------------------------------------------------------------------------


def test_missing_score_and_neutral_count_as_present(tmp_path: Path) -> None:
    metrics = {
        "a": value_metric("a", missing={"score": 5}),
        "b": value_metric("b"),
        "c": value_metric("c", missing="neutral"),
        "d": value_metric("d"),
    }
    table = scored(tmp_path, [row("A", a=NAN, c=NAN)], metrics=metrics)
    assert table.loc["A", "a_score"] == 5.0
    assert table.loc["A", "c_score"] == 5.0
    assert math.isnan(table.loc["A", "a"])  # the raw value stays empty
    assert table.loc["A", "coverage"] == 1.0
    # g1 = 10 x (5 + 18)/4 = 57.5; g2 = 10 x (5 + 4)/2 = 45
    assert table.loc["A", "health_score"] == pytest.approx(0.75 * 57.5 + 0.25 * 45, abs=0.05)


def test_fill_is_a_raw_value_before_normalization(tmp_path: Path) -> None:
    metrics = {
        "a": value_metric("a", scale={"method": "minmax"}, missing={"fill": 0}),
        "b": value_metric("b", scale={"method": "linear", "bad": 0, "good": 20}, missing={"fill": 10}),
    }
    groups = {"g": {"metrics": ["a", "b"]}}
    rows = [row("A", a=10, b=NAN), row("B", a=NAN, b=0), row("C", a=20, b=20)]
    table = scored(tmp_path, rows, metrics=metrics, groups=groups)
    # a: raw [10, 0, 20] -> minmax over the filled values [5, 0, 10]
    assert table["a"].tolist() == [10, 0, 20]
    assert table["a_score"].tolist() == [5.0, 0.0, 10.0]
    assert table["b_score"].tolist() == [5.0, 0.0, 10.0]
    assert table["coverage"].tolist() == [1.0, 1.0, 1.0]
    assert table["health_score"].tolist() == [50.0, 0.0, 100.0]


# ---- segments --------------------------------------------------------------------------------


def test_segment_bounds_are_inclusive_on_the_rounded_score() -> None:
    segments = tuple(SegmentConfig(**s) for s in SEGMENTS)
    values = [0, 40, 40.04, 40.1, 41, 60, 61, 80, 81, 100, NAN]
    result = segment_of(pd.Series(values), segments)
    assert result["segment"].tolist() == [
        "Critical",
        "Critical",
        "Critical",
        "At-Risk",
        "At-Risk",
        "At-Risk",
        "Healthy",
        "Healthy",
        "Thriving",
        "Thriving",
        "Unscored",
    ]
    assert result["color"].tolist()[:4] == ["red", "red", "red", "yellow"]
    assert result["color"].tolist()[-1] == "grey"
    assert result["action"].tolist()[6] == ""  # Healthy has no action
    assert result["action"].tolist()[9] == "Ask for a reference"


def test_finish_scores_rounds_then_segments(tmp_path: Path) -> None:
    groups = {"g": {"metrics": ["a"]}}
    rows = [row("A", a=4.004), row("B", a=4.01), row("C", a=6.0), row("D", a=6.06), row("E", a=8.1), row("F", a=10)]
    table = scored(tmp_path, rows, groups=groups)
    assert table["health_score"].tolist() == [40.0, 40.1, 60.0, 60.6, 81.0, 100.0]
    assert table["segment"].tolist() == ["Critical", "At-Risk", "At-Risk", "Healthy", "Thriving", "Thriving"]
    assert table["color"].tolist() == ["red", "yellow", "yellow", "green", "blue", "blue"]
    actions = ["Escalate", "Check in", "Check in", "", "Ask for a reference", "Ask for a reference"]
    assert table["action"].tolist() == actions


def test_finish_scores_blank_below_min_coverage() -> None:
    scores = Scores(
        health=pd.Series([52.549, 70.0, 10.0, -0.0]),  # -0.0: e.g. clip(-5 * x_value, 0, 100) at x = 0
        coverage=pd.Series([1.0, 0.49999, 0.5 - 1e-12, 1.0]),
        groups=pd.DataFrame(index=range(4)),
        effective_weights=pd.DataFrame(index=range(4)),
        profile=pd.Series(["default"] * 4),
    )
    result = finish_scores(scores, 0.5).tolist()
    assert result[0] == 52.5
    assert math.isnan(result[1])
    assert result[2] == 10.0  # float noise at the boundary does not unscore
    assert math.copysign(1.0, result[3]) == 1.0  # never "-0.0" in the output


# ---- formula ---------------------------------------------------------------------------------


def formula_metrics() -> dict[str, Any]:
    return {
        **{m: value_metric(m) for m in "abcd"},
        "e": value_metric("e", scale={"method": "linear", "bad": 0, "good": 100}),
    }


def test_formula_names_groups_metrics_and_raw_values(tmp_path: Path) -> None:
    rows = [row("A", e=50), row("B", e=100)]
    score = {"method": "formula", "formula": "g1 / 2 + e + e_value / 10 + a"}
    result = result_for(tmp_path, rows, metrics=formula_metrics(), score=score)
    table = result.table.set_index("account_id")
    # A: 50/2 + 5 + 50/10 + 2 = 37; B: 25 + 10 + 10 + 2 = 47
    assert table["health_score"].tolist() == [37.0, 47.0]
    assert table["segment"].tolist() == ["Critical", "At-Risk"]
    assert not [w for w in result.warnings if w.where == "score.formula"]


def test_formula_result_is_clipped_with_a_warning(tmp_path: Path) -> None:
    rows = [row("A", e=50), row("B", e=0), row("C", e=100)]
    score = {"method": "formula", "formula": "e_value * 3 - 100"}
    result = result_for(tmp_path, rows, metrics=formula_metrics(), score=score)
    assert result.table["health_score"].tolist() == [50.0, 0.0, 100.0]
    warnings = [w for w in result.warnings if w.where == "score.formula"]
    assert len(warnings) == 1
    assert "2 score(s) outside 0..100" in warnings[0].message


def test_formula_with_a_missing_input_is_unscored(tmp_path: Path) -> None:
    rows = [row("A", e=NAN), row("B", e=40)]
    score = {"method": "formula", "formula": "e * 10"}
    table = scored(tmp_path, rows, metrics=formula_metrics(), score=score)
    assert math.isnan(table.loc["A", "health_score"])
    assert table.loc["A", "segment"] == "Unscored"
    assert table.loc["B", "health_score"] == 40.0


def test_formula_without_groups_covers_the_metrics_it_uses(tmp_path: Path) -> None:
    rows = [row("A"), row("B", c=NAN), row("C", a=0, c=0)]
    score = {"method": "formula", "formula": "clip(a * 5 + c * 5 - 1, 0, 100)"}
    table = scored(tmp_path, rows, groups={}, score=score)
    assert table["health_score"].tolist()[0] == 49.0  # 10 + 40 - 1
    assert table["coverage"].tolist() == [1.0, 0.5, 1.0]
    assert table["segment"].tolist() == ["At-Risk", "Unscored", "Critical"]
    assert table.loc["C", "health_score"] == 0.0


# ---- profiles --------------------------------------------------------------------------------


def test_profiles_first_match_wins_and_unnamed_groups_keep_default(tmp_path: Path) -> None:
    profiles = {
        "enterprise": {"when": "tier == 'Enterprise'", "weights": {"g1": 1}},  # g2 keeps 1 -> .5/.5
        "larger": {"when": "tier in ['Enterprise', 'Mid']", "weights": {"g1": 1, "g2": 3}},  # .25/.75
    }
    rows = [row("E", tier="Enterprise"), row("M", tier="Mid"), row("S", tier="SMB"), row("N", tier=NAN)]
    result = result_for(tmp_path, rows, profiles=profiles)
    table = result.table.set_index("account_id")
    assert table["profile"].tolist() == ["enterprise", "larger", "default", "default"]
    # g1 = 50, g2 = 60
    assert table["health_score"].tolist() == [55.0, 57.5, 52.5, 52.5]
    assert result.summary.profiles == {"enterprise": 1, "larger": 1, "default": 2}


def test_profile_weights_change_coverage(tmp_path: Path) -> None:
    profiles = {"enterprise": {"when": "tier == 'Enterprise'", "weights": {"g1": 1, "g2": 0}}}
    rows = [row("E", tier="Enterprise", c=NAN, d=NAN), row("S", tier="SMB", c=NAN, d=NAN)]
    table = scored(tmp_path, rows, profiles=profiles)
    assert table["coverage"].tolist() == [1.0, 0.75]
    assert table["health_score"].tolist() == [50.0, 50.0]


# ---- drivers ---------------------------------------------------------------------------------


def test_points_lost_and_driver_label() -> None:
    weights = pd.DataFrame({"nps": [0.16], "csat": [0.84]}, index=["A"])
    metric_scores = pd.DataFrame({"nps": [2.0], "csat": [10.0]}, index=["A"])
    lost = points_lost(weights, metric_scores)
    assert lost.loc["A", "nps"] == pytest.approx(12.8)
    assert lost.loc["A", "csat"] == 0.0
    drivers = top_drivers(lost, metric_scores, {"nps": "NPS"})
    assert drivers.tolist() == ["NPS 2.0/10 (-12.8)"]


def test_points_lost_needs_the_same_accounts_in_order() -> None:
    """Computed by position, so frames of other accounts (or another order) are refused."""
    weights = pd.DataFrame({"nps": [0.5, 1.0]}, index=["A", "B"])
    scores = pd.DataFrame({"nps": [2.0, np.nan]}, index=["A", "B"])
    assert points_lost(weights, scores)["nps"].tolist() == [40.0, 0.0]
    with pytest.raises(ValueError, match="same accounts"):
        points_lost(weights, scores.iloc[::-1])


def test_top_drivers_three_most_points_and_missing_are_not_drivers(tmp_path: Path) -> None:
    metrics = {m: value_metric(m, label=m.upper()) for m in "abcd"}
    rows = [row("A"), row("B", b=NAN), row("C", a=10, b=10, c=10, d=10), row("D", a=NAN, b=NAN, c=NAN, d=NAN)]
    table = scored(tmp_path, rows, metrics=metrics, score={"min_coverage": 0})
    assert table.loc["A", "top_drivers"] == "B 6.0/10 (-22.5); A 2.0/10 (-15.0); D 4.0/10 (-7.5)"
    # B: a carries all of g1 (.75): 60 points; then d 7.5, c 2.5
    assert table.loc["B", "top_drivers"] == "A 2.0/10 (-60.0); D 4.0/10 (-7.5); C 8.0/10 (-2.5)"
    assert table.loc["C", "top_drivers"] == ""
    assert table.loc["D", "top_drivers"] == ""


def test_top_drivers_ties_keep_metric_order() -> None:
    weights = pd.DataFrame({"x": [0.5], "y": [0.5]})
    metric_scores = pd.DataFrame({"x": [5.0], "y": [5.0]})
    drivers = top_drivers(points_lost(weights, metric_scores), metric_scores, {})
    assert drivers.tolist() == ["x 5.0/10 (-25.0); y 5.0/10 (-25.0)"]


# ---- properties on the scoring functions -----------------------------------------------------

WEIGHTS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7, 10.0])
SCORE = st.one_of(st.just(NAN), st.floats(0, 10, allow_nan=False))


@st.composite
def models(draw: st.DrawFn) -> tuple[Config, pd.DataFrame]:
    """A config of 1..3 groups over 1..6 metrics, and a random accounts x metrics score matrix."""
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    names = [f"m{i}" for i in range(sum(sizes))]
    groups: dict[str, Any] = {}
    start = 0
    for g, size in enumerate(sizes):
        weights = draw(st.lists(WEIGHTS, min_size=size, max_size=size))
        assume(sum(weights) > 0)
        members = dict(zip(names[start : start + size], weights, strict=True))
        groups[f"g{g}"] = {"weight": draw(WEIGHTS), "metrics": members}
        start += size
    assume(sum(g["weight"] for g in groups.values()) > 0)
    n = draw(st.integers(1, 6))
    matrix = draw(st.lists(st.lists(SCORE, min_size=len(names), max_size=len(names)), min_size=n, max_size=n))
    config = parse_config(
        {
            "version": 1,
            "accounts": {"source": "crm"},
            "sources": {"crm": {"path": "crm.csv", "key": "account_id"}},
            "metrics": {
                m: {"source": "crm", "agg": "value", "field": m, "scale": {"method": "identity"}} for m in names
            },
            "groups": groups,
        }
    )
    scores = pd.DataFrame(matrix, columns=names, index=[f"acc{i}" for i in range(n)], dtype="float64")
    return config, scores


def weigh(config: Config, scores: pd.DataFrame) -> Any:
    return weighted_scores(config, scores, pd.Series("default", index=scores.index))


def rescaled(config: Config, factor: float, group: str | None = None) -> Config:
    """The config with all group weights (or one group's metric weights) multiplied by factor."""
    data = config.model_dump(exclude_none=True)
    for name, g in data["groups"].items():
        if group is None:
            g["weight"] *= factor
        elif name == group:
            g["metrics"] = {m: w * factor for m, w in g["metrics"].items()}
    return parse_config(data)


@settings(max_examples=60, deadline=None)
@given(model=models())
def test_scores_in_range_and_effective_weights_sum_to_one(model: tuple[Config, pd.DataFrame]) -> None:
    config, scores = model
    result = weigh(config, scores)
    health = result.health.to_numpy()
    scored_rows = ~np.isnan(health)
    assert np.all((health[scored_rows] >= -1e-9) & (health[scored_rows] <= 100 + 1e-9))
    groups = result.groups.to_numpy()
    assert np.all((groups[~np.isnan(groups)] >= -1e-9) & (groups[~np.isnan(groups)] <= 100 + 1e-9))
    assert np.all((result.coverage >= -1e-9) & (result.coverage <= 1 + 1e-9))
    eff = result.effective_weights.to_numpy()
    assert np.allclose(eff[scored_rows].sum(axis=1), 1.0)
    assert np.all(eff[np.isnan(scores.to_numpy())] == 0)
    # health = 100 - points lost, for every scored account
    lost = points_lost(result.effective_weights, scores).sum(axis=1).to_numpy()
    assert np.allclose(lost[scored_rows], 100 - health[scored_rows])


@settings(max_examples=40, deadline=None)
@given(model=models(), factor=st.floats(0.01, 100), data=st.data())
def test_scaling_weights_changes_nothing(model: tuple[Config, pd.DataFrame], factor: float, data: Any) -> None:
    config, scores = model
    group = data.draw(st.sampled_from([None, *config.groups]))
    before, after = weigh(config, scores), weigh(rescaled(config, factor, group), scores)
    for a, b in [(before.health, after.health), (before.coverage, after.coverage)]:
        assert np.allclose(a, b, equal_nan=True)
    assert np.allclose(before.groups, after.groups, equal_nan=True)
    assert np.allclose(before.effective_weights, after.effective_weights)


@settings(max_examples=60, deadline=None)
@given(model=models(), data=st.data())
def test_improving_a_metric_never_lowers_the_score(model: tuple[Config, pd.DataFrame], data: Any) -> None:
    config, scores = model
    i = data.draw(st.integers(0, len(scores) - 1))
    m = data.draw(st.sampled_from(list(scores.columns)))
    old = scores.iat[i, scores.columns.get_loc(m)]
    assume(not math.isnan(old))
    better = scores.copy()
    better.iat[i, better.columns.get_loc(m)] = data.draw(st.floats(old, 10))
    before, after = weigh(config, scores).health, weigh(config, better).health
    assert np.allclose(before.drop(before.index[i]), after.drop(after.index[i]), equal_nan=True)
    if not math.isnan(before.iloc[i]):
        assert after.iloc[i] >= before.iloc[i] - 1e-9


@settings(max_examples=40, deadline=None)
@given(model=models(), seed=st.integers(0, 2**32 - 1))
def test_permuting_accounts_permutes_outputs(model: tuple[Config, pd.DataFrame], seed: int) -> None:
    config, scores = model
    order = np.random.default_rng(seed).permutation(len(scores))
    before, after = weigh(config, scores), weigh(config, scores.iloc[order])
    assert np.allclose(before.health.iloc[order], after.health, equal_nan=True)
    assert np.allclose(before.coverage.iloc[order], after.coverage)
    assert np.allclose(before.groups.iloc[order], after.groups, equal_nan=True)
    assert np.allclose(before.effective_weights.iloc[order], after.effective_weights)


# ---- a property through `run` on generated CSVs ----------------------------------------------

RAW = st.one_of(st.just(NAN), st.integers(0, 40).map(float))
RUN_METRICS = {
    "logins": value_metric("logins", scale={"method": "percentile"}),
    "tickets": value_metric("tickets", scale={"method": "bands", "bands": [{"upto": 2, "score": 10}, {"score": 3}]}),
    "nps": value_metric("nps", scale={"method": "linear", "bad": 0, "good": 40}),
}
RUN_GROUPS = {"usage": {"weight": 2, "metrics": ["logins"]}, "rest": {"weight": 1, "metrics": {"tickets": 1, "nps": 2}}}


def run_table(rows: list[dict[str, Any]], groups: dict[str, Any] = RUN_GROUPS) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        config = config_for(Path(tmp), rows, metrics=RUN_METRICS, groups=groups)
        return run(config).table.set_index("account_id").sort_index()


@settings(max_examples=15, deadline=None)
@given(
    values=st.lists(st.tuples(RAW, RAW, RAW), min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
    factor=st.sampled_from([0.1, 3.0, 250.0]),
)
def test_run_properties_on_generated_csvs(values: list[tuple[float, float, float]], seed: int, factor: float) -> None:
    rows = [{"account_id": f"A{i:02d}", "logins": x, "tickets": y, "nps": z} for i, (x, y, z) in enumerate(values)]
    table = run_table(rows)
    health = table["health_score"].dropna()
    assert ((health >= 0) & (health <= 100)).all()
    assert (table["segment"] == "Unscored").tolist() == table["health_score"].isna().tolist()
    # the row order of the input does not matter
    shuffled = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
    pd.testing.assert_frame_equal(run_table(shuffled), table)
    # scaling every group weight by one factor changes nothing
    scaled = {g: {**spec, "weight": spec["weight"] * factor} for g, spec in RUN_GROUPS.items()}
    pd.testing.assert_frame_equal(run_table(rows, scaled), table)
    # a better NPS (linear: affects only that account) never lowers its score
    better = [dict(r) for r in rows]
    better[0]["nps"] = 40.0 if math.isnan(better[0]["nps"]) else min(40.0, better[0]["nps"] + 7)
    improved = run_table(better)
    first = rows[0]["account_id"]
    if not math.isnan(table.loc[first, "health_score"]):
        assert improved.loc[first, "health_score"] >= table.loc[first, "health_score"]
