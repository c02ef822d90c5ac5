"""What run.py compares: the benchmark config per scale and format, healthscore's scores
through the library, and the reference implementations loaded from bench/.

bench/ is not a package: run.py and the cli_*.py entries run as scripts, so this folder
is first on sys.path and these modules import each other by their plain names.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import yaml

BENCH = Path(__file__).resolve().parent
CONFIG = BENCH / "health.yaml"
DATA = BENCH / "data"
RESULTS = BENCH / "results"
REFERENCES = ("duckdb", "polars")
HEALTH = "health_score_unrounded"
COVERAGE_EPSILON = 1e-9  # as healthscore.scoring.finish_scores


def data_dir(scale: str) -> Path:
    """The folder of one scale's generated files."""
    return DATA / scale


def config_copy(scale: str, fmt: str, connection: str | None = None) -> Path:
    """Write bench/health.yaml with its sources pointing at one scale's files in one format; its path.

    The copy lives beside the data (`bench/data/<scale>/health-<fmt>.yaml`), so its source
    paths are plain file names such as `events.csv`. With `connection` (an Ibis URL such as
    `duckdb://?memory_limit=2GB`), the copy is `health-<fmt>-ibis.yaml` with `engine: ibis`.
    """
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    for source in config["sources"].values():
        source["path"] = f"{Path(source['path']).stem}.{fmt}"
    config["outputs"]["dir"] = f"out-{fmt}/"
    if connection is not None:
        config = {"engine": "ibis", "connection": connection, **config}
    path = data_dir(scale) / f"health-{fmt}{'-ibis' if connection is not None else ''}.yaml"
    header = f"# Written by bench/run.py from bench/health.yaml: scale {scale}, {fmt} inputs. Do not edit.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False, width=120))
    return path


def as_of() -> dt.date:
    """The as_of date of bench/health.yaml."""
    value = yaml.safe_load(CONFIG.read_text())["as_of"]
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def healthscore_scores(config_path: Path) -> pd.DataFrame:
    """healthscore's unrounded health score, coverage, metric scores and raw values, per account.

    Columns as bench/SCHEMA.md asks of a reference: `health_score_unrounded` (NaN below
    min_coverage), `coverage`, `<metric>_score` and `<metric>` (the raw value).
    """
    import healthscore

    config = healthscore.load_config(config_path)
    result = healthscore.run(config)
    assert result.scores is not None
    assert result.metric_scores is not None
    assert result.raw is not None
    coverage = result.scores.coverage
    scored = coverage + COVERAGE_EPSILON >= config.score.min_coverage
    frame = pd.DataFrame({HEALTH: result.scores.health.where(scored), "coverage": coverage})
    frame = frame.join(result.metric_scores.add_suffix("_score")).join(result.raw.apply(pd.to_numeric))
    frame.index = frame.index.astype("str")
    frame.index.name = "account_id"
    return frame


def reference_path(engine: str) -> Path:
    """Where a reference implementation lives (it may not exist yet)."""
    return BENCH / f"reference_{engine}.py"


def load_reference(engine: str) -> ModuleType | None:
    """The module bench/reference_<engine>.py, or None when that file does not exist."""
    path = reference_path(engine)
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"reference_{engine}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_scores(engine: str, scale: str, fmt: str) -> pd.DataFrame:
    """A reference's scores of one scale and format, indexed by account_id as text."""
    module = load_reference(engine)
    if module is None:
        raise FileNotFoundError(f"{reference_path(engine)} does not exist")
    frame: pd.DataFrame = module.scores(data_dir(scale), fmt, as_of())
    frame.index = frame.index.astype("str")
    frame.index.name = "account_id"
    return frame
