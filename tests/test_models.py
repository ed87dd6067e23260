"""Backbones and heads, parametrized over the config groups (every conf/backbone and conf/head yaml),
the module's loss, the gamma schedule and the CUDA-graph training step."""

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from binary_encoding.callbacks.gamma import GammaScheduler
from binary_encoding.model.heads import LinearHead, NonLinearHead, NoPenultimate
from binary_encoding.model.module import BinaryEncodingModule
from binary_encoding.model.resnet1d import ResNet1d
from binary_encoding.run.build import build_net
from binary_encoding.run.conf import CONF_DIR

BACKBONES = sorted(p.stem for p in Path(CONF_DIR, "backbone").glob("*.yaml"))
HEADS = sorted(p.stem for p in Path(CONF_DIR, "head").glob("*.yaml"))
SHAPES = {
    "mlp": (1, 8, 8),
    "resnet18": (3, 16, 16),
    "resnet34": (3, 16, 16),
    "resnet50": (3, 16, 16),
    "resnet1d": (1, 1, 40),
    "cnn1d": (1, 1, 40),
}
NARROW = {"mlp": {}, "cnn1d": {"channels": 8}}  # settings for a fast copy of each backbone (ResNets: width 8)


def net_cfg(backbone: str, head: str, **backbone_settings):
    """The real backbone and head configs (resolved the way a run resolves them)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"backbone={backbone}",
                f"head={head}",
                *(f"backbone.{k}={v}" for k, v in backbone_settings.items()),
            ],
        )
    return cfg


def make(backbone: str, head: str, num_classes: int = 10, gamma0: float = 0.0):
    # ResNets at width 8: same graph, fast
    cfg = net_cfg(backbone, head, **NARROW.get(backbone, {"width": 8}))
    net = build_net(cfg, SHAPES.get(backbone, (3, 16, 16)), num_classes)
    m = BinaryEncodingModule(net.backbone, net.head, num_classes)
    m.gamma.fill_(gamma0)
    return m


def quiet_trainer(**kw):
    """A Lightning Trainer that writes and prints nothing: no logger, checkpoint, progress bar or summary."""
    import lightning as L

    kw.setdefault("accelerator", "cpu")
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(**quiet, **kw)


def test_the_registries_hold_the_paper_models():
    assert set(BACKBONES) >= {"mlp", "resnet18", "resnet34", "resnet50", "resnet1d", "cnn1d"}
    assert set(HEADS) >= {"binenc", "linpen", "nonlinpen", "nopen"}


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("head", HEADS)
def test_every_head_on_every_backbone(backbone, head):
    torch.manual_seed(0)
    m = make(backbone, head, gamma0=0.1)
    x = torch.randn(4, *SHAPES.get(backbone, (3, 16, 16)))
    y = torch.tensor([0, 1, 2, 3])
    logits, z = m(x)
    assert logits.shape == (4, 10)
    assert z.shape == (4, m.backbone.num_features if head == "nopen" else 4)
    assert torch.isfinite(logits).all() and torch.isfinite(z).all()
    _, _, loss = m.loss_terms(logits, z, y)
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing}"
    assert all(p.grad.abs().sum() > 0 for n, p in m.named_parameters() if "classifier" in n)


def build_backbone(name: str, shape, **settings):
    cfg = net_cfg(name, "binenc", **settings)
    return hydra.utils.instantiate(cfg.backbone, input_shape=shape)


def test_backbone_contract_features():
    assert build_backbone("resnet18", (3, 32, 32)).num_features == 512
    assert build_backbone("resnet50", (3, 32, 32)).num_features == 2048
    assert build_backbone("mlp", (1, 8, 8), hidden="[256,256]").num_features == 256
    mlp = build_backbone("mlp", (1, 8, 8), hidden="[32,16]")  # widths that differ: the last one is h's
    assert mlp.num_features == 16 == mlp(torch.zeros(2, 1, 8, 8)).shape[1]
    # CIFAR stem: 3x3 stride-1 conv with bias, no max-pool
    stem = build_backbone("resnet18", (3, 32, 32)).stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1) and stem.bias is not None
    # torchvision's depths: 2-2-2-2 basic blocks (18 layers), 3-4-6-3 basic (34), 3-4-6-3 bottleneck (50)
    blocks = {
        n: [type(b).__name__ for b in build_backbone(n, (3, 32, 32)).stages]
        for n in ("resnet18", "resnet34", "resnet50")
    }
    assert blocks["resnet18"] == ["BasicBlock"] * 8 and blocks["resnet34"] == ["BasicBlock"] * 16
    assert blocks["resnet50"] == ["Bottleneck"] * 16
    assert all(build_backbone(n, SHAPES.get(n, (3, 32, 32))).name == n for n in BACKBONES)  # the records' label


def test_the_mlp_is_linear_batchnorm_activation_per_hidden_width():
    """Flatten, then Linear -> BatchNorm1d -> SiLU per hidden width: 64*256+256 + 2*256 + 256*128+128 + 2*128
    parameters for 8x8 inputs and hidden widths 256, 128."""
    net = build_backbone("mlp", (1, 8, 8), hidden="[256,128]")
    kinds = [type(m).__name__ for m in net.net]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "SiLU", "Linear", "BatchNorm1d", "SiLU"]
    assert sum(p.numel() for p in net.parameters()) == 64 * 256 + 256 + 2 * 256 + 256 * 128 + 128 + 2 * 128


def test_a_resnet_halves_the_resolution_at_the_start_of_each_stage_but_the_first():
    """CIFAR ResNet on 32x32 images: the stem and stage 1 keep 32x32, stages 2-4 halve it (16, 8, 4) and
    double the channels, as torchvision's (and the paper's) ResNet after its stem."""
    from binary_encoding.model.backbones import ResNet

    net = ResNet((3, 32, 32), layers=(1, 1, 1, 1), width=4).eval()
    shapes = []
    for block in net.stages:
        block.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    with torch.no_grad():
        assert net.stem(torch.zeros(2, 3, 32, 32)).shape[1:] == (4, 32, 32)
        assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 32)
    assert shapes == [(4, 32, 32), (8, 16, 16), (16, 8, 8), (32, 4, 4)]


def test_1d_backbones_read_a_signal_with_conv1d_stages_and_keep_the_contract():
    """resnet1d: the ResNet18 layout with Conv1d (stride-1 stem with bias, 8 BasicBlocks, stages width*2**i,
    length halved from the second stage, global average pool, SiLU); cnn1d: three strided Conv1d, flattened."""
    r = build_backbone("resnet1d", (1, 1, 40))
    assert r.num_features == 16 * 8 and r.act is torch.nn.SiLU
    stem = r.stem[0]
    assert isinstance(stem, torch.nn.Conv1d) and stem.stride == (1,) and stem.bias is not None
    assert [type(b).__name__ for b in r.stages] == ["BasicBlock1d"] * 8
    assert not any(isinstance(m, torch.nn.Conv2d) for m in r.modules())  # so channels_last stays off for it
    lengths = []
    hook = lambda m, i, o: lengths.append(o.shape[-1])  # noqa: E731
    for b in r.stages:
        b.register_forward_hook(hook)
    x = torch.randn(3, 1, 1, 40)
    assert r(x).shape == (3, 128) and lengths == [40, 40, 20, 20, 10, 10, 5, 5]
    # a [C, H, W] input is C*H channels over W: the same numbers as the plain [B, C*H, W] signal
    torch.testing.assert_close(r.eval()(x), r.pool(r.stages(r.stem(x[:, :, 0]))))
    assert build_backbone("resnet1d", (2, 1, 40), width=4).stem[0].in_channels == 2
    c = build_backbone("cnn1d", (1, 1, 40))
    convs = [m for m in c.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(m.kernel_size, m.stride, m.out_channels) for m in convs] == [((5,), (2,), 25)] + [((3,), (2,), 25)] * 2
    assert c.num_features == 25 * 5 and c(x).shape == (3, 125)  # length 40 -> 19 -> 10 -> 5
    with pytest.raises(ValueError, match="odd kernel"):
        ResNet1d((1, 1, 40), kernel=4)


@pytest.mark.parametrize("backbone", ["mlp", "resnet18", "resnet1d"])
def test_penultimate_heads_have_identical_parameter_counts(backbone):
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    n = {h: count(make(backbone, h)) for h in ("binenc", "linpen", "nonlinpen", "nopen")}
    assert n["binenc"] == n["linpen"] == n["nonlinpen"]
    feat = make(backbone, "nopen").backbone.num_features
    # nopen lacks exactly the d-wide layer: W (feat x d) + b (d), and its classifier reads feat, not d
    assert n["binenc"] - n["nopen"] == (feat * 4 + 4) + (4 * 10 + 10) - (feat * 10 + 10)


def test_head_structure():
    h = torch.randn(5, 16)
    lin, nonlin = LinearHead(16, 3, width=4), NonLinearHead(16, 3, width=4, act="silu")
    nonlin.penultimate[0].load_state_dict(lin.penultimate.state_dict())  # same weights: only the activation differs
    nonlin.classifier.load_state_dict(lin.classifier.state_dict())
    _, z_lin = lin(h)
    _, z_non = nonlin(h)
    torch.testing.assert_close(z_non, torch.nn.functional.silu(z_lin))
    logits, z = NoPenultimate(16, 3)(h)
    assert z is h and logits.shape == (5, 3)
    with pytest.raises(ValueError, match="positive latent width"):
        LinearHead(16, 3, width=0)
    with pytest.raises(ValueError, match="unknown activation"):
        NonLinearHead(16, 3, width=4, act="bogus")


def test_nonlinpen_uses_the_backbones_activation():
    cfg = net_cfg("resnet18", "nonlinpen", act="relu", width=8)
    net = build_net(cfg, (3, 16, 16), 10)
    assert isinstance(net.head.penultimate[1], torch.nn.ReLU) and OmegaConf.select(cfg, "head.net.act") == "relu"


def test_loss_is_ce_plus_gamma_mean_square():
    torch.manual_seed(0)
    m = make("mlp", "binenc")
    logits, z, y = torch.randn(6, 10), torch.randn(6, 4), torch.randint(0, 10, (6,))
    ce = torch.nn.functional.cross_entropy(logits, y)
    for gamma in (0.0, 0.5, 1e5):
        m.gamma.fill_(gamma)
        ce_, quad, loss = m.loss_terms(logits, z, y)
        torch.testing.assert_close(quad, (z**2).mean())  # mean over batch AND dimensions
        torch.testing.assert_close(loss, ce + gamma * (z**2).mean())
    m.gamma.fill_(0.0)
    assert m.loss_terms(logits, z, y)[2] == ce  # no penalty at all when gamma is 0


def test_gamma_schedule_and_cap():
    s = GammaScheduler(0.01, 1.084, step=1)
    assert s.value(0) == 0.01
    assert s.value(10) == pytest.approx(0.01 * 1.084**10)
    assert s.value(199) == pytest.approx(0.01 * 1.084**199)  # reference: ~1e5 after 200 epochs
    assert 5e4 < s.value(199) < 2e5
    capped = GammaScheduler(0.01, 1.084, step=1, gamma_max=10.0)
    assert capped.value(50) == pytest.approx(0.01 * 1.084**50) and capped.value(50) < 10
    assert capped.value(150) == 10.0
    stepped = GammaScheduler(1.0, 2.0, step=3)
    assert [stepped.value(e) for e in range(7)] == [1, 1, 1, 2, 2, 2, 4]
    with pytest.raises(ValueError):
        GammaScheduler(0.01, 0.0)
    capped.current = capped.value(150)  # as after epoch 150's start
    st = capped.state_dict()
    fresh = GammaScheduler(0.01, 1.084, step=1, gamma_max=10.0)
    assert fresh.current == 0.01  # what a resumed run starts from before loading
    fresh.load_state_dict(st)
    assert fresh.current == 10.0 and fresh.state_dict() == st


def test_epoch_training_statistics_are_batch_weighted_means(tmp_path):
    """train/{loss,ce,quad,acc_aug} logged at the epoch end equal the image-weighted means over that
    epoch's steps, recomputed here from the loss terms of each step (batches of 32, 32 and 11); the second
    of two epochs holds its own steps only (the sums restart every epoch)."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x, y = torch.randn(75, 1, 8, 8), torch.randint(0, 10, (75,))
    m = make("mlp", "binenc", gamma0=0.3)
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            with torch.no_grad():  # the step's terms with the weights it starts from (train mode, as the step)
                logits, z = module(batch[0])
                ce, quad, loss = module.loss_terms(logits, z, batch[1])
                seen.append((len(batch[1]), loss, ce, quad, (logits.argmax(1) == batch[1]).float().mean()))

        def on_train_end(self, trainer, module):  # after the module's own on_train_epoch_end
            self.logged = {k: float(v) for k, v in trainer.callback_metrics.items()}

    rec = Record()
    trainer = quiet_trainer(max_epochs=2, default_root_dir=tmp_path, callbacks=[rec])
    trainer.fit(m, DataLoader(TensorDataset(x, y), batch_size=32))
    assert [s[0] for s in seen] == [32, 32, 11] * 2
    last = seen[3:]  # the second epoch's steps
    n = torch.tensor([s[0] for s in last], dtype=torch.float32)
    for i, key in enumerate(("train/loss", "train/ce", "train/quad", "train/acc_aug"), start=1):
        expected = float((torch.stack([s[i] for s in last]) * n).sum() / n.sum())
        assert rec.logged[key] == pytest.approx(expected, rel=1e-5), key
    assert rec.logged["train/loss"] == pytest.approx(rec.logged["train/ce"] + 0.3 * rec.logged["train/quad"], rel=1e-5)
    assert rec.logged["train/images"] == 75


def _fit_steps(module, batches, device: str, precision: str = "32-true"):
    """Train `module` with Lightning on `batches` (one epoch, in order); return the optimizer state and
    the logged epoch statistics."""
    import lightning as L
    from torch.utils.data import DataLoader

    class Keep(L.Callback):
        def on_train_end(self, trainer, module):
            self.opt = {
                k: v.detach().cpu().clone()
                for s in trainer.optimizers[0].state.values()
                for k, v in s.items()
                if k != "step"
            } | {"step": [float(s["step"]) for s in trainer.optimizers[0].state.values()]}
            self.logged = {k: float(v) for k, v in trainer.callback_metrics.items()}

    keep = Keep()
    trainer = quiet_trainer(
        max_epochs=1,
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        num_sanity_val_steps=0,
        callbacks=[keep],
    )
    trainer.fit(module, DataLoader(batches, batch_size=None))
    return keep


def _graph_parity(backbone, device, precision, tol, monkeypatch):
    import copy

    torch.manual_seed(0)
    eager = make(backbone, "binenc", gamma0=0.5)
    graphed = copy.deepcopy(eager)
    graphed.cuda_graphs = True
    shape = SHAPES[backbone]
    batches = [(torch.randn(n, *shape), torch.randint(0, 10, (n,))) for n in (16,) * 5 + (7,)]
    runs = {name: _fit_steps(m, batches, device, precision) for name, m in (("eager", eager), ("graphed", graphed))}
    assert graphed.cuda_graphs and graphed._step_graph[0] == (16, *shape)  # captured, not fallen back
    ref = eager.state_dict()
    for k, v in graphed.state_dict().items():  # weights, BatchNorm running_mean/var and num_batches_tracked
        torch.testing.assert_close(v, ref[k], **tol, msg=k)
    for k in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(runs["graphed"].opt[k], runs["eager"].opt[k], **tol)
    assert runs["graphed"].opt["step"] == runs["eager"].opt["step"] == [6.0] * len(runs["eager"].opt["step"])
    for k in ("train/loss", "train/ce", "train/quad", "train/acc_aug", "train/images"):
        assert runs["graphed"].logged[k] == pytest.approx(runs["eager"].logged[k], rel=tol["rtol"], abs=tol["atol"]), k
    return graphed


def _eager_stand_in(fn, static_args):
    """`step_graph._record` for CPU tests: "recording" runs nothing; each replay runs `fn` eagerly on
    the static inputs and writes its output where the graph's output would be."""
    out = torch.zeros(())

    def replay():
        out.copy_(fn(*static_args))

    return replay, out


@pytest.mark.parametrize("backbone", ["mlp", "resnet18"])
def test_step_graph_trains_like_eager_steps(backbone, monkeypatch):
    """The whole-step graph path inside Lightning (capture on the first full batch, replays, the
    partial last batch eagerly; `training_step`, `backward`, `optimizer_step` and `optimizer_zero_grad`
    wired for it) leaves the weights, BatchNorm statistics, optimizer state and epoch statistics of
    plain eager Lightning steps. On CPU, with a stand-in for the recording that runs the captured
    function eagerly at every replay, so the capture's warm-up steps and their undoing are real."""
    import binary_encoding.model.module as mod
    import binary_encoding.model.step_graph as sg

    monkeypatch.setattr(mod, "GRAPH_DEVICES", ("cpu",))
    monkeypatch.setattr(sg, "_record", _eager_stand_in)
    _graph_parity(backbone, "cpu", "32-true", dict(rtol=1e-5, atol=1e-6), monkeypatch)


def test_failed_step_graph_capture_warns_and_trains_eagerly(monkeypatch):
    """A capture that fails (an op that cannot be captured) warns once and the run trains on eagerly,
    exactly like a run without graphs: the warm-up steps it took are undone."""
    import binary_encoding.model.module as mod
    import binary_encoding.model.step_graph as sg

    def broken(fn, static_args):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(mod, "GRAPH_DEVICES", ("cpu",))
    monkeypatch.setattr(sg, "_record", broken)
    torch.manual_seed(0)
    eager = make("resnet18", "binenc", gamma0=0.5)
    failing = copy_of(eager)
    failing.cuda_graphs = True
    batches = [(torch.randn(n, *SHAPES["resnet18"]), torch.randint(0, 10, (n,))) for n in (16, 16, 7)]
    _fit_steps(eager, batches, "cpu")
    with pytest.warns(UserWarning, match="capture failed, training continues without graphs"):
        _fit_steps(failing, batches, "cpu")
    assert not failing.cuda_graphs and failing._step_graph is None
    ref = eager.state_dict()
    for k, v in failing.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=1e-6, atol=1e-7, msg=k)


def copy_of(m):
    import copy

    return copy.deepcopy(m)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("backbone", ["mlp", "resnet18"])
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_cuda_step_graph_matches_eager(backbone, precision, monkeypatch):
    """On a GPU, the real captured step: the same weights, statistics and optimizer state as eager
    Lightning steps (deterministic cuDNN on both sides; bf16 within its rounding)."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)  # same algorithms, no atomics noise
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    tol = dict(rtol=2e-2, atol=2e-2) if precision == "bf16-mixed" else dict(rtol=1e-4, atol=1e-5)
    _graph_parity(backbone, "cuda", precision, tol, monkeypatch)


def _collapsed_features(n_per_class=200, dim=64, spread=1e-4, seed=0):
    """Backbone-like features h (64-d, varying strongly from sample to sample) whose projection by a
    head weight W (4 x 64, orthonormal rows) is collapsed: W h = the class's hypercube vertex (+-1.5)
    plus `spread` noise. The variation lives in the null space of W, as in a trained network."""
    g = torch.Generator().manual_seed(seed)
    w = torch.linalg.qr(torch.randn(dim, 4, generator=g, dtype=torch.float64))[0].T  # [4, dim]
    vertices = torch.tensor([[(c >> j) & 1 for j in range(4)] for c in range(10)], dtype=torch.float64) * 3 - 1.5
    y = torch.arange(10).repeat_interleave(n_per_class)
    free = 3 * torch.randn(len(y), dim, generator=g, dtype=torch.float64)
    free = free - free @ w.T @ w  # no component along W's rows
    h = (vertices[y] + spread * torch.randn(len(y), 4, generator=g, dtype=torch.float64)) @ w + free
    return h.float(), y, w.float()


def test_the_head_runs_in_fp32_under_bf16_autocast():
    """Under bf16 autocast (the backbone's precision on GPUs; CPU autocast here) the head computes in
    fp32: the latents equal the fp32 computation exactly, and so do NC1 and the Mahalanobis AUROC of a
    latent set collapsed to 1e-4 of its class points. Computed in bf16 (3 significant digits), the
    same layer's rounding swamps the spread: NC1 measures the rounding."""
    from binary_encoding.metrics.geometry import neural_collapse
    from binary_encoding.metrics.reliability import fit_class_gaussians, mahalanobis_distance, misclassification_scores

    h, y, w = _collapsed_features()
    head = LinearHead(64, 10, width=4)
    with torch.no_grad():
        head.penultimate.weight.copy_(w)
        head.penultimate.bias.zero_()
    logits32, z32 = head(h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits16, z16 = head(h)
        z_bf16_layer = torch.nn.functional.linear(h, w).float()  # the same layer without the fp32 guard
    assert z16.dtype == logits16.dtype == torch.float32
    torch.testing.assert_close(z16, z32, rtol=0, atol=0)
    torch.testing.assert_close(logits16, logits32, rtol=0, atol=0)

    def metrics(z):
        pred = y.clone()
        pred[::7] = (y[::7] + 1) % 10  # some misclassified samples, so that AUROC is defined
        gauss = fit_class_gaussians(z[::2], pred[::2], y[::2], 10)
        scores = misclassification_scores(mahalanobis_distance(gauss, z[1::2], pred[1::2]), (pred == y)[1::2])
        return float(neural_collapse(z, y, y, None)["nc1"]), float(scores["auroc"])

    (nc1_32, auroc_32), (nc1_16, auroc_16), (nc1_bf16, _) = metrics(z32), metrics(z16), metrics(z_bf16_layer)
    assert (nc1_16, auroc_16) == (nc1_32, auroc_32)
    assert nc1_bf16 > 100 * nc1_32  # what the fp32 head prevents


def test_a_bf16_run_saves_fp32_latents_of_its_fp32_head(cfg_factory, tmp_path):
    """trainer.precision=bf16-mixed (CPU autocast): the saved latents are not bf16-quantized, and they
    are what the checkpoint's fp32 head makes of the backbone's bf16 features."""
    import numpy as np

    from binary_encoding.run.build import build_datamodule, build_model
    from binary_encoding.train import train

    s = train(
        cfg_factory("trainer.precision=bf16-mixed", "trainer.max_epochs=2", "save_latents=true", "deepfool_samples=0")
    )
    z = torch.from_numpy(np.load(tmp_path / "latents.npz")["train_z"])
    assert z.dtype == torch.float32 and (z.to(torch.bfloat16).float() == z).float().mean() < 0.05
    cfg = OmegaConf.load(tmp_path / "config.yaml")
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm.input_shape, dm.num_classes).eval()
    model.load_state_dict(torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, z_again = model(dm.normalize(dm.x["train"]))
    torch.testing.assert_close(z_again, z, rtol=1e-5, atol=1e-6)
    assert s["epochs"] == 2


def test_every_head_is_affine_with_biases_as_the_spec_writes_it():
    """SPEC §1: z = W h + b (width d), logits = V z + c, for every head (nopen: z = h). Recomputed from the
    layers' parameters; LinearHead(16 -> 4 -> 3) holds 16*4 + 4 + 4*3 + 3 = 83 parameters."""
    torch.manual_seed(0)
    h = torch.randn(5, 16)
    for head in (LinearHead(16, 3, width=4), NonLinearHead(16, 3, width=4, act="silu"), NoPenultimate(16, 3)):
        logits, z = head(h)
        v, c = head.classifier.weight, head.classifier.bias
        assert c is not None and c.shape == (3,)
        torch.testing.assert_close(logits, z @ v.T + c)
    lin = LinearHead(16, 3, width=4)
    torch.testing.assert_close(lin(h)[1], h @ lin.penultimate.weight.T + lin.penultimate.bias)
    assert sum(p.numel() for p in lin.parameters()) == 83


@pytest.mark.parametrize("first", [0, 1])
def test_a_non_finite_loss_read_every_few_steps_names_the_first_bad_step(first):
    """With the NaN flag read every 4 steps, a loss that is NaN from step 1 (or from the very first, step
    0) on stops the fit at step 3's read, naming that first bad step, not the last."""
    from torch.utils.data import DataLoader

    from binary_encoding.model.module import NonFiniteLossError

    torch.manual_seed(0)
    m = make("mlp", "binenc")
    m.check_finite_every = 4
    batches = [(torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))) for _ in range(6)]
    for x, _ in batches[first:]:
        x.fill_(float("nan"))
    trainer = quiet_trainer(max_epochs=1)
    with pytest.raises(NonFiniteLossError, match=rf"at epoch 0, step {first} "):
        trainer.fit(m, DataLoader(batches, batch_size=None))
    assert trainer.global_step == 4  # stopped at the first read after the NaN, not before


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
@pytest.mark.parametrize("cin, planes, stride", [(16, 16, 1), (8, 16, 2)])
def test_each_residual_block_computes_what_torchvisions_block_computes(block, cin, planes, stride):
    """The CIFAR ResNets' blocks against torchvision's BasicBlock and Bottleneck (stride on the 3x3
    convolution, the shortcut's 1x1 convolution + BatchNorm) with the same weights, in training mode
    (batch statistics) and in eval mode (running statistics after that step)."""
    from torchvision.models import resnet as tv

    from binary_encoding.model.backbones import BLOCKS

    torch.manual_seed(0)
    ours = BLOCKS[block](cin, planes, stride, torch.nn.ReLU)
    cout = planes * ours.expansion
    down = None
    if stride != 1 or cin != cout:
        down = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))
    theirs = {"basic": tv.BasicBlock, "bottleneck": tv.Bottleneck}[block](cin, planes, stride, down)
    for bn in (m for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # not the identity init
        torch.nn.init.uniform_(bn.weight, 0.5, 1.5), torch.nn.init.uniform_(bn.bias, -0.5, 0.5)
    state = {k.replace("shortcut.", "downsample."): v for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    x = torch.randn(4, cin, 8, 8)
    torch.testing.assert_close(ours(x), theirs(x))
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x))


def test_val_and_test_ce_are_the_cross_entropy_alone_whatever_gamma():
    """val/ce and test/ce are the mean cross-entropy over the split's images (F.cross_entropy of the
    model's logits, weighted by batch size), without the gamma term, which a gamma of 100 would add; val/acc
    and test/acc the accuracy over the split."""
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    m = make("mlp", "binenc")
    m.gamma.fill_(100.0)
    batches = [(torch.randn(n, 1, 8, 8), torch.randint(0, 10, (n,))) for n in (8, 8, 3)]
    trainer = quiet_trainer()
    val = trainer.validate(m, DataLoader(batches, batch_size=None), verbose=False)[0]
    test = trainer.test(m, DataLoader(batches, batch_size=None), verbose=False)[0]
    m.eval()
    with torch.no_grad():
        x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        logits, z = m(x)
        ce = F.cross_entropy(logits, y).item()
    assert z.pow(2).mean().item() * 100.0 > 0.1  # the gamma term would show
    assert val["val/ce"] == pytest.approx(ce, rel=1e-5) and test["test/ce"] == pytest.approx(ce, rel=1e-5)
    # val/acc and test/acc: the share of correct images over the split (micro average, not the mean per class)
    acc = (logits.argmax(1) == y).float().mean().item()
    assert val["val/acc"] == pytest.approx(acc) and test["test/acc"] == pytest.approx(acc)
