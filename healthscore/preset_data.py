"""The shipped presets: each known tool's export headers, renames, types, read options and
derived columns, and the two small types that describe them.

Headers are written exactly as each tool writes them (see EXPORTS.md for the sources and how
sure each is). How a preset is applied to a source lives in `healthscore.presets`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Derived:
    """A column a preset computes, vectorized, from typed columns of the same rows."""

    description: str
    inputs: tuple[str, ...]
    compute: Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Preset:
    """What a preset contributes to a source; see `healthscore.presets` for precedence."""

    tool: str  # the product and the export, e.g. "Zendesk Support: ticket export (CSV)"
    description: str  # one or two sentences for the docs
    rename: Mapping[str, str]  # header exactly as the tool writes it -> column name
    patterns: tuple[tuple[str, str], ...] = ()  # (regex matched against a whole header, replacement)
    types: Mapping[str, str] = field(default_factory=dict)  # column name (after rename) -> type
    lowercase: tuple[str, ...] = ()  # text columns compared in `where`, lower-cased (unless typed)
    options: Mapping[str, Any] = field(default_factory=dict)  # SourceConfig defaults
    derive: Mapping[str, Derived] = field(default_factory=dict)
    key: str = ""  # the usual key column after rename, for docs and `init`
    time: str | None = None  # the usual time column after rename
    notes: tuple[str, ...] = ()  # quirks worth a line in the docs

    def column_names(self, headers: Sequence[str]) -> dict[str, str]:
        """The renames this preset makes of a file's headers: exact names, then patterns."""
        renames: dict[str, str] = {}
        for header in headers:
            if header in self.rename:
                renames[header] = self.rename[header]
                continue
            for pattern, replacement in self.patterns:
                match = re.fullmatch(pattern, header)
                if match:
                    renames[header] = match.expand(replacement)
                    break
        return renames


# --- derived columns ----------------------------------------------------------------------

MONTHS_PER_INTERVAL = {"month": 1.0, "year": 12.0, "week": 12.0 / 52.0, "day": 12.0 / 365.0}
NPS_GROUP_CODES = {1.0: "detractor", 2.0: "passive", 3.0: "promoter"}
NPS_GROUP_NAMES = {"detractor": "detractor", "passive": "passive", "neutral": "passive", "promoter": "promoter"}


def monthly_amount(frame: pd.DataFrame) -> pd.Series:
    """Stripe `amount` x `quantity` per month by `interval` (month, year, week, day); a blank
    quantity counts as 1, an unknown interval gives a missing value."""
    interval = frame["interval"].astype("str").str.strip().str.lower()
    months = interval.map(MONTHS_PER_INTERVAL).astype("float64")
    quantity = pd.to_numeric(frame["quantity"], errors="coerce").astype("float64").fillna(1.0)
    return (pd.to_numeric(frame["amount"], errors="coerce").astype("float64") * quantity / months).rename("mrr")


def nps_category(frame: pd.DataFrame) -> pd.Series:
    """Qualtrics' NPS group as `detractor`, `passive` or `promoter`, from the numeric codes
    1, 2, 3 or from the choice text (any case, singular or plural); anything else is missing."""
    text = frame["nps_group"].astype("str").str.strip().str.lower().where(frame["nps_group"].notna())
    from_codes = pd.to_numeric(text, errors="coerce").map(NPS_GROUP_CODES)
    from_names = text.str.removesuffix("s").map(NPS_GROUP_NAMES)
    category = from_codes.fillna(from_names)
    return category.astype("str").where(category.notna()).rename("nps_category")


def hours_between(start: str, end: str) -> Callable[[pd.DataFrame], pd.Series]:
    """A compute function: hours from datetime column `start` to datetime column `end`."""

    def compute(frame: pd.DataFrame) -> pd.Series:
        elapsed = pd.to_datetime(frame[end]) - pd.to_datetime(frame[start])
        return (elapsed / pd.Timedelta(hours=1)).astype("float64")

    compute.__doc__ = f"Hours from `{start}` to `{end}`."
    return compute


def event_slug(frame: pd.DataFrame) -> pd.Series:
    """An event name in Segment's warehouse form: lower case, runs of other characters as `_`
    (`Order Completed` -> `order_completed`), so JSON and warehouse exports filter alike."""
    text = frame["event"].astype("str").str.strip().str.lower()
    slug = text.str.replace(r"[^a-z0-9]+", "_", regex=True).str.strip("_")
    return slug.where(frame["event"].notna() & (slug != "")).rename("event_slug")


def _minutes(prefix: str, name: str) -> dict[str, str]:
    """Zendesk's pair of duration columns, calendar and business minutes."""
    return {
        f"{prefix} time in minutes": f"{name}_minutes",
        f"{prefix} time in minutes within business hours": f"{name}_business_minutes",
    }


ZENDESK_MINUTES = {
    **_minutes("First reply", "first_reply"),
    **_minutes("First resolution", "first_resolution"),
    **_minutes("Full resolution", "full_resolution"),
    **_minutes("Agent wait", "agent_wait"),
    **_minutes("Requester wait", "requester_wait"),
    **_minutes("On hold", "on_hold"),
}


def _typed(kind: str, *columns: str) -> dict[str, str]:
    return dict.fromkeys(columns, kind)


# --- the presets --------------------------------------------------------------------------

PRESETS: dict[str, Preset] = {
    "zendesk_tickets": Preset(
        tool="Zendesk Support: ticket export (CSV)",
        description="The tickets view export; one row per ticket, the account in `Organization`.",
        rename={
            "ID": "ticket_id",
            "Id": "ticket_id",
            "Requester": "requester",
            "Requester ID": "requester_id",
            "Requester id": "requester_id",
            "Requester external id": "requester_external_id",
            "Requester email": "requester_email",
            "Requester domain": "requester_domain",
            "Submitter": "submitter",
            "Assignee": "assignee",
            "Group": "group",
            "Subject": "subject",
            "Tags": "tags",
            "Status": "status",
            "Priority": "priority",
            "Via": "via",
            "Ticket type": "ticket_type",
            "Created at": "created_at",
            "Updated at": "updated_at",
            "Assigned at": "assigned_at",
            "Organization": "organization",
            "Due date": "due_date",
            "Initially assigned at": "initially_assigned_at",
            "Solved at": "solved_at",
            "Resolution time": "resolution_hours",
            "Satisfaction Score": "satisfaction",
            "Group stations": "group_stations",
            "Assignee stations": "assignee_stations",
            "Reopens": "reopens",
            "Replies": "replies",
            **ZENDESK_MINUTES,
        },
        types={
            **_typed("string", "ticket_id", "requester_id", "requester_external_id", "organization"),
            **_typed("datetime", "created_at", "updated_at", "assigned_at", "initially_assigned_at"),
            **_typed("datetime", "solved_at", "due_date"),
            "resolution_hours": "float",
            **_typed("int", "group_stations", "assignee_stations", "reopens", "replies"),
            **_typed("float", *ZENDESK_MINUTES.values()),
        },
        lowercase=("status", "priority", "satisfaction", "ticket_type", "via"),
        key="organization",
        time="created_at",
        notes=(
            "Times are in the Zendesk account's default time zone and carry no offset, so they are "
            "read as UTC; the JSON export is UTC.",
            "`Resolution time` is in hours; the `... time in minutes` columns are minutes, each also "
            "`within business hours` (`*_business_minutes`).",
            "`satisfaction` holds `not offered`, `offered`, `good` or `bad` after lower-casing.",
            "Older exports write `Id` and `Requester id`; both spellings are mapped. A leading "
            "`Summation column` and custom `... [list]` columns keep their own names.",
            "Comments, descriptions and multi-line custom fields are not in this export.",
        ),
    ),
    "salesforce_report": Preset(
        tool="Salesforce: report export (CSV, details only)",
        description=(
            "An accounts or opportunities report exported as CSV; the headers are the report's "
            "column labels, so only the columns present are renamed."
        ),
        rename={
            "Account Name": "account_name",
            "Account ID": "account_id",
            "Account Owner": "owner",
            "Account Type": "account_type",
            "Opportunity Name": "opportunity_name",
            "Opportunity ID": "opportunity_id",
            "Opportunity Owner": "opportunity_owner",
            "Stage": "stage",
            "Amount": "amount",
            "Expected Revenue": "expected_revenue",
            "Probability (%)": "probability",
            "Close Date": "close_date",
            "Created Date": "created_date",
            "Last Activity": "last_activity",
            "Last Modified Date": "last_modified_date",
            "Type": "type",
            "Lead Source": "lead_source",
            "Forecast Category": "forecast_category",
            "Fiscal Period": "fiscal_period",
            "Next Step": "next_step",
            "Industry": "industry",
            "Billing Country": "billing_country",
            "Billing State/Province": "billing_state",
            "Billing City": "billing_city",
            "Annual Revenue": "annual_revenue",
            "Employees": "employees",
        },
        types={
            **_typed("string", "account_id", "opportunity_id"),
            **_typed("float", "amount", "expected_revenue", "probability", "annual_revenue"),
            "employees": "int",
            **_typed("date", "close_date", "created_date", "last_activity", "last_modified_date"),
        },
        lowercase=("stage", "type", "account_type", "forecast_category"),
        key="account_id",
        time="close_date",
        notes=(
            "Every value is quoted. The footer after the data (a blank line, `Grand Totals (N records)`, "
            "`Confidential Information - Do Not Distribute`, the copyright line) is dropped by the reader.",
            "Dates follow the exporting user's locale: an en_US export writes `1/31/2026`, so set "
            '`date_format: "%m/%d/%Y"` on the source (the default reads ISO dates such as `2026-01-31`).',
            "Amounts are read as plain numbers; if the export writes thousands separators "
            '(`1,234.50`), set `thousands: ","` on the source.',
            "Reports show 15-character case-sensitive ids; to join them with 18-character ids from "
            "another export, set `key_transform: [strip, salesforce18]` on both sources.",
            "An accounts report has no natural time column: drop `time` when it is the accounts source.",
        ),
    ),
    "hubspot_companies": Preset(
        tool="HubSpot: companies export (CSV, XLS or XLSX)",
        description=(
            "The companies index exported with its property labels as headers; the columns follow "
            "the chosen view, so only those present are renamed. One row per company."
        ),
        rename={
            "Record ID": "company_id",
            "Company name": "company_name",
            "Company Domain Name": "domain",
            "Website URL": "website",
            "Company owner": "owner",
            "Create Date": "create_date",
            "Last Activity Date": "last_activity_date",
            "Last Modified Date": "last_modified_date",
            "Last Contacted": "last_contacted",
            "Annual Revenue": "annual_revenue",
            "Total Revenue": "total_revenue",
            "Number of Employees": "employees",
            "Industry": "industry",
            "Type": "type",
            "Lifecycle Stage": "lifecycle_stage",
            "Lead Status": "lead_status",
            "Country/Region": "country",
            "State/Region": "state",
            "City": "city",
            "Phone Number": "phone",
            "Time Zone": "time_zone",
            "Parent Company": "parent_company",
            "Number of Associated Contacts": "contacts",
            "Number of Associated Deals": "deals",
            "Recent Deal Amount": "recent_deal_amount",
            "Recent Deal Close Date": "recent_deal_close_date",
        },
        types={
            "company_id": "string",
            "phone": "string",
            **_typed("datetime", "create_date", "last_activity_date", "last_modified_date", "last_contacted"),
            "recent_deal_close_date": "datetime",
            **_typed("float", "annual_revenue", "total_revenue", "recent_deal_amount"),
            **_typed("int", "employees", "contacts", "deals"),
        },
        lowercase=("lifecycle_stage", "type", "lead_status"),
        key="company_id",
        time=None,
        notes=(
            "A list of companies, usually the accounts source: it has no event time.",
            "`company_id` (`Record ID`) is HubSpot's own id; to join with tools that know the "
            "customer by web domain, key on `domain` instead (`key_transform: [strip, lower]`).",
            "Times like `2020-01-10 10:00` carry no offset and are read as UTC.",
        ),
    ),
    "stripe_subscriptions": Preset(
        tool="Stripe: subscriptions export from the Dashboard (CSV)",
        description="One row per subscription with its plan, price, status and billing periods.",
        rename={
            "id": "subscription_id",
            "Customer ID": "customer_id",
            "Customer Name": "customer_name",
            "Customer Email": "customer_email",
            "Plan": "plan",
            "Product": "product",
            "Quantity": "quantity",
            "Currency": "currency",
            "Interval": "interval",
            "Amount": "amount",
            "Status": "status",
            "Cancellation Reason": "cancellation_reason",
            "Created (UTC)": "created",
            "Start (UTC)": "start",
            "Start Date (UTC)": "start",
            "Current Period Start (UTC)": "current_period_start",
            "Current Period End (UTC)": "current_period_end",
            "Trial Start (UTC)": "trial_start",
            "Trial End (UTC)": "trial_end",
            "Canceled At (UTC)": "canceled_at",
            "Ended At (UTC)": "ended_at",
        },
        patterns=((r"(.+) \(metadata\)", r"meta_\1"),),
        types={
            **_typed("string", "subscription_id", "customer_id"),
            "quantity": "int",
            "amount": "float",
            **_typed("datetime", "created", "start", "current_period_start", "current_period_end"),
            **_typed("datetime", "trial_start", "trial_end", "canceled_at", "ended_at"),
        },
        lowercase=("status", "interval", "currency"),
        derive={
            "mrr": Derived(
                "monthly recurring revenue: `amount` x `quantity` (blank = 1) per month by `interval` "
                "(month: x1, year: /12, week: x52/12, day: x365/12), in the subscription's currency and "
                "whatever its status (filter with `where: \"status == 'active'\"`)",
                ("amount", "quantity", "interval"),
                monthly_amount,
            ),
        },
        key="customer_id",
        time="created",
        notes=(
            "Times are UTC, as the headers say.",
            "Metadata columns `<key> (metadata)` become `meta_<key>`: a CRM id kept in metadata "
            "(`account_id (metadata)` -> `meta_account_id`) makes a better key than `customer_id`.",
            "`Amount` is taken as the plan's price per unit in currency units (`49.00`, not cents); "
            "`mrr` does not convert currencies or apply coupons.",
            "Exports write either `Start (UTC)` or `Start Date (UTC)`; both become `start`.",
        ),
    ),
    "qualtrics_responses": Preset(
        tool="Qualtrics: survey responses (CSV, three header rows)",
        description=(
            "The Data & Analysis download as CSV, with numeric values or choice text. Row 1 holds the "
            "column ids used here; rows 2 (question text) and 3 (import ids) are skipped."
        ),
        rename={
            "StartDate": "start_date",
            "EndDate": "end_date",
            "Status": "response_type",
            "IPAddress": "ip_address",
            "Progress": "progress",
            "Duration (in seconds)": "duration_seconds",
            "Finished": "finished",
            "RecordedDate": "recorded_date",
            "ResponseId": "response_id",
            "RecipientLastName": "recipient_last_name",
            "RecipientFirstName": "recipient_first_name",
            "RecipientEmail": "recipient_email",
            "ExternalReference": "external_reference",
            "LocationLatitude": "latitude",
            "LocationLongitude": "longitude",
            "DistributionChannel": "distribution_channel",
            "UserLanguage": "user_language",
        },
        patterns=((r".+_NPS_GROUP", "nps_group"),),
        types={
            **_typed("datetime", "start_date", "end_date", "recorded_date"),
            **_typed("int", "progress", "duration_seconds"),
            "finished": "bool",
            **_typed("string", "response_id", "external_reference", "nps_group"),
            **_typed("float", "latitude", "longitude"),
        },
        lowercase=("response_type", "distribution_channel"),
        options={"header_rows": 3},
        derive={
            "nps_category": Derived(
                "`detractor`, `passive` or `promoter` from `nps_group`, which holds the codes 1, 2, 3 "
                "in a numeric-values export and `Detractor`, `Passive`, `Promoter` in a choice-text one",
                ("nps_group",),
                nps_category,
            ),
        },
        key="external_reference",
        time="recorded_date",
        notes=(
            "Times like `2020-07-17 18:52:45` carry no offset; the zone they are in is named in the "
            'third header row (`"timeZone":"America/Denver"`), which is skipped, and they are read as UTC.',
            "An NPS question `Q7` adds `Q7_NPS_GROUP`, renamed `nps_group`; the score itself stays "
            "under the question's id: map it with `rename: {Q7: nps_score}` and use "
            "`agg: nps, field: nps_score`. A survey with two NPS questions needs `rename` for both groups.",
            "Embedded data fields (an account id passed in the survey link) are columns under their "
            "own names: set `key` to one of them, or to `external_reference`.",
            "`response_type` is `IP Address`, `Survey Preview`, `Spam` ... (codes 0, 1, 8 ... in a "
            "numeric export); `finished` reads `True`/`False` and `1`/`0` alike.",
        ),
    ),
    "surveymonkey_responses": Preset(
        tool="SurveyMonkey: all responses data (CSV, two header rows)",
        description=(
            "The expanded CSV export: row 1 holds the questions, row 2 their sub-answers (skipped). "
            "One row per respondent, then one column per question or answer choice."
        ),
        rename={
            "Respondent ID": "respondent_id",
            "Collector ID": "collector_id",
            "Start Date": "start_date",
            "End Date": "end_date",
            "IP Address": "ip_address",
            "Email Address": "email",
            "First Name": "first_name",
            "Last Name": "last_name",
            "Custom Data 1": "custom_data_1",
        },
        patterns=((r"Custom Data (\d+)", r"custom_data_\1"),),
        types={
            **_typed("string", "respondent_id", "collector_id", "custom_data_1"),
            **_typed("datetime", "start_date", "end_date"),
        },
        options={"header_rows": 2, "date_format": "%m/%d/%Y %I:%M:%S %p"},
        key="custom_data_1",
        time="end_date",
        notes=(
            "Dates are US style with a 12-hour clock (`01/31/2026 10:15:00 AM`): the preset sets "
            '`date_format: "%m/%d/%Y %I:%M:%S %p"`; set the source\'s own `date_format` if your '
            "export differs. Times carry no offset and are read as UTC.",
            "Pass the account id in the survey link as custom data (`Custom Data 1`) to key on it.",
            "Question columns keep the question text of row 1 as their name; a question with several "
            "answer columns has a blank header over all but its first, so map the ones you use with "
            "`rename`.",
        ),
    ),
    "delighted_responses": Preset(
        tool="Delighted: survey responses (JSON lines from the API)",
        description=(
            "Survey responses as the API returns them, one JSON object per line (for example "
            "`jq -c '.[]'` over the pages); `person_properties` are flattened."
        ),
        rename={
            "id": "response_id",
            "person": "person_id",
            "person.id": "person_id",
            "person.email": "email",
            "person.name": "name",
            "survey_type": "survey_type",
            "score": "score",
            "comment": "comment",
            "permalink": "permalink",
            "created_at": "created_at",
            "updated_at": "updated_at",
            "notes": "notes",
            "tags": "tags",
        },
        patterns=((r"person_properties\.(.+)", r"\1"),),
        types={
            **_typed("string", "response_id", "person_id"),
            "score": "int",
            **_typed("datetime", "created_at", "updated_at"),
        },
        lowercase=("survey_type",),
        key="company_id",
        time="created_at",
        notes=(
            "`created_at` and `updated_at` are Unix seconds (UTC).",
            "Person properties lose their prefix (`person_properties.company_id` -> `company_id`): "
            "set `key` to the property holding the account.",
            "`person` is an id, or with `expand[]=person` an object whose `id`, `email` and `name` "
            "become `person_id`, `email` and `name`.",
            "`tags` come joined by `|`. `survey_type` tells NPS (`nps`, 0-10) from CSAT, CES and other "
            "scales: filter with `where: \"survey_type == 'nps'\"` before `agg: nps`.",
            "The web export's CSV headers are not documented; map them with `rename`.",
        ),
    ),
    "mixpanel_events": Preset(
        tool="Mixpanel: raw event export (JSON lines)",
        description=(
            "The raw export API's output, one event per line with its `properties` flattened; the "
            "`properties.` prefix (and a `$`) is dropped from property names."
        ),
        rename={
            "event": "event",
            "properties.time": "time",
            "properties.distinct_id": "distinct_id",
            "properties.$insert_id": "insert_id",
            "properties.mp_processing_time_ms": "processing_time",
        },
        patterns=((r"properties\.\$?(.+)", r"\1"),),
        types={
            "time": "datetime",
            "processing_time": "datetime",
            **_typed("string", "distinct_id", "insert_id"),
        },
        options={"format": "jsonl", "dedupe": "insert_id"},
        key="company_id",
        time="time",
        notes=(
            "`time` is Unix seconds, or milliseconds with `time_in_ms`; the unit is chosen by size. "
            "Projects created before 2023 may export times in the project's time zone rather than UTC.",
            "Rows repeating an earlier row's `$insert_id` are dropped and counted, as Mixpanel deduplicates them.",
            "Mixpanel has no account field: set `key` to the group key or property holding it "
            "(`properties.company_id` -> `key: company_id`).",
            "Default properties lose their `$` (`$browser` -> `browser`).",
        ),
    ),
    "amplitude_events": Preset(
        tool="Amplitude: export API events (gzipped JSON lines)",
        description=(
            "The files inside the export zip (`*.json.gz`), one event per line; nested objects are "
            "flattened and renamed by the patterns below."
        ),
        rename={
            "event_type": "event",
            "event_time": "time",
            "user_id": "user_id",
            "device_id": "device_id",
            "amplitude_id": "amplitude_id",
            "uuid": "uuid",
            "$insert_id": "insert_id",
            "session_id": "session_id",
            "client_event_time": "client_event_time",
            "client_upload_time": "client_upload_time",
            "server_upload_time": "server_upload_time",
            "server_received_time": "server_received_time",
            "processed_time": "processed_time",
        },
        patterns=(
            (r"groups\.(.+)", r"group_\1"),
            (r"event_properties\.(.+)", r"prop_\1"),
            (r"user_properties\.(.+)", r"user_prop_\1"),
        ),
        types={
            **_typed("datetime", "time", "client_event_time", "client_upload_time", "server_upload_time"),
            **_typed("datetime", "server_received_time", "processed_time"),
            **_typed("string", "user_id", "device_id", "amplitude_id", "uuid", "insert_id"),
        },
        options={"format": "jsonl", "dedupe": "uuid"},
        key="group_company",
        time="time",
        notes=(
            "Unzip the export and point `path` at the hourly files (`export/*.json.gz`).",
            "`event_time` (`2020-02-15 01:00:00.123456`) is UTC without an offset.",
            "The account usually sits in `groups`: `groups.company` becomes `group_company`; an event "
            "in several groups of one type holds them joined by `|`.",
            "`event_properties.<k>` become `prop_<k>` and `user_properties.<k>` become `user_prop_<k>`, "
            "so they cannot clash with Amplitude's own columns.",
            "Rows repeating an earlier row's `uuid` (an hour exported twice) are dropped and counted.",
        ),
    ),
    "segment_tracks": Preset(
        tool="Segment: track events (warehouse `tracks` table as CSV/Parquet, or JSON lines)",
        description=(
            "Both shapes map to one set of names: the warehouse's snake_case columns and the JSON "
            "spec's camelCase fields (`userId`, `context.groupId`, `messageId`, `properties.*`)."
        ),
        rename={
            "id": "message_id",
            "messageId": "message_id",
            "type": "type",
            "event": "event",
            "event_text": "event_text",
            "user_id": "user_id",
            "userId": "user_id",
            "anonymous_id": "anonymous_id",
            "anonymousId": "anonymous_id",
            "context_group_id": "group_id",
            "context_groupId": "group_id",
            "context.groupId": "group_id",
            "groupId": "group_id",
            "timestamp": "time",
            "received_at": "received_at",
            "receivedAt": "received_at",
            "sent_at": "sent_at",
            "sentAt": "sent_at",
            "original_timestamp": "original_timestamp",
            "originalTimestamp": "original_timestamp",
            "loaded_at": "loaded_at",
            "uuid_ts": "uuid_ts",
        },
        patterns=(
            (r"properties\.(.+)", r"\1"),
            (r"context\.([^.]+)", r"context_\1"),
            (r"context\.([^.]+)\.([^.]+)", r"context_\1_\2"),
        ),
        types={
            **_typed("string", "message_id", "user_id", "anonymous_id", "group_id"),
            **_typed("datetime", "time", "received_at", "sent_at", "original_timestamp", "loaded_at", "uuid_ts"),
        },
        lowercase=("type",),
        options={"dedupe": "message_id"},
        derive={
            "event_slug": Derived(
                "the event name in the warehouse's form (`Order Completed` -> `order_completed`), the "
                "same for both shapes",
                ("event",),
                event_slug,
            ),
        },
        key="group_id",
        time="time",
        notes=(
            "`timestamp` (ISO 8601, converted to UTC) becomes `time`; `received_at`, `sent_at` and "
            "`original_timestamp` are kept.",
            "In a warehouse table `event` is the snake_case table name (`order_completed`) and "
            "`event_text` the name as sent; in JSON `event` is the name as sent. Filter on `event_slug`, "
            "which is the same in both.",
            "The account comes from group calls: `context_group_id` / `context.groupId` become "
            "`group_id`. Tracks that carry no group id need it added upstream.",
            "Properties lose their `properties.` prefix as in the warehouse; `context.a.b` becomes "
            "`context_a_b` (camelCase keys are not snake-cased).",
            "Rows repeating an earlier `messageId` (the warehouse's `id`) are dropped and counted. A JSON "
            "file holding other calls too can be narrowed with `where: \"type == 'track'\"`.",
        ),
    ),
    "intercom_conversations": Preset(
        tool="Intercom: conversations export (CSV)",
        description=(
            "Conversation rows from the data export (`conversation_*` columns) or from the Inbox/"
            "reports CSV (`Conversation ID`, `Conversation started at` ...); both map to one set of names."
        ),
        rename={
            "conversation_id": "conversation_id",
            "conversation_state": "state",
            "conversation_created_at": "created_at",
            "conversation_first_response_at": "first_response_at",
            "conversation_closed_at": "closed_at",
            "message_author_companies": "company",
            "Conversation ID": "conversation_id",
            "Conversation started at": "created_at",
            "Conversation first replied at": "first_response_at",
            "State": "state",
            "Channel": "channel",
            "Assignee": "assignee",
            "Company name": "company",
        },
        types={
            "conversation_id": "string",
            **_typed("datetime", "created_at", "first_response_at", "closed_at"),
        },
        lowercase=("state", "channel"),
        derive={
            "first_response_hours": Derived(
                "hours from `created_at` to `first_response_at`; missing while unanswered",
                ("created_at", "first_response_at"),
                hours_between("created_at", "first_response_at"),
            ),
        },
        key="company",
        time="created_at",
        notes=(
            "Times like `2017-11-14 21:45:08` are UTC.",
            "The account is the company's name; a conversation whose author belongs to several "
            "companies holds them joined by `|` and matches none.",
            "The conversation thread itself is not in the export (it needs the API).",
        ),
    ),
}
