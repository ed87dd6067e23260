"""`Metrics`: the callback that schedules the metrics of `binary_encoding.metrics` (pure functions); which
ones, on which splits and at which moment, the metric catalog says (`metrics/catalog.py`).

* every `every` epochs (and at the last), on the clean training split (`train_augmented`: its seeded
  augmented view, as the reference setup) and the validation split (when there is one):
  Gaussian-mixture binarity, encoding agreement (per dimension and joint code), number of codes,
  neural collapse (NC1-NC4, sigma_w), clean accuracy, and per-dimension latent histograms (W&B);
* once after training (`final_metrics`, which `python -m binary_encoding.evaluate` calls on a saved
  checkpoint too): accuracies of every split, the latent metrics of the training split, and on the
  test split: Mahalanobis misclassification-detection AUROC (per-class Gaussians on correctly
  classified training latents; exact, and the reference setup's estimate), the max-softmax baseline,
  AURC and FPR at 95% TPR; DeepFool robustness rho on a seeded sample of test images; optionally the
  final latents of every split in `latents.npz`.

The callback owns its latent cache: the last epoch's train/val latents (same weights) serve the
end-of-training metrics instead of forwarding those splits again.

Under DDP every rank gathers whole splits (see `latents.py`), so every value equals the
single-process value; DeepFool images are split across ranks and their norms gathered.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, fields
from pathlib import Path

import lightning as L
import numpy as np
import torch

from ..metrics import catalog
from ..metrics.deepfool import deepfool
from ..metrics.reliability import (
    fit_class_gaussians,
    mahalanobis_distance,
    max_softmax_score,
    misclassification_scores,
    reference_mahalanobis_auroc,
)
from ..record import files, wandb_run
from .latents import Latents, collect_latents, gather_strided, rank_world


def split_data(lat: Latents, num_classes: int, classifier_weight, nc_labels="labels", global_mean="samples"):
    """The catalog's view of one split's latents (`metrics.catalog.SplitData`)."""
    return catalog.SplitData(lat.z, lat.logits, lat.y, num_classes, classifier_weight, nc_labels, global_mean)


def geometry_metrics(
    lat: Latents,
    num_classes: int,
    classifier_weight: torch.Tensor | None,
    nc_labels: str = "labels",
    global_mean: str = "samples",
    split: str = "train",
) -> dict[str, float]:
    """Every per-epoch latent metric of the catalog on one split (`split`: which the catalog logs), flat."""
    return catalog.compute(split_data(lat, num_classes, classifier_weight, nc_labels, global_mean), split)


@dataclass(frozen=True)
class FinalSettings:
    """How the end-of-training metrics are computed (`metrics.*`, `deepfool_samples`, `seed` in the config)."""

    nc_labels: str = "labels"  # NC1 grouped by true labels, or "pred"
    global_mean: str = "samples"  # mu_G of Sigma_B: mean of all samples, or "class_means"
    train_augmented: bool = False  # "train" metrics on the seeded augmented view of the training split (reference)
    deepfool_samples: int = 1000  # seeded test images (0 = skip)
    deepfool_candidates: int | None = 10  # top-k logits as candidate classes (None = all)
    deepfool_overshoot: float = 0.02
    deepfool_max_iter: int = 50
    deepfool_batch: int = 256
    mahalanobis_reg: float = 1e-6  # added to each class covariance
    seed: int = 0  # of the DeepFool sample

    def __post_init__(self):
        if self.deepfool_samples < 0:
            raise ValueError(f"deepfool_samples must be >= 0 (0 = skip), got {self.deepfool_samples}")
        if self.nc_labels not in ("labels", "pred"):
            raise ValueError(f"metrics.nc_labels must be 'labels' or 'pred', got {self.nc_labels!r}")
        if self.global_mean not in ("samples", "class_means"):
            raise ValueError(f"metrics.global_mean must be 'samples' or 'class_means', got {self.global_mean!r}")

    @classmethod
    def of_config(cls, node) -> FinalSettings:
        """The settings of a run's saved `callbacks.metrics` node: `settings.final` (built by Hydra), or the
        flat keys of a run recorded before the settings were one object."""
        import hydra

        if "settings" in node:
            return hydra.utils.instantiate(node.settings.final)
        return cls(**{f.name: node[f.name] for f in fields(cls) if f.name in node})


@dataclass(frozen=True)
class MetricSettings:
    """What the Metrics callback does (`conf/callbacks/default.yaml`): every `every` epochs (0 = never, the
    last epoch always) the catalog's per-epoch metrics on `splits`, W&B pictures of the first `hist_dims`
    latent dimensions every `hist_every` epochs; at the end the metrics of `final`, and the latents in
    `out_dir/latents.npz` when `save_latents`. `final.nc_labels` and `final.global_mean` serve every epoch too."""

    every: int = 1
    splits: tuple[str, ...] = ("train", "val")
    hist_dims: int = 8
    hist_every: int = 10
    save_latents: bool = False
    out_dir: str | None = None
    final: FinalSettings = FinalSettings()

    def __post_init__(self):
        if self.every < 0:
            raise ValueError(f"metrics_every must be >= 0 (0 = never), got {self.every}")
        object.__setattr__(self, "splits", tuple(self.splits))  # Hydra hands a ListConfig
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", str(self.out_dir))


class Metrics(L.Callback):
    """Per-epoch latent metrics and the end-of-training metrics of a run (see the module docstring)."""

    def __init__(self, settings: MetricSettings = MetricSettings()):
        self.settings = settings
        self.last: dict[str, float] = {}
        self.results: dict[str, float] = {}
        self._kept: tuple[int, dict[str, Latents]] | None = None  # (global_step, latents of the last epoch)

    @property
    def final(self) -> FinalSettings:
        return self.settings.final

    @property
    def every(self) -> int:
        return self.settings.every

    @property
    def splits(self) -> tuple[str, ...]:
        return self.settings.splits

    def _augmented(self, split: str) -> bool:
        """Whether `split`'s metrics read its augmented view (`train_augmented`: the training split)."""
        return split == "train" and self.final.train_augmented

    # -- every epoch ------------------------------------------------------------------------------
    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch
        last_epoch = epoch + 1 == trainer.max_epochs
        if self.every == 0 or trainer.sanity_checking or not ((epoch + 1) % self.every == 0 or last_epoch):
            return
        start = time.perf_counter()
        dm, weight = trainer.datamodule, pl_module.head.classifier.weight.detach().float()
        kept = {}
        for split in (s for s in self.splits if s in dm.splits):  # no val metrics without a validation split
            lat = kept[split] = collect_latents(pl_module, dm, split, augmented=self._augmented(split))
            # the catalog's metrics of this split (not those the module logs, e.g. val/acc on the same data)
            values = geometry_metrics(lat, dm.num_classes, weight, self.final.nc_labels, self.final.global_mean, split)
            self.last.update({f"{split}/{k}": v for k, v in values.items()})
            if (self.settings.hist_every and epoch % self.settings.hist_every == 0) or last_epoch:
                self._pictures(trainer, split, lat, epoch)
        self._kept = (trainer.global_step, kept) if last_epoch else None  # the end-of-fit metrics reuse them
        self.last["time/latent_metrics_s"] = time.perf_counter() - start
        # identical on every rank (whole splits are gathered), so no further reduction is needed
        pl_module.log_dict({k: float(v) for k, v in self.last.items()}, sync_dist=False)

    def _pictures(self, trainer, split: str, lat: Latents, epoch: int) -> None:
        """Histograms, 2-D scatter and class-code table of the latents, into W&B's row of this epoch."""
        if not trainer.is_global_zero:
            return
        for lg in trainer.loggers:
            if isinstance(lg, wandb_run.RunLogger):
                from ..record.wandb_media import latent_media

                # made only while W&B is on; an error making them is W&B's (the logger turns W&B off)
                lg.log_row(lambda: latent_media(split, lat.z, lat.y, self.settings.hist_dims, epoch), epoch)

    # -- once, after training ---------------------------------------------------------------------
    def on_fit_end(self, trainer, pl_module):
        kept, self._kept = self._kept, None
        if trainer.interrupted or trainer.state.status.value == "interrupted":
            return
        # train and val: those of the last epoch's metric pass when the weights have not changed since
        reuse = kept[1] if kept is not None and kept[0] == trainer.global_step else {}
        self.results, lats = final_metrics(pl_module, trainer.datamodule, self.final, latents=reuse)
        if self.settings.save_latents and trainer.is_global_zero and self.settings.out_dir is not None:
            save_latents(lats, Path(self.settings.out_dir) / files.LATENTS)
        # no history row: the results go to summary.json and W&B's run summary (train.fit)


def final_metrics(
    module,
    dm,
    settings: FinalSettings = FinalSettings(),
    latents: dict[str, Latents] | None = None,
    bf16: bool | None = None,
) -> tuple[dict[str, float], dict[str, Latents]]:
    """The end-of-training metrics of `module` on `dm` (and the latents they were computed from):
    what a run's summary holds, and what `evaluate` recomputes from its checkpoint. `latents`: splits
    already forwarded with the same weights; `bf16`: as in `collect_latents`."""
    st = settings
    lats = {
        s: (latents or {}).get(s) or collect_latents(module, dm, s, bf16, augmented=s == "train" and st.train_augmented)
        for s in dm.splits
    }
    results = {f"{s}_acc": lat.acc for s, lat in lats.items()}
    train = lats["train"]  # what `record.summarize.diverged` and its hint compare the accuracy with
    results["train_majority"] = torch.bincount(train.y).max().item() / max(len(train.y), 1)
    results["train_abs_z"] = train.z.abs().mean().item()
    weight = module.head.classifier.weight.detach().float()
    # the catalog's end-of-training metrics of the training split
    results.update(catalog.compute(split_data(lats["train"], dm.num_classes, weight, st.nc_labels, st.global_mean)))
    results.update(reliability_metrics(lats["train"], lats["test"], dm.num_classes, st.mahalanobis_reg))
    if st.deepfool_samples:
        results.update(robustness(module, dm, st))
    return results, lats


def save_latents(lats: dict[str, Latents], path: Path) -> None:
    """`<split>_z`, `_logits`, `_y`, `_pred` of every split, as numpy arrays: whole or not at all (a full
    disk keeps the previous file, never a cut-off archive the report would have to skip)."""
    arrays = {}
    for s, lat in lats.items():
        arrays.update({f"{s}_{k}": v for k, v in lat.numpy().items()})
        arrays[f"{s}_pred"] = lat.pred.cpu().numpy()
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    files.write_atomic(path, buf.getvalue())


def robustness(module, dm, settings: FinalSettings = FinalSettings()) -> dict[str, float]:
    """DeepFool on a seeded sample of test images (normalized input space, no clipping)."""
    st = settings
    n_test = len(dm.y["test"])
    k = min(st.deepfool_samples, n_test)
    idx = torch.randperm(n_test, generator=torch.Generator().manual_seed(st.seed))[:k].sort().values
    rank, world = rank_world()
    mine = idx[rank::world]
    x = dm.normalize(dm.x["test"][mine].to(module.device))
    y = dm.y["test"][mine].to(module.device)
    # the module returns (logits, z) with logits linear in z: DeepFool can take the latent shortcut
    out = deepfool(
        module,
        x,
        num_candidates=st.deepfool_candidates,
        overshoot=st.deepfool_overshoot,
        max_iter=st.deepfool_max_iter,
        batch_size=st.deepfool_batch,
        latent_weight=module.head.classifier.weight.detach().float(),
    )
    ratio = out["r"].flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    correct, fooled = (out["orig_pred"] == y), out["fooled"]
    if world > 1:
        ratio, correct, fooled = (gather_strided(t) for t in (ratio, correct, fooled))
    return {
        "deepfool_rho": ratio.mean().item(),
        "deepfool_rho_correct": ratio[correct].mean().item() if correct.any() else float("nan"),
        "deepfool_fooled": fooled.float().mean().item(),
        "deepfool_images": int(k),
    }


def reliability_metrics(train: Latents, test: Latents, num_classes: int, reg: float = 1e-6) -> dict[str, float]:
    """Mahalanobis (the paper's per-class variant) and max-softmax misclassification detection on test."""
    gauss = fit_class_gaussians(train.z, train.pred, train.y, num_classes, reg_covar=reg)
    correct = test.pred == test.y
    maha = misclassification_scores(mahalanobis_distance(gauss, test.z, test.pred), correct)
    msp = misclassification_scores(max_softmax_score(test.logits), correct)
    return {
        "mahalanobis_auroc": maha["auroc"],
        # the reference setup's estimator (§7.5): dropped samples, quantile sum; beside the exact one
        "mahalanobis_auroc_ref": reference_mahalanobis_auroc(train.z, train.pred, train.y, test.z, test.pred, test.y),
        "mahalanobis_aurc": maha["aurc"],
        "mahalanobis_fpr95": maha["fpr_at_95_tpr"],
        "msp_auroc": msp["auroc"],
        "msp_aurc": msp["aurc"],
        "msp_fpr95": msp["fpr_at_95_tpr"],
        "mahalanobis_skipped_classes": int(gauss.n_skipped),
    }
