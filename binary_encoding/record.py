"""The record of a run: what it writes where, in one place.

Every run folder holds (names below; `train`, `evaluate` and `report` read and write through them):
  config.yaml      the resolved config
  metrics.csv      one row per epoch (everything that was logged), written by `LocalRecord`
  summary.json     end-of-training values (`SUMMARY_INFO` keys + the metrics of `evaluation.final_metrics`)
  eval.json        the same metrics recomputed from the checkpoint by `python -m binary_encoding.evaluate`
  latents.npz      train/val/test latents, labels and predictions (with `save_latents=true`)
  failed.json      the error of a failed attempt (removed when the job is run again)
  train.log        the job's log: one line per epoch (`console.EpochLog`), Hydra's messages
  checkpoints/last.ckpt   refreshed every epoch; a cut-off run resumes from it
  wandb/, wandb_id.txt    the W&B run and its id (a resumed job continues the same run)
"""

from __future__ import annotations

import csv
import json
import math
import os
import shlex
import subprocess
import uuid
from pathlib import Path

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

CONFIG = "config.yaml"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
EVAL = "eval.json"
LATENTS = "latents.npz"
FAILED = "failed.json"
LOG = "train.log"  # Hydra's job log (conf/config.yaml: hydra.job_logging); DDP rank 0 appends to it
CHECKPOINTS = "checkpoints"
LAST_CKPT = "last.ckpt"
WANDB_ID = "wandb_id.txt"
DDP_CONFIG = "ddp_config.yaml"
# besides the metrics
SUMMARY_INFO = ("head", "backbone", "data", "seed", "lr", "epochs", "gamma", "diverged", "fit_seconds")


# config keys (prefixes) that do not define what a run trains: where and how it ran, what it logged, and
# keys derived from others; a resumed run may change them (job.py), and they split no report row (report.py)
NOT_DEFINING = (
    "output_dir", "run_name", "group", "name", "resume", "ckpt_path", "logger", "runtime.", "callbacks.", "head.net.",
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


def code_version() -> dict:
    """The package version and, when it runs from a git checkout, the commit and whether tracked files
    differ from it (`dirty`)."""
    from . import __version__

    out = {"version": __version__}
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        git = ["git", "-C", str(root)]
        try:
            commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
            status = subprocess.run([*git, "status", "--porcelain", "-uno"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return out
        if commit.returncode == 0:
            out.update(commit=commit.stdout.strip(), dirty=bool(status.stdout.strip()))
    return out


def wandb_run_id(out: str | Path) -> str:
    """The job's W&B run id, kept in `<out>/wandb_id.txt`: a resumed or requeued job continues its run."""
    id_file = Path(out) / WANDB_ID
    if not id_file.exists():
        id_file.write_text(uuid.uuid4().hex[:12])
    return id_file.read_text().strip()


# W&B summaries of the per-epoch curves a reader compares across runs: the best value, not the last
BEST = {
    "max": ("acc", "agreement_dim", "agreement_code", "top_codes_fraction", "binarity_score"),
    "min": ("ce", "loss", "nc1", "sigma_w"),
}


def wandb_logger(
    save_dir: str,
    project: str = "binary_encoding",
    entity: str | None = None,
    mode: str = "auto",
    tags=(),
    group: str | None = None,
    job_type: str = "train",
    run_name: str | None = None,
    run_config: dict | None = None,
):
    """The W&B logger of one job (`conf/logger/wandb.yaml`). Online when W&B has credentials for its host,
    offline otherwise; the run id is kept in the run folder so that a resumed job continues the same run.
    Tags: data set, backbone, head, experiment and sweep name (from `run_config`), then `tags`."""
    os.environ.setdefault("WANDB_SILENT", "true")  # wandb's banners off; the run URL is printed by RunLogger
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
    logger = RunLogger(
        project=project,
        entity=entity,
        group=group,
        job_type=job_type,
        name=run_name,
        id=wandb_run_id(save_dir),
        resume="allow",
        save_dir=str(save_dir),
        mode=mode,
        tags=list(dict.fromkeys([*run_tags(run_config or {}), *(tags or [])])),
        config=run_config,
    )
    logger._wandb_init.pop("anonymous", None)  # Lightning passes a deprecated key that makes wandb warn
    return logger


def run_tags(run_config: dict) -> list[str]:
    """W&B tags of a run: data set, backbone, head, experiment, sweep name (those that are set)."""
    choices = run_config.get("choices") or {}
    names = [
        (run_config.get("data") or {}).get("name"),
        (run_config.get("backbone") or {}).get("name"),
        (run_config.get("head") or {}).get("name"),
        choices.get("experiment"),
        run_config.get("name"),
    ]
    return list(dict.fromkeys(str(n) for n in names if n))


def wandb_logged_in() -> bool:
    """Whether W&B has credentials for its host (`WANDB_BASE_URL`, W&B's own lookup: `WANDB_API_KEY`,
    settings files, .netrc of that host), without prompting or contacting the server."""
    import wandb

    try:
        return bool(wandb.login(prompt=False, verify=False))
    except Exception:  # malformed credentials: train offline rather than not at all
        return False


def offline_sync_command(out: str | Path, run_id: str) -> str:
    """The command that uploads every part of an offline run: a resumed job leaves one
    `offline-run-<time>-<id>` folder per attempt, and `wandb sync` given all of them in one call
    uploads them in order of start time into one run (the epoch is the step, so later parts extend it)."""
    return f"wandb sync {shlex.quote(str(Path(out) / 'wandb'))}/offline-run-*-{run_id}"


class RunLogger(WandbLogger):
    """Lightning's W&B logger with the project's layout of a run:

    * one history row per epoch, the epoch as W&B's step and x-axis (Lightning's default x-axis is
      the optimizer step, and its step restarts when an offline run resumes; epochs do not);
    * summaries of the per-epoch curves as their best value (`BEST`), end-of-training values only in
      the summary (`final/...`, written by `train.fit`);
    * the run URL printed when online (it survives `WANDB_SILENT`)."""

    @property
    @rank_zero_experiment
    def experiment(self):
        new = self._experiment is None
        run = super().experiment
        if new and hasattr(run, "define_metric"):
            run.define_metric("epoch")
            run.define_metric("*", step_metric="epoch", step_sync=True)  # replaces Lightning's global-step axis
            for summary, names in BEST.items():
                for split in ("train", "val"):
                    for name in names:
                        run.define_metric(f"{split}/{name}", step_metric="epoch", summary=summary)
            if self._wandb_init.get("mode") == "online" and getattr(run, "url", None):
                print(f"W&B run: {run.url}", flush=True)
        return run

    @rank_zero_only
    def log_metrics(self, metrics, step=None):
        """Everything Lightning logs per epoch, as the history row of that epoch (rows logged in the same
        epoch merge). Rows of epochs the W&B run already holds (a resumed online run) are left out."""
        if "epoch" not in metrics:
            return  # step-level values: none are logged per step; end-of-fit values go to the summary
        self.log_row(dict(metrics), int(metrics["epoch"]))

    @rank_zero_only
    def log_row(self, data: dict, epoch: int) -> None:
        """Values (numbers, images, tables, histograms) into the history row of `epoch`."""
        run = self.experiment
        if epoch >= run.step:
            run.log({**data, "epoch": epoch}, step=epoch)

    @rank_zero_only
    def finish(self, exit_code: int = 0) -> None:
        """Close the W&B run: the last epoch's row is written first (wandb holds a row until the next step)."""
        if self._experiment is not None:
            self._experiment.log({}, commit=True)
            self._experiment.finish(exit_code=exit_code)


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
