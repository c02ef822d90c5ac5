"""`engine: ibis` connections: the backends of one run, opened from URLs and shared.

`Backends` opens each connection URL once per run (duckdb://, pyspark://, any Ibis URL;
files without one share an in-memory DuckDB); `require_ibis` says how to install Ibis when
it is absent; `backend_call` turns a backend's own exception into a `DataError` naming the
source; `shown_url` masks passwords and secrets in messages and the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from healthscore.errors import ConfigError, DataError, HealthscoreError, InputMissingError, Problem
from healthscore.ibis_config import NOT_HERE, SCALE_EXTRA
from healthscore.models import Config

__all__ = ["FILE_COL", "MEMORY", "ROW_COL", "Backends", "backend_call", "require_ibis", "shown_url"]

MEMORY = "duckdb://"  # the connection of files when none is given: an in-memory DuckDB
FILE_COL, ROW_COL = "_hs_file", "_hs_row"  # where a row came from (DuckDB files only)

T = TypeVar("T")


def require_ibis() -> Any:
    """The ibis module; a ConfigError saying how to install it when it is absent."""
    try:
        import ibis
    except ImportError:
        raise ConfigError(SCALE_EXTRA, [Problem(SCALE_EXTRA, "engine", "or set engine: pandas")]) from None
    return ibis


def shown_url(url: str) -> str:
    """A connection URL without its password or secret query values, for messages and the manifest."""
    url = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"([?&][^=&]*(?:password|secret|token|key)[^=&]*=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


class Backends:
    """The Ibis connections of one run, opened on first use and shared by URL. Files without
    a connection share one in-memory DuckDB."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.open: dict[str, Any] = {}

    def get(self, url: str | None) -> Any:
        """The backend of `url` (None: the in-memory DuckDB)."""
        key = url or MEMORY
        if key not in self.open:
            self.open[key] = self.connect(key)
        return self.open[key]

    def connect(self, url: str) -> Any:
        """Open a connection. duckdb://FILE is relative to the config file and opened read-only;
        pyspark://MASTER builds a Spark session (see docs/engines.md); any other URL goes to
        `ibis.connect`."""
        ibis = require_ibis()
        scheme, _, rest = url.partition("://")
        try:
            if scheme == "duckdb":
                path, _, query = rest.partition("?")
                options = dict(parse_qsl(query))
                if path in ("", ":memory:"):
                    return ibis.duckdb.connect(**options)
                database = self.config.resolve(path)
                if not database.is_file():
                    raise InputMissingError(
                        f"DuckDB database not found: {database}",
                        [Problem(f"connection {url!r}", hint="duckdb://FILE is relative to the config file")],
                    )
                return ibis.duckdb.connect(str(database), read_only=True, **options)
            if scheme == "pyspark":
                return ibis.pyspark.connect(_spark_session(rest))
            return ibis.connect(url)
        except HealthscoreError:
            raise
        except ImportError as exc:
            raise ConfigError(
                f"connection {shown_url(url)!r} needs a package that is not installed: {exc.name}",
                [Problem(str(exc), "connection", f"pip install 'ibis-framework[{scheme}]'")],
            ) from None
        except Exception as exc:  # each backend has its own errors
            raise InputMissingError(
                f"cannot connect to {shown_url(url)}",
                [Problem(_first_line(exc), "connection", "check the URL, the credentials and the network")],
            ) from None


def _spark_session(rest: str) -> Any:
    """A Spark session for pyspark://MASTER?conf=value: MASTER like local[2], spark://host:7077
    or yarn; sc://host:15002 is Spark Connect (Databricks Connect); empty takes the default."""
    from pyspark.sql import SparkSession

    master, _, query = rest.partition("?")
    builder = SparkSession.builder.appName("healthscore")
    if master.startswith("sc://"):
        builder = builder.remote(master)
    elif master:
        builder = builder.master(master)
    for key, value in parse_qsl(query):
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def backend_call(what: str, source: str, fn: Callable[[], T]) -> T:
    """Run `fn`, a call on a backend; the backend's own errors become a DataError saying what
    it could not do for `source`."""
    try:
        return fn()
    except HealthscoreError:
        raise
    except Exception as exc:  # DuckDB, Spark and warehouses each raise their own errors
        if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower().replace("outofmemory", "out of memory"):
            raise HealthscoreError(  # not the data's fault: exit 1, saying what to change
                f"source {source!r}: the backend ran out of memory and could not {what}",
                [
                    Problem(
                        _first_line(exc),
                        f"sources.{source}",
                        "raise the connection's memory_limit, give it a temp_directory to spill to, or fewer threads",
                    )
                ],
            ) from None
        raise DataError(
            f"source {source!r}: the backend could not {what}",
            [Problem(_first_line(exc), f"sources.{source}", "check the data; " + NOT_HERE)],
        ) from None
