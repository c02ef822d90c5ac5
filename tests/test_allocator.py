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
# OpenBLAS's but the main one), with `one_blas_thread` called first or not.
BLAS = """
import os, sys
from healthscore.allocator import one_blas_thread
early = sys.argv[1] == "numpy first"
if early:
    import numpy
told = one_blas_thread() if sys.argv[1] != "default" else False
import numpy as np
a = np.ones((2000, 16))
a.T @ a
print(told, len(os.listdir("/proc/self/task")), os.environ.get("OPENBLAS_NUM_THREADS"))
"""


def _blas_threads(mode: str, **env: str) -> tuple[bool, int, str | None]:
    clean = {k: v for k, v in os.environ.items() if k not in allocator.BLAS_SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", BLAS, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1]), None if out[2] == "None" else out[2]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2, reason="threads not countable")
def test_openblas_keeps_to_one_thread_unless_a_user_set_its_threads() -> None:
    told, threads, setting = _blas_threads("one")
    assert (told, threads, setting) == (True, 1, "1")
    assert _blas_threads("default")[1] > 1  # OpenBLAS's own threads, one per core
    assert _blas_threads("one", OMP_NUM_THREADS="2") == (False, 2, None)  # the user's wins
    assert _blas_threads("numpy first")[0:1] == (False,)  # too late: OpenBLAS already started


def test_the_command_keeps_openblas_to_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "one_blas_thread", lambda: calls.append("one") or True)
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
