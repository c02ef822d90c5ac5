"""Tests for presets (healthscore.presets, preset_data): the shipped column maps, their
derived columns, their docs, and hand-made exports of each tool read through the reader."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, lines_of, make_config

from healthscore.models import ColumnType, SourceConfig
from healthscore.preset_data import event_slug, hours_between, monthly_amount, nps_category
from healthscore.presets import (
    PRESETS,
    Preset,
    derive_columns,
    derived_inputs,
    lowercase_columns,
    presets_markdown,
    renames_for,
    with_preset,
)
from healthscore.sources import SourceData, read_source

EXPORTS = Path(__file__).resolve().parent / "data" / "exports"
DOCS = ROOT / "docs" / "presets.md"
SHIPPED = (
    "zendesk_tickets",
    "salesforce_report",
    "hubspot_companies",
    "stripe_subscriptions",
    "qualtrics_responses",
    "surveymonkey_responses",
    "delighted_responses",
    "mixpanel_events",
    "amplitude_events",
    "segment_tracks",
    "intercom_conversations",
)
# a header of each preset whose key comes from a pattern rather than a fixed header
KEY_HEADERS = {
    "delighted_responses": "person_properties.company_id",
    "mixpanel_events": "properties.company_id",
    "amplitude_events": "groups.company",
}


def ts(text: str) -> pd.Timestamp:
    """A naive (UTC) timestamp."""
    return pd.Timestamp(text)


def column(data: SourceData | pd.DataFrame, name: str) -> list[Any]:
    """A column as a plain list, missing values as None."""
    frame = data.frame if isinstance(data, SourceData) else data
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


def read_export(
    base: Path, path: str, preset: str, key: str, time: str | None = None, needed: set[str] | None = None, **more: Any
) -> SourceData:
    """Read one file with a preset through the reader, as the only source of a config."""
    source: dict[str, Any] = {"path": path, "preset": preset, "key": key, **more}
    if time is not None:
        source["time"] = time
    config = make_config(
        base,
        accounts={"source": "s"},
        sources={"s": source},
        metrics={"m": {"source": "s", "agg": "count"}},
        groups={"g": {"metrics": ["m"]}},
    )
    return read_source(config, "s", needed)


def produced_columns(preset: Preset) -> set[str]:
    """The column names a preset can produce: rename targets, literal pattern replacements and
    derived columns."""
    literal = {replacement for _, replacement in preset.patterns if "\\" not in replacement}
    return set(preset.rename.values()) | literal | set(preset.derive)


def source(preset: str, **settings: Any) -> SourceConfig:
    """A source config naming a preset."""
    return SourceConfig(path="x.csv", key=settings.pop("key", "k"), preset=preset, **settings)


# --- the catalogue ------------------------------------------------------------------------


def test_the_shipped_presets_are_exactly_these() -> None:
    assert tuple(PRESETS) == SHIPPED


def test_docs_are_generated_from_the_code() -> None:
    assert DOCS.read_text(encoding="utf-8") == presets_markdown(), (
        "docs/presets.md is out of step with healthscore/preset_data.py; regenerate it with "
        "`.venv/bin/python -m healthscore.presets > docs/presets.md`"
    )


def test_docs_show_every_preset_with_its_headers_options_and_notes() -> None:
    text = presets_markdown()
    for name, preset in PRESETS.items():
        section = text.split(f"## `{name}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"preset: {name}" in section
        assert f"key: {preset.key}" in section
        assert all(f"| `{header}` | `{col}` |" in section for header, col in preset.rename.items())
        assert all(note in section for note in preset.notes)
        assert all(f"- `{col}` (from " in section for col in preset.derive)
    assert 'Read options: `header_rows: 2`, `date_format: "%m/%d/%Y %I:%M:%S %p"`.' in text
    assert "| `(.+) \\(metadata\\)` (pattern) | `meta_\\1` | inferred |" in text


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_is_described_for_the_docs(name: str) -> None:
    preset = PRESETS[name]
    assert preset.tool
    assert preset.description
    assert preset.notes
    assert preset.key
    assert preset.rename


@pytest.mark.parametrize("name", SHIPPED)
def test_types_lowercase_derived_key_and_time_name_columns_the_preset_produces(name: str) -> None:
    preset = PRESETS[name]
    produced = produced_columns(preset)
    assert set(preset.types) <= produced, "typed columns no header maps to"
    assert set(preset.types.values()) <= set(get_args(ColumnType))
    assert set(preset.lowercase) <= produced, "lower-cased columns no header maps to"
    assert not set(preset.lowercase) & set(preset.types), "a typed column is never lower-cased"
    for derived_name, derived in preset.derive.items():
        assert set(derived.inputs) <= produced, f"{derived_name} needs columns no header maps to"
        assert derived_name not in preset.rename.values(), "a derived column is computed only when absent"
    if preset.time is not None:
        assert preset.time in produced
        assert preset.types.get(preset.time) in ("date", "datetime")
    if preset.key in produced:
        assert name not in KEY_HEADERS
    else:
        header = KEY_HEADERS[name]
        assert preset.column_names([header]) == {header: preset.key}


@pytest.mark.parametrize("name", SHIPPED)
def test_patterns_compile_and_options_are_valid_source_settings(name: str) -> None:
    preset = PRESETS[name]
    for pattern, _ in preset.patterns:
        re.compile(pattern)
    assert set(preset.options) <= set(SourceConfig.model_fields)
    configured = SourceConfig.model_validate({"path": "x", "key": "k", **preset.options})
    assert {k: getattr(configured, k) for k in preset.options} == dict(preset.options)
    if "dedupe" in preset.options:
        assert preset.options["dedupe"] in produced_columns(preset)


# --- applying a preset to a source --------------------------------------------------------


def test_with_preset_fills_read_options_and_types_the_source_leaves_unset() -> None:
    applied = with_preset(source("qualtrics_responses"))
    assert applied.header_rows == 3
    assert applied.types["progress"] == "int"
    assert applied.types["recorded_date"] == "datetime"
    mixpanel = with_preset(source("mixpanel_events"))
    assert (mixpanel.format, mixpanel.dedupe) == ("jsonl", "insert_id")


def test_with_preset_lets_the_source_s_own_settings_win() -> None:
    applied = with_preset(source("qualtrics_responses", header_rows=1, types={"progress": "float", "q9": "int"}))
    assert applied.header_rows == 1
    assert applied.types["progress"] == "float"
    assert applied.types["q9"] == "int"
    assert applied.types["finished"] == "bool"
    survey = with_preset(source("surveymonkey_responses", date_format="%d/%m/%Y %H:%M:%S"))
    assert (survey.date_format, survey.header_rows) == ("%d/%m/%Y %H:%M:%S", 2)
    assert with_preset(source("mixpanel_events", dedupe=None)).dedupe is None  # explicitly switched off


def test_with_preset_leaves_a_source_without_preset_alone() -> None:
    plain = SourceConfig(path="x.csv", key="k")
    assert with_preset(plain) is plain


def test_renames_for_puts_the_source_s_rename_over_the_preset_s() -> None:
    tickets = source("zendesk_tickets", rename={"Organization": "account", "Custom": "custom"})
    renames = renames_for(tickets, ["ID", "Organization", "Tags [list]"])
    assert renames == {"ID": "ticket_id", "Organization": "account", "Custom": "custom"}


@pytest.mark.parametrize(
    ("name", "headers", "expected"),
    [
        (
            "zendesk_tickets",
            ["Id", "Requester id", "Summation column", "Product [list]", "On hold time in minutes"],
            {"Id": "ticket_id", "Requester id": "requester_id", "On hold time in minutes": "on_hold_minutes"},
        ),
        (
            "stripe_subscriptions",
            [
                "account_id (metadata)",
                "plan tier (metadata)",
                "Start (UTC)",
                "Start Date (UTC)",
                "Amount",
                "(metadata)",
            ],
            {
                "account_id (metadata)": "meta_account_id",
                "plan tier (metadata)": "meta_plan tier",
                "Start (UTC)": "start",
                "Start Date (UTC)": "start",
                "Amount": "amount",
            },
        ),
        (
            "qualtrics_responses",
            ["Q7_NPS_GROUP", "QID12_NPS_GROUP", "Q7", "Q7_NPS_GROUP_TEXT", "_NPS_GROUP", "ResponseId"],
            {"Q7_NPS_GROUP": "nps_group", "QID12_NPS_GROUP": "nps_group", "ResponseId": "response_id"},
        ),
        (
            "surveymonkey_responses",
            ["Custom Data 1", "Custom Data 2", "Custom Data", "Respondent ID"],
            {"Custom Data 1": "custom_data_1", "Custom Data 2": "custom_data_2", "Respondent ID": "respondent_id"},
        ),
        (
            "delighted_responses",
            ["id", "person", "person.id", "person.email", "person_properties.company_id", "person_properties.Plan"],
            {
                "id": "response_id",
                "person": "person_id",
                "person.id": "person_id",
                "person.email": "email",
                "person_properties.company_id": "company_id",
                "person_properties.Plan": "Plan",
            },
        ),
        (
            "mixpanel_events",
            [
                "event",
                "properties.time",
                "properties.$insert_id",
                "properties.mp_processing_time_ms",
                "properties.$browser",
                "properties.company_id",
                "properties",
                "time",
            ],
            {
                "event": "event",
                "properties.time": "time",
                "properties.$insert_id": "insert_id",
                "properties.mp_processing_time_ms": "processing_time",
                "properties.$browser": "browser",
                "properties.company_id": "company_id",
            },
        ),
        (
            "amplitude_events",
            [
                "event_type",
                "event_time",
                "$insert_id",
                "groups.company",
                "event_properties.plan",
                "user_properties.role",
                "group_properties.company.plan",
                "groups",
            ],
            {
                "event_type": "event",
                "event_time": "time",
                "$insert_id": "insert_id",
                "groups.company": "group_company",
                "event_properties.plan": "prop_plan",
                "user_properties.role": "user_prop_role",
            },
        ),
        (
            "segment_tracks",
            [
                "id",
                "messageId",
                "context_group_id",
                "context_groupId",
                "context.groupId",
                "context.ip",
                "context.library.name",
                "context.page.a.b",
                "properties.plan",
                "timestamp",
                "userId",
            ],
            {
                "id": "message_id",
                "messageId": "message_id",
                "context_group_id": "group_id",
                "context_groupId": "group_id",
                "context.groupId": "group_id",
                "context.ip": "context_ip",
                "context.library.name": "context_library_name",
                "properties.plan": "plan",
                "timestamp": "time",
                "userId": "user_id",
            },
        ),
        (
            "intercom_conversations",
            ["conversation_state", "Conversation started at", "Conversation first replied at", "Company name"],
            {
                "conversation_state": "state",
                "Conversation started at": "created_at",
                "Conversation first replied at": "first_response_at",
                "Company name": "company",
            },
        ),
    ],
)
def test_column_names_map_exact_headers_then_patterns(name: str, headers: list[str], expected: dict[str, str]) -> None:
    assert PRESETS[name].column_names(headers) == expected


# --- derived columns on typed frames -------------------------------------------------------


def test_monthly_amount_spreads_each_interval_over_a_month() -> None:
    frame = pd.DataFrame(
        {
            "amount": [49.0, 1200.0, 10.0, 1.0, 5.0, np.nan],
            "quantity": pd.array([10, 1, None, 2, 1, 1], dtype="Int64"),
            "interval": ["month", "year", "week", "Day ", "fortnight", "month"],
        }
    )
    mrr = monthly_amount(frame)
    assert mrr.dtype == "float64"
    assert mrr.tolist()[:4] == pytest.approx([490.0, 100.0, 10.0 * 52 / 12, 2.0 * 365 / 12])
    assert mrr.isna().tolist() == [False, False, False, False, True, True]


def test_nps_category_reads_codes_and_choice_text() -> None:
    frame = pd.DataFrame(
        {"nps_group": ["3", "1", "2", "Promoter", "Detractors", " passive", "Neutral", None, "7", ""]}, dtype="str"
    )
    assert column(pd.DataFrame({"c": nps_category(frame)}), "c") == [
        "promoter",
        "detractor",
        "passive",
        "promoter",
        "detractor",
        "passive",
        "passive",
        None,
        None,
        None,
    ]
    numbers = pd.DataFrame({"nps_group": [3.0, np.nan, 1.0]})  # read as numbers when the source retypes it
    assert column(pd.DataFrame({"c": nps_category(numbers)}), "c") == ["promoter", None, "detractor"]


def test_hours_between_two_datetime_columns() -> None:
    frame = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2017-11-14 21:45:08", "2017-11-15 08:00:00", None]),
            "first_response_at": pd.to_datetime(["2017-11-14 23:15:08", None, "2017-11-15 09:00:00"]),
        }
    )
    hours = hours_between("created_at", "first_response_at")(frame)
    assert hours.dtype == "float64"
    assert column(pd.DataFrame({"h": hours}), "h") == [1.5, None, None]


def test_event_slug_is_the_warehouse_form_of_an_event_name() -> None:
    frame = pd.DataFrame({"event": ["Order Completed", "order_completed", "  Sign-Up  (v2) ", None, "!!!"]})
    assert column(pd.DataFrame({"e": event_slug(frame)}), "e") == [
        "order_completed",
        "order_completed",
        "sign_up_v2",
        None,
        None,
    ]


def test_derive_columns_adds_a_column_only_when_its_inputs_are_there_and_it_is_not() -> None:
    stripe = source("stripe_subscriptions")
    frame = pd.DataFrame({"amount": [12.0], "quantity": pd.array([2], dtype="Int64"), "interval": ["year"]})
    assert derive_columns(frame.copy(), stripe)["mrr"].tolist() == [2.0]
    assert "mrr" not in derive_columns(frame.drop(columns="interval"), stripe).columns
    given = frame.assign(mrr=[7.0])
    assert derive_columns(given, stripe)["mrr"].tolist() == [7.0]
    assert "mrr" not in derive_columns(frame.copy(), SourceConfig(path="x", key="k")).columns


def test_derived_inputs_names_the_columns_a_wanted_derived_column_needs() -> None:
    assert derived_inputs(source("stripe_subscriptions"), {"mrr", "status"}) == (
        {"mrr"},
        {"amount", "quantity", "interval"},
    )
    assert derived_inputs(source("stripe_subscriptions"), {"status"}) == (set(), set())
    assert derived_inputs(SourceConfig(path="x", key="k"), {"mrr"}) == (set(), set())


def test_lowercase_columns_skips_columns_the_source_types_itself() -> None:
    frame = pd.DataFrame({"status": ["Open", None], "priority": ["High", "LOW"]})
    lowered = lowercase_columns(frame.copy(), source("zendesk_tickets"))
    assert column(lowered, "status") == ["open", None]
    assert column(lowered, "priority") == ["high", "low"]
    typed = lowercase_columns(frame.copy(), source("zendesk_tickets", types={"status": "string"}))
    assert column(typed, "status") == ["Open", None]
    codes = lowercase_columns(pd.DataFrame({"response_type": [0.0, 8.0]}), source("qualtrics_responses"))
    assert codes["response_type"].tolist() == [0.0, 8.0]


# --- hand-made exports through the reader --------------------------------------------------


def test_zendesk_tickets_export() -> None:
    data = read_export(EXPORTS, "zendesk_tickets.csv", "zendesk_tickets", "organization", "created_at")
    assert column(data, "organization") == ["Acme Corp", "Beta LLC"]
    assert column(data, "ticket_id") == ["4101", "4102"]
    assert column(data, "requester_external_id") == ["00042", None]
    assert column(data, "created_at") == [ts("2026-01-12 09:15"), ts("2026-01-30 16:40")]
    assert column(data, "due_date") == [None, ts("2026-02-06")]
    assert column(data, "status") == ["solved", "open"]
    assert column(data, "priority") == ["urgent", "low"]
    assert column(data, "satisfaction") == ["good", "not offered"]
    assert column(data, "resolution_hours") == [25.0, None]
    assert column(data, "first_reply_minutes") == [35.0, None]
    assert column(data, "requester_wait_business_minutes") == [420.0, 0.0]
    assert column(data, "reopens") == [0, 0]
    assert str(data.frame["reopens"].dtype) == "Int64"
    assert column(data, "Product [list]") == ["Reports", None]


def test_salesforce_report_export_with_quoted_values_and_footer() -> None:
    data = read_export(EXPORTS, "salesforce_report.csv", "salesforce_report", "account_id", "close_date")
    assert data.rows_read == 2
    assert data.dropped == {"report footer": 3}
    assert data.rejects.empty  # the Grand Totals row is a footer, not a row without a close date
    assert data.warnings == []
    assert column(data, "account_id") == ["001A000001abcDE", "001A000001bcdEF"]
    assert column(data, "account_name") == ["Acme Corp", "Beta LLC"]
    assert column(data, "owner") == ["Sam Reyes", "Kim Park"]
    assert column(data, "opportunity_id") == ["006A000000xyzAB", "006A000000yzaBC"]
    assert column(data, "amount") == [120000.0, 35000.5]
    assert column(data, "probability") == [100.0, 70.0]
    assert column(data, "close_date") == [ts("2026-01-15"), ts("2026-03-31")]
    assert column(data, "stage") == ["closed won", "negotiation/review"]
    assert column(data, "type") == ["existing customer - upgrade", "new customer"]
    assert column(data, "billing_country") == ["NA", "US"]  # Namibia, not a missing value
    assert column(data, "employees") == [1200, 85]


def test_hubspot_companies_export() -> None:
    data = read_export(EXPORTS, "hubspot_companies.csv", "hubspot_companies", "company_id")
    assert column(data, "company_id") == ["9876543210", "9876543211"]
    assert column(data, "company_name") == ["Acme Corp", "Beta LLC"]
    assert column(data, "domain") == ["acme.example", "beta.example"]
    assert column(data, "create_date") == [ts("2020-01-10 10:00"), ts("2024-06-02 08:05")]
    assert column(data, "last_activity_date") == [ts("2026-01-29 15:30"), None]
    assert column(data, "annual_revenue") == [25000000.0, None]
    assert column(data, "employees") == [1200, 85]
    assert column(data, "lifecycle_stage") == ["customer", "opportunity"]
    assert column(data, "country") == ["Germany", "United States"]
    assert column(data, "Favourite colour") == ["blue", None]  # unknown headers pass through


def test_stripe_subscriptions_export_with_metadata_and_mrr() -> None:
    data = read_export(EXPORTS, "stripe_subscriptions.csv", "stripe_subscriptions", "customer_id", "created")
    assert column(data, "customer_id") == ["cus_Acme01", "cus_Beta02", "cus_Gamma3", "cus_Delta4"]
    assert column(data, "subscription_id") == ["sub_1Acme", "sub_2Beta", "sub_3Gamma", "sub_4Delta"]
    assert column(data, "meta_account_id") == ["ACME-001", "BETA-002", "GAMMA-003", "DELTA-004"]
    assert column(data, "status") == ["active", "active", "past_due", "canceled"]
    assert column(data, "quantity") == [10, 1, None, 2]
    assert column(data, "start") == [
        ts("2025-06-01 12:00"),
        ts("2025-03-15 09:30"),
        ts("2025-11-20 07:00"),
        ts("2025-12-01"),
    ]
    assert column(data, "canceled_at") == [None, None, None, ts("2026-01-09 18:22")]
    assert column(data, "mrr") == pytest.approx([490.0, 100.0, 10.0 * 52 / 12, 2.0 * 365 / 12])


def test_stripe_derived_mrr_survives_reading_only_the_needed_columns() -> None:
    data = read_export(
        EXPORTS, "stripe_subscriptions.csv", "stripe_subscriptions", "meta_account_id", "created", needed={"mrr"}
    )
    assert column(data, "meta_account_id") == ["ACME-001", "BETA-002", "GAMMA-003", "DELTA-004"]
    assert column(data, "mrr")[:2] == [490.0, 100.0]


def test_qualtrics_export_with_three_header_rows_and_nps_group() -> None:
    data = read_export(
        EXPORTS,
        "qualtrics_responses.csv",
        "qualtrics_responses",
        "external_reference",
        "recorded_date",
        rename={"Q1": "nps_score"},
    )
    assert data.rows_read == 3
    assert column(data, "response_id") == ["R_1abcDEFghiJKLmn", "R_2bcdEFGhijKLMno", "R_3cdeFGHijkLMNop"]
    assert column(data, "external_reference") == ["ACME-001", "BETA-002", "BETA-002"]
    assert column(data, "recorded_date") == [
        ts("2026-01-20 09:02:47"),
        ts("2026-01-22 14:11:31"),
        ts("2026-02-01 08:00:41"),
    ]
    assert column(data, "progress") == [100, 100, 40]
    assert column(data, "duration_seconds") == [165, 90, 40]
    assert column(data, "finished") == [True, True, False]
    assert column(data, "latitude") == [52.52, 40.7128, None]
    assert column(data, "distribution_channel") == ["email", "email", "anonymous"]
    assert column(data, "response_type") == [0.0, 0.0, 0.0]  # numeric codes stay numbers
    assert column(data, "nps_score") == [9.0, 6.0, None]
    assert column(data, "nps_group") == ["3", "1", None]
    assert column(data, "nps_category") == ["promoter", "detractor", None]
    assert column(data, "account_tier") == ["Enterprise", "SMB", "SMB"]
    assert lines_of(data) == [4, 5, 6]


def test_surveymonkey_export_with_two_header_rows_and_us_dates() -> None:
    data = read_export(EXPORTS, "surveymonkey_responses.csv", "surveymonkey_responses", "custom_data_1", "end_date")
    assert data.rows_read == 2
    assert column(data, "custom_data_1") == ["ACME-001", "BETA-002"]
    assert column(data, "respondent_id") == ["114226718359", "114226718360"]
    assert column(data, "collector_id") == ["431201234", "431201234"]
    assert column(data, "start_date") == [ts("2026-01-31 10:15:00"), ts("2026-01-30 16:05:00")]
    assert column(data, "end_date") == [ts("2026-01-31 10:17:30"), ts("2026-01-30 16:06:10")]
    assert column(data, "email") == ["ana@acme.example", "bo@beta.example"]
    question = "How likely is it that you would recommend Acme to a friend or colleague?"
    assert column(data, question) == [9.0, 6.0]
    assert column(data, "Which features do you use?") == ["Reports", None]


def test_delighted_json_lines_with_epoch_seconds_and_person_properties() -> None:
    data = read_export(EXPORTS, "delighted_responses.jsonl", "delighted_responses", "company_id", "created_at")
    assert column(data, "company_id") == ["ACME-001", "BETA-002", "BETA-002"]
    assert column(data, "response_id") == ["35", "36", "37"]
    assert column(data, "person_id") == ["87", "88", "89"]
    assert column(data, "created_at") == [ts("2026-01-31 10:00"), ts("2026-01-30 08:00"), ts("2026-01-29 08:00")]
    assert column(data, "updated_at")[0] == ts("2026-01-31 11:00")
    assert column(data, "score") == [9, 4, 5]
    assert column(data, "survey_type") == ["nps", "nps", "csat"]
    assert column(data, "Plan") == ["Enterprise", "Team", "Team"]
    assert column(data, "tags")[:2] == ["onboarding|vip", "billing"]
    assert column(data, "comment") == ["Love the reports", "Slow exports", None]


def test_mixpanel_json_lines_dedupe_on_insert_id_and_read_ms_times() -> None:
    data = read_export(EXPORTS, "mixpanel_events.jsonl", "mixpanel_events", "company_id", "time")
    assert data.rows_read == 5
    assert column(data, "insert_id") == ["ins-a1", "ins-b2", None, None]  # rows without an id are all kept
    assert column(data, "event") == ["Login", "Report Viewed", "Login", "Logout"]
    assert column(data, "company_id") == ["ACME-001", "BETA-002", "ACME-001", "ACME-001"]
    assert column(data, "distinct_id") == ["u-1", "u-2", "u-3", "u-3"]
    assert column(data, "time") == [
        ts("2026-01-31 10:00:00.123"),
        ts("2026-01-30 10:00:00.456"),
        ts("2026-01-29 10:00:00"),
        ts("2026-01-29 10:01:40"),
    ]
    assert column(data, "processing_time")[0] == ts("2026-01-31 10:00:01.5")  # the first of the duplicates
    assert column(data, "browser") == ["Chrome", "Firefox", "Safari", "Safari"]
    assert data.dropped == {"duplicate insert_id": 1}


def test_mixpanel_dedupes_when_only_some_columns_are_needed() -> None:
    data = read_export(EXPORTS, "mixpanel_events.jsonl", "mixpanel_events", "company_id", "time", needed={"event"})
    assert column(data, "event") == ["Login", "Report Viewed", "Login", "Logout"]
    assert data.dropped == {"duplicate insert_id": 1}


AMPLITUDE_FIRST = {
    "event_type": "session_start",
    "event_time": "2026-01-30 08:00:00.123456",
    "client_event_time": "2026-01-30 07:59:59.900000",
    "server_upload_time": "2026-01-30 08:00:01.000000",
    "user_id": "u-1",
    "device_id": "d-1",
    "amplitude_id": 123456789012,
    "uuid": "5f0adeff-0000-4427-8d02-57d803a2b841",
    "$insert_id": "ins-1",
    "session_id": 1769760000000,
    "groups": {"company": "ACME-001"},
    "event_properties": {"plan": "pro"},
    "user_properties": {"role": "admin"},
}

AMPLITUDE_HOURS = {
    "123456_2026-01-30_8#0.json.gz": [
        AMPLITUDE_FIRST,
        {
            "event_type": "report_viewed",
            "event_time": "2026-01-30 08:30:00.000000",
            "client_event_time": "2026-01-30 08:30:00.000000",
            "server_upload_time": "2026-01-30 08:30:02.000000",
            "user_id": None,
            "device_id": "d-2",
            "amplitude_id": 123456789013,
            "uuid": "5f0adeff-0001-4427-8d02-57d803a2b841",
            "$insert_id": "ins-2",
            "session_id": -1,
            "groups": {"company": ["BETA-002"]},
            "event_properties": {"plan": "team"},
            "user_properties": {"role": "viewer"},
        },
    ],
    "123456_2026-01-30_9#0.json.gz": [
        AMPLITUDE_FIRST,  # the first event again: an hour exported twice
        {
            "event_type": "report_viewed",
            "event_time": "2026-01-30 09:15:00.500000",
            "client_event_time": "2026-01-30 09:15:00.500000",
            "server_upload_time": "2026-01-30 09:15:01.000000",
            "user_id": "u-3",
            "device_id": "d-3",
            "amplitude_id": 123456789014,
            "uuid": "5f0adeff-0002-4427-8d02-57d803a2b841",
            "$insert_id": "ins-3",
            "session_id": 1769764500000,
            "groups": {"company": ["ACME-001", "BETA-002"]},
            "event_properties": {"plan": "pro"},
            "user_properties": {"role": "admin"},
        },
    ],
}


def write_amplitude_export(folder: Path) -> None:
    """The hourly files of an unzipped Amplitude export: gzipped JSON lines, byte-identical on
    every run (no timestamp in the gzip header)."""
    folder.mkdir(parents=True)
    for name, events in AMPLITUDE_HOURS.items():
        text = "".join(json.dumps(event) + "\n" for event in events)
        (folder / name).write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def test_amplitude_gzipped_json_lines_over_hourly_files(tmp_path: Path) -> None:
    write_amplitude_export(tmp_path / "export")
    data = read_export(tmp_path, "export/*.json.gz", "amplitude_events", "group_company", "time")
    assert data.rows_read == 4
    assert [f.rows for f in data.files] == [2, 2]
    assert column(data, "group_company") == ["ACME-001", "BETA-002", "ACME-001|BETA-002"]
    assert column(data, "event") == ["session_start", "report_viewed", "report_viewed"]
    assert column(data, "time") == [
        ts("2026-01-30 08:00:00.123456"),
        ts("2026-01-30 08:30:00"),
        ts("2026-01-30 09:15:00.5"),
    ]
    assert column(data, "client_event_time")[0] == ts("2026-01-30 07:59:59.9")
    assert column(data, "user_id") == ["u-1", None, "u-3"]
    assert column(data, "amplitude_id") == ["123456789012", "123456789013", "123456789014"]
    assert column(data, "insert_id") == ["ins-1", "ins-2", "ins-3"]
    assert column(data, "prop_plan") == ["pro", "team", "pro"]
    assert column(data, "user_prop_role") == ["admin", "viewer", "admin"]
    assert data.dropped == {"duplicate uuid": 1}


@pytest.mark.parametrize("path", ["segment_tracks.csv", "segment_tracks.jsonl"])
def test_segment_warehouse_and_json_shapes_read_alike(path: str) -> None:
    data = read_export(EXPORTS, path, "segment_tracks", "group_id", "time")
    assert data.rows_read == 3
    assert column(data, "group_id") == ["ACME-001", "BETA-002"]
    assert column(data, "message_id") == ["ajs-msg-1", "ajs-msg-2"]
    assert column(data, "user_id") == ["u-1", "u-2"]
    assert column(data, "anonymous_id") == ["anon-1", "anon-2"]
    assert column(data, "time") == [ts("2026-01-30 08:00"), ts("2026-01-29 08:30")]
    assert column(data, "received_at") == [ts("2026-01-30 08:00:01.2"), ts("2026-01-29 08:30:02")]
    assert column(data, "original_timestamp") == [ts("2026-01-30 08:00"), ts("2026-01-29 08:30")]
    assert column(data, "event_slug") == ["report_viewed", "order_completed"]
    assert column(data, "plan") == ["pro", "team"]
    assert column(data, "context_library_name") == ["analytics.js", "analytics.js"]
    assert data.dropped == {"duplicate message_id": 1}


@pytest.mark.parametrize(
    ("path", "companies", "states", "hours"),
    [
        ("intercom_conversations.csv", ["Acme Corp", "Beta LLC"], ["closed", "open"], [1.5, None]),
        ("intercom_conversations_ui.csv", ["Acme Corp", "Beta LLC"], ["closed", "snoozed"], [1.5, 20 / 60]),
    ],
)
def test_intercom_exports_and_first_response_hours(
    path: str, companies: list[str], states: list[str], hours: list[float | None]
) -> None:
    data = read_export(EXPORTS, path, "intercom_conversations", "company", "created_at")
    assert column(data, "company") == companies
    assert column(data, "state") == states
    assert column(data, "conversation_id")[0] == "215467891234567"
    assert column(data, "created_at")[0] == ts("2017-11-14 21:45:08")
    got = column(data, "first_response_hours")
    assert [h is None for h in got] == [h is None for h in hours]
    assert [h for h in got if h is not None] == pytest.approx([h for h in hours if h is not None])


def test_intercom_first_response_hours_when_only_it_is_needed() -> None:
    data = read_export(
        EXPORTS,
        "intercom_conversations_ui.csv",
        "intercom_conversations",
        "company",
        "created_at",
        needed={"first_response_hours"},
    )
    assert column(data, "first_response_hours") == pytest.approx([1.5, 20 / 60])
