"""The SIGTERM watchdog: a process that SIGTERM cannot stop cleanly is killed after a grace period.

A Python signal handler (the job's graceful stop, `job.handle_sigterm`, and Lightning's) runs in the main
thread between two bytecodes. A training step stuck in a native kernel never gets there: in the oneDNN
hang of `policy.cpu_nhwc_unsafe` the main thread waited in a futex while an OpenMP thread spun at 100%,
and neither `timeout` nor `kill` stopped it (the Python handler never ran; a Python thread still did).

The C part of Python's handler runs at once in any state and writes the signal's number to the file of
`signal.set_wakeup_fd`: here a pipe read by a small watcher process (`WATCHER`). After the first SIGTERM
it waits `runtime.sigterm_grace_s` seconds for the pipe to close (the process ended), then kills the
process (SIGKILL: exit 137) and says so on stderr. A process, not a thread: a thread needs the GIL, which
a native call may keep (tests/test_watchdog.py blocks in one through `ctypes.PyDLL`, which keeps it). The
watcher ignores SIGTERM and SIGINT (`timeout` and Ctrl-C signal the whole process group) and ends when
the pipe closes, however the process ended. Forked children (DataLoader workers) drop the pipe, so a
worker's SIGTERM is never taken for the job's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

WATCHER = r"""
import os, select, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
fd, grace, pid = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
while signal.SIGTERM not in (data := os.read(fd, 64)):
    if not data:
        sys.exit(0)
deadline = time.monotonic() + grace
while (left := deadline - time.monotonic()) > 0:
    if select.select([fd], [], [], left)[0] and not os.read(fd, 64):
        sys.exit(0)
sys.stderr.write(
    f"killed: no clean stop within {grace:g} s of SIGTERM (stuck in a native call?); "
    "the last checkpoint stays (runtime.sigterm_grace_s sets the wait)\n"
)
os.kill(pid, signal.SIGKILL)
"""

_ARMED: tuple[float, int, subprocess.Popen] | None = None  # (grace, the pipe's write end, the watcher)


def arm(grace_s: float | None) -> bool:
    """Watch this process from now on with a grace of `grace_s` seconds (None: no watchdog); return
    whether it is watched. Only from the main thread, and only where no other wakeup file is set (an
    asyncio loop's stays; then no watchdog)."""
    global _ARMED
    if _ARMED is not None and _ARMED[0] == grace_s:
        return True
    disarm()
    if grace_s is None:
        return False
    r, w = os.pipe()
    os.set_blocking(w, False)  # set_wakeup_fd's condition: a signal handler never blocks
    try:
        old = signal.set_wakeup_fd(w)
    except ValueError:  # not the main thread
        old = None
    if old != -1:
        if old is not None:
            signal.set_wakeup_fd(old)
        os.close(r), os.close(w)
        return False
    cmd = [sys.executable, "-S", "-c", WATCHER, str(r), str(float(grace_s)), str(os.getpid())]
    proc = subprocess.Popen(cmd, pass_fds=(r,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    os.close(r)
    _ARMED = (grace_s, w, proc)
    return True


def disarm() -> None:
    """Stop watching: the watcher sees its pipe close and ends."""
    global _ARMED
    if _ARMED is None:
        return
    _, w, proc = _ARMED
    _ARMED = None
    try:
        if (other := signal.set_wakeup_fd(-1)) not in (w, -1):
            signal.set_wakeup_fd(other)  # set by someone else since: theirs stays
    except ValueError:  # not the main thread
        pass
    os.close(w)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _forget_in_child() -> None:
    """A forked child holds no watch: its SIGTERM is its own, and the pipe must close when its parent ends."""
    global _ARMED
    if _ARMED is None:
        return
    _, w, _ = _ARMED
    _ARMED = None
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    os.close(w)


os.register_at_fork(after_in_child=_forget_in_child)
