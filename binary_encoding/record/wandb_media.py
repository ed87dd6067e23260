"""Pictures of the latents for W&B, every `metrics.hist_every` epochs and at the last: what the paper is
about, visible in the dashboard without downloading anything.

* `hist/<split>/z<j>`: a histogram of each of the first `metrics.hist_dims` latent dimensions (two peaks
  per dimension once the code is binary: the paper's Figure 2);
* `latents/<split>/scatter`: the latents in 2-D, coloured by true class (the first two dimensions of a
  code of up to `SCATTER_DIMS` dimensions, whose corners are codes; the first two principal components
  of a wider latent);
* `latents/<split>/codes`: a table mapping each true class to its most common sign code and its share;
* `latents/<split>/two_valued`: a table of every dimension's two-valuedness (the share of its variance its
  sign explains, `metrics/two_valued.py`), the per-dimension values behind `<split>/two_valued`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..metrics.geometry import class_codes
from ..metrics.two_valued import two_valuedness

SCATTER_DIMS = 8  # up to this width the axes are code bits (readable); wider latents are projected (PCA)
SCATTER_POINTS = 2000  # a seeded sample: enough to see the clusters, rendered in ~0.1 s
CODE_TABLE_DIMS = 64  # wider latents (nopen's backbone features) get no code table: a code per row is unreadable


def scatter_xy(z: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """2-D coordinates of latents `z` [N, D] and the axis names."""
    if z.shape[1] == 1:
        return np.column_stack([z[:, 0], np.zeros(len(z))]), ("z0", "")
    if z.shape[1] <= SCATTER_DIMS:
        return z[:, :2], ("z0", "z1")
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=0).fit_transform(z), ("PC 1", "PC 2")


def latent_scatter(z: np.ndarray, y: np.ndarray, title: str):
    """A `wandb.Image` of the 2-D latents coloured by class (at most `SCATTER_POINTS`, seeded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import wandb

    if len(z) > SCATTER_POINTS:
        keep = np.random.default_rng(0).choice(len(z), SCATTER_POINTS, replace=False)
        z, y = z[keep], y[keep]
    xy, (xlabel, ylabel) = scatter_xy(z.astype(np.float64))
    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap="tab10" if y.max() < 10 else "turbo", s=6, alpha=0.7)
    if y.max() < 10:
        ax.legend(*points.legend_elements(), title="class", fontsize=7, title_fontsize=7, loc="best")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    image = wandb.Image(fig)
    plt.close(fig)
    return image


def code_table(z: torch.Tensor, y: torch.Tensor):
    """A `wandb.Table`: class, its most common sign code, that code's share of the class, class size."""
    import wandb

    rows = class_codes(z, y)
    return wandb.Table(
        columns=["class", "code", "share", "samples"],
        data=[[r["class"], r["code"], round(r["share"], 4), r["samples"]] for r in rows],
    )


def latent_media(split: str, z: torch.Tensor, y: torch.Tensor, hist_dims: int, epoch: int) -> dict:
    """Everything above for one split, keyed as logged."""
    import wandb

    zn, yn = z.detach().float().cpu().numpy(), y.cpu().numpy()
    out = {f"hist/{split}/z{j}": wandb.Histogram(zn[:, j], num_bins=64) for j in range(min(hist_dims, zn.shape[1]))}
    out[f"latents/{split}/scatter"] = latent_scatter(zn, yn, f"{split} latents, epoch {epoch}")
    if zn.shape[1] <= CODE_TABLE_DIMS:
        out[f"latents/{split}/codes"] = code_table(z, y)
        per_dim = two_valuedness(z)["per_dim"].tolist()
        out[f"latents/{split}/two_valued"] = wandb.Table(
            columns=["dimension", "sign R²"], data=[[j, round(v, 6)] for j, v in enumerate(per_dim)]
        )
    return out
