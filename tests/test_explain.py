"""`explain`: one account's groups and metrics, their weights, contributions and points lost.

The hand-made tests score metrics read straight from the accounts file (`agg: value`,
`scale: identity`), so each raw value is its 0..10 score and every number below can be
worked out by hand. The CLI tests run the default config over the shipped sample data.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ROOT, make_config, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from healthscore.cli import app
from healthscore.config import Config, load_config
from healthscore.errors import UsageError
from healthscore.explain import AccountExplanation, close_ids, explain_account
from healthscore.pipeline import RunResult, run
from healthscore.render import make_console
from healthscore.render_explain import render_explanation

NAN = float("nan")
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
# g1 "Usage" (weight 3): a x1, b x3; g2 "Support" (weight 1): c, d equally. Shares: .75 / .25.
GROUPS = {
    "g1": {"label": "Usage", "weight": 3, "metrics": {"a": 1, "b": 3}},
    "g2": {"label": "Support", "weight": 1, "metrics": ["c", "d"]},
}
DRIVER = re.compile(r"^(.+) (-?\d+\.\d)/10 \(-(\d+\.\d)\)$")
runner = CliRunner()


def value_metric(field: str, **extra: Any) -> dict[str, Any]:
    """A metric read from the accounts file and scored as is (identity)."""
    return {"source": "crm", "agg": "value", "field": field, "scale": {"method": "identity"}, **extra}


def config_for(tmp: Path, rows: list[dict[str, Any]], metrics: dict[str, Any] | None = None, **sections: Any) -> Config:
    """A config over an accounts file of `rows` (with a name column); metrics default to a, b, c, d."""
    write_csv(tmp / "crm.csv", rows)
    sections.setdefault("groups", GROUPS)
    return make_config(
        tmp,
        accounts={"source": "crm", "columns": [c for c in ("name", "tier") if c in rows[0]], "name": "name"},
        sources={"crm": {"path": "crm.csv", "key": "account_id", "types": {"account_id": "string"}}},
        metrics=metrics or {m: value_metric(m, label=m.upper()) for m in "abcd"},
        **sections,
    )


def row(account: str, a: float = 2, b: float = 6, c: float = 8, d: float = 4, **more: Any) -> dict[str, Any]:
    """One accounts-file row; the defaults give g1 = 50, g2 = 60, health 52.5."""
    return {"account_id": account, "name": f"Name of {account}", "a": a, "b": b, "c": c, "d": d, **more}


def explained(tmp: Path, rows: list[dict[str, Any]], account: str = "A", **kwargs: Any) -> AccountExplanation:
    """Run a hand-made config and explain one account."""
    config = config_for(tmp, rows, **kwargs)
    return explain_account(run(config), config, account)


def by_name(e: AccountExplanation) -> dict[str, Any]:
    """The flat metric entries by metric name, and the groups by group name."""
    return {**{m.name: m for m in e.metrics}, **{f"group {g.name}": g for g in e.groups}}


def plain(e: AccountExplanation) -> str:
    """The explanation rendered as a non-terminal would see it."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stream:
        render_explanation(e, make_console(stream))
        stream.seek(0)
        return stream.read()


def check_invariants(e: AccountExplanation, result: RunResult) -> None:
    """The sums that tie an explanation to the score, and the points behind top_drivers."""
    assert sum(m.effective_weight for m in e.metrics) == pytest.approx(1.0, abs=1e-9)
    assert e.unrounded_score is not None
    assert sum(m.contribution for m in e.metrics) == pytest.approx(e.unrounded_score, abs=1e-9)
    assert sum(m.points_lost for m in e.metrics) == pytest.approx(100 - e.unrounded_score, abs=1e-9)
    assert sum(g.contribution for g in e.groups) == pytest.approx(e.unrounded_score, abs=1e-9)
    assert sum(g.points_lost for g in e.groups) == pytest.approx(100 - e.unrounded_score, abs=1e-9)
    assert [m.points_lost for m in e.metrics] == sorted((m.points_lost for m in e.metrics), reverse=True)
    assert [g.points_lost for g in e.groups] == sorted((g.points_lost for g in e.groups), reverse=True)
    assert result.points_lost is not None
    lost = result.points_lost.loc[result.points_lost.index == e.account_id].iloc[0]
    assert {m.name: m.points_lost for m in e.metrics} == lost.to_dict()
    assert_drivers_match(e)


def assert_drivers_match(e: AccountExplanation) -> None:
    """Each driver of the top_drivers text shows its metric's points lost and score, rounded."""
    metrics = {m.label: m for m in e.metrics}
    for part in filter(None, e.top_drivers.split("; ")):
        match = DRIVER.match(part)
        assert match, part
        metric = metrics[match.group(1)]
        assert f"{round(metric.points_lost, 1):.1f}" == match.group(3)
        assert metric.score is not None
        assert float(match.group(2)) == pytest.approx(round(metric.score, 1))


# ---- exact values on hand-made data ----------------------------------------------------------


def test_full_data_exact_values_sorted_by_points_lost(tmp_path: Path) -> None:
    config = config_for(tmp_path, [row("A")])
    result = run(config)
    e = explain_account(result, config, "A")
    assert (e.account_id, e.name, e.health_score, e.segment, e.coverage) == ("A", "Name of A", 52.5, "At-Risk", 1.0)
    assert (e.method, e.profile, e.override, e.notes) == ("weights", None, None, ())
    # b: .75 x 3/4 = .5625 of the score, at 6/10: contributes 33.75, loses 22.5
    assert [(m.name, m.weight, m.effective_weight, m.contribution, m.points_lost) for m in e.metrics] == [
        ("b", 0.5625, 0.5625, pytest.approx(33.75), pytest.approx(22.5)),
        ("a", 0.1875, 0.1875, pytest.approx(3.75), pytest.approx(15.0)),
        ("d", 0.125, 0.125, pytest.approx(5.0), pytest.approx(7.5)),
        ("c", 0.125, 0.125, pytest.approx(10.0), pytest.approx(2.5)),
    ]
    assert {m.status for m in e.metrics} == {"scored"}
    assert e.metrics[0].raw == 6.0
    assert e.metrics[0].label == "B"
    assert [(g.name, g.label, g.weight, g.score, g.points_lost) for g in e.groups] == [
        ("g1", "Usage", 0.75, 50.0, pytest.approx(37.5)),
        ("g2", "Support", 0.25, 60.0, pytest.approx(10.0)),
    ]
    assert [m.name for m in e.groups[0].metrics] == ["b", "a"]
    assert [m.name for m in e.groups[1].metrics] == ["d", "c"]
    assert e.top_drivers == "B 6.0/10 (-22.5); A 2.0/10 (-15.0); D 4.0/10 (-7.5)"
    check_invariants(e, result)


def test_missing_metric_gives_its_weight_to_its_group(tmp_path: Path) -> None:
    config = config_for(tmp_path, [row("A", a=NAN), row("B")])
    result = run(config)
    e = explain_account(result, config, "A")
    m = by_name(e)
    assert (m["a"].status, m["a"].raw, m["a"].score, m["a"].weight) == ("missing", None, None, 0.1875)
    assert (m["a"].effective_weight, m["a"].points_lost, m["a"].contribution) == (0.0, 0.0, 0.0)
    assert m["a"].note == "its 18.8% of the score went to the other metrics of Usage: B"
    assert m["b"].effective_weight == pytest.approx(0.75)
    assert m["group g1"].score == 60.0
    assert e.coverage == pytest.approx(0.8125)
    assert any("coverage 81.2%" in note for note in e.notes)
    check_invariants(e, result)


def test_group_without_data_gives_its_weight_to_the_other_groups(tmp_path: Path) -> None:
    config = config_for(tmp_path, [row("A", c=NAN, d=NAN)])
    result = run(config)
    e = explain_account(result, config, "A")
    g2 = by_name(e)["group g2"]
    assert (g2.has_data, g2.score, g2.weight, g2.effective_weight, g2.points_lost) == (False, None, 0.25, 0.0, 0.0)
    assert g2.note == "no data: its 25.0% of the score went to the other groups, in proportion to their weights: Usage"
    assert by_name(e)["c"].note == "group Support had no data: its 25.0% went to the other groups"
    assert by_name(e)["group g1"].effective_weight == pytest.approx(1.0)
    assert e.health_score == 50.0
    check_invariants(e, result)
    text = plain(e)
    assert "|     -> no data: its 25.0% of the score went to" in text
    assert "had no data" not in text  # the group's note says it, once


def test_fixed_and_neutral_scores_for_missing_data_carry_their_weight(tmp_path: Path) -> None:
    metrics = {
        "a": value_metric("a"),
        "b": value_metric("b"),
        "c": value_metric("c", missing={"score": 3}),
        "d": value_metric("d", missing="neutral"),
    }
    config = config_for(tmp_path, [row("A", c=NAN, d=NAN)], metrics=metrics)
    result = run(config)
    e = explain_account(result, config, "A")
    c, d = by_name(e)["c"], by_name(e)["d"]
    assert (c.status, c.raw, c.score, c.effective_weight) == ("fixed_score", None, 3.0, 0.125)
    assert c.note == "no data: fixed score 3/10 (missing: {score: 3})"
    assert (d.status, d.score, d.note) == ("fixed_score", 5.0, "no data: fixed score 5/10 (missing: neutral)")
    assert d.points_lost == pytest.approx(0.125 * 5 * 10)
    assert e.health_score == pytest.approx(0.75 * 50 + 0.25 * 40)
    check_invariants(e, result)


def test_filled_metric_is_scored_from_its_fill_value(tmp_path: Path) -> None:
    metrics = {**{m: value_metric(m) for m in "abc"}, "d": value_metric("d", missing={"fill": 0})}
    config = config_for(tmp_path, [row("A", d=NAN)], metrics=metrics)
    d = by_name(explain_account(run(config), config, "A"))["d"]
    assert (d.status, d.raw, d.score, d.note) == ("filled", 0.0, 0.0, "no data counts as 0 (missing: {fill: 0})")
    assert d.points_lost == pytest.approx(12.5)


def test_profile_weights_are_the_accounts_own(tmp_path: Path) -> None:
    profiles = {"enterprise": {"when": "tier == 'Enterprise'", "weights": {"g1": 1}}}  # g1 .5, g2 .5
    config = config_for(tmp_path, [row("E", tier="Enterprise"), row("S", tier="SMB")], profiles=profiles)
    result = run(config)
    e = explain_account(result, config, "E")
    assert (e.profile, e.health_score) == ("enterprise", 55.0)
    assert [(g.name, g.weight) for g in e.groups] == [("g1", 0.5), ("g2", 0.5)]
    assert by_name(e)["b"].weight == pytest.approx(0.375)
    s = explain_account(result, config, "S")
    assert (s.profile, by_name(s)["b"].weight) == ("default", 0.5625)
    check_invariants(e, result)
    assert "profile enterprise" in plain(e)


def test_formula_method_says_the_weights_explain_another_number(tmp_path: Path) -> None:
    score = {"method": "formula", "formula": "g1 / 2 + a"}  # 50 / 2 + 2 = 27
    config = config_for(tmp_path, [row("A")], score=score)
    e = explain_account(run(config), config, "A")
    assert (e.method, e.formula, e.health_score) == ("formula", "g1 / 2 + a", 27.0)
    assert e.weights_score == pytest.approx(52.5)
    assert sum(m.points_lost for m in e.metrics) == pytest.approx(47.5)
    assert len(e.notes) == 1
    assert "comes from the formula g1 / 2 + a" in e.notes[0]
    assert "which give 52.5, not from the formula" in e.notes[0]
    assert "Note: score.method is formula" in plain(e)


def test_formula_without_groups_has_no_weights(tmp_path: Path) -> None:
    score = {"method": "formula", "formula": "a * 5 + c * 5"}
    config = config_for(tmp_path, [row("A")], groups={}, score=score)
    e = explain_account(run(config), config, "A")
    assert e.groups == ()
    assert e.health_score == 50.0
    assert {(m.effective_weight, m.note) for m in e.metrics} == {(0.0, "in no group: carries no weight")}
    assert "no metric carries a weight" in e.notes[0]


def test_active_override_is_shown_with_the_computed_values(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "overrides.csv",
        "account_id,segment,score,reason,author,expires_on\nA,Thriving,,Champion promoted,ana,2026-02-28\n",
    )
    config = config_for(tmp_path, [row("A"), row("B")], overrides={"path": "overrides.csv"})
    result = run(config)
    e = explain_account(result, config, "A")
    assert e.segment == "Thriving"
    assert e.override is not None
    assert (e.override.reason, e.override.computed_score, e.override.computed_segment) == (
        "Champion promoted",
        52.5,
        "At-Risk",
    )
    assert "overridden by a CSM (Champion promoted): the model computed 52.5, At-Risk" in e.notes[0]
    check_invariants(e, result)
    assert explain_account(result, config, "B").override is None


def test_a_segment_held_outside_its_band_is_explained(tmp_path: Path) -> None:
    config = config_for(tmp_path, [row("A")])
    result = run(config)
    held = result.table.assign(segment="Healthy")  # as segments_hysteresis keeps a previous segment
    e = explain_account(dataclasses.replace(result, table=held), config, "A")
    assert e.notes == (
        "the score is in the At-Risk band; the segment stays Healthy from the previous run until the score "
        "moves far enough past the band edge (segments_hysteresis).",
    )


def test_unscored_account_says_why(tmp_path: Path) -> None:
    config = config_for(tmp_path, [row("A", a=NAN, b=NAN)], score={"min_coverage": 0.5})
    e = explain_account(run(config), config, "A")
    assert (e.health_score, e.segment, e.coverage) == (None, "Unscored", 0.25)
    assert e.notes == ("Unscored: only 25.0% of the weight had data, below score.min_coverage 50.0%.",)
    assert "No score  Unscored  |  coverage 25.0%" in plain(e)


def test_metric_in_no_group_and_metric_in_two_groups(tmp_path: Path) -> None:
    metrics = {**{m: value_metric(m, label=m.upper()) for m in "abcd"}, "e": value_metric("a"), "f": {"expr": "e * 2"}}
    groups = {"g1": {"weight": 1, "metrics": ["a", "b"]}, "g2": {"weight": 1, "metrics": ["b", "c", "d"]}}
    config = config_for(tmp_path, [row("A")], metrics=metrics, groups=groups)
    result = run(config)
    e = explain_account(result, config, "A")
    m = by_name(e)
    assert m["e"].note == "in no group: carries no weight; used by f"
    assert (m["e"].group, m["e"].groups, m["e"].effective_weight) == (None, (), 0.0)
    # b: half of g1 and a third of g2
    assert (m["b"].group, m["b"].groups) == (None, ("g1", "g2"))
    assert m["b"].effective_weight == pytest.approx(0.25 + 1 / 6)
    through = {g.name: next(x for x in g.metrics if x.name == "b") for g in e.groups}
    assert through["g1"].effective_weight == pytest.approx(0.25)
    assert through["g2"].effective_weight == pytest.approx(1 / 6)
    assert through["g1"].points_lost + through["g2"].points_lost == pytest.approx(m["b"].points_lost)
    check_invariants(e, result)
    assert "(in no group: no weight)" in plain(e)


def test_to_dict_is_json_without_nan(tmp_path: Path) -> None:
    e = explained(tmp_path, [row("A", c=NAN, d=NAN)])
    data = json.loads(json.dumps(e.to_dict(), allow_nan=False))
    assert data["as_of"] == "2026-01-31"
    assert data["groups"][1]["score"] is None
    assert [m["name"] for m in data["metrics"]] == [m.name for m in e.metrics]
    assert data["metrics"][-1]["raw"] is None


def test_rendered_text_is_plain_and_lists_every_metric(tmp_path: Path) -> None:
    text = plain(explained(tmp_path, [row("A", a=NAN)]))
    assert "\x1b[" not in text
    assert text.isascii()
    assert "A  Name of A  |  as of 2026-01-31" in text
    assert "Health score 60.0/100  At-Risk  |  coverage 81.2%" in text
    for label in ("A (missing)", "B", "C", "D", "Usage", "Support"):
        assert f"| {label} " in text or f"|   {label} " in text, label
    assert "|     -> its 18.8% of the score went to the other" in text  # beneath the metric, wrapped
    assert "metrics of Usage: B" in text
    assert "they add up to 60.0 and 40.0 (= 100 - 60.0)" in text


# ---- unknown accounts ------------------------------------------------------------------------


def test_unknown_account_names_the_source_and_suggests_close_ids(tmp_path: Path) -> None:
    config = config_for(tmp_path, [row("ACME-1"), row("ACME-2"), row("BETA-7")])
    result = run(config)
    with pytest.raises(UsageError) as info:
        explain_account(result, config, "acme-1")
    assert "no account 'acme-1' in the accounts source 'crm'" in info.value.message
    assert "crm.csv" in info.value.message
    assert info.value.problems[0].message.startswith("did you mean ACME-1")
    assert explain_account(result, config, " ACME-2 ").account_id == "ACME-2"  # surrounding spaces ignored


def test_close_ids_fold_case_then_contain_then_difflib() -> None:
    ids = pd.Series(["060809", "160809", "ACC-0042", "acc-0043", "XYZ"], dtype="str")
    assert close_ids(ids, "acc-0042") == ["ACC-0042", "acc-0043"]
    assert close_ids(ids, "0042")[0] == "ACC-0042"
    assert close_ids(ids, "60809")[:2] == ["060809", "160809"]
    assert close_ids(ids, "qqqqqq") == []


# ---- properties ------------------------------------------------------------------------------

WEIGHT = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.7])
SCORE = st.one_of(st.just(NAN), st.floats(0, 10, allow_nan=False, width=32))


@settings(max_examples=25, deadline=None)
@given(
    group_weights=st.lists(WEIGHT, min_size=2, max_size=2).filter(lambda w: sum(w) > 0),
    metric_weights=st.lists(WEIGHT, min_size=4, max_size=4).filter(lambda w: sum(w[:2]) > 0 and sum(w[2:]) > 0),
    values=st.lists(SCORE, min_size=4, max_size=4),
)
def test_contributions_add_up_to_the_score(
    group_weights: list[float], metric_weights: list[float], values: list[float]
) -> None:
    groups = {
        "g1": {"weight": group_weights[0], "metrics": dict(zip("ab", metric_weights[:2], strict=True))},
        "g2": {"weight": group_weights[1], "metrics": dict(zip("cd", metric_weights[2:], strict=True))},
    }
    with tempfile.TemporaryDirectory() as tmp:
        config = config_for(Path(tmp), [row("A", *values)], groups=groups, score={"min_coverage": 0})
        result = run(config)
        e = explain_account(result, config, "A")
    if e.unrounded_score is None:  # no weighted data at all
        assert sum(m.effective_weight for m in e.metrics) == 0
        return
    check_invariants(e, result)
    for m in e.metrics:
        if m.score is not None:
            assert m.contribution + m.points_lost == pytest.approx(100 * m.effective_weight, abs=1e-9)
        assert 0 <= m.effective_weight <= 1 + 1e-12


# ---- the command, on the sample data ---------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[Config, RunResult]:
    """The default config's run over the shipped sample data, once for the module."""
    config = load_config(DEFAULT_CONFIG)
    return config, run(config)


def critical_account(result: RunResult) -> str:
    """A Critical account of the sample with a missing metric."""
    table = result.table
    pick = table[(table["segment"] == "Critical") & (table["coverage"] < 1)]
    return str(pick["account_id"].iloc[0])


def test_sample_accounts_keep_the_invariants(sample: tuple[Config, RunResult]) -> None:
    config, result = sample
    table = result.table
    accounts = table.loc[table["segment"] != "Unscored", "account_id"].iloc[::25]
    for account in accounts:
        check_invariants(explain_account(result, config, str(account)), result)


def test_cli_explains_a_critical_account(sample: tuple[Config, RunResult]) -> None:
    config, result = sample
    account = critical_account(result)
    out = runner.invoke(app, ["explain", account, "-c", str(DEFAULT_CONFIG)])
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "\x1b[" not in text
    assert text.startswith(f"{account}  ")
    assert "Critical" in text.splitlines()[1]
    for metric in config.metrics:
        assert config.metric_label(metric) in text, metric
    assert "(missing)" in text
    assert "of the score went to" in text
    assert "match no account" in out.stderr  # the run's data warnings, on stderr


def test_cli_json_points_lost_match_top_drivers(sample: tuple[Config, RunResult]) -> None:
    config, result = sample
    account = critical_account(result)
    out = runner.invoke(app, ["explain", account, "-c", str(DEFAULT_CONFIG), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    drivers = result.table.set_index("account_id").loc[account, "top_drivers"]
    assert data["top_drivers"] == drivers
    lost = {m["label"]: m["points_lost"] for m in data["metrics"]}
    for part in drivers.split("; "):
        match = DRIVER.match(part)
        assert match, part
        assert f"{lost[match.group(1)]:.1f}" == match.group(3)
    assert sum(m["points_lost"] for m in data["metrics"]) == pytest.approx(100 - data["unrounded_score"], abs=1e-4)
    assert {m["name"] for m in data["metrics"]} == set(config.metrics)
    assert not math.isnan(data["coverage"])


def test_cli_unknown_account_exits_2_with_a_suggestion(sample: tuple[Config, RunResult]) -> None:
    _, result = sample
    account = critical_account(result)
    out = runner.invoke(app, ["explain", account.lstrip("0") + "x", "-c", str(DEFAULT_CONFIG)])
    assert out.exit_code == 2
    assert "usage error: no account" in out.stderr
    assert "crm_accounts.csv" in out.stderr
    assert "did you mean" in out.stderr
    assert out.stdout == ""


def test_cli_bad_config_exits_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\naccounts: {source: nowhere}\nsources: {}\nmetrics: {}\n")
    out = runner.invoke(app, ["explain", "001", "-c", str(bad)])
    assert out.exit_code == 78, out.output
    assert "config error" in out.stderr
