"""Training semantics pinned to known values: the backbones against torchvision with the same weights, the
gradient of the loss against a hand computation, the optimizer against torch's AdamW and the documented
hyperparameters (docs/method.md §4.3), the gamma each step trains with, when a non-finite loss is reported,
and when the per-epoch metric pass runs. Every test is fast (no Hydra, tiny models, at most a few
Lightning steps)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_models import quiet_trainer
from torch import nn
from torch.utils.data import DataLoader

from binary_encoding.callbacks.gamma import GammaScheduler
from binary_encoding.callbacks.latents import collect_latents
from binary_encoding.callbacks.metrics import Metrics, MetricSettings
from binary_encoding.model.backbones import MLP, ResNet
from binary_encoding.model.heads import LinearHead
from binary_encoding.model.module import BinaryEncodingModule, NonFiniteLossError
from binary_encoding.model.resnet1d import CNN1d, ResNet1d


def tiny_module(**kw) -> BinaryEncodingModule:
    """MLP (4x4 inputs, one hidden layer of 8 with BatchNorm) + linear head of width 2, 3 classes."""
    bb = MLP((1, 4, 4), hidden=(8,))
    return BinaryEncodingModule(bb, LinearHead(bb.num_features, 3, width=2), 3, **kw)


def tiny_batches(sizes=(8, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in sizes]


# ------------------------------------------------------------------------------------------------
# Backbones: the same weights give torchvision's numbers
# ------------------------------------------------------------------------------------------------


def _torchvision_cifar(arch: str, in_channels: int):
    """torchvision's ResNet made the CIFAR variant of docs/method.md §2.1: 3x3 stride-1 stem with bias,
    no max-pool, no fc (features after global average pooling). ReLU, as torchvision's."""
    from torchvision.models import resnet as tv

    net = getattr(tv, arch)(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=True)
    net.maxpool, net.fc = nn.Identity(), nn.Identity()
    return net


def _as_torchvision_state(ours: nn.Module, layers, one_d: bool = False) -> dict:
    """Our ResNet's state dict under torchvision's names (1-D convolutions as 3x3 kernels whose middle row
    holds the 1-D kernel: on a one-row image padded by 1 that is the same convolution)."""
    names = {"stem.0": "conv1", "stem.1": "bn1"}
    k = 0
    for s, n in enumerate(layers):
        for j in range(n):
            names[f"stages.{k}"] = f"layer{s + 1}.{j}"
            k += 1
    out = {}
    for key, v in ours.state_dict().items():
        if one_d and v.dim() == 3:  # Conv1d weight [out, in, k]
            pad = torch.zeros(*v.shape[:2], 3, 3) if v.shape[-1] == 3 else torch.zeros(*v.shape[:2], 1, 1)
            pad[:, :, pad.shape[2] // 2, :] = v
            v = pad
        prefix = next(p for p in sorted(names, key=len, reverse=True) if key.startswith(p + "."))
        out[names[prefix] + key[len(prefix) :].replace(".shortcut.", ".downsample.")] = v
    return out


def _randomize_batchnorm(net: nn.Module) -> None:
    for bn in (m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):  # not the identity init
        nn.init.uniform_(bn.weight, 0.5, 1.5), nn.init.uniform_(bn.bias, -0.5, 0.5)


@pytest.mark.parametrize(
    "arch, layers, block, features",
    [("resnet18", (2, 2, 2, 2), "basic", 512), ("resnet50", (3, 4, 6, 3), "bottleneck", 2048)],
)
def test_the_cifar_resnets_compute_what_torchvisions_resnet_with_a_cifar_stem_computes(arch, layers, block, features):
    """The whole backbone (stem conv with bias + BatchNorm + act, no max-pool, stage strides, shortcuts,
    average pooling) against torchvision's ResNet with the CIFAR stem, same weights, in training and in eval
    mode. The strict state-dict load alone pins every layer's shape, hence the parameter count."""
    torch.manual_seed(0)
    ours = ResNet((3, 16, 16), layers=layers, block=block, act="relu")
    _randomize_batchnorm(ours)
    theirs = _torchvision_cifar(arch, 3)
    theirs.load_state_dict(_as_torchvision_state(ours, layers))
    assert ours.num_features == features
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_resnet1d_computes_what_torchvisions_resnet18_computes_on_a_one_row_image():
    """ResNet1d (width 64, kernel 3) on a length-24 signal equals torchvision's ResNet18 with the CIFAR stem
    on the same signal as a 1-row image, with the 1-D kernels as the middle rows of 3x3 kernels: same
    paddings, strides, shortcut, block order (activation after the add) and pooling."""
    torch.manual_seed(0)
    ours = ResNet1d((1, 1, 24), width=64, act="relu")
    _randomize_batchnorm(ours)
    theirs = _torchvision_cifar("resnet18", 1)
    theirs.load_state_dict(_as_torchvision_state(ours, (2, 2, 2, 2), one_d=True))
    x = torch.randn(2, 1, 1, 24)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_resnet1d_keeps_the_length_for_any_odd_kernel_and_cnn1d_pads_by_one():
    """`pad = kernel // 2`: a kernel of 5 keeps length 40 through the stem and the first stage, as 3 does.
    CNN1d (the MNIST-1D paper's): padding 1 in all three convolutions, lengths 40 -> 19 -> 10 -> 5 (with
    padding 0 the first gives 18, and 18 -> 9 -> 5 ends at the same 125 features), activation after each."""
    r = ResNet1d((1, 1, 40), layers=(1, 1), width=4, kernel=5)
    lengths = []
    for m in (r.stem, *r.stages):
        m.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1]))
    r(torch.randn(2, 1, 1, 40))
    assert lengths == [40, 40, 20]
    # the kernel reaches every convolution, the blocks' as well as the stem's
    assert {m.kernel_size for m in r.modules() if isinstance(m, nn.Conv1d) and m.kernel_size != (1,)} == {(5,)}
    c = CNN1d((1, 1, 40), channels=4)
    assert [type(m).__name__ for m in c.net] == ["Conv1d", "SiLU"] * 3 + ["Flatten"]
    convs = [m for m in c.net if isinstance(m, nn.Conv1d)]
    assert [m.padding for m in convs] == [(1,)] * 3 and all(m.bias is not None for m in convs)
    lengths.clear()
    for m in convs:
        m.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1]))
    assert c(torch.randn(2, 1, 1, 40)).shape == (2, 20)
    assert lengths == [19, 10, 5]


# ------------------------------------------------------------------------------------------------
# Loss and optimizer
# ------------------------------------------------------------------------------------------------


def test_the_gradient_of_the_loss_is_that_of_ce_plus_gamma_mean_square_by_hand():
    """d/dW of CE(V z + c, y) + gamma * mean(z^2) with z = W h + b, computed by hand in float64:
    dL/dlogits = (softmax - onehot) / B, dL/dz = dL/dlogits V + 2 gamma z / (B d). Guards the penalty's
    gradient reaching the penultimate layer (a detached latent would train binenc as linpen)."""
    torch.manual_seed(0)
    head = LinearHead(5, 3, width=2)
    m = BinaryEncodingModule(nn.Identity(), head, 3)
    gamma = 3.0
    m.gamma.fill_(gamma)
    h, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 2, 1, 0])
    logits, z = m(h)
    m.loss_terms(logits, z, y)[2].backward()

    H = h.double().numpy()
    W, b = head.penultimate.weight.detach().double().numpy(), head.penultimate.bias.detach().double().numpy()
    V, c = head.classifier.weight.detach().double().numpy(), head.classifier.bias.detach().double().numpy()
    Z = H @ W.T + b
    L = Z @ V.T + c
    P = np.exp(L - L.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    g_logits = (P - np.eye(3)[y.numpy()]) / 6
    g_z = g_logits @ V + 2 * gamma * Z / (6 * 2)
    np.testing.assert_allclose(head.penultimate.weight.grad.double().numpy(), g_z.T @ H, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(head.penultimate.bias.grad.double().numpy(), g_z.sum(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(head.classifier.weight.grad.double().numpy(), g_logits.T @ Z, rtol=1e-5, atol=1e-7)


def test_the_optimizer_is_adamw_with_decoupled_weight_decay_on_every_parameter_at_a_constant_rate():
    """docs/method.md §4.3: AdamW with PyTorch's default betas and epsilon, weight decay 5e-4 and lr 1e-3
    by default, one group holding every parameter once (biases and BatchNorm included, the gamma buffer
    not), no scheduler. The first step, by hand: p - lr wd p - lr g / (|g| + eps) (decoupled decay: Adam
    with an L2 term would normalise g + wd p instead); three steps equal torch.optim.AdamW's."""
    default = tiny_module()
    assert (default.lr, default.weight_decay, float(default.gamma)) == (1e-3, 5e-4, 0.0)
    assert "gamma" in default.state_dict() and "gamma" not in dict(default.named_parameters())
    with pytest.raises(ValueError, match="lr must be positive"):
        tiny_module(lr=0.0)

    torch.manual_seed(0)
    m = tiny_module(lr=0.1, weight_decay=0.5)
    opt = m.configure_optimizers()
    assert isinstance(opt, torch.optim.Optimizer) and len(opt.param_groups) == 1  # no lr scheduler
    group = opt.param_groups[0]
    assert [id(p) for p in group["params"]] == [id(p) for p in m.parameters()]
    assert len(group["params"]) == 8  # Linear W, b; BatchNorm weight, bias; penultimate W, b; classifier V, c
    assert (group["lr"], group["weight_decay"], group["betas"], group["eps"]) == (0.1, 0.5, (0.9, 0.999), 1e-8)
    assert not group["amsgrad"] and not group["maximize"]

    params = [p.detach().clone() for p in m.parameters()]
    ref = [p.clone().requires_grad_(True) for p in params]
    ref_opt = torch.optim.AdamW(ref, lr=0.1, weight_decay=0.5)
    g = torch.Generator().manual_seed(1)
    for step in range(3):
        grads = [torch.randn(p.shape, generator=g) for p in params]
        for p, r, gr in zip(m.parameters(), ref, grads):
            p.grad, r.grad = gr.clone(), gr.clone()
        opt.step(), ref_opt.step()
        if step == 0:
            for p, p0, gr in zip(m.parameters(), params, grads):
                torch.testing.assert_close(p.detach(), p0 * (1 - 0.1 * 0.5) - 0.1 * gr / (gr.abs() + 1e-8))
    for p, r in zip(m.parameters(), ref):
        torch.testing.assert_close(p.detach(), r.detach(), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# What a Lightning fit does with gamma and a non-finite loss
# ------------------------------------------------------------------------------------------------


def test_each_epochs_steps_train_with_that_epochs_gamma_which_is_logged_as_gamma():
    """GammaScheduler(0.5, x2): epochs 0, 1, 2 train with gamma 0.5, 1, 2 (in the module's buffer during
    every step of the epoch, not the next epoch's value), and the logged `gamma` of each epoch is that
    value, as is the gamma in train/loss = train/ce + gamma * train/quad. The learning rate and weight decay
    stay the module's at every step (docs/method.md §4.3: constant, no schedule, no warm-up)."""
    import lightning as L

    seen, logged, rates = [], [], []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append((trainer.current_epoch, float(module.gamma)))
            group = trainer.optimizers[0].param_groups[0]
            rates.append((group["lr"], group["weight_decay"]))

        def on_train_epoch_end(self, trainer, module):  # before the module's own: gamma is there, train/* not yet
            logged.append(float(trainer.callback_metrics["gamma"]))

        def on_train_end(self, trainer, module):
            self.last = {k: float(v) for k, v in trainer.callback_metrics.items()}

    torch.manual_seed(0)
    m, rec = tiny_module(lr=0.02, weight_decay=0.01), Record()
    trainer = quiet_trainer(num_sanity_val_steps=0, max_epochs=3, callbacks=[GammaScheduler(0.5, 2.0), rec])
    trainer.fit(m, DataLoader(tiny_batches((8, 5)), batch_size=None))
    assert seen == [(0, 0.5), (0, 0.5), (1, 1.0), (1, 1.0), (2, 2.0), (2, 2.0)]
    assert logged == [0.5, 1.0, 2.0]
    assert rates == [(0.02, 0.01)] * 6  # the module's rate and decay, constant: no schedule, no warm-up
    last = rec.last
    assert last["gamma"] == 2.0 and last["train/quad"] > 0.01
    assert last["train/loss"] == pytest.approx(last["train/ce"] + 2.0 * last["train/quad"], rel=1e-5)


def test_gamma_schedule_arguments_are_checked():
    """gamma0 = 0 is valid (every head but binenc); negative gamma0 or gamma_max, factor <= 0 and step < 1
    are refused when the callback is built, not at the first epoch."""
    assert GammaScheduler(0.0, 1.0).value(5) == 0.0
    with pytest.warns(UserWarning, match="above gamma_max"):
        assert GammaScheduler(0.1, 2.0, gamma_max=0.0).value(3) == 0.0
    bad_args = (
        dict(gamma0=-0.1),
        dict(gamma0=0.1, factor=-1.0),
        dict(gamma0=0.1, step=0),
        dict(gamma0=0.0, gamma_max=-1.0),
    )
    for bad in bad_args:
        with pytest.raises(ValueError):
            GammaScheduler(**bad)


def test_a_non_finite_loss_in_the_last_step_of_a_later_epoch_is_reported_at_that_epoch_end():
    """Read every 4 steps with 3 batches per epoch, the flag is read only at each epoch's last step: a NaN
    loss at epoch 1, batch 2 stops the fit there, naming the global step 5 (not the batch index 2)."""
    import lightning as L

    class Poison(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if (trainer.current_epoch, batch_idx) == (1, 2):
                module.gamma.fill_(float("nan"))

    torch.manual_seed(0)
    m = tiny_module(check_finite_every=4)
    trainer = quiet_trainer(num_sanity_val_steps=0, max_epochs=2, callbacks=[Poison()])
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1, step 5 "):
        trainer.fit(m, DataLoader(tiny_batches(), batch_size=None))
    assert trainer.global_step == 6


# ------------------------------------------------------------------------------------------------
# Latents and the per-epoch metric pass
# ------------------------------------------------------------------------------------------------


class _Data:
    """The part of a data module that `collect_latents` and `Metrics` read: split names, the number of
    classes, batches of a clean split in order, and the normalisation."""

    def __init__(self, splits=("train", "val", "test"), n=30, batches=2):
        g = torch.Generator().manual_seed(0)
        self.splits, self.num_classes = splits, 3
        self.x = {s: torch.rand(n, 1, 4, 4, generator=g) * 4 for s in splits}
        self.y = {s: torch.arange(n) % 3 for s in splits}
        self.batches = batches

    def eval_dataloader(self, split, augmented=False):
        return list(zip(self.x[split].chunk(self.batches), self.y[split].chunk(self.batches)))

    def normalize(self, x):
        return (x - 2.0) / 1.5


@pytest.mark.parametrize("training", [True, False])
def test_collect_latents_forwards_the_normalised_split_in_eval_mode_and_restores_the_mode(training):
    """In order, normalised, with BatchNorm's running statistics (not the batch's, and left unchanged),
    whatever mode the module was in, which it is left in again."""
    torch.manual_seed(0)
    m = tiny_module()
    m.train()
    m(torch.randn(16, 1, 4, 4) + 3.0)  # running statistics far from those of the split's batches
    bn = m.backbone.net[2]
    before = (bn.running_mean.clone(), bn.running_var.clone())
    m.train(training)
    dm = _Data()
    lat = collect_latents(m, dm, "val")
    assert m.training is training
    torch.testing.assert_close((bn.running_mean, bn.running_var), before, rtol=0, atol=0)
    m.eval()
    with torch.no_grad():
        logits, z = m(dm.normalize(dm.x["val"]))
    torch.testing.assert_close(lat.z, z)
    torch.testing.assert_close(lat.logits, logits)
    assert torch.equal(lat.y, dm.y["val"])
    assert lat.acc == pytest.approx(float((logits.argmax(1) == dm.y["val"]).float().mean()))


@pytest.mark.parametrize(
    "every, hist_every, max_epochs, passes, pictures",
    [
        (2, 3, 5, [1, 3, 4], [3, 4]),  # every 2nd epoch (1, 3) and the last (4); pictures at epochs % 3 == 0 and last
        (1, 2, 3, [0, 1, 2], [0, 2]),
        (0, 1, 2, [], []),  # never, not even at the last epoch
    ],
)
def test_the_metric_pass_runs_every_nth_epoch_and_at_the_last(every, hist_every, max_epochs, passes, pictures):
    """Metrics.on_train_epoch_end over a whole fit's epochs: which epochs run the pass (logging
    `<split>/<metric>` of the splits the data has, and `time/latent_metrics_s`), which draw the W&B
    pictures, none during the sanity check, and the last epoch's latents kept for the end-of-fit metrics."""
    torch.manual_seed(0)
    m = tiny_module()
    cb = Metrics(MetricSettings(every=every, hist_every=hist_every, splits=("train", "val")))
    drawn, ran = [], []
    cb._pictures = lambda trainer, split, lat, epoch: drawn.append((split, epoch))
    m.log_dict = lambda values, **kw: ran.append(values)
    dm = _Data(splits=("train", "test"))  # no validation split: no val metrics
    trainer = SimpleNamespace(max_epochs=max_epochs, sanity_checking=True, datamodule=dm, global_step=0)
    trainer.current_epoch = 0
    cb.on_train_epoch_end(trainer, m)
    assert ran == []  # sanity check
    trainer.sanity_checking = False
    epochs = []
    for epoch in range(max_epochs):
        trainer.current_epoch, trainer.global_step = epoch, 7 * (epoch + 1)
        n = len(ran)
        cb.on_train_epoch_end(trainer, m)
        epochs += [epoch] * (len(ran) - n)
        if epoch < max_epochs - 1:
            assert cb._kept is None
    assert epochs == passes
    assert drawn == [("train", e) for e in pictures]
    for values in ran:
        assert "train/nc1" in values and "train/agreement_dim" in values and "time/latent_metrics_s" in values
        assert not any(k.startswith(("val/", "test/")) for k in values)
    if passes:
        assert cb._kept[0] == 7 * max_epochs and set(cb._kept[1]) == {"train"}


@pytest.mark.parametrize("name", ["silu", "relu", "gelu", "tanh"])
def test_each_activation_name_computes_torchs_function_of_that_name(name):
    """`backbone.act` names a function: the MLP built with it computes torch.nn.functional's function of
    the same name after its BatchNorm (checked on values where the four functions differ)."""
    import torch.nn.functional as F

    mlp = MLP((3,), hidden=(3,), act=name).eval()
    x = torch.tensor([[-2.0, 0.5, 3.0]])
    pre = mlp.net[2](mlp.net[1](mlp.net[0](x)))  # Flatten, Linear, BatchNorm
    assert torch.allclose(mlp(x), getattr(F, name)(pre) if name != "tanh" else torch.tanh(pre))


def test_a_nonlinpen_head_built_without_an_activation_uses_silu_the_papers_backbone_activation():
    """docs/method.md: NonLinPen's activation is the backbone's, SiLU by default; a head built directly
    (the Python API, no config) gets the same default."""
    from binary_encoding.model.heads import NonLinearHead

    head = NonLinearHead(8, 3)
    assert [type(m) for m in head.penultimate] == [nn.Linear, nn.SiLU]


def test_callbacks_given_to_train_run_after_the_configs_own_and_see_the_gamma_of_each_epoch(cfg_factory):
    """`train(cfg, callbacks=[...])` puts the caller's callbacks after the config's (the gamma schedule, the
    metrics): at each epoch start a caller's callback sees the gamma of that epoch, already set (gamma0
    0.01 doubled per epoch: 0.01, 0.02, 0.04), not the one before."""
    from lightning.pytorch.callbacks import Callback

    from binary_encoding.train import train

    class Seen(Callback):
        def __init__(self):
            self.gammas = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.gammas.append(float(pl_module.gamma))

    seen = Seen()
    over = ("trainer.max_epochs=3", "deepfool_samples=0", "metrics_every=0", "head.gamma_factor=2.0")
    train(cfg_factory(*over, "logger=csv"), callbacks=[seen])
    assert seen.gammas == pytest.approx([0.01, 0.02, 0.04])
