"""The metric catalog: one declaration per logged quantity, which every consumer reads.

A `Metric` says what a quantity is called, on which splits it is logged every epoch (`train/<name>`,
`val/<name>`; none: it exists only at the end, in summary.json), how W&B summarizes its curves (best =
max or min, or the last value), its column in the report's table, its panels in the report's figures,
its label on the console's epoch line, whether summary.json holds its end-of-training value, and how it
is computed: a pure function of one split's latents (`compute`) or one value of a `Group`, a function
that returns several values at once (the GMM binarity, the neural-collapse statistics).

Readers: the Metrics callback (what it computes per epoch and at the end), metrics.csv (column order),
the W&B logger (summary definitions), the console (epoch line), summary.json (key order) and the report
(table columns, figures). Adding a per-epoch metric is its function plus one `register(...)`:

    register(Metric("mean_abs_z", splits=("train", "val"), compute=lambda d: d.z.abs().mean().item(),
                    summary="min", final=True, table=Column("mean |z|", fmt=".3f"),
                    panels=(Panel("fig6_mean_abs_z", "mean |z|", "Mean magnitude of the latents"),)))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .geometry import code_agreement, encoding_agreement, gmm_binarity, neural_collapse
from .two_valued import two_valuedness

NO_SPLIT = ""  # a per-epoch value logged under its bare name (`gamma`), not `<split>/<name>`


@dataclass(frozen=True)
class SplitData:
    """What a metric function reads: one split's latents, labels and logits, and how NC1 is taken."""

    z: torch.Tensor  # [N, d] penultimate representation
    logits: torch.Tensor  # [N, C]
    y: torch.Tensor  # [N] true labels
    num_classes: int
    classifier_weight: torch.Tensor | None = None  # [C, d], of the classifier on z
    nc_labels: str = "labels"  # NC1 grouped by the true labels, or "pred"
    global_mean: str = "samples"  # mu_G of Sigma_B: "samples" or "class_means"

    @property
    def pred(self) -> torch.Tensor:
        return self.logits.argmax(1)


@dataclass(frozen=True)
class Group:
    """A function that computes several metrics at once (`fn(data) -> {name: value}`); its value `None`
    (or a missing name) means "not defined here", and the metric is not logged."""

    name: str
    fn: Callable[[SplitData], dict]


@dataclass(frozen=True)
class Column:
    """A column of the report's table (summary value of the selected runs, mean ± std over seeds)."""

    title: str
    scale: float = 1  # 100: shown in %
    fmt: str = ".4f"
    order: int = 100  # position among the columns (then the order of registration)


@dataclass(frozen=True)
class Panel:
    """A panel of a report figure: the metric's curve per epoch on `split`, one line per head."""

    figure: str  # the figure's file stem, e.g. "fig4_collapse"; a new stem makes a new figure
    axis: str  # y-axis label
    title: str = ""  # panel title
    split: str = "train"
    log: bool | str = False  # True, False or "auto" (log where the values span more than a decade)
    scale: float = 1  # 100: shown in %
    order: int = 100  # position among the figure's panels (then the order of registration)
    optional: bool = False  # the figure is drawn without this panel when it has no values


@dataclass(frozen=True)
class Console:
    """The metric's place on the console's epoch line."""

    split: str
    label: str
    fmt: str = ".4f"
    order: int = 100


@dataclass(frozen=True)
class Metric:
    name: str
    splits: tuple[str, ...] = ()  # logged every epoch on these (NO_SPLIT: bare name); () = only at the end
    summary: str = "last"  # W&B summary of the curves: "max", "min" (the best value) or "last"
    final: bool = False  # summary.json holds its end-of-training value (of the training split)
    compute: Callable[[SplitData], float | None] | None = None  # a pure function of one split
    group: Group | None = None  # or one value of a group function
    by_module: tuple[str, ...] = ()  # splits on which the LightningModule logs it (the callback does not)
    table: Column | None = None
    panels: tuple[Panel, ...] = ()
    console: Console | None = None
    doc: str = ""  # where the value comes from, when neither `compute` nor `group` says it

    def __post_init__(self):
        if self.summary not in ("max", "min", "last"):
            raise ValueError(f"metric {self.name}: summary must be max, min or last, not {self.summary!r}")
        if self.compute is not None and self.group is not None:
            raise ValueError(f"metric {self.name}: either compute or group, not both")
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "panels", tuple(self.panels))

    @property
    def end_only(self) -> bool:
        return not self.splits

    @property
    def computed(self) -> bool:
        """Whether the Metrics callback computes it from the latents (`compute` or `group`)."""
        return self.compute is not None or self.group is not None

    def key(self, split: str) -> str:
        """Its metrics.csv / W&B key on `split`."""
        return self.name if split == NO_SPLIT else f"{split}/{self.name}"

    def keys(self) -> list[str]:
        return [self.key(s) for s in self.splits]


CATALOG: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add `metric` to the catalog (or replace the entry of its name); returns it."""
    CATALOG[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    CATALOG.pop(name, None)


def metrics() -> list[Metric]:
    return list(CATALOG.values())


def get(name: str) -> Metric | None:
    return CATALOG.get(name)


# -- what the readers ask ---------------------------------------------------------------------------------


def compute(data: SplitData, split: str | None = None) -> dict[str, float]:
    """Every computed metric of one split: those logged per epoch on `split` (by the callback, not the
    module), or with `split=None` those summary.json holds at the end. Each group runs once."""
    wanted = [
        m
        for m in CATALOG.values()
        if m.computed and (m.final if split is None else split in m.splits and split not in m.by_module)
    ]
    groups: dict[str, dict] = {}
    out = {}
    for m in wanted:
        if m.group is not None:
            if m.group.name not in groups:
                groups[m.group.name] = m.group.fn(data)
            value = groups[m.group.name].get(m.name)
        else:
            value = m.compute(data)
        if value is not None:
            out[m.name] = value
    return out


def logged_keys() -> list[str]:
    """Every per-epoch key of the catalog, in catalog order (metrics.csv's column order)."""
    return [k for m in CATALOG.values() for k in m.keys()]


def summary_definitions() -> list[tuple[str, str]]:
    """(key, "max"/"min") of every per-epoch key whose W&B summary is its best value."""
    return [(k, m.summary) for m in CATALOG.values() if m.summary != "last" for k in m.keys()]


def console_values() -> list[tuple[str, str, str]]:
    """(key, label, format) of the epoch line, in its order."""
    entries = sorted((m.console.order, i, m) for i, m in enumerate(CATALOG.values()) if m.console)
    return [(m.key(m.console.split), m.console.label, m.console.fmt) for _, _, m in entries]


def table_columns() -> list[tuple[str, str, float, str]]:
    """(summary key, title, scale, format) of the report's table, in its order."""
    entries = sorted((m.table.order, i, m) for i, m in enumerate(CATALOG.values()) if m.table)
    return [(m.name, m.table.title, m.table.scale, m.table.fmt) for _, _, m in entries]


def figures() -> dict[str, list[tuple[str, Panel]]]:
    """{figure stem: [(metrics.csv key, panel), ...]} in the figures' order of first declaration."""
    panels = [(p.order, i, m.key(p.split), p) for i, m in enumerate(CATALOG.values()) for p in m.panels]
    out: dict[str, list] = {}
    for _, _, key, p in sorted(panels, key=lambda t: (t[0], t[1])):
        out.setdefault(p.figure, []).append((key, p))
    first = {}
    for i, m in enumerate(CATALOG.values()):
        for p in m.panels:
            first.setdefault(p.figure, i)
    return {f: out[f] for f in sorted(out, key=lambda f: first[f])}


def final_names() -> list[str]:
    """The names summary.json holds, in catalog order."""
    return [m.name for m in CATALOG.values() if m.final]


# -- the project's metrics (docs/method.md §6-§8), in the order of metrics.csv and summary.json ------------

_NC = ("nc1", "sigma_w", "equinorm", "equiangular", "maxangle", "w_equinorm", "w_equiangular", "w_maxangle")
_NC += ("nc3", "nc4", "skipped_classes")


def _gmm(d: SplitData) -> dict:
    g = gmm_binarity(d.z)
    return {
        "binarity_score": g["score"],
        "binarity_std": g["std"],
        **{k: g[k] for k in ("peak_dist_mean", "peak_dist_std")},
    }


def _codes(d: SplitData) -> dict:
    c = code_agreement(d.z, d.pred, d.num_classes)
    return {"agreement_code": c["agreement"], "n_codes": c["n_codes"], "top_codes_fraction": c["top_codes_fraction"]}


def _collapse(d: SplitData) -> dict:
    labels = d.y if d.nc_labels == "labels" else d.pred
    nc = neural_collapse(d.z, labels, d.pred, d.classifier_weight, global_mean=d.global_mean)
    return {k: float(nc[k]) for k in _NC if nc.get(k) is not None}


def _two_valued(d: SplitData) -> dict:
    t = two_valuedness(d.z)
    return {
        "two_valued": t["mean"],
        "two_valued_min": t["min"],
        "two_valued_dims": [round(v, 6) for v in t["per_dim"].tolist()],
    }


def _acc(d: SplitData) -> float:
    return (d.pred == d.y).float().mean().item()


def _agreement_dim(d: SplitData) -> float:
    return encoding_agreement(d.z, d.pred, d.num_classes)


GMM, CODES, COLLAPSE = Group("gmm_binarity", _gmm), Group("code_agreement", _codes), Group("neural_collapse", _collapse)
TWO = Group("two_valued", _two_valued)
TV, TRAIN = ("train", "val"), ("train",)
FIG1, FIG3, FIG4, FIG5 = "fig1_binarity", "fig3_agreement", "fig4_collapse", "fig5_accuracy"
FIG6 = "fig6_two_valued"
_FINAL = "final_metrics (callbacks/metrics.py), at the end"

for _m in (
    # the accuracy of every split at the end (clean data)
    Metric("train_acc", final=True, table=Column("train acc (%)", 100, ".2f", order=1), doc=_FINAL),
    Metric("val_acc", final=True, doc=_FINAL),
    Metric("test_acc", final=True, table=Column("test acc (%)", 100, ".2f", order=0), doc=_FINAL),
    # the training split's majority-class share and mean |z|: chance level and latent collapse (summary.diverged)
    *(Metric(k, final=True, doc=_FINAL) for k in ("train_majority", "train_abs_z")),
    # per epoch, from the latents of the clean train and val splits (the module logs val/acc itself)
    Metric(
        "acc", TV, "max", compute=_acc, by_module=("val",), console=Console("val", "val acc", order=1),
        panels=(Panel(FIG5, "train accuracy (%)", "Accuracy", scale=100, order=0),
                Panel(FIG5, "validation accuracy (%)", "Validation accuracy", "val", scale=100, order=1,
                      optional=True)),
    ),
    Metric("binarity_score", TV, "max", True, group=GMM,
           panels=(Panel(FIG1, "GMM log-likelihood per sample", "Binarity score (mean over dimensions)", order=0),)),
    Metric("binarity_std", TV, final=True, group=GMM,
           panels=(Panel(FIG1, "GMM component std", "Width of the two modes", order=1),)),
    Metric("peak_dist_mean", TV, final=True, group=GMM,
           panels=(Panel(FIG1, "peak distance |μ₁ − μ₂| / std", "Separation of the two modes", log="auto", order=2),)),
    Metric("peak_dist_std", TV, final=True, group=GMM),
    # the share of each dimension's variance its sign explains (two_valued.py): mean, minimum, per dimension
    Metric("two_valued", TV, "max", True, group=TWO, table=Column("two-valued (sign R²)", fmt=".3f", order=10),
           panels=(Panel(FIG6, "sign R² (mean over dimensions)", "Two-valuedness: variance explained by the sign",
                         order=0),)),
    Metric("two_valued_min", TV, "max", True, group=TWO,
           panels=(Panel(FIG6, "sign R² (least dimension)", "The least two-valued dimension", order=1),)),
    Metric("two_valued_dims", final=True, group=TWO, doc="sign R² per dimension, a list (summary.json only)"),
    Metric("agreement_dim", TV, "max", True, compute=_agreement_dim, panels=(Panel(FIG3, "encoding agreement"),)),
    Metric("agreement_code", TV, "max", True, group=CODES, table=Column("code agreement", order=7)),
    Metric("n_codes", TV, final=True, group=CODES, table=Column("n codes", fmt=".1f", order=8),
           console=Console("train", "codes", ".0f", order=3)),
    Metric("top_codes_fraction", TV, "max", True, group=CODES),
    Metric("nc1", TV, "min", True, group=COLLAPSE, table=Column("NC1", fmt=".2e", order=9),
           panels=(Panel(FIG4, "NC1 = tr(Σ_W Σ_B⁺) / C", "NC1: within- vs between-class spread", log=True, order=1),)),
    Metric("sigma_w", TV, "min", True, group=COLLAPSE,
           panels=(Panel(FIG4, "σ_W (mean entry of Σ_W)", "Within-class covariance σ_W (the paper's Fig. 4)", log=True,
                         order=0),)),
    *(Metric(k, TV, final=True, group=COLLAPSE) for k in _NC[2:]),
    # per epoch, logged by the LightningModule (model/module.py) and the gamma schedule
    Metric("loss", TRAIN, "min", by_module=TRAIN, console=Console("train", "train loss", order=0)),
    Metric("ce", TV, "min", by_module=TV),
    Metric("quad", TRAIN, by_module=TRAIN),
    Metric("acc_aug", TRAIN, by_module=TRAIN, doc="accuracy on the augmented training batches"),
    Metric("images", TRAIN, by_module=TRAIN, doc="training images seen in the epoch"),
    Metric("gamma", (NO_SPLIT,), by_module=(NO_SPLIT,), console=Console(NO_SPLIT, "gamma", ".4g", order=2)),
    Metric("latent_metrics_s", ("time",), doc="seconds of the Metrics callback's pass (key time/latent_metrics_s)"),
    # at the end only: misclassification detection on test (reliability.py), DeepFool (deepfool.py)
    Metric("mahalanobis_auroc", final=True, table=Column("Mahalanobis AUROC (%)", 100, ".2f", order=2), doc=_FINAL),
    Metric("mahalanobis_auroc_ref", final=True, doc=_FINAL,
           table=Column("Mahalanobis AUROC, reference estimate (%, can exceed 100)", 100, ".2f", order=3)),
    *(Metric(k, final=True, doc=_FINAL) for k in ("mahalanobis_aurc", "mahalanobis_fpr95")),
    Metric("msp_auroc", final=True, table=Column("MSP AUROC (%)", 100, ".2f", order=5), doc=_FINAL),
    *(Metric(k, final=True, doc=_FINAL) for k in ("msp_aurc", "msp_fpr95", "mahalanobis_skipped_classes")),
    Metric("deepfool_rho", final=True, table=Column("DeepFool rho", order=4), doc=_FINAL),
    *(Metric(k, final=True, doc=_FINAL) for k in ("deepfool_rho_correct", "deepfool_fooled", "deepfool_images")),
):  # fmt: skip
    register(_m)
