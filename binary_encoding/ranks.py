"""The one way to ask which DDP rank this process is, and the gather that rebuilds a split from ranks.

A job on several devices starts its ranks with torch.distributed.run (`run.job.launch_ddp`), which sets
`RANK`, `LOCAL_RANK` and `WORLD_SIZE`; once Lightning has set up the process group, torch.distributed
says the same. `rank_world` asks the process group when there is one, else the environment, so it is
right before the Trainer exists (data setup) and after (metric passes). Light on purpose: it imports
no torch itself (a process group exists only where torch.distributed was imported already).
"""

from __future__ import annotations

import os
import sys


def rank_world() -> tuple[int, int]:
    """`(rank, world size)` of this process: the initialized process group's, else torch.distributed.run's
    environment, else `(0, 1)`."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    """This process's rank in its job (0 outside DDP)."""
    return rank_world()[0]


def is_rank0() -> bool:
    return rank() == 0


def is_launched_rank() -> bool:
    """Whether this process is one rank that `run.job.launch_ddp` started (not the job's own process)."""
    return "LOCAL_RANK" in os.environ


def gather_strided(t):
    """All-gather per-rank shards `full[rank::world]` of unequal length and rebuild `full` (every rank
    gets the whole tensor, in dataset order)."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    m = max(sizes)
    padded = torch.zeros((m, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    full = torch.empty((sum(sizes), *t.shape[1:]), dtype=t.dtype, device=t.device)
    for r, (p, s) in enumerate(zip(parts, sizes)):
        full[r::world] = p[:s]
    return full
