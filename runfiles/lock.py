"""One driver per run directory: an exclusive lock held while a command writes into the run.

`python -m search.run`, `search.certify`, `search.baseline` and `python -m reports RUN_DIR` hold it
for their whole session. The lock is `filelock`'s, an OS lock on DIR/.driver.lock: the operating
system releases it when its process ends, however it ends (a SIGKILL included), so a lock left by
a killed driver never blocks. Who holds it (host, pid, since when, command) is kept beside it in
DIR/.driver.json, for the command it refuses to name.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Iterator

import filelock

from runfiles.cli import UsageError
from runfiles.io import read_json, write_json
from runfiles.layout import RunDir


@contextlib.contextmanager
def holding(run_dir: RunDir, command: str, hint: str = "wait for it to end, or stop it first") -> Iterator[None]:
    """Hold DIR's lock while the block runs (making DIR if needed); `hint` says what to do instead.

    Raises:
        UsageError: one line, when another process holds it: who (host, pid), since when, doing what.
        OSError: when DIR cannot be written (a read-only or full disk).
    """
    run_dir.root.mkdir(parents=True, exist_ok=True)
    lock = _acquired(run_dir, hint)
    try:
        since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        write_json(run_dir.holder, {"host": socket.gethostname(), "pid": os.getpid(), "since": since, "command": command})
        yield
    finally:
        with contextlib.suppress(OSError):
            run_dir.holder.unlink(missing_ok=True)
        lock.release()


def refuse_if_held(run_dir: RunDir, hint: str = "wait for it to end, or stop it first") -> None:
    """Raise UsageError naming the holder when another process holds DIR's lock; creates nothing."""
    if run_dir.lock.is_file():
        _acquired(run_dir, hint).release()


def _acquired(run_dir: RunDir, hint: str) -> filelock.FileLock:
    """DIR's lock, taken without waiting; UsageError naming the holder and `hint` when another process has it."""
    lock = filelock.FileLock(run_dir.lock, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise UsageError(f"{run_dir.root}: {holder(run_dir)}; {hint}") from None
    return lock


def holder(run_dir: RunDir) -> str:
    """Who holds DIR's lock, as one phrase (read from DIR/.driver.json)."""
    try:
        held = read_json(run_dir.holder) or {}
    except (OSError, ValueError):
        held = {}
    if not held:
        return "another command is writing into this run"
    return (
        f"another command is writing into this run (pid {held.get('pid')} on {held.get('host')}, "
        f"since {held.get('since')}: {held.get('command')})"
    )
