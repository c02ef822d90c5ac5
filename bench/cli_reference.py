"""One timed run of a reference engine, as a whole process: read, score, write Parquet.

.venv/bin/python bench/cli_reference.py --engine duckdb --scale S --format csv --out /tmp/x.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engines import REFERENCES, reference_scores


def main(argv: list[str] | None = None) -> int:
    """Score one scale and format with bench/reference_<engine>.py and write the scores to --out."""
    parser = argparse.ArgumentParser(description="one timed run of a reference engine")
    parser.add_argument("--engine", choices=REFERENCES, required=True)
    parser.add_argument("--scale", required=True)
    parser.add_argument("--format", choices=("parquet", "csv"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    reference_scores(args.engine, args.scale, args.format).to_parquet(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
