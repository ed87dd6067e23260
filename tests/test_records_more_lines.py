"""More lines of the job records and resume that no other test pinned, by direct calls on tmp_path: the
resumed metrics.csv, values written to JSON, the cut of a multi-byte name, the keys of a nested config,
the code version without git, the checkpoint fingerprint's invariants, a summary that is no mapping, the
W&B logger's guarded calls and per-user folders, a job in a DDP rank or under Hydra, the lock's released
in-between and file mode, and the sweep's refusal notes. Each test pins values a plausible one-line bug of
its line would change."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf
from test_console import _job
from test_record_values import _tiny_checkpoint

from binary_encoding.record import csv_log, files, identity, summarize, wandb_run
from binary_encoding.run import job, lock, sweep_log
from binary_encoding.run.policy import ConfigError


def _under_hydra(monkeypatch, mode=RunMode.RUN, task=()):
    """Hydra's config as a job under Hydra sees it (mode and command-line overrides), until the test ends."""
    hc = SimpleNamespace(mode=mode, overrides=SimpleNamespace(task=list(task)))
    monkeypatch.setattr(HydraConfig.instance(), "cfg", SimpleNamespace(hydra=hc))


def _offline_logger(tmp_path, calls: list):
    """A `RunLogger` whose W&B run is a stand-in recording what it is sent."""
    lg = wandb_run.RunLogger(project="p", save_dir=str(tmp_path), id="abc123", mode="offline")
    lg._experiment = SimpleNamespace(
        id="abc123", offline=True, step=0,
        log=lambda data, step=None, commit=None: calls.append(("log", data, step)),
        finish=lambda exit_code: calls.append(("finish", exit_code)),
        summary=SimpleNamespace(update=lambda values: calls.append(("summary", values))),
    )  # fmt: skip
    return lg


# ------------------------------------------------------------------------------------------------
# csv_log.LocalRecord.log_metrics: a resumed run's metrics.csv
# ------------------------------------------------------------------------------------------------


def test_a_resumed_record_keeps_the_earlier_attempts_rows_before_its_epoch_and_replaces_the_rest(tmp_path):
    first = csv_log.LocalRecord(tmp_path)
    for epoch in range(3):
        first.log_metrics({"epoch": epoch, "val/acc": 0.1 * (epoch + 1), "val/loss": 9.0}, step=10 * epoch)
    resumed = csv_log.LocalRecord(tmp_path)  # a new process: resumes at epoch 1, logs no val/loss
    resumed.log_metrics({"epoch": 1, "train/loss": 2.5}, step=11)
    resumed.log_metrics({"epoch": 1, "val/acc": 0.75}, step=12)
    rows = [{k: v for k, v in r.items() if v != ""} for r in csv_log.read_rows(tmp_path)]
    assert rows == [
        {"epoch": "0", "step": "0", "val/acc": "0.1", "val/loss": "9.0"},
        {"epoch": "1", "step": "12", "val/acc": "0.75", "train/loss": "2.5"},
    ]


# ------------------------------------------------------------------------------------------------
# files.write_json, files.temp_path
# ------------------------------------------------------------------------------------------------


def test_json_values_that_are_no_json_type_are_written_as_their_text(tmp_path):
    files.write_json(tmp_path / "a.json", {"root": Path("/data/x"), "n": 3, "bad": float("nan")})
    assert json.loads((tmp_path / "a.json").read_text()) == {"root": "/data/x", "n": 3, "bad": None}
    assert (tmp_path / "a.json").read_text().startswith('{\n  "root": "/data/x",')  # indented, in order


def test_a_held_write_leaves_its_data_in_the_temporary_file_and_the_old_file_as_it_was(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_text("old")
    files.write_atomic(target, "new", rename=False)
    assert files.temp_path(target) == tmp_path / "last.ckpt.tmp"
    assert (target.read_text(), files.temp_path(target).read_text()) == ("old", "new")


# ------------------------------------------------------------------------------------------------
# identity: a multi-byte name cut, nested keys, report rows, folder-name prefixes, short paths
# ------------------------------------------------------------------------------------------------


def test_a_name_of_two_byte_characters_is_cut_on_a_character_boundary_under_the_limit():
    name = "é" * 200  # 400 bytes
    cut = identity.cut_to(name, 240)
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    assert cut == "é" * 113 + "~" + digest and len(cut.encode()) == 239


def test_a_nested_config_flattens_to_dotted_keys_and_keeps_lists_as_values():
    nested = {"a": {"b": {"c": 1}, "d": [1, 2]}, "e": None, "f": {}}
    assert identity.flat_config(nested) == {"a.b.c": 1, "a.d": [1, 2], "e": None}
    assert identity.flat_config(5, "x.") == {"x": 5}


@pytest.mark.parametrize(
    "key, splits",
    [("backbone._target_", False), ("head.loss._target_", False), ("lr", False), ("seed", False),
     ("seeds", True), ("lr_decay", True), ("head.name", True), ("logger.project", False)],
)  # fmt: skip
def test_a_report_row_is_split_by_defining_keys_but_lr_seed_and_class_paths(key, splits):
    assert identity.splits_report_row(key) is splits


@pytest.mark.parametrize(
    "key, named", [("resumed", True), ("names", True), ("trainer.accelerators", True), ("logger", False)]
)
def test_a_key_that_only_starts_like_an_excluded_one_names_the_folder(key, named):
    assert identity.in_folder_name(key) is named


def test_a_path_with_odd_characters_is_named_by_a_cleaned_base_of_at_most_40_characters(tmp_path):
    odd = str(tmp_path / "my data (v2)")
    assert identity.short_path(odd) == "my_data__v2_-" + hashlib.sha256(odd.encode()).hexdigest()[:8]
    assert identity.short_path(odd + "/") == identity.short_path(odd)  # the same folder
    long = str(tmp_path / ("x" * 50))
    assert identity.short_path(long).split("-")[0] == "x" * 40


# ------------------------------------------------------------------------------------------------
# version.code_version: git missing or hanging
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [FileNotFoundError(errno.ENOENT, "No such file", "git"), subprocess.TimeoutExpired("git", 10)]
)
def test_without_a_working_git_the_code_version_is_the_package_version_alone(tmp_path, monkeypatch, error):
    from binary_encoding import __version__
    from binary_encoding.record import version

    (tmp_path / ".git").mkdir()

    def run(*args, **kwargs):
        raise error

    monkeypatch.setattr(version.subprocess, "run", run)
    assert version.code_version(tmp_path) == {"version": __version__}


# ------------------------------------------------------------------------------------------------
# summarize.checkpoint_fingerprint, summarize.read
# ------------------------------------------------------------------------------------------------


def test_a_checkpoint_fingerprint_ignores_the_file_name_and_the_pickled_counters_but_not_the_tensors(tmp_path):
    w = torch.arange(6.0)
    torch.save({"state_dict": {"w": w}, "epoch": 1}, tmp_path / "a.ckpt")
    torch.save({"state_dict": {"w": w.clone()}, "epoch": 7}, tmp_path / "other_name.ckpt")
    torch.save({"state_dict": {"w": w + 1}, "epoch": 1}, tmp_path / "c.ckpt")
    fp = [summarize.checkpoint_fingerprint(tmp_path / n) for n in ("a.ckpt", "other_name.ckpt", "c.ckpt")]
    assert fp[0] == fp[1] != fp[2]


def test_a_summary_that_is_no_mapping_is_incomplete_and_one_without_a_config_beside_it_counts(tmp_path):
    for text in ("[0.5]", '"test_acc"'):  # JSON, but no mapping of its values
        (tmp_path / files.SUMMARY).write_text(text)
        assert summarize.read(tmp_path) == (None, "its summary.json is incomplete"), text
    summary = {"test_acc": 0.5, summarize.CONFIG_FINGERPRINT: "0" * 16}
    files.write_json(tmp_path / files.SUMMARY, summary)
    assert summarize.read(tmp_path) == (summary, "")  # no config.yaml to compare with


def test_a_summary_of_another_checkpoint_names_the_checkpoint_beside_it(tmp_path):
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5, summarize.CHECKPOINT_FINGERPRINT: "f" * 16})
    ckpt = files.last_checkpoint(tmp_path)
    assert summarize.read(tmp_path) == (
        None,
        f"its summary.json belongs to another checkpoint than {ckpt} (left from an earlier run)",
    )
    files.last_checkpoint(tmp_path).unlink()  # no checkpoint left to compare with: it counts
    assert summarize.read(tmp_path)[1] == ""


# ------------------------------------------------------------------------------------------------
# wandb_run.RunLogger: the guarded calls, a row made only while W&B is on
# ------------------------------------------------------------------------------------------------


def test_the_summary_goes_to_the_run_and_its_first_error_turns_w_and_b_off_in_one_line(tmp_path, capsys):
    calls = []
    lg = _offline_logger(tmp_path, calls)
    lg.update_summary({"final/test_acc": 0.5})
    assert calls == [("summary", {"final/test_acc": 0.5})]

    def refuse(values):
        raise ValueError("summary too large\nsecond line")

    lg._experiment.summary.update = refuse
    lg.update_summary({"x": 1})
    lg.update_summary({"y": 2})  # off: not sent, no second line
    assert lg.off and calls[1:] == [("finish", 1)]
    assert capsys.readouterr().err == (
        "W&B failed while writing the summary (ValueError: summary too large); it is off for the rest of this job\n"
    )


def test_a_row_given_as_a_function_is_made_only_while_w_and_b_is_on(tmp_path):
    calls, made = [], []
    lg = _offline_logger(tmp_path, calls)
    lg.log_row(lambda: made.append(1) or {"pic": "z"}, 0)
    assert calls == [("log", {"pic": "z", "epoch": 0}, 0)] and made == [1]
    lg.off = True
    lg.log_row(lambda: made.append(2) or {"pic": "z"}, 1)
    assert made == [1] and len(calls) == 1


def test_closing_a_logger_whose_run_never_started_sends_nothing(tmp_path):
    lg = wandb_run.RunLogger(project="p", save_dir=str(tmp_path), id="abc123", mode="offline")
    lg.finish()
    assert lg._experiment is None and not lg.off


# ------------------------------------------------------------------------------------------------
# wandb_run.user_dirs_into, wandb_run.wandb_logger: W&B's per-user folders
# ------------------------------------------------------------------------------------------------


def _user_dirs(monkeypatch, data: Path, cache: Path):
    from wandb import env

    monkeypatch.setattr(env, "get_data_dir", lambda *a, **k: str(data))
    monkeypatch.setattr(env, "get_cache_dir", lambda *a, **k: str(cache))
    monkeypatch.setenv("WANDB_DATA_DIR", "unset below")  # so that the test's end restores it
    monkeypatch.delenv("WANDB_DATA_DIR")
    monkeypatch.setenv("WANDB_CACHE_DIR", "/users/cache")
    monkeypatch.setattr(wandb_run, "_USER_ENV", {})


def test_an_unwritable_w_and_b_data_folder_goes_into_the_job_and_the_next_job_gets_the_users_back(
    tmp_path, monkeypatch
):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    _user_dirs(monkeypatch, blocked / "data", tmp_path / "cache")
    job1 = tmp_path / "job1"
    said = wandb_run.user_dirs_into(job1)
    assert said == (
        f"W&B cannot write {blocked / 'data'} (Not a directory); its staging and cache files go to {job1}/wandb"
    )
    assert os.environ["WANDB_DATA_DIR"] == str(job1 / "wandb" / "user_data")
    assert os.environ["WANDB_CACHE_DIR"] == "/users/cache" and (job1 / "wandb" / "user_data").is_dir()
    from wandb import env

    monkeypatch.setattr(env, "get_data_dir", lambda *a, **k: str(tmp_path / "ok"))  # writable again
    assert wandb_run.user_dirs_into(tmp_path / "job2") is None
    assert "WANDB_DATA_DIR" not in os.environ and wandb_run._USER_ENV == {}


def test_w_and_b_folders_that_the_job_cannot_take_either_leave_only_the_local_record(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    _user_dirs(monkeypatch, tmp_path / "data", blocked / "cache")
    said = wandb_run.user_dirs_into(blocked)  # the job folder is a file too
    assert said == (
        f"W&B cannot write {blocked / 'cache'} nor {blocked / 'wandb' / 'user_cache'} (Not a directory); "
        "only the local record is kept"
    )
    assert wandb_run._USER_ENV == {"WANDB_CACHE_DIR": "/users/cache"}


def test_a_logger_without_a_writable_w_and_b_folder_is_disabled_and_a_disabled_one_probes_nothing(
    tmp_path, monkeypatch, capsys
):
    probed = []
    lacks = lambda save_dir: probed.append(save_dir) or f"W&B cannot write x; {wandb_run.LOCAL_ONLY}"  # noqa: E731
    monkeypatch.setattr(wandb_run, "user_dirs_into", lacks)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")  # set by the logger: restored when the test ends
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    assert wandb_run.wandb_logger(str(tmp_path))._wandb_init["mode"] == "disabled"
    assert capsys.readouterr().err == "W&B cannot write x; only the local record is kept\n"
    monkeypatch.setattr(wandb_run, "user_dirs_into", lambda d: probed.append(d) or "W&B cannot write x; staging")
    assert wandb_run.wandb_logger(str(tmp_path))._wandb_init["mode"] == "offline"
    assert wandb_run.wandb_logger(str(tmp_path), mode="disabled")._wandb_init["mode"] == "disabled"
    assert probed == [str(tmp_path)] * 2


# ------------------------------------------------------------------------------------------------
# job: a DDP rank, Hydra's names, the resume command, the checks of a sweep's job
# ------------------------------------------------------------------------------------------------


def test_a_rank_started_by_the_job_neither_skips_nor_checks_the_folder_its_launcher_checked(tmp_path, monkeypatch):
    cfg = OmegaConf.create({"resume": True, "ckpt_path": None, "lr": 0.2, "trainer": {"max_epochs": 2}})
    files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5, "epochs": 2})
    ckpt = files.last_checkpoint(tmp_path)
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04cut")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert job.finished(cfg, tmp_path) is None
    job.check_checkpoint(cfg, tmp_path)
    monkeypatch.delenv("LOCAL_RANK")
    assert job.finished(cfg, tmp_path) == {"test_acc": 0.5, "epochs": 2}
    with pytest.raises(ConfigError, match="is not a readable checkpoint"):
        job.check_checkpoint(cfg, tmp_path)


def test_a_finished_or_rank_run_with_other_settings_is_not_refused_as_a_cut_off_one(tmp_path, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    OmegaConf.save(OmegaConf.create({"lr": 0.1}), tmp_path / files.CONFIG)
    _tiny_checkpoint(files.last_checkpoint(tmp_path), 1.0)
    cfg = OmegaConf.create({"lr": 0.2})
    (tmp_path / files.SUMMARY).write_text("{}")
    job.check_same_run(cfg, tmp_path)  # finished: `finished` compares it
    (tmp_path / files.SUMMARY).unlink()
    monkeypatch.setenv("LOCAL_RANK", "0")
    job.check_same_run(cfg, tmp_path)
    monkeypatch.delenv("LOCAL_RANK")
    with pytest.raises(ConfigError, match=r"cut-off run with other settings \(lr: 0.1 -> 0.2\)"):
        job.check_same_run(cfg, tmp_path)


def test_under_hydra_a_job_is_named_by_its_folder_overrides_and_grouped_without_its_seed(monkeypatch):
    cfg = OmegaConf.create({"name": "s", "head": {"name": "binenc"}, "seed": 4})
    _under_hydra(monkeypatch, RunMode.MULTIRUN, ["seed=4", "lr=0.1", "name=s"])
    assert (job.run_name(cfg), job.run_group(cfg)) == ("lr=0.1,seed=4", "s/lr=0.1")
    _under_hydra(monkeypatch, RunMode.RUN, ["name=s", "resume=true"])  # nothing that names a folder
    assert (job.run_name(cfg), job.run_group(cfg)) == ("head=binenc,seed=4", "s")


def test_a_single_runs_resume_command_repeats_its_overrides_quoted_with_its_folder_instead_of_any_other(
    monkeypatch,
):
    _under_hydra(monkeypatch, RunMode.RUN, ["lr=0.1", "output_dir=/old", "data.root=/my data"])
    assert job.resume_hint(OmegaConf.create({}), Path("/runs/a b")) == (
        "resume with: python -m binary_encoding.train lr=0.1 'data.root=/my data' 'output_dir=/runs/a b'"
    )
    _under_hydra(monkeypatch, RunMode.MULTIRUN, ["lr=0.1"])
    assert job.resume_hint(OmegaConf.create({}), Path("/x")) == (
        "rerun the same command to resume (finished jobs are skipped)"
    )


def test_a_refused_setting_is_recorded_in_a_sweeps_job_folder_and_not_in_a_single_runs(tmp_path, monkeypatch, caplog):
    from binary_encoding.run import policy

    def refuse(cfg):
        raise ConfigError("lr must be positive")

    monkeypatch.setattr(policy, "validate", refuse)
    _under_hydra(monkeypatch, RunMode.RUN)
    with pytest.raises(ConfigError):
        job.check_settings(OmegaConf.create({}), tmp_path)
    assert not (tmp_path / files.FAILED).exists()
    _under_hydra(monkeypatch, RunMode.MULTIRUN)
    with pytest.raises(ConfigError, match="^lr must be positive$"):
        job.check_settings(OmegaConf.create({}), tmp_path / "not made")
    assert not (tmp_path / "not made").exists() and caplog.records == []  # no failed.json tried there
    with pytest.raises(ConfigError, match="^lr must be positive$"):
        job.check_settings(OmegaConf.create({}), tmp_path)
    assert json.loads((tmp_path / files.FAILED).read_text())["error"] == "ConfigError: lr must be positive"


# ------------------------------------------------------------------------------------------------
# lock.acquire: a lock released in between, the lock file's mode
# ------------------------------------------------------------------------------------------------


def test_a_lock_released_between_the_try_and_the_read_is_taken_without_a_warning(tmp_path, monkeypatch, recwarn):
    (tmp_path / lock.LOCK).write_text(json.dumps({**lock.me(), "host": "node-elsewhere"}))
    real = lock.holder

    def released(out):
        (Path(out) / lock.LOCK).unlink()  # its holder ends just now
        return real(out)

    monkeypatch.setattr(lock, "holder", released)
    mine = lock.acquire(tmp_path)
    assert real(tmp_path) == mine and not [w for w in recwarn if "stale lock" in str(w.message)]


def test_the_lock_file_is_readable_by_every_user_and_writable_by_its_owner(tmp_path):
    old = os.umask(0o022)
    try:
        lock.acquire(tmp_path)
    finally:
        os.umask(old)
    assert (tmp_path / lock.LOCK).stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------------------
# sweep_log.SweepLog: the refusal notes of a sweep without a token, another sweep's notes
# ------------------------------------------------------------------------------------------------


def test_a_refusal_outside_a_sweep_the_callback_launched_is_noted_nowhere(tmp_path):
    cb = sweep_log.SweepLog()  # a job of a sweep started by another sweeper: no token
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "job": {"num": 1}}})
    cb.on_job_end(config, SimpleNamespace(_return_value=sweep_log.Refused("m", why="in use by h")))
    assert list(tmp_path.iterdir()) == []


def test_the_recap_removes_its_own_sweeps_notes_and_leaves_another_running_sweeps(tmp_path, capsys):
    sweep = tmp_path / "s"
    _job(sweep, ["lr=1"], summary={"test_acc": 0.5})
    for token in ("mine", "theirs"):
        (sweep / sweep_log.REFUSED / token).mkdir(parents=True)
        (sweep / sweep_log.REFUSED / token / "0").write_text("in use by host h, pid 1")
    cb = sweep_log.SweepLog()
    cb.jobs, cb.token = [["lr=1"]], "mine"
    cb._print_recap(str(sweep), {}, ".hydra")
    assert (
        capsys.readouterr().out.splitlines()[1]
        == "1/1  refused            -      -       -  lr=1  (in use by host h, pid 1)"
    )
    assert sorted(p.name for p in (sweep / sweep_log.REFUSED).iterdir()) == ["theirs"]
    assert sweep_log.refused_jobs(sweep, "theirs") == {0: "in use by host h, pid 1"}


def test_a_sweep_without_hydras_job_records_has_no_job_folders(tmp_path):
    """hydra.output_subdir=null: Hydra writes no .hydra/ folder; an overrides.yaml of the job's own is none."""
    _job(tmp_path / "s", ["lr=1"])
    (tmp_path / "s" / "lr=2").mkdir()
    OmegaConf.save(OmegaConf.create(["lr=2"]), tmp_path / "s" / "lr=2" / "overrides.yaml")
    assert sweep_log.job_folders(tmp_path / "s", "") == {} and sweep_log.job_folders(tmp_path / "s", None) == {}
    assert sweep_log.job_folders(tmp_path / "s", ".hydra") == {("lr=1",): tmp_path / "s" / "lr=1"}
