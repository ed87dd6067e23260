"""Image files and class folders that cannot be trained on: one line that names the file or the class,
the problem and the way out, exit 2 from the command line (never a loader or sklearn traceback)."""

import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from binary_encoding.data.imagefolder import ImageFolderDataModule
from binary_encoding.data.split import DataError, stratified_split


def write_images(root, split: str, counts: dict[str, int], fmt: str = "png", seed: int = 0, size=(8, 8)) -> list:
    """`root/<split>/<class>/<i>.<fmt>`: `counts[class]` random RGB images of `size` (H, W) written by PIL;
    their paths in ImageFolder's order (classes sorted)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for c, n in sorted(counts.items()):
        (root / split / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            paths.append(root / split / c / f"{i}.{fmt}")
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def image_bytes(fmt: str) -> bytes:
    """A whole 64x64 image file as PIL writes it (large enough that a cut leaves the header whole)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


BROKEN = {  # name -> what the file holds, what the line says of it
    "truncated.png": (image_bytes("PNG")[:200], "OSError: image file is truncated"),
    "truncated.jpg": (image_bytes("JPEG")[:300], "OSError: "),
    "empty.png": (b"", "an empty file"),
    "text.png": (b"these are notes, not an image\n", "not an image file PIL can read"),
}


def load(root, **kw) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(root=str(root), image_size=8, download=False, device_resident=False, **kw)
    dm.setup()
    return dm


@pytest.mark.parametrize("name", list(BROKEN))
def test_an_unreadable_image_is_refused_in_one_line_naming_the_file_and_the_way_out(tmp_path, name):
    write_images(tmp_path, "train", {"a": 6, "b": 6})
    bad = tmp_path / "train" / "b" / name
    content, problem = BROKEN[name]
    bad.write_bytes(content)
    with pytest.raises(DataError) as e:
        load(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"cannot read image {bad} ({problem}")
    assert msg.endswith(
        "remove or replace it, or set data.skip_unreadable=true to leave out the images that cannot be read"
    )


def test_skip_unreadable_leaves_out_exactly_the_broken_files_with_one_warning(tmp_path):
    write_images(tmp_path, "train", {"a": 10, "b": 10})
    for name, (content, _) in BROKEN.items():
        (tmp_path / "train" / "a" / name).write_bytes(content)
    with pytest.raises(DataError, match="; 4 unreadable images under "):
        load(tmp_path)
    with pytest.warns(UserWarning, match="4 unreadable image\\(s\\) under .* left out") as caught:
        dm = load(tmp_path, skip_unreadable=True, val_fraction=0.0)
    assert len([w for w in caught if "unreadable" in str(w.message)]) == 1
    # the 20 good images, and the split of a folder that never held the broken ones
    clean = tmp_path / "clean"
    write_images(clean, "train", {"a": 10, "b": 10})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = load(clean, val_fraction=0.0)
    assert len(dm.y["train"]) + len(dm.y["test"]) == 20
    for split in ("train", "test"):
        assert np.array_equal(dm.x[split].numpy(), want.x[split].numpy()), split
        assert np.array_equal(dm.y[split].numpy(), want.y[split].numpy()), split


def test_classes_too_small_to_hold_out_a_split_are_named_with_the_way_out(tmp_path):
    # 1000 classes of one image: no test split can hold one of each (sklearn: "least populated class")
    write_images(tmp_path / "one", "train", {f"c{i:03d}": 1 for i in range(1000)})
    with pytest.raises(DataError) as e:
        load(tmp_path / "one")
    assert str(e.value) == (
        "class c000 has 1 image (and 999 other classes have fewer than 2): holding out data.test_fraction=0.2 "
        "of each class as the test split needs at least 2 per class; add images, or change data.test_fraction"
    )
    # 2 images in each of 10 classes: 4 test images for 10 classes
    write_images(tmp_path / "two", "train", {f"c{i}": 2 for i in range(10)})
    with pytest.raises(DataError) as e:
        load(tmp_path / "two")
    assert str(e.value) == (
        "data.test_fraction=0.2 of 20 images leaves 4 held out for 10 classes: the test split needs one image of "
        "each class on both sides; add images, or change data.test_fraction"
    )
    # the same with a test/ folder: now the validation split (10% of 20: 2 images for 10 classes)
    write_images(tmp_path / "two", "test", {f"c{i}": 1 for i in range(10)}, seed=1)
    with pytest.raises(DataError, match="^data.val_fraction=0.1 of 20 images leaves 2 held out for 10 classes: the "):
        load(tmp_path / "two")
    assert len(load(tmp_path / "two", val_fraction=0.0).y["test"]) == 10  # the way out works


def test_a_test_folder_without_a_class_of_train_is_named(tmp_path):
    write_images(tmp_path, "train", {"cat": 6, "dog": 6, "eel": 6})
    write_images(tmp_path, "test", {"cat": 2, "eel": 2, "fox": 2})
    with pytest.raises(DataError) as e:
        load(tmp_path)
    assert str(e.value) == (
        f"{tmp_path / 'test'} has other class folders than {tmp_path / 'train'} (missing: dog) (not in train: fox): "
        f"give test/ the class folders of train/, or remove {tmp_path / 'test'} to hold out data.test_fraction"
    )


def test_the_split_refuses_exactly_what_sklearn_refuses_and_otherwise_is_sklearns():
    """Over small label sets (1-8 samples per class, 2-6 classes, held-out fractions 0.1-0.9): a DataError
    exactly where sklearn's stratified `train_test_split` raises, and sklearn's indices everywhere else."""
    rng = np.random.default_rng(0)
    refused = 0
    for _ in range(300):
        counts = rng.integers(1, 9, rng.integers(2, 7))
        y = rng.permutation(np.repeat(np.arange(len(counts)), counts))
        fraction = float(rng.choice([0.1, 0.2, 0.3, 0.5, 0.7, 0.9]))
        try:
            want = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=3)
        except ValueError:
            refused += 1
            with pytest.raises(DataError):
                stratified_split(y, fraction, 3, "test", "test_fraction")
            continue
        got = stratified_split(y, fraction, 3, "test", "test_fraction")
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert min(refused, 300 - refused) > 50, refused  # both sides were probed


def test_the_command_line_says_a_broken_image_in_one_line_with_exit_2(tmp_path):
    write_images(tmp_path / "images", "train", {"a": 6, "b": 6})
    bad = tmp_path / "images" / "train" / "a" / "empty.png"
    bad.write_bytes(b"")
    cmd = [sys.executable, "-m", "binary_encoding.train", "data=imagefolder", f"data.root={tmp_path / 'images'}"]
    cmd += ["logger=csv", f"output_dir={tmp_path / 'run'}", "trainer.enable_progress_bar=false"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 2, r.stderr[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"error: cannot read image {bad} (an empty file): remove "
        "or replace it, or set data.skip_unreadable=true to leave out the images that cannot be read"
    ], r.stderr[-3000:]


def test_an_image_folder_without_test_holds_out_sklearns_split_of_split_seed_whatever_the_run_seed(tmp_path):
    """root/train only: the test images are sklearn's stratified `test_fraction` of the training images
    (in ImageFolder's order) with random_state=split_seed; the run seed changes nothing, split_seed does."""
    write_images(tmp_path, "train", {"a": 10, "b": 10, "c": 10})
    full = load(tmp_path, test_fraction=0.3, val_fraction=0.0, split_seed=0, seed=0)
    x_all = np.concatenate([full.x["train"].numpy(), full.x["test"].numpy()])
    order = [tmp_path / "train" / c / f"{i}.png" for c in "abc" for i in range(10)]
    from PIL import Image

    images = np.stack([np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in order])
    labels = np.repeat(np.arange(3), 10)
    assert len(x_all) == 30
    tests = {}
    for split_seed in (0, 4):
        _, te = train_test_split(np.arange(30), test_size=0.3, stratify=labels, random_state=split_seed)
        for seed in (0, 1):
            dm = load(tmp_path, test_fraction=0.3, val_fraction=0.0, split_seed=split_seed, seed=seed)
            assert np.array_equal(dm.x["test"].numpy(), images[te]), (split_seed, seed)
            assert np.array_equal(dm.y["test"].numpy(), labels[te])
            tests[split_seed] = dm.x["test"].numpy()
    assert not np.array_equal(tests[0], tests[4])


def test_a_class_whose_name_begins_with_another_class_name_is_read_whole(tmp_path):
    """Class folders `cat` and `cats`: `cats` lies beside `cat`, not inside it, so none of its images is
    skipped as reached twice (a path test by string prefix would skip them all)."""
    write_images(tmp_path, "train", {"cat": 6, "cats": 6})
    write_images(tmp_path, "test", {"cat": 2, "cats": 2}, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing reported
        dm = load(tmp_path, val_fraction=0.0)
    assert dm.classes == ["cat", "cats"]
    assert np.bincount(dm.y["train"].numpy()).tolist() == [6, 6] and np.bincount(dm.y["test"].numpy()).tolist() == [
        2,
        2,
    ]


@pytest.mark.parametrize("empty", ["a", "c"])
def test_a_class_without_any_image_is_named_first_or_last_in_the_class_list(empty):
    """A class of the class list with no image at all (its folder is empty, or all its images were left out
    as unreadable) cannot be split: refused naming that class, wherever it stands in the list."""
    classes = ["a", "b", "c"]
    y = np.repeat([i for i, c in enumerate(classes) if c != empty], 4)
    with pytest.raises(DataError, match=rf"^class {empty} has 0 images: holding out data.test_fraction=0.25"):
        stratified_split(y, 0.25, 0, "test", "test_fraction", classes)
