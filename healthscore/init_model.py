"""The guessing behind `healthscore init`: header words and their synonyms, a profile of each
column's sampled values, and the scores that say which column plays which part (key, time,
ARR, priority, NPS score, event ...) and which role a file plays (accounts, tickets, survey,
usage). `analyse` applies them to one file's frame; `healthscore.init` reads the files,
compares keys across them and writes the config.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from healthscore.coerce import convert
from healthscore.keys import key_to_text
from healthscore.models import SourceConfig
from healthscore.preset_data import PRESETS


def words(text: str) -> frozenset[str]:
    """A set of words written as one string."""
    return frozenset(text.split())


ROLES = ("accounts", "tickets", "survey", "usage")
UNKNOWN, UNREADABLE = "unknown", "unreadable"
LOW_CONFIDENCE = 0.6  # guesses below this are marked CHECK in the config
SAMPLE_ROWS = 2000
DATE_FORMATS: tuple[str, ...] = ("ISO8601", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M")
DATE_FORMATS += ("%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p")
EPOCH_SECONDS = (9.4e8, 4.2e9)  # 2000 .. 2100
ABBREVIATIONS = dict(
    pair.split("=")
    for pair in words(
        "acct=account accnt=account org=organization organisation=organization cust=customer co=company "
        "sev=severity prio=priority ts=timestamp tstamp=timestamp dt=date usr=user evt=event num=number "
        "nr=number no=number ref=reference mgr=manager rev=revenue uid=user"
    )
)
COMPOUND = re.compile(r"(account|acct|customer|cust|company|org|organization|client|tenant|user|ticket)(id|key)")
ENTITY = words("account customer company organization client tenant workspace")
ID_WORDS = words("id key number reference code uuid")
NOT_KEY = words(
    "ticket user respondent response event message request requester session device insert assignee submitter "
    "email person distinct collector conversation subscription invoice opportunity plan product parent domain "
    "name owner manager phone website url ip"
)
STRONG_TIME = words("created opened timestamp time occurred submitted responded recorded sent received logged")
WEAK_TIME = words("updated modified solved closed resolved due renewal since end ended last assigned expires birth")
WEAK_TIME |= words("close canceled cancelled trial period start")
PRIORITY_WORDS = words("low normal medium high urgent critical p1 p2 p3 p4 sev1 sev2 sev3 s1 s2 s3 blocker")
URGENT_WORDS = words("urgent high critical p1 p2 sev1 sev2 s1 s2 blocker highest")
STATUS_WORDS = words("new open pending hold on-hold solved closed resolved in progress waiting")
SATISFACTION_WORDS = words("good bad offered not offered unoffered satisfied unsatisfied")
LOGIN_EVENTS = words("login loggedin logon signin signedin sessionstart sessionstarted userlogin appopen")


def header_tokens(header: str) -> tuple[str, ...]:
    """A header as lower-case words, camelCase and `accountid`-style compounds split and common
    abbreviations expanded: `Acct_ID` and `accountId` both give ("account", "id")."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", header)
    found: list[str] = []
    for word in re.findall(r"[a-z]+|\d+", spaced.lower()):
        match = COMPOUND.fullmatch(word)
        found += [match.group(1), match.group(2)] if match else [word]
    return tuple(ABBREVIATIONS.get(w, w) for w in found)


def phrase_score(tokens: Iterable[str], phrases: Mapping[str, float]) -> float:
    """How well a header names something: a phrase's weight when the phrase is the whole
    header, less when the header has other words too, 0 when no phrase is in it."""
    have, best = set(tokens), 0.0
    for phrase, weight in phrases.items():
        need = set(phrase.split())
        if need <= have:
            best = max(best, weight * (1.0 if need == have else 0.6 + 0.4 * len(need) / len(have)))
    return best


@dataclass(frozen=True)
class Profile:
    """What a sample of one column's values looks like."""

    name: str
    tokens: tuple[str, ...]
    kind: str  # empty | number | time | text
    rows: int = 0  # non-blank values in the sample
    distinct: int = 0
    values: frozenset[str] = frozenset()  # lower-cased distinct values, when there are few
    mean_length: float = 0.0
    integers: bool = False
    low: float = float("nan")
    high: float = float("nan")
    date_formats: tuple[str, ...] = ()  # the formats that parse every value (text dates)

    @property
    def epoch(self) -> bool:
        """Whole numbers in the range of Unix times (seconds, ms or us) from 2000 to 2100."""
        if self.kind != "number" or not self.integers:
            return False
        return any(EPOCH_SECONDS[0] * f <= self.low and self.high <= EPOCH_SECONDS[1] * f for f in (1, 1e3, 1e6))


def profile_column(name: str, values: pd.Series, source: SourceConfig) -> Profile:
    """The profile of one column from a sample of its values (vectorized)."""
    tokens = header_tokens(name)
    text = values.astype("str").str.strip().where(values.notna())
    present = values[text.notna() & (text != "")]
    if present.empty:
        return Profile(name, tokens, "empty")
    lowered = text[text.notna() & (text != "")].str.lower()
    distinct = int(lowered.nunique())
    few = frozenset(lowered.unique().tolist()) if distinct <= 60 else frozenset()
    base = Profile(name, tokens, "text", len(present), distinct, few, float(lowered.str.len().mean()))
    if pd.api.types.is_datetime64_any_dtype(present.dtype):
        return replace(base, kind="time")
    if not pd.api.types.is_bool_dtype(present.dtype):
        numbers, bad = convert(present, "float", source)
        if not bad.any():
            whole = bool((numbers == np.floor(numbers)).all())
            return replace(base, kind="number", integers=whole, low=float(numbers.min()), high=float(numbers.max()))
    formats = _date_formats(present, source)
    return replace(base, kind="time", date_formats=formats) if formats else base


def _date_formats(values: pd.Series, source: SourceConfig) -> tuple[str, ...]:
    """The date formats that parse every value (ISO first; both orders when day and month
    could be swapped); () for values that do not look like dates."""
    text = values.astype("str").str.strip()
    if not text.str.match(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}").all():
        return ()
    fits = []
    for fmt in DATE_FORMATS:
        if not convert(text, "datetime", source.model_copy(update={"date_format": fmt}))[1].any():
            fits.append(fmt)
            if fmt == "ISO8601":
                break
    return tuple(fits)


# --- the parts a column can play -----------------------------------------------------------


def _share_in(vocabulary: frozenset[str]) -> Callable[[Profile], float]:
    def fit(p: Profile) -> float:
        share = len(p.values & vocabulary) / len(p.values) if p.values else 0.0
        return 1.0 if share >= 0.5 else share

    return fit


def _unique_text(p: Profile) -> float:
    return 1.0 if p.distinct >= 0.9 * p.rows else 0.3


def _few_values(p: Profile) -> float:
    return 1.0 if 1 <= p.distinct <= 50 and p.distinct <= max(2, p.rows // 2) else 0.2


def _money(p: Profile) -> float:
    return 1.0 if p.low >= 0 and p.distinct > 1 else 0.3


def _zero_to_ten(p: Profile) -> float:
    return 1.0 if p.integers and p.low >= 0 and 5 < p.high <= 10 else 0.0  # a 1-5 rating is no NPS answer


def _event_names(p: Profile) -> float:
    return 1.0 if 2 <= p.distinct <= 500 and p.rows >= 3 * p.distinct and p.mean_length <= 60 else 0.2


def _several(p: Profile) -> float:
    return 1.0 if p.distinct >= 2 else 0.3


@dataclass(frozen=True)
class Part:
    """A part a column can play: header phrases naming it (with weights), the kinds of values
    it holds, how well values fit (0..1), whether values alone can find it, and its column
    name in the config."""

    phrases: Mapping[str, float]
    kinds: frozenset[str]
    fit: Callable[[Profile], float]
    by_values: bool
    canonical: str


def _part(
    sure: str, vague: str, kinds: str, fit: Callable[[Profile], float], canonical: str, by_values: bool = False
) -> Part:
    """A Part from comma-separated phrases: `sure` ones weigh 1, `vague` ones 0.6."""
    phrases = {p.strip(): 0.6 for p in vague.split(",") if p.strip()} | {p.strip(): 1.0 for p in sure.split(",")}
    return Part(phrases, words(kinds), fit, by_values, canonical)


PARTS = {
    "name": _part("name, account name, company name, customer name, organization name, client name",
                  "company, customer, client, account, organization", "text", _unique_text, "name"),
    "arr": _part("arr, annual revenue, annual recurring revenue, annual contract value, acv, contract value",
                 "revenue, annual value, contract amount, yearly revenue", "number", _money, "arr"),
    "owner": _part("owner, account owner, csm, customer success manager, success manager, account manager",
                   "manager, rep, am, assigned", "text", _few_values, "owner"),
    "region": _part("region, geo, territory", "country, market, area", "text", _few_values, "region"),
    "tier": _part("tier, segment, customer tier", "plan, size, package, edition", "text", _few_values, "tier"),
    "priority": _part("priority, severity, urgency", "impact", "text number", _share_in(PRIORITY_WORDS),
                      "priority", True),
    "status": _part("status, ticket status, state", "", "text", _share_in(STATUS_WORDS), "status", True),
    "satisfaction": _part("satisfaction, satisfaction score, csat, satisfaction rating", "rating", "text",
                          _share_in(SATISFACTION_WORDS), "satisfaction", True),
    "score": _part("score, nps, nps score, likelihood, how likely, 0 10", "likely, recommend, rating, answer",
                   "number", _zero_to_ten, "score", True),
    "event": _part("event, event name, event type, action, activity, feature", "", "text", _event_names, "event"),
    "user": _part("user, user id, distinct id, member, user email", "email, person", "text number", _several,
                  "user_id"),
}  # fmt: skip
VAGUE_EVENT_HEADERS = {"name": 0.4, "type": 0.4}  # event names often sit under a header this vague
ROLE_PARTS = {
    "accounts": {"name": 1.0, "arr": 1.5, "owner": 1.0, "region": 0.75, "tier": 0.75},
    "tickets": {"priority": 1.5, "status": 1.0, "satisfaction": 0.75},
    "survey": {"score": 2.5},
    "usage": {"event": 1.5, "user": 0.5},
}
ROLE_WORDS = {
    "accounts": words("renewal seats licenses industry employees since churn onboarding lifetime domain website crm"),
    "tickets": words("ticket subject assignee requester solved resolved resolution reopens replies sla incident")
    | words("agent opened closed"),
    "survey": words("survey nps respondent response responded comment feedback recommend likely csat submitted"),
    "usage": words("event events session feature page device platform properties action login track screen click"),
}
TIME_NAMES = {"tickets": "created_at", "survey": "responded_at", "usage": "timestamp"}
PartScores = dict[str, dict[str, tuple[float, str]]]  # part -> column -> (score, why)


def part_score(name: str, p: Profile) -> tuple[float, str]:
    """0..1 for the column playing part `name`, from its header and values, and why."""
    part = PARTS[name]
    if p.kind not in part.kinds:
        return 0.0, ""
    fit = part.fit(p)
    if fit == 0 and name == "score":  # agg nps needs answers 0..10, whatever the header says
        return 0.0, ""
    named = max(phrase_score(p.tokens, part.phrases), phrase_score(p.tokens, VAGUE_EVENT_HEADERS) * (name == "event"))
    score = max(named * (0.5 + 0.5 * fit), 0.5 * fit if part.by_values and fit >= 1.0 else 0.0)
    how = "header and values fit" if named >= 0.6 and fit >= 0.5 else "vague header, values fit" if named else ""
    return score, how or "values fit"


def key_name_score(tokens: tuple[str, ...]) -> float:
    """0..1: how much a header sounds like an account key (`Account ID` 1, `Organization` 0.7,
    a bare `ID` 0.4, `Ticket ID` or `Account Name` 0)."""
    have = set(tokens)
    if not have or have & NOT_KEY:
        return 0.0
    if have & ENTITY:
        return 1.0 if have & ID_WORDS else 0.7 if len(have) == 1 else 0.5
    if have <= ID_WORDS:
        return 0.4
    return 0.8 if have in ({"external", "reference"}, {"custom", "data", "1"}, {"group", "id"}) else 0.0


def can_be_key(p: Profile) -> bool:
    """Values that could be account keys: text or whole numbers, short, not all one value."""
    plain = p.kind == "text" or (p.kind == "number" and p.integers and not p.epoch)
    return plain and p.distinct >= 2 and p.mean_length <= 64


def time_score(p: Profile, hinted: str | None = None) -> float:
    """0..1 for the column being the event time: dates (or Unix times under a time-like header),
    created/opened/timestamp preferred over updated/solved/renewal ones."""
    have = set(p.tokens)
    named = 1.0 if have & STRONG_TIME else 0.35 if have & WEAK_TIME else 0.75 if have & words("date at day") else 0.5
    named = max(named, 0.95) if p.name == hinted else named
    if p.kind == "time":
        return named * (0.7 if len(p.date_formats) > 1 else 1.0)
    return named * 0.9 if p.epoch and named >= 0.75 else 0.0


@dataclass(frozen=True)
class Guess:
    """One guess: the column (after any preset renames), how sure (0..1), and why."""

    column: str
    confidence: float
    reason: str

    @property
    def low(self) -> bool:
        """True when the guess needs a human check."""
        return self.confidence < LOW_CONFIDENCE


@dataclass
class FileGuess:
    """What `init` made of one file. `columns` maps a part (key, time, name, arr, owner, region,
    tier, priority, status, satisfaction, score, event, user) to its guess; `values` holds the
    distinct values of categorical parts as `score` sees them; `options` the read options the
    config must set (delimiter, encoding, date_format)."""

    path: Path
    format: str = ""
    role: str = UNKNOWN
    confidence: float = 0.0
    reason: str = ""
    preset: str | None = None
    preset_confidence: float = 0.0
    rows: int = 0
    headers: tuple[str, ...] = ()
    renames: dict[str, str] = field(default_factory=dict)  # header -> column, by the preset
    columns: dict[str, Guess] = field(default_factory=dict)
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    latest: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)
    key_names: dict[str, float] = field(default_factory=dict, repr=False)  # candidate -> header score
    key_values: dict[str, pd.Index] = field(default_factory=dict, repr=False)  # candidate -> distinct keys

    def header_of(self, column: str) -> str:
        """The file's header for a column name (they differ when a preset renamed it)."""
        return next((h for h, c in self.renames.items() if c == column), column)


def guess_preset(headers: Iterable[str]) -> tuple[str, float, str] | None:
    """The preset whose exact export headers make up most of a file's headers (60% or more, 3
    or more, one of them in no other preset and not a plain snake_case word), with a
    confidence and a reason; None when no preset fits."""
    names = list(headers)
    owners = Counter(h for preset in PRESETS.values() for h in preset.rename)
    best: tuple[float, int, str, str] | None = None
    for name, preset in PRESETS.items():
        exact = [h for h in names if h in preset.rename]
        patterned = [h for h in names if h not in preset.rename and preset.column_names([h])]
        distinctive = [h for h in exact if owners[h] == 1 and not re.fullmatch(r"[a-z]+(_[a-z]+)?", h)]
        share = (len(exact) + 0.5 * len(patterned)) / max(len(names), 1)
        if len(exact) >= 3 and share >= 0.6 and distinctive and (best is None or (share, len(exact)) > best[:2]):
            best = (share, len(exact), name, f"{len(exact)} of {len(names)} headers are a {preset.tool}'s")
    if best is None:
        return None
    return best[2], round(min(1.0, best[0]) * min(1.0, 0.7 + 0.1 * best[1]), 2), best[3]


def role_scores(
    parts: PartScores,
    tokens: set[str],
    shape: Mapping[str, float],
    preset_role: str | None = None,
) -> dict[str, float]:
    """Evidence points per role: the parts found (best column each, weighted), role words in the
    headers (up to 2), the file's shape (`unique_key`, `rows_per_key`, `time`) and its preset."""
    best = {name: max((s for s, _ in scores.values()), default=0.0) for name, scores in parts.items()}
    points = {
        role: sum(w * best[p] for p, w in weights.items()) + min(2.0, 0.5 * len(tokens & ROLE_WORDS[role]))
        for role, weights in ROLE_PARTS.items()
    }
    points["accounts"] += 1.5 if shape["unique_key"] else -1.0
    points["usage"] += (1.0 if shape["rows_per_key"] >= 5 and best["event"] >= 0.3 else 0.0) + 0.5 * shape["time"]
    points["tickets"] += 0.25 * shape["time"]
    points["survey"] += 0.25 * shape["time"]
    if preset_role in points:
        points[preset_role] += 2.0
    return points


# --- one file ------------------------------------------------------------------------------


OUTCOME_HEADERS = frozenset({("churned",), ("churn",), ("is", "churned"), ("has", "churned"), ("churned", "on")})
OUTCOME_FLAGS = frozenset({"true", "false", "yes", "no", "1", "0", "churned", "renewed", "y", "n"})
OUTCOME_MAX_COLUMNS = 6


def _is_outcome(profile: Profile) -> bool:
    """A churn-outcome column: named churned (or churn, churned_on ...) holding flags or dates."""
    if profile.tokens not in OUTCOME_HEADERS:
        return False
    return profile.kind == "time" or (bool(profile.values) and profile.values <= OUTCOME_FLAGS)


def analyse(guess: FileGuess, frame: pd.DataFrame, source: SourceConfig, preset_role: str | None) -> None:
    """Guess a file's role and the columns of that role (not yet its key, which depends on the
    other files) from a sample of `frame`; columns used are checked on every row."""
    preset = PRESETS[guess.preset] if guess.preset else None
    sample = frame.head(SAMPLE_ROWS)
    profiles = {str(c): profile_column(str(c), sample[c], source) for c in frame.columns}
    parts = {name: {c: part_score(name, p) for c, p in profiles.items()} for name in PARTS}
    hinted = preset.key if preset else None
    names = {c: max(key_name_score(p.tokens), 0.9 if c == hinted else 0.0) for c, p in profiles.items()}
    # columns with a key-like header; every plausible column only when none has one
    guess.key_names = {c: s for c, s in names.items() if can_be_key(profiles[c]) and s > 0}
    guess.key_names = guess.key_names or {c: s for c, s in names.items() if can_be_key(profiles[c])}
    for col in guess.key_names:
        keys = key_to_text(frame[col]).str.strip()
        guess.key_values[col] = pd.Index(keys[keys.notna() & (keys != "")].unique())
    named = sorted((c for c, s in guess.key_names.items() if s >= 0.4), key=lambda c: -guess.key_names[c])
    times = {c: time_score(p, preset.time if preset else None) for c, p in profiles.items()}
    unique = any(len(guess.key_values[c]) == len(frame) for c in named)
    per_key = len(frame) / max(len(guess.key_values[named[0]]), 1) if named else 0.0
    shape = {"unique_key": float(unique), "rows_per_key": per_key, "time": max(times.values(), default=0.0)}
    outcome = next((c for c, p in profiles.items() if _is_outcome(p)), None)
    if outcome is not None and len(profiles) <= OUTCOME_MAX_COLUMNS:
        guess.reason = (
            f"churn outcomes (column {outcome!r}), not an input of the score: "
            "use it with `healthscore backtest --outcomes` or `calibrate`"
        )
        return
    scores = role_scores(parts, {t for p in profiles.values() for t in p.tokens}, shape, preset_role)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    (role, best), second = ranked[0], max(ranked[1][1], 0.0)
    if best < 1.0:
        guess.reason = "no role fits its headers and values"
        return
    guess.role, guess.confidence = role, round(min(1.0, best / (best + second)) * min(1.0, best / 3.0) ** 0.5, 2)
    found = [p for p in ROLE_PARTS[role] if max(s for s, _ in parts[p].values()) >= 0.5]
    how = {"accounts": "one row per key" if unique else "", "usage": f"{per_key:.0f} rows per key"}.get(role, "")
    guess.reason = "; ".join(x for x in (f"{', '.join(found)} columns" if found else "", how) if x) or "its headers"
    if role != "accounts":
        _pick_time(guess, frame, source, profiles, times)
    _pick_parts(guess, frame, source, parts)


def _pick_time(
    guess: FileGuess, frame: pd.DataFrame, source: SourceConfig, profiles: dict[str, Profile], times: dict[str, float]
) -> None:
    """The best time column whose every value parses (a bad one would stop `score`)."""
    for col in sorted((c for c in times if times[c] >= 0.3), key=lambda c: -times[c]):
        p = profiles[col]
        fmt = p.date_formats[0] if p.date_formats else "ISO8601"
        parsed, bad = convert(frame[col], "datetime", source.model_copy(update={"date_format": fmt}))
        if bad.any():
            guess.notes.append(f"{guess.header_of(col)!r} holds dates but {int(bad.sum())} value(s) do not parse")
            continue
        why = f"{guess.header_of(col)!r} holds " + (
            "Unix times" if p.epoch else "ISO dates" if fmt == "ISO8601" else fmt
        )
        if fmt != "ISO8601":
            guess.options["date_format"] = fmt
            why += ", but day and month could be swapped" if len(p.date_formats) > 1 else ""
        guess.columns["time"] = Guess(col, round(times[col], 2), why)
        guess.latest = None if pd.isna(parsed.max()) else parsed.max()
        return


def _pick_parts(guess: FileGuess, frame: pd.DataFrame, source: SourceConfig, parts: PartScores) -> None:
    """One column per part of the role, the strongest first, each checked on every row."""
    taken = {g.column for g in guess.columns.values()}
    for part in sorted(ROLE_PARTS[guess.role], key=lambda p: -ROLE_PARTS[guess.role][p]):
        ranked = sorted((c for c in parts[part] if c not in taken), key=lambda c: -parts[part][c][0])
        if ranked and parts[part][ranked[0]][0] >= 0.3 and _usable(guess, part, frame[ranked[0]], source):
            score, why = parts[part][ranked[0]]
            guess.columns[part] = Guess(ranked[0], round(score, 2), f"{guess.header_of(ranked[0])!r}: {why}")
            taken.add(ranked[0])


def _usable(guess: FileGuess, part: str, values: pd.Series, source: SourceConfig) -> bool:
    """Numbers where the config needs numbers (ARR; NPS answers 0..10); the distinct values of
    categorical parts kept for the metrics' filters."""
    if part in ("arr", "score"):
        numbers, bad = convert(values, "float", source)
        if bad.any() or (part == "score" and not numbers.dropna().between(0, 10).all()):
            guess.notes.append(f"{values.name!r} looked like {part} in the sample but not on every row")
            return False
    elif part in ("priority", "satisfaction", "event"):
        guess.values[part] = tuple(sorted(values.dropna().astype("str").unique().tolist()))
    return True


# --- keys across files ---------------------------------------------------------------------


def choose_keys(guesses: list[FileGuess]) -> None:
    """Every file's key: the accounts file's is a unique column holding the other files' key
    values; every other file's the column whose values are most often accounts' keys."""
    files = [g for g in guesses if g.role in ROLES]
    spines = sorted((g for g in files if g.role == "accounts"), key=lambda g: -g.confidence)
    spine = spines[0] if spines else None
    if spine is not None:
        others = [g.key_values[c] for g in files if g is not spine for c in g.key_names]
        unique = {c: s for c, s in spine.key_names.items() if len(spine.key_values[c]) == spine.rows}
        key = _best_key(spine, unique or spine.key_names, others, None)
        if key and not unique:
            key = Guess(key.column, round(key.confidence * 0.5, 2), key.reason + ", but values repeat")
        _set_key(spine, key)
    keys = [spine.key_values[spine.columns["key"].column]] if spine and "key" in spine.columns else []
    for guess in files:
        if guess is not spine:
            _set_key(guess, _best_key(guess, guess.key_names, keys, spine))


def _best_key(
    guess: FileGuess, names: dict[str, float], against: list[pd.Index], spine: FileGuess | None
) -> Guess | None:
    """The key column by header score (`names`) and by matching values: for the accounts file
    (`spine` None) the largest share of another file's candidate values it holds, else the
    share of its own values that are accounts' keys."""
    shares = {}
    for col in names:
        values = guess.key_values[col]
        if spine is None:
            shares[col] = max((float(v.isin(values).mean()) for v in against if len(v)), default=0.0)
        else:
            shares[col] = float(values.isin(against[0]).mean()) if against and len(values) else 0.0
    against = against if any(shares.values()) or spine is not None else []  # no file shares keys: headers decide
    weight = (0.5 if spine is None else 0.6) if against else 0.0
    scores = {c: (1 - weight) * names[c] + weight * shares[c] if names[c] else 0.55 * shares[c] for c in names}
    if not scores:
        return None
    col = max(scores, key=lambda c: (scores[c], names[c]))
    why = "an account-key header" if names[col] >= 0.7 else "an id-like header" if names[col] else "its values"
    if against:
        matched = f"{shares[col]:.0%} of its values are keys of {spine.path.name}" if spine else ""
        why += f"; {matched or f'holds {shares[col]:.0%} of the keys of a file'}"
    return Guess(col, round(scores[col], 2), f"{guess.header_of(col)!r}: {why}")


def _set_key(guess: FileGuess, key: Guess | None) -> None:
    """Record the key (a part on the same column gives it up); no key: the file is not used."""
    if key is None or key.confidence < 0.2:
        guess.notes.append(f"looks like {guess.role} but no column holds account keys")
        guess.role = UNKNOWN
        return
    guess.columns = {"key": key, **{p: g for p, g in guess.columns.items() if g.column != key.column}}
