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
    "aurc_reference",
    "class_gaussian_reference",
    "code_agreement_reference",
    "deepfool_reference",
    "encoding_agreement_reference",
    "finite_scores",
    "fpr_at_95_tpr_reference",
    "gmm_binarity_reference",
    "mahalanobis_auroc_reference",
    "mahalanobis_distance_reference",
    "mahalanobis_reference",
    "neural_collapse_reference",
    "reference_auroc_oracle",
    "standardize_reference",
    "robustness_oracle",
    "two_valuedness_reference",
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


def gmm_binarity_reference(z, dims=None, **options) -> np.ndarray:
    """Per dimension: standardise and fit sklearn's `GaussianMixture(n_components=2, random_state=0)`
    with sklearn's `options` (max_iter, tol, reg_covar, n_init) (numpy in, numpy out). Returns rows of
    (score, std, peak_dist), one per dimension in `dims` (all dimensions for None)."""
    from sklearn.mixture import GaussianMixture

    z = np.asarray(z, dtype=np.float64)
    rows = []
    for j in range(z.shape[1]) if dims is None else dims:
        x = ((z[:, j] - z[:, j].mean()) / z[:, j].std())[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on unimodal columns or at a small max_iter
            g = GaussianMixture(n_components=2, random_state=0, **options).fit(x)
        std = np.sqrt(g.covariances_.ravel()).mean()
        rows.append((g.score(x), std, abs(g.means_[0, 0] - g.means_[1, 0]) / std))
    return np.array(rows)


def two_valuedness_reference(z) -> np.ndarray:
    """docs/method.md §6.4 with sklearn, one dimension at a time: `r2_score` of the column against the
    mean of its sign group (z > 0, z <= 0) at every sample; a column of a single value scores 0."""
    from sklearn.metrics import r2_score

    z = np.asarray(z, dtype=np.float64)
    out = []
    for col in z.T:
        if np.ptp(col) == 0:
            out.append(0.0)
            continue
        fitted = np.empty_like(col)
        for side in (col > 0, col <= 0):
            if side.any():
                fitted[side] = col[side].mean()
        out.append(r2_score(col, fitted))
    return np.array(out)


# --------------------------------------------------------------------------------------------------
# Encoding agreement and codes (docs/method.md §6.2)
# --------------------------------------------------------------------------------------------------


def encoding_agreement_reference(z, pred) -> float:
    """The per-dimension agreement: for every present class and dimension the share q of positive
    coordinates, max(q, 1 - q), averaged over all (class, dimension) pairs."""
    bits = np.asarray(z) > 0
    pred = np.asarray(pred)
    q = np.stack([bits[pred == c].mean(0) for c in np.unique(pred)])
    return float(np.maximum(q, 1 - q).mean())


def code_agreement_reference(z, labels, num_classes=None) -> dict:
    """The joint-code statistics with `collections.Counter` over the sign-bit tuples: the share of
    samples carrying their class's most common code (`agreement`), the distinct codes (`n_codes`), the
    share held by the `num_classes` most common codes (default: as many as there are distinct labels)
    and how many distinct codes the classes' most common codes are (`unique_class_codes`)."""
    from collections import Counter

    codes = [tuple(row) for row in (np.asarray(z) > 0)]
    labels = np.asarray(labels)
    per_class = {c: Counter(code for code, lab in zip(codes, labels) if lab == c) for c in np.unique(labels)}
    counts = Counter(codes)
    k = len(per_class) if num_classes is None else num_classes
    return {
        "agreement": sum(max(cnt.values()) for cnt in per_class.values()) / len(codes),
        "n_codes": len(counts),
        "top_codes_fraction": sum(n for _, n in counts.most_common(k)) / len(codes),
        "unique_class_codes": len({cnt.most_common(1)[0][0] for cnt in per_class.values()}),
    }


# --------------------------------------------------------------------------------------------------
# Neural collapse (docs/method.md §6.3)
# --------------------------------------------------------------------------------------------------


def neural_collapse_reference(z, labels, global_mean="samples", min_count=2, classifier_weight=None) -> dict:
    """docs/method.md §6.3 in float64 numpy, one class at a time: class means of the present classes;
    mu_G over all samples ("samples") or the mean of the present class means ("class_means"); Sigma_W
    (per-class ddof-1 `np.cov`, unweighted mean) and Sigma_B over the classes with >= `min_count`
    samples; NC1 with `np.linalg.pinv` (hermitian, rcond D * eps); NC2 equinorm over the present classes;
    NC3 when `classifier_weight` ([C, D], row c for class c) is given. `skipped_classes` counts the
    classes 0..max(labels) left out of Sigma_W."""
    z, labels = np.asarray(z, dtype=np.float64), np.asarray(labels)
    classes = np.arange(labels.max() + 1)
    counts = np.array([(labels == k).sum() for k in classes])
    mus = {k: z[labels == k].mean(0) for k in classes if counts[k] > 0}
    mu_g = z.mean(0) if global_mean == "samples" else np.mean(list(mus.values()), axis=0)
    kept = [k for k in classes if counts[k] >= min_count]
    sw = np.mean([np.cov(z[labels == k], rowvar=False, ddof=1) for k in kept], axis=0)
    sb = np.mean([np.outer(mus[k] - mu_g, mus[k] - mu_g) for k in kept], axis=0)
    pinv = np.linalg.pinv(sb, rcond=z.shape[1] * np.finfo(np.float64).eps, hermitian=True)
    centred = np.stack([mu - mu_g for mu in mus.values()])  # [C_present, D]
    norms = np.linalg.norm(centred, axis=1)
    out = {
        "nc1": np.trace(sw @ pinv) / len(kept),
        "sigma_w": sw.mean(),
        "trace_sigma_w": np.trace(sw),
        "trace_sigma_b": np.trace(sb),
        "skipped_classes": len(classes) - len(kept),
        "num_classes": len(kept),
        "equinorm": norms.std() / norms.mean(),
    }
    if classifier_weight is not None:
        v = np.asarray(classifier_weight, dtype=np.float64)[list(mus)]
        out["nc3"] = np.sum((v / np.linalg.norm(v) - centred / np.linalg.norm(centred)) ** 2)
    return out


# --------------------------------------------------------------------------------------------------
# Mahalanobis distance to the predicted class (docs/method.md §7)
# --------------------------------------------------------------------------------------------------


def standardize_reference(z_train):
    """The training latents' mean and population std per dimension (a constant dimension: std 1)."""
    z_train = np.asarray(z_train, dtype=np.float64)
    std = z_train.std(0)
    return z_train.mean(0), np.where(std > 0, std, 1.0)


def class_gaussian_reference(z_train, pred_train, y_train, c, reg=1e-6, min_count=3):
    """docs/method.md §7.1 in numpy: the mean and ddof-1 covariance of the standardised training latents
    predicted and labelled `c`, plus ``reg * s * I`` with ``s = trace / D`` (1 for a zero trace).
    None for a class with fewer than `min_count` such samples."""
    mean, std = standardize_reference(z_train)
    zs = (np.asarray(z_train, dtype=np.float64) - mean) / std
    x = zs[(np.asarray(pred_train) == c) & (np.asarray(y_train) == c)]
    if len(x) < min_count:
        return None
    cov = np.cov(x, rowvar=False, ddof=1).reshape(zs.shape[1], zs.shape[1])
    d = cov.shape[0]
    return x.mean(0), cov + reg * (np.trace(cov) / d or 1.0) * np.eye(d)


def mahalanobis_reference(points, mean, cov) -> np.ndarray:
    """``scipy.spatial.distance.mahalanobis`` of each point (rows) to one Gaussian, the precision
    matrix from ``numpy.linalg.inv``."""
    from scipy.spatial.distance import mahalanobis

    inv = np.linalg.inv(cov)
    return np.array([mahalanobis(p, mean, inv) for p in np.asarray(points, dtype=np.float64)])


def mahalanobis_auroc_reference(z_train, pred_train, y_train, z_test, pred_test, y_test, reg=1e-6) -> float:
    """docs/method.md §7.1-7.3 end to end: sklearn's `roc_auc_score` of the correct test samples against
    -distance (`mahalanobis_score_reference`)."""
    from sklearn.metrics import roc_auc_score

    score = mahalanobis_score_reference(z_train, pred_train, y_train, z_test, pred_test, reg)
    return roc_auc_score(np.asarray(pred_test) == np.asarray(y_test), -finite_scores(score))


def mahalanobis_score_reference(z_train, pred_train, y_train, z_test, pred_test, reg=1e-6) -> np.ndarray:
    """Standardise by the training latents, per-class Gaussians on the correctly classified training
    latents (`class_gaussian_reference`), each test point's distance to its predicted class's (+inf for
    a skipped class)."""
    mean, std = standardize_reference(z_train)
    zs = (np.asarray(z_test, dtype=np.float64) - mean) / std
    pred_test = np.asarray(pred_test)
    score = np.full(len(zs), np.inf)
    for c in np.unique(pred_test):
        fit = class_gaussian_reference(z_train, pred_train, y_train, c, reg)
        if fit is not None:
            score[pred_test == c] = mahalanobis_reference(zs[pred_test == c], *fit)
    return score


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
# Rank statistics of an uncertainty score (docs/method.md §7.3)
# --------------------------------------------------------------------------------------------------


def finite_scores(score) -> np.ndarray:
    """+inf (a sample predicted as a skipped class) replaced by a finite value above every other score:
    the same ranking, and sklearn accepts it."""
    s = np.asarray(score, dtype=np.float64).copy()
    s[np.isinf(s)] = s[np.isfinite(s)].max() + 1 if np.isfinite(s).any() else 0.0
    return s


def fpr_at_95_tpr_reference(correct, score) -> float:
    """Read off sklearn's ROC (every threshold kept, confidence = -score): the FPR at the first
    (largest-threshold) point with TPR >= 0.95."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(correct), -finite_scores(score), drop_intermediate=False)
    return fpr[np.argmax(tpr >= 0.95)]


def aurc_reference(score, correct) -> float:
    """AURC by brute force: the mean risk-coverage curve of every ordering by confidence that breaks
    the ties some way, averaged (each permutation of the samples, stable-sorted by score, is one
    tie-breaking). Only for a handful of samples (n! orderings)."""
    import itertools

    score, correct = np.asarray(score, dtype=np.float64), np.asarray(correct, dtype=bool)
    n = len(score)
    perms = np.array(list(itertools.permutations(range(n))))
    order = np.take_along_axis(perms, np.argsort(score[perms], axis=1, kind="stable"), axis=1)
    errors = (~correct)[order].astype(np.float64)
    risk = np.cumsum(errors, axis=1) / np.arange(1, n + 1)
    return risk.mean()


def aurc_expected_reference(score, correct) -> float:
    """AURC for any number of samples: the risk at each coverage k averaged over every order of the tied
    scores, by linearity of expectation. A group of m tied samples with e errors placed after b errors
    has, j samples into it, b + j * e / m expected errors (the same mean as `aurc_reference`, without
    its n! orderings)."""
    score, correct = np.asarray(score, dtype=np.float64), np.asarray(correct, dtype=bool)
    values, group = np.unique(score, return_inverse=True)  # least doubtful (lowest score) first
    risks, before = [], 0.0
    for g in range(len(values)):
        members = group == g
        m, e = int(members.sum()), float((~correct[members]).sum())
        for j in range(1, m + 1):
            risks.append((before + j * e / m) / (len(risks) + 1))
        before += e
    return float(np.mean(risks))


# --------------------------------------------------------------------------------------------------
# Secondary outputs: DeepFool ratios by subset (docs/method.md §8)
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
