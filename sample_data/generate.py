"""Generate the sample customer-success exports shipped with healthscore.

Usage: ``python sample_data/generate.py [--out DIR]`` (default: the folder holding this script).
Writes crm_accounts.csv, zendesk_tickets.csv, nps_responses.csv and usage_events.parquet,
and churn_outcomes.csv: what happened at each account's renewal in the following year.

Each of the 500 accounts has an archetype and a latent health h in [0, 1]:

* thriving (20 %, h 0.75-0.98): steady usage by many users, broad feature use, promoters,
  few tickets (most have none) solved quickly and rated Good, onboarding ~100 %, low churn.
* declining (20 %, h 0.15-0.50): from a day in mid-Nov to mid-Dec users drop out and the rest
  log in less, so the last 30 days are clearly below the 30 before; more tickets, piling up
  recently and more urgent; detractors (worse lately); Bad CSAT; high churn probability.
* steady (60 %, h 0.30-0.75): a small random usage trend, everything in between.

Every field is h plus noise, so the files agree without being functions of each other.
Active users grow with sqrt(Seats); the number of distinct features used grows with h.
~20 % of accounts never answered NPS, 3 % (never thriving) have no usage, and 15 tickets
belong to four organization ids that match no account (999001, ...). Activity spans
2025-11-01 00:00:00 to 2026-01-31 23:59:59 UTC; the scoring date is 2026-01-31. One
numpy.random.default_rng(20260131) drives everything and the clock is never read, so every
run writes byte-identical files.

Outcomes: each account renews or churns on its Renewal Date, and churn follows a few things
the exports show, read back from the generated frames by `churn_drivers` as healthscore
computes them as of 2026-01-31: the growth g of active users (distinct users with any event)
in the last 30 days against the 30 before (clipped to [-1, 0.5]; 0 without a user in the 30
before), the Urgent/High tickets u created in the last 90 days, and, a little, the CRM's churn
probability p. The log-odds are -4.2 - 7 g + 0.5 min(u, 6) + p (about 1 in 4 churn). Nothing
else enters: NPS, CSAT, onboarding, marketing engagement, logins per seat or days since the
last login carry signal only through what they share with those (h and the decline), and
size (ARR, seats, lifetime value), region and owner don't enter either. Its own
numpy.random.default_rng(OUTCOME_SEED) draws them after everything else, so the outcomes
change none of the other files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20260131
OUTCOME_SEED = 20270131
N_ACCOUNTS = 500
START = np.datetime64("2025-11-01T00:00:00", "s")
N_DAYS = 92
END_S = N_DAYS * 86400 - 1  # 2026-01-31 23:59:59, in seconds after START
ARCHETYPES = np.array(["thriving", "declining", "steady"])

NAME_A = np.array(
    [
        "Northwind",
        "Bluepeak",
        "Ironwood",
        "Silverline",
        "Summit",
        "Redwood",
        "Brightpath",
        "Clearwater",
        "Harbor",
        "Granite",
        "Maple",
        "Pioneer",
        "Quantum",
        "Vertex",
        "Atlas",
        "Beacon",
        "Cobalt",
        "Crescent",
        "Evergreen",
        "Falcon",
        "Helix",
        "Horizon",
        "Keystone",
        "Lumen",
        "Meridian",
        "Nimbus",
        "Orion",
        "Pinnacle",
        "Sterling",
        "Tidewater",
        "Vantage",
        "Willow",
    ]
)
NAME_B = np.array(
    [
        "Analytics",
        "Logistics",
        "Health",
        "Systems",
        "Labs",
        "Foods",
        "Energy",
        "Capital",
        "Robotics",
        "Media",
        "Software",
        "Retail",
        "Partners",
        "Networks",
        "Manufacturing",
        "Biotech",
        "Insurance",
        "Consulting",
        "Freight",
        "Realty",
    ]
)
SUFFIXES = np.array(["", "", "", "", "", ", Inc.", ", Inc.", ", LLC", " Ltd", " Group", " Co."])
ACCENTED = [
    ("Café Société GmbH", "EMEA"),
    ("Müller & Söhne Logistik AG", "EMEA"),
    ("Zürich Réassurance SA", "EMEA"),
    ("Åkerlund Förpackning AB", "EMEA"),
    ("São João Alimentos Ltda", "LATAM"),
    ("Señal Telecomunicación, S.A.", "LATAM"),
]
REGIONS, REGION_P = ["NA", "EMEA", "APAC", "LATAM"], [0.45, 0.30, 0.15, 0.10]
TIERS = np.array(["Enterprise", "Mid-Market", "SMB"])
ARR_RANGE = np.array([[200_000, 2_000_000], [40_000, 200_000], [5_000, 40_000]])
OWNERS = np.array(
    [
        "Alex Rivera",
        "Priya Shah",
        "Jordan Lee",
        "Maria Gonzalez",
        "Tom Becker",
        "Aisha Bello",
        "Chris Nakamura",
        "Emma Lindqvist",
        "Daniel Cohen",
        "Sofia Marino",
        "Ben Carter",
        "Hannah Park",
    ]
)
FIRST = np.array(
    [
        "James",
        "Mary",
        "Robert",
        "Linda",
        "Michael",
        "Sarah",
        "David",
        "Laura",
        "Kevin",
        "Nina",
        "Omar",
        "Fatima",
        "Wei",
        "Yuki",
        "Lars",
        "Anna",
        "Pierre",
        "Julia",
        "Marco",
        "Elena",
        "Raj",
        "Aiko",
        "Tom",
        "Grace",
        "José",
        "Zoë",
        "Renée",
        "Chloé",
        "Andrés",
        "Inês",
    ]
)
LAST = np.array(
    [
        "Smith",
        "Johnson",
        "Brown",
        "Wilson",
        "Murphy",
        "Nguyen",
        "Kim",
        "Chen",
        "Patel",
        "Singh",
        "Tanaka",
        "Rossi",
        "Silva",
        "Costa",
        "Dubois",
        "Moreau",
        "Schmidt",
        "Weber",
        "Larsen",
        "Andersson",
        "Novak",
        "Haddad",
        "Okafor",
        "Lopez",
        "O'Brien",
        "García",
        "Müller",
        "Fernández",
        "Kowalski",
        "Yamamoto",
    ]
)
FEATURES = np.array(
    [
        "report_view",
        "search",
        "dashboard_create",
        "export_csv",
        "comment_add",
        "filter_save",
        "share_link",
        "alert_create",
        "integration_sync",
        "invite_user",
        "api_call",
        "workflow_run",
    ]
)
FEATURE_POP = np.array([10, 8, 5, 5, 4, 3.5, 3, 2.5, 2.5, 1.5, 2, 2])
TICKET_TYPES = ["Question", "Incident", "Problem", "Task"]
SUBJECTS = {
    "Question": [
        "How do I schedule a report?",
        "Question about SSO setup",
        "API rate limits",
        "Can we add seats mid-term?",
        "How to export a dashboard to PDF",
    ],
    "Incident": [
        "Dashboard not loading",
        "Login failing for several users",
        "CSV export times out",
        "Integration sync stopped",
        "Error 500 when saving a filter",
    ],
    "Problem": [
        "Recurring sync failures with Salesforce",
        "Reports show wrong totals",
        "Slow performance since last release",
    ],
    "Task": ["Please add a new admin user", "Update billing contact", "Renewal paperwork", "Data deletion request"],
}
COMMENTS = [  # detractor, passive, promoter
    [
        "Support takes days to respond.",
        "Too many bugs lately, exports keep failing.",
        "We are evaluating alternatives.",
        "Slow, buggy, and hard to roll out to new teams.",
        "Pricing no longer makes sense for our usage.",
    ],
    [
        "Does the job.",
        "Good product, but the UI could be simpler.",
        "OK overall",
        "Reporting is fine; integrations need work.",
        'Would like better "alerts" settings.',
    ],
    [
        "Love the dashboards!",
        "Great support team, always quick.",
        "Our whole team lives in it.",
        "Indispensable for our weekly business reviews.",
        "Fast, reliable, and easy to roll out.",
    ],
]
GHOST_ORGS, GHOST_TICKETS = ["999001", "999002", "999017", "999023"], [5, 4, 3, 3]


def pick(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of a (rows, k) matrix of non-negative weights."""
    cum = probs.cumsum(axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


def fold(text: pd.Series) -> pd.Series:
    """Lower-case ASCII for e-mail addresses and domains ("Müller & Söhne" -> "mullersohne")."""
    ascii_ = text.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    return ascii_.str.lower().str.replace(r"[^a-z0-9.]", "", regex=True)


def stamp(seconds: np.ndarray, fmt: str = "%Y-%m-%d %H:%M:%S") -> pd.Series:
    """Seconds after START as formatted UTC text."""
    return pd.Series(START + seconds.astype("timedelta64[s]")).dt.strftime(fmt)


def make_accounts(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CRM report plus the hidden per-organization truth (accounts, then ghost orgs)."""
    n = N_ACCOUNTS
    arch = rng.permutation(np.repeat([0, 1, 2], [n // 5, n // 5, n - 2 * (n // 5)]))
    thr, dec = arch == 0, arch == 1
    h = np.select(
        [thr, dec], [0.75 + 0.23 * rng.beta(4, 2, n), 0.15 + 0.35 * rng.beta(2, 2, n)], 0.30 + 0.45 * rng.beta(3, 3, n)
    )
    ids = np.char.zfill(rng.choice(np.arange(1, 160_000), n, replace=False).astype(str), 6)
    pairs = rng.choice(len(NAME_A) * len(NAME_B), n, replace=False)  # unique "A B" stems
    names = (
        pd.Series(NAME_A[pairs // len(NAME_B)])
        + " "
        + NAME_B[pairs % len(NAME_B)]
        + SUFFIXES[rng.integers(0, len(SUFFIXES), n)]
    )
    region = rng.choice(REGIONS, n, p=REGION_P)
    special = rng.choice(n, len(ACCENTED), replace=False)
    names[special], region[special] = zip(*ACCENTED, strict=True)
    tier = rng.choice(3, n, p=[0.15, 0.35, 0.50])
    lo, hi = np.log(ARR_RANGE[tier, 0]), np.log(ARR_RANGE[tier, 1])
    z = np.clip(rng.normal(0, 1, n), -2.45, 2.45)  # log-normal, strictly inside the tier band
    arr = np.rint(np.exp((lo + hi) / 2 + z * (hi - lo) / 5))
    seats = np.maximum(3, np.rint(arr / rng.uniform(600, 1100, n))).astype(int)
    renewal = pd.DatetimeIndex(np.datetime64("2026-02-01") + rng.integers(0, 365, n))
    month, mday = renewal.month.to_numpy(), renewal.day.to_numpy()
    year = renewal.year.to_numpy() - np.clip(1 + rng.poisson(1 + 3 * h), 1, 9)
    year -= (year * 10_000 + month * 100 + mday) > 20251031  # customer before the window
    since = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": mday}))
    tenure = (pd.Timestamp("2026-01-31") - since).dt.days.to_numpy() / 365.25
    no_usage = np.isin(np.arange(n), rng.choice(np.flatnonzero(~thr), n * 3 // 100, False))
    onboard = np.clip(100 * (0.35 + 0.75 * h) + rng.normal(0, 10, n), 5, 100)
    onboard = np.where(
        thr,
        np.clip(100 - rng.exponential(1.5, n) * (rng.random(n) < 0.5), 90, 100),
        np.where(no_usage, rng.uniform(5, 40, n), onboard),
    )
    engagement = pd.array(np.clip(np.rint(20 + 60 * h + rng.normal(0, 15, n)), 0, 100), "Int64")
    engagement[rng.random(n) < 0.05] = pd.NA
    churn = 1 / (1 + np.exp(-(2.0 - 5.5 * h + 1.5 * dec + rng.normal(0, 0.7, n))))
    crm = pd.DataFrame(
        {
            "Account ID": ids,
            "Account Name": names,
            "Account Owner": OWNERS[rng.integers(0, 12, n)],
            "Region": region,
            "Tier": TIERS[tier],
            "Annual Revenue": arr.astype(int),
            "Seats": seats,
            "Renewal Date": renewal.strftime("%Y-%m-%d"),
            "Onboarding Completion": np.char.mod("%.1f", onboard),
            "Marketing Engagement": engagement,
            "Lifetime Value": np.rint(arr * tenure).astype(int),
            "Churn Probability": np.char.mod("%.2f", np.clip(churn, 0.01, 0.99)),
            "Customer Since": since.dt.strftime("%Y-%m-%d"),
        }
    ).sort_values("Account Name", ignore_index=True)
    org = pd.DataFrame(
        {
            "id": ids,
            "archetype": ARCHETYPES[arch],
            "h": h,
            "dec": dec,
            "seats": seats,
            "no_usage": no_usage,
            "domain": fold(names.str.split().str[:2].str.join("")) + ".com",
        }
    )
    ghosts = pd.DataFrame(
        {
            "id": GHOST_ORGS,
            "archetype": "unknown",
            "h": 0.5,
            "dec": False,
            "seats": 20,
            "no_usage": True,
            "domain": [f"former-client{i}.example" for i in range(1, 5)],
        }
    )
    org = pd.concat([org, ghosts], ignore_index=True)
    org["n_contacts"] = np.clip(2 + org["seats"] // 150, 2, 6)
    return crm, org


def people(
    rng: np.random.Generator, org: pd.DataFrame, idx: np.ndarray, contacts: np.ndarray
) -> tuple[pd.Series, pd.Series]:
    """Name and e-mail of a random known contact of each organization in idx."""
    k = rng.integers(0, org["n_contacts"].to_numpy()[idx])
    first, last = pd.Series(FIRST[contacts[idx, k, 0]]), pd.Series(LAST[contacts[idx, k, 1]])
    email = fold(first + "." + last) + "@" + org["domain"].to_numpy()[idx]
    return first + " " + last, email


def make_tickets(rng: np.random.Generator, org: pd.DataFrame, contacts: np.ndarray) -> pd.DataFrame:
    """Zendesk export: more, later, more urgent, slower and worse-rated tickets when h is low."""
    h_o, dec_o = org["h"].to_numpy(), org["dec"].to_numpy()
    counts = rng.poisson(20 * (1 - h_o) ** 2 * (org["seats"].to_numpy() / 60) ** 0.25 + 6 * dec_o)
    counts[-len(GHOST_ORGS) :] = GHOST_TICKETS
    t_org = np.repeat(np.arange(len(org)), counts)
    n, h, dec = len(t_org), h_o[t_org], dec_o[t_org]
    frac = rng.random(n) ** (1 / (1 + 1.5 * dec))  # declining: tickets pile up recently
    created = (frac * END_S).astype(np.int64)
    s = (1 - h) + 0.6 * dec * frac
    one = np.ones(n)  # categorical logits per ticket -> Low/Normal/High/Urgent, ticket type
    prio = pick(rng, np.exp(np.column_stack([1 - 2 * s, 1.5 * one, 1.5 * s - 0.5, 3 * s - 2])))
    ttype = pick(rng, np.exp(np.column_stack([one, 0.2 + 1.2 * s, s - 0.8, -0.2 * one])))
    median_h = (3 + 60 * (1 - h) ** 2) * np.array([1.3, 1.0, 0.8, 0.6])[prio]
    res_s = np.maximum(300, np.exp(np.log(median_h) + 0.9 * rng.standard_normal(n)) * 3600)
    solved = created + res_s.astype(np.int64)
    unsolved = (solved > END_S) | (rng.random(n) < 0.02 + 0.08 * (1 - h))
    status = np.where(solved < END_S - 4 * 86400, "Closed", "Solved").astype(object)
    status[unsolved] = np.where(rng.random(n) < 0.6, "Open", "Pending")[unsolved]
    status[unsolved & (created > END_S - 2 * 86400) & (rng.random(n) < 0.6)] = "New"
    u, bad = rng.random(n), rng.random(n) < np.clip(0.05 + 0.7 * (1 - h) ** 2 + 0.25 * dec, 0, 0.9)
    sat = np.select([unsolved | (u < 0.12), u < 0.45, bad], ["Not Offered", "Offered", "Bad"], "Good")
    subject = np.empty(n, dtype=object)
    for i, kind in enumerate(TICKET_TYPES):
        pool, mask = np.array(SUBJECTS[kind]), ttype == i
        subject[mask] = pool[rng.integers(0, len(pool), mask.sum())]
    requester, email = people(rng, org, t_org, contacts)
    hours = pd.array(np.where(unsolved, np.nan, res_s // 3600), "Int64")
    df = pd.DataFrame(
        {
            "ID": 0,
            "Requester": requester,
            "Requester email": email,
            "Organization": org["id"].to_numpy()[t_org],
            "Subject": subject,
            "Status": status,
            "Priority": np.array(["Low", "Normal", "High", "Urgent"])[prio],
            "Ticket type": np.array(TICKET_TYPES)[ttype],
            "Created at": stamp(created),
            "Solved at": stamp(solved).where(~unsolved, ""),
            "Satisfaction Score": sat,
            "Resolution time": hours,
            "Reopens": rng.poisson(0.05 + 0.6 * (1 - h) ** 2),
            "Replies": 1 + rng.poisson(1 + 4 * (1 - h) + 0.7 * prio),
            "_t": created,
        }
    )
    df = df.sort_values("_t", kind="stable", ignore_index=True).drop(columns="_t")
    df["ID"] = 41_873 + np.arange(n)
    return df


def make_nps(rng: np.random.Generator, org: pd.DataFrame, contacts: np.ndarray) -> pd.DataFrame:
    """NPS answers from ~80 % of accounts; score ~ 3.5 + 7h, falling over time if declining."""
    acc = org.iloc[:N_ACCOUNTS]
    lam = 1.8 * (acc["seats"].to_numpy() / 60) ** 0.25
    counts = np.where(rng.random(N_ACCOUNTS) < 0.8, 1 + rng.poisson(lam), 0)
    r = np.repeat(np.arange(N_ACCOUNTS), counts)
    n, day = len(r), rng.integers(0, N_DAYS, len(r))
    drift = 2.5 * acc["dec"].to_numpy()[r] * day / (N_DAYS - 1)  # declining: worse lately
    score = np.clip(np.rint(3.5 + 7 * acc["h"].to_numpy()[r] - drift + rng.normal(0, 1.3, n)), 0, 10).astype(int)
    band = np.digitize(score, [7, 9])
    comment = np.array(COMMENTS, dtype=object)[band, rng.integers(0, 5, n)]
    comment[rng.random(n) < 0.45] = ""
    _, email = people(rng, org, r, contacts)
    df = pd.DataFrame(
        {
            "account_id": acc["id"].to_numpy()[r],
            "respondent_email": email,
            "score": score,
            "comment": comment,
            "responded_at": stamp(day * 86400, "%Y-%m-%d"),
        }
    )
    key = ["responded_at", "account_id", "respondent_email"]  # one answer per person and day
    return df.drop_duplicates(key).sort_values(key, kind="stable", ignore_index=True)


def make_usage(rng: np.random.Generator, org: pd.DataFrame) -> pa.Table:
    """Logins (at most one per user and day) each followed by a few feature events."""
    acc = org.iloc[:N_ACCOUNTS]
    h, dec, n = acc["h"].to_numpy(), acc["dec"].to_numpy(), N_ACCOUNTS
    thr = (acc["archetype"] == "thriving").to_numpy()
    active = 0.8 * np.sqrt(acc["seats"].to_numpy()) * (0.3 + 0.7 * h)  # users ~ sqrt(seats)
    n_users = np.clip(np.ceil(active), 1, 99).astype(int)
    n_users[acc["no_usage"].to_numpy()] = 0
    u_acc = np.repeat(np.arange(n), n_users)
    u_num = np.arange(len(u_acc)) - np.repeat(np.cumsum(n_users) - n_users, n_users) + 1
    user_ids = "u-" + acc["id"].to_numpy()[u_acc] + "-" + np.char.zfill(u_num.astype(str), 2)
    # Daily login probability per (user, day): account rate x user intensity x trend x weekday.
    day = np.arange(N_DAYS)
    slope = np.where(thr, rng.uniform(0, 0.2, n), rng.normal(0, 0.15, n))
    d0, fall = rng.uniform(15, 45, n), rng.uniform(0.5, 0.85, n)
    decay = fall[:, None] * np.clip((day - d0[:, None]) / (N_DAYS - d0[:, None]), 0, 1)
    trend = np.where(dec[:, None], 1 - decay, 1 + slope[:, None] * (day / (N_DAYS - 1) - 0.5))
    weekday = (START.astype("datetime64[D]") + day).astype(np.int64) % 7  # 0 = Thursday
    week = np.where(np.isin(weekday, [2, 3]), 0.25, 1.0)  # Saturday, Sunday
    stop = np.where(dec, d0, np.inf)[u_acc] + rng.uniform(0, 110, len(u_acc))  # users leaving
    p = (
        (0.03 + 0.17 * h)[u_acc, None]
        * rng.gamma(2, 0.5, len(u_acc))[:, None]
        * trend[u_acc]
        * week
        * (day < stop[:, None])
    )
    user, d = np.nonzero(rng.random(p.shape) < np.minimum(p, 0.95))
    login_s = d * 86400 + np.clip(rng.normal(14.5, 3, len(d)) * 3600, 0, 86399).astype(np.int64)
    # Feature events follow each login; healthy accounts adopt more distinct features.
    keys = np.log(FEATURE_POP) + rng.gumbel(size=(n, len(FEATURES)))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    adopted = np.clip(np.rint(2 + 10 * h + rng.normal(0, 1, n)), 1, len(FEATURES))
    weights = FEATURE_POP * (rank < adopted[:, None])
    k = rng.poisson(0.3 + 2.0 * h[u_acc[user]])
    sess = np.repeat(np.arange(len(user)), k)
    gap = rng.exponential(120, len(sess)) + 1  # seconds between clicks
    total = np.cumsum(gap)
    first = (np.cumsum(k) - k)[k > 0]
    offset = total - np.repeat((total - gap)[first], k[k > 0])  # running sum within a session
    ev_user = np.concatenate([user, user[sess]])
    ev_s = np.concatenate([login_s, login_s[sess] + offset.astype(np.int64)])
    ev = np.concatenate([np.full(len(user), "login"), FEATURES[pick(rng, weights[u_acc[user[sess]]])]])
    keep = ev_s <= END_S
    table = pa.table(
        {
            "account_id": acc["id"].to_numpy()[u_acc[ev_user[keep]]],
            "user_id": user_ids[ev_user[keep]],
            "event": ev[keep],
            "timestamp": pa.array((START.astype(np.int64) + ev_s[keep]) * 1_000_000, pa.timestamp("us", tz="UTC")),
        }
    )
    return table.sort_by(
        [("timestamp", "ascending"), ("account_id", "ascending"), ("user_id", "ascending"), ("event", "ascending")]
    )


def churn_drivers(crm: pd.DataFrame, tickets: pd.DataFrame, usage: pa.Table) -> pd.DataFrame:
    """What churn follows, per account (indexed by Account ID), read back from the exports as
    `healthscore` computes the same metrics as of 2026-01-31 (windows of whole days ending with
    it): active users in the last 30 days and the 30 before, their growth (0 when the account
    had no active user in the 30 days before), Urgent/High tickets created in the last 90 days,
    and the CRM's churn probability."""
    ids = pd.Index(crm["Account ID"], name="account_id")
    end = pd.Timestamp(START).tz_localize("UTC") + pd.Timedelta(days=N_DAYS)  # midnight after the scoring date
    events = usage.select(["account_id", "user_id", "timestamp"]).to_pandas()
    window = (end - events["timestamp"]) // pd.Timedelta(days=30)  # 0: the last 30 days, 1: the 30 before
    recent = events.assign(window=window).loc[lambda e: e["window"] < 2]
    users = recent.groupby(["account_id", "window"])["user_id"].nunique().unstack(fill_value=0)
    users = users.reindex(index=ids, columns=[0, 1], fill_value=0)
    last, prev = users[0].to_numpy(), users[1].to_numpy()
    created = pd.to_datetime(tickets["Created at"], format="%Y-%m-%d %H:%M:%S").dt.tz_localize("UTC")
    urgent = tickets["Priority"].isin(["Urgent", "High"]) & (created >= end - pd.Timedelta(days=90))
    return pd.DataFrame(
        {
            "active_users_30d": last,
            "active_users_prev_30d": prev,
            "user_growth": np.where(prev > 0, (last - prev) / np.maximum(prev, 1), 0.0),
            "urgent_tickets_90d": tickets.loc[urgent, "Organization"].value_counts().reindex(ids, fill_value=0),
            "crm_churn_probability": crm.set_index("Account ID")["Churn Probability"].astype(float).reindex(ids),
        },
        index=ids,
    )


def make_outcomes(
    crm: pd.DataFrame, org: pd.DataFrame, tickets: pd.DataFrame, usage: pa.Table, seed: int = OUTCOME_SEED
) -> pd.DataFrame:
    """Renewal outcomes, one row per account sorted by id: churned yes/no, and the date.

    The churn log-odds are -4.2 - 7 g + 0.5 min(u, 6) + p over `churn_drivers`: g the active-user
    growth clipped to [-1, 0.5], u the Urgent/High tickets of the last 90 days, p the CRM's churn
    probability. One draw per account, in the order of `org` (the order the accounts were made)."""
    d = churn_drivers(crm, tickets, usage).reindex(org["id"].iloc[:N_ACCOUNTS])
    growth = d["user_growth"].clip(-1, 0.5).to_numpy()
    urgent = np.minimum(d["urgent_tickets_90d"].to_numpy(), 6)
    odds = np.exp(-4.2 - 7 * growth + 0.5 * urgent + d["crm_churn_probability"].to_numpy())
    churned = np.random.default_rng(seed).random(N_ACCOUNTS) < odds / (1 + odds)
    renewal = crm.set_index("Account ID")["Renewal Date"].reindex(d.index).to_numpy()
    df = pd.DataFrame(
        {
            "account_id": d.index.to_numpy(),
            "renewal_date": renewal,
            "churned": np.where(churned, "yes", "no"),
            "churned_on": np.where(churned, renewal, ""),
        }
    )
    return df.sort_values("account_id", ignore_index=True)


def build(seed: int = SEED) -> dict:
    """All outputs in memory, plus the hidden per-organization truth under "truth"."""
    rng = np.random.default_rng(seed)
    crm, org = make_accounts(rng)
    contacts = np.stack([rng.integers(0, len(FIRST), (len(org), 6)), rng.integers(0, len(LAST), (len(org), 6))], axis=2)
    tickets, nps, usage = make_tickets(rng, org, contacts), make_nps(rng, org, contacts), make_usage(rng, org)
    return {
        "crm": crm,
        "tickets": tickets,
        "nps": nps,
        "usage": usage,
        "outcomes": make_outcomes(crm, org, tickets, usage),
        "truth": org,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    data = build()
    files = [("crm", "crm_accounts"), ("tickets", "zendesk_tickets"), ("nps", "nps_responses")]
    for key, name in [*files, ("outcomes", "churn_outcomes")]:
        data[key].to_csv(out / f"{name}.csv", index=False, lineterminator="\n", encoding="utf-8")
    pq.write_table(data["usage"], out / "usage_events.parquet", compression="zstd")
    print({key: len(frame) for key, frame in data.items() if key != "truth"})


if __name__ == "__main__":
    main()
