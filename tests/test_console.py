"""What runs and sweeps print: the epoch lines (console and train.log), the progress bar's `auto`,
and a sweep's job lines and recap (on folders with known contents; test_sweep.py runs a real sweep)."""

import csv
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import TQDMProgressBar
from omegaconf import OmegaConf

from binary_encoding.record import csv_log, files
from binary_encoding.run import console, policy, sweep_log
from binary_encoding.train import CONF_DIR

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def _epoch_lines(text: str) -> list[str]:
    """The epoch lines of a log, without logging's prefix."""
    return [ln.split("] - ", 1)[1] for ln in text.splitlines() if "] - epoch " in ln]


def test_a_piped_default_run_prints_one_line_per_epoch_and_no_bar(tmp_path):
    """The default config with stdout piped (as in a SLURM log): no progress bar frames, no carriage
    returns, one line per epoch on stdout and the same lines in the run's train.log, holding the
    epoch's values of metrics.csv; codes only in epochs with a metric pass (metrics_every=2: epoch 2)."""
    cmd = [sys.executable, "-m", "binary_encoding.train", "trainer.max_epochs=2", "metrics_every=2"]
    # bytes, not text: text mode would turn a carriage return into a newline
    r = subprocess.run(
        [*cmd, "deepfool_samples=0", "logger=csv"], cwd=tmp_path, env=ENV, capture_output=True, timeout=300
    )
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    out = r.stdout.decode()
    assert "\r" not in out and "it/s" not in out and "Epoch 0" not in out
    (run,) = (tmp_path / "outputs" / "digits_mlp").iterdir()
    with open(run / files.METRICS) as f:
        rows = list(csv.DictReader(f))
    expected = [
        f"epoch {e + 1}/2  train loss {float(row['train/loss']):.4f}  val acc {float(row['val/acc']):.4f}  "
        f"gamma {float(row['gamma']):.4g}" + (f"  codes {float(row['train/n_codes']):.0f}" if e > 0 else "")
        for e, row in enumerate(rows)
    ]
    assert not rows[0]["train/n_codes"] and rows[1]["train/n_codes"]  # the metric pass skipped epoch 1
    printed = _epoch_lines(out)
    assert [re.sub(r"  \d+\.\d s$", "", ln) for ln in printed] == expected, printed
    assert _epoch_lines((run / files.LOG).read_text()) == printed


def _log_setup(tmp_path):
    """A root logger as Hydra's job logging sets it up: a console handler and a file handler."""
    root = logging.getLogger()
    stream = open(tmp_path / "console.txt", "w")
    handlers = [logging.StreamHandler(stream), logging.FileHandler(tmp_path / "train.log")]
    for h in handlers:
        root.addHandler(h)
    return root, handlers, stream


@pytest.mark.parametrize("to_console", [True, False])
def test_epoch_lines_hold_only_their_epochs_values_and_leave_the_console_to_a_bar(tmp_path, to_console):
    """Each line holds the values logged in its epoch (validation's come before the training epoch's,
    which complete the line); codes missing from an epoch are not carried over. With a progress bar
    (console=False) the lines go to the log file only."""
    root, handlers, stream = _log_setup(tmp_path)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        lg = console.EpochLog(max_epochs=150, console=to_console)
        lg.log_metrics({"val/acc": 0.5, "epoch": 0}, step=10)
        lg.log_metrics({"gamma": 0.01, "train/loss": 1.80744, "train/n_codes": 16.0, "epoch": 0}, step=10)
        lg.log_metrics({"gamma": 0.0108, "train/loss": 1.2, "epoch": 1}, step=21)  # no validation, no metric pass
        lg.log_metrics({"final/test_acc": 0.9}, step=21)  # end-of-fit values: no line
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        root.setLevel(level)
        stream.close()
    lines = [re.sub(r"  \d+\.\d s$", "", ln) for ln in (tmp_path / "train.log").read_text().splitlines()]
    assert lines == [
        "epoch 1/150  train loss 1.8074  val acc 0.5000  gamma 0.01  codes 16",
        "epoch 2/150  train loss 1.2000  gamma 0.0108",
    ]
    on_console = (tmp_path / "console.txt").read_text()
    assert on_console == ((tmp_path / "train.log").read_text() if to_console else "")


def _trainer_cfg(*overrides):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("tty", [True, False])
def test_the_progress_bar_is_on_by_default_only_in_a_terminal(monkeypatch, tty):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert policy.trainer_kwargs(_trainer_cfg())["enable_progress_bar"] is tty
    for setting in (True, False):  # an explicit choice wins
        cfg = _trainer_cfg(f"trainer.enable_progress_bar={setting}")
        assert policy.trainer_kwargs(cfg)["enable_progress_bar"] is setting


def test_a_bad_progress_bar_setting_is_refused():
    with pytest.raises(policy.ConfigError, match="trainer.enable_progress_bar=sometimes: must be auto, true or false"):
        policy.validate(_trainer_cfg("trainer.enable_progress_bar=sometimes"))


def test_the_progress_bar_shows_no_logger_version(tmp_path):
    import lightning as L

    trainer = L.Trainer(logger=csv_log.LocalRecord(tmp_path), enable_checkpointing=False)
    assert "v_num" in TQDMProgressBar().get_metrics(trainer, None)  # Lightning's bar shows it
    assert "v_num" not in console.ProgressBar().get_metrics(trainer, None)


# ------------------------------------------------------------------------------------------------
# A sweep: its jobs, and the recap from the job folders
# ------------------------------------------------------------------------------------------------


def test_the_jobs_of_a_sweep_are_those_of_hydras_basic_sweeper():
    """Swept values from `hydra.sweeper.params` (as sweep=paper_lr sets them) and from the command line,
    one job per combination in the sweeper's order; another sweeper: unknown."""
    sweeper = {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": {"lr": "1,2"}}
    task = ["head=binenc,nopen", "seed=0", "name=x"]
    cfg = OmegaConf.create({"hydra": {"sweeper": sweeper, "overrides": {"task": task}}})
    assert sweep_log.sweep_jobs(cfg) == [
        ["lr=1", "head=binenc", "seed=0", "name=x"],
        ["lr=1", "head=nopen", "seed=0", "name=x"],
        ["lr=2", "head=binenc", "seed=0", "name=x"],
        ["lr=2", "head=nopen", "seed=0", "name=x"],
    ]
    cfg.hydra.sweeper._target_ = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweep_log.sweep_jobs(cfg) is None


def _job(sweep, overrides, summary=None, failed=None, failed_text=None):
    """A sweep job's folder: its overrides, and a summary.json, or a failed.json of the error `failed` (or
    with exactly `failed_text`, a cut file for one)."""
    folder = sweep / ",".join(overrides)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    if summary is not None:
        (folder / files.SUMMARY).write_text(json.dumps(summary))
    if failed is not None:
        failed_text = json.dumps({"error": failed, "traceback": "..."})
    if failed_text is not None:
        (folder / files.FAILED).write_text(failed_text)
    return folder


def test_the_recap_gives_each_jobs_status_from_its_folder(tmp_path):
    """finished, skipped (its summary was there when the sweep started), diverged, failed (with its
    error), unfinished (a folder without either file) and not run (no folder), in the sweep's order,
    named by the overrides that differ between jobs; then the counts and the report command."""
    sweep = tmp_path / "multirun" / "s"
    common = "trainer.max_epochs=2"
    done = {"test_acc": 0.96667, "n_codes": 11, "fit_seconds": 90.0, "diverged": False}
    old = _job(sweep, ["lr=1", common], {**done, "test_acc": 0.5, "fit_seconds": 30.0})
    before = sweep_log.summary_times(sweep_log.job_folders(sweep, ".hydra").values())
    assert before == {old: (old / files.SUMMARY).stat().st_mtime_ns}
    _job(sweep, ["lr=2", common], done)
    _job(sweep, ["lr=3", common], {**done, "test_acc": 0.1, "n_codes": 1, "diverged": True})
    _job(sweep, ["lr=4", common], failed="ConfigError: lr must be positive, got -1\nmore")
    _job(sweep, ["lr=5", common])
    _job(sweep, ["lr=9", common], done)  # another sweep's job: not listed
    jobs = [[f"lr={i}", common] for i in range(1, 7)]
    assert sweep_log.recap(str(sweep), jobs, before, ".hydra").splitlines() == [
        "job  status      test acc  codes     min  overrides",
        "1/6  skipped       0.5000     11     0.5  lr=1",
        "2/6  finished      0.9667     11     1.5  lr=2",
        "3/6  diverged      0.1000      1     1.5  lr=3",
        "4/6  failed             -      -       -  lr=4  (ConfigError: lr must be positive, got -1)",
        "5/6  unfinished         -      -       -  lr=5",
        "6/6  not run            -      -       -  lr=6",
        "6 jobs: 1 skipped, 1 finished, 1 diverged, 1 failed, 1 unfinished, 1 not run",
        f"report: python -m binary_encoding.report {sweep}",
    ]


def test_the_finished_run_lines_call_the_reference_auroc_an_estimate_that_can_exceed_1():
    """The reference setup's AUROC estimate (docs/method.md §7.5) printed above 1 says what it is."""
    from binary_encoding.record.summarize import format_summary

    s = {
        "data": "digits", "backbone": "mlp", "head": "binenc", "seed": 0, "lr": 1e-3, "epochs": 2, "fit_seconds": 3.0,
        "n_codes": 11, "top_codes_fraction": 0.99, "agreement_dim": 0.99, "agreement_code": 0.98, "nc1": 6e-3,
        "gamma": 0.01, "mahalanobis_auroc": 0.91, "mahalanobis_auroc_ref": 1.0045, "msp_auroc": 0.88,
    }  # fmt: skip
    line = next(x for x in format_summary(s, "out").splitlines() if x.startswith("reliability"))
    assert "Mahalanobis AUROC 0.9100 (reference estimator 1.0045, an estimate that can exceed 1)" in line
    assert "reference" not in format_summary({**s, "mahalanobis_auroc_ref": None}, "out")
