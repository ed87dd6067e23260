"""The files of a run folder: their names, in one place, and how they are written (atomically).

Every run folder holds (names below; `train`, `evaluate` and `report` read and write through them):
  config.yaml      the resolved config
  metrics.csv      one row per epoch (everything that was logged), written by `LocalRecord`
  summary.json     end-of-training values (`SUMMARY_INFO` keys + the metrics of `callbacks.metrics.final_metrics`), with
                   the fingerprints of the config and checkpoint it belongs to (`summarize.read` checks them)
  eval.json        the same metrics recomputed from the checkpoint by `python -m binary_encoding.evaluate`
  latents.npz      train/val/test latents, labels and predictions (with `save_latents=true`)
  failed.json      the error of a failed attempt (removed when the job is run again)
  summary.json.stale   a summary that did not count (cut by a crash, or left from another run), moved aside
  train.log        the job's log: one line per epoch (`run.console.EpochLog`), Hydra's messages
  checkpoints/last.ckpt   refreshed every epoch; a cut-off run resumes from it
  wandb/, wandb_id.txt    the W&B run and its id (a resumed job continues the same run)
  job.lock         the process that trains in the folder (host, pid, since, heartbeat), while it runs
                   (`run/lock.py`; `.job.lock.guard` beside it serializes taking over a stale one)
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

CONFIG = "config.yaml"
METRICS = "metrics.csv"
SUMMARY = "summary.json"
STALE_SUMMARY = "summary.json.stale"  # a summary that did not count (cut, or of another run), moved aside
EVAL = "eval.json"
LATENTS = "latents.npz"
FAILED = "failed.json"
LOG = "train.log"  # Hydra's job log (conf/config.yaml: hydra.job_logging); DDP rank 0 appends to it
CHECKPOINTS = "checkpoints"
LAST_CKPT = "last.ckpt"
WANDB_ID = "wandb_id.txt"
DDP_CONFIG = "ddp_config.yaml"
LOCK = "job.lock"


def last_checkpoint(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / LAST_CKPT


def temp_path(path: str | Path) -> Path:
    """Where `path` is written before it is renamed into place (`write_atomic`)."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


def write_synced(path: str | Path, data: bytes | str) -> None:
    """Write `data` to `path` and flush it to the disk (fsync)."""
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: str | Path, data: bytes | str, rename: bool = True) -> None:
    """Write `data` to `path` whole or not at all: into `<path>.tmp` (`temp_path`), flushed to the disk
    (fsync), then renamed over `path` (a crash or a full disk leaves the previous file intact); with
    `rename=False` the renaming is the caller's. On failure the temporary file is removed and the error
    names `path`."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write_synced(tmp, data)
        if rename:
            os.replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(err, OSError) and err.filename is None:  # a failed write() names no file
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def write_json(path: str | Path, obj) -> None:
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        return v

    write_atomic(path, json.dumps({k: clean(v) for k, v in obj.items()}, indent=2, default=str))


def wandb_run_id(out: str | Path) -> str:
    """The job's W&B run id, kept in `<out>/wandb_id.txt`: a resumed or requeued job continues its run."""
    id_file = Path(out) / WANDB_ID
    run_id = id_file.read_text().strip() if id_file.exists() else ""
    if not run_id:  # none yet, or an empty file left by a crash of an older version
        run_id = uuid.uuid4().hex[:12]
        write_atomic(id_file, run_id)
    return run_id
