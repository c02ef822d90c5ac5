"""Benchmark healthscore against DuckDB and Polars on the same model and data.

    .venv/bin/python bench/run.py --scale S --format parquet [--runs 3]
    make bench SCALE=S FORMAT=parquet

1. Generates bench/data/<scale>/ if needed (bench/generate.py) and writes the model's
   copy for the format (bench/data/<scale>/health-<format>.yaml).
2. Checks agreement: healthscore (the library) and each reference implementation
   (bench/reference_duckdb.py, bench/reference_polars.py) score the data in this
   process; every column both have must agree to 1e-6 (NaN only where both are NaN).
   Any disagreement prints the worst accounts and exits 1; nothing is timed.
3. Times each engine as a whole process (read, score, write a Parquet of the scores),
   `--runs` times round-robin, plus the read-only floor (pyarrow reading every input):
   wall time and peak RSS of each child (`os.wait4` in bench/measure.py).
4. Prints a table and writes bench/results/<scale>-<format>.json.

Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from engines import (
    BENCH,
    HEALTH,
    REFERENCES,
    RESULTS,
    config_copy,
    data_dir,
    healthscore_scores,
    reference_path,
    reference_scores,
)
from generate import AS_OF, SCALES, generate
from rich.console import Console
from rich.table import Table

TOLERANCE = 1e-6
WORST = 10
ENGINES = ("healthscore", "healthscore-ibis", *REFERENCES, "floor")
LABELS = {
    "healthscore": "healthscore",
    "healthscore-ibis": "healthscore, engine ibis",
    "duckdb": "DuckDB",
    "polars": "Polars",
    "floor": "pyarrow read floor",
}
PACKAGES = ("healthscore", "pandas", "pyarrow", "numpy", "pydantic", "duckdb", "polars")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# --- agreement -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDiff:
    """How one column of a reference differs from healthscore's."""

    column: str
    max_abs_diff: float
    nan_mismatches: int

    @property
    def agrees(self) -> bool:
        """Within tolerance everywhere, with NaN in the same places."""
        return self.nan_mismatches == 0 and self.max_abs_diff <= TOLERANCE


@dataclass
class Agreement:
    """The comparison of one reference's scores with healthscore's."""

    engine: str
    status: str  # "agrees", "disagrees", "missing" or "error: ..."
    columns: list[ColumnDiff] = field(default_factory=list)
    missing_accounts: int = 0
    extra_accounts: int = 0
    worst: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain data for the results file."""
        return {
            "status": self.status,
            "missing_accounts": self.missing_accounts,
            "extra_accounts": self.extra_accounts,
            "columns": {
                c.column: {"max_abs_diff": c.max_abs_diff, "nan_mismatches": c.nan_mismatches} for c in self.columns
            },
        }


def compare(engine: str, ours: pd.DataFrame, theirs: pd.DataFrame) -> Agreement:
    """Compare every column `theirs` shares with `ours`, over the accounts both have.

    `theirs` must have the health score and every metric score; coverage and raw values
    are compared when present.
    """
    required = [c for c in ours.columns if c == HEALTH or str(c).endswith("_score")]
    absent = [c for c in required if c not in theirs.columns]
    if absent:
        return Agreement(engine, f"error: the reference's frame lacks {', '.join(absent)}")
    shared = [c for c in ours.columns if c in theirs.columns]
    common = ours.index.intersection(theirs.index)
    mine = ours.loc[common, shared].astype("float64")
    other = theirs.loc[common, shared].apply(pd.to_numeric, errors="coerce").astype("float64")
    a, b = mine.to_numpy(), other.to_numpy()
    nan_mismatch = np.isnan(a) != np.isnan(b)
    diff = np.where(nan_mismatch, np.inf, np.nan_to_num(np.abs(a - b), nan=0.0))
    columns = [
        ColumnDiff(c, float(np.max(diff[:, i], initial=0.0)), int(nan_mismatch[:, i].sum()))
        for i, c in enumerate(shared)
    ]
    agreement = Agreement(
        engine,
        "agrees",
        columns,
        missing_accounts=len(ours.index.difference(theirs.index)),
        extra_accounts=len(theirs.index.difference(ours.index)),
    )
    bad = [i for i, c in enumerate(columns) if not c.agrees]
    if bad or agreement.missing_accounts or agreement.extra_accounts:
        agreement.status = "disagrees"
        agreement.worst = worst_accounts(common, shared, a, b, diff, bad)
    return agreement


def worst_accounts(
    index: pd.Index, columns: list[str], a: np.ndarray, b: np.ndarray, diff: np.ndarray, bad: list[int]
) -> pd.DataFrame:
    """The accounts with the largest differences in the disagreeing columns, worst first."""
    rows = []
    for i in bad:
        order = np.argsort(-diff[:, i], kind="stable")[:WORST]
        rows += [
            {
                "column": columns[i],
                "account_id": index[j],
                "healthscore": a[j, i],
                "reference": b[j, i],
                "diff": diff[j, i],
            }
            for j in order
            if diff[j, i] > TOLERANCE
        ]
    if not rows:  # only the account sets differ
        return pd.DataFrame(columns=["column", "account_id", "healthscore", "reference", "diff"])
    return pd.DataFrame(rows).sort_values("diff", ascending=False, kind="stable").head(3 * WORST)


def check_agreement(
    scale: str, fmt: str, config: Path, engines: list[str], ibis_config: Path | None = None, pandas_engine: bool = True
) -> dict[str, Agreement]:
    """Each reference engine's (and healthscore's ibis engine's) agreement with healthscore on one
    scale and format."""
    started = time.perf_counter()
    if pandas_engine or ibis_config is None:
        ours = healthscore_scores(config)
        console.print(f"healthscore (library): {len(ours):,} accounts scored in {time.perf_counter() - started:.1f}s")
    else:  # at L the in-memory engine does not fit: the ibis engine is the one the references must match
        ours = healthscore_scores(ibis_config)
        seconds = time.perf_counter() - started
        console.print(f"healthscore, engine ibis (library): {len(ours):,} accounts in {seconds:.1f}s")
        ibis_config = None
    results = {}
    if ibis_config is not None:
        started = time.perf_counter()
        results["healthscore-ibis"] = compare("healthscore-ibis", ours, healthscore_scores(ibis_config))
        console.print(f"healthscore, engine ibis: scored in {time.perf_counter() - started:.1f}s")
    for engine in engines:
        if not reference_path(engine).is_file():
            results[engine] = Agreement(engine, "missing")
            continue
        started = time.perf_counter()
        try:
            theirs = reference_scores(engine, scale, fmt)
        except Exception as exc:  # a reference's bug must not hide behind a traceback of ours
            results[engine] = Agreement(engine, f"error: {type(exc).__name__}: {exc}")
            continue
        results[engine] = compare(engine, ours, theirs)
        console.print(f"{LABELS[engine]}: scored in {time.perf_counter() - started:.1f}s, {results[engine].status}")
    return results


def agreement_table(results: dict[str, Agreement]) -> Table:
    """Per compared column, per engine: the largest absolute difference and the NaN mismatches."""
    table = Table(title=f"Agreement with healthscore (tolerance {TOLERANCE:g})", title_justify="left")
    table.add_column("column")
    for engine in results:
        table.add_column(f"{LABELS[engine]} max |diff|", justify="right")
        table.add_column("NaN mismatches", justify="right")
    if not any(r.columns for r in results.values()):
        table.add_row("-", *[cell for r in results.values() for cell in (r.status, "")])
        return table
    diffs = {engine: {c.column: c for c in r.columns} for engine, r in results.items()}
    names = list(dict.fromkeys(c.column for r in results.values() for c in r.columns))
    for name in names:
        cells = []
        for engine, result in results.items():
            diff = diffs[engine].get(name)
            if diff is None:
                cells += [result.status if not result.columns else "-", ""]
            else:
                mark = "" if diff.agrees else " [bold red]NO[/]"
                cells += [f"{diff.max_abs_diff:.1e}{mark}", f"{diff.nan_mismatches:,}"]
        table.add_row(name, *cells)
    accounts = [
        f"{r.missing_accounts:,} missing, {r.extra_accounts:,} extra" if r.columns else r.status
        for r in results.values()
    ]
    if any(r.missing_accounts or r.extra_accounts for r in results.values()):
        table.add_row("(accounts)", *[cell for a in accounts for cell in (a, "")])
    return table


# --- timing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One timed child process."""

    seconds: float
    cpu_seconds: float  # user + system
    peak_rss_mib: float


@dataclass
class Timing:
    """Every run of one engine, and their summary."""

    engine: str
    status: str  # "timed", "reference missing", "not timed: ..." or "failed: ..."
    runs: list[Run] = field(default_factory=list)

    @property
    def median_s(self) -> float | None:
        """Median wall time, or None when not timed."""
        return statistics.median(r.seconds for r in self.runs) if self.runs else None

    @property
    def min_s(self) -> float | None:
        """Fastest wall time, or None when not timed."""
        return min(r.seconds for r in self.runs) if self.runs else None

    @property
    def median_cpu_s(self) -> float | None:
        """Median CPU time (user + system), or None when not timed."""
        return statistics.median(r.cpu_seconds for r in self.runs) if self.runs else None

    @property
    def peak_rss_mib(self) -> float | None:
        """Largest peak resident set over the runs, or None when not timed."""
        return max(r.peak_rss_mib for r in self.runs) if self.runs else None

    def to_dict(self) -> dict[str, object]:
        """Plain data for the results file."""
        return {
            "status": self.status,
            "runs": [asdict(r) for r in self.runs],
            "median_s": self.median_s,
            "min_s": self.min_s,
            "median_cpu_s": self.median_cpu_s,
            "peak_rss_mib": self.peak_rss_mib,
        }


def command(engine: str, scale: str, fmt: str, config: Path, out: Path) -> list[str]:
    """The command line of one timed run; each writes its scores to `out` (the floor writes nothing)."""
    python = sys.executable
    if engine == "healthscore":
        return [python, "-m", "healthscore", "score", "-c", str(config), "-o", str(out), "-q"]
    if engine == "healthscore-ibis":
        ibis = config.with_name(f"{config.stem}-ibis.yaml")
        return [python, "-m", "healthscore", "score", "-c", str(ibis), "-o", str(out), "-q"]
    if engine == "floor":
        return [python, str(BENCH / "cli_floor.py"), "--scale", scale, "--format", fmt]
    # the reference's own entry point: no pandas import, it writes Parquet with its engine
    return [
        python,
        str(BENCH / f"reference_{engine}.py"),
        "--data",
        str(data_dir(scale)),
        "--format",
        fmt,
        "--as-of",
        AS_OF.isoformat(),
        "--config",
        str(config),
        "--out",
        str(out),
    ]


def time_process(argv: list[str], log: Path) -> tuple[Run, int]:
    """Run one child to completion through bench/measure.py: its wall time and peak RSS, and exit status."""
    launcher = [sys.executable, "-I", "-S", str(BENCH / "measure.py"), *argv]
    with log.open("wb") as err:
        done = subprocess.run(launcher, stdout=subprocess.PIPE, stderr=err, check=True)
    measured = json.loads(done.stdout)
    run = Run(
        round(measured["seconds"], 4), round(measured["cpu_seconds"], 4), round(measured["peak_rss_kib"] / 1024, 1)
    )
    return run, int(measured["exit"])


def time_engines(scale: str, fmt: str, config: Path, timings: dict[str, Timing], runs: int) -> None:
    """Time every engine whose status is "timed", round-robin, `runs` times each."""
    with tempfile.TemporaryDirectory(prefix="healthscore-bench-") as tmp:
        for i in range(runs):
            for engine, timing in timings.items():
                if timing.status != "timed":
                    continue
                out, log = Path(tmp) / f"{engine}.parquet", Path(tmp) / f"{engine}.log"
                run, code = time_process(command(engine, scale, fmt, config, out), log)
                if code != 0:
                    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                    timing.status = f"failed: exit {code}: {' | '.join(tail)}"
                    continue
                timing.runs.append(run)
                console.print(
                    f"  run {i + 1}/{runs} {LABELS[engine]:<20} {run.seconds:8.2f}s wall "
                    f"{run.cpu_seconds:8.2f}s CPU {run.peak_rss_mib:9.0f} MiB"
                )


def ratio(timings: dict[str, Timing], engine: str, base: str) -> float | None:
    """Median time of `engine` over median time of `base`, when both were timed."""
    if engine not in timings or base not in timings:
        return None
    a, b = timings[engine].median_s, timings[base].median_s
    return round(a / b, 2) if a is not None and b else None


def timing_table(scale: str, fmt: str, timings: dict[str, Timing], runs: int) -> Table:
    """Engine, median and fastest time, peak RSS and the ratios against DuckDB and Polars."""
    title = f"Scale {scale} ({fmt}), {runs} run(s) per engine, whole processes"
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("engine", "left"),
        ("median s", "right"),
        ("min s", "right"),
        ("CPU s", "right"),
        ("peak RSS MiB", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("vs DuckDB", justify="right")
    table.add_column("vs Polars", justify="right")
    table.add_column("status")

    def show(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for engine, t in timings.items():
        vs_duckdb, vs_polars = ratio(timings, engine, "duckdb"), ratio(timings, engine, "polars")
        table.add_row(
            LABELS[engine],
            show(t.median_s, ".2f"),
            show(t.min_s, ".2f"),
            show(t.median_cpu_s, ".2f"),
            show(t.peak_rss_mib, ",.0f"),
            show(vs_duckdb, ".2f") + ("x" if vs_duckdb is not None else ""),
            show(vs_polars, ".2f") + ("x" if vs_polars is not None else ""),
            "" if t.status == "timed" else t.status,
        )
    return table


# --- results -------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, object]:
    """The machine and software the figures were measured on."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(memory, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
    }


def write_results(path: Path, payload: dict[str, object]) -> None:
    """Write the results JSON atomically (a .tmp beside it, renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


def compile_package() -> None:
    """healthscore's modules compiled to bytecode before timing, as `pip install` does for
    an installed package. Under PYTHONDONTWRITEBYTECODE (set on the bench machine) nothing
    else writes it, and every timed run would compile ~16k lines from source again: about
    0.15 s of CPU per run, a tenth of an S run."""
    compileall.compile_dir(BENCH.parent / "healthscore", quiet=1)


def main(argv: list[str] | None = None) -> int:
    """Generate, check agreement, time, report; exit 1 on disagreement or a failed run."""
    parser = argparse.ArgumentParser(description="benchmark healthscore against DuckDB and Polars")
    parser.add_argument("--scale", choices=sorted(SCALES), default="S")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per engine (default 3)")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)} (default all)"
    )
    parser.add_argument(
        "--connection",
        default="duckdb://",
        help="the Ibis URL of the ibis engine's runs, e.g. 'duckdb://?memory_limit=2GB' (default duckdb://)",
    )
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown or args.runs < 1:
        parser.error(f"unknown engine(s): {', '.join(unknown)}" if unknown else "--runs must be at least 1")
    scale, fmt = args.scale, args.format

    manifest = generate(scale, data_dir(scale))
    config = config_copy(scale, fmt)
    console.print(f"data: {data_dir(scale)} ({', '.join(f'{k} {v:,}' for k, v in manifest.rows.items())})")

    references = [e for e in REFERENCES if e in engines]
    ibis_config = config_copy(scale, fmt, args.connection) if "healthscore-ibis" in engines else None
    agreement = check_agreement(scale, fmt, config, references, ibis_config, "healthscore" in engines)
    console.print(agreement_table(agreement))
    failed = {e: a for e, a in agreement.items() if a.status not in ("agrees", "missing")}
    for engine, result in failed.items():
        console.print(f"[bold red]{LABELS[engine]} {result.status}[/]")
        if result.worst is not None and len(result.worst):
            console.print(result.worst.to_string(index=False))
    if failed:
        console.print("not timed: fix the disagreement first (bench/SCHEMA.md has the semantics)")
        return 1

    timings = {
        e: Timing(e, "reference missing" if e in agreement and agreement[e].status == "missing" else "timed")
        for e in ENGINES
        if e in engines
    }
    compile_package()
    time_engines(scale, fmt, config, timings, args.runs)
    console.print(timing_table(scale, fmt, timings, args.runs))

    payload: dict[str, object] = {
        "scale": scale,
        "format": fmt,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": {"seed": manifest.seed, "generator_version": manifest.version, "rows": manifest.rows},
        "runs_per_engine": args.runs,
        "machine": machine(),
        "agreement": {e: a.to_dict() for e, a in agreement.items()},
        "engines": {e: t.to_dict() for e, t in timings.items()},
        "ratios": {
            "healthscore/duckdb": ratio(timings, "healthscore", "duckdb"),
            "healthscore/polars": ratio(timings, "healthscore", "polars"),
            "healthscore/floor": ratio(timings, "healthscore", "floor"),
            "healthscore-ibis/duckdb": ratio(timings, "healthscore-ibis", "duckdb"),
            "healthscore-ibis/polars": ratio(timings, "healthscore-ibis", "polars"),
        },
    }
    path = RESULTS / f"{scale}-{fmt}.json"
    write_results(path, payload)
    console.print(f"wrote {path.relative_to(BENCH.parent)}")
    return 1 if any(t.status.startswith("failed") for t in timings.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
