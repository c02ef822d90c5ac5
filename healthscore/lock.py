"""The run lock: one healthscore run at a time per output directory, and the cleanup of
temp files that a killed run left behind.

The lock is an exclusive `flock` on `<directory>/.healthscore.lock`. The kernel releases it
when the holding process dies, however it dies (SIGKILL, OOM killer, power loss of the
process), so a crashed run never blocks the next one and there is no stale lock to remove.
The file itself stays in place after a run: unlinking a flock file races with a run that
has just opened it, and two runs could then each lock a different file.

flock locks belong to an open file description, not to a process: a second `output_lock`
on the same directory conflicts even from the same process (fcntl/POSIX record locks
would not), and a child that is forked (not exec'd) while the lock is held shares it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from healthscore.errors import LockedError, OutputError, Problem

LOCK_NAME = ".healthscore.lock"
UNKNOWN = "unknown"

# The temp files of outputs._staged: tempfile.NamedTemporaryFile(prefix=f".{name}.", suffix=".tmp")
# in the target's directory, whose random part is 8 characters of [a-z0-9_].
STAGED_TEMP = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")

_MAX_HOLDER_BYTES = 4096


@contextlib.contextmanager
def output_lock(directory: Path) -> Iterator[None]:
    """Hold the exclusive run lock on `directory` (created if missing) for the block.

    Raises LockedError (exit 75) at once if another run holds it, OutputError (exit 73) if the
    directory cannot be created or written.
    """
    directory = Path(directory)
    lock_path = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # os.open applies the umask, so the file gets 0o666 & ~umask like any other output.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise _unwritable(directory, exc) from None
    try:
        _check_writable(directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _locked(directory, lock_path, fd) from None
        except OSError as exc:
            raise OutputError(f"cannot lock {lock_path}: {exc.strerror or exc}") from None
        try:
            _write_holder(fd)
        except OSError as exc:
            raise OutputError(f"cannot write {lock_path}: {exc.strerror or exc}") from None
        yield
    finally:
        # Closing the only descriptor of this open file description releases the lock.
        os.close(fd)


def clean_stale_temps(directory: Path, older_than: float = 0) -> list[Path]:
    """Remove the staged temp files (`.<name>.<random>.tmp`) a killed run left in `directory`
    (not its subfolders), those at least `older_than` seconds old; return the paths removed.

    Call it only while holding `output_lock` on `directory`, or else it may delete the temp file
    of a run that is writing right now. For a folder the lock does not cover (a history folder
    that runs with other output directories share), give `older_than` a margin such as 3600.
    """
    directory = Path(directory)
    try:
        with os.scandir(directory) as scan:
            entries = sorted((e for e in scan if STAGED_TEMP.fullmatch(e.name)), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OutputError(f"cannot list {directory}: {exc.strerror or exc}") from None
    cutoff = time.time() - older_than
    removed: list[Path] = []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or (older_than > 0 and info.st_mtime > cutoff):
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # gone already: nothing left to clean
        except OSError as exc:
            raise OutputError(f"cannot remove the stale temp file {entry.path}: {exc.strerror or exc}") from None
        removed.append(Path(entry.path))
    return removed


def _check_writable(directory: Path) -> None:
    """An existing lock file opens even in a read-only directory; fail here, before any work."""
    if os.access in os.supports_effective_ids:
        writable = os.access(directory, os.W_OK | os.X_OK, effective_ids=True)
    else:
        writable = os.access(directory, os.W_OK | os.X_OK)
    if not writable:
        raise _unwritable(directory, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))


def _unwritable(directory: Path, exc: OSError) -> OutputError:
    """The error for an output directory that cannot be created or written to."""
    return OutputError(
        f"cannot write to the output directory {directory}",
        [
            Problem(
                exc.strerror or str(exc),
                str(exc.filename or directory),
                "make it writable by the user running healthscore, or write the outputs elsewhere (--out)",
            )
        ],
    )


def _write_holder(fd: int) -> None:
    """Record who holds the lock: pid, start time (ISO 8601 UTC) and hostname, synced to disk.

    The new record is written over the old one and the file then cut to its length, so a run
    that reads it meanwhile sees a complete first line, never an empty file.
    """
    record = {
        "pid": os.getpid(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
    }
    data = (json.dumps(record) + "\n").encode("utf-8")
    written = os.pwrite(fd, data, 0)
    if written != len(data):
        raise OSError(errno.EIO, f"short write ({written} of {len(data)} bytes)")
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def _read_holder(fd: int) -> tuple[str, str, str]:
    """The holder's pid, start time and host from the lock file; "unknown" for what is unreadable."""
    try:
        data = os.pread(fd, _MAX_HOLDER_BYTES, 0)
        record = json.loads(data.decode("utf-8").split("\n", 1)[0])
    except (OSError, UnicodeDecodeError, ValueError):
        return UNKNOWN, UNKNOWN, UNKNOWN
    if not isinstance(record, dict):
        return UNKNOWN, UNKNOWN, UNKNOWN
    pid, started, host = record.get("pid"), record.get("started_at"), record.get("host")
    pid_text = str(pid) if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else UNKNOWN
    started_text = UNKNOWN
    if isinstance(started, str):
        with contextlib.suppress(ValueError):  # not a timestamp: leave it unknown
            started_text = dt.datetime.fromisoformat(started).isoformat(timespec="seconds")
    host_ok = isinstance(host, str) and 0 < len(host) <= 255 and host.isprintable()
    return pid_text, started_text, host if isinstance(host, str) and host_ok else UNKNOWN


def _locked(directory: Path, lock_path: Path, fd: int) -> LockedError:
    """The error for a lock held by another run, naming that run as far as the lock file tells."""
    pid, started, host = _read_holder(fd)
    here = socket.gethostname()
    where = f" on {host}" if host not in (UNKNOWN, here) else ""
    if pid == UNKNOWN:
        hint = f"wait for it to finish, or find it with `fuser -v {lock_path}` or `lsof {lock_path}`"
    else:
        hint = f"wait for it to finish, or check the process with `ps -p {pid}`{where}"
    return LockedError(
        f"another healthscore run holds the lock on {directory}: pid {pid}{where}, started {started}",
        [Problem("the run lock is held", str(lock_path), hint)],
    )
