"""Run identity: which config keys define what a run trains, in one place."""

from __future__ import annotations

# config keys (prefixes) that do not define what a run trains: where and how it ran, what it logged, and
# keys derived from others; a resumed run may change them (run/job.py), and they split no report row (report/).
# data.skip_unreadable: where it matters (an unreadable image) false stops the job, so the runs that finish
# trained on the same images either way (and folders made before the key existed stay the same run)
NOT_DEFINING = (
    "output_dir", "run_name", "group", "name", "resume", "ckpt_path", "logger", "runtime.", "callbacks.", "head.net.",
    "trainer.enable_progress_bar", "trainer.log_every_n_steps", "trainer.accelerator", "trainer.devices",
    "trainer.strategy", "trainer.sync_batchnorm", "metrics_every", "metrics.hist", "deepfool_samples", "save_latents",
    "data.skip_unreadable",
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


# override keys (and their sub-keys) left out of a job folder's name: where and how the job ran, so that
# a rerun with other values of them finds the same folder (Hydra's `override_dirname.exclude_keys`)
NOT_IN_FOLDER_NAME = ("name", "logger", "trainer.accelerator", "trainer.enable_progress_bar", "output_dir", "resume")
PATH_KEYS = ("root", "dir", "path", "dirpath", "file")  # last part of a key whose value is a path
NAME_BYTES = 240  # a folder name's bytes (filesystems allow 255 per name)
GROUP_CHARS = 128  # W&B's longest group name


def override_key(override: str) -> str:
    """The key of a command-line override (`+a.b=1` -> `a.b`), as Hydra's `key_or_group`."""
    return override.split("=", 1)[0].lstrip("+~")


def in_folder_name(key: str) -> bool:
    """Whether an override of `key` names its job's folder."""
    return not any(key == k or key.startswith(f"{k}.") for k in NOT_IN_FOLDER_NAME)


def is_path(key: str, value: str) -> bool:
    """Whether an override's value is a path (a key ending in `root`, `dir`, ..., or a value with a slash)."""
    last = key.rsplit(".", 1)[-1]
    return "/" in value or "\\" in value or last in PATH_KEYS or last.endswith(tuple(f"_{k}" for k in PATH_KEYS))


def short_path(value: str) -> str:
    """A path as a short, stable name part: its base name and a hash of its full (absolute) path, so that
    two folders of the same name (a/images, b/images) give two names and no slash nests folders."""
    import hashlib
    import os
    import re

    full = os.path.abspath(os.path.expanduser(value))
    base = re.sub(r"[^\w.+-]", "_", os.path.basename(full.rstrip("/\\")))[:40] or "root"
    return f"{base}-{hashlib.sha256(full.encode()).hexdigest()[:8]}"


def _name_part(override: str) -> str:
    key = override_key(override)
    if "=" in override:
        value = override.split("=", 1)[1]
        if is_path(key, value):
            return f"{override.split('=', 1)[0]}={short_path(value)}"
    return override


def cut_to(name: str, limit: int) -> str:
    """`name` cut to `limit` bytes, its tail replaced by a hash of the whole name (still unique)."""
    import hashlib

    if len(name.encode()) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return name.encode()[: limit - 13].decode(errors="ignore") + "~" + digest


def folder_name(overrides) -> str:
    """A sweep job's folder name: its overrides (sorted, as Hydra's `override_dirname`) but those of
    `NOT_IN_FOLDER_NAME`, paths in their short form, the whole kept under the filesystem's name limit."""
    kept = sorted(str(o) for o in overrides if in_folder_name(override_key(str(o))))
    return cut_to(",".join(_name_part(o) for o in kept), NAME_BYTES)


def group_name(sweep: str, overrides) -> str:
    """The group of a run (W&B averages its runs): the sweep name and the overrides that define the run,
    without the seed, paths in their short form; the runs that differ only in their seed share it."""
    settings = sorted(str(o) for o in overrides if defines_run(k := override_key(str(o))) and k != "seed")
    return cut_to("/".join([sweep, ",".join(_name_part(o) for o in settings)]) if settings else sweep, GROUP_CHARS)


def fingerprint(config: dict) -> str:
    """A short hash of the settings that define a run (`defines_run`), of a resolved config as a nested
    dict: the summary keeps it, so that a summary is known to belong to the config.yaml beside it."""
    import hashlib
    import json

    defining = {k: v for k, v in flat_config(config).items() if defines_run(k)}
    return hashlib.sha256(json.dumps(defining, sort_keys=True, default=str).encode()).hexdigest()[:16]
