"""The config objects: typed, frozen pydantic models mirroring CONFIG.md key for key.

Parsing and loading (YAML, error reports) live in `config.py`; cross-checks between
sections in `checks.py`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

DURATION_RE = re.compile(r"^(\d+)([dwmy])$")
DEFAULT_NA_VALUES = ("", "#N/A", "N/A", "n/a", "NULL", "null", "NaN", "nan")
POPULATION_METHODS = frozenset({"minmax", "percentile", "zscore", "log_minmax", "log_percentile", "log_zscore"})
AGGS_WITH_FIELD = frozenset({"sum", "mean", "median", "min", "max", "nunique", "first", "last", "nps", "value"})
AGGS_NEEDING_TIME = frozenset({"days_since", "first", "last", "growth"})
AGGS_WITHOUT_FIELD = {  # and what to do instead
    "count": "use `where` to filter rows",
    "days_since": "it uses the source's `time`; use `where` to filter rows",
    "share": "use `where` and `of_rows` to pick rows",
    "growth": "put the field in `of`",
}


def _check_duration(value: Any) -> str:
    """A window length: a whole number of days, weeks, months or years, like 30d."""
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    match = DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration like 30d, 12w, 6m or 1y, got {shown}")
    if int(match.group(1)) == 0:
        raise ValueError(f"a window of {value} holds no rows; give at least 1{match.group(2)}")
    return match.group(0)


Duration = Annotated[str, BeforeValidator(_check_duration)]
ColumnType = Literal["string", "int", "float", "bool", "date", "datetime"]
KeyTransform = Literal["strip", "lower", "upper", "salesforce18"]
Agg = Literal[
    "count",
    "sum",
    "mean",
    "median",
    "min",
    "max",
    "nunique",
    "first",
    "last",
    "days_since",
    "nps",
    "share",
    "growth",
    "value",
]
InnerAgg = Literal["count", "sum", "mean", "median", "min", "max", "nunique"]
ScaleMethod = Literal[
    "linear",
    "bands",
    "minmax",
    "percentile",
    "zscore",
    "log_minmax",
    "log_percentile",
    "log_zscore",
    "boolean",
    "categorical",
    "identity",
]
OutputFormat = Literal["csv", "parquet", "json", "jsonl", "xlsx"]
Engine = Literal["pandas", "ibis"]


class Model(BaseModel):
    """Base of every config object: unknown keys rejected, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(Model):
    """How to read one export (CONFIG.md `sources.<name>`): a file (`path`), or under
    `engine: ibis` a table of a database or lake (`table` on `connection`).

    `path` is "" for a table source (kept a string so that file code never sees None).
    """

    path: str = ""
    table: str | None = None  # a table name on `connection` (engine: ibis)
    connection: str | None = None  # an Ibis URL such as duckdb://lake.db (engine: ibis)
    key: str
    format: Literal["csv", "parquet", "xlsx", "jsonl"] | None = None
    preset: str | None = None
    time: str | None = None
    rename: dict[str, str] = Field(default_factory=dict)
    types: dict[str, ColumnType] = Field(default_factory=dict)
    key_transform: tuple[KeyTransform, ...] = ("strip",)
    encoding: str = "auto"
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    decimal: Literal[".", ","] = "."
    thousands: Literal[",", ".", " ", "'", "_"] | None = None
    na_values: tuple[str, ...] = DEFAULT_NA_VALUES
    date_format: str = "ISO8601"
    sheet: str | int | None = None
    skip_rows: int = Field(default=0, ge=0)
    header_rows: int = Field(default=1, ge=1, le=10)
    max_reject_share: float = Field(default=0.01, ge=0, le=1)
    dedupe: str | None = None

    @model_validator(mode="after")
    def _separators_differ(self) -> SourceConfig:
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError("decimal and thousands must be different characters")
        return self

    @model_validator(mode="after")
    def _path_or_table(self) -> SourceConfig:
        if self.path and self.table is not None:
            raise ValueError("give `path` (a file) or `table` (a table on `connection`), not both")
        if not self.path and self.table is None:
            raise ValueError(
                "a source needs `path` (a file, a glob or a Parquet folder), "
                "or `table` (a table on `connection`, with engine: ibis)"
            )
        if self.table is not None and not self.table.strip():
            raise ValueError("`table` is a table name, like events or analytics.events")
        return self


class AccountsConfig(Model):
    """The spine: the source with one row per account, and its pass-through columns."""

    source: str
    columns: tuple[str, ...] = ()
    name: str | None = None
    arr: str | None = None


class OfConfig(Model):
    """The inner aggregate of a `growth` metric."""

    agg: InnerAgg
    field: str | None = None

    @model_validator(mode="after")
    def _field_when_needed(self) -> OfConfig:
        if self.agg != "count" and self.field is None:
            raise ValueError(f"agg {self.agg} needs a `field`")
        if self.agg == "count" and self.field is not None:
            raise ValueError("agg count takes no `field` (it counts the rows)")
        return self


class Band(Model):
    """One band of the `bands` method: values up to `upto` (inclusive) get `score` points."""

    upto: float | None = None
    score: float = Field(ge=0, le=10)


class ScaleConfig(Model):
    """How a metric's raw value becomes a 0..10 score."""

    method: ScaleMethod = "percentile"
    bad: float | None = None
    good: float | None = None
    bands: tuple[Band, ...] | None = None
    clip: tuple[float, float] | None = None
    z: float = Field(default=2.0, gt=0)
    map: dict[str, float] | None = None

    @model_validator(mode="after")
    def _parameters_fit_method(self) -> ScaleConfig:
        m = self.method
        if m == "linear":
            if self.bad is None or self.good is None:
                raise ValueError("method linear needs both `bad` and `good`")
            if self.bad == self.good:
                raise ValueError("`bad` and `good` must differ")
        if m == "bands":
            _check_bands(self.bands)
        if m == "categorical" and not self.map:
            raise ValueError("method categorical needs a `map` of value: points")
        if self.map is not None and any(not 0 <= v <= 10 for v in self.map.values()):
            raise ValueError("`map` points must lie in 0..10")
        if self.clip is not None:
            lo, hi = self.clip
            if not 0 <= lo < hi <= 100:
                raise ValueError("`clip` takes two percentiles, 0 <= low < high <= 100")
            if m not in ("minmax", "log_minmax", "zscore", "log_zscore"):
                raise ValueError("`clip` applies to minmax and zscore methods only")
        return self


def _check_bands(bands: tuple[Band, ...] | None) -> None:
    if not bands:
        raise ValueError("method bands needs a list of `bands`")
    if bands[-1].upto is not None:
        raise ValueError("the last band must have no `upto` (it takes everything above)")
    uptos = [b.upto for b in bands[:-1]]
    if any(u is None for u in uptos):
        raise ValueError("every band but the last needs an `upto`")
    if any(b <= a for a, b in itertools.pairwise(uptos)):  # type: ignore[operator]
        raise ValueError("band `upto` values must increase")


class MissingConfig(Model):
    """What an account with no value for a metric gets: a raw `fill` value or a fixed `score`."""

    fill: float | bool | str | None = None
    score: float | None = Field(default=None, ge=0, le=10)

    @model_validator(mode="after")
    def _exactly_one(self) -> MissingConfig:
        if (self.fill is None) == (self.score is None):
            raise ValueError("give exactly one of `fill` (a raw value) or `score` (0..10)")
        return self


POLICY_NAME, POLICY_MAPPING = "policy-name", "policy-mapping"  # union tags, dropped from error paths


def _missing_kind(value: Any) -> str:
    return POLICY_MAPPING if isinstance(value, Mapping | MissingConfig) else POLICY_NAME


MissingPolicy = Annotated[
    Annotated[MissingConfig, Tag(POLICY_MAPPING)] | Annotated[Literal["redistribute", "neutral"], Tag(POLICY_NAME)],
    Discriminator(_missing_kind),
]


class MetricConfig(Model):
    """One number per account: an aggregate of a source, or an expression over other metrics."""

    source: str | None = None
    agg: Agg | None = None
    field: str | None = None
    where: str | None = None
    of_rows: str | None = None
    of: OfConfig | None = None
    window: Duration | None = None
    expr: str | None = None
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    missing: MissingPolicy = "redistribute"
    kind: Literal["leading", "lagging"] | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> MetricConfig:
        if self.expr is not None:
            extra = [
                k
                for k in ("source", "agg", "field", "where", "of_rows", "of", "window")
                if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(f"an `expr` metric takes no {', '.join(extra)}")
        elif self.source is None or self.agg is None:
            raise ValueError("a metric needs `source` and `agg`, or an `expr`")
        else:
            _check_agg_keys(self)
        if self.direction == "lower_is_better" and self.scale.method not in POPULATION_METHODS:
            how = _LOWER_IS_BETTER.get(self.scale.method, "turn the value around in an `expr` metric (e.g. 10 - x)")
            raise ValueError(f"direction applies to population methods only; with {self.scale.method}, {how}")
        return self

    @property
    def missing_score(self) -> float | None:
        """The fixed 0..10 score for accounts without a value, if the policy gives one."""
        if self.missing == "neutral":
            return 5.0
        return self.missing.score if isinstance(self.missing, MissingConfig) else None

    @property
    def missing_fill(self) -> float | bool | str | None:
        """The raw value used for accounts without a value, if the policy gives one."""
        return self.missing.fill if isinstance(self.missing, MissingConfig) else None


_LOWER_IS_BETTER = {  # how to say "lower is better" with the methods that take explicit points
    "linear": "swap `bad` and `good` (bad > good means lower is better)",
    "bands": "give the low `upto` bands the high scores",
    "categorical": "give the worse categories the lower points in `map`",
}


def _check_agg_keys(m: MetricConfig) -> None:
    agg = m.agg
    if agg in AGGS_WITH_FIELD and m.field is None:
        raise ValueError(f"agg {agg} needs a `field`")
    if agg in AGGS_WITHOUT_FIELD and m.field is not None:
        raise ValueError(f"agg {agg} takes no `field` ({AGGS_WITHOUT_FIELD[agg]})")
    if agg == "share" and m.of_rows is None:
        raise ValueError("agg share needs `of_rows` (the rows counted, among those of `where`)")
    if agg != "share" and m.of_rows is not None:
        raise ValueError("`of_rows` belongs to agg share")
    if agg == "growth" and (m.of is None or m.window is None):
        raise ValueError("agg growth needs `of` (the inner aggregate) and a `window`")
    if agg != "growth" and m.of is not None:
        raise ValueError("`of` belongs to agg growth")
    if agg == "value" and (m.window is not None or m.where is not None):
        raise ValueError("agg value reads one row per account: it takes no `window` or `where`")


class GroupConfig(Model):
    """Metrics weighted into one 0..100 group score."""

    label: str | None = None
    weight: float = Field(default=1.0, ge=0)
    metrics: dict[str, Annotated[float, Field(ge=0)]]

    @field_validator("metrics", mode="before", json_schema_input_type=dict[str, float] | list[str])
    @classmethod
    def _list_means_equal_weights(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not all(isinstance(name, str) for name in value):
                raise ValueError("a list of `metrics` holds metric names (text); for weights use a mapping")
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"metrics listed more than once: {', '.join(twice)}")
            return dict.fromkeys(value, 1.0)
        return value

    @field_validator("metrics")
    @classmethod
    def _positive_total(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("a group needs at least one metric")
        if sum(value.values()) <= 0:
            raise ValueError("metric weights must have a positive total")
        return value


class ScoreConfig(Model):
    """How metric and group scores become the 0..100 health score."""

    method: Literal["weights", "formula"] = "weights"
    formula: str | None = None
    min_coverage: float = Field(default=0.5, ge=0, le=1)


class SegmentConfig(Model):
    """A band of the health score; `max` is its inclusive upper bound."""

    name: str
    max: float = Field(ge=0, le=100)
    color: str = ""
    action: str = ""


DEFAULT_SEGMENTS = (
    SegmentConfig(name="Critical", max=40, color="red"),
    SegmentConfig(name="At-Risk", max=60, color="yellow"),
    SegmentConfig(name="Healthy", max=80, color="green"),
    SegmentConfig(name="Thriving", max=100, color="blue"),
)


class ProfileConfig(Model):
    """Other group weights for the accounts matching `when` (a condition on spine columns)."""

    when: str
    weights: dict[str, Annotated[float, Field(ge=0)]]


class OverridesConfig(Model):
    """A CSM override file: account_id, segment and/or score, reason, expires_on."""

    path: str


class HistoryConfig(Model):
    """Where per-as_of snapshots are kept for trends, and for how long."""

    path: str
    keep: Duration | None = None  # snapshots older than as_of - keep are pruned; None keeps all
    tolerance_30d: Duration = "7d"  # how far from as_of - 30 days the snapshot for score_change_30d may be


class OutputsConfig(Model):
    """Where and how the scored table is written."""

    dir: str = "out/"
    name: str = "health_scores"
    formats: tuple[OutputFormat, ...] = ("csv", "parquet")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value.startswith("."):
            raise ValueError("`name` is a file stem like health_scores, not a path")
        return value


class ChecksConfig(Model):
    """Data-quality thresholds: a run that breaks one exits 65 before any output is replaced."""

    max_unmatched_share: float | None = Field(default=None, ge=0, le=1)  # of a source's rows
    min_accounts: int | None = Field(default=None, ge=0)
    max_unscored_share: float | None = Field(default=None, ge=0, le=1)  # of the accounts
    max_rejected_share: float | None = Field(default=None, ge=0, le=1)  # of a source's rows, any reason
    fail_on_warnings: bool = False


class Config(Model):
    """A whole validated config file. Paths in it are relative to `base_dir`."""

    version: Literal[1]
    as_of: dt.date | None = None
    engine: Engine = "pandas"  # where sources are aggregated: in memory, or on an Ibis backend
    connection: str | None = None  # engine ibis: the default Ibis URL of sources (else in-memory DuckDB)
    accounts: AccountsConfig
    sources: dict[str, SourceConfig]
    metrics: dict[str, MetricConfig]
    groups: dict[str, GroupConfig] = Field(default_factory=dict)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    segments: tuple[SegmentConfig, ...] = DEFAULT_SEGMENTS
    segments_hysteresis: float = Field(default=0.0, ge=0, le=50)  # points past a band edge to change segment
    profiles: dict[str, ProfileConfig] = Field(default_factory=dict)
    overrides: OverridesConfig | None = None
    history: HistoryConfig | None = None
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _sha256: str = PrivateAttr(default="")
    _path: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the config are resolved against."""
        return self._base_dir

    @property
    def sha256(self) -> str:
        """The sha256 of the config file's bytes ('' for a config built in code)."""
        return self._sha256

    @property
    def path(self) -> Path | None:
        """The config file, when loaded from one."""
        return self._path

    def resolve(self, path: str) -> Path:
        """A config path made absolute against the config file's directory."""
        p = Path(path).expanduser()
        return Path(os.path.normpath(p if p.is_absolute() else self._base_dir / p))

    def group_label(self, name: str) -> str:
        """The human label of a group."""
        return self.groups[name].label or name

    def metric_label(self, name: str) -> str:
        """The human label of a metric."""
        return self.metrics[name].label or name
