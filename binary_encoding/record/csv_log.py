"""metrics.csv: the local record of every epoch, kept whatever else logs (no network, no W&B)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from ..metrics import catalog
from .files import METRICS, write_atomic

# the module logs train/loss at the end of every training epoch, the last values Lightning hands to
# the loggers in an epoch (after the validation's): when they arrive, the epoch is complete
EPOCH_COMPLETE = "train/loss"


class LocalRecord(Logger):
    """A Lightning logger that keeps `<dir>/metrics.csv`: one row per epoch holding exactly what was
    logged in that epoch (rank 0 only; columns in the order of the metric catalog), rewritten
    atomically after every call, so results never depend on the network or on W&B and a crash loses
    nothing. When a run resumes, rows of the
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
            self.rows = {int(r["epoch"]): r for r in read_rows(self.path.parent) if int(r["epoch"]) < epoch}
        row = self.rows.setdefault(epoch, {"epoch": epoch})
        row["step"] = step
        row.update({k: float(v) for k, v in metrics.items() if k != "epoch"})
        self._write()

    def _write(self):
        rows = [self.rows[e] for e in sorted(self.rows)]
        logged = {k for r in rows for k in r}
        # epoch, step, the catalog's keys (by split, in catalog order), then anything else in logging order
        by_split = sorted(catalog.logged_keys(), key=lambda k: k.rpartition("/")[0] or "~")
        keys = [k for k in ("epoch", "step", *by_split) if k in logged]
        for r in rows:
            keys += [k for k in r if k not in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        write_atomic(self.path, text.getvalue())  # a crash or a full disk never leaves a half-written record


def read_rows(out_dir: str | Path) -> list[dict]:
    """The rows of `<out_dir>/metrics.csv` (none without one), values as written (strings, "" when empty)."""
    path = Path(out_dir) / METRICS
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
