"""Checkpoints written whole or not at all, and only once their epoch is recorded whole.

Lightning's `TorchCheckpointIO` writes `checkpoints/last.ckpt` in place: a full disk or a kill in the
middle of a save leaves a cut-off file where the previous good checkpoint was (measured: a 1 MB output
folder kept a 1,024,000-byte torso of the digits checkpoint, and the run could not resume). Here the
checkpoint is serialized in memory (as Lightning's own `_atomic_save` does), written to `last.ckpt.tmp`,
flushed to the disk and renamed over `last.ckpt` (`files.write_atomic`).

An epoch is one commit: `ModelCheckpoint` saves when validation ends, before Lightning hands the epoch's
training metrics to the loggers (`FitLoop.on_advance_end`: the `on_train_epoch_end` hooks, then
`update_train_epoch_metrics`), so a kill right after the save used to leave a checkpoint of epoch e and a
metrics.csv row of epoch e without its training columns, which the resumed run (starting at e+1) never
wrote. With `hold=True` the save stops at the flushed `last.ckpt.tmp`, and `EpochCommit`, the logger
after `LocalRecord`, renames it over `last.ckpt` once the row of the epoch is complete on the disk. A kill
before the rename resumes from epoch e-1 and trains epoch e again (its row is replaced); the epoch's
train.log line, written after the rename, is restored on resume by `run.console.EpochLog`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.loggers import Logger

from . import files
from .csv_log import EPOCH_COMPLETE


class AtomicCheckpointIO(TorchCheckpointIO):
    def __init__(self, hold: bool = False):
        super().__init__()
        self.hold = hold
        self.pending: tuple[Path, Path] | None = None  # (written temp file, its final path) until `commit`

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        files.write_atomic(path, buf.getbuffer(), rename=not self.hold)
        if self.hold:
            self.pending = (files.temp_path(path), path)

    def commit(self) -> None:
        """Rename the checkpoint held back by `save_checkpoint` into place (nothing when none is held)."""
        if self.pending is not None:
            tmp, path = self.pending
            os.replace(tmp, path)
            self.pending = None


class EpochCommit(Logger):
    """Commits the held-back checkpoint of an epoch when the epoch's last values (`EPOCH_COMPLETE`) have
    reached the loggers before it in the trainer's list (the local record: metrics.csv)."""

    def __init__(self, checkpoint_io: AtomicCheckpointIO):
        super().__init__()
        self.checkpoint_io = checkpoint_io

    @property
    def name(self):
        return "epoch_commit"

    @property
    def version(self):
        return None

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics: dict, step: int | None = None):
        if "epoch" in metrics and EPOCH_COMPLETE in metrics:
            self.checkpoint_io.commit()

    def finalize(self, status: str) -> None:
        if status == "success":  # the fit ended after its last save: nothing else of that epoch comes
            self.checkpoint_io.commit()
