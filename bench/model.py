"""The model both references implement, as bench/health.yaml defines it, and the check that
a config is that model (a reference hand-written for one config must refuse any other).

Shared by reference_duckdb.py and reference_polars.py, which import it by its plain name
(bench/ is first on sys.path when they run as scripts or are loaded by engines.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parent / "health.yaml"

MODEL: dict[str, dict[str, Any]] = {
    "logins_30d": {"source": "usage", "agg": "count", "where": "event == 'login'", "window": "30d"}
    | {"missing": {"fill": 0}},
    "logins_per_seat": {"expr": "logins_30d / seats"},
    "active_users_30d": {"source": "usage", "agg": "nunique", "field": "user_id", "window": "30d"},
    "features_30d": {"source": "usage", "agg": "nunique", "field": "event", "where": "event != 'login'"}
    | {"window": "30d", "missing": {"fill": 0}},
    "logins_growth": {"source": "usage", "agg": "growth", "of": {"agg": "count"}, "where": "event == 'login'"}
    | {"window": "30d"},
    "days_since_login": {"source": "usage", "agg": "days_since", "where": "event == 'login'"},
    "usage_seconds_30d": {"source": "usage", "agg": "sum", "field": "duration_s", "window": "30d"},
    "tickets_30d": {"source": "tickets", "agg": "count", "window": "30d", "missing": {"fill": 0}},
    "urgent_share_90d": {"source": "tickets", "agg": "share", "of_rows": "priority in ['high', 'urgent']"}
    | {"window": "90d"},
    "median_resolution_90d": {"source": "tickets", "agg": "median", "field": "resolution_hours", "window": "90d"},
    "csat_90d": {"source": "tickets", "agg": "share", "where": "satisfaction in ['good', 'bad']"}
    | {"of_rows": "satisfaction == 'good'", "window": "90d"},
    "nps_180d": {"source": "nps", "agg": "nps", "field": "score", "window": "180d"},
    "arr_size": {"source": "accounts", "agg": "value", "field": "arr"},
    "seat_count": {"source": "accounts", "agg": "value", "field": "seats"},
    "onboarding_pct": {"source": "accounts", "agg": "value", "field": "onboarding_pct"},
}
NOT_AGGREGATION = frozenset({"label", "scale", "kind"})  # metric keys that do not change the raw value
TABLE_OF_SOURCE = {"accounts": "accounts", "usage": "events", "tickets": "tickets", "nps": "nps"}
SOURCE_SHAPE = {  # key and time column of each source, as the model reads them
    "accounts": ("account_id", None),
    "usage": ("account_id", "timestamp"),
    "tickets": ("account_id", "created_at"),
    "nps": ("account_id", "responded_at"),
}


def load_model(config_path: Path, implementation: str) -> dict[str, Any]:
    """The config as plain data, checked to be the model `implementation` (a file name) implements."""
    config: dict[str, Any] = yaml.safe_load(config_path.read_text())
    check_model(config, implementation)
    return config


def check_model(config: dict[str, Any], implementation: str) -> None:
    """ValueError unless the config's metrics, sources and accounts are those written here."""
    metrics: dict[str, dict[str, Any]] = config["metrics"]
    problems = [f"metric {name!r} is not implemented" for name in metrics if name not in MODEL]
    problems += [f"metric {name!r} is missing from the config" for name in MODEL if name not in metrics]
    for name, metric in metrics.items():
        shape = {k: v for k, v in metric.items() if k not in NOT_AGGREGATION}
        if name in MODEL and shape != MODEL[name]:
            problems.append(f"metric {name!r} is {shape}, this reference computes {MODEL[name]}")
        if metric.get("direction", "higher_is_better") != "higher_is_better":
            problems.append(f"metric {name!r}: direction is not implemented")
        method = metric.get("scale", {}).get("method", "percentile")
        if method not in ("linear", "bands", "percentile"):
            problems.append(f"metric {name!r}: scale method {method} is not implemented")
    for name, (key, time) in SOURCE_SHAPE.items():
        source = config["sources"].get(name, {})
        if (source.get("key"), source.get("time")) != (key, time):
            problems.append(f"source {name!r} must have key {key!r} and time {time!r}")
        if Path(str(source.get("path", ""))).stem != TABLE_OF_SOURCE[name]:
            problems.append(f"source {name!r} must read the {TABLE_OF_SOURCE[name]} table")
        extra = sorted(set(source) - {"path", "key", "time", "types"})
        if extra:
            problems.append(f"source {name!r}: {', '.join(extra)} not implemented (default reading only)")
    if config["accounts"]["source"] != "accounts" or config.get("profiles") or config.get("overrides"):
        problems.append("the spine must be source 'accounts', without profiles or overrides")
    if config.get("score", {}).get("method", "weights") != "weights":
        problems.append("only score.method weights is implemented")
    if problems:
        raise ValueError(f"the config is not the model {implementation} implements:\n- " + "\n- ".join(problems))


def reference_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The command line both references take: --data DIR --format parquet|csv --as-of DATE
    [--config YAML] --out FILE (one whole timed run: read, score, write Parquet)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="folder of accounts/events/tickets/nps files")
    parser.add_argument("--format", choices=("parquet", "csv"), required=True)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--config", type=Path, default=CONFIG, help="the model's YAML (default bench/health.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    return parser.parse_args(argv)
