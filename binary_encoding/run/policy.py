"""Config checks and device policies: what a config may say, and what `auto` means on this machine.

`validate(cfg)` runs before anything is built or written: every declared setting (`settings.py`), then
the checks that no single value shows; every `auto` of `conf/trainer` and `conf/runtime` is
resolved here (precision, sync_batchnorm, the progress bar, compile, CUDA graphs, channels_last,
cuDNN autotuning, how often the NaN flag is read), and `trainer_kwargs(cfg)` turns `cfg.trainer`
into the arguments of `lightning.Trainer`, every key passed through. torch is imported only inside
the functions that need it: the command line checks `moved_key_message` before anything heavy is loaded.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from .settings import ConfigError, check

# the project's own switches (every key of conf/runtime/), refused under `trainer`, which holds Lightning's
# arguments only: some lived there once, and Lightning would fail on the others with its own error
MOVED = {
    f"trainer.{k}": f"runtime.{k}"
    for k in (
        "compile",
        "compile_mode",
        "cuda_graphs",
        "cudnn_benchmark",
        "channels_last",
        "check_finite_every",
        "checkpoint_every_n_epochs",
        "threads",
        "sigterm_grace_s",
    )
}


_ABSENT = object()  # OmegaConf.select's answer for a key that is not there (None is a value)


def moved_key_message(overrides: list[str]) -> str | None:
    """A message for command-line overrides that name a key that moved (None if none does)."""
    for arg in overrides:
        key = arg.lstrip("+~").split("=", 1)[0]
        if key in MOVED:
            return f"{key} moved to {MOVED[key]}: write {arg.replace(key, MOVED[key], 1).lstrip('+')}"
    return None


LAUNCHER_PLUGINS = {
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "local_parallel": ("hydra_plugins.hydra_joblib_launcher", "parallel"),
}


def missing_launcher_message(overrides: list[str]) -> str | None:
    """A message when `hydra/launcher=...` names a preset whose Hydra plugin is not installed."""
    for arg in overrides:
        if arg.startswith("hydra/launcher="):
            name = arg.split("=", 1)[1]
            for prefix, (module, extra) in LAUNCHER_PLUGINS.items():
                if name.startswith(prefix) and not _importable(module):
                    return (
                        f"hydra/launcher={name} needs its Hydra plugin: pip install "
                        f'"binary_encoding[{extra}]" (or pip install -e ".[{extra}]" in a checkout)'
                    )
    return None


def _importable(module: str) -> bool:
    """Whether `module` can be imported; False also when a parent package is missing (find_spec raises
    then: with no Hydra plugin installed at all there is no `hydra_plugins` namespace package)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def unknown_choice_message(argv: list[str]) -> str | None:
    """A one-line message when a command line names a choice that no config group has (`head=binenk`,
    `experiment=cifar10_resnet81`, `debug=fsat`, also `+group=`, `group@pkg=`, sweeps `head=a,b` and
    `hydra/launcher=...`), else None. Hydra accepts an unknown choice of an optional group silently (the
    default is trained) and reports one of a required group in many lines; this check runs on the command
    line before Hydra, with Hydra's own parser and config search path (plugins' configs, `hydra.searchpath`
    and `--config-dir` included), so a sweep fails before its first job. Anything it cannot read (a
    malformed override) is left to Hydra."""
    # Hydra has no public API for its config repository and its command-line parser (what its own
    # `@hydra.main` uses): these are Hydra 1.3's internal modules, covered by tests/test_command_line.py
    from hydra._internal.config_repository import ConfigRepository
    from hydra._internal.utils import create_config_search_path, get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    from .conf import CONF_DIR

    try:
        args, _ = get_args_parser().parse_known_args(argv)
        overrides = OverridesParser.create().parse_overrides(args.overrides or [])
    except (Exception, SystemExit):
        return None
    search_path = create_config_search_path(CONF_DIR)
    for extra in [f"file://{args.config_dir}"] if args.config_dir else []:
        search_path.append("command-line", extra)
    for o in overrides:
        if o.key_or_group == "hydra.searchpath" and not o.is_delete():
            for path in o.value() if isinstance(o.value(), list) else [o.value()]:
                search_path.append("command-line", str(path))
    repo = ConfigRepository(search_path)
    for o in overrides:
        if o.is_delete() or "." in o.key_or_group or not repo.group_exists(o.key_or_group):
            continue
        if o.value_type == ValueType.GLOB_CHOICE_SWEEP:
            continue  # glob(...) picks among the existing choices
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else o.value()
        values = values if isinstance(values, list) else [values]
        options = repo.get_group_options(o.key_or_group)
        for value in values:
            if value is not None and str(value) != "null" and str(value) not in options:
                return (
                    f"{o.key_or_group}={value}: no such choice in the config group {o.key_or_group}. "
                    f"Available options: {', '.join(options)}"
                )
    return None


def _auto(value, default: bool) -> bool:
    return default if str(value) == "auto" else bool(value)


# the paper's baselines are defined by a plain cross-entropy: a gamma override would make them binenc
WITHOUT_GAMMA = ("linpen", "nonlinpen", "nopen")


def validate(cfg: DictConfig) -> None:
    """Check the config before anything is built or trained: every declared setting (`settings.check`),
    then what no single value shows."""
    for old, new in MOVED.items():  # present at all: a config file's `trainer.compile_mode: null` too
        if OmegaConf.select(cfg, old, default=_ABSENT) is not _ABSENT:
            raise ConfigError(f"{old} moved to {new}")
    check(cfg)
    if cfg.head.gamma0 > 0 and str(cfg.trainer.precision) in ("16", "16-mixed", "16-true"):
        raise ConfigError(
            f"trainer.precision={cfg.trainer.precision}: fp16 overflows at 65,504 and gamma grows to "
            "1e5 and beyond with head=binenc; use bf16-mixed (auto picks it on GPUs) or 32-true"
        )
    if cfg.head.name in WITHOUT_GAMMA and cfg.head.gamma0 != 0:
        raise ConfigError(
            f"head={cfg.head.name} trains without the gamma term (its definition), but head.gamma0="
            f"{cfg.head.gamma0}: the linear head with the term is head=binenc; set head.gamma* per head"
        )
    net = str(OmegaConf.select(cfg, "head.net._target_", default=""))
    if net.endswith(".NoPenultimate") and cfg.head.get("width") is not None:
        raise ConfigError(f"head.width={cfg.head.width}: head={cfg.head.name} has no latent layer, its width is null")
    if net.endswith((".LinearHead", ".NonLinearHead")) and cfg.head.get("width") is None:
        raise ConfigError(f"head.width=null: head={cfg.head.name} needs a latent width, an integer >= 1")
    if cfg.runtime.cuda_graphs is True:
        if not on_gpu(cfg):
            raise ConfigError("runtime.cuda_graphs=true needs a CUDA GPU (and trainer.accelerator auto or gpu)")
        if num_devices(cfg) > 1:
            raise ConfigError("runtime.cuda_graphs=true is for one GPU; DDP jobs (trainer.devices > 1) run without")
    if "_target_" in cfg.data and cfg.data._target_.endswith("ImageFolderDataModule"):
        if not Path(str(cfg.data.root)).expanduser().is_dir():
            raise ConfigError(f"data=imagefolder needs data.root=DIR, an existing folder; got {cfg.data.root!r}")


class CheckFirst(Callback):
    """A Hydra callback (`hydra.callbacks` in conf/config.yaml): a single run's settings are checked
    before Hydra makes its folder, so a refused run leaves nothing behind (one line, exit 2). A sweep's
    jobs are checked by `train` (each refusal in its job's failed.json, the other jobs run)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            validate(config)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None


def on_gpu(cfg: DictConfig) -> bool:
    import torch

    return torch.cuda.is_available() and str(cfg.trainer.accelerator) in ("auto", "gpu", "cuda")


def num_devices(cfg: DictConfig) -> int:
    """How many processes the job's trainer wants (DDP when > 1)."""
    import torch

    t = cfg.trainer
    if str(t.strategy) not in ("auto", "ddp", "ddp_find_unused_parameters_true"):
        return 1  # other strategies (ddp_spawn, ...) start their own processes
    d = t.devices
    if isinstance(d, (list, tuple, ListConfig)):
        return len(d)
    if str(d) in ("-1", "auto"):
        return max(1, torch.cuda.device_count()) if on_gpu(cfg) else 1
    return int(d)


def resolve_precision(precision, gpu: bool | None = None) -> str:
    """`auto`: bf16-mixed when training on a GPU that supports it, else 32-true (never fp16)."""
    if str(precision) != "auto":
        return str(precision)
    import torch

    gpu = torch.cuda.is_available() if gpu is None else gpu
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def cudnn_benchmark(cfg: DictConfig) -> bool:
    """torch.backends.cudnn.benchmark: time the convolution algorithms once per input shape and keep the
    fastest (the shapes here are few and fixed); auto = on GPUs, unless the run asks to be deterministic."""
    return _auto(cfg.runtime.cudnn_benchmark, on_gpu(cfg) and not cfg.trainer.deterministic)


def cuda_graphs(cfg: DictConfig) -> bool:
    """The whole training step as one CUDA graph (model/step_graph.py): 8.8x the compiled eager step on an H200
    (42,940 against 4,859 img/s, benchmarks/results/h200_2026-11-27b_step_graph); auto = one GPU, no DDP."""
    return _auto(cfg.runtime.cuda_graphs, on_gpu(cfg) and num_devices(cfg) == 1)


def compile_backbone(cfg: DictConfig) -> bool:
    """torch.compile on GPUs, with or without the step graph (H200: the graphed step 42,940 img/s compiled
    against 39,077 eager, and the per-epoch metric pass, which runs outside the graph, 0.23 s compiled
    against 2.28 s eager); it costs ~30 s once per job. Compiling for the CPU was slower (digits MLP)."""
    return _auto(cfg.runtime.compile, on_gpu(cfg))


# Strided convolutions with fewer input channels than this are kept out of NHWC on CPUs. Measured with torch
# 2.14.1 (oneDNN 3.12) on an AMD EPYC with AVX2 and no AVX-512: the weight gradient of a 1x1 stride-2 Conv2d
# with 2 to 7 input channels in NHWC corrupts the heap (1 thread: exit 139 or 134 on every try; 2 threads: a
# hang at 100% that ignores SIGTERM); 1 or 8 and more input channels, stride 1, 3x3 kernels, NCHW, or oneDNN
# switched off all run (tests/test_channels_last.py holds the bisection). The rule, with a margin: no strided
# Conv2d of any kernel size reading fewer than 8 channels. A ResNet's shortcut reads `width` channels.
CPU_NHWC_MIN_CHANNELS = 8


def cpu_nhwc_unsafe(backbone) -> list[str]:
    """The strided Conv2d layers of `backbone` that read fewer than `CPU_NHWC_MIN_CHANNELS` channels."""
    import torch

    return [
        name
        for name, m in backbone.named_modules()
        if isinstance(m, torch.nn.Conv2d) and max(m.stride) > 1 and m.in_channels < CPU_NHWC_MIN_CHANNELS
    ]


def channels_last(cfg: DictConfig, backbone) -> bool:
    """NHWC convolutions; auto = for conv backbones on GPUs (tensor-core kernels), and on CPUs only where no
    strided convolution reads fewer than 8 channels (`cpu_nhwc_unsafe`: oneDNN's kernels crash there). On
    CPUs NHWC measured 1.22x (width 8) and 1.31x (width 16) the NCHW step of a ResNet18 with 1 thread
    (docs/performance.md). `true` is kept as asked, with a one-line warning where the kernels crash."""
    import torch

    if not any(isinstance(m, torch.nn.Conv2d) for m in backbone.modules()):
        return _auto(cfg.runtime.channels_last, False)
    unsafe = [] if on_gpu(cfg) else cpu_nhwc_unsafe(backbone)
    if str(cfg.runtime.channels_last) == "auto":
        return not unsafe
    if cfg.runtime.channels_last and unsafe:
        logging.getLogger("binary_encoding").warning(
            f"runtime.channels_last=true on a CPU with strided convolutions of fewer than {CPU_NHWC_MIN_CHANNELS} "
            f"input channels ({', '.join(unsafe[:3])}): oneDNN crashed or hung there on AVX2 CPUs; auto avoids it"
        )
    return bool(cfg.runtime.channels_last)


def sigterm_grace_s(cfg: DictConfig) -> float | None:
    """Seconds a job may take to stop after SIGTERM before the watchdog kills it (`run/watchdog.py`);
    None: no watchdog. The value is checked with every setting (`settings.py`); a config.yaml made before
    the key existed gets the default."""
    return cfg.runtime.get("sigterm_grace_s", 60)


def check_finite_every(cfg: DictConfig) -> int:
    """Reading the device-side NaN flag syncs the host: every step on CPU, every 50 on GPU."""
    v = cfg.runtime.check_finite_every
    return (50 if on_gpu(cfg) else 1) if str(v) == "auto" else int(v)


def trainer_kwargs(cfg: DictConfig) -> dict:
    """`cfg.trainer` as `lightning.Trainer` arguments: every key passed through, `auto`s resolved."""
    kw = OmegaConf.to_container(cfg.trainer, resolve=True)
    kw["precision"] = resolve_precision(kw.get("precision", "auto"), on_gpu(cfg))
    if "sync_batchnorm" in kw:
        kw["sync_batchnorm"] = _auto(kw["sync_batchnorm"], on_gpu(cfg))
    kw["enable_progress_bar"] = _auto(kw.get("enable_progress_bar", "auto"), sys.stdout.isatty())
    return {"enable_model_summary": False, "use_distributed_sampler": False, "benchmark": cudnn_benchmark(cfg), **kw}
