"""Stratified, seeded hold-outs (the test split of data sets without one, the validation split of every
data set), and `DataError`: data that cannot be trained on as it is, said in one line that names the
file or the class, the problem and the way out (the command line turns it into one line, exit 2)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.model_selection import train_test_split


class DataError(ValueError):
    """Data files or classes that cannot be trained on; the message is the one line the user reads."""


def stratified_split(
    y: np.ndarray, fraction: float, seed: int, split: str, key: str, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out) of labels `y`, holding out `fraction` of every class as `split` (set by
    `data.<key>`), as sklearn's `train_test_split(stratify=y)`. What sklearn refuses (a class of one
    sample, fewer held-out or kept samples than classes) is refused first in one line that names the
    class and the way out: sklearn's own message names neither."""
    counts = np.bincount(y, minlength=len(classes or []))
    name = (lambda c: classes[c]) if classes else str
    way_out = f"add images, or change data.{key}" + (" (0: no validation split)" if key == "val_fraction" else "")
    if (few := np.flatnonzero(counts < 2)).size:
        c, m = int(few[0]), int(counts[few[0]])
        others = f" (and {few.size - 1} other classes have fewer than 2)" if few.size > 1 else ""
        raise DataError(
            f"class {name(c)} has {m} image{'s' * (m != 1)}{others}: holding out "
            f"data.{key}={fraction} of each class as the {split} split needs at least 2 per class; {way_out}"
        )
    n, k = len(y), int((counts > 0).sum())
    held = math.ceil(fraction * n)  # sklearn's rounding of test_size
    if held < k or n - held < k:
        side, m = ("held out", held) if held < k else ("kept", n - held)
        raise DataError(
            f"data.{key}={fraction} of {n} images leaves {m} {side} for {k} classes: the {split} split needs "
            f"one image of each class on both sides; {way_out}"
        )
    return train_test_split(np.arange(n), test_size=fraction, stratify=y, random_state=seed)
