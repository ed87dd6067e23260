"""What a run prints while it trains: one line per epoch, and the progress bar of a terminal.

The epoch line goes through Python logging (`binary_encoding`), which Hydra's job logging sends to
the console and to the job's `train.log`. In a terminal with the progress bar on, the bar holds the
console and the line goes to the log file only. (What a sweep prints is in `sweep_log.py`.)
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ..metrics import catalog
from ..record.csv_log import EPOCH_COMPLETE  # the last value of an epoch to reach the loggers

log = logging.getLogger("binary_encoding")


class ProgressBar(TQDMProgressBar):
    """Lightning's bar without `v_num` (the logger's version, meaningless here)."""

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


RESTORED = "(restored on resume)"  # where the seconds stand in a line written again from metrics.csv
_EPOCH_LINE = re.compile(r"\] - epoch (\d+)/\d+  ")


class EpochLog(Logger):
    """One line per epoch: `epoch 3/150  train loss 0.5123  val acc 0.9167  gamma 0.0108  codes 16  0.9 s`
    (the metrics whose catalog entry has a `console` label, in its order), with the values logged in that
    epoch (codes only in epochs with a metric pass, val acc only in epochs with validation) and the
    seconds since the previous line (the first: since this logger was made, just before the trainer).
    A Lightning logger, since loggers receive exactly the values of each epoch; rank 0 only.
    `console=False`: to the log files only (a progress bar holds the console)."""

    def __init__(self, max_epochs: int, console: bool = True):
        super().__init__()
        self.max_epochs, self.console = max_epochs, console
        self.epoch, self.values = None, {}
        self.last_time = time.perf_counter()

    @property
    def name(self):
        return "epoch_log"

    @property
    def version(self):
        return None

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs):
        pass

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None):
        if "epoch" not in metrics:
            return  # end-of-fit values go to the summary
        if metrics["epoch"] != self.epoch:
            self.epoch, self.values = metrics["epoch"], {}
        self.values.update(metrics)
        if EPOCH_COMPLETE in metrics:
            now = time.perf_counter()
            self.emit(self.line(now - self.last_time))
            self.last_time = now

    def line(self, seconds: float | None) -> str:
        parts = [f"epoch {int(self.epoch) + 1}/{self.max_epochs}"]
        values = catalog.console_values()  # (key, label, format) of the metrics that declare an epoch-line label
        parts += [f"{label} {float(self.values[k]):{fmt}}" for k, label, fmt in values if k in self.values]
        return "  ".join([*parts, RESTORED if seconds is None else f"{seconds:.1f} s"])

    @rank_zero_only
    def restore(self, rows: list[dict], epochs_done: int) -> None:
        """Write the lines of epochs that the resumed checkpoint holds (the first `epochs_done`) and the
        job's train.log lacks, from their metrics.csv `rows`: a kill between the checkpoint's commit
        (`record/checkpoint_io.py`) and its epoch's line leaves that line out."""
        logs = [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
        if not logs:
            return  # no job log (train() called without logging set up): nothing to complete
        try:
            text = logs[0].read_text(errors="replace")
        except OSError:
            text = ""
        logged = [int(m.group(1)) for m in _EPOCH_LINE.finditer(text)]
        first = max(logged, default=0)  # epochs 0 .. first-1 have their lines
        for row in rows:
            epoch = int(row["epoch"])
            if first <= epoch < epochs_done and row.get(EPOCH_COMPLETE) not in (None, ""):
                self.epoch = epoch
                self.values = {k: float(v) for k, v in row.items() if v not in (None, "")}
                self.emit(self.line(None))
        self.epoch, self.values = None, {}

    def emit(self, line: str) -> None:
        if self.console:
            log.info(line)
            return
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, line, None, None)
        for handler in logging.getLogger().handlers:  # Hydra's job logging: <job dir>/train.log
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)


def log_to(path: str | Path) -> None:
    """Python logging as Hydra's job logging sets it up, for a process that is no Hydra job (rank 0 of a
    DDP job): INFO and above to stdout and appended to `path`, the job's train.log."""
    formatter = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(path)):
        handler.setFormatter(formatter)
        root.addHandler(handler)
