"""Backbones: the non-linear feature extractors `h = f(x)` that a head sits on.

Contract every backbone keeps (so heads and tests can treat them alike):
  * `num_features`: width of the feature vector `h` it returns;
  * `act`: the activation class used in its non-linear layers (the `nonlinpen` head reuses it);
  * `forward(x) -> h` of shape `[batch, num_features]`.

ResNets are the CIFAR variant used by the paper: a 3x3 stride-1 stem convolution (with bias), no
max-pool, four stages of 64/128/256/512 channels, global average pooling, SiLU everywhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten, then `Linear -> BatchNorm -> act` for every hidden width."""

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (256, 256), act: type[nn.Module] = nn.SiLU):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), act()]
            width = h
        self.net = nn.Sequential(*layers)
        self.num_features = width
        self.act = act

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


class ResNet(nn.Module):
    def __init__(self, block, layers: tuple[int, ...], in_channels: int = 3, width: int = 64,
                 act: type[nn.Module] = nn.SiLU):
        super().__init__()
        self.act = act
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=True), nn.BatchNorm2d(width), act())
        stages, cin = [], width
        for i, n in enumerate(layers):
            planes = width * 2**i
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(block(cin, planes, stride, act))
                cin = planes * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))


ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}
RESNETS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}
BACKBONES = ("mlp", *RESNETS)


def build_backbone(name: str, input_shape: tuple[int, ...], act: str = "silu",
                   hidden: tuple[int, ...] = (256, 256), width: int = 64) -> nn.Module:
    """Build a backbone for inputs of shape `input_shape` = (channels, height, width)."""
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
    act_cls = ACTIVATIONS[act]
    if name == "mlp":
        if any(h <= 0 for h in hidden):
            raise ValueError(f"MLP hidden widths must be positive, got {list(hidden)}")
        return MLP(math.prod(input_shape), tuple(hidden), act_cls)
    if name in RESNETS:
        block, layers = RESNETS[name]
        return ResNet(block, layers, in_channels=input_shape[0], width=width, act=act_cls)
    raise ValueError(f"unknown backbone {name!r}; choose one of {list(BACKBONES)}")
