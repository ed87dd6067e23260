"""Line-by-line values of `binary_encoding.data` that no config varies and no other data test reaches: the
Python API's defaults, argument checks and their messages, `~` in data.root, loading once, which device the
splits live on and whether batches are pinned, the loaders' batch sizes and order, the augmented views of
different splits, a crop and flip of non-square images against torchvision, the training and evaluation
shards against torch's DistributedSampler, CIFAR's Python 2 pickles, image listing options, the report of
test images shared with training, and the MNIST-1D generator's refusal of unknown arguments."""

from __future__ import annotations

import inspect
import io
import pickle
import struct
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from test_data_files import BROKEN, write_images
from test_data_values import _Given, _indices

from binary_encoding.data.augment import apply_augmentation, augment_batch, draw_augmentation
from binary_encoding.data.base import InMemoryDataModule
from binary_encoding.data.cifar import CIFARDataModule
from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.data.imagefolder import ImageFolderDataModule, list_images, report_shared_images
from binary_encoding.data.sampler import BatchIndexSampler
from binary_encoding.data.split import DataError
from binary_encoding.run.conf import CONF_DIR

META = torch.device("meta")  # a non-CPU device that needs no GPU: placement is visible without moving bytes


def _trainer_on(device: torch.device, **kw) -> SimpleNamespace:
    return SimpleNamespace(strategy=SimpleNamespace(root_device=device), **kw)


def _defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def test_the_python_apis_defaults_are_the_configs_and_the_papers():
    """Built from Python without a config, a data module has the settings of conf/data (CIFAR's for the base
    class: 10% validation of split_seed 0, crops from 4 pixels of padding, flips, evaluation batches of 1024,
    device_resident auto, download allowed, root data/; the image folder's own keys from imagefolder.yaml),
    the paper's global batch of 128 (docs/method.md), seed 0, shuffled training and no augmentation unless
    asked. Digits holds out 20% as its test split; CIFAR is CIFAR-10; each module names itself."""
    cifar = OmegaConf.to_container(OmegaConf.load(f"{CONF_DIR}/data/cifar10.yaml"))
    shared = ("download", "val_fraction", "split_seed", "pad", "flip", "eval_batch_size", "device_resident")
    dm = InMemoryDataModule()
    for key in shared:
        assert getattr(dm, key) == cifar[key], key
    assert dm.root == Path(cifar["root"]) and dm.name == "base"
    assert (dm.batch_size, dm.seed, dm.shuffle, dm.augment) == (128, 0, True, False)

    folder = OmegaConf.to_container(OmegaConf.load(f"{CONF_DIR}/data/imagefolder.yaml"))
    own = _defaults(ImageFolderDataModule.__init__)
    assert own == {k: folder[k] for k in ("image_size", "test_fraction", "channels", "skip_unreadable")}

    digits = DigitsDataModule()
    assert (digits.name, digits.test_fraction, digits.val_fraction) == ("digits", 0.2, 0.1)
    assert CIFARDataModule(root="nowhere").name == "cifar10"
    from binary_encoding.data.mnist1d import MNIST1DDataModule

    assert (MNIST1DDataModule().name, MNIST1DDataModule().generator) == ("mnist1d", {})
    # the sampler: seed 0 on rank 0 of 1 on the CPU, and `train` following `shuffle`
    assert _defaults(BatchIndexSampler.__init__) == dict(seed=0, rank=0, world=1, device="cpu", train=None)
    s = BatchIndexSampler(11, 4, shuffle=True)
    assert torch.equal(torch.cat(list(s)), torch.cat(list(BatchIndexSampler(11, 4, True, 0, 0, 1, "cpu", True))))


@pytest.mark.parametrize("bad", [0, -8])
def test_a_batch_size_below_one_is_refused_naming_it(bad):
    with pytest.raises(ValueError) as e:
        DigitsDataModule(batch_size=bad)
    assert str(e.value) == f"batch_size must be positive, got {bad}"
    assert DigitsDataModule(batch_size=1).batch_size == 1


def test_a_root_given_with_a_tilde_is_the_users_home(tmp_path, monkeypatch):
    """data.root=~/images: the folder under $HOME (an image folder that exists there is accepted, not refused
    as missing)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write_images(tmp_path / "images", "train", {"a": 2})
    assert DigitsDataModule(root="~/data").root == tmp_path / "data"
    assert ImageFolderDataModule(root="~/images").root == tmp_path / "images"


def test_setup_loads_once_and_keeps_labels_as_int64_whatever_load_returns():
    """A second `setup` (Lightning calls it per stage) neither reloads nor rebuilds the splits (placed
    tensors would fall back to the host); int32 labels from `load` are stored as int64 in every split."""
    x = np.arange(40 * 4, dtype=np.uint8).reshape(40, 1, 2, 2)
    y = (np.arange(40) % 2).astype(np.int32)
    loads = []

    class Counted(_Given):
        def load(self):
            loads.append(1)
            return super().load()

    dm = Counted((x[:30], y[:30], x[30:], y[30:]), val_fraction=0.2)
    dm.setup("fit")
    first = dm.x["train"]
    dm.setup("test")
    assert len(loads) == 1 and dm.x["train"] is first
    assert {s: dm.y[s].dtype for s in dm.splits} == {s: torch.int64 for s in ("train", "val", "test")}


def test_device_resident_true_moves_every_split_once_to_any_accelerator_and_auto_only_to_cuda():
    """data.device_resident=true on a non-CUDA accelerator (the meta device here): images and labels of
    every split move there once, and the loaders index them there, unpinned; `auto` keeps them on the host
    there, and so does any setting without a trainer or on a CPU trainer."""
    for resident, device in ((True, None), (True, torch.device("cpu")), ("auto", META)):
        dm = DigitsDataModule(device_resident=resident)
        dm.setup()
        if device is not None:
            dm.trainer = _trainer_on(device)
        assert dm._place() is False, (resident, device)
        assert all(v.device.type == "cpu" for v in (*dm.x.values(), *dm.y.values()))

    dm = DigitsDataModule(device_resident=True)
    dm.setup()
    dm.trainer = _trainer_on(META)
    assert dm._place() is True and dm._placed_on == META
    placed = dict(dm.x)
    assert all(v.device == META for v in (*dm.x.values(), *dm.y.values()))
    assert dm._place() is True and all(dm.x[k] is placed[k] for k in placed)  # moved once
    loader = dm.val_dataloader()
    assert loader.sampler.device == META and loader.pin_memory is False


def test_batches_are_pinned_only_when_they_cross_from_the_host_to_a_cuda_device(monkeypatch):
    """pin_memory: on a machine with CUDA, for data kept on the host (to speed the copy); not for data
    already on the device, and not without CUDA (torch warns of pinning with no accelerator)."""
    dm = DigitsDataModule(device_resident=False)
    dm.setup()
    assert dm.train_dataloader().pin_memory is False  # no CUDA here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert all(dm._loader(s, train=s == "train").pin_memory is True for s in dm.splits)
    resident = DigitsDataModule(device_resident=True)
    resident.setup()
    resident.trainer = _trainer_on(META)
    assert resident.test_dataloader().pin_memory is False


def test_each_loader_reads_its_own_split_in_its_own_batch_size_and_evaluation_keeps_a_batch_of_one():
    """Digits (1293 / 144 / 360): training batches of batch_size (10 x 128 + 13), the validation, test and
    ordered training passes in batches of eval_batch_size in dataset order, and the 1-image tail of an
    evaluation pass is read (only training skips it). An unknown split is refused by name."""
    dm = DigitsDataModule(batch_size=128, eval_batch_size=143, shuffle=False)
    dm.setup()
    assert [len(b) for b in dm.train_dataloader().sampler] == [128] * 10 + [13]
    # a batch is one index into tensors that may live on the GPU: read in the main process, no workers
    assert {dm._loader(s, train=s == "train").num_workers for s in dm.splits} == {0}
    for split, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
        batches = list(loader)
        assert [len(y) for _, y in batches][:2] == [143, 1 if split == "val" else 143], split
        assert torch.equal(torch.cat([x for x, _ in batches]), dm.x[split]), split
        assert torch.equal(torch.cat([y for _, y in batches]), dm.y[split]), split
    assert torch.equal(_indices(dm.eval_dataloader("train")), torch.arange(1293))
    assert len(dm.eval_dataloader("train")) == 10  # ceil(1293 / 143)
    with pytest.raises(ValueError) as e:
        dm.eval_dataloader("tset")
    assert str(e.value) == "unknown split 'tset'; this data module has ('train', 'val', 'test')"


def test_each_split_has_its_own_augmented_view_and_batches_without_a_trainer_are_clean():
    """Training and test splits holding the same images (val_fraction=0): their seeded augmented views differ
    (the draws are keyed by the split as well as the seed). A batch transferred outside a fit (no trainer) is
    normalized, not augmented; the augmentation stream without a trainer is epoch 0's of rank 0."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 1, 6, 6), dtype=np.uint8)
    y = np.arange(64) % 4
    dm = _Given((x, y, x, y), val_fraction=0.0, augment=True, pad=2, flip=True, seed=4)
    dm.setup()
    views = {s: torch.cat([b for b, _ in dm.eval_dataloader(s, augmented=True)]) for s in ("train", "test")}
    assert torch.equal(dm.x["train"], dm.x["test"])
    assert (views["train"] != views["test"]).flatten(1).any(1).float().mean() > 0.8

    clean, _ = dm.on_after_batch_transfer((dm.x["test"], dm.y["test"]), 0)
    assert torch.equal(clean, dm.normalize(dm.x["test"]))
    key = int(np.random.SeedSequence([4, 0, 0]).generate_state(1)[0])
    drawn = torch.rand(20, generator=dm.augment_generator(torch.device("cpu")))
    assert torch.equal(drawn, torch.rand(20, generator=torch.Generator().manual_seed(key)))


def test_a_crop_and_flip_of_non_square_images_is_torchvisions_pad_crop_and_flip_at_the_drawn_offsets():
    """3-channel 5x7 images padded by 2 zeros: each output is torchvision's `crop(pad(img, 2), oy, ox, 5, 7)`,
    mirrored where drawn (rows and columns not swapped, every channel alike). The draws: offsets in [0, 4] on
    both axes, none without padding, no flags without flips."""
    from torchvision.transforms.v2 import functional as F

    x = torch.randint(1, 256, (300, 3, 5, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    oy, ox, do = draw_augmentation(300, 2, True, "cpu", torch.Generator().manual_seed(1))
    assert (oy.min(), oy.max(), ox.min(), ox.max()) == (0, 4, 0, 4) and 0 < do.sum() < 300
    out = apply_augmentation(x, 2, oy, ox, do)
    for i in range(300):
        want = F.crop(F.pad(x[i], [2]), int(oy[i]), int(ox[i]), 5, 7)
        assert torch.equal(out[i], F.horizontal_flip(want) if do[i] else want), i
    assert draw_augmentation(5, 0, False, "cpu") == (None, None, None)
    assert torch.equal(augment_batch(x, 0, False), x)


def test_a_seed_draws_the_row_offsets_then_the_column_offsets_then_the_flips():
    """The order of the draws fixes which images a seed gives: a change of it (rows and columns swapped)
    keeps their distribution but not the images a committed result was trained on. The generator's first n
    integers in [0, 2 pad] are the row offsets (checked on the image: the crop of a padded ramp starts at that
    row), the next n the column offsets, then n uniforms below 1/2 the flips."""
    g = torch.Generator().manual_seed(5)
    rows, cols, flips = (
        torch.randint(0, 7, (9,), generator=g),
        torch.randint(0, 7, (9,), generator=g),
        torch.rand(9, generator=g),
    )
    oy, ox, do = draw_augmentation(9, 3, True, "cpu", torch.Generator().manual_seed(5))
    assert torch.equal(oy, rows) and torch.equal(ox, cols) and torch.equal(do, flips < 0.5)
    ramp = (torch.arange(1, 9)[:, None] * 100 + torch.arange(1, 9)).expand(9, 1, 8, 8)  # pixel: 100 row + col
    corner = augment_batch(ramp, 3, False, torch.Generator().manual_seed(5))[:, 0, 0, 0]
    # the crop's corner is padded pixel (oy, ox): image pixel (oy - 3, ox - 3), a zero of the padding before it
    want = [100 * (r - 2) + (c - 2) if min(r, c) >= 3 else 0 for r, c in zip(rows.tolist(), cols.tolist())]
    assert corner.tolist() == want and len(set(want) - {0}) >= 2  # two crops inside the image at least


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [12, 13, 103])
def test_unshuffled_shards_are_distributed_samplers_dropping_the_tail_in_training_and_unpadded_in_evaluation(n, world):
    """torch's DistributedSampler(shuffle=False) is the oracle: training shards are its drop_last=True shards;
    an evaluation shard is its drop_last=False shard without the samples it repeats to pad, so the shards
    together hold every sample once. The batch counts follow the shard."""
    from torch.utils.data import DistributedSampler

    seen = []
    for rank in range(world):
        oracle = {
            drop: list(DistributedSampler(range(n), world, rank, shuffle=False, drop_last=drop)) for drop in (0, 1)
        }
        train = BatchIndexSampler(n, n, shuffle=False, train=True, rank=rank, world=world)  # one batch: no tail
        assert torch.cat(list(train)).tolist() == oracle[True], rank
        evaluation = torch.cat(list(BatchIndexSampler(n, 4, shuffle=False, rank=rank, world=world))).tolist()
        assert evaluation == oracle[False][: len(evaluation)] and len(evaluation) == len(range(rank, n, world))
        assert len(BatchIndexSampler(n, 4, False, rank=rank, world=world)) == -(-len(evaluation) // 4)
        seen += evaluation
    assert sorted(seen) == list(range(n))


def test_a_sampler_hands_its_indices_to_the_datas_device():
    batches = list(BatchIndexSampler(10, 4, shuffle=False, device="meta"))
    assert [(b.device, len(b)) for b in batches] == [(META, 4), (META, 4), (META, 2)]


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` (BINSTRING), as the CIFAR batches were pickled: dict keys and numpy's
    raw buffers then read back only with encoding latin1 (as torchvision reads them)."""

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes}


def test_cifar_batches_pickled_by_python_2_are_read_as_torchvision_reads_them(tmp_path):
    """The real CIFAR-10 files are Python 2 pickles (str keys, numpy buffers as str): read with latin1 they
    give torchvision's images and labels (another encoding gives bytes keys or a decode error)."""
    from torchvision import datasets

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        row = {b"batch_label": b"a batch", b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8)}
        row[b"labels"] = rng.integers(0, 10, 3).tolist()
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(row)
        (folder / f).write_bytes(buf.getvalue())
    ours = CIFARDataModule("cifar10", root=str(tmp_path), download=False).load()
    unchecked = type("Unchecked", (datasets.CIFAR10,), {"_check_integrity": lambda s: True, "_load_meta": lambda s: 0})
    for train, (x, y) in ((True, ours[:2]), (False, ours[2:])):
        ref = unchecked(str(tmp_path), train=train)
        assert np.array_equal(x, ref.data.transpose(0, 3, 1, 2)) and y.tolist() == ref.targets
        assert x.dtype == np.uint8 and y.dtype == np.int64


def test_a_missing_cifar_hint_lists_every_missing_file_in_order_and_an_unknown_variant_the_known_ones(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        CIFARDataModule("cifar100", root=str(tmp_path), download=False).prepare_data()
    assert str(e.value) == (
        f"cifar100 was not found at {tmp_path / 'cifar-100-python'} (missing: train, test). Put torchvision's "
        f"extracted 'cifar-100-python' folder under data.root={tmp_path} (then no network is needed), or allow "
        "the download with data.download=true on a machine with network access."
    )
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"\(missing: data_batch_1, data_batch_3, data_batch_4, data_batch_5, "):
        CIFARDataModule("cifar10", root=str(tmp_path), download=False).prepare_data()
    with pytest.raises(ValueError) as e:
        CIFARDataModule("cifar20", root=str(tmp_path))
    assert str(e.value) == "unknown CIFAR variant 'cifar20'; choose one of ['cifar10', 'cifar100']"


def test_image_folder_messages_for_no_train_folder_and_for_no_readable_image(tmp_path):
    """Without root/train: the folder it expected, by its path. With skip_unreadable and every image broken:
    the warning counts them, then nothing is left to train on, said by the folder."""
    tmp_path.joinpath("elsewhere").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        ImageFolderDataModule(root=str(tmp_path / "elsewhere")).setup()
    assert str(e.value) == (
        f"no training images: expected the folder {tmp_path / 'elsewhere' / 'train'} with one sub-folder per class"
    )
    for name, (content, _) in BROKEN.items():
        (tmp_path / "train" / "a").mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / "a" / name).write_bytes(content)
    with pytest.warns(UserWarning, match=r"^4 unreadable image\(s\) under .* left out \(e\.g\. "):
        with pytest.raises(DataError) as e:
            ImageFolderDataModule(root=str(tmp_path), skip_unreadable=True).setup()
    assert str(e.value) == f"no readable image under {tmp_path / 'train'}"


def test_image_listing_with_other_extensions_is_torchvisions_and_an_empty_folder_is_refused_unless_allowed(tmp_path):
    from torchvision.datasets.folder import make_dataset

    for f in ["a/0.png", "a/1.raw", "a/2.JPG", "a/s/3.RAW", "b/4.png", "b/5.raw", "b/6.txt"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    classes = {"a": 0, "b": 1}
    for extensions in ((".raw",), (".raw", ".png")):
        want = make_dataset(str(tmp_path), classes, extensions=extensions)
        assert list_images(str(tmp_path), classes, extensions) == want and len(want) == 2 * len(extensions) + 1
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"^no images found under .*empty$"):
        list_images(str(tmp_path / "empty"), {"a": 0})
    assert list_images(str(tmp_path / "empty"), {"a": 0}, allow_empty=True) == []


def test_test_images_equal_to_training_images_are_counted_each_and_none_says_nothing():
    """Two of five test images are training images (one of them twice): 3 reported, with the folder; test
    images that merely share pixel values or a shape with training images are not counted."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (6, 3, 4, 4), dtype=np.uint8)
    test = np.stack([train[1], rng.integers(0, 256, (3, 4, 4)), train[4], train[1], train[0][:, ::-1]]).astype(np.uint8)
    with pytest.warns(UserWarning) as caught:
        assert report_shared_images(train, test, Path("here/test")) == 3
    assert [str(w.message) for w in caught] == [
        "3 of 5 test images (here/test) are identical to training images (duplicate files?)"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert report_shared_images(train, test[[1, 4]], Path("here")) == 0


def test_the_too_large_warning_says_the_data_size_and_the_free_memory_in_gib(monkeypatch):
    """1.5 GiB of images (expanded tensors: no memory) against 1 GiB free of 8: the warning gives both in GiB
    with one decimal, the free memory (not the total) and the device, and the setting that forces it."""
    dm = DigitsDataModule()
    dm.setup()
    dm.x = {"train": torch.zeros(1, dtype=torch.uint8).expand(2**30), "test": torch.zeros(1).expand(2**27)}
    dm.trainer = _trainer_on(torch.device("cuda", 1))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 8 * 2**30))
    with pytest.warns(UserWarning) as caught:
        assert dm._place() is False
    assert [str(w.message) for w in caught] == [
        "data kept in host memory: 1.5 GiB of images is more than half of the 1.0 GiB free on cuda:1 "
        "(data.device_resident=true forces it)"
    ]


def test_an_unknown_mnist1d_generator_argument_is_refused_with_every_known_one():
    from mnist1d.data import get_dataset_args

    from binary_encoding.data.mnist1d import generate

    known = sorted(get_dataset_args(as_dict=True))
    assert {"num_samples", "train_split", "seed", "final_seq_length"} <= set(known)
    with pytest.raises(ValueError) as e:
        generate(seeds=1, num_sample=10)
    assert str(e.value) == f"unknown MNIST-1D generator arguments ['num_sample', 'seeds']; known: {known}"
