"""Aggregate training throughput of K project jobs sharing one GPU: how to pack a sweep onto a card.

    python -m benchmarks.gpu_pack [--device cuda|cpu] [--jobs 1,2,4,8] [--seconds 15] [--mps auto|on|off]
                                  [--overrides 'OVR OVR' | --overrides-from bench_train.json]
                                  [--width W] [--images N] [--out FILE.json]

A ResNet18 + binenc job at batch 128 does not fill an H100/H200, and a sweep has hundreds of such jobs.
This measures what running several of them at once on one GPU gives, the way a launcher would run
them: as separate processes (Ray with fractional `num_gpus`, several SLURM tasks on one GPU, or a
shell loop), each the project's real training loop -- Lightning `fit` of the model `run.build.build_model`
builds, on CIFAR-shaped synthetic data resident on the device (`bench_train.SyntheticCIFAR`, 45,000
training / 5,000 validation images), with the validation loop and the per-epoch `Metrics`
pass on, as in a real run.

How: max(--jobs) worker processes start once and warm up (compile, CUDA-graph capture, one whole
epoch so that the metric pass has compiled its graphs too), then wait. For each K in --jobs, the
first K workers train in the same wall-clock window of --seconds (the rest stay idle, holding no
queued GPU work); each counts the training images it completed in the window (a device
synchronisation at both ends), so per-epoch costs that fall in the window (validation, the metric
pass) are in the rate. Aggregate images/s = the sum of the K workers' rates; "epoch" = 45,000
images at that rate.

With --mps on (or auto, when `nvidia-cuda-mps-control` is on the PATH) the whole measurement is
repeated under CUDA MPS (a control daemon started for it in a private pipe folder and stopped
afterwards): kernels of different processes then run on the GPU at the same time instead of
taking turns in time slices.

On CPU (for tests) the same runs with small data and widths; the numbers mean little there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import finish

CIFAR_EPOCH = 45_000
READY_TIMEOUT_S = 300  # start, compile and the first epoch of every worker
PAPER_TABLE_EPOCHS = 360 * 200  # CIFAR-10 table: 4 heads x 5 seeds x 18 learning rates, 200 epochs each


# ------------------------------------------------------------------------------------------------
# Worker: one training job, driven through files in a shared folder
# ------------------------------------------------------------------------------------------------


def _wait_for(path: Path, poll: float = 0.01) -> dict:
    while not path.exists():
        time.sleep(poll)
    return json.loads(path.read_text())


def write_atomic(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def worker(
    folder: Path, index: int, device: str, width: int, images: int, overrides: list[str], warmup_steps: int
) -> None:
    import hydra
    import lightning as L
    import torch

    from benchmarks.bench_train import SyntheticCIFAR, compose, sync, timing_trainer
    from binary_encoding.run.build import build_model
    from binary_encoding.run.job import quiet_lightning

    quiet_lightning()
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    cfg = compose(
        [
            "data=cifar10",
            "backbone=resnet18",
            f"backbone.width={width}",
            "head=binenc",
            "head.width=4",
            f"trainer.accelerator={'gpu' if cuda else 'cpu'}",
            *overrides,
        ]
    )
    data_kw = {k: v for k, v in dict(cfg.data).items() if k not in ("name", "_target_")}
    dm = SyntheticCIFAR(n=images, **data_kw, batch_size=cfg.batch_size, seed=cfg.seed + index)
    L.seed_everything(cfg.seed + index, workers=True, verbose=False)
    module = build_model(cfg, (3, 32, 32), 10)

    class Driven(L.Callback):
        """Warm up, then train only inside the windows the coordinator announces (`go_<n>.json`)."""

        def __init__(self):
            self.seen, self.epochs_ended, self.round = 0, 0, 0
            self.window, self.images, self.start = None, 0, None

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs_ended += 1

        def _next_round(self, trainer) -> None:
            """Block (no GPU work queued) until a round that includes this worker, or the end."""
            while True:
                self.round += 1
                go = _wait_for(folder / f"go_{self.round}.json")
                if go.get("stop"):
                    trainer.should_stop = True
                    return
                if index in go["workers"]:
                    while time.time() < go["t0"]:
                        time.sleep(0.001)
                    self.window, self.images, self.start = go, 0, time.time()
                    return

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen += 1
            if self.window is None:
                if self.epochs_ended >= 1 and self.seen >= warmup_steps:  # compiled, captured, metric pass done
                    sync(dev)
                    write_atomic(folder / f"ready_{index}.json", {"steps": self.seen, "epochs": self.epochs_ended})
                    self._next_round(trainer)
                return
            self.images += len(batch[1])
            if time.time() >= self.window["t0"] + self.window["seconds"]:
                sync(dev)
                seconds = time.time() - self.start
                write_atomic(
                    folder / f"result_{self.round}_{index}.json",
                    {"images": self.images, "seconds": seconds, "images_per_s": self.images / seconds},
                )
                self._next_round(trainer)

    callbacks = [
        hydra.utils.instantiate(cfg.callbacks.gamma),
        hydra.utils.instantiate(cfg.callbacks.metrics, settings={"every": 1, "hist_dims": 0}),
        Driven(),
    ]
    trainer = timing_trainer(cfg, cuda, folder, callbacks, max_steps=-1)
    trainer.fit(module, dm)


# ------------------------------------------------------------------------------------------------
# Coordinator
# ------------------------------------------------------------------------------------------------


class Workers:
    """`n` worker processes in one folder; `round(k, seconds)` runs the first k in one window."""

    def __init__(self, n: int, args, overrides: list[str], env: dict):
        self.folder = Path(tempfile.mkdtemp(prefix="gpu_pack_"))
        self.n, self.round_no, self.procs, self.logs = n, 0, [], []
        for i in range(n):
            log = open(self.folder / f"worker_{i}.log", "w")
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.gpu_pack",
                "--worker",
                str(self.folder),
                str(i),
                "--device",
                args.device,
                "--width",
                str(args.width),
                "--images",
                str(args.images),
                "--warmup-steps",
                str(args.warmup_steps),
                "--overrides",
                " ".join(overrides),
            ]
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
            self.logs.append(log)

    def _check_alive(self) -> None:
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                tail = (self.folder / f"worker_{i}.log").read_text()[-2000:]
                raise RuntimeError(f"worker {i} exited with code {p.returncode}:\n{tail}")

    def wait_ready(self, timeout: float) -> float:
        start = time.time()
        while not all((self.folder / f"ready_{i}.json").exists() for i in range(self.n)):
            self._check_alive()
            if time.time() - start > timeout:
                raise TimeoutError(f"workers not ready after {timeout:.0f} s")
            time.sleep(0.2)
        return time.time() - start

    def round(self, k: int, seconds: float) -> list[dict]:
        self.round_no += 1
        write_atomic(
            self.folder / f"go_{self.round_no}.json",
            {"workers": list(range(k)), "t0": time.time() + 0.5, "seconds": seconds},
        )
        files = [self.folder / f"result_{self.round_no}_{i}.json" for i in range(k)]
        deadline = time.time() + seconds + 120
        while not all(f.exists() for f in files):
            self._check_alive()
            if time.time() > deadline:
                raise TimeoutError(f"round with {k} jobs did not finish")
            time.sleep(0.1)
        return [json.loads(f.read_text()) for f in files]

    def close(self) -> None:
        self.round_no += 1
        write_atomic(self.folder / f"go_{self.round_no}.json", {"stop": True})
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def measure(args, jobs: list[int], overrides: list[str], env: dict, label: str) -> dict:
    out = {"mode": label, "levels": []}
    w = Workers(max(jobs), args, overrides, env)
    try:
        out["ready_s"] = w.wait_ready(READY_TIMEOUT_S)
        print(f"  [{label}] {w.n} workers ready after {out['ready_s']:.0f} s", flush=True)
        for k in jobs:
            res = w.round(k, args.seconds)
            agg = sum(r["images_per_s"] for r in res)
            lvl = {
                "jobs": k,
                "aggregate_images_per_s": agg,
                "per_job_images_per_s": [r["images_per_s"] for r in res],
                "epoch_s_effective": CIFAR_EPOCH / agg,
                "table_gpu_hours": PAPER_TABLE_EPOCHS * CIFAR_EPOCH / agg / 3600,
            }
            out["levels"].append(lvl)
            print(
                f"  [{label}] {k} job(s): {agg:9,.0f} img/s together ({agg / k:,.0f} each), "
                f"{lvl['epoch_s_effective']:.3f} s per epoch effective, "
                f"CIFAR-10 table {lvl['table_gpu_hours']:.1f} GPU-hours",
                flush=True,
            )
    except Exception as e:  # noqa: BLE001 -- report what was measured
        out["error"] = repr(e)[-2500:]
        print(f"  [{label}] FAILED: {out['error']}", flush=True)
    finally:
        w.close()
    return out


class MPS:
    """A CUDA MPS control daemon in a private pipe folder, for the processes started with `env`."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mps_"))
        self.env = {
            **os.environ,
            "CUDA_MPS_PIPE_DIRECTORY": str(self.dir / "pipe"),
            "CUDA_MPS_LOG_DIRECTORY": str(self.dir / "log"),
        }
        (self.dir / "pipe").mkdir()
        (self.dir / "log").mkdir()
        subprocess.run(["nvidia-cuda-mps-control", "-d"], env=self.env, check=True, timeout=30)

    def stop(self) -> None:
        subprocess.run(["nvidia-cuda-mps-control"], input=b"quit\n", env=self.env, timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def best_overrides(bench_train_json: str) -> tuple[str, list[str]]:
    """The fastest project setting of a `bench_train` run: its default config or one of its variants."""
    r = json.loads(Path(bench_train_json).read_text())["results"][-1]
    best = ("default", [], r["project"]["images_per_s"])
    for v in r.get("variants", []):
        if "error" not in v and v["images_per_s"] > best[2]:
            best = (v["name"], v["overrides"], v["images_per_s"])
    return best[0], best[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--jobs", default="1,2,4,8", help="comma-separated numbers of jobs sharing the device")
    p.add_argument("--seconds", type=float, help="timed window per level (default 15 on cuda, 3 on cpu)")
    p.add_argument(
        "--mps",
        default="auto",
        choices=["auto", "on", "off"],
        help="also measure under CUDA MPS (auto: when nvidia-cuda-mps-control is on the PATH)",
    )
    p.add_argument("--overrides", default="", help="config overrides of every job, space-separated")
    p.add_argument("--overrides-from", help="take the fastest setting of this bench_train JSON output")
    p.add_argument("--width", type=int, help="ResNet18 width (default 64 on cuda, 8 on cpu)")
    p.add_argument("--images", type=int, help="synthetic images per job (default 50,000 on cuda, 1,000 on cpu)")
    p.add_argument(
        "--warmup-steps",
        type=int,
        help="training steps before a worker is ready, at least one epoch (default 400 on cuda, 10 on cpu)",
    )
    p.add_argument("--out", help="write the numbers to this JSON file")
    p.add_argument("--worker", nargs=2, metavar=("FOLDER", "INDEX"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cuda = a.device == "cuda"
    a.width = a.width or (64 if cuda else 8)
    a.images = a.images or (50_000 if cuda else 1_000)
    a.warmup_steps = a.warmup_steps or (400 if cuda else 10)
    a.seconds = a.seconds or (15.0 if cuda else 3.0)
    overrides = a.overrides.split()
    if a.worker:
        return worker(Path(a.worker[0]), int(a.worker[1]), a.device, a.width, a.images, overrides, a.warmup_steps)

    try:
        jobs = sorted({int(j) for j in a.jobs.split(",")})
    except ValueError:
        p.error(f"--jobs: expected comma-separated integers, got {a.jobs!r}")
    if not jobs or jobs[0] < 1:
        p.error("--jobs: at least one level, each >= 1")
    if a.seconds <= 0:
        p.error("--seconds must be positive")
    setting = "given"
    if a.overrides_from:
        setting, overrides = best_overrides(a.overrides_from)
    import torch

    if cuda and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device available")
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    start = time.perf_counter()
    env = dict(
        device=name,
        torch=torch.__version__,
        width=a.width,
        images=a.images,
        seconds=a.seconds,
        overrides=overrides,
        setting=setting,
    )
    print(
        f"device {name}; ResNet18 width {a.width} + binenc d=4, batch 128, {a.images:,} synthetic images per job; "
        f"setting {setting}: {' '.join(overrides) or '(config defaults)'}",
        flush=True,
    )
    worker_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    runs = [measure(a, jobs, overrides, worker_env, "time-sliced" if cuda else "cpu")]
    use_mps = cuda and (a.mps == "on" or (a.mps == "auto" and shutil.which("nvidia-cuda-mps-control")))
    if use_mps:
        try:
            mps = MPS()
        except Exception as e:  # noqa: BLE001
            runs.append({"mode": "mps", "error": f"MPS daemon did not start: {e!r}"[:500]})
            print(f"  [mps] FAILED to start: {e!r}", flush=True)
        else:
            try:
                runs.append(
                    measure(
                        a,
                        jobs,
                        overrides,
                        {**worker_env, **{k: v for k, v in mps.env.items() if k.startswith("CUDA_MPS")}},
                        "mps",
                    )
                )
            finally:
                mps.stop()
    best = max(
        (lvl for r in runs for lvl in r.get("levels", [])), key=lambda lvl: lvl["aggregate_images_per_s"], default=None
    )
    if best:
        mode = next(r["mode"] for r in runs if best in r.get("levels", []))
        print(
            f"fastest packing: {best['jobs']} job(s), {mode}: {best['aggregate_images_per_s']:,.0f} img/s, "
            f"CIFAR-10 table ({PAPER_TABLE_EPOCHS:,} epochs) in {best['table_gpu_hours']:.1f} GPU-hours",
            flush=True,
        )
    finish(env, start, a.out, {"runs": runs, "best": best and {**best, "mode": mode}})


if __name__ == "__main__":
    main()
