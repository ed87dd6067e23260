"""Misclassification detection (Mahalanobis and max-softmax), as defined in docs/method.md §7.

Pure functions: torch tensors in, floats / tensors out. Computations follow the device of the
inputs; the Gaussian fit and the distances are computed in float64.

Score convention: every *score* here is an uncertainty (larger = less confident). In the
detection metrics the "correct" samples are the positive class, so the confidence used for the
ROC is ``-score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ClassGaussians",
    "fit_class_gaussians",
    "mahalanobis_distance",
    "misclassification_scores",
    "max_softmax_score",
    "quantile_sum_auroc",
    "reference_mahalanobis_auroc",
]


@dataclass
class ClassGaussians:
    """Per-class Gaussians fitted in the standardized latent space.

    mean, std: [D] training mean / std used for standardization (std of constant dims set to 1).
    means: [C, D] class means (zeros for skipped classes).
    covariances: [C, D, D] regularized covariances (identity for skipped classes).
    precisions: [C, D, D] inverses of ``covariances`` (zeros for skipped classes).
    valid: [C] bool, False for classes skipped because they had fewer than ``min_count``
        correctly classified training samples.
    counts: [C] number of correctly classified training samples per predicted class.
    n_skipped: number of skipped classes.
    """

    mean: torch.Tensor
    std: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    precisions: torch.Tensor
    valid: torch.Tensor
    counts: torch.Tensor
    n_skipped: int

    def standardize(self, z: torch.Tensor) -> torch.Tensor:
        z = z.to(device=self.mean.device, dtype=self.mean.dtype)
        return (z - self.mean) / self.std


def fit_class_gaussians(
    z_train: torch.Tensor,
    pred_train: torch.Tensor,
    y_train: torch.Tensor,
    num_classes: int,
    reg_covar: float = 1e-6,
    min_count: int = 3,
) -> ClassGaussians:
    """Fit one full-covariance Gaussian per predicted class on correct training samples.

    Latents are standardized with the training mean and (population, ddof=0) std over all
    training samples; dimensions with zero std are left unscaled (std := 1). For class ``c`` the
    Gaussian is fitted on the samples with ``pred == y == c`` (covariance with ddof=1). Classes
    with fewer than ``min_count`` such samples (default: 2 or fewer) are skipped
    (``valid[c] = False``). Each covariance is regularized as
    ``cov + reg_covar * s * I`` with ``s = trace(cov) / D`` (``s = 1`` when the trace is 0), so a
    collapsed class (identical latents, zero covariance) still has a finite precision. The
    precision is obtained from a Cholesky factorization, with a pseudo-inverse fallback.
    """
    z = z_train.detach().to(torch.float64).reshape(z_train.shape[0], -1)
    pred = pred_train.detach().to(z.device).long().reshape(-1)
    y = y_train.detach().to(z.device).long().reshape(-1)
    n, d = z.shape
    mean = z.mean(0)
    std = z.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    zs = (z - mean) / std

    correct = pred == y
    means = torch.zeros(num_classes, d, dtype=torch.float64, device=z.device)
    covs = torch.eye(d, dtype=torch.float64, device=z.device).repeat(num_classes, 1, 1)
    counts = torch.bincount(pred[correct], minlength=num_classes)[:num_classes]
    valid = counts >= min_count
    eye = torch.eye(d, dtype=torch.float64, device=z.device)
    for c in torch.nonzero(valid).flatten().tolist():
        zc = zs[correct & (pred == c)]
        mu = zc.mean(0)
        xc = zc - zc[0]  # shifted by a sample: identical latents give exactly 0 (mu has rounding error)
        xc = xc - xc.mean(0)
        cov = xc.T @ xc / (zc.shape[0] - 1)
        tr = torch.trace(cov).item()
        scale = tr / d if tr > 0 else 1.0
        means[c] = mu
        covs[c] = cov + reg_covar * scale * eye

    precisions = torch.zeros_like(covs)
    if bool(valid.any()):
        cv = covs[valid]
        chol, info = torch.linalg.cholesky_ex(cv)
        prec = torch.cholesky_inverse(chol)
        bad = info != 0
        if bool(bad.any()):
            prec[bad] = torch.linalg.pinv(cv[bad], hermitian=True)
        precisions[valid] = prec
    return ClassGaussians(
        mean=mean,
        std=std,
        means=means,
        covariances=covs,
        precisions=precisions,
        valid=valid,
        counts=counts,
        n_skipped=int((~valid).sum().item()),
    )


def mahalanobis_distance(gauss: ClassGaussians, z: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Mahalanobis distance of each sample to the Gaussian of its *predicted* class.

    Grouped by predicted class: one `[n_c, D] @ [D, D]` product per class present, so no `D x D`
    precision matrix is copied per sample (that costs O(N D^2) memory traffic). Returns float64
    `[N]` on the device of ``gauss``. Samples whose predicted class was skipped get ``+inf``
    (ranked least confident).
    """
    zs = gauss.standardize(z.detach().reshape(z.shape[0], -1))
    pred = pred.detach().to(zs.device).long().reshape(-1)
    out = torch.empty(zs.shape[0], dtype=torch.float64, device=zs.device)
    order = torch.argsort(pred)
    counts = torch.bincount(pred, minlength=gauss.means.shape[0]).tolist()
    for c, idx in enumerate(order.split(counts)):
        if len(idx):
            diff = zs[idx] - gauss.means[c]
            out[idx] = ((diff @ gauss.precisions[c]) * diff).sum(1).clamp_min(0).sqrt()
    out[~gauss.valid[pred]] = math.inf
    return out


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of ``x`` (ascending) with ties given their average rank."""
    sorted_x, order = torch.sort(x, stable=True)
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    avg = ends - (counts.to(torch.float64) - 1) / 2  # mean of ranks start..end
    ranks = torch.empty_like(avg[inverse])
    ranks[order] = avg[inverse]
    return ranks


def misclassification_scores(score: torch.Tensor, correct: torch.Tensor) -> dict:
    """Detection of misclassifications from an uncertainty ``score`` (larger = less confident).

    ``correct`` (bool) is the positive class; the confidence is ``-score``. Returns floats:

    - ``auroc``: exact ROC AUC, ties counted 1/2 (equals
      ``sklearn.metrics.roc_auc_score(correct, -score)``).
    - ``aurc``: area under the risk-coverage curve: samples sorted by confidence, risk at
      coverage k/N = error rate among the k most confident, averaged over k = 1..N. Tied scores
      are handled by the expectation over random tie-breaking (errors spread uniformly inside a
      tied block), so the value does not depend on the input order.
    - ``fpr_at_95_tpr``: fraction of misclassified samples accepted at the largest confidence
      threshold that accepts at least 95% of the correct samples (as read from
      ``sklearn.metrics.roc_curve`` at the first TPR >= 0.95).
    - ``error_rate``, ``n``.

    If all samples are correct or all are wrong, ``auroc`` and ``fpr_at_95_tpr`` are undefined
    and returned as ``nan`` (no exception); ``aurc`` is still defined (0 or 1). ``+inf`` scores
    are allowed (ranked least confident); NaN scores are not.
    """
    s = score.detach().reshape(-1).to(torch.float64)
    c = correct.detach().reshape(-1).to(s.device).bool()
    n = s.numel()
    if n == 0:
        nan = float("nan")
        return {"auroc": nan, "aurc": nan, "fpr_at_95_tpr": nan, "error_rate": nan, "n": 0}
    if torch.isnan(s).any():
        raise ValueError("score contains NaN")
    n_pos = int(c.sum().item())
    n_neg = n - n_pos

    # AUROC (Mann-Whitney U with average ranks of the confidence -s)
    if n_pos == 0 or n_neg == 0:
        auroc = float("nan")
        fpr95 = float("nan")
    else:
        ranks = _average_ranks(-s)
        u = ranks[c].sum() - n_pos * (n_pos + 1) / 2
        auroc = float(u / (n_pos * n_neg))
        # FPR at 95% TPR
        conf = -s
        pos_sorted = torch.sort(conf[c], descending=True).values
        k = max(1, math.ceil(0.95 * n_pos - 1e-9))
        thr = pos_sorted[k - 1]
        fpr95 = float((conf[~c] >= thr).sum().item() / n_neg)

    # AURC with expected tie handling
    err = (~c).to(torch.float64)
    sorted_s, order = torch.sort(s, stable=True)
    err_sorted = err[order]
    _, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
    group_err = torch.zeros(counts.numel(), dtype=torch.float64, device=s.device)
    group_err.index_add_(0, inverse, err_sorted)
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    cum_before = torch.cumsum(group_err, 0) - group_err
    pos = torch.arange(1, n + 1, device=s.device, dtype=torch.float64)  # coverage count k
    within = pos - starts[inverse].to(torch.float64)  # 1..count inside the block
    exp_err = cum_before[inverse] + within * group_err[inverse] / counts[inverse].to(torch.float64)
    aurc = float((exp_err / pos).mean())

    return {
        "auroc": auroc,
        "aurc": aurc,
        "fpr_at_95_tpr": fpr95,
        "error_rate": n_neg / n,
        "n": n,
    }


def max_softmax_score(logits: torch.Tensor) -> torch.Tensor:
    """Maximum-softmax-probability baseline as an uncertainty: ``1 - max_k softmax(logits)_k``."""
    return 1.0 - torch.softmax(logits.detach().to(torch.float64), dim=-1).max(dim=-1).values


def quantile_sum_auroc(score_correct, score_wrong, n_thresholds: int = 101) -> float:
    """The reference setup's ROC estimate (docs/method.md §7.5): with `t_i` the `i/(n-1)` quantile of
    the misclassified samples' scores (numpy's linear interpolation), `i = 0..n-1`,

        sum_i  mean(score_correct < t_i) / (n - 1)

    a left-and-right Riemann sum over `n` points of an integral over [0, 1] of width `1/(n-1)` each,
    so it can reach `n / (n - 1)` (1.01 for 101 thresholds) when every correct score lies below every
    misclassified one. For large samples it approaches the exact AUROC plus
    `(F(t_0) + F(t_{n-1})) / (2 (n - 1))`, `F(t) = mean(score_correct < t)`: about 0.005 above it when
    the two score distributions overlap. Scores are uncertainties (lower = more confident). NaN when
    either group is empty.
    """
    sc = np.asarray(score_correct, dtype=np.float64).reshape(-1)
    sw = np.asarray(score_wrong, dtype=np.float64).reshape(-1)
    if n_thresholds < 2:
        raise ValueError(f"n_thresholds must be at least 2, got {n_thresholds}")
    if sc.size == 0 or sw.size == 0:
        return float("nan")
    thresholds = np.quantile(sw, np.linspace(0.0, 1.0, n_thresholds))
    below = (sc[None, :] < thresholds[:, None]).mean(1)
    return float(below.sum() / (n_thresholds - 1))


def reference_mahalanobis_auroc(
    z_train, pred_train, y_train, z_test, pred_test, y_test, reg: float = 1e-6, min_count: int = 3
) -> float:
    """The Mahalanobis misclassification-detection AUROC as the reference setup estimated it
    (docs/method.md §7.5), beside the exact one of `fit_class_gaussians` + `misclassification_scores`:

    1. standardize the latents with the mean and population std (ddof 0) of all training latents
       (a dimension with zero std is left unscaled);
    2. for each class `c` of the training labels with at least `min_count` (default: more than 2)
       training samples predicted *and* labelled `c`: the mean and covariance of those samples,
       with ddof 0 and an *absolute* `reg` added to the diagonal (a one-component Gaussian mixture
       fitted by maximum likelihood); classes with fewer get no Gaussian and their test samples drop out;
    3. the test samples predicted `c` are split into correctly classified and misclassified ones;
       each group is kept only if it has at least `min_count` samples (so a class with 2 or fewer
       misclassified test samples contributes its correct ones but none of its errors, and vice versa);
    4. the score of a kept sample is its Mahalanobis distance to the Gaussian of its predicted class;
    5. `quantile_sum_auroc(scores of the kept correct samples, scores of the kept misclassified ones)`.

    Arrays (numpy or torch) in, a float out; NaN when no misclassified (or no correct) test sample is
    kept. The dropped samples and the quantile sum make it differ from the exact AUROC: it can exceed 1.
    """
    zt, pt, yt = (_np(a) for a in (z_train, pred_train, y_train))
    zs, ps, ys = (_np(a) for a in (z_test, pred_test, y_test))
    zt, zs = zt.reshape(len(zt), -1).astype(np.float64), zs.reshape(len(zs), -1).astype(np.float64)
    mean, std = zt.mean(0), zt.std(0)
    std = np.where(std > 0, std, 1.0)
    zt, zs = (zt - mean) / std, (zs - mean) / std
    correct_test = ps == ys
    kept = {True: [], False: []}
    for c in np.unique(yt):
        fit = zt[(pt == c) & (yt == c)]
        if len(fit) < min_count:
            continue
        mu = fit.mean(0)
        cov = np.atleast_2d(np.cov(fit, rowvar=False, ddof=0)) + reg * np.eye(zt.shape[1])
        prec = np.linalg.inv(cov)
        for ok in (True, False):
            group = zs[(ps == c) & (correct_test == ok)]
            if len(group) >= min_count:
                diff = group - mu
                kept[ok].append(np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, prec, diff), 0.0)))
    scores = {ok: np.concatenate(v) if v else np.empty(0) for ok, v in kept.items()}
    return quantile_sum_auroc(scores[True], scores[False])


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
