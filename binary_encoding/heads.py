"""Heads: what sits between the backbone features `h` and the logits.

| head        | latent z            | logits      | extra loss (added by the module) |
|-------------|---------------------|-------------|----------------------------------|
| `binenc`    | `W h + b` (width d) | `V z + c`   | `gamma * mean(z**2)`             |
| `linpen`    | `W h + b`           | `V z + c`   | none (gamma stays 0)             |
| `nonlinpen` | `act(W h + b)`      | `V z + c`   | none                             |
| `nopen`     | `h`                 | `V h + c`   | none                             |

`binenc`, `linpen` and `nonlinpen` have exactly the same parameters; `nopen` has one layer less.
The heads differ only in structure: the penalty weight gamma lives in the module and is 0 for every
head but `binenc` (see `conf/head/*.yaml`).
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("binenc", "linpen", "nonlinpen", "nopen")


class Head(nn.Module):
    def __init__(self, kind: str, in_features: int, num_classes: int, width: int | None,
                 act: type[nn.Module] = nn.SiLU):
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"unknown head {kind!r}; choose one of {list(HEADS)}")
        self.kind = kind
        if kind == "nopen":
            self.penultimate = nn.Identity()
            self.latent_dim = in_features
        else:
            if width is None or width <= 0:
                raise ValueError(f"head {kind!r} needs a positive latent width, got {width}")
            layers: list[nn.Module] = [nn.Linear(in_features, width)]
            if kind == "nonlinpen":
                layers.append(act())
            self.penultimate = nn.Sequential(*layers)
            self.latent_dim = width
        self.classifier = nn.Linear(self.latent_dim, num_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(logits, z)`."""
        z = self.penultimate(h)
        return self.classifier(z), z


class Classifier(nn.Module):
    """A backbone and a head as one module: `forward(x) -> (logits, z)`."""

    def __init__(self, backbone: nn.Module, head: Head):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(x))
