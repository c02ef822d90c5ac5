"""The config file: YAML parsed into the typed, frozen objects of `models.py`, every problem
reported at once with its key path and a hint.

`load_config(path)` is the only entry point most code needs; the models are re-exported
here so that `from healthscore.config import Config` keeps working.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from healthscore.errors import ConfigError, InputMissingError, Problem
from healthscore.models import POLICY_MAPPING, POLICY_NAME, Config

__all__ = ["Config", "config_schema", "load_config", "load_yaml", "parse_config"]


NAMED_SECTIONS = ("sources", "metrics", "groups", "profiles")  # mappings of user-named entries
_PLACEHOLDERS: dict[str, Any] = {"version": 1, "accounts": {"source": ""}, "sources": {}, "metrics": {}}


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config file, generated from the models that
    parse it, so it never drifts from what `score` accepts."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "healthscore config"
    return schema


def parse_config(
    data: Mapping[str, Any], base_dir: Path | None = None, sha256: str = "", origin: str = "config"
) -> Config:
    """Validate a config mapping into a `Config`; raise ConfigError listing every problem.

    When some entries are invalid, the cross-checks still run over the valid rest (treating
    the invalid entries' names as known), so one pass reports every problem of the file.
    """
    from healthscore.checks import cross_check

    if not isinstance(data, Mapping):
        problem = Problem(
            f"expected a mapping of keys at the top level, got {_shown(data)}",
            hint="a config file is a mapping of keys, starting with `version: 1`",
        )
        raise ConfigError(f"{origin} is not valid", [problem])
    problems: list[Problem] = []
    config: Config | None
    broken: frozenset[str] = frozenset()
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from(exc)
        config, broken = _salvage(data, exc)
    if config is not None:
        problems += cross_check(config, broken)
    if problems or config is None:
        raise ConfigError(f"{origin} is not valid", problems)
    config._base_dir = base_dir or Path.cwd()
    config._sha256 = sha256
    return config


def _salvage(data: Mapping[str, Any], exc: ValidationError) -> tuple[Config | None, frozenset[str]]:
    """The config without its invalid parts, and the paths of what was dropped.

    A named entry with a problem (`metrics.nps`) is dropped alone; another section with a
    problem is dropped whole (`segments`), or replaced by a placeholder if it is required.
    None if even that does not validate.
    """
    pruned = dict(data)
    broken: set[str] = set()
    for err in exc.errors():
        loc = err["loc"]
        if not loc:
            return None, frozenset()
        top = str(loc[0])
        if top not in Config.model_fields:
            pruned.pop(top, None)  # an unknown top-level key: nothing refers to it
            continue
        section = pruned.get(top)
        if top in NAMED_SECTIONS and len(loc) > 1 and isinstance(section, Mapping):
            entries = dict(section)
            entries.pop(loc[1], None)
            pruned[top] = entries
            if isinstance(loc[1], str):
                broken.add(f"{top}.{loc[1]}")
        else:
            broken.add(top)
            if top in _PLACEHOLDERS:
                pruned[top] = _PLACEHOLDERS[top]
            else:
                pruned.pop(top, None)
    try:
        return Config.model_validate(pruned), frozenset(broken)
    except ValidationError:
        return None, frozenset()


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a YAML config file (exit 66 if absent, 78 if invalid)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputMissingError(f"config file not found: {path}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise InputMissingError(f"cannot read config file {path}: {exc.strerror}") from None
    data = load_yaml(raw, str(path))
    config = parse_config(data, path.resolve().parent, hashlib.sha256(raw).hexdigest(), str(path))
    config._path = path
    return config


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys instead of keeping the last, and turns
    impossible dates (2026-02-30) into YAML errors with a position."""

    duplicates: list[tuple[int, int, Problem]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`; the keys it brings may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; the base class reports it with its position
                continue
            if first is not None:
                self.duplicates.append(
                    (
                        line,
                        column,
                        Problem(
                            f"duplicate key {_shown(key)} (first at line {first})",
                            where=f"line {line}, column {column}",
                            hint="YAML keeps only the last of duplicate keys; remove one",
                        ),
                    )
                )
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r}: {exc}", node.start_mark
            ) from None


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


def load_yaml(raw: bytes | str, origin: str) -> Any:
    """Parse YAML safely (no tags that construct objects); duplicate keys are a ConfigError."""
    try:
        loader = _StrictLoader(raw)
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{origin} is not valid YAML", [_reader_problem(raw, exc)]) from None
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.reader.ReaderError as exc:
        raise ConfigError(f"{origin} is not valid YAML", [_reader_problem(raw, exc)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"{context}: {reason}" if context else str(reason)
        hint = "indent with spaces; YAML does not allow tabs there" if "\\t" in message else ""
        raise ConfigError(f"{origin} is not valid YAML", [Problem(message, where, hint)]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(
            f"{origin} has duplicate keys", [p for *_, p in sorted(loader.duplicates, key=lambda d: d[:2])]
        )
    if data is None:
        raise ConfigError(f"{origin} is empty", [Problem("expected a mapping with `version: 1`")])
    return data


def _reader_problem(raw: bytes | str, exc: yaml.reader.ReaderError) -> Problem:
    """A problem for text that is not valid in its encoding, or holds a forbidden character."""
    before = raw[: exc.position]
    line = (before.count(b"\n") if isinstance(before, bytes) else before.count("\n")) + 1
    if isinstance(exc.character, int):
        what = f"byte 0x{exc.character:02x}" if exc.character < 0x100 else f"character U+{exc.character:04X}"
    else:
        what = repr(exc.character)
    return Problem(
        f"{what} cannot be read as {exc.encoding or 'text'}: {exc.reason}",
        f"line {line}",
        "save the file as UTF-8" if exc.encoding else "remove the character",
    )


def _problems_from(exc: ValidationError) -> list[Problem]:
    """One problem per pydantic error, with a dotted key path and YAML-aware hints."""
    problems = []
    for err in exc.errors():
        loc = _clean_loc(err["loc"])
        kind, message, hint = err["type"], err["msg"].removeprefix("Value error, "), ""
        given = err.get("input")
        if loc and loc[-1] == "[key]":  # a mapping key that is not text (YAML read it as a number, bool...)
            loc = loc[:-2]
            message = f"the key {_shown(given)} is not text"
            hint = _yaml_hint(given, key=True)
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "extra_forbidden":
            message = "unknown key"
            hint = _did_you_mean(str(err["loc"][-1]), _known_keys(loc[:-1]))
        elif kind != "value_error" and not isinstance(given, dict | list):
            message = f"{message}, got {_shown(given)}"
            expected = str((err.get("ctx") or {}).get("expected", ""))
            expects_text = kind == "string_type" or (kind == "literal_error" and expected.startswith("'"))
            if loc and loc[-1] == "missing":
                hint = "or a mapping: {fill: <raw value>} or {score: <0..10>}"
            elif expects_text and not isinstance(given, str):
                hint = _yaml_hint(given)
        problems.append(Problem(message, ".".join(str(part) for part in loc), hint))
    return problems


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A pydantic error location without validator and union-member labels."""
    return tuple(
        part
        for part in loc
        if not (isinstance(part, str) and (part.startswith(("function-", "constrained-")) or part in _UNION_TAGS))
    )


_UNION_TAGS = frozenset({POLICY_NAME, POLICY_MAPPING})


def _shown(value: Any) -> str:
    """A value as the user would write it in YAML (true, null, 12, "text")."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return str(value)


def _yaml_hint(value: Any, key: bool = False) -> str:
    """Why YAML may have read a value as something other than the text that was meant."""
    what = "the key" if key else "the value"
    if isinstance(value, bool):
        return f'YAML reads unquoted yes/no/on/off/true/false as true/false; put {what} in quotes, like "NO"'
    if isinstance(value, int | float):
        return f'YAML reads unquoted numbers as numbers (02116 as octal 1102); put {what} in quotes, like "02116"'
    if isinstance(value, dt.date):
        return f'YAML reads unquoted dates as dates; put {what} in quotes, like "2026-01-31"'
    if value is None and not key:
        return 'give a value; an empty value, ~ and null mean "nothing" in YAML'
    return ""


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    return f"known keys: {', '.join(known)}" if known else ""


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at a location, found by walking the model annotations along it."""
    annotation: Any = Config
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _model_in(annotation)
    return list(model.model_fields) if model is not None else []


def _step(annotation: Any, part: Any) -> Any:
    """The annotation one location part below `annotation` (None if it cannot be followed)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return None if field is None else field.annotation
    if origin is Annotated:
        return _step(args[0], part)
    if origin is dict:
        return args[1]
    if origin in (tuple, list):
        return args[0]
    for arg in args:  # a union: the first member that has `part`
        found = _step(arg, part)
        if found is not None:
            return found
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        model = _model_in(arg)
        if model is not None:
            return model
    return None
