"""The numbers of conf/ that the docs state, pinned: each experiment and preset composes to the settings its
documentation gives (docs/method.md §2, §3.2, §4.1, §4.3, §5; docs/results.md; docs/mnist1d.md; the README),
and the run identity derived from a config (record/identity.py: which keys define a run, name its folder and
its W&B group) keeps what docs/job_folders.md says. A wrong number in a yaml fails here, not after a sweep."""

from __future__ import annotations

from functools import cache

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from binary_encoding.record import files, identity
from binary_encoding.run.build import build_net
from binary_encoding.run.conf import CONF_DIR


@cache
def composed(*overrides, hydra: bool = False):
    """The composed config (cached: compose takes a tenth of a second; callers do not change it)."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


# shared by the paper's two CIFAR set-ups (docs/method.md §4.1, §4.2, §4.3, §3.2)
PAPER = {
    "weight_decay": 5e-4,
    "batch_size": 128,
    "trainer.max_epochs": 200,
    "head.gamma0": 0.01,
    "head.gamma_factor": 1.084,
    "head.gamma_step": 1,
    "head.gamma_max": None,
    "data.val_fraction": 0.1,
    "data.split_seed": 0,
    "data.augment": True,
    "data.pad": 4,
    "data.flip": True,
    "backbone.width": 64,  # stages of 64/128/256/512 channels (§2.1)
    "backbone.act": "silu",
}
EXPERIMENTS = {
    # §5: digits, MLP 64-256-256, d = 4, lr 1e-3, batch 128, 150 epochs, gamma 0.01 x 1.084 capped at 10
    None: {
        "name": "digits_mlp",
        "data.name": "digits",
        "backbone.name": "mlp",
        "backbone.hidden": [256, 256],
        "backbone.act": "silu",
        "head.name": "binenc",
        "head.width": 4,
        "head.gamma0": 0.01,
        "head.gamma_factor": 1.084,
        "head.gamma_step": 1,
        "head.gamma_max": 10.0,
        "lr": 1e-3,
        "weight_decay": 5e-4,
        "batch_size": 128,
        "trainer.max_epochs": 150,
        "data.val_fraction": 0.1,
        "data.test_fraction": 0.2,
        "data.split_seed": 0,
        "data.augment": False,
        "seed": 0,
        "protocol": "default",
        "resume": True,  # the same command resumes a cut-off job (docs/job_folders.md)
        "save_latents": False,
        "output_dir": None,
        "ckpt_path": None,
    },
    # §4.3: ResNet18 with basic blocks, d = 4
    "cifar10_resnet18": {
        **PAPER,
        "name": "cifar10_resnet18",
        "data.name": "cifar10",
        "backbone.name": "resnet18",
        "backbone.block": "basic",
        "backbone.layers": [2, 2, 2, 2],
        "head.width": 4,
    },
    # §4.3: ResNet50 (bottlenecks), d = 36 (the original experiments) or 64 (the paper's text)
    "cifar100_resnet50": {
        **PAPER,
        "name": "cifar100_resnet50",
        "data.name": "cifar100",
        "backbone.name": "resnet50",
        "backbone.block": "bottleneck",
        "backbone.layers": [3, 4, 6, 3],
        "head.width": 36,
    },
    "cifar100_resnet50_d64": {
        **PAPER,
        "data.name": "cifar100",
        "backbone.name": "resnet50",
        "backbone.block": "bottleneck",
        "backbone.layers": [3, 4, 6, 3],
        "head.width": 64,
    },
    # docs/results.md: the 1-D conv ResNet at width 8, d = 4, 30 epochs, gamma 0.01 x 1.4 per epoch capped at
    # 10, lr 3e-3 (selected for BinEnc on every seed), 500 DeepFool images (all_runs.csv: deepfool_images);
    # docs/mnist1d.md: 2-2-2-2 BasicBlocks, kernel 3, 10% validation, no augmentation of a signal
    "mnist1d": {
        "name": "mnist1d_resnet1d",
        "data.name": "mnist1d",
        "backbone.name": "resnet1d",
        "backbone.layers": [2, 2, 2, 2],
        "backbone.kernel": 3,
        "backbone.width": 8,
        "backbone.act": "silu",
        "head.width": 4,
        "head.gamma0": 0.01,
        "head.gamma_factor": 1.4,
        "head.gamma_step": 1,
        "head.gamma_max": 10.0,
        "trainer.max_epochs": 30,
        "lr": 3e-3,
        "data.val_fraction": 0.1,
        "data.split_seed": 0,
        "data.augment": False,
        "deepfool_samples": 500,
        "metrics_every": 5,
    },
    # docs/results.md: the MLP 40-256-256, 100 epochs, BinEnc's gamma (0.01 x 1.084) capped at 0.1
    "mnist1d_mlp": {
        "name": "mnist1d_mlp",
        "data.name": "mnist1d",
        "backbone.name": "mlp",
        "backbone.hidden": [256, 256],
        "head.width": 4,
        "head.gamma0": 0.01,
        "head.gamma_factor": 1.084,
        "head.gamma_max": 0.1,
        "trainer.max_epochs": 100,
        "data.val_fraction": 0.1,
        "deepfool_samples": 500,
        "metrics_every": 5,
    },
}


@pytest.mark.parametrize("experiment", list(EXPERIMENTS), ids=[str(e) for e in EXPERIMENTS])
def test_each_experiment_composes_to_the_settings_its_documentation_gives(experiment):
    cfg = composed(*([f"experiment={experiment}"] if experiment else []))
    got = {k: OmegaConf.select(cfg, k) for k in EXPERIMENTS[experiment]}
    got = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in got.items()}
    assert got == EXPERIMENTS[experiment]


@pytest.mark.parametrize(
    "data, test_fraction, augment",
    [("digits", 0.2, False), ("mnist1d", None, False), ("cifar10", None, True), ("cifar100", None, True)]
    + [("imagefolder", 0.2, True)],
)
def test_every_data_set_holds_out_the_documented_splits_and_augments_only_images(data, test_fraction, augment):
    """docs/method.md §4.2: a stratified 10% validation split with the fixed split_seed 0, for every data set;
    a 20% test split where the set has none of its own (digits §5, imagefolder); crops and flips (4 px, §4.1)
    only for natural images (not digits, not a 1-D signal); an unreadable image stops the job (README)."""
    d = composed(f"data={data}", *(["data.root=/tmp"] if data == "imagefolder" else [])).data
    assert (d.val_fraction, d.split_seed, d.get("test_fraction"), d.augment) == (0.1, 0, test_fraction, augment)
    assert (d.pad, d.flip) == ((4, True) if augment else (0, False))
    assert d.get("skip_unreadable", False) is False and d.device_resident == "auto"


def test_the_mnist1d_conv_net_has_the_61k_parameters_and_the_digits_mlp_the_widths_the_docs_give():
    """docs/results.md: experiment=mnist1d is the 1-D ResNet at width 8 with 61k parameters; docs/mnist1d.md:
    cnn1d flattens to 125 features (25 channels x 5); docs/method.md §5: digits' MLP is 64-256-256."""
    net = build_net(composed("experiment=mnist1d"), (1, 1, 40), 10)
    assert round(sum(p.numel() for p in net.parameters()) / 1000) == 61
    assert net.backbone.num_features == 64  # stages 8/16/32/64
    assert build_net(composed("data=mnist1d", "backbone=cnn1d"), (1, 1, 40), 10).backbone.num_features == 125
    mlp = build_net(composed(), (1, 8, 8), 10).backbone
    assert [m.out_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)] == [256, 256]
    assert [m.in_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)][0] == 64


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_the_cifar_resnets_have_the_blocks_and_widths_of_torchvisions(name):
    """docs/method.md §2.1: the standard ResNet18/34/50 stages (torchvision's block kinds and counts), 64
    channels in the first stage, 512 features for ResNet18/34 and 2048 for ResNet50; SiLU, not ReLU."""
    import torchvision

    with torch.device("meta"):
        ref = getattr(torchvision.models, name)()
        cfg = composed(f"backbone={name}")
        ours = build_net(cfg, (3, 32, 32), 10).backbone
    stages = [getattr(ref, f"layer{i}") for i in range(1, 5)]
    assert list(cfg.backbone.layers) == [len(s) for s in stages]
    assert cfg.backbone.block == {"BasicBlock": "basic", "Bottleneck": "bottleneck"}[type(stages[0][0]).__name__]
    assert cfg.backbone.width == stages[0][0].conv1.out_channels == 64
    assert ours.num_features == ref.fc.in_features
    assert ours.name == name and cfg.backbone.act == "silu"


@pytest.mark.parametrize(
    "head, net, width, gamma",
    [
        ("binenc", "LinearHead", 4, (0.01, 1.084, 1, 10.0)),
        ("linpen", "LinearHead", 4, (0.0, 1.0, 1, None)),
        ("nonlinpen", "NonLinearHead", 4, (0.0, 1.0, 1, None)),
        ("nopen", "NoPenultimate", None, (0.0, 1.0, 1, None)),
    ],
)
def test_each_head_is_the_layer_and_schedule_of_the_papers_table(head, net, width, gamma):
    """docs/method.md §2.2: binenc and linpen share the linear penultimate layer of width d = 4, nonlinpen puts
    the backbone's activation after it (the default SiLU and another one), nopen has none; §3.1: only binenc
    has gamma > 0 (digits: capped, §5)."""
    for act, name in (("silu", "SiLU"), ("relu", "ReLU")):
        cfg = composed(f"head={head}", f"backbone.act={act}")
        built = build_net(cfg, (1, 8, 8), 10).head
        assert type(built).__name__ == net and cfg.head.width == width
        assert (cfg.head.gamma0, cfg.head.gamma_factor, cfg.head.gamma_step, cfg.head.gamma_max) == gamma
        acts = [type(m).__name__ for m in built.modules() if type(m).__name__ in ("ReLU", "SiLU")]
        assert acts == ([name] if head == "nonlinpen" else [])  # the backbone's activation, whichever it is


def test_the_debug_presets_do_what_the_readme_says():
    """README: debug=fast runs one batch per split for one epoch; debug=overfit 4 batches for 100 epochs, the
    training split in a fixed order and unaugmented, gamma held at gamma0; neither logs to W&B."""
    fast = composed("debug=fast")
    t = fast.trainer
    assert (t.max_epochs, t.limit_train_batches, t.limit_val_batches, t.limit_test_batches) == (1, 1, 1, 1)
    assert t.num_sanity_val_steps == 0 and "_target_" not in fast.logger
    over = composed("debug=overfit", "data=cifar10")  # a data set that augments and shuffles by default
    assert (over.trainer.limit_train_batches, over.trainer.max_epochs) == (4, 100)
    assert (over.head.gamma_factor, over.data.shuffle, over.data.augment) == (1.0, False, False)
    assert "_target_" not in over.logger


def test_trainer_runtime_and_logger_defaults_are_the_documented_ones():
    """conf/trainer (Lightning's arguments; docs: one device, validation every epoch, no determinism forced),
    trainer=ddp (several devices, SyncBatchNorm auto), conf/runtime (docs/job_folders.md: a SIGTERM grace
    of 60 s; the checkpoint refreshed every epoch), and the W&B logger."""
    cfg = composed()
    t = cfg.trainer
    assert (t.accelerator, t.devices, t.strategy, t.precision) == ("auto", 1, "auto", "auto")
    assert (t.check_val_every_n_epoch, t.deterministic, t.enable_progress_bar) == (1, False, "auto")
    ddp = composed("trainer=ddp").trainer
    assert (ddp.strategy, ddp.sync_batchnorm, ddp.max_epochs) == ("ddp", "auto", 150) and ddp.devices > 1
    r = cfg.runtime
    assert (r.sigterm_grace_s, r.checkpoint_every_n_epochs, r.threads, r.compile_mode) == (60, 1, "auto", None)
    assert {r[k] for k in ("compile", "cuda_graphs", "cudnn_benchmark", "channels_last", "check_finite_every")} == {
        "auto"
    }
    lg = cfg.logger
    assert (lg.project, lg.entity, lg.mode, list(lg.tags)) == ("binary_encoding", None, "auto", [])
    assert lg.job_type == "train"
    assert (lg.save_dir, lg.group, lg.run_name) == (cfg.output_dir, cfg.group, cfg.run_name)


def test_the_launcher_presets_hold_one_job_per_task_and_a_fresh_worker_per_job():
    """ray_gpu: one GPU per job (README), a fresh worker process per job (no CUDA or W&B state shared), a local
    Ray unless told; local_parallel: each job in a worker process of its own (its own torch threads)."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    ray = composed("hydra/launcher=ray_gpu", hydra=True).hydra.launcher.ray
    assert (ray.remote.num_gpus, ray.remote.max_calls, ray.init.address) == (1, 1, None)
    joblib = composed("hydra/launcher=local_parallel", hydra=True).hydra.launcher
    assert (joblib.n_jobs, joblib.prefer) == (2, "processes")


def test_hydra_puts_a_run_and_a_sweep_job_where_the_docs_say():
    """A single run: outputs/<name>/<date_time>, or output_dir when given; a sweep: multirun/<name>/<the
    overrides but where and how the job ran>; the job's log is train.log; Hydra's override_dirname leaves out
    the same keys as the folder name."""
    cfg = composed("experiment=mnist1d", "logger=csv", "seed=2", "trainer.accelerator=cpu", hydra=True)
    h = cfg.hydra
    assert h.run.dir.startswith("outputs/mnist1d_resnet1d/20") and len(h.run.dir.split("/")) == 3
    assert composed("output_dir=/x/run", hydra=True).hydra.run.dir == "/x/run"
    assert h.sweep.dir == "multirun/mnist1d_resnet1d"
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)  # `${hydra:overrides.task}` reads the running Hydra's config
    try:
        assert h.sweep.subdir == "experiment=mnist1d,seed=2"
    finally:
        HydraConfig.instance().cfg = None
    assert list(h.job.config.override_dirname.exclude_keys) == list(identity.NOT_IN_FOLDER_NAME)
    filename = h.job_logging.handlers.file._get_node("filename")._value()
    assert filename == "${hydra.runtime.output_dir}/" + files.LOG == "${hydra.runtime.output_dir}/train.log"


# ------------------------------------------------------------------------------------------------
# Run identity: which keys define a run (a resume with another value is refused), which may change on
# resume (docs/job_folders.md: trainer.max_epochs, the hardware and the measurement settings), which split
# a report row (the seeds are pooled and the learning rate selected within a row)
# ------------------------------------------------------------------------------------------------

# key: (defines the run, may change on resume, splits a report row)
IDENTITY = {
    "lr": (True, False, False),
    "seed": (True, False, False),
    "weight_decay": (True, False, True),
    "batch_size": (True, False, True),
    "head.gamma0": (True, False, True),
    "head.gamma_factor": (True, False, True),
    "head.gamma_max": (True, False, True),
    "head.width": (True, False, True),
    "head.name": (True, False, True),
    "backbone.hidden": (True, False, True),
    "data.name": (True, False, True),
    "data.val_fraction": (True, False, True),
    "data.split_seed": (True, False, True),
    "data.augment": (True, False, True),
    "data._target_": (True, False, False),
    "trainer.precision": (True, False, True),
    "trainer.deterministic": (True, False, True),
    "trainer.max_epochs": (True, True, True),  # a longer run of the same model
    "metrics.nc_labels": (True, True, True),  # another measurement of it
    "metrics.deepfool_overshoot": (True, True, True),
    "metrics.hist_dims": (False, True, False),  # only what W&B shows
    "metrics.hist_every": (False, True, False),
    "metrics_every": (False, True, False),
    "deepfool_samples": (False, True, False),
    "save_latents": (False, True, False),
    "data.skip_unreadable": (False, True, False),
    "trainer.accelerator": (False, True, False),
    "trainer.devices": (False, True, False),
    "trainer.strategy": (False, True, False),
    "trainer.sync_batchnorm": (False, True, False),
    "trainer.enable_progress_bar": (False, True, False),
    "trainer.log_every_n_steps": (False, True, False),
    "runtime.compile": (False, True, False),
    "runtime.threads": (False, True, False),
    "logger.project": (False, True, False),
    "callbacks.metrics.settings.every": (False, True, False),
    "head.net.width": (False, True, False),
    "output_dir": (False, True, False),
    "run_name": (False, True, False),
    "group": (False, True, False),
    "name": (False, True, False),
    "resume": (False, True, False),
    "ckpt_path": (False, True, False),
}


@pytest.mark.parametrize("key", sorted(IDENTITY))
def test_each_key_defines_a_run_may_change_on_resume_and_splits_a_report_row_as_documented(key):
    assert (identity.defines_run(key), identity.may_change_on_resume(key), identity.splits_report_row(key)) == (
        IDENTITY[key]
    )


def test_a_folder_name_leaves_out_exactly_where_and_how_the_job_ran():
    """docs/job_folders.md: a rerun with another sweep name, logger, accelerator or progress bar finds the same
    folder; every other override names it, sorted, including keys that merely start like an excluded one."""
    overrides = ["seed=1", "name=other", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "lr=0.1"]
    overrides += ["logger=wandb", "logger.project=p", "output_dir=/x", "resume=force", "run_name=r", "+named=1"]
    assert identity.folder_name(overrides) == "+named=1,lr=0.1,run_name=r,seed=1"
    assert identity.in_folder_name("trainer.devices") and not identity.in_folder_name("logger.mode")


@pytest.mark.parametrize(
    "key, value, path",
    [
        ("data.root", "data", True),
        ("ckpt_path", "last.ckpt", True),
        ("+callbacks.checkpoint.dirpath", "ckpts", True),
        ("+x.log_file", "a", True),
        ("+x.image_dir", "a", True),
        ("data.name", "a/b", True),
        ("data.name", "a\\b", True),
        ("lr", "0.1", False),
        ("head", "binenc", False),
        ("backbone.hidden", "[64,32]", False),
        ("+x.profile", "a", False),
    ],
)
def test_a_path_is_told_by_its_key_or_a_slash(key, value, path):
    assert identity.is_path(key, value) is path


def test_a_long_name_is_cut_to_exactly_the_limit_and_a_name_at_the_limit_is_kept():
    """NAME_BYTES = 240 for folders (filesystems allow 255), GROUP_CHARS = 128 (W&B's longest group)."""
    assert (identity.NAME_BYTES, identity.GROUP_CHARS) == (240, 128)
    at = "a" * 240
    assert identity.cut_to(at, 240) == at
    cut = identity.cut_to(at + "b", 240)
    assert len(cut.encode()) == 240 and cut.startswith("a" * 227 + "~") and cut != identity.cut_to(at + "c", 240)
    group = identity.group_name("s", [f"+k{i}=" + "v" * 20 for i in range(10)])
    assert len(group) == 128 and group.startswith("s/+k0=")
    assert identity.group_name("s", ["seed=3", "trainer.devices=2"]) == "s"  # nothing that defines the run


def test_the_fingerprint_changes_with_a_defining_setting_only():
    cfg = OmegaConf.to_container(composed(), resolve=True)
    base = identity.fingerprint(cfg)
    assert len(base) == 16 and int(base, 16) >= 0
    for key, value in (("lr", 0.5), ("seed", 3), ("head.width", 7), ("trainer.max_epochs", 3)):
        changed = OmegaConf.create(cfg)
        OmegaConf.update(changed, key, value)
        assert identity.fingerprint(OmegaConf.to_container(changed)) != base, key
    for key, value in (("trainer.devices", 4), ("logger.project", "x"), ("deepfool_samples", 3), ("name", "z")):
        changed = OmegaConf.create(cfg)
        OmegaConf.update(changed, key, value)
        assert identity.fingerprint(OmegaConf.to_container(changed)) == base, key
