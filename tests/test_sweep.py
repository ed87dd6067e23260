"""Hydra multirun: one folder and one W&B run per job, failures isolated, reruns skip finished jobs,
and DDP inside a sweep (each job starting its own ranks)."""

import csv
import json
import os
import re
import subprocess
import sys

ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def run(args, cwd, timeout=600):
    cmd = [sys.executable, "-m", "binary_encoding.train", "-m", "trainer.enable_progress_bar=false", *args]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _recap(stdout: str) -> list[list[str]]:
    """The recap's rows, split into their columns: job i/N, status, test acc, codes, minutes, overrides."""
    return [ln.split()[:6] for ln in stdout.splitlines() if re.match(r"\d+/\d+  ", ln)]


def test_failed_job_is_recorded_others_run_and_rerun_skips_finished(tmp_path):
    """4 jobs, 2 of them failing: each job is announced as `job i/4` (also in its train.log, with its
    epoch lines), the failures are recorded and the others run, each finished job in its own folder with
    its own W&B run (never shared, in one process), and the recap lists every job with the report command;
    the same command again skips the finished jobs (not trained again)."""
    args = ["head=binenc,nopen", "lr=1e-3,-1", "trainer.max_epochs=2", "name=f", "deepfool_samples=20"]
    r = run(args, tmp_path)
    assert r.returncode != 0  # the sweep reports the failure at the end...
    sweep = tmp_path / "multirun" / "f"
    good, bad = (
        sweep / "deepfool_samples=20,head=binenc,lr=0.001,trainer.max_epochs=2",
        sweep / "deepfool_samples=20,head=binenc,lr=-1,trainer.max_epochs=2",
    )
    s = json.loads((good / "summary.json").read_text())
    assert s["epochs"] == 2  # ...after running the other jobs
    for head in ("binenc", "nopen"):  # one W&B run per finished job, named by the job's wandb_id.txt
        job = sweep / f"deepfool_samples=20,head={head},lr=0.001,trainer.max_epochs=2"
        assert json.loads((job / "summary.json").read_text())["head"] == head
        (offline,) = (job / "wandb").glob("offline-run-*")
        assert offline.name.endswith((job / "wandb_id.txt").read_text().strip())
    failed = json.loads((bad / "failed.json").read_text())
    assert "lr=-1: must be a finite number > 0" in failed["error"] and not (bad / "summary.json").exists()
    for i in range(1, 5):
        assert f"job {i}/4: " in r.stdout
    log = (good / "train.log").read_text()
    assert re.search(r"job 1/4: .*head=binenc,lr=0.001", log) and "epoch 1/2 " in log and "epoch 2/2 " in log
    rows = _recap(r.stdout)
    assert [row[:2] for row in rows] == [["1/4", "finished"], ["2/4", "failed"], ["3/4", "finished"], ["4/4", "failed"]]
    assert rows[0][2:4] == [f"{s['test_acc']:.4f}", str(s["n_codes"])] and rows[0][5] == "head=binenc,lr=0.001"
    assert r.stdout.rstrip().endswith("report: python -m binary_encoding.report multirun/f")
    before = (good / "summary.json").stat().st_mtime_ns
    r2 = run(args, tmp_path)
    assert "already finished" in r2.stdout
    assert (good / "summary.json").stat().st_mtime_ns == before  # not trained again
    assert [row[:2] for row in _recap(r2.stdout)] == [
        ["1/4", "skipped"],
        ["2/4", "failed"],
        ["3/4", "skipped"],
        ["4/4", "failed"],
    ]


def test_ddp_jobs_inside_multirun(tmp_path):
    """2 jobs x 2 ranks on CPU (gloo): each job finishes, writes one record and one W&B run."""
    r = run(
        [
            "head=binenc,nopen",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_epochs=2",
            "name=d",
            "deepfool_samples=21",
        ],
        tmp_path,
    )
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-6000:]}"
    sweep = tmp_path / "multirun" / "d"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == [
        f"deepfool_samples=21,head={h},trainer.devices=2,trainer.max_epochs=2,trainer=ddp" for h in ("binenc", "nopen")
    ]
    for job in jobs:
        s = json.loads((job / "summary.json").read_text())
        assert s["epochs"] == 2 and s["deepfool_images"] == 21 and 0 < s["test_acc"] <= 1
        rows = list(csv.DictReader(open(job / "metrics.csv")))
        assert [r["epoch"] for r in rows] == ["0", "1"]  # logged once, not once per rank
        # the epoch's training sums are reduced over both ranks: 1293 images, less the 1 that does not divide by 2
        assert [float(r["train/images"]) for r in rows] == [1292.0, 1292.0]
        assert len(list((job / "wandb").glob("offline-run-*"))) == 1
    assert r.stdout.count("== digits / mlp /") == 2  # one summary per job, printed by rank 0 only
