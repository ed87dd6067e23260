"""Forward a whole clean split through the model and gather it from every DDP rank.

Each rank reads `indices[rank::world]` of the split (no padding, see `data.py`); the gathered arrays
are put back in dataset order, so they equal what a single process computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Latents:
    z: torch.Tensor  # [N, d] penultimate representation (float32)
    logits: torch.Tensor  # [N, C]
    y: torch.Tensor  # [N] true labels

    @property
    def pred(self) -> torch.Tensor:
        return self.logits.argmax(1)

    @property
    def acc(self) -> float:
        return (self.pred == self.y).float().mean().item()

    def numpy(self) -> dict:
        return {"z": self.z.cpu().numpy(), "logits": self.logits.cpu().numpy(), "y": self.y.cpu().numpy()}


def rank_world() -> tuple[int, int]:
    """`(rank, world size)` of the initialized process group; `(0, 1)` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def collect_latents(module, datamodule, split: str, bf16: bool | None = None, augmented: bool = False) -> Latents:
    """Latents of the whole clean `split` (`augmented`: its seeded augmented view, see
    `data.InMemoryDataModule.eval_dataloader`), on `module.device`, identical on every rank. `bf16`:
    forward under bf16 autocast (None: as the attached trainer's precision says)."""
    bf16 = _autocast_bf16(module) if bf16 is None else bf16
    was_training = module.training
    module.eval()
    zs, ls, ys = [], [], []
    try:
        for x, y in datamodule.eval_dataloader(split, augmented):
            x = datamodule.normalize(x.to(module.device, non_blocking=True))
            with torch.autocast(module.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits, z = module(x)
            zs.append(z.float()), ls.append(logits.float()), ys.append(y.to(module.device))
    finally:
        module.train(was_training)
    out = Latents(torch.cat(zs), torch.cat(ls), torch.cat(ys))
    if rank_world()[1] > 1:
        out = Latents(*(gather_strided(t) for t in (out.z, out.logits, out.y)))
    return out


def _autocast_bf16(module) -> bool:
    trainer = getattr(module, "_trainer", None)
    return trainer is not None and "bf16" in str(trainer.precision)


def gather_strided(t: torch.Tensor) -> torch.Tensor:
    """All-gather per-rank shards `full[rank::world]` of unequal length and rebuild `full`."""
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
