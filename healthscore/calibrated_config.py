"""Writing a calibration into a copy of the config file, for `healthscore calibrate`.

The fitted weights go in place of the old ones, each with a note of what it was and of the
metric's beta and share, under a comment block saying where they came from
(`calibrated_text`). The rewrite is checked to load and to change the weights only; the
copy is written atomically beside the config, keeping its byte-order mark and line ends
(`write_calibrated`). `check_output` refuses an output that exists or would break the
config's relative paths.
"""

from __future__ import annotations

import codecs
import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthscore.config import Config, load_yaml, parse_config
from healthscore.config_edit import GroupEdit, number, rewrite_weights
from healthscore.errors import ConfigError, Problem, UsageError

if TYPE_CHECKING:
    from healthscore.calibrate import Calibration, MetricWeight


def group_edits(calibration: Calibration) -> dict[str, GroupEdit]:
    """Each group's new weights with the notes written beside them in the config."""
    fits = {m.metric: m for m in calibration.metrics}
    edits = {}
    for g in calibration.groups:
        note = f"was {number(g.old_weight)}%" + (f"; {g.flag}" if g.flag else "")
        notes = {m: _metric_note(fits[m], g.old_metrics[m], zeroed=bool(g.flag)) for m in g.new_metrics}
        edits[g.group] = GroupEdit(g.new_weight, note, dict(g.new_metrics), notes)
    return edits


def _metric_note(fit: MetricWeight, old: float, zeroed: bool) -> str:
    """`was 33.3% of the group; 8.3% -> 12.4% of the score; beta +0.210`, and the flag if any."""
    flag = f"{fit.flag.split(':')[0]}: its group weighs 0" if zeroed and fit.flag else fit.flag
    shares = f"{number(fit.old_share)}% -> {number(fit.new_share)}% of the score"
    text = f"was {number(old)}% of the group; {shares}; beta {fit.beta:+.3f}"
    return f"{text}, {flag}" if flag else text


def header_lines(calibration: Calibration, outcomes: str) -> list[str]:
    """The comment block written above `groups:`: where the weights came from, and how good they are."""
    c = calibration
    counts = f"{c.accounts} accounts with an outcome and a score, {c.churned} churned."
    return [
        f"weights fitted by `healthscore calibrate` to {outcomes}",
        f"as of {c.as_of.isoformat()}: {counts}" if c.as_of else counts,
        f"L2-regularized logistic regression on the 0..10 metric scores, lambda {c.lam:.3g}",
        f"chosen by {c.folds}-fold cross-validation. Cross-validated AUC (nested, same folds):",
        f"{c.cv_auc:.3f} with these weights, {c.cv_auc_current:.3f} with the previous ones.",
        "beta = the drop in churn log-odds per score point; a metric's share of the",
        "score follows max(beta, 0), so one with the wrong sign (beta < 0) gets 0.",
    ]


def calibrated_text(original: str, calibration: Calibration, outcomes: str, origin: str = "config") -> str:
    """The config text with the fitted weights, notes and header written in; checked to load
    and to differ from `original` in the weights only (ConfigError otherwise)."""
    try:
        new = rewrite_weights(original, group_edits(calibration), header_lines(calibration, outcomes))
    except ConfigError as exc:
        raise _unsafe(calibration, "; ".join(str(p) for p in exc.problems) or exc.message) from None
    expected = {g.group: (g.new_weight, g.new_metrics) for g in calibration.groups}
    try:
        before, after = load_yaml(original, origin), load_yaml(new, origin)
        written = parse_config(after, origin=origin)
    except ConfigError as exc:
        raise _unsafe(calibration, f"the rewritten config does not load: {exc}") from None
    if _without_weights(before) != _without_weights(after):
        raise _unsafe(calibration, "the rewrite changed more than the weights")
    got = {name: (g.weight, dict(g.metrics)) for name, g in written.groups.items()}
    if got != expected:
        raise _unsafe(calibration, "the rewritten weights are not the fitted ones (anchors or merge keys?)")
    return new


def _without_weights(data: Any) -> Any:
    """A parsed config with the group weights left out and each group's metrics as a list of names."""
    data = copy.deepcopy(data)
    for group in (data.get("groups") or {}).values():
        if isinstance(group, dict):
            group.pop("weight", None)
            group["metrics"] = list(group.get("metrics") or [])
    return data


def _unsafe(calibration: Calibration, reason: str) -> ConfigError:
    """The error when the weights cannot be written in place, with the weights to set by hand."""
    weights = "; ".join(
        f"{g.group}: weight {number(g.new_weight)}, metrics "
        + "{"
        + ", ".join(f"{m}: {number(w)}" for m, w in g.new_metrics.items())
        + "}"
        for g in calibration.groups
    )
    return ConfigError(
        "calibrate cannot rewrite the weights of this config in place",
        [Problem(reason, "groups", f"set the weights by hand: {weights}")],
    )


def check_output(config: Config, config_path: Path, output: Path, force: bool) -> None:
    """UsageError (2) when `output` exists and not `force` (the input config too), or when it is
    in another folder than the config whose relative input paths would then not resolve."""
    if output.exists() and not force:
        same = output.resolve() == config_path.resolve()
        what = "it is the input config" if same else "calibrate never overwrites a file"
        raise UsageError(f"{output} already exists", [Problem(what, str(output), "pass --force to overwrite it")])
    relative = [p for p in _input_paths(config) if not Path(p).expanduser().is_absolute()]
    if relative and output.resolve().parent != config_path.resolve().parent:
        raise UsageError(
            f"{output} is not in the folder of {config_path}",
            [
                Problem(
                    f"the config's paths ({', '.join(relative[:3])}) are relative to its own folder "
                    f"and would not resolve from {output.parent}",
                    str(output),
                    f"write it beside the config, e.g. -o {config_path.parent / 'calibrated.yaml'}",
                )
            ],
        )


def _input_paths(config: Config) -> list[str]:
    """The paths of the files a config reads: sources, overrides, history."""
    paths = [s.path for s in config.sources.values()]
    paths += [c.path for c in (config.overrides, config.history) if c is not None]
    return paths


def relative_to(path: Path, folder: Path) -> str:
    """`path` as seen from `folder` (as config paths are written), for the header."""
    return os.path.relpath(path.resolve(), folder.resolve())


def write_calibrated(config_path: Path, output: Path, calibration: Calibration, outcomes: Path) -> Path:
    """Write the calibrated copy of the config file to `output`, atomically, with the input's
    byte-order mark and line ends; returns `output`."""
    from healthscore.outputs import write_files

    raw = config_path.read_bytes()
    text = raw.decode("utf-8-sig")
    new = calibrated_text(text, calibration, relative_to(outcomes, output.parent), str(config_path))
    bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
    write_files({output: bom + new.encode("utf-8")})
    return output
