"""The report's figures, drawn from the metric catalog's panels (mean over seeds per epoch, band = ± std)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import catalog
from ..record import files
from .claims import CLAIMS
from .style import COLUMN_WIDTH, HEAD_LABEL, HEAD_ORDER, STYLE, _figure, _plt, head_style

# Each figure's heading and the heads it shows (None: all); a figure the catalog's panels name that is not
# listed here is headed by its first panel's title and shows every head.
FIGURES = {
    catalog.FIG1: ("Binarity of the latents, 2-component GMM ({train})", {"binenc", "linpen"}),
    catalog.FIG3: ("Encoding agreement per dimension ({train})", None),
    catalog.FIG4: ("Collapse of the latents ({train})", None),
    catalog.FIG5: ("Accuracy per epoch ({train})", None),
}
HISTOGRAMS = "fig2_histograms"  # drawn from latents.npz, not from the history


def panels() -> dict[str, list[tuple[str, catalog.Panel]]]:
    """{figure stem: [(metrics.csv column, panel), ...]} of the catalog, the histograms' figure aside."""
    return catalog.figures()


def axis_labels() -> dict[str, str]:
    """The readable y-axis label of every metrics.csv column a figure shows."""
    return {key: p.axis for ps in panels().values() for key, p in ps}


AXIS_LABEL = axis_labels()  # of the project's own metrics (call axis_labels() for those registered later)


def _heads(hist: pd.DataFrame, only=None) -> list[tuple]:
    """(head, width, settings) of every curve, in the paper's order of the heads: runs of different
    settings (e.g. `protocol=reference` beside `protocol=default`) are never averaged together."""
    if "settings" not in hist:
        hist = hist.assign(settings="")
    rows = hist[["head", "width", "settings"]].drop_duplicates().itertuples(index=False, name=None)
    rank = {h: i for i, h in enumerate(HEAD_ORDER)}
    rows = [r for r in rows if only is None or r[0] in only]
    return sorted(rows, key=lambda r: (rank.get(r[0], len(rank)), r[0], r[1], str(r[2])))


def _band(ax, hist, col, heads, log=False, last=True, axis: str | None = None, title: str = ""):
    """Mean over seeds per epoch with a +- std band, one line per head (its `head_style`). Returns True if
    anything was drawn. `last`: the bottom panel of its figure, which carries the epoch label; `axis`,
    `title`: the y label and panel title (default: the catalog's)."""
    multi = len({(h, s) for h, _, s in heads}) < len(heads)
    settings = sorted({str(s) for _, _, s in heads})
    if "settings" not in hist:
        hist = hist.assign(settings="")
    drawn = False
    with _plt().rc_context(STYLE):
        for head, width, setting in heads:
            at = (hist["head"] == head) & (hist["width"] == width) & (hist["settings"] == setting)
            h = hist[at][["run_id", "epoch", col]].dropna()
            if h.empty:
                continue
            if log is True:
                h = h[h[col] > 0]
            g = h.groupby("epoch")[col]
            mean, std, n = g.mean(), g.std(ddof=1), g.count()
            x = mean.index.to_numpy() + 1
            label = HEAD_LABEL.get(head, head) + (f" (d={width})" if multi and width >= 0 else "")
            label += (f" [{setting}]" if len(settings) > 1 else "") + f" (n={n.max()})"
            style = head_style(head)
            if settings.index(str(setting)) > 0:  # the same head under other settings: hollow markers
                style["markerfacecolor"] = "white"
            ax.plot(x, mean.to_numpy(), label=label, markevery=max(1, len(x) // 8), **style)
            lo, hi = (mean - std).to_numpy(), (mean + std).to_numpy()
            if log is not False:
                lo = np.where(lo > 0, lo, mean.to_numpy() / 10)
            if std.notna().any():
                ax.fill_between(x, lo, hi, color=style["color"], alpha=0.18, lw=0)
            drawn = True
        if log == "auto" and drawn:  # log scale only where the values span more than a decade
            vals = hist[col][hist[col] > 0]
            log = len(vals) > 0 and vals.max() / vals.min() > 10
        if log and drawn:
            ax.set_yscale("log")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if last:
            ax.set_xlabel("epoch")
        axis = axis or axis_labels().get(col, col)
        ax.set_ylabel(axis + (" (log)" if ax.get_yscale() == "log" else ""))
        ax.set_title(title, loc="left")
        ax.grid(alpha=0.3)
    return drawn


def _need(hist, cols, name) -> str | None:
    missing = [c for c in cols if c not in hist or hist[c].isna().all()]
    return f"{name}: skipped, no values for {', '.join(missing)}" if missing else None


def _finish_figure(fig, axes, heading: str, title: str, path: Path) -> str:
    """Heading and subtitle on top, one legend for all panels below them (the heads are the same)."""
    with _plt().rc_context(STYLE):
        handles, labels = axes[0].get_legend_handles_labels()
        ncol = 2 if max(map(len, labels), default=0) <= 24 else 1  # two columns fit short labels only
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)
        _suptitle(fig, heading + (f"\n{title.lstrip(' —')}" if title else ""))
    return _save(fig, path)


def plot_figure(stem: str, hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """The figure `stem` of the catalog: one stacked panel per metric panel that names it, the heads as
    `FIGURES` says; an `optional` panel without values is left out (and the heading says which split)."""
    spec = panels().get(stem)
    if not spec:
        return f"{path.name}: skipped, no metric of the catalog draws {stem}"
    heading, only = FIGURES.get(stem, (f"{spec[0][1].title or spec[0][1].axis} ({{train}})", None))
    heads = _heads(hist, only=only)
    if not heads:
        return f"{path.name}: skipped, no {' or '.join(sorted(only))} run"
    if note := _need(hist, [k for k, p in spec if not p.optional], path.name):
        return note
    shown = [(k, p) for k, p in spec if not (p.optional and _need(hist, [k], path.name))]
    left_out = sorted({"validation" if p.split == "val" else p.split for k, p in spec if (k, p) not in shown})
    where = train + "".join(f"; no {s} split" for s in left_out)
    fig, axes = _figure(len(shown))
    for ax, (col, p) in zip(axes, shown):
        data = hist.assign(**{col: hist[col] * p.scale}) if p.scale != 1 else hist
        _band(ax, data, col, heads, log=p.log, last=ax is axes[-1], axis=p.axis, title=p.title)
    return _finish_figure(fig, axes, heading.format(train=where), title, path)


def plot_binarity(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 1: train binarity score, GMM std and peak distance per epoch, BinEnc vs LinPen."""
    return plot_figure(catalog.FIG1, hist, path, title, train)


def plot_histograms(latents_path: Path | None, path: Path, title: str = "", run: str = "") -> str:
    """Fig. 2: histograms of the first two latent dimensions (train_z) of one selected BinEnc run."""
    if latents_path is None:
        return f"{path.name}: skipped, no selected binenc run saved latents.npz (train with save_latents=true)"
    with np.load(latents_path) as f:
        if "train_z" not in f:
            return f"{path.name}: skipped, {latents_path} has no train_z"
        z = f["train_z"]
    dims = min(2, z.shape[1])
    plt = _plt()
    fig, axes = _figure(dims, sharex=False)
    with plt.rc_context(STYLE):
        for j, ax in enumerate(axes):
            ax.hist(z[:, j], bins=80, color=head_style("binenc")["color"], alpha=0.85)
            ax.set_xlabel(f"latent z{j + 1}")
            ax.set_ylabel("training samples")
            ax.set_title(f"Latent dimension {j + 1}", loc="left")
            ax.grid(alpha=0.3)
        _suptitle(fig, f"Latent histograms of BinEnc{title}" + (f"\n{run}" if run else ""))
    return _save(fig, path)


def plot_agreement(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 3: per-dimension encoding agreement per epoch, all heads (train split)."""
    return plot_figure(catalog.FIG3, hist, path, title, train)


def plot_collapse(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 4: the within-class covariance sigma_w per epoch (what the paper's Figure 4 plots) and NC1
    below it, log y-scales, all heads (train split)."""
    return plot_figure(catalog.FIG4, hist, path, title, train)


def plot_accuracy(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 5: train accuracy and validation accuracy per epoch, all heads (the test split is only
    evaluated at the end); runs without a validation split get the train panel alone."""
    return plot_figure(catalog.FIG5, hist, path, title, train)


def _save(fig, path: Path) -> str:
    """The figure as PNG (300 dpi: sharp at one column) and as a vector PDF beside it."""
    fig.savefig(path, dpi=300)
    fig.savefig(path.with_suffix(".pdf"))
    _plt().close(fig)
    return f"{path.name}: written (and {path.with_suffix('.pdf').name})"


def _pick_latents(selected: pd.DataFrame) -> tuple[Path, str] | None:
    """latents.npz of the selected BinEnc run with the lowest seed that saved one (local runs only)."""
    if "path" not in selected:
        return None
    for _, r in selected[selected["head"] == "binenc"].sort_values("seed").iterrows():
        if isinstance(r["path"], str) and (Path(r["path"]) / files.LATENTS).exists():
            return Path(r["path"]) / files.LATENTS, f"train split, seed {r['seed']}, lr {r['lr']:g}, d={r['width']}"
    return None


def write_figures(out: Path, hist: pd.DataFrame, selected: pd.DataFrame, suffix: str, title: str, train: str):
    """Every figure of one (data, backbone) into `out`: the histograms and those of the catalog, in the
    order of their names. Returns (files written, notes of the figures skipped)."""
    written, notes = [], []
    for stem in sorted([HISTOGRAMS, *panels()]):
        p = out / f"{stem}{suffix}.png"
        try:
            if stem == HISTOGRAMS:
                latents, run = _pick_latents(selected) or (None, "")
                note = plot_histograms(latents, p, title, run)
            elif len(hist) == 0:
                note = f"{p.name}: skipped, no metrics.csv history"
            else:
                note = plot_figure(stem, hist, p, title, train)
        except Exception as e:  # a figure never stops the report
            note = f"{p.name}: skipped, {type(e).__name__}: {e}"
        if note.startswith(f"{p.name}: written"):
            written += [p, p.with_suffix(".pdf")]
        else:
            notes.append("note: " + note)
    return written, notes


def _suptitle(fig, text: str, fontsize: float = 8.5):
    """The figure's heading, each line wrapped until the heading fits the figure's width (a one-column
    figure holds about 50 characters of 8.5-point text per line)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    width = max(20, int(fig.get_figwidth() * 72 / (0.5 * fontsize)))
    while True:
        wrapped = "\n".join(textwrap.fill(line, width) for line in text.split("\n"))
        heading = fig.suptitle(wrapped, fontsize=fontsize)
        if width <= 20 or heading.get_window_extent(renderer).width <= 0.96 * fig.bbox.width:
            return heading
        width -= 4


def claims_figure(per_seed: pd.DataFrame, title: str = ""):
    """The claims at a glance (`claims.claims_tables`' per-seed rows of one data set and backbone): one panel
    per claim metric, each seed a line from the other head's value (left) to BinEnc's (right), in the other
    head's colour; log scale where the values span more than a decade (a factor's metric) or two (NoPen's
    thousands of codes beside BinEnc's ten). None when there is nothing to draw."""
    metrics = [c for c in CLAIMS if c.metric in set(per_seed["metric"])]
    if not metrics:
        return None
    plt = _plt()
    rows = (len(metrics) + 1) // 2
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, 2, figsize=(2 * COLUMN_WIDTH, 0.9 + 1.6 * rows), squeeze=False,
                                 layout="constrained")  # fmt: skip
        for ax, c in zip(axes.flat, metrics):
            p = per_seed[per_seed["metric"] == c.metric]
            for (head, other, _), g in p.groupby(["other_head", "other", "binenc"], sort=False):
                style = head_style(head)
                for i, r in enumerate(g.itertuples()):
                    ax.plot([0, 1], [r.other_value, r.binenc_value], color=style["color"], marker=style["marker"],
                            linestyle=style["linestyle"], label=other if i == 0 else "_", alpha=0.85)  # fmt: skip
            values = p[["other_value", "binenc_value"]].to_numpy()
            if (values > 0).all() and values.max() / values.min() > (10 if c.ratio else 100):  # NoPen's codes
                ax.set_yscale("log")
            ax.set_xticks([0, 1], ["other head", "BinEnc"])
            ax.set_xlim(-0.15, 1.15)
            ax.set_title(f"{c.label}, {'higher' if c.higher else 'lower'} claimed", loc="left")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(metrics) :]:
            ax.remove()
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), frameon=False)
        _suptitle(fig, "The paper's claims, seed by seed: each line one seed, other head → BinEnc" + title)
    return fig


def plot_claims(per_seed: pd.DataFrame, path: Path, title: str = "") -> str:
    """The claims figure (`claims_figure`) as PNG and PDF."""
    fig = claims_figure(per_seed, title)
    if fig is None:
        return f"{path.name}: skipped, no claim to compare (BinEnc and another head, paired by seed)"
    return _save(fig, path)
