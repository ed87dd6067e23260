"""Every setting is declared once (run/settings.py) and checked before anything trains: each key of every
config group choice has exactly one declaration, each declaration refuses a bad value in one line that
names the key, the value and what is allowed (exit 2 on the command line, no folder written), and what
only the data shows (no training batch, a split that cannot be made, no optimizer step) fails in one
line too, without a summary."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from functools import cache
from pathlib import Path

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
            "devices": [0, -2, "all", [], [-1], 1.5, True],
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
