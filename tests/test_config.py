"""The config layer: YAML loading, validation of every key, cross-checks, and their messages.

Each error test asserts the `where`, `message` and `hint` of every `Problem`, since the
user fixes the file from exactly those.
"""

from __future__ import annotations

import copy
import hashlib
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_config
from pydantic import BaseModel

from healthscore.config import Config, load_config, parse_config
from healthscore.errors import ConfigError, InputMissingError, Problem

YAML_BOOL_HINT = 'YAML reads unquoted yes/no/on/off/true/false as true/false; put the value in quotes, like "NO"'
YAML_BOOL_KEY_HINT = 'YAML reads unquoted yes/no/on/off/true/false as true/false; put the key in quotes, like "NO"'
YAML_NUMBER_HINT = 'YAML reads unquoted numbers as numbers (02116 as octal 1102); put the value in quotes, like "02116"'
YAML_NUMBER_KEY_HINT = (
    'YAML reads unquoted numbers as numbers (02116 as octal 1102); put the key in quotes, like "02116"'
)
DUPLICATE_HINT = "YAML keeps only the last of duplicate keys; remove one"

# The example of CONFIG.md (the user-facing contract), verbatim: every key in it must work.
CONFIG_MD_EXAMPLE = """\
version: 1                      # required
as_of: 2026-01-31               # the scoring date; default today; --as-of overrides

accounts:                       # the spine: one row per account (usually the CRM)
  source: crm                   # required: a source name below
  columns: [name, owner, region, tier, arr, renewal_date]   # passed through to the output
  name: name                    # column shown for an account in summaries (default: the key)
  arr: arr                      # annual recurring revenue, for "ARR at risk" figures (optional)

sources:                        # required: name -> how to read one export
  crm:
    path: exports/crm_accounts.csv   # relative to this file; a glob reads many files as one
    format: csv                 # csv | parquet | xlsx | jsonl; default from the suffix
    key: account_id             # required: the account key column (after rename)
    rename: {"Account ID": account_id, "Account Name": name, "Annual Revenue": arr}
    types: {arr: float, renewal_date: date, account_id: string}   # string | int | float | bool | date | datetime
    key_transform: [strip]      # strip | lower | upper | salesforce18
  tickets:
    preset: zendesk_tickets     # a shipped column map + types for a known tool's export
    path: exports/tickets.csv
    key: organization
    time: created_at            # the event time column; windows filter on it
    encoding: auto              # auto | utf-8 | utf-16 | cp1252 | ...
    delimiter: auto             # auto | "," | ";" | "\\t" | "|"
    decimal: "."                # "," for European exports
    thousands: null             # e.g. ","
    na_values: ["", "N/A", "#N/A", "-"]
    date_format: ISO8601        # or a strptime pattern like "%m/%d/%Y"
  nps:
    path: exports/nps.csv
    key: account_id
    time: responded_at
  usage:
    path: exports/usage/*.parquet
    key: account_id
    time: timestamp

metrics:                        # required: name -> one number per account
  logins_30d:
    source: usage
    agg: count                  # see the aggregation list below
    where: "event == 'login'"   # optional row filter (restricted expression)
    window: 30d                 # rows with time in (as_of - 30d, as_of]
    scale: {method: percentile} # see the normalization list below
    missing: {fill: 0}          # no rows means 0 logins, not unknown
    kind: leading               # leading | lagging (a label, reported)
  feature_adoption:
    source: usage
    agg: nunique
    field: event
    window: 30d
    scale: {method: linear, bad: 2, good: 15}
  active_user_growth:
    source: usage
    agg: growth                 # change of an inner aggregate vs the previous window
    of: {agg: nunique, field: user_id}
    window: 30d
    scale: {method: linear, bad: -0.5, good: 0.2}
  nps:
    source: nps
    agg: nps                    # %promoters (9-10) - %detractors (0-6), -100..100
    field: score
    window: 180d
    scale: {method: linear, bad: -100, good: 100}
  tickets_30d:
    source: tickets
    agg: count
    window: 30d
    scale: {method: bands, bands: [{upto: 2, score: 10}, {upto: 5, score: 6}, {score: 2}]}
    missing: {fill: 0}
  urgent_tickets_90d:
    source: tickets
    agg: count
    where: "priority in ['urgent', 'high']"
    window: 90d
    scale: {method: linear, bad: 5, good: 0}   # bad > good: fewer is better
    missing: {fill: 0}
  resolution_hours:
    source: tickets
    agg: median
    field: resolution_hours
    window: 90d
    direction: lower_is_better  # inverts population methods (percentile, minmax, zscore)
    scale: {method: percentile}
  csat:
    source: tickets
    agg: share                  # share of rows matching `of_rows` among rows matching `where`
    where: "satisfaction in ['good', 'bad']"
    of_rows: "satisfaction == 'good'"
    window: 90d
    scale: {method: linear, bad: 0.5, good: 1.0}
  days_since_login:
    source: usage
    agg: days_since
    where: "event == 'login'"
    scale: {method: bands, bands: [{upto: 3, score: 10}, {upto: 14, score: 6}, {upto: 30, score: 3}, {score: 0}]}
  onboarding_pct:
    source: crm
    agg: value                  # a column of the source, one row per account
    field: onboarding_completion
    scale: {method: linear, bad: 0, good: 100}
  logins_per_seat:
    expr: "logins_30d / seats"  # derived from other metrics / spine columns
    scale: {method: log_percentile}

groups:                         # required for method: weights
  adoption:
    label: Product Adoption & Usage
    weight: 25
    metrics: [logins_30d, feature_adoption, days_since_login]   # equal weights
  sentiment:
    label: CSAT & NPS
    weight: 20
    metrics: {nps: 2, csat: 1}  # or explicit weights within the group
  support:
    weight: 15
    metrics: [tickets_30d, urgent_tickets_90d, resolution_hours]

score:
  method: weights               # weights | formula
  # in a formula a group name is its 0..100 score, a metric name its 0..10
  # score, and <metric>_value the metric's raw value
  formula: "clip(0.6*adoption + 0.4*sentiment - 5*urgent_tickets_90d_value, 0, 100)"
  min_coverage: 0.5             # default 0.5; below it: segment Unscored, no score

segments:                       # ordered; `max` is an inclusive upper bound
  - {name: Critical, max: 40, color: red, action: "Escalate: exec sponsor call within 48h"}
  - {name: At-Risk, max: 60, color: yellow, action: "CSM check-in this week"}
  - {name: Healthy, max: 80, color: green}
  - {name: Thriving, max: 100, color: blue, action: "Ask for a reference or expansion"}

profiles:                       # optional: other weights for some accounts
  enterprise:
    when: "tier == 'Enterprise'"
    weights: {adoption: 20, sentiment: 30, support: 15}

overrides:                      # optional CSM overrides, with expiry
  path: exports/csm_overrides.csv   # account_id, segment or score, reason, expires_on

history:                        # optional: one snapshot per as_of, for trends
  path: history/

outputs:
  dir: out/
  name: health_scores
  formats: [csv, parquet]       # csv | parquet | xlsx | json | jsonl
"""


def base() -> dict[str, Any]:
    """A small valid config as plain data; each test changes a fresh copy."""
    return copy.deepcopy(
        {
            "version": 1,
            "as_of": "2026-01-31",
            "accounts": {"source": "crm", "columns": ["name", "tier"]},
            "sources": {
                "crm": {"path": "accounts.csv", "key": "account_id"},
                "usage": {"path": "usage.csv", "key": "account_id", "time": "timestamp"},
                "tickets": {"path": "tickets.csv", "key": "account_id", "time": "created_at"},
            },
            "metrics": {
                "logins": {
                    "source": "usage",
                    "agg": "count",
                    "where": "event == 'login'",
                    "window": "30d",
                    "missing": {"fill": 0},
                },
                "tickets": {
                    "source": "tickets",
                    "agg": "count",
                    "window": "30d",
                    "scale": {"method": "linear", "bad": 10, "good": 0},
                },
                "onboarding": {
                    "source": "crm",
                    "agg": "value",
                    "field": "onboarding_pct",
                    "scale": {"method": "linear", "bad": 0, "good": 100},
                },
            },
            "groups": {
                "adoption": {"weight": 60, "metrics": ["logins", "onboarding"]},
                "support": {"weight": 40, "metrics": ["tickets"]},
            },
        }
    )


def problems(data: Any) -> list[tuple[str, str, str]]:
    """(where, message, hint) of every problem `parse_config` reports for `data`."""
    with pytest.raises(ConfigError) as caught:
        parse_config(data, origin="test.yaml")
    assert caught.value.exit_code == 78
    assert caught.value.message == "test.yaml is not valid"
    assert all(isinstance(p, Problem) for p in caught.value.problems)
    return [(p.where, p.message, p.hint) for p in caught.value.problems]


def with_metric(metric: dict[str, Any], name: str = "m") -> dict[str, Any]:
    data = base()
    data["metrics"][name] = metric
    return data


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_problems(path: Path) -> tuple[str, list[tuple[str, str, str]]]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.exit_code == 78
    return caught.value.message, [(p.where, p.message, p.hint) for p in caught.value.problems]


# --- valid configs ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default.yaml", "minimal.yaml"])
def test_shipped_configs_load_and_point_at_the_sample_data(name: str) -> None:
    path = ROOT / "configs" / name
    config = load_config(path)
    assert config.version == 1
    assert config.path == path
    assert config.base_dir == ROOT / "configs"
    assert config.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for source in config.sources.values():
        assert config.resolve(source.path).parent == ROOT / "sample_data"
        assert config.resolve(source.path).exists(), source.path


def test_default_config_matches_the_documented_model() -> None:
    config = load_config(ROOT / "configs" / "default.yaml")
    weights = {name: group.weight for name, group in config.groups.items()}
    assert weights == {
        "adoption": 25,
        "sentiment": 20,
        "churn_risk": 20,
        "support": 15,
        "onboarding": 10,
        "engagement": 5,
        "revenue": 5,
    }
    assert [(s.name, s.max) for s in config.segments] == [
        ("Critical", 40),
        ("At-Risk", 60),
        ("Healthy", 80),
        ("Thriving", 100),
    ]
    assert config.sources["tickets"].preset == "zendesk_tickets"


def assert_every_key_kept(model: BaseModel, data: dict[str, Any], path: str) -> None:
    """Every key of `data` was given to `model` (none dropped, none defaulted), recursively."""
    for key, value in data.items():
        assert key in model.model_fields_set, f"{path}.{key} was not taken"
        held = getattr(model, key)
        if isinstance(held, BaseModel) and isinstance(value, dict):
            assert_every_key_kept(held, value, f"{path}.{key}")
        elif isinstance(held, dict) and isinstance(value, dict):
            for name, entry in value.items():
                if isinstance(held[name], BaseModel):
                    assert_every_key_kept(held[name], entry, f"{path}.{key}.{name}")
        elif isinstance(held, tuple) and isinstance(value, list):
            for i, (item, entry) in enumerate(zip(held, value, strict=True)):
                if isinstance(item, BaseModel):
                    assert_every_key_kept(item, entry, f"{path}.{key}.{i}")


def test_every_key_of_the_config_md_example_is_accepted(tmp_path: Path) -> None:
    import yaml

    path = write(tmp_path, CONFIG_MD_EXAMPLE)
    config = load_config(path)
    assert_every_key_kept(config, yaml.safe_load(CONFIG_MD_EXAMPLE), "config")

    tickets = config.sources["tickets"]
    assert (tickets.preset, tickets.time, tickets.encoding, tickets.delimiter) == (
        "zendesk_tickets",
        "created_at",
        "auto",
        "auto",
    )
    assert (tickets.decimal, tickets.thousands, tickets.date_format) == (".", None, "ISO8601")
    assert tickets.na_values == ("", "N/A", "#N/A", "-")
    crm = config.sources["crm"]
    assert crm.rename == {"Account ID": "account_id", "Account Name": "name", "Annual Revenue": "arr"}
    assert crm.types == {"arr": "float", "renewal_date": "date", "account_id": "string"}
    assert (crm.format, crm.key_transform) == ("csv", ("strip",))
    assert config.resolve(config.sources["usage"].path) == tmp_path / "exports" / "usage" / "*.parquet"

    metrics = config.metrics
    assert metrics["logins_30d"].missing_fill == 0
    assert metrics["logins_30d"].kind == "leading"
    assert metrics["active_user_growth"].of is not None
    assert (metrics["active_user_growth"].of.agg, metrics["active_user_growth"].of.field) == ("nunique", "user_id")
    assert metrics["resolution_hours"].direction == "lower_is_better"
    assert metrics["csat"].of_rows == "satisfaction == 'good'"
    assert metrics["logins_per_seat"].expr == "logins_30d / seats"
    assert metrics["logins_per_seat"].source is None
    bands = metrics["days_since_login"].scale.bands
    assert bands is not None
    assert [(b.upto, b.score) for b in bands] == [(3, 10), (14, 6), (30, 3), (None, 0)]

    assert config.groups["adoption"].metrics == {"logins_30d": 1, "feature_adoption": 1, "days_since_login": 1}
    assert config.groups["sentiment"].metrics == {"nps": 2, "csat": 1}
    assert config.group_label("support") == "support"
    assert config.group_label("sentiment") == "CSAT & NPS"
    assert config.score.formula == "clip(0.6*adoption + 0.4*sentiment - 5*urgent_tickets_90d_value, 0, 100)"
    assert config.segments[2].action == ""
    assert config.profiles["enterprise"].weights == {"adoption": 20, "sentiment": 30, "support": 15}
    assert config.overrides is not None
    assert config.overrides.path == "exports/csm_overrides.csv"
    assert config.history is not None
    assert config.history.path == "history/"
    assert (config.outputs.dir, config.outputs.name, config.outputs.formats) == (
        "out/",
        "health_scores",
        ("csv", "parquet"),
    )


def test_the_embedded_example_is_the_one_of_config_md() -> None:
    doc = ROOT.parent / "shared" / "CONFIG.md"
    if not doc.exists():
        pytest.skip("CONFIG.md is not beside the repository")
    block = re.search(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    assert block is not None
    assert block.group(1) == CONFIG_MD_EXAMPLE


def test_defaults_of_optional_keys(tmp_path: Path) -> None:
    data = base()
    del data["as_of"]
    config = parse_config(data, base_dir=tmp_path)
    assert config.as_of is None
    crm = config.sources["crm"]
    assert (crm.format, crm.time, crm.key_transform, crm.encoding, crm.delimiter) == (
        None,
        None,
        ("strip",),
        "auto",
        "auto",
    )
    assert crm.na_values == ("", "#N/A", "N/A", "n/a", "NULL", "null", "NaN", "nan")
    assert (config.score.method, config.score.formula, config.score.min_coverage) == ("weights", None, 0.5)
    assert [(s.name, s.max, s.color) for s in config.segments] == [
        ("Critical", 40, "red"),
        ("At-Risk", 60, "yellow"),
        ("Healthy", 80, "green"),
        ("Thriving", 100, "blue"),
    ]
    assert (config.outputs.dir, config.outputs.name, config.outputs.formats) == (
        "out/",
        "health_scores",
        ("csv", "parquet"),
    )
    assert (config.profiles, config.overrides, config.history) == ({}, None, None)
    metric = config.metrics["tickets"]
    assert (metric.direction, metric.missing, metric.kind, metric.label) == (
        "higher_is_better",
        "redistribute",
        None,
        None,
    )
    assert config.metrics["onboarding"].scale.z == 2.0
    assert config.metric_label("tickets") == "tickets"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = parse_config(base(), base_dir=tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        config.version = 2  # type: ignore[misc,assignment]
    with pytest.raises(ValueError, match="frozen"):
        config.metrics["logins"].window = "7d"  # type: ignore[misc]


def test_yaml_anchors_and_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        accounts: {source: crm}
        sources:
          crm: {path: a.csv, key: account_id}
          usage: {path: u.csv, key: account_id, time: timestamp}
        metrics:
          logins_30d: &logins {source: usage, agg: count, where: "event == 'login'", window: 30d}
          logins_90d: {<<: *logins, window: 90d}
        groups:
          usage: {metrics: [logins_30d, logins_90d]}
        """,
    )
    config = load_config(path)
    assert config.metrics["logins_90d"].window == "90d"
    assert config.metrics["logins_90d"].where == "event == 'login'"
    assert config.metrics["logins_30d"].window == "30d"


# --- loading: files and YAML -------------------------------------------------------------


def test_missing_config_file_is_input_missing(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.exit_code == 66
    assert caught.value.message == f"config file not found: {tmp_path / 'nope.yaml'}"


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputMissingError) as caught:
        load_config(tmp_path)
    assert caught.value.exit_code == 66
    assert caught.value.message.startswith(f"cannot read config file {tmp_path}: ")


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\naccounts: {source: crm\nsources: {}\n")
    message, found = load_problems(path)
    assert message == f"{path} is not valid YAML"
    assert found == [("line 3, column 8", "while parsing a flow mapping: expected ',' or '}', but got ':'", "")]


def test_tab_indentation_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\naccounts:\n\tsource: crm\n")
    message, found = load_problems(path)
    assert message == f"{path} is not valid YAML"
    [(where, text, hint)] = found
    assert where == "line 3, column 1"
    assert "'\\t'" in text
    assert hint == "indent with spaces; YAML does not allow tabs there"


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "version: !!python/object/apply:os.system [echo hi]\n")
    message, found = load_problems(path)
    assert message == f"{path} is not valid YAML"
    assert found == [
        (
            "line 1, column 10",
            "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'",
            "",
        )
    ]


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n---\nversion: 1\n")
    _, found = load_problems(path)
    assert found == [("line 2, column 1", "expected a single document in the stream: but found another document", "")]


def test_impossible_date_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nas_of: 2026-02-30\n")
    message, found = load_problems(path)
    assert message == f"{path} is not valid YAML"
    assert found == [("line 2, column 8", "invalid date '2026-02-30': day is out of range for month", "")]


def test_text_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"version: 1\naccounts: {source: \xff}\n")
    message, found = load_problems(path)
    assert message == f"{path} is not valid YAML"
    assert found == [("line 2", "byte 0xff cannot be read as utf-8: invalid start byte", "save the file as UTF-8")]


def test_unhashable_key_is_a_yaml_error(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\n? [a, b]\n: 1\n")
    message, found = load_problems(path)
    assert message == f"{path} is not valid YAML"
    assert found == [("line 2, column 3", "while constructing a mapping: found unhashable key", "")]


def test_duplicate_keys_are_all_listed_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        accounts: {source: crm}
        version: 1
        sources:
          crm: {path: a.csv, key: account_id, key: id}
        metrics:
          nps: {source: crm, agg: value, field: nps}
          logins: {source: crm, agg: value, field: logins}
          nps: {source: crm, agg: value, field: nps2}
        """,
    )
    message, found = load_problems(path)
    assert message == f"{path} has duplicate keys"
    assert found == [
        ("line 3, column 1", 'duplicate key "version" (first at line 1)', DUPLICATE_HINT),
        ("line 5, column 39", 'duplicate key "key" (first at line 5)', DUPLICATE_HINT),
        ("line 9, column 3", 'duplicate key "nps" (first at line 7)', DUPLICATE_HINT),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_empty_config_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message, found = load_problems(path)
    assert message == f"{path} is empty"
    assert found == [("", "expected a mapping with `version: 1`", "")]


@pytest.mark.parametrize(("text", "shown"), [("- version: 1\n", "a list"), ("hello\n", '"hello"'), ("12\n", "12")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, shown: str) -> None:
    path = write(tmp_path, text)
    message, found = load_problems(path)
    assert message == f"{path} is not valid"
    assert found == [
        (
            "",
            f"expected a mapping of keys at the top level, got {shown}",
            "a config file is a mapping of keys, starting with `version: 1`",
        )
    ]


def test_required_sections(tmp_path: Path) -> None:
    assert problems({"version": 1}) == [
        ("accounts", "required key is missing", ""),
        ("sources", "required key is missing", ""),
        ("metrics", "required key is missing", ""),
        (
            "groups",
            "score.method weights needs at least one group",
            "add groups of metrics with weights, or set score.method: formula",
        ),
    ]
    data = base()
    data["version"] = 2
    del data["sources"]["crm"]["key"]
    assert problems(data) == [
        ("version", "Input should be 1, got 2", ""),
        ("sources.crm.key", "required key is missing", ""),
    ]


# --- paths -------------------------------------------------------------------------------


def test_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = CONFIG_MD_EXAMPLE
    path = write(tmp_path / "project" / "configs", text)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("project/configs/config.yaml"))
    here = tmp_path / "project" / "configs"
    assert config.base_dir == here
    assert config.path == Path("project/configs/config.yaml")
    assert config.resolve("x.csv") == here / "x.csv"
    assert config.resolve("../data/x.csv") == tmp_path / "project" / "data" / "x.csv"
    assert config.resolve(str(tmp_path / "abs.csv")) == tmp_path / "abs.csv"
    assert config.resolve(config.outputs.dir) == here / "out"
    assert config.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(config.sha256) == 64


def test_config_built_in_code_resolves_against_its_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(tmp_path, **{k: v for k, v in base().items() if k not in ("version", "as_of")})
    assert config.resolve("accounts.csv") == tmp_path / "accounts.csv"
    assert (config.sha256, config.path) == ("", None)
    monkeypatch.chdir(tmp_path)
    assert parse_config(base()).base_dir == tmp_path


def test_sha256_changes_with_the_bytes(tmp_path: Path) -> None:
    first = load_config(write(tmp_path, CONFIG_MD_EXAMPLE, "a.yaml"))
    second = load_config(write(tmp_path, CONFIG_MD_EXAMPLE + "# a comment\n", "b.yaml"))
    assert first.sha256 != second.sha256
    assert first.model_dump() == second.model_dump()


# --- every problem at once ---------------------------------------------------------------


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        accounts: {source: crm}
        sources:
          crm: {path: crm.csv, key: account_id}
          usage: {path: usage.csv, key: account_id, time: timestamp}
        metrics:
          nps: {source: usage, agg: count, window: thirty}
          logins: {source: usage, agg: count, widnow: 30d}
          tickets: {source: zendesk, agg: count}
          seats: {source: crm, agg: value, field: seats}
        groups:
          adoption: {weight: -5, metrics: [nps, logins]}
          support: {weight: 0, metrics: [tickets, seat]}
          other: {weight: 0, metrics: [seats]}
        segments:
          - {name: Critical, max: 60}
          - {name: Healthy, max: 40}
          - {name: Thriving, max: 90}
        """,
    )
    message, found = load_problems(path)
    assert message == f"{path} is not valid"
    assert found == [
        ("metrics.nps.window", 'expected a duration like 30d, 12w, 6m or 1y, got "thirty"', ""),
        ("metrics.logins.widnow", "unknown key", "did you mean `window`?"),
        ("groups.adoption.weight", "Input should be greater than or equal to 0, got -5", ""),
        ("metrics.tickets.source", "unknown source 'zendesk'", "known sources: crm, usage"),
        ("groups.support.metrics", "unknown metric 'seat'", "did you mean `seats`?"),
        ("segments", "segment maxima must increase, got 60, 40, 90", "list the segments from worst to best"),
        ("segments.2.max", "the last segment must end at max: 100, got 90", ""),
    ]


def test_entries_with_problems_still_count_as_known_names() -> None:
    data = base()
    data["metrics"]["logins"]["window"] = "a month"  # logins is dropped for the cross-checks...
    data["sources"]["usage"]["delimiter"] = "tab"  # ...and so is the usage source
    data["metrics"]["active"] = {"source": "usage", "agg": "nunique", "field": "user_id"}
    data["groups"]["adoption"]["metrics"].append("active")
    assert problems(data) == [
        ("sources.usage.delimiter", "Input should be 'auto', ',', ';', '\\t' or '|', got \"tab\"", ""),
        ("metrics.logins.window", 'expected a duration like 30d, 12w, 6m or 1y, got "a month"', ""),
    ]  # ...but no "unknown metric 'logins'" in groups.adoption, nor "unknown source 'usage'"


def test_zero_total_group_weight() -> None:
    data = base()
    data["groups"]["adoption"]["weight"] = 0
    data["groups"]["support"]["weight"] = 0
    assert problems(data) == [("groups", "group weights must have a positive total", "give some group a weight")]


# --- unknown keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where", "hint"),
    [
        (lambda d: d.update(metric=d.pop("metrics")), "metric", "did you mean `metrics`?"),
        (lambda d: d["sources"]["crm"].update(delimeter=";"), "sources.crm.delimeter", "did you mean `delimiter`?"),
        (lambda d: d["accounts"].update(colums=["a"]), "accounts.colums", "did you mean `columns`?"),
        (
            lambda d: d["metrics"]["tickets"]["scale"].update(methd="linear"),
            "metrics.tickets.scale.methd",
            "did you mean `method`?",
        ),
        (
            lambda d: d["metrics"]["logins"]["missing"].update(fil=0),
            "metrics.logins.missing.fil",
            "did you mean `fill`?",
        ),
        (lambda d: d["groups"]["support"].update(wieght=3), "groups.support.wieght", "did you mean `weight`?"),
        (
            lambda d: d.update(segments=[{"name": "A", "max": 100, "colour": "red"}]),
            "segments.0.colour",
            "did you mean `color`?",
        ),
        (lambda d: d.update(outputs={"formt": ["csv"]}), "outputs.formt", "did you mean `formats`?"),
        # metric names that are also key names must not confuse the suggestion
        (
            lambda d: d["metrics"].update(scale={"source": "usage", "agg": "count", "widow": "7d"}),
            "metrics.scale.widow",
            "did you mean `window`?",
        ),
        (
            lambda d: d["metrics"]["tickets"].update(zzz=1),
            "metrics.tickets.zzz",
            "known keys: source, agg, field, where, of_rows, of, window, expr, scale, direction, missing, kind, label",
        ),
    ],
)
def test_unknown_keys_suggest_the_closest_known_key(change: Any, where: str, hint: str) -> None:
    data = base()
    change(data)
    found = problems(data)
    assert (where, "unknown key", hint) in found
    if where == "metric":
        assert found == [("metrics", "required key is missing", ""), ("metric", "unknown key", hint)]
    else:
        assert found == [(where, "unknown key", hint)]


# --- metric shape rules ------------------------------------------------------------------

SHAPE_CASES = [
    ({"source": "usage", "agg": "sum"}, "metrics.m", "agg sum needs a `field`"),
    ({"source": "crm", "agg": "value"}, "metrics.m", "agg value needs a `field`"),
    (
        {"source": "usage", "agg": "count", "field": "x"},
        "metrics.m",
        "agg count takes no `field` (use `where` to filter rows)",
    ),
    (
        {"source": "usage", "agg": "share"},
        "metrics.m",
        "agg share needs `of_rows` (the rows counted, among those of `where`)",
    ),
    ({"source": "usage", "agg": "count", "of_rows": "x == 1"}, "metrics.m", "`of_rows` belongs to agg share"),
    (
        {"source": "usage", "agg": "growth", "of": {"agg": "nunique", "field": "user_id"}},
        "metrics.m",
        "agg growth needs `of` (the inner aggregate) and a `window`",
    ),
    (
        {"source": "usage", "agg": "growth", "window": "30d"},
        "metrics.m",
        "agg growth needs `of` (the inner aggregate) and a `window`",
    ),
    (
        {"source": "usage", "agg": "growth", "window": "30d", "of": {"agg": "sum"}},
        "metrics.m.of",
        "agg sum needs a `field`",
    ),
    ({"source": "usage", "agg": "count", "of": {"agg": "count"}}, "metrics.m", "`of` belongs to agg growth"),
    (
        {"source": "usage", "agg": "growth", "window": "7d", "of": {"agg": "count", "field": "x"}},
        "metrics.m.of",
        "agg count takes no `field` (it counts the rows)",
    ),
    (
        {"source": "usage", "agg": "growth", "window": "7d", "field": "x", "of": {"agg": "sum", "field": "x"}},
        "metrics.m",
        "agg growth takes no `field` (put the field in `of`)",
    ),
    (
        {"source": "usage", "agg": "days_since", "field": "x"},
        "metrics.m",
        "agg days_since takes no `field` (it uses the source's `time`; use `where` to filter rows)",
    ),
    (
        {"source": "usage", "agg": "share", "field": "x", "of_rows": "x > 1"},
        "metrics.m",
        "agg share takes no `field` (use `where` and `of_rows` to pick rows)",
    ),
    (
        {"source": "crm", "agg": "value", "field": "x", "window": "30d"},
        "metrics.m",
        "agg value reads one row per account: it takes no `window` or `where`",
    ),
    (
        {"source": "crm", "agg": "value", "field": "x", "where": "x > 1"},
        "metrics.m",
        "agg value reads one row per account: it takes no `window` or `where`",
    ),
    ({"expr": "logins * 2", "source": "usage"}, "metrics.m", "an `expr` metric takes no source"),
    ({"expr": "logins * 2", "where": "x > 1", "window": "7d"}, "metrics.m", "an `expr` metric takes no where, window"),
    ({"agg": "count"}, "metrics.m", "a metric needs `source` and `agg`, or an `expr`"),
    ({"source": "usage"}, "metrics.m", "a metric needs `source` and `agg`, or an `expr`"),
    (
        {
            "source": "usage",
            "agg": "count",
            "direction": "lower_is_better",
            "scale": {"method": "linear", "bad": 0, "good": 9},
        },
        "metrics.m",
        "direction applies to population methods only; with linear, "
        "swap `bad` and `good` (bad > good means lower is better)",
    ),
    (
        {
            "source": "usage",
            "agg": "count",
            "direction": "lower_is_better",
            "scale": {"method": "bands", "bands": [{"upto": 1, "score": 0}, {"score": 10}]},
        },
        "metrics.m",
        "direction applies to population methods only; with bands, give the low `upto` bands the high scores",
    ),
    (
        {"source": "usage", "agg": "count", "direction": "lower_is_better", "scale": {"method": "identity"}},
        "metrics.m",
        "direction applies to population methods only; with identity, "
        "turn the value around in an `expr` metric (e.g. 10 - x)",
    ),
    (
        {"source": "usage", "agg": "count", "direction": "worse", "scale": {"method": "percentile"}},
        "metrics.m.direction",
        "Input should be 'higher_is_better' or 'lower_is_better', got \"worse\"",
    ),
    ({"source": "usage", "agg": "average"}, "metrics.m.agg", None),
    (
        {"source": "usage", "agg": "count", "window": "30"},
        "metrics.m.window",
        'expected a duration like 30d, 12w, 6m or 1y, got "30"',
    ),
    (
        {"source": "usage", "agg": "count", "window": 30},
        "metrics.m.window",
        "expected a duration like 30d, 12w, 6m or 1y, got 30",
    ),
    (
        {"source": "usage", "agg": "count", "window": "2 weeks"},
        "metrics.m.window",
        'expected a duration like 30d, 12w, 6m or 1y, got "2 weeks"',
    ),
    (
        {"source": "usage", "agg": "count", "window": "0d"},
        "metrics.m.window",
        "a window of 0d holds no rows; give at least 1d",
    ),
    (
        {"source": "usage", "agg": "count", "kind": "trailing"},
        "metrics.m.kind",
        "Input should be 'leading' or 'lagging', got \"trailing\"",
    ),
]


@pytest.mark.parametrize(("metric", "where", "message"), SHAPE_CASES)
def test_metric_shape_rules(metric: dict[str, Any], where: str, message: str | None) -> None:
    [(found_where, found_message, _)] = problems(with_metric(metric))
    assert found_where == where
    if message is None:
        assert found_message.startswith("Input should be 'count', 'sum', ")
        assert found_message.endswith(', got "average"')
    else:
        assert found_message == message


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            {"source": "crm", "agg": "count", "window": "30d"},
            "a window needs event times, but source 'crm' has no `time` column",
        ),
        (
            {"source": "crm", "agg": "days_since"},
            "agg days_since needs event times, but source 'crm' has no `time` column",
        ),
        (
            {"source": "crm", "agg": "last", "field": "x"},
            "agg last needs event times, but source 'crm' has no `time` column",
        ),
    ],
)
def test_time_based_metric_on_a_source_without_time(metric: dict[str, Any], message: str) -> None:
    where = "metrics.m.window" if "window" in metric else "metrics.m.agg"
    assert problems(with_metric(metric)) == [(where, message, "set sources.crm.time to its timestamp column")]


SCALE_CASES = [
    ({"method": "bands"}, "metrics.m.scale", "method bands needs a list of `bands`"),
    ({"method": "bands", "bands": []}, "metrics.m.scale", "method bands needs a list of `bands`"),
    (
        {"method": "bands", "bands": [{"upto": 5, "score": 10}, {"upto": 5, "score": 5}, {"score": 0}]},
        "metrics.m.scale",
        "band `upto` values must increase",
    ),
    (
        {"method": "bands", "bands": [{"upto": 5, "score": 10}, {"upto": 3, "score": 5}, {"score": 0}]},
        "metrics.m.scale",
        "band `upto` values must increase",
    ),
    (
        {"method": "bands", "bands": [{"upto": 2, "score": 10}, {"upto": 5, "score": 0}]},
        "metrics.m.scale",
        "the last band must have no `upto` (it takes everything above)",
    ),
    (
        {"method": "bands", "bands": [{"upto": 2, "score": 10}, {"score": 5}, {"score": 0}]},
        "metrics.m.scale",
        "every band but the last needs an `upto`",
    ),
    (
        {"method": "bands", "bands": [{"upto": 2, "score": 11}, {"score": 0}]},
        "metrics.m.scale.bands.0.score",
        "Input should be less than or equal to 10, got 11",
    ),
    ({"method": "linear", "bad": 3, "good": 3}, "metrics.m.scale", "`bad` and `good` must differ"),
    ({"method": "linear", "bad": 3}, "metrics.m.scale", "method linear needs both `bad` and `good`"),
    ({"method": "categorical"}, "metrics.m.scale", "method categorical needs a `map` of value: points"),
    ({"method": "categorical", "map": {}}, "metrics.m.scale", "method categorical needs a `map` of value: points"),
    ({"method": "categorical", "map": {"Good": 12}}, "metrics.m.scale", "`map` points must lie in 0..10"),
    ({"method": "percentile", "clip": [5, 95]}, "metrics.m.scale", "`clip` applies to minmax and zscore methods only"),
    ({"method": "minmax", "clip": [95, 5]}, "metrics.m.scale", "`clip` takes two percentiles, 0 <= low < high <= 100"),
    ({"method": "zscore", "z": 0}, "metrics.m.scale.z", "Input should be greater than 0, got 0"),
    ({"method": "log"}, "metrics.m.scale.method", None),
]


@pytest.mark.parametrize(("scale", "where", "message"), SCALE_CASES)
def test_scale_rules(scale: dict[str, Any], where: str, message: str | None) -> None:
    [(found_where, found_message, _)] = problems(with_metric({"source": "usage", "agg": "count", "scale": scale}))
    assert found_where == where
    if message is None:
        assert found_message.startswith("Input should be 'linear', 'bands', ")
    else:
        assert found_message == message


def test_valid_scales(tmp_path: Path) -> None:
    data = base()
    data["metrics"] = {
        "a": {"source": "usage", "agg": "count", "scale": {"method": "linear", "bad": 10, "good": 0}},
        "b": {"source": "usage", "agg": "count", "scale": {"method": "minmax", "clip": [1, 99]}},
        "c": {"source": "usage", "agg": "count", "scale": {"method": "log_zscore", "z": 3, "clip": [0, 100]}},
        "d": {
            "source": "crm",
            "agg": "value",
            "field": "x",
            "scale": {"method": "categorical", "map": {"Good": 10, "Bad": 0}},
        },
        "e": {"source": "crm", "agg": "value", "field": "x", "scale": {"method": "boolean"}},
        "f": {"source": "usage", "agg": "count", "direction": "lower_is_better", "scale": {"method": "log_minmax"}},
    }
    data["groups"] = {"all": {"metrics": list(data["metrics"])}}
    config = parse_config(data, base_dir=tmp_path)
    assert config.metrics["a"].scale.bad == 10
    assert config.metrics["c"].scale.clip == (0, 100)
    assert config.metrics["d"].scale.map == {"Good": 10, "Bad": 0}


MISSING_CASES = [
    ({"fill": 0, "score": 5}, "metrics.m.missing", "give exactly one of `fill` (a raw value) or `score` (0..10)", ""),
    ({}, "metrics.m.missing", "give exactly one of `fill` (a raw value) or `score` (0..10)", ""),
    ({"score": 11}, "metrics.m.missing.score", "Input should be less than or equal to 10, got 11", ""),
    (
        "neutrel",
        "metrics.m.missing",
        "Input should be 'redistribute' or 'neutral', got \"neutrel\"",
        "or a mapping: {fill: <raw value>} or {score: <0..10>}",
    ),
    (
        0,
        "metrics.m.missing",
        "Input should be 'redistribute' or 'neutral', got 0",
        "or a mapping: {fill: <raw value>} or {score: <0..10>}",
    ),
]


@pytest.mark.parametrize(("missing", "where", "message", "hint"), MISSING_CASES)
def test_missing_policy_rules(missing: Any, where: str, message: str, hint: str) -> None:
    found = problems(with_metric({"source": "usage", "agg": "count", "missing": missing}))
    assert found == [(where, message, hint)]  # one problem, not one per member of the union


@pytest.mark.parametrize(
    ("missing", "score", "fill"),
    [
        ("neutral", 5.0, None),
        ("redistribute", None, None),
        ({"score": 3}, 3.0, None),
        ({"fill": 0}, None, 0.0),
        ({"fill": "none"}, None, "none"),
        ({"fill": True}, None, True),
    ],
)
def test_missing_policies(tmp_path: Path, missing: Any, score: float | None, fill: Any) -> None:
    data = with_metric({"source": "usage", "agg": "count", "missing": missing})
    metric = parse_config(data, base_dir=tmp_path).metrics["m"]
    assert metric.missing_score == score
    assert metric.missing_fill == fill
    assert type(metric.missing_fill) is type(fill)


# --- expressions -------------------------------------------------------------------------


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


EXPRESSION_CASES = [
    ("metrics.logins.where", "event == 'login' and user.name == 'x'", 22, "attribute access is not allowed"),
    ("metrics.logins.where", "event == 'login' or x // 2", 21, "operator // is not allowed"),
    ("metrics.share.of_rows", "rating ** 2 > 3", 1, "operator ** is not allowed"),
    ("metrics.per_seat.expr", "logins / seats[0]", 10, "subscripts are not allowed"),
    ("score.formula", "adoption + __import__('os')", 12, "unknown function '__import__'"),
    ("profiles.big.when", "tier == 'Enterprise' or (lambda: 1)", 26, "lambda is not allowed"),
]


@pytest.mark.parametrize(("path", "text", "column", "reason"), EXPRESSION_CASES)
def test_disallowed_expressions_name_the_key_and_the_column(path: str, text: str, column: int, reason: str) -> None:
    data = base()
    data["metrics"]["share"] = {"source": "usage", "agg": "share", "of_rows": "rating > 3"}
    data["metrics"]["per_seat"] = {"expr": "logins / seats"}
    data["profiles"] = {"big": {"when": "tier == 'Enterprise'", "weights": {"adoption": 10}}}
    set_path(data, path, text)
    [(where, message, _)] = problems(data)
    assert where == path
    assert message.startswith(f'invalid expression "{text}" at column {column}: {reason}')


def test_formula_names_resolve_to_groups_metrics_and_raw_values(tmp_path: Path) -> None:
    data = base()
    data["score"] = {"method": "formula", "formula": "clip(adoption + 2 * tickets - tickets_value / 10, 0, 100)"}
    config = parse_config(data, base_dir=tmp_path)
    assert config.score.method == "formula"


def test_unknown_formula_names_are_listed_with_hints() -> None:
    data = base()
    data["score"] = {"method": "formula", "formula": "adoptoin + suport + logins_value + revenue"}
    assert problems(data) == [
        ("score.formula", "unknown name 'adoptoin'", "did you mean `adoption`?"),
        (
            "score.formula",
            "unknown name 'revenue'",
            "known names: adoption, logins, logins_value, onboarding, onboarding_value, "
            "support, tickets, tickets_value",
        ),
        ("score.formula", "unknown name 'suport'", "did you mean `support`?"),
    ]


def test_formula_method_needs_a_formula_and_weights_method_needs_groups() -> None:
    data = base()
    data["score"] = {"method": "formula"}
    assert problems(data) == [("score.formula", "score.method formula needs a `formula`", "")]
    data = base()
    data["groups"] = {}
    assert problems(data) == [
        (
            "groups",
            "score.method weights needs at least one group",
            "add groups of metrics with weights, or set score.method: formula",
        )
    ]


def test_formula_only_config_needs_no_groups(tmp_path: Path) -> None:
    data = base()
    data["groups"] = {}
    data["score"] = {"method": "formula", "formula": "10 * logins"}
    assert parse_config(data, base_dir=tmp_path).groups == {}


def test_ambiguous_formula_names() -> None:
    data = base()
    data["metrics"]["support"] = {"source": "tickets", "agg": "count"}
    data["metrics"]["logins_value"] = {"source": "usage", "agg": "count"}
    data["groups"]["support"]["metrics"].append("support")
    data["groups"]["adoption"]["metrics"].append("logins_value")
    data["score"] = {"formula": "support + logins_value + tickets"}
    hint = "rename the group or metric so each name means one thing"
    assert problems(data) == [
        (
            "score.formula",
            "'logins_value' in the formula is ambiguous: "
            "the raw value of metric 'logins' or the score of metric 'logins_value'",
            hint,
        ),
        (
            "score.formula",
            "'support' in the formula is ambiguous: the score of group 'support' or the score of metric 'support'",
            hint,
        ),
    ]


def test_expr_metric_cycles_are_detected() -> None:
    data = base()
    data["metrics"]["a"] = {"expr": "b + 1"}
    data["metrics"]["b"] = {"expr": "a * logins"}
    data["metrics"]["c"] = {"expr": "c + 1"}
    data["metrics"]["d"] = {"expr": "a + b + seats"}
    assert problems(data) == [
        ("metrics.c.expr", "an expr metric cannot refer to itself", ""),
        ("metrics", "expr metrics refer to each other in a cycle: a -> b -> a", "break the cycle between expr metrics"),
    ]


def test_expr_metrics_may_chain_without_a_cycle(tmp_path: Path) -> None:
    data = base()
    data["metrics"]["a"] = {"expr": "logins / seats"}
    data["metrics"]["b"] = {"expr": "a * 2"}
    data["metrics"]["c"] = {"expr": "a + b"}
    config = parse_config(data, base_dir=tmp_path)
    assert config.metrics["c"].expr == "a + b"


# --- groups, segments, profiles ----------------------------------------------------------


def test_group_metrics_as_a_list_mean_equal_weights_and_a_mapping_keeps_them(tmp_path: Path) -> None:
    data = base()
    data["groups"]["support"]["metrics"] = {"tickets": 3, "logins": 0.5}
    config = parse_config(data, base_dir=tmp_path)
    assert config.groups["adoption"].metrics == {"logins": 1.0, "onboarding": 1.0}
    assert config.groups["support"].metrics == {"tickets": 3.0, "logins": 0.5}
    assert list(config.groups["support"].metrics) == ["tickets", "logins"]
    assert config.groups["adoption"].weight == 60


@pytest.mark.parametrize(
    ("metrics", "where", "message"),
    [
        ([], "groups.support.metrics", "a group needs at least one metric"),
        ({}, "groups.support.metrics", "a group needs at least one metric"),
        ({"tickets": 0}, "groups.support.metrics", "metric weights must have a positive total"),
        ({"tickets": -1}, "groups.support.metrics.tickets", "Input should be greater than or equal to 0, got -1"),
        (["tickets", "logins", "tickets"], "groups.support.metrics", "metrics listed more than once: tickets"),
        (
            ["tickets", ["logins"]],
            "groups.support.metrics",
            "a list of `metrics` holds metric names (text); for weights use a mapping",
        ),
        ("tickets", "groups.support.metrics", 'Input should be a valid dictionary, got "tickets"'),
    ],
)
def test_group_metric_rules(metrics: Any, where: str, message: str) -> None:
    data = base()
    data["groups"]["support"]["metrics"] = metrics
    assert problems(data) == [(where, message, "")]


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (
            [{"name": "Low", "max": 50}, {"name": "Mid", "max": 50}, {"name": "High", "max": 100}],
            [("segments", "segment maxima must increase, got 50, 50, 100", "list the segments from worst to best")],
        ),
        (
            [{"name": "Low", "max": 50}, {"name": "High", "max": 99.5}],
            [("segments.1.max", "the last segment must end at max: 100, got 99.5", "")],
        ),
        (
            [{"name": "Low", "max": 50}, {"name": "Low", "max": 100}],
            [("segments", "segment names must be unique and not 'Unscored'", "")],
        ),
        (
            [{"name": "Unscored", "max": 100}],
            [("segments", "segment names must be unique and not 'Unscored'", "")],
        ),
        ([], [("segments", "at least one segment is needed", "")]),
        ([{"name": "Top", "max": 150}], [("segments.0.max", "Input should be less than or equal to 100, got 150", "")]),
        ([{"max": 100}], [("segments.0.name", "required key is missing", "")]),
    ],
)
def test_segment_rules(segments: list[dict[str, Any]], expected: list[tuple[str, str, str]]) -> None:
    data = base()
    data["segments"] = segments
    assert problems(data) == expected


def test_profile_rules() -> None:
    data = base()
    data["profiles"] = {
        "big": {"when": "tier == 'Enterprise'", "weights": {"adoptoin": 10}},
        "none": {"when": "tier == 'SMB'", "weights": {"adoption": 0, "support": 0}},
        "default": {"when": "tier == 'Other'", "weights": {}},
        "bad": {"when": "tier == 'X'", "weights": {"support": -1}},
    }
    assert problems(data) == [
        ("profiles.bad.weights.support", "Input should be greater than or equal to 0, got -1", ""),
        (
            "profiles.default",
            "the profile name 'default' is taken by the accounts no profile matches",
            "rename the profile",
        ),
        ("profiles.big.weights", "unknown group 'adoptoin'", "did you mean `adoption`?"),
        ("profiles.none", "profile group weights must have a positive total", ""),
    ]


def test_unknown_references() -> None:
    data = base()
    data["accounts"]["source"] = "crn"
    data["sources"]["tickets"]["preset"] = "zendesk"
    assert problems(data) == [
        ("accounts.source", "unknown source 'crn'", "did you mean `crm`?"),
        ("sources.tickets.preset", "unknown preset 'zendesk'", "did you mean `zendesk_tickets`?"),
    ]


# --- output column names -----------------------------------------------------------------

RENAME_HINT = "rename the metric: it writes the columns {0} and {0}_score"


@pytest.mark.parametrize(
    "name", ["account_id", "health_score", "segment", "color", "coverage", "profile", "top_drivers", "action", "as_of"]
)
def test_metric_names_must_not_be_output_columns(name: str) -> None:
    found = problems(with_metric({"source": "usage", "agg": "count"}, name=name))
    assert (
        f"metrics.{name}",
        f"metric {name!r} writes the column {name!r}, already a column the scorer writes",
        RENAME_HINT.format(name),
    ) in found


def test_metric_score_columns_must_not_be_output_columns() -> None:
    # `health` writes health_score, the published score
    assert problems(with_metric({"source": "usage", "agg": "count"}, name="health")) == [
        (
            "metrics.health",
            "metric 'health' writes the column 'health_score', already a column the scorer writes",
            RENAME_HINT.format("health"),
        )
    ]


def test_metric_names_must_not_be_group_or_pass_through_columns() -> None:
    data = base()
    data["metrics"]["group_support"] = {"source": "tickets", "agg": "count"}
    data["metrics"]["tier"] = {"source": "crm", "agg": "value", "field": "tier"}
    data["accounts"]["columns"].append("onboarding_score")
    assert problems(data) == [
        (
            "metrics.onboarding",
            "metric 'onboarding' writes the column 'onboarding_score', "
            "already a pass-through column (accounts.columns)",
            RENAME_HINT.format("onboarding"),
        ),
        (
            "metrics.group_support",
            "metric 'group_support' writes the column 'group_support', already the score column of group 'support'",
            RENAME_HINT.format("group_support"),
        ),
        (
            "metrics.tier",
            "metric 'tier' writes the column 'tier', already a pass-through column (accounts.columns)",
            RENAME_HINT.format("tier"),
        ),
    ]


def test_a_metric_must_not_be_named_like_another_metrics_score_column() -> None:
    data = with_metric({"source": "usage", "agg": "count"}, name="logins_score")
    assert problems(data) == [
        (
            "metrics.logins_score",
            "metric 'logins_score' clashes with the score column of metric 'logins'",
            RENAME_HINT.format("logins_score"),
        )
    ]


def test_pass_through_columns_must_not_be_output_columns() -> None:
    data = base()
    data["accounts"]["columns"] = ["name", "segment", "group_adoption"]
    assert problems(data) == [
        (
            "accounts.columns",
            "the pass-through column 'segment' clashes with a column the scorer writes",
            "remove 'segment' from accounts.columns, or rename it in the source",
        ),
        (
            "accounts.columns",
            "the pass-through column 'group_adoption' clashes with the score column of group 'adoption'",
            "remove 'group_adoption' from accounts.columns, or rename it in the source",
        ),
    ]


def test_override_audit_columns_are_reserved_when_overrides_are_set(tmp_path: Path) -> None:
    data = with_metric({"source": "usage", "agg": "count"}, name="computed")
    parse_config(data, base_dir=tmp_path)  # fine without overrides
    data["overrides"] = {"path": "overrides.csv"}
    assert problems(data) == [
        (
            "metrics.computed",
            "metric 'computed' writes the column 'computed_score', already a column the overrides add",
            RENAME_HINT.format("computed"),
        )
    ]


def test_history_trend_columns_are_reserved_when_history_is_set(tmp_path: Path) -> None:
    data = with_metric({"source": "usage", "agg": "count"}, name="previous")
    data["metrics"]["score_change"] = {"source": "usage", "agg": "count"}
    data["groups"]["support"]["metrics"] += ["previous", "score_change"]
    parse_config(data, base_dir=tmp_path)  # fine without history
    data["history"] = {"path": "history/"}
    assert problems(data) == [
        (
            "metrics.previous",
            "metric 'previous' writes the column 'previous_score', already a column the history adds",
            RENAME_HINT.format("previous"),
        ),
        (
            "metrics.score_change",
            "metric 'score_change' writes the column 'score_change', already a column the history adds",
            RENAME_HINT.format("score_change"),
        ),
    ]


# --- YAML 1.1 pitfalls -------------------------------------------------------------------

PITFALL_CONFIG = """\
version: 1
accounts: {{source: crm}}
sources:
  crm: {{path: crm.csv, key: {key}}}
  usage: {{path: usage.csv, key: account_id, time: timestamp}}
metrics:
  sponsor: {{source: crm, agg: value, field: has_sponsor, scale: {{method: categorical, map: {map}}}}}
groups:
  g: {{metrics: [sponsor]}}
segments:
  - {{name: {segment}, max: 100}}
"""


def test_quoted_yaml_pitfalls_load_as_text(tmp_path: Path) -> None:
    path = write(tmp_path, PITFALL_CONFIG.format(key='"02116"', map='{"NO": 0, "Yes": 10, "2": 5}', segment='"No"'))
    config = load_config(path)
    assert config.sources["crm"].key == "02116"
    assert config.metrics["sponsor"].scale.map == {"NO": 0, "Yes": 10, "2": 5}
    assert config.segments[0].name == "No"


def test_unquoted_yaml_pitfalls_are_clear_errors_not_silent_changes(tmp_path: Path) -> None:
    path = write(tmp_path, PITFALL_CONFIG.format(key="02116", map="{NO: 0, Yes: 10, 2: 5}", segment="No"))
    message, found = load_problems(path)
    assert message == f"{path} is not valid"
    assert found == [
        ("sources.crm.key", "Input should be a valid string, got 1102", YAML_NUMBER_HINT),
        ("metrics.sponsor.scale.map", "the key false is not text", YAML_BOOL_KEY_HINT),
        ("metrics.sponsor.scale.map", "the key true is not text", YAML_BOOL_KEY_HINT),
        ("metrics.sponsor.scale.map", "the key 2 is not text", YAML_NUMBER_KEY_HINT),
        ("segments.0.name", "Input should be a valid string, got false", YAML_BOOL_HINT),
    ]


def test_more_yaml_pitfalls(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        accounts: {source: crm, columns: [name, on]}
        sources:
          crm:
            path: crm.csv
            key: account_id
            rename: {2023: year, Region: region}
            na_values: ["", null]
            date_format: 2026-01-31
          usage: {path: usage.csv, key: account_id, time: timestamp}
        metrics:
          logins: {source: usage, agg: count, kind: yes}
        groups:
          g: {metrics: [logins]}
        """,
    )
    _, found = load_problems(path)
    assert found == [
        ("accounts.columns.1", "Input should be a valid string, got true", YAML_BOOL_HINT),
        ("sources.crm.rename", "the key 2023 is not text", YAML_NUMBER_KEY_HINT),
        (
            "sources.crm.na_values.1",
            "Input should be a valid string, got null (an empty value)",
            'give a value; an empty value, ~ and null mean "nothing" in YAML',
        ),
        (
            "sources.crm.date_format",
            "Input should be a valid string, got 2026-01-31",
            'YAML reads unquoted dates as dates; put the value in quotes, like "2026-01-31"',
        ),
        ("metrics.logins.kind", "Input should be 'leading' or 'lagging', got true", YAML_BOOL_HINT),
    ]


def test_problem_text_renders_path_message_and_hint(tmp_path: Path) -> None:
    data = base()
    data["metrics"]["logins"]["window"] = "thirty"
    with pytest.raises(ConfigError) as caught:
        parse_config(data, origin="cfg.yaml")
    assert str(caught.value) == (
        'cfg.yaml is not valid\n  - metrics.logins.window: expected a duration like 30d, 12w, 6m or 1y, got "thirty"'
    )
    assert caught.value.problems[0].to_dict() == {
        "where": "metrics.logins.window",
        "message": 'expected a duration like 30d, 12w, 6m or 1y, got "thirty"',
        "hint": "",
    }


def test_json_schema_describes_the_config() -> None:
    schema = Config.model_json_schema()
    assert set(schema["required"]) == {"version", "accounts", "sources", "metrics"}
    assert schema["additionalProperties"] is False
    missing = schema["$defs"]["MetricConfig"]["properties"]["missing"]
    assert missing["oneOf"] == [
        {"$ref": "#/$defs/MissingConfig"},
        {"enum": ["redistribute", "neutral"], "type": "string"},
    ]
