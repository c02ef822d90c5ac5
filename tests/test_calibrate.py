"""calibrate: weights fitted to churn outcomes on data with known answers, the YAML rewrite
that changes nothing but the weights, and the command on the sample data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from typer.testing import CliRunner

from healthscore.calibrate import (
    GROUP_ZEROED,
    WRONG_SIGN,
    Calibration,
    GroupWeight,
    MetricWeight,
    calibrated_text,
    check_output,
    fit_logistic,
    fit_weights,
    imputed_scores,
    round_to_total,
    score_auc,
    stratified_folds,
)
from healthscore.cli import app
from healthscore.config import load_config, parse_config
from healthscore.config_edit import GroupEdit, rewrite_weights
from healthscore.errors import ConfigError, DataError, UsageError
from healthscore.pipeline import run
from healthscore.scoring import weighted_scores

runner = CliRunner()
CLEAN = yaml.safe_load  # parsed YAML, for comparing configs


def metric(name: str) -> dict[str, Any]:
    """A metric read as is from a column (identity scale: the value is the 0..10 score)."""
    return {"source": "crm", "agg": "value", "field": name, "scale": {"method": "identity"}}


def hand_config(groups: dict[str, Any]) -> Any:
    """A config of metrics a, b, c, d over one source, with the given groups."""
    return parse_config(
        {
            "version": 1,
            "accounts": {"source": "crm"},
            "sources": {"crm": {"path": "crm.csv", "key": "account_id"}},
            "metrics": {m: metric(m) for m in "abcd"},
            "groups": groups,
        }
    )


def known_answers(n: int = 600, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    """Scores where churn depends on a strongly, b weakly, c not at all, and d with the wrong
    sign (a higher d score, more churn); b is missing for a tenth of the accounts."""
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame(rng.uniform(0, 10, (n, 4)), columns=list("abcd"))
    scores.loc[rng.random(n) < 0.1, "b"] = np.nan
    logit = -1.0 - 0.6 * (scores["a"] - 5) - 0.15 * (scores["b"].fillna(5) - 5) + 0.4 * (scores["d"] - 5)
    churned = pd.Series(rng.random(n) < 1 / (1 + np.exp(-logit)), index=scores.index).astype("boolean")
    return scores, churned


EQUAL = {"usage": {"weight": 50, "metrics": ["a", "b"]}, "other": {"weight": 50, "metrics": ["c", "d"]}}


@pytest.fixture(scope="module")
def fitted() -> Calibration:
    scores, churned = known_answers()
    return fit_weights(hand_config(EQUAL), scores, churned)


def by_metric(calibration: Calibration) -> dict[str, MetricWeight]:
    return {m.metric: m for m in calibration.metrics}


# --- the fit, on known answers ----------------------------------------------------------------


def test_signs_and_order_of_the_fitted_weights(fitted: Calibration) -> None:
    m = by_metric(fitted)
    assert m["a"].beta > m["b"].beta > 0
    assert m["d"].beta < 0
    assert abs(m["c"].beta) < m["b"].beta
    assert m["a"].new_share > m["b"].new_share > m["c"].new_share
    assert m["d"].new_share == 0
    assert m["d"].flag == WRONG_SIGN
    assert [m["a"].flag, m["b"].flag] == ["", ""]
    assert {m.metric: m.old_share for m in fitted.metrics} == {"a": 25, "b": 25, "c": 25, "d": 25}


def test_written_weights_are_normalized_to_100(fitted: Calibration) -> None:
    assert sum(g.new_weight for g in fitted.groups) == pytest.approx(100, abs=1e-9)
    for group in fitted.groups:
        assert sum(group.new_metrics.values()) == pytest.approx(100, abs=1e-9)
        assert all(w >= 0 for w in group.new_metrics.values())
    usage = fitted.groups[0]
    assert usage.group == "usage"
    assert usage.new_weight > 50  # a and b carry the signal
    assert usage.new_metrics["a"] > usage.new_metrics["b"]


def test_fitted_weights_beat_the_equal_weights_out_of_sample(fitted: Calibration) -> None:
    assert fitted.cv_auc > fitted.cv_auc_current + 0.05
    assert len(fitted.fold_auc) == len(fitted.fold_auc_current) == 5
    assert fitted.lam in dict(fitted.lambda_auc)
    assert (fitted.accounts, fitted.without_outcome, fitted.unscored) == (600, 0, 0)


def test_the_fit_is_deterministic(fitted: Calibration) -> None:
    scores, churned = known_answers()
    again = fit_weights(hand_config(EQUAL), scores, churned)
    assert again.to_dict() == fitted.to_dict()
    json.dumps(again.to_dict())  # plain data


def test_row_order_does_not_change_the_weights() -> None:
    scores, churned = known_answers(300, seed=3)
    order = np.random.default_rng(0).permutation(len(scores))
    first = fit_weights(hand_config(EQUAL), scores, churned, folds=3, lambdas=(0.01, 1.0))
    shuffled = fit_weights(hand_config(EQUAL), scores.iloc[order], churned.iloc[order], folds=3, lambdas=(0.01, 1.0))
    # folds differ with row order, so the chosen lambda may too; the signs may not
    assert [np.sign(m.beta) for m in first.metrics] == [np.sign(m.beta) for m in shuffled.metrics]


def test_a_group_whose_metrics_all_have_the_wrong_sign_gets_weight_0() -> None:
    scores, churned = known_answers(400)
    groups = {"good": {"weight": 1, "metrics": ["a", "b", "c"]}, "bad": {"weight": 1, "metrics": ["d"]}}
    result = fit_weights(hand_config(groups), scores, churned, folds=3, lambdas=(0.01,))
    bad = result.groups[1]
    assert (bad.group, bad.new_weight, bad.flag) == ("bad", 0, GROUP_ZEROED)
    assert bad.new_metrics == {"d": 100}  # a group's metric weights need a positive total: kept
    assert by_metric(result)["d"].new_share == 0
    text = "version: 1\naccounts: {source: crm}\nsources: {crm: {path: crm.csv, key: account_id}}\nmetrics:\n"
    text += "".join(f"  {m}: {{source: crm, agg: value, field: {m}, scale: {{method: identity}}}}\n" for m in "abcd")
    text += "groups:\n  good:\n    metrics: [a, b, c]\n  bad:\n    metrics: [d]\n"
    written = parse_config(yaml.safe_load(calibrated_text(text, result, "outcomes.csv")))  # weight 0 is valid
    assert written.groups["bad"].weight == 0
    assert weighted_scores(written, scores, pd.Series("default", index=scores.index)).health.notna().all()


def test_missing_scores_are_imputed_as_scoring_redistributes_them() -> None:
    config = hand_config(
        {"usage": {"weight": 3, "metrics": {"a": 3, "b": 1}}, "other": {"weight": 1, "metrics": ["c"]}}
    )
    scores = pd.DataFrame({"a": [8.0, np.nan, 2.0], "b": [np.nan, np.nan, 4.0], "c": [6.0, 5.0, np.nan], "d": 0.0})
    result = weighted_scores(config, scores, pd.Series("default", index=scores.index))
    x = imputed_scores(config, scores[["a", "b", "c"]], result, ["a", "b", "c"])
    assert x[0].tolist() == [8.0, 8.0, 6.0]  # b takes its group's score (a's alone)
    assert x[1].tolist() == [5.0, 5.0, 5.0]  # the empty group takes the health score (c's alone)
    assert x[2, 2] == pytest.approx((3 * 2 + 4) / 4)  # c's group is empty: the health score = usage's
    expected = (x[:, :2] @ [3, 1] / 4 * 3 + x[:, 2]) / 4 * 10
    assert result.health.to_numpy() == pytest.approx(expected)  # same score as with the gaps


def test_a_formula_config_is_refused() -> None:
    config = parse_config(
        {
            "version": 1,
            "accounts": {"source": "crm"},
            "sources": {"crm": {"path": "crm.csv", "key": "account_id"}},
            "metrics": {"a": metric("a")},
            "score": {"method": "formula", "formula": "10 * a"},
        }
    )
    scores, churned = known_answers(100)
    with pytest.raises(ConfigError, match="formula") as caught:
        fit_weights(config, scores[["a"]], churned)
    assert caught.value.exit_code == 78


def test_too_few_churned_accounts_is_a_data_error() -> None:
    scores, churned = known_answers(200)
    churned[:] = False
    churned.iloc[:4] = True
    with pytest.raises(DataError, match="4 churned") as caught:
        fit_weights(hand_config(EQUAL), scores, churned)
    assert caught.value.exit_code == 65
    assert "--folds" in str(caught.value)


def test_accounts_without_outcome_or_score_are_left_out() -> None:
    scores, churned = known_answers(300)
    churned.iloc[:20] = pd.NA
    scores.iloc[20:30] = np.nan  # no data: unscored
    result = fit_weights(hand_config(EQUAL), scores, churned, folds=3, lambdas=(0.1,))
    assert (result.accounts, result.without_outcome, result.unscored) == (270, 20, 10)


# --- the numerical pieces ---------------------------------------------------------------------


def test_fit_logistic_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 2))
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(0.5 + 1.5 * x[:, 0] - 0.7 * x[:, 1])))).astype(float)
    b0, b = fit_logistic(x, y, 1e-6)
    assert b0 == pytest.approx(0.5, abs=0.06)
    assert b == pytest.approx([1.5, -0.7], abs=0.06)
    _, shrunk = fit_logistic(x, y, 10.0)
    assert np.all(np.abs(shrunk) < np.abs(b))


def test_score_auc_low_score_is_risk() -> None:
    churned = np.array([True, True, False, False])
    assert score_auc(np.array([1.0, 2.0, 3.0, 4.0]), churned) == 1.0
    assert score_auc(np.array([4.0, 3.0, 2.0, 1.0]), churned) == 0.0
    assert score_auc(np.array([1.0, np.nan, 1.0, 5.0]), churned) == 0.75  # NaN left out, ties count half


def test_stratified_folds_spread_each_class_and_are_seeded() -> None:
    y = np.array([True] * 10 + [False] * 40)
    fold = stratified_folds(y, 5, seed=0)
    assert np.bincount(fold[y]).tolist() == [2] * 5
    assert np.bincount(fold).tolist() == [10] * 5
    assert np.array_equal(fold, stratified_folds(y, 5, seed=0))


def test_round_to_total_keeps_the_total_exact() -> None:
    rounded = round_to_total(np.array([1.0, 1.0, 1.0]))
    assert rounded.tolist() == [33.4, 33.3, 33.3]
    assert round_to_total(np.array([0.2, 0.0, 0.7])).sum() == pytest.approx(100)


# --- the YAML rewrite -------------------------------------------------------------------------

ORIGINAL = """\
# a hand-written config
version: 1
accounts: {source: crm}   # the CRM is the spine
sources:
  crm: {path: crm.csv, key: account_id}
metrics:
  a: {source: crm, agg: value, field: a, scale: {method: identity}}
  b: {source: crm, agg: value, field: b, scale: {method: identity}}
  c: {source: crm, agg: value, field: c, scale: {method: identity}}
  d: {source: crm, agg: value, field: d, scale: {method: identity}}

# the groups
groups:
  usage:
    label: Usage   # the main one
    weight: 40  # most of it
    metrics: [a, b]  # a first
  other:
    metrics:
      - c   # flat
      - d
  tail: {weight: 20, metrics: {d: 1}}
score: {min_coverage: 0.25}
"""


def edits() -> dict[str, GroupEdit]:
    return {
        "usage": GroupEdit(70.5, "was 40%", {"a": 80, "b": 20}, {"a": "note a", "b": "note b"}),
        "other": GroupEdit(29.5, "was 40%", {"c": 100, "d": 0}, {"c": "note c", "d": "note d"}),
        "tail": GroupEdit(0, "was 20%", {"d": 100}, {"d": "note tail d"}),
    }


def without_weights(data: dict[str, Any]) -> dict[str, Any]:
    groups = {
        name: {**{k: v for k, v in g.items() if k != "weight"}, "metrics": list(g["metrics"])}
        for name, g in data["groups"].items()
    }
    return {**data, "groups": groups}


def test_rewrite_changes_the_weights_and_nothing_else() -> None:
    new = rewrite_weights(ORIGINAL, edits(), ["fitted to outcomes.csv"])
    before, after = CLEAN(ORIGINAL), CLEAN(new)
    assert without_weights(after) == without_weights(before)
    assert after["groups"] == {
        "usage": {"label": "Usage", "weight": 70.5, "metrics": {"a": 80, "b": 20}},
        "other": {"weight": 29.5, "metrics": {"c": 100, "d": 0}},
        "tail": {"weight": 0, "metrics": {"d": 100}},
    }
    for kept in ("# a hand-written config", "# the CRM is the spine", "# the groups", "# the main one"):
        assert kept in new
    lines = new.splitlines()
    assert "    weight: 70.5  # most of it  # calibrated: was 40%" in lines
    assert "    metrics:  # a first" in lines  # the list's comment moves up to its key
    assert "      a: 80  # calibrated: note a" in lines  # a list becomes a mapping, one metric a line
    assert "      c: 100   # flat  # calibrated: note c" in lines  # `- c` lines too, keeping their comments
    assert "    weight: 29.5  # calibrated: was 40%" in lines  # a group without a weight gets one
    assert "  tail: {weight: 0, metrics: {d: 100}}" in lines  # a flow group stays flow
    assert "  # calibrated: tail weight 0: was 20%" in lines  # with its notes above it
    assert lines[lines.index("groups:") - 1] == "# calibrate: fitted to outcomes.csv"
    assert lines[lines.index("groups:") - 2] == "# the groups"


def test_rewrite_twice_replaces_the_notes_instead_of_piling_them_up() -> None:
    once = rewrite_weights(ORIGINAL, edits(), ["fitted"])
    assert rewrite_weights(once, edits(), ["fitted"]) == once


def test_rewrite_keeps_windows_line_ends() -> None:
    new = rewrite_weights(ORIGINAL.replace("\n", "\r\n"), edits(), ["fitted"])
    assert new.count("\r\n") == new.count("\n")
    assert CLEAN(new) == CLEAN(rewrite_weights(ORIGINAL, edits(), ["fitted"]))


def test_rewrite_refuses_what_it_cannot_edit_in_place() -> None:
    text = "version: 1\ngroups:\n  usage:\n    weight: [1]\n    metrics: [a]\n"
    with pytest.raises(ConfigError, match="cannot rewrite"):
        rewrite_weights(text, {"usage": GroupEdit(100, "", {"a": 100}, {"a": ""})})


def a_calibration(groups: dict[str, tuple[float, dict[str, float]]]) -> Calibration:
    """A calibration with the given new weights (the rest made up), for writing tests."""
    return Calibration(
        metrics=tuple(MetricWeight(m, (g,), 0.1, 10.0, 20.0) for g, (_, metrics) in groups.items() for m in metrics),
        groups=tuple(
            GroupWeight(g, 50.0, w, dict.fromkeys(metrics, 50.0), metrics) for g, (w, metrics) in groups.items()
        ),
        lam=0.1,
        folds=5,
        seed=0,
        accounts=100,
        churned=20,
        without_outcome=0,
        unscored=0,
        cv_auc=0.8,
        cv_auc_current=0.7,
        fold_auc=(0.8,) * 5,
        fold_auc_current=(0.7,) * 5,
        lambda_auc=((0.1, 0.8),),
    )


def test_calibrated_text_checks_the_rewrite() -> None:
    calibration = a_calibration({"usage": (70.5, {"a": 80, "b": 20}), "other": (29.5, {"c": 100, "d": 0})})
    text = ORIGINAL.replace("  tail: {weight: 20, metrics: {d: 1}}\n", "")
    new = calibrated_text(text, calibration, "outcomes.csv")
    assert "# calibrate: Cross-validated AUC" not in new
    assert "# calibrate: 0.800 with these weights, 0.700 with the previous ones." in new.splitlines()
    aliased = text.replace("weight: 40", "weight: &w 40").replace("  other:\n", "  other:\n    weight: *w\n")
    with pytest.raises(ConfigError, match="cannot rewrite") as caught:
        calibrated_text(aliased, calibration, "outcomes.csv")
    assert "set the weights by hand: usage: weight 70.5" in str(caught.value)


def test_check_output_refuses_to_overwrite_or_to_break_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "health.yaml"
    path.write_text(ORIGINAL)
    config = load_config(path)
    with pytest.raises(UsageError, match="already exists") as caught:
        check_output(config, path, path, force=False)
    assert "it is the input config" in str(caught.value)
    check_output(config, path, path, force=True)
    (tmp_path / "sub").mkdir()
    with pytest.raises(UsageError, match="not in the folder"):
        check_output(config, path, tmp_path / "sub" / "new.yaml", force=False)
    check_output(config, path, tmp_path / "new.yaml", force=False)


# --- the command on the sample data -----------------------------------------------------------


@pytest.fixture(scope="module")
def sample_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/default.yaml in a temp folder, its sample_data paths made absolute."""
    folder = tmp_path_factory.mktemp("calibrate")
    text = (ROOT / "configs" / "default.yaml").read_text(encoding="utf-8")
    path = folder / "default.yaml"
    path.write_text(text.replace("../sample_data/", f"{ROOT / 'sample_data'}/"), encoding="utf-8")
    return path


OUTCOMES = ROOT / "sample_data" / "churn_outcomes.csv"


@pytest.mark.skipif(not OUTCOMES.exists(), reason="sample_data/churn_outcomes.csv not generated yet")
def test_calibrate_on_the_sample_data_beats_the_default_weights(sample_config: Path) -> None:
    output = sample_config.parent / "calibrated.yaml"
    args = ["calibrate", "-c", str(sample_config), "--outcomes", str(OUTCOMES), "-o", str(output)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cv_auc_current"] == pytest.approx(0.858, abs=5e-4)
    assert report["cv_auc"] > report["cv_auc_current"] + 0.03  # 0.933: the default weights miss the drivers
    assert report["output"] == str(output)
    share = {m["metric"]: (m["old_share"], m["new_share"]) for m in report["metrics"]}
    for driver in ("active_user_growth", "urgent_tickets_90d"):  # what churn follows in the sample data
        old, new = share[driver]
        assert new > 3 * old
    assert sum(share[m][1] for m in ("active_user_growth", "urgent_tickets_90d", "churn_probability")) > 60
    flags = {m["metric"]: m["flag"] for m in report["metrics"]}
    assert flags["onboarding_pct"] == WRONG_SIGN  # no churn driver: what it says, the drivers say better
    groups = {g["group"]: g for g in report["groups"]}
    assert (groups["onboarding"]["new_weight"], groups["onboarding"]["flag"]) == (0, GROUP_ZEROED)
    assert groups["churn_risk"]["new_weight"] > 2 * groups["churn_risk"]["old_weight"]
    before, after = CLEAN(sample_config.read_text()), CLEAN(output.read_text())
    assert without_weights(after) == without_weights(before)
    calibrated = load_config(output)
    assert run(calibrated).table["health_score"].notna().sum() > 400  # it loads and scores
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "already exists" in again.output
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "Cross-validated AUC (5 folds, nested)" in forced.stdout
    assert f"wrote {output}" in forced.stdout
    assert "\x1b[" not in forced.stdout
    text = output.read_text()
    assert "# calibrate: weights fitted by `healthscore calibrate` to " in text
    assert "      onboarding_pct: 100  # calibrated: was 100% of the group; 10% -> 0% of the score; beta -" in text


def test_calibrate_exit_codes(tmp_path: Path, sample_config: Path) -> None:
    out = sample_config.parent / "never.yaml"
    absent = runner.invoke(
        app, ["calibrate", "-c", str(sample_config), "--outcomes", str(tmp_path / "no.csv"), "-o", str(out)]
    )
    assert absent.exit_code == 66, absent.output
    assert not out.exists()
    folds = runner.invoke(
        app, ["calibrate", "-c", str(sample_config), "--outcomes", str(OUTCOMES), "-o", str(out), "--folds", "1"]
    )
    assert folds.exit_code == 2
    horizon = runner.invoke(
        app,
        ["calibrate", "-c", str(sample_config), "--outcomes", str(OUTCOMES), "-o", str(out), "--horizon-end", "soon"],
    )
    assert horizon.exit_code == 2
    assert "--horizon-end must be a date" in horizon.output


def test_a_metric_almost_nobody_has_is_not_fitted() -> None:
    """Imputed values alone (its group's score) must not earn a metric weight: it gets 0, flagged."""
    from healthscore.calibrate import TOO_LITTLE_DATA

    scores, churned = known_answers(400)
    scores["c"] = np.nan
    scores.loc[scores.index[:5], "c"] = 5.0  # 5 accounts have it: fewer than MIN_OBSERVED
    result = fit_weights(hand_config(EQUAL), scores, churned, folds=3, lambdas=(0.01,))
    c = by_metric(result)["c"]
    assert (c.flag, c.new_share, c.beta) == (TOO_LITTLE_DATA, 0, 0)
    assert by_metric(result)["a"].flag == ""
