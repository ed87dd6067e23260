"""Augmentation of whole batches on their device: random crop with zero padding and horizontal flip,
the distribution of torchvision's `RandomCrop(padding=pad)` + `RandomHorizontalFlip()`.
"""

from __future__ import annotations

import torch

from .sampler import _Indexed


def augment_batch(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop (zero padding `pad`, same size out) and random horizontal flip, per image.

    Same distribution as torchvision's `RandomCrop(size, padding=pad)` + `RandomHorizontalFlip()`:
    offsets uniform in `[0, 2*pad]` on each axis, flip with probability 1/2. Works on any dtype.
    """
    return apply_augmentation(x, pad, *draw_augmentation(len(x), pad, flip, x.device, generator))


def draw_augmentation(n: int, pad: int, flip: bool, device, generator: torch.Generator | None = None):
    """The random numbers of `augment_batch` for `n` images: crop offsets `(oy, ox)` (None without
    padding) and flip flags (None without flips)."""
    oy = ox = do = None
    if pad > 0:
        oy = torch.randint(0, 2 * pad + 1, (n,), device=device, generator=generator)
        ox = torch.randint(0, 2 * pad + 1, (n,), device=device, generator=generator)
    if flip:
        do = torch.rand(n, device=device, generator=generator) < 0.5
    return oy, ox, do


def apply_augmentation(x: torch.Tensor, pad: int, oy, ox, do) -> torch.Tensor:
    """Crop `x` padded by `pad` zeros at offsets `(oy, ox)` and flip where `do` (see `draw_augmentation`)."""
    n, c, h, w = x.shape
    dev = x.device
    if oy is not None:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None].expand(n, c, h, w + 2 * pad)
        xp = xp.gather(2, rows)
        cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :].expand(n, c, h, w)
        x = xp.gather(3, cols)
    if do is not None:
        x = torch.where(do[:, None, None, None], x.flip(3), x)
    return x


class _Augmented(_Indexed):
    """A split seen through fixed per-sample augmentation draws: batch `idx` is cropped and flipped
    with the draws of its samples, so any batching or DDP sharding sees the same images."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, pad: int, draws: tuple):
        super().__init__(x, y)
        self.pad, self.draws = pad, draws

    def __getitem__(self, idx):
        draws = [d[idx.to(d.device)].to(self.x.device) if d is not None else None for d in self.draws]
        return apply_augmentation(self.x[idx], self.pad, *draws), self.y[idx]
