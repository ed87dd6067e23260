"""Lines of `binary_encoding.data` that the other data tests leave open: every key of conf/data/*.yaml set to
a non-default value reaching the data module, the default of the sampler's `train` flag, a rank's share of a
batch smaller than the world, the seeds of each split's augmented view, clean batches outside training, a
custom `fits_on_device` fraction, digits' test_fraction, the CIFAR download path (files present: no
download; a download that works: the socket timeout put back; a folder in place of a batch file), and image
folders (a root that is a file, a `test` that is a file, which folder the shared-image warning names, what
`unreadable` says of odd errors, upper-case extensions, symlinked folders outside the data or into another
class's sub-folder)."""

from __future__ import annotations

import shutil
import socket
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from test_data_files import write_images

from binary_encoding.data.augment import apply_augmentation, draw_augmentation
from binary_encoding.data.base import fits_on_device
from binary_encoding.data.cifar import CIFARDataModule
from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.data.imagefolder import ImageFolderDataModule, list_images, unreadable
from binary_encoding.data.sampler import BatchIndexSampler
from binary_encoding.data.split import DataError, stratified_split
from binary_encoding.run.conf import CONF_DIR


def _fake_download(calls, make_files=None):
    """A torchvision CIFAR class stand-in that records (root, train, download, socket timeout) and may write files."""

    def download(root, train, download):
        calls.append((root, train, download, socket.getdefaulttimeout()))
        if make_files is not None:
            make_files(root)

    return download


# -- conf/data/*.yaml: every key reaches the data module -----------------------------------------------------

OTHER_VALUES = {  # a value unlike every default, per key of conf/data/*.yaml
    "download": False,
    "val_fraction": 0.3,
    "test_fraction": 0.35,
    "split_seed": 7,
    "pad": 3,
    "eval_batch_size": 77,
    "device_resident": False,
    "image_size": 12,
    "channels": 1,
    "skip_unreadable": True,
    "generator": {"num_samples": 300},
}


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "digits", "imagefolder", "mnist1d"])
def test_every_key_of_a_data_config_set_to_another_value_reaches_the_data_module(name, tmp_path):
    """Each key of conf/data/<name>.yaml overridden (booleans negated, root another folder): the built data
    module holds exactly the overriding value, so no key is dropped, swapped or replaced by a default."""
    import hydra

    cfg = OmegaConf.load(f"{CONF_DIR}/data/{name}.yaml")
    keys = [k for k in cfg if k not in ("_target_", "name")]
    want = {}
    for key in keys:
        if key == "root":
            want[key] = str(tmp_path / "elsewhere")
            (tmp_path / "elsewhere").mkdir()
        elif key in ("augment", "flip"):
            want[key] = not cfg[key]
        else:
            assert key in OTHER_VALUES, key  # a new key: give it a value here
            want[key] = OTHER_VALUES[key]
        assert OmegaConf.is_missing(cfg, key) or want[key] != cfg[key], key
        cfg[key] = want[key]
    dm = hydra.utils.instantiate(cfg, batch_size=16, seed=3)
    assert dm.name == name and (dm.batch_size, dm.seed) == (16, 3)
    for key, value in want.items():
        got = getattr(dm, key)
        assert (str(got) if key == "root" else got) == value, key


# -- sampler ---------------------------------------------------------------------------------------------------


def test_a_sampler_without_a_train_flag_skips_the_one_image_tail_only_when_shuffled():
    """`train` defaults to `shuffle`: 9 samples in batches of 4 are 2 training batches shuffled (the 1-sample
    tail skipped) and 3 batches unshuffled (an evaluation pass reads every sample)."""
    shuffled = BatchIndexSampler(9, 4, shuffle=True)
    assert [len(b) for b in shuffled] == [4, 4] and len(shuffled) == 2
    ordered = BatchIndexSampler(9, 4, shuffle=False)
    assert [b.tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]] and len(ordered) == 3


def test_a_shuffled_evaluation_sampler_keeps_every_sample_and_its_one_sample_tail():
    """shuffle=True with train=False: a permutation of all 9 samples in batches 4, 4, 1 (the tail kept)."""
    s = BatchIndexSampler(9, 4, shuffle=True, train=False, seed=1)
    batches = list(s)
    assert [len(b) for b in batches] == [4, 4, 1] and len(s) == 3
    assert sorted(torch.cat(batches).tolist()) == list(range(9)) and torch.cat(batches).tolist() != list(range(9))


def test_a_ranks_training_batch_is_the_global_batch_floor_divided_by_the_world_and_at_least_one(monkeypatch):
    """4 DDP ranks: batch_size 131 gives each rank 32 (floor, not rounded up); batch_size 3 gives 1, not 0.
    Evaluation batches stay eval_batch_size on every rank."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "0")
    for batch_size, per_rank in ((131, 32), (3, 1)):
        dm = DigitsDataModule(batch_size=batch_size, eval_batch_size=50)
        dm.setup()
        assert dm.train_dataloader().sampler.batch_size == per_rank, batch_size
        assert dm.test_dataloader().sampler.batch_size == 50


# -- base: augmented views, batches outside training, fits_on_device ----------------------------------------


def test_each_splits_augmented_view_is_drawn_from_seed_split_index_and_the_views_constant():
    """The view of split s (train 0, val 1, test 2) is the crop and flip drawn by a CPU generator seeded with
    SeedSequence([seed, index(s), 0x5EED]): checked against that oracle for every split; asked again, the
    same draws (cached)."""
    dm = DigitsDataModule(augment=True, pad=2, flip=True, seed=6, eval_batch_size=500)
    dm.setup()
    for index, split in enumerate(("train", "val", "test")):
        view = torch.cat([x for x, _ in dm.eval_dataloader(split, augmented=True)])
        key = int(np.random.SeedSequence([6, index, 0x5EED]).generate_state(1)[0])
        draws = draw_augmentation(len(dm.y[split]), 2, True, "cpu", torch.Generator().manual_seed(key))
        assert torch.equal(view, apply_augmentation(dm.x[split], 2, *draws)), split
        again = torch.cat([x for x, _ in dm.eval_dataloader(split, augmented=True)])
        assert torch.equal(again, view), split


def test_a_batch_transferred_while_the_trainer_validates_is_normalized_not_augmented():
    """augment=true, a trainer that is not training (a validation or test loop): the batch is only
    normalized; the same batch while training is cropped and flipped."""
    dm = DigitsDataModule(augment=True, pad=2, flip=True)
    dm.setup()
    x, y = dm.x["val"], dm.y["val"]
    dm.trainer = SimpleNamespace(training=False, current_epoch=0)
    out, labels = dm.on_after_batch_transfer((x, y), 0)
    assert torch.equal(out, dm.normalize(x)) and labels is y
    dm.trainer = SimpleNamespace(training=True, current_epoch=0)
    trained, _ = dm.on_after_batch_transfer((x, y), 0)
    assert (trained != dm.normalize(x)).flatten(1).any(1).float().mean() > 0.8
    plain = DigitsDataModule(augment=False, pad=2, flip=True)  # augment=false: clean while training too
    plain.setup()
    plain.trainer = SimpleNamespace(training=True, current_epoch=0)
    assert torch.equal(plain.on_after_batch_transfer((x, y), 0)[0], plain.normalize(x))


def test_fits_on_device_takes_the_fraction_it_is_given():
    assert fits_on_device(30, 100, fraction=0.3) and not fits_on_device(31, 100, fraction=0.3)
    assert fits_on_device(90, 100, fraction=0.9) and not fits_on_device(51, 100)
    assert fits_on_device(0, 0)  # an empty data set fits anywhere


# -- split ------------------------------------------------------------------------------------------------------


def test_a_hold_out_of_exactly_one_image_per_class_on_each_side_is_made_as_sklearn_makes_it():
    """3 classes of 2 images, half held out: 3 held out and 3 kept for 3 classes (the limit on both sides,
    and 2 images a class, the least accepted): sklearn's split, one image of each class on each side."""

    y = np.array([2, 0, 1, 1, 0, 2])
    kept, held = stratified_split(y, 0.5, 4, "test", "test_fraction")
    want = train_test_split(np.arange(6), test_size=0.5, stratify=y, random_state=4)
    assert kept.tolist() == want[0].tolist() and held.tolist() == want[1].tolist()
    assert sorted(y[kept].tolist()) == sorted(y[held].tolist()) == [0, 1, 2]


# -- mnist1d -----------------------------------------------------------------------------------------------------


def test_mnist1d_keeps_its_own_copy_of_the_generator_overrides():
    from binary_encoding.data.mnist1d import MNIST1DDataModule

    overrides = {"num_samples": 300}
    dm = MNIST1DDataModule(generator=overrides)
    overrides["num_samples"] = 5
    assert dm.generator == {"num_samples": 300}


# -- digits ------------------------------------------------------------------------------------------------------


def test_digits_holds_out_sklearns_stratified_test_fraction_of_split_seed():
    """test_fraction=0.3, split_seed=2, no validation split: the test images are sklearn's stratified 30%
    (540 of 1797) of random_state 2, in sklearn's order; the rest train."""
    d = load_digits()
    x, y = d.images.astype(np.uint8)[:, None], d.target
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=2)
    dm = DigitsDataModule(test_fraction=0.3, split_seed=2, val_fraction=0.0)
    dm.setup()
    assert len(te) == 540
    assert torch.equal(dm.x["test"], torch.from_numpy(x[te])) and dm.y["test"].tolist() == y[te].tolist()
    assert torch.equal(dm.x["train"], torch.from_numpy(x[tr])) and dm.y["train"].tolist() == y[tr].tolist()


# -- cifar -------------------------------------------------------------------------------------------------------


def test_cifar_files_in_place_are_read_without_any_download_even_when_downloads_are_allowed(tmp_path, monkeypatch):
    """data.download=true with every batch file present: prepare_data and setup touch no network (the
    torchvision class is never built) and read the files."""
    import torchvision
    from synthetic_cifar import write_cifar10

    write_cifar10(tmp_path, n_train=20, n_test=10)
    calls = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _fake_download(calls))
    dm = CIFARDataModule("cifar10", root=str(tmp_path), download=True, val_fraction=0.0)
    dm.prepare_data()
    dm.setup()
    assert calls == [] and (len(dm.y["train"]), len(dm.y["test"])) == (20, 10)


def test_a_cifar_download_that_works_puts_the_socket_timeout_back_and_is_then_read(tmp_path, monkeypatch):
    """No files, download allowed, a download that succeeds (writes the batches): it ran once under the 20 s
    timeout, the process's own timeout (5 s here) is back afterwards, and setup reads what arrived."""
    import torchvision
    from synthetic_cifar import write_cifar10

    calls = []
    monkeypatch.setattr(
        torchvision.datasets, "CIFAR10", _fake_download(calls, lambda root: write_cifar10(root, n_train=20, n_test=10))
    )
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5.0)
    try:
        dm = CIFARDataModule("cifar10", root=str(tmp_path), download=True, val_fraction=0.0)
        dm.setup()
        assert socket.getdefaulttimeout() == 5.0
    finally:
        socket.setdefaulttimeout(before)
    assert calls == [(str(tmp_path), True, True, 20)]
    assert (len(dm.y["train"]), len(dm.y["test"])) == (20, 10)


def test_a_folder_in_place_of_a_cifar_batch_file_counts_as_missing(tmp_path):
    from synthetic_cifar import write_cifar10

    write_cifar10(tmp_path, n_train=20, n_test=10)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.unlink()
    batch.mkdir()
    with pytest.raises(FileNotFoundError, match=r"^cifar10 was not found at .* \(missing: data_batch_3\)\. "):
        CIFARDataModule("cifar10", root=str(tmp_path), download=False).prepare_data()


# -- imagefolder ---------------------------------------------------------------------------------------------


def test_an_image_folder_root_that_is_a_file_is_refused_as_not_a_folder(tmp_path):
    root = tmp_path / "images.zip"
    root.write_bytes(b"PK")
    with pytest.raises(FileNotFoundError) as e:
        ImageFolderDataModule(root=str(root))
    assert str(e.value) == f"data=imagefolder needs data.root=DIR, an existing folder; got {str(root)!r}"


@pytest.mark.parametrize(
    "test_classes, said",
    [({"cat": 1}, " (missing: dog)"), ({"cat": 1, "dog": 1, "eel": 1}, " (not in train: eel)")],
    ids=["missing-only", "extra-only"],
)
def test_a_test_folder_with_only_missing_or_only_extra_classes_says_only_that(tmp_path, test_classes, said):
    write_images(tmp_path, "train", {"cat": 3, "dog": 3})
    write_images(tmp_path, "test", test_classes, seed=1)
    with pytest.raises(DataError) as e:
        ImageFolderDataModule(root=str(tmp_path), image_size=8, val_fraction=0.0).setup()
    assert str(e.value) == (
        f"{tmp_path / 'test'} has other class folders than {tmp_path / 'train'}{said}: give test/ the class "
        f"folders of train/, or remove {tmp_path / 'test'} to hold out data.test_fraction"
    )


def test_a_file_named_test_beside_train_is_no_test_folder_and_test_fraction_is_held_out(tmp_path):
    write_images(tmp_path, "train", {"a": 5, "b": 5})
    (tmp_path / "test").write_text("notes")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, test_fraction=0.4, val_fraction=0.0)
    dm.setup()
    assert (len(dm.y["train"]), len(dm.y["test"])) == (6, 4) and np.bincount(dm.y["test"].numpy()).tolist() == [2, 2]


def test_the_shared_image_warning_names_the_test_folder_or_without_one_the_train_folder(tmp_path):
    """A test/ image copied from train/: the warning names root/test. Without test/, class a of five
    identical images: its held-out image is a training image, and the warning names root/train."""
    write_images(tmp_path / "with", "train", {"a": 4, "b": 4})
    write_images(tmp_path / "with", "test", {"a": 1, "b": 1}, seed=1)
    shutil.copy(tmp_path / "with/train/a/2.png", tmp_path / "with/test/a/0.png")
    with pytest.warns(UserWarning) as caught:
        ImageFolderDataModule(root=str(tmp_path / "with"), image_size=8, val_fraction=0.0).setup()
    assert [str(w.message) for w in caught] == [
        f"1 of 2 test images ({tmp_path / 'with' / 'test'}) are identical to training images (duplicate files?)"
    ]
    paths = write_images(tmp_path / "without", "train", {"a": 5, "b": 5})
    for p in paths[1:5]:
        shutil.copy(paths[0], p)
    with pytest.warns(UserWarning) as caught:
        ImageFolderDataModule(root=str(tmp_path / "without"), image_size=8, val_fraction=0.0).setup()
    assert [str(w.message) for w in caught] == [
        f"1 of 2 test images ({tmp_path / 'without' / 'train'}) are identical to training images (duplicate files?)"
    ]


def test_unreadable_says_empty_first_then_not_an_image_then_the_first_line_of_any_other_error(tmp_path):
    from PIL import UnidentifiedImageError

    empty, full = tmp_path / "empty.png", tmp_path / "full.png"
    empty.write_bytes(b"")
    full.write_bytes(b"\x89PNG....")
    assert unreadable(str(empty), UnidentifiedImageError("cannot identify")) == "an empty file"
    assert unreadable(str(full), UnidentifiedImageError("cannot identify")) == "not an image file PIL can read"
    assert unreadable(str(full), ValueError("first line\nsecond line")) == "ValueError: first line"
    assert unreadable(str(full), OSError()) == "OSError: "


def test_image_listing_matches_extensions_given_in_upper_case_against_any_case(tmp_path):
    for f in ["a/0.raw", "a/1.RAW", "a/2.png", "b/3.Raw"]:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    got = list_images(str(tmp_path), {"a": 0, "b": 1}, extensions=(".RAW",))
    assert got == [(str(tmp_path / f), c) for f, c in (("a/0.raw", 0), ("a/1.RAW", 0), ("b/3.Raw", 1))]


def test_symlinked_folders_outside_the_data_are_read_and_one_into_another_classes_sub_folder_is_skipped(tmp_path):
    """`train/a/ext -> ../../outside/x` and a class folder `train/c -> ../outside/cats` (both outside the
    data): their images are read, with their class, silently. `train/a/into_b -> ../b/sub` (inside class b):
    skipped with one warning, b's images keep class b."""
    data = tmp_path / "train"
    files = ["train/a/0.png", "train/b/1.png", "train/b/sub/2.png", "outside/x/3.png", "outside/cats/4.png"]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes(b"")
    (data / "a" / "ext").symlink_to(tmp_path / "outside" / "x", target_is_directory=True)
    (data / "c").symlink_to(tmp_path / "outside" / "cats", target_is_directory=True)
    classes = {"a": 0, "b": 1, "c": 2}
    want = [("a/0.png", 0), ("a/ext/3.png", 0), ("b/1.png", 1), ("b/sub/2.png", 1), ("c/4.png", 2)]
    want = [(str(data / f), c) for f, c in want]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing reported
        assert list_images(str(data), classes) == want
    (data / "a" / "into_b").symlink_to(Path("..") / "b" / "sub", target_is_directory=True)
    with pytest.warns(UserWarning) as caught:
        assert list_images(str(data), classes) == want
    assert [str(w.message) for w in caught] == [
        f"1 symlinked folder(s) under {data} skipped: they lead back into the data, into another class or to a "
        f"folder already read (e.g. {data / 'a' / 'into_b'})"
    ]
