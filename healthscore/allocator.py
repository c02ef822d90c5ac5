"""How the command asks glibc's malloc to keep the memory it frees, for reuse, Arrow to
allocate from jemalloc (`arrow_on_jemalloc`), OpenBLAS to keep to one thread and numpy to
leave its arrays in small pages (`numpy_settings`).

By default glibc hands each block of 32 MiB or more (a column of a few million rows) its
own mapping and returns it to the kernel once freed; the next such block is fresh pages,
which the kernel must zero on first touch. A run builds and drops many such arrays, so at
a million accounts and 50M events it touched about 15 GiB of fresh pages for a peak of
4.4 GiB, and a quarter of its CPU time was the kernel's (on a 2-core VM: L Parquet
29.7-32.7 s -> 27.6-29.2 s, peak RSS 4.4 -> 4.8 GiB). Kept, freed memory is reused, so the
run touches far fewer fresh pages (9 GiB at L, the rest being Arrow's own allocator).
Only the command does this (it exits when done); importing the library changes nothing,
and a user's own `MALLOC_*` settings or glibc tunables win. Arrow's allocator is chosen by
each command of the command line as its work starts; a user's ARROW_DEFAULT_MEMORY_POOL wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # mallopt's parameters, from glibc's malloc.h
KEPT_FREE = 2**31 - 1  # free memory at the heap's top kept, not returned (mallopt takes an int)
TOP_PAD = 64 << 20  # the heap grows 64 MiB at a time beyond what a request needs
OWN_SETTINGS = ("MALLOC_", "GLIBC_TUNABLES")  # environment variables by which a user tunes malloc


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve large blocks from its heap and never shrink it; True when
    done, False where the C library is not glibc or the environment already tunes malloc."""
    if not _glibc():
        return False
    if any(name.startswith(OWN_SETTINGS) for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, KEPT_FREE), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(param, value) == 1 for param, value in settings)


ARROW_POOL_SETTING = "ARROW_DEFAULT_MEMORY_POOL"  # by which a user picks Arrow's allocator


def arrow_on_jemalloc() -> bool:
    """Have Arrow allocate from jemalloc rather than its default, mimalloc; True when done,
    False where this pyarrow is built without jemalloc or the user chose Arrow's allocator
    (ARROW_DEFAULT_MEMORY_POOL). mimalloc hands freed memory back to the kernel soon after,
    so the next column comes as fresh pages the kernel must zero: on this project's 2-core
    VM, jemalloc took whole runs from 4.96-5.89 s to 4.80-4.95 s at 10M CSV events, and at
    50M Parquet events from 24.0-24.5 s to 22.1-22.4 s in less memory (4.25 against 4.5-4.8
    GiB); equal at 1M. Imports pyarrow: for commands that read data, not for help."""
    if os.environ.get(ARROW_POOL_SETTING):
        return False
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # built without it (pyarrow's docs): Arrow's default stays
        return False
    pa.set_memory_pool(pool)
    return True


BLAS_SETTINGS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")  # OpenBLAS's, a user's
HUGE_PAGES_SETTING = "NUMPY_MADVISE_HUGEPAGE"


def numpy_settings() -> list[str]:
    """Settings numpy reads as it loads, unless a user set them (or numpy is already loaded);
    the names of those set:
    - OpenBLAS keeps to one thread (OPENBLAS_NUM_THREADS=1). The command's matrix products
      (accounts by metrics, by metrics by groups) take a thread milliseconds, but after each
      one OpenBLAS's other threads spin for work, taking a core from the run's own threads:
      0.2-0.3 CPU-s of M's 3.3 on 2 cores.
    - numpy does not ask for transparent huge pages for its arrays (NUMPY_MADVISE_HUGEPAGE=0).
      A run builds and drops arrays of tens of MB, each touched once or twice; the kernel's
      zeroing of huge pages for them cost more system time than it saved, and varied more:
      M CSV medians 3.85 s against 4.20 s (eight each), M Parquet 2.62 against 2.65 s
      with no slow outliers (2.72 s at most against 3.08 s)."""
    if "numpy" in sys.modules:
        return []
    chosen = []
    if not any(os.environ.get(name) for name in BLAS_SETTINGS):
        chosen.append(("OPENBLAS_NUM_THREADS", "1"))
    if not os.environ.get(HUGE_PAGES_SETTING):
        chosen.append((HUGE_PAGES_SETTING, "0"))
    os.environ.update(chosen)
    return [name for name, _ in chosen]


def _glibc() -> bool:
    """True when the C library is GNU's (it names itself `glibc 2.x`)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # not a name this system's confstr knows
        return False
