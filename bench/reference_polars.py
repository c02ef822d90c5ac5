"""Reference implementation of bench/health.yaml in Polars: one lazy query, no healthscore.

    .venv/bin/python bench/reference_polars.py --data bench/data/S --format parquet --as-of 2026-01-31 \\
        --config bench/data/S/health-parquet.yaml --out scores.parquet

The aggregations are hand-written for this model (bench/SCHEMA.md gives their exact
semantics, which are healthscore's); the config is read only for what is cheap to keep
generic: the scale anchors (linear `bad`/`good`, `bands`), the group and metric weights and
`score.min_coverage`. `check_model` refuses a config whose metrics differ from the ones
written here. It is deliberately independent of bench/reference_duckdb.py (no shared code),
so that the two references are two separate readings of the semantics.

How healthscore's rules map to Polars:

- inputs are read with explicit types; CSV with a full schema and healthscore's default
  `na_values` as null values (blank, `NULL`, `NaN`, ...); a NaN float is null too, as
  pandas skips it where Polars would sum and rank it;
- keys are stripped (`str.strip_chars()`: Unicode whitespace, nearly Python's `str.strip`) and
  rows whose key is then empty become null: dropped from the accounts, joining nothing
  elsewhere, as healthscore rejects them;
- times are `Datetime("us", "UTC")`: Parquet as written; CSV parsed from text with the one
  format bench/SCHEMA.md fixes (`2026-01-31 23:59:59Z`), strictly, so another form (an
  offset, fractions of a second) stops the run rather than being misread, where healthscore
  would accept any ISO 8601 time (2-4x faster than typing the column in the scan schema);
  compared with UTC literals, so `dt.date()` is the UTC calendar day; rows at or after the
  cutoff (midnight after as_of) are dropped before anything else, also before "does the
  account have rows in this source";
- windows are half-open `[cutoff - W, cutoff)`; every metric of a source comes from one
  `group_by().agg()` of filtered expressions;
- boolean sums are `UInt32` in Polars, so each is cast to `Int64` before any subtraction
  (promoters - detractors, current - previous logins would wrap around otherwise);
- missing vs zero: a source's aggregate row exists only for accounts with rows, so after
  the left join onto the accounts every metric of a source is null for accounts without
  rows; counts, `n_unique` of an empty selection and `sum` of one are already 0 inside the
  aggregation; `n_unique` would count null as a value, so `user_id` drops nulls first;
- `missing: {fill: 0}` is a `fill_null(0)` after the join, before the `expr` metric uses it;
- division by zero gives null (`pl.when(d != 0)`), as in healthscore's expressions and
  share/nps/growth, never inf or NaN;
- bands test `is_null()` first: `pl.when(null <= 1)` is not taken, so a missing value
  would otherwise fall through to the last band's score;
- percentile is `10 x (rank("average") - 1) / (n - 1)`, n the count of present values
  (rank leaves nulls null and ranks the others among themselves); 5 when n <= 1.

`main` (the timed run) writes the Parquet with Polars and never imports pandas; `scores`
returns a pandas frame for bench/run.py's agreement check.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:  # pandas only for `scores`: the timed `main` never imports it
    import pandas as pd

BENCH = Path(__file__).resolve().parent
CONFIG = BENCH / "health.yaml"
HEALTH = "health_score_unrounded"
COVERAGE_EPSILON = 1e-9  # as healthscore.scoring.finish_scores
NULL_TEXT = ["", "#N/A", "N/A", "n/a", "NULL", "null", "NaN", "nan"]  # healthscore's default na_values
UTC_TIME = pl.Datetime("us", "UTC")
CSV_TIME_FORMAT = "%Y-%m-%d %H:%M:%SZ"  # bench/SCHEMA.md: ISO 8601 with a space and Z, second precision

SCHEMAS: dict[str, dict[str, pl.DataType]] = {  # every column of each file, in file order
    "accounts": {
        "account_id": pl.String(),
        "name": pl.String(),
        "region": pl.String(),
        "tier": pl.String(),
        "arr": pl.Float64(),
        "seats": pl.Int64(),
        "onboarding_pct": pl.Float64(),
        "renewal_date": pl.String(),  # unused
    },
    "events": {
        "account_id": pl.String(),
        "user_id": pl.String(),
        "event": pl.String(),
        "timestamp": UTC_TIME,
        "duration_s": pl.Float64(),
    },
    "tickets": {
        "account_id": pl.String(),
        "ticket_id": pl.Int64(),
        "created_at": UTC_TIME,
        "priority": pl.String(),
        "status": pl.String(),
        "satisfaction": pl.String(),
        "resolution_hours": pl.Float64(),
    },
    "nps": {"account_id": pl.String(), "responded_at": UTC_TIME, "score": pl.Int64()},
}
USED: dict[str, list[str]] = {  # the columns this model reads
    "accounts": ["account_id", "arr", "seats", "onboarding_pct"],
    "events": ["account_id", "user_id", "event", "timestamp", "duration_s"],
    "tickets": ["account_id", "created_at", "priority", "satisfaction", "resolution_hours"],
    "nps": ["account_id", "responded_at", "score"],
}

# The metrics this file implements, as bench/health.yaml defines them (labels and scales aside).
from model import load_model, reference_args  # noqa: E402  (bench/ is on sys.path)


def scan(data_dir: Path, fmt: str, table: str) -> pl.LazyFrame:
    """One input with explicit types, its key stripped (an empty key becomes null).

    CSV times are read as text and parsed with the one format bench/SCHEMA.md fixes
    (`2026-01-31 23:59:59Z`), strictly: another form stops the run instead of being misread.
    That is two to four times faster (measured on S) than typing the column in the scan schema.
    """
    path = Path(data_dir) / f"{table}.{fmt}"
    if fmt == "parquet":
        frame = pl.scan_parquet(path)
    elif fmt == "csv":
        schema = {name: pl.String() if dtype == UTC_TIME else dtype for name, dtype in SCHEMAS[table].items()}
        frame = pl.scan_csv(path, schema=schema, null_values=NULL_TEXT, quote_char='"', has_header=True)
        times = [name for name, dtype in SCHEMAS[table].items() if dtype == UTC_TIME and name in USED[table]]
        frame = frame.with_columns(
            pl.col(times).str.to_datetime(CSV_TIME_FORMAT, time_unit="us", time_zone="UTC", strict=True)
        )
    else:
        raise ValueError(f"format must be parquet or csv, got {fmt!r}")
    key = pl.col("account_id").str.strip_chars()
    floats = [name for name in USED[table] if SCHEMAS[table][name] == pl.Float64()]
    return frame.select(USED[table]).with_columns(
        pl.when(key != "").then(key).alias("account_id"),
        pl.col(floats).fill_nan(None),  # pandas counts NaN as missing; Polars would sum and rank it
    )


def _count(condition: pl.Expr) -> pl.Expr:
    """Rows where `condition` holds (null counts as false), as Int64: a bool sum is UInt32."""
    return condition.sum().cast(pl.Int64)


def _divide(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator as Float64, null where the denominator is 0 or null."""
    return pl.when(denominator != 0).then(numerator.cast(pl.Float64) / denominator.cast(pl.Float64))


def raw_values(data_dir: Path, fmt: str, as_of: dt.date) -> pl.LazyFrame:
    """One row per account: account_id and the raw value of each metric (null when missing)."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    d30, d60 = cutoff - dt.timedelta(days=30), cutoff - dt.timedelta(days=60)
    d90, d180 = cutoff - dt.timedelta(days=90), cutoff - dt.timedelta(days=180)

    t = pl.col("timestamp")
    login = pl.col("event") == "login"
    usage = (
        scan(data_dir, fmt, "events")
        .filter(t < cutoff)
        .group_by("account_id")
        .agg(
            _count(login & (t >= d30)).alias("logins_30d"),
            _count(login & (t >= d60) & (t < d30)).alias("logins_previous_30d"),
            pl.col("user_id").filter(t >= d30).drop_nulls().n_unique().cast(pl.Int64).alias("active_users_30d"),
            pl.col("event").filter((pl.col("event") != "login") & (t >= d30)).n_unique().alias("features_30d"),
            t.filter(login).max().alias("last_login"),
            pl.col("duration_s").filter(t >= d30).sum().alias("usage_seconds_30d"),
        )
    )
    t = pl.col("created_at")
    in_90d = t >= d90
    support = (
        scan(data_dir, fmt, "tickets")
        .filter(t < cutoff)
        .group_by("account_id")
        .agg(
            _count(t >= d30).alias("tickets_30d"),
            _count(in_90d).alias("tickets_90d"),
            _count(in_90d & pl.col("priority").is_in(["high", "urgent"])).alias("urgent_90d"),
            pl.col("resolution_hours").filter(in_90d).median().alias("median_resolution_90d"),
            _count(in_90d & pl.col("satisfaction").is_in(["good", "bad"])).alias("rated_90d"),
            _count(in_90d & (pl.col("satisfaction") == "good")).alias("good_90d"),
        )
    )
    t = pl.col("responded_at")
    in_180d = t >= d180
    survey = (
        scan(data_dir, fmt, "nps")
        .filter(t < cutoff)
        .group_by("account_id")
        .agg(
            pl.col("score").filter(in_180d).count().cast(pl.Int64).alias("answered_180d"),
            _count(in_180d & (pl.col("score") >= 9)).alias("promoters_180d"),
            _count(in_180d & (pl.col("score") <= 6)).alias("detractors_180d"),
        )
    )
    accounts = scan(data_dir, fmt, "accounts").filter(pl.col("account_id").is_not_null())
    joined = (
        accounts.join(usage, on="account_id", how="left")
        .join(support, on="account_id", how="left")
        .join(survey, on="account_id", how="left")
    )
    logins = pl.col("logins_30d").fill_null(0).cast(pl.Float64)
    previous = pl.col("logins_previous_30d")
    return joined.select(
        "account_id",
        logins.alias("logins_30d"),
        _divide(logins, pl.col("seats")).alias("logins_per_seat"),
        pl.col("active_users_30d").cast(pl.Float64),
        pl.col("features_30d").fill_null(0).cast(pl.Float64),
        _divide(pl.col("logins_30d") - previous, previous.abs()).alias("logins_growth"),
        (pl.lit(as_of) - pl.col("last_login").dt.date()).dt.total_days().cast(pl.Float64).alias("days_since_login"),
        pl.col("usage_seconds_30d"),
        pl.col("tickets_30d").fill_null(0).cast(pl.Float64),
        _divide(pl.col("urgent_90d"), pl.col("tickets_90d")).alias("urgent_share_90d"),
        pl.col("median_resolution_90d"),
        _divide(pl.col("good_90d"), pl.col("rated_90d")).alias("csat_90d"),
        _divide(100.0 * (pl.col("promoters_180d") - pl.col("detractors_180d")), pl.col("answered_180d")).alias(
            "nps_180d"
        ),
        pl.col("arr").alias("arr_size"),
        pl.col("seats").cast(pl.Float64).alias("seat_count"),
        pl.col("onboarding_pct"),
    )


def scale(metric: str, spec: dict[str, Any]) -> pl.Expr:
    """The 0..10 score of one metric's raw value, by its scale method (null stays null)."""
    method = spec.get("method", "percentile")
    x = pl.col(metric)
    if method == "linear":
        bad, good = float(spec["bad"]), float(spec["good"])
        return (10.0 * (x - bad) / (good - bad)).clip(0.0, 10.0)
    if method == "bands":
        *lower, last = spec["bands"]
        chain: Any = pl.when(x.is_null()).then(None)
        for band in lower:
            chain = chain.when(x <= float(band["upto"])).then(float(band["score"]))
        banded: pl.Expr = chain.otherwise(float(last["score"]))
        return banded
    assert method == "percentile"
    n = x.count().cast(pl.Float64)
    return pl.when(x.is_null()).then(None).when(n <= 1).then(5.0).otherwise(10.0 * (x.rank("average") - 1.0) / (n - 1))


def weighting(config: dict[str, Any]) -> tuple[pl.Expr, pl.Expr]:
    """The health score (null when Unscored) and coverage over the `<metric>_score` columns."""
    numerator, denominator, coverage = pl.lit(0.0), pl.lit(0.0), pl.lit(0.0)
    groups: dict[str, dict[str, Any]] = config["groups"]
    all_weight = sum(float(g.get("weight", 1.0)) for g in groups.values())
    for group in groups.values():
        raw = group["metrics"]
        weights = {m: 1.0 for m in raw} if isinstance(raw, list) else {m: float(w) for m, w in raw.items()}
        total = sum(weights.values())
        present, points = pl.lit(0.0), pl.lit(0.0)
        for m, w in weights.items():
            score = pl.col(f"{m}_score")
            present = present + pl.when(score.is_null()).then(0.0).otherwise(w / total)
            points = points + score.fill_null(0.0) * (w / total)
        weight = float(group.get("weight", 1.0))
        numerator = numerator + pl.when(present > 0).then(weight * 10.0 * points / present).otherwise(0.0)
        denominator = denominator + pl.when(present > 0).then(weight).otherwise(0.0)
        coverage = coverage + (weight / all_weight) * present
    min_coverage = float(config.get("score", {}).get("min_coverage", 0.5))
    health = pl.when((denominator > 0) & (coverage + COVERAGE_EPSILON >= min_coverage)).then(numerator / denominator)
    return health.alias(HEALTH), coverage.alias("coverage")


def score_frame(data_dir: Path, fmt: str, as_of: dt.date, config_path: Path = CONFIG) -> pl.LazyFrame:
    """The whole model as one lazy query: account_id, the health score (null when Unscored),
    coverage, each metric's `<metric>_score` and raw value, sorted by account_id."""
    config = load_model(config_path, "bench/reference_polars.py")
    metrics: dict[str, dict[str, Any]] = config["metrics"]
    health, coverage = weighting(config)
    return (
        raw_values(Path(data_dir), fmt, as_of)
        .with_columns(scale(m, spec.get("scale", {})).alias(f"{m}_score") for m, spec in metrics.items())
        .select("account_id", health, coverage, *(f"{m}_score" for m in metrics), *metrics)
        .sort("account_id")
    )


def scores(data_dir: Path, fmt: str, as_of: dt.date, config_path: Path = CONFIG) -> pd.DataFrame:
    """One row per account (indexed by account_id): `health_score_unrounded` (NaN when Unscored),
    `coverage`, and per metric its `<metric>_score` (0..10, NaN when missing) and raw `<metric>`."""
    frame = score_frame(data_dir, fmt, as_of, config_path).collect().to_pandas()
    frame = frame.set_index("account_id")
    frame.index = frame.index.astype("str")
    return frame.astype("float64")


def main(argv: list[str] | None = None) -> int:
    """Score one data folder in one format and write the scores to a Parquet file (one process, no pandas)."""
    args = reference_args("bench/health.yaml computed with Polars", argv)
    score_frame(args.data, args.format, args.as_of, args.config).collect().write_parquet(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
