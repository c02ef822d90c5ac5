"""Quick self-check of the reference implementations against healthscore (not part of tests/).

    .venv/bin/python bench/test_references.py --scale S --format parquet [--cache /tmp/hs_S_parquet.parquet]

Runs healthscore through the library on bench/data/<scale>/ (or loads its scores from
--cache, written on the first run), runs bench/reference_duckdb.py and
bench/reference_polars.py, and prints per column the max abs difference and the number of
accounts where exactly one side is NaN. Exits 1 unless every column agrees to 1e-6.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import yaml

BENCH = Path(__file__).resolve().parent
TOLERANCE = 1e-6


def _module(engine: str) -> ModuleType:
    path = BENCH / f"reference_{engine}.py"
    spec = importlib.util.spec_from_file_location(f"reference_{engine}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config_copy(scale: str, fmt: str, folder: Path) -> Path:
    """bench/health.yaml with its sources pointing at one scale's files in one format (absolute
    paths), written into `folder` so that nothing under bench/ is touched."""
    config = yaml.safe_load((BENCH / "health.yaml").read_text())
    for source in config["sources"].values():
        source["path"] = str(BENCH / "data" / scale / f"{Path(source['path']).stem}.{fmt}")
    path = folder / f"health-{scale}-{fmt}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, width=120))
    return path


def healthscore_frame(config_path: Path) -> pd.DataFrame:
    """healthscore's unrounded score (NaN below min_coverage), coverage, metric scores and raw values."""
    import healthscore

    config = healthscore.load_config(config_path)
    result = healthscore.run(config)
    assert result.scores is not None
    assert result.metric_scores is not None
    assert result.raw is not None
    coverage = result.scores.coverage
    scored = coverage + 1e-9 >= config.score.min_coverage
    frame = pd.DataFrame({"health_score_unrounded": result.scores.health.where(scored), "coverage": coverage})
    frame = frame.join(result.metric_scores.add_suffix("_score")).join(result.raw.apply(pd.to_numeric))
    frame.index = frame.index.astype("str")
    return frame


def compare(reference: pd.DataFrame, expected: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Per shared column: max abs difference and NaN mismatches; and whether all agree."""
    same_ids = set(reference.index) == set(expected.index)
    reference = reference.reindex(expected.index)
    rows = []
    for column in expected.columns:
        if column not in reference.columns:
            continue
        a, b = reference[column].to_numpy("float64"), expected[column].to_numpy("float64")
        one_nan = np.isnan(a) != np.isnan(b)
        both = ~np.isnan(a) & ~np.isnan(b)
        with np.errstate(invalid="ignore"):  # inf - inf: equal values, no difference
            gaps = np.where(a[both] == b[both], 0.0, np.abs(a[both] - b[both]))
        diff = float(np.max(gaps, initial=0.0))
        rows.append({"column": column, "max_abs_diff": diff, "nan_mismatches": int(one_nan.sum())})
    table = pd.DataFrame(rows).set_index("column")
    ok = same_ids and bool((table["max_abs_diff"] <= TOLERANCE).all() and (table["nan_mismatches"] == 0).all())
    return table, ok


def main(argv: list[str] | None = None) -> int:
    """Compare both references with healthscore on one scale and format."""
    parser = argparse.ArgumentParser(description="check the references against healthscore")
    parser.add_argument("--scale", default="S")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--cache", type=Path, help="Parquet of healthscore's scores (written if absent)")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "polars"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        config_path = _config_copy(args.scale, args.format, Path(folder))
        if args.cache is not None and args.cache.exists():
            expected = pd.read_parquet(args.cache)
        else:
            expected = healthscore_frame(config_path)
            if args.cache is not None:
                expected.to_parquet(args.cache)
        as_of = dt.date(2026, 1, 31)
        ok = True
        for engine in args.engines:
            start = time.perf_counter()
            frame = _module(engine).scores(BENCH / "data" / args.scale, args.format, as_of, config_path)
            seconds = time.perf_counter() - start
            table, agrees = compare(frame, expected)
            ok &= agrees
            print(f"== {engine} ({args.scale}, {args.format}): {seconds:.2f} s, {'agrees' if agrees else 'DISAGREES'}")
            print(table.to_string())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
