"""How many CPU threads a job's torch uses (`runtime.threads`), so that N jobs at once on one machine
(`hydra/launcher=local_parallel`) split its cores instead of each taking all of them.

`auto`: the machine's cores (those this process may run on) divided by the number of jobs the Hydra
launcher runs at once (its `n_jobs`; joblib's -1 = one job per core), at least 1; a launcher without
`n_jobs` (the default one, one job after another): torch's own default. An integer: that many.
"""

from __future__ import annotations

import os


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def launcher_jobs() -> int | None:
    """The Hydra launcher's jobs at once (None: not under Hydra, or a launcher without `n_jobs`)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    n = HydraConfig.get().launcher.get("n_jobs")
    if n is None:
        return None
    n = int(n)
    return cores() + 1 + n if n < 0 else n  # joblib: -1 = all cores, -2 = all but one, ...


def threads_per_job(setting, n_cores: int | None = None, n_jobs: int | None = None) -> int | None:
    """The thread count `runtime.threads` asks for (None: leave torch's default)."""
    if setting is None:
        return None
    if setting != "auto":
        if int(setting) < 1:
            raise ValueError(f"runtime.threads must be auto, null or a positive integer, got {setting!r}")
        return int(setting)
    n_jobs = launcher_jobs() if n_jobs is None else n_jobs
    if not n_jobs:
        return None
    return max(1, (n_cores or cores()) // n_jobs)


def apply(setting) -> int:
    """Set torch's intra-op threads as `runtime.threads` says, and the BLAS/OpenMP pools of numpy and
    scikit-learn (the metric passes: Gaussian mixtures, covariances) to the same count, so that N jobs at
    once do not oversubscribe the cores through those pools either; return torch's count."""
    import torch
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    n = threads_per_job(setting)
    if n is not None:
        torch.set_num_threads(n)
        threadpool_limits(n)
    return torch.get_num_threads()
