"""The records of a job folder, one function at a time, on tmp_path: what the checkpoint commit waits for,
the columns of metrics.csv, which keys define a run, the summary's keys, the lock's stale rules, the
sweep's recap lines, the failure record, the write errors. Direct calls only (no training): each test
pins values a plausible one-line bug would change."""

from __future__ import annotations

import errno
import json
import math
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

from binary_encoding.record import csv_log, files, identity, summarize
from binary_encoding.run import job, lock, sweep_log, writes
from binary_encoding.run.policy import ConfigError

# ------------------------------------------------------------------------------------------------
# Checkpoints: held back until the epoch's row is whole
# ------------------------------------------------------------------------------------------------


def test_a_held_checkpoint_is_committed_only_by_its_epochs_last_value_or_a_successful_end(tmp_path):
    """hold=True stops at last.ckpt.tmp; values of the epoch without train/loss (validation's), or a failed
    end, leave the previous last.ckpt; train/loss with the epoch, or a successful end, rename it into place."""
    from binary_encoding.record.checkpoint_io import AtomicCheckpointIO, EpochCommit

    path = files.last_checkpoint(tmp_path)
    io = AtomicCheckpointIO(hold=True)
    commit = EpochCommit(io)
    io.save_checkpoint({"epoch": 0}, path)
    assert not path.exists() and (tmp_path / "checkpoints" / "last.ckpt.tmp").exists()
    commit.log_metrics({"epoch": 0, "val/acc": 0.5})  # validation's values: the row is not whole yet
    commit.log_metrics({"train/loss": 0.5}, step=3)  # a step's value, no epoch
    commit.finalize("failed")
    assert not path.exists()
    commit.log_metrics({"epoch": 0, csv_log.EPOCH_COMPLETE: 0.5})
    assert torch.load(path, weights_only=False) == {"epoch": 0} and io.pending is None
    io.save_checkpoint({"epoch": 1}, path)
    commit.finalize("failed")  # a crash after the save: the epoch's row may be cut, the old checkpoint stays
    assert torch.load(path, weights_only=False) == {"epoch": 0}
    commit.finalize("success")  # the fit ended after its last save: nothing else of that epoch comes
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]


def test_an_unheld_checkpoint_is_in_place_at_once_and_storage_options_are_refused(tmp_path):
    from binary_encoding.record.checkpoint_io import AtomicCheckpointIO

    path = tmp_path / "deep" / "x.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(2)}, path)
    assert torch.equal(torch.load(path, weights_only=False)["w"], torch.ones(2)) and io.pending is None
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.ckpt"]
    with pytest.raises(TypeError, match="takes no storage_options"):
        io.save_checkpoint({}, path, storage_options={"a": 1})


# ------------------------------------------------------------------------------------------------
# metrics.csv
# ------------------------------------------------------------------------------------------------


def test_metrics_csv_columns_are_epoch_step_then_catalog_keys_split_by_split_then_the_rest_in_logging_order(tmp_path):
    """epoch, step, the catalog's train/ keys (catalog order), its val/ keys, its keys without a split
    (gamma), then keys outside the catalog in the order they were first logged; a call without an epoch
    (end-of-fit values) writes nothing."""
    rec = csv_log.LocalRecord(tmp_path)
    rec.log_metrics({"test_acc": 0.9})
    assert not (tmp_path / files.METRICS).exists() and csv_log.read_rows(tmp_path) == []
    rec.log_metrics({"epoch": 0, "zeta": 1.0, "val/acc": 0.5, "gamma": 0.01, "train/loss": 2.0}, step=7)
    rec.log_metrics({"epoch": 0, "alpha": 3.0, "train/acc": 0.25}, step=9)
    header = (tmp_path / files.METRICS).read_text().splitlines()[0]
    assert header == "epoch,step,train/acc,train/loss,val/acc,gamma,zeta,alpha"
    assert csv_log.read_rows(tmp_path) == [
        {"epoch": "0", "step": "9", "train/acc": "0.25", "train/loss": "2.0", "val/acc": "0.5", "gamma": "0.01",
         "zeta": "1.0", "alpha": "3.0"}
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Which keys define a run (docs/job_folders.md: max_epochs, the hardware and the measurements may change)
# ------------------------------------------------------------------------------------------------

WHERE_AND_HOW = [
    "output_dir", "run_name", "group", "name", "resume", "ckpt_path", "logger.mode", "runtime.threads",
    "callbacks.metrics.every", "head.net.hidden", "trainer.enable_progress_bar", "trainer.log_every_n_steps",
    "trainer.accelerator", "trainer.devices", "trainer.strategy", "trainer.sync_batchnorm", "metrics_every",
    "metrics.hist_every", "deepfool_samples", "save_latents", "data.skip_unreadable",
]  # fmt: skip
DEFINING = ["lr", "seed", "head.name", "head.gamma_max", "data.name", "data.root", "backbone.name", "data.split_seed"]


@pytest.mark.parametrize("key", WHERE_AND_HOW)
def test_where_and_how_a_job_ran_defines_no_run_and_may_change_on_resume(key):
    assert not identity.defines_run(key) and identity.may_change_on_resume(key)
    assert not identity.splits_report_row(key)


def test_what_a_run_trains_defines_it_and_only_max_epochs_and_metrics_may_change_on_resume():
    for key in DEFINING:
        assert identity.defines_run(key) and not identity.may_change_on_resume(key), key
    for key in ("trainer.max_epochs", "metrics.nc_labels"):  # a longer run, other measurements of it
        assert identity.defines_run(key) and identity.may_change_on_resume(key), key
    # report rows: seeds are pooled and the learning rate selected inside a row; class paths split nothing
    keys = ("lr", "seed", "data._target_", "head.name", "metrics.nc_labels")
    assert [identity.splits_report_row(k) for k in keys] == [False, False, False, True, True]


def test_the_config_fingerprint_follows_the_defining_settings_only():
    base = {"lr": 0.1, "seed": 0, "head": {"name": "binenc", "net": {"h": 3}}, "output_dir": "/a", "logger": {"m": 1}}
    fp = identity.fingerprint(base)
    assert len(fp) == 16 and int(fp, 16) >= 0
    moved = {**base, "output_dir": "/b", "logger": {"m": 2}, "head": {"name": "binenc", "net": {"h": 4}}}
    assert identity.fingerprint(moved) == fp
    assert identity.fingerprint(dict(reversed(list(base.items())))) == fp  # key order is no setting
    assert identity.fingerprint({**base, "lr": 0.2}) != fp and identity.fingerprint({**base, "seed": 1}) != fp


@pytest.mark.parametrize(
    "key, value, path",
    [
        ("data.root", "images", True), ("data.cache_dir", "cache", True), ("+x.ckpt_file", "a", True),
        ("+tag", "a/b", True), ("+tag", "a\\b", True), ("lr", "0.1", False), ("data.name", "digits", False),
        ("head.dirac", "x", False),
    ],
)  # fmt: skip
def test_an_override_is_a_path_by_its_keys_last_part_or_a_slash_in_its_value(key, value, path):
    assert identity.is_path(key, value) is path


def test_a_path_in_a_folder_name_is_its_base_name_and_a_hash_of_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert identity.short_path("images") == identity.short_path(str(tmp_path / "images"))  # relative = absolute
    assert identity.short_path(str(tmp_path / "images") + "/") == identity.short_path(str(tmp_path / "images"))
    assert identity.short_path("~/x") == identity.short_path(os.path.expanduser("~/x"))
    name = identity.short_path("/d/my data:" + "x" * 60)
    base, digest = name.rsplit("-", 1)
    assert base == "my_data_" + "x" * 32 and len(digest) == 8 and int(digest, 16) >= 0  # 40 characters, no ':'
    assert identity.short_path("/").startswith("root-")
    assert identity.override_key("+a.b=1") == "a.b" and identity.override_key("~a.b") == "a.b"


def test_a_folder_name_is_the_sorted_overrides_whatever_their_order_with_paths_short():
    a = identity.folder_name(["lr=1", "data.root=/d/images", "+b=2", "logger=csv", "seed=0"])
    assert a == f"+b=2,data.root={identity.short_path('/d/images')},lr=1,seed=0"
    assert identity.folder_name(["seed=0", "+b=2", "lr=1", "data.root=/d/images"]) == a


def test_a_name_of_exactly_the_limit_is_kept_and_one_byte_more_is_cut_to_the_limit():
    assert identity.cut_to("a" * 240, 240) == "a" * 240
    cut = identity.cut_to("a" * 241, 240)
    assert len(cut.encode()) == 240 and cut.startswith("a" * 227 + "~") and cut != identity.cut_to("a" * 242, 240)


def test_a_w_and_b_group_is_the_sweep_alone_without_defining_overrides_and_at_most_128_characters():
    assert identity.group_name("s", ["seed=3", "output_dir=/x", "logger=csv", "trainer.devices=2"]) == "s"
    long = identity.group_name("sweep", ["+tag=" + "x" * 300, "lr=0.1"])
    assert len(long.encode()) == 128 and long.startswith("sweep/+tag=xxx")


# ------------------------------------------------------------------------------------------------
# summary.json
# ------------------------------------------------------------------------------------------------


def test_a_run_summary_holds_the_run_info_then_the_catalogs_metrics_in_order_then_the_rest():
    """The info keys with the config's values, diverged from the training accuracy against the majority
    share (0.6 is above chance on 2 balanced classes, below it when one class holds 90%), the catalog's
    final metrics in catalog order whatever order they came in, other keys after, fit_seconds rounded."""
    names = {part: {"name": part[0]} for part in ("head", "backbone", "data")}
    cfg = OmegaConf.create({**names, "seed": 3, "lr": 0.5})
    metrics = {"zz": 1, "test_acc": 0.7, "train_majority": 0.9, "train_acc": 0.6}
    s = summarize.run_summary(cfg, 4, 0.25, metrics, 12.3456, 2)
    assert list(s.items()) == [
        ("head", "h"), ("backbone", "b"), ("data", "d"), ("seed", 3), ("lr", 0.5), ("epochs", 4), ("gamma", 0.25),
        ("diverged", True), ("train_acc", 0.6), ("test_acc", 0.7), ("train_majority", 0.9), ("zz", 1),
        ("fit_seconds", 12.35),
    ]  # fmt: skip
    balanced = summarize.run_summary(cfg, 4, 0.25, {"train_acc": 0.6, "train_majority": 0.5}, 1.0, 2)
    assert balanced["diverged"] is False
    assert summarize.run_summary(cfg, 4, 0.25, {"test_acc": 0.1}, 1.0, 10)["diverged"] is False  # no train_acc


def _tiny_checkpoint(path, value: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.full((3,), value)}}, path)


def test_a_summary_without_fingerprints_counts_and_one_with_them_must_match_config_and_checkpoint(tmp_path):
    """Older runs' summaries (no fingerprints) count beside any config and checkpoint; with fingerprints
    they count when both match; an unreadable config.yaml cannot vouch for the summary."""
    config = {"lr": 0.1, "seed": 0, "output_dir": str(tmp_path)}
    OmegaConf.save(OmegaConf.create(config), tmp_path / files.CONFIG)
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5})
    assert summarize.read(tmp_path) == ({"test_acc": 0.5}, "")
    whole = {"test_acc": 0.5, **summarize.belongs_to(config, tmp_path)}
    assert whole[summarize.CONFIG_FINGERPRINT] == identity.fingerprint(config)
    files.write_json(tmp_path / files.SUMMARY, whole)
    assert summarize.read(tmp_path) == (whole, "")
    (tmp_path / files.CONFIG).write_text("lr: [unclosed\n")
    summary, why = summarize.read(tmp_path)
    assert summary is None and why.startswith(f"its {files.CONFIG} is unreadable (")


# ------------------------------------------------------------------------------------------------
# The failure record and the job's checks
# ------------------------------------------------------------------------------------------------


def test_failed_json_is_removed_when_the_job_runs_again_and_records_any_error_or_stop(tmp_path, monkeypatch):
    (tmp_path / files.FAILED).write_text("{}")
    with job.recording_failure(tmp_path):
        assert not (tmp_path / files.FAILED).exists()  # an earlier attempt's, gone before this one runs
    assert not (tmp_path / files.FAILED).exists()
    with pytest.raises(ValueError), job.recording_failure(tmp_path):
        raise ValueError("lr must be positive")
    record = json.loads((tmp_path / files.FAILED).read_text())
    assert record["error"] == "ValueError: lr must be positive" and "ValueError" in record["traceback"]
    with pytest.raises(job.Terminated), job.recording_failure(tmp_path):  # a SystemExit: a stop, recorded too
        raise job.Terminated(143, "terminated at epoch 2")
    assert json.loads((tmp_path / files.FAILED).read_text())["error"] == "Terminated: terminated at epoch 2"

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_json", full)  # a full disk: the job's own error is the one raised
    with pytest.raises(KeyError), job.recording_failure(tmp_path):
        raise KeyError("x")


@pytest.mark.parametrize("asked", [-1, None, 2])
def test_a_finished_run_is_not_trained_on_for_unlimited_unset_or_the_same_epochs(tmp_path, asked):
    (tmp_path / files.SUMMARY).write_text("{}")
    cfg = OmegaConf.create({"trainer": {"max_epochs": asked}})
    assert job._trains_on(cfg, tmp_path, {"epochs": 2}) is False
    assert job._trains_on(OmegaConf.create({"trainer": {"max_epochs": 3}}), tmp_path, {"test_acc": 1}) is False
    assert (tmp_path / files.SUMMARY).exists() and not (tmp_path / files.STALE_SUMMARY).exists()


def test_a_finished_run_asked_for_fewer_epochs_is_refused_and_for_more_trains_on(tmp_path):
    (tmp_path / files.SUMMARY).write_text('{"epochs": 2}')
    with pytest.raises(ConfigError, match="finished at 2 epochs; trainer.max_epochs=1 asks for fewer"):
        job._trains_on(OmegaConf.create({"trainer": {"max_epochs": 1}}), tmp_path, {"epochs": 2})
    assert (tmp_path / files.SUMMARY).exists()
    assert job._trains_on(OmegaConf.create({"trainer": {"max_epochs": 3}}), tmp_path, {"epochs": 2}) is True
    assert not (tmp_path / files.SUMMARY).exists() and (tmp_path / files.STALE_SUMMARY).read_text() == '{"epochs": 2}'


def test_outside_hydra_a_job_is_named_by_head_and_seed_and_goes_to_a_timestamped_folder_of_its_name():
    cfg = OmegaConf.create({"output_dir": None, "name": "s", "head": {"name": "binenc"}, "seed": 3})
    out = job.output_dir(cfg)
    assert out.parent == Path("outputs") / "s" and time.strptime(out.name, "%Y-%m-%d_%H-%M-%S")
    assert job.output_dir(OmegaConf.create({**cfg, "output_dir": "/x/y"})) == Path("/x/y")
    assert job.run_name(cfg) == "head=binenc,seed=3" and job.run_group(cfg) == "s/head=binenc"
    assert job.resume_hint(cfg, Path("/x/y")) == "resume with train(cfg) and output_dir=/x/y"


def test_the_settings_diff_names_eight_keys_then_counts_the_rest_and_says_unset(tmp_path):
    old = {f"k{i}": i for i in range(9)} | {"trainer": {"max_epochs": 2}, "logger": {"mode": "offline"}}
    OmegaConf.save(OmegaConf.create(old), tmp_path / files.CONFIG)
    new = {f"k{i}": i + 1 for i in range(9)} | {"trainer": {"max_epochs": 9}, "logger": {"mode": "online"}}
    diff = job.settings_diff(OmegaConf.create(new), tmp_path)
    assert diff == "; ".join(f"k{i}: {i} -> {i + 1}" for i in range(8)) + " and 1 more"
    eight = OmegaConf.create({**new, "k8": 8})
    assert job.settings_diff(eight, tmp_path) == "; ".join(f"k{i}: {i} -> {i + 1}" for i in range(8))
    only_new = OmegaConf.create({**old, "extra": "x"})
    assert job.settings_diff(only_new, tmp_path) == "extra: '(unset)' -> 'x'"
    assert job.settings_diff(OmegaConf.create({**old, "trainer": {"max_epochs": 9}}), tmp_path) is None


def test_a_cut_off_run_with_other_settings_is_refused_only_when_it_would_resume(tmp_path):
    OmegaConf.save(OmegaConf.create({"lr": 0.1}), tmp_path / files.CONFIG)
    cfg = lambda **kw: OmegaConf.create({"lr": 0.2, **kw})  # noqa: E731
    job.check_same_run(cfg(), tmp_path)  # no checkpoint: nothing to continue
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    with pytest.raises(ConfigError, match=r"holds a cut-off run with other settings \(lr: 0.1 -> 0.2\)"):
        job.check_same_run(cfg(), tmp_path)
    job.check_same_run(cfg(resume="force"), tmp_path)
    job.check_same_run(cfg(resume=False), tmp_path)


@pytest.mark.parametrize("max_epochs", [-1, None])
def test_a_checkpoint_resumes_under_unlimited_or_unset_max_epochs(tmp_path, max_epochs):
    ckpt = tmp_path / "last.ckpt"
    torch.save({"loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}}}, ckpt)
    job.check_checkpoint(OmegaConf.create({"ckpt_path": str(ckpt), "trainer": {"max_epochs": max_epochs}}), tmp_path)
    with pytest.raises(ConfigError, match=r"ckpt_path=.*missing.ckpt is no file"):
        job.check_checkpoint(OmegaConf.create({"ckpt_path": str(tmp_path / "missing.ckpt"), "trainer": {}}), tmp_path)


def test_a_checkpoint_saved_at_epoch_index_e_holds_e_plus_one_epochs(tmp_path):
    from binary_encoding.run.fit import checkpoint_epochs

    torch.save({"epoch": 4}, tmp_path / "c.ckpt")
    assert checkpoint_epochs(str(tmp_path / "c.ckpt")) == 5


# ------------------------------------------------------------------------------------------------
# Write errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "free, said",
    [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB"),
     (3 * 1024**5, "3072.0 TiB")],
)  # fmt: skip
def test_the_free_space_is_said_in_binary_units_of_the_nearest_existing_folder(tmp_path, monkeypatch, free, said):
    asked = []
    monkeypatch.setattr(writes.shutil, "disk_usage", lambda p: asked.append(p) or SimpleNamespace(free=free))
    assert writes.free_space(tmp_path / "not" / "yet") == said and asked == [tmp_path]


def test_a_write_error_without_a_file_names_the_job_folder_and_other_errors_are_not_output_errors(tmp_path):
    err = writes.output_error(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path)
    assert str(err).startswith(f"cannot write {tmp_path}: Disk quota exceeded (") and "not enough" in str(err)
    assert writes.output_error(OSError(errno.ENOENT, "No such file", str(tmp_path / "x")), tmp_path) is None
    assert writes.output_error(ValueError("x"), tmp_path) is None


def test_the_write_probe_goes_to_the_folder_hydra_will_make_or_the_working_directory(tmp_path, monkeypatch):
    """output_dir=, hydra.run.dir= and hydra.sweep.dir= (a + prefix too) are probed at their nearest existing
    folder; an interpolation, an empty or null value probe the working directory; --help probes nothing."""
    import tempfile

    probed, refuse = [], {}
    real = tempfile.NamedTemporaryFile

    def probe(dir, **kw):
        probed.append(dir)
        if dir in refuse:
            raise OSError(refuse[dir], os.strerror(refuse[dir]))
        return real(dir=dir, **kw)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", probe)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    for key in ("output_dir", "hydra.run.dir", "+hydra.sweep.dir"):
        probed.clear()
        assert writes.preflight_message(["lr=1", f"{key}={tmp_path / 'a' / 'b' / 'c'}"]) is None
        assert probed == [tmp_path / "a"], key
    for value in ("${oc.env:HOME}/x", "", "null"):
        probed.clear()
        assert writes.preflight_message([f"output_dir={value}"]) is None and probed == [tmp_path], value
    probed.clear()
    assert writes.preflight_message(["--help", f"output_dir={tmp_path}"]) is None and probed == []
    assert not list(tmp_path.glob(".write_probe_*"))
    refuse[tmp_path / "a"] = errno.EROFS
    msg = writes.preflight_message([f"output_dir={tmp_path / 'a' / 'b'}"])
    assert msg.startswith(f"cannot write {tmp_path / 'a' / 'b'}: Read-only file system (") and "writable" in msg
    refuse[tmp_path / "a"] = errno.EIO
    msg = writes.preflight_message([f"output_dir={tmp_path / 'a'}"])
    assert msg == f"cannot write {tmp_path / 'a'}: {os.strerror(errno.EIO)}"


# ------------------------------------------------------------------------------------------------
# job.lock
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [("heartbeat", math.nan), ("heartbeat", math.inf), ("since", -1.0), ("since", 1e11), ("heartbeat", True),
     ("pid", True), ("pid", 0), ("pid", 2**31), ("pid_start", 5), ("slurm_job", 4242), ("host", None)],
)  # fmt: skip
def test_a_lock_with_a_value_out_of_its_shape_is_unreadable(tmp_path, field, value):
    """A NaN heartbeat would never grow old: such a lock would hold the folder for ever; read as unreadable
    (stale) instead, like any value `me()` never writes. `me()`'s own lock reads back as it is."""
    (tmp_path / lock.LOCK).write_text(json.dumps(lock.me()))
    assert lock.holder(tmp_path) == json.loads((tmp_path / lock.LOCK).read_text())
    (tmp_path / lock.LOCK).write_text(json.dumps({**lock.me(), field: value}))
    assert lock.holder(tmp_path) == {}


def test_another_hosts_lock_is_stale_after_15_silent_minutes_or_10_minutes_ahead(monkeypatch):
    """docs/job_folders.md: another node has not refreshed it for 15 minutes, or its heartbeat lies more
    than 10 minutes in the future."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    h = {**lock.me(), "host": "node-elsewhere", "slurm_job": None, "heartbeat": 10_000.0}
    assert lock.stale_reason(h, now=10_000.0 + 14 * 60) is None
    assert lock.stale_reason(h, now=10_000.0 + 16 * 60) == "its heartbeat is 16 min old"
    assert lock.stale_reason(h, now=10_000.0 - 9 * 60) is None
    assert lock.stale_reason(h, now=10_000.0 - 11 * 60) == (
        "its heartbeat is 11 min in the future (the holder's clock is wrong)"
    )


@pytest.mark.parametrize("field", ["pid", "host", "since"])
def test_release_leaves_a_lock_that_another_process_has_taken_since(tmp_path, field):
    mine = lock.acquire(tmp_path)
    other = {**mine, field: {"pid": mine["pid"] + 1, "host": "node-elsewhere", "since": mine["since"] + 1}[field]}
    (tmp_path / lock.LOCK).write_text(json.dumps(other))
    lock.release(tmp_path, mine)
    assert lock.holder(tmp_path) == other
    (tmp_path / lock.LOCK).write_text(json.dumps(mine))
    lock.release(tmp_path, mine)
    assert lock.holder(tmp_path) is None


def test_the_heartbeat_stops_refreshing_a_lock_taken_over_by_another(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.01)
    mine = lock.acquire(tmp_path)
    stop = threading.Event()
    beat = threading.Thread(target=lock._beat, args=(tmp_path, mine, stop), daemon=True)
    beat.start()
    deadline = time.time() + 10
    while lock.holder(tmp_path)["heartbeat"] == mine["heartbeat"]:
        assert time.time() < deadline, "the heartbeat was never refreshed"
        time.sleep(0.01)
    other = {**mine, "since": mine["since"] + 5, "heartbeat": mine["since"] + 5}
    (tmp_path / lock.LOCK).write_text(json.dumps(other))
    beat.join(timeout=5)
    ended = not beat.is_alive()  # by itself: the lock is no longer its own
    stop.set()
    beat.join(timeout=5)
    assert ended and lock.holder(tmp_path) == other


def test_a_folder_held_again_by_its_holder_is_neither_taken_over_nor_released_inside(tmp_path, recwarn):
    with lock.held(tmp_path):
        h = lock.holder(tmp_path)
        with lock.held(tmp_path):
            pass
        assert lock.holder(tmp_path) == h and h["pid"] == os.getpid()
    assert lock.holder(tmp_path) is None and not [w for w in recwarn if "stale lock" in str(w.message)]
    with pytest.raises(ValueError), lock.held(tmp_path):
        raise ValueError
    assert lock.holder(tmp_path) is None and tmp_path.resolve() not in lock._HELD


def test_a_process_start_time_is_in_clock_ticks_since_boot_and_an_ended_process_is_not_live():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    started = lock.proc_start(p.pid)
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: a zombie
    uptime = float(open("/proc/uptime").read().split()[0])
    try:
        assert 0 <= uptime - int(started) / os.sysconf("SC_CLK_TCK") < 60
        assert lock.proc_start(p.pid) == started and lock.proc_start(p.pid, live=True) is None
        assert lock.proc_start(os.getpid(), live=True) == lock.proc_start(os.getpid())
    finally:
        p.wait()


# ------------------------------------------------------------------------------------------------
# The sweep's recap
# ------------------------------------------------------------------------------------------------


def test_the_recap_cuts_long_errors_survives_unreadable_records_and_names_running_and_refused_jobs(tmp_path):
    sweep = tmp_path / "s"
    _job(sweep, ["lr=1", "e=2"], failed_text=json.dumps({"error": "E" * 150 + "\nsecond line"}))
    _job(sweep, ["lr=2", "e=2"], failed_text='{"error": "cut')
    running = _job(sweep, ["lr=3", "e=2"])
    (running / lock.LOCK).write_text(json.dumps({**lock.me(), "host": "node-elsewhere", "pid": 77, "slurm_job": None}))
    _job(sweep, ["lr=4", "e=2"], summary={"test_acc": 0.5})  # finished by another sweep since the refusal
    jobs = [[f"lr={i}", "e=2"] for i in range(1, 5)]
    lines = sweep_log.recap(str(sweep), jobs, {}, ".hydra", refused={3: "in use by host h, pid 9"}).splitlines()
    assert lines[1] == f"1/4  failed             -      -       -  lr=1  ({'E' * 97}...)"
    assert lines[2] == "2/4  failed             -      -       -  lr=2  (unreadable failed.json)"
    assert lines[3].startswith("3/4  running            -      -       -  lr=3  (in use by host node-elsewhere, pid 77")
    assert lines[4] == "4/4  refused            -      -       -  lr=4  (in use by host h, pid 9)"
    assert lines[5] == "4 jobs: 2 failed, 1 running, 1 refused"
    one = sweep_log.recap(str(sweep), [["lr=4", "e=2"]], {}, ".hydra").splitlines()
    assert one[1] == "1/1  finished      0.5000      -       -  lr=4,e=2"  # a single job keeps all its overrides
    assert sweep_log.recap(str(sweep), jobs, {}, None).splitlines()[1].startswith("1/4  not run ")  # no .hydra


def test_refused_jobs_are_read_by_number_and_only_a_busy_folder_is_a_refusal(tmp_path, capsys):
    notes = tmp_path / sweep_log.REFUSED / "tok"
    notes.mkdir(parents=True)
    (notes / "0").write_text("in use by host a, pid 1\n")
    (notes / "12").write_text("in use by host b, pid 2")
    (notes / "notes.txt").write_text("x")
    assert sweep_log.refused_jobs(tmp_path, "tok") == {0: "in use by host a, pid 1", 12: "in use by host b, pid 2"}
    assert sweep_log.refused_jobs(tmp_path, "other") == {}
    err = ConfigError("lr must be positive")
    assert sweep_log.refusal(err) is err
    refused = sweep_log.refusal(lock.FolderBusy("/x is in use by another job (host h)", holder="host h, pid 3"))
    assert isinstance(refused, sweep_log.Refused) and refused.why == "in use by host h, pid 3"
    assert capsys.readouterr().err == "refused: /x is in use by another job (host h)\n"


# ------------------------------------------------------------------------------------------------
# W&B: tags and pictures
# ------------------------------------------------------------------------------------------------


def test_w_and_b_tags_are_data_backbone_head_experiment_and_sweep_once_each():
    from binary_encoding.record.wandb_run import run_tags

    cfg = {"data": {"name": "digits"}, "backbone": {"name": "mlp"}, "head": {"name": "binenc"}, "name": "sweep1",
           "choices": {"experiment": "digits_mlp"}}  # fmt: skip
    assert run_tags(cfg) == ["digits", "mlp", "binenc", "digits_mlp", "sweep1"]
    assert run_tags({**cfg, "name": "digits"}) == ["digits", "mlp", "binenc", "digits_mlp"]  # once each
    assert run_tags({"head": {"name": "nopen"}, "name": "s"}) == ["nopen", "s"]


def test_the_latent_scatter_uses_code_bits_up_to_8_dimensions_and_the_principal_plane_beyond():
    import numpy as np

    from binary_encoding.record.wandb_media import scatter_xy

    z = np.random.default_rng(0).normal(size=(200, 9)) * np.arange(1, 10)
    xy, names = scatter_xy(z[:, :1])
    assert names == ("z0", "") and np.array_equal(xy[:, 0], z[:, 0]) and not xy[:, 1].any()
    xy, names = scatter_xy(z[:, :8])
    assert names == ("z0", "z1") and np.array_equal(xy, z[:, :2])
    xy, names = scatter_xy(z)
    top = np.linalg.eigvalsh(np.cov(z.T))[::-1][:2]  # the variances along the first two principal axes
    assert names == ("PC 1", "PC 2") and np.allclose(xy.var(0, ddof=1), top)


def test_latent_pictures_hold_hist_dims_histograms_and_code_tables_up_to_64_dimensions(monkeypatch):
    from binary_encoding.record import wandb_media

    monkeypatch.setattr(wandb_media, "latent_scatter", lambda z, y, title: title)  # matplotlib: not the point
    g = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 4
    media = wandb_media.latent_media("val", torch.randn(40, 3, generator=g), y, hist_dims=2, epoch=5)
    assert sorted(media) == [
        "hist/val/z0", "hist/val/z1", "latents/val/codes", "latents/val/scatter", "latents/val/two_valued",
    ]  # fmt: skip
    assert media["latents/val/scatter"] == "val latents, epoch 5"
    assert len(wandb_media.latent_media("val", torch.randn(40, 64, generator=g), y, 99, 0)) == 64 + 3
    wide = wandb_media.latent_media("train", torch.randn(40, 65, generator=g), y, 99, 0)
    assert len(wide) == 65 + 1 and "latents/train/codes" not in wide


def test_a_refused_job_noted_by_its_worker_is_the_recaps_refused_job_and_the_notes_go_with_the_recap(tmp_path, capsys):
    """`on_job_end` notes a `Refused` job by its Hydra job number (from 0); the launcher's recap lists that
    job as refused, then removes the notes (and the .refused folder once no other sweep's are left)."""
    sweep = tmp_path / "s"
    _job(sweep, ["lr=1"], summary={"test_acc": 0.5})
    _job(sweep, ["lr=2"])
    cb = sweep_log.SweepLog()
    cb.jobs, cb.token = [["lr=1"], ["lr=2"]], "tok"
    ret = lambda value: SimpleNamespace(_return_value=value)  # noqa: E731
    config = lambda num: OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}, "job": {"num": num}}})  # noqa: E731
    cb.on_job_end(config(0), ret(RuntimeError("not a refusal")))
    assert not (sweep / sweep_log.REFUSED).exists()
    cb.on_job_end(config(1), ret(sweep_log.Refused("m", why="in use by host h, pid 9")))
    assert sweep_log.refused_jobs(sweep, "tok") == {1: "in use by host h, pid 9"}
    cb._print_recap(str(sweep), {}, ".hydra")
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines[1:3]] == [["1/2", "finished"], ["2/2", "refused"]]
    assert lines[2].endswith("lr=2  (in use by host h, pid 9)") and not (sweep / sweep_log.REFUSED).exists()


def test_a_fit_that_fails_closes_its_loggers_runs_as_failed(cfg_factory, monkeypatch):
    """Every job closes its own W&B run, a failed one with exit code 1 (W&B then shows it failed)."""
    import lightning as L
    from lightning.pytorch.loggers import Logger

    from binary_encoding.run import fit as fit_module

    closed = []

    class Run(Logger):
        name, version = "run", 0

        def log_hyperparams(self, *args, **kwargs):
            pass

        def log_metrics(self, metrics, step=None):
            pass

        def finish(self, exit_code=0):
            closed.append(exit_code)

    class Boom(L.Callback):
        def on_fit_start(self, trainer, module):
            raise RuntimeError("boom")

    monkeypatch.setattr(fit_module, "build_loggers", lambda cfg, n: [Run()])
    with pytest.raises(RuntimeError, match="boom"):
        fit_module.fit(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "runtime.threads=1"), [Boom()])
    assert closed == [1]


def test_a_w_and_b_logger_keeps_the_jobs_run_id_its_tags_once_and_picks_its_mode(tmp_path, monkeypatch):
    """mode=auto: WANDB_MODE when set, else online with credentials and offline without; the run id is the
    one kept in the folder (a resumed job continues its run), tags from the config first, each once."""
    from binary_encoding.record import wandb_run

    monkeypatch.setattr(wandb_run, "wandb_logged_in", lambda: True)
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_config = {"data": {"name": "digits"}, "name": "s"}
    lg = wandb_run.wandb_logger(str(tmp_path), tags=["extra", "digits"], run_config=run_config, group="g")
    init = lg._wandb_init
    assert (init["mode"], init["tags"], init["group"], init["resume"]) == (
        "offline",
        ["digits", "s", "extra"],
        "g",
        "allow",
    )
    assert init["id"] == (tmp_path / files.WANDB_ID).read_text() and "anonymous" not in init
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_run.wandb_logger(str(tmp_path))._wandb_init["mode"] == "online"
    monkeypatch.setattr(wandb_run, "wandb_logged_in", lambda: False)
    assert wandb_run.wandb_logger(str(tmp_path))._wandb_init["mode"] == "offline"
    assert wandb_run.wandb_logger(str(tmp_path))._wandb_init["id"] == init["id"]


def test_a_w_and_b_run_gets_epoch_rows_closes_with_its_last_row_and_gives_a_sync_command_once_written(tmp_path):
    """Values without an epoch are not logged; an epoch the run holds already is left out; closing commits
    the held row before finishing; the sync command needs an offline run whose folder was written; a
    W&B error turns W&B off (nothing more is sent) and closes the run as failed."""
    from binary_encoding.record.wandb_run import RunLogger, offline_sync_command

    calls = []
    lg = RunLogger(project="p", save_dir=str(tmp_path), id="abc123", mode="offline")
    assert lg.sync_command() is None  # no run started
    lg._experiment = SimpleNamespace(
        id="abc123", offline=True, step=2,
        log=lambda data, step=None, commit=None: calls.append(("log", data, step, commit)),
        finish=lambda exit_code: calls.append(("finish", exit_code)),
    )  # fmt: skip
    lg.log_metrics({"train/loss": 1.0}, step=7)
    lg.log_metrics({"epoch": 1.0, "train/loss": 1.0})
    lg.log_metrics({"epoch": 2.0, "train/loss": 0.5})
    assert calls == [("log", {"epoch": 2, "train/loss": 0.5}, 2, None)]
    calls.clear()
    lg.finish(exit_code=1)
    assert calls == [("log", {}, None, True), ("finish", 1)]
    assert lg.sync_command() is None  # nothing written
    (tmp_path / "wandb" / "offline-run-20260101_000000-other").mkdir(parents=True)
    assert lg.sync_command() is None
    (tmp_path / "wandb" / "offline-run-20260101_000000-abc123").mkdir()
    assert lg.sync_command() == offline_sync_command(tmp_path, "abc123")
    lg._experiment.offline = False
    assert lg.sync_command() is None
    calls.clear()

    def broken(*args, **kwargs):
        raise RuntimeError("host gone")

    lg._experiment.log = broken
    lg.log_row({"a": 1.0}, 3)
    lg._experiment.log = lambda *a, **k: calls.append("log")
    lg.log_row({"a": 1.0}, 4)
    assert lg.off and calls == [("finish", 1)]


def test_a_sweep_worker_watches_only_another_live_launcher_of_its_host_and_ends_itself_when_it_is_gone(
    monkeypatch, capsys
):
    """Nothing to watch for the launcher itself, one on another host or one whose start time is unknown; a
    launcher is watched once; the watch polls until the launcher has ended (a zombie counts: `live`), then
    SIGKILLs this process with one line."""
    import signal
    import socket

    from binary_encoding.run import lock as lock_module

    polls, killed, threads = [], [], []

    def proc_start(pid, live=False):
        polls.append((pid, live))
        assert len(polls) < 10, "never saw the launcher end"
        return "5" if len(polls) < 3 or not live else None  # a zombie from the third poll on

    monkeypatch.setattr(lock_module, "proc_start", proc_start)
    monkeypatch.setattr(threading, "Thread", lambda **kw: threads.append(kw) or SimpleNamespace(start=lambda: None))
    monkeypatch.setattr(sweep_log, "_watched", set())
    host = socket.gethostname()
    for launcher in (None, ("node-elsewhere", 1, "5"), (host, os.getpid(), "5"), (host, 1, None)):
        sweep_log.watch_launcher(launcher)
    assert threads == []
    sweep_log.watch_launcher((host, 4242, "5"))
    sweep_log.watch_launcher((host, 4242, "5"))
    assert [t["name"] for t in threads] == ["launcher-watch"] and polls == []
    monkeypatch.setattr(sweep_log.time, "sleep", lambda s: None)
    monkeypatch.setattr(sweep_log.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    threads[0]["target"]()
    assert polls == [(4242, True)] * 3 and killed == [(os.getpid(), signal.SIGKILL)]
    assert "the sweep's launching process 4242 is gone: this job stops" in capsys.readouterr().err


def test_a_stop_during_the_fit_becomes_exit_143_or_130_with_the_epoch_and_the_resume_command(tmp_path, capsys):
    """Lightning's SIGTERM exception: 143; Ctrl-C (KeyboardInterrupt, or Lightning's SystemExit or return
    after its graceful shutdown): 130; a SystemExit of its own passes unchanged; each says the epoch and
    where the job resumes from."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    cfg = OmegaConf.create({"name": "s"})
    trainer = SimpleNamespace(current_epoch=3, interrupted=False)
    hint = f"resume with train(cfg) and output_dir={tmp_path}"
    with pytest.raises(job.Terminated) as stop, job.terminations(trainer, cfg, tmp_path):
        raise SIGTERMException
    assert (
        stop.value.code == 143
        and str(stop.value) == f"terminated at epoch 3; {hint} (from the start (no checkpoint yet))"
    )
    assert capsys.readouterr().err == str(stop.value) + "\n"
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    with pytest.raises(job.Terminated) as stop, job.terminations(trainer, cfg, tmp_path):
        raise KeyboardInterrupt
    assert stop.value.code == 130
    assert str(stop.value) == f"interrupted at epoch 3; {hint} (from {files.last_checkpoint(tmp_path)})"
    with pytest.raises(SystemExit) as stop, job.terminations(trainer, cfg, tmp_path):
        raise SystemExit(5)
    assert stop.value.code == 5 and not isinstance(stop.value, job.Terminated)
    trainer.interrupted = True
    with pytest.raises(job.Terminated) as stop, job.terminations(trainer, cfg, tmp_path):
        raise SystemExit(1)
    assert stop.value.code == 130
    with pytest.raises(job.Terminated) as stop, job.terminations(trainer, cfg, tmp_path):
        pass
    assert stop.value.code == 130


def test_sigterm_outside_the_fit_stops_with_a_message_and_a_launchers_own_handler_stays(tmp_path, capsys):
    import signal

    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        cfg = OmegaConf.create({"runtime": {"sigterm_grace_s": None}})
        job.handle_sigterm(cfg, tmp_path)
        assert signal.getsignal(signal.SIGTERM) is job._stop_outside_fit and job._JOB == (cfg, tmp_path)
        with pytest.raises(job.Terminated) as stop:
            job._stop_outside_fit(signal.SIGTERM, None)
        assert stop.value.code == 143 and str(stop.value).startswith("terminated outside training (setting up")
        assert str(stop.value).endswith(f"output_dir={tmp_path} (from the start (no checkpoint yet))")
        job.handle_sigterm()
        with pytest.raises(job.Terminated, match="^terminated between jobs; rerun the same command to resume"):
            job._stop_outside_fit(signal.SIGTERM, None)
        capsys.readouterr()
        launchers = lambda signum, frame: None  # noqa: E731
        signal.signal(signal.SIGTERM, launchers)
        job.handle_sigterm(cfg, tmp_path)
        assert signal.getsignal(signal.SIGTERM) is launchers and job._JOB == (cfg, tmp_path)
        assert job._stop_outside_fit(signal.SIGTERM, None) is None  # Lightning's (or another) handler stops it
    finally:
        job.handle_sigterm()
        signal.signal(signal.SIGTERM, previous)


def test_the_code_version_is_the_checkouts_commit_and_says_whether_tracked_files_changed(tmp_path):
    """`code_version(root)` against git itself on a throwaway repository: the commit of HEAD, `dirty` only
    once a tracked file differs (an untracked file is no change), and the version alone outside a checkout
    or before the first commit (HEAD names no commit yet)."""
    from binary_encoding import __version__
    from binary_encoding.record.version import code_version

    assert code_version(tmp_path) == {"version": __version__}  # no .git
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert code_version(tmp_path) == {"version": __version__}  # no commit yet: rev-parse HEAD fails
    (tmp_path / "a.txt").write_text("1\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / "untracked.txt").write_text("x\n")
    assert code_version(tmp_path) == {"version": __version__, "commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("2\n")
    assert code_version(tmp_path) == {"version": __version__, "commit": head, "dirty": True}
