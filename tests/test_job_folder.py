"""A job folder under stress: two processes on it (job.lock), a full or unwritable output folder."""

import json
import os
import socket
import subprocess
import sys
import time

import lightning as L
import pytest

from binary_encoding.run import lock
from binary_encoding.train import train

ARGS = ["logger=csv", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]


def start(cwd, *args, env=None):
    cmd = [sys.executable, "-m", "binary_encoding.train", *ARGS, *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(cwd, *args, timeout=300, multirun=False):
    """`python -m binary_encoding.train` (`-m` first: a sweep) with ARGS and `args`, to its end; its output
    captured."""
    cmd = [sys.executable, "-m", "binary_encoding.train", *(["-m"] if multirun else []), *ARGS, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def wait_for(proc, check, timeout=240):
    deadline = time.time() + timeout
    while not check():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def rows(out):
    path = out / "metrics.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def sleeper():
    """A live process of this host that is no job (a holder that never lets go by itself)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def write_lock(out, **fields):
    out.mkdir(parents=True, exist_ok=True)
    (out / lock.LOCK).write_text(json.dumps({**lock.me(), "slurm_job": None, **fields}))


def test_a_second_process_on_a_busy_folder_refuses_naming_the_holder(tmp_path):
    """Two real training processes on one folder: the second refuses in one line naming the first
    (host, pid, since) and exits 2 without touching the record; the first trains on undisturbed and
    removes its lock when it ends (here by SIGTERM)."""
    out = tmp_path / "run"
    first = start(tmp_path, f"output_dir={out}", "trainer.max_epochs=300", "deepfool_samples=0")
    wait_for(first, lambda: rows(out) >= 2 and (out / "checkpoints" / "last.ckpt").exists())
    held = json.loads((out / lock.LOCK).read_text())
    assert (held["host"], held["pid"]) == (socket.gethostname(), first.pid)
    record_before = (out / "config.yaml").read_text()
    second = run(tmp_path, f"output_dir={out}", "trainer.max_epochs=300", timeout=120)
    assert second.returncode == 2, second.stderr[-3000:]
    (line,) = second.stderr.strip().splitlines()
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(held["since"]))
    assert line == (
        f"error: {out} is in use by another job (host {socket.gethostname()}, pid {first.pid}, since {since}); "
        f"wait for it or stop it, then rerun (if no job runs there, remove {out / lock.LOCK})"
    )
    assert first.poll() is None and not (out / "failed.json").exists()  # the holder's record is untouched
    assert (out / "config.yaml").read_text() == record_before
    n = rows(out)
    wait_for(first, lambda: rows(out) > n)  # still training
    first.terminate()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err[-3000:]
    assert not (out / lock.LOCK).exists() and not list(out.glob("*.tmp"))


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_warning(cfg_factory, tmp_path):
    """kill -9 leaves job.lock behind: the next run on this host sees its pid dead, warns and trains."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_lock(tmp_path, pid=int(gone.stdout), pid_start="1")
    with pytest.warns(UserWarning, match=rf"taking over the stale lock .*pid {int(gone.stdout)}.*: its process"):
        s = train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0"))
    assert s["epochs"] == 1 and not (tmp_path / lock.LOCK).exists()


def test_a_reused_pid_is_not_taken_for_the_holder(tmp_path):
    """The holder's pid now names another process (its start time differs): the lock is stale."""
    proc = sleeper()
    try:
        write_lock(tmp_path, pid=proc.pid, pid_start="12345")
        assert lock.stale_reason(lock.holder(tmp_path)) == f"its process {proc.pid} is gone"
        write_lock(tmp_path, pid=proc.pid, pid_start=lock.proc_start(proc.pid))
        assert lock.stale_reason(lock.holder(tmp_path)) is None
        with pytest.raises(lock.FolderBusy, match=f"pid {proc.pid}, since"):
            lock.acquire(tmp_path)
    finally:
        proc.kill()
        proc.wait()
    with pytest.warns(UserWarning, match="its process .* is gone"):
        assert lock.acquire(tmp_path)["pid"] == os.getpid()


def test_another_hosts_lock_is_stale_only_once_its_heartbeat_is_old(tmp_path, monkeypatch):
    write_lock(tmp_path, host="node-elsewhere", pid=1, heartbeat=time.time() - 60)
    with pytest.raises(lock.FolderBusy, match="host node-elsewhere, pid 1, since"):
        lock.acquire(tmp_path)
    write_lock(tmp_path, host="node-elsewhere", pid=1, heartbeat=time.time() - lock.STALE_AFTER_S - 60)
    with pytest.warns(UserWarning, match="its heartbeat is 16 min old"):
        mine = lock.acquire(tmp_path)
    assert lock.holder(tmp_path) == mine and mine["host"] == socket.gethostname()


def test_a_heartbeat_in_the_future_beyond_the_clock_skew_is_taken_over(procs, tmp_path):
    """A lock from another host whose clock runs 1 hour ahead would hold the folder for that hour (and one
    a year ahead, for a year): beyond `MAX_CLOCK_SKEW_S` it is stale; a real run then trains there."""
    write_lock(tmp_path, host="node-elsewhere", pid=1, heartbeat=time.time() + lock.MAX_CLOCK_SKEW_S - 60)
    with pytest.raises(lock.FolderBusy, match=f"if no job runs there, remove {tmp_path / lock.LOCK}"):
        lock.acquire(tmp_path)  # within the skew: a live holder whose clock is a little ahead
    out = tmp_path / "run"
    write_lock(out, host="node-elsewhere", pid=1, heartbeat=time.time() + 3600)
    r = procs.run(
        [sys.executable, "-m", "binary_encoding.train", *ARGS, f"output_dir={out}", *TINY], timeout=300, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "its heartbeat is 60 min in the future (the holder's clock is wrong)" in r.stderr
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1 and not (out / lock.LOCK).exists()


TINY = ["trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0", "runtime.threads=1"]


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", '{"host": "h", "pid": "12x"}', '{"host": "h", "since": 1, "heartbeat": 1}', "HEARTBEAT_ABC", "null"]
    + ['{"host": "h", "pi', ""],
    ids=["a-list", "pid-12x", "no-pid", "heartbeat-abc", "null", "cut-off", "empty"],
)
def test_a_lock_of_the_wrong_shape_is_taken_over_with_one_warning(tmp_path, content):
    """JSON that is no lock this program wrote is unreadable like a lock that is no JSON (one cut off by a
    crash, or empty): taken over, not taken for an absent lock (then the exclusive write would fail)."""
    tmp_path.mkdir(exist_ok=True)
    if content == "HEARTBEAT_ABC":
        content = json.dumps({**lock.me(), "host": "node-elsewhere", "heartbeat": "abc"})
    (tmp_path / lock.LOCK).write_text(content)
    assert lock.holder(tmp_path) == {}
    with pytest.warns(UserWarning, match="not a lock this program wrote.*: it cannot be read") as seen:
        mine = lock.acquire(tmp_path)
    assert len(seen) == 1 and lock.holder(tmp_path) == mine


def test_a_wrong_shape_lock_does_not_stop_a_run(cfg_factory, tmp_path):
    (tmp_path / lock.LOCK).write_text('{"host": "h", "pid": "12x", "since": "abc"}')
    with pytest.warns(UserWarning, match="taking over the stale lock"):
        s = train(cfg_factory(*TINY))
    assert s["epochs"] == 1 and not (tmp_path / lock.LOCK).exists()


def test_a_requeued_slurm_job_takes_over_its_own_earlier_attempts_lock(tmp_path, monkeypatch):
    """A requeued job keeps its SLURM_JOB_ID and may land on another node within the heartbeat time."""
    write_lock(tmp_path, host="node-elsewhere", pid=1, slurm_job="4242")
    monkeypatch.setenv("SLURM_JOB_ID", "4243")
    with pytest.raises(lock.FolderBusy, match="SLURM job 4242"):
        lock.acquire(tmp_path)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with pytest.warns(UserWarning, match="earlier attempt of this SLURM job 4242"):
        assert lock.acquire(tmp_path)["slurm_job"] == "4242"


def test_the_heartbeat_is_refreshed_while_training(cfg_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.02)
    seen = []

    class Watch(L.Callback):
        def on_train_epoch_end(self, trainer, module):
            time.sleep(0.1)
            seen.append(json.loads((tmp_path / lock.LOCK).read_text()))

    train(cfg_factory("trainer.max_epochs=3", "deepfool_samples=0", "metrics_every=0"), callbacks=[Watch()])
    assert len({h["since"] for h in seen}) == 1 and {h["pid"] for h in seen} == {os.getpid()}
    beats = [h["heartbeat"] for h in seen]
    assert beats == sorted(beats) and beats[0] > seen[0]["since"] and len(set(beats)) == 3
    assert not (tmp_path / lock.LOCK).exists()


def test_a_busy_job_of_a_sweep_is_recorded_and_the_others_run(tmp_path):
    """A sweep whose first job's folder is held by a live process: that job is refused and reported,
    the second job trains to its end, the sweep exits non-zero, and the recap says who holds the folder."""
    sweep = tmp_path / "multirun" / "b"
    busy = sweep / "deepfool_samples=0,lr=0.01,trainer.max_epochs=1"
    holder = sleeper()
    try:
        write_lock(busy, pid=holder.pid, pid_start=lock.proc_start(holder.pid))
        r = run(tmp_path, "lr=0.01,0.02", "trainer.max_epochs=1", "deepfool_samples=0", "name=b", multirun=True)
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode != 0
    assert f"in use by another job (host {socket.gethostname()}, pid {holder.pid}" in r.stderr
    done = json.loads((sweep / "deepfool_samples=0,lr=0.02,trainer.max_epochs=1" / "summary.json").read_text())
    assert done["epochs"] == 1 and done["lr"] == 0.02
    assert not (busy / "summary.json").exists() and not (busy / "failed.json").exists()
    recap = next(ln for ln in r.stdout.splitlines() if ln.startswith("1/2"))
    assert recap.split()[1] == "refused" and f"(in use by host {socket.gethostname()}, pid {holder.pid}" in recap


# ------------------------------------------------------------------------------------------------
# A full or unwritable output folder
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (room for the digits run's 1 MB checkpoint, twice while it is replaced); needs root."""
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


class FillDisk(L.Callback):
    """At the start of epoch `at`, fill the disk of `folder` but `leave` bytes (the checkpoint of that
    epoch cannot be written then; failed.json still fits)."""

    def __init__(self, folder, at=2, leave=128 * 1024):
        self.filler, self.at, self.leave = folder / "filler", at, leave

    def on_train_epoch_start(self, trainer, module):
        import shutil

        if trainer.current_epoch == self.at:
            self.filler.write_bytes(b"\0" * (shutil.disk_usage(self.filler.parent).free - self.leave))


def test_a_full_disk_keeps_the_last_checkpoint_and_the_same_run_resumes_once_freed(small_disk):
    """The disk fills up during epoch 2: one line names the checkpoint's path and the free space; the
    checkpoint of epoch 1 and the record of epochs 0-1 stay intact, failed.json is written, no temporary
    file is left; once space is freed the same config resumes from epoch 1's checkpoint and finishes."""
    import zipfile

    import torch
    from conftest import make_cfg

    from binary_encoding.run.writes import OutputError

    out = small_disk / "run"
    over = ("trainer.max_epochs=4", "deepfool_samples=0", "metrics_every=0")
    fill = FillDisk(small_disk, at=2)
    with pytest.raises(OutputError) as err:
        train(make_cfg(out, *over), callbacks=[fill])
    ckpt = out / "checkpoints" / "last.ckpt"
    assert str(err.value).startswith(f"cannot write {ckpt}: No space left on device (")
    assert " KiB free there, not enough); the previous checkpoint and record are intact" in str(err.value)
    assert "\n" not in str(err.value)
    assert zipfile.is_zipfile(ckpt) and torch.load(ckpt, weights_only=False)["epoch"] == 1
    assert [r.split(",")[0] for r in (out / "metrics.csv").read_text().splitlines()[1:3]] == ["0", "1"]
    assert "No space left on device" in json.loads((out / "failed.json").read_text())["error"]
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]
    assert not (out / lock.LOCK).exists()
    fill.filler.unlink()
    s = train(make_cfg(out, *over))
    assert s["epochs"] == 4 and not (out / "failed.json").exists()
    assert [int(r.split(",")[0]) for r in (out / "metrics.csv").read_text().splitlines()[1:]] == [0, 1, 2, 3]


def test_a_full_or_read_only_output_folder_is_one_line_and_a_nonzero_exit(small_disk, tmp_path):
    """On the command line: no traceback, exit 2, nothing temporary left; read-only: the same line."""
    (small_disk / "filler").write_bytes(b"\0" * (4 * 1024 * 1024 - 64 * 1024))
    out = small_disk / "run"
    r = run(tmp_path, f"output_dir={out}", "trainer.max_epochs=2", "deepfool_samples=0")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "Logging error" not in r.stderr, r.stderr[-3000:]
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert line.startswith(f"error: cannot write {out / 'checkpoints' / 'last.ckpt'}: No space left on device")
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(".tmp")]
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    r = run(tmp_path, f"output_dir={out / 'new'}", "trainer.max_epochs=2")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert line.startswith(f"error: cannot write {out / 'new'}: Read-only file system (")
    assert "make the folder writable (or use another output_dir)" in line


def test_a_failed_atomic_write_keeps_the_old_file_names_the_path_and_leaves_no_temporary(tmp_path, monkeypatch):
    """An injected ENOSPC while summary.json is flushed: the previous summary stays, no .tmp is left, and
    the error names the file (a failed write() alone names none)."""
    import errno

    from binary_encoding.record import files

    path = tmp_path / "summary.json"
    files.write_json(path, {"test_acc": 0.5})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as err:
        files.write_json(path, {"test_acc": 0.9})
    assert err.value.filename == str(path) and err.value.errno == errno.ENOSPC
    assert json.loads(path.read_text()) == {"test_acc": 0.5} and sorted(p.name for p in tmp_path.iterdir()) == [
        "summary.json"
    ]
