"""CIFAR-10 and CIFAR-100 from their python-pickle batches."""

from __future__ import annotations

import logging
import pickle
import socket
from pathlib import Path

import numpy as np

from .base import InMemoryDataModule

log = logging.getLogger(__name__)


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
