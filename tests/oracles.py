"""Straightforward reference implementations, used only as test oracles (and as the baselines of
`benchmarks/bench_metrics.py`). They are deliberately slow and simple, and they import nothing from
`binary_encoding`: whatever they check is recomputed here with plain torch / numpy / scipy / sklearn.

Tests import them as ``from oracles import ...`` (pytest puts ``tests/`` on ``sys.path``); the
benchmarks, run as ``python -m benchmarks...`` from the repository root, as ``from tests.oracles import ...``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = [
    "deepfool_reference",
    "gmm_binarity_reference",
    "mahalanobis_distance_reference",
    "reference_auroc_oracle",
    "robustness_oracle",
    "top_codes_fraction_oracle",
]


# --------------------------------------------------------------------------------------------------
# DeepFool (docs/method.md §8)
# --------------------------------------------------------------------------------------------------

_EPS_NORM = 1e-12  # floor on ||w_k|| (a zero gradient difference gives an (almost) zero step, not NaN)


def _top_classes(logits: torch.Tensor, num_candidates: int | None) -> list[int]:
    """Candidate classes of one image: the indices of its `num_candidates` largest logits, largest
    first (all classes for None); ties keep the lower index first, as argmax does."""
    values = logits.detach().reshape(-1).tolist()
    k = len(values) if num_candidates is None else min(int(num_candidates), len(values))
    if k < 2:
        raise ValueError("DeepFool needs at least 2 candidate classes")
    return sorted(range(len(values)), key=lambda j: -values[j])[:k]


def deepfool_reference(
    model: torch.nn.Module,
    x: torch.Tensor,
    num_candidates: int | None = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
) -> dict:
    """Textbook L2 DeepFool: one image at a time, one backward pass per candidate logit.

    `model(x)` must return the logits only. Same outputs as `binary_encoding.metrics.deepfool.deepfool`:
    ``r`` (final perturbation ``(1 + overshoot) * r_tot``), ``n_iter``, ``fooled``, ``orig_pred``,
    ``adv_pred``. The model is evaluated in eval mode and its mode restored afterwards.
    """
    was_training = model.training
    model.eval()
    outs = {"r": [], "n_iter": [], "fooled": [], "orig_pred": [], "adv_pred": []}
    try:
        with torch.enable_grad():
            for i in range(x.shape[0]):
                image = x[i : i + 1].detach()
                with torch.no_grad():
                    cand = _top_classes(model(image)[0], num_candidates)
                label = cand[0]
                r_tot = torch.zeros_like(image)
                pert = image.clone().requires_grad_(True)
                fs = model(pert)
                k_i = int(fs.argmax(1))
                loop_i = 0
                while k_i == label and loop_i < max_iter:
                    grad_orig = torch.autograd.grad(fs[0, label], pert, retain_graph=True)[0]
                    pert_best, w_best, f_best, nw_best = float("inf"), None, 0.0, 1.0
                    for k in cand[1:]:
                        cur_grad = torch.autograd.grad(fs[0, k], pert, retain_graph=True)[0]
                        w_k = cur_grad - grad_orig
                        f_k = (fs[0, k] - fs[0, label]).item()
                        nw = max(w_k.norm().item(), _EPS_NORM)
                        pert_k = abs(f_k) / nw
                        if pert_k < pert_best:
                            pert_best, w_best, f_best, nw_best = pert_k, w_k, f_k, nw
                    r_i = (abs(f_best) + 1e-4) / nw_best**2 * w_best
                    r_tot = r_tot + r_i
                    pert = (image + (1 + overshoot) * r_tot).detach().requires_grad_(True)
                    fs = model(pert)
                    k_i = int(fs.argmax(1))
                    loop_i += 1
                outs["r"].append((1 + overshoot) * r_tot)
                outs["n_iter"].append(loop_i)
                outs["fooled"].append(k_i != label)
                outs["orig_pred"].append(label)
                outs["adv_pred"].append(k_i)
    finally:
        model.train(was_training)
    dev = x.device
    return {
        "r": torch.cat(outs["r"]),
        "n_iter": torch.tensor(outs["n_iter"], dtype=torch.long, device=dev),
        "fooled": torch.tensor(outs["fooled"], dtype=torch.bool, device=dev),
        "orig_pred": torch.tensor(outs["orig_pred"], dtype=torch.long, device=dev),
        "adv_pred": torch.tensor(outs["adv_pred"], dtype=torch.long, device=dev),
    }


# --------------------------------------------------------------------------------------------------
# Gaussian-mixture binarity (docs/method.md §6.1)
# --------------------------------------------------------------------------------------------------


def gmm_binarity_reference(z, dims=None) -> np.ndarray:
    """Per dimension: standardise and fit sklearn's `GaussianMixture(n_components=2, random_state=0)`
    (numpy in, numpy out). Returns rows of (score, std, peak_dist), one per dimension in `dims`
    (all dimensions for None)."""
    from sklearn.mixture import GaussianMixture

    z = np.asarray(z, dtype=np.float64)
    rows = []
    for j in range(z.shape[1]) if dims is None else dims:
        x = ((z[:, j] - z[:, j].mean()) / z[:, j].std())[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on unimodal columns
            g = GaussianMixture(n_components=2, random_state=0).fit(x)
        std = np.sqrt(g.covariances_.ravel()).mean()
        rows.append((g.score(x), std, abs(g.means_[0, 0] - g.means_[1, 0]) / std))
    return np.array(rows)


# --------------------------------------------------------------------------------------------------
# Mahalanobis distance to the predicted class (docs/method.md §7)
# --------------------------------------------------------------------------------------------------


def mahalanobis_distance_reference(gauss, z: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
    """One test point at a time with ``scipy.spatial.distance.mahalanobis``.

    `gauss` is a fitted `ClassGaussians`; only its fitted parameters are read (standardisation
    `mean` / `std`, class `means`, regularised `covariances`, `valid`). The precision matrices
    are recomputed here with ``numpy.linalg.inv``, independently of the ones the fit stored.
    Samples predicted as a skipped class give ``+inf``. Returns a float64 numpy array.
    """
    from scipy.spatial.distance import mahalanobis

    mean = gauss.mean.cpu().numpy()
    std = gauss.std.cpu().numpy()
    means = gauss.means.cpu().numpy()
    covs = gauss.covariances.cpu().numpy()
    valid = gauss.valid.cpu().numpy()
    zs = (z.detach().cpu().double().reshape(z.shape[0], -1).numpy() - mean) / std
    pred = pred.detach().cpu().long().reshape(-1).numpy()
    inv = {}
    out = np.empty(len(zs))
    for i in range(len(zs)):
        c = int(pred[i])
        if not valid[c]:
            out[i] = np.inf
            continue
        if c not in inv:
            inv[c] = np.linalg.inv(covs[c])
        out[i] = mahalanobis(zs[i], means[c], inv[c])
    return out


# --------------------------------------------------------------------------------------------------
# The reference setup's Mahalanobis AUROC estimate (docs/method.md §7.5)
# --------------------------------------------------------------------------------------------------


def reference_auroc_oracle(z_train, pred_train, y_train, z_test, pred_test, y_test) -> float:
    """sklearn's `StandardScaler` and one-component `GaussianMixture` per class (absolute `reg_covar`
    1e-6), scipy's distance one point at a time, and the 101 quantile thresholds as a plain loop."""
    from scipy.spatial.distance import mahalanobis
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(z_train)
    ztr, zte = scaler.transform(z_train), scaler.transform(z_test)
    good, bad = [], []
    for c in sorted(set(y_train.tolist())):
        fit_on = (pred_train == c) & (y_train == c)
        if fit_on.sum() <= 2:
            continue
        gm = GaussianMixture(n_components=1, covariance_type="full", reg_covar=1e-6).fit(ztr[fit_on])
        inv = np.linalg.inv(gm.covariances_[0])
        for ok, out in ((True, good), (False, bad)):
            rows = zte[(pred_test == c) & ((pred_test == y_test) == ok)]
            if len(rows) > 2:
                out += [mahalanobis(r, gm.means_[0], inv) for r in rows]
    if not good or not bad:
        return float("nan")
    total = 0.0
    for i in range(101):
        t = np.quantile(bad, i / 100)
        total += sum(g < t for g in good) / len(good) * 0.01
    return total


# --------------------------------------------------------------------------------------------------
# Secondary outputs: DeepFool ratios by subset (docs/method.md §8), the top-code fraction (§6.2)
# --------------------------------------------------------------------------------------------------


class _LogitsOf(torch.nn.Module):
    """A model returning (logits, z) seen as one returning the logits only."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out[0] if isinstance(out, tuple) else out


def robustness_oracle(model, x: torch.Tensor, y: torch.Tensor, **deepfool_kwargs) -> dict:
    """rho = mean ||r|| / ||x|| over all images and over the correctly classified ones only (NaN when
    none is), and the fooled fraction: textbook DeepFool, then one image at a time in plain Python."""
    ref = deepfool_reference(_LogitsOf(model), x, **deepfool_kwargs)
    ratios = [float(ref["r"][i].norm() / x[i].norm()) for i in range(len(x))]
    correct = [int(ref["orig_pred"][i]) == int(y[i]) for i in range(len(x))]
    kept = [r for r, c in zip(ratios, correct) if c]
    return {
        "deepfool_rho": sum(ratios) / len(ratios),
        "deepfool_rho_correct": sum(kept) / len(kept) if kept else float("nan"),
        "deepfool_fooled": sum(bool(f) for f in ref["fooled"]) / len(x),
        "correct": sum(correct),
    }


def top_codes_fraction_oracle(z, num_classes: int) -> float:
    """The share of samples whose sign code is one of the `num_classes` most common codes."""
    from collections import Counter

    counts = Counter(tuple(row) for row in (np.asarray(z) > 0))
    return sum(sorted(counts.values(), reverse=True)[:num_classes]) / len(np.asarray(z))
