"""The SIGTERM watchdog (`binary_encoding.run.watchdog`): a process stuck in a native call, where no Python
signal handler runs, still ends within its grace period after SIGTERM; one that stops cleanly keeps its
own exit. The stuck call is a real one: the main thread locks a pthread mutex it holds already and waits
in a futex for ever (signals do not end that wait), as in the oneDNN hang (`policy.cpu_nhwc_unsafe`),
through `ctypes.CDLL` (the GIL released, as torch's kernels do) and through `ctypes.PyDLL` (the GIL kept:
no Python thread can run either)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lightning as L
import pytest

ROOT = Path(__file__).resolve().parents[1]
GRACE = 2.0
MARGIN = 15.0  # process start-up and a loaded machine; the grace itself is checked from below

STUCK = textwrap.dedent(
    """
    import ctypes, signal, sys, time
    from binary_encoding.run import watchdog

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # the graceful stop, as job.handle_sigterm's
    assert watchdog.arm(float(sys.argv[2]))
    print(watchdog._ARMED[2].pid, flush=True)  # the watcher's pid, then the call that never returns
    if sys.argv[1] == "python":
        time.sleep(3600)
    else:
        lib = ctypes.CDLL(None) if sys.argv[1] == "gil-released" else ctypes.PyDLL(None)
        mutex = ctypes.create_string_buffer(64)  # zeroed: a default pthread mutex
        lib.pthread_mutex_lock(mutex)
        lib.pthread_mutex_lock(mutex)  # locked by this thread already: waits in a futex for ever
    """
)


def gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie left to an init that does not reap counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.fixture
def started():
    """Processes a test starts (and their watchers' pids), killed at teardown whatever happened."""
    procs: list[tuple[subprocess.Popen, list[int]]] = []
    yield procs
    for p, pids in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
        for pid in pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def start(started, *args: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    started.append((p, []))
    line = p.stdout.readline()  # the child says it is in place: the SIGTERM then hits the stuck call
    assert line.strip().isdigit(), p.communicate(timeout=60)[1][-3000:]
    started[-1][1].append(int(line))
    return p, int(line)


def wait_until_in_futex(pid: int, timeout: float = 30) -> None:
    """Until `pid`'s main thread waits in the futex of the deadlock (syscall 202 on x86_64, 98 on aarch64):
    a SIGTERM sent between its line and that call would still run the Python handler (exit 143)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/syscall").read_text().split()[0] not in ("202", "98"):
        assert time.monotonic() < deadline, f"process {pid} never reached its futex wait"
        time.sleep(0.02)


def terminate(p: subprocess.Popen) -> tuple[float, str]:
    """SIGTERM `p`; the seconds until it exited, and its stderr."""
    t = time.monotonic()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=GRACE + MARGIN)
    return time.monotonic() - t, err


@pytest.mark.parametrize("gil", ["gil-released", "gil-held"])
def test_a_process_stuck_in_a_native_call_is_killed_after_the_grace_period(started, gil):
    p, watcher = start(started, "-c", STUCK, gil, str(GRACE))
    wait_until_in_futex(p.pid)
    took, err = terminate(p)
    assert p.returncode == -signal.SIGKILL
    assert GRACE <= took < GRACE + MARGIN
    assert f"killed: no clean stop within {GRACE:g} s of SIGTERM" in err
    deadline = time.monotonic() + 10
    while not gone(watcher) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(watcher)


def test_a_process_that_stops_cleanly_keeps_its_exit_and_its_watcher_ends(started):
    p, watcher = start(started, "-c", STUCK, "python", "30")
    took, err = terminate(p)
    assert p.returncode == 143 and took < 30 and "killed" not in err
    deadline = time.monotonic() + 10
    while not gone(watcher) and time.monotonic() < deadline:  # its pipe closed with the process
        time.sleep(0.05)
    assert gone(watcher)


def test_disarming_ends_the_watcher_and_a_forked_child_holds_no_watch():
    from binary_encoding.run import watchdog

    assert watchdog.arm(30.0)
    proc = watchdog._ARMED[2]
    pid = os.fork()
    if pid == 0:  # the child: no watch of its own, and the parent's wakeup file is not its
        os._exit(0 if watchdog._ARMED is None and signal.set_wakeup_fd(-1) == -1 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert watchdog.arm(30.0) and watchdog._ARMED[2] is proc  # the same grace: the same watcher
    assert watchdog.arm(60.0) and watchdog._ARMED[0] == 60.0  # another grace: a new watcher waiting 60 s
    assert proc.returncode == 0 and watchdog._ARMED[2].args[-2] == "60.0"
    assert watchdog.arm(0.0) and watchdog._ARMED[2].args[-2] == "0.0"  # 0 s: killed at once, not unwatched
    proc = watchdog._ARMED[2]
    watchdog.disarm()
    assert proc.returncode == 0 and signal.set_wakeup_fd(-1) == -1
    assert watchdog.arm(None) is False and watchdog._ARMED is None


def test_a_job_run_in_process_leaves_no_watcher_behind(cfg_factory):
    """`train(cfg)` from a notebook or a test: the watch is armed for the job (the handler is the project's)
    and ends with it, so no watcher process outlives the job and no wakeup file stays set."""
    from binary_encoding.run import job, watchdog
    from binary_encoding.train import train

    seen = []

    class Peek(L.Callback):
        def on_train_start(self, trainer, module):
            seen.append(watchdog._ARMED[2] if watchdog._ARMED else None)

    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0"), callbacks=[Peek()])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen and seen[0] is not None  # armed during the job
    assert watchdog._ARMED is None and seen[0].poll() is not None  # its watcher ended with the job
    assert signal.set_wakeup_fd(-1) == -1 and job._JOB is None


def test_a_wakeup_file_set_by_someone_else_stays_theirs_on_arming_and_on_disarming():
    """An asyncio loop's wakeup file set before: no watchdog (arm says so) and the loop's file is kept; one
    set after arming: disarming leaves it in place instead of clearing it."""
    from binary_encoding.run import watchdog

    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        assert signal.set_wakeup_fd(w) == -1
        assert watchdog.arm(30.0) is False and watchdog._ARMED is None
        assert signal.set_wakeup_fd(-1) == w  # still the loop's
        assert watchdog.arm(30.0)
        proc = watchdog._ARMED[2]
        signal.set_wakeup_fd(w)  # the loop starts while watched
        watchdog.disarm()
        assert signal.set_wakeup_fd(-1) == w and proc.returncode == 0
    finally:
        watchdog.disarm()
        signal.set_wakeup_fd(-1)
        os.close(r), os.close(w)
