"""Data: every data set is held in memory as a raw `uint8` tensor `[N, C, H, W]`.

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
import pickle
import socket
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, Sampler

from .latents import rank_world

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class _Indexed(Dataset):
    """A dataset whose `__getitem__` takes a whole index tensor and returns a batch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, idx):
        return self.x[idx], self.y[idx]


class BatchIndexSampler(Sampler):
    """Yields index tensors, one per batch, for this rank's shard of `n` samples."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        device: torch.device | str = "cpu",
    ):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0
        self.device = torch.device(device)  # where the indices go: the data's device (one copy per epoch)

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at every epoch start
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.rank, self.n, self.world)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        perm = perm[: self.n - self.n % self.world]  # equal step counts on every rank
        return perm[self.rank :: self.world]

    def __iter__(self):
        idx = self._indices().to(self.device)  # the permutation is drawn on the CPU: same order on any device
        for chunk in idx.split(self.batch_size):
            if self.shuffle and len(chunk) < 2:  # a batch of 1 breaks BatchNorm in training mode
                continue
            yield chunk

    def __len__(self):
        m = len(self._indices())
        full, rest = divmod(m, self.batch_size)
        return full + (rest >= (2 if self.shuffle else 1))


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
        """Return `(x_train, y_train, x_test, y_test)`: uint8 `[N, C, H, W]` and int labels."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        x_tr, y_tr, x_te, y_te = self.load()
        if x_tr.dtype != np.uint8 or x_tr.ndim != 4:
            raise TypeError(f"{type(self).__name__}.load() must return uint8 [N,C,H,W], got {x_tr.dtype} {x_tr.shape}")
        parts = {"train": np.arange(len(y_tr))}  # val_fraction=0: no validation split, train on everything
        if self.val_fraction > 0:
            tr, va = train_test_split(
                parts["train"], test_size=self.val_fraction, stratify=y_tr, random_state=self.split_seed
            )
            parts = {"train": np.sort(tr), "val": np.sort(va)}
        self.x = {**{k: torch.from_numpy(x_tr[i]) for k, i in parts.items()}, "test": torch.from_numpy(x_te)}
        self.y = {
            **{k: torch.from_numpy(y_tr[i]).long() for k, i in parts.items()},
            "test": torch.from_numpy(y_te).long(),
        }
        xf = self.x["train"].float()
        self.mean = xf.mean(dim=(0, 2, 3))
        self.std = xf.std(dim=(0, 2, 3)).clamp_min(1e-6)
        self.num_classes = int(max(y_tr.max(), y_te.max()) + 1)
        self.input_shape = tuple(x_tr.shape[1:])
        self._ready = True

    def _rank_world(self) -> tuple[int, int]:
        t = self.trainer
        if t is not None:
            return t.global_rank, t.world_size
        return rank_world()

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
        rank, world = self._rank_world()
        bs = max(1, self.batch_size // world) if train else self.eval_batch_size
        sampler = BatchIndexSampler(
            len(self.y[split]),
            bs,
            shuffle=train and self.shuffle,
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
        rank, _ = self._rank_world()
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        key = (epoch, rank, device)
        if self._aug_key != key:
            self._aug_key = key
            self._aug_gen = torch.Generator(device=device)
            self._aug_gen.manual_seed(int(np.random.SeedSequence([self.seed, epoch, rank]).generate_state(1)[0]))
        return self._aug_gen


class DigitsDataModule(InMemoryDataModule):
    """sklearn's bundled 8x8 digits (1797 images, pixel values 0..16): no download, seconds on CPU.
    The data set has no official test split: a stratified 20% test split (seed `split_seed`) is held out."""

    name = "digits"

    def __init__(self, test_fraction: float = 0.2, **kw):
        super().__init__(**kw)
        self.test_fraction = test_fraction

    def load(self):
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.images.astype(np.uint8)[:, None]  # [N, 1, 8, 8], values 0..16
        y = d.target.astype(np.int64)
        tr, te = train_test_split(
            np.arange(len(y)), test_size=self.test_fraction, stratify=y, random_state=self.split_seed
        )
        return x[tr], y[tr], x[te], y[te]


class CIFARDataModule(InMemoryDataModule):
    """CIFAR-10/100 in torchvision's on-disk format under `root` (downloaded there if missing).

    The python-pickle batches are read directly (the format is documented with the data set), so an
    existing copy is used without any network access or checksum pass over 170 MB.
    """

    layout = {  # folder, training files, test files, label key
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
        "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
    }

    def __init__(self, name: str = "cifar10", **kw):
        super().__init__(name=name, **kw)
        if name not in self.layout:
            raise ValueError(f"unknown CIFAR variant {name!r}; choose one of {list(self.layout)}")

    @property
    def folder(self) -> Path:
        return self.root / self.layout[self.name][0]

    def _missing(self) -> list[str]:
        _, train, test, _ = self.layout[self.name]
        return [f for f in train + test if not (self.folder / f).is_file()]

    def prepare_data(self):  # rank 0 only, before setup
        if not self._missing():
            return
        hint = (
            f"{self.name} was not found at {self.folder} (missing: {', '.join(self._missing())}). Put "
            f"torchvision's extracted '{self.layout[self.name][0]}' folder under data.root={self.root} (then no "
            f"network is needed), or allow the download with data.download=true on a machine with network access."
        )
        if not self.download:
            raise FileNotFoundError(hint)
        import torchvision

        cls = torchvision.datasets.CIFAR10 if self.name == "cifar10" else torchvision.datasets.CIFAR100
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(20)  # fail fast without network instead of hanging
        try:
            cls(str(self.root), train=True, download=True)
        except Exception as err:  # noqa: BLE001 - any network failure gets the same hint
            raise FileNotFoundError(f"{hint} (download failed: {err})") from err
        finally:
            socket.setdefaulttimeout(old)

    def _read(self, files: list[str]):
        key = self.layout[self.name][3]
        xs, ys = [], []
        for f in files:
            with open(self.folder / f, "rb") as fh:
                d = pickle.load(fh, encoding="latin1")
            xs.append(np.asarray(d["data"], np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[key], np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    def load(self):
        if self._missing():
            self.prepare_data()
        _, train, test, _ = self.layout[self.name]
        return (*self._read(train), *self._read(test))


class ImageFolderDataModule(InMemoryDataModule):
    """The user's images in torchvision's ImageFolder layout: `root/train/<class>/*.png` and optionally
    `root/test/<class>/*`. Without `root/test`, a stratified `test_fraction` is held out of `train`.
    Images are resized to `image_size` and kept in memory as uint8."""

    name = "imagefolder"

    def __init__(self, image_size: int = 32, test_fraction: float = 0.2, channels: int = 3, **kw):
        super().__init__(**kw)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data=imagefolder needs data.root=DIR, an existing folder; got {str(self.root)!r}")
        self.image_size, self.test_fraction, self.channels = image_size, test_fraction, channels

    def _read(self, folder: Path, classes: list[str] | None = None):
        import torchvision
        from torchvision.transforms import v2

        tf = v2.Compose([v2.PILToTensor(), v2.Resize((self.image_size, self.image_size), antialias=True)])
        mode = "L" if self.channels == 1 else "RGB"
        ds = torchvision.datasets.ImageFolder(str(folder), transform=tf, loader=lambda p: _open(p, mode))
        if classes is not None and ds.classes != classes:
            raise ValueError(f"class folders of {folder} {ds.classes} differ from the training ones {classes}")
        x = np.stack([self._image(ds, i) for i in range(len(ds))]).astype(np.uint8)
        return x, np.asarray(ds.targets, np.int64), ds.classes

    @staticmethod
    def _image(ds, i: int) -> np.ndarray:
        try:
            return ds[i][0].numpy()
        except Exception as e:  # noqa: BLE001 -- name the file: PIL's message does not
            raise ValueError(f"cannot read image {ds.samples[i][0]}: {type(e).__name__}: {e}") from e

    def load(self):
        train_dir = self.root / "train"
        if not train_dir.is_dir():
            raise FileNotFoundError(
                f"no training images: expected the folder {train_dir} with one sub-folder per class"
            )
        x, y, classes = self._read(train_dir)
        self.classes = classes
        if (self.root / "test").is_dir():
            xt, yt, _ = self._read(self.root / "test", classes)
            return x, y, xt, yt
        tr, te = train_test_split(
            np.arange(len(y)), test_size=self.test_fraction, stratify=y, random_state=self.split_seed
        )
        return x[tr], y[tr], x[te], y[te]


def _open(path: str, mode: str):
    from PIL import Image

    with open(path, "rb") as f:
        return Image.open(f).convert(mode)
