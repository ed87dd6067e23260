"""Training speed of the project's training path against a straightforward PyTorch loop, side by side.

    python -m benchmarks.bench_train [--device cpu|cuda] [--quick] [--steps N] [--out FILE.json]
                                     [--cases digits,cifar] [--width W] [--workers W] [--threads T]
                                     [--repeat R] [--compile auto|true|false] [--variants VARIANTS]

What is compared, per case (ratio = project images/s / reference images/s, > 1 = the project is faster):

* project: the real thing. The Hydra config is composed from `conf/` (`hydra.compose`), the
  datamodule and model are built as `train()` builds them (`build_model`: on one GPU the whole
  training step as one CUDA graph, torch.compile of the backbone on GPUs; channels_last for the
  ResNet; fused AdamW on CUDA; the config's gamma schedule), and
  `lightning.Trainer(precision=resolve_precision("auto"), limit_val_batches=0, no checkpointing,
  logger=False, no progress bar, use_distributed_sampler=False, max_steps=...)` .fit() runs. Data:
  the `InMemoryDataModule` path (whole split as uint8 tensors, resident on the GPU under CUDA, one
  index tensor per batch, crop/flip + normalization per batch on the device in
  `on_after_batch_transfer`, no DataLoader workers). With --device cpu the precision is 32-true
  (what `resolve_precision("auto")` gives without CUDA; on a CUDA machine it would say bf16-mixed
  even for a CPU trainer, as it only looks at `torch.cuda.is_available()`).
* reference: a plain fp32 PyTorch loop on the same data arrays (the project's training split), the
  same backbone + head (`run.build.build_net` from the same config, eager, default memory format), batch
  size, learning rate and weight decay, `torch.optim.AdamW` with its defaults, loss
  `CE + gamma0 * mean(z**2)`; torchvision-style per-sample transforms in a DataLoader
  (`Image.fromarray` per sample, then `RandomCrop(32, padding=4)`, `RandomHorizontalFlip()`,
  `ToTensor()`, `Normalize(mean, std)`; digits: `ToTensor()` + `Normalize` only, as the project
  does not augment digits), `shuffle=True`, `num_workers=--workers`, `persistent_workers`,
  `pin_memory` and `.to(device, non_blocking=True)` on CUDA. No `.item()` or other host sync per step.

* variants (--variants 'NAME=OVERRIDE [OVERRIDE..];NAME=..'): more project runs, each with extra
  config overrides, timed the same way and printed as one line each with their ratio to the same
  reference. Default on CUDA: the compiled step without graphs (`runtime.cuda_graphs=false`, what DDP
  jobs run) and the step graph over the eager backbone (`runtime.compile=false`); none on CPU.

Cases: `digits` = sklearn's digits with the MLP (`data=digits backbone=mlp`); `cifar` =
`backbone=resnet18 head=binenc head.width=4` with the CIFAR-10 data settings (augment, pad 4, flip,
10% validation hold-out) on synthetic CIFAR-shaped data (random uint8 [N,3,32,32], 10 classes; the
GPU machine has no network and the speed does not depend on the pixel values). Backbone width: 64
(the real ResNet18) on CUDA, 8 (1/8 width) on CPU unless --width says otherwise.

Timing (time.perf_counter, torch.cuda.synchronize only at the two ends of a timed window): warm-up
steps first (torch.compile happens there; for digits more than one epoch, so that a compiled
backbone has also met the partial last batch), then `steps` timed iterations. On the project path the
window runs from the end of the last warm-up `on_train_batch_end` to the end of the last timed one,
so it holds exactly `steps` full iterations (fetch, transfer, augmentation, forward, backward,
optimizer, Lightning's hooks and logging); the reference window holds the same `steps` iterations of
its loop. images/s = images in the window / seconds; "epoch" = 45,000 images for the CIFAR case
(the CIFAR-10 training split after the 10% validation hold-out) and the digits training split for
digits; epoch time = epoch images / images/s, so per-epoch costs outside the steps (the last,
partial batch, the new permutation, epoch-end hooks) are not in it for CIFAR (digits windows span
many epochs, so there they are).

"metric pass": the per-epoch work of `callbacks.metrics.Metrics` at an epoch end on the project path
(`collect_latents` on the clean train and val splits + `geometry_metrics` on each; the W&B
histograms are not drawn), timed inside the fit (before Lightning moves the model back to the CPU)
after one untimed pass when the backbone is compiled (eval mode compiles new graphs). When the
synthetic set is smaller than CIFAR's, its time is scaled linearly to 45,000 + 5,000 images.
"epoch incl. metrics" = epoch time + metric pass; the reference computes no metrics.

--repeat R alternates the reference and the project R times and keeps the fastest run of each
(the CPU here is shared, so single runs are noisy); --threads sets torch's intra-op threads of the
main process (an oversubscribed CPU makes 2 OpenMP threads much slower than 1).

On CUDA, 3 extra project steps after the timed window run with torch.cuda.set_sync_debug_mode
("warn"): the report lists every host synchronisation per step with the line that caused it.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
import warnings
from collections import Counter

import hydra
import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from benchmarks import finish
from binary_encoding.callbacks.latents import collect_latents
from binary_encoding.callbacks.metrics import geometry_metrics
from binary_encoding.data.base import InMemoryDataModule
from binary_encoding.run.build import build_datamodule, build_model, build_net
from binary_encoding.run.conf import CONF_DIR
from binary_encoding.run.job import quiet_lightning
from binary_encoding.run.policy import cudnn_benchmark, resolve_precision

CIFAR_EPOCH = 45_000  # CIFAR-10 training images after the 10% validation hold-out
CIFAR_METRIC_IMAGES = 50_000  # train + val splits of the per-epoch metric pass

# per device and mode: synthetic images (cifar), warm-up steps (project, reference), timed steps
PLANS = {
    ("cpu", "full"): {"digits": dict(warmup=(20, 20), steps=300), "cifar": dict(n=20_000, warmup=(10, 10), steps=100)},
    ("cpu", "quick"): {"digits": dict(warmup=(12, 12), steps=40), "cifar": dict(n=5_000, warmup=(2, 2), steps=8)},
    ("cuda", "full"): {"digits": dict(warmup=(20, 20), steps=300), "cifar": dict(n=50_000, warmup=(30, 20), steps=200)},
    ("cuda", "quick"): {"digits": dict(warmup=(12, 12), steps=50), "cifar": dict(n=50_000, warmup=(15, 10), steps=40)},
}
SYNC_PROBE_STEPS = 3


class SyntheticCIFAR(InMemoryDataModule):
    """CIFAR-shaped random data: uint8 [n, 3, 32, 32], 10 balanced classes (the test split is small:
    only the end-of-fit metrics read it, and they are not timed here)."""

    name = "synthetic-cifar"

    def __init__(self, n: int = 50_000, n_test: int = 1_000, classes: int = 10, **kw):
        super().__init__(**kw)
        self.n, self.n_test, self.classes = n, n_test, classes

    def load(self):
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (self.n, 3, 32, 32), dtype=np.uint8)
        y = rng.permutation(np.arange(self.n) % self.classes).astype(np.int64)
        xt = rng.integers(0, 256, (self.n_test, 3, 32, 32), dtype=np.uint8)
        yt = np.arange(self.n_test, dtype=np.int64) % self.classes
        return x, y, xt, yt


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        return hydra_compose("config", overrides=["logger=none", "trainer.enable_progress_bar=false", *overrides])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------
# Project path
# ------------------------------------------------------------------------------------------------


def metric_pass(module, dm, cfg) -> None:
    """What `Metrics.on_train_epoch_end` computes (without W&B histograms)."""
    m = cfg.metrics
    weight = module.head.classifier.weight.detach().float()
    for split in m.splits:
        lat = collect_latents(module, dm, split)
        geometry_metrics(lat, dm.num_classes, weight, m.nc_labels, m.global_mean, split)


# CUDA runtime calls that put work on the GPU (kernels, graphs, copies, fills), counted per probe step
LAUNCH_CALLS = ("cudaLaunch", "cuLaunch", "cudaGraphLaunch", "cudaMemcpy", "cudaMemset")


class StepTimer(L.Callback):
    """Times `steps` training iterations after `warmup` ones, probes host syncs on CUDA, and times a
    metric pass at the end of training (the model is still on the device then)."""

    def __init__(self, warmup: int, steps: int, probe: int, device: torch.device, cfg, compiled: bool):
        self.warmup, self.steps, self.probe, self.device, self.cfg = warmup, steps, probe, device, cfg
        self.compiled = compiled
        self.seen, self.images, self.t0, self.seconds = 0, 0, None, None
        self.warmup_seconds, self.metric_first_s, self.metric_s = None, None, None
        self.syncs: Counter = Counter()
        self._probe_cm = None
        self._probe_log = None
        self._prof, self.launches = None, None
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen += 1
        if self.warmup < self.seen <= self.warmup + self.steps:
            self.images += len(batch[1])
        if self.seen == self.warmup:
            sync(self.device)
            self.t0 = time.perf_counter()
            self.warmup_seconds = self.t0 - self._start
        elif self.seen == self.warmup + self.steps:
            sync(self.device)
            self.seconds = time.perf_counter() - self.t0
            if self.probe:
                self._probe_cm = warnings.catch_warnings(record=True)
                self._probe_log = self._probe_cm.__enter__()
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:  # count the CUDA runtime launches of the probe steps (CUPTI may be unavailable)
                    from torch.profiler import ProfilerActivity, profile

                    self._prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
                    self._prof.__enter__()
                except Exception as e:  # noqa: BLE001
                    self._prof, self.launches = None, {"error": repr(e)[:200]}
        elif self._probe_cm is not None and self.seen == self.warmup + self.steps + self.probe:
            self._end_probe()

    def _end_probe(self):
        if self._prof is not None:
            try:
                self._prof.__exit__(None, None, None)
                n = Counter(e.name for e in self._prof.events() if e.name.startswith(LAUNCH_CALLS))
                self.launches = {k: v / self.probe for k, v in sorted(n.items(), key=lambda kv: -kv[1])}
            except Exception as e:  # noqa: BLE001
                self.launches = {"error": repr(e)[:200]}
            self._prof = None
        torch.cuda.set_sync_debug_mode("default")
        self._probe_cm.__exit__(None, None, None)
        for w in self._probe_log:
            if "synchroniz" in str(w.message):
                self.syncs[f"{os.path.relpath(w.filename)}:{w.lineno}"] += 1
        self._probe_cm = None

    def on_train_end(self, trainer, pl_module):
        if self._probe_cm is not None:
            self._end_probe()

        def timed_pass() -> float:
            sync(self.device)
            t = time.perf_counter()
            metric_pass(pl_module, trainer.datamodule, self.cfg)
            sync(self.device)
            return time.perf_counter() - t

        if self.compiled:
            self.metric_first_s = timed_pass()  # compiles the eval graphs
        self.metric_s = timed_pass()


def timing_trainer(cfg, cuda: bool, root, callbacks: list, **kw) -> L.Trainer:
    """A Trainer for timing the project's loop: the config's precision, one device, endless epochs,
    no checkpoints, logger, progress bar or model summary (what train() adds around the loop)."""
    return L.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        precision=resolve_precision(cfg.trainer.precision) if cuda else "32-true",
        max_epochs=-1,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        benchmark=cudnn_benchmark(cfg),
        default_root_dir=str(root),
        callbacks=callbacks,
        **kw,
    )


def run_project(cfg, dm, device, warmup: int, steps: int) -> dict:
    cuda = device.type == "cuda"
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = build_model(cfg, dm.input_shape, dm.num_classes)
    compiled = hasattr(module.backbone, "_compiled_call_impl") and module.backbone._compiled_call_impl is not None
    probe = SYNC_PROBE_STEPS if cuda else 0
    timer = StepTimer(warmup, steps, probe, device, cfg, compiled)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = timing_trainer(
            cfg,
            cuda,
            tmp,
            [hydra.utils.instantiate(cfg.callbacks.gamma), timer],
            max_steps=warmup + steps + probe,
            limit_val_batches=0,
            deterministic=cfg.trainer.deterministic,
        )
        trainer.fit(module, dm)
    if timer.seconds is None:
        raise RuntimeError(f"the project fit stopped after {timer.seen} of {warmup + steps} steps")
    graphed = bool(module.cuda_graphs and module._step_graph is not None)
    return dict(
        precision=str(trainer.precision),
        compile=compiled,
        channels_last=module.channels_last,
        cuda_graphs=graphed,
        cudnn_benchmark=cudnn_benchmark(cfg),
        fused_adamw=cuda if module.fused_adamw is None else module.fused_adamw,
        workers=0,
        warmup_steps=warmup,
        steps=steps,
        images=timer.images,
        seconds=timer.seconds,
        warmup_seconds=timer.warmup_seconds,
        images_per_s=timer.images / timer.seconds,
        metric_pass_s=timer.metric_s,
        metric_first_pass_s=timer.metric_first_s,
        host_syncs_per_step={k: v / probe for k, v in timer.syncs.items()} if probe else None,
        launches_per_step=timer.launches,
    )


# ------------------------------------------------------------------------------------------------
# Reference loop
# ------------------------------------------------------------------------------------------------


class PerSampleDataset(Dataset):
    """torchvision-style: images stored HWC uint8 (like `datasets.CIFAR10.data`), targets a list of
    ints; per sample `Image.fromarray` then the transform."""

    def __init__(self, x_nchw: np.ndarray, y: np.ndarray, transform):
        x = x_nchw.transpose(0, 2, 3, 1)
        self.x = np.ascontiguousarray(x[..., 0] if x.shape[-1] == 1 else x)
        self.y = [int(v) for v in y]
        self.transform = transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.x[i])), self.y[i]


def run_reference(
    cfg,
    x: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    num_classes: int,
    augment: bool,
    pad: int,
    flip: bool,
    device,
    workers: int,
    warmup: int,
    steps: int,
) -> dict:
    from torchvision import transforms as T

    cuda = device.type == "cuda"
    tf = []
    if augment:
        if pad:
            tf.append(T.RandomCrop(x.shape[-1], padding=pad))
        if flip:
            tf.append(T.RandomHorizontalFlip())
    tf += [T.ToTensor(), T.Normalize((mean / 255).tolist(), (std / 255).tolist())]
    ds = PerSampleDataset(x, y, T.Compose(tf))
    loader = DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=cuda,
        persistent_workers=workers > 0,
    )
    torch.manual_seed(cfg.seed)
    model = build_net(cfg, tuple(x.shape[1:]), num_classes).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gamma = hydra.utils.instantiate(cfg.callbacks.gamma).value(0)  # the first epoch's, held constant
    it = iter(loader)
    images, start, t0 = 0, time.perf_counter(), None
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            t0 = time.perf_counter()
        try:
            xb, yb = next(it)
        except StopIteration:
            it = iter(loader)
            xb, yb = next(it)
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        logits, z = model(xb)
        loss = F.cross_entropy(logits, yb) + gamma * z.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            images += len(yb)
    sync(device)
    seconds = time.perf_counter() - t0
    del it, loader  # stops the persistent workers before the next measurement
    gc.collect()
    return dict(
        precision="fp32",
        compile=False,
        channels_last=False,
        fused_adamw=False,
        workers=workers,
        warmup_steps=warmup,
        steps=steps,
        images=images,
        seconds=seconds,
        warmup_seconds=t0 - start,
        images_per_s=images / seconds,
    )


# ------------------------------------------------------------------------------------------------
# Cases and report
# ------------------------------------------------------------------------------------------------


def run_case(
    case: str,
    plan: dict,
    device,
    width: int,
    workers: int,
    steps: int | None,
    compile_: str,
    repeat: int = 1,
    variants: list[tuple[str, list[str]]] = (),
) -> dict:
    acc = "gpu" if device.type == "cuda" else "cpu"
    common = [f"trainer.accelerator={acc}", f"runtime.compile={compile_}"]
    if case == "digits":
        base = ["data=digits", "backbone=mlp", *common]
    else:
        base = ["data=cifar10", "backbone=resnet18", f"backbone.width={width}", "head=binenc", "head.width=4", *common]
    cfg = compose(base)
    if case == "digits":
        dm = build_datamodule(cfg)
    else:
        data_kw = {k: v for k, v in dict(cfg.data).items() if k not in ("name", "_target_")}
        dm = SyntheticCIFAR(n=plan["n"], **data_kw, batch_size=cfg.batch_size, seed=cfg.seed)
        dm.prepare_data()
        dm.setup("fit")
    n_train, n_val = len(dm.y["train"]), len(dm.y["val"])
    epoch_images = n_train if case == "digits" else CIFAR_EPOCH
    metric_images = n_train + n_val if case == "digits" else CIFAR_METRIC_IMAGES
    steps = steps or plan["steps"]
    (w_proj, w_ref) = plan["warmup"]

    # reference first: its DataLoader workers fork before the project compiles anything. With
    # --repeat R the two sides alternate R times and the fastest run of each side counts.
    arrays = (dm.x["train"].numpy(), dm.y["train"].numpy(), dm.mean.numpy(), dm.std.numpy())
    refs, projs = [], []
    for _ in range(repeat):
        refs.append(
            run_reference(cfg, *arrays, dm.num_classes, dm.augment, dm.pad, dm.flip, device, workers, w_ref, steps)
        )
        projs.append(run_project(cfg, dm, device, w_proj, steps))
    ref = max(refs, key=lambda r: r["images_per_s"])
    proj = max(projs, key=lambda r: r["images_per_s"])
    ref["all_images_per_s"] = [r["images_per_s"] for r in refs]
    proj["all_images_per_s"] = [r["images_per_s"] for r in projs]
    proj["metric_pass_s"] = min(r["metric_pass_s"] for r in projs)
    for side, runs in ((proj, projs), (ref, refs)):  # one-time costs: those of the first run (the compile)
        side["warmup_seconds"] = runs[0]["warmup_seconds"]
        side["metric_first_pass_s"] = runs[0].get("metric_first_pass_s")

    # project variants (other trainer settings), each against the same reference
    var_results = []
    for name, overrides in variants:
        try:
            vcfg = compose([*base, *overrides])
            runs = [run_project(vcfg, dm, device, w_proj, steps) for _ in range(repeat)]
        except Exception as e:  # noqa: BLE001 -- one failing variant must not cost the other numbers
            var_results.append(dict(name=name, overrides=overrides, error=repr(e)[:300]))
            continue
        best = max(runs, key=lambda r: r["images_per_s"])
        var_results.append(
            dict(
                name=name,
                overrides=overrides,
                **{k: best[k] for k in ("images_per_s", "compile", "cuda_graphs", "precision", "launches_per_step")},
                warmup_seconds=runs[0]["warmup_seconds"],
                epoch_s=epoch_images / best["images_per_s"],
                ratio=best["images_per_s"] / ref["images_per_s"],
            )
        )

    scale = metric_images / (n_train + n_val)
    proj["metric_pass_scaled_s"] = proj["metric_pass_s"] * scale
    for r in (proj, ref):
        r["epoch_s"] = epoch_images / r["images_per_s"]
    proj["epoch_incl_metrics_s"] = proj["epoch_s"] + proj["metric_pass_scaled_s"]
    b = cfg.backbone
    model = (
        f"mlp {list(b.hidden)}" if b.name == "mlp" else f"{b.name} width {b.width}"
    ) + f", head {cfg.head.name} d={cfg.head.width}"
    return dict(
        case=case,
        model=model,
        batch_size=cfg.batch_size,
        train_images=n_train,
        val_images=n_val,
        epoch_images=epoch_images,
        metric_images=metric_images,
        metric_scale=scale,
        data="sklearn digits 8x8" if case == "digits" else f"synthetic uint8 [{plan['n']},3,32,32]",
        augment=bool(dm.augment),
        project=proj,
        reference=ref,
        ratio=proj["images_per_s"] / ref["images_per_s"],
        variants=var_results,
    )


def fmt_s(s: float) -> str:
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def report(r: dict) -> str:
    p, q = r["project"], r["reference"]
    onoff = lambda v: "on" if v else "off"  # noqa: E731
    rows = [
        ("precision", p["precision"], q["precision"], ""),
        (
            "compile / channels_last",
            f"{onoff(p['compile'])} / {onoff(p['channels_last'])}",
            f"{onoff(q['compile'])} / {onoff(q['channels_last'])}",
            "",
        ),
        (
            "CUDA graphs / cudnn.bench",
            f"{onoff(p.get('cuda_graphs'))} / {onoff(p.get('cudnn_benchmark'))}",
            "off / off",
            "",
        ),
        ("AdamW", "fused" if p["fused_adamw"] else "default", "default", ""),
        (
            "data pipeline",
            "in-memory uint8, batch aug" if r["augment"] else "in-memory uint8",
            "per-sample PIL" + (" + crop/flip" if r["augment"] else ""),
            "",
        ),
        ("DataLoader workers", str(p["workers"]), str(q["workers"]), ""),
        ("timed steps (warm-up)", f"{p['steps']} ({p['warmup_steps']})", f"{q['steps']} ({q['warmup_steps']})", ""),
        (
            "warm-up time",
            fmt_s(p["warmup_seconds"]) + (" (incl. compile)" if p["compile"] else ""),
            fmt_s(q["warmup_seconds"]),
            "",
        ),
        ("train images/s", f"{p['images_per_s']:,.0f}", f"{q['images_per_s']:,.0f}", f"{r['ratio']:.2f}x"),
        (f"epoch ({r['epoch_images']:,} images)", fmt_s(p["epoch_s"]), fmt_s(q["epoch_s"]), f"{r['ratio']:.2f}x"),
        (
            f"metric pass ({r['metric_images']:,} img)",
            fmt_s(p["metric_pass_scaled_s"])
            + (f" (scaled x{r['metric_scale']:.1f})" if abs(r["metric_scale"] - 1) > 1e-9 else ""),
            "-",
            "",
        ),
        ("epoch incl. metrics", fmt_s(p["epoch_incl_metrics_s"]), "-", ""),
    ]
    lines = [
        f"== {r['case']}: {r['model']}, batch {r['batch_size']}, {r['data']} "
        f"(train {r['train_images']:,} / val {r['val_images']:,}) ==",
        f"  {'':<27}{'project (Lightning)':<30}{'reference (plain loop)':<26}{'proj/ref':>8}",
    ]
    lines += [f"  {a:<27}{b:<30}{c:<26}{d:>8}" for a, b, c, d in rows]
    for v in r.get("variants", []):
        if "error" in v:
            lines.append(f"  variant {v['name']:<19}FAILED: {v['error']} ({' '.join(v['overrides'])})")
            continue
        lines.append(
            f"  variant {v['name']:<19}{v['images_per_s']:>8,.0f} img/s  epoch {fmt_s(v['epoch_s']):<9}"
            f" {v['ratio']:.2f}x ref  (graphs {'on' if v['cuda_graphs'] else 'off'}, compile "
            f"{'on' if v['compile'] else 'off'}, warm-up {fmt_s(v['warmup_seconds'])}"
            + (
                f", {sum(n.values()):g} GPU submissions/step"
                if (n := v.get("launches_per_step")) and "error" not in n
                else ""
            )
            + f": {' '.join(v['overrides'])})"
        )
    if len(p.get("all_images_per_s", [])) > 1:
        lines.append(
            "  images/s of every run: project "
            + ", ".join(f"{v:,.0f}" for v in p["all_images_per_s"])
            + "; reference "
            + ", ".join(f"{v:,.0f}" for v in q["all_images_per_s"])
        )
    if p.get("metric_first_pass_s") is not None:
        lines.append(f"  first metric pass (compiles eval graphs): {fmt_s(p['metric_first_pass_s'])}")
    if p.get("host_syncs_per_step") is not None:
        s = p["host_syncs_per_step"]
        lines.append(
            f"  project host syncs per training step: {sum(s.values()):g}"
            + "".join(f"\n    {n:g} x {site}" for site, n in sorted(s.items(), key=lambda kv: -kv[1]))
        )
    if p.get("launches_per_step"):
        n = p["launches_per_step"]
        lines.append(
            "  project GPU work submissions per training step: "
            + (
                n["error"]
                if "error" in n
                else f"{sum(n.values()):g} (" + ", ".join(f"{k} {v:g}" for k, v in n.items()) + ")"
            )
        )
    return "\n".join(lines)


def environment(device, workers: int) -> dict:
    env = dict(
        device=str(device),
        torch=torch.__version__,
        lightning=L.__version__,
        threads=torch.get_num_threads(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        workers=workers,
        load_avg=[round(v, 2) for v in os.getloadavg()],
    )
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["bf16"] = torch.cuda.is_bf16_supported()
    else:
        name = platform.processor()
        try:
            with open("/proc/cpuinfo") as f:
                name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
        except OSError:
            pass
        env["device_name"] = name
    return env


# project settings measured beside the default config (the whole-step CUDA graph over the compiled backbone) on
# a GPU: the compiled step without graphs (what DDP jobs run) and the step graph over the eager backbone
DEFAULT_GPU_VARIANTS = "no-graphs=runtime.cuda_graphs=false;graphs-eager=runtime.compile=false"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="a handful of steps (under a minute on CPU)")
    parser.add_argument("--steps", type=int, help="timed steps per side and case (default: per device and mode)")
    parser.add_argument("--out", help="write the numbers to this JSON file")
    parser.add_argument("--cases", help="comma-separated: digits,cifar (default: both on cpu, cifar on cuda)")
    parser.add_argument("--width", type=int, help="ResNet18 width of the cifar case (default: 64 on cuda, 8 on cpu)")
    parser.add_argument(
        "--workers", type=int, help="reference DataLoader workers (default: min(8, cpus) on cuda, 2 on cpu)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="alternate reference and project runs this many times; the fastest of each counts",
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the main process (default: torch's)")
    parser.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "true", "false"],
        help="project's runtime.compile (auto = on GPUs, as in the config)",
    )
    parser.add_argument(
        "--variants",
        help="extra project runs, 'NAME=OVERRIDE [OVERRIDE..];NAME=..' (default on "
        f"cuda: {DEFAULT_GPU_VARIANTS!r}; none on cpu; '' for none)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_lightning()
    warnings.filterwarnings("ignore", message=".*(num_workers|bottleneck|max_epochs|smaller than the logging).*")
    spec = args.variants if args.variants is not None else (DEFAULT_GPU_VARIANTS if device.type == "cuda" else "")
    try:
        variants = [
            (name.strip(), ovr.split()) for name, ovr in (v.split("=", 1) for v in spec.split(";") if v.strip())
        ]
    except ValueError:
        parser.error(f"--variants: expected 'NAME=OVERRIDE [OVERRIDE..];...', got {spec!r}")
    mode = "quick" if args.quick else "full"
    cases = (args.cases or ("digits,cifar" if device.type == "cpu" else "cifar")).split(",")
    width = args.width or (64 if device.type == "cuda" else 8)
    workers = (
        args.workers if args.workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 2)
    )
    env = environment(device, workers)
    print(
        f"device {env['device_name']} ({device}), torch {env['torch']}, lightning {env['lightning']}, "
        f"{env['threads']} threads, {env['cpus']} cpus, reference workers {workers}, mode {mode}, "
        f"load avg {env['load_avg']}",
        flush=True,
    )
    results, start = [], time.perf_counter()
    for case in cases:
        if case not in ("digits", "cifar"):
            parser.error(f"unknown case {case!r}; choose digits and/or cifar")
        r = run_case(
            case,
            PLANS[(device.type, mode)][case],
            device,
            width,
            workers,
            args.steps,
            args.compile,
            args.repeat,
            variants,
        )
        results.append(r)
        print(report(r), flush=True)
    finish(env, start, args.out, {"mode": mode, "results": results})


if __name__ == "__main__":
    main()
