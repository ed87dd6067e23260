"""summary.json: what it holds (`SUMMARY_INFO` + the end-of-training metrics + what it belongs to), whether
a folder's summary counts (`read`), and the lines a finished run prints."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..metrics import catalog
from . import files, identity

# what a summary belongs to: the defining settings of its config, and its checkpoint (`belongs_to`)
CONFIG_FINGERPRINT, CHECKPOINT_FINGERPRINT = "config_fingerprint", "checkpoint_fingerprint"
# besides the metrics
SUMMARY_INFO = (
    "head", "backbone", "data", "seed", "lr", "epochs", "gamma", "diverged", "fit_seconds",
    CONFIG_FINGERPRINT, CHECKPOINT_FINGERPRINT,
)  # fmt: skip


def run_summary(cfg, epochs: int, gamma: float, metrics: dict, fit_seconds: float, num_classes: int) -> dict:
    """What summary.json holds: the `SUMMARY_INFO` of the run and its end-of-training metrics (those of the
    metric catalog in its order, then any other)."""
    info = (
        cfg.head.name,
        cfg.backbone.name,
        cfg.data.name,
        cfg.seed,
        cfg.lr,
        epochs,
        gamma,
        diverged(metrics.get("train_acc"), num_classes, metrics.get("train_majority")),
    )
    ordered = {k: metrics[k] for k in catalog.final_names() if k in metrics}
    return {**dict(zip(SUMMARY_INFO, info)), **ordered, **metrics, "fit_seconds": round(fit_seconds, 2)}


# diverged: the training accuracy closes less than this share of the gap from chance level to 1
DIVERGED_MARGIN = 0.1
# latents collapsed by the gamma term: mean |z| below this with gamma >= 1 (digits, seed 0: a working binenc run
# ends at 0.15 under gamma 10; gamma_factor=2, gamma_max=1000 ends at 0.016 and chance; lr=100 at 423)
COLLAPSED_Z, COLLAPSING_GAMMA = 0.05, 1.0


def diverged(train_acc: float | None, num_classes: int, majority: float | None = None) -> bool:
    """A run has diverged when its final training accuracy is at chance level: below
    `m + DIVERGED_MARGIN * (1 - m)`, where m (`majority`) is the share of the most common class in the
    training split (what always answering that class scores; 1/C when not given). On 10 balanced classes
    the line is 0.19, on 2 balanced ones 0.55, on 2 classes of 90% and 10% 0.91: a tenth of the way from
    chance to a perfect fit, on every class count. No learning rate of a working run ends there (lr=100
    ends at 0.10-0.16 on digits, with 'agreement 1.0' of a constant code). Such runs are flagged in the
    summary and left out of the report's selection; NaN or no accuracy is not flagged."""
    if train_acc is None or train_acc != train_acc:
        return False
    m = 1 / num_classes if majority is None else majority
    return train_acc < m + DIVERGED_MARGIN * (1 - m)


def diverged_hint(s: dict) -> str:
    """What a diverged run's summary `s` shows as the cause: latents collapsed to zero under a large gamma
    (mean |z| of the training split below `COLLAPSED_Z` with gamma >= `COLLAPSING_GAMMA`), else the
    learning rate."""
    z, gamma = s.get("train_abs_z"), s.get("gamma") or 0
    if z is not None and z < COLLAPSED_Z and gamma >= COLLAPSING_GAMMA:
        return f"latents collapsed to |z| ~ {z:.2g} under gamma {gamma:.4g}: lower head.gamma_max"
    return "lower the learning rate"


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
    ref = s.get("mahalanobis_auroc_ref")  # the reference setup's estimate (docs/method.md §7.5): may exceed 1
    ref = f" (reference estimator {ref:.4f}, an estimate that can exceed 1)" if ref is not None else ""
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
            f"number above describes a broken run ({diverged_hint(s)})"
        )
    lines.append(f"record        {out}")
    return "\n".join(lines)


def checkpoint_fingerprint(path: str | Path) -> str | None:
    """A short hash of a checkpoint's tensors from its zip directory (each tensor entry's name, size and
    CRC): read in about a millisecond, unchanged by a copy, changed by another training. The pickled rest
    (loop counters, a random serialization id) is left out: a resumed run's last checkpoint holds the
    tensors of the uninterrupted run's. None without a readable checkpoint."""
    import hashlib

    try:
        with zipfile.ZipFile(path) as z:
            entries = sorted(
                (i.filename.split("/", 1)[-1], i.file_size, i.CRC) for i in z.infolist() if "/data/" in i.filename
            )
    except (OSError, zipfile.BadZipFile):
        return None
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:16]


def belongs_to(config: dict, run_dir: str | Path) -> dict:
    """The summary keys that tie a summary to its run's config (resolved, as a dict) and checkpoint."""
    return {
        CONFIG_FINGERPRINT: identity.fingerprint(config),
        CHECKPOINT_FINGERPRINT: checkpoint_fingerprint(files.last_checkpoint(run_dir)),
    }


def read(run_dir: str | Path) -> tuple[dict | None, str]:
    """The summary of the run in `run_dir` if it counts, else None and why not: it must be readable
    (a cut or empty file from a crash is not), and belong to the config.yaml and checkpoint beside it
    (a summary left from an earlier run does not). A summary without fingerprints (older runs) counts."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    path = run_dir / files.SUMMARY
    if not path.exists():
        return None, f"no {files.SUMMARY}"
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return None, f"its {files.SUMMARY} is unreadable ({type(e).__name__}; cut off by a crash?)"
    if not isinstance(summary, dict) or "test_acc" not in summary:
        return None, f"its {files.SUMMARY} is incomplete"
    config = run_dir / files.CONFIG
    if summary.get(CONFIG_FINGERPRINT) and config.exists():
        try:
            now = identity.fingerprint(OmegaConf.to_container(OmegaConf.load(config), resolve=True))
        except Exception as e:  # noqa: BLE001 -- an unreadable config cannot vouch for the summary
            return None, f"its {files.CONFIG} is unreadable ({type(e).__name__})"
        if now != summary[CONFIG_FINGERPRINT]:
            return None, f"its {files.SUMMARY} belongs to another config (left from an earlier run)"
    ckpt = files.last_checkpoint(run_dir)
    if summary.get(CHECKPOINT_FINGERPRINT) and ckpt.exists():
        if checkpoint_fingerprint(ckpt) != summary[CHECKPOINT_FINGERPRINT]:
            return None, f"its {files.SUMMARY} belongs to another checkpoint than {ckpt} (left from an earlier run)"
    return summary, ""
