"""Lines of run/ and record/ that no other test reached, one function at a time, by direct calls: the
lines a finished run prints, the W&B start's fallbacks, the latent pictures' values, the lock's exact
stale bounds, the recap's alignment and cut, the write errors, evaluate's checkpoint checks, and the
Python-API defaults that must equal conf/'s. Each test pins values a plausible one-line bug would change."""

from __future__ import annotations

import dataclasses
import errno
import inspect
import json
import logging
import os
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from test_config_values import composed
from test_console import _job
from test_record_values import _tiny_checkpoint

from binary_encoding.record import files, summarize
from binary_encoding.run import console, job, lock, settings, sweep_log, threads, writes
from binary_encoding.run.conf import CONF_DIR
from binary_encoding.run.policy import ConfigError

# ------------------------------------------------------------------------------------------------
# The lines a finished run prints (summarize.format_summary)
# ------------------------------------------------------------------------------------------------

SUMMARY = {
    "data": "digits", "backbone": "mlp", "head": "binenc", "seed": 3, "lr": 0.001, "epochs": 150, "fit_seconds": 89.6,
    "train_acc": 0.99921, "val_acc": 0.975, "test_acc": 0.96944, "n_codes": 12, "top_codes_fraction": 0.98766,
    "agreement_dim": 0.99512, "agreement_code": 0.98123, "nc1": 0.0061234, "gamma": 10.0,
    "mahalanobis_auroc": 0.91234, "msp_auroc": 0.88, "deepfool_rho": 0.123456, "deepfool_images": 1000,
    "deepfool_rho_correct": 0.13579,
}  # fmt: skip


def test_a_finished_run_prints_its_numbers_each_under_its_name_rounded_as_written():
    assert summarize.format_summary(SUMMARY, "/x/run").splitlines() == [
        "== digits / mlp / binenc (seed 3, lr 0.001, 150 epochs, 90 s) ==",
        "accuracy      train 0.9992  val 0.9750  test 0.9694",
        "latent codes  12 distinct; the most common C codes hold 98.77% of training samples",
        "agreement     per-dimension 0.9951  joint code 0.9812",
        "NC1           6.123e-03   (gamma at the end: 10)",
        "reliability   Mahalanobis AUROC 0.9123  max-softmax AUROC 0.8800",
        "robustness    DeepFool rho 0.1235 over 1000 test images (0.1358 on the correctly classified)",
        "record        /x/run",
    ]


def test_a_run_without_validation_or_deepfool_prints_neither_and_a_diverged_one_says_so_last():
    s = {k: v for k, v in SUMMARY.items() if not k.startswith(("val_", "deepfool"))}
    s |= {"lr": 1e-5 * 1.5**6, "gamma": 0.010845, "train_acc": 0.11, "diverged": True}
    lines = summarize.format_summary(s, "out").splitlines()
    assert lines[0] == "== digits / mlp / binenc (seed 3, lr 0.000113906, 150 epochs, 90 s) =="
    assert lines[1] == "accuracy      train 0.1100  test 0.9694"
    assert lines[4] == "NC1           6.123e-03   (gamma at the end: 0.01085)"
    assert not [ln for ln in lines if ln.startswith("robustness")]
    assert lines[-2:] == [
        "DIVERGED      the final training accuracy 0.1100 is at chance level: every number above describes a "
        "broken run (lower the learning rate)",
        "record        out",
    ]
    assert "DIVERGED" not in summarize.format_summary({**s, "diverged": False}, "out")


# ------------------------------------------------------------------------------------------------
# Settings: what the declarations refuse beyond one bad value each
# ------------------------------------------------------------------------------------------------


def test_a_negative_batch_fraction_is_refused_like_a_negative_count():
    """Lightning's limit_*_batches: a fraction in 0..1 (a float -0.5 is no count and no fraction)."""
    limit = settings.SETTINGS["trainer.limit_train_batches"]
    assert [limit.problem(v) for v in (-0.5, -1e-9, 0.0, 1.0, 1.0000001, -1, 0)] == [
        True, True, False, False, True, True, False,
    ]  # fmt: skip


def test_a_missing_value_is_named_with_its_key_its_doc_and_what_it_accepts():
    cfg = OmegaConf.create({"data": {"root": "???"}, "seed": 1})
    with pytest.raises(ConfigError) as err:
        settings.check(cfg)
    assert str(err.value) == (
        "data.root is needed here: add data.root=... (the folder of the data set, for imagefolder "
        "root/train/<class>/*; a text)"
    )


def test_what_only_the_data_shows_is_refused_with_the_numbers_and_settings_behind_it():
    """The whole lines: the split's size and the validation fraction that made it; the training samples,
    the batch size and the batch limit that left no batch."""
    from types import SimpleNamespace

    dm = SimpleNamespace(
        num_classes=3,
        splits=("train", "val"),
        y={"train": torch.tensor([0, 1, 2, 2]), "val": torch.tensor([0, 0])},
        train_dataloader=lambda: range(11),
    )
    cfg = OmegaConf.create(
        {"data": {"name": "toy", "val_fraction": 0.25, "test_fraction": 0.5}, "batch_size": 8, "trainer": {}}
    )
    with pytest.raises(ConfigError) as err:
        settings.check_data(cfg, dm)
    assert str(err.value) == (
        "the val split of toy (2 samples) has no sample of class 1, 2: every class needs samples in every split "
        "(data.val_fraction=0.25)"
    )
    dm.y["val"] = torch.tensor([0, 1, 2])
    cfg.trainer.limit_train_batches = 0.05
    with pytest.raises(ConfigError) as err:
        settings.check_data(cfg, dm)
    assert str(err.value) == (
        "no training batch: 4 training samples, batch_size=8, trainer.limit_train_batches=0.05 (a 1-sample batch "
        "is skipped): no optimizer step would run"
    )


def test_an_explicit_thread_count_of_one_is_kept_and_auto_splits_the_cores_of_the_machine(monkeypatch):
    assert threads.threads_per_job(1) == 1 and threads.threads_per_job("2") == 2
    assert threads.threads_per_job("auto", n_cores=5, n_jobs=1) == 5
    monkeypatch.setattr(threads, "cores", lambda: 6)
    assert threads.threads_per_job("auto", n_jobs=2) == 3  # the machine's cores when none are given


# ------------------------------------------------------------------------------------------------
# conf/ defaults that a Python default repeats: a call without a config behaves as the default run
# ------------------------------------------------------------------------------------------------


def test_the_metric_settings_defaults_of_the_python_api_are_the_configs():
    from binary_encoding.callbacks.metrics import FinalSettings, MetricSettings

    node = OmegaConf.to_container(composed().callbacks.metrics.settings, resolve=True)
    for f in dataclasses.fields(MetricSettings):
        if f.name not in ("out_dir", "final"):
            want = tuple(node[f.name]) if f.name == "splits" else node[f.name]
            assert f.default == want, f.name
    for f in dataclasses.fields(FinalSettings):
        assert f.default == node["final"][f.name], f.name
    assert (node["hist_dims"], node["hist_every"], node["final"]["deepfool_batch"]) == (8, 10, 256)


def test_the_w_and_b_logger_defaults_of_the_python_api_are_the_configs():
    """README: an unanswered host is waited for `logger.init_timeout` seconds (10)."""
    from binary_encoding.record.wandb_run import wandb_logger

    lg = composed().logger
    defaults = {k: p.default for k, p in inspect.signature(wandb_logger).parameters.items()}
    assert lg.init_timeout == defaults["init_timeout"] == 10
    for key in ("project", "entity", "mode", "job_type"):
        assert lg[key] == defaults[key], key
    assert list(lg.tags) == list(defaults["tags"]) == []


# ------------------------------------------------------------------------------------------------
# W&B: what a failed start becomes
# ------------------------------------------------------------------------------------------------


def _wandb_errors():
    import wandb

    return wandb.errors.CommError("timed out\nretrying"), wandb.errors.UsageError("api key refused\nmore")


@pytest.mark.parametrize(
    "mode, error, said, then, teardown",
    [
        ("online", 0, "W&B did not answer (timed out); this run is logged offline", "offline", 1),
        ("online", 1, "W&B cannot start online (api key refused); this run is logged offline", "offline", 1),
        ("offline", 0, "W&B could not start its run (CommError: timed out); only the local record is kept",
         "disabled", 0),
        ("offline", 1, "W&B could not start its run (UsageError: api key refused); only the local record is kept",
         "disabled", 0),
        ("online", OSError(errno.EACCES, "Permission denied"),
         "W&B cannot write its folder ([Errno 13] Permission denied); only the local record is kept", "disabled", 1),
        ("offline", OSError(errno.EROFS, "Read-only file system"),
         "W&B cannot write its folder ([Errno 30] Read-only file system); only the local record is kept",
         "disabled", 0),
        ("online", RuntimeError("boom\ndetails"),
         "W&B could not start its run (RuntimeError: boom); only the local record is kept", "disabled", 1),
    ],
)  # fmt: skip
def test_a_w_and_b_start_that_fails_goes_offline_or_keeps_the_local_record_in_one_line(
    tmp_path, monkeypatch, capsys, mode, error, said, then, teardown
):
    """An unanswered host or refused credentials: offline (unless offline already failed); an unwritable
    folder or anything else: W&B disabled. The service is torn down after a failed online start only."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    from binary_encoding.record.wandb_run import RunLogger

    error = _wandb_errors()[error] if isinstance(error, int) else error
    tries, torn = [], []

    def experiment(self):
        tries.append(self._wandb_init["mode"])
        if len(tries) == 1:
            raise error
        return "run"

    monkeypatch.setattr(WandbLogger, "experiment", property(experiment))
    monkeypatch.setattr(wandb, "teardown", lambda: torn.append(1))
    lg = RunLogger(project="p", save_dir=str(tmp_path), id="abc", mode=mode)
    assert lg._start() == "run" and tries == [mode, then] and len(torn) == teardown
    assert capsys.readouterr().err == said + "\n"


def test_online_without_credentials_is_offline_with_one_line_naming_w_and_bs_default_host(
    tmp_path, monkeypatch, capsys
):
    """W&B's banners and its crash reports (which held a job 22 s at exit without network) are off unless
    the user set them; online asked for without an API key for the default host: offline, said once."""
    from binary_encoding.record import wandb_run

    for var in ("WANDB_SILENT", "WANDB_ERROR_REPORTING", "WANDB_BASE_URL", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(wandb_run, "wandb_logged_in", lambda: False)
    lg = wandb_run.wandb_logger(str(tmp_path), mode="online")
    assert lg._wandb_init["mode"] == "offline"
    assert capsys.readouterr().err == (
        "W&B has no API key for https://api.wandb.ai (wandb login, or WANDB_API_KEY); this run is logged offline\n"
    )
    assert (os.environ["WANDB_SILENT"], os.environ["WANDB_ERROR_REPORTING"]) == ("true", "false")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "true")
    wandb_run.wandb_logger(str(tmp_path), mode="offline")
    assert os.environ["WANDB_ERROR_REPORTING"] == "true" and capsys.readouterr().err == ""


def test_a_disabled_w_and_b_run_that_fails_to_start_raises_its_error(tmp_path, monkeypatch):
    """A disabled run writes nothing: its error is no W&B lacking something, so it is not retried."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    from binary_encoding.record.wandb_run import RunLogger

    tries = []

    def experiment(self):
        tries.append(self._wandb_init["mode"])
        if len(tries) == 1:
            raise RuntimeError("no run")
        return "run"

    monkeypatch.setattr(WandbLogger, "experiment", property(experiment))
    monkeypatch.setattr(wandb, "teardown", lambda: None)
    with pytest.raises(RuntimeError, match="no run"):
        RunLogger(project="p", save_dir=str(tmp_path), id="abc", mode="disabled")._start()
    assert tries == ["disabled"]


# ------------------------------------------------------------------------------------------------
# W&B: the values inside the latent pictures
# ------------------------------------------------------------------------------------------------


def test_the_latent_tables_and_histograms_hold_each_dimensions_own_values(monkeypatch):
    """Dimension 0 takes -3, -1, 1, 3, 3, -3 (its sign means are -7/3 and 7/3: (7/3)**2 of its variance 19/3,
    49/57), dimension 1 only -1 and 1 (1.0); each histogram has 64 bins over its own dimension's range; the code
    table gives each class its most common sign code (1 = positive) and that code's share, to 4 decimals."""
    from binary_encoding.record import wandb_media

    monkeypatch.setattr(wandb_media, "latent_scatter", lambda z, y, title: title)
    z = torch.tensor([[-3.0, -1.0], [-1.0, -1.0], [1.0, 1.0], [3.0, 1.0], [3.0, -1.0], [-3.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1, 1, 0])
    media = wandb_media.latent_media("train", z, y, hist_dims=2, epoch=4)
    two = media["latents/train/two_valued"]
    assert two.columns == ["dimension", "sign R²"] and [r[0] for r in two.data] == [0, 1]
    assert [r[1] for r in two.data] == [round(49 / 57, 6), 1.0]
    codes = media["latents/train/codes"]
    assert codes.columns == ["class", "code", "share", "samples"]
    assert codes.data == [[0, "00", 0.6667, 3], [1, "11", 0.6667, 3]]
    for j, (low, high) in enumerate([(-3.0, 3.0), (-1.0, 1.0)]):
        h = media[f"hist/train/z{j}"]
        assert len(h.histogram) == 64 and (h.bins[0], h.bins[-1]) == (low, high) and sum(h.histogram) == 6


# ------------------------------------------------------------------------------------------------
# job.lock: the exact bounds, and a lock of this very process left over
# ------------------------------------------------------------------------------------------------


def test_another_hosts_lock_is_stale_only_past_exactly_15_minutes_or_10_minutes_ahead(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    h = {**lock.me(), "host": "node-elsewhere", "slurm_job": None, "heartbeat": 10_000.0}
    assert lock.stale_reason(h, now=10_000.0 + 15 * 60) is None
    assert lock.stale_reason(h, now=10_000.0 + 15 * 60 + 1) == "its heartbeat is 15 min old"
    assert lock.stale_reason(h, now=10_000.0 - 10 * 60) is None
    assert lock.stale_reason(h, now=10_000.0 - 10 * 60 - 1) == (
        "its heartbeat is 10 min in the future (the holder's clock is wrong)"
    )


def test_a_lock_left_by_an_earlier_call_of_this_very_process_is_taken_over(tmp_path):
    """Same host and pid (alive: this process), another `since`: a train() of this process that died
    without releasing; the lock is taken over with a warning saying so, not refused as busy."""
    old = {**lock.me(), "since": 1000.0, "heartbeat": 1000.0}
    (tmp_path / lock.LOCK).write_text(json.dumps(old))
    with pytest.warns(UserWarning, match=r"taking over the stale lock .*: it is this process's own, left over$"):
        mine = lock.acquire(tmp_path)
    assert lock.holder(tmp_path) == mine and mine["since"] != 1000.0


# ------------------------------------------------------------------------------------------------
# The sweep's recap: alignment from 10 jobs on, the cut of an error, when it is printed
# ------------------------------------------------------------------------------------------------


def test_the_recap_of_ten_jobs_right_aligns_their_numbers_and_keeps_an_error_of_100_characters(tmp_path):
    sweep = tmp_path / "s"
    jobs = [[f"lr={i}", "e=2"] for i in range(1, 11)]
    _job(sweep, jobs[0], failed="E" * 100)
    _job(sweep, jobs[1], failed="F" * 101)
    _job(sweep, jobs[9], summary={"test_acc": 0.5, "n_codes": 3, "fit_seconds": 45.0})
    lines = sweep_log.recap(str(sweep), jobs, {}, ".hydra").splitlines()
    assert lines[0] == "  job  status      test acc  codes     min  overrides"
    assert lines[1] == f" 1/10  failed             -      -       -  lr=1  ({'E' * 100})"
    assert lines[2] == f" 2/10  failed             -      -       -  lr=2  ({'F' * 97}...)"
    assert lines[3] == " 3/10  not run            -      -       -  lr=3"
    assert lines[10] == "10/10  finished      0.5000      3     0.8  lr=10"
    assert lines[11] == "10 jobs: 2 failed, 7 not run, 1 finished"


def test_the_recap_is_printed_when_any_job_of_the_sweep_started_and_not_when_none_did(tmp_path, capsys):
    sweep = tmp_path / "s"
    _job(sweep, ["lr=1"], summary={"test_acc": 0.5})
    cb = sweep_log.SweepLog()
    cb.token = "tok"
    cb.jobs = [["lr=2"], ["lr=3"]]
    cb._print_recap(str(sweep), {}, ".hydra")
    assert capsys.readouterr().out == ""
    cb.jobs = [["lr=2"], ["lr=1"]]
    cb._print_recap(str(sweep), {}, ".hydra")
    out = capsys.readouterr().out.splitlines()
    assert out[1:4] == [
        "1/2  not run            -      -       -  lr=2",
        "2/2  finished      0.5000      -       -  lr=1",
        "2 jobs: 1 not run, 1 finished",
    ]


# ------------------------------------------------------------------------------------------------
# Write errors: which errors are the output folder's
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, inside, fix",
    [
        (errno.EACCES, True, "make the folder writable (or use another output_dir)"),
        (errno.EPERM, True, "make the folder writable (or use another output_dir)"),
        (errno.EROFS, True, "make the folder writable (or use another output_dir)"),
        (errno.EACCES, False, None),  # an unreadable data set: not the output folder's
        (errno.EROFS, False, None),
        (errno.ENOSPC, False, "free space"),  # a full disk, wherever the write went
        (errno.EDQUOT, True, "free space"),
    ],
)
def test_a_write_error_is_the_output_folders_when_it_is_full_or_the_path_is_inside_it(
    tmp_path, monkeypatch, code, inside, fix
):
    monkeypatch.setattr(writes, "free_space", lambda path: "5.0 GiB")
    path = tmp_path / "job" / "metrics.csv" if inside else tmp_path / "data" / "x.png"
    err = writes.output_error(OSError(code, os.strerror(code), str(path)), tmp_path / "job")
    if fix is None:
        assert err is None
        return
    full = ", not enough" if fix == "free space" else ""
    assert str(err) == (
        f"cannot write {path}: {os.strerror(code)} (5.0 GiB free there{full}); the previous checkpoint and record "
        f"are intact: {fix}, then rerun the same command to resume"
    )


@pytest.mark.parametrize("flag", ["-h", "--help", "--hydra-help", "-c", "--cfg", "--info", "-sc"])
def test_a_command_line_that_only_prints_probes_no_folder(tmp_path, monkeypatch, flag):
    import tempfile

    probed = []

    def refuse(dir, **kw):
        probed.append(dir)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    assert writes.preflight_message([flag, f"output_dir={tmp_path / 'x'}"]) is None and probed == []
    assert writes.preflight_message([f"output_dir={tmp_path / 'x'}"]).startswith(f"cannot write {tmp_path / 'x'}: ")


# ------------------------------------------------------------------------------------------------
# A job's folder: skipped, resumed, or from scratch
# ------------------------------------------------------------------------------------------------


def test_a_finished_folder_is_skipped_unless_resume_is_off_or_a_checkpoint_is_given(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5, "epochs": 2})
    cfg = lambda **kw: OmegaConf.create({"resume": True, "ckpt_path": None, "trainer": {"max_epochs": 2}, **kw})  # noqa: E731
    assert job.finished(cfg(resume=False), tmp_path) is None
    assert job.finished(cfg(ckpt_path="/x.ckpt"), tmp_path) is None
    assert capsys.readouterr().out == "" and (tmp_path / files.SUMMARY).exists()
    assert job.finished(cfg(), tmp_path) == {"test_acc": 0.5, "epochs": 2}
    assert job.finished(cfg(resume="force"), tmp_path) == {"test_acc": 0.5, "epochs": 2}
    assert (
        capsys.readouterr().out.splitlines()
        == [f"already finished: {tmp_path} (remove its summary.json to train it again)"] * 2
    )
    files.write_json(tmp_path / files.SUMMARY, {"epochs": 2})
    assert job.finished(cfg(), tmp_path) is None
    assert capsys.readouterr().out == (
        f"not finished: {tmp_path}: its summary.json is incomplete; training it again "
        "(the old file is summary.json.stale)\n"
    )
    assert not (tmp_path / files.SUMMARY).exists() and (tmp_path / files.STALE_SUMMARY).exists()


def test_a_job_resumes_from_the_given_checkpoint_else_its_last_one_unless_resume_is_false(tmp_path):
    cfg = lambda resume=True, ckpt=None: OmegaConf.create({"resume": resume, "ckpt_path": ckpt})  # noqa: E731
    assert job.resume_checkpoint(cfg(), tmp_path) is None  # nothing to resume from
    assert job.resume_checkpoint(cfg(False, "/a.ckpt"), tmp_path) == "/a.ckpt"  # an explicit one wins
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    last = str(files.last_checkpoint(tmp_path))
    assert [job.resume_checkpoint(cfg(r), tmp_path) for r in (True, "force", False)] == [last, last, None]


# ------------------------------------------------------------------------------------------------
# evaluate: which files are checkpoints, and which summary a checkpoint belongs to
# ------------------------------------------------------------------------------------------------


def test_evaluate_refuses_a_missing_empty_or_non_zip_checkpoint_in_one_line(tmp_path):
    from binary_encoding.evaluate import NotACheckpoint, check_checkpoint_file

    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "yaml.ckpt").write_text("seed: 0\n")
    for name, says in [
        ("missing.ckpt", "is no file"),
        (".", "is no file"),
        ("empty.ckpt", "is empty (0 bytes): not a checkpoint"),
        ("yaml.ckpt", "is not a checkpoint (no torch zip archive; cut off while written?)"),
    ]:
        with pytest.raises(NotACheckpoint) as err:
            check_checkpoint_file(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name} {says}", name
    _tiny_checkpoint(tmp_path / "good.ckpt", 1.0)
    check_checkpoint_file(tmp_path / "good.ckpt")


def test_evaluate_warns_only_when_the_summary_was_computed_from_another_checkpoint(tmp_path):
    from binary_encoding.evaluate import summary_mismatch

    run = tmp_path / "run"
    _tiny_checkpoint(files.last_checkpoint(run), 1.0)
    other = tmp_path / "other.ckpt"
    _tiny_checkpoint(other, 2.0)
    assert summary_mismatch(run, other) is None  # no summary: nothing to compare
    (run / files.SUMMARY).write_text('{"test_acc": 0.')
    assert summary_mismatch(run, other) == "its summary.json is unreadable (JSONDecodeError; cut off by a crash?)"
    fingerprint = summarize.checkpoint_fingerprint(files.last_checkpoint(run))
    files.write_json(run / files.SUMMARY, {"test_acc": 0.5, summarize.CHECKPOINT_FINGERPRINT: fingerprint})
    assert summary_mismatch(run, files.last_checkpoint(run)) is None
    assert summary_mismatch(run, other) == f"{other} is not the checkpoint {run / files.SUMMARY} was computed from"
    files.write_json(run / files.SUMMARY, {"test_acc": 0.5})  # an older run's: no fingerprint to compare
    assert summary_mismatch(run, other) is None


# ------------------------------------------------------------------------------------------------
# The log of a DDP job's rank 0: lines the resume reads back
# ------------------------------------------------------------------------------------------------


def test_the_log_of_a_process_outside_hydra_is_read_back_by_the_resume_as_hydras_is(tmp_path, capsys):
    """log_to writes Hydra's line format at INFO to stdout and train.log; a resume then restores only the
    epoch lines that file lacks (here epochs 2 and 3 of a checkpoint of 3, the log holding epoch 1)."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    root.handlers = [h for h in before if not isinstance(h, logging.FileHandler)]  # pytest's own log file
    try:
        console.log_to(tmp_path / files.LOG)
        epoch_log = console.EpochLog(max_epochs=3)
        epoch_log.emit("epoch 1/3  train loss 0.5000  0.1 s")
        rows = [{"epoch": str(e), "train/loss": "0.25"} for e in range(3)]
        epoch_log.restore(rows, epochs_done=3)
    finally:
        for h in root.handlers:
            if h not in before:
                h.close()
        root.handlers, root.level = before, level
    logged = (tmp_path / files.LOG).read_text().splitlines()
    assert [ln.split("][binary_encoding][INFO] - ", 1)[1] for ln in logged] == [
        "epoch 1/3  train loss 0.5000  0.1 s",
        "epoch 2/3  train loss 0.2500  (restored on resume)",
        "epoch 3/3  train loss 0.2500  (restored on resume)",
    ]
    assert time.strptime(logged[0][1:20], "%Y-%m-%d %H:%M:%S")
    assert capsys.readouterr().out.splitlines() == logged


def test_a_lock_holder_is_described_by_host_pid_slurm_job_and_local_start_time():
    """What the refusal of a busy folder and the recap's `running` line say of the holder."""
    h = {**lock.me(), "host": "node-7", "pid": 4242, "slurm_job": "991", "since": 0.0}
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(0))
    assert lock.describe(h) == f"host node-7, pid 4242, SLURM job 991, since {since}"
    assert lock.describe({**h, "slurm_job": None}) == f"host node-7, pid 4242, since {since}"
    assert lock.describe({}) == "unreadable, or not a lock this program wrote"


def test_a_job_folders_files_have_the_names_the_docs_give():
    """docs/job_folders.md and record/files.py: the names of a job folder's files."""
    assert (files.CONFIG, files.METRICS, files.SUMMARY, files.STALE_SUMMARY, files.EVAL, files.LATENTS) == (
        "config.yaml", "metrics.csv", "summary.json", "summary.json.stale", "eval.json", "latents.npz",
    )  # fmt: skip
    names = (files.FAILED, files.LOG, files.LOCK, files.WANDB_ID, files.DDP_CONFIG)
    assert names == ("failed.json", "train.log", "job.lock", "wandb_id.txt", "ddp_config.yaml")
    assert files.last_checkpoint("r") == Path("r") / "checkpoints" / "last.ckpt"
    assert files.temp_path("r/last.ckpt") == Path("r/last.ckpt.tmp")


# ------------------------------------------------------------------------------------------------
# Launchers and DDP: what a job asks of its plugins, processes and cluster
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(p.stem for p in (Path(CONF_DIR) / "hydra" / "launcher").glob("*.yaml")))
def test_a_launcher_preset_without_its_plugin_names_the_extra_of_pyproject_that_installs_it(monkeypatch, preset):
    """The extra named in the message is one of pyproject.toml's, and it requires the package of the plugin."""
    import tomllib

    from binary_encoding.run import policy

    monkeypatch.setattr(policy, "_importable", lambda module: False)
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"  # the checkout's (conf/ may be a link)
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    ((module, extra),) = [v for prefix, v in policy.LAUNCHER_PLUGINS.items() if preset.startswith(prefix)]
    assert policy.missing_launcher_message(["lr=1", f"hydra/launcher={preset}"]) == (
        f'hydra/launcher={preset} needs its Hydra plugin: pip install "binary_encoding[{extra}]" '
        f'(or pip install -e ".[{extra}]" in a checkout)'
    )
    packages = [req.split(">")[0].split("[")[0].replace("-", "_") for req in extras[extra]]
    assert module.rsplit(".", 1)[1] in packages
    monkeypatch.setattr(policy, "_importable", lambda module: True)
    assert policy.missing_launcher_message([f"hydra/launcher={preset}"]) is None


def test_a_ddp_job_runs_its_ranks_with_torchrun_on_one_thread_each_unless_told(tmp_path, monkeypatch):
    calls = []

    def run(cmd, env):
        calls.append((cmd, env))
        files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5})
        return type("Done", (), {"returncode": len(calls) - 1})()

    monkeypatch.setattr(job.subprocess, "run", run)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = OmegaConf.create({"seed": 1, "logger": {"project": "p"}})
    assert job.launch_ddp(cfg, tmp_path, 3) == {"test_acc": 0.5}
    cmd, env = calls[0]
    config = str(tmp_path / files.DDP_CONFIG)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3", "-m",
                       "binary_encoding.run.ddp_worker", config]  # fmt: skip
    assert env["OMP_NUM_THREADS"] == "1" and OmegaConf.load(config) == cfg
    assert not (tmp_path / files.WANDB_ID).exists()  # no W&B logger: no run id
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    with pytest.raises(RuntimeError) as err:
        job.launch_ddp(OmegaConf.create({"logger": {"_target_": "x"}}), tmp_path, 2)
    assert calls[1][1]["OMP_NUM_THREADS"] == "4" and (tmp_path / files.WANDB_ID).read_text()
    assert str(err.value) == (
        f"DDP job on 2 ranks failed (exit code 1); the ranks' output is above and the record in {tmp_path}"
    )


@pytest.mark.filterwarnings("ignore:The `srun` command is available")
def test_a_rank_of_torchrun_and_a_slurm_task_get_their_cluster_environment_and_slurm_never_requeues(monkeypatch):
    from lightning.pytorch.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    for var in ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_JOB_NAME"):
        monkeypatch.delenv(var, raising=False)
    assert job.cluster_plugins() == []
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    (slurm,) = job.cluster_plugins()
    assert isinstance(slurm, SLURMEnvironment) and slurm.auto_requeue is False  # the launcher requeues
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    (elastic,) = job.cluster_plugins()
    assert isinstance(elastic, TorchElasticEnvironment)
