"""Callbacks that schedule the metrics of `binary_encoding.metrics` (pure functions) during a run.

* `LatentMetrics`: every `every` epochs, on the clean training split and the validation split:
  Gaussian-mixture binarity, encoding agreement (per dimension and joint code), number of codes,
  neural collapse (NC1-NC4, sigma_w), clean accuracy, and per-dimension latent histograms (W&B).
* `EndOfFitMetrics`: once after training: accuracies of every split, the latent metrics of the
  training split, and on the test split: Mahalanobis misclassification-detection
  AUROC (per-class Gaussians on correctly classified training latents), the max-softmax baseline,
  AURC and FPR at 95% TPR; DeepFool robustness rho on a seeded sample of test images; optionally
  the final latents of every split in `latents.npz`.

Under DDP every rank gathers whole splits (see `latents.py`), so every value equals the
single-process value; DeepFool images are split across ranks and their norms gathered.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .latents import Latents, collect_latents, gather_strided, rank_world, release_latents
from .metrics.deepfool import deepfool
from .metrics.geometry import code_agreement, encoding_agreement, gmm_binarity, neural_collapse
from .metrics.reliability import fit_class_gaussians, mahalanobis_distance, max_softmax_score, misclassification_scores


def geometry_metrics(lat: Latents, num_classes: int, classifier_weight: torch.Tensor | None,
                     nc_labels: str = "labels", global_mean: str = "samples") -> dict[str, float]:
    """Every per-epoch latent metric of one split, as a flat dict of floats."""
    pred = lat.pred
    gmm = gmm_binarity(lat.z)
    codes = code_agreement(lat.z, pred, num_classes)
    nc = neural_collapse(lat.z, lat.y if nc_labels == "labels" else pred, pred, classifier_weight,
                         global_mean=global_mean)
    out = {"acc": lat.acc,
           "binarity_score": gmm["score"], "binarity_std": gmm["std"],
           "peak_dist_mean": gmm["peak_dist_mean"], "peak_dist_std": gmm["peak_dist_std"],
           "agreement_dim": encoding_agreement(lat.z, pred, num_classes),
           "agreement_code": codes["agreement"], "n_codes": codes["n_codes"],
           "top_codes_fraction": codes["top_codes_fraction"]}
    for k in ("nc1", "sigma_w", "equinorm", "equiangular", "maxangle", "w_equinorm", "w_equiangular",
              "w_maxangle", "nc3", "nc4", "skipped_classes"):
        if nc.get(k) is not None:
            out[k] = float(nc[k])
    return out


class LatentMetrics(L.Callback):
    def __init__(self, every: int = 1, splits=("train", "val"), nc_labels: str = "labels",
                 global_mean: str = "samples", hist_dims: int = 8, hist_every: int = 10):
        if every < 0:
            raise ValueError(f"metrics_every must be >= 0 (0 = never), got {every}")
        if nc_labels not in ("labels", "pred"):
            raise ValueError(f"metrics.nc_labels must be 'labels' or 'pred', got {nc_labels!r}")
        self.every, self.splits, self.nc_labels, self.global_mean = every, tuple(splits), nc_labels, global_mean
        self.hist_dims, self.hist_every = hist_dims, hist_every
        self.last: dict[str, float] = {}

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch
        last_epoch = epoch + 1 == trainer.max_epochs
        if self.every == 0 or trainer.sanity_checking or not ((epoch + 1) % self.every == 0 or last_epoch):
            return
        start = time.perf_counter()
        dm, weight = trainer.datamodule, pl_module.head.classifier.weight.detach().float()
        for split in self.splits:
            lat = collect_latents(pl_module, dm, split, keep=last_epoch)  # the last ones serve EndOfFitMetrics too
            values = geometry_metrics(lat, dm.num_classes, weight, self.nc_labels, self.global_mean)
            if split != "train":
                values.pop("acc")  # the module already logs {split}/acc on the same clean data
            self.last.update({f"{split}/{k}": v for k, v in values.items()})
            if self.hist_dims and (epoch % self.hist_every == 0 or last_epoch):
                self._histograms(trainer, split, lat.z)
        self.last["time/latent_metrics_s"] = time.perf_counter() - start
        # identical on every rank (whole splits are gathered), so no further reduction is needed
        pl_module.log_dict({k: float(v) for k, v in self.last.items()}, sync_dist=False)

    def _histograms(self, trainer, split: str, z: torch.Tensor) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger) and trainer.is_global_zero:
                import wandb

                data = {f"hist/{split}/z{j}": wandb.Histogram(z[:, j].cpu().numpy(), num_bins=64)
                        for j in range(min(self.hist_dims, z.shape[1]))}
                lg.experiment.log({**data, "trainer/global_step": trainer.global_step})


class EndOfFitMetrics(L.Callback):
    def __init__(self, deepfool_samples: int = 1000, deepfool_candidates: int | None = 10,
                 deepfool_overshoot: float = 0.02, deepfool_max_iter: int = 50, deepfool_batch: int = 256,
                 mahalanobis_reg: float = 1e-6, seed: int = 0, save_latents: bool = False,
                 out_dir: str | Path | None = None, nc_labels: str = "labels"):
        self.deepfool_samples, self.deepfool_candidates = deepfool_samples, deepfool_candidates
        self.overshoot, self.max_iter, self.deepfool_batch = deepfool_overshoot, deepfool_max_iter, deepfool_batch
        self.reg, self.seed, self.save_latents, self.out_dir = mahalanobis_reg, seed, save_latents, out_dir
        self.nc_labels = nc_labels
        self.results: dict[str, float] = {}

    def on_fit_end(self, trainer, pl_module):
        if trainer.interrupted or trainer.state.status.value == "interrupted":
            release_latents(pl_module)
            return
        dm = trainer.datamodule
        # train and val: those of the last epoch's metric pass when the weights have not changed since
        lats = {s: collect_latents(pl_module, dm, s) for s in ("train", "val", "test")}
        release_latents(pl_module)
        self.results.update({f"{s}_acc": lat.acc for s, lat in lats.items()})
        weight = pl_module.head.classifier.weight.detach().float()
        self.results.update(geometry_metrics(lats["train"], dm.num_classes, weight, self.nc_labels))
        del self.results["acc"]
        self.results.update(reliability_metrics(lats["train"], lats["test"], dm.num_classes, self.reg))
        if self.deepfool_samples:
            self.results.update(self.robustness(pl_module, dm))
        if self.save_latents and trainer.is_global_zero and self.out_dir is not None:
            arrays = {}
            for s, lat in lats.items():
                arrays.update({f"{s}_z": lat.z.cpu().numpy(), f"{s}_y": lat.y.cpu().numpy(),
                               f"{s}_pred": lat.pred.cpu().numpy()})
            np.savez_compressed(Path(self.out_dir) / "latents.npz", **arrays)
        for lg in trainer.loggers:
            lg.log_metrics({f"final/{k}": v for k, v in self.results.items()}, step=trainer.global_step)

    def robustness(self, pl_module, dm) -> dict[str, float]:
        """DeepFool on a seeded sample of test images (normalized input space, no clipping)."""
        n_test = len(dm.y["test"])
        k = min(self.deepfool_samples, n_test)
        idx = torch.randperm(n_test, generator=torch.Generator().manual_seed(self.seed))[:k].sort().values
        rank, world = rank_world()
        mine = idx[rank::world]
        x = dm.normalize(dm.x["test"][mine].to(pl_module.device))
        y = dm.y["test"][mine].to(pl_module.device)
        # the module returns (logits, z) with logits linear in z: DeepFool can take the latent shortcut
        out = deepfool(pl_module, x, num_candidates=self.deepfool_candidates, overshoot=self.overshoot,
                       max_iter=self.max_iter, batch_size=self.deepfool_batch,
                       latent_weight=pl_module.head.classifier.weight.detach().float())
        ratio = out["r"].flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
        correct, fooled = (out["orig_pred"] == y), out["fooled"]
        if world > 1:
            ratio, correct, fooled = (gather_strided(t) for t in (ratio, correct, fooled))
        return {"deepfool_rho": ratio.mean().item(),
                "deepfool_rho_correct": ratio[correct].mean().item() if correct.any() else float("nan"),
                "deepfool_fooled": fooled.float().mean().item(), "deepfool_images": int(k)}


def reliability_metrics(train: Latents, test: Latents, num_classes: int, reg: float = 1e-6) -> dict[str, float]:
    """Mahalanobis (the paper's per-class variant) and max-softmax misclassification detection on test."""
    gauss = fit_class_gaussians(train.z, train.pred, train.y, num_classes, reg_covar=reg)
    correct = test.pred == test.y
    maha = misclassification_scores(mahalanobis_distance(gauss, test.z, test.pred), correct)
    msp = misclassification_scores(max_softmax_score(test.logits), correct)
    return {"mahalanobis_auroc": maha["auroc"], "mahalanobis_aurc": maha["aurc"],
            "mahalanobis_fpr95": maha["fpr_at_95_tpr"], "msp_auroc": msp["auroc"], "msp_aurc": msp["aurc"],
            "msp_fpr95": msp["fpr_at_95_tpr"], "mahalanobis_skipped_classes": int(gauss.n_skipped)}
