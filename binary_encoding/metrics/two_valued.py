"""Two-valuedness of the latents: how much of each dimension's variance its sign explains (docs/method.md §6.4).

A sign code says only on which side of zero a sample sits; the paper's picture is stronger, two values per
dimension (the vertices of a hypercube). A dimension whose classes sit at their own magnitudes on each side
of zero (+1, +2, +3 and -1.5, -2.5) is a clean sign code with five modes. The share of the variance that the
two sign groups explain tells the two apart: 1 for exactly two values, lower the more the values spread
inside each side.
"""

from __future__ import annotations

import torch
from torch import Tensor


def two_valuedness(z: Tensor) -> dict:
    """Per dimension j, the R^2 of z_j regressed on its two sign groups (z_j > 0 and z_j <= 0):

        R^2_j = 1 - sum_i (z_ij - m_j(g_ij))^2 / sum_i (z_ij - mean_j)^2

    with m_j(g) the mean of group g of dimension j (between-group over total sum of squares). 1.0 when each
    side holds a single value; a dimension with one value only, or all samples on one side, scores 0.
    Float64. Returns the mean and the minimum over the dimensions (floats) and the values per dimension
    (a float64 tensor [D])."""
    if z.shape[0] < 1:
        raise ValueError("two_valuedness needs at least 1 sample")
    x = z.detach().reshape(z.shape[0], -1).to(torch.float64)
    pos = x > 0
    n_pos = pos.sum(0).to(x.dtype)
    n_neg = x.shape[0] - n_pos
    sum_pos = torch.where(pos, x, 0.0).sum(0)
    mean_pos = sum_pos / n_pos.clamp_min(1)
    mean_neg = (x.sum(0) - sum_pos) / n_neg.clamp_min(1)
    # the within-group sum of squares is 0 exactly for two values (no cancellation against the total)
    within = (x - torch.where(pos, mean_pos, mean_neg)).square().sum(0)
    total = (x - x.mean(0)).square().sum(0)
    r2 = torch.where(total > 0, 1 - within / torch.where(total > 0, total, 1.0), 0.0).clamp(0.0, 1.0)
    return {"mean": r2.mean().item(), "min": r2.min().item(), "per_dim": r2}
