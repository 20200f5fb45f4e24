"""One writer per run folder: a lock file held for the life of a run.

``RUN/run.lock`` holds the writer's PID, host and start time as JSON, and the writer holds an
exclusive ``flock`` on it. The kernel drops a ``flock`` when its process dies, however it dies
(``kill -9`` included), so a lock file left behind by a dead run is recognised as stale and
taken over, with a message naming the process that left it. Where ``fcntl`` is missing
(Windows) or the file system has no ``flock`` (some network mounts), the PID is checked
instead, which works on one host.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "run.lock"


class RunLocked(RuntimeError):
    """The run folder is being written by another live process."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _describe(holder: dict) -> str:
    return (f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}, started "
            f"{holder.get('started_at', '?')}")


class RunLock:
    """The lock of one run folder (a context manager).

    Parameters
    ----------
    folder : Path
        The run folder; it must exist.
    log : callable
        Receives the message when a stale lock is taken over.
    """

    def __init__(self, folder: Path, log: Callable[[str], None] = print) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.log = log
        self._fd: int | None = None

    def holder(self) -> dict | None:
        """What the lock file says about its writer (None when there is no readable lock)."""
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def _refuse(self, holder: dict | None) -> RunLocked:
        who = _describe(holder) if holder else "another process"
        pid = holder.get("pid") if holder else None
        stop = f"stop it (kill {pid}) and " if pid else "stop it and "
        return RunLocked(
            f"{self.folder} is being written by another explbench run ({who}); two writers "
            f"would mix their records. Wait for it to finish, or {stop}continue with "
            f"`explbench run --resume {self.folder}`")

    def acquire(self) -> "RunLock":
        if fcntl is None:  # pragma: no cover - Windows
            return self._acquire_by_pid()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._refuse(self.holder()) from None
            except OSError as exc:  # a file system without flock (some network mounts)
                os.close(fd)
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                if self.path.exists() and not self.path.read_bytes().strip():
                    self.path.unlink()
                return self._acquire_by_pid()
            try:  # the file may have been removed and re-created by a finishing holder
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = os.read(fd, 1 << 16)
        if old.strip():
            try:
                holder = json.loads(old)
            except ValueError:
                holder = None
            if holder and holder.get("pid") != os.getpid():
                self.log(f"taking over the lock of {self.folder} left by {_describe(holder)}, "
                         f"which is no longer running")
        self._fd = fd
        try:
            self._write_holder()
        except OSError:
            self.release()
            raise
        return self

    def _acquire_by_pid(self) -> "RunLock":  # pragma: no cover - Windows, file systems without flock
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = self.holder()
            if holder and holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1))):
                self.log(f"taking over the lock of {self.folder} left by {_describe(holder)}, "
                         f"which is no longer running")
                self.path.unlink()
                return self._acquire_by_pid()
            raise self._refuse(holder) from None
        self._fd = fd
        self._write_holder()
        return self

    def _write_holder(self) -> None:
        assert self._fd is not None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, (json.dumps(info) + "\n").encode())
        os.fsync(self._fd)

    def release(self) -> None:
        """Remove the lock file, then let go of the lock (in that order: no window for two)."""
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
