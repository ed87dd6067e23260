"""MNIST-1D: the generated set is the published one (sizes, class balance, checksums of the published
arrays, docs/mnist1d.md), kept without loss in the data module, with the published test split apart."""

import hashlib
import random

import numpy as np
import pytest

from binary_encoding.data.mnist1d import MNIST1DDataModule, generate

# sha256 of the published frozen set's arrays (x rounded to 6 decimals, as float64 little-endian; labels as int64)
PUBLISHED = {
    "x": "a628c903554582c85cd522460f0ac9376d8f2c1daf90d5ea251968c8de2fc707",
    "x_test": "40736dec6f794f2e52a879797628fb8f41ae44a628489bf5cd8d19ef39a28d42",
    "y": "d97dc7aecec8ad6b5d8f143ba3e9c4bd7e25c420d7dfc2eb990591cfc0ed3e15",
    "y_test": "8de99be3ff9dab15ae0dc072c3d6ced7cf6b33d365888ce4a386fc944489452c",
}
PER_CLASS = {
    "y": [398, 396, 411, 394, 394, 402, 401, 404, 402, 398],
    "y_test": [102, 104, 89, 106, 106, 98, 99, 96, 98, 102],
}


def digest(name: str, a: np.ndarray) -> str:
    if name.startswith("x"):
        return hashlib.sha256(np.round(a, 6).astype("<f8").tobytes()).hexdigest()
    return hashlib.sha256(a.astype("<i8").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def published():
    return generate()


def test_the_generated_set_is_the_published_one_bit_for_bit(published):
    assert published["x"].shape == (4000, 40) and published["x_test"].shape == (1000, 40)
    for key, counts in PER_CLASS.items():
        assert np.bincount(published[key], minlength=10).tolist() == counts
    assert {k: digest(k, published[k]) for k in PUBLISHED} == PUBLISHED
    assert published["x"].mean() == pytest.approx(-3.2367e-4, abs=1e-8)
    assert published["x"].std() == pytest.approx(0.997648, abs=1e-6)
    again = generate()  # the generator reseeds itself: a second call gives the same arrays
    assert all(np.array_equal(published[k], again[k]) for k in PUBLISHED)


def test_generating_the_set_leaves_the_global_random_streams_alone():
    np.random.seed(123), random.seed(123)
    expected = np.random.rand(), random.random()
    np.random.seed(123), random.seed(123)
    generate(num_samples=200)
    assert (np.random.rand(), random.random()) == expected
    with pytest.raises(ValueError, match="unknown MNIST-1D generator arguments"):
        generate(num_sample=200)


def test_the_data_module_keeps_the_published_split_and_the_signals_without_loss(published):
    dm = MNIST1DDataModule(val_fraction=0.1, split_seed=0)
    dm.setup()
    assert dm.x["train"].dtype.is_floating_point and dm.input_shape == (1, 1, 40) and dm.num_classes == 10
    assert (len(dm.y["train"]), len(dm.y["val"]), len(dm.y["test"])) == (3600, 400, 1000)
    # the test split is the published test set, as float32 (no quantization)
    np.testing.assert_array_equal(dm.x["test"][:, 0, 0].numpy(), published["x_test"].astype(np.float32))
    np.testing.assert_array_equal(dm.y["test"].numpy(), published["y_test"])
    # train + val are exactly the published training signals, each once; val is stratified
    ours = np.concatenate([dm.x["train"][:, 0, 0].numpy(), dm.x["val"][:, 0, 0].numpy()])
    rows = lambda a: sorted(r.tobytes() for r in a)  # noqa: E731
    assert rows(ours) == rows(published["x"].astype(np.float32))
    assert np.abs(np.bincount(dm.y["val"].numpy(), minlength=10) - 40).max() <= 2
    # normalization statistics: of the training split only (float64 sums), ddof 1 as torch's std
    train = dm.x["train"].numpy().astype(np.float64)
    assert dm.mean.item() == pytest.approx(train.mean(), rel=1e-6)
    assert dm.std.item() == pytest.approx(train.std(ddof=1), rel=1e-6)
    xn, _ = dm.on_after_batch_transfer((dm.x["test"][:3], dm.y["test"][:3]), 0)
    np.testing.assert_allclose(xn.numpy(), (dm.x["test"][:3].numpy() - train.mean()) / train.std(ddof=1), rtol=1e-5)
