"""One process per job folder: `<folder>/job.lock` names the process that trains in it.

A second process on a folder in use (a sweep rerun while the first still runs, a sweep submitted twice,
a retry while the old attempt lives) would resume from the first one's checkpoint and write the same
record. `held(out)` refuses it with one line naming the holder (host, pid, since), and takes over a
stale lock with a warning: its holder's pid is dead on this host, its holder is an earlier attempt of
this same SLURM job (a requeued job), or its holder on another host has not refreshed its heartbeat
for `STALE_AFTER_S` seconds (a node that died). The holder refreshes the heartbeat every
`HEARTBEAT_S` seconds while it trains and removes the lock when it ends, however it ends.

Why a file of our own and not `filelock` alone: an flock-based lock (`filelock.FileLock`, `fcntl`)
carries no holder, so the refusal could not say who holds the folder; it is released by the kernel
when its process dies, so it cannot tell a dead holder from a live one on another host; and on network
file systems flock is local to each client on some systems (NFS before Linux 2.6.12, some FUSE and
Lustre mounts), so two nodes could both hold it. The lock file is created with O_CREAT|O_EXCL, atomic
on local file systems and on NFSv3+, and `filelock.FileLock` (a short flock on `.job.lock.guard`)
serializes only the check-and-take-over of a stale lock between processes of one host, where flock
always works; across hosts a stale lock is taken over only after `STALE_AFTER_S` without a heartbeat.
DDP ranks (`ranks.is_launched_rank()`) never lock: the job's launching process holds the folder for them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..record import files
from .policy import ConfigError

LOCK = files.LOCK
HEARTBEAT_S = 60.0  # how often the holder refreshes its heartbeat
STALE_AFTER_S = 15 * 60.0  # a holder on another host silent this long is taken for dead (15 heartbeats)
# the clocks of one cluster's nodes (kept by NTP) agree within seconds: a heartbeat further ahead of this
# host's clock comes from a wrong clock, tells no age, and would hold the folder until that date
MAX_CLOCK_SKEW_S = 10 * 60.0

log = logging.getLogger("binary_encoding")
_HELD: set[Path] = set()  # the folders this process holds (train() may be called again inside one)


class FolderBusy(ConfigError):
    """Another live process trains in this job folder (the user's to sort out: one line, exit 2);
    `holder`: that process, as `describe` names it."""

    def __init__(self, message: str, holder: str = "another process"):
        super().__init__(message)
        self.holder = holder


def proc_start(pid: int, live: bool = False) -> str | None:
    """The start time of `pid` in clock ticks since boot (Linux), to tell a reused pid from its holder;
    None when it cannot be read, and with `live` when the process has ended (a zombie not yet reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if live and fields[0] in ("Z", "X") else fields[19]
    except (OSError, IndexError):
        return None


def _slurm_job() -> str | None:
    return os.environ.get("SLURM_JOB_ID")


def me() -> dict:
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": proc_start(os.getpid()),
        "slurm_job": _slurm_job(),
        "since": now,
        "heartbeat": now,
    }


def holder(out: str | Path) -> dict | None:
    """What `<out>/job.lock` says (None without one; {} when it cannot be read or is not of the shape
    `me()` writes: then it is stale, `stale_reason`)."""
    try:
        h = json.loads((Path(out) / LOCK).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return h if _well_formed(h) else {}


def _well_formed(h) -> bool:
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v < 1e11

    return (
        isinstance(h, dict)
        and isinstance(h.get("host"), str)
        and isinstance(h.get("pid"), int)
        and not isinstance(h.get("pid"), bool)
        and 0 < h["pid"] < 2**31
        and number(h.get("since"))
        and number(h.get("heartbeat"))
        and all(h.get(k) is None or isinstance(h[k], str) for k in ("pid_start", "slurm_job"))
    )


def _alive_here(h: dict) -> bool:
    try:
        os.kill(int(h["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    start = h.get("pid_start")
    return start is None or proc_start(int(h["pid"])) in (None, start)


def stale_reason(h: dict, now: float | None = None) -> str | None:
    """Why the lock of holder `h` is stale (then it may be taken over), or None while its holder lives."""
    if not h:
        return "it cannot be read"
    if h.get("slurm_job") and h["slurm_job"] == _slurm_job():
        return f"it is an earlier attempt of this SLURM job {h['slurm_job']} (requeued)"
    if h.get("host") == socket.gethostname():
        return None if _alive_here(h) else f"its process {h.get('pid')} is gone"
    silent = (time.time() if now is None else now) - float(h["heartbeat"])
    if -silent > MAX_CLOCK_SKEW_S:
        return f"its heartbeat is {-silent / 60:.0f} min in the future (the holder's clock is wrong)"
    return f"its heartbeat is {silent / 60:.0f} min old" if silent > STALE_AFTER_S else None


def describe(h: dict) -> str:
    if not h:
        return "unreadable, or not a lock this program wrote"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(h.get("since", 0))))
    slurm = f", SLURM job {h['slurm_job']}" if h.get("slurm_job") else ""
    return f"host {h.get('host')}, pid {h.get('pid')}{slurm}, since {since}"


def _write(path: Path, h: dict, exclusive: bool) -> None:
    data = json.dumps(h).encode()
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def acquire(out: str | Path) -> dict:
    """Take `<out>/job.lock` for this process, or raise `FolderBusy` naming the live holder."""
    from filelock import FileLock

    out = Path(out)
    path = out / LOCK
    mine = me()
    with FileLock(str(out / f".{LOCK}.guard"), timeout=60):
        try:
            _write(path, mine, exclusive=True)
            return mine
        except FileExistsError:
            pass
        h = holder(out)
        if h is None:  # released in between
            _write(path, mine, exclusive=True)
            return mine
        own = h.get("host") == mine["host"] and h.get("pid") == mine["pid"]  # left by an earlier call that died
        reason = "it is this process's own, left over" if own else stale_reason(h)
        if reason is None:
            raise FolderBusy(
                f"{out} is in use by another job ({describe(h)}); wait for it or stop it, then rerun "
                f"(if no job runs there, remove {path})",
                holder=describe(h),
            )
        msg = f"taking over the stale lock of {out} ({describe(h)}): {reason}"
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
        _write(path, mine, exclusive=False)
        return mine


def release(out: str | Path, mine: dict) -> None:
    """Remove the lock if this process still holds it."""
    h = holder(out)
    if h and h.get("pid") == mine["pid"] and h.get("host") == mine["host"] and h.get("since") == mine["since"]:
        (Path(out) / LOCK).unlink(missing_ok=True)


def _beat(out: Path, mine: dict, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        h = holder(out)
        if not h or h.get("since") != mine["since"] or h.get("pid") != mine["pid"]:
            return  # taken over (or removed): not ours to refresh
        try:
            _write(out / LOCK, {**mine, "heartbeat": time.time()}, exclusive=False)
        except OSError:
            pass  # a full disk: the job itself reports it; the lock stays as it was


@contextmanager
def held(out: str | Path):
    """Hold the job folder `out` for this process (see the module docstring) while the block runs."""
    out = Path(out)
    if out.resolve() in _HELD:
        yield  # re-entered by the same process: the outer block holds and releases it
        return
    mine = acquire(out)
    _HELD.add(out.resolve())
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(out, mine, stop), name="job-lock-heartbeat", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=10)
        _HELD.discard(out.resolve())
        release(out, mine)
