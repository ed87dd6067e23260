"""summary.json: what it holds (`SUMMARY_INFO` + the end-of-training metrics), and the lines a finished run prints."""

from __future__ import annotations

from ..metrics import catalog

# besides the metrics
SUMMARY_INFO = ("head", "backbone", "data", "seed", "lr", "epochs", "gamma", "diverged", "fit_seconds")


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
        diverged(metrics.get("train_acc"), num_classes),
    )
    ordered = {k: metrics[k] for k in catalog.final_names() if k in metrics}
    return {**dict(zip(SUMMARY_INFO, info)), **ordered, **metrics, "fit_seconds": round(fit_seconds, 2)}


def diverged(train_acc: float | None, num_classes: int) -> bool:
    """A run that ends with a training accuracy below twice chance (1/C) has diverged: no learning rate
    of a working run ends there (e.g. lr=100 ends at 0.10 on digits, with 'agreement 1.0' of a
    constant code). Such runs are flagged in the summary and left out of the report's selection."""
    return train_acc is not None and train_acc == train_acc and train_acc < 2 / num_classes


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
