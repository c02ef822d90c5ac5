"""Reference implementation of bench/health.yaml in DuckDB SQL: one query of CTEs, no healthscore.

    .venv/bin/python bench/reference_duckdb.py --data bench/data/S --format parquet --as-of 2026-01-31 \\
        --config bench/data/S/health-parquet.yaml --out scores.parquet

The aggregations are hand-written for this model (bench/SCHEMA.md gives their exact
semantics, which are healthscore's); the config is read only for what is cheap to keep
generic: the scale anchors (linear `bad`/`good`, `bands`), the group and metric weights and
`score.min_coverage`. `check_model` refuses a config whose metrics differ from the ones
written here, so the reference cannot silently drift from the model it claims to compute.

How healthscore's rules map to SQL:

- inputs are read with explicit types; CSV with every column typed, no sniffing, and
  healthscore's default `na_values` as NULL strings (blank, `NULL`, `NaN`, ...); a NaN
  double is NULL too, as pandas skips it where DuckDB would sum and rank it;
- keys are stripped (`trim` of ASCII whitespace; Python's `str.strip` also strips Unicode
  spaces such as NBSP, which these exports never hold) and accounts rows whose key is then
  empty are dropped, as healthscore rejects them (other sources' NULL keys join nothing);
- times are read as TIMESTAMPTZ (any ISO 8601 offset in CSV) and compared in UTC
  (`SET TimeZone = 'UTC'`, so a cast to DATE is the UTC calendar day); rows at or after
  the cutoff (midnight after as_of) are dropped before anything else, also before "does
  the account have rows in this source";
- windows are half-open `[cutoff - W, cutoff)`, written as `FILTER (WHERE ...)`
  aggregates, one GROUP BY per source; usage (the big table) is grouped by its keys as
  found and the keys normalized afterwards, once per spelling (the per-row `trim` was the
  costliest step: 30% of the CPU at scale M): counts, sums and maxima merge over the
  spellings of one key, and the two distinct counts are taken over distinct
  (key spelling, value) pairs of the 30d rows only, so they stay exact;
- missing vs zero: a source's aggregate row exists only for accounts with rows, so after
  the LEFT JOIN onto the accounts every metric of a source is NULL for accounts without
  rows; count is already 0 for accounts with rows but none matching, and sum and the
  distinct counts get `coalesce(..., 0)` inside the source's CTEs (not after the join);
- `missing: {fill: 0}` is a coalesce after the join, before the `expr` metric uses it;
- division by zero gives NULL (`nullif`), as healthscore's expressions and share/nps/growth;
- linear scores are clamped with `CASE WHEN x IS NULL ...` around `greatest`/`least`,
  because `least(NULL, 10)` is 10 in DuckDB (NULLs are skipped), which would score a
  missing value 10;
- percentile is `10 x (average rank - 1) / (n - 1)` over the present values, the average
  rank being `rank()` (the lowest rank of the ties) plus (ties - 1) / 2; 5 when n <= 1.

`main` (the timed run) writes the Parquet with DuckDB's COPY and never imports pandas;
`scores` returns a pandas frame for bench/run.py's agreement check.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:  # pandas only for `scores`: the timed `main` never imports it
    import pandas as pd

BENCH = Path(__file__).resolve().parent
CONFIG = BENCH / "health.yaml"
HEALTH = "health_score_unrounded"
COVERAGE_EPSILON = 1e-9  # as healthscore.scoring.finish_scores
NULL_TEXT = ("", "#N/A", "N/A", "n/a", "NULL", "null", "NaN", "nan")  # healthscore's default na_values

COLUMNS: dict[str, dict[str, str]] = {  # the columns of each table this model reads, with their types
    "accounts": {"account_id": "VARCHAR", "arr": "DOUBLE", "seats": "BIGINT", "onboarding_pct": "DOUBLE"},
    "events": {"account_id": "VARCHAR", "user_id": "VARCHAR", "event": "VARCHAR", "timestamp": "TIMESTAMPTZ"}
    | {"duration_s": "DOUBLE"},
    "tickets": {"account_id": "VARCHAR", "created_at": "TIMESTAMPTZ", "priority": "VARCHAR"}
    | {"satisfaction": "VARCHAR", "resolution_hours": "DOUBLE"},
    "nps": {"account_id": "VARCHAR", "responded_at": "TIMESTAMPTZ", "score": "BIGINT"},
}
CSV_COLUMNS: dict[str, list[str]] = {  # every column of each CSV file, in file order
    "accounts": ["account_id", "name", "region", "tier", "arr", "seats", "onboarding_pct", "renewal_date"],
    "events": ["account_id", "user_id", "event", "timestamp", "duration_s"],
    "tickets": ["account_id", "ticket_id", "created_at", "priority", "status", "satisfaction", "resolution_hours"],
    "nps": ["account_id", "responded_at", "score"],
}

# The metrics this file implements, as bench/health.yaml defines them (labels and scales aside).
from model import load_model, reference_args  # noqa: E402  (bench/ is on sys.path)


def _ts(moment: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{moment:%Y-%m-%d %H:%M:%S}+00'"


def _number(value: float) -> str:
    """A float as a DOUBLE literal that reads back exactly."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def _source(data_dir: Path, fmt: str, table: str) -> str:
    """A table function reading one input with explicit types (CSV: every column typed, no sniffing)."""
    path = str(data_dir / f"{table}.{fmt}").replace("'", "''")
    wanted = COLUMNS[table]
    # pandas counts NaN as missing (sum, median and rank skip it); DuckDB sums and ranks it as a number.
    # Not `isnan(c)`: DuckDB 2.0 folds it to false from Parquet min/max statistics, which never count NaN.
    columns = ", ".join(
        f"CASE WHEN isfinite({c}) OR isinf({c}) THEN {c} END AS {c}" if t == "DOUBLE" else c for c, t in wanted.items()
    )
    if fmt == "parquet":
        return f"(SELECT {columns} FROM read_parquet('{path}'))"
    if fmt != "csv":
        raise ValueError(f"format must be parquet or csv, got {fmt!r}")
    types = ", ".join(f"'{c}': '{wanted.get(c, 'VARCHAR')}'" for c in CSV_COLUMNS[table])
    nulls = ", ".join(f"'{v}'" for v in NULL_TEXT)
    return (
        f"(SELECT {columns} FROM read_csv('{path}', columns = {{{types}}}, header = true, "
        f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', nullstr = [{nulls}]))"
    )


def _key(column: str = "account_id") -> str:
    """healthscore's key_transform strip: surrounding whitespace removed, empty keys missing."""
    return f"nullif(trim({column}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)), '')"


def _scale(metric: str, scale: dict[str, Any]) -> str:
    """The 0..10 score of one metric's raw value, by its scale method (NULL stays NULL)."""
    method = scale.get("method", "percentile")
    x = f'"{metric}"'
    if method == "linear":
        bad, good = float(scale["bad"]), float(scale["good"])
        value = f"10.0 * ({x} - {_number(bad)}) / {_number(good - bad)}"
        return f"CASE WHEN {x} IS NULL THEN NULL ELSE greatest(0.0, least(10.0, {value})) END"
    if method == "bands":
        *lower, last = scale["bands"]
        whens = " ".join(f"WHEN {x} <= {_number(b['upto'])} THEN {_number(b['score'])}" for b in lower)
        return f"CASE WHEN {x} IS NULL THEN NULL {whens} ELSE {_number(last['score'])} END"
    assert method == "percentile"
    n = f"count({x}) OVER ()"
    below = f"rank() OVER (PARTITION BY {x} IS NULL ORDER BY {x}) - 1"
    ties = f"count(*) OVER (PARTITION BY {x})"
    average_rank_minus_1 = f"({below}) + ({ties} - 1) / 2.0"
    return (
        f"CASE WHEN {x} IS NULL THEN NULL WHEN {n} <= 1 THEN 5.0 ELSE 10.0 * ({average_rank_minus_1}) / ({n} - 1) END"
    )


def _weighting(config: dict[str, Any], metrics: list[str]) -> tuple[list[str], list[str]]:
    """Per group, its present weight P_g and weighted score sum S_g (SELECT items of the `grouped`
    CTE), and the final health score and coverage (SELECT items over `grouped`)."""
    groups: dict[str, dict[str, Any]] = config["groups"]
    parts, group_weights = [], {}
    for g, group in groups.items():
        raw = group["metrics"]
        weights = {m: 1.0 for m in raw} if isinstance(raw, list) else {m: float(w) for m, w in raw.items()}
        total = sum(weights.values())
        present = " + ".join(
            f'CASE WHEN "{m}_score" IS NULL THEN 0.0 ELSE {_number(w / total)} END' for m, w in weights.items()
        )
        points = " + ".join(f'coalesce("{m}_score", 0.0) * {_number(w / total)}' for m, w in weights.items())
        parts += [f'{present} AS "P_{g}"', f'{points} AS "S_{g}"']
        group_weights[g] = float(group.get("weight", 1.0))
    all_weight = sum(group_weights.values())
    numerator = " + ".join(
        f'CASE WHEN "P_{g}" > 0 THEN {_number(w)} * 10.0 * "S_{g}" / "P_{g}" ELSE 0.0 END'
        for g, w in group_weights.items()
    )
    denominator = " + ".join(f'CASE WHEN "P_{g}" > 0 THEN {_number(w)} ELSE 0.0 END' for g, w in group_weights.items())
    coverage = " + ".join(f'{_number(w / all_weight)} * "P_{g}"' for g, w in group_weights.items())
    min_coverage = float(config.get("score", {}).get("min_coverage", 0.5))
    health = f"({numerator}) / nullif({denominator}, 0.0)"
    final = [
        f"CASE WHEN ({coverage}) + {COVERAGE_EPSILON!r} >= {_number(min_coverage)} THEN {health} END AS {HEALTH}",
        f"{coverage} AS coverage",
        *(f'"{m}_score"' for m in metrics),
        *(f'"{m}"' for m in metrics),
    ]
    return parts, final


def query(data_dir: Path, fmt: str, as_of: dt.date, config: dict[str, Any]) -> str:
    """The whole model as one SQL query: one row per account, the health score, coverage,
    each metric's score and raw value."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    d30, d60 = cutoff - dt.timedelta(days=30), cutoff - dt.timedelta(days=60)
    d90, d180 = cutoff - dt.timedelta(days=90), cutoff - dt.timedelta(days=180)
    metrics = list(config["metrics"])
    scored = ",\n    ".join(f'{_scale(m, config["metrics"][m].get("scale", {}))} AS "{m}_score"' for m in metrics)
    grouped, final = _weighting(config, metrics)
    return f"""
WITH
accounts AS (
    SELECT *
    FROM (SELECT {_key()} AS account_id, arr, seats, onboarding_pct FROM {_source(data_dir, fmt, "accounts")})
    WHERE account_id IS NOT NULL
),
events AS (  -- keys as found: normalizing 10M keys row by row is the costliest step, so it comes after grouping
    SELECT account_id AS raw_key, user_id, event, "timestamp" AS t, duration_s
    FROM {_source(data_dir, fmt, "events")}
    WHERE "timestamp" < {_ts(cutoff)}
),
usage_by_raw_key AS (
    SELECT
        raw_key,
        count(*) FILTER (WHERE event = 'login' AND t >= {_ts(d30)}) AS logins_30d,
        count(*) FILTER (WHERE event = 'login' AND t >= {_ts(d60)} AND t < {_ts(d30)}) AS logins_previous_30d,
        max(t) FILTER (WHERE event = 'login') AS last_login,
        sum(duration_s) FILTER (WHERE t >= {_ts(d30)}) AS usage_seconds_30d
    FROM events
    GROUP BY raw_key
),
usage_counts AS (  -- spellings of one key (' ACC-1', 'ACC-1') merged: counts and sums add up, maxima max
    SELECT
        {_key("raw_key")} AS account_id,
        CAST(sum(logins_30d) AS BIGINT) AS logins_30d,
        CAST(sum(logins_previous_30d) AS BIGINT) AS logins_previous_30d,
        max(last_login) AS last_login,
        coalesce(sum(usage_seconds_30d), 0.0) AS usage_seconds_30d
    FROM usage_by_raw_key
    GROUP BY 1
),
users_30d AS (  -- distinct counts do not add up over spellings: distinct pairs first, then count per key
    SELECT DISTINCT raw_key, user_id FROM events WHERE t >= {_ts(d30)}
),
features_30d AS (
    SELECT DISTINCT raw_key, event FROM events WHERE t >= {_ts(d30)} AND event <> 'login'
),
usage AS (  -- accounts with events but none in 30d have 0 distinct users and features, not NULL
    SELECT c.*, coalesce(u.active_users_30d, 0) AS active_users_30d, coalesce(f.features_30d, 0) AS features_30d
    FROM usage_counts AS c
    LEFT JOIN (
        SELECT {_key("raw_key")} AS account_id, count(DISTINCT user_id) AS active_users_30d FROM users_30d GROUP BY 1
    ) AS u USING (account_id)
    LEFT JOIN (
        SELECT {_key("raw_key")} AS account_id, count(DISTINCT event) AS features_30d FROM features_30d GROUP BY 1
    ) AS f USING (account_id)
),
tickets AS (
    SELECT {_key()} AS account_id, created_at AS t, priority, satisfaction, resolution_hours
    FROM {_source(data_dir, fmt, "tickets")}
    WHERE created_at < {_ts(cutoff)}
),
support AS (
    SELECT
        account_id,
        count(*) FILTER (WHERE t >= {_ts(d30)}) AS tickets_30d,
        count(*) FILTER (WHERE t >= {_ts(d90)}) AS tickets_90d,
        count(*) FILTER (WHERE t >= {_ts(d90)} AND priority IN ('high', 'urgent')) AS urgent_90d,
        median(resolution_hours) FILTER (WHERE t >= {_ts(d90)}) AS median_resolution_90d,
        count(*) FILTER (WHERE t >= {_ts(d90)} AND satisfaction IN ('good', 'bad')) AS rated_90d,
        count(*) FILTER (WHERE t >= {_ts(d90)} AND satisfaction = 'good') AS good_90d
    FROM tickets
    GROUP BY account_id
),
responses AS (
    SELECT {_key()} AS account_id, responded_at AS t, score
    FROM {_source(data_dir, fmt, "nps")}
    WHERE responded_at < {_ts(cutoff)}
),
survey AS (
    SELECT
        account_id,
        count(score) FILTER (WHERE t >= {_ts(d180)}) AS answered_180d,
        count(*) FILTER (WHERE t >= {_ts(d180)} AND score >= 9) AS promoters_180d,
        count(*) FILTER (WHERE t >= {_ts(d180)} AND score <= 6) AS detractors_180d
    FROM responses
    GROUP BY account_id
),
raw AS (
    SELECT
        a.account_id,
        CAST(coalesce(u.logins_30d, 0) AS DOUBLE) AS logins_30d,
        CAST(coalesce(u.logins_30d, 0) AS DOUBLE) / nullif(a.seats, 0) AS logins_per_seat,
        CAST(u.active_users_30d AS DOUBLE) AS active_users_30d,
        CAST(coalesce(u.features_30d, 0) AS DOUBLE) AS features_30d,
        CAST(u.logins_30d - u.logins_previous_30d AS DOUBLE) / abs(nullif(u.logins_previous_30d, 0))
            AS logins_growth,
        CAST(date_diff('day', CAST(u.last_login AS DATE), DATE '{as_of.isoformat()}') AS DOUBLE) AS days_since_login,
        u.usage_seconds_30d,
        CAST(coalesce(s.tickets_30d, 0) AS DOUBLE) AS tickets_30d,
        CAST(s.urgent_90d AS DOUBLE) / nullif(s.tickets_90d, 0) AS urgent_share_90d,
        s.median_resolution_90d,
        CAST(s.good_90d AS DOUBLE) / nullif(s.rated_90d, 0) AS csat_90d,
        100.0 * CAST(v.promoters_180d - v.detractors_180d AS DOUBLE) / nullif(v.answered_180d, 0) AS nps_180d,
        a.arr AS arr_size,
        CAST(a.seats AS DOUBLE) AS seat_count,
        a.onboarding_pct
    FROM accounts AS a
    LEFT JOIN usage AS u USING (account_id)
    LEFT JOIN support AS s USING (account_id)
    LEFT JOIN survey AS v USING (account_id)
),
scored AS (
    SELECT
    account_id,
    {scored},
    {", ".join(f'"{m}"' for m in metrics)}
    FROM raw
),
grouped AS (
    SELECT *, {", ".join(grouped)}
    FROM scored
)
SELECT account_id, {", ".join(final)}
FROM grouped
ORDER BY account_id
"""


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection that reads and compares times in UTC."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def scores(data_dir: Path, fmt: str, as_of: dt.date, config_path: Path = CONFIG) -> pd.DataFrame:
    """One row per account (indexed by account_id): `health_score_unrounded` (NaN when Unscored),
    `coverage`, and per metric its `<metric>_score` (0..10, NaN when missing) and raw `<metric>`."""
    config = load_model(config_path, "bench/reference_duckdb.py")
    with connect() as con:
        frame: pd.DataFrame = con.sql(query(Path(data_dir), fmt, as_of, config)).df()
    frame = frame.set_index("account_id")
    frame.index = frame.index.astype("str")
    return frame.astype("float64")


def write_scores(data_dir: Path, fmt: str, as_of: dt.date, config_path: Path, out: Path) -> None:
    """Compute the scores and write them (account_id and the columns of `scores`) to a Parquet file,
    all inside DuckDB."""
    config = load_model(config_path, "bench/reference_duckdb.py")
    target = str(out).replace("'", "''")
    with connect() as con:
        con.execute(f"COPY ({query(Path(data_dir), fmt, as_of, config)}) TO '{target}' (FORMAT parquet)")


def main(argv: list[str] | None = None) -> int:
    """Score one data folder in one format and write the scores to a Parquet file (one process, no pandas)."""
    args = reference_args("bench/health.yaml computed with DuckDB SQL", argv)
    write_scores(args.data, args.format, args.as_of, args.config, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
