"""1-D convolutional backbones for signals (MNIST-1D), with the contract of `backbones.py`: built as
`Backbone(input_shape=(C, H, W))`, `num_features`, `name`, `act`, `forward(x) -> [batch, num_features]`.

A `[C, H, W]` input is read as `C * H` channels over a length `W` (MNIST-1D: `[1, 1, 40]` = one channel,
length 40), so the data modules keep their `[N, C, H, W]` layout.

* `ResNet1d`: the CIFAR ResNet of `backbones.ResNet` with 1-D convolutions: a stride-1 stem convolution
  (with bias), no max-pool, stages of `width * 2**i` channels (stride 2 from the second on), BasicBlocks,
  global average pooling, SiLU everywhere.
* `CNN1d`: the small CNN of the MNIST-1D paper: three convolutions (kernel 5 stride 2, then two of
  kernel 3 stride 2, padding 1, `channels` wide), the activation after each, flattened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .backbones import activation


def _as_signal(x: torch.Tensor) -> torch.Tensor:
    """`[B, C, H, W]` -> `[B, C * H, W]`."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


class BasicBlock1d(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, kernel: int, act: type[nn.Module]):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(cin, planes, kernel, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(planes)
        self.conv2 = nn.Conv1d(planes, planes, kernel, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(planes)
        self.act = act()
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == planes
            else nn.Sequential(nn.Conv1d(cin, planes, 1, stride, bias=False), nn.BatchNorm1d(planes))
        )

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet1d(nn.Module):
    """BasicBlock1d repeated `layers[i]` times in stage i, `width * 2**i` channels, kernel `kernel`."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        layers: Sequence[int] = (2, 2, 2, 2),
        width: int = 16,
        kernel: int = 3,
        act: str = "silu",
        name: str = "resnet1d",
    ):
        super().__init__()
        if width <= 0 or kernel <= 0 or kernel % 2 == 0 or not layers or any(n <= 0 for n in layers):
            raise ValueError(
                f"ResNet1d needs width > 0, an odd kernel and positive stage depths, "
                f"got width={width}, kernel={kernel}, layers={list(layers)}"
            )
        self.name, self.act = name, activation(act)
        cin = math.prod(input_shape[:-1])
        self.stem = nn.Sequential(
            nn.Conv1d(cin, width, kernel, 1, kernel // 2, bias=True), nn.BatchNorm1d(width), self.act()
        )
        stages, cin = [], width
        for i, n in enumerate(layers):
            planes = width * 2**i
            for j in range(n):
                stages.append(BasicBlock1d(cin, planes, 2 if (i > 0 and j == 0) else 1, kernel, self.act))
                cin = planes
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(_as_signal(x))))


class CNN1d(nn.Module):
    """Three strided convolutions, `channels` wide, the activation after each, then flattened."""

    def __init__(self, input_shape: tuple[int, ...], channels: int = 25, act: str = "silu", name: str = "cnn1d"):
        super().__init__()
        if channels <= 0:
            raise ValueError(f"CNN1d needs channels > 0, got {channels}")
        self.name, self.act = name, activation(act)
        cin = math.prod(input_shape[:-1])
        self.net = nn.Sequential(
            nn.Conv1d(cin, channels, 5, 2, 1),
            self.act(),
            nn.Conv1d(channels, channels, 3, 2, 1),
            self.act(),
            nn.Conv1d(channels, channels, 3, 2, 1),
            self.act(),
            nn.Flatten(),
        )
        with torch.no_grad():
            self.num_features = self.net(torch.zeros(1, cin, input_shape[-1])).shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(_as_signal(x))
