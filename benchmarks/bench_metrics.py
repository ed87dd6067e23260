"""Speed of the project's metric code against straightforward implementations, side by side.

    python -m benchmarks.bench_metrics [--quick] [--device cpu|cuda] [--out FILE.json] [--threads N]

What is compared (ratio = straightforward time / project time, > 1 means the project is faster):

1. suite: the per-epoch latent metrics of `callbacks.metrics.geometry_metrics` (gmm_binarity,
   encoding_agreement, code_agreement, neural_collapse with a classifier weight) on synthetic
   latents: each class sits near a random vertex of {-1, 1}^d, plus Gaussian noise; 10% of the
   predictions are wrong. Straightforward = the code below and tests/oracles.py: one sklearn
   GaussianMixture(2) per standardised column, numpy loops over classes, np.cov per class,
   np.linalg.pinv, scipy cdist.
2. mahalanobis: fit_class_gaussians + mahalanobis_distance (train N, test N/5) against a numpy
   per-class fit (np.cov) + mahalanobis_distance_reference (tests/oracles.py: scipy, one test point
   at a time).
3. deepfool: batched `deepfool` against `deepfool_reference` (tests/oracles.py: one image at a time) on a CIFAR
   ResNet18 (random init, eval mode) with a "binenc" head of width 4, 10 classes, top-10 candidates.

Timing: time.perf_counter (with torch.cuda.synchronize on cuda). The project functions get one
warm-up call and always run on the full input. Calls are repeated while their total stays under
1 s (up to 5 calls, the fastest counts), on both sides, as short timings jitter on a shared CPU.
The slow straightforward parts are timed on a subset and extrapolated linearly (sklearn GMM: per
dimension; scipy Mahalanobis: per test point; reference DeepFool: per image); the note column
says so. The numpy/sklearn/scipy code always runs on the CPU, whatever --device is. The check
column compares the two results (max relative difference; for DeepFool rho on the subset).

Threads: on a CPU shared with other jobs, --threads 1 gives steadier numbers (2 OpenMP threads
on 2 busy cores can stall a millisecond op for ~0.5 s); it also limits numpy/scipy BLAS through
threadpoolctl. --quick defaults to --threads 1, so that it stays well under a minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from scipy.spatial.distance import cdist

from benchmarks import finish
from binary_encoding.metrics.deepfool import LogitsOnly, deepfool, robustness_rho
from binary_encoding.metrics.geometry import (
    code_agreement,
    encoding_agreement,
    gmm_binarity,
    neural_collapse,
)
from binary_encoding.metrics.reliability import fit_class_gaussians, mahalanobis_distance
from binary_encoding.model.backbones import ResNet
from binary_encoding.model.heads import Classifier, LinearHead
from tests.oracles import deepfool_reference, gmm_binarity_reference, mahalanobis_distance_reference

FULL = dict(
    n=50_000,
    cases=[(4, 10), (4, 100), (64, 10), (64, 100), (512, 10), (512, 100)],
    gmm_dims=32,
    maha_points=2_000,
    df_images=200,
    df_ref_images=20,
    df_width=64,
)
QUICK = dict(
    n=5_000, cases=[(4, 10), (64, 100)], gmm_dims=8, maha_points=500, df_images=20, df_ref_images=4, df_width=8
)


def timed(fn, device, warmup=False, budget=1.0, max_calls=5):
    """(seconds, result) of fn: after one untimed warm-up call if asked, the fastest of repeated
    calls while their total stays under `budget` seconds (at most max_calls; slow fns run once)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if warmup:
        fn()
    best, total = float("inf"), 0.0
    for _ in range(max_calls):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        dt = time.perf_counter() - t
        best, total = min(best, dt), total + dt
        if total >= budget:
            break
    return best, out


def rel(a, b):
    """Relative difference |a - b| / max(|b|, 1e-12)."""
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-12)


def make_latents(n, d, c, gen):
    """Latents near hypercube vertices (one random vertex per class), labels, predictions (10% wrong)."""
    vertices = torch.randint(0, 2, (c, d), generator=gen) * 2.0 - 1.0
    y = torch.randint(0, c, (n,), generator=gen)
    z = vertices[y] + 0.4 * torch.randn(n, d, generator=gen)
    wrong = torch.rand(n, generator=gen) < 0.1
    pred = torch.where(wrong, torch.randint(0, c, (n,), generator=gen), y)
    return z.float(), y, pred


# ------------------------------------------------------------------------------------------------
# Straightforward implementations (numpy / sklearn / scipy, CPU)
# ------------------------------------------------------------------------------------------------


def encoding_agreement_numpy(z, pred, c):
    q = [(z[pred == k] > 0).mean(0) for k in range(c) if (pred == k).any()]
    return float(np.mean([np.maximum(qk, 1 - qk) for qk in q]))


def code_agreement_numpy(z, labels):
    codes, ids = np.unique(z > 0, axis=0, return_inverse=True)
    ids = ids.ravel()
    modal = sum(np.bincount(ids[labels == k]).max() for k in np.unique(labels))
    return modal / len(ids), len(codes)


def neural_collapse_numpy(z, y, pred, w):
    """NC1 (np.cov per class, pinv), NC2 equinorm / equiangular, NC3, NC4 (nearest class mean)."""
    classes = np.unique(y)
    mus = np.stack([z[y == k].mean(0) for k in classes])
    centred = mus - z.mean(0)
    sigma_w = np.mean([np.cov(z[y == k].T) for k in classes], axis=0).reshape(z.shape[1], -1)
    sigma_b = centred.T @ centred / len(classes)
    norms = np.linalg.norm(centred, axis=1)
    cos = (centred @ centred.T / np.outer(norms, norms))[np.triu_indices(len(classes), 1)]
    m, v = centred.T, w[classes].T
    # rcond = D * eps as docs/method.md §6.3 defines NC1: numpy's default 1e-15 can keep the null space of sigma_b
    pinv_b = np.linalg.pinv(sigma_b, rcond=z.shape[1] * np.finfo(float).eps, hermitian=True)
    return {
        "nc1": np.trace(sigma_w @ pinv_b) / len(classes),
        "equinorm": norms.std() / norms.mean(),
        "equiangular": cos.std(),
        "nc3": ((v / np.linalg.norm(v) - m / np.linalg.norm(m)) ** 2).sum(),
        "nc4": np.mean(classes[cdist(z, mus).argmin(1)] != pred),
    }


def fit_numpy(z, pred, y, c, reg=1e-6, min_count=3):
    """Per-class mean and regularised covariance (np.cov) of the standardised correct samples."""
    std = z.std(0)
    zs = (z - z.mean(0)) / np.where(std > 0, std, 1.0)
    out = {}
    for k in range(c):
        zk = zs[(pred == k) & (y == k)]
        if len(zk) >= min_count:
            cov = np.cov(zk.T).reshape(z.shape[1], -1)
            scale = np.trace(cov) / z.shape[1] or 1.0
            out[k] = (zk.mean(0), cov + reg * scale * np.eye(z.shape[1]))
    return out


# ------------------------------------------------------------------------------------------------
# Benchmarks
# ------------------------------------------------------------------------------------------------


def bench_suite(n, d, c, cfg, device, gen):
    z, y, pred = make_latents(n, d, c, gen)
    w = torch.randn(c, d, generator=gen)
    zt, yt, pt, wt = (t.to(device) for t in (z, y, pred, w))

    def project():
        return (
            gmm_binarity(zt),
            encoding_agreement(zt, pt, c),
            code_agreement(zt, pt, c),
            neural_collapse(zt, yt, pt, wt),
        )

    t_proj, (gmm, agree, codes, nc) = timed(project, device, warmup=True)
    zn, yn, pn, wn = (t.numpy() for t in (z.double(), y, pred, w.double()))
    dims = np.arange(min(d, cfg["gmm_dims"]))
    t_gmm, rows = timed(lambda: gmm_binarity_reference(zn, dims), torch.device("cpu"))
    t_rest, (agree_np, (code_np, ncodes_np), nc_np) = timed(
        lambda: (
            encoding_agreement_numpy(zn, pn, c),
            code_agreement_numpy(zn, pn),
            neural_collapse_numpy(zn, yn, pn, wn),
        ),
        torch.device("cpu"),
    )
    t_gmm_all = t_gmm * d / len(dims)
    ours = np.stack([gmm[k][dims].cpu().numpy() for k in ("score_per_dim", "std_per_dim", "peak_dist_per_dim")], 1)
    check = max(
        [
            float(np.max(np.abs(ours - rows) / np.maximum(np.abs(rows), 1e-12))),
            rel(agree, agree_np),
            rel(codes["agreement"], code_np),
            rel(codes["n_codes"], ncodes_np),
        ]
        + [rel(nc[k], nc_np[k]) for k in ("nc1", "equinorm", "equiangular", "nc3")]
        + [abs(nc["nc4"] - nc_np["nc4"])]
    )
    note = "" if len(dims) == d else f"sklearn GMM extrapolated from {len(dims)} of {d} dims"
    return dict(
        bench="suite",
        case=f"N={n} d={d} C={c}",
        project_s=t_proj,
        straightforward_s=t_gmm_all + t_rest,
        straightforward_parts_s=dict(sklearn_gmm=t_gmm_all, sklearn_gmm_measured=t_gmm, numpy_rest=t_rest),
        check=check,
        note=note,
    )


def bench_mahalanobis(n, d, c, cfg, device, gen):
    z, y, pred = make_latents(n + n // 5, d, c, gen)  # train split, then test split (same classes)
    z, zq, y, pred, pq = z[:n], z[n:], y[:n], pred[:n], pred[n:]
    zt, yt, pt, zqt, pqt = (t.to(device) for t in (z, y, pred, zq, pq))

    def project():
        gauss = fit_class_gaussians(zt, pt, yt, c)
        return gauss, mahalanobis_distance(gauss, zqt, pqt)

    t_proj, (gauss, dist) = timed(project, device, warmup=True)
    m = min(len(zq), cfg["maha_points"])
    t_fit, fitted = timed(lambda: fit_numpy(z.double().numpy(), pred.numpy(), y.numpy(), c), torch.device("cpu"))
    t_ref, ref = timed(lambda: mahalanobis_distance_reference(gauss, zq[:m], pq[:m]), torch.device("cpu"))
    t_ref_all = t_ref * len(zq) / m
    ours = dist[:m].cpu().numpy()
    fin = np.isfinite(ref)
    check = float(np.max(np.abs(ours[fin] - ref[fin]) / np.maximum(ref[fin], 1e-12))) if fin.any() else 0.0
    cov_ok = all(
        np.allclose(cov, gauss.covariances[k].cpu().numpy(), rtol=1e-6, atol=1e-9) for k, (_, cov) in fitted.items()
    )
    note = "" if m == len(zq) else f"scipy distances extrapolated from {m} of {len(zq)} pts"
    return dict(
        bench="mahalanobis",
        case=f"N={n}/{len(zq)} d={d} C={c}",
        project_s=t_proj,
        straightforward_s=t_fit + t_ref_all,
        straightforward_parts_s=dict(numpy_fit=t_fit, scipy_distance=t_ref_all, scipy_distance_measured=t_ref),
        check=check if cov_ok else float("inf"),
        note=note,
    )


def latent_net(width: int) -> Classifier:
    """CIFAR ResNet18 backbone + binenc head (width 4, 10 classes), returning (logits, z) like the
    project's module (what the end-of-training DeepFool attacks, with the latent shortcut)."""
    backbone = ResNet((3, 32, 32), layers=(2, 2, 2, 2), block="basic", width=width, name="resnet18")
    return Classifier(backbone, LinearHead(backbone.num_features, 10, width=4))


def bench_deepfool(cfg, device, gen):
    torch.manual_seed(0)
    net = latent_net(cfg["df_width"]).to(device).eval()
    model, weight = LogitsOnly(net), net.head.classifier.weight.detach()
    x = torch.randn(cfg["df_images"], 3, 32, 32, generator=gen).to(device)
    k = min(cfg["df_ref_images"], len(x))
    project = lambda xs: deepfool(net, xs, num_candidates=10, latent_weight=weight)  # noqa: E731
    project(x[:2])  # warm-up on 2 images
    t_proj, out = timed(lambda: project(x), device)
    t_ref, ref = timed(lambda: deepfool_reference(model, x[:k], num_candidates=10), device)
    t_ref_all = t_ref * len(x) / k
    check = rel(robustness_rho(out["r"][:k], x[:k]), robustness_rho(ref["r"], x[:k]))
    note = f"reference extrapolated from {k} of {len(x)} images; rho on them matches to {check:.1e}"
    if not torch.equal(out["n_iter"][:k], ref["n_iter"]):
        note += "; n_iter DIFFERS"
    return dict(
        bench="deepfool",
        case=f"{len(x)} imgs ResNet18 w={cfg['df_width']}",
        project_s=t_proj,
        straightforward_s=t_ref_all,
        straightforward_parts_s=dict(reference_measured=t_ref),
        check=check,
        note=note,
        rho=robustness_rho(out["r"], x),
        mean_iters=out["n_iter"].double().mean().item(),
        fooled=out["fooled"].double().mean().item(),
    )


def environment(device):
    env = dict(
        device=str(device),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        load_avg=[round(v, 2) for v in os.getloadavg()],
    )
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", help="write the numbers to this JSON file")
    parser.add_argument(
        "--threads", type=int, help="CPU threads for torch and numpy/scipy (default: as is; 1 with --quick)"
    )
    args = parser.parse_args(argv)
    if args.quick and args.threads is None:
        args.threads = 1  # a smoke test: steady under load (2 threads on 2 busy cores stall badly)
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    device = torch.device(args.device)
    cfg = QUICK if args.quick else FULL
    env = environment(device)
    print(" ".join(f"{k}={v}" for k, v in env.items()) + f" mode={'quick' if args.quick else 'full'}", flush=True)
    head = f"{'bench':<12}{'case':<28}{'project s':>10}{'straightf. s':>13}{'ratio':>9}{'check':>9}  note"
    print(head + "\n" + "-" * len(head), flush=True)
    results, start = [], time.perf_counter()
    gen = torch.Generator().manual_seed(0)
    jobs = [(bench, (cfg["n"], d, c)) for bench in (bench_suite, bench_mahalanobis) for d, c in cfg["cases"]]
    for fn, params in jobs + [(bench_deepfool, ())]:
        r = fn(*params, cfg, device, gen)
        r["ratio"] = r["straightforward_s"] / r["project_s"]
        results.append(r)
        print(
            f"{r['bench']:<12}{r['case']:<28}{r['project_s']:>10.3f}{r['straightforward_s']:>13.3f}"
            f"{r['ratio']:>8.1f}x{r['check']:>9.1e}  {r['note']}",
            flush=True,
        )
    finish(env, start, args.out, {"mode": "quick" if args.quick else "full", "config": cfg, "results": results})


if __name__ == "__main__":
    main()
