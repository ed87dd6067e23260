"""Heads: what sits between the backbone features `h` and the logits.

| config head  | class             | latent z            | logits    | extra loss (added by the module) |
|--------------|-------------------|---------------------|-----------|----------------------------------|
| `binenc`     | `LinearHead`      | `W h + b` (width d) | `V z + c` | `gamma * mean(z**2)`             |
| `linpen`     | `LinearHead`      | `W h + b`           | `V z + c` | none (gamma stays 0)             |
| `nonlinpen`  | `NonLinearHead`   | `act(W h + b)`      | `V z + c` | none                             |
| `nopen`      | `NoPenultimate`   | `h`                 | `V h + c` | none                             |

`binenc`, `linpen` and `nonlinpen` have exactly the same parameters; `nopen` has one layer less.
The heads differ only in structure: the loss weight gamma is the gamma schedule's (the `head.gamma*`
keys of `conf/head/*.yaml`, applied by `callbacks.gamma.GammaScheduler`) and is 0 for every head but `binenc`.

Contract every head keeps: built as `Head(in_features=..., num_classes=..., **settings)` (the two
sizes are known at run time and passed at instantiation, `conf/head/<name>.yaml` holds `net:` with
`_target_` and the settings); `latent_dim`; a linear `classifier` (`z -> logits`, which DeepFool's
latent shortcut and NC3 read); `forward(h) -> (logits, z)`. A new head is a subclass of `Head` that
sets `self.penultimate`, plus one yaml (see the README).
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import activation


class Head(nn.Module):
    """`z = penultimate(h)`, `logits = classifier(z)`; subclasses build `penultimate` and call `_finish`."""

    penultimate: nn.Module

    def _finish(self, latent_dim: int, num_classes: int) -> None:
        self.latent_dim = latent_dim
        self.classifier = nn.Linear(latent_dim, num_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(logits, z)`, computed in fp32 whatever the backbone's precision: under bf16 (3
        significant digits) a latent set collapsed to within 1e-4 of its class points would be mostly
        rounding noise, and NC1 and the Mahalanobis AUROC would measure the rounding (docs/method.md §3.4).
        The head is a few small matrix products: fp32 costs nothing measurable."""
        with torch.autocast(h.device.type, enabled=False):
            z = self.penultimate(h.float())
            return self.classifier(z), z


def _check_width(width: int | None) -> int:
    if width is None or width <= 0:
        raise ValueError(f"this head needs a positive latent width (head.width), got {width}")
    return int(width)


class LinearHead(Head):
    """A linear penultimate layer of width `width` (`binenc`, `linpen`)."""

    def __init__(self, in_features: int, num_classes: int, width: int = 4):
        super().__init__()
        self.penultimate = nn.Linear(in_features, _check_width(width))
        self._finish(width, num_classes)


class NonLinearHead(Head):
    """A linear penultimate layer followed by an activation (`nonlinpen`, the backbone's activation)."""

    def __init__(self, in_features: int, num_classes: int, width: int = 4, act: str = "silu"):
        super().__init__()
        self.penultimate = nn.Sequential(nn.Linear(in_features, _check_width(width)), activation(act)())
        self._finish(width, num_classes)


class NoPenultimate(Head):
    """No penultimate layer: `z = h` (`nopen`)."""

    def __init__(self, in_features: int, num_classes: int, width: int | None = None):
        super().__init__()
        if width is not None:
            raise ValueError(f"head nopen has no latent layer: its latent width is the backbone's, got width={width}")
        self.penultimate = nn.Identity()
        self._finish(in_features, num_classes)


class Classifier(nn.Module):
    """A backbone and a head as one module: `forward(x) -> (logits, z)`."""

    def __init__(self, backbone: nn.Module, head: Head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))
