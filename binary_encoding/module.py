"""The LightningModule: backbone + head, loss `CE + gamma * mean(z**2)`, AdamW at a constant rate."""

from __future__ import annotations

import warnings

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from .heads import Classifier, Head


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss stops being finite; the last good checkpoint is kept."""


GRAPH_DEVICES = ("cuda",)  # where the training step may run as CUDA graphs


class BinaryEncodingModule(L.LightningModule):
    def __init__(self, backbone: nn.Module, head: Head, num_classes: int, lr: float = 1e-3,
                 weight_decay: float = 5e-4, gamma0: float = 0.0, fused_adamw: bool | None = None,
                 check_finite_every: int = 1, channels_last: bool = False, cuda_graphs: bool = False):
        super().__init__()
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.backbone, self.head = backbone, head
        self.num_classes, self.lr, self.weight_decay = num_classes, lr, weight_decay
        self.fused_adamw, self.check_finite_every, self.channels_last = fused_adamw, check_finite_every, channels_last
        # Replay the training forward and backward of backbone + head as two CUDA graphs: one launch each
        # instead of ~400 kernel launches per step. For full training batches on one CUDA device;
        # other shapes (the last partial batch), eval mode and CPU tensors run eagerly.
        self.cuda_graphs = cuda_graphs
        self.__dict__["_graphed"] = None  # (input shape, graphed callable); a plain attribute, not a submodule
        if channels_last:  # NHWC convolutions: faster kernels on GPUs (tensor cores) and CPUs (oneDNN)
            self.backbone.to(memory_format=torch.channels_last)
        # gamma is a buffer: saved in checkpoints and kept on the device (no host sync in the loss).
        self.register_buffer("gamma", torch.tensor(float(gamma0), dtype=torch.float32))
        # first training step whose loss was not finite (-1: none); kept on the device, read every
        # `check_finite_every` steps and at every epoch's last step, before anything is checkpointed
        self.register_buffer("bad_step", torch.tensor(-1), persistent=False)
        # this epoch's training sums [loss, ce, quad, correct, images], on the device: one in-place add per
        # step, reduced over ranks and logged once at the epoch end. (Lightning moves its whole result
        # collection on every `self.log` call: four of them and a torchmetrics update per step cost about
        # 2 ms of host time per step on a 2-core CPU.)
        self.register_buffer("train_sums", torch.zeros(5), persistent=False)
        metric = lambda: torchmetrics.Accuracy(task="multiclass", num_classes=num_classes,  # noqa: E731
                                               validate_args=False)  # no per-step host sync
        self.val_acc, self.test_acc = metric(), metric()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(logits, z)`."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.cuda_graphs and self.training and x.device.type in GRAPH_DEVICES and torch.is_grad_enabled():
            if self._graphed is None:
                self.__dict__["_graphed"] = (x.shape, self._capture(x))
            shape, graphed = self._graphed
            if graphed is not None and x.shape == shape:
                return graphed(x)
        return self.head(self.backbone(x))

    def _capture(self, x: torch.Tensor):
        """Capture the training forward and backward of backbone + head for inputs shaped like `x`
        (`torch.cuda.make_graphed_callables`). Its warm-up passes run on `x`; the BatchNorm statistics
        they move are put back, so the step that triggers the capture counts once, like any other."""
        # one callable over the same parameters, never registered as a submodule (checkpoint names stay)
        net = Classifier(self.backbone, self.head)
        saved = [b.detach().clone() for b in net.buffers()]
        dev = x.device.type
        try:
            # autocast's weight cache cannot live in a graph: capture with it off (same casts, same kernels)
            with torch.autocast(dev, dtype=torch.get_autocast_dtype(dev), enabled=torch.is_autocast_enabled(dev),
                                cache_enabled=False):
                static_x = x.detach().clone(memory_format=torch.preserve_format)
                return torch.cuda.make_graphed_callables(net, (static_x,))
        except Exception as e:  # noqa: BLE001 -- e.g. an op that cannot be captured: train on, eagerly
            warnings.warn(f"CUDA graph capture failed, training continues without graphs: {e!r}", stacklevel=2)
            self.cuda_graphs = False
            return None
        finally:
            with torch.no_grad():
                for b, v in zip(net.buffers(), saved):
                    b.copy_(v)

    def on_train_start(self):
        self.__dict__["_graphed"] = None  # a graph holds device addresses: capture anew in every fit

    def loss_terms(self, logits, z, y):
        ce = F.cross_entropy(logits.float(), y)
        quad = z.float().pow(2).mean()  # mean over batch AND latent dimensions
        return ce, quad, ce + self.gamma * quad

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits, z = self(x)
        ce, quad, loss = self.loss_terms(logits, z, y)
        if self.check_finite_every:
            bad = ~torch.isfinite(loss.detach()) & (self.bad_step < 0)
            self.bad_step = torch.where(bad, self.global_step, self.bad_step)
        with torch.no_grad():
            n = torch.full((1,), float(len(y)), device=y.device)
            correct = (logits.argmax(1) == y).sum(0, keepdim=True).float()
            self.train_sums += torch.cat((torch.stack((loss, ce, quad)) * n, correct, n))
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        every = self.check_finite_every
        last = batch_idx + 1 == self.trainer.num_training_batches
        if every and ((batch_idx + 1) % every == 0 or last) and self.bad_step.item() >= 0:
            raise NonFiniteLossError(
                f"non-finite training loss at epoch {self.current_epoch}, step {self.bad_step.item()} "
                f"(gamma={self.gamma.item():.4g}); the last good checkpoint is kept. "
                f"Lower lr, gamma0 or gamma_factor, or set head.gamma_max.")

    def on_train_epoch_start(self):
        self.train_sums.zero_()
        self.log("gamma", self.gamma)  # the value used during this epoch (set by GammaScheduler)

    def on_train_epoch_end(self):
        sums = self.trainer.strategy.reduce(self.train_sums.clone(), reduce_op="sum")  # over DDP ranks
        loss, ce, quad, correct = (sums[:4] / sums[4].clamp_min(1)).unbind()
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({"train/ce": ce, "train/quad": quad, "train/acc_aug": correct, "train/images": sums[4]})

    def _eval_step(self, batch, split: str, acc: torchmetrics.Metric):
        x, y = batch
        logits, z = self(x)
        ce, quad, _ = self.loss_terms(logits, z, y)
        acc(logits, y)
        self.log(f"{split}/ce", ce, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.log(f"{split}/acc", acc, on_epoch=True, prog_bar=split == "val")

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test", self.test_acc)

    def configure_optimizers(self):
        fused = self.fused_adamw
        if fused is None:  # fused AdamW is faster on CUDA and not available everywhere else
            fused = self.device.type == "cuda"
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=fused)
