"""Write the messy example exports of this folder, byte for byte the same on every run.

    python examples/messy_exports/make.py            # rewrites the files next to this script
    python examples/messy_exports/make.py OUT_DIR    # or writes them under OUT_DIR

Four raw exports of one fictional customer base of 30 accounts, each with the quirks the
real tool's export has (see README.md, "Feeding it real exports"):

- salesforce_accounts.csv: a Salesforce report, every value quoted, 15- and 18-character
  Account IDs mixed, US dates, and the Grand Totals / Confidential / Copyright footer;
- zendesk_tickets.csv: a Zendesk ticket export re-saved by Excel on a German Windows PC:
  cp1252, `;` between fields, `,` as the decimal mark, dd.mm.yyyy dates, CRLF line ends;
  one row edited by hand (an unquoted `;`) and one ticket without an account;
- qualtrics_nps.csv: a Qualtrics response download with its three header rows and a
  survey preview response that has no account;
- mixpanel/*.jsonl.gz: Mixpanel raw events, gzipped JSON lines, times in milliseconds,
  the account in `properties.company_id`, one event sent twice (same `$insert_id`) and a
  trial workspace that is not a customer.

The values come from the account table below and a seeded random generator; nothing
depends on the clock or the platform. The .gz files are written with mtime 0.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = dt.date(2026, 1, 31)
SF_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

# id (15 characters), name, owner, tier, ARR, renewal, country, health (T hriving, H ealthy,
# R at risk, C ritical: how the generator shapes the account's usage, tickets and NPS)
ACCOUNTS = [
    ("0015g00000AbC1q", "Acme Analytics Inc", "Dana Whitfield", "Enterprise", 182000, "2026-09-30", "US", "T"),
    ("0015g00000Bx7Lm", "Brasserie Lévêque SARL", "Lena Fischer", "SMB", 14500, "2026-03-15", "FR", "R"),
    ("0015g00000Cq2Zp", "Müller & Söhne GmbH", "Lena Fischer", "Mid-Market", 58000, "2026-02-28", "DE", "C"),
    ("0015g00000DfR4t", "Nordström Logistik AB", "Lena Fischer", "Mid-Market", 61000, "2026-06-30", "SE", "H"),
    ("0015g00000Eh9Kw", "Bluefin Robotics Ltd", "Marco Rossi", "Enterprise", 240000, "2026-11-30", "GB", "T"),
    ("0015g00000Fj3Xs", "Cedar & Pine Health", "Dana Whitfield", "Mid-Market", 72000, "2026-04-30", "US", "H"),
    ("0015g00000Gk8Vb", "Dataforge Labs", "Priya Natarajan", "SMB", 9800, "2026-02-15", "US", "R"),
    ("0015g00000Hm5Nc", "Ekholm Retail Oy", "Lena Fischer", "SMB", 12000, "2026-08-31", "FI", "H"),
    ("0015g00000Jn1Pd", "Fjord Freight AS", "Lena Fischer", "Mid-Market", 47000, "2026-05-31", "NO", "H"),
    ("0015g00000Kp6Qe", "Granite Peak Insurance", "Dana Whitfield", "Enterprise", 205000, "2026-03-31", "US", "R"),
    ("0015g00000Lr2Rf", "Harbor Lane Hotels", "Marco Rossi", "Mid-Market", 66000, "2026-07-31", "GB", "H"),
    ("0015g00000Ms7Sg", "Ibérica Seguros S.A.", "Marco Rossi", "Enterprise", 158000, "2026-10-31", "ES", "T"),
    ("0015g00000Nt4Th", "Juniper Schools", "Priya Natarajan", "SMB", 8400, "2026-09-15", "US", "H"),
    ("0015g00000Pv9Uj", "Kestrel Aerospace", "Dana Whitfield", "Enterprise", 310000, "2026-12-31", "US", "T"),
    ("0015g00000Qw3Vk", "Lumen Dental Group", "Priya Natarajan", "SMB", 11200, "2026-04-15", "US", "C"),
    ("0015g00000Rx8Wm", "Maple Street Bank", "Dana Whitfield", "Enterprise", 265000, "2026-06-30", "CA", "H"),
    ("0015g00000Sy2Xn", "Novák Tiskárna s.r.o.", "Lena Fischer", "SMB", 7600, "2026-05-15", "CZ", "R"),
    ("0015g00000Tz6Yp", "Orchid Biotech", "Priya Natarajan", "Mid-Market", 54000, "2026-08-31", "US", "T"),
    ("0015g00000Ua1Zq", "Pellegrini Moda S.p.A.", "Marco Rossi", "Mid-Market", 49000, "2026-03-31", "IT", "H"),
    ("0015g00000Vb5Ar", "Quayside Media", "Marco Rossi", "SMB", 10400, "2026-07-15", "GB", "R"),
    ("0015g00000Wc9Bs", "Riverbend Foods", "Dana Whitfield", "Mid-Market", 63000, "2026-10-31", "US", "H"),
    ("0015g00000Xd4Ct", "Saffron Travel", "Priya Natarajan", "SMB", 9100, "2026-02-28", "IN", "C"),
    ("0015g00000Ye8Du", "Tannery Row Studios", "Marco Rossi", "SMB", 8800, "2026-11-15", "GB", "H"),
    ("0015g00000Zf3Ev", "Umbra Security", "Dana Whitfield", "Enterprise", 192000, "2026-05-31", "US", "R"),
    ("0015g00000ag7Fw", "Vireo Energy", "Priya Natarajan", "Mid-Market", 71000, "2026-09-30", "US", "T"),
    ("0015g00000bh2Gx", "Wexford Legal LLP", "Marco Rossi", "Mid-Market", 52000, "2026-12-15", "IE", "H"),
    ("0015g00000cj6Hy", "Xylo Music Co.", "Priya Natarajan", "SMB", 6900, "2026-04-30", "US", "R"),
    ("0015g00000dk1Jz", "Yellowtail Logistics", "Dana Whitfield", "Mid-Market", 68000, "2026-08-15", "AU", "H"),
    ("0015g00000em5K2", "Zephyr Outdoor", "Priya Natarajan", "SMB", 13300, "2026-06-15", "US", "T"),
    ("0015g00000fn9L3", "Ærø Ferries ApS", "Lena Fischer", "Mid-Market", 44000, "2026-10-15", "DK", "R"),
]
TRIAL_WORKSPACE = "0015g00000gp4M4"  # a trial in Mixpanel, not (yet) an account in Salesforce


def salesforce18(id15: str) -> str:
    """The 18-character case-safe form of a 15-character Salesforce id."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += SF_ALPHABET[bits]
    return id15 + suffix


def quoted(values: list[str]) -> str:
    """A CSV line with every value quoted, as Salesforce writes it."""
    return ",".join('"' + v.replace('"', '""') + '"' for v in values)


def salesforce_report() -> bytes:
    """The accounts report: one row per account, sorted by name, and the report footer."""
    header = ["Account Name", "Account ID", "Account Owner", "Customer Tier", "ARR", "Renewal Date", "Billing Country"]
    lines = [quoted(header)]
    for n, (id15, name, owner, tier, arr, renewal, country, _) in sorted(enumerate(ACCOUNTS), key=lambda a: a[1][1]):
        account_id = salesforce18(id15) if n % 3 == 1 else id15  # two exports stitched together
        if n == 7:
            account_id += " "  # pasted in by hand
        day = dt.date.fromisoformat(renewal)
        lines.append(
            quoted([name, account_id, owner, tier, f"{arr:.2f}", f"{day.month}/{day.day}/{day.year}", country])
        )
    total = sum(a[4] for a in ACCOUNTS)
    lines += [
        "",
        quoted([f"Grand Totals ({len(ACCOUNTS)} records)", "", "", "", f"{total:.2f}", "", ""]),
        "",
        quoted(["Confidential Information - Do Not Distribute"]),
        "",
        quoted(["Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."]),
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


SUBJECTS = {
    "DE": [
        "Export schlägt fehl",
        "Rechnung – falscher Betrag (€)",
        "Zugriff für neue Kollegen",
        "Bericht lädt langsam",
    ],
    "FR": ["Problème de connexion SSO", "Données manquantes dans le rapport", "Facture – TVA incorrecte"],
    "": [
        "Dashboard loads slowly",
        "How do I add users?",
        "API rate limit reached",
        "Webhook retries fail",
        "Password reset not arriving",
        "CSV export times out",
        "Feature request: dark mode",
        "Wrong totals in the monthly report",
    ],
}
REQUESTERS = {
    "DE": ["Jürgen Weiß", "Anke Böhm"],
    "FR": ["Hélène Dupré", "François Lemaître"],
    "": ["Sam Carter", "Alex Kim", "Jordan Lee", "Maria Gonzalez", "Chris Obi", "Emma Lindqvist"],
}
AGENTS = ["Tom Becker", "Inès Martin", "Raj Patel"]
TICKETS_PER_HEALTH = {"T": (0, 1), "H": (1, 2), "R": (2, 4), "C": (3, 5)}
URGENT_SHARE = {"T": 0.0, "H": 0.15, "R": 0.35, "C": 0.6}
GOOD_CSAT = {"T": 1.0, "H": 0.85, "R": 0.5, "C": 0.2}
RESOLUTION_HOURS = {"T": (2, 12), "H": (6, 30), "R": (24, 80), "C": (48, 140)}


def email_domain(name: str) -> str:
    """A customer's made-up mail domain: the first word of its name, unaccented."""
    return name.split()[0].lower().translate(str.maketrans("éèêëüöäåøæá", "eeeeuoaaoea")) + ".example"


def excel_de(when: dt.datetime) -> str:
    """A time as German Excel writes it back to CSV."""
    return when.strftime("%d.%m.%Y %H:%M")


def zendesk_tickets() -> bytes:
    """Tickets of the last three months as Excel saves them: cp1252, `;`, decimal comma, CRLF."""
    rng = random.Random(3)
    header = [
        "ID",
        "Requester",
        "Requester email",
        "Assignee",
        "Group",
        "Subject",
        "Status",
        "Priority",
        "Via",
        "Created at",
        "Updated at",
        "Organization",
        "Solved at",
        "Resolution time",
        "Satisfaction Score",
        "Replies",
        "Salesforce Account ID",
    ]
    rows = []
    for n, (id15, name, _, _, _, _, country, health) in enumerate(ACCOUNTS):
        low, high = TICKETS_PER_HEALTH[health]
        lang = country if country in ("DE", "FR") else ""
        domain = email_domain(name)
        for _ in range(rng.randint(low, high)):
            created = dt.datetime(2025, 11, 3, 8) + dt.timedelta(minutes=rng.randint(0, 89 * 24 * 60))
            priority = "Urgent" if rng.random() < URGENT_SHARE[health] else rng.choice(["Normal", "Normal", "Low"])
            solved = created < dt.datetime(2026, 1, 27) or rng.random() < 0.3
            hours = round(rng.uniform(*RESOLUTION_HOURS[health]) * 2) / 2
            satisfaction = "Offered"
            if solved and rng.random() < 0.8:
                satisfaction = "Good" if rng.random() < GOOD_CSAT[health] else "Bad"
            requester = rng.choice(REQUESTERS[lang])
            solved_at = created + dt.timedelta(hours=hours)
            rows.append(
                (
                    created,
                    [
                        requester,
                        requester.split()[0].lower().translate(str.maketrans("üöéç", "uoec")) + "@" + domain,
                        rng.choice(AGENTS),
                        "Support",
                        rng.choice(SUBJECTS[lang]),
                        "Solved" if solved else "Open",
                        priority,
                        rng.choice(["Email", "Web", "Chat"]),
                        excel_de(created),
                        excel_de(solved_at if solved else created + dt.timedelta(hours=2)),
                        name,
                        excel_de(solved_at) if solved else "",
                        f"{hours:g}".replace(".", ",") if solved else "",
                        satisfaction if solved else "Not Offered",
                        str(rng.randint(1, 9)),
                        id15 if n % 4 else salesforce18(id15),  # agents paste ids from the browser
                    ],
                )
            )
    # a prospect writing in before any account exists: no organization, no account id
    rows.append(
        (
            dt.datetime(2026, 1, 21, 10, 5),
            [
                "Pat Morgan",
                "pat@gmail.example",
                "Raj Patel",
                "Support",
                "Pricing question",
                "Solved",
                "Low",
                "Web",
                "21.01.2026 10:05",
                "21.01.2026 11:35",
                "",
                "21.01.2026 11:35",
                "1,5",
                "Good",
                "2",
                "",
            ],
        )
    )
    rows.sort(key=lambda r: r[0])
    lines = [";".join(header)]
    for number, (_, row) in enumerate(rows, start=48211):
        lines.append(";".join([str(number), *row]))
    # a row fixed by hand in a text editor, its subject's `;` left unquoted: too many fields
    broken = next(i for i, line in enumerate(lines) if ";Müller & Söhne GmbH;" in line and ";Solved;" in line)
    fields = lines[broken].split(";")
    fields[5] = "Mahnung trotz Zahlung; bitte prüfen"
    lines[broken] = ";".join(fields)
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


QUALTRICS_COLUMNS = [
    ("StartDate", "Start Date", '{"ImportId":"startDate","timeZone":"America/Denver"}'),
    ("EndDate", "End Date", '{"ImportId":"endDate","timeZone":"America/Denver"}'),
    ("Status", "Response Type", '{"ImportId":"status"}'),
    ("IPAddress", "IP Address", '{"ImportId":"ipAddress"}'),
    ("Progress", "Progress", '{"ImportId":"progress"}'),
    ("Duration (in seconds)", "Duration (in seconds)", '{"ImportId":"duration"}'),
    ("Finished", "Finished", '{"ImportId":"finished"}'),
    ("RecordedDate", "Recorded Date", '{"ImportId":"recordedDate","timeZone":"America/Denver"}'),
    ("ResponseId", "Response ID", '{"ImportId":"_recordId"}'),
    ("RecipientEmail", "Recipient Email", '{"ImportId":"recipientEmail"}'),
    ("ExternalReference", "External Data Reference", '{"ImportId":"externalDataReference"}'),
    ("DistributionChannel", "Distribution Channel", '{"ImportId":"distributionChannel"}'),
    ("UserLanguage", "User Language", '{"ImportId":"userLanguage"}'),
    ("Q1", "How likely are you to recommend us to a friend or colleague?", '{"ImportId":"QID1"}'),
    (
        "Q1_NPS_GROUP",
        "How likely are you to recommend us to a friend or colleague? - Group",
        '{"ImportId":"QID1_NPS_GROUP"}',
    ),
    ("Q2", "What is the main reason for your score?", '{"ImportId":"QID2_TEXT"}'),
]
NPS_SCORES = {"T": [9, 10, 10], "H": [7, 8, 9, 9, 10], "R": [5, 6, 7, 7, 8, 9], "C": [0, 3, 5, 6, 7]}
REASONS = {
    "T": ["Reports save us hours every week", "Great support, fast answers", ""],
    "H": ["Solid product, a few rough edges", "Good, but exports are slow", ""],
    "R": ["Too many bugs lately", "Hard to onboard new staff, too expensive for what we use", ""],
    "C": ["Exports keep failing, we are looking at alternatives", "Support takes days to answer", ""],
}
LANGUAGES = {"DE": "DE", "FR": "FR", "ES": "ES", "IT": "IT"}


def csv_field(value: str) -> str:
    """A value as Qualtrics writes it: quoted only when it holds a comma, quote or line break."""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def nps_group(score: int) -> str:
    """Qualtrics' NPS group of a 0-10 score, as choice text."""
    return "Promoter" if score >= 9 else "Passive" if score >= 7 else "Detractor"


def qualtrics_responses() -> bytes:
    """Responses of the last six months, choice text, with a preview response that has no account."""
    rng = random.Random(5)
    rows = []
    for n, (_, _, _, _, _, _, country, health) in enumerate(ACCOUNTS):
        if n % 7 == 5:
            continue  # did not answer
        for _ in range(2 if n % 5 == 0 else 1):
            recorded = dt.datetime(2025, 8, 10, 7) + dt.timedelta(minutes=rng.randint(0, 170 * 24 * 60))
            score = rng.choice(NPS_SCORES[health])
            duration = rng.randint(25, 240)
            start = recorded - dt.timedelta(seconds=duration)
            user = f"user{rng.randint(10, 99)}@{email_domain(ACCOUNTS[n][1])}"
            rows.append(
                (
                    recorded,
                    "IP Address",
                    f"203.0.113.{rng.randint(2, 250)}",
                    user,
                    salesforce18(ACCOUNTS[n][0]),
                    "email",
                    LANGUAGES.get(country, "EN"),
                    score,
                    rng.choice(REASONS[health]),
                    start,
                    duration,
                )
            )
    preview = dt.datetime(2026, 1, 9, 15, 42, 10)
    rows.append(
        (preview, "Survey Preview", "", "", "", "preview", "EN", 10, "test", preview - dt.timedelta(seconds=31), 31)
    )
    rows.sort(key=lambda r: r[0])
    lines = [",".join(csv_field(c[i]) for c in QUALTRICS_COLUMNS) for i in range(3)]
    for number, (recorded, status, ip, email, ref, channel, lang, score, reason, start, duration) in enumerate(rows):
        response_id = f"R_{number:02d}" + "".join(
            rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(12)
        )
        values = [
            start.strftime("%Y-%m-%d %H:%M:%S"),
            recorded.strftime("%Y-%m-%d %H:%M:%S"),
            status,
            ip,
            "100",
            str(duration),
            "True",
            recorded.strftime("%Y-%m-%d %H:%M:%S"),
            response_id,
            email,
            ref,
            channel,
            lang,
            str(score),
            nps_group(score),
            reason,
        ]
        lines.append(",".join(csv_field(v) for v in values))
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


LOGINS = {"T": (6, 9), "H": (3, 6), "R": (1, 3), "C": (0, 1)}
USERS = {"T": (3, 5), "H": (2, 4), "R": (1, 3), "C": (1, 1)}
FEATURES = {"T": (2, 3), "H": (1, 3), "R": (0, 1), "C": (0, 0)}
OTHER_EVENTS = ["Report Viewed", "Dashboard Created", "Export CSV"]
BROWSERS = ["Chrome", "Firefox", "Safari", "Edge"]


def mixpanel_events() -> dict[str, bytes]:
    """January's raw events in two half-month files of JSON lines, times in milliseconds."""
    rng = random.Random(11)
    events = []
    accounts = [(salesforce18(a[0]), a[7]) for a in ACCOUNTS] + [(salesforce18(TRIAL_WORKSPACE), "trial")]
    for n, (company, health) in enumerate(accounts):
        if health == "trial":
            names, users = ["Login", "Login"], [f"{n:02d}01"]
        else:
            users = [f"{n:02d}{u:02d}" for u in range(1, rng.randint(*USERS[health]) + 1)]
            features = rng.sample(OTHER_EVENTS, rng.randint(*FEATURES[health]))
            names = ["Login"] * rng.randint(*LOGINS[health]) + features
        for event in names:
            when = dt.datetime(2026, 1, 2, 7) + dt.timedelta(seconds=rng.randint(0, 29 * 86400 - 1))
            millis = int(when.replace(tzinfo=dt.UTC).timestamp()) * 1000 + rng.randint(0, 999)
            properties = {
                "time": millis,
                "distinct_id": f"user-{rng.choice(users)}",
                "$insert_id": f"{rng.getrandbits(64):016x}",
                "mp_processing_time_ms": millis + rng.randint(400, 3000),
                "$browser": rng.choice(BROWSERS),
                "company_id": company,
            }
            events.append({"event": event, "properties": properties})
    events.sort(key=lambda e: e["properties"]["time"])
    # the SDK retried one login: the same $insert_id again, processed a little later
    original = next(e for e in events[40:] if e["event"] == "Login")
    retry = json.loads(json.dumps(original))
    retry["properties"]["mp_processing_time_ms"] += 61000
    events.insert(events.index(original) + 1, retry)
    halves: dict[str, list[str]] = {"2026-01-01_2026-01-15": [], "2026-01-16_2026-01-31": []}
    for event in events:
        day = dt.datetime.fromtimestamp(event["properties"]["time"] / 1000, dt.UTC).day
        half = "2026-01-01_2026-01-15" if day <= 15 else "2026-01-16_2026-01-31"
        halves[half].append(json.dumps(event, separators=(",", ":")))
    return {f"mixpanel/{half}.jsonl.gz": ("\n".join(lines) + "\n").encode("utf-8") for half, lines in halves.items()}


def exports() -> dict[str, bytes]:
    """Every export file: its path in this folder and its content (uncompressed for .gz)."""
    return {
        "salesforce_accounts.csv": salesforce_report(),
        "zendesk_tickets.csv": zendesk_tickets(),
        "qualtrics_nps.csv": qualtrics_responses(),
        **mixpanel_events(),
    }


def main(target: Path = HERE) -> None:
    """Write every export under `target`; .gz files compressed with mtime 0."""
    for name, content in exports().items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(content, mtime=0) if name.endswith(".gz") else content)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
