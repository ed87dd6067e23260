"""Train one model: `python -m binary_encoding.train [overrides]` (add `-m` for a sweep).

`main` is the thin Hydra entry point; `train(cfg)` is a plain function that tests and notebooks call.
Every run writes, in its output directory:
  config.yaml      the resolved config
  metrics.csv      one row per epoch (everything that was logged)
  summary.json     final accuracies and latent-code statistics
  checkpoints/     last.ckpt, refreshed every epoch (a cut-off run resumes from it)
  wandb/           the W&B run (online, or offline for a later `wandb sync`)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import traceback
import uuid
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from lightning.pytorch.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .backbones import BACKBONES, build_backbone
from .callbacks import GammaScheduler, LocalRecord, write_json
from .data import DATASETS, build_datamodule
from .heads import HEADS, Classifier, Head
from .evaluation import EndOfFitMetrics, LatentMetrics
from .module import BinaryEncodingModule

log = logging.getLogger("binary_encoding")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


class ConfigError(ValueError):
    """A configuration that cannot run; raised before any training."""


def validate(cfg: DictConfig) -> None:
    """Check the config before anything is built or trained."""
    def choice(value, options, what):
        if value not in options:
            raise ConfigError(f"unknown {what[0]} {value!r} ({what[1]}=...); choose one of {list(options)}")

    choice(cfg.data.name, DATASETS, ("data set", "data"))
    choice(cfg.backbone.name, BACKBONES, ("backbone", "backbone"))
    choice(cfg.head.name, HEADS, ("head", "head"))
    for key in ("lr", "batch_size"):
        if not cfg[key] > 0:
            raise ConfigError(f"{key} must be positive, got {cfg[key]}")
    if cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {cfg.weight_decay}")
    if not cfg.trainer.max_epochs > 0:
        raise ConfigError(f"trainer.max_epochs must be positive, got {cfg.trainer.max_epochs}")
    if cfg.head.name != "nopen" and not (cfg.head.width or 0) > 0:
        raise ConfigError(f"head.width must be a positive integer for head={cfg.head.name}, got {cfg.head.width}")
    if cfg.head.gamma0 < 0 or cfg.head.gamma_factor <= 0 or cfg.head.gamma_step < 1:
        raise ConfigError("need head.gamma0 >= 0, head.gamma_factor > 0 and head.gamma_step >= 1")
    if cfg.head.name == "binenc" and str(cfg.trainer.precision) in ("16", "16-mixed", "16-true"):
        raise ConfigError(f"trainer.precision={cfg.trainer.precision}: fp16 overflows at 65,504 and gamma grows to "
                          "1e5 and beyond with head=binenc; use bf16-mixed (auto picks it on GPUs) or 32-true")
    if str(cfg.trainer.get("cuda_graphs", False)) not in ("True", "False", "auto"):
        raise ConfigError(f"trainer.cuda_graphs must be true, false or auto, got {cfg.trainer.cuda_graphs!r}")
    if cfg.trainer.get("cuda_graphs") is True:
        if not on_gpu(cfg):
            raise ConfigError("trainer.cuda_graphs=true needs a CUDA GPU (and trainer.accelerator auto or gpu)")
        if num_devices(cfg) > 1:
            raise ConfigError("trainer.cuda_graphs=true is for one GPU; DDP jobs (trainer.devices > 1) run without")
    if cfg.data.name == "imagefolder":
        root = OmegaConf.select(cfg, "data.root", throw_on_missing=False)
        if root in (None, "???") or not Path(str(root)).expanduser().is_dir():
            raise ConfigError(f"data=imagefolder needs data.root=DIR, an existing folder; got {root!r}")


def resolve_output_dir(cfg: DictConfig) -> Path:
    if cfg.get("output_dir"):
        return Path(cfg.output_dir)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path("outputs") / str(cfg.name) / time.strftime("%Y-%m-%d_%H-%M-%S")


def run_name(cfg: DictConfig) -> str:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        name = HydraConfig.get().job.override_dirname
        if name:
            return name
    return f"head={cfg.head.name},seed={cfg.seed}"


def resolve_precision(precision, gpu: bool | None = None) -> str:
    """`auto`: bf16-mixed when training on a GPU that supports it, else 32-true (never fp16)."""
    if str(precision) != "auto":
        return str(precision)
    gpu = torch.cuda.is_available() if gpu is None else gpu
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def on_gpu(cfg: DictConfig) -> bool:
    acc = str(cfg.trainer.accelerator)
    return torch.cuda.is_available() and acc in ("auto", "gpu", "cuda")


def _auto(value, default: bool) -> bool:
    return default if str(value) == "auto" else bool(value)


def cudnn_benchmark(cfg: DictConfig) -> bool:
    """torch.backends.cudnn.benchmark: time the convolution algorithms once per input shape and keep the
    fastest (the shapes here are few and fixed); auto = on GPUs, unless the run asks to be deterministic."""
    return _auto(cfg.trainer.get("cudnn_benchmark", "auto"), on_gpu(cfg) and not cfg.trainer.deterministic)


def build_net(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> Classifier:
    """The backbone and head that `cfg` describes (eager, default memory format)."""
    b = cfg.backbone
    backbone = build_backbone(b.name, input_shape, act=b.get("act", "silu"), hidden=tuple(b.get("hidden", (256, 256))),
                              width=b.get("width", 64))
    return Classifier(backbone, Head(cfg.head.name, backbone.num_features, num_classes, cfg.head.width, act=backbone.act))


def build_model(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> BinaryEncodingModule:
    b, t = cfg.backbone, cfg.trainer
    net = build_net(cfg, input_shape, num_classes)
    backbone, head = net.backbone, net.head
    gpu = on_gpu(cfg)
    # the whole training step as one CUDA graph (step_graph.py): 8.8x the compiled eager step on an H200
    # (42,940 against 4,859 img/s); auto = on a single GPU (not under DDP)
    graphs = _auto(t.get("cuda_graphs", "auto"), gpu and num_devices(cfg) == 1)
    module = BinaryEncodingModule(backbone, head, num_classes, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  gamma0=cfg.head.gamma0,
                                  # reading the device-side NaN flag syncs the host: every step on CPU, every 50 on GPU
                                  check_finite_every=int(t.get("check_finite_every", 50 if gpu else 1)),
                                  # NHWC convolutions: tensor-core kernels on GPUs, and 1.2-1.4x on CPUs (oneDNN; `make bench`)
                                  channels_last=_auto(t.get("channels_last", "auto"), b.name != "mlp"),
                                  cuda_graphs=graphs)
    # torch.compile on GPUs, with or without the step graph (H200, benchmarks/results/h200_2026-11-27b_step_graph:
    # the graphed step 42,940 img/s compiled against 39,077 eager, and the per-epoch metric pass, which runs
    # outside the graph, 0.23 s compiled against 2.28 s eager); it costs ~30 s once per job
    if _auto(t.get("compile", "auto"), gpu):
        # in place: parameter names (and checkpoints) stay those of the eager model
        backbone.compile(mode=t.get("compile_mode") or None)
    return module


def wandb_logger(cfg: DictConfig, out: Path):
    """W&B logger for this job, or None. Online when logged in, offline otherwise; the run id is kept
    in the output directory so that a resumed job continues the same W&B run."""
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")  # keep the console to the progress bar and the summary
    mode = cfg.logger.get("mode", "auto")
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_logged_in() else "offline")
    logger = WandbLogger(project=cfg.logger.project, entity=cfg.logger.get("entity"), group=str(cfg.name),
                         job_type=cfg.head.name, name=cfg.run_name, id=wandb_run_id(out), resume="allow",
                         save_dir=str(out), mode=mode, tags=list(cfg.logger.get("tags") or []),
                         config=OmegaConf.to_container(cfg, resolve=True))
    logger._wandb_init.pop("anonymous", None)  # Lightning passes a deprecated key that makes wandb warn
    return logger


def wandb_run_id(out: Path) -> str:
    """The job's W&B run id, kept in `<out>/wandb_id.txt`: a resumed or requeued job continues its run."""
    id_file = out / "wandb_id.txt"
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:12])
    return id_file.read_text().strip()


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed",
                 "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.distributed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*exists and is not empty.*")  # resuming into the same folder
    # latent metrics (splits gathered from all ranks) and the training sums (reduced by the module) are
    # identical on every rank when logged: no further reduction is needed
    warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")


def train(cfg: DictConfig, callbacks: list | None = None) -> dict:
    """Train one model as `cfg` says; returns the summary (also written to summary.json).

    Sweep-safe: a job whose folder already holds summary.json is skipped (its summary returned); a
    job cut off earlier resumes from checkpoints/last.ckpt; a failure is recorded in failed.json and
    re-raised (Hydra's launcher then runs the remaining jobs and reports the failure at the end).
    With `trainer.devices > 1` the job starts its own ranks with torch.distributed.run.
    """
    _quiet_lightning()
    out = resolve_output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    worker = "LOCAL_RANK" in os.environ
    rank0 = int(os.environ.get("RANK", 0)) == 0
    done = out / "summary.json"
    if not worker and done.exists() and cfg.get("resume", True) and cfg.get("ckpt_path") is None:
        print(f"already finished: {out} (remove its summary.json to train it again)")
        return json.loads(done.read_text())
    if rank0:
        (out / "failed.json").unlink(missing_ok=True)
    try:
        validate(cfg)
        with open_dict(cfg):
            cfg.output_dir = str(out)
            cfg.run_name = cfg.get("run_name") or run_name(cfg)
        if rank0:
            (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        if not worker and num_devices(cfg) > 1:
            return launch_ddp(cfg, out)
        return _fit(cfg, out, callbacks)
    except BaseException as err:
        if rank0:
            write_json(out / "failed.json", {"error": f"{type(err).__name__}: {err}", "time": time.strftime("%c"),
                                             "traceback": traceback.format_exc()})
        raise


def num_devices(cfg: DictConfig) -> int:
    """How many processes the job's trainer wants (DDP when > 1)."""
    t = cfg.trainer
    if str(t.strategy) not in ("auto", "ddp", "ddp_find_unused_parameters_true"):
        return 1  # other strategies (ddp_spawn, ...) start their own processes
    d = t.devices
    if isinstance(d, (list, tuple, ListConfig)):
        return len(d)
    if str(d) in ("-1", "auto"):
        return max(1, torch.cuda.device_count()) if on_gpu(cfg) else 1
    return int(d)


def launch_ddp(cfg: DictConfig, out: Path) -> dict:
    """Run this one job on `trainer.devices` ranks with torch.distributed.run.

    Each job gets its own process group on a free port (--standalone), so jobs of a Hydra sweep never
    share or re-launch each other; if one rank fails, torch.distributed.run stops the others and the
    job fails instead of hanging. Rank 0 writes the record; the job's W&B run id is fixed beforehand.
    """
    n = num_devices(cfg)
    if cfg.logger.name == "wandb":
        wandb_run_id(out)
    path = out / "ddp_config.yaml"
    OmegaConf.save(cfg, path, resolve=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "binary_encoding.ddp_worker", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    result = subprocess.run(cmd, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"DDP job on {n} ranks failed (exit code {result.returncode}); the ranks' output is "
                           f"above and the record in {out}")
    return json.loads((out / "summary.json").read_text())


def _fit(cfg: DictConfig, out: Path, callbacks: list | None) -> dict:
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    dm = build_datamodule(cfg.data.name, **{k: v for k, v in OmegaConf.to_container(cfg.data).items() if k != "name"},
                          batch_size=cfg.batch_size, seed=cfg.seed)
    dm.prepare_data()
    dm.setup("fit")
    if cfg.head.name != "nopen" and 2 ** cfg.head.width < dm.num_classes:
        warnings.warn(f"head.width={cfg.head.width} gives {2 ** cfg.head.width} binary codes for {dm.num_classes} "
                      f"classes: classes must share codes (need width >= {(dm.num_classes - 1).bit_length()})",
                      stacklevel=2)
    module = build_model(cfg, dm.input_shape, dm.num_classes)
    rank = int(os.environ.get("RANK", 0))
    if rank:  # same initial weights on every rank (seeded above), but each rank its own augmentation draws
        torch.manual_seed(cfg.seed + 1_000_003 * rank)

    t = cfg.trainer
    ckpt_dir = out / "checkpoints"
    # One file, checkpoints/last.ckpt, overwritten every `checkpoint_every_n_epochs` epochs.
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1,
                                                     enable_version_counter=False,
                                                     every_n_epochs=t.get("checkpoint_every_n_epochs", 1))
    h, m = cfg.head, cfg.metrics
    final = EndOfFitMetrics(cfg.deepfool_samples, m.deepfool_candidates, m.deepfool_overshoot, m.deepfool_max_iter,
                            m.deepfool_batch, m.mahalanobis_reg, seed=cfg.seed, save_latents=cfg.save_latents,
                            out_dir=out, nc_labels=m.nc_labels)
    cbs = [GammaScheduler(h.gamma0, h.gamma_factor, h.gamma_step, h.gamma_max),
           LatentMetrics(cfg.metrics_every, m.splits, m.nc_labels, m.global_mean, m.hist_dims, m.hist_every),
           final, checkpoint, *(callbacks or [])]
    loggers = [wandb_logger(cfg, out)] if cfg.logger.name == "wandb" else []
    plugins = []
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a rank started by launch_ddp, possibly inside a SLURM task
        plugins.append(TorchElasticEnvironment())
    elif SLURMEnvironment.detect():  # requeueing is the launcher's job
        plugins.append(SLURMEnvironment(auto_requeue=False))
    trainer = L.Trainer(accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                        sync_batchnorm=_auto(t.get("sync_batchnorm", False), on_gpu(cfg)),
                        precision=resolve_precision(t.precision, on_gpu(cfg)), max_epochs=t.max_epochs,
                        check_val_every_n_epoch=t.check_val_every_n_epoch, log_every_n_steps=t.log_every_n_steps,
                        enable_progress_bar=t.enable_progress_bar, deterministic=t.deterministic,
                        benchmark=cudnn_benchmark(cfg),
                        enable_model_summary=False, use_distributed_sampler=False, callbacks=cbs,
                        logger=[*loggers, LocalRecord(out)], plugins=plugins, default_root_dir=str(out))

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is None and cfg.get("resume", True) and (ckpt_dir / "last.ckpt").exists():
        ckpt_path = str(ckpt_dir / "last.ckpt")
        log.info("resuming from %s", ckpt_path)
    ok = False
    try:
        start = time.time()
        trainer.fit(module, dm, ckpt_path=ckpt_path)
        if trainer.interrupted:
            raise KeyboardInterrupt("training was interrupted; resume by running the same command again")
        summary = {"head": cfg.head.name, "backbone": cfg.backbone.name, "data": cfg.data.name, "seed": cfg.seed,
                   "lr": cfg.lr, "epochs": trainer.current_epoch, "gamma": float(module.gamma),
                   **final.results, "fit_seconds": round(time.time() - start, 2)}
        if trainer.is_global_zero:
            write_json(out / "summary.json", summary)
            for lg in loggers:
                lg.experiment.summary.update({f"final/{k}": v for k, v in summary.items()
                                              if isinstance(v, (int, float))})
            print(format_summary(summary, out))
            if any(lg._wandb_init.get("mode") == "offline" for lg in loggers):
                print(f"W&B (offline; upload with: wandb sync {out}/wandb/offline-run-*)")
        ok = True
        return summary
    finally:
        if loggers:
            import wandb

            wandb.finish(exit_code=0 if ok else 1)  # every job closes its own run, failed ones marked so


def format_summary(s: dict, out: Path) -> str:
    lines = [f"== {s['data']} / {s['backbone']} / {s['head']} (seed {s['seed']}, lr {s['lr']:g}, "
             f"{s['epochs']} epochs, {s['fit_seconds']:.0f} s) =="]
    accs = "  ".join(f"{k[:-4]} {s[k]:.4f}" for k in ("train_acc", "val_acc", "test_acc") if k in s)
    lines.append(f"accuracy      {accs}")
    lines.append(f"latent codes  {s['n_codes']} distinct; the most common C codes hold "
                 f"{100 * s['top_codes_fraction']:.2f}% of training samples")
    lines.append(f"agreement     per-dimension {s['agreement_dim']:.4f}  joint code {s['agreement_code']:.4f}")
    lines.append(f"NC1           {s['nc1']:.3e}   (gamma at the end: {s['gamma']:.4g})")
    lines.append(f"reliability   Mahalanobis AUROC {s['mahalanobis_auroc']:.4f}  max-softmax AUROC {s['msp_auroc']:.4f}")
    if "deepfool_rho" in s:
        lines.append(f"robustness    DeepFool rho {s['deepfool_rho']:.4f} over {s['deepfool_images']} test images "
                     f"({s['deepfool_rho_correct']:.4f} on the correctly classified)")
    lines.append(f"record        {out}")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float:
    summary = train(cfg)
    return summary.get("val_acc", float("nan"))


if __name__ == "__main__":
    main()
