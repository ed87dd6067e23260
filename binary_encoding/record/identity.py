"""Run identity: which config keys define what a run trains, in one place."""

from __future__ import annotations

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
