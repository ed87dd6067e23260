"""The gamma schedule: the one place that knows how gamma grows (the metric callbacks live in callbacks/metrics.py)."""

from __future__ import annotations

import math
import warnings

import lightning as L
import torch


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
        if gamma_max is not None and gamma0 > gamma_max:
            warnings.warn(
                f"gamma0={gamma0} is above gamma_max={gamma_max}: gamma stays at {gamma_max} throughout", stacklevel=2
            )
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
        return {
            "gamma0": self.gamma0,
            "factor": self.factor,
            "step": self.step,
            "gamma_max": self.gamma_max,
            "current": self.current,
        }

    def load_state_dict(self, state):
        saved = (state["gamma0"], state["factor"], state["step"], state["gamma_max"])
        if saved != (self.gamma0, self.factor, self.step, self.gamma_max):
            warnings.warn(
                f"resuming with a different gamma schedule: checkpoint {saved}, now "
                f"{(self.gamma0, self.factor, self.step, self.gamma_max)}; the new one is used",
                stacklevel=2,
            )
        self.current = state["current"]
