"""Text-level edits of a YAML config: new group and metric weights written where the old ones
were, so comments, key order and layout survive and the change reads as a small diff.

`yaml.compose` (safe: nodes only, nothing constructed) gives the position of every node. In a
block-style group the `weight` scalar and the weights of a block mapping of metrics are
replaced in place, each line getting a trailing `# calibrated: ...` note (an older such note is
replaced, any other comment kept); a list of metrics (`[a, b]`, or `- a` lines) or a flow
mapping becomes a block mapping with one metric a line. A flow-style group (`{weight: 5,
metrics: [a]}`) keeps its style, with its notes on comment lines above it. A header block of
`# calibrate: ...` lines goes above `groups:` (replacing an older one). Comments inside a
multi-line flow collection of metrics are not kept. Edits are applied from the end of the text
backwards, so the positions of the earlier ones stay valid.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from healthscore.errors import ConfigError, Problem

HEADER_PREFIX = "# calibrate:"
NOTE_PREFIX = "# calibrated:"
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class GroupEdit:
    """A group's new weight and metric weights, each with the note written beside it."""

    weight: float
    note: str
    metrics: dict[str, float]
    metric_notes: dict[str, str]


@dataclass(frozen=True)
class _Change:
    """Replace text[start:end] with `new`."""

    start: int
    end: int
    new: str


def number(value: float) -> str:
    """A weight as YAML text, one decimal at most: 25, 12.5, 0."""
    text = f"{value:.1f}"
    return text.removesuffix(".0") if text != "-0.0" else "0"


def rewrite_weights(text: str, edits: Mapping[str, GroupEdit], header: Sequence[str] = ()) -> str:
    """`text` with the weights of every group in `edits` replaced, notes beside them and the
    `header` lines above `groups:`; raises ConfigError for a layout it cannot edit in place."""
    nl = "\r\n" if "\r\n" in text else "\n"
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    groups_key, groups = _groups(root)
    changes: list[_Change] = []
    above: dict[int, list[str]] = {_line_start(groups_key): [f"{HEADER_PREFIX} {line}".rstrip() for line in header]}
    for key, node in groups.value:
        edit = edits.get(str(key.value))
        if edit is None:
            continue
        if not isinstance(node, MappingNode):
            raise _cannot(f"groups.{key.value} is not a mapping")
        if node.flow_style:
            changes += _flow_group(text, str(key.value), key, node, edit, above)
        else:
            changes += _block_group(text, str(key.value), node, edit, nl)
    for line_start, lines in above.items():
        changes.append(_comment_lines(text, line_start, lines, nl))
    return _apply(text, changes)


def _groups(root: Node | None) -> tuple[ScalarNode, MappingNode]:
    """The `groups` key node and its mapping."""
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if isinstance(key, ScalarNode) and key.value == "groups" and isinstance(value, MappingNode):
                return key, value
    raise _cannot("the config has no mapping of `groups`")


def _block_group(text: str, name: str, node: MappingNode, edit: GroupEdit, nl: str) -> list[_Change]:
    """Edits for a block-style group: the weight in place (or a new `weight:` line), the metrics
    as a block mapping, a note at the end of each changed line."""
    entries = {str(k.value): (k, v) for k, v in node.value}
    changes = []
    if "weight" in entries:
        changes.append(_scalar(text, entries["weight"][1], number(edit.weight), edit.note, f"groups.{name}.weight"))
    else:
        first = node.value[0][0]
        start = _line_start(first)
        line = f"{' ' * first.start_mark.column}weight: {number(edit.weight)}  {NOTE_PREFIX} {edit.note}{nl}"
        changes.append(_Change(start, start, line))
    key, value = entries["metrics"]
    where = f"groups.{name}.metrics"
    if isinstance(value, MappingNode) and not value.flow_style:
        for k, v in value.value:
            metric = str(k.value)
            changes.append(_scalar(text, v, number(edit.metrics[metric]), edit.metric_notes[metric], where))
    elif isinstance(value, SequenceNode) and not value.flow_style:
        changes += _block_list(text, key, value, edit, where)
    else:
        changes.append(_flow_to_block(text, key, value, edit, nl, where))
    return changes


def _scalar(text: str, node: Node, new: str, note: str, where: str) -> _Change:
    """Replace a scalar and the rest of its line, keeping a comment there and adding the note."""
    if not isinstance(node, ScalarNode):
        raise _cannot(f"{where} holds a {type(node).__name__}, not a number")
    end = node.end_mark.index
    eol = _eol(text, end)
    return _Change(node.start_mark.index, eol, new + _trailing(text[end:eol], note, where))


def _block_list(text: str, key: Node, node: SequenceNode, edit: GroupEdit, where: str) -> list[_Change]:
    """`- a` lines become `a: 60` lines, each keeping its comment and getting its note."""
    changes = []
    indent = key.start_mark.column + 2
    for item in node.value:
        if not isinstance(item, ScalarNode):
            raise _cannot(f"{where} holds a {type(item).__name__}, not a metric name")
        start, line_start = item.start_mark.index, _line_start(item)
        dash = text.rfind("-", line_start, start)
        if dash < 0 or text[line_start:dash].strip() or text[dash + 1 : start].strip():
            raise _cannot(f"{where}: put each metric on its own `- name` line")
        end = item.end_mark.index
        eol = _eol(text, end)
        metric = str(item.value)
        entry = f"{' ' * max(indent, dash - line_start)}{_key(metric)}: {number(edit.metrics[metric])}"
        changes.append(_Change(line_start, eol, entry + _trailing(text[end:eol], edit.metric_notes[metric], where)))
    return changes


def _flow_to_block(text: str, key: Node, node: Node, edit: GroupEdit, nl: str, where: str) -> _Change:
    """`metrics: [a, b]` or `metrics: {a: 2, b: 1}` becomes a block mapping, one metric a line;
    a comment after the flow collection moves up to the `metrics:` line."""
    names = _names(node, where)
    start = key.end_mark.index
    if text[start : node.start_mark.index].strip() != ":":
        raise _cannot(f"{where}: expected `metrics:` followed by the metrics")
    end = node.end_mark.index
    eol = _eol(text, end)
    rest = text[end:eol].strip()
    if rest and not rest.startswith("#"):
        raise _cannot(f"{where}: unexpected text after the metrics: {rest}")
    pad = " " * (key.start_mark.column + 2)
    lines = [f"{pad}{_key(m)}: {number(edit.metrics[m])}  {NOTE_PREFIX} {edit.metric_notes[m]}".rstrip() for m in names]
    return _Change(start, eol, ":" + (f"  {rest}" if rest else "") + nl + nl.join(lines))


def _flow_group(
    text: str, name: str, key: Node, node: MappingNode, edit: GroupEdit, above: dict[int, list[str]]
) -> list[_Change]:
    """Edits for a flow-style group: numbers in place, metrics as a flow mapping, notes on
    comment lines above the group's line."""
    entries = {str(k.value): (k, v) for k, v in node.value}
    changes = []
    if "weight" in entries:
        weight = entries["weight"][1]
        changes.append(_Change(weight.start_mark.index, weight.end_mark.index, number(edit.weight)))
    else:
        first = node.value[0][0].start_mark.index
        changes.append(_Change(first, first, f"weight: {number(edit.weight)}, "))
    value = entries["metrics"][1]
    names = _names(value, f"groups.{name}.metrics")
    flow = ", ".join(f"{_key(m)}: {number(edit.metrics[m])}" for m in names)
    changes.append(_Change(value.start_mark.index, value.end_mark.index, "{" + flow + "}"))
    notes = above.setdefault(_line_start(key), [])
    notes.append(f"{NOTE_PREFIX} {name} weight {number(edit.weight)}: {edit.note}")
    notes += [f"{NOTE_PREFIX} {name}.{m} {number(edit.metrics[m])}: {edit.metric_notes[m]}" for m in names]
    return changes


def _names(node: Node, where: str) -> list[str]:
    """The metric names of a list or mapping node of metrics."""
    if isinstance(node, SequenceNode):
        return [str(item.value) for item in node.value]
    if isinstance(node, MappingNode):
        return [str(k.value) for k, _ in node.value]
    raise _cannot(f"{where} is neither a list nor a mapping")


def _comment_lines(text: str, line_start: int, lines: list[str], nl: str) -> _Change:
    """Comment lines inserted above the line starting at `line_start`, with its indentation,
    replacing the `# calibrate...` lines already there."""
    if not lines:
        return _Change(line_start, line_start, "")
    line = text[line_start : _eol(text, line_start)]
    indent = line[: len(line) - len(line.lstrip())]
    start = line_start
    while start > 0:
        previous = text.rfind("\n", 0, start - 1) + 1
        if not text[previous:start].strip().startswith(HEADER_PREFIX[:-1]):
            break
        start = previous
    return _Change(start, line_start, "".join(f"{indent}{line}{nl}" for line in lines))


def _trailing(rest: str, note: str, where: str) -> str:
    """The rest of a changed line: its comment (without an older note), then the new note."""
    if rest.strip() and not rest.strip().startswith("#"):
        raise _cannot(f"{where}: unexpected text after the value: {rest.strip()}")
    cut = rest.find(NOTE_PREFIX)
    kept = (rest[:cut] if cut >= 0 else rest).rstrip()
    return f"{kept}  {NOTE_PREFIX} {note}".rstrip()


def _apply(text: str, changes: list[_Change]) -> str:
    """Apply non-overlapping changes, from the last to the first."""
    ordered = sorted(changes, key=lambda c: (c.start, c.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise _cannot("overlapping edits (two groups on one line?)")
    for change in reversed(ordered):
        text = text[: change.start] + change.new + text[change.end :]
    return text


def _line_start(node: Node) -> int:
    """The index of the start of the line holding the node's start."""
    return int(node.start_mark.index - node.start_mark.column)


def _eol(text: str, index: int) -> int:
    """The index of the line break ending the line that holds `index` (before a CR of CRLF)."""
    end = text.find("\n", index)
    end = len(text) if end < 0 else end
    return end - 1 if end > index and text[end - 1] == "\r" else end


def _key(name: str) -> str:
    """A metric name as a YAML key: plain when it can be, else double-quoted."""
    return name if _PLAIN_KEY.fullmatch(name) and name.lower() not in _YAML_WORDS else json.dumps(name)


_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _cannot(reason: str) -> ConfigError:
    """The error for a config layout the rewrite does not handle."""
    return ConfigError(
        "calibrate cannot rewrite the weights of this config in place",
        [Problem(reason, "groups", "write the groups in block style (`weight: 25`, `metrics: [a, b]`)")],
    )
