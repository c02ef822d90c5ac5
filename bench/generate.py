"""Seeded benchmark data: accounts, usage events, tickets and NPS responses, as Parquet and CSV.

    .venv/bin/python bench/generate.py --scale S --out bench/data/S

Writes `accounts`, `events`, `tickets` and `nps` (`.parquet` and `.csv` each) and a
`manifest.json`, in the schema of bench/SCHEMA.md. Everything is drawn with one
`numpy.random.default_rng(SEED)` and vectorized; events are written one day at a time
(`ParquetWriter` / `CSVWriter`), so memory stays bounded at scale L (50M events). A folder
whose manifest matches the seed, scale and generator version is left as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

SEED = 20260131
VERSION = 3
AS_OF = dt.date(2026, 1, 31)
CUTOFF = dt.datetime(2026, 2, 1)  # midnight after as_of, UTC
EVENT_DAYS = 90
TICKET_DAYS = 120
NPS_DAYS = 210
LATE_SHARE = 0.0005  # rows dated after as_of, which must not count
UNKNOWN_SHARE = 0.0001  # rows whose account id is no account
UNKNOWN_IDS = 100
NO_EVENTS_SHARE = 0.02  # dormant small accounts add ~1% more without events
NO_NPS_SHARE = 0.20
EDGES = {AS_OF - dt.timedelta(days=d - 1) for d in (30, 60, 90)} | {CUTOFF.date()}  # window starts, cutoff
TABLES = ("accounts", "events", "tickets", "nps")
FORMATS = ("parquet", "csv")

FEATURES = (
    "view_dashboard",
    "open_report",
    "run_query",
    "export_csv",
    "share_link",
    "create_project",
    "invite_user",
    "edit_settings",
    "upload_file",
    "download_file",
    "comment",
    "mention",
    "create_alert",
    "ack_alert",
    "api_call",
    "webhook_config",
    "sso_config",
    "billing_view",
    "search",
    "filter",
    "schedule_report",
    "create_dashboard",
    "edit_dashboard",
    "delete_item",
    "archive_item",
    "restore_item",
    "integration_add",
    "integration_sync",
    "template_use",
    "workflow_run",
    "workflow_edit",
    "mobile_open",
    "notification_open",
    "help_open",
    "tutorial_step",
    "feedback_submit",
    "tag_add",
    "bulk_edit",
    "audit_log_view",
)
EVENTS = ("login", *FEATURES)  # 40 names
assert len(EVENTS) == 40

NAME_FIRST = (
    "Blue",
    "Iron",
    "Silver",
    "North",
    "Bright",
    "Red",
    "Green",
    "Clear",
    "Swift",
    "Atlas",
    "Harbor",
    "Summit",
    "Cedar",
    "Pioneer",
    "Orbit",
    "Granite",
)
NAME_LAST = ("Analytics", "Robotics", "Logistics", "Software", "Labs", "Health", "Foods", "Freight", "Energy", "Media")
NAME_FORM = (" Inc", " Ltd", " GmbH", " LLC", " SA", "")


@dataclass(frozen=True)
class Scale:
    """Row counts of one benchmark scale."""

    name: str
    accounts: int
    events: int
    tickets: int
    nps: int


SCALES = {
    "S": Scale("S", 10_000, 1_000_000, 50_000, 20_000),
    "M": Scale("M", 100_000, 10_000_000, 500_000, 200_000),
    "L": Scale("L", 1_000_000, 50_000_000, 5_000_000, 1_000_000),
}

TS = pa.timestamp("us", tz="UTC")
CSV_TS = pa.timestamp("s", tz="UTC")
EVENTS_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("user_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", TS),
        ("duration_s", pa.float64()),
    ]
)


@dataclass(frozen=True)
class Accounts:
    """Per-account traits that drive the other tables (index i is account ACC-<i+1>)."""

    ids: pa.Array  # the account ids, then UNKNOWN_IDS ids of no account
    seats: np.ndarray
    activity: np.ndarray  # relative event rate; 0 for accounts without events
    trend: np.ndarray  # log-change of the event rate per 30 days
    last_day: np.ndarray  # last day index (0..89) with events
    login_share: np.ndarray
    breadth: np.ndarray  # how many features the account uses
    feature_offset: np.ndarray
    user_offset: np.ndarray  # first global user number of the account
    users: np.ndarray
    trouble: np.ndarray  # 1 normally, more for accounts with many bad tickets
    csat: np.ndarray  # chance a rated ticket is rated good
    sentiment: np.ndarray  # mean NPS score
    answers_nps: np.ndarray  # bool


def account_ids(numbers: np.ndarray, prefix: str = "ACC-", width: int = 7) -> pa.Array:
    """Ids like ACC-0000123 for the given numbers."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def make_accounts(rng: np.random.Generator, n: int) -> tuple[pa.Table, Accounts]:
    """The accounts table and the hidden traits the other tables are drawn from."""
    tier_index = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    tiers = np.array(["SMB", "Mid-Market", "Enterprise"])[tier_index]
    seats_mu = np.array([2.5, 4.0, 5.5])[tier_index]
    seats = np.maximum(1, np.rint(rng.lognormal(seats_mu, 0.6))).astype(np.int64)
    arr_mu = np.array([9.5, 10.8, 12.2])[tier_index]
    arr = np.rint(rng.lognormal(arr_mu, 0.5)).astype(np.float64)
    onboarding = np.round(rng.beta(5, 2, size=n) * 100, 1)
    onboarding[rng.random(n) < 0.05] = np.nan
    renewal = np.datetime64(AS_OF) + rng.integers(1, 366, size=n).astype("timedelta64[D]")
    names = pc.binary_join_element_wise(
        pa.array(np.array(NAME_FIRST)[rng.integers(0, len(NAME_FIRST), n)]),
        pa.array(np.array(NAME_LAST)[rng.integers(0, len(NAME_LAST), n)]),
        " ",
    )
    names = pc.binary_join_element_wise(names, pa.array(np.array(NAME_FORM)[rng.integers(0, len(NAME_FORM), n)]), "")
    ids = account_ids(np.arange(1, n + 1))
    table = pa.table(
        {
            "account_id": ids,
            "name": names,
            "region": pa.array(
                np.array(["EMEA", "NA", "APAC", "LATAM"])[rng.choice(4, size=n, p=[0.35, 0.4, 0.15, 0.1])]
            ),
            "tier": pa.array(tiers),
            "arr": pa.array(arr, pa.float64()),
            "seats": pa.array(seats, pa.int64()),
            "onboarding_pct": pa.array(onboarding, pa.float64(), from_pandas=True),
            "renewal_date": pa.array(renewal.astype("datetime64[D]"), pa.date32()),
        }
    )
    activity = seats.astype(np.float64) ** 0.7 * rng.lognormal(0.0, 0.8, size=n)
    activity[rng.random(n) < NO_EVENTS_SHARE] = 0.0
    dormant = rng.random(n) < 0.15
    last_day = np.where(dormant, rng.integers(0, EVENT_DAYS - 1, size=n), EVENT_DAYS - 1)
    users = np.maximum(1, np.rint(seats * rng.uniform(0.2, 0.9, size=n))).astype(np.int64)
    unknown = account_ids(9_000_001 + np.arange(UNKNOWN_IDS))
    traits = Accounts(
        ids=pa.concat_arrays([ids, unknown]),
        seats=seats,
        activity=activity,
        trend=rng.normal(0.0, 0.4, size=n),
        last_day=last_day,
        login_share=rng.beta(3, 7, size=n),
        breadth=rng.integers(2, len(FEATURES) + 1, size=n),
        feature_offset=rng.integers(0, len(FEATURES), size=n),
        user_offset=np.concatenate([[0], np.cumsum(users)[:-1]]),
        users=users,
        trouble=np.where(rng.random(n) < 0.1, 3.0, 1.0),
        csat=rng.beta(8, 2, size=n),
        sentiment=rng.uniform(4.0, 10.5, size=n),
        answers_nps=rng.random(n) >= NO_NPS_SHARE,
    )
    return table, traits


def spread(total: int, weights: np.ndarray) -> np.ndarray:
    """`total` split into integer parts proportional to `weights`, summing exactly to `total`."""
    raw = total * weights / weights.sum()
    parts: np.ndarray = np.floor(raw).astype(np.int64)
    short = total - int(parts.sum())
    parts[np.argsort(raw - parts)[::-1][:short]] += 1
    return parts


def with_unknown(rng: np.random.Generator, accounts: np.ndarray, n_accounts: int) -> np.ndarray:
    """Account indexes with ~UNKNOWN_SHARE of them replaced by ids of no account."""
    unknown = rng.random(len(accounts)) < UNKNOWN_SHARE
    out = accounts.copy()
    out[unknown] = n_accounts + rng.integers(0, UNKNOWN_IDS, size=int(unknown.sum()))
    return out


def to_timestamps(seconds: np.ndarray) -> pa.Array:
    """Seconds since the epoch as a UTC timestamp[us] array."""
    return pa.array(seconds.astype(np.int64) * 1_000_000, pa.int64()).cast(TS)


def epoch_seconds(day: dt.date) -> int:
    """Seconds since the epoch at the start of a UTC day."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def event_days(scale: Scale) -> list[tuple[dt.date, int]]:
    """(day, number of events) for the 90 days ending with as_of, then the day after as_of."""
    late = max(1, round(scale.events * LATE_SHARE))
    days = [AS_OF - dt.timedelta(days=EVENT_DAYS - 1 - i) for i in range(EVENT_DAYS)]
    weekday = np.array([0.55 if d.weekday() >= 5 else 1.0 for d in days])
    growth = np.linspace(0.9, 1.1, EVENT_DAYS)
    counts = spread(scale.events - late, weekday * growth)
    return [*zip(days, counts.tolist(), strict=True), (CUTOFF.date(), late)]


def event_chunks(rng: np.random.Generator, scale: Scale, acc: Accounts) -> Iterator[pa.Table]:
    """The events, one table per day, in time order within the day."""
    n = scale.accounts
    for day_index, (day, count) in enumerate(event_days(scale)):
        position = min(day_index, EVENT_DAYS - 1)
        rate = acc.activity * np.exp(acc.trend * (position - (EVENT_DAYS - 1)) / 30.0)
        rate = np.where(acc.last_day >= position, rate, 0.0)
        who = rng.choice(n, size=count, p=rate / rate.sum())
        seconds = rng.integers(0, 86_400, size=count)
        if day in EDGES:
            seconds[: min(5, count)] = 0  # rows exactly on a window edge
        if day == AS_OF:
            seconds[: min(5, count)] = 86_399
        order = np.argsort(seconds, kind="stable")
        who, seconds = who[order], seconds[order]
        is_login = rng.random(count) < acc.login_share[who]
        step = np.floor(rng.random(count) ** 2 * acc.breadth[who]).astype(np.int64)
        feature = 1 + (acc.feature_offset[who] + step) % len(FEATURES)
        event = np.where(is_login, 0, feature)
        user = acc.user_offset[who] + np.floor(rng.random(count) ** 1.5 * acc.users[who]).astype(np.int64)
        duration = np.where(is_login, rng.integers(1, 30, size=count), np.rint(rng.lognormal(4.0, 1.0, size=count)))
        keys = with_unknown(rng, who, n)
        yield pa.table(
            {
                "account_id": acc.ids.take(pa.array(keys)),
                "user_id": account_ids(user + 1, prefix="U-", width=8),
                "event": pa.array(np.array(EVENTS)[event]),
                "timestamp": to_timestamps(epoch_seconds(day) + seconds),
                "duration_s": pa.array(duration.astype(np.float64)),
            },
            schema=EVENTS_SCHEMA,
        )


def random_times(rng: np.random.Generator, count: int, days: int) -> np.ndarray:
    """Epoch seconds uniform over the `days` days ending with as_of, ~LATE_SHARE after it."""
    start = epoch_seconds(AS_OF) + 86_400 - days * 86_400
    seconds = start + rng.integers(0, days * 86_400, size=count)
    late = rng.random(count) < LATE_SHARE
    seconds[late] = epoch_seconds(CUTOFF.date()) + rng.integers(0, 86_400, size=int(late.sum()))
    return np.sort(seconds)


def make_tickets(rng: np.random.Generator, scale: Scale, acc: Accounts) -> pa.Table:
    """Support tickets over 120 days, ordered by creation time."""
    n, count = scale.accounts, scale.tickets
    weight = np.sqrt(acc.seats) * acc.trouble * rng.lognormal(0.0, 0.7, size=n)
    who = rng.choice(n, size=count, p=weight / weight.sum())
    created = random_times(rng, count, TICKET_DAYS)
    trouble = acc.trouble[who] > 1
    p_normal = np.array([0.35, 0.45, 0.15, 0.05])
    p_trouble = np.array([0.15, 0.35, 0.3, 0.2])
    u = rng.random(count)
    priority = np.where(
        trouble,
        np.searchsorted(np.cumsum(p_trouble), u, side="right"),
        np.searchsorted(np.cumsum(p_normal), u, "right"),
    )
    age_days = (epoch_seconds(CUTOFF.date()) - created) / 86_400
    unsolved = rng.random(count) < 0.8 * np.exp(-np.maximum(age_days, 0) / 6.0)
    status = np.where(unsolved, rng.integers(0, 2, size=count), rng.integers(2, 4, size=count))
    hours = np.round(rng.lognormal(2.5, 1.0, size=count) * np.where(trouble, 2.0, 1.0), 2)
    hours[unsolved] = np.nan
    rated = ~unsolved & (rng.random(count) < 0.4)
    good = rng.random(count) < acc.csat[who]
    satisfaction = pa.array(np.where(good, "good", "bad"), pa.string(), mask=~rated)
    keys = with_unknown(rng, who, n)
    return pa.table(
        {
            "account_id": acc.ids.take(pa.array(keys)),
            "ticket_id": pa.array(100_000 + np.arange(count), pa.int64()),
            "created_at": to_timestamps(created),
            "priority": pa.array(np.array(["low", "normal", "high", "urgent"])[priority]),
            "status": pa.array(np.array(["open", "pending", "solved", "closed"])[status]),
            "satisfaction": satisfaction,
            "resolution_hours": pa.array(hours, pa.float64(), from_pandas=True),
        }
    )


def make_nps(rng: np.random.Generator, scale: Scale, acc: Accounts) -> pa.Table:
    """NPS responses over 210 days from ~80% of the accounts, ordered by time."""
    n, count = scale.accounts, scale.nps
    weight = np.sqrt(acc.seats) * acc.answers_nps
    respondents = np.flatnonzero(acc.answers_nps)[:count]  # each answers at least once, so ~20% never do
    others = rng.choice(n, size=count - len(respondents), p=weight / weight.sum())
    who = rng.permutation(np.concatenate([respondents, others]))
    score = np.clip(np.rint(rng.normal(acc.sentiment[who], 1.8)), 0, 10).astype(np.int64)
    keys = with_unknown(rng, who, n)
    return pa.table(
        {
            "account_id": acc.ids.take(pa.array(keys)),
            "responded_at": to_timestamps(random_times(rng, count, NPS_DAYS)),
            "score": pa.array(score, pa.int64()),
        }
    )


@dataclass(frozen=True)
class Manifest:
    """What a data folder holds; a folder with a matching manifest is not regenerated."""

    seed: int
    scale: str
    version: int
    rows: dict[str, int]
    seconds: float

    def matches(self, scale: str) -> bool:
        """True when this manifest describes the data `generate(scale)` would write now."""
        return self.seed == SEED and self.scale == scale and self.version == VERSION


def read_manifest(out: Path) -> Manifest | None:
    """The folder's manifest, or None when it is absent, unreadable or a file is missing."""
    path = out / "manifest.json"
    try:
        manifest = Manifest(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if not all((out / f"{t}.{f}").is_file() for t in TABLES for f in FORMATS):
        return None
    return manifest


def for_csv(table: pa.Table) -> pa.Table:
    """The table with its timestamps at second precision, written as `2026-01-31 23:59:59Z`."""
    return table.cast(csv_schema(table.schema))


def csv_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with timestamp[us, UTC] columns as timestamp[s, UTC]."""
    return pa.schema([pa.field(f.name, CSV_TS if f.type == TS else f.type) for f in schema])


def write_table(table: pa.Table, out: Path, name: str) -> None:
    """One table as `<name>.parquet` and `<name>.csv`."""
    pq.write_table(table, out / f"{name}.parquet")
    pcsv.write_csv(for_csv(table), out / f"{name}.csv")


def generate(scale_name: str, out: Path, *, force: bool = False, log: bool = True) -> Manifest:
    """Write the four tables of a scale into `out` (skipped when its manifest matches); the manifest."""
    existing = read_manifest(out)
    if existing is not None and existing.matches(scale_name) and not force:
        return existing
    scale = SCALES[scale_name]
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    accounts, traits = make_accounts(rng, scale.accounts)
    write_table(accounts, out, "accounts")
    rows = {"accounts": accounts.num_rows, "events": 0}
    with (
        pq.ParquetWriter(out / "events.parquet", EVENTS_SCHEMA) as parquet,
        pcsv.CSVWriter(out / "events.csv", csv_schema(EVENTS_SCHEMA)) as csv,
    ):
        for chunk in event_chunks(rng, scale, traits):
            parquet.write_table(chunk)
            csv.write_table(for_csv(chunk))
            rows["events"] += chunk.num_rows
            if log and sys.stderr.isatty():
                print(f"\r  events: {rows['events']:,} of {scale.events:,}", end="", file=sys.stderr, flush=True)
    if log and sys.stderr.isatty():
        print(file=sys.stderr)
    for name, table in (("tickets", make_tickets(rng, scale, traits)), ("nps", make_nps(rng, scale, traits))):
        write_table(table, out, name)
        rows[name] = table.num_rows
    manifest = Manifest(SEED, scale_name, VERSION, rows, round(time.perf_counter() - started, 1))
    (out / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """CLI entry: generate one scale into a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", choices=sorted(SCALES), default="S")
    parser.add_argument("--out", type=Path, help="default: bench/data/<scale>")
    parser.add_argument("--force", action="store_true", help="regenerate even when the manifest matches")
    args = parser.parse_args(argv)
    out = args.out or Path(__file__).resolve().parent / "data" / args.scale
    manifest = generate(args.scale, out, force=args.force)
    counts = ", ".join(f"{k} {v:,}" for k, v in manifest.rows.items())
    print(f"{out}: scale {manifest.scale}, {counts} (generated in {manifest.seconds}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
