"""Every setting of `conf/` declared once: its type, range or choices, and a one-line doc.

`SETTINGS` maps a dotted key (`head.width`) to its `Setting`; `check(cfg)` reads each declared key of a
composed config and raises `ConfigError("head.width=0: must be an integer >= 1, or null")`, one line
naming the key, the value and what is allowed. It runs before a job writes anything (`policy.validate`,
which adds the checks that no single value shows). Keys that `conf/` only wires (`_target_`, the
`callbacks.*` interpolations, `head.net.*`) are `WIRING`; tests/test_settings_arrive.py fails when a key
of any config group choice is neither declared nor wiring. A key no declaration knows passes: Hydra
refuses a new key without `+`, `trainer.*` goes to Lightning as it is, and a user's own head or backbone
(docs/extending.md) brings its own settings. The constructors' own checks stay as a second guard.

What only the loaded data shows (a split that leaves a class empty, no training batch at all) is
`check_data`, right after the data module's setup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from .. import ranks


class ConfigError(ValueError):
    """A configuration that cannot run; raised before any training (one line, exit 2 on the command line)."""


AUTO = ("auto", True, False)
SEED_MAX = 2**32 - 1  # numpy's and scikit-learn's seeds


@dataclass(frozen=True)
class Setting:
    """One setting: values of `kind` ("int", "number", "bool", "text", "choice", "ints", "texts", "mapping"),
    within the bounds, or one of `also` (such as "auto"), or null when `null`."""

    kind: str
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | Callable[[], tuple] = ()
    also: tuple = ()
    null: bool = False
    odd: bool = False

    def options(self) -> tuple:
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def allowed(self) -> str:
        """What the setting accepts, as the error message says it."""
        if self.kind == "choice":
            what = _either(list(dict.fromkeys(show(c) for c in self.options())))  # 16 and "16" read alike
        elif self.ge is not None and self.le is not None:
            what = f"{self.noun()} in {show(self.ge)}..{show(self.le)}"
        else:
            ops = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            what = " ".join([self.noun(), " and ".join(f"{op} {show(b)}" for op, b in ops if b is not None)]).strip()
        what = _either([*(show(a) for a in self.also), what])
        return f"{what}, or null" if self.null else what

    def noun(self) -> str:
        return {
            "int": "an odd integer" if self.odd else "an integer",
            "number": "a finite number",
            "limit": "an integer count of batches >= 0 or a fraction in 0..1",
            "devices": "an integer >= 1, -1, auto, or a non-empty list of device indices >= 0",
            "bool": "true or false",
            "text": "a text",
            "ints": "a non-empty list of integers",
            "texts": "a list of texts" + (f" among {', '.join(self.options())}" if self.options() else ""),
            "mapping": "a mapping of names to values",
        }[self.kind]

    def problem(self, value) -> bool:
        """Whether `value` is refused."""
        if value is None:
            return not self.null
        if any(_same(value, a) for a in self.also):
            return False
        if self.kind == "choice":
            return not any(_same(value, c) for c in self.options())
        if self.kind == "ints":
            return not isinstance(value, list) or not value or any(self._bad_number(v, int) for v in value)
        if self.kind == "texts":
            choices = self.options()
            return not isinstance(value, list) or any(
                not isinstance(v, str) or (choices and v not in choices) for v in value
            )
        if self.kind == "devices":  # Lightning's: a count, all of them, or which ones
            if isinstance(value, list):
                return not value or any(not _whole(v) or v < 0 for v in value)
            return not (_same(value, -1) or _same(value, "auto") or (_whole(value) and value >= 1))
        if self.kind == "limit":  # Lightning's limit_*_batches: a count, or a fraction of the batches
            return (not isinstance(value, float) or not 0 <= value <= 1) if not _whole(value) else value < 0
        if self.kind == "mapping":
            return not isinstance(value, dict)
        if self.kind == "bool":
            return not isinstance(value, bool)
        if self.kind == "text":
            return not isinstance(value, str)
        return self._bad_number(value, int if self.kind == "int" else (int, float))

    def _bad_number(self, v, kind) -> bool:
        if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
            return True
        if self.odd and v % 2 == 0:
            return True
        return (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
        )


def _whole(value) -> bool:
    """An integer, and not a bool (True == 1 in Python; -1.0 == -1 is a float)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _same(value, option) -> bool:
    """Equal and of the same kind: true is not 1, "1" is not 1."""
    return type(value) is type(option) and value == option


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def show(value) -> str:
    """A value as it is written on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return f"[{','.join(show(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return str(value)


def Int(doc, ge=None, le=None, **kw):
    return Setting("int", doc, ge=ge, le=le, **kw)


def Num(doc, **kw):
    return Setting("number", doc, **kw)


def Bool(doc):
    return Setting("bool", doc)


def Choice(doc, *choices, null=False):
    """One of `choices`, or of what a single function returns (read when checked: no import before)."""
    return Setting("choice", doc, choices=choices[0] if callable(choices[0]) else choices, null=null)


def Text(doc, null=False):
    return Setting("text", doc, null=null)


def _activations() -> tuple:
    from ..model.backbones import ACTIVATIONS

    return tuple(ACTIVATIONS)


def _blocks() -> tuple:
    from ..model.backbones import BLOCKS

    return tuple(BLOCKS)


# Lightning's precision names (lightning.fabric.connector's _PRECISION_INPUT) and the project's `auto`
PRECISIONS = ("auto", "32-true", "bf16-mixed", "bf16-true", "16-mixed", "16-true", "64-true", "transformer-engine")
PRECISIONS += ("32", 32, "bf16", "16", 16, "64", 64)

SETTINGS: dict[str, Setting] = {
    # conf/config.yaml
    "seed": Int("seeds python, numpy, torch, the shuffles and the augmentation", ge=0, le=SEED_MAX),
    "lr": Num("AdamW learning rate, constant for the whole run", gt=0),
    "weight_decay": Num("AdamW weight decay", ge=0),
    "batch_size": Int("global batch size; a 1-sample batch is skipped (BatchNorm cannot train on it)", ge=2),
    "name": Text("sweep name: W&B group and multirun folder"),
    "output_dir": Text("the job's folder (null: Hydra's job folder)", null=True),
    "run_name": Text("W&B run name (null: the job's overrides)", null=True),
    "group": Text("W&B group (null: the sweep name and the overrides without the seed)", null=True),
    "resume": Choice("resume a cut-off job (force: with changed settings; false: start over)", True, False, "force"),
    "ckpt_path": Text("an explicit checkpoint to resume from", null=True),
    "metrics_every": Int("epochs between latent-geometry passes (0 = never; the last epoch always)", ge=0),
    "deepfool_samples": Int("seeded test images for DeepFool robustness (0 = skip)", ge=0),
    "save_latents": Bool("write the final latents, labels and predictions to latents.npz"),
    "protocol": Choice("the protocol group chosen (conf/protocol)", "default", "reference"),
    "metrics.splits": Setting("texts", "splits of the per-epoch latent metrics", choices=("train", "val")),
    "metrics.nc_labels": Choice("NC1 grouped by the true labels or the predictions", "labels", "pred"),
    "metrics.global_mean": Choice("mu_G: mean of all samples or of the class means", "samples", "class_means"),
    "metrics.train_augmented": Bool("train metrics on a seeded augmented view of the training split"),
    "metrics.hist_dims": Int("latent dimensions shown as W&B histograms", ge=0),
    "metrics.hist_every": Int("epochs between W&B pictures of the latents (0 = last epoch only)", ge=0),
    "metrics.deepfool_candidates": Int("top-k logits as DeepFool's candidate classes (null = all)", ge=2, null=True),
    "metrics.deepfool_overshoot": Num("DeepFool's overshoot", ge=0),
    "metrics.deepfool_max_iter": Int("DeepFool's iterations per image", ge=1),
    "metrics.deepfool_batch": Int("images per DeepFool batch", ge=1),
    "metrics.mahalanobis_reg": Num("added to each class covariance (scaled by its mean variance)", ge=0),
    # conf/data/*
    "data.name": Text("the data set's label in the records"),
    "data.root": Text("the folder of the data set, for imagefolder root/train/<class>/*"),
    "data.download": Bool("download CIFAR into root when it is missing"),
    "data.val_fraction": Num("stratified validation fraction of the training split (0 = none)", ge=0, lt=1),
    "data.test_fraction": Num("stratified test fraction held out (data sets without a test split)", gt=0, lt=1),
    "data.split_seed": Int("seed of the splits, fixed across runs", ge=0, le=SEED_MAX),
    "data.augment": Bool("random crop with zero padding and horizontal flip while training"),
    "data.pad": Int("zero padding of the random crop, pixels", ge=0),
    "data.flip": Bool("random horizontal flips"),
    "data.eval_batch_size": Int("batch size of the evaluation and metric passes", ge=1),
    "data.device_resident": Choice("keep every split on the GPU (auto: when training on CUDA)", *AUTO),
    "data.image_size": Int("side of the square images after resizing", ge=1),
    "data.channels": Choice("1 (grayscale) or 3 (RGB)", 1, 3),
    "data.shuffle": Bool("a new seeded order of the training split every epoch"),
    "data.skip_unreadable": Bool("leave out image files that cannot be read, with one warning (false: stop)"),
    "data.generator": Setting("mapping", "overrides of mnist1d's generator arguments (empty: the published set)"),
    # conf/backbone/*
    "backbone.name": Text("the backbone's label in the records"),
    "backbone.act": Choice("activation of every non-linear layer", _activations),
    "backbone.hidden": Setting("ints", "MLP hidden widths", ge=1),
    "backbone.block": Choice("ResNet block", _blocks),
    "backbone.layers": Setting("ints", "blocks per ResNet stage", ge=1),
    "backbone.width": Int("channels of the first ResNet stage", ge=1),
    "backbone.channels": Int("channels of each CNN1d convolution", ge=1),
    "backbone.kernel": Int("ResNet1d kernel size", ge=1, odd=True),
    # conf/head/*
    "head.name": Text("the head's label in the records"),
    "head.width": Int("latent width d (null for nopen)", ge=1, null=True),
    "head.gamma0": Num("gamma at epoch 0", ge=0),
    "head.gamma_factor": Num("gamma's factor every gamma_step epochs", gt=0),
    "head.gamma_step": Int("epochs between gamma's steps", ge=1),
    "head.gamma_max": Num("gamma's cap (null: none)", ge=0, null=True),
    # conf/trainer/* (Lightning's arguments; any other ++trainer.NAME goes to Lightning unchecked)
    "trainer.accelerator": Text("Lightning's accelerator: auto, cpu, gpu, ..."),
    "trainer.devices": Setting("devices", "devices of the job: a count, -1 or auto (all), or a list of indices"),
    "trainer.strategy": Text("Lightning's strategy: auto, ddp, ..."),
    "trainer.precision": Choice(
        "Lightning's precision (auto: bf16-mixed on GPUs that have it, else 32-true)", *PRECISIONS
    ),
    "trainer.max_epochs": Int("epochs to train", ge=1),
    "trainer.check_val_every_n_epoch": Int("epochs between validation passes", ge=1, null=True),
    "trainer.log_every_n_steps": Int("steps between Lightning's step logs", ge=1),
    "trainer.enable_progress_bar": Choice("progress bar (auto: when stdout is a terminal)", *AUTO),
    "trainer.deterministic": Choice("deterministic algorithms only", True, False, "warn"),
    "trainer.sync_batchnorm": Choice("BatchNorm statistics over all ranks (auto: on GPUs)", *AUTO),
    "trainer.limit_train_batches": Setting("limit", "train batches per epoch (Lightning's)"),
    "trainer.limit_val_batches": Setting("limit", "val batches per epoch (Lightning's)"),
    "trainer.limit_test_batches": Setting("limit", "test batches per epoch (Lightning's)"),
    "trainer.num_sanity_val_steps": Int("validation batches before training (-1: all)", ge=-1),
    # conf/runtime/default.yaml
    "runtime.compile": Choice("torch.compile the backbone (auto: on GPUs)", *AUTO),
    "runtime.compile_mode": Choice(
        "torch.compile mode", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs", null=True
    ),
    "runtime.cuda_graphs": Choice("the training step as one CUDA graph (auto: one GPU)", *AUTO),
    "runtime.cudnn_benchmark": Choice("cuDNN autotuning (auto: on GPUs unless deterministic)", *AUTO),
    "runtime.channels_last": Choice("NHWC memory format (auto: GPUs, and CPUs where oneDNN is safe)", *AUTO),
    "runtime.check_finite_every": Int(
        "steps between reads of the NaN flag (auto: 1 on CPU, 50 on GPU)", ge=1, also=("auto",)
    ),
    "runtime.sigterm_grace_s": Num(
        "seconds after SIGTERM before a job that has not stopped is killed (null: never)", gt=0, null=True
    ),
    "runtime.checkpoint_every_n_epochs": Int("epochs between refreshes of checkpoints/last.ckpt", ge=1),
    "runtime.threads": Int(
        "torch CPU threads (auto: cores // launcher jobs; null: torch's)", ge=1, also=("auto",), null=True
    ),
    # conf/logger/wandb.yaml
    "logger.project": Text("W&B project"),
    "logger.entity": Text("W&B entity (null: the default one)", null=True),
    "logger.mode": Choice("W&B mode (auto: online when logged in)", "auto", "online", "offline", "disabled"),
    "logger.tags": Setting("texts", "W&B tags besides the automatic ones"),
    "logger.job_type": Text("W&B job type"),
    "logger.init_timeout": Num("seconds an online run waits for the W&B host", gt=0),
}

# keys that conf/ fills in for the objects it builds: interpolations of the settings above, not settings
WIRING = ("_target_", "callbacks.", "head.net.", "logger.save_dir", "logger.group", "logger.run_name")


def is_wiring(key: str) -> bool:
    return key.split(".")[-1] == "_target_" or key.startswith(WIRING[1:])


def _lookup(cfg: DictConfig, key: str):
    """(present, missing, value) of `key` in `cfg`, the value resolved and as plain Python."""
    *parents, last = key.split(".")
    node = cfg
    for p in parents:
        node = node.get(p) if isinstance(node, DictConfig) else None
        if not isinstance(node, DictConfig):
            return False, False, None
    if last not in node.keys():  # `in` alone skips missing values
        return False, False, None
    if OmegaConf.is_missing(node, last):
        return True, True, None
    value = node[last]
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    return True, False, value


def check(cfg: DictConfig) -> None:
    """Refuse the first declared setting of `cfg` whose value is not allowed, in one line."""
    for key, setting in SETTINGS.items():
        present, missing, value = _lookup(cfg, key)
        if missing:
            raise ConfigError(f"{key} is needed here: add {key}=... ({setting.doc}; {setting.allowed()})")
        if present and setting.problem(value):
            raise ConfigError(f"{key}={show(value)}: must be {setting.allowed()}")


def check_data(cfg: DictConfig, dm) -> None:
    """What only the loaded data module `dm` shows (`run.build` refuses a stratified split that cannot be
    made): at least 2 classes, every class in every split, and a training epoch of at least one batch
    (the sampler skips 1-sample batches: `data/sampler.py`)."""
    import torch

    if dm.num_classes < 2:
        raise ConfigError(f"the data set {cfg.data.name} has {dm.num_classes} class: a classifier needs at least 2")
    for split in dm.splits:
        counts = torch.bincount(dm.y[split].cpu(), minlength=dm.num_classes)
        if empty := (counts == 0).nonzero().flatten().tolist():
            raise ConfigError(
                f"the {split} split of {cfg.data.name} ({len(dm.y[split])} samples) has no sample of class "
                f"{', '.join(map(str, empty[:5]))}{' ...' if len(empty) > 5 else ''}: every class needs samples "
                f"in every split (data.val_fraction={show(cfg.data.get('val_fraction'))})"
            )
    batches = len(dm.train_dataloader())
    limit = cfg.trainer.get("limit_train_batches")
    if limit is not None and batches:
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
    if batches == 0:
        _, world = ranks.rank_world()
        per = f" ({cfg.batch_size // world} per device on {world} devices)" if world > 1 else ""
        raise ConfigError(
            f"no training batch: {len(dm.y['train'])} training samples, batch_size={cfg.batch_size}{per}, "
            f"trainer.limit_train_batches={show(limit)} (a 1-sample batch is skipped): no optimizer step would run"
        )


class NotTrained(ConfigError):
    """A fit that made no optimizer step: nothing was trained, so the job has no results."""


def check_trained(trainer) -> None:
    """Refuse to call a run finished that made no optimizer step (its summary would be the untrained model's)."""
    if trainer.global_step == 0:
        raise NotTrained(
            f"no optimizer step in {trainer.current_epoch} epoch(s) ({trainer.num_training_batches} training "
            "batches per epoch): nothing was trained, no summary is written; check batch_size, "
            "trainer.limit_train_batches and the training split"
        )
