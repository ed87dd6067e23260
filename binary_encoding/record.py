"""The record of a run: what it writes where, in one place.

Every run folder holds (names below; `train`, `evaluate` and `report` read and write through them):
  config.yaml      the resolved config
  metrics.csv      one row per epoch (everything that was logged), written by `LocalRecord`
  summary.json     end-of-training values (`SUMMARY_INFO` keys + the metrics of `evaluation.final_metrics`)
  eval.json        the same metrics recomputed from the checkpoint by `python -m binary_encoding.evaluate`
  latents.npz      train/val/test latents, labels and predictions (with `save_latents=true`)
  failed.json      the error of a failed attempt (removed when the job is run again)
  checkpoints/last.ckpt   refreshed every epoch; a cut-off run resumes from it
  wandb/, wandb_id.txt    the W&B run and its id (a resumed job continues the same run)
"""

from __future__ import annotations

import csv
import json
import math
import os
import uuid
from pathlib import Path

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

CONFIG = "config.yaml"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
EVAL = "eval.json"
LATENTS = "latents.npz"
FAILED = "failed.json"
CHECKPOINTS = "checkpoints"
LAST_CKPT = "last.ckpt"
WANDB_ID = "wandb_id.txt"
DDP_CONFIG = "ddp_config.yaml"
# besides the metrics
SUMMARY_INFO = ("head", "backbone", "data", "seed", "lr", "epochs", "gamma", "diverged", "fit_seconds")


# config keys (prefixes) that do not define what a run trains: where and how it ran, what it logged, and
# keys derived from others; a resumed run may change them (job.py), and they split no report row (report.py)
NOT_DEFINING = (
    "output_dir", "run_name", "name", "resume", "ckpt_path", "logger", "runtime.", "callbacks.", "head.net.",
    "trainer.enable_progress_bar", "trainer.log_every_n_steps", "trainer.accelerator", "trainer.devices",
    "trainer.strategy", "trainer.sync_batchnorm", "metrics_every", "metrics.hist", "deepfool_samples", "save_latents",
)  # fmt: skip


def flat_config(node, prefix: str = "") -> dict:
    """A nested config (dict) as `{"a.b.c": value}`, the keys the lists above speak of."""
    if isinstance(node, dict):
        return {k: v for key, val in node.items() for k, v in flat_config(val, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


def last_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / LAST_CKPT


def run_summary(cfg, epochs: int, gamma: float, metrics: dict, fit_seconds: float, num_classes: int) -> dict:
    """What summary.json holds: the `SUMMARY_INFO` of the run and its end-of-training metrics."""
    info = (
        cfg.head.name,
        cfg.backbone.name,
        cfg.data.name,
        cfg.seed,
        cfg.lr,
        epochs,
        gamma,
        diverged(metrics.get("train_acc"), num_classes),
    )
    return {**dict(zip(SUMMARY_INFO, info)), **metrics, "fit_seconds": round(fit_seconds, 2)}


def diverged(train_acc: float | None, num_classes: int) -> bool:
    """A run that ends with a training accuracy below twice chance (1/C) has diverged: no learning rate
    of a working run ends there (e.g. lr=100 ends at 0.10 on digits, with 'agreement 1.0' of a
    constant code). Such runs are flagged in the summary and left out of the report's selection."""
    return train_acc is not None and train_acc == train_acc and train_acc < 2 / num_classes


class LocalRecord(Logger):
    """A Lightning logger that keeps `<dir>/metrics.csv`: one row per epoch holding exactly what was
    logged in that epoch (rank 0 only), rewritten atomically after every call, so results never
    depend on the network or on W&B and a crash loses nothing. When a run resumes, rows of the
    earlier attempt from the resumed epoch on are replaced."""

    def __init__(self, out_dir: str | Path):
        super().__init__()
        self.path = Path(out_dir) / METRICS
        self.rows: dict[int, dict] = {}
        self._resumed = False

    @property
    def name(self):
        return "local"

    @property
    def version(self):
        return 0

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        pass  # the resolved config is written by job.start()

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None):
        if "epoch" not in metrics:
            return  # end-of-fit values go to the summary
        epoch = int(metrics["epoch"])
        if not self._resumed:  # first call of this process: keep earlier epochs of a cut-off attempt
            self._resumed = True
            if self.path.exists():
                with open(self.path) as f:
                    self.rows = {int(r["epoch"]): r for r in csv.DictReader(f) if int(r["epoch"]) < epoch}
        row = self.rows.setdefault(epoch, {"epoch": epoch})
        row["step"] = step
        row.update({k: float(v) for k, v in metrics.items() if k != "epoch"})
        self._write()

    def _write(self):
        rows = [self.rows[e] for e in sorted(self.rows)]
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path)  # atomic: a crash never leaves a half-written record


def write_json(path: str | Path, obj) -> None:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        return v

    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: clean(v) for k, v in obj.items()}, indent=2, default=str))
    tmp.replace(path)


def wandb_run_id(out: str | Path) -> str:
    """The job's W&B run id, kept in `<out>/wandb_id.txt`: a resumed or requeued job continues its run."""
    id_file = Path(out) / WANDB_ID
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:12])
    return id_file.read_text().strip()


def wandb_logger(
    save_dir: str,
    project: str = "binary_encoding",
    entity: str | None = None,
    mode: str = "auto",
    tags=(),
    group: str | None = None,
    job_type: str | None = None,
    run_name: str | None = None,
    run_config: dict | None = None,
):
    """The W&B logger of one job (`conf/logger/wandb.yaml`). Online when logged in, offline otherwise; the
    run id is kept in the run folder so that a resumed job continues the same W&B run."""
    from lightning.pytorch.loggers import WandbLogger

    os.environ.setdefault("WANDB_SILENT", "true")  # keep the console to the progress bar and the summary
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if _wandb_logged_in() else "offline")
    logger = WandbLogger(
        project=project,
        entity=entity,
        group=group,
        job_type=job_type,
        name=run_name,
        id=wandb_run_id(save_dir),
        resume="allow",
        save_dir=str(save_dir),
        mode=mode,
        tags=list(tags or []),
        config=run_config,
    )
    logger._wandb_init.pop("anonymous", None)  # Lightning passes a deprecated key that makes wandb warn
    return logger


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        import netrc

        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def format_summary(s: dict, out) -> str:
    """The few lines a finished run prints."""
    lines = [
        f"== {s['data']} / {s['backbone']} / {s['head']} (seed {s['seed']}, lr {s['lr']:g}, "
        f"{s['epochs']} epochs, {s['fit_seconds']:.0f} s) =="
    ]
    accs = "  ".join(f"{k[:-4]} {s[k]:.4f}" for k in ("train_acc", "val_acc", "test_acc") if k in s)
    lines.append(f"accuracy      {accs}")
    lines.append(
        f"latent codes  {s['n_codes']} distinct; the most common C codes hold "
        f"{100 * s['top_codes_fraction']:.2f}% of training samples"
    )
    lines.append(f"agreement     per-dimension {s['agreement_dim']:.4f}  joint code {s['agreement_code']:.4f}")
    lines.append(f"NC1           {s['nc1']:.3e}   (gamma at the end: {s['gamma']:.4g})")
    ref = (
        f" (reference estimator {s['mahalanobis_auroc_ref']:.4f})" if s.get("mahalanobis_auroc_ref") is not None else ""
    )
    lines.append(
        f"reliability   Mahalanobis AUROC {s['mahalanobis_auroc']:.4f}{ref}  max-softmax AUROC {s['msp_auroc']:.4f}"
    )
    if "deepfool_rho" in s:
        lines.append(
            f"robustness    DeepFool rho {s['deepfool_rho']:.4f} over {s['deepfool_images']} test images "
            f"({s['deepfool_rho_correct']:.4f} on the correctly classified)"
        )
    if s.get("diverged"):
        lines.append(
            f"DIVERGED      the final training accuracy {s['train_acc']:.4f} is at chance level: every "
            "number above describes a broken run (lower the learning rate)"
        )
    lines.append(f"record        {out}")
    return "\n".join(lines)
