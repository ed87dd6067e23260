"""The data pipeline seen from the model: which images reach it in a real fit (augmented or clean), which
seeds choose the splits, the batch order and the augmentation draws; and the records built on them (the
summary's checkpoint and diverged flag, a quota error, the report's means over seeds). Each property is
checked against the seeds and data it names, on sklearn's digits or small synthetic images."""

from __future__ import annotations

import errno
import json

import lightning as L
import numpy as np
import pytest
import torch
from conftest import make_cfg
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from binary_encoding.data.digits import DigitsDataModule
from binary_encoding.record import files, summarize
from binary_encoding.run.build import build_datamodule
from binary_encoding.train import train

# digits with the training augmentation switched on: 1-pixel crops and flips of the 8x8 images
AUGMENTED = ("data.augment=true", "data.pad=1", "data.flip=true")
QUICK = ("trainer.max_epochs=2", "deepfool_samples=0", "data.eval_batch_size=100", "+trainer.num_sanity_val_steps=2")


class Recorder(L.Callback):
    """Every input that reaches the model's forward during a fit, labelled by where it came from: the
    Lightning loops (`loop:train`, `loop:val`) or the metric passes over `eval_dataloader(split)`
    (`metrics:<split>`, with the `augmented` flag the pass asked for); and the training split's batch
    indices of every epoch, read from the sampler Lightning iterates."""

    def __init__(self):
        self.seen: list[tuple[str, int, torch.Tensor]] = []
        self.indices: dict[int, list[torch.Tensor]] = {}
        self._pass: str | None = None

    def setup(self, trainer, pl_module, stage):
        dm, original = trainer.datamodule, trainer.datamodule.eval_dataloader
        self.dm = dm

        def eval_dataloader(split, augmented=False):
            try:
                for batch in original(split, augmented):
                    self._pass = f"metrics:{split}"
                    yield batch
            finally:
                self._pass = None

        dm.eval_dataloader = eval_dataloader
        pl_module.register_forward_pre_hook(self._forward)

    def _forward(self, module, args):
        t = module.trainer
        where = self._pass or ("loop:train" if module.training else "loop:test" if t.testing else "loop:val")
        self.seen.append((where, t.current_epoch, args[0].detach().clone()))

    def on_train_start(self, trainer, pl_module):
        self.initial = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_epoch_start(self, trainer, pl_module):
        self.indices[trainer.current_epoch] = [i.clone() for i in trainer.train_dataloader.sampler]

    def batches(self, where: str) -> list[torch.Tensor]:
        return [x for w, _, x in self.seen if w == where]


def fit(tmp_path, *overrides) -> Recorder:
    rec = Recorder()
    train(make_cfg(tmp_path, *QUICK, *overrides), callbacks=[rec])
    return rec


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.flatten(1)}


def _blocks(batches, clean: torch.Tensor, size: int):
    """Which block of `size` consecutive images of `clean` each batch is, exactly (None: none)."""
    out = []
    for x in batches:
        starts = [s for s in range(0, len(clean), size) if torch.equal(x, clean[s : s + size])]
        out.append(starts[0] if starts else None)
    return out


def _crops_and_flips(img: np.ndarray, pad: int) -> list[np.ndarray]:
    """Every crop of `img` padded by `pad` zeros at every offset, flipped or not (numpy, the oracle)."""
    c, h, w = img.shape
    padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    options = [padded[:, oy : oy + h, ox : ox + w] for oy in range(2 * pad + 1) for ox in range(2 * pad + 1)]
    return options + [o[:, :, ::-1] for o in options]


@pytest.fixture(scope="module")
def augmented_fit(tmp_path_factory):
    return fit(tmp_path_factory.mktemp("aug"), *AUGMENTED, "metrics_every=1")


def test_evaluation_batches_reach_the_model_clean_during_the_fit_and_after_it_and_training_batches_augmented(
    augmented_fit,
):
    """data.augment=true on digits, 2 epochs, eval batches of 100: every batch of the validation loop
    (sanity check and each epoch) and of the metric passes (each epoch, and the end-of-fit metrics on
    train, val and test) is exactly the normalized clean images of one block of 100 consecutive indices,
    and together they cover their split in order; the training loop's batches are mostly not clean."""
    rec, dm = augmented_fit, augmented_fit.dm
    clean = {s: dm.normalize(dm.x[s]) for s in dm.splits}
    val_loop = rec.batches("loop:val")
    # sanity check (2 batches) + 2 epochs of 2 batches (144 images)
    assert _blocks(val_loop, clean["val"], 100) == [0, 100] * 3
    for split, passes in (("train", 3), ("val", 3), ("test", 1)):  # 2 epochs + the end-of-fit metrics
        seen = rec.batches(f"metrics:{split}")
        starts = list(range(0, len(clean[split]), 100))
        if split != "test":  # the last epoch's train and val latents serve the end-of-fit metrics
            passes -= 1
        assert _blocks(seen, clean[split], 100) == starts * passes, split
    assert not rec.batches("loop:test")  # the test split is read by the metric passes only
    training = torch.cat(rec.batches("loop:train"))
    unchanged = len(_rows(training) & _rows(clean["train"]))
    assert len(training) == 2 * 1293 and unchanged < 0.2 * len(training), unchanged


def test_with_train_augmented_only_the_train_metric_view_is_augmented(tmp_path):
    """metrics.train_augmented=true: the train metric pass reads each training image cropped and flipped
    (one of the 18 numpy crops of its padded image, most of them moved), the same view every epoch; the
    val and test metric passes read the clean images."""
    rec = fit(tmp_path, *AUGMENTED, "metrics_every=1", "metrics.train_augmented=true", "data.eval_batch_size=2000")
    dm = rec.dm
    for split in ("val", "test"):
        (first, *_) = rec.batches(f"metrics:{split}")
        assert torch.equal(first, dm.normalize(dm.x[split])), split
    views = rec.batches("metrics:train")
    assert len(views) == 2 and torch.equal(views[0], views[1])  # epoch 0, epoch 1 (reused at the end)
    moved = 0
    for img, seen in zip(dm.x["train"].numpy(), views[0]):
        options = [dm.normalize(torch.from_numpy(o.copy())[None])[0] for o in _crops_and_flips(img, 1)]
        assert any(torch.equal(seen, o) for o in options)
        moved += not torch.equal(seen, options[4])  # offset (1, 1) without a flip: the clean image
    assert moved > 0.8 * len(views[0]), moved


def _digits_split(split_seed: int, val_fraction=0.1, test_fraction=0.2):
    """The oracle: sklearn's stratified splits of digits, the test split first, then the validation split."""
    d = load_digits()
    x, y = d.images.astype(np.uint8)[:, None], d.target
    tr, te = train_test_split(np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=split_seed)
    rest, va = train_test_split(np.arange(len(tr)), test_size=val_fraction, stratify=y[tr], random_state=split_seed)
    return {"train": x[tr][np.sort(rest)], "val": x[tr][np.sort(va)], "test": x[te]}


@pytest.mark.parametrize("split_seed", [0, 3])
def test_validation_and_test_splits_follow_split_seed_and_not_the_run_seed(tmp_path, split_seed):
    """The data module that a run builds (build_datamodule with seed 0 or 1) holds exactly sklearn's
    stratified splits of `split_seed`; another split_seed gives other validation and test images."""
    expected = _digits_split(split_seed)
    for seed in (0, 1):
        dm = build_datamodule(make_cfg(tmp_path, f"seed={seed}", f"data.split_seed={split_seed}"))
        for s in ("train", "val", "test"):
            assert torch.equal(dm.x[s], torch.from_numpy(expected[s])), (seed, s)
    other = _digits_split(split_seed + 1)
    assert not np.array_equal(other["val"], expected["val"]) and not np.array_equal(other["test"], expected["test"])


def test_the_validation_split_of_a_data_set_with_its_own_test_split_follows_split_seed_only(tmp_path):
    """The base class's validation split (a data set that brings its test split, here 200 synthetic 4x4
    images of 4 classes): sklearn's stratified split with random_state=split_seed, whatever the seed."""

    class Synthetic(DigitsDataModule):
        def load(self):
            rng = np.random.default_rng(0)
            x = rng.integers(0, 256, (240, 1, 4, 4), dtype=np.uint8)
            y = np.arange(240) % 4
            return x[:200], y[:200], x[200:], y[200:]

    x, y = Synthetic().load()[:2]
    for split_seed in (0, 5):
        _, va = train_test_split(np.arange(200), test_size=0.25, stratify=y, random_state=split_seed)
        for seed in (0, 1):
            dm = Synthetic(val_fraction=0.25, split_seed=split_seed, seed=seed)
            dm.setup()
            assert torch.equal(dm.x["val"], torch.from_numpy(x[np.sort(va)])), (split_seed, seed)


@pytest.fixture(scope="module")
def seeded_fits(tmp_path_factory):
    """Two-epoch fits of digits with augmentation: seed 0 twice and seed 1."""
    return {
        name: fit(tmp_path_factory.mktemp(name), f"seed={seed}", *AUGMENTED, "metrics_every=0")
        for name, seed in (("a", 0), ("again", 0), ("b", 1))
    }


def _draws(rec: Recorder, epoch: int) -> np.ndarray:
    """For each training image of `epoch` in batch order, which of the 18 crops and flips (numpy oracle)
    of its clean image reached the model (the first that matches: symmetric images match several)."""
    dm, out = rec.dm, []
    xs = [x for w, e, x in rec.seen if w == "loop:train" and e == epoch]
    for idx, x in zip(rec.indices[epoch], xs, strict=True):
        for img, seen in zip(dm.x["train"][idx].numpy(), x):
            options = torch.stack([torch.from_numpy(o.copy()) for o in _crops_and_flips(img, dm.pad)])
            match = (dm.normalize(options) == seen).flatten(1).all(1).nonzero()
            assert len(match), "a training image that is no crop and flip of its clean image"
            out.append(int(match[0]))
    return np.array(out)


def test_batch_order_and_augmentation_draws_follow_the_seed_and_change_every_epoch(seeded_fits):
    """The indices of every training batch (from the sampler that Lightning iterates) and the crop and
    flip each image got: the same seed repeats both exactly, epoch by epoch; epoch 1 differs from epoch
    0 in both, and seed 1 from seed 0 in both (draws compared position by position in the epoch). The
    initial weights follow the seed too."""
    a, again, b = seeded_fits["a"], seeded_fits["again"], seeded_fits["b"]
    weights = [torch.cat([v.flatten().float() for v in r.initial.values()]) for r in (a, again, b)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])

    def order(rec, epoch):
        return torch.cat(rec.indices[epoch])

    for epoch in (0, 1):
        assert torch.equal(order(a, epoch), order(again, epoch))
        assert np.array_equal(_draws(a, epoch), _draws(again, epoch))
        assert not torch.equal(order(a, epoch), order(b, epoch))
        assert np.mean(_draws(a, epoch) != _draws(b, epoch)) > 0.5
    assert sorted(order(a, 0).tolist()) == list(range(len(a.dm.y["train"])))  # a permutation, every epoch
    assert not torch.equal(order(a, 0), order(a, 1))
    assert np.mean(_draws(a, 0) != _draws(a, 1)) > 0.5


def test_an_epochs_augmentation_draws_do_not_depend_on_the_epochs_drawn_before_it():
    """The generator of epoch 1 in a process that drew epoch 0 first (an uninterrupted run) and in one
    that starts at epoch 1 (a run resumed from epoch 1's checkpoint) draws the same numbers: those of
    (seed, epoch, rank) = (3, 1, 0)."""
    from types import SimpleNamespace

    cpu = torch.device("cpu")
    uninterrupted, resumed = (DigitsDataModule(augment=True, seed=3) for _ in range(2))
    uninterrupted.trainer = SimpleNamespace(current_epoch=0)
    torch.rand(100, generator=uninterrupted.augment_generator(cpu))
    uninterrupted.trainer.current_epoch = 1
    resumed.trainer = SimpleNamespace(current_epoch=1)
    a, b = (torch.rand(100, generator=dm.augment_generator(cpu)) for dm in (uninterrupted, resumed))
    assert torch.equal(a, b)
    key = int(np.random.SeedSequence([3, 1, 0]).generate_state(1)[0])
    assert torch.equal(a, torch.rand(100, generator=torch.Generator().manual_seed(key)))


def test_a_summary_beside_another_runs_checkpoint_does_not_count_and_the_run_finishes_again(tmp_path, capsys):
    """Run A's checkpoint replaced by run B's (same shapes, lr 0.01 instead of 0.002): A's summary no
    longer belongs to the checkpoint beside it, so it is moved aside and the job finishes again; the new
    summary holds the fingerprint of that checkpoint."""
    fast = ("trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0")
    a, b = tmp_path / "a", tmp_path / "b"
    train(make_cfg(a, "lr=0.002", *fast))
    train(make_cfg(b, "lr=0.01", *fast))
    ckpt = files.last_checkpoint(a)
    before = json.loads((a / files.SUMMARY).read_text())
    assert before[summarize.CHECKPOINT_FINGERPRINT] == summarize.checkpoint_fingerprint(ckpt)
    assert summarize.read(a)[0] == before
    ckpt.write_bytes(files.last_checkpoint(b).read_bytes())
    assert summarize.checkpoint_fingerprint(ckpt) != before[summarize.CHECKPOINT_FINGERPRINT]
    summary, why = summarize.read(a)
    assert summary is None and why == (
        f"its {files.SUMMARY} belongs to another checkpoint than {ckpt} (left from an earlier run)"
    )
    capsys.readouterr()
    again = train(make_cfg(a, "lr=0.002", *fast))
    assert f"not finished: {a}: its {files.SUMMARY} belongs to another checkpoint" in capsys.readouterr().out
    assert json.loads((a / files.STALE_SUMMARY).read_text()) == before
    assert again[summarize.CHECKPOINT_FINGERPRINT] == summarize.checkpoint_fingerprint(ckpt)
    assert summarize.read(a)[0] == again


def test_a_checkpoint_fingerprint_follows_the_tensors_not_the_save(tmp_path):
    """The same state saved twice under two names (torch writes a new random serialization id each time)
    has one fingerprint, as a resumed run's last checkpoint has the uninterrupted run's; one changed
    weight gives another."""
    torch.manual_seed(0)
    state = {"state_dict": {"w": torch.randn(4, 3), "b": torch.zeros(3)}, "loops": {"epoch": 2}}
    torch.save(state, tmp_path / "a.ckpt")
    torch.save({**state, "loops": {"epoch": 3}}, tmp_path / "b.ckpt")
    assert (tmp_path / "a.ckpt").read_bytes() != (tmp_path / "b.ckpt").read_bytes()
    fa, fb = (summarize.checkpoint_fingerprint(tmp_path / n) for n in ("a.ckpt", "b.ckpt"))
    assert fa == fb and len(fa) == 16
    state["state_dict"]["w"][0, 0] += 1.0
    torch.save(state, tmp_path / "c.ckpt")
    assert summarize.checkpoint_fingerprint(tmp_path / "c.ckpt") != fa
    assert summarize.checkpoint_fingerprint(tmp_path / "missing.ckpt") is None


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_quota_exceeded_is_a_full_disk_whichever_file_fails(tmp_path, monkeypatch, code):
    """OSError(EDQUOT) injected into the flush of summary.json (in the job's folder) or of a file outside
    it: the same one-line OutputError as ENOSPC, naming the file and the free space, 'not enough'."""
    import os

    from binary_encoding.run import writes

    def full(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "job"
    out.mkdir()
    for path in (out / files.SUMMARY, tmp_path / "elsewhere.json"):
        with pytest.raises(writes.OutputError) as err, writes.output_errors(out):
            files.write_json(path, {"test_acc": 0.5})
        msg = str(err.value)
        assert msg.startswith(f"cannot write {path}: {os.strerror(code)} (") and " free there, not enough); " in msg
        assert msg.endswith(": free space, then rerun the same command to resume") and "\n" not in msg
        assert isinstance(err.value.__cause__, OSError) and err.value.__cause__.errno == code


@pytest.mark.parametrize(
    ("accs", "diverged"),
    [
        ({"train_acc": 0.1, "val_acc": 0.9, "test_acc": 0.9}, True),
        ({"train_acc": 0.9, "val_acc": 0.1, "test_acc": 0.1}, False),
    ],
)
def test_the_summarys_diverged_flag_follows_the_training_accuracy(tmp_path, accs, diverged):
    """Ten balanced classes: training accuracy at chance (0.1) flags the run whatever the validation and
    test accuracies; a learned training split (0.9) does not, even with val and test at chance."""
    cfg = make_cfg(tmp_path)
    s = summarize.run_summary(cfg, 2, 0.01, {**accs, "n_codes": 10}, 1.0, 10)
    assert s["diverged"] is diverged and s["train_acc"] == accs["train_acc"]


def test_a_write_error_outside_the_jobs_folder_is_not_the_folders_and_one_inside_it_is(tmp_path):
    """A permission or read-only error on a file of the data set (outside the job's folder) stays the
    error it is; the same error on a file of the job's folder is the one-line OutputError."""
    import os

    from binary_encoding.run import writes

    out = tmp_path / "job"
    out.mkdir()
    for code in (errno.EACCES, errno.EROFS, errno.EPERM):
        outside = OSError(code, os.strerror(code), str(tmp_path / "data" / "0.png"))
        assert writes.output_error(outside, out) is None
        err = writes.output_error(OSError(code, os.strerror(code), str(out / files.METRICS)), out)
        assert str(err).startswith(f"cannot write {out / files.METRICS}: {os.strerror(code)} (")
        assert "make the folder writable (or use another output_dir)" in str(err) and "not enough" not in str(err)


def test_a_finished_summary_is_returned_unless_a_checkpoint_is_named_or_resume_is_off(tmp_path, capsys):
    """A whole summary in the folder: the job is skipped with it; with ckpt_path=... or resume=false the
    job runs (None), and the summary stays where it is."""
    from binary_encoding.run import job

    files.write_json(tmp_path / files.SUMMARY, {"test_acc": 0.5})
    assert job.finished(make_cfg(tmp_path), tmp_path) == {"test_acc": 0.5}
    assert f"already finished: {tmp_path}" in capsys.readouterr().out
    assert job.finished(make_cfg(tmp_path, "ckpt_path=/x/last.ckpt"), tmp_path) is None
    assert job.finished(make_cfg(tmp_path, "resume=false"), tmp_path) is None
    assert json.loads((tmp_path / files.SUMMARY).read_text()) == {"test_acc": 0.5}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"lr": 0.01, "seed": 0}', "is incomplete"),
        ("[0.9]", "is incomplete"),
        ('{"test_acc": 0.9', "is unreadable (JSONDecodeError; cut off by a crash?)"),
    ],
)
def test_a_summary_without_its_test_accuracy_does_not_count(tmp_path, capsys, text, why):
    """A summary.json that is no object, holds no test_acc, or is cut off is not a finished run: read
    says why, and the job is trained again (the file moved aside)."""
    from binary_encoding.run import job

    (tmp_path / files.SUMMARY).write_text(text)
    assert summarize.read(tmp_path) == (None, f"its {files.SUMMARY} {why}")
    assert job.finished(make_cfg(tmp_path), tmp_path) is None
    assert (tmp_path / files.STALE_SUMMARY).read_text() == text and not (tmp_path / files.SUMMARY).exists()
    assert f"not finished: {tmp_path}: its {files.SUMMARY} {why}" in capsys.readouterr().out


def test_a_resumed_run_may_change_its_epochs_and_metrics_but_not_what_it_trains(tmp_path):
    """Against the config.yaml of a cut-off run (2 epochs): more epochs, other metric settings or another
    logger are no difference; another learning rate or seed is, named with both values."""
    from omegaconf import OmegaConf

    from binary_encoding.run import job

    (tmp_path / files.CONFIG).write_text(OmegaConf.to_yaml(make_cfg(tmp_path, "trainer.max_epochs=2"), resolve=True))
    for same in (("trainer.max_epochs=5",), ("metrics.nc_labels=pred", "metrics_every=3"), ("deepfool_samples=7",)):
        assert job.settings_diff(make_cfg(tmp_path, "trainer.max_epochs=2", *same), tmp_path) is None, same
    assert job.settings_diff(make_cfg(tmp_path, "trainer.max_epochs=2", "lr=0.01"), tmp_path) == "lr: 0.001 -> 0.01"
    assert job.settings_diff(make_cfg(tmp_path, "trainer.max_epochs=9", "seed=4"), tmp_path) == "seed: 0 -> 4"
