"""Data: every data set is held in memory as a raw tensor `[N, C, H, W]`: `uint8` for images, `float32`
for real-valued signals (MNIST-1D: `[N, 1, 1, 40]`, stored without quantization).

Why: the paper's data sets (CIFAR-10/100, 50k 32x32 images = 150 MB) and the embedded default
(sklearn's digits, 1797 8x8 images) fit in memory many times over, and per-sample PIL transforms in
DataLoader workers are slower than the model on a GPU. So a batch is one tensor index, and
augmentation (random crop with zero padding, horizontal flip) and normalization run on the whole
batch on the device in `on_after_batch_transfer`. On a GPU (`device_resident=auto`) every split is
moved to the GPU once as uint8 (if all splits take at most half of its free memory), so no batch
crosses the PCIe bus at all; elsewhere batches travel as uint8 (4x fewer bytes than float). The
per-epoch shuffle is a seeded permutation (CPU generator, so the order is the same on every
device); the metric passes read the same resident tensors.

Splits: the official test split is kept apart and never used for selection; a stratified, seeded
validation split (default 10%) is held out of the training set (`val_fraction=0`: none, the
reference setup). Normalization statistics are computed on the remaining training split only.
Metrics use clean data, or one seeded augmented view of the training split (`augmented_view`).

Under DDP every rank reads its own shard: training batches come from one seeded permutation per
epoch (the tail that does not divide by the world size is dropped, so all ranks take the same number
of steps); evaluation shards are `indices[rank::world]` with no padding, so gathered results hold
every sample exactly once.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import ranks
from .augment import _Augmented, augment_batch, draw_augmentation
from .sampler import BatchIndexSampler, _Indexed
from .split import stratified_split

log = logging.getLogger(__name__)


SPLITS = ("train", "val", "test")
RAW_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))  # what load() may return


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = 0.5) -> bool:
    """Whether a data set of `nbytes` may live on the device (`device_resident=auto`): at most `fraction`
    of the free memory, so that the model, its activations and the metric passes keep the rest."""
    return nbytes <= fraction * free_bytes


class InMemoryDataModule(L.LightningDataModule):
    """Base class: subclasses implement `load()`; everything else is shared."""

    name = "base"

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 128,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        augment: bool = False,
        pad: int = 4,
        flip: bool = True,
        eval_batch_size: int = 1024,
        download: bool = True,
        seed: int = 0,
        device_resident: bool | str = "auto",
        name: str | None = None,
        shuffle: bool = True,
    ):
        super().__init__()
        self.name = name or type(self).name  # the label the records use
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1) (0 = no validation split), got {val_fraction}")
        self.root = Path(root).expanduser()
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_fraction, self.split_seed, self.seed = val_fraction, split_seed, seed
        self.augment, self.pad, self.flip, self.download = augment, pad, flip, download
        self.device_resident = device_resident
        self.shuffle = shuffle  # a new seeded permutation of the training split every epoch (false: same order)
        self._ready = False
        self._placed_on: torch.device | None = None
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._aug_key, self._aug_gen = None, None  # see augment_generator
        self._views: dict[str, tuple] = {}  # see eval_dataloader(augmented=True)

    # -- to implement -------------------------------------------------------------------------
    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return `(x_train, y_train, x_test, y_test)`: uint8 or float32 `[N, C, H, W]` and int labels."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        x_tr, y_tr, x_te, y_te = self.load()
        if x_tr.dtype not in RAW_DTYPES or x_tr.ndim != 4 or x_te.dtype != x_tr.dtype:
            raise TypeError(
                f"{type(self).__name__}.load() must return uint8 or float32 [N,C,H,W] (train and test alike), "
                f"got {x_tr.dtype} {x_tr.shape} and {x_te.dtype} {x_te.shape}"
            )
        parts = {"train": np.arange(len(y_tr))}  # val_fraction=0: no validation split, train on everything
        if self.val_fraction > 0:
            names = getattr(self, "classes", None)  # the class folders of an image folder
            tr, va = stratified_split(y_tr, self.val_fraction, self.split_seed, "validation", "val_fraction", names)
            parts = {"train": np.sort(tr), "val": np.sort(va)}
        self.x = {**{k: torch.from_numpy(x_tr[i]) for k, i in parts.items()}, "test": torch.from_numpy(x_te)}
        self.y = {
            **{k: torch.from_numpy(y_tr[i]).long() for k, i in parts.items()},
            "test": torch.from_numpy(y_te).long(),
        }
        xf = self.x["train"].double()  # float64 sums: exact for uint8, and no float32 drift on signals
        self.mean = xf.mean(dim=(0, 2, 3)).float()
        self.std = xf.std(dim=(0, 2, 3)).clamp_min(1e-6).float()
        self.num_classes = int(max(y_tr.max(), y_te.max()) + 1)
        self.input_shape = tuple(x_tr.shape[1:])
        self._ready = True

    def _place(self) -> bool:
        """Move every split to the accelerator once (`device_resident`: auto = on CUDA devices).
        Returns whether the data now lives on an accelerator."""
        t = self.trainer
        device = t.strategy.root_device if t is not None else None
        wanted = self.device_resident is True or (
            self.device_resident == "auto" and device is not None and device.type == "cuda"
        )
        if not wanted or device is None or device.type == "cpu":
            return False
        if self._placed_on != device and self.device_resident == "auto" and device.type == "cuda":
            nbytes = sum(v.numel() * v.element_size() for v in self.x.values())
            free, _ = torch.cuda.mem_get_info(device)
            if not fits_on_device(nbytes, free):
                if not getattr(self, "_warned_size", False):
                    warnings.warn(
                        f"data kept in host memory: {nbytes / 2**30:.1f} GiB of images is more than half "
                        f"of the {free / 2**30:.1f} GiB free on {device} (data.device_resident=true forces it)",
                        stacklevel=2,
                    )
                    self._warned_size = True
                return False
        if self._placed_on != device:
            self.x = {k: v.to(device) for k, v in self.x.items()}
            self.y = {k: v.to(device) for k, v in self.y.items()}
            self._placed_on = device
        return True

    def _loader(self, split: str, train: bool, augmented: bool = False) -> DataLoader:
        resident = self._place()
        rank, world = ranks.rank_world()
        bs = max(1, self.batch_size // world) if train else self.eval_batch_size
        sampler = BatchIndexSampler(
            len(self.y[split]),
            bs,
            shuffle=train and self.shuffle,
            train=train,
            seed=self.seed,
            rank=rank,
            world=world,
            device=self.x[split].device,
        )
        data = _Indexed(self.x[split], self.y[split])
        if augmented and self.augment:
            data = _Augmented(self.x[split], self.y[split], self.pad, self._view_draws(split))
        return DataLoader(
            data,
            batch_size=None,
            sampler=sampler,
            pin_memory=torch.cuda.is_available() and not resident,
        )

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits this data module holds: ("train", "test") without a validation split."""
        return tuple(s for s in SPLITS if s in self.y)

    def train_dataloader(self):
        return self._loader("train", train=True)

    def val_dataloader(self):
        # no validation split: no loader, and Lightning runs no validation loop
        return self._loader("val", train=False) if "val" in self.y else []

    def test_dataloader(self):
        return self._loader("test", train=False)

    def eval_dataloader(self, split: str, augmented: bool = False) -> DataLoader:
        """Ordered loader over this rank's shard of `split` (train included): clean images, or with
        `augmented` the split's one seeded augmented view (the training augmentation with random numbers
        drawn once from `seed` and the split, the same for every epoch and every DDP layout; the clean
        images when the data module does not augment)."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this data module has {self.splits}")
        return self._loader(split, train=False, augmented=augmented)

    def _view_draws(self, split: str) -> tuple:
        """Per-sample crop offsets and flips of the augmented view of `split` (drawn on the CPU, cached)."""
        if split not in self._views:
            key = np.random.SeedSequence([self.seed, SPLITS.index(split), 0x5EED]).generate_state(1)[0]
            g = torch.Generator().manual_seed(int(key))
            self._views[split] = draw_augmentation(len(self.y[split]), self.pad, self.flip, "cpu", g)
        return self._views[split]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.device not in self._stats:  # cached per device: no host-to-device copy per batch
            self._stats[x.device] = (self.mean.to(x.device)[:, None, None], self.std.to(x.device)[:, None, None])
        mean, std = self._stats[x.device]
        return (x.float() - mean) / std

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if self.augment and self.trainer is not None and self.trainer.training:
            x = augment_batch(x, self.pad, self.flip, self.augment_generator(x.device))
        return self.normalize(x), y

    def augment_generator(self, device: torch.device) -> torch.Generator:
        """The augmentation's random numbers: one generator per epoch and rank, seeded from (seed, epoch,
        rank) and nothing else, so a run resumed from an epoch's checkpoint draws exactly what the
        uninterrupted run drew, and DDP ranks draw differently."""
        rank, _ = ranks.rank_world()
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        key = (epoch, rank, device)
        if self._aug_key != key:
            self._aug_key = key
            self._aug_gen = torch.Generator(device=device)
            self._aug_gen.manual_seed(int(np.random.SeedSequence([self.seed, epoch, rank]).generate_state(1)[0]))
        return self._aug_gen
