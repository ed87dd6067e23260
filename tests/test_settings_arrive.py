"""Every documented setting arrives where it is used: each key of conf/config.yaml and of its groups that
a user may set, overridden with a value other than its default, is found at the point of use in the
objects that `run.build` makes from the composed config (no training). A key added to the configs
without a probe here fails `test_every_documented_setting_has_a_probe`."""

from __future__ import annotations

import math
import signal
from functools import cache
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from binary_encoding.callbacks import metrics as metrics_mod
from binary_encoding.callbacks.gamma import GammaScheduler
from binary_encoding.record import identity
from binary_encoding.run import build, job, policy, threads, watchdog
from binary_encoding.run.conf import CONF_DIR

BASE = ["trainer.accelerator=cpu", "logger=csv", "deepfool_samples=4"]


def compose_cfg(tmp_path, *overrides):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[*BASE, *overrides])
    if not any(o.startswith("output_dir=") for o in overrides):
        with open_dict(cfg):
            cfg.output_dir = str(tmp_path)
    return cfg


def _spy(real, calls: list):
    """`real`, recording the arguments of every call in `calls`."""

    def spy(*args, **kwargs):
        calls.append({"args": args, **kwargs})
        return real(*args, **kwargs)

    return spy


class Built:
    """The objects of one config, built on first use."""

    def __init__(self, cfg):
        self.cfg = cfg

    @property
    def dm(self):
        if not hasattr(self, "_dm"):
            self._dm = build.build_datamodule(self.cfg)
        return self._dm

    @property
    def model(self):
        if not hasattr(self, "_model"):
            torch.manual_seed(0)
            self._model = build.build_model(self.cfg, self.dm.input_shape, self.dm.num_classes)
        return self._model

    def callback(self, kind):
        built = build.build_callbacks(self.cfg)
        (c,) = [c for c in (built.values() if isinstance(built, dict) else built) if isinstance(c, kind)]
        return c

    def metric_setting(self, name: str):
        """A setting of the Metrics callback (on its `settings` object where it has one)."""
        m = self.metrics
        return getattr(getattr(m, "settings", m), name)

    @property
    def metrics(self):
        return self.callback(metrics_mod.Metrics)

    @property
    def gamma(self) -> GammaScheduler:
        return self.callback(GammaScheduler)

    @property
    def optimizer_group(self):
        return self.model.configure_optimizers().param_groups[0]

    @property
    def trainer(self):
        return L.Trainer(**policy.trainer_kwargs(self.cfg), logger=False, default_root_dir=self.cfg.output_dir)

    def wandb_init(self):
        from pathlib import Path

        Path(self.cfg.output_dir).mkdir(parents=True, exist_ok=True)  # the W&B run id is kept there
        (lg,) = build.build_loggers(self.cfg)
        return lg._wandb_init

    def final_calls(self, monkeypatch, name: str) -> list[dict]:
        """The arguments with which `final_metrics` (the end-of-training metrics) calls `name` of the
        metrics callback's module (a spy that calls through)."""
        import importlib

        calls = []
        for where in ("binary_encoding.callbacks.metrics", "binary_encoding.metrics.catalog"):
            try:
                mod = importlib.import_module(where)
            except ImportError:
                continue  # a layout without the metric catalog
            if hasattr(mod, name):  # the module that calls it looks it up in its own namespace
                monkeypatch.setattr(mod, name, _spy(getattr(mod, name), calls))
        self.results, _ = metrics_mod.final_metrics(self.model, self.dm, self.metrics.final)
        return calls


def _checkpointed(out):
    """A job folder holding a (zip) checkpoint, as a cut-off run leaves it."""
    import zipfile
    from pathlib import Path

    (Path(out) / "checkpoints").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(Path(out) / "checkpoints" / "last.ckpt", "w") as z:
        z.writestr("data.pkl", b"")
    return out


def _train_batch(b):
    return len(next(iter(b.dm.train_dataloader()))[0])


@cache
def _default_test_labels():
    return Built(compose_cfg("/tmp")).dm.y["test"].clone()


# (override, what the built objects say at the point of use, the expected value); `mp` is monkeypatch
PROBES = {
    "seed": ("seed=7", lambda b, mp: (b.dm.seed, b.metrics.final.seed), (7, 7)),
    "lr": ("lr=0.05", lambda b, mp: b.optimizer_group["lr"], 0.05),
    "weight_decay": ("weight_decay=0.01", lambda b, mp: b.optimizer_group["weight_decay"], 0.01),
    "batch_size": ("batch_size=64", lambda b, mp: _train_batch(b), 64),
    "metrics_every": ("metrics_every=3", lambda b, mp: b.metrics.every, 3),
    "deepfool_samples": (
        "deepfool_samples=5",
        lambda b, mp: (b.final_calls(mp, "deepfool"), b.results)[1]["deepfool_images"],
        5,
    ),  # noqa: E501
    "save_latents": ("save_latents=true", lambda b, mp: b.metric_setting("save_latents"), True),
    "metrics.splits": ("metrics.splits=[train]", lambda b, mp: b.metric_setting("splits"), ("train",)),
    "metrics.nc_labels": (
        "metrics.nc_labels=pred",
        lambda b, mp: all(torch.equal(c["args"][1], c["args"][2]) for c in b.final_calls(mp, "neural_collapse")),
        True,
    ),
    "metrics.global_mean": (
        "metrics.global_mean=class_means",
        lambda b, mp: {c["global_mean"] for c in b.final_calls(mp, "neural_collapse")},
        {"class_means"},
    ),
    "metrics.train_augmented": (
        "metrics.train_augmented=true",
        lambda b, mp: [c.get("augmented") for c in b.final_calls(mp, "collect_latents") if c["args"][2] == "train"],
        [True],
    ),
    "metrics.hist_dims": ("metrics.hist_dims=3", lambda b, mp: b.metric_setting("hist_dims"), 3),
    "metrics.hist_every": ("metrics.hist_every=4", lambda b, mp: b.metric_setting("hist_every"), 4),
    "metrics.deepfool_candidates": (
        "metrics.deepfool_candidates=3",
        lambda b, mp: [c["num_candidates"] for c in b.final_calls(mp, "deepfool")],
        [3],
    ),
    "metrics.deepfool_overshoot": (
        "metrics.deepfool_overshoot=0.05",
        lambda b, mp: [c["overshoot"] for c in b.final_calls(mp, "deepfool")],
        [0.05],
    ),
    "metrics.deepfool_max_iter": (
        "metrics.deepfool_max_iter=7",
        lambda b, mp: [c["max_iter"] for c in b.final_calls(mp, "deepfool")],
        [7],
    ),
    "metrics.deepfool_batch": (
        "metrics.deepfool_batch=16",
        lambda b, mp: [c["batch_size"] for c in b.final_calls(mp, "deepfool")],
        [16],
    ),
    "metrics.mahalanobis_reg": (
        "metrics.mahalanobis_reg=0.01",
        lambda b, mp: [c["reg_covar"] for c in b.final_calls(mp, "fit_class_gaussians")],
        [0.01],
    ),
    "head.width": ("head.width=6", lambda b, mp: b.model.head.classifier.in_features, 6),
    "head.gamma0": ("head.gamma0=0.05", lambda b, mp: b.gamma.value(0), 0.05),
    "head.gamma_factor": ("head.gamma_factor=2.0", lambda b, mp: b.gamma.value(2), pytest.approx(0.04)),
    "head.gamma_step": ("head.gamma_step=3", lambda b, mp: [b.gamma.value(e) for e in (2, 3)], [0.01, 0.01 * 1.084]),
    "head.gamma_max": ("head.gamma_max=0.5", lambda b, mp: b.gamma.value(1000), 0.5),
    "backbone.hidden": (
        "backbone.hidden=[32,16]",
        lambda b, mp: [m.out_features for m in b.model.backbone.modules() if isinstance(m, torch.nn.Linear)],
        [32, 16],
    ),
    "backbone.act": (
        "backbone.act=relu",
        lambda b, mp: {type(m).__name__ for m in b.model.backbone.modules()} >= {"ReLU"},
        True,
    ),
    "data.val_fraction": ("data.val_fraction=0.2", lambda b, mp: len(b.dm.y["val"]), math.ceil(0.2 * 1437)),
    "data.test_fraction": ("data.test_fraction=0.3", lambda b, mp: len(b.dm.y["test"]), math.ceil(0.3 * 1797)),
    "data.split_seed": (
        "data.split_seed=3",
        lambda b, mp: torch.equal(b.dm.y["test"], _default_test_labels()),
        False,
    ),
    "data.augment": ("data.augment=true", lambda b, mp: b.dm.augment, True),
    "data.pad": ("data.pad=2", lambda b, mp: b.dm.pad, 2),
    "data.flip": ("data.flip=true", lambda b, mp: b.dm.flip, True),
    "data.eval_batch_size": (
        "data.eval_batch_size=100",
        lambda b, mp: len(next(iter(b.dm.eval_dataloader("val")))[0]),
        100,
    ),
    "data.device_resident": ("data.device_resident=false", lambda b, mp: b.dm.device_resident, False),
    "data.root": ("data.root=/somewhere/else", lambda b, mp: str(b.dm.root), "/somewhere/else"),
    "trainer.max_epochs": ("trainer.max_epochs=7", lambda b, mp: b.trainer.max_epochs, 7),
    "trainer.check_val_every_n_epoch": (
        "trainer.check_val_every_n_epoch=2",
        lambda b, mp: b.trainer.check_val_every_n_epoch,
        2,
    ),
    "trainer.log_every_n_steps": ("trainer.log_every_n_steps=3", lambda b, mp: b.trainer.log_every_n_steps, 3),
    "trainer.precision": ("trainer.precision=bf16-mixed", lambda b, mp: b.trainer.precision, "bf16-mixed"),
    "trainer.enable_progress_bar": (
        "trainer.enable_progress_bar=true",
        lambda b, mp: b.trainer.progress_bar_callback is not None,
        True,
    ),
    "trainer.deterministic": (
        "trainer.deterministic=true",
        lambda b, mp: policy.trainer_kwargs(b.cfg)["deterministic"],
        True,
    ),  # noqa: E501
    "trainer.devices": ("trainer.devices=2", lambda b, mp: policy.num_devices(b.cfg), 2),
    "trainer.strategy": (
        "trainer.strategy=ddp_spawn",
        lambda b, mp: policy.trainer_kwargs(b.cfg)["strategy"],
        "ddp_spawn",
    ),  # noqa: E501
    "trainer.accelerator": (
        "trainer.accelerator=cpu",
        lambda b, mp: type(b.trainer.accelerator).__name__,
        "CPUAccelerator",
    ),  # noqa: E501
    "runtime.compile": ("runtime.compile=true", lambda b, mp: b.model.backbone._compiled_call_impl is not None, True),
    "runtime.compile_mode": (
        "runtime.compile_mode=reduce-overhead",
        lambda b, mp: policy.compile_backbone(b.cfg) or b.cfg.runtime.compile_mode,
        "reduce-overhead",
    ),
    "runtime.cudnn_benchmark": (
        "runtime.cudnn_benchmark=true",
        lambda b, mp: policy.trainer_kwargs(b.cfg)["benchmark"],
        True,
    ),  # noqa: E501
    "runtime.channels_last": ("runtime.channels_last=true", lambda b, mp: b.model.channels_last, True),
    "runtime.threads": ("runtime.threads=3", lambda b, mp: _threads_set(b.cfg, mp), [3]),
    "runtime.sigterm_grace_s": ("runtime.sigterm_grace_s=7", lambda b, mp: _grace_armed(b.cfg, mp), [7]),
    "runtime.check_finite_every": ("runtime.check_finite_every=7", lambda b, mp: b.model.check_finite_every, 7),
    "runtime.checkpoint_every_n_epochs": (
        "runtime.checkpoint_every_n_epochs=3",
        lambda b, mp: b.callback(L.pytorch.callbacks.ModelCheckpoint)._every_n_epochs,
        3,
    ),
    "logger.project": ("logger=wandb logger.project=elsewhere", lambda b, mp: b.wandb_init()["project"], "elsewhere"),
    "logger.entity": ("logger=wandb logger.entity=team", lambda b, mp: b.wandb_init()["entity"], "team"),
    "logger.mode": ("logger=wandb logger.mode=disabled", lambda b, mp: b.wandb_init()["mode"], "disabled"),
    "logger.tags": ("logger=wandb logger.tags=[extra]", lambda b, mp: b.wandb_init()["tags"][-1], "extra"),
    "logger.job_type": ("logger=wandb logger.job_type=probe", lambda b, mp: b.wandb_init()["job_type"], "probe"),
    "logger.init_timeout": (
        "logger=wandb logger.init_timeout=3.5",
        lambda b, mp: b.wandb_init()["settings"].init_timeout,
        3.5,
    ),
    "run_name": ("logger=wandb run_name=mine", lambda b, mp: b.wandb_init()["name"], "mine"),
    "group": ("logger=wandb group=grp", lambda b, mp: b.wandb_init()["group"], "grp"),
    "name": ("name=sweepname", lambda b, mp: job.run_group(b.cfg).split("/")[0], "sweepname"),
    "ckpt_path": ("ckpt_path=/x/y.ckpt", lambda b, mp: job.resume_checkpoint(b.cfg, b.cfg.output_dir), "/x/y.ckpt"),
    "resume": ("resume=false", lambda b, mp: job.resume_checkpoint(b.cfg, _checkpointed(b.cfg.output_dir)), None),
    "output_dir": ("output_dir=/elsewhere", lambda b, mp: str(job.output_dir(b.cfg)), "/elsewhere"),
    "protocol": ("protocol=reference", lambda b, mp: (b.metrics.final.nc_labels, len(b.dm.splits)), ("pred", 2)),
}


def _threads_set(cfg, monkeypatch) -> list[int]:
    """The counts that the job's thread setup (`threads.apply` of `runtime.threads`, as `fit` calls it)
    hands to torch, recorded instead of applied."""
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr("threadpoolctl.threadpool_limits", lambda n: None)
    threads.apply(cfg.runtime.get("threads"))
    return calls


def _grace_armed(cfg, monkeypatch) -> list:
    """The grace that the job's SIGTERM setup (`job.handle_sigterm`, as `train` calls it) hands to the
    watchdog, recorded instead of armed (the test process's own SIGTERM handling stays)."""
    calls = []
    monkeypatch.setattr(watchdog, "arm", calls.append)
    monkeypatch.setattr(signal, "getsignal", lambda s: signal.SIG_DFL)
    monkeypatch.setattr(signal, "signal", lambda s, h: None)
    job.handle_sigterm(cfg, Path(cfg.output_dir))
    job.handle_sigterm()  # between jobs again
    return calls


# keys of the configs that no probe here can reach without a GPU or without training, and why
NOT_PROBED = {
    "runtime.cuda_graphs": "true needs a CUDA GPU (tests/test_train.py: test_cuda_graphs_train_like_eager)",
    "logger.save_dir": "always ${output_dir} (the run folder), not a user's choice",
}


def documented_keys() -> set[str]:
    """The keys a user may set: conf/config.yaml and the default choice of every group, without the
    objects' wiring (`_target_`, `callbacks.*`, `head.net.*`) and the sizes known only at run time."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["logger=wandb"])
    flat = identity.flat_config(OmegaConf.to_container(cfg, resolve=False))
    return {
        k
        for k in flat
        if not k.endswith("_target_")
        and not k.startswith(("callbacks.", "head.net.", "data.name", "backbone.name"))
        and k not in ("head.name", "logger.run_name", "logger.group")
    }


def test_every_documented_setting_has_a_probe():
    missing = documented_keys() - PROBES.keys() - NOT_PROBED.keys()
    assert not missing, f"settings without a probe in PROBES: {sorted(missing)}"
    assert not PROBES.keys() - documented_keys()  # no probe of a key that no longer exists


@pytest.mark.parametrize("key", sorted(PROBES))
def test_a_non_default_setting_arrives_where_it_is_used(key, tmp_path, monkeypatch):
    override, probe, expected = PROBES[key]
    groups = [o for o in override.split() if o.startswith("logger=")]  # the same logger for both
    default = Built(compose_cfg(tmp_path / "default", *groups))
    changed = Built(compose_cfg(tmp_path / "changed", *override.split()))
    if key not in ("data.split_seed", "trainer.accelerator"):  # compared with the default inside, or set in BASE
        assert probe(default, monkeypatch) != expected, f"{override} is the default: pick another value"
    monkeypatch.undo()
    assert probe(changed, monkeypatch) == expected


@pytest.mark.parametrize(
    "override, message",
    [
        ("batch_size=0", "batch_size=0: must be an integer >= 2"),
        ("lr=0", "lr=0: must be a finite number > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0: must be an integer >= 1"),
        ("weight_decay=-0.1", "weight_decay=-0.1: must be a finite number >= 0"),
        ("seed=-1", "seed=-1: must be an integer in 0..4294967295"),
        ("trainer.precision=16-mixed", "trainer.precision=16-mixed: fp16 overflows at 65,504 and gamma grows"),
        ("trainer.precision=16-true", "trainer.precision=16-true: fp16 overflows at 65,504 and gamma grows"),
    ],
)
def test_a_setting_out_of_range_is_a_config_error_before_anything_is_built(tmp_path, override, message):
    """policy.validate refuses it (one line, exit 2 on the command line), not a check of a built object."""
    with pytest.raises(policy.ConfigError) as err:
        policy.validate(compose_cfg(tmp_path, override))
    assert str(err.value).startswith(message)


def test_the_non_finite_loss_check_runs_every_step_on_a_cpu_and_every_50_on_a_gpu(tmp_path, monkeypatch):
    """runtime.check_finite_every=auto, as conf/runtime/default.yaml documents it."""
    cfg = compose_cfg(tmp_path)
    for gpu, every in ((False, 1), (True, 50)):
        monkeypatch.setattr(policy, "on_gpu", lambda cfg, gpu=gpu: gpu)
        assert policy.check_finite_every(cfg) == every


@pytest.mark.parametrize("mode", ["max-autotune", None])
def test_the_compile_mode_reaches_torch_compile_and_the_cuda_graph_switch_the_module(tmp_path, monkeypatch, mode):
    """runtime.compile_mode is handed to torch.compile as its mode (null: torch's default); the resolved
    runtime.cuda_graphs reaches the LightningModule (off on a CPU, on when the policy says so)."""
    calls = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: calls.append(kw))
    cfg = compose_cfg(tmp_path, "runtime.compile=true", f"runtime.compile_mode={'null' if mode is None else mode}")
    assert build.build_model(cfg, (1, 8, 8), 10).cuda_graphs is False
    assert calls == [{"mode": mode}]
    monkeypatch.setattr(policy, "cuda_graphs", lambda cfg: True)
    assert build.build_model(cfg, (1, 8, 8), 10).cuda_graphs is True
