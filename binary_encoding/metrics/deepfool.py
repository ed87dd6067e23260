"""L2 DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016), as defined in docs/method.md §8.

Input space as given (e.g. normalized images), no clipping. Candidate classes are the top-k
logits of the clean input, fixed per image at the start; the original label is the top-1.
At each iteration, for the current point ``x_adv = x + (1 + overshoot) * r_tot``::

    f'_k = f_k - f_orig,  w_k = grad f_k - grad f_orig          (k in candidates \\ {orig})
    l    = argmin_k |f'_k| / ||w_k||
    r_i  = (|f'_l| + 1e-4) / ||w_l||^2 * w_l,   r_tot += r_i

until ``argmax f(x_adv) != orig`` (over all classes) or ``max_iter`` updates were made.
Returned ``r`` is the final perturbation ``(1 + overshoot) * r_tot``.

Gradients use ``torch.autograd.grad`` w.r.t. the input only, so parameter ``.grad`` fields are
never touched. The model is put in eval mode and its mode is restored afterwards. A zero
gradient difference (||w|| = 0, e.g. dead ReLUs) is guarded by a 1e-12 floor on the norm: that
step is then (almost) zero instead of NaN.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LogitsOnly", "deepfool", "robustness_rho"]

_EPS_NORM = 1e-12


class LogitsOnly(nn.Module):
    """The logits of a model that returns `(logits, z)` (as the project's module does), for attacks
    that take a logits-only model, e.g. `deepfool` without the latent shortcut."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.train(model.training)  # the wrapper's mode is the model's: an attack restores it onto both

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def _candidates(logits: torch.Tensor, num_candidates: int | None) -> torch.Tensor:
    num_classes = logits.shape[-1]
    k = num_classes if num_candidates is None else min(int(num_candidates), num_classes)
    if k < 2:
        raise ValueError("DeepFool needs at least 2 candidate classes")
    return torch.topk(logits, k, dim=-1, sorted=True).indices  # [N, K], column 0 = orig


def _flat_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def _forward(model, x, latent_weight):
    """`(logits, z)`: with `latent_weight` the model returns both, else only logits (z is None)."""
    out = model(x)
    return out if latent_weight is not None else (out, None)


def _candidate_gradients(fdiff, z, xa, keep, latent_weight, o, oth):
    """`w_k = grad (f_k - f_orig)` for every candidate k: [m, K-1, ...].

    Direct: one backward pass per candidate. Through the latent (when logits = z @ W.T + b and
    d < K-1): one backward pass per latent coordinate, then w_k = sum_j (W_kj - W_oj) grad z_j,
    the same vectors with d instead of K-1 passes (binenc, d=4, top-10: 4 instead of 9)."""
    nk = fdiff.shape[1]
    if latent_weight is None or z.shape[1] >= nk:
        grads = [torch.autograd.grad(fdiff[:, k].sum(), xa, retain_graph=k < nk - 1)[0][keep] for k in range(nk)]
        return torch.stack(grads, dim=1)
    d = z.shape[1]
    gz = [torch.autograd.grad(z[:, j].sum(), xa, retain_graph=j < d - 1)[0][keep] for j in range(d)]
    g = torch.stack(gz, dim=1)  # [m, d, ...]
    w = latent_weight.to(g.dtype)
    dw = w[oth] - w[o][:, None]  # [m, K-1, d]
    return (dw @ g.flatten(2)).reshape(g.shape[0], nk, *g.shape[2:])


def _deepfool_batch(model, x, num_candidates, overshoot, max_iter, latent_weight=None):
    n = x.shape[0]
    view = (-1,) + (1,) * (x.dim() - 1)
    with torch.no_grad():
        cand = _candidates(_forward(model, x, latent_weight)[0], num_candidates)
    orig = cand[:, 0]
    others = cand[:, 1:]  # [N, K-1]
    r_tot = torch.zeros_like(x)
    n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
    fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
    adv_pred = orig.clone()
    active = torch.arange(n, device=x.device)
    while active.numel() > 0:
        xa = (x[active] + (1 + overshoot) * r_tot[active]).requires_grad_(True)
        logits, z = _forward(model, xa, latent_weight)
        pred = logits.argmax(dim=1)
        adv_pred[active] = pred.detach()
        is_fooled = pred != orig[active]
        fooled[active] = is_fooled
        keep = ~is_fooled & (n_iter[active] < max_iter)
        if not bool(keep.any()):
            break
        idx = active[keep]
        lg = logits[keep]
        o = orig[idx]
        f_orig = lg.gather(1, o[:, None])  # [m, 1]
        oth = others[idx]  # [m, K-1]
        fdiff = lg.gather(1, oth) - f_orig  # [m, K-1]
        w = _candidate_gradients(fdiff, z, xa, keep, latent_weight, o, oth)  # [m, K-1, ...]
        fd = fdiff.detach().abs()
        wn = w.flatten(2).norm(dim=2).clamp_min(_EPS_NORM)  # [m, K-1]
        l = (fd / wn).argmin(dim=1)
        ar = torch.arange(idx.numel(), device=x.device)
        w_l = w[ar, l]
        coef = (fd[ar, l] + 1e-4) / wn[ar, l] ** 2
        r_tot[idx] += coef.view(view).to(x.dtype) * w_l
        n_iter[idx] += 1
        active = idx
    return {
        "r": (1 + overshoot) * r_tot,
        "n_iter": n_iter,
        "fooled": fooled,
        "orig_pred": orig,
        "adv_pred": adv_pred,
    }


def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    num_candidates: int | None = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    batch_size: int | None = None,
    latent_weight: torch.Tensor | None = None,
) -> dict:
    """Batched L2 DeepFool on ``x`` ([N, ...], on the model's device).

    ``latent_weight`` ([C, d]): set it when ``model(x)`` returns ``(logits, z)`` with
    ``logits = z @ latent_weight.T + b`` (every head of this package); the candidate gradients are
    then built from the d latent gradients, which saves passes whenever d < K-1.

    All images of a batch are attacked at once; each iteration does one forward pass over the
    still-active images and one backward pass per non-original candidate class (gradient of the
    batch sum of ``f_k - f_orig``; valid because samples do not interact in eval mode). Images
    stop as soon as they are fooled or reach ``max_iter`` updates. ``num_candidates=None`` uses
    all classes. ``batch_size`` splits ``x`` into chunks to bound memory.

    Returns a dict of tensors on ``x.device``: ``r`` [N, ...] final perturbation,
    ``n_iter`` [N] number of updates, ``fooled`` [N] bool, ``orig_pred`` [N] clean prediction,
    ``adv_pred`` [N] prediction at ``x + r``.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach()
            bs = x.shape[0] if batch_size is None else int(batch_size)
            parts = [
                _deepfool_batch(model, x[s : s + bs], num_candidates, overshoot, max_iter, latent_weight)
                for s in range(0, x.shape[0], max(1, bs))
            ]
    finally:
        model.train(was_training)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def robustness_rho(r: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """``rho = mean over images of ||r||_2 / ||x||_2`` (per image, flattened).

    ``mask`` (bool [N]) restricts the mean to a subset (e.g. fooled images); nan if empty.
    """
    ratio = _flat_norm(r.detach().double()) / _flat_norm(x.detach().double().to(r.device))
    if mask is not None:
        ratio = ratio[mask.to(ratio.device).bool()]
    if ratio.numel() == 0:
        return float("nan")
    return float(ratio.mean())
