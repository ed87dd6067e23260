"""Forward a whole clean split through the model and gather it from every DDP rank.

Each rank reads `indices[rank::world]` of the split (no padding, see `data/base.py`); the gathered arrays
are put back in dataset order, so they equal what a single process computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ranks import gather_strided, rank_world


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


@torch.no_grad()
def collect_latents(module, datamodule, split: str, bf16: bool | None = None, augmented: bool = False) -> Latents:
    """Latents of the whole clean `split` (`augmented`: its seeded augmented view, see
    `data.base.InMemoryDataModule.eval_dataloader`), on `module.device`, identical on every rank. `bf16`:
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
    """Whether the trainer `module` is attached to trains in bf16 (False without one)."""
    try:
        trainer = module.trainer  # a LightningModule's property; raises when no trainer is attached
    except (RuntimeError, AttributeError):  # AttributeError: a plain torch module
        return False
    return trainer is not None and "bf16" in str(trainer.precision)
