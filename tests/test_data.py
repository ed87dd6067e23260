import pickle

import numpy as np
import pytest
import torch
from conftest import make_cfg

from binary_encoding.data.augment import augment_batch
from binary_encoding.data.cifar import CIFARDataModule
from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.data.imagefolder import ImageFolderDataModule
from binary_encoding.data.sampler import BatchIndexSampler


def write_fake_cifar10(root, n_per_batch=20, n_test=30, seed=0):
    """A tiny CIFAR-10 copy in torchvision's on-disk format (python pickles)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [*[(f"data_batch_{i}", n_per_batch) for i in range(1, 6)], ("test_batch", n_test)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return folder


def test_fake_cifar10_loads_without_network(tmp_path, monkeypatch):
    folder = write_fake_cifar10(tmp_path)
    import socket

    def no_network(*a, **k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    dm = CIFARDataModule("cifar10", root=str(tmp_path), val_fraction=0.1, augment=True)
    dm.prepare_data()
    dm.setup()
    assert dm.input_shape == (3, 32, 32) and dm.num_classes == 10
    assert len(dm.y["train"]) + len(dm.y["val"]) == 100 and len(dm.y["test"]) == 30
    # pixels are the CHW reshape of the stored rows
    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f)["data"]
    assert torch.equal(dm.x["test"][3], torch.from_numpy(raw[3].reshape(3, 32, 32)))


def test_missing_cifar_without_download_says_where(tmp_path):
    dm = CIFARDataModule("cifar100", root=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        dm.prepare_data()


def test_digits_splits_are_stratified_disjoint_and_normalized():
    dm = DigitsDataModule(val_fraction=0.1, test_fraction=0.2, split_seed=0)
    dm.setup()
    n = {s: len(dm.y[s]) for s in ("train", "val", "test")}
    assert sum(n.values()) == 1797 and n["test"] == 360 and n["val"] == 144
    from sklearn.datasets import load_digits

    digits = load_digits()
    total = np.bincount(digits.target, minlength=10)
    held = {"test": total, "val": total - np.bincount(dm.y["test"].numpy(), minlength=10)}
    for s, frac in (("val", 0.1), ("test", 0.2)):  # every class in proportion (stratified): within 1
        counts = np.bincount(dm.y[s].numpy(), minlength=10)
        assert np.all(np.abs(counts - frac * held[s]) <= 1), (s, counts, frac * held[s])

    # disjoint and complete: the three splits hold every (image, label) of the data set exactly once
    def rows(x, y):
        return sorted(map(tuple, np.column_stack([x.reshape(len(y), -1), y]).tolist()))

    ours = sum((rows(dm.x[s].numpy(), dm.y[s].numpy()) for s in ("train", "val", "test")), [])
    assert sorted(ours) == rows(digits.images.astype(np.uint8), digits.target)
    dm2 = DigitsDataModule(val_fraction=0.1, test_fraction=0.2, split_seed=0)
    dm2.setup()
    assert torch.equal(dm.x["val"], dm2.x["val"])  # seeded: same split every time
    # normalised with the mean and std of the training split only (one channel)
    train = dm.x["train"].numpy().astype(np.float64)
    assert dm.mean.item() == pytest.approx(train.mean(), rel=1e-6)
    # the sample std (ddof 1): ddof 0 differs by 6e-6 relative on these 83k pixels, above float32's 6e-8
    assert dm.std.item() == pytest.approx(train.std(ddof=1), rel=1e-6)
    assert dm.std.item() != pytest.approx(train.std(ddof=0), rel=1e-6)
    assert abs(dm.mean.item() - digits.images.mean()) > 1e-3  # ... which is not the mean of all images
    xn = dm.normalize(dm.x["test"][:5])
    np.testing.assert_allclose(
        xn.numpy(), (dm.x["test"][:5].numpy() - train.mean()) / train.std(), rtol=1e-4, atol=1e-5
    )


def test_batch_sampler_shards_cover_everything_once():
    n = 103
    # evaluation: rank shards are disjoint, unpadded, and cover the split
    seen = torch.cat([torch.cat(list(BatchIndexSampler(n, 10, shuffle=False, rank=r, world=3))) for r in range(3)])
    assert sorted(seen.tolist()) == list(range(n))
    # training: same number of steps on each rank, disjoint, epoch-dependent and seeded
    shards = []
    for r in range(2):
        s = BatchIndexSampler(n, 16, shuffle=True, seed=1, rank=r, world=2)
        s.set_epoch(4)
        shards.append(torch.cat(list(s)))
        assert len(list(s)) == len(s)
    assert len(shards[0]) == len(shards[1]) == 51
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
    s = BatchIndexSampler(n, 16, shuffle=True, seed=1)
    s.set_epoch(0)
    a = torch.cat(list(s))
    s.set_epoch(1)
    assert not torch.equal(a, torch.cat(list(s)))


@pytest.mark.parametrize(
    "n, shuffle, train, sizes",
    [
        (65, True, True, [32, 32]),
        (65, False, True, [32, 32]),  # data.shuffle=false trains in a fixed order: still no 1-image batch
        (65, False, False, [32, 32, 1]),
        (66, True, True, [32, 32, 2]),
    ],
)
def test_a_sampler_counts_the_batches_it_yields_and_a_training_batch_of_one_is_skipped(n, shuffle, train, sizes):
    """Lightning takes an epoch's length from `len(sampler)`: a training epoch of 65 images in batches of 32
    has 2 batches (the 1-image tail breaks BatchNorm and is skipped), shuffled or not; an evaluation pass 3."""
    s = BatchIndexSampler(n, 32, shuffle=shuffle, seed=0, train=train)
    assert [len(b) for b in s] == sizes and len(s) == len(sizes)


def test_a_training_batch_of_one_per_rank_counts_as_no_batch_and_the_job_says_why(tmp_path, monkeypatch):
    """batch_size=3 on 2 ranks is 1 image per rank: every training batch would be skipped, so the sampler
    counts 0 (Lightning would otherwise plan 50 steps and make none), and the data check refuses the job
    naming the batch per device; 4 on 2 ranks trains."""
    from binary_encoding.run import settings
    from binary_encoding.run.policy import ConfigError

    assert [len(BatchIndexSampler(100, 1, shuffle=True, train=True, rank=r, world=2)) for r in range(2)] == [0, 0]
    assert list(BatchIndexSampler(100, 1, shuffle=True, train=True)) == []
    assert len(BatchIndexSampler(100, 1, shuffle=False, train=False)) == 100  # evaluation: one image a batch
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = make_cfg(tmp_path, "batch_size=3")
    dm = DigitsDataModule(batch_size=3)
    dm.setup()
    with pytest.raises(ConfigError, match=r"batch_size=3 \(1 per device on 2 devices\), "):
        settings.check_data(cfg, dm)
    cfg.batch_size = dm.batch_size = 4
    settings.check_data(cfg, dm)
    assert len(dm.train_dataloader()) == len(dm.y["train"]) // 2 // 2


def test_unshuffled_training_shards_give_every_rank_the_same_steps_in_a_fixed_order():
    """DDP with data.shuffle=false: 103 samples on 2 ranks are 51 each (the last one left out, as when
    shuffled), rank r takes every second sample from r, and the order is the same every epoch."""
    shards = [BatchIndexSampler(103, 16, shuffle=False, train=True, rank=r, world=2) for r in range(2)]
    for r, s in enumerate(shards):
        first = torch.cat(list(s))
        s.set_epoch(3)
        assert first.tolist() == list(range(r, 102, 2)) and torch.equal(first, torch.cat(list(s)))
        assert len(list(s)) == len(s) == 4


def test_augmentation_matches_torchvision_statistics():
    """Crop offsets uniform on [0, 2*pad]^2 with zero fill, flips with p=1/2, as torchvision's
    RandomCrop(32, padding=4) + RandomHorizontalFlip()."""
    from torchvision.transforms import v2

    torch.manual_seed(0)
    n, pad = 4000, 4
    # each image is a unique ramp so the crop offset and flip can be read back from the output
    base = (torch.arange(32)[None, :] + 40 * torch.arange(32)[:, None]).float() + 1  # >0 everywhere
    x = base.expand(n, 1, 32, 32).clone()
    ours = augment_batch(x, pad, flip=True)
    tv = v2.Compose([v2.RandomCrop(32, padding=pad), v2.RandomHorizontalFlip()])
    theirs = torch.stack([tv(x[i]) for i in range(n)])

    def decode(out):
        flipped = out[:, 0, 16, 20] < out[:, 0, 16, 19]  # the ramp decreases left to right once flipped
        unflipped = torch.where(flipped[:, None, None, None], out.flip(3), out)
        # zero-filled rows/columns of the crop, and the centre pixel (which encodes the offset exactly)
        rows_zero = (unflipped[:, 0, :, 16] == 0).sum(1)
        cols_zero = (unflipped[:, 0, 16, :] == 0).sum(1)
        first = unflipped[:, 0, 16, 16]
        return flipped.float(), rows_zero, cols_zero, first

    for stat_ours, stat_tv in zip(decode(ours), decode(theirs)):
        assert abs(stat_ours.float().mean() - stat_tv.float().mean()) < 0.1 * (stat_tv.float().std() + 0.05)
    f, rz, cz, first = decode(ours)
    assert abs(f.mean().item() - 0.5) < 0.03
    # zero rows come from offsets 0..3 (top) or 5..8 (bottom): P(k zero rows) = 2/9 for k=1..4, 1/9 for 0
    freq = torch.bincount(rz, minlength=5)[:5].float() / n
    assert torch.allclose(freq, torch.tensor([1 / 9, 2 / 9, 2 / 9, 2 / 9, 2 / 9]), atol=0.03)
    # center pixel value tells the offset exactly: uniform over 9 x 9 offsets
    assert len(torch.unique(first)) == 81
    # the content is preserved: every output is the (flipped) window of the zero-padded input at the
    # offset its centre pixel encodes
    assert ours.shape == x.shape and ours.dtype == x.dtype
    padded = torch.nn.functional.pad(base, (pad, pad, pad, pad))
    unflipped = torch.where(f.bool()[:, None, None, None], ours.flip(3), ours)
    dx = (first.long() - 1) % 40 - (16 - pad)
    dy = (first.long() - 1) // 40 - (16 - pad)
    for oy, ox in {(int(a), int(b)) for a, b in zip(dy, dx)}:
        sel = (dy == oy) & (dx == ox)
        assert torch.equal(unflipped[sel, 0], padded[oy : oy + 32, ox : ox + 32].expand(int(sel.sum()), 32, 32))


def test_imagefolder_loads_and_holds_out_test(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "eel"):
        (tmp_path / "train" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "train" / c / f"{i}.png")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=16, test_fraction=0.2, val_fraction=0.2)
    dm.setup()
    assert dm.input_shape == (3, 16, 16) and dm.num_classes == 3 and dm.classes == ["cat", "dog", "eel"]
    assert len(dm.y["test"]) == 6 and len(dm.y["val"]) + len(dm.y["train"]) == 24
    train = dm.x["train"].numpy().astype(np.float64)  # per channel over the training split
    np.testing.assert_allclose(dm.mean.numpy(), train.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(dm.std.numpy(), train.std(axis=(0, 2, 3)), rtol=1e-3)
    with pytest.raises(FileNotFoundError, match="train"):
        ImageFolderDataModule(root=str(tmp_path / "train" / "cat")).setup()


def test_data_too_large_for_the_gpu_stays_in_host_memory(monkeypatch):
    """device_resident=auto keeps the splits on the host, with one warning, when they take more than
    half of the GPU's free memory (the model and the metric passes need the rest)."""
    from types import SimpleNamespace

    from binary_encoding.data.base import fits_on_device

    dm = DigitsDataModule()
    dm.setup()
    nbytes = sum(v.numel() for v in dm.x.values())  # uint8: 1797 images of 64 pixels
    assert nbytes == 1797 * 64
    assert fits_on_device(nbytes, 2 * nbytes) and not fits_on_device(nbytes, 2 * nbytes - 1)
    gpu = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    dm.trainer = gpu
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (nbytes, 4 * nbytes))  # free, total
    with pytest.warns(UserWarning, match="data kept in host memory"):
        assert dm._place() is False
    assert all(v.device.type == "cpu" for v in dm.x.values())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not once per loader
        assert dm._place() is False


def test_val_fraction_0_trains_on_every_non_test_image_without_a_validation_split():
    dm = DigitsDataModule(val_fraction=0, test_fraction=0.2, split_seed=0)
    dm.setup()
    assert dm.splits == ("train", "test") and len(dm.y["train"]) == 1797 - 360
    assert dm.val_dataloader() == []  # Lightning then runs no validation loop
    with pytest.raises(ValueError, match="has \\('train', 'test'\\)"):
        dm.eval_dataloader("val")
    xf = dm.x["train"].float()  # normalization statistics over all of them
    assert torch.allclose(dm.mean, xf.mean(dim=(0, 2, 3))) and torch.allclose(dm.std, xf.std(dim=(0, 2, 3)))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="val_fraction must be in \\[0, 1\\)"):
            DigitsDataModule(val_fraction=bad)


def _view(dm, split="train"):
    return torch.cat([x for x, _ in dm.eval_dataloader(split, augmented=True)])


def test_augmented_view_is_a_seeded_crop_and_flip_of_each_clean_image_whatever_the_batching(tmp_path):
    """Each image of the view is the clean image padded by 4 zero pixels, cropped back to 32x32 at some
    offset and perhaps flipped (searched over all 162 choices here); the same seed gives the same view
    for any evaluation batch size, another seed another view; the labels stay in dataset order."""
    write_fake_cifar10(tmp_path)

    def module(seed, eval_batch_size):
        dm = CIFARDataModule("cifar10", root=str(tmp_path), augment=True, seed=seed, eval_batch_size=eval_batch_size)
        dm.setup()
        return dm

    dm = module(0, 1024)
    view = _view(dm)
    clean = dm.x["train"]
    assert torch.equal(view, _view(module(0, 7))) and not torch.equal(view, _view(module(1, 1024)))
    assert torch.equal(torch.cat([y for _, y in dm.eval_dataloader("train", augmented=True)]), dm.y["train"])
    moved = 0
    for img, aug in zip(clean.numpy(), view.numpy()):
        padded = np.pad(img, ((0, 0), (4, 4), (4, 4)))
        options = [padded[:, oy : oy + 32, ox : ox + 32] for oy in range(9) for ox in range(9)]
        options += [o[:, :, ::-1] for o in options]
        assert any(np.array_equal(aug, o) for o in options)
        moved += not np.array_equal(aug, img)
    assert moved > 0.9 * len(clean)  # (4, 4) without a flip keeps an image: 1 choice in 162


def test_augmented_view_of_a_data_set_without_augmentation_is_the_clean_split():
    dm = DigitsDataModule()
    dm.setup()
    assert torch.equal(_view(dm), dm.x["train"])


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_is_read_as_torchvision_reads_it_with_the_fine_labels_of_cifar100(tmp_path, name):
    """Files in torchvision's layout (written here, small): the data module's train and test images and
    labels equal torchvision's CIFAR10/CIFAR100 datasets on the same files; CIFAR-100's labels are its
    100 fine labels, not the 20 coarse ones stored beside them."""
    import pickle

    from torchvision import datasets

    rng = np.random.default_rng(0)
    folder = tmp_path / {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}[name]
    folder.mkdir()
    files = {"cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]), "cifar100": (["train"], ["test"])}
    for f in sum(files[name], []):
        n = 12
        row = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        if name == "cifar10":
            row["labels"] = rng.integers(0, 10, n).tolist()
        else:
            row["fine_labels"], row["coarse_labels"] = (
                rng.integers(20, 100, n).tolist(),
                rng.integers(0, 20, n).tolist(),
            )
        (folder / f).write_bytes(pickle.dumps(row))

    tv = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    ours = CIFARDataModule(name, root=str(tmp_path), download=False).load()
    for train, (x, y) in ((True, ours[:2]), (False, ours[2:])):
        # no md5 checks of these files, and no class names needed
        unchecked = type("Unchecked", (tv,), {"_check_integrity": lambda self: True, "_load_meta": lambda self: None})
        ref = unchecked(str(tmp_path), train=train)
        assert np.array_equal(x, ref.data.transpose(0, 3, 1, 2)) and y.tolist() == ref.targets
    if name == "cifar100":
        assert ours[1].min() >= 20  # the fine labels of this fixture: 20..99
