"""Callbacks that schedule work around the training loop (the metrics themselves are pure functions)."""

from __future__ import annotations

import csv
import json
import math
import warnings
from pathlib import Path

import lightning as L
import torch
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


class LocalRecord(L.Callback):
    """Writes every epoch's logged scalars to `<dir>/metrics.csv` (one row per epoch, rank 0 only),
    so results never depend on the network or on W&B. Rows of an earlier, cut-off attempt of the same
    run that lie past the resumed epoch are dropped."""

    def __init__(self, out_dir: str | Path):
        self.path = Path(out_dir) / "metrics.csv"
        self.rows: list[dict] = []

    @rank_zero_only
    def on_train_start(self, trainer, pl_module):  # after a checkpoint was restored
        if self.path.exists() and trainer.current_epoch > 0:  # resumed: keep the earlier epochs
            with open(self.path) as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < trainer.current_epoch]

    @rank_zero_only
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for k, v in trainer.callback_metrics.items():
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                row[k] = v.item()
            elif isinstance(v, (int, float)):
                row[k] = float(v)
        self.rows.append(row)
        self._write()

    def _write(self):
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
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
