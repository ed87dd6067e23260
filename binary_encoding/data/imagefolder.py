"""Any folder of images in torchvision's ImageFolder layout (`root/train/<class>/...`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from .base import InMemoryDataModule


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
