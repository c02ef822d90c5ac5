"""The command keeps the memory it frees (glibc's malloc), so large arrays reuse it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from healthscore import allocator, cli

# A child process allocates a 256 MiB array, frees it, and counts the page faults of a second
# one of the same size: with freed memory kept, the second reuses the first's pages.
REUSE = """
import resource, sys
import numpy as np
from healthscore.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
first = np.ones(32 << 20)
del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = np.ones(32 << 20)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_of_second_array(mode: str, **env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(allocator.OWN_SETTINGS)}
    out = subprocess.run(
        [sys.executable, "-c", REUSE, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


needs_glibc = pytest.mark.skipif(not allocator._glibc(), reason="the C library is not glibc")


@needs_glibc
def test_freed_memory_is_reused_without_new_page_faults() -> None:
    kept, reused = _faults_of_second_array("keep")
    not_kept, fresh = _faults_of_second_array("default")
    assert kept
    assert not not_kept
    assert fresh >= 64  # 256 MiB of fresh pages: at least 128 huge pages, or 65k small ones
    assert reused * 8 < fresh


@needs_glibc
def test_a_users_malloc_settings_win() -> None:
    kept, faults = _faults_of_second_array("keep", MALLOC_ARENA_MAX="2")
    assert not kept
    assert faults >= 64
    kept, _ = _faults_of_second_array("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=0")
    assert not kept


def test_nothing_is_set_where_the_c_library_is_not_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_glibc", lambda: False)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda _: pytest.fail("mallopt called"))
    assert allocator.keep_freed_memory() is False


def test_glibc_is_told_by_its_version_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.os, "confstr", lambda name: "glibc 2.36")
    assert allocator._glibc()
    monkeypatch.setattr(allocator.os, "confstr", lambda name: None)  # musl, for one
    assert not allocator._glibc()

    def unknown(name: str) -> str:
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(allocator.os, "confstr", unknown)
    assert not allocator._glibc()


def test_the_command_keeps_freed_memory_and_the_library_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("kept") or True)
    monkeypatch.setattr(cli, "_end", lambda code: sys.exit(code))  # not the test process's own end
    monkeypatch.setattr(sys, "argv", ["healthscore", "--version"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0
    assert calls == ["kept"]
    code = "import healthscore.allocator as a, unittest.mock as m\n"
    code += "with m.patch.object(a.ctypes, 'CDLL', side_effect=AssertionError('mallopt called')):\n"
    code += "    import healthscore.pipeline, healthscore.cli\n"
    subprocess.run([sys.executable, "-c", code], check=True)


# A child process: OpenBLAS's threads after a matrix product (the process's threads, all
# OpenBLAS's but the main one) and whether numpy asks for huge pages, with `numpy_settings`
# called first or not.
NUMPY = """
import os, sys
from healthscore.allocator import numpy_settings
if sys.argv[1] == "numpy first":
    import numpy
chosen = numpy_settings() if sys.argv[1] != "default" else []
import numpy as np
from numpy._core import multiarray
a = np.ones((2000, 16))
a.T @ a
print(",".join(chosen) or "-", len(os.listdir("/proc/self/task")), multiarray._set_madvise_hugepage(True))
"""
SETTINGS = (*allocator.BLAS_SETTINGS, allocator.HUGE_PAGES_SETTING)


def _numpy_as_set(mode: str, **env: str) -> tuple[list[str], int, bool]:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", NUMPY, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return [] if out[0] == "-" else out[0].split(","), int(out[1]), out[2] == "True"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2, reason="threads not countable")
def test_numpy_keeps_one_blas_thread_and_small_pages_unless_a_user_set_them() -> None:
    chosen, threads, huge = _numpy_as_set("set")
    assert (chosen, threads) == (["OPENBLAS_NUM_THREADS", allocator.HUGE_PAGES_SETTING], 1)
    assert not huge
    default = _numpy_as_set("default")
    assert default[1] > 1  # OpenBLAS's own threads, one per core
    huge_by_default = default[2]  # (where the kernel has transparent huge pages)
    chosen, threads, huge = _numpy_as_set("set", OMP_NUM_THREADS="2", NUMPY_MADVISE_HUGEPAGE="1")
    assert (chosen, threads, huge) == ([], 2, True)  # the user's win
    chosen, threads, huge = _numpy_as_set("numpy first")
    assert (chosen, threads, huge) == ([], default[1], huge_by_default)  # too late: numpy is loaded


def test_the_command_sets_numpy_up(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "numpy_settings", lambda: calls.append("one") or [])
    monkeypatch.setattr(cli, "_end", lambda code: sys.exit(code))
    monkeypatch.setattr(sys, "argv", ["healthscore", "--version"])
    with pytest.raises(SystemExit):
        cli.main()
    assert calls == ["one"]


def test_a_command_puts_arrow_on_jemalloc_unless_the_user_chose() -> None:
    """Where pyarrow has jemalloc, a command allocates from it; a user's
    ARROW_DEFAULT_MEMORY_POOL wins, and `--help` imports no pyarrow to choose."""
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow is built without jemalloc")
    code = (
        "import sys\n"
        "from healthscore.cli import app\n"
        "from typer.testing import CliRunner\n"
        "done = CliRunner().invoke(app, ['schema'])\n"
        "import pyarrow as pa\n"
        "print(done.exit_code, pa.default_memory_pool().backend_name)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k != allocator.ARROW_POOL_SETTING}
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, env=clean, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "jemalloc"]
    chosen = {**clean, allocator.ARROW_POOL_SETTING: "system"}
    out = subprocess.run(run, env=chosen, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0", "system"]


def test_arrow_keeps_its_default_without_jemalloc(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    def missing() -> None:
        raise NotImplementedError("jemalloc support is not enabled")

    monkeypatch.delenv(allocator.ARROW_POOL_SETTING, raising=False)
    monkeypatch.setattr(pa, "jemalloc_memory_pool", missing)
    monkeypatch.setattr(pa, "set_memory_pool", lambda pool: pytest.fail("pool set"))
    assert allocator.arrow_on_jemalloc() is False
    monkeypatch.setenv(allocator.ARROW_POOL_SETTING, "mimalloc")
    monkeypatch.setattr(pa, "jemalloc_memory_pool", lambda: pytest.fail("jemalloc asked for"))
    assert allocator.arrow_on_jemalloc() is False
