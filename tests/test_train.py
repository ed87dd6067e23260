"""End-to-end runs of the real configs, shrunk where the point is not the result itself."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from binary_encoding.model.heads import Head
from binary_encoding.record import csv_log, summarize
from binary_encoding.run.policy import ConfigError
from binary_encoding.train import train

REPO = Path(__file__).resolve().parent.parent


def run_cli(cwd, *args, timeout=120):
    """`python -m binary_encoding.train ARGS` in `cwd`, its output captured."""
    cmd = [sys.executable, "-m", "binary_encoding.train", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_default_digits_run_shows_binary_codes(cfg_factory, tmp_path):
    """The README's default run, unchanged (150 epochs of binenc on digits): the classes collapse
    onto one binary code each."""
    s = train(cfg_factory())
    assert s["epochs"] == 150 and s["gamma"] == pytest.approx(10.0)
    assert s["top_codes_fraction"] >= 0.99, s
    assert s["agreement_dim"] >= 0.99 and s["agreement_code"] >= 0.99, s
    assert s["test_acc"] >= 0.95, s
    assert s["nc1"] < 0.05, s
    assert json.loads((tmp_path / "summary.json").read_text())["test_acc"] == s["test_acc"]
    rows = read_csv(tmp_path / "metrics.csv")
    assert len(rows) == 150 and [int(r["epoch"]) for r in rows] == list(range(150))
    assert {"train/ce", "train/quad", "gamma", "val/acc"} <= set(rows[0])
    assert all(float(r["train/images"]) == 1293 for r in rows)  # every training image once per epoch
    assert float(rows[0]["gamma"]) == pytest.approx(0.01) and float(rows[-1]["gamma"]) == pytest.approx(10.0)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() and (tmp_path / "config.yaml").exists()


def test_the_reference_protocol_trains_on_every_non_test_image_and_reports_the_reference_auroc(
    cfg_factory, tmp_path, capsys
):
    """protocol=reference on digits: no validation split (all 1797 - 360 test = 1437 images train, no
    val metrics, no val_acc), the reference's AUROC estimator in the summary, and test accuracy as the
    value a sweeper sees."""
    from binary_encoding.train import objective

    s = train(cfg_factory("protocol=reference", "trainer.max_epochs=2", "deepfool_samples=0"))
    rows = read_csv(tmp_path / "metrics.csv")
    assert [float(r["train/images"]) for r in rows] == [1437.0, 1437.0]
    assert not [k for k in rows[0] if k.startswith("val")] and "val_acc" not in s
    written = json.loads((tmp_path / "summary.json").read_text())
    assert (
        0.5 < written["mahalanobis_auroc_ref"] <= 1.01
        and written["mahalanobis_auroc_ref"] == s["mahalanobis_auroc_ref"]
    )
    assert "reference estimator" in capsys.readouterr().out
    assert objective(s) == s["test_acc"] and objective({"val_acc": 0.5, "test_acc": 0.9}) == 0.5
    cfg = OmegaConf.load(tmp_path / "config.yaml")
    assert (cfg.protocol, cfg.metrics.nc_labels, cfg.metrics.train_augmented) == ("reference", "pred", True)


def test_train_metrics_on_the_augmented_view_are_what_evaluate_recomputes(cfg_factory, tmp_path):
    """metrics.train_augmented on augmented (CIFAR-format) data: the saved training latents are those of
    the seeded augmented view, not of the clean images, and `evaluate` recomputes the summary exactly."""
    from synthetic_cifar import write_cifar10

    from binary_encoding.callbacks.latents import collect_latents
    from binary_encoding.evaluate import evaluate_run
    from binary_encoding.run.build import build_datamodule, build_model

    write_cifar10(tmp_path / "data", n_train=300, n_test=100)
    overrides = ["data=cifar10", f"data.root={tmp_path / 'data'}", "metrics.train_augmented=true"]
    s = train(cfg_factory(*overrides, "trainer.max_epochs=1", "deepfool_samples=0", "save_latents=true"))
    cfg = OmegaConf.load(tmp_path / "config.yaml")
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm.input_shape, dm.num_classes)
    model.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    saved = torch.from_numpy(np.load(tmp_path / "latents.npz")["train_z"])
    assert torch.allclose(collect_latents(model, dm, "train", augmented=True).z, saved, atol=1e-5)
    assert not torch.allclose(collect_latents(model, dm, "train").z, saved, atol=1e-2)
    e = evaluate_run(tmp_path)
    assert {k: e[k] for k in s if k not in summarize.SUMMARY_INFO} == {
        k: s[k] for k in s if k not in summarize.SUMMARY_INFO
    }


@pytest.mark.parametrize("head", ["nopen", "linpen", "nonlinpen"])
def test_other_heads_train(cfg_factory, head):
    s = train(cfg_factory(f"head={head}", "trainer.max_epochs=3"))
    assert s["head"] == head and s["gamma"] == 0.0
    assert s["val_acc"] > 0.5  # 3 epochs of an MLP on digits is far above chance (0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graphs_train_like_eager(tmp_path):
    """A digits run with the CUDA-graph training step (the real configs, on the GPU) reaches what the
    same run reaches eagerly: the same epochs and gamma, accuracies within GPU nondeterminism."""
    from conftest import make_cfg

    over = ("trainer.max_epochs=5", "runtime.compile=false", "deepfool_samples=32")
    eager = train(make_cfg(tmp_path / "eager", *over))
    graphed = train(make_cfg(tmp_path / "graphed", *over, "runtime.cuda_graphs=true"))
    assert graphed["epochs"] == eager["epochs"] == 5 and graphed["gamma"] == eager["gamma"]
    for k in ("train_acc", "val_acc", "test_acc"):
        assert graphed[k] == pytest.approx(eager[k], abs=0.03), k
    assert graphed["val_acc"] > 0.8


def test_same_seed_same_numbers(tmp_path):
    from conftest import make_cfg

    a = train(make_cfg(tmp_path / "a", "trainer.max_epochs=2", "seed=0"))
    b = train(make_cfg(tmp_path / "b", "trainer.max_epochs=2", "seed=0"))
    c = train(make_cfg(tmp_path / "c", "trainer.max_epochs=2", "seed=1"))
    keys = ("train_acc", "val_acc", "test_acc", "nc1")
    assert [a[k] for k in keys] == [b[k] for k in keys]
    assert [a[k] for k in keys] != [c[k] for k in keys]


class Crash(L.Callback):
    """Kills the run in the middle of epoch 3, after epochs 0-2 were checkpointed."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 3 and batch_idx == 4:
            raise RuntimeError("simulated crash")


def test_resume_continues_gamma_epoch_and_optimizer(tmp_path):
    from conftest import make_cfg

    over = ("trainer.max_epochs=5", "head.gamma_factor=2.0")
    full = train(make_cfg(tmp_path / "full", *over))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(make_cfg(tmp_path / "cut", *over), callbacks=[Crash()])
    assert not (tmp_path / "cut" / "summary.json").exists()
    ckpt = torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 2 and ckpt["optimizer_states"][0]["state"]  # optimizer moments are saved
    resumed = train(make_cfg(tmp_path / "cut", *over))  # same command again: resumes from last.ckpt
    assert resumed["epochs"] == full["epochs"] == 5
    assert resumed["gamma"] == full["gamma"] == pytest.approx(0.01 * 2**4)
    for k in ("train_acc", "val_acc", "test_acc"):
        assert resumed[k] == pytest.approx(full[k], abs=1e-9), k
    rows = read_csv(tmp_path / "cut" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(5))


@pytest.mark.parametrize(
    "override, message",
    [
        ("lr=0", "lr=0: must be a finite number > 0"),
        ("lr=-1e-3", "lr=-0.001: must be a finite number > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0: must be an integer >= 1"),
        ("head.width=0", "head.width=0: must be an integer >= 1, or null"),
        ("backbone.act=bogus", "backbone.act=bogus: must be silu, relu, gelu or tanh"),
        ("data=imagefolder", "data.root is needed here: add data.root=..."),
        ("runtime.cuda_graphs=maybe", "runtime.cuda_graphs=maybe: must be auto, true or false"),
        ("trainer.precision=16-mixed", "fp16 overflows"),
        ("deepfool_samples=-1", "deepfool_samples=-1: must be an integer >= 0"),
        ("lr=abc", "lr=abc: must be a finite number > 0"),
        ("head.width=2.5", "head.width=2.5: must be an integer >= 1, or null"),
        ("batch_size=1.5", "batch_size=1.5: must be an integer >= 2"),
        ("++trainer.cuda_graphs=true", r"trainer.cuda_graphs moved to runtime.cuda_graphs"),
        ("++trainer.compile=false", r"trainer.compile moved to runtime.compile"),
        ("runtime.sigterm_grace_s=0", "runtime.sigterm_grace_s=0: must be a finite number > 0, or null"),
    ],
)
def test_bad_input_fails_before_training(cfg_factory, tmp_path, override, message):
    from hydra.errors import InstantiationException

    # ConfigError (a ValueError), or the object's own check as Hydra reports it (naming the config key)
    with pytest.raises((ValueError, InstantiationException), match=message):
        train(cfg_factory(override))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("head", ["linpen", "nonlinpen", "nopen"])
def test_a_gamma_override_on_a_head_defined_without_it_is_refused(cfg_factory, head):
    """head=linpen head.gamma0=0.1 would silently train binenc under linpen's name."""
    with pytest.raises(ConfigError, match=f"head={head} trains without the gamma term"):
        train(cfg_factory(f"head={head}", "head.gamma0=0.1"))


def test_cuda_graphs_need_one_gpu(cfg_factory):
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        train(cfg_factory("runtime.cuda_graphs=true", "trainer.accelerator=cpu"))
    if torch.cuda.is_available():
        with pytest.raises(ConfigError, match="for one GPU"):
            train(cfg_factory("runtime.cuda_graphs=true", "trainer=ddp", "trainer.devices=2"))


def test_too_narrow_code_warns(cfg_factory):
    with pytest.warns(UserWarning, match="classes must share codes"):
        train(cfg_factory("head.width=3", "trainer.max_epochs=1"))


def test_non_finite_loss_stops_with_a_message(cfg_factory, tmp_path):
    with pytest.raises(FloatingPointError, match=r"epoch 1, step \d+ \(gamma=inf"):
        train(cfg_factory("trainer.max_epochs=3", "head.gamma0=1e30", "head.gamma_factor=1e10", "head.gamma_max=null"))
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()  # the good epoch's checkpoint is kept


def test_unknown_group_choice_lists_the_options(tmp_path):
    r = run_cli(tmp_path, "head=bogus")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Available options" in r.stderr and "binenc" in r.stderr and "nonlinpen" in r.stderr


# ------------------------------------------------------------------------------------------------
# The configs as an interface: Trainer pass-through, moved keys, presets, a new head, the installed
# package, and evaluate
# ------------------------------------------------------------------------------------------------


def test_every_trainer_argument_passes_through(cfg_factory, tmp_path):
    s = train(cfg_factory("++trainer.limit_train_batches=2", "trainer.max_epochs=1", "deepfool_samples=8"))
    rows = read_csv(tmp_path / "metrics.csv")
    assert s["epochs"] == 1 and [float(r["train/images"]) for r in rows] == [2 * 128]  # 2 batches of 128


def test_an_unknown_trainer_argument_fails_with_lightnings_error(cfg_factory):
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus_arg'"):
        train(cfg_factory("++trainer.bogus_arg=1"))


def test_a_moved_key_on_the_command_line_names_its_new_place(tmp_path):
    r = run_cli(tmp_path, "trainer.cuda_graphs=true")
    assert r.returncode == 2 and r.stderr.strip() == (
        "error: trainer.cuda_graphs moved to runtime.cuda_graphs: write runtime.cuda_graphs=true"
    )


def test_the_entry_point_loads_no_torch_before_hydra_parses():
    """What keeps `--help` and shell completion fast (about 1 s here, against 11 s with torch and
    Lightning at module level): importing the entry point and the config location loads no torch."""
    code = (
        "import sys, binary_encoding.train, binary_encoding.run.policy; "
        "print('torch' in sys.modules, 'lightning' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["False", "False"], r.stderr[-2000:]


def test_debug_fast_runs_one_batch_of_each_split(cfg_factory, tmp_path):
    s = train(cfg_factory("debug=fast"))
    rows = read_csv(tmp_path / "metrics.csv")
    assert s["epochs"] == 1 and [float(r["train/images"]) for r in rows] == [128]
    assert s["deepfool_images"] == 16


def test_debug_overfit_fits_its_few_batches(cfg_factory, tmp_path):
    s = train(cfg_factory("debug=overfit", "trainer.max_epochs=60", "metrics_every=0", "deepfool_samples=0"))
    rows = read_csv(tmp_path / "metrics.csv")
    assert s["epochs"] == 60 and {float(r["train/images"]) for r in rows} == {4 * 128}
    assert float(rows[-1]["train/acc_aug"]) == 1.0 and float(rows[-1]["train/ce"]) < 0.3 < float(rows[0]["train/ce"])
    assert {float(r["gamma"]) for r in rows} == {float(np.float32(0.01))}  # held at gamma0 (a float32 buffer)


class TanhHead(Head):
    """A fifth head, defined outside the package: the README's worked example (tanh penultimate layer)."""

    def __init__(self, in_features: int, num_classes: int, width: int = 4):
        super().__init__()
        self.penultimate = torch.nn.Sequential(torch.nn.Linear(in_features, width), torch.nn.Tanh())
        self._finish(width, num_classes)  # the linear classifier V z + c


def test_a_new_head_needs_only_its_class_and_yaml(tmp_path):
    """The README's example: one class and one yaml in a config folder of one's own (Hydra's search
    path), no edit of the package; it trains, and its latents are bounded by tanh."""
    from conftest import make_cfg

    (tmp_path / "conf" / "head").mkdir(parents=True)
    (tmp_path / "conf" / "head" / "tanhpen.yaml").write_text(
        "name: tanhpen\nwidth: 4\ngamma0: 0.0\ngamma_factor: 1.0\ngamma_step: 1\ngamma_max: null\n"
        "net:\n  _target_: test_train.TanhHead\n  width: ${..width}\n"
    )
    cfg = make_cfg(
        tmp_path / "run",
        "head=tanhpen",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "trainer.max_epochs=2",
        "deepfool_samples=8",
        "save_latents=true",
    )
    s = train(cfg)
    assert s["head"] == "tanhpen" and s["epochs"] == 2 and s["val_acc"] > 0.3
    z = np.load(tmp_path / "run" / "latents.npz")["train_z"]
    assert z.shape[1] == 4 and np.abs(z).max() < 1


def test_evaluate_reproduces_the_summary_from_the_checkpoint(cfg_factory, tmp_path):
    from binary_encoding.evaluate import main as evaluate_main

    s = train(cfg_factory("trainer.max_epochs=3", "deepfool_samples=64"))
    evaluate_main([str(tmp_path)])  # the run folder
    e = json.loads((tmp_path / "eval.json").read_text())
    metrics = [k for k in s if k not in summarize.SUMMARY_INFO]
    assert len(metrics) > 30 and {k: e[k] for k in metrics} == {k: s[k] for k in metrics}
    assert e["epoch"] == 2 and e["checkpoint"].endswith("last.ckpt")


def test_evaluate_finds_every_run_of_a_sweep_folder(tmp_path, capsys):
    from binary_encoding.evaluate import find_runs

    for name in ("a", "b"):
        (tmp_path / "sweep" / name / "checkpoints").mkdir(parents=True)
        (tmp_path / "sweep" / name / "config.yaml").write_text("seed: 0\n")
        (tmp_path / "sweep" / name / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / "sweep" / "unfinished").mkdir()
    (tmp_path / "sweep" / "unfinished" / "config.yaml").write_text("seed: 0\n")  # no checkpoint: not a run
    assert find_runs([str(tmp_path / "sweep")]) == [tmp_path / "sweep" / "a", tmp_path / "sweep" / "b"]


def test_the_installed_package_carries_its_configs(tmp_path):
    """pip install (not editable) into a folder, then a 1-epoch digits job from an unrelated folder:
    the configs come from the installed package data, not from this checkout."""
    site, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (site / "binary_encoding" / "conf" / "config.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "offline"}
    where = subprocess.run(
        [sys.executable, "-c", "import binary_encoding.run.conf as c; print(c.__file__, c.CONF_DIR)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.stdout.split() == [
        str(site / "binary_encoding" / "run" / "conf.py"),
        str(site / "binary_encoding" / "conf"),
    ]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "binary_encoding.train",
            "trainer.max_epochs=1",
            "logger=csv",
            "deepfool_samples=8",
            "trainer.enable_progress_bar=false",
            "output_dir=run",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    s = json.loads((work / "run" / "summary.json").read_text())
    assert s["data"] == "digits" and s["epochs"] == 1 and 0 < s["test_acc"] <= 1


def test_a_resumed_record_replaces_the_rows_from_the_resume_epoch_on(tmp_path):
    """A run cut off after writing epochs 0-5 and resumed from the checkpoint of epoch 2: the record
    keeps epochs 0-2 of the first attempt and takes epochs 3.. from the new one (no stale row stays)."""
    first = csv_log.LocalRecord(tmp_path)
    for epoch in range(6):
        first.log_metrics({"epoch": epoch, "train/loss": 10.0 + epoch, "old_only": 1.0}, step=epoch * 10)
    resumed = csv_log.LocalRecord(tmp_path)  # a new process
    resumed.log_metrics({"epoch": 3, "train/loss": 0.5}, step=31)
    resumed.log_metrics({"epoch": 4, "train/loss": 0.25}, step=41)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert [float(r["train/loss"]) for r in rows] == [10.0, 11.0, 12.0, 0.5, 0.25]
    assert [r["old_only"] for r in rows] == ["1.0", "1.0", "1.0", "", ""]  # nothing of the old epochs 3-5 left
    assert [int(r["step"]) for r in rows] == [0, 10, 20, 31, 41]


# ------------------------------------------------------------------------------------------------
# Stops from outside: SIGTERM, Ctrl-C, kill -9, and resuming
# ------------------------------------------------------------------------------------------------


def _start(procs, tmp_path, out, *args):
    cmd = [
        sys.executable,
        "-m",
        "binary_encoding.train",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"output_dir={out}",
        *args,
    ]
    return procs.start(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(proc, out, epochs: int, timeout: float = 240):
    import time

    start = time.time()
    while time.time() - start < timeout:
        rows = read_csv(out / "metrics.csv") if (out / "metrics.csv").exists() else []
        if len(rows) >= epochs and (out / "checkpoints" / "last.ckpt").exists():
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    raise TimeoutError


@pytest.mark.parametrize(
    "sig, code, word",
    # SIGINT goes through the same handler as SIGTERM: slow, to keep the default suite within its time
    [(15, 143, "terminated"), pytest.param(2, 130, "interrupted", marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_stopped_job_exits_nonzero_says_how_to_resume_and_resumes(procs, tmp_path, sig, code, word):
    """SIGTERM (a cluster's stop) exits 143 and Ctrl-C 130, never 0 (a sweep must not take the job
    for finished); one line says where it stopped and the exact command that resumes it; failed.json
    records it; that command then resumes from the checkpoint and finishes."""
    out = tmp_path / "run"
    proc = _start(procs, tmp_path, out, "trainer.max_epochs=300", "deepfool_samples=8")
    _wait_for_epochs(proc, out, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-3000:]
    line = next(ln for ln in err.splitlines() if ln.startswith(f"{word} at epoch"))
    assert "resume with: python -m binary_encoding.train " in line and f"output_dir={out}" in line
    assert word in json.loads((out / "failed.json").read_text())["error"]
    assert not (out / "summary.json").exists() and (out / "checkpoints" / "last.ckpt").exists()
    epochs_before = len(read_csv(out / "metrics.csv"))
    cmd = line.split("resume with: ", 1)[1].split(" (from ")[0].split()
    done = procs.run(
        [sys.executable, *cmd[1:3], *cmd[3:], "trainer.max_epochs=" + str(epochs_before + 1)], cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["epochs"] == epochs_before + 1
    assert not (out / "failed.json").exists()
    log = (out / "train.log").read_text()  # both attempts log into the run's folder
    assert "epoch 1/300 " in log and f"epoch {epochs_before + 1}/{epochs_before + 1} " in log


@pytest.mark.slow  # 2 conv runs of 6 epochs; the digits kill tests (test_epoch_commit.py) guard the default suite
def test_a_killed_run_resumes_to_exactly_the_numbers_of_an_uninterrupted_run(procs, tmp_path):
    """kill -9 in the middle of a CIFAR-shaped run with augmentation (conv backbone), in its third epoch
    (placed by a callback, `kill_points.py`), then the same run again: it ends with exactly the numbers and
    record of a run never interrupted (the augmentation's random numbers depend on seed, epoch and rank only;
    the optimizer, gamma and the record resume from the checkpoint)."""
    from synthetic_cifar import write_cifar10
    from test_epoch_commit import kill_and_compare

    write_cifar10(tmp_path / "data", n_train=600, n_test=200)
    args = [
        "trainer.max_epochs=6",
        "data=cifar10",
        f"data.root={tmp_path / 'data'}",
        "backbone=resnet18",
        "backbone.width=4",
        "deepfool_samples=8",
    ]
    kill_and_compare(procs, tmp_path, args, [[["train_batch", 2]]], timeout=1800)


def test_a_diverged_run_is_flagged(cfg_factory, capsys):
    """lr=100 ends at chance level: the summary says `diverged` and the printed summary says so loudly,
    naming the learning rate (its latents exploded, they did not collapse); a working run is not flagged."""
    s = train(cfg_factory("lr=100", "trainer.max_epochs=3", "deepfool_samples=0", "metrics_every=0"))
    assert s["train_acc"] < 0.2 and s["diverged"] is True and s["train_abs_z"] > 1
    assert "DIVERGED" in (out := capsys.readouterr().out) and "(lower the learning rate)" in out
    assert summarize.diverged(float("nan"), 10) is False and summarize.diverged(None, 10) is False


def test_latents_collapsed_by_a_large_gamma_are_flagged_with_the_gamma_cap_as_the_cause(cfg_factory, tmp_path, capsys):
    """gamma x10 per epoch up to 1000 on digits: the quadratic term pulls z to zero and the classifier to
    chance; the summary holds the training split's majority share (what `diverged` compares with) and
    mean |z|, and the DIVERGED line names the gamma cap."""
    s = train(
        cfg_factory(
            "head.gamma_factor=10", "head.gamma_max=1000", "trainer.max_epochs=8", "deepfool_samples=0",
            "metrics_every=0", "save_latents=true",
        )
    )  # fmt: skip
    lat = np.load(tmp_path / "latents.npz")
    y = lat["train_y"]
    assert s["train_majority"] == pytest.approx(np.bincount(y).max() / len(y), abs=1e-12)
    assert s["train_abs_z"] == pytest.approx(float(np.abs(lat["train_z"].astype(np.float64)).mean()), rel=1e-5)
    assert s["gamma"] == 1000 and s["train_abs_z"] < 0.05 and s["diverged"] is True
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("DIVERGED"))
    assert line.endswith(f"(latents collapsed to |z| ~ {s['train_abs_z']:.2g} under gamma 1000: lower head.gamma_max)")


@pytest.mark.parametrize(
    "num_classes, majority, at, above",
    [
        (10, None, 0.18, 0.20),  # balanced: the line is 0.1 + 0.1 * 0.9 = 0.19
        (10, 0.3, 0.36, 0.38),  # one class holds 30%: 0.3 + 0.07 = 0.37
        (3, None, 0.39, 0.41),  # 1/3 + 0.1 * 2/3 = 0.4
        (3, 0.5, 0.54, 0.56),  # 0.5 + 0.05 = 0.55
        (2, None, 0.54, 0.56),  # 0.5 + 0.05 = 0.55
        (2, 0.5, 0.54, 0.56),
        (2, 0.9, 0.905, 0.915),  # 90% against 10%: 0.9 + 0.01 = 0.91
    ],
)
def test_diverged_means_at_chance_level_for_every_class_count(num_classes, majority, at, above):
    """Diverged: the training accuracy closes less than a tenth of the gap from the majority share (always
    answering the most common class) to 1, so a two-class run at 95% is no longer flagged."""
    assert summarize.diverged(at, num_classes, majority) is True
    assert summarize.diverged(above, num_classes, majority) is False
    assert summarize.diverged(majority or 1 / num_classes, num_classes, majority) is True  # a constant answer
    assert summarize.diverged(0.95, num_classes, majority) is False
    assert summarize.diverged(0.95, 2) is False  # was True: 0.95 < 2 / 2


def test_the_diverged_hint_names_what_the_summary_shows():
    """Collapsed latents (mean |z| below 0.05) under a gamma of 1 or more: the gamma cap; anything else,
    a small gamma too, or a summary without mean |z| (older runs): the learning rate."""
    hint = summarize.diverged_hint
    assert (
        hint({"train_abs_z": 0.003, "gamma": 1000.0})
        == "latents collapsed to |z| ~ 0.003 under gamma 1000: lower head.gamma_max"
    )
    assert hint({"train_abs_z": 0.049, "gamma": 1.0}).startswith("latents collapsed to |z| ~ 0.049 under gamma 1:")
    assert hint({"train_abs_z": 0.051, "gamma": 1000.0}) == "lower the learning rate"
    assert hint({"train_abs_z": 0.003, "gamma": 0.5}) == "lower the learning rate"  # too small to collapse them
    assert hint({"train_abs_z": 423.0, "gamma": 0.01}) == "lower the learning rate"  # lr=100: exploded
    assert hint({"gamma": 1000.0}) == "lower the learning rate"
    s = {"data": "d", "backbone": "b", "head": "binenc", "seed": 0, "lr": 1e-3, "epochs": 60, "fit_seconds": 1.0,
         "train_acc": 0.11, "n_codes": 3, "top_codes_fraction": 1.0, "agreement_dim": 0.5, "agreement_code": 0.2,
         "nc1": 2.0, "gamma": 1000.0, "mahalanobis_auroc": 0.5, "msp_auroc": 0.5, "diverged": True,
         "train_abs_z": 0.003}  # fmt: skip
    assert "(latents collapsed to |z| ~ 0.003 under gamma 1000: lower head.gamma_max)" in summarize.format_summary(
        s, "x"
    )


def test_resuming_with_other_settings_is_refused_unless_forced(cfg_factory, tmp_path):
    """A cut-off run resumed with another lr and head would continue the old optimizer under the new
    names: refused, naming the keys. Extending max_epochs is allowed; resume=force continues with the
    new settings (the optimizer then really uses the new lr)."""
    train(cfg_factory("trainer.max_epochs=2", "deepfool_samples=0"))
    (tmp_path / "summary.json").unlink()  # as if cut off after its last checkpoint
    with pytest.raises(
        ConfigError, match=r"\(head.gamma0: 0.01 -> 0.0; .*head.name: 'binenc' -> 'linpen'; lr: 0.001 -> 0.1\)"
    ):
        train(cfg_factory("lr=0.1", "head=linpen", "trainer.max_epochs=2"))
    assert not (tmp_path / "summary.json").exists()
    s = train(cfg_factory("trainer.max_epochs=3", "deepfool_samples=0"))
    assert s["epochs"] == 3 and s["lr"] == 0.001
    (tmp_path / "summary.json").unlink()

    seen = []

    class Lr(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    s = train(cfg_factory("trainer.max_epochs=4", "lr=0.1", "resume=force", "deepfool_samples=0"), callbacks=[Lr()])
    assert s["epochs"] == 4 and s["lr"] == 0.1 and seen == [0.1]


def test_a_config_error_is_one_line_and_exit_code_2(tmp_path):
    r = run_cli(tmp_path, "lr=abc")
    assert r.returncode == 2 and r.stderr.strip() == "error: lr=abc: must be a finite number > 0"


def test_a_missing_launcher_plugin_says_what_to_install(monkeypatch):
    import importlib.util

    from binary_encoding.run.policy import missing_launcher_message

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n.startswith("hydra_plugins") else real(n, *a)
    )
    assert 'pip install "binary_encoding[slurm]"' in missing_launcher_message(["hydra/launcher=slurm", "lr=1"])
    assert 'pip install "binary_encoding[ray]"' in missing_launcher_message(["hydra/launcher=ray_gpu_packed"])
    assert missing_launcher_message(["lr=1"]) is None


def test_gamma0_above_gamma_max_warns():
    from binary_encoding.callbacks.gamma import GammaScheduler

    with pytest.warns(UserWarning, match="gamma stays at 1.0 throughout"):
        assert GammaScheduler(5.0, 1.1, gamma_max=1.0).value(0) == 1.0


def _image_folder(root, classes, n=6, broken=None):
    from PIL import Image

    for c in classes:
        (root / "train" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), (40 * i) % 256, np.uint8)).save(root / "train" / c / f"{i}.png")
    if broken:
        path = root / "train" / classes[0] / "0.png"
        path.write_bytes(path.read_bytes()[:40])  # truncated
        return path


def test_a_one_class_data_set_is_refused_before_training(cfg_factory, tmp_path):
    _image_folder(tmp_path / "images", ["only"])
    with pytest.raises(ConfigError, match="has 1 class: a classifier needs at least 2"):
        train(cfg_factory("data=imagefolder", f"data.root={tmp_path / 'images'}", "data.val_fraction=0.2"))
    assert not (tmp_path / "checkpoints").exists()


def test_an_unreadable_image_is_named(cfg_factory, tmp_path):
    path = _image_folder(tmp_path / "images", ["a", "b"], broken=True)
    with pytest.raises(ValueError, match=f"cannot read image {path}"):
        train(cfg_factory("data=imagefolder", f"data.root={tmp_path / 'images'}"))


def test_a_corrupt_checkpoint_names_its_path_and_the_way_out(cfg_factory, tmp_path):
    train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0"))
    (tmp_path / "summary.json").unlink()
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # cut off while written
    with pytest.raises(ConfigError, match=f"{ckpt} is not a readable checkpoint.*resume=false"):
        train(cfg_factory("trainer.max_epochs=2", "deepfool_samples=0"))
    assert train(cfg_factory("trainer.max_epochs=1", "deepfool_samples=0", "resume=false"))["epochs"] == 1


def test_a_path_override_does_not_nest_the_job_folder(tmp_path):
    """`data.root=/some/path` in a sweep: the job folders name the path by its base name and a hash of
    the whole path (a path would become nested folders)."""
    from binary_encoding.record.identity import short_path

    _image_folder(tmp_path / "images", ["a", "b"], n=8)
    r = run_cli(
        tmp_path,
        "-m",
        "data=imagefolder",
        f"data.root={tmp_path / 'images'}",
        "lr=0.01,0.02",
        "trainer.max_epochs=1",
        "deepfool_samples=0",
        "logger=csv",
        "name=p",
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(p.name for p in (tmp_path / "multirun" / "p").iterdir() if p.is_dir())
    root = f"data.root={short_path(str(tmp_path / 'images'))}"
    assert root.startswith("data.root=images-") and len(root) == len("data.root=images-") + 8
    assert jobs == [
        f"{root},data=imagefolder,deepfool_samples=0,lr=0.01,trainer.max_epochs=1",
        f"{root},data=imagefolder,deepfool_samples=0,lr=0.02,trainer.max_epochs=1",
    ], jobs
