"""Geometry of the latent space: binarity, encoding agreement, neural collapse.

Pure functions on torch tensors (any device, any float dtype). Everything is computed in float64 and
returned as Python floats (or small float64 tensors for per-dimension values). The formulas are
those of docs/method.md §6.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------------
# Binarity: a 2-component Gaussian mixture per latent dimension
# --------------------------------------------------------------------------------------------------


def _standardize(z: Tensor) -> Tensor:
    """Standardised columns of z [N, D], returned transposed as rows [D, N] (float64, contiguous).

    (x - mean) / std with ddof 0, like sklearn's StandardScaler; a constant column becomes zeros.
    """
    x = z.detach().reshape(z.shape[0], -1).T.to(torch.float64).contiguous()
    x = x - x.mean(1, keepdim=True)
    std = x.pow(2).mean(1, keepdim=True).sqrt()
    return torch.where(std > 0, x / torch.where(std > 0, std, 1.0), 0.0)


def _two_means(x: Tensor) -> Tensor:
    """Exact 2-means of every row of x [D, N] (the global optimum of k-means in 1-d).

    The optimal 2-means partition of a line is a threshold on the sorted values: the split after
    the k smallest values maximises S_k^2/k + (S - S_k)^2/(N - k) (S_k = prefix sum). Samples are
    then assigned to the nearer centre, the fixed point Lloyd's algorithm (sklearn's KMeans) reaches.
    Returns the membership of the upper cluster, float64 [D, N].
    """
    n = x.shape[1]
    prefix = torch.cumsum(torch.sort(x, dim=1).values, 1)
    total, prefix = prefix[:, -1:], prefix[:, :-1]  # S and S_k for k = 1..N-1
    k = torch.arange(1, n, device=x.device, dtype=x.dtype)
    best = (prefix.pow(2) / k + (total - prefix).pow(2) / (n - k)).argmax(1, keepdim=True)
    kb = (best + 1).to(x.dtype)
    s_low = prefix.gather(1, best)
    return _nearer_upper(x, s_low / kb, (total - s_low) / (n - kb))


def _nearer_upper(x: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """1.0 where x is strictly nearer to centre `high` than to `low` (centres [D, 1])."""
    return ((x - high).abs() < (x - low).abs()).to(x.dtype)


def _lloyd(x: Tensor, centres: Tensor, n_iter: int = 100) -> Tensor:
    """Lloyd's 2-means on every row of x [D, N] from centres [D, 2]; returns upper membership [D, N]."""
    for _ in range(n_iter):
        up = _nearer_upper(x, centres[:, :1], centres[:, 1:])
        n_up = up.sum(1)
        n_low = x.shape[1] - n_up
        low, high = ((1 - up) * x).sum(1) / n_low.clamp_min(1), (up * x).sum(1) / n_up.clamp_min(1)
        new = torch.stack([low, high], 1)
        new = torch.where(torch.stack([n_low, n_up], 1) > 0, new, centres)
        if torch.equal(new, centres):
            break
        centres = new
    return _nearer_upper(x, centres[:, :1], centres[:, 1:])


def _m_step(x: Tensor, r1: Tensor, reg_covar: float) -> Tensor:
    """sklearn's M-step for two 1-d components, r1 = responsibility of component 1, [D, N].

    n_k = sum_i r_ik + 10 eps, mu_k = sum_i r_ik x_i / n_k,
    var_k = sum_i r_ik (x_i - mu_k)^2 / n_k + reg_covar, w_k = n_k / (n_0 + n_1).
    Returns params [D, 6] = (w_0, w_1, mu_0, mu_1, var_0, var_1).
    """
    out = []
    for r in (1 - r1, r1):
        nk = r.sum(1) + 10 * torch.finfo(x.dtype).eps
        mu = (r * x).sum(1) / nk
        out.append((nk, mu, (x - mu.unsqueeze(1)).square_().mul_(r).sum(1) / nk + reg_covar))
    (n0, mu0, v0), (n1, mu1, v1) = out
    return torch.stack([n0 / (n0 + n1), n1 / (n0 + n1), mu0, mu1, v0, v1], 1)


def _e_step(x: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """log p(x_i) = log sum_k w_k N(x_i | mu_k, var_k) [D, N] and the responsibility of component 1."""
    w0, w1, mu0, mu1, v0, v1 = (c.unsqueeze(1) for c in p.unbind(1))
    # in-place ops: allocation dominates the cost of these large elementwise passes on CPU
    a = (x - mu0).square_().mul_(-0.5 / v0).add_(w0.log() - 0.5 * (_LOG_2PI + v0.log()))
    b = (x - mu1).square_().mul_(-0.5 / v1).add_(w1.log() - 0.5 * (_LOG_2PI + v1.log()))
    log_p = torch.sub(a, b).abs_().neg_().exp_().log1p_().add_(torch.maximum(a, b))
    return log_p, b.sub_(log_p).exp_()


def _em(x: Tensor, r1: Tensor, n_iter: int, tol: float, reg_covar: float) -> tuple[Tensor, Tensor]:
    """EM for a 2-component 1-d GMM on every row of x [D, N] at once, iterating exactly as sklearn.

    A row stops once its change in mean log-likelihood (the lower bound, computed by the E-step
    before the M-step) is below tol; converged rows are frozen and dropped from the work set.
    Returns (params [D, 6], lower bound [D]).
    """
    params = _m_step(x, r1, reg_covar)
    lower = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    idx, xa = torch.arange(x.shape[0], device=x.device), x
    for _ in range(n_iter):
        log_p, r1 = _e_step(xa, params[idx])
        new_lower = log_p.mean(1)
        params[idx] = _m_step(xa, r1, reg_covar)
        active = (new_lower - lower[idx]).abs() >= tol
        lower[idx] = new_lower
        if not active.any():
            break
        if not active.all():
            idx, xa = idx[active], xa[active]
    return params, lower


_CHUNK_ELEMENTS = 2**24  # bounds the [D, N] float64 temporaries of one EM chunk (~128 MiB each)


def _fit_rows(x: Tensor, n_iter: int, tol: float, reg_covar: float, n_init: int, gen: torch.Generator):
    """Fit every row of standardised x [D, N]; returns score, std, peak_dist, each [D]."""
    params, lower = _em(x, _two_means(x), n_iter, tol, reg_covar)
    d, n = x.shape
    for _ in range(n_init - 1):  # extra inits: Lloyd from two distinct random samples per row
        first = torch.randint(n, (d, 1), generator=gen)
        second = (first + 1 + torch.randint(n - 1, (d, 1), generator=gen)) % n
        centres = x.gather(1, torch.cat([first, second], 1).to(x.device))
        p, lb = _em(x, _lloyd(x, centres), n_iter, tol, reg_covar)
        better = lb > lower
        params, lower = torch.where(better.unsqueeze(1), p, params), torch.where(better, lb, lower)
    score = _e_step(x, params)[0].mean(1)
    std = params[:, 4:].sqrt().mean(1)
    return score, std, (params[:, 2] - params[:, 3]).abs() / std


def gmm_binarity(
    z: Tensor, n_iter: int = 100, tol: float = 1e-3, reg_covar: float = 1e-6, n_init: int = 1, seed: int = 0
) -> dict:
    """Binarity of every latent dimension via a 2-component 1-d Gaussian mixture (docs/method.md §6.1).

    Each column z[:, j] is standardised (zero mean, unit variance, ddof 0; a constant column
    becomes zeros) and fitted with EM, all columns at once, as sklearn's
    ``GaussianMixture(n_components=2, reg_covar=1e-6, tol=1e-3, max_iter=100)`` does with its
    k-means initialisation (here the exact 1-d 2-means; extra inits for n_init > 1 run Lloyd from two
    random samples, seeded, and keep per column the fit with the best lower bound, as sklearn does).

    - score_j = (1/N) sum_i log sum_k w_k N(x_ij | mu_k, var_k)    (= GaussianMixture.score)
    - std_j = (sqrt(var_1) + sqrt(var_2)) / 2
    - peak_j = |mu_1 - mu_2| / std_j

    Returns means over j of score and std, mean and std (ddof 0) over j of peak_dist, and the
    per-dimension float64 tensors. A perfect collapse saturates at score ~5.3, peak_dist ~2000.
    """
    if z.shape[0] < 2:
        raise ValueError("gmm_binarity needs at least 2 samples")
    x = _standardize(z)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    step = max(1, _CHUNK_ELEMENTS // x.shape[1])  # dimensions per chunk
    chunks = range(0, x.shape[0], step)
    parts = [_fit_rows(x[i : i + step], n_iter, tol, reg_covar, n_init, gen) for i in chunks]
    score, std, peak = (torch.cat(p) for p in zip(*parts))
    return {
        "score": score.mean().item(),
        "std": std.mean().item(),
        "peak_dist_mean": peak.mean().item(),
        "peak_dist_std": peak.std(unbiased=False).item() if peak.numel() > 1 else 0.0,
        "score_per_dim": score,
        "std_per_dim": std,
        "peak_dist_per_dim": peak,
    }


# --------------------------------------------------------------------------------------------------
# Encoding agreement
# --------------------------------------------------------------------------------------------------


def encoding_agreement(z: Tensor, pred: Tensor, num_classes: int) -> float:
    """Reference per-dimension agreement: mean over (c, j) of max(q_cj, 1 - q_cj).

    q_cj = fraction of the samples predicted as c with z_j > 0; classes never predicted are skipped.
    """
    bits = (z.detach().reshape(z.shape[0], -1) > 0).to(torch.float64)
    pred = pred.detach().to(device=z.device, dtype=torch.long)
    pos = bits.new_zeros(num_classes, bits.shape[1]).index_add_(0, pred, bits)
    count = bits.new_zeros(num_classes).index_add_(0, pred, torch.ones_like(bits[:, 0]))
    present = count > 0
    q = pos[present] / count[present].unsqueeze(1)
    return torch.maximum(q, 1 - q).mean().item()


def _code_ids(z: Tensor) -> Tensor:
    """Id in [0, n_codes) of every row's sign code (z > 0): int64 bit-packing for D <= 62."""
    bits = z.detach().reshape(z.shape[0], -1) > 0
    if bits.shape[1] <= 62:
        shifts = torch.arange(bits.shape[1], device=bits.device, dtype=torch.long)
        packed = (bits.long() << shifts).sum(1)
        return torch.unique(packed, return_inverse=True)[1]
    return torch.unique(bits, dim=0, return_inverse=True)[1]


def code_agreement(z: Tensor, labels: Tensor, num_classes: int | None = None) -> dict:
    """Joint-code agreement: sum over classes of the count of the class's modal code, divided by N.

    code_i = (z_i > 0) as a bit vector. Also returns n_codes (distinct codes in z),
    top_codes_fraction (fraction of samples covered by the num_classes most common codes;
    num_classes defaults to the number of distinct labels) and unique_class_codes (number of
    distinct modal codes among the classes: equal to the number of classes when every class has
    its own code).
    """
    ids = _code_ids(z)
    labels = torch.unique(labels.detach().to(ids.device), return_inverse=True)[1]
    n, n_codes, n_cls = ids.numel(), int(ids.max()) + 1, int(labels.max()) + 1
    pairs, pair_counts = torch.unique(labels * n_codes + ids, return_counts=True)
    pair_class, pair_code = pairs // n_codes, pairs % n_codes
    # per class: the (first) code with the largest count
    mode_count = torch.zeros(n_cls, dtype=torch.long, device=ids.device)
    mode_count.scatter_reduce_(0, pair_class, pair_counts, reduce="amax")
    is_mode = pair_counts == mode_count[pair_class]
    mode_code = torch.full((n_cls,), n_codes, dtype=torch.long, device=ids.device)
    mode_code.scatter_reduce_(0, pair_class[is_mode], pair_code[is_mode], reduce="amin")
    code_counts = torch.bincount(ids, minlength=n_codes)
    k = n_cls if num_classes is None else num_classes
    top = torch.topk(code_counts, min(k, n_codes)).values.sum()
    return {
        "agreement": mode_count.sum().item() / n,
        "n_codes": n_codes,
        "top_codes_fraction": top.item() / n,
        "unique_class_codes": int(torch.unique(mode_code).numel()),
    }


def class_codes(z: Tensor, labels: Tensor) -> list[dict]:
    """Each class's most common sign code (z > 0) and its share of the class: one dict per class present,
    `{"class", "code" (a '0'/'1' string, dimension 0 first), "share", "samples"}`, in class order.
    Ties go to the code `code_agreement` picks (the smallest code id)."""
    bits = z.detach().reshape(z.shape[0], -1) > 0
    ids = _code_ids(z)
    rows = []
    for c in torch.unique(labels).tolist():
        codes, counts = torch.unique(ids[labels == c], return_counts=True)
        top = int(torch.argmax(counts))  # the first maximum
        first = int(torch.nonzero((labels == c) & (ids == codes[top]))[0, 0])
        n = int(counts.sum())
        code = "".join("1" if b else "0" for b in bits[first].tolist())
        rows.append({"class": int(c), "code": code, "share": counts[top].item() / n, "samples": n})
    return rows


# --------------------------------------------------------------------------------------------------
# Neural collapse (Papyan, Han & Donoho 2020)
# --------------------------------------------------------------------------------------------------


def _nc2(rows: Tensor) -> dict:
    """Equinorm std/mean of ||r_c||, and std / max-angle mean |cos + 1/(C-1)| of pairwise cosines."""
    c = rows.shape[0]
    if c < 2:
        return {"equinorm": None, "equiangular": None, "maxangle": None}
    norms = rows.norm(dim=1)
    equinorm = (norms.std(unbiased=False) / norms.mean()).item() if norms.mean() > 0 else 0.0
    unit = rows / norms.clamp_min(torch.finfo(rows.dtype).tiny).unsqueeze(1)
    i, j = torch.triu_indices(c, c, offset=1, device=rows.device)
    cos = (unit @ unit.T)[i, j]
    return {
        "equinorm": equinorm,
        "equiangular": cos.std(unbiased=False).item(),
        "maxangle": (cos + 1.0 / (c - 1)).abs().mean().item(),
    }


def neural_collapse(
    z: Tensor,
    labels: Tensor,
    pred: Tensor | None = None,
    classifier_weight: Tensor | None = None,
    global_mean: str = "samples",
    min_count: int = 2,
) -> dict:
    """Neural-collapse metrics NC1-NC4 of latents z [N, D] grouped by labels (docs/method.md §6.3).

    Classes are 0..C_all-1 with C_all = max(max label + 1, rows of classifier_weight).
    mu_c = class means (classes with >= 1 sample: "present"), mu_G = mean over all samples
    ("samples", the reference) or mean of the present class means ("class_means", Papyan).

    - NC1 = trace(Sigma_W pinv(Sigma_B)) / C over the C classes with >= min_count samples (the
      others are counted in skipped_classes), Sigma_W = (1/C) sum_c cov_c (ddof 1, like np.cov),
      Sigma_B = (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)^T; pinv with rtol = D * eps (hermitian), so
      NC1 is 0 (not NaN) when Sigma_B = 0, e.g. when everything collapsed onto a single point.
      sigma_w = mean of all entries of Sigma_W; trace_sigma_w, trace_sigma_b are also returned.
    - NC2 on the centred means of the present classes: equinorm = std/mean of ||mu_c - mu_G||,
      equiangular = std of pairwise cosines, maxangle = mean |cos + 1/(C-1)| (all ddof 0); the same
      on the rows of classifier_weight [C_all, D] as w_equinorm, w_equiangular, w_maxangle.
    - NC3 = || V^T/||V||_F - M/||M||_F ||_F^2, M = [D, C] centred means of the present classes,
      V = the matching rows of classifier_weight (None without weight).
    - NC4 = fraction of samples whose nearest class mean (Euclidean) differs from pred (None without).
    """
    z = z.detach().reshape(z.shape[0], -1).to(torch.float64)
    labels = labels.detach().to(device=z.device, dtype=torch.long)
    n, d = z.shape
    c_all = int(labels.max()) + 1
    if classifier_weight is not None:
        if classifier_weight.shape[0] < c_all:
            raise ValueError("labels exceed the number of classifier_weight rows")
        c_all = classifier_weight.shape[0]

    count = z.new_zeros(c_all).index_add_(0, labels, z.new_ones(n))
    means = z.new_zeros(c_all, d).index_add_(0, labels, z) / count.clamp_min(1).unsqueeze(1)
    present = count > 0
    if global_mean == "samples":
        mu_g = z.mean(0)
    elif global_mean == "class_means":
        mu_g = means[present].mean(0)
    else:
        raise ValueError(f"global_mean must be 'samples' or 'class_means', got {global_mean!r}")
    centred = means - mu_g

    # NC1: one weighted matmul gives sum_c cov_c / C over the kept classes.
    keep = count >= min_count
    n_keep = int(keep.sum())
    out: dict = {"skipped_classes": c_all - n_keep, "num_classes": n_keep}
    if n_keep > 0:
        weight = torch.where(keep, 1.0 / (count - 1).clamp_min(1), 0.0) / n_keep
        resid = z - means[labels]
        sigma_w = (resid * weight[labels].unsqueeze(1)).T @ resid
        mk = centred[keep]
        sigma_b = mk.T @ mk / n_keep
        pinv_b = torch.linalg.pinv(sigma_b, rtol=d * torch.finfo(z.dtype).eps, hermitian=True)
        out.update(
            nc1=(torch.trace(sigma_w @ pinv_b) / n_keep).item(),
            sigma_w=sigma_w.mean().item(),
            trace_sigma_w=torch.trace(sigma_w).item(),
            trace_sigma_b=torch.trace(sigma_b).item(),
        )
    else:
        out.update(nc1=None, sigma_w=None, trace_sigma_w=None, trace_sigma_b=None)

    out.update(_nc2(centred[present]))
    if classifier_weight is None:
        out.update(w_equinorm=None, w_equiangular=None, w_maxangle=None, nc3=None)
    else:
        w = classifier_weight.detach().reshape(classifier_weight.shape[0], -1).to(z)
        out.update({f"w_{k}": v for k, v in _nc2(w).items()})
        m, v = centred[present].T, w[present].T
        tiny = torch.finfo(z.dtype).tiny
        out["nc3"] = (v / v.norm().clamp_min(tiny) - m / m.norm().clamp_min(tiny)).pow(2).sum().item()

    if pred is None:
        out["nc4"] = None
    else:
        classes = torch.nonzero(present).squeeze(1)
        nearest = classes[torch.cdist(z, means[present]).argmin(1)]
        out["nc4"] = (nearest != pred.detach().to(device=z.device, dtype=torch.long)).double().mean().item()
    return out
