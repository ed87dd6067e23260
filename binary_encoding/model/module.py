"""The LightningModule: backbone + head, loss `CE + gamma * mean(z**2)`, AdamW at a constant rate."""

from __future__ import annotations

import warnings

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from .heads import Head
from .step_graph import capture_step


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss stops being finite; the last good checkpoint is kept."""


GRAPH_DEVICES = ("cuda",)  # where the training step may run as CUDA graphs


class BinaryEncodingModule(L.LightningModule):
    def __init__(
        self,
        backbone: nn.Module,
        head: Head,
        num_classes: int,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        fused_adamw: bool | None = None,
        check_finite_every: int = 1,
        channels_last: bool = False,
        cuda_graphs: bool = False,
    ):
        super().__init__()
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.backbone, self.head = backbone, head
        self.num_classes, self.lr, self.weight_decay = num_classes, lr, weight_decay
        self.fused_adamw, self.check_finite_every, self.channels_last = fused_adamw, check_finite_every, channels_last
        # Run each full training batch as one CUDA graph: forward, loss, backward, optimizer step and the
        # epoch sums (`step_graph.py`): one launch instead of ~400 per step. One CUDA device; the last
        # partial batch, eval mode and CPU tensors run eagerly.
        self.cuda_graphs = cuda_graphs
        self.__dict__["_step_graph"] = None  # (batch shape, replay); a plain attribute, not a submodule
        self.__dict__["_replayed"] = False  # whether this step ran as the graph (then backward and step are done)
        if channels_last:  # NHWC convolutions: faster kernels on GPUs (tensor cores) and CPUs (oneDNN)
            self.backbone.to(memory_format=torch.channels_last)
        # gamma, the weight of mean(z**2): a buffer, saved in checkpoints and kept on the device (no host sync
        # in the loss). The module only reads it; the gamma schedule (callbacks.GammaScheduler) sets it.
        self.register_buffer("gamma", torch.tensor(0.0, dtype=torch.float32))
        # first training step whose loss was not finite (-1: none); kept on the device, read every
        # `check_finite_every` steps and at every epoch's last step, before anything is checkpointed
        self.register_buffer("bad_step", torch.tensor(-1), persistent=False)
        self.register_buffer("step_index", torch.tensor(0), persistent=False)  # global step, for a graphed step
        # this epoch's training sums [loss, ce, quad, correct, images], on the device: one in-place add per
        # step, reduced over ranks and logged once at the epoch end. (Lightning moves its whole result
        # collection on every `self.log` call: four of them and a torchmetrics update per step cost about
        # 2 ms of host time per step on a 2-core CPU.)
        self.register_buffer("train_sums", torch.zeros(5), persistent=False)
        metric = lambda: torchmetrics.Accuracy(  # noqa: E731
            task="multiclass",
            num_classes=num_classes,
            validate_args=False,  # no per-step host sync
        )
        self.val_acc, self.test_acc = metric(), metric()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(logits, z)`."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.backbone(x))

    def on_train_start(self):
        self.__dict__["_step_graph"] = None  # a graph holds device addresses: capture anew in every fit
        for group in self.trainer.optimizers[0].param_groups:  # a resumed optimizer takes this run's settings
            group["lr"], group["weight_decay"] = self.lr, self.weight_decay

    def loss_terms(self, logits, z, y):
        ce = F.cross_entropy(logits.float(), y)
        quad = z.float().pow(2).mean()  # mean over batch AND latent dimensions
        return ce, quad, ce + self.gamma * quad

    def _account(self, logits, y, ce, quad, loss, step) -> None:
        """Add this step to the epoch sums and remember the first non-finite step, in place (graph-safe)."""
        with torch.no_grad():
            if self.check_finite_every:
                bad = ~torch.isfinite(loss.detach()) & (self.bad_step < 0)
                self.bad_step.copy_(torch.where(bad, step, self.bad_step))
            n = torch.full((1,), float(len(y)), device=y.device)
            correct = (logits.argmax(1) == y).sum(0, keepdim=True).float()
            self.train_sums += torch.cat((torch.stack((loss.detach(), ce, quad)) * n, correct, n))

    def _whole_step(self, x, y):
        """Forward, loss, backward, optimizer step and bookkeeping: what the step graph holds."""
        logits, z = self(x)
        ce, quad, loss = self.loss_terms(logits, z, y)
        with torch.autocast(x.device.type, enabled=False):
            loss.backward()
            self.trainer.optimizers[0].step()
            self._account(logits, y, ce, quad, loss, self.step_index)
        return loss.detach()

    def _graph_for(self, x, y):
        """The replay function of the step graph for batches shaped like `x`, captured on first use, or
        None (another shape, not training on a graph device, or a failed capture)."""
        if not (self.cuda_graphs and self.training and x.device.type in GRAPH_DEVICES):
            return None
        if self._step_graph is None:
            dev = x.device.type
            try:
                # autocast's weight cache cannot live in a graph: capture with it off (same casts, same kernels)
                with torch.autocast(
                    dev,
                    dtype=torch.get_autocast_dtype(dev),
                    enabled=torch.is_autocast_enabled(dev),
                    cache_enabled=False,
                ):
                    replay = capture_step(self._whole_step, (x, y), [self], self.trainer.optimizers[0])
            except Exception as e:  # noqa: BLE001 -- e.g. an op that cannot be captured: train on, eagerly
                warnings.warn(f"CUDA graph capture failed, training continues without graphs: {e!r}", stacklevel=2)
                self.cuda_graphs = False
                return None
            self.__dict__["_step_graph"] = (x.shape, replay)
        shape, replay = self._step_graph
        return replay if x.shape == shape else None

    def training_step(self, batch, batch_idx):
        x, y = batch
        replay = self._graph_for(x, y)
        self.__dict__["_replayed"] = replay is not None
        if replay is not None:
            self.step_index.fill_(self.global_step)
            return replay(x, y)  # the step is done: `backward` and `optimizer_step` below do nothing more
        logits, z = self(x)
        ce, quad, loss = self.loss_terms(logits, z, y)
        self._account(logits, y, ce, quad, loss, self.global_step)
        return loss

    # Lightning hooks around the step, for the graph: the graph already ran backward and the optimizer
    def backward(self, loss, *args, **kwargs):
        if not self._replayed:
            super().backward(loss, *args, **kwargs)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        if not self.cuda_graphs:
            return super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        optimizer_closure()  # zero_grad, training_step (a replay or an eager forward) and backward
        if not self._replayed:  # an eager step (the partial batch, or a failed capture)
            getattr(optimizer, "optimizer", optimizer).step()

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        # the step graph owns the gradients' memory: zero them in place, never drop them
        optimizer.zero_grad(set_to_none=not self.cuda_graphs)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        every = self.check_finite_every
        last = batch_idx + 1 == self.trainer.num_training_batches
        if every and ((batch_idx + 1) % every == 0 or last) and self.bad_step.item() >= 0:
            raise NonFiniteLossError(
                f"non-finite training loss at epoch {self.current_epoch}, step {self.bad_step.item()} "
                f"(gamma={self.gamma.item():.4g}); the last good checkpoint is kept. "
                f"Lower the learning rate or the gamma schedule."
            )

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
        return torch.optim.AdamW(
            self.parameters(),
            lr=self.lr,
            weight_decay=self.weight_decay,
            fused=fused,
            # step counts on the device, as a captured step needs
            capturable=bool(self.cuda_graphs) and self.device.type == "cuda",
        )
