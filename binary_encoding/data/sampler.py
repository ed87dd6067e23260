"""Batches as index tensors: a batch is one tensor index into a split held in memory (see `data.base`)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Sampler


class _Indexed(Dataset):
    """A dataset whose `__getitem__` takes a whole index tensor and returns a batch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, idx):
        return self.x[idx], self.y[idx]


class BatchIndexSampler(Sampler):
    """Yields index tensors, one per batch, for this rank's shard of `n` samples.

    `shuffle`: a new seeded permutation every epoch. `train` (default: `shuffle`): every rank gets the same
    number of samples (the tail that does not divide is left out) and a 1-sample batch is skipped; an
    evaluation pass (`train=False`) sees every sample once."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        device: torch.device | str = "cpu",
        train: bool | None = None,
    ):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.train = shuffle if train is None else train
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0
        self.device = torch.device(device)  # where the indices go: the data's device (one copy per epoch)

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at every epoch start
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch))
        else:
            order = torch.arange(self.n)
        if self.train:
            order = order[: self.n - self.n % self.world]  # equal step counts on every rank
        return order[self.rank :: self.world]

    def __iter__(self):
        idx = self._indices().to(self.device)  # the permutation is drawn on the CPU: same order on any device
        for chunk in idx.split(self.batch_size):
            if self.train and len(chunk) < 2:  # a batch of 1 breaks BatchNorm in training mode
                continue
            yield chunk

    def __len__(self):  # what __iter__ yields: no batch at all when a training batch holds 1 sample
        smallest = 2 if self.train else 1
        full, rest = divmod(len(self._indices()), self.batch_size)
        return full * (self.batch_size >= smallest) + (rest >= smallest)
