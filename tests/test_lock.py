"""The run lock and the cleanup of stale temp files, with real processes holding the lock.

A child process signals on stdout that it holds the lock and then waits for its stdin to
close, so no test sleeps and hopes; every child is killed and reaped in `finally`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthscore.errors import LockedError, OutputError
from healthscore.lock import LOCK_NAME, STAGED_TEMP, clean_stale_temps, output_lock

HANDSHAKE_TIMEOUT = 10.0  # only reached when a child is broken; a healthy child answers in ~50 ms

HOLDER = """
import sys
from pathlib import Path
from healthscore.lock import output_lock

with output_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the parent closes our stdin
print("released", flush=True)
"""

STAGER = """
import os
import sys
from pathlib import Path
from healthscore.outputs import write_files

def stall(src, dst):
    print("staged", flush=True)
    sys.stdin.read()  # SIGKILLed here: every temp file written and synced, none renamed yet

os.replace = stall
out = Path(sys.argv[1])
write_files({out / "health_scores.csv": b"new\\n", out / "run.json": b"{}\\n"})
"""


def _await_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Wait (bounded) for the child to print `expected`; fail with its stderr if it does not."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], HANDSHAKE_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != expected:
        _reap(proc)
        err = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"child did not say {expected!r} (got {line!r}); stderr:\n{err}")


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill the child if it still runs, wait for it, and close our end of its stdin."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=HANDSHAKE_TIMEOUT)
    if proc.stdin is not None:
        proc.stdin.close()


def _spawn(script: str, directory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock on tmp_path/out."""
    proc = _spawn(HOLDER, tmp_path / "out")
    try:
        _await_line(proc, "locked")
        yield proc
    finally:
        _reap(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _holder_record(directory: Path) -> dict[str, object]:
    record = json.loads((directory / LOCK_NAME).read_text(encoding="utf-8"))
    assert isinstance(record, dict)
    return record


def test_a_second_run_is_refused_while_a_child_holds_the_lock_then_gets_it(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    out = tmp_path / "out"
    record = _holder_record(out)
    assert record["pid"] == holder.pid
    assert record["host"] == socket.gethostname()
    started = dt.datetime.fromisoformat(str(record["started_at"]))
    assert started.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - started) < dt.timedelta(minutes=1)

    with pytest.raises(LockedError) as caught, output_lock(out):
        pytest.fail("the lock was granted while another process held it")
    error = caught.value
    assert error.exit_code == 75
    assert error.message == (
        f"another healthscore run holds the lock on {out}: pid {holder.pid}, started {record['started_at']}"
    )
    assert f"ps -p {holder.pid}" in str(error)
    assert str(out / LOCK_NAME) in str(error)

    assert holder.stdin is not None
    holder.stdin.close()
    _await_line(holder, "released")
    assert holder.wait(timeout=HANDSHAKE_TIMEOUT) == 0
    with output_lock(out):
        assert _holder_record(out)["pid"] == os.getpid()


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(LockedError), output_lock(out):
        pytest.fail("the lock was granted while another process held it")
    holder.kill()  # SIGKILL: no finally, no atexit; only the kernel releases the lock
    holder.wait(timeout=HANDSHAKE_TIMEOUT)
    assert holder.returncode == -9
    assert (out / LOCK_NAME).exists()  # left behind, and harmless
    with output_lock(out):
        assert _holder_record(out)["pid"] == os.getpid()


def test_the_lock_is_released_after_the_block_and_the_file_stays(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with output_lock(out):
        assert (out / LOCK_NAME).is_file()
    with output_lock(out):
        pass  # released: the same process takes it again
    assert (out / LOCK_NAME).is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert (out / LOCK_NAME).stat().st_mode & 0o777 == 0o666 & ~umask


def test_the_holder_record_replaces_a_longer_old_one(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("x" * 5000 + "\n", encoding="utf-8")
    with output_lock(tmp_path):
        lines = (tmp_path / LOCK_NAME).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["pid"] == os.getpid()


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), output_lock(tmp_path):
        _ = 1 / 0
    with output_lock(tmp_path):
        pass


def test_a_second_lock_in_the_same_process_conflicts(tmp_path: Path) -> None:
    # flock belongs to the open file description, and each output_lock opens the file anew,
    # so a nested run in one process is refused too (a POSIX fcntl lock would be granted).
    with output_lock(tmp_path):
        with pytest.raises(LockedError) as caught, output_lock(tmp_path):
            pytest.fail("a second lock in the same process was granted")
        assert caught.value.exit_code == 75
        assert f"pid {os.getpid()}," in caught.value.message
    with output_lock(tmp_path):
        pass


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"not json at all\n",
        b"[1, 2, 3]\n",
        b'{"pid": "12; rm -rf /", "started_at": "yesterday", "host": "\\u001b[31mred"}\n',
        b'{"pid": true, "started_at": 5}\n',
    ],
    ids=["empty", "binary", "text", "list", "bad-fields", "bad-types"],
)
def test_a_garbled_lock_file_names_an_unknown_holder(tmp_path: Path, content: bytes) -> None:
    with output_lock(tmp_path):
        (tmp_path / LOCK_NAME).write_bytes(content)  # flock is advisory: this write is allowed
        with pytest.raises(LockedError) as caught, output_lock(tmp_path):
            pytest.fail("the lock was granted while held")
    error = caught.value
    assert error.exit_code == 75
    assert error.message == f"another healthscore run holds the lock on {tmp_path}: pid unknown, started unknown"
    assert f"lsof {tmp_path / LOCK_NAME}" in str(error)
    assert "\x1b" not in str(error)


def test_a_holder_on_another_host_is_named(tmp_path: Path) -> None:
    record = {"pid": 4242, "started_at": "2026-01-31T02:00:00+00:00", "host": "batch-7"}
    with output_lock(tmp_path):
        (tmp_path / LOCK_NAME).write_text(json.dumps(record) + "\n", encoding="utf-8")
        with pytest.raises(LockedError) as caught, output_lock(tmp_path):
            pytest.fail("the lock was granted while held")
    assert caught.value.message == (
        f"another healthscore run holds the lock on {tmp_path}: pid 4242 on batch-7, started 2026-01-31T02:00:00+00:00"
    )
    assert "`ps -p 4242` on batch-7" in str(caught.value)


needs_non_root = pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        yield directory
    finally:
        directory.chmod(0o755)


@needs_non_root
def test_a_read_only_directory_is_an_output_error(read_only_dir: Path) -> None:
    with pytest.raises(OutputError) as caught, output_lock(read_only_dir):
        pytest.fail("the lock was granted in a read-only directory")
    assert caught.value.exit_code == 73
    assert str(read_only_dir) in caught.value.message
    assert not (read_only_dir / LOCK_NAME).exists()


@needs_non_root
def test_a_read_only_directory_with_an_old_lock_file_is_an_output_error(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    with output_lock(directory):
        pass
    directory.chmod(0o555)  # the lock file stays writable and would open; the directory would not take outputs
    try:
        with pytest.raises(OutputError) as caught, output_lock(directory):
            pytest.fail("the lock was granted in a read-only directory")
    finally:
        directory.chmod(0o755)
    assert caught.value.exit_code == 73
    assert str(directory) in caught.value.message


@needs_non_root
def test_a_directory_that_cannot_be_created_is_an_output_error(read_only_dir: Path) -> None:
    with pytest.raises(OutputError) as caught, output_lock(read_only_dir / "out"):
        pytest.fail("the lock was granted under a read-only directory")
    assert caught.value.exit_code == 73
    assert str(read_only_dir / "out") in caught.value.message


def test_a_file_in_the_way_of_the_directory_is_an_output_error(tmp_path: Path) -> None:
    # Unlike permissions, this holds for root too.
    (tmp_path / "out").write_text("not a directory", encoding="utf-8")
    with pytest.raises(OutputError) as caught, output_lock(tmp_path / "out"):
        pytest.fail("the lock was granted on a file")
    assert caught.value.exit_code == 73
    assert str(tmp_path / "out") in caught.value.message


def test_clean_stale_temps_removes_only_staged_temp_files(tmp_path: Path) -> None:
    stale = [".health_scores.csv.k2_9xq0a.tmp", ".run.json.abcdefgh.tmp", ".my file.v1.csv.00000000.tmp"]
    kept = [
        "health_scores.csv",
        ".gitkeep",
        LOCK_NAME,
        "notes.tmp",
        ".notes.tmp",
        ".health_scores.csv.short.tmp",
        ".health_scores.csv.ABCDEFGH.tmp",
        "health_scores.csv.abcdefgh.tmp",
        ".health_scores.csv.abcdefgh.tmp.bak",
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".folder.abcdefgh.tmp").mkdir()
    (tmp_path / "as_of=2026-01-31").mkdir()
    (tmp_path / "as_of=2026-01-31" / ".snapshot.parquet.abcdefgh.tmp").write_bytes(b"x")

    with output_lock(tmp_path):
        removed = clean_stale_temps(tmp_path)

    assert removed == sorted(tmp_path / name for name in stale)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {*kept, ".folder.abcdefgh.tmp", "as_of=2026-01-31"}
    assert (tmp_path / "as_of=2026-01-31" / ".snapshot.parquet.abcdefgh.tmp").exists()  # not recursive
    assert clean_stale_temps(tmp_path / "as_of=2026-01-31") == [
        tmp_path / "as_of=2026-01-31" / ".snapshot.parquet.abcdefgh.tmp"
    ]


def test_clean_stale_temps_keeps_young_files_when_asked_for_a_margin(tmp_path: Path) -> None:
    old, young = tmp_path / ".a.csv.aaaaaaaa.tmp", tmp_path / ".b.csv.bbbbbbbb.tmp"
    old.write_bytes(b"x")
    young.write_bytes(b"x")
    now = dt.datetime.now().timestamp()
    os.utime(old, (now - 7200, now - 7200))
    os.utime(young, (now - 60, now - 60))
    assert clean_stale_temps(tmp_path, older_than=3600) == [old]
    assert young.exists()
    assert clean_stale_temps(tmp_path) == [young]


def test_clean_stale_temps_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert clean_stale_temps(tmp_path / "missing") == []


def test_the_temp_files_of_a_killed_write_match_and_are_cleaned(tmp_path: Path) -> None:
    # A real writer (outputs.write_files) is SIGKILLed between staging and renaming; the temp
    # files it leaves must be exactly what clean_stale_temps removes, and the targets untouched.
    out = tmp_path / "out"
    out.mkdir()
    (out / "health_scores.csv").write_bytes(b"previous\n")
    proc = _spawn(STAGER, out)
    try:
        _await_line(proc, "staged")
        proc.kill()
        proc.wait(timeout=HANDSHAKE_TIMEOUT)
    finally:
        _reap(proc)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    temps = sorted(p for p in out.iterdir() if p.name.endswith(".tmp"))
    assert len(temps) == 2
    assert all(STAGED_TEMP.fullmatch(p.name) for p in temps)
    with output_lock(out):
        assert clean_stale_temps(out) == temps
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "health_scores.csv"]
    assert (out / "health_scores.csv").read_bytes() == b"previous\n"
