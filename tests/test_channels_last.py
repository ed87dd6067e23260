"""NHWC (`runtime.channels_last`) on CPUs: `auto` never picks it where oneDNN's kernels crash.

Bisection (torch 2.14.1, oneDNN 3.12, AMD EPYC with AVX2 and no AVX-512; each case a fresh process of
3 training steps, forward and backward, killed after 30 s):
  * the CIFAR ResNet18 of `backbone.width=4`, batch 32, 3x32x32, NHWC: 1 thread exit 139 (segfault) in the
    first backward, every try; 2 threads a hang at 100% of a core (killed: 137); NCHW runs.
  * its layers one at a time: only the 1x1 stride-2 shortcut `Conv2d(4, 8, 1, stride=2)` fails. The minimal
    case: that layer, input 32x4x32x32 in NHWC, the weight gradient alone (no input gradient needed),
    1 thread: exit 139 or 134 ("double free or corruption") on every try; `Conv2d(2, 1, 1, stride=2)`,
    input 2x2x8x8 fails too. 2 threads: the hang (2 tries of 3), or a pass.
  * failing: kernel 1x1, stride 2 or 4, 2 to 7 input channels (any output channels 1-64), batch >= 2,
    input >= 8x8. Running: 1 or 8+ input channels (8-36 tried), stride 1, 3x3 kernels (stride 1 and 2,
    1-8 input channels), batch 1, 4x4 inputs, NCHW, and `torch.backends.mkldnn.enabled = False`: oneDNN.
`policy.cpu_nhwc_unsafe` keeps every strided convolution with fewer than 8 input channels out of NHWC on
CPUs (a ResNet's shortcut reads `width` channels: widths 1-7); GPUs keep NHWC.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from binary_encoding.model.backbones import MLP, ResNet
from binary_encoding.run import policy
from binary_encoding.run.conf import CONF_DIR

ROOT = Path(__file__).resolve().parents[1]


def cfg(*overrides: str):
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return compose("config", overrides=["trainer.accelerator=cpu", "logger=csv", *overrides])


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6, 7])
def test_auto_never_picks_channels_last_on_a_cpu_for_strided_convolutions_of_few_channels(width):
    net = ResNet((3, 32, 32), width=width)
    assert "stages.2.shortcut.0" in policy.cpu_nhwc_unsafe(net)  # the 1x1 stride-2 shortcut reads `width`
    assert policy.channels_last(cfg(), net) is False


def test_auto_picks_channels_last_where_every_strided_convolution_reads_8_channels_or_more(monkeypatch):
    for width in (8, 16, 64):
        assert policy.cpu_nhwc_unsafe(ResNet((3, 32, 32), width=width)) == []
        assert policy.channels_last(cfg(), ResNet((3, 32, 32), width=width)) is True
    one_channel_input = ResNet((1, 28, 28), width=8)  # the stem reads 1 channel at stride 1: safe
    assert policy.channels_last(cfg(), one_channel_input) is True
    assert policy.channels_last(cfg(), MLP((1, 8, 8))) is False  # no convolution: nothing to lay out
    monkeypatch.setattr(policy, "on_gpu", lambda c: True)  # GPUs: NHWC for every conv backbone
    assert policy.channels_last(cfg(), ResNet((3, 32, 32), width=4)) is True


def test_channels_last_true_is_kept_on_a_cpu_with_one_line_of_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="binary_encoding"):
        assert policy.channels_last(cfg("runtime.channels_last=true"), ResNet((3, 32, 32), width=4)) is True
    (record,) = caplog.records
    assert "\n" not in record.getMessage() and "stages.2.shortcut.0" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="binary_encoding"):
        assert policy.channels_last(cfg("runtime.channels_last=true"), ResNet((3, 32, 32), width=8)) is True
        assert policy.channels_last(cfg("runtime.channels_last=false"), ResNet((3, 32, 32), width=4)) is False
    assert not caplog.records


STEPS = textwrap.dedent(
    """
    import sys, torch
    from hydra import compose, initialize_config_dir
    from binary_encoding.run import build, policy
    from binary_encoding.run.conf import CONF_DIR

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["trainer.accelerator=cpu", "backbone=resnet18", "backbone.width=4"])
    # the minimal crashing layer as a backbone, in the format auto picks for it
    layer = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 1, stride=2, bias=False))
    nhwc = policy.channels_last(cfg, layer)
    x = torch.randn(32, 4, 32, 32)
    if nhwc:
        layer, x = layer.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    module = build.build_model(cfg, (3, 32, 32), 10)  # the ResNet18 of width 4 as a run builds it
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for _ in range(3):
            layer(x).sum().backward()
            module(torch.randn(32, 3, 32, 32))[0].sum().backward()
        print(threads, flush=True)
    print(nhwc, module.channels_last, "ok", flush=True)
    """
)


def test_the_minimal_crashing_layer_and_a_width_4_resnet_train_in_the_format_auto_picks():
    """On the AVX2 EPYC these steps in NHWC end with exit 139/134 (1 thread) or hang (2 threads); in the
    format `auto` picks they run with 1 and then 2 threads, in a process killed (SIGKILL) if it outlives
    120 s."""
    r = subprocess.run(
        [sys.executable, "-c", STEPS],
        capture_output=True,
        text=True,
        timeout=120,  # subprocess.run kills the child (SIGKILL) when it runs out
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.split() == ["1", "2", "False", "False", "ok"]
