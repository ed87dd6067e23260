"""Values of the data pipeline that the other data tests leave open: what one DDP rank reads (its share of
the global batch, its strided evaluation shard, its own augmentation stream), augmentation with only one of
crop and flip switched on, normalization of a constant channel and the dtype contract of `load`, the
messages of a hold-out that cannot be made, image listing and decoding against torchvision, the CIFAR
download wiring, and MNIST-1D generator overrides. Each is checked on small synthetic data or digits."""

from __future__ import annotations

import socket
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_data_files import write_images

from binary_encoding.data.cifar import CIFARDataModule
from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.data.split import DataError, stratified_split


def _indices(loader) -> torch.Tensor:
    """The sample indices a loader reads, in order (its sampler yields one index tensor per batch)."""
    return torch.cat(list(loader.sampler))


def test_a_ddp_rank_trains_on_its_share_of_the_global_batch_and_evaluates_its_strided_shard(monkeypatch):
    """Rank 1 of 2 (torch.distributed.run's environment), batch_size 128 (global, docs/method.md §4.3):
    training batches of 64 taken from the single-process permutation of the same seed, its tail of 1293 mod 2
    left out and rank r taking every second index from r; evaluation reads test[1::2] in batches of
    eval_batch_size; the augmented view of the shard is the single-process view's rows 1::2 (draws follow the
    sample, not its place in the shard); the augmentation generator is seeded from (seed, epoch, rank=1)."""
    single = DigitsDataModule(batch_size=128, eval_batch_size=100, seed=5, augment=True, pad=1, flip=True)
    single.setup()
    order = _indices(single.train_dataloader())
    view = torch.cat([x for x, _ in single.eval_dataloader("train", augmented=True)])
    assert len(single.y["train"]) == 1293 and sorted(order.tolist()) == list(range(1293))

    monkeypatch.setenv("WORLD_SIZE", "2")
    shards = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        dm = DigitsDataModule(batch_size=128, eval_batch_size=100, seed=5, augment=True, pad=1, flip=True)
        dm.setup()
        loader = dm.train_dataloader()
        batches = list(loader)
        assert [len(y) for _, y in batches] == [64] * 10 + [6] and len(loader) == 11, rank
        shards[rank] = _indices(loader)
        assert torch.equal(shards[rank], order[:1292][rank::2]), rank
        assert torch.equal(torch.cat([x for x, _ in batches]), dm.x["train"][shards[rank]])
    assert not set(shards[0].tolist()) & set(shards[1].tolist())

    # rank 1 (the last one set): evaluation shards, augmented view, augmentation stream
    test = list(dm.eval_dataloader("test"))
    assert [len(y) for _, y in test] == [100, 80]
    assert torch.equal(torch.cat([x for x, _ in test]), dm.x["test"][1::2])
    assert torch.equal(torch.cat([y for _, y in test]), dm.y["test"][1::2])
    assert torch.equal(torch.cat([x for x, _ in dm.eval_dataloader("train", augmented=True)]), view[1::2])
    dm.trainer = SimpleNamespace(current_epoch=2)
    key = int(np.random.SeedSequence([5, 2, 1]).generate_state(1)[0])
    drawn = torch.rand(50, generator=dm.augment_generator(torch.device("cpu")))
    assert torch.equal(drawn, torch.rand(50, generator=torch.Generator().manual_seed(key)))


def _crops(x: torch.Tensor, pad: int) -> torch.Tensor:
    """[n, (2 pad + 1)^2, C, H, W]: every crop of each image padded by `pad` zeros, at every offset (no flip)."""
    _, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    offsets = [(oy, ox) for oy in range(2 * pad + 1) for ox in range(2 * pad + 1)]
    return torch.stack([padded[:, :, oy : oy + h, ox : ox + w] for oy, ox in offsets], 1)


def _matches(seen: torch.Tensor, options: torch.Tensor) -> torch.Tensor:
    """[n, k]: whether image i of `seen` equals option k of image i."""
    return (seen[:, None] == options).flatten(2).all(2)


@pytest.mark.parametrize("view", [False, True])
def test_augmentation_with_flips_off_only_crops_and_with_no_padding_only_flips(view):
    """data.flip=false: every training image (and every image of the augmented metric view) is an unflipped
    crop of its zero-padded image, most of them moved; data.pad=0 with flips: each image is itself or its
    mirror image, about half of them mirrored (a flip forced on, or the pad ignored, fails one of them)."""
    train = SimpleNamespace(training=True, current_epoch=0)

    def augmented(dm):
        if view:  # raw images, normalized by the metric pass (collect_latents)
            return dm.normalize(torch.cat([x for x, _ in dm.eval_dataloader("train", augmented=True)]))
        dm.trainer = train
        return dm.on_after_batch_transfer((dm.x["train"], dm.y["train"]), 0)[0]

    crops = DigitsDataModule(augment=True, pad=2, flip=False, seed=1)
    crops.setup()
    clean, seen = crops.x["train"], augmented(crops)
    normalized = crops.normalize(_crops(clean, 2).flatten(0, 1)).unflatten(0, (len(clean), 25))
    hits = _matches(seen, normalized)
    assert hits.any(1).all()  # every one an unflipped crop (a mirrored digit is none of them)
    assert (~hits[:, 12]).float().mean() > 0.8  # offset (2, 2) is the clean image: 1 in 25

    flips = DigitsDataModule(augment=True, pad=0, flip=True, seed=1)
    flips.setup()
    clean, seen = flips.x["train"], augmented(flips)
    same, mirrored = (_matches(seen, flips.normalize(c)[:, None])[:, 0] for c in (clean, clean.flip(3)))
    assert (same | mirrored).all()
    asymmetric = ~(clean == clean.flip(3)).flatten(1).all(1)
    share = mirrored[asymmetric].float().mean().item()
    assert 0.4 < share < 0.6, share


class _Given(DigitsDataModule):
    """A data module whose `load` returns the arrays it was given."""

    def __init__(self, arrays, **kw):
        super().__init__(**kw)
        self.arrays = arrays

    def load(self):
        return self.arrays


def test_a_constant_channel_is_normalized_to_zero_and_statistics_are_per_channel_of_the_training_split():
    """Three channels of 5x3 images (not square), the middle one constant 7: per-channel mean and sample std
    (ddof 1) of the training split, as numpy computes them; the constant channel's std is floored at 1e-6,
    so that channel normalizes to 0, not to NaN."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 3, 5, 3), dtype=np.uint8)
    x[:, 1] = 7
    x[:, 2] //= 4  # channels of different spread
    y = np.arange(60) % 3
    dm = _Given((x[:48], y[:48], x[48:], y[48:]), val_fraction=0.0)
    dm.setup()
    train = x[:48].astype(np.float64)
    np.testing.assert_allclose(dm.mean.numpy(), train.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(dm.std.numpy()[[0, 2]], train.std(axis=(0, 2, 3), ddof=1)[[0, 2]], rtol=1e-6)
    assert dm.std[1].item() == pytest.approx(1e-6) and dm.mean[1].item() == 7.0
    xn = dm.normalize(dm.x["test"])
    assert torch.isfinite(xn).all() and torch.equal(xn[:, 1], torch.zeros(12, 5, 3))
    assert dm.input_shape == (3, 5, 3) and dm.num_classes == 3 and dm.x["train"].dtype == torch.uint8


@pytest.mark.parametrize(
    "make",
    [
        lambda x: (x.astype(np.float64), x.astype(np.float64)),  # float64: neither uint8 nor float32
        lambda x: (x, x.astype(np.float32)),  # train uint8, test float32
        lambda x: (x[:, 0], x[:, 0]),  # [N, H, W]: no channel axis
    ],
    ids=["float64", "float32-test-of-uint8-train", "no-channel-axis"],
)
def test_load_must_return_uint8_or_float32_nchw_alike_for_train_and_test(make):
    x = np.zeros((20, 1, 2, 2), np.uint8)
    y = np.arange(20) % 2
    x_tr, x_te = make(x)
    with pytest.raises(TypeError, match=r"must return uint8 or float32 \[N,C,H,W\] \(train and test alike\)"):
        _Given((x_tr, y, x_te, y), val_fraction=0.0).setup()


def test_a_validation_split_that_cannot_be_held_out_names_the_class_folder_and_the_way_out(tmp_path):
    """An image folder with its own test/ and a class of one training image: the validation split (not the
    test split) is refused by the class's folder name, with data.val_fraction and its 0 way out."""
    from binary_encoding.data.imagefolder import ImageFolderDataModule

    write_images(tmp_path, "train", {"cat": 1, "dog": 6})
    write_images(tmp_path, "test", {"cat": 1, "dog": 1}, seed=1)
    with pytest.raises(DataError) as e:
        ImageFolderDataModule(root=str(tmp_path), image_size=8, val_fraction=0.1).setup()
    assert str(e.value) == (
        "class cat has 1 image: holding out data.val_fraction=0.1 of each class as the validation split needs "
        "at least 2 per class; add images, or change data.val_fraction (0: no validation split)"
    )


def test_a_hold_out_that_keeps_fewer_images_than_classes_says_how_many_it_keeps():
    """3 classes of 2 images, 90% held out: ceil(5.4) = 6 held out, 0 kept."""
    with pytest.raises(DataError) as e:
        stratified_split(np.repeat([0, 1, 2], 2), 0.9, 0, "test", "test_fraction")
    assert str(e.value) == (
        "data.test_fraction=0.9 of 6 images leaves 0 kept for 3 classes: the test split needs one image of each "
        "class on both sides; add images, or change data.test_fraction"
    )


def test_image_listing_is_torchvisions_and_a_link_into_another_class_or_to_a_file_read_is_skipped(tmp_path):
    """Files in class folders and their sub-folders, extensions in upper and lower case, files that are no
    images: `list_images` lists what torchvision's `make_dataset` lists, in its order. Then `a/to_b -> ../b`
    (a folder of another class), `a/into_b -> ../b/other` (a folder inside one) and `a/again.png -> 0.png` (a
    file already read) add nothing: each is
    reported once and every image keeps its own class."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    from binary_encoding.data.imagefolder import list_images

    files = ["a/0.png", "a/1.JPG", "a/Z.PNG", "a/notes.txt", "a/sub/2.jpeg", "a/sub/deeper/3.bmp", "a/zz/4.webp"]
    files += [f"a/{d}/{i}.png" for i, d in enumerate(["m", "b2", "k", "d", "q7"])]  # sub-folders: listed by name
    # names that sort before "/" ("sub.old", "sub-2", "sub 3" < "sub/deeper"): torchvision sorts whole paths,
    # so a depth-first walk would list sub/deeper before sub.old
    files += ["a/sub.old/5.png", "a/sub-2/6.png", "a/sub 3/7.png"]
    files += ["b/x.tif", "b/y.Jpeg", "b/other/z.png", "b/other/readme", "c/only.ppm"]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    classes = {"a": 0, "b": 1, "c": 2}
    want = make_dataset(str(tmp_path), classes, extensions=IMG_EXTENSIONS)
    assert len(want) == 18
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list_images(str(tmp_path), classes) == want
    (tmp_path / "a" / "to_b").symlink_to("../b", target_is_directory=True)
    (tmp_path / "a" / "into_b").symlink_to("../b/other", target_is_directory=True)  # a folder inside class b
    (tmp_path / "a" / "again.png").symlink_to("0.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list_images(str(tmp_path), classes) == want
    said = sorted(str(w.message) for w in caught)
    assert len(said) == 2 and said[0].startswith("1 image(s) under ") and "a/again.png" in said[0]
    assert said[1].startswith("2 symlinked folder(s) under ") and said[1].endswith(
        "(e.g. " + str(tmp_path / "a/into_b)")
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_pixels_are_torchvisions_resize_of_the_pil_image_in_the_asked_mode(tmp_path, channels):
    """24x20 RGB files read with channels=1 (PIL mode L) or 3 (RGB), image_size=16: each stored image is
    torchvision's antialiased resize of the PIL image converted to that mode, in ImageFolder's order."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    from binary_encoding.data.imagefolder import ImageFolderDataModule

    train = write_images(tmp_path, "train", {"a": 3, "b": 3}, size=(24, 20))
    test = write_images(tmp_path, "test", {"a": 1, "b": 1}, size=(24, 20), seed=1)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, channels=channels, val_fraction=0.0)
    dm.setup()
    mode = {1: "L", 3: "RGB"}[channels]
    for split, paths in (("train", train), ("test", test)):
        want = [F.resize(F.pil_to_tensor(Image.open(p).convert(mode)), [16, 16], antialias=True) for p in paths]
        assert torch.equal(dm.x[split], torch.stack(want)), split
        assert dm.y[split].tolist() == [0] * (len(paths) // 2) + [1] * (len(paths) // 2)
    assert dm.input_shape == (channels, 16, 16)


@pytest.mark.parametrize("name, wanted", [("cifar10", "CIFAR10"), ("cifar100", "CIFAR100")])
def test_a_missing_cifar_is_downloaded_as_its_own_variant_with_a_timeout_and_a_failure_says_where(
    tmp_path, monkeypatch, name, wanted
):
    """data.download=true and no files: torchvision's dataset class of that variant downloads the training
    set into data.root under a 20 s socket timeout (restored afterwards); its failure becomes the missing-data
    hint with the download error. An unknown variant is refused."""
    import torchvision

    calls = []

    def fake(cls_name):
        def download(root, train, download):
            calls.append((cls_name, root, train, download, socket.getdefaulttimeout()))
            raise OSError("no route to host")

        return download

    for cls_name in ("CIFAR10", "CIFAR100"):
        monkeypatch.setattr(torchvision.datasets, cls_name, fake(cls_name))
    before = socket.getdefaulttimeout()
    dm = CIFARDataModule(name, root=str(tmp_path), download=True)
    with pytest.raises(FileNotFoundError, match=r"download failed: no route to host\)$") as e:
        dm.prepare_data()
    assert str(e.value).startswith(f"{name} was not found at {tmp_path / dm.layout[name][0]} (missing: ")
    assert calls == [(wanted, str(tmp_path), True, True, 20)] and socket.getdefaulttimeout() == before
    with pytest.raises(ValueError, match="unknown CIFAR variant 'cifar20'"):
        CIFARDataModule("cifar20", root=str(tmp_path))


def test_mnist1d_generator_overrides_reach_the_data_module():
    """data.generator={num_samples: 500}: the generator's own 80/20 split of 500 signals (400 + 100), 10% of
    the 400 held out for validation, the test signals those of `generate(num_samples=500)`."""
    from binary_encoding.data.mnist1d import MNIST1DDataModule, generate

    dm = MNIST1DDataModule(generator={"num_samples": 500}, val_fraction=0.1)
    dm.setup()
    assert (len(dm.y["train"]), len(dm.y["val"]), len(dm.y["test"])) == (360, 40, 100)
    want = generate(num_samples=500)
    np.testing.assert_array_equal(dm.x["test"][:, 0, 0].numpy(), want["x_test"].astype(np.float32))
    np.testing.assert_array_equal(dm.y["test"].numpy(), want["y_test"])


def test_device_resident_false_keeps_the_data_on_the_host_even_on_a_gpu(monkeypatch):
    """data.device_resident=false under a CUDA trainer: nothing is moved and the free memory is not asked."""
    dm = DigitsDataModule(device_resident=False)
    dm.setup()
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))

    def asked(device=None):
        raise AssertionError("the GPU's free memory was asked")

    monkeypatch.setattr(torch.cuda, "mem_get_info", asked)
    assert dm._place() is False
    assert all(v.device.type == "cpu" for v in (*dm.x.values(), *dm.y.values()))


def test_data_shuffle_false_trains_in_dataset_order_and_true_in_a_new_order_every_epoch():
    """data.shuffle reaches the training loader: false reads the training split in its order, the same every
    epoch; true reads a permutation that changes with the epoch. Evaluation loaders never shuffle."""
    orders = {}
    for shuffle in (False, True):
        dm = DigitsDataModule(shuffle=shuffle, seed=2)
        dm.setup()
        loader = dm.train_dataloader()
        orders[shuffle] = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            orders[shuffle].append(_indices(loader))
        assert torch.equal(_indices(dm.val_dataloader()), torch.arange(144))
    assert all(torch.equal(o, torch.arange(1293)) for o in orders[False])
    first, second = orders[True]
    assert sorted(first.tolist()) == list(range(1293)) and not torch.equal(first, torch.arange(1293))
    assert not torch.equal(first, second)


def test_the_batch_orders_of_neighbouring_seeds_and_epochs_are_all_different():
    """Seeds 0-3 over epochs 0-3: 16 different permutations (an order keyed by seed + epoch would give seed 1
    at epoch 0 the order of seed 0 at epoch 1, so neighbouring seeds would replay each other's epochs)."""
    from binary_encoding.data.sampler import BatchIndexSampler

    orders = set()
    for seed in range(4):
        s = BatchIndexSampler(100, 10, shuffle=True, seed=seed)
        for epoch in range(4):
            s.set_epoch(epoch)
            orders.add(tuple(torch.cat(list(s)).tolist()))
    assert len(orders) == 16


def test_float32_signals_count_four_bytes_a_value_against_the_gpus_free_memory(monkeypatch):
    """device_resident=auto with float32 data (MNIST-1D's kind): 2 x 40 x 1 x 1 x 40 values are 12,800 bytes,
    so 25,599 bytes free (twice the data, less one) keep them on the host, with the warning."""
    x = np.zeros((80, 1, 1, 40), np.float32)
    y = np.arange(80) % 2
    dm = _Given((x[:40], y[:40], x[40:], y[40:]), val_fraction=0.0)
    dm.setup()
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 12_800 - 1, 10**9))
    with pytest.warns(UserWarning, match="data kept in host memory"):
        assert dm._place() is False
    assert all(v.device.type == "cpu" for v in dm.x.values())


# docs/method.md §4.1 (crop from 4 pixels of zero padding, flip with p = 1/2, training batches only), §4.2 (10%
# validation, split_seed 0), §5 (digits: 20% test split, no augmentation), docs/mnist1d.md (10% validation, the
# published set: no generator overrides, no augmentation of a 1 x 40 signal)
DOCUMENTED_DATA = {
    "cifar10": ("CIFARDataModule", dict(augment=True, pad=4, flip=True)),
    "cifar100": ("CIFARDataModule", dict(augment=True, pad=4, flip=True)),
    "imagefolder": ("ImageFolderDataModule", dict(augment=True, pad=4, flip=True, test_fraction=0.2)),
    "mnist1d": ("MNIST1DDataModule", dict(augment=False, generator={})),
    "digits": ("DigitsDataModule", dict(augment=False, test_fraction=0.2)),
}


@pytest.mark.parametrize("name", list(DOCUMENTED_DATA))
def test_each_data_config_builds_the_documented_splits_and_augmentation(name, tmp_path):
    """conf/data/<name>.yaml instantiated as `build_datamodule` does (without reading any file): the data
    module's class and name, a 10% validation split of split_seed 0, the run's batch size and seed, shuffled
    training batches, and the documented augmentation (the paper's pad 4 and flips on CIFAR; none on digits
    and MNIST-1D)."""
    import hydra
    from omegaconf import OmegaConf

    from binary_encoding.run.conf import CONF_DIR

    cls, documented = DOCUMENTED_DATA[name]
    cfg = OmegaConf.load(f"{CONF_DIR}/data/{name}.yaml")
    if name == "imagefolder":
        cfg.root = str(tmp_path)
    dm = hydra.utils.instantiate(cfg, batch_size=64, seed=7)
    assert (type(dm).__name__, dm.name, dm.val_fraction, dm.split_seed) == (cls, name, 0.1, 0)
    assert (dm.batch_size, dm.seed, dm.shuffle) == (64, 7, True)
    for key, value in documented.items():
        assert getattr(dm, key) == value, key


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_its_training_files_as_train_and_its_test_file_as_test_in_order(tmp_path, name):
    """torchvision's layouts, pickled by hand: CIFAR-10's data_batch_1..5 (in that order) are the training
    set and test_batch the test set; CIFAR-100's `train` and `test`, labelled by `fine_labels` (not the
    coarse ones). Every image and label read back where it belongs."""
    import pickle

    rng = np.random.default_rng(0)
    folder, train_files, test_files, key = CIFARDataModule.layout[name]
    (tmp_path / folder).mkdir()
    written = {}
    for i, f in enumerate(train_files + test_files):
        n = 3 + i  # files of different sizes: a swap changes the counts
        written[f] = (rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 100, n).tolist())
        d = {"data": written[f][0], key: written[f][1], "coarse_labels": [0] * n}
        (tmp_path / folder / f).write_bytes(pickle.dumps(d))
    x, y, xt, yt = CIFARDataModule(name, root=str(tmp_path)).load()
    for (xs, ys), files in (((x, y), train_files), ((xt, yt), test_files)):
        np.testing.assert_array_equal(xs, np.concatenate([written[f][0] for f in files]).reshape(-1, 3, 32, 32))
        np.testing.assert_array_equal(ys, np.concatenate([written[f][1] for f in files]))


def test_a_cifar_copy_without_its_test_batch_is_refused_naming_the_missing_file(tmp_path):
    """The five training batches but no test_batch, download off: the missing-data hint names test_batch
    (not an open() error later, and not a set that silently lacks its test split)."""
    from synthetic_cifar import write_cifar10

    write_cifar10(tmp_path, n_train=20, n_test=10)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    dm = CIFARDataModule("cifar10", root=str(tmp_path), download=False)
    with pytest.raises(FileNotFoundError, match=r"^cifar10 was not found at .* \(missing: test_batch\)\. "):
        dm.setup()


def test_the_class_count_covers_a_label_that_only_the_test_split_holds():
    """Labels 0-2 in training, 0-3 in test: four classes (the check that every class trains then refuses
    the run by name, instead of a three-way classifier meeting label 3 at test time)."""
    x = np.zeros((30, 1, 2, 2), np.uint8)
    y_tr, y_te = np.arange(24) % 3, np.array([0, 1, 2, 3, 3, 0])
    dm = _Given((x[:24], y_tr, x[24:], y_te), val_fraction=0.0)
    dm.setup()
    assert dm.num_classes == 4
