"""The read-only floor, as a whole process: pyarrow reads every input of one scale and format.

    .venv/bin/python bench/cli_floor.py --scale S --format parquet

No engine can score the data faster than it can read it; this is that bound, with
pyarrow's multithreaded readers (`parquet.read_table`, `csv.read_csv`) and nothing else.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq

TABLES = ("accounts", "events", "tickets", "nps")


def read_all(folder: Path, fmt: str) -> int:
    """Read the four tables of `folder` in format `fmt`; the total number of rows."""
    rows = 0
    for table in TABLES:
        path = folder / f"{table}.{fmt}"
        rows += (pq.read_table(path) if fmt == "parquet" else pcsv.read_csv(path)).num_rows
    return rows


def main(argv: list[str] | None = None) -> int:
    """Read one scale's inputs in one format."""
    parser = argparse.ArgumentParser(description="the pyarrow read floor")
    parser.add_argument("--scale", required=True)
    parser.add_argument("--format", choices=("parquet", "csv"), required=True)
    args = parser.parse_args(argv)
    read_all(Path(__file__).resolve().parent / "data" / args.scale, args.format)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
