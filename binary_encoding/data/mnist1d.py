"""MNIST-1D (Greydanus & Kobak, ICML 2024): 10 digit templates turned into 1-D signals of length 40 by
padding, shear, scale, translation and correlated plus i.i.d. noise. Small enough for a CPU, yet it
separates architectures: published test accuracies are about 32% (logistic regression), 68% (MLP),
94% (CNN), 91% (GRU) and 96% (human); see docs/mnist1d.md.

The `mnist1d` package builds the set offline from its templates; with its default arguments the
generator gives the published frozen set (4,000 training and 1,000 test signals, the official split),
which `tests/test_mnist1d.py` checks against the published checksums. The signals are kept as float32
`[N, 1, 1, 40]` (no quantization: float32 rounds the generator's float64 values by at most 6e-8
relative); a validation split is then held out of the 4,000 training signals by the base class.
"""

from __future__ import annotations

import random

import numpy as np

from .base import InMemoryDataModule

LENGTH = 40  # the published signal length (`final_seq_length`)


def generate(**overrides) -> dict[str, np.ndarray]:
    """The MNIST-1D arrays `x, y, x_test, y_test` (float64 `[N, 40]`, int labels), from the package's
    generator with its default arguments (the published set) updated by `overrides`. The generator
    reseeds numpy's and python's global random states; they are restored afterwards, so building the
    data set draws nothing from a run's own random streams."""
    from mnist1d.data import get_dataset_args, make_dataset  # imports requests and matplotlib; downloads nothing

    args = get_dataset_args(as_dict=True)
    unknown = set(overrides) - set(args)
    if unknown:
        raise ValueError(f"unknown MNIST-1D generator arguments {sorted(unknown)}; known: {sorted(args)}")
    args.update(overrides)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(_View(args))
    finally:
        np.random.set_state(np_state), random.setstate(py_state)
    return {k: d[k] for k in ("x", "y", "x_test", "y_test")}


class _View:
    """Attribute access to a dict, as the generator reads its arguments."""

    def __init__(self, d: dict):
        self.__dict__.update(d)


class MNIST1DDataModule(InMemoryDataModule):
    """MNIST-1D as float32 `[N, 1, 1, 40]` (one channel, a 1 x 40 "image"), the published train/test split.
    `generator` overrides the generator's arguments (e.g. `{num_samples: 10000}`); empty = the published set."""

    name = "mnist1d"

    def __init__(self, generator: dict | None = None, **kw):
        super().__init__(**kw)
        self.generator = dict(generator or {})

    def load(self):
        d = generate(**self.generator)
        as_image = lambda x: np.ascontiguousarray(x, dtype=np.float32)[:, None, None, :]  # noqa: E731
        return as_image(d["x"]), d["y"].astype(np.int64), as_image(d["x_test"]), d["y_test"].astype(np.int64)
