"""The model area line by line: the Python API's defaults that no config varies (every conf/backbone and
conf/head yaml sets its settings explicitly), every constructor check and its message, the `num_features`
contract on shapes no config uses, the module's buffers, memory format and optimizer flags, the gamma
schedule's edges, the latent pass's precision and view, the DDP rank helpers, the capture's undoing of its
warm-up, and the code-width warning of a run. All direct calls: no Hydra run, no Lightning fit."""

from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import hydra
import pytest
import torch
from test_models import net_cfg
from test_training_values import _Data, tiny_batches, tiny_module
from torch import nn

from binary_encoding import ranks
from binary_encoding.callbacks.gamma import GammaScheduler
from binary_encoding.callbacks.latents import Latents, _autocast_bf16, collect_latents
from binary_encoding.model.backbones import MLP, ResNet, activation
from binary_encoding.model.heads import LinearHead, NonLinearHead, NoPenultimate
from binary_encoding.model.module import BinaryEncodingModule
from binary_encoding.model.resnet1d import CNN1d, ResNet1d

F32_MAX = float(torch.finfo(torch.float32).max)

# ------------------------------------------------------------------------------------------------
# The Python API's defaults are the configs' settings
# ------------------------------------------------------------------------------------------------


def _layout(net: nn.Module):
    """What makes two backbones the same network: every tensor's name and shape, every layer's kind, and
    the convolutions' kernels, strides and paddings."""
    convs = [(m.kernel_size, m.stride, m.padding) for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}, [type(m) for m in net.modules()], convs


@pytest.mark.parametrize(
    "cls, config, shape, name",
    [
        (MLP, "mlp", (1, 8, 8), "mlp"),
        (ResNet, "resnet18", (3, 8, 8), "resnet"),
        (ResNet1d, "resnet1d", (1, 1, 40), "resnet1d"),
        (CNN1d, "cnn1d", (1, 1, 40), "cnn1d"),
    ],
)
def test_a_backbone_built_from_python_without_settings_is_its_configs_network(cls, config, shape, name):
    """MLP() is 256-256 SiLU, ResNet() the ResNet18 (basic blocks 2-2-2-2, width 64, SiLU), ResNet1d() width
    16, kernel 3, 2-2-2-2, CNN1d() 25 channels: the same layers as conf/backbone/<config>.yaml builds. Guards
    a changed keyword default, which no config run reaches. The default record label is the class's."""
    ours = cls(shape)
    theirs = hydra.utils.instantiate(net_cfg(config, "binenc").backbone, input_shape=shape)
    assert _layout(ours) == _layout(theirs)
    assert ours.act is nn.SiLU and ours.num_features == theirs.num_features and ours.name == name


def test_the_heads_default_to_the_configs_latent_width_of_4_and_nopen_to_none():
    """binenc/linpen/nonlinpen.yaml: width 4; a head built from Python without one gets the same."""
    assert LinearHead(16, 3).latent_dim == NonLinearHead(16, 3).latent_dim == 4
    assert LinearHead(16, 3).penultimate.weight.shape == (4, 16)
    assert NoPenultimate(16, 3).latent_dim == 16  # no width given is no error


def test_the_gamma_schedule_defaults_to_a_constant_gamma_without_a_cap():
    """GammaScheduler(g0): factor 1 (constant), and with a factor alone every epoch multiplies (step 1) with
    no cap (gamma_max None)."""
    assert [GammaScheduler(0.5).value(e) for e in (0, 1, 7, 300)] == [0.5] * 4
    grows = GammaScheduler(0.5, 2.0)
    assert [grows.value(e) for e in (0, 1, 2, 100)] == [0.5, 1.0, 2.0, 0.5 * 2.0**100]


def test_the_modules_device_defaults_are_off_on_a_cpu():
    """Defaults: the non-finite check at every step, NCHW, no CUDA graphs; on a CPU the optimizer is neither
    fused (fused_adamw=None means: only on CUDA) nor capturable; fused_adamw=True asks for it anyway."""
    m = BinaryEncodingModule(ResNet((3, 8, 8), layers=(1,), width=8), LinearHead(8, 3), 3)
    assert (m.check_finite_every, m.channels_last, m.cuda_graphs) == (1, False, False)
    assert not m.backbone.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    group = m.configure_optimizers().param_groups[0]
    assert (group["fused"], group["capturable"]) == (False, False)
    graphs = tiny_module(cuda_graphs=True).configure_optimizers().param_groups[0]
    assert graphs["capturable"] is False  # capturable step counts only on CUDA
    assert tiny_module(fused_adamw=True).configure_optimizers().param_groups[0]["fused"] is True


# ------------------------------------------------------------------------------------------------
# Every constructor check: refused, with its message; the smallest valid value accepted
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: MLP((1, 4, 4), hidden=()), "MLP hidden widths must be positive, got []"),
        (lambda: MLP((1, 4, 4), hidden=(8, 0)), "MLP hidden widths must be positive, got [8, 0]"),
        (lambda: ResNet((3, 8, 8), block="wide"), "unknown ResNet block 'wide'; choose one of ['basic', 'bottleneck']"),
        (
            lambda: ResNet((3, 8, 8), width=0),
            "ResNet needs width > 0 and positive stage depths, got width=0, layers=[2, 2, 2, 2]",
        ),
        (lambda: ResNet((3, 8, 8), layers=()), "got width=64, layers=[]"),
        (lambda: ResNet((3, 8, 8), layers=(2, 0)), "got width=64, layers=[2, 0]"),
        (
            lambda: ResNet1d((1, 1, 40), width=0),
            "ResNet1d needs width > 0, an odd kernel and positive stage depths, "
            "got width=0, kernel=3, layers=[2, 2, 2, 2]",
        ),
        (lambda: ResNet1d((1, 1, 40), kernel=-1), "got width=16, kernel=-1, layers=[2, 2, 2, 2]"),
        (lambda: ResNet1d((1, 1, 40), kernel=2), "got width=16, kernel=2, layers=[2, 2, 2, 2]"),
        (lambda: ResNet1d((1, 1, 40), layers=()), "got width=16, kernel=3, layers=[]"),
        (lambda: ResNet1d((1, 1, 40), layers=(1, 0)), "got width=16, kernel=3, layers=[1, 0]"),
        (lambda: CNN1d((1, 1, 40), channels=0), "CNN1d needs channels > 0, got 0"),
        (lambda: activation("swish"), "unknown activation 'swish'; choose one of ['gelu', 'relu', 'silu', 'tanh']"),
        (lambda: LinearHead(8, 3, width=None), "this head needs a positive latent width (head.width), got None"),
        (lambda: LinearHead(8, 3, width=-2), "got -2"),
        (lambda: NonLinearHead(8, 3, width=0), "got 0"),
        (
            lambda: NoPenultimate(8, 3, width=4),
            "head nopen has no latent layer: its latent width is the backbone's, got width=4",
        ),
        (
            lambda: NoPenultimate(8, 3, width=0),
            "head nopen has no latent layer: its latent width is the backbone's, got width=0",
        ),
        (lambda: tiny_module(lr=-1e-3), "lr must be positive, got -0.001"),
        (lambda: GammaScheduler(0.1, step=0), "need gamma0 >= 0, gamma_factor > 0, gamma_step >= 1; got 0.1, 1.0, 0"),
        (lambda: GammaScheduler(0.1, factor=0.0), "got 0.1, 0.0, 1"),
        (lambda: GammaScheduler(0.1, gamma_max=-0.5), "gamma_max must be >= 0 or null, got -0.5"),
    ],
)
def test_each_invalid_setting_is_refused_with_its_message(build, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build()


def test_the_smallest_valid_settings_are_accepted():
    """Width 1, one stage of one block, kernel 1, one channel: the checks' boundaries (`<= 0`, not `< 1` off
    by one); gamma_max equal to gamma0 is no conflict (no warning), as gamma0 = 0 and gamma_step 1 are none."""
    x = torch.randn(2, 1, 1, 9)
    assert MLP((1, 1, 9), hidden=(1,))(x).shape == (2, 1)
    assert ResNet((1, 1, 9), layers=(1,), width=1)(x).shape == (2, 1)
    assert ResNet1d((1, 1, 9), layers=(1,), width=1, kernel=1)(x).shape == (2, 1)
    assert CNN1d((1, 1, 9), channels=1)(x).shape == (2, 1)
    assert LinearHead(3, 2, width=1).latent_dim == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert GammaScheduler(0.5, 2.0, step=1, gamma_max=0.5).value(3) == 0.5
        assert GammaScheduler(0.0, 1e-9, step=1).value(3) == 0.0


# ------------------------------------------------------------------------------------------------
# num_features is the width of what forward returns, on layouts no config has
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, shape, features",
    [
        (lambda s: MLP(s, hidden=(7,)), (2, 3, 5), 7),
        (lambda s: MLP(s, hidden=(5, 9, 3)), (1, 4, 4), 3),  # the last width, not the first or the widest
        (lambda s: ResNet(s, layers=(1, 1, 1), width=4), (3, 12, 12), 16),  # three stages: width * 2**2
        (lambda s: ResNet(s, layers=(1, 2), block="bottleneck", width=2), (3, 12, 12), 16),  # 2 * 2 * 4
        (lambda s: ResNet(s, layers=(1,), width=5), (1, 9, 9), 5),
        (lambda s: ResNet1d(s, layers=(1, 1, 1), width=3, kernel=5), (2, 1, 30), 12),
        (lambda s: ResNet1d(s, layers=(2,), width=6, kernel=1), (1, 1, 17), 6),
        (lambda s: CNN1d(s, channels=3), (1, 1, 64), 24),  # length 64 -> 31 -> 16 -> 8
        (lambda s: CNN1d(s, channels=4), (2, 3, 40), 20),  # 6 input channels, length 40 -> 19 -> 10 -> 5
    ],
)
def test_num_features_is_the_width_of_the_features_forward_returns(build, shape, features):
    net = build(shape)
    assert net.num_features == features
    assert net(torch.randn(3, *shape)).shape == (3, features)


# ------------------------------------------------------------------------------------------------
# Heads and the module
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [LinearHead(6, 3), NonLinearHead(6, 3, act="tanh"), NoPenultimate(6, 3)])
def test_a_head_fed_bf16_features_computes_in_fp32_from_their_values(head):
    """Features arriving in bf16 (a bf16 backbone) are upcast, not rejected or kept in bf16: z and the logits
    are fp32 and equal the head applied to the same values in fp32."""
    h = torch.randn(4, 6).bfloat16()
    logits, z = head(h)
    ref_logits, ref_z = head(h.float())
    assert z.dtype == logits.dtype == torch.float32
    torch.testing.assert_close((logits, z), (ref_logits, ref_z), rtol=0, atol=0)


def test_the_checkpoint_holds_the_weights_batchnorm_statistics_and_gamma_but_no_step_bookkeeping():
    """state_dict = parameters + BatchNorm buffers + `gamma`; the first bad step (-1: none), the step index
    and the epoch sums (5 zeros: loss, ce, quad, correct, images) are per-fit bookkeeping, not saved."""
    m = tiny_module()
    expected = {n for n, _ in m.named_parameters()} | {n for n, _ in m.named_buffers() if "backbone" in n} | {"gamma"}
    assert set(m.state_dict()) == expected
    assert (int(m.bad_step), int(m.step_index)) == (-1, 0) and torch.equal(m.train_sums, torch.zeros(5))


def test_channels_last_puts_the_backbones_weights_and_its_4d_inputs_in_nhwc_with_the_same_numbers():
    torch.manual_seed(0)
    plain = BinaryEncodingModule(ResNet((3, 8, 8), layers=(1, 1), width=8), LinearHead(16, 3), 3).eval()
    nhwc = BinaryEncodingModule(ResNet((3, 8, 8), layers=(1, 1), width=8), LinearHead(16, 3), 3, channels_last=True)
    nhwc.load_state_dict(plain.state_dict())
    nhwc.eval()
    assert nhwc.backbone.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    nhwc.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), plain(x))
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(
        memory_format=torch.channels_last
    )


def test_a_resumed_optimizer_takes_this_runs_rate_and_decay_and_the_step_graph_is_captured_anew():
    """on_train_start: every group's lr and weight_decay are the module's (a checkpoint's optimizer carries
    the old run's), and a step graph of an earlier fit (device addresses) is dropped."""
    m = tiny_module(lr=0.02, weight_decay=0.003)
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(2))], lr=0.5, weight_decay=0.1)
    opt.add_param_group({"params": [nn.Parameter(torch.zeros(1))], "lr": 0.7, "weight_decay": 0.2})
    m._trainer = SimpleNamespace(optimizers=[opt])
    m.__dict__["_step_graph"] = ("old shape", None)
    m.on_train_start()
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.02, 0.003)] * 2
    assert m._step_graph is None


def test_capture_undoes_its_warm_up_steps_from_an_existing_optimizer_state_and_replays_on_the_new_batch(monkeypatch):
    """capture_step after a real optimizer step (the capture of a resumed run, or of a later fit): the warm-up
    steps are undone back to that state (restored, not zeroed), gradients are dropped for the graph to own,
    `fn` ran `warmup` times, and a replay runs on the batch it is given (copied into the static input)."""
    from test_models import _eager_stand_in

    import binary_encoding.model.step_graph as sg

    monkeypatch.setattr(sg, "_record", _eager_stand_in)
    torch.manual_seed(0)
    m = tiny_module(lr=0.1)
    opt = m.configure_optimizers()
    calls = []

    def fn(x, y):
        calls.append(1)
        opt.zero_grad(set_to_none=False)
        logits, z = m(x)
        loss = m.loss_terms(logits, z, y)[2]
        loss.backward()
        opt.step()
        return loss.detach()

    (x0, y0), (x1, y1) = tiny_batches((8, 8))
    fn(x0, y0)  # the optimizer has a state now
    before = {k: v.clone() for k, v in m.state_dict().items()}
    state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in opt.state.items()}
    calls.clear()
    replay = sg.capture_step(fn, (x0, y0), [m], opt, warmup=3)
    assert len(calls) == 3
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    for p, s in opt.state.items():
        for k, v in s.items():
            torch.testing.assert_close(v, state[id(p)][k], rtol=0, atol=0, msg=k)
    assert all(p.grad is None for p in m.parameters())
    with torch.no_grad():
        expected = m.loss_terms(*m(x1), y1)[2]
    torch.testing.assert_close(replay(x1, y1), expected)


# ------------------------------------------------------------------------------------------------
# The gamma schedule's edges
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "gamma0, factor, epoch, buffer",
    [(0.25, 3.0, 2, 2.25), (F32_MAX, 1.0, 5, F32_MAX), (1e38, 10.0, 0, 1e38), (1e38, 10.0, 1, float("inf"))],
)
def test_each_epoch_start_writes_that_epochs_gamma_and_inf_only_beyond_float32(gamma0, factor, epoch, buffer):
    """The module's buffer gets value(epoch) of the trainer's current epoch; float32's largest value itself is
    kept, only a value above it (which cannot be written into a float32 buffer) becomes inf."""
    s = GammaScheduler(gamma0, factor)
    module = SimpleNamespace(gamma=torch.tensor(-1.0))
    s.on_train_epoch_start(SimpleNamespace(current_epoch=epoch), module)
    assert s.current == gamma0 * factor**epoch
    assert float(module.gamma) == pytest.approx(buffer, rel=1e-6)


def test_resuming_under_another_gamma_schedule_warns_and_keeps_the_checkpoints_current_gamma():
    saved = GammaScheduler(0.01, 1.084, step=2, gamma_max=10.0)
    saved.current = 3.5
    state = saved.state_dict()
    assert state == {"gamma0": 0.01, "factor": 1.084, "step": 2, "gamma_max": 10.0, "current": 3.5}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same schedule: silent
        GammaScheduler(0.01, 1.084, step=2, gamma_max=10.0).load_state_dict(state)
    for changed in (dict(gamma0=0.02), dict(factor=1.1), dict(step=1), dict(gamma_max=None)):
        new = GammaScheduler(**({"gamma0": 0.01, "factor": 1.084, "step": 2, "gamma_max": 10.0} | changed))
        with pytest.warns(
            UserWarning, match=re.escape("resuming with a different gamma schedule: checkpoint (0.01, 1.084, 2, 10.0)")
        ):
            new.load_state_dict(state)
        assert new.current == 3.5 and new.state_dict()["gamma0"] == new.gamma0


# ------------------------------------------------------------------------------------------------
# The latent pass
# ------------------------------------------------------------------------------------------------


def test_latents_predict_by_argmax_and_convert_to_numpy_under_their_names():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [0.0, 0.2, 0.1], [1.0, 1.5, 4.0]])
    lat = Latents(torch.arange(8.0).reshape(4, 2), logits, torch.tensor([1, 0, 2, 2]))
    assert lat.pred.tolist() == [1, 0, 1, 2] and lat.acc == 0.75
    arrays = lat.numpy()
    assert set(arrays) == {"z", "logits", "y"}
    assert arrays["z"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]] and arrays["y"].tolist() == [1, 0, 2, 2]
    assert arrays["logits"].shape == (4, 3)


@pytest.mark.parametrize(
    "precision, bf16", [("bf16-mixed", True), ("bf16-true", True), ("32-true", False), ("16-mixed", False)]
)
def test_the_latent_pass_runs_in_bf16_where_the_trainer_does(precision, bf16):
    m = tiny_module()
    assert _autocast_bf16(m) is False  # no trainer attached
    assert _autocast_bf16(nn.Linear(2, 2)) is False  # a plain torch module
    m._trainer = SimpleNamespace(precision=precision)
    assert _autocast_bf16(m) is bf16


def test_a_bf16_latent_pass_runs_the_backbone_in_bf16_and_returns_fp32():
    """bf16=True: the backbone's matrix products in bf16 (the latents differ from the fp32 pass by bf16's
    rounding, not more), the arrays fp32; bf16=None without a trainer is the fp32 pass."""
    torch.manual_seed(0)
    m, dm = tiny_module(), _Data()
    fp32, default, half = (collect_latents(m, dm, "val", bf16=b) for b in (False, None, True))
    assert half.z.dtype == half.logits.dtype == torch.float32
    torch.testing.assert_close(default.z, fp32.z, rtol=0, atol=0)
    assert not torch.equal(half.z, fp32.z)
    torch.testing.assert_close(half.z, fp32.z, rtol=0.05, atol=0.05)


def test_the_latent_pass_reads_the_view_it_is_asked_for():
    """augmented=True reads the split's augmented view, augmented=False (the default) the clean one."""

    class Views(_Data):
        def eval_dataloader(self, split, augmented=False):
            x, y = self.x[split], self.y[split]
            return [((x.flip(-1) if augmented else x), y)]

    torch.manual_seed(0)
    m, dm = tiny_module(), Views()
    clean, aug = (collect_latents(m, dm, "train", augmented=a) for a in (False, True))
    default = collect_latents(m, dm, "train")
    m.eval()
    with torch.no_grad():
        _, z_flip = m(dm.normalize(dm.x["train"].flip(-1)))
    torch.testing.assert_close(aug.z, z_flip)
    torch.testing.assert_close(default.z, clean.z, rtol=0, atol=0)
    assert not torch.allclose(aug.z, clean.z)


# ------------------------------------------------------------------------------------------------
# Ranks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env, rank_world, launched",
    [
        ({}, (0, 1), False),
        ({"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}, (2, 4), True),
        ({"WORLD_SIZE": "3"}, (0, 3), False),
        ({"RANK": "1", "WORLD_SIZE": "2"}, (1, 2), False),  # a rank of another launcher: not one of launch_ddp's
        ({"LOCAL_RANK": "1"}, (0, 1), True),
    ],
)
def test_without_a_process_group_the_rank_is_torch_distributed_runs_environment(env, rank_world, launched, monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert ranks.rank_world() == rank_world and ranks.rank() == rank_world[0]
    assert ranks.is_rank0() is (rank_world[0] == 0) and ranks.is_launched_rank() is launched


def test_gather_strided_rebuilds_the_split_in_dataset_order_from_unequal_shards(monkeypatch):
    """Rank r holds full[r::3] (7 rows: shards of 3, 2 and 2, padded to the longest for the all-gather);
    every rank gets `full` back. torch.distributed stood in for by three ranks' shards."""
    import torch.distributed as dist

    full = torch.arange(14.0).reshape(7, 2) + 100
    shards = [full[r::3] for r in range(3)]
    calls = []

    def all_gather(out, t):
        for r, o in enumerate(out):
            if not calls:  # the sizes
                o.fill_(len(shards[r]))
            else:  # the padded shards: padded to this call's length
                o.zero_()
                o[: len(shards[r])] = shards[r]
        calls.append(tuple(t.shape))

    monkeypatch.setattr(dist, "get_world_size", lambda: 3)
    monkeypatch.setattr(dist, "all_gather", all_gather)
    for r in range(3):
        calls.clear()
        assert torch.equal(ranks.gather_strided(shards[r]), full)
        assert calls == [(1,), (3, 2)]  # padded to the longest shard


# ------------------------------------------------------------------------------------------------
# The code-width warning of a run
# ------------------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop(*args, **kwargs):
    raise _Stop(args)


def _fit_until_stopped(monkeypatch, num_classes=10, width=4, **stubs):
    """Run `fit.fit` on a stand-in data module (`num_classes` classes) with `stubs` replacing the builders it
    calls, until one of them raises `_Stop`; return the warnings it gave and the `_Stop` raised."""
    from omegaconf import OmegaConf

    from binary_encoding.run import fit, settings, threads

    for var in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # set by fit's seed_everything: restored after the test
        monkeypatch.setenv(var, "0")
    monkeypatch.setattr(threads, "apply", lambda n: 1)
    monkeypatch.setattr(settings, "check_data", lambda cfg, dm: None)
    dm = SimpleNamespace(num_classes=num_classes, input_shape=(1, 4, 4))
    monkeypatch.setattr(fit, "build_datamodule", lambda cfg: dm)
    for name, stub in stubs.items():
        monkeypatch.setattr(fit, name, stub)
    cfg = OmegaConf.create({"seed": 0, "runtime": {"threads": None}, "head": {"width": width}})
    with warnings.catch_warnings(record=True) as caught, pytest.raises(_Stop) as stopped:
        warnings.simplefilter("always")
        fit.fit(cfg, [])
    return [str(w.message) for w in caught], stopped.value


@pytest.mark.parametrize(
    "width, classes, needed", [(2, 8, 3), (3, 8, None), (3, 10, 4), (4, 16, None), (4, 17, 5), (None, 10, None)]
)
def test_a_latent_width_with_fewer_binary_codes_than_classes_warns_with_the_width_needed(
    width, classes, needed, monkeypatch
):
    """2**width codes for `classes` classes: a warning only when there are fewer codes than classes, naming
    the width needed, ceil(log2(classes)) (3 for 8 classes, 5 for 17); nopen (width null) never warns."""
    caught, _ = _fit_until_stopped(monkeypatch, classes, width, build_model=_stop)
    texts = [t for t in caught if "binary codes" in t]
    if needed is None:
        assert texts == []
    else:
        assert texts == [
            f"head.width={width} gives {2**width} binary codes for {classes} classes: classes must share codes "
            f"(need width >= {needed})"
        ]


def test_a_run_reports_its_models_parameter_count_and_needs_the_metrics_callback(monkeypatch):
    """The loggers get the number of scalar parameters (tiny_module: MLP 16*8 + 8 + BatchNorm 2*8, head
    8*2 + 2 + 2*3 + 3 = 179), not the number of tensors; a config without callbacks.metrics is refused."""
    from binary_encoding.run.policy import ConfigError

    _, stopped = _fit_until_stopped(
        monkeypatch,
        3,
        2,
        build_model=lambda *a: tiny_module(),
        build_callbacks=lambda cfg: {"metrics": object()},
        build_loggers=_stop,
    )
    assert stopped.args[0][1] == 16 * 8 + 8 + 2 * 8 + 8 * 2 + 2 + 2 * 3 + 3
    with pytest.raises(ConfigError, match=re.escape("callbacks.metrics is needed: the summary is made of its results")):
        _fit_until_stopped(
            monkeypatch, 3, 2, build_model=lambda *a: tiny_module(), build_callbacks=lambda cfg: {"gamma": 1}
        )


def test_the_callbacks_are_built_in_the_configs_order_without_the_null_ones_and_no_logger_without_a_target():
    from omegaconf import OmegaConf

    from binary_encoding.run.build import build_callbacks, build_loggers

    gamma = {"_target_": "binary_encoding.callbacks.gamma.GammaScheduler", "gamma0": 0.5, "factor": 2.0}
    cfg = OmegaConf.create({"callbacks": {"z_first": gamma, "off": None, "a_last": gamma | {"gamma0": 0.25}}})
    built = build_callbacks(cfg)
    assert list(built) == ["z_first", "a_last"] and [c.gamma0 for c in built.values()] == [0.5, 0.25]
    for logger in (None, {}, {"project": "p"}):  # logger=none, logger=csv: no _target_, no logger
        assert build_loggers(OmegaConf.create({"logger": logger}), 10) == []
