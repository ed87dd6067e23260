"""Launcher presets (optional extras): the SLURM and Ray configs compose, and Ray runs a sweep."""

import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from binary_encoding.train import CONF_DIR


def hydra_cfg(*overrides):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_slurm_preset_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = hydra_cfg("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 4 and launcher.tasks_per_node == 1  # one task per job, its GPUs inside
    assert launcher.max_num_timeout > 0  # preempted / timed-out jobs are requeued and resume
    cpu = hydra_cfg("hydra/launcher=slurm", "trainer.accelerator=cpu", "trainer.devices=2").hydra.launcher
    assert cpu.gpus_per_node == 0  # a CPU job asks SLURM for no GPU (a node without one would never run it)


def test_ray_preset_composes():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    cfg = hydra_cfg("hydra/launcher=ray_gpu")
    assert cfg.hydra.launcher._target_.endswith("RayLauncher")
    assert cfg.hydra.launcher.ray.remote.num_gpus == 1


def test_packed_ray_preset_puts_four_jobs_on_a_gpu():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    cfg = hydra_cfg("hydra/launcher=ray_gpu_packed")
    remote = cfg.hydra.launcher.ray.remote
    assert cfg.hydra.launcher._target_.endswith("RayLauncher")
    assert remote.num_gpus == 0.25 and remote.num_cpus == 2 and remote.max_calls == 1  # the rest from ray_gpu


def test_paper_lr_sweep_has_the_18_rates():
    cfg = hydra_cfg("sweep=paper_lr")
    lrs = [float(v) for v in str(cfg.hydra.sweeper.params.lr).split(",")]
    assert lrs == pytest.approx([1e-5 * 1.5**k for k in range(18)], rel=1e-5)


def test_ray_runs_a_two_job_sweep_on_local_cpus(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    pytest.importorskip("ray")
    cmd = [
        sys.executable,
        "-m",
        "binary_encoding.train",
        "-m",
        "hydra/launcher=ray_gpu",
        "hydra.launcher.ray.remote.num_gpus=0",
        "hydra.launcher.ray.remote.num_cpus=1",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
        "head=binenc,nopen",
        "trainer.max_epochs=2",
        "name=r",
        "trainer.enable_progress_bar=false",
        "deepfool_samples=20",
        "logger=csv",
    ]
    r = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for head in ("binenc", "nopen"):
        job = tmp_path / "multirun" / "r" / f"deepfool_samples=20,head={head},trainer.max_epochs=2"
        assert json.loads((job / "summary.json").read_text())["head"] == head


def test_threads_per_job_split_the_cores_between_the_jobs_at_once():
    from binary_encoding.run.threads import threads_per_job

    assert threads_per_job("auto", n_cores=16, n_jobs=4) == 4
    assert threads_per_job("auto", n_cores=2, n_jobs=3) == 1  # never 0
    assert threads_per_job("auto", n_cores=2, n_jobs=None) is None  # not under a parallel launcher: torch's default
    assert threads_per_job("auto", n_cores=2, n_jobs=0) is None  # a launcher saying 0 jobs at once: no division by 0
    assert threads_per_job(3) == 3 and threads_per_job(None) is None
    with pytest.raises(ValueError, match="positive integer"):
        threads_per_job(0)


@pytest.mark.parametrize("n_jobs", [-1, -2, 1, 3])
def test_the_jobs_at_once_of_a_launcher_are_joblibs_count(n_jobs, monkeypatch):
    """`n_jobs` of hydra/launcher=local_parallel means what joblib makes of it (-1: one job per core, -2:
    all cores but one): `launcher_jobs` equals joblib's `effective_n_jobs` on the same core count."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    import joblib
    from hydra.core.hydra_config import HydraConfig

    from binary_encoding.run import threads

    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setattr(joblib._parallel_backends, "cpu_count", lambda *a, **k: 8)
    cfg = hydra_cfg("hydra/launcher=local_parallel", f"hydra.launcher.n_jobs={n_jobs}")
    HydraConfig.instance().set_config(cfg)
    try:
        assert threads.launcher_jobs() == joblib.effective_n_jobs(n_jobs) == {-1: 8, -2: 7}.get(n_jobs, n_jobs)
    finally:
        HydraConfig.instance().cfg = None


def test_local_parallel_runs_jobs_at_once_each_on_its_share_of_the_cores(tmp_path):
    """Two digits jobs through hydra-joblib-launcher with n_jobs=2: both finish, each with cores // 2
    torch threads (its train.log says), and their run times overlap."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from binary_encoding.run.threads import cores

    cfg = hydra_cfg("hydra/launcher=local_parallel")
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 2
    cmd = [sys.executable, "-m", "binary_encoding.train", "-m", "hydra/launcher=local_parallel", "head=binenc,nopen"]
    cmd += ["trainer.max_epochs=2", "name=p", "trainer.enable_progress_bar=false", "deepfool_samples=20", "logger=csv"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    spans = []
    for head in ("binenc", "nopen"):
        job = tmp_path / "multirun" / "p" / f"deepfool_samples=20,head={head},trainer.max_epochs=2"
        assert json.loads((job / "summary.json").read_text())["head"] == head
        assert f"torch threads: {max(1, cores() // 2)}" in (job / "train.log").read_text()
        spans.append((job / "config.yaml").stat().st_mtime), spans.append((job / "summary.json").stat().st_mtime)
    assert spans[2] < spans[1] and spans[0] < spans[3], spans  # each started before the other ended


def test_the_cores_are_split_rounding_down_and_numpy_pools_get_the_same_count(monkeypatch):
    """7 cores for 2 jobs: 3 threads each (never more threads than cores); `apply` sets torch's threads and the
    BLAS/OpenMP pools of numpy and scikit-learn to that count, and leaves both alone for null."""
    import threadpoolctl
    import torch

    from binary_encoding.run import threads

    assert threads.threads_per_job("auto", n_cores=7, n_jobs=2) == 3
    assert threads.threads_per_job("auto", n_cores=8, n_jobs=3) == 2
    torch_calls, pool_calls = [], []
    monkeypatch.setattr(torch, "set_num_threads", torch_calls.append)
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", pool_calls.append)
    threads.apply(5)
    threads.apply(None)
    assert torch_calls == pool_calls == [5]
