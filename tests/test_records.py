"""What a job folder answers when asked for what it cannot give: a file that is no checkpoint for
`evaluate`, more epochs of a finished run, a sweep into a folder another sweep holds."""

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_cfg
from omegaconf import OmegaConf


@pytest.mark.parametrize(
    "content, says",
    [(b"", "is empty (0 bytes): not a checkpoint"), (b"seed: 0\nlr: 0.001\n", "is not a checkpoint (no torch zip")],
    ids=["zero-bytes", "yaml"],
)
def test_evaluate_on_a_file_that_is_no_checkpoint_says_so_in_one_line_with_exit_2(tmp_path, capsys, content, says):
    from binary_encoding.evaluate import main as evaluate_main

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(make_cfg(run), run / "config.yaml")
    (run / "checkpoints" / "last.ckpt").write_bytes(content)
    with pytest.raises(SystemExit) as exit_code:
        evaluate_main([str(run)])
    err = capsys.readouterr().err
    assert exit_code.value.code == 2, err[-3000:]
    (line,) = err.strip().splitlines()
    assert line == f"[1/1] {run}: {run / 'checkpoints' / 'last.ckpt'} {says}" + line.split(says, 1)[1]
    assert not (run / "eval.json").exists()


def test_a_finished_run_asked_for_more_epochs_trains_on_to_the_numbers_of_the_longer_run(tmp_path, capsys):
    """A finished 2-epoch run asked for trainer.max_epochs=3 trains one more epoch from its checkpoint
    and ends with the summary and record of a 3-epoch run never stopped; asked for 1 epoch, it refuses in
    one line and keeps its summary."""
    from binary_encoding.run.policy import ConfigError
    from binary_encoding.train import train

    fast = ["deepfool_samples=8", "runtime.threads=1"]
    two = train(make_cfg(tmp_path / "run", "trainer.max_epochs=2", *fast))
    assert two["epochs"] == 2
    on = train(make_cfg(tmp_path / "run", "trainer.max_epochs=3", *fast))
    assert (
        f"training on: {tmp_path / 'run'} finished 2 epochs; trainer.max_epochs=3 continues" in capsys.readouterr().out
    )
    three = train(make_cfg(tmp_path / "full", "trainer.max_epochs=3", *fast))
    same = {k: v for k, v in three.items() if k != "fit_seconds"}  # the fingerprints of config and weights too
    assert on["epochs"] == 3 and {k: on[k] for k in same} == same
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 3
    assert json.loads((tmp_path / "run" / "summary.json.stale").read_text())["epochs"] == 2
    assert rows(tmp_path / "run") == rows(tmp_path / "full")
    with pytest.raises(ConfigError, match=r"holds a run finished at 3 epochs; trainer.max_epochs=1 asks for fewer"):
        train(make_cfg(tmp_path / "run", "trainer.max_epochs=1", *fast))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 3


def rows(out):
    with open(out / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in csv.DictReader(f)]


def test_a_sweep_overlapping_another_refuses_its_busy_job_in_one_line_and_counts_it(procs, tmp_path):
    """Two sweeps of the same jobs into one sweep folder: the second is started while the first holds
    job 1's folder (held there by `hold_job.py` until released). The second refuses job 1 in one line
    (no traceback), trains job 2, and its recap counts 1 refused and 1 finished; it exits 1. Released, the
    first trains job 1 and finds job 2 finished by the second."""
    args = ["-m", "logger=csv", "trainer.enable_progress_bar=false", "name=both", "lr=0.01,0.02", *TINY]
    release, job1 = tmp_path / "release", tmp_path / "multirun" / "both" / ",".join(sorted(["lr=0.01", *TINY]))
    first = procs.start(
        [sys.executable, str(HERE / "hold_job.py"), str(release), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 600
    while not (job1 / "job.lock").exists():  # the first sweep holds job 1's folder
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.time() < deadline, "the first sweep never took job 1's folder"
        time.sleep(0.05)
    second = procs.run([sys.executable, "-m", "binary_encoding.train", *args], timeout=600, cwd=tmp_path)
    release.touch()
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert second.returncode == 1, second.stderr[-3000:]
    assert "Traceback" not in second.stderr and "FolderBusy" not in second.stderr
    (refused,) = [ln for ln in second.stderr.splitlines() if ln.startswith("refused: ")]
    assert refused.startswith(f"refused: {job1} is in use by another job (host ") and f"pid {first.pid}" in refused
    recap = second.stdout.splitlines()
    assert "2 jobs: 1 refused, 1 finished" in recap or "2 jobs: 1 finished, 1 refused" in recap, second.stdout
    assert next(ln for ln in recap if ln.startswith("1/2")).split()[1] == "refused"
    assert "2 jobs: 2 finished" in out.splitlines(), out  # job 2 by the second sweep, while the first ran
    assert not (tmp_path / "multirun" / "both" / ".refused").exists()


HERE = Path(__file__).resolve().parent
TINY = ["trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0", "runtime.threads=1"]


@pytest.mark.slow
def test_parallel_workers_end_soon_after_their_launcher_is_killed(procs, tmp_path):
    """kill -9 of a hydra/launcher=local_parallel sweep while both of its jobs train: the two loky workers
    end within 30 s (they watch the launcher every `LAUNCHER_POLL_S`), instead of training on for minutes."""
    import os
    import signal

    from binary_encoding.run import lock
    from binary_encoding.run.lock import proc_start

    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    args = ["-m", "hydra/launcher=local_parallel", "logger=csv", "trainer.enable_progress_bar=false", "name=par"]
    jobs = ["lr=0.01,0.02", "trainer.max_epochs=1000", "deepfool_samples=0", "metrics_every=0"]
    launcher = procs.start(
        [sys.executable, "-m", "binary_encoding.train", *args, *jobs],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    locks = [
        tmp_path / "multirun" / "par" / ",".join(sorted([lr, *jobs[1:]])) / "job.lock" for lr in ("lr=0.01", "lr=0.02")
    ]
    deadline = time.time() + 600
    while not all(lock.holder(p.parent) for p in locks):  # both jobs hold their folders: both train
        assert launcher.poll() is None and time.time() < deadline, "the sweep did not start both jobs"
        time.sleep(0.1)
    workers = [lock.holder(p.parent)["pid"] for p in locks]
    assert launcher.pid not in workers
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    deadline = time.time() + 30
    while any(proc_start(w, live=True) for w in workers) and time.time() < deadline:  # a zombie counts as ended
        time.sleep(0.1)
    assert not [w for w in workers if proc_start(w, live=True)], "a worker outlived its launcher by 30 s"


def test_the_w_and_b_run_id_is_kept_across_calls_and_an_empty_id_file_gets_a_new_one(tmp_path, monkeypatch):
    """The id file is what makes a resumed job continue its W&B run: the same id on every call, written
    atomically (a kill mid-write leaves no empty file), and an empty file (as older versions could leave)
    is replaced by a new 12-hex id instead of resuming the run ''."""
    from binary_encoding.record import files

    replaced = []
    real_replace = files.os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (replaced.append(Path(b).name), real_replace(a, b)))
    first = files.wandb_run_id(tmp_path)
    assert len(first) == 12 and int(first, 16) >= 0 and replaced == [files.WANDB_ID]
    assert files.wandb_run_id(tmp_path) == first and replaced == [files.WANDB_ID]
    (tmp_path / files.WANDB_ID).write_text("")
    second = files.wandb_run_id(tmp_path)
    assert len(second) == 12 and second != first and (tmp_path / files.WANDB_ID).read_text() == second


def test_summary_json_writes_nan_as_null_and_infinities_as_strings_that_read_back(tmp_path):
    """JSON has no NaN or infinity: a NaN (a metric that could not be computed) becomes null, +-inf (e.g.
    DeepFool's ratio when nothing was fooled) the strings "inf" and "-inf", which float() reads back."""
    import math

    from binary_encoding.record import files

    files.write_json(tmp_path / "s.json", {"a": math.inf, "b": -math.inf, "c": math.nan, "d": 0.25, "e": "x"})
    back = json.loads((tmp_path / "s.json").read_text())
    assert back == {"a": "inf", "b": "-inf", "c": None, "d": 0.25, "e": "x"}
    assert float(back["a"]) == math.inf and float(back["b"]) == -math.inf


@pytest.mark.parametrize("resume, kept", [(False, False), (True, True), ("force", True)])
def test_starting_over_removes_the_old_summary_and_eval_and_resuming_keeps_them(tmp_path, resume, kept):
    """resume=false starts the job over: the summary.json and eval.json of the run before must go before
    anything else is written (else a kill would leave them to pass for this run's); resume=true keeps them,
    and so does resume=force (it continues the old run with new settings)."""
    from binary_encoding.record import files
    from binary_encoding.run import job

    for name in (files.SUMMARY, files.EVAL):
        (tmp_path / name).write_text("{}")
    job.start(make_cfg(tmp_path, f"resume={str(resume).lower()}"), tmp_path)
    assert [(tmp_path / n).exists() for n in (files.SUMMARY, files.EVAL)] == [kept, kept]
    assert (tmp_path / files.CONFIG).exists()
