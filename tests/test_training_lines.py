"""The training area line by line, where only unusual input reaches a line: a channels-last module fed a
non-image input, the step graph outside training and the step index of a replayed step, an epoch with no
image, the epoch sums reduced by a sum over ranks, AdamW's flags on a CUDA device, `heads.Classifier`, the
capture's static copies of the batch and its default warm-up, the 1-D residual block's projection shortcut
in every stride/width case, a 1-D ResNet fed several rows of several channels, the checkpoint callback of
conf/callbacks/default.yaml, how `run.fit` routes a job (settings check, folder lock, SIGTERM handler, a
finished job, DDP launch), what `fit.fit` hands the Trainer and writes, prints and closes after it (with
stand-ins for every builder), and a DDP rank's `ddp_worker.main`. Direct calls and tiny modules: no Hydra
run, no GPU; one Lightning fit of six steps."""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from test_models import _eager_stand_in, quiet_trainer
from test_training_values import tiny_batches, tiny_module
from torch import nn
from torch.utils.data import DataLoader

import binary_encoding.model.module as module_mod
import binary_encoding.model.step_graph as sg
from binary_encoding.model.backbones import MLP, BasicBlock
from binary_encoding.model.heads import LinearHead
from binary_encoding.model.module import BinaryEncodingModule, NonFiniteLossError
from binary_encoding.model.resnet1d import BasicBlock1d, ResNet1d


def _graphs_on_cpu(monkeypatch) -> None:
    """The step graph on CPU tensors, its "recording" a stand-in that runs the step eagerly at each replay."""
    monkeypatch.setattr(module_mod, "GRAPH_DEVICES", ("cpu",))
    monkeypatch.setattr(sg, "_record", _eager_stand_in)


def _as_2d_block(block1d: BasicBlock1d, cin: int, planes: int, stride: int) -> BasicBlock:
    """The 2-D BasicBlock (checked against torchvision's in test_models) holding `block1d`'s weights, its
    kernel-3 convolutions as the middle rows of 3x3 kernels: on a one-row image the same computation."""
    block2d = BasicBlock(cin, planes, stride, nn.ReLU)
    state = {}
    for k, v in block1d.state_dict().items():
        if v.dim() == 3:  # Conv1d weight [out, in, k]
            if v.shape[-1] == 3:
                w = torch.zeros(*v.shape[:2], 3, 3)
                w[:, :, 1, :] = v
            else:
                w = v.unsqueeze(-1)
            v = w
        state[k] = v
    block2d.load_state_dict(state)
    return block2d


# ------------------------------------------------------------------------------------------------
# module.forward: channels-last only for 4-D inputs
# ------------------------------------------------------------------------------------------------


def test_a_channels_last_module_passes_a_non_image_input_through_unchanged():
    """channels_last=True on a backbone that reads a 3-D input ([batch, rows, columns], an MLP): the input is
    not made NHWC (which a 3-D tensor cannot be), and the numbers equal a module without the option."""
    torch.manual_seed(0)
    bb = MLP((4, 4), hidden=(8,))
    plain = BinaryEncodingModule(bb, LinearHead(8, 3, width=2), 3).eval()
    nhwc = BinaryEncodingModule(MLP((4, 4), hidden=(8,)), LinearHead(8, 3, width=2), 3, channels_last=True)
    nhwc.load_state_dict(plain.state_dict())
    nhwc.eval()
    x = torch.randn(5, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(nhwc(x), plain(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# module._graph_for / training_step: when a step is graphed, and the step a replayed step reports
# ------------------------------------------------------------------------------------------------


def test_no_step_graph_is_captured_outside_training_or_off_the_graph_devices(monkeypatch):
    """`_graph_for` answers None, without trying a capture (no warning, graphs stay on), for a module in
    eval mode, for a device not in GRAPH_DEVICES, and for a module without cuda_graphs."""
    x, y = tiny_batches((8,))[0]
    m = tiny_module(cuda_graphs=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(module_mod, "GRAPH_DEVICES", ("cpu",))
        m.eval()
        assert m._graph_for(x, y) is None
        monkeypatch.setattr(module_mod, "GRAPH_DEVICES", ("cuda",))
        m.train()
        assert m._graph_for(x, y) is None
        monkeypatch.setattr(module_mod, "GRAPH_DEVICES", ("cpu",))
        assert tiny_module(cuda_graphs=False)._graph_for(x, y) is None
    assert m.cuda_graphs is True and m._step_graph is None


def test_a_non_finite_loss_in_a_replayed_step_names_that_steps_global_index(monkeypatch):
    """On the step-graph path the graph reads the step index from a buffer set before each replay: a NaN
    loss in epoch 1, batch 1 (three full batches of 8 an epoch, all replayed) is reported as global step
    4, the step it happened in, not 0 (the index at capture) nor the batch index 1."""
    _graphs_on_cpu(monkeypatch)

    class Poison(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if (trainer.current_epoch, batch_idx) == (1, 1):
                module.gamma.fill_(float("nan"))

    torch.manual_seed(0)
    m = tiny_module(cuda_graphs=True)
    trainer = quiet_trainer(num_sanity_val_steps=0, max_epochs=2, callbacks=[Poison()])
    with pytest.raises(NonFiniteLossError, match=r"at epoch 1, step 4 "):
        trainer.fit(m, DataLoader(tiny_batches((8, 8, 8)), batch_size=None))
    assert m._step_graph is not None and m._step_graph[0] == (8, 1, 4, 4)  # it was the graph that ran
    assert int(m.step_index) == 4


# ------------------------------------------------------------------------------------------------
# module.on_train_epoch_end: the epoch means from the sums over the ranks
# ------------------------------------------------------------------------------------------------


def _epoch_end(sums) -> tuple[dict, list]:
    """Run `on_train_epoch_end` with `sums` as this rank's epoch sums and a strategy that doubles them (the
    sum over two ranks holding the same sums); return what it logged and the reduce ops it asked for."""
    m = tiny_module()
    m.train_sums.copy_(torch.tensor(sums, dtype=torch.float32))
    ops, logged = [], {}

    def reduce(t, reduce_op):
        ops.append(reduce_op)
        return t * 2

    m._trainer = SimpleNamespace(strategy=SimpleNamespace(reduce=reduce))
    m.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    m.log_dict = lambda values, **kw: logged.update({k: float(v) for k, v in values.items()})
    m.on_train_epoch_end()
    return logged, ops


def test_the_epoch_means_are_the_summed_terms_over_the_summed_images_of_all_ranks():
    """Sums [loss, ce, quad, correct, images] = [6, 4, 2, 3, 4] on each of two ranks: the means over the 8
    images are 1.5, 1.0, 0.5, 0.75, asked of the strategy as a sum (a mean over ranks would halve images)."""
    logged, ops = _epoch_end([6.0, 4.0, 2.0, 3.0, 4.0])
    assert ops == ["sum"]
    assert logged == {"train/loss": 1.5, "train/ce": 1.0, "train/quad": 0.5, "train/acc_aug": 0.75, "train/images": 8}


def test_an_epoch_without_an_image_logs_zeros_not_nan():
    """No image this epoch (all sums 0): the means are 0 (the image count is clamped to 1), not 0/0."""
    logged, _ = _epoch_end([0.0] * 5)
    assert logged == {"train/loss": 0.0, "train/ce": 0.0, "train/quad": 0.0, "train/acc_aug": 0.0, "train/images": 0}


# ------------------------------------------------------------------------------------------------
# module.configure_optimizers on a CUDA device; heads.Classifier
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, fused, capturable",
    [
        ({}, True, False),  # fused_adamw=None: fused on CUDA
        (dict(fused_adamw=False), False, False),  # an explicit False is kept on CUDA
        (dict(cuda_graphs=True), True, True),  # a captured step needs the step counts on the device
        (dict(fused_adamw=False, cuda_graphs=True), False, True),
    ],
)
def test_on_a_cuda_device_adamw_is_fused_unless_asked_not_and_capturable_only_with_cuda_graphs(
    settings, fused, capturable
):
    """The CUDA side of configure_optimizers, the module told it is on CUDA device 0 (AdamW is built with the
    flags, its parameters stay on the CPU: nothing runs on a GPU)."""
    m = tiny_module(**settings)
    m._device = torch.device("cuda", 0)
    group = m.configure_optimizers().param_groups[0]
    assert (group["fused"], group["capturable"]) == (fused, capturable)


def test_the_classifier_that_build_net_returns_computes_the_head_on_the_backbones_features():
    """heads.Classifier (what run.build.build_net returns): forward(x) = head(backbone(x)) = (logits, z)."""
    from binary_encoding.model.heads import Classifier

    torch.manual_seed(0)
    bb, head = MLP((1, 4, 4), hidden=(8,)).eval(), LinearHead(8, 3, width=2)
    net = Classifier(bb, head)
    x = torch.randn(5, 1, 4, 4)
    with torch.no_grad():
        logits, z = net(x)
        torch.testing.assert_close(z, head.penultimate(bb(x)), rtol=0, atol=0)
        torch.testing.assert_close(logits, head.classifier(z), rtol=0, atol=0)
    assert [n for n, _ in net.named_children()] == ["backbone", "head"]


# ------------------------------------------------------------------------------------------------
# step_graph.capture_step: static copies of the batch, the default warm-up
# ------------------------------------------------------------------------------------------------


def _capture(monkeypatch, **kw):
    """capture_step of a tiny module's training step on the batch (x0, y0); return the replay, the batches,
    and the list of `fn` calls."""
    monkeypatch.setattr(sg, "_record", _eager_stand_in)
    torch.manual_seed(0)
    m = tiny_module(lr=0.1)
    opt = m.configure_optimizers()
    calls = []

    def fn(x, y):
        calls.append(x.clone())
        opt.zero_grad(set_to_none=False)
        loss = m.loss_terms(*m(x), y)[2]
        loss.backward()
        opt.step()
        return loss.detach()

    (x0, y0), (x1, y1) = tiny_batches((8, 8))
    replay = sg.capture_step(fn, (x0, y0), [m], opt, **kw)
    return replay, (x0, y0), (x1, y1), calls


def test_a_replay_copies_its_batch_into_the_graphs_own_inputs_never_into_the_callers_tensors(monkeypatch):
    """The graph's static inputs are copies of the capture's batch: replaying on a second batch leaves the
    first batch's tensors (the caller's, maybe still in use) as they were, and the step reads the new batch."""
    replay, (x0, y0), (x1, y1), calls = _capture(monkeypatch)
    x0_before, y0_before = x0.clone(), y0.clone()
    replay(x1, y1)
    assert torch.equal(x0, x0_before) and torch.equal(y0, y0_before)
    assert torch.equal(calls[-1], x1)


def test_capture_warms_up_with_two_steps_by_default(monkeypatch):
    """WARMUP_CALLS = 2 (the first creates the optimizer state, the second runs from it), both on the
    capture's batch."""
    assert sg.WARMUP_CALLS == 2
    _, (x0, _), _, calls = _capture(monkeypatch)
    assert len(calls) == 2 and all(torch.equal(c, x0) for c in calls)


# ------------------------------------------------------------------------------------------------
# resnet1d.BasicBlock1d and ResNet1d: shortcuts and input channels on layouts no config has
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cin, planes, stride, projected",
    [(4, 8, 1, True), (8, 8, 2, True), (8, 8, 1, False), (4, 8, 2, True)],
)
def test_the_1d_block_projects_its_shortcut_whenever_the_stride_or_the_width_changes(cin, planes, stride, projected):
    """The shortcut is the identity only for stride 1 at the same width; a change of width alone (4 -> 8 at
    stride 1) or of length alone (stride 2 at width 8) gets the 1x1 convolution + BatchNorm. The block
    computes what the 2-D BasicBlock computes on the same signal as a one-row image, in training and eval."""
    torch.manual_seed(0)
    ours = BasicBlock1d(cin, planes, stride, 3, nn.ReLU)
    assert isinstance(ours.shortcut, nn.Sequential) is projected
    for bn in (m for m in ours.modules() if isinstance(m, nn.BatchNorm1d)):  # not the identity init
        nn.init.uniform_(bn.weight, 0.5, 1.5), nn.init.uniform_(bn.bias, -0.5, 0.5)
    theirs = _as_2d_block(ours, cin, planes, stride)
    x = torch.randn(3, cin, 12)
    torch.testing.assert_close(ours(x), theirs(x[:, :, None, :])[:, :, 0, :])
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x[:, :, None, :])[:, :, 0, :])


def test_resnet1d_reads_every_channel_of_every_row_as_an_input_channel():
    """A [2, 3, 20] input is 6 channels over length 20 (C * H, not C): the stem convolution reads 6
    channels, and the network equals itself on the [B, 6, 20] signal."""
    torch.manual_seed(0)
    r = ResNet1d((2, 3, 20), layers=(1, 1), width=4).eval()
    assert r.stem[0].in_channels == 6
    x = torch.randn(2, 2, 3, 20)
    with torch.no_grad():
        torch.testing.assert_close(r(x), r.pool(r.stages(r.stem(x.reshape(2, 6, 20)))))


# ------------------------------------------------------------------------------------------------
# conf/callbacks/default.yaml: the checkpoint callback
# ------------------------------------------------------------------------------------------------


def test_the_checkpoint_callback_keeps_one_last_ckpt_in_the_jobs_checkpoints_folder(tmp_path):
    """One file, <output_dir>/checkpoints/last.ckpt, overwritten (no last-v1.ckpt: version counter off,
    top-k 1), every runtime.checkpoint_every_n_epochs epochs; the path `record.files` resumes from."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from test_settings_arrive import compose_cfg

    from binary_encoding.record import files
    from binary_encoding.run.build import build_callbacks

    cfg = compose_cfg(tmp_path, f"output_dir={tmp_path}/job", "runtime.checkpoint_every_n_epochs=3")
    ckpt = build_callbacks(cfg)["checkpoint"]
    assert isinstance(ckpt, ModelCheckpoint)
    assert Path(ckpt.dirpath) / f"{ckpt.filename}{ckpt.FILE_EXTENSION}" == files.last_checkpoint(tmp_path / "job")
    assert Path(ckpt.dirpath) == tmp_path / "job" / "checkpoints" and ckpt.filename == "last"
    assert (ckpt.save_top_k, ckpt._enable_version_counter, ckpt._every_n_epochs) == (1, False, 3)


# ------------------------------------------------------------------------------------------------
# run.fit.train and _train: how a job is routed
# ------------------------------------------------------------------------------------------------


def _stub_job(monkeypatch, tmp_path, *, launched: bool, done=None):
    """`fit.train`'s collaborators as recorders; return the list of calls they make."""
    from binary_encoding import ranks
    from binary_encoding.run import fit, job, lock

    calls = []

    @contextlib.contextmanager
    def held(out):
        calls.append(("lock", Path(out)))
        yield

    monkeypatch.setattr(ranks, "is_launched_rank", lambda: launched)
    monkeypatch.setattr(job, "quiet_lightning", lambda: None)
    monkeypatch.setattr(job, "output_dir", lambda cfg: tmp_path / "job")
    monkeypatch.setattr(job, "check_settings", lambda cfg, out: calls.append(("checked", out.exists())))
    monkeypatch.setattr(job, "finished", lambda cfg, out: done)
    monkeypatch.setattr(job, "handle_sigterm", lambda *a: calls.append(("sigterm", a)))
    monkeypatch.setattr(job, "recording_failure", lambda out: contextlib.nullcontext())
    monkeypatch.setattr(lock, "held", held)
    monkeypatch.setattr(fit, "_train", lambda cfg, out, cbs: calls.append(("train", out)) or {"test_acc": 0.5})
    return calls


@pytest.mark.parametrize("launched", [False, True])
def test_a_job_holds_its_folder_lock_unless_it_is_a_rank_of_a_launched_ddp_job(monkeypatch, tmp_path, launched):
    """The job's own process trains under the folder lock; a DDP rank (started by that process, which holds
    the lock) does not take it again. The settings are checked before the job folder is made; the SIGTERM
    handler is set for the job, then reset after it."""
    from binary_encoding.run import fit

    calls = _stub_job(monkeypatch, tmp_path, launched=launched)
    cfg = OmegaConf.create({})
    assert fit.train(cfg) == {"test_acc": 0.5}
    out = tmp_path / "job"
    lock = [] if launched else [("lock", out)]
    assert calls == [("checked", False), ("sigterm", (cfg, out)), *lock, ("train", out), ("sigterm", ())]
    assert out.is_dir()


def test_a_finished_job_returns_its_summary_without_training_or_locking(monkeypatch, tmp_path):
    from binary_encoding.run import fit

    calls = _stub_job(monkeypatch, tmp_path, launched=False, done={"test_acc": 0.9})
    assert fit.train(OmegaConf.create({})) == {"test_acc": 0.9}
    assert calls == [("checked", False)]  # the settings are checked before the folder is made, even then


@pytest.mark.parametrize(
    "devices, launched, route", [(1, False, "fit"), (3, False, "launch"), (2, True, "fit"), (1, True, "fit")]
)
def test_a_job_on_several_devices_launches_its_ranks_and_a_rank_trains(monkeypatch, tmp_path, devices, launched, route):
    """`_train`: the checks, then the start record, then a job asking for more than one device launches its
    DDP ranks (with that device count) from its own process; a rank, or a one-device job, fits."""
    from binary_encoding import ranks
    from binary_encoding.run import fit, job, policy

    calls = []
    for name in ("check_same_run", "check_checkpoint", "start"):
        monkeypatch.setattr(job, name, lambda cfg, out, name=name: calls.append(name))
    monkeypatch.setattr(policy, "num_devices", lambda cfg: devices)
    monkeypatch.setattr(ranks, "is_launched_rank", lambda: launched)
    monkeypatch.setattr(job, "launch_ddp", lambda cfg, out, n: calls.append(("launch", n)) or {"by": "launch"})
    monkeypatch.setattr(fit, "fit", lambda cfg, cbs: calls.append(("fit", cbs)) or {"by": "fit"})
    extra = [object()]
    result = fit._train(OmegaConf.create({}), tmp_path, extra)
    assert calls[:3] == ["check_same_run", "check_checkpoint", "start"]
    assert calls[3:] == ([("launch", devices)] if route == "launch" else [("fit", extra)])
    assert result == {"by": route}
    calls.clear()
    if route == "fit":  # no callbacks given: an empty list, not None
        fit._train(OmegaConf.create({}), tmp_path, None)
        assert calls[3] == ("fit", [])


# ------------------------------------------------------------------------------------------------
# run.ddp_worker.main: one DDP rank
# ------------------------------------------------------------------------------------------------


def _worker(monkeypatch, tmp_path, *, rank0: bool, initialized: bool, argv_from_sys: bool):
    from binary_encoding import ranks
    from binary_encoding.run import console, ddp_worker

    config = tmp_path / "rank.yaml"
    OmegaConf.save(OmegaConf.create({"output_dir": str(tmp_path / "job"), "seed": 7}), config)
    calls = []
    monkeypatch.setattr(ranks, "is_rank0", lambda: rank0)
    monkeypatch.setattr(console, "log_to", lambda path: calls.append(("log_to", Path(path))))
    monkeypatch.setattr(ddp_worker, "train", lambda cfg: calls.append(("train", cfg.output_dir, cfg.seed)))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: initialized)
    monkeypatch.setattr(torch.distributed, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(torch.distributed, "destroy_process_group", lambda: calls.append("destroy"))
    if argv_from_sys:
        monkeypatch.setattr(sys, "argv", ["ddp_worker.py", str(config)])
        ddp_worker.main()
    else:
        ddp_worker.main([str(config)])
    return calls


def test_rank_0_of_a_ddp_job_appends_to_the_jobs_log_and_every_rank_leaves_after_a_barrier(monkeypatch, tmp_path):
    """The config file named on the command line (sys.argv[1]) is the job's; rank 0 logs to
    <output_dir>/train.log before training; with a process group every rank waits at a barrier after
    training, then tears the group down."""
    from binary_encoding.record import files

    calls = _worker(monkeypatch, tmp_path, rank0=True, initialized=True, argv_from_sys=True)
    job = tmp_path / "job"
    assert calls == [("log_to", job / files.LOG), ("train", str(job), 7), "barrier", "destroy"]


def test_another_rank_of_a_ddp_job_neither_logs_to_the_file_nor_tears_down_a_group_it_has_not(monkeypatch, tmp_path):
    calls = _worker(monkeypatch, tmp_path, rank0=False, initialized=False, argv_from_sys=False)
    assert calls == [("train", str(tmp_path / "job"), 7)]


# ------------------------------------------------------------------------------------------------
# run.fit.fit: what the trainer is given, and what a finished fit writes, prints and closes
# ------------------------------------------------------------------------------------------------


class _Logger:
    """A run logger (the W&B one's interface): what it is told at the end of a fit."""

    def __init__(self):
        self.summary, self.closed = None, []

    def update_summary(self, values):
        self.summary = values

    def sync_command(self):
        return "wandb sync /runs/x"

    def finish(self, exit_code):
        self.closed.append(exit_code)


def _fit_with_stand_ins(monkeypatch, tmp_path, *, bar: bool, tty: bool, global_zero: bool = True):
    """`fit.fit` with every builder, the Trainer and the summary writers replaced by recorders; return what
    they recorded."""
    from binary_encoding.record import checkpoint_io, csv_log, files, summarize
    from binary_encoding.run import console, fit, job, policy, settings, threads

    for var in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):  # set by fit's seed_everything: restored after the test
        monkeypatch.setenv(var, "0")
    seen = SimpleNamespace(written=[], trained=[])
    module = tiny_module()
    module.gamma.fill_(0.25)
    dm = SimpleNamespace(num_classes=3, input_shape=(1, 4, 4))
    seen.dm, seen.module, seen.logger = dm, module, _Logger()
    seen.built = {"gamma": object(), "metrics": SimpleNamespace(results={"test/acc": 0.5})}
    out = tmp_path / "job"

    class Trainer:
        current_epoch, is_global_zero = 4, global_zero

        def __init__(self, **kwargs):
            seen.trainer_kwargs = kwargs

        def fit(self, module, datamodule, ckpt_path):
            seen.fit = (module, datamodule, ckpt_path)

    class EpochLog:
        def __init__(self, max_epochs, console):
            seen.epoch_log = (max_epochs, console)

    monkeypatch.setattr(threads, "apply", lambda n: 1)
    monkeypatch.setattr(settings, "check_data", lambda cfg, dm: None)
    monkeypatch.setattr(settings, "check_trained", lambda trainer: seen.trained.append(trainer))
    monkeypatch.setattr(fit, "build_datamodule", lambda cfg: dm)
    monkeypatch.setattr(fit, "build_model", lambda cfg, shape, n: module)
    monkeypatch.setattr(fit, "build_callbacks", lambda cfg: dict(seen.built))
    monkeypatch.setattr(fit, "build_loggers", lambda cfg, n: [seen.logger])
    monkeypatch.setattr(job, "output_dir", lambda cfg: out)
    monkeypatch.setattr(job, "resume_checkpoint", lambda cfg, o: str(o / "elsewhere.ckpt"))
    monkeypatch.setattr(job, "cluster_plugins", lambda: ["cluster"])
    monkeypatch.setattr(job, "terminations", lambda trainer, cfg, o: contextlib.nullcontext())
    monkeypatch.setattr(policy, "trainer_kwargs", lambda cfg: {"enable_progress_bar": bar, "max_epochs": 5})
    monkeypatch.setattr(console, "EpochLog", EpochLog)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    monkeypatch.setattr(csv_log, "LocalRecord", lambda o: ("local", o))
    monkeypatch.setattr(checkpoint_io, "AtomicCheckpointIO", lambda hold: ("io", hold))
    monkeypatch.setattr(checkpoint_io, "EpochCommit", lambda io: ("commit", io))
    monkeypatch.setattr(L, "Trainer", Trainer)
    monkeypatch.setattr(summarize, "run_summary", lambda *a: seen.__setattr__("summary_args", a) or {"test_acc": 0.9})
    monkeypatch.setattr(summarize, "belongs_to", lambda config, o: {"folder": str(o)})
    monkeypatch.setattr(summarize, "format_summary", lambda s, o: f"SUMMARY {s['test_acc']}")
    monkeypatch.setattr(files, "write_json", lambda path, data: seen.written.append((path, data)))
    seen.extra = object()
    seen.cfg = OmegaConf.create(
        {"seed": 0, "runtime": {"threads": None}, "head": {"width": 2}, "trainer": {"max_epochs": 5}}
    )
    seen.result = fit.fit(seen.cfg, [seen.extra])
    seen.out = out
    return seen


@pytest.mark.parametrize("bar, tty, to_console", [(False, True, True), (True, True, False), (True, False, True)])
def test_a_fit_gives_the_trainer_the_callbacks_loggers_and_plugins_in_their_order(
    monkeypatch, tmp_path, capsys, bar, tty, to_console
):
    """The config's callbacks, then the caller's, then the progress bar when there is one; the loggers
    (the config's, the local record, the epoch commit, the epoch lines -- which go to the console unless a
    bar holds a terminal); the cluster plugins and the checkpoint IO holding last.ckpt; the job folder as
    root; the resume checkpoint to `fit`; the gamma the module ended with to the summary."""
    from binary_encoding.run import console

    seen = _fit_with_stand_ins(monkeypatch, tmp_path, bar=bar, tty=tty)
    kw = seen.trainer_kwargs
    assert seen.epoch_log == (5, to_console)
    callbacks = [seen.built["gamma"], seen.built["metrics"], seen.extra]
    assert kw["callbacks"][:3] == callbacks and len(kw["callbacks"]) == 3 + bar
    assert not bar or isinstance(kw["callbacks"][3], console.ProgressBar)
    assert kw["logger"][:3] == [seen.logger, ("local", seen.out), ("commit", ("io", True))]
    assert kw["logger"][3].__class__.__name__ == "EpochLog" and len(kw["logger"]) == 4
    assert kw["plugins"] == ["cluster", ("io", True)]
    assert (kw["default_root_dir"], kw["max_epochs"], kw["enable_progress_bar"]) == (str(seen.out), 5, bar)
    assert seen.fit == (seen.module, seen.dm, str(seen.out / "elsewhere.ckpt")) and len(seen.trained) == 1
    cfg, epochs, gamma, results, seconds, classes = seen.summary_args
    assert (cfg, epochs, gamma, results, classes) == (seen.cfg, 4, 0.25, {"test/acc": 0.5}, 3) and seconds >= 0


def test_rank_0_writes_the_summary_prints_it_and_closes_its_run_as_a_success(monkeypatch, tmp_path, capsys):
    from binary_encoding.record import files

    seen = _fit_with_stand_ins(monkeypatch, tmp_path, bar=False, tty=False)
    summary = {"test_acc": 0.9, "folder": str(seen.out)}
    assert seen.result == summary and seen.written == [(seen.out / files.SUMMARY, summary)]
    assert seen.logger.summary == {"final/test_acc": 0.9}
    assert capsys.readouterr().out == "SUMMARY 0.9\nW&B offline; upload with: wandb sync /runs/x\n"
    assert seen.logger.closed == [0]


def test_another_rank_writes_and_prints_nothing_and_closes_its_run_as_a_success(monkeypatch, tmp_path, capsys):
    seen = _fit_with_stand_ins(monkeypatch, tmp_path, bar=False, tty=False, global_zero=False)
    assert seen.result == {"test_acc": 0.9} and seen.written == [] and seen.logger.summary is None
    assert capsys.readouterr().out == ""
    assert seen.logger.closed == [0]


def test_a_ddp_rank_reads_its_arguments_from_the_command_line_and_refuses_two_config_files(monkeypatch, tmp_path):
    """Without an argument list, main reads sys.argv after the program name: two files there are refused
    with the usage line, as an argument list of two is."""
    from binary_encoding.run import ddp_worker

    monkeypatch.setattr(ddp_worker, "train", lambda cfg: pytest.fail("trained"))
    monkeypatch.setattr(sys, "argv", ["ddp_worker.py", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    with pytest.raises(SystemExit, match=r"^usage: python -m torch\.distributed\.run"):
        ddp_worker.main()
