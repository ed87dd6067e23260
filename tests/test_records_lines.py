"""Lines of the job records and resume that no other test pinned, one source function at a time, by direct
calls on tmp_path: the lock's accepted bounds, its refusal and heartbeat under a take-over or a full disk,
the watchdog outside the main thread, the recap of a cut summary or a stale lock, the sweep's job line, the
write errors' context, the resume checks of a cut-off checkpoint, the failure record on a full disk, and
small record helpers (W&B id, folder names, latents hint, metrics.csv, W&B lines). Each test pins values a
plausible one-line bug of its line would change."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf
from test_console import _job
from test_record_values import _tiny_checkpoint

from binary_encoding.record import csv_log, files, identity, summarize, wandb_run
from binary_encoding.run import job, lock, sweep_log, watchdog, writes
from binary_encoding.run.policy import ConfigError


def _write_lock(folder: Path, **fields) -> dict:
    h = {**lock.me(), **fields}
    (folder / lock.LOCK).write_text(json.dumps(h))
    return h


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.005)
    return True


# ------------------------------------------------------------------------------------------------
# lock._well_formed, lock._alive_here: the bounds a real lock may take
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("since", 0), ("since", 0.0), ("heartbeat", 1e11 - 1), ("pid", 1), ("pid", 2**31 - 1), ("pid_start", None)],
)
def test_a_lock_at_the_edges_of_its_shape_still_reads_back_as_it_is(tmp_path, field, value):
    """The shape check's bounds are 0 <= time < 1e11 and 0 < pid < 2**31: values on them are a lock."""
    h = _write_lock(tmp_path, **{field: value})
    assert lock.holder(tmp_path) == h


def test_a_lock_of_this_process_without_a_start_time_is_alive_and_with_another_start_time_is_gone():
    """A holder that could not read its start time (None) is taken as alive while its pid runs here."""
    h = {**lock.me(), "pid_start": None}
    assert lock.stale_reason(h) is None
    assert lock.stale_reason({**h, "pid_start": "1"}) == f"its process {os.getpid()} is gone"
    assert lock.stale_reason({**h, "pid_start": lock.proc_start(os.getpid())}) is None


def test_a_lock_held_by_another_users_live_process_is_alive_and_judged_by_its_start_time(monkeypatch):
    """os.kill(pid, 0) raises PermissionError for a live process of another user (root never sees it, so
    the call is replaced): that holder is alive, and, as for any live pid, a recorded start time that is not
    the process's own means the pid was reused."""
    pid = os.getppid()  # a live process whose start time can be read

    def other_users(p, sig):
        assert (p, sig) == (pid, 0)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(lock.os, "kill", other_users)
    h = {**lock.me(), "pid": pid, "pid_start": lock.proc_start(pid)}
    assert lock.stale_reason(h) is None
    assert lock.stale_reason({**h, "pid_start": None}) is None
    assert lock.stale_reason({**h, "pid_start": "1"}) == f"its process {pid} is gone"


def test_a_lock_of_a_process_that_ended_on_this_host_is_gone():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()  # reaped: the pid names no process
    h = {**lock.me(), "pid": p.pid, "pid_start": None}
    assert lock.stale_reason(h) == f"its process {p.pid} is gone"


def test_an_empty_holder_cannot_be_read():
    assert lock.stale_reason({}) == "it cannot be read"
    assert lock.describe({}) == "unreadable, or not a lock this program wrote"


# ------------------------------------------------------------------------------------------------
# lock.acquire: the refusal names its holder and leaves its lock
# ------------------------------------------------------------------------------------------------


def test_a_live_holder_on_another_host_is_refused_by_name_and_its_lock_stays(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    h = _write_lock(tmp_path, host="node-elsewhere", pid=4321, slurm_job="77", heartbeat=time.time())
    with pytest.raises(lock.FolderBusy) as busy:
        lock.acquire(tmp_path)
    assert busy.value.holder == lock.describe(h) and busy.value.holder.startswith("host node-elsewhere, pid 4321, ")
    assert str(busy.value).startswith(f"{tmp_path} is in use by another job (host node-elsewhere, pid 4321, SLURM")
    assert str(busy.value).endswith(f"(if no job runs there, remove {tmp_path / lock.LOCK})")
    assert lock.holder(tmp_path) == h


# ------------------------------------------------------------------------------------------------
# lock._beat: a take-over by another pid, a full disk
# ------------------------------------------------------------------------------------------------


def _beating(folder: Path, mine: dict, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.01)
    stop = threading.Event()
    beat = threading.Thread(target=lock._beat, args=(folder, mine, stop), daemon=True)
    beat.start()
    return stop, beat


def test_the_heartbeat_stops_when_another_pid_took_the_lock_at_the_same_second(tmp_path, monkeypatch):
    mine = lock.acquire(tmp_path)
    other = {**mine, "pid": mine["pid"] + 1}
    (tmp_path / lock.LOCK).write_text(json.dumps(other))
    stop, beat = _beating(tmp_path, mine, monkeypatch)
    beat.join(timeout=3)
    ended = not beat.is_alive()
    stop.set()
    beat.join(timeout=3)
    assert ended and lock.holder(tmp_path) == other


def test_a_heartbeat_that_cannot_be_written_once_is_written_at_the_next_beat(tmp_path, monkeypatch):
    mine = lock.acquire(tmp_path)
    real, tries = lock._write, []

    def write(path, h, exclusive):
        tries.append(h["heartbeat"])
        if len(tries) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, h, exclusive)

    monkeypatch.setattr(lock, "_write", write)
    stop, beat = _beating(tmp_path, mine, monkeypatch)
    refreshed = _wait_for(lambda: lock.holder(tmp_path)["heartbeat"] != mine["heartbeat"])
    stop.set()
    beat.join(timeout=3)
    assert refreshed and len(tries) >= 2 and lock.holder(tmp_path)["since"] == mine["since"]


# ------------------------------------------------------------------------------------------------
# watchdog.arm: outside the main thread, and None after a grace
# ------------------------------------------------------------------------------------------------


def test_no_watchdog_is_armed_from_a_thread_other_than_the_main_one():
    got = []
    t = threading.Thread(target=lambda: got.append(watchdog.arm(5.0)))
    t.start()
    t.join(timeout=10)
    assert got == [False] and watchdog._ARMED is None


def test_arming_with_no_grace_after_a_grace_ends_the_watch():
    try:
        assert watchdog.arm(30.0) is True
        proc = watchdog._ARMED[2]
        assert watchdog.arm(None) is False
        assert watchdog._ARMED is None and proc.returncode == 0
    finally:
        watchdog.disarm()


# ------------------------------------------------------------------------------------------------
# sweep_log: the recap of a cut summary or a stale lock, the summary times, the job line
# ------------------------------------------------------------------------------------------------


def test_a_cut_summary_is_unfinished_in_the_recap_and_a_stale_lock_is_no_running_job(tmp_path):
    sweep = tmp_path / "s"
    cut = _job(sweep, ["lr=1"])
    (cut / files.SUMMARY).write_text('{"test_acc": 0.9')
    stale = _job(sweep, ["lr=2"])
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    _write_lock(stale, pid=p.pid, pid_start=None)  # this host, its process gone
    lines = sweep_log.recap(str(sweep), [["lr=1"], ["lr=2"]], {}, ".hydra").splitlines()
    assert lines[1] == "1/2  unfinished         -      -       -  lr=1"
    assert lines[2] == "2/2  unfinished         -      -       -  lr=2"
    assert lines[3] == "2 jobs: 2 unfinished"


def test_the_summary_times_leave_out_folders_without_a_summary(tmp_path):
    sweep = tmp_path / "s"
    done = _job(sweep, ["lr=1"], summary={"test_acc": 0.5})
    _job(sweep, ["lr=2"])
    folders = sweep_log.job_folders(sweep, ".hydra")
    assert sweep_log.summary_times(folders.values()) == {done: (done / files.SUMMARY).stat().st_mtime_ns}


def test_each_job_of_a_sweep_logs_its_number_from_one_the_count_and_its_overrides(monkeypatch):
    from hydra.types import RunMode

    said = []
    monkeypatch.setattr(sweep_log, "log", SimpleNamespace(info=lambda fmt, *a: said.append(fmt % a)))
    cb = sweep_log.SweepLog()
    cb.jobs = [["lr=1", "seed=0"], ["lr=2", "seed=0"], ["lr=3", "seed=0"]]
    config = lambda mode, num: OmegaConf.create(  # noqa: E731
        {"hydra": {"mode": mode, "job": {"num": num}, "overrides": {"task": ["lr=2", "seed=0"]}}}
    )
    cb.on_job_start(config(RunMode.MULTIRUN, 1))
    cb.on_job_start(config(RunMode.RUN, 1))  # a single run: no job line
    cb.jobs = None  # another sweeper: no count
    cb.on_job_start(config(RunMode.MULTIRUN, 0))
    assert said == ["job 2/3: lr=2,seed=0", "job 1: lr=2,seed=0"]


# ------------------------------------------------------------------------------------------------
# writes.output_errors, writes.preflight_message
# ------------------------------------------------------------------------------------------------


def test_a_full_disk_in_the_block_becomes_one_output_error_and_quiets_the_log_handlers(tmp_path, monkeypatch):
    monkeypatch.setattr(logging, "raiseExceptions", True)
    monkeypatch.setattr(writes, "free_space", lambda path: "0 bytes")
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "metrics.csv"))
    with pytest.raises(writes.OutputError) as caught, writes.output_errors(tmp_path):
        raise full
    assert caught.value.__cause__ is full and logging.raiseExceptions is False
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'metrics.csv'}: No space left on device (0 bytes")


def test_another_os_error_in_the_block_passes_as_it_is_and_leaves_the_log_handlers(tmp_path, monkeypatch):
    monkeypatch.setattr(logging, "raiseExceptions", True)
    other = OSError(errno.EIO, "Input/output error", str(tmp_path / "x"))
    with pytest.raises(OSError) as caught, writes.output_errors(tmp_path):
        raise other
    assert caught.value is other and logging.raiseExceptions is True


def test_a_home_relative_output_dir_is_probed_in_the_home_folder(tmp_path, monkeypatch):
    import tempfile

    probed = []
    real = tempfile.NamedTemporaryFile
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda dir, **kw: probed.append(dir) or real(dir=dir, **kw))
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert writes.preflight_message(["output_dir=~/runs/a"]) is None
    assert probed == [home]


# ------------------------------------------------------------------------------------------------
# job: failure record on a full disk, start, the checkpoint checks, a finished run of other settings
# ------------------------------------------------------------------------------------------------


def test_a_failure_that_cannot_be_recorded_still_raises_its_own_error(tmp_path, monkeypatch, caplog):
    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "write_json", full)
    with caplog.at_level(logging.WARNING, logger="binary_encoding"), pytest.raises(ValueError, match="^boom$"):
        with job.recording_failure(tmp_path):
            raise ValueError("boom")
    assert not (tmp_path / files.FAILED).exists()


def test_a_job_start_keeps_a_given_run_name_and_group_and_writes_the_resolved_config(tmp_path):
    cfg = OmegaConf.create(
        {"name": "s", "head": {"name": "binenc"}, "seed": 1, "lr": 0.5, "lr2": "${lr}", "resume": True,
         "run_name": "mine", "group": "g"}
    )  # fmt: skip
    job.start(cfg, tmp_path)
    written = OmegaConf.load(tmp_path / files.CONFIG)
    assert (cfg.run_name, cfg.group, cfg.output_dir) == ("mine", "g", str(tmp_path))
    assert written.run_name == "mine" and written.group == "g"
    assert "lr2: 0.5\n" in (tmp_path / files.CONFIG).read_text()  # resolved: no ${lr} left to a later config
    cfg2 = OmegaConf.create({"name": "s", "head": {"name": "binenc"}, "seed": 2, "run_name": None, "group": ""})
    (tmp_path / "b").mkdir()
    job.start(cfg2, tmp_path / "b")
    assert (cfg2.run_name, cfg2.group) == ("head=binenc,seed=2", "s/head=binenc")


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04cut"])
def test_a_cut_off_last_checkpoint_is_refused_before_the_job_writes_anything(tmp_path, content):
    ckpt = files.last_checkpoint(tmp_path)
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(content)
    cfg = OmegaConf.create({"resume": True, "ckpt_path": None, "trainer": {"max_epochs": 5}})
    with pytest.raises(ConfigError, match=r"is not a readable checkpoint \(cut off while written\?\): remove it"):
        job.check_checkpoint(cfg, tmp_path)


def test_a_checkpoint_without_loop_counters_resumes_and_one_past_max_epochs_is_refused(tmp_path):
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    cfg = lambda m: OmegaConf.create({"resume": True, "ckpt_path": None, "trainer": {"max_epochs": m}})  # noqa: E731
    job.check_checkpoint(cfg(1), tmp_path)  # no counters: nothing to compare
    job.check_checkpoint(cfg(1), tmp_path / "empty")  # no checkpoint: nothing to check
    torch.save(
        {"loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 4}}}}}, files.last_checkpoint(tmp_path)
    )
    job.check_checkpoint(cfg(4), tmp_path)
    with pytest.raises(ConfigError, match=r"is at epoch 4, past trainer.max_epochs=3: resume with trainer.max"):
        job.check_checkpoint(cfg(3), tmp_path)


def test_a_finished_run_of_other_settings_is_refused_and_one_without_a_config_is_skipped(tmp_path, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    cfg = OmegaConf.create({"resume": True, "ckpt_path": None, "lr": 0.2, "trainer": {"max_epochs": 2}})
    files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5, "epochs": 2})
    assert job.finished(cfg, tmp_path) == {"test_acc": 0.5, "epochs": 2}  # no config.yaml: nothing to compare
    OmegaConf.save(OmegaConf.create({**cfg, "lr": 0.1}), tmp_path / files.CONFIG)
    with pytest.raises(ConfigError, match=r"holds a finished run with other settings \(lr: 0.1 -> 0.2\)"):
        job.finished(cfg, tmp_path)
    OmegaConf.save(cfg, tmp_path / files.CONFIG)
    assert job.finished(cfg, tmp_path) == {"test_acc": 0.5, "epochs": 2}


# ------------------------------------------------------------------------------------------------
# record.files: the W&B run id, a failed write's name
# ------------------------------------------------------------------------------------------------


def test_a_w_and_b_run_id_written_with_a_newline_is_read_without_it(tmp_path):
    (tmp_path / files.WANDB_ID).write_text("  abc123def456\n")
    assert files.wandb_run_id(tmp_path) == "abc123def456"
    assert (tmp_path / files.WANDB_ID).read_text() == "  abc123def456\n"  # kept, not rewritten


def test_a_write_that_fails_without_a_file_name_names_the_target_and_leaves_no_temporary(tmp_path, monkeypatch):
    def fails(path, data):
        Path(path).write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_synced", fails)
    with pytest.raises(OSError) as caught:
        files.write_atomic(tmp_path / "a.json", "{}")
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(tmp_path / "a.json"))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# record.identity: overrides without a value, the root folder, ++ and ~
# ------------------------------------------------------------------------------------------------


def test_override_keys_drop_their_prefixes_and_a_deletion_names_a_folder_as_it_is():
    assert [identity.override_key(o) for o in ("++a.b=1", "+c=2", "~d.root", "e=f=g")] == ["a.b", "c", "d.root", "e"]
    assert identity.folder_name(["~data.root", "lr=1"]) == "lr=1,~data.root"
    assert identity.group_name("s", ["~data.root", "seed=3"]) == "s/~data.root"


def test_the_root_folder_as_a_path_value_is_named_root_and_a_hash_of_it():
    digest = hashlib.sha256(b"/").hexdigest()[:8]
    assert identity.short_path("/") == f"root-{digest}"
    assert identity.folder_name(["data.root=/"]) == f"data.root=root-{digest}"


# ------------------------------------------------------------------------------------------------
# record.summarize: the diverged hint's bounds, a checkpoint fingerprint that cannot be read
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "z, gamma, collapsed",
    [(0.049, 1.0, True), (0.05, 10.0, False), (0.01, 0.99, False), (0.01, None, False), (None, 10.0, False)],
)
def test_a_diverged_run_is_said_to_have_collapsed_only_below_005_under_a_gamma_of_at_least_1(z, gamma, collapsed):
    hint = summarize.diverged_hint({"train_abs_z": z, "gamma": gamma})
    if collapsed:
        assert hint == f"latents collapsed to |z| ~ {z:.2g} under gamma {gamma:.4g}: lower head.gamma_max"
    else:
        assert hint == "lower the learning rate"


def test_a_checkpoint_that_is_missing_or_no_zip_has_no_fingerprint_and_a_real_one_has_one(tmp_path):
    assert summarize.checkpoint_fingerprint(tmp_path / "missing.ckpt") is None
    (tmp_path / "cut.ckpt").write_bytes(b"PK\x03\x04 cut")
    assert summarize.checkpoint_fingerprint(tmp_path / "cut.ckpt") is None
    _tiny_checkpoint(tmp_path / "a.ckpt", 1.0)
    fp = summarize.checkpoint_fingerprint(tmp_path / "a.ckpt")
    assert isinstance(fp, str) and len(fp) == 16


# ------------------------------------------------------------------------------------------------
# record.csv_log: values without an epoch, the step, a folder without metrics.csv
# ------------------------------------------------------------------------------------------------


def test_values_without_an_epoch_write_no_row_and_each_row_keeps_its_last_step(tmp_path):
    rec = csv_log.LocalRecord(tmp_path)
    rec.log_metrics({"test/acc": 0.9}, step=7)
    assert not (tmp_path / files.METRICS).exists() and csv_log.read_rows(tmp_path) == []
    rec.log_metrics({"epoch": 0, "val/acc": 0.5}, step=3)
    rec.log_metrics({"epoch": 0, "train/loss": 1.25}, step=4)
    assert csv_log.read_rows(tmp_path) == [{"epoch": "0", "step": "4", "val/acc": "0.5", "train/loss": "1.25"}]


# ------------------------------------------------------------------------------------------------
# record.wandb_run: the sync command of a folder with a space, rank 0's lines, the write probe
# ------------------------------------------------------------------------------------------------


def test_the_sync_command_quotes_a_folder_with_a_space_for_the_shell():
    assert wandb_run.offline_sync_command("/runs/a b", "id1") == "wandb sync '/runs/a b/wandb'/offline-run-*-id1"


def test_w_and_b_lines_come_from_rank_0_only(monkeypatch, capsys):
    from binary_encoding import ranks

    wandb_run.say("line one")
    monkeypatch.setattr(ranks, "is_rank0", lambda: False)
    wandb_run.say("line two")
    assert capsys.readouterr().err == "line one\n"


def test_a_folder_is_writable_when_it_can_be_made_and_not_when_a_file_stands_in_its_place(tmp_path):
    assert wandb_run.write_error(tmp_path / "new" / "sub") is None and (tmp_path / "new" / "sub").is_dir()
    (tmp_path / "file").write_text("x")
    err = wandb_run.write_error(tmp_path / "file")
    assert isinstance(err, OSError) and err.errno in (errno.EEXIST, errno.ENOTDIR)


# ------------------------------------------------------------------------------------------------
# run.ddp_worker.main: one config file, nothing else
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["a.yaml", "b.yaml"]])
def test_a_ddp_rank_started_without_exactly_one_config_file_stops_with_its_usage(argv):
    from binary_encoding.run import ddp_worker

    with pytest.raises(SystemExit) as stop:
        ddp_worker.main(argv)
    assert str(stop.value).startswith("usage: python -m torch.distributed.run ... -m binary_encoding.run.ddp_worker")
