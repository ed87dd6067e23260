"""sklearn's bundled 8x8 digits (1797 images, 10 classes): the embedded default, no download."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from .base import InMemoryDataModule


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
