"""Callbacks that schedule work around the training loop (the metrics themselves are pure functions)."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only


class GammaScheduler(L.Callback):
    """`gamma = min(gamma0 * factor ** (epoch // step), gamma_max)`, set at every epoch start.

    The value is a closed form of the epoch, and it also lives in the module's `gamma` buffer and in
    this callback's state, both saved in checkpoints: a resumed run continues with the same gamma.
    """

    def __init__(self, gamma0: float, factor: float = 1.0, step: int = 1, gamma_max: float | None = None):
        if gamma0 < 0 or factor <= 0 or step < 1:
            raise ValueError(f"need gamma0 >= 0, gamma_factor > 0, gamma_step >= 1; got {gamma0}, {factor}, {step}")
        if gamma_max is not None and gamma_max < 0:
            raise ValueError(f"gamma_max must be >= 0 or null, got {gamma_max}")
        self.gamma0, self.factor, self.step, self.gamma_max = gamma0, factor, step, gamma_max
        self.current = gamma0

    def value(self, epoch: int) -> float:
        g = self.gamma0 * self.factor ** (epoch // self.step)
        return g if self.gamma_max is None else min(g, self.gamma_max)

    def on_train_epoch_start(self, trainer, pl_module):
        self.current = self.value(trainer.current_epoch)
        # beyond float32's range gamma is inf in the loss; the module then stops with a clear message
        pl_module.gamma.fill_(self.current if self.current <= torch.finfo(torch.float32).max else math.inf)

    def state_dict(self):
        return {"gamma0": self.gamma0, "factor": self.factor, "step": self.step,
                "gamma_max": self.gamma_max, "current": self.current}

    def load_state_dict(self, state):
        saved = (state["gamma0"], state["factor"], state["step"], state["gamma_max"])
        if saved != (self.gamma0, self.factor, self.step, self.gamma_max):
            warnings.warn(f"resuming with a different gamma schedule: checkpoint {saved}, now "
                          f"{(self.gamma0, self.factor, self.step, self.gamma_max)}; the new one is used", stacklevel=2)
        self.current = state["current"]


class LocalRecord(Logger):
    """A Lightning logger that keeps `<dir>/metrics.csv`: one row per epoch holding exactly what was
    logged in that epoch (rank 0 only), rewritten atomically after every call, so results never
    depend on the network or on W&B and a crash loses nothing. When a run resumes, rows of the
    earlier attempt from the resumed epoch on are replaced."""

    def __init__(self, out_dir: str | Path):
        super().__init__()
        self.path = Path(out_dir) / "metrics.csv"
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
        pass  # the resolved config is written to config.yaml by train()

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None):
        if "epoch" not in metrics:
            return  # end-of-fit values go to summary.json
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
