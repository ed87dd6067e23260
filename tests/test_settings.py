"""Every setting is declared once (run/settings.py) and checked before anything trains: each key of every
config group choice has exactly one declaration, each declaration refuses a bad value in one line that
names the key, the value and what is allowed (exit 2 on the command line, no folder written), and what
only the data shows (no training batch, a split that cannot be made, no optimizer step) fails in one
line too, without a summary."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from binary_encoding.run import policy, settings
from binary_encoding.run.conf import CONF_DIR
from binary_encoding.run.policy import ConfigError
from binary_encoding.train import train

# every choice of every config group that adds or sets keys (hydra/launcher presets configure Hydra only)
CHOICES = {
    group: sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))
    for group in ("data", "backbone", "head", "trainer", "runtime", "callbacks", "protocol", "logger", "debug")
}
CHOICES["experiment"] = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))


@cache
def config(choice: str):
    """The composed config of one `group=choice` beside the defaults (imagefolder given a root)."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("config", overrides=[choice, *(["data.root=/tmp"] if choice == "data=imagefolder" else [])])


def flat(node, prefix="") -> list[str]:
    """The dotted keys of `node`'s leaves (an empty mapping, such as data.generator, is a leaf)."""
    keys = []
    for k in node.keys():
        child = node._get_node(k)
        if OmegaConf.is_dict(child) and len(child) and not child._is_interpolation():
            keys += flat(child, f"{prefix}{k}.")
        elif not (OmegaConf.is_dict(child) and f"{prefix}{k}" in CHOICES):  # an empty group (logger=csv)
            keys.append(f"{prefix}{k}")
    return keys


def every_choice() -> list[str]:
    return [f"{group}={c}" for group, cs in CHOICES.items() for c in cs]


@cache
def keys_by_choice() -> dict[str, str]:
    """Each key of the configs, with one choice whose composed config has it."""
    found = {}
    for choice in every_choice():
        for key in flat(config(choice)):
            found.setdefault(key, choice)
    return found


def test_every_key_of_every_config_choice_has_exactly_one_declaration():
    keys = keys_by_choice()
    undeclared = sorted(k for k in keys if k not in settings.SETTINGS and not settings.is_wiring(k))
    assert not undeclared, f"keys of conf/ without a declaration in run/settings.py SETTINGS: {undeclared}"
    both = sorted(k for k in settings.SETTINGS if settings.is_wiring(k))
    assert not both, f"declared as settings and as wiring: {both}"
    assert not settings.SETTINGS.keys() - keys, "declarations of keys that no config has"
    assert all(s.doc and "\n" not in s.doc for s in settings.SETTINGS.values())  # one line each


@pytest.mark.parametrize("choice", every_choice())
def test_every_config_choice_passes_its_own_check(choice):
    settings.check(config(choice))


def bad_values(s: settings.Setting) -> list:
    """Values that `s` must refuse: of the wrong type, non-finite, just outside its range or choices."""
    out = [] if s.null else [None]
    if s.kind == "choice":
        # equal to a true/false/0/1 option but of the other kind: `resume=0` would resume, `data.channels=true`
        twins = [int(o) if isinstance(o, bool) else bool(o) for o in s.options() if isinstance(o, int) and o in (0, 1)]
        return [*out, "bogus", 2.5, *twins]
    if s.kind in ("int", "number"):
        out += ["abc", True] + ([2.5] if s.kind == "int" else [math.nan, math.inf])
        step = 1 if s.kind == "int" else 1e-9
        for bound, value in ((s.ge, (s.ge or 0) - step), (s.gt, s.gt), (s.le, (s.le or 0) + step), (s.lt, s.lt)):
            if bound is not None:
                out.append(int(value) if s.kind == "int" and float(value).is_integer() else value)
        if s.odd:
            out.append(4)
        return out
    return (
        out
        + {
            "bool": ["maybe", 1],
            "text": [5, ["a"]],
            "ints": [[], [0], ["a"], 3],
            "texts": [["bogus"] if s.options() else [1], "train"],
            "mapping": ["x", [1]],
            "limit": [-1, 1.5, "all", math.nan],
            "devices": [0, -2, "all", [], [-1], 1.5, True, -1.0, 2.0],
        }[s.kind]
    )


@pytest.mark.parametrize("key", sorted(settings.SETTINGS))
def test_each_declaration_refuses_a_bad_value_in_one_line(key):
    s = settings.SETTINGS[key]
    values = bad_values(s)
    assert values, f"{key}: no value it would refuse"
    for value in values:
        cfg = copy.deepcopy(config(keys_by_choice()[key]))
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=False, force_add=True)
        with pytest.raises(ConfigError) as err:
            policy.validate(cfg)
        msg = str(err.value)
        assert msg == f"{key}={settings.show(value)}: must be {s.allowed()}", (value, msg)
        assert "\n" not in msg


def test_a_value_on_each_bound_and_each_choice_is_accepted():
    for key, s in settings.SETTINGS.items():
        options = [list(s.options())] if s.kind == "texts" else s.options()  # a list of them
        bounds = [[b] if s.kind == "ints" else b for b in (s.ge, s.le) if b is not None]  # of each item
        inside = [*options, *s.also, *bounds]
        assert not [v for v in inside if s.problem(v)], key
    limit = settings.SETTINGS["trainer.limit_train_batches"]  # Lightning's: a fraction in [0, 1] or a count
    assert not [v for v in (0.0, 0.5, 1.0, 0, 1, 7) if limit.problem(v)]
    assert not [d for d in (1, 2, -1, "auto", [0], [0, 1]) if settings.SETTINGS["trainer.devices"].problem(d)]
    assert not settings.SETTINGS["head.width"].problem(None)  # nopen's
    assert settings.SETTINGS["data.val_fraction"].problem(1) and not settings.SETTINGS["data.val_fraction"].problem(0)


def test_a_value_of_another_group_is_not_checked_where_the_group_lacks_the_key(cfg_factory):
    """backbone.kernel belongs to resnet1d: the MLP has none, and a user's own head or backbone may bring
    keys that no declaration knows (docs/extending.md)."""
    cfg = cfg_factory()
    with open_dict(cfg):
        cfg.head.alpha = "anything"
    settings.check(cfg)


@pytest.mark.parametrize(
    "override, message",
    [
        ("head=nopen head.width=3", "head.width=3: head=nopen has no latent layer, its width is null"),
        ("head.width=null", "head.width=null: head=binenc needs a latent width, an integer >= 1"),
    ],
)
def test_a_head_width_that_does_not_fit_the_head_is_refused(cfg_factory, override, message):
    with pytest.raises(ConfigError) as err:
        policy.validate(cfg_factory(*override.split()))
    assert str(err.value) == message


# ------------------------------------------------------------------------------------------------
# The command line: one line, exit 2, nothing written
# ------------------------------------------------------------------------------------------------

BAD = {
    "head.width=0": "head.width=0: must be an integer >= 1, or null",
    "head.gamma0=-1": "head.gamma0=-1: must be a finite number >= 0",
    "deepfool_samples=-5": "deepfool_samples=-5: must be an integer >= 0",
    "metrics_every=-1": "metrics_every=-1: must be an integer >= 0",
    "data.val_fraction=1.0": "data.val_fraction=1.0: must be a finite number >= 0 and < 1",
    "metrics.nc_labels=foo": "metrics.nc_labels=foo: must be labels or pred",
    "metrics.mahalanobis_reg=-1": "metrics.mahalanobis_reg=-1: must be a finite number >= 0",
    "batch_size=1": "batch_size=1: must be an integer >= 2",
}


# the console entry point `main()` called once per command line, in one fresh interpreter (each process
# would spend its seconds importing torch); what it prints to stderr and its exit code, per command line
ONE_INTERPRETER = """
import contextlib, io, json, sys
from binary_encoding.train import main
results = []
for arg in sys.argv[1:]:
    sys.argv, err = ["train", arg, "logger=csv"], io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
    results.append((code, err.getvalue()))
print(json.dumps(results))
"""


def test_bad_settings_on_the_command_line_fail_in_one_line_and_write_no_folder(tmp_path):
    r = subprocess.run(
        [sys.executable, "-c", ONE_INTERPRETER, *BAD], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    for (arg, message), (code, err) in zip(BAD.items(), json.loads(r.stdout.splitlines()[-1]), strict=True):
        assert (code, err) == (2, f"error: {message}\n"), arg
    assert list(tmp_path.iterdir()) == []  # no outputs/ folder: nothing started


@pytest.mark.slow  # a training job; the fast suite has test_sweep.py's failed job (lr=-1, the same check)
def test_a_bad_setting_in_a_sweep_is_that_jobs_failed_json_and_the_other_job_runs(tmp_path):
    args = ["-m", "head.width=0,4", "trainer.max_epochs=1", "deepfool_samples=0", "metrics_every=0", "name=s"]
    r = subprocess.run(
        [sys.executable, "-m", "binary_encoding.train", *args, "logger=csv", "trainer.enable_progress_bar=false"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    sweep = tmp_path / "multirun" / "s"
    bad, good = (sweep / f"deepfool_samples=0,head.width={w},metrics_every=0,trainer.max_epochs=1" for w in (0, 4))
    failed = json.loads((bad / "failed.json").read_text())
    assert failed["error"] == "ConfigError: head.width=0: must be an integer >= 1, or null", r.stderr[-3000:]
    assert not (bad / "config.yaml").exists() and not (bad / "checkpoints").exists()  # refused before it started
    assert json.loads((good / "summary.json").read_text())["epochs"] == 1


# ------------------------------------------------------------------------------------------------
# What only the data shows, and a fit without an optimizer step
# ------------------------------------------------------------------------------------------------


def test_a_split_that_cannot_be_stratified_is_refused_in_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "binary_encoding.train", "data.val_fraction=0.001", f"output_dir={tmp_path}"]
        + ["logger=csv", "trainer.max_epochs=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    message = (
        "data.val_fraction=0.001 of 1437 images leaves 2 held out for 10 classes: the validation split needs one "
        "image of each class on both sides; add images, or change data.val_fraction (0: no validation split)"
    )
    assert (r.returncode, r.stderr.strip()) == (2, f"error: {message}"), r.stderr[-3000:]
    assert json.loads((tmp_path / "failed.json").read_text())["error"] == f"ConfigError: {message}"
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "checkpoints").exists()


def test_a_class_with_one_sample_cannot_be_split():
    import numpy as np

    from binary_encoding.data.split import DataError, stratified_split

    y = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(DataError, match=r"^class 2 has 1 image: holding out data.test_fraction=0.5 of each class"):
        stratified_split(y, 0.5, 0, "test", "test_fraction")
    rest, out = stratified_split(y[:6], 0.5, 0, "test", "test_fraction")
    assert len(out) == 3 and set(y[rest]) == set(y[out]) == {0, 1}


def test_an_epoch_without_a_training_batch_is_refused_before_training(cfg_factory, tmp_path):
    with pytest.raises(ConfigError) as err:
        train(cfg_factory("++trainer.limit_train_batches=0", "trainer.max_epochs=1"))
    assert str(err.value) == (
        "no training batch: 1293 training samples, batch_size=128, trainer.limit_train_batches=0 "
        "(a 1-sample batch is skipped): no optimizer step would run"
    )
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "checkpoints").exists()


def test_a_split_without_a_class_is_refused_before_training(cfg_factory):
    """Every class needs samples in every split (the metric passes and the class Gaussians are per class)."""
    from binary_encoding.run.build import build_datamodule

    cfg = cfg_factory()
    dm = build_datamodule(cfg)
    settings.check_data(cfg, dm)  # the default splits hold every class
    keep = dm.y["val"] != 3
    dm.x["val"], dm.y["val"] = dm.x["val"][keep], dm.y["val"][keep]
    with pytest.raises(ConfigError) as err:
        settings.check_data(cfg, dm)
    assert str(err.value) == (
        f"the val split of digits ({int(keep.sum())} samples) has no sample of class 3: every class needs "
        "samples in every split (data.val_fraction=0.1)"
    )


def test_a_run_without_an_optimizer_step_is_never_finished(tmp_path):
    """trainer.max_steps=0 (passed to Lightning as it is) trains nothing: one line, exit 2, no summary,
    and failed.json says why."""
    r = subprocess.run(
        [sys.executable, "-m", "binary_encoding.train", "++trainer.max_steps=0", f"output_dir={tmp_path}"]
        + ["logger=csv", "trainer.max_epochs=2", "deepfool_samples=0", "trainer.enable_progress_bar=false"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    message = (
        "no optimizer step in 0 epoch(s) (11 training batches per epoch): nothing was trained, no summary is "
        "written; check batch_size, trainer.limit_train_batches and the training split"
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1] == f"error: {message}", r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "summary.json").exists()
    assert json.loads((tmp_path / "failed.json").read_text())["error"] == f"NotTrained: {message}"


@pytest.mark.parametrize("key", ["seed", "data.split_seed"])
def test_the_largest_seed_accepted_is_the_largest_numpy_and_sklearn_take(key):
    """A seed the check lets through must seed numpy and scikit-learn (the split): 2**32 - 1 does,
    2**32 makes both raise, so the check refuses it before a folder is made."""
    import numpy as np
    from sklearn.utils import check_random_state

    s = settings.SETTINGS[key]
    top = s.le
    np.random.seed(top), check_random_state(top)
    for seeder in (np.random.seed, check_random_state):
        with pytest.raises(ValueError):
            seeder(top + 1)
    assert not s.problem(top) and s.problem(top + 1) and s.problem(-1)


# ------------------------------------------------------------------------------------------------
# What each declaration allows, written out: the checks above read the bounds from the declarations
# themselves, so a wrong bound or choice there (ge=1 for ge=2, a choice dropped) would pass them
# ------------------------------------------------------------------------------------------------

ALLOWED = {
    "seed": "an integer in 0..4294967295",
    "lr": "a finite number > 0",
    "weight_decay": "a finite number >= 0",
    "batch_size": "an integer >= 2",  # a 1-sample batch is skipped (BatchNorm)
    "name": "a text",
    "output_dir": "a text, or null",
    "run_name": "a text, or null",
    "group": "a text, or null",
    "resume": "true, false or force",
    "ckpt_path": "a text, or null",
    "metrics_every": "an integer >= 0",  # 0 = never
    "deepfool_samples": "an integer >= 0",  # 0 = skip
    "save_latents": "true or false",
    "protocol": "default or reference",
    "metrics.splits": "a list of texts among train, val",
    "metrics.nc_labels": "labels or pred",
    "metrics.global_mean": "samples or class_means",
    "metrics.train_augmented": "true or false",
    "metrics.hist_dims": "an integer >= 0",
    "metrics.hist_every": "an integer >= 0",  # 0 = last epoch only
    "metrics.deepfool_candidates": "an integer >= 2, or null",  # the predicted class and at least one other
    "metrics.deepfool_overshoot": "a finite number >= 0",
    "metrics.deepfool_max_iter": "an integer >= 1",
    "metrics.deepfool_batch": "an integer >= 1",
    "metrics.mahalanobis_reg": "a finite number >= 0",
    "data.name": "a text",
    "data.root": "a text",
    "data.download": "true or false",
    "data.val_fraction": "a finite number >= 0 and < 1",  # 0 = no validation split
    "data.test_fraction": "a finite number > 0 and < 1",
    "data.split_seed": "an integer in 0..4294967295",
    "data.augment": "true or false",
    "data.pad": "an integer >= 0",
    "data.flip": "true or false",
    "data.eval_batch_size": "an integer >= 1",
    "data.device_resident": "auto, true or false",
    "data.image_size": "an integer >= 1",
    "data.channels": "1 or 3",
    "data.shuffle": "true or false",
    "data.skip_unreadable": "true or false",
    "data.generator": "a mapping of names to values",
    "backbone.name": "a text",
    "backbone.act": "silu, relu, gelu or tanh",
    "backbone.hidden": "a non-empty list of integers >= 1",
    "backbone.block": "basic or bottleneck",
    "backbone.layers": "a non-empty list of integers >= 1",
    "backbone.width": "an integer >= 1",
    "backbone.channels": "an integer >= 1",
    "backbone.kernel": "an odd integer >= 1",  # "same" padding keeps the length
    "head.name": "a text",
    "head.width": "an integer >= 1, or null",
    "head.gamma0": "a finite number >= 0",
    "head.gamma_factor": "a finite number > 0",
    "head.gamma_step": "an integer >= 1",
    "head.gamma_max": "a finite number >= 0, or null",
    "trainer.accelerator": "a text",
    "trainer.devices": "an integer >= 1, -1, auto, or a non-empty list of device indices >= 0",
    "trainer.strategy": "a text",
    "trainer.precision": (
        "auto, 32-true, bf16-mixed, bf16-true, 16-mixed, 16-true, 64-true, transformer-engine, 32, bf16, 16 or 64"
    ),
    "trainer.max_epochs": "an integer >= 1",
    "trainer.check_val_every_n_epoch": "an integer >= 1, or null",
    "trainer.log_every_n_steps": "an integer >= 1",
    "trainer.enable_progress_bar": "auto, true or false",
    "trainer.deterministic": "true, false or warn",
    "trainer.sync_batchnorm": "auto, true or false",
    "trainer.limit_train_batches": "an integer count of batches >= 0 or a fraction in 0..1",
    "trainer.limit_val_batches": "an integer count of batches >= 0 or a fraction in 0..1",
    "trainer.limit_test_batches": "an integer count of batches >= 0 or a fraction in 0..1",
    "trainer.num_sanity_val_steps": "an integer >= -1",  # Lightning's -1: all
    "runtime.compile": "auto, true or false",
    "runtime.compile_mode": "default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs, or null",
    "runtime.cuda_graphs": "auto, true or false",
    "runtime.cudnn_benchmark": "auto, true or false",
    "runtime.channels_last": "auto, true or false",
    "runtime.check_finite_every": "auto or an integer >= 1",
    "runtime.sigterm_grace_s": "a finite number > 0, or null",
    "runtime.checkpoint_every_n_epochs": "an integer >= 1",
    "runtime.threads": "auto or an integer >= 1, or null",
    "logger.project": "a text",
    "logger.entity": "a text, or null",
    "logger.mode": "auto, online, offline or disabled",
    "logger.tags": "a list of texts",
    "logger.job_type": "a text",
    "logger.init_timeout": "a finite number > 0",
}


@pytest.mark.parametrize("key", sorted(ALLOWED))
def test_each_setting_allows_the_values_its_meaning_allows(key):
    assert settings.SETTINGS[key].allowed() == ALLOWED[key]


def test_the_precisions_accepted_are_those_lightning_takes():
    """Parity with Lightning, where the value goes: every precision but `auto` is one of its inputs
    (lightning.fabric.connector._PRECISION_INPUT), and the only ones of its inputs missing here are fp16."""
    import typing

    from lightning.fabric.connector import _PRECISION_INPUT

    def literals(t):
        return [v for a in typing.get_args(t) for v in (literals(a) if typing.get_args(a) else [a])]

    ours = [p for p in settings.PRECISIONS if p != "auto"]
    assert set(ours) <= set(literals(_PRECISION_INPUT))
    assert set(literals(_PRECISION_INPUT)) - set(ours) <= {"transformer-engine-float16"}  # fp16: gamma overflows


# ------------------------------------------------------------------------------------------------
# The checks of policy.validate that no single value shows, and what `auto` means on a GPU
# ------------------------------------------------------------------------------------------------


def _with(choice: str, **values):
    """A copy of config(choice) with dotted keys set (`trainer__precision=16` sets trainer.precision)."""
    cfg = copy.deepcopy(config(choice))
    with open_dict(cfg):
        for key, value in values.items():
            OmegaConf.update(cfg, key.replace("__", "."), value, merge=False, force_add=True)
    return cfg


@pytest.mark.parametrize("precision", [16, "16", "16-mixed", "16-true"])
def test_every_fp16_precision_is_refused_with_gamma_and_accepted_without(precision):
    """fp16 overflows at 65,504 and binenc's gamma grows past it; a head without gamma (gamma0 = 0) may use it."""
    with pytest.raises(ConfigError, match=f"^trainer.precision={precision}: fp16 overflows at 65,504"):
        policy.validate(_with("head=binenc", trainer__precision=precision))
    policy.validate(_with("head=linpen", trainer__precision=precision))
    policy.validate(_with("head=binenc", trainer__precision="bf16-mixed"))


def test_nonlinpen_needs_a_latent_width_like_linpen():
    for head in ("linpen", "nonlinpen"):
        with pytest.raises(ConfigError) as err:
            policy.validate(_with(f"head={head}", head__width=None))
        assert str(err.value) == f"head.width=null: head={head} needs a latent width, an integer >= 1"


def test_each_switch_that_left_trainer_for_runtime_is_named_with_its_new_place():
    """README: a project switch given under `trainer` stops at once with a message naming its new key (on the
    command line and in a config that reaches validate)."""
    moved = ["compile", "compile_mode", "cuda_graphs", "cudnn_benchmark", "channels_last", "check_finite_every"]
    moved += ["checkpoint_every_n_epochs", "threads", "sigterm_grace_s"]
    assert sorted(policy.MOVED) == sorted(f"trainer.{k}" for k in moved)
    runtime = OmegaConf.load(Path(CONF_DIR) / "runtime" / "default.yaml")
    assert sorted(moved) == sorted(runtime)  # every project switch of runtime/, none forgotten
    for k in moved:
        assert policy.moved_key_message([f"trainer.{k}=1"]) == f"trainer.{k} moved to runtime.{k}: write runtime.{k}=1"
        for value in (1, None):  # null too: a config file's `trainer.{k}: null` would reach Lightning
            with pytest.raises(ConfigError, match=f"^trainer.{k} moved to runtime.{k}$"):
                policy.validate(_with("head=binenc", **{f"trainer__{k}": value}))


def test_cuda_graphs_are_refused_for_a_ddp_job_on_gpus_and_kept_for_one_gpu(monkeypatch):
    monkeypatch.setattr(policy, "on_gpu", lambda cfg: True)
    one = _with("head=binenc", runtime__cuda_graphs=True)
    policy.validate(one)
    assert policy.cuda_graphs(one)
    two = _with("trainer=ddp", runtime__cuda_graphs=True)
    with pytest.raises(ConfigError, match=r"^runtime.cuda_graphs=true is for one GPU; DDP jobs \(trainer.devices"):
        policy.validate(two)


def test_an_imagefolder_root_that_is_no_folder_is_refused(tmp_path):
    policy.validate(_with("data=imagefolder", data__root=str(tmp_path)))
    with pytest.raises(ConfigError) as err:
        policy.validate(_with("data=imagefolder", data__root=str(tmp_path / "missing")))
    assert str(err.value) == f"data=imagefolder needs data.root=DIR, an existing folder; got '{tmp_path / 'missing'}'"


@pytest.mark.parametrize("cuda", [True, False])
def test_a_job_is_on_a_gpu_when_cuda_is_there_and_the_accelerator_allows_it(monkeypatch, cuda):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    for accelerator, gpu in (("auto", True), ("gpu", True), ("cuda", True), ("cpu", False), ("mps", False)):
        assert policy.on_gpu(_with("head=binenc", trainer__accelerator=accelerator)) is (cuda and gpu), accelerator


@pytest.mark.parametrize(
    "strategy, devices, gpus, expected",
    [
        ("auto", 1, 0, 1),
        ("ddp", 3, 0, 3),
        ("ddp_find_unused_parameters_true", 2, 0, 2),
        ("ddp", [0, 2], 0, 2),  # which devices: as many processes
        ("ddp_spawn", 4, 0, 1),  # starts its own processes
        ("fsdp", 4, 0, 1),
        ("ddp", -1, 0, 1),  # all devices of a CPU job: one process
        ("ddp", "auto", 0, 1),
        ("ddp", -1, 4, 4),  # all GPUs
        ("ddp", "auto", 4, 4),
    ],
)
def test_the_processes_of_a_job_follow_lightnings_strategy_and_devices(monkeypatch, strategy, devices, gpus, expected):
    import torch

    monkeypatch.setattr(policy, "on_gpu", lambda cfg: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    cfg = _with("head=binenc", trainer__strategy=strategy, trainer__devices=devices)
    assert policy.num_devices(cfg) == expected


def test_auto_precision_is_bf16_mixed_only_on_a_gpu_that_has_bf16(monkeypatch):
    import torch

    for bf16 in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        assert policy.resolve_precision("auto", gpu=True) == ("bf16-mixed" if bf16 else "32-true")
        assert policy.resolve_precision("auto", gpu=False) == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert policy.resolve_precision("auto") == "32-true"
    assert policy.resolve_precision(32) == "32" and policy.resolve_precision("64-true", gpu=True) == "64-true"


@pytest.mark.parametrize("gpu", [True, False])
def test_each_auto_switch_is_on_on_one_gpu_and_off_on_a_cpu(monkeypatch, gpu):
    """conf/runtime/default.yaml: compile, cuDNN autotuning (unless deterministic) and the CUDA graph (one
    GPU, no DDP) on GPUs; an explicit value is kept; trainer_kwargs hands Lightning the resolved values, with
    its distributed sampler and model summary off unless asked for."""
    monkeypatch.setattr(policy, "on_gpu", lambda cfg: gpu)
    cfg = _with("trainer=ddp", trainer__devices=1)
    assert (policy.compile_backbone(cfg), policy.cudnn_benchmark(cfg), policy.cuda_graphs(cfg)) == (gpu, gpu, gpu)
    assert policy.cudnn_benchmark(_with("head=binenc", trainer__deterministic=True)) is False
    assert policy.cuda_graphs(_with("trainer=ddp")) is False  # two devices
    off = _with("head=binenc", runtime__compile=False, runtime__cudnn_benchmark=False, runtime__cuda_graphs=False)
    on = _with("head=binenc", runtime__compile=True, runtime__cudnn_benchmark=True, runtime__cuda_graphs=True)
    assert (policy.compile_backbone(off), policy.cudnn_benchmark(off), policy.cuda_graphs(off)) == (False,) * 3
    assert (policy.compile_backbone(on), policy.cudnn_benchmark(on), policy.cuda_graphs(on)) == (True,) * 3
    kw = policy.trainer_kwargs(cfg)
    assert (kw["sync_batchnorm"], kw["benchmark"], kw["strategy"]) == (gpu, gpu, "ddp")
    assert (kw["use_distributed_sampler"], kw["enable_model_summary"]) == (False, False)
    asked = policy.trainer_kwargs(_with("head=binenc", trainer__enable_model_summary=True, trainer__benchmark=True))
    assert (asked["enable_model_summary"], asked["benchmark"]) == (True, True)  # a ++trainer.NAME wins


def test_the_sigterm_grace_of_a_config_made_before_the_key_existed_is_60_s():
    """docs/job_folders.md: 60 s; null: no watchdog."""
    cfg = _with("head=binenc")
    assert policy.sigterm_grace_s(cfg) == 60
    with open_dict(cfg):
        del cfg.runtime["sigterm_grace_s"]
    assert policy.sigterm_grace_s(cfg) == 60
    assert policy.sigterm_grace_s(_with("head=binenc", runtime__sigterm_grace_s=None)) is None


# ------------------------------------------------------------------------------------------------
# check_data and check_trained on stand-ins of a data module and a trainer (known answers, no data read)
# ------------------------------------------------------------------------------------------------


def _data(labels: dict, num_classes: int, batches: int = 11):
    import torch

    return SimpleNamespace(
        num_classes=num_classes,
        splits=tuple(labels),
        y={k: torch.tensor(v) for k, v in labels.items()},
        train_dataloader=lambda: range(batches),
    )


def _cfg(limit=None):
    return OmegaConf.create(
        {"data": {"name": "toy", "val_fraction": 0.1}, "batch_size": 8, "trainer": {"limit_train_batches": limit}}
    )


def test_a_split_without_the_last_class_is_refused():
    """The class counts run over every class (bincount's minlength): the last one missing is seen too."""
    settings.check_data(_cfg(), _data({"train": [0, 1, 2, 2], "val": [0, 1, 2]}, 3))
    with pytest.raises(ConfigError, match=r"^the val split of toy \(2 samples\) has no sample of class 2: "):
        settings.check_data(_cfg(), _data({"train": [0, 1, 2, 2], "val": [0, 1]}, 3))


@pytest.mark.parametrize("missing, named", [(5, "1, 2, 3, 4, 5:"), (6, "1, 2, 3, 4, 5 ...:")])
def test_the_missing_classes_are_named_up_to_five(missing, named):
    with pytest.raises(ConfigError, match=f"has no sample of class {re.escape(named)} every class needs"):
        settings.check_data(_cfg(), _data({"train": list(range(7)), "val": [0] + list(range(missing + 1, 7))}, 7))


def test_a_data_set_needs_two_classes():
    settings.check_data(_cfg(), _data({"train": [0, 1]}, 2))
    with pytest.raises(ConfigError, match="^the data set toy has 1 class: a classifier needs at least 2$"):
        settings.check_data(_cfg(), _data({"train": [0, 0]}, 1))


@pytest.mark.parametrize("limit, trains", [(None, True), (3, True), (50, True), (0.1, True), (0.05, False), (0, False)])
def test_a_batch_limit_that_leaves_no_training_batch_is_refused_as_lightning_counts_it(limit, trains):
    """Lightning takes int(batches * fraction) of a fraction (11 x 0.05 = 0.55: none) and min(batches, count)."""
    dm = _data({"train": [0, 1]}, 2, batches=11)
    if trains:
        settings.check_data(_cfg(limit), dm)
    else:
        with pytest.raises(ConfigError, match="^no training batch: 2 training samples, batch_size=8"):
            settings.check_data(_cfg(limit), dm)


def test_one_optimizer_step_is_a_trained_run_and_none_is_not():
    settings.check_trained(SimpleNamespace(global_step=1, current_epoch=1, num_training_batches=1))
    with pytest.raises(settings.NotTrained, match=r"^no optimizer step in 2 epoch\(s\) \(0 training batches"):
        settings.check_trained(SimpleNamespace(global_step=0, current_epoch=2, num_training_batches=0))


def test_a_value_is_shown_as_it_is_written_on_the_command_line():
    assert [settings.show(v) for v in (None, True, False, 1.0, 2.5, "x", [1, "a", None])] == (
        ["null", "true", "false", "1.0", "2.5", "x", "[1,a,null]"]
    )
    assert settings.show({"a": 1, "b": [True]}) == "{a:1,b:[true]}"
