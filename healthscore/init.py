"""`healthscore init`: look at a folder of exports and write a commented config that runs.

`survey(directory)` reads each export the way `score` does and guesses its role, preset, key
(comparing key values across files), time column and the columns the metrics need, each
with a confidence and a reason. `write_config` turns the guesses into a config with a
weighted model, marking unsure lines `CHECK:`; `report` gives the lines to print. The header
and value heuristics live in `healthscore.init_model`.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import keyword
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from healthscore.errors import HealthscoreError, InputMissingError, Problem, UsageError
from healthscore.init_model import (
    LOGIN_EVENTS,
    LOW_CONFIDENCE,
    PARTS,
    ROLES,
    TIME_NAMES,
    UNREADABLE,
    URGENT_WORDS,
    FileGuess,
    Guess,
    analyse,
    choose_keys,
    guess_preset,
)
from healthscore.models import SourceConfig
from healthscore.preset_data import PRESETS
from healthscore.presets import with_preset
from healthscore.readers import file_format, read_file

__all__ = ["FileGuess", "Guess", "config_text", "export_files", "refuse_overwrite", "report", "survey", "write_config"]

SUFFIXES = frozenset({".csv", ".tsv", ".parquet", ".pq", ".xlsx", ".xlsm", ".jsonl", ".ndjson", ".json"})
PRESET_ROLES = {
    **dict.fromkeys(("zendesk_tickets", "intercom_conversations"), "tickets"),
    **dict.fromkeys(("qualtrics_responses", "surveymonkey_responses", "delighted_responses"), "survey"),
    **dict.fromkeys(("mixpanel_events", "amplitude_events", "segment_tracks"), "usage"),
    **dict.fromkeys(("salesforce_report", "hubspot_companies", "stripe_subscriptions"), "accounts"),
}
LABELS = {"accounts": "accounts", "tickets": "support tickets", "survey": "survey responses", "usage": "usage events"}
YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


# --- survey --------------------------------------------------------------------------------


def survey(directory: Path) -> list[FileGuess]:
    """Guess what each export in `directory` (sub-folders included, hidden ones skipped) is.

    Returns one FileGuess per CSV/TSV, Parquet, XLSX or JSON lines file (gzipped or not), in
    path order; a file that cannot be read comes back with role `unreadable` and the reason
    in `notes`. Raises InputMissingError (66) when no file in the folder can be read.
    """
    if not directory.is_dir():
        raise InputMissingError(f"not a folder: {directory}", [Problem("init reads a folder of exports")])
    guesses = [_survey_file(path) for path in export_files(directory)]
    if all(g.role == UNREADABLE for g in guesses):
        problems = [Problem("; ".join(g.notes), str(g.path)) for g in guesses]
        hint = "put CSV, Parquet, XLSX or JSON lines exports (optionally .gz) in it"
        raise InputMissingError(f"no readable export in {directory}", problems or [Problem(hint, str(directory))])
    choose_keys(guesses)
    return guesses


def export_files(directory: Path) -> list[Path]:
    """The export files under `directory` by suffix (.gz allowed after it), hidden files and
    folders left out, sorted."""
    found = []
    for root, folders, files in os.walk(directory):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in files:
            suffixes = [s.lower() for s in Path(name).suffixes if s.lower() != ".gz"]
            if not name.startswith(".") and suffixes and suffixes[-1] in SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found)


def _read(path: Path, preset: str | None = None) -> tuple[pd.DataFrame, SourceConfig, list[str]]:
    """A file read as `score` reads it (with a preset's read options); the source settings
    that reproduce the read (delimiter, encoding), and the reader's notes."""
    source = with_preset(SourceConfig(path=str(path), key="", preset=preset))
    read = read_file(path, path.read_bytes(), source, path.name, lambda names: [])
    notes = [p.message for p in read.notes]
    if read.delimiter and read.delimiter != ",":
        source = source.model_copy(update={"delimiter": read.delimiter})
    if any("read as cp1252" in note for note in notes):
        source = source.model_copy(update={"encoding": "cp1252"})
    return read.frame, source, notes


def _survey_file(path: Path) -> FileGuess:
    """Read one file and guess its preset, role and columns (keys come later, across files)."""
    guess = FileGuess(path)
    try:
        frame, source, guess.notes = _read(path)
        found = guess_preset(str(c) for c in frame.columns)
        if found and PRESETS[found[0]].options:
            frame, source, guess.notes = _read(path, found[0])
    except (HealthscoreError, OSError, ValueError, LookupError, TypeError) as exc:  # any file may be in the folder
        guess.role = UNREADABLE
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        guess.notes.append(f"cannot read it: {re.sub(r'^source .*?: ', '', message)}")
        return guess
    guess.format, guess.rows, guess.headers = file_format(source, path), len(frame), tuple(map(str, frame.columns))
    guess.options = {k: str(getattr(source, k)) for k in ("delimiter", "encoding") if getattr(source, k) != "auto"}
    if frame.empty or "health_score" in guess.headers:
        guess.role = UNREADABLE
        guess.notes.append("a healthscore output, not an export" if len(frame) else "it has no data rows")
        return guess
    if found:
        preset = PRESETS[found[0]]
        guess.preset, guess.preset_confidence, why = found
        guess.renames = preset.column_names(list(guess.headers))
        frame = frame.rename(columns=guess.renames)
        for col in (c for c in preset.lowercase if c in frame.columns):  # as `score` does
            frame[col] = frame[col].astype("str").str.lower().where(frame[col].notna())
        guess.notes.append(f"preset {found[0]}: {why}")
    twice = frame.columns.duplicated()
    if twice.any():
        guess.notes.append(f"columns named twice (the first is used): {', '.join(map(str, frame.columns[twice]))}")
    analyse(guess, frame.loc[:, ~twice], source, PRESET_ROLES.get(guess.preset or ""))
    return guess


# --- the config ---------------------------------------------------------------------------


class _Use:
    """A file the config reads: its source name, guesses, final column names and renames."""

    def __init__(self, role: str, guess: FileGuess) -> None:
        self.name, self.guess = role, guess
        self.columns: dict[str, str] = {}
        self.rename: dict[str, str] = {}
        present = {guess.renames.get(h, h) for h in guess.headers}
        for part, found in guess.columns.items():
            col = found.column
            if part != "key" and col in guess.renames.values() and _plain(col):  # keep a preset's own name
                target = col
            else:
                target = (
                    "account_id" if part == "key" else TIME_NAMES[role] if part == "time" else PARTS[part].canonical
                )
            if target != col:
                taken = (present - {col}) | set(self.rename.values())
                target = next(t for t in (target, _slug(col), f"{_slug(col)}_{part}") if t not in taken)
                self.rename[guess.header_of(col)] = target
            self.columns[part] = target


def _plan(guesses: Sequence[FileGuess], strict: bool = True) -> list[_Use]:
    """The surest file of each role that has a key (and a time, but for accounts), accounts
    first; InputMissingError when `strict` and no file is an accounts list."""
    best: dict[str, FileGuess] = {}
    for guess in sorted(guesses, key=lambda g: -g.confidence):
        if guess.role in ROLES and "key" in guess.columns and (guess.role == "accounts" or "time" in guess.columns):
            best.setdefault(guess.role, guess)
    if strict and "accounts" not in best:
        hint = "add the CRM export: one row per account with its id, name, ARR, owner ..."
        raise InputMissingError("no export looks like a list of accounts to score", [Problem(hint)])
    return [_Use(role, best[role]) for role in ROLES if role in best]


def write_config(guesses: Sequence[FileGuess], directory: Path, output: Path, force: bool = False) -> str:
    """Write `config_text` to `output` atomically and return it. Raises UsageError (2) when
    `output` exists and not `force`, InputMissingError (66) without an accounts file or
    anything to score, OutputError (73) when the file cannot be written."""
    from healthscore.outputs import write_files

    refuse_overwrite(output, force)
    text = config_text(guesses, directory, output)
    write_files({output: text.encode("utf-8")})
    return text


def refuse_overwrite(output: Path, force: bool) -> None:
    """UsageError (2) when `output` exists and not `force`; the CLI calls it before surveying."""
    if output.exists() and not force:
        raise UsageError(f"{output} already exists", [Problem("init never overwrites it", str(output), "pass --force")])


def config_text(guesses: Sequence[FileGuess], directory: Path, output: Path) -> str:
    """A commented config (CONFIG.md keys only) over the guessed files, paths relative to
    `output`'s folder; checked by the config parser before it is returned."""
    from healthscore.config import load_yaml, parse_config

    uses = _plan(guesses)
    base = output.resolve().parent
    metrics = [metric for use in uses for metric in _metrics(use)]
    if not metrics:
        raise InputMissingError(
            f"nothing to score in {directory}", [Problem("no tickets, survey or usage export, no ARR")]
        )
    used = {id(u.guess) for u in uses}
    unused = [f"#   {_relative(g.path, base)}: {_why_unused(g, uses)}" for g in guesses if id(g) not in used]
    lines = [
        f"# healthscore config written by `healthscore init {directory}`. Comments give each guess,",
        "# why, and how sure (0..1); CHECK: marks unsure ones. Paths are relative to this file.",
        "version: 1",
        *_as_of(uses),
        "",
        *_accounts(uses[0]),
        "",
        "sources:",
        *[line for use in uses for line in _source(use, base)],
        "",
        "metrics:",
        *[line for _, metric in metrics for line in metric],
        "",
        *_groups(metrics),
        *TAIL,
        *(["", "# Files not used:", *unused] if unused else []),
    ]
    text = "\n".join(lines) + "\n"
    parse_config(load_yaml(text, str(output)), base, origin=str(output))
    return text


def _as_of(uses: Sequence[_Use]) -> list[str]:
    """as_of: the latest event date (not after today), so that the windows hold data."""
    latest = [u.guess.latest for u in uses if u.guess.latest is not None]
    if not latest:
        return []
    day = min(max(latest).date(), dt.date.today())
    return [_line(f"as_of: {day.isoformat()}", "the latest event date found; delete to score as of today")]


def _accounts(use: _Use) -> list[str]:
    parts = [p for p in ("name", "owner", "region", "tier", "arr") if p in use.columns]
    low = [f"{p} ({use.guess.columns[p].confidence:.2f})" for p in parts if use.guess.columns[p].low]
    shown = "passed through to the output" + (f"; CHECK: {', '.join(low)}" if low else "")
    lines = ["accounts:", f"  source: {use.name}"]
    lines += [_line(f"  columns: [{', '.join(_y(use.columns[p]) for p in parts)}]", shown)] if parts else []
    lines += [f"  name: {_y(use.columns['name'])}"] if "name" in parts else []
    return lines + ([_line(f"  arr: {_y(use.columns['arr'])}", "for ARR at risk")] if "arr" in parts else [])


def _source(use: _Use, base: Path) -> list[str]:
    """One source: path, preset, key, time, read options, renames and types, commented."""
    g = use.guess
    path = _relative(g.path, base)
    lines = [
        _line(f"  {use.name}:", _said(g.confidence, f"{LABELS[g.role]}: {g.reason}")),
        f"    path: {_q(glob.escape(path) if glob.has_magic(path) else path)}",
    ]
    if g.preset:
        lines.append(_line(f"    preset: {g.preset}", _said(g.preset_confidence, PRESETS[g.preset].tool)))
    for part in ("key", "time"):
        if part in g.columns:
            lines.append(
                _line(f"    {part}: {_y(use.columns[part])}", _said(g.columns[part].confidence, g.columns[part].reason))
            )
    lines += [_line(f"    {k}: {_q(v)}", "as found in the file") for k, v in sorted(g.options.items())]
    if use.rename:
        lines.append("    rename:")
    for header, target in use.rename.items():
        part = next(p for p, c in use.columns.items() if c == target)
        comment = (
            part if part in ("key", "time") else _said(g.columns[part].confidence, f"{part}: {g.columns[part].reason}")
        )
        lines.append(_line(f"      {_q(header)}: {_y(target)}", comment))
    types = {use.columns["arr"]: "float"} if "arr" in use.columns else {}
    types |= {use.columns["time"]: "date"} if use.name == "usage" else {}
    shown = ", ".join(f"{_y(c)}: {t}" for c, t in types.items())
    why = "times as whole days: active_days_30d counts them" if use.name == "usage" else ""
    return lines + ([_line(f"    types: {{{shown}}}", why)] if types else [])


PCT, FILL = "scale: {method: percentile}", "missing: {fill: 0}"
BANDS = "scale: {method: bands, bands: [{upto: 2, score: 10}, {upto: 5, score: 6}, {score: 2}]}"
TEMPLATES = {  # name: group, label, comment, the fixed keys (agg first)
    "arr_size": ("revenue", "ARR", "ARR, log scale", "agg: value; scale: {method: log_minmax}; kind: lagging"),
    "tickets_30d": ("support", "Tickets (30d)", "0-2 good, 6+ bad", f"agg: count; window: 30d; {BANDS}; {FILL}"),
    "urgent_tickets_90d": ("support", "Urgent tickets (90d)", "fewer is better",
                           f"agg: count; window: 90d; scale: {{method: linear, bad: 5, good: 0}}; {FILL}"),
    "csat_90d": ("sentiment", "CSAT (90d)", "share of rated tickets rated good",
                 "agg: share; window: 90d; scale: {method: linear, bad: 0.5, good: 1.0}; kind: lagging"),
    "nps_180d": ("sentiment", "NPS (180d)", "% promoters (9-10) - % detractors (0-6)",
                 "agg: nps; window: 180d; scale: {method: linear, bad: -100, good: 100}; kind: lagging"),
    "logins_30d": ("adoption", "Logins (30d)", "ranked among accounts", f"agg: count; window: 30d; {PCT}; {FILL}"),
    "events_30d": ("adoption", "Events (30d)", "no login event found", f"agg: count; window: 30d; {PCT}; {FILL}"),
    "active_days_30d": ("adoption", "Active days (30d)", "days with any event",
                        f"agg: nunique; window: 30d; scale: {{method: linear, bad: 1, good: 20}}; {FILL}"),
    "feature_breadth_30d": ("adoption", "Features used (30d)", "distinct events but logins",
                            f"agg: nunique; window: 30d; {FILL}"),
    "active_users_30d": ("adoption", "Active users (30d)", "distinct users",
                         f"agg: nunique; window: 30d; {PCT}; {FILL}"),
}  # fmt: skip
GROUPS = {"adoption": ("Product Adoption & Usage", 25), "sentiment": ("CSAT & NPS", 20)}
GROUPS |= {"support": ("Support Interactions", 15), "revenue": ("Revenue", 5)}
Row = tuple[str, str, str]  # key, YAML value, comment


def _metrics(use: _Use) -> list[tuple[str, list[str]]]:
    """The generated metrics over one source, each as its YAML lines (first line: its name)."""
    values, col = use.guess.values, use.columns
    chosen: list[tuple[str, list[Row]]] = []
    if use.name == "accounts" and "arr" in col:
        chosen.append(("arr_size", [_field(use, "arr")]))
    if use.name == "tickets":
        chosen.append(("tickets_30d", []))
        urgent = [v for v in values.get("priority", ()) if v.strip().lower() in URGENT_WORDS]
        if urgent:
            chosen.append(("urgent_tickets_90d", [_where(use, "priority", f"{col['priority']} in {_list(urgent)}")]))
        rated = {v.strip().lower(): v for v in values.get("satisfaction", ())}
        good, bad = (
            [rated[v] for v in ("good", "satisfied") if v in rated],
            [rated[v] for v in ("bad", "unsatisfied") if v in rated],
        )
        if good and bad:
            where = _where(use, "satisfaction", f"{col['satisfaction']} in {_list(good + bad)}")
            chosen.append(("csat_90d", [where, ("of_rows", _q(f"{col['satisfaction']} in {_list(good)}"), "")]))
    if use.name == "survey" and "score" in col:
        chosen.append(("nps_180d", [_field(use, "score")]))
    if use.name == "usage":
        chosen += _usage_metrics(use)
    return [_metric(use, name, rows) for name, rows in chosen]


def _usage_metrics(use: _Use) -> list[tuple[str, list[Row]]]:
    events = use.guess.values.get("event", ()) if "event" in use.columns else ()
    logins = [v for v in events if re.sub(r"[^a-z0-9]", "", v.lower()) in LOGIN_EVENTS]
    chosen = [("logins_30d", [_where(use, "event", f"{use.columns['event']} in {_list(logins)}")])] if logins else []
    chosen = chosen or [("events_30d", [])]
    chosen.append(("active_days_30d", [("field", _y(use.columns["time"]), "the time, typed as date")]))
    features = [v for v in events if v not in logins]
    if len(features) >= 2:
        good = max(2, min(10, round(0.75 * len(features))))
        rows = [_field(use, "event"), ("scale", f"{{method: linear, bad: 1, good: {good}}}", f"{len(features)} seen")]
        rows += [("where", _q(f"{use.columns['event']} not in {_list(logins)}"), "")] if logins else []
        chosen.append(("feature_breadth_30d", rows))
    if "user" in use.columns:
        chosen.append(("active_users_30d", [_field(use, "user")]))
    return chosen


def _field(use: _Use, part: str) -> Row:
    guess = use.guess.columns[part]
    return "field", _y(use.columns[part]), _said(guess.confidence, f"{part}: {guess.reason}")


def _where(use: _Use, part: str, expression: str) -> Row:
    guess = use.guess.columns[part]
    return "where", _q(expression), _said(guess.confidence, f"{part}: {guess.reason}")


def _metric(use: _Use, name: str, rows: list[Row]) -> tuple[str, list[str]]:
    """A metric's YAML lines: its template's keys around the guessed `rows` (field, where ...)."""
    _, label, comment, fixed = TEMPLATES[name]
    agg, *rest = fixed.split("; ")
    kind = [] if "kind:" in fixed else ["kind: leading"]
    lines = [f"    label: {_q(label)}", f"    source: {use.name}", f"    {agg}"]
    lines += [_line(f"    {k}: {v}", c) for k, v, c in rows]
    lines += [_line(f"    {item}", "no rows means 0" if item == FILL else "") for item in rest + kind]
    return name, [_line(f"  {name}:", comment), *lines]


def _groups(metrics: Sequence[tuple[str, list[str]]]) -> list[str]:
    lines = [_line("groups:", "weights are normalized to 100%; a missing metric's weight goes to the others")]
    for group, (label, weight) in GROUPS.items():
        names = ", ".join(name for name, _ in metrics if TEMPLATES[name][0] == group)
        if names:
            lines += [f"  {group}:", f"    label: {_q(label)}", f"    weight: {weight}", f"    metrics: [{names}]"]
    return lines


TAIL = """
score:
  method: weights
  min_coverage: 0.5                       # below it (share of weight with data): Unscored

segments:                                 # ordered; `max` is an inclusive upper bound
  - {name: Critical, max: 40, color: red, action: "Escalate: exec sponsor call within 48h"}
  - {name: At-Risk, max: 60, color: yellow, action: "CSM check-in this week"}
  - {name: Healthy, max: 80, color: green, action: "Keep the cadence; look for expansion"}
  - {name: Thriving, max: 100, color: blue, action: "Ask for a reference or expansion"}

outputs:
  dir: out/                               # relative to this file
  name: health_scores
  formats: [csv, parquet]""".splitlines()


# --- the report ----------------------------------------------------------------------------


def report(guesses: Sequence[FileGuess]) -> list[str]:
    """The lines `healthscore init` prints: per file its role, config source, key, time and how
    sure, then the config lines to check; skipped and unused files with the reason."""
    uses = {id(u.guess): u for u in _plan(guesses, strict=False)}
    lines = []
    for g in guesses:
        use = uses.get(id(g))
        if use is None:
            lines.append(
                f"{g.path}: {'skipped' if g.role == UNREADABLE else 'not used'}: {_why_unused(g, uses.values())}"
            )
            continue
        preset = f", preset {g.preset}" if g.preset else ""
        lines.append(f"{g.path}: {LABELS[g.role]} (sources.{use.name}{preset}), {g.confidence:.0%} sure: {g.reason}")
        lines.append(
            "  " + ", ".join(f"{p} {g.header_of(x.column)!r} ({x.confidence:.0%})" for p, x in g.columns.items())
        )
        lines += [f"  CHECK {line}" for line in _checks(use)]
    if not any(u.name == "accounts" for u in uses.values()):
        lines.append("no accounts file found: init needs an export with one row per account")
    return lines


def _checks(use: _Use) -> list[str]:
    """The config lines of a source's unsure guesses, with the reason."""
    g, where = use.guess, f"sources.{use.name}"
    role = Guess(g.role, g.confidence, f"is it {LABELS[g.role]}? {g.reason}")
    found = {"": role, ".preset": Guess(g.preset or "", g.preset_confidence if g.preset else 1.0, "a known export")}
    for part, guess in g.columns.items():
        found[f".{part}" if part in ("key", "time") else f" {part} column {g.header_of(guess.column)!r}"] = guess
    return [f"{where}{at}: {x.reason} ({x.confidence:.2f})" for at, x in found.items() if x.low]


def _why_unused(g: FileGuess, uses: Iterable[_Use]) -> str:
    if g.role not in ROLES:
        return "; ".join(g.notes[-1:]) or g.reason or "its role is unclear"
    if "time" not in g.columns and g.role != "accounts":
        return f"{LABELS[g.role]} without a date column that parses: add it by hand with `time`"
    chosen = next((str(u.guess.path) for u in uses if u.name == g.role), "another file")
    return f"{LABELS[g.role]} too, but {chosen} is surer; add it by hand as another source if needed"


# --- text helpers ---------------------------------------------------------------------------


def _relative(path: Path, base: Path) -> str:
    """The path relative to the config's folder when it lies below it or beside it (one `..`),
    so the two can move together; else absolute (`../../..` chains break on any move)."""
    relative = Path(os.path.relpath(path.resolve(), base.resolve()))
    return (path.resolve() if relative.parts[:2] == ("..", "..") else relative).as_posix()


def _line(text: str, comment: str) -> str:
    return f"{text:<40}  # {comment}" if comment else text


def _said(confidence: float, text: str) -> str:
    """A guess's comment: what and why, how sure, and CHECK: when unsure."""
    return f"{'CHECK: ' if confidence < LOW_CONFIDENCE else ''}{text} ({confidence:.2f})".replace("\n", " ")


def _q(text: str) -> str:
    """A YAML double-quoted string (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _y(name: str) -> str:
    """A column name in YAML: bare when plain, quoted otherwise."""
    return name if _plain(name) and name not in YAML_WORDS else _q(name)


def _plain(name: str) -> bool:
    return bool(re.fullmatch(r"[a-z_][a-z0-9_]*", name)) and not keyword.iskeyword(name)


def _slug(header: str) -> str:
    """A header as a plain column name usable in expressions (`Annual Value ($)` -> annual_value)."""
    slug = re.sub(r"[^a-z0-9]+", "_", header.lower()).strip("_") or "column"
    slug = f"c_{slug}" if slug[0].isdigit() else slug
    return f"{slug}_" if keyword.iskeyword(slug) or slug in YAML_WORDS else slug


def _list(values: Sequence[str]) -> str:
    """Values as a list literal of the expression language."""
    return "[" + ", ".join(repr(str(v)) for v in values) + "]"
