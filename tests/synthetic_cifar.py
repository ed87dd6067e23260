"""A small CIFAR-10-shaped data set with a learnable class signal, written in torchvision's on-disk
format (`cifar-10-batches-py/data_batch_1..5`, `test_batch`: pickled dicts of uint8 rows and labels),
so that the real `data=cifar10` path reads it without any download."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_cifar10(
    root: str | Path, n_train: int = 3000, n_test: int = 1000, seed: int = 0, signal: float = 0.35
) -> Path:
    """Each class has its own smooth colour pattern (a random 4x4 pattern, upsampled to 32x32), mixed
    with per-image noise and a random global brightness: `signal` of the contrast is the class."""
    rng = np.random.default_rng(seed)
    patterns = rng.uniform(-1, 1, (10, 3, 4, 4)).repeat(8, axis=2).repeat(8, axis=3)

    def images(n):
        y = rng.permutation(np.arange(n) % 10)
        noise = rng.normal(0, 1, (n, 3, 32, 32))
        x = 128 + 60 * (signal * patterns[y] + (1 - signal) * noise) + rng.normal(0, 15, (n, 1, 1, 1))
        return np.clip(x, 0, 255).astype(np.uint8).reshape(n, -1), y.tolist()

    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    x, y = images(n_train)
    for i, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": x[part], "labels": [y[j] for j in part]}, f)
    xt, yt = images(n_test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": xt, "labels": yt}, f)
    return Path(root)
