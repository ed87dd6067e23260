"""sklearn's bundled 8x8 digits (1797 images, 10 classes): the embedded default, no download."""

from __future__ import annotations

import numpy as np

from .base import InMemoryDataModule
from .split import stratified_split


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
        tr, te = stratified_split(y, self.test_fraction, self.split_seed, "test", "test_fraction")
        return x[tr], y[tr], x[te], y[te]
