"""A whole training step -- forward, loss, backward, optimizer step, epoch sums -- as one CUDA graph.

Why: on an H200 a ResNet18 step at batch 128 is ~3.3 ms of GPU work, but launching its ~400 kernels
one by one from Python costs ~13 ms (eager and torch.compile alike), and graphing only the forward
and backward (`torch.cuda.make_graphed_callables`) still left ~6.4 ms per step inside Lightning:
the loss, the optimizer and the bookkeeping around them run eagerly
(benchmarks/results/h200_2026-11-27a_fwd_bwd_graphs). Replayed as one graph, a step costs one launch.

`capture_step(fn, args, modules, optimizer)` follows PyTorch's whole-network capture recipe:
warm-up calls of `fn` on a side stream (cuDNN/cuBLAS pick their kernels, the optimizer creates
its state), then one capture. The warm-up calls really train, so everything they change is put
back before the capture: parameters, buffers (BatchNorm statistics, the module's epoch sums) and
the optimizer state (restored, or zeroed where the warm-up created it: Adam's first step from
zero moments and step 0 is exactly its first step from no state). The step that triggers the
capture therefore counts once, like any other. The returned `replay(*batch)` copies the batch
into the graph's static inputs, replays, and returns the graph's (static) outputs.

Rules for `fn` (checked by the tests against eager steps): fixed input shapes; no host
synchronisation; state updated in place only (`buf.add_`, `copy_`), never by rebinding an
attribute; the optimizer `capturable`; gradients left where the graph put them (zero them in
place, never set them to None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch
from torch import nn

WARMUP_CALLS = 2  # PyTorch's recipe uses a few; the first creates the optimizer state, the second runs from it


def _record(fn: Callable, static_args: Sequence[torch.Tensor]) -> tuple[Callable[[], None], object]:
    """Capture `fn(*static_args)` as a CUDA graph; return (replay, outputs). The one CUDA-only part."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(*static_args)
    return graph.replay, out


def _snapshot(modules: Sequence[nn.Module], optimizer: torch.optim.Optimizer):
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    state = {
        p: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in s.items()}
        for p, s in optimizer.state.items()
    }
    return [t.detach().clone() for t in tensors], tensors, state


@torch.no_grad()
def _restore(snap, optimizer: torch.optim.Optimizer) -> None:
    saved, tensors, state = snap
    for t, v in zip(tensors, saved):
        t.copy_(v)
    for p, s in optimizer.state.items():
        before = state.get(p)
        for k, v in s.items():
            if not torch.is_tensor(v):
                continue
            if before is not None and k in before:
                v.copy_(before[k])
            else:  # created by the warm-up: back to "no step taken yet"
                v.zero_()


def capture_step(
    fn: Callable,
    args: Sequence[torch.Tensor],
    modules: Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    warmup: int = WARMUP_CALLS,
) -> Callable:
    """Capture `fn(*args)` (a whole training step over `modules` and `optimizer`) and return `replay`,
    with `replay(*batch)` running the step on `batch` (same shapes as `args`) and returning `fn`'s
    outputs. Leaves parameters, buffers and optimizer state as they were before the call."""
    static = [a.detach().clone(memory_format=torch.preserve_format) for a in args]
    cuda = static[0].device.type == "cuda"
    if cuda:  # step counts on the device (a resumed checkpoint may say otherwise); CPU optimizers cannot be
        for group in optimizer.param_groups:
            group["capturable"] = True
    snap = _snapshot(modules, optimizer)
    side = torch.cuda.Stream() if cuda else None
    try:
        if cuda:
            side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side) if cuda else nullcontext():
            for _ in range(warmup):
                fn(*static)
        if cuda:
            torch.cuda.current_stream().wait_stream(side)
    finally:
        _restore(snap, optimizer)
    optimizer.zero_grad(set_to_none=True)  # the graph allocates the gradients in its own memory
    replay_graph, out = _record(fn, static)

    def replay(*batch: torch.Tensor):
        for s, b in zip(static, batch):
            s.copy_(b)
        replay_graph()
        return out

    return replay
