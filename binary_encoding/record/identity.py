"""Run identity: which config keys define what a run trains, in one place."""

from __future__ import annotations

# config keys (prefixes) that do not define what a run trains: where and how it ran, what it logged, and
# keys derived from others; a resumed run may change them (run/job.py), and they split no report row (report/)
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


# keys that define a run but may change when it is resumed: a longer run, other measurements of it
RESUMABLE_CHANGES = ("trainer.max_epochs", "metrics.")
# keys that vary inside one report row: the seeds are pooled, the learning rate is selected
VARY_IN_ROW = ("lr", "seed")


def defines_run(key: str) -> bool:
    """Whether the flat config key `key` (or override key) defines what a run trains."""
    return not key.startswith(NOT_DEFINING)


def may_change_on_resume(key: str) -> bool:
    """Whether a cut-off run may be resumed with another value of `key`."""
    return not defines_run(key) or key.startswith(RESUMABLE_CHANGES)


def splits_report_row(key: str) -> bool:
    """Whether runs that differ in `key` go to different rows of the report."""
    return defines_run(key) and key not in VARY_IN_ROW and not key.endswith("_target_")
