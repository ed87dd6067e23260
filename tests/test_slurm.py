"""The SLURM preset against a real one-node SLURM cluster (`.ci/slurm_up.sh`, which `.ci/run` starts):
a sweep through hydra-submitit-launcher, a job cancelled in the middle of a sweep, a requeued job."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("sbatch") is None, reason="no SLURM here: bash .ci/slurm_up.sh starts one"),
]
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

ARGS = [
    "hydra/launcher=slurm",
    "trainer.accelerator=cpu",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=20",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "deepfool_samples=0",
]


def sweep(tmp_path, *args):
    cmd = [sys.executable, "-m", "binary_encoding.train", "-m", *ARGS, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_sweep_runs_its_jobs_as_slurm_jobs(tmp_path):
    """Two jobs through hydra/launcher=slurm on CPU (gpus_per_node becomes 0 by itself): both finish
    with their records, in their own folders."""
    p = sweep(tmp_path, "head=binenc,nopen", "trainer.max_epochs=2", "name=s1", "hydra.job.name=s1")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    for head in ("binenc", "nopen"):
        job = tmp_path / "multirun" / "s1" / f"deepfool_samples=0,head={head},trainer.max_epochs=2"
        s = json.loads((job / "summary.json").read_text())
        assert s["head"] == head and s["epochs"] == 2
    logs = list((tmp_path / "multirun" / "s1" / ".submitit").rglob("*_log.out"))
    assert len(logs) >= 2  # they ran as SLURM jobs, with submitit's logs


def _accounting() -> bool:
    r = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True)
    return r.returncode == 0


def _state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
    return out.strip()


@pytest.mark.skipif(
    shutil.which("sacct") is None or not _accounting(),
    reason="SLURM job accounting (slurmdbd) is not running: submitit reads a cancelled job's state from "
    "sacct and would wait for it forever",
)
def test_a_cancelled_job_fails_and_the_other_finishes(tmp_path):
    p = sweep(tmp_path, "trainer.max_epochs=2,400", "name=s2", "hydra.job.name=s2")
    deadline = time.time() + 300
    long_job = tmp_path / "multirun" / "s2" / "deepfool_samples=0,trainer.max_epochs=400" / "metrics.csv"
    while not long_job.exists():
        assert time.time() < deadline and p.poll() is None, "the long job never started"
        time.sleep(0.5)
    # the sweep is one array job: task 1 is the second job (max_epochs=400)
    array = next(p.name for p in (tmp_path / "multirun" / "s2" / ".submitit").iterdir() if "_" not in p.name)
    subprocess.run(["scancel", f"{array}_1"], check=True)
    _, err = p.communicate(timeout=600)
    assert p.returncode != 0  # the sweep reports the cancelled job
    short = tmp_path / "multirun" / "s2" / "deepfool_samples=0,trainer.max_epochs=2"
    assert json.loads((short / "summary.json").read_text())["epochs"] == 2
    assert not (long_job.parent / "summary.json").exists()


def _state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
    return out.strip()


@pytest.mark.skipif(
    shutil.which("sacct") is None or not _accounting(),
    reason="SLURM job accounting (slurmdbd) is not running: submitit cannot follow a requeued job",
)
def test_a_requeued_job_comes_back_and_ends_like_an_uninterrupted_one(tmp_path):
    """`scontrol requeue` of a running job: SLURM stops it (SIGTERM: exit 143, checkpoint kept) and starts
    it again; it resumes from its checkpoint and ends with exactly the numbers of the same job never
    interrupted. SLURM holds a requeued job back for two minutes (its begin time): once it is pending
    again, its start time is moved to now, so the test waits for the job, not for that delay."""
    args = ["trainer.max_epochs=30", "seed=3"]
    ref = sweep(tmp_path, *args, "name=s3ref", "hydra.job.name=s3ref")
    p = sweep(tmp_path, *args, "name=s3", "hydra.job.name=s3")
    job = tmp_path / "multirun" / "s3" / "deepfool_samples=0,seed=3,trainer.max_epochs=30"
    deadline = time.time() + 300
    while not ((job / "metrics.csv").exists() and len((job / "metrics.csv").read_text().splitlines()) > 3):
        assert time.time() < deadline and p.poll() is None, "the job never got going"
        time.sleep(0.2)
    (job_id,) = subprocess.run(["squeue", "-h", "-n", "s3", "-o", "%i"], capture_output=True, text=True).stdout.split()
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    deadline = time.time() + 120
    while _state(job_id) != "PENDING" and time.time() < deadline:
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    for proc in (p, ref):
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    a = json.loads((tmp_path / "multirun" / "s3ref" / job.name / "summary.json").read_text())
    b = json.loads((job / "summary.json").read_text())
    assert {k: v for k, v in a.items() if k != "fit_seconds"} == {k: v for k, v in b.items() if k != "fit_seconds"}
    logs = "".join(f.read_text() for f in (tmp_path / "multirun" / "s3" / ".submitit").rglob("*_log.err"))
    assert "terminated at epoch" in logs  # the first attempt was really stopped, then resumed
