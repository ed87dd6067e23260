"""What the device allows for one training step, without Lightning: the floor the project is measured against.

    python -m benchmarks.gpu_floor [--device cuda|cpu] [--width 64] [--batch 128] [--steps 100] [--out FILE.json]

Prints, on one device and in one run:

* kernel launch: microseconds per tiny kernel (`x.add_(1)` 2,000 times), i.e. the host cost of every
  op an eager step launches (a ResNet18 step launches several hundred);
* matmul: bf16 (CUDA) or fp32 (CPU) TFLOP/s of a large square matrix product, the arithmetic ceiling;
* the training step of the project's model (`ResNet` 18 + binenc `LinearHead`, d=4, 10
  classes, CIFAR-shaped inputs already on the device, loss CE + gamma * mean(z**2), fused AdamW on
  CUDA, bf16 autocast and channels_last on CUDA) written as a bare loop, in three forms:
  `eager`, `compiled` (torch.compile of the backbone) and `graph` (the whole step -- forward, backward
  and optimizer -- captured once as one CUDA graph and replayed; capturable AdamW). CUDA only for
  the last two.

Each step time is the mean over `--steps` steps after warm-up, with a device synchronisation only at
both ends. The ratio "project / floor" follows from the `bench_train` output on the same card.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks import finish
from benchmarks.bench_metrics import latent_net


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def launch_us(dev: torch.device, n: int = 2000) -> float:
    x = torch.zeros(1, device=dev)
    for _ in range(100):
        x.add_(1)
    sync(dev)
    t = time.perf_counter()
    for _ in range(n):
        x.add_(1)
    sync(dev)
    return (time.perf_counter() - t) / n * 1e6


def matmul_tflops(dev: torch.device) -> float:
    n, dtype = (8192, torch.bfloat16) if dev.type == "cuda" else (1024, torch.float32)
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    reps = 20 if dev.type == "cuda" else 3
    a @ b
    sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def make(dev: torch.device, width: int, capturable: bool = False):
    torch.manual_seed(0)
    cuda = dev.type == "cuda"
    net = latent_net(width).to(dev)
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=5e-4, fused=cuda or None, capturable=capturable)
    return net, opt


def step_fn(net, opt, dev: torch.device, gamma: float = 1.0):
    amp = dev.type == "cuda"

    def step(x, y):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            logits, z = net(x)
        loss = F.cross_entropy(logits.float(), y) + gamma * z.float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)  # grads stay where a graph can find them
        return loss

    return step


def batch(dev: torch.device, n: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g).to(dev)
    if dev.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, 10, (n,), generator=g).to(dev)


def time_steps(step, x, y, dev, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step(x, y)
    sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step(x, y)
    sync(dev)
    return (time.perf_counter() - t) / steps


def graph_step_s(dev, width, n, steps) -> float:
    """The whole step as one CUDA graph (the PyTorch 'whole-network capture' recipe)."""
    net, opt = make(dev, width, capturable=True)
    x, y = batch(dev, n)
    step = step_fn(net, opt, dev)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as capture requires
        for _ in range(3):
            step(x, y)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    # autocast's weight cache cannot live in a graph
    with torch.cuda.graph(g), torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
        step(x, y)
    return time_steps(lambda *_: g.replay(), x, y, dev, 5, steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--width", type=int, help="ResNet18 width (default 64 on cuda, 8 on cpu)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, help="timed steps (default 100 on cuda, 10 on cpu)")
    p.add_argument("--out", help="write the numbers to this JSON file")
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    cuda = dev.type == "cuda"
    width, steps = a.width or (64 if cuda else 8), a.steps or (100 if cuda else 10)
    torch.backends.cudnn.benchmark = cuda
    start = time.perf_counter()
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    print(f"device {name}, torch {torch.__version__}; ResNet18 width {width} + binenc, batch {a.batch}", flush=True)
    r = dict(device=name, width=width, batch=a.batch, steps=steps)
    r["launch_us"] = launch_us(dev)
    print(f"  kernel launch            {r['launch_us']:8.1f} us per tiny kernel", flush=True)
    r["matmul_tflops"] = matmul_tflops(dev)
    print(f"  matmul                   {r['matmul_tflops']:8.1f} TFLOP/s ({'bf16' if cuda else 'fp32'})", flush=True)
    x, y = batch(dev, a.batch)
    forms = {"eager": None, "compiled": "compile"} if cuda else {"eager": None}
    for form, how in forms.items():
        try:
            net, opt = make(dev, width)
            if how:
                net.backbone.compile()
            r[f"{form}_step_s"] = time_steps(step_fn(net, opt, dev), x, y, dev, 20 if how else 5, steps)
        except Exception as e:  # noqa: BLE001 -- report and go on to the next form
            r[f"{form}_error"] = repr(e)[:300]
    if cuda:
        try:
            r["graph_step_s"] = graph_step_s(dev, width, a.batch, steps)
        except Exception as e:  # noqa: BLE001
            r["graph_error"] = repr(e)[:300]
    epoch = 45_000 // a.batch * a.batch
    for form in ("eager", "compiled", "graph"):
        if f"{form}_step_s" in r:
            s = r[f"{form}_step_s"]
            print(
                f"  bare step, {form:<10}     {s * 1e3:8.2f} ms  = {a.batch / s:9,.0f} img/s, "
                f"{epoch / a.batch * s:6.2f} s per epoch of {epoch:,} images",
                flush=True,
            )
        elif f"{form}_error" in r:
            print(f"  bare step, {form:<10}     FAILED: {r[f'{form}_error']}", flush=True)
    finish(r, start, a.out, {})


if __name__ == "__main__":
    main()
