"""Any folder of images in torchvision's ImageFolder layout (`root/train/<class>/...`)."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from .base import InMemoryDataModule
from .split import DataError, stratified_split


class ImageFolderDataModule(InMemoryDataModule):
    """The user's images in torchvision's ImageFolder layout: `root/train/<class>/*.png` and optionally
    `root/test/<class>/*`. Without `root/test`, a stratified `test_fraction` is held out of `train`.
    Images are resized to `image_size` and kept in memory as uint8."""

    name = "imagefolder"

    def __init__(
        self, image_size: int = 32, test_fraction: float = 0.2, channels: int = 3, skip_unreadable: bool = False, **kw
    ):
        super().__init__(**kw)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data=imagefolder needs data.root=DIR, an existing folder; got {str(self.root)!r}")
        self.image_size, self.test_fraction, self.channels = image_size, test_fraction, channels
        self.skip_unreadable = skip_unreadable

    def _read(self, folder: Path, classes: list[str] | None = None):
        import torchvision
        from torchvision.transforms import v2

        tf = v2.Compose([v2.PILToTensor(), v2.Resize((self.image_size, self.image_size), antialias=True)])
        mode = "L" if self.channels == 1 else "RGB"

        class Folder(torchvision.datasets.ImageFolder):
            make_dataset = staticmethod(list_images)  # torchvision's walk follows symlink loops without end

        ds = Folder(str(folder), transform=tf, loader=lambda p: _open(p, mode))
        if classes is not None and ds.classes != classes:
            missing, extra = sorted(set(classes) - set(ds.classes)), sorted(set(ds.classes) - set(classes))
            raise DataError(
                f"{folder} has other class folders than {folder.parent / 'train'}"
                + (f" (missing: {', '.join(missing)})" if missing else "")
                + (f" (not in train: {', '.join(extra)})" if extra else "")
                + f": give test/ the class folders of train/, or remove {folder} to hold out data.test_fraction"
            )
        images, targets, bad = [], [], []
        for i, (path, target) in enumerate(ds.samples):
            try:
                images.append(ds[i][0].numpy())
                targets.append(target)
            except Exception as e:  # noqa: BLE001 -- any decoding error: name the file, PIL's message does not
                bad.append((path, unreadable(path, e)))
        if bad and not self.skip_unreadable:
            more = f"; {len(bad)} unreadable images under {folder}" if len(bad) > 1 else ""
            raise DataError(
                f"cannot read image {bad[0][0]} ({bad[0][1]}{more}): remove or replace it, or set "
                "data.skip_unreadable=true to leave out the images that cannot be read"
            )
        if bad:
            warnings.warn(f"{len(bad)} unreadable image(s) under {folder} left out (e.g. {bad[0][0]})", stacklevel=2)
        if not images:
            raise DataError(f"no readable image under {folder}")
        return np.stack(images).astype(np.uint8), np.asarray(targets, np.int64), ds.classes

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
            report_shared_images(x, xt, self.root / "test")
            return x, y, xt, yt
        tr, te = stratified_split(y, self.test_fraction, self.split_seed, "test", "test_fraction", classes)
        report_shared_images(x[tr], x[te], train_dir)
        return x[tr], y[tr], x[te], y[te]


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def list_images(folder, class_to_idx: dict[str, int], extensions=None, is_valid_file=None, allow_empty=False):
    """The (path, class index) of every image under `folder/<class>/`, as torchvision's `make_dataset`
    and in its order, but a symlinked folder that leads back into the data (a loop such as `a/up -> ..`),
    into another class or to a folder already read is skipped and reported, and one file reached twice is
    read once (refused when two classes reach it: its label would be both)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    extensions = tuple(e.lower() for e in (extensions or IMG_EXTENSIONS))
    real = {c: os.path.realpath(os.path.join(folder, c)) for c in class_to_idx}
    owner: dict[str, tuple[str, str]] = {}  # real file -> (its path, its class)
    samples, skipped, twice = [], [], []
    for c in sorted(class_to_idx):
        start = len(samples)
        others = [r for k, r in real.items() if k != c]
        seen: set[str] = set()
        for dirpath, dirnames, fnames in os.walk(os.path.join(folder, c), followlinks=True):
            here = os.path.realpath(dirpath)
            loop = here != real[c] and _inside(real[c], here)  # an ancestor of the class folder
            if here in seen or loop or any(_inside(here, o) for o in others):
                skipped.append(dirpath)
                dirnames[:] = []
                continue
            seen.add(here)
            dirnames.sort()
            for name in sorted(fnames):
                path = os.path.join(dirpath, name)
                if not name.lower().endswith(extensions) or (is_valid_file and not is_valid_file(path)):
                    continue
                file = os.path.realpath(path)
                if file in owner:
                    if owner[file][1] != c:
                        raise ValueError(f"{path} and {owner[file][0]} are the same file in two classes")
                    twice.append(path)
                    continue
                owner[file] = (path, c)
                samples.append((path, class_to_idx[c]))
        # torchvision's order: sorted by folder path, then file name ("x.old/" before "x/y/", unlike a walk)
        samples[start:] = sorted(samples[start:], key=lambda s: os.path.split(s[0]))
    if skipped:
        warnings.warn(
            f"{len(skipped)} symlinked folder(s) under {folder} skipped: they lead back into the data, into "
            f"another class or to a folder already read (e.g. {skipped[0]})",
            stacklevel=2,
        )
    if twice:
        warnings.warn(f"{len(twice)} image(s) under {folder} reached twice, read once (e.g. {twice[0]})", stacklevel=2)
    if not samples and not allow_empty:
        raise FileNotFoundError(f"no images found under {folder}")
    return samples


def report_shared_images(train: np.ndarray, test: np.ndarray, where: Path) -> int:
    """Warn when test images are pixel-for-pixel training images (duplicate files): the test accuracy
    would then count images the model trained on. Returns how many."""
    seen = {hashlib.sha1(img.tobytes()).digest() for img in train}
    shared = sum(hashlib.sha1(img.tobytes()).digest() in seen for img in test)
    if shared:
        warnings.warn(
            f"{shared} of {len(test)} test images ({where}) are identical to training images (duplicate files?)",
            stacklevel=2,
        )
    return shared


def unreadable(path: str, err: Exception) -> str:
    """What is wrong with an image file that cannot be read, in a few words (PIL's message repeats the path)."""
    from PIL import UnidentifiedImageError

    if os.path.getsize(path) == 0:
        return "an empty file"
    if isinstance(err, UnidentifiedImageError):
        return "not an image file PIL can read"
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


def _open(path: str, mode: str):
    from PIL import Image

    with open(path, "rb") as f:
        return Image.open(f).convert(mode)
