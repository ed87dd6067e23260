"""Backbones: the non-linear feature extractors `h = f(x)` that a head sits on.

Contract every backbone keeps (so heads and tests can treat them alike):
  * built as `Backbone(input_shape=(C, H, W), **settings)`: the input shape is known only at run
    time and passed at instantiation (`conf/backbone/*.yaml` holds the settings and `_target_`);
  * `num_features`: width of the feature vector `h` it returns;
  * `name`: the label the records use; `act`: the activation class of its non-linear layers;
  * `forward(x) -> h` of shape `[batch, num_features]`.

ResNets are the CIFAR variant used by the paper: a 3x3 stride-1 stem convolution (with bias), no
max-pool, four stages of 64/128/256/512 channels, global average pooling, SiLU everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten, then `Linear -> BatchNorm -> act` for every hidden width."""

    def __init__(
        self, input_shape: tuple[int, ...], hidden: Sequence[int] = (256, 256), act: str = "silu", name: str = "mlp"
    ):
        super().__init__()
        if not hidden or any(h <= 0 for h in hidden):
            raise ValueError(f"MLP hidden widths must be positive, got {list(hidden)}")
        self.name, self.act = name, activation(act)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), self.act()]
            width = h
        self.net = nn.Sequential(*layers)
        self.num_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, act: type[nn.Module]):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act = act()
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, act: type[nn.Module]):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act = act()
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act(out + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """`block` ("basic" or "bottleneck") repeated `layers[i]` times in stage i, `width * 2**i` planes."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        layers: Sequence[int] = (2, 2, 2, 2),
        block: str = "basic",
        width: int = 64,
        act: str = "silu",
        name: str = "resnet",
    ):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown ResNet block {block!r}; choose one of {sorted(BLOCKS)}")
        if width <= 0 or not layers or any(n <= 0 for n in layers):
            raise ValueError(
                f"ResNet needs width > 0 and positive stage depths, got width={width}, layers={list(layers)}"
            )
        self.name, self.act = name, activation(act)
        block_cls = BLOCKS[block]
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=True), nn.BatchNorm2d(width), self.act()
        )
        stages, cin = [], width
        for i, n in enumerate(layers):
            planes = width * 2**i
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(block_cls(cin, planes, stride, self.act))
                cin = planes * block_cls.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))


ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def activation(name: str) -> type[nn.Module]:
    """The activation class called `name` in configs."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
