"""Run one command and print its wall time and peak RSS as JSON: the timing launcher of run.py.

    python -I -S bench/measure.py PROGRAM [ARG ...]

Why a launcher: Linux counts a child's peak RSS from its fork, before exec, so a child
forked by run.py (which holds healthscore's scores and DuckDB's and Polars' in memory
after the agreement check) would report at least run.py's size. This script imports only
the standard library (run with `-I -S`, about 10 MiB), so that floor stays negligible.
The child's stdout is discarded, its stderr is this process's stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    """Spawn `argv`, wait for it; print {"seconds", "cpu_seconds", "peak_rss_kib", "exit"} on stdout."""
    if not argv:
        print("usage: measure.py PROGRAM [ARG ...]", file=sys.stderr)
        return 2
    devnull = os.open(os.devnull, os.O_WRONLY)
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_kib": usage.ru_maxrss,
        "exit": os.waitstatus_to_exitcode(status),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
