"""Two threads for work that releases the GIL (Arrow's kernels, numpy's loops and sorts),
shared by the whole process: hashing text, reading a key's halves, counting bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_WORKERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="healthscore")


def on_two_threads(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`work` on each item, two at a time, results in the items' order; `work` must not
    itself use these threads (both could wait for work queued behind them)."""
    return begun(work, items)()


def begun(work: Callable[[T], R], items: Sequence[T]) -> Callable[[], list[R]]:
    """`on_two_threads`, begun now: the caller goes on with its own work meanwhile and calls
    what this returns for the results (waiting for any not done yet), in the items' order;
    the first error of `work` raises there. `work` may itself begin more work on the two
    threads (queued behind), as long as it never waits for it there."""
    futures = [_WORKERS.submit(work, item) for item in items]
    return lambda: [future.result() for future in futures]
