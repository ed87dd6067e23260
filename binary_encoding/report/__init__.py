"""Turn a sweep into the paper's results: `python -m binary_encoding.report PATH [--out DIR] [--select val|test]`.

PATH is a multirun folder (e.g. `multirun/digits_mlp`), searched recursively for job folders (a folder
holding `config.yaml`, `metrics.csv`, `summary.json` or `failed.json`), or a W&B project
(`wandb:entity/project`, `wandb:project`). A job is *finished* when it has `summary.json`, *failed* when it
has `failed.json` (and no summary), *unfinished* otherwise.

Selection (as the paper): per (data, backbone, head, width, seed) the learning rate with the best final
**validation** accuracy (`--select test`: best test accuracy, the reference's choice). Runs trained without
a validation split (`data.val_fraction=0`, e.g. `protocol=reference`) are selected on test accuracy in any
case, and the tables say so (column "lr selected on"). Ties go to the lower final validation
cross-entropy, then to the smaller learning rate. Then mean +- sample std (ddof=1) over seeds; every
cell states its n, the number of seeds with a value (std is empty for n=1).

Writes into `--out` (default `PATH/report/`): results.md, results.csv (one row per data set and head),
selected_runs.csv, all_runs.csv (every finished run), and the figures fig1_binarity,
fig2_histograms, fig3_agreement, fig4_collapse (sigma_w and NC1), fig5_accuracy as PNG and PDF (mean
over the selected seeds, band = +- std; x = epoch counted from 1), sized for one column of a paper:
panels stacked, each head in one colour of the colour-blind-safe Okabe-Ito palette with its own line
style and marker, the same in every figure (`head_style`). A sweep over several (data, backbone)
pairs gets one set of figures per pair, suffixed `_<data>_<backbone>`. A figure whose columns are
missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..record import files, identity, wandb_run

HEAD_ORDER = ["binenc", "nopen", "linpen", "nonlinpen"]
HEAD_LABEL = {"binenc": "BinEnc", "nopen": "NoPen", "linpen": "LinPen", "nonlinpen": "NonlinPen"}
# Okabe & Ito's colour-blind-safe palette; each head also has its own line style and marker, so the lines
# stay apart in grey print. Other heads take the remaining colours by a stable hash of their name.
OKABE_ITO = {
    "vermillion": "#D55E00", "blue": "#0072B2", "bluish green": "#009E73", "orange": "#E69F00",
    "reddish purple": "#CC79A7", "sky blue": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
}  # fmt: skip
HEAD_STYLE = {
    "binenc": {"color": OKABE_ITO["vermillion"], "linestyle": "-", "marker": "o"},
    "nopen": {"color": OKABE_ITO["blue"], "linestyle": "--", "marker": "s"},
    "linpen": {"color": OKABE_ITO["bluish green"], "linestyle": "-.", "marker": "^"},
    "nonlinpen": {"color": OKABE_ITO["orange"], "linestyle": ":", "marker": "D"},
}
_OTHER_STYLES = [
    {"color": OKABE_ITO[c], "linestyle": ls, "marker": m}
    for c, ls, m in (("reddish purple", (0, (5, 1)), "v"), ("sky blue", (0, (3, 1, 1, 1, 1, 1)), "P"),
                     ("black", (0, (1, 2)), "X"), ("yellow", (0, (8, 2)), "*"))
]  # fmt: skip
GROUP = ["data", "backbone", "head", "width", "settings"]  # a table row; `seed` and `lr` vary inside it
JOB_FILES = (files.CONFIG, files.METRICS, files.SUMMARY, files.FAILED)
SKIP_DIRS = {"checkpoints", "wandb", "report", "__pycache__"}

# (summary key, column title, scale, format) of the table; scale 100 = shown in %
TABLE = [
    ("test_acc", "test acc (%)", 100, ".2f"),
    ("train_acc", "train acc (%)", 100, ".2f"),
    ("mahalanobis_auroc", "Mahalanobis AUROC (%)", 100, ".2f"),
    ("mahalanobis_auroc_ref", "Mahalanobis AUROC, reference estimator (%)", 100, ".2f"),
    ("deepfool_rho", "DeepFool rho", 1, ".4f"),
    ("msp_auroc", "MSP AUROC (%)", 100, ".2f"),
    ("agreement_code", "code agreement", 1, ".4f"),
    ("n_codes", "n codes", 1, ".1f"),
    ("nc1", "NC1", 1, ".2e"),
]

# docs/method.md §9: the paper (v3), mean +- std over 5 seeds; selected on test accuracy (§4.2).
PAPER = {
    "cifar10": {
        "binenc": ("93.79 ± 0.21", "99.97", "87.74 ± 0.62", "0.1176 ± 0.0281"),
        "nopen": ("93.33 ± 0.05", "99.85", "77.50 ± 2.84", "0.0120 ± 0.0004"),
        "linpen": ("93.27 ± 0.15", "99.86", "75.47 ± 1.43", "0.0131 ± 0.0006"),
        "nonlinpen": ("92.90 ± 0.21", "99.83", "81.45 ± 2.56", "0.0134 ± 0.0008"),
    },
    "cifar100": {
        "binenc": ("75.54 ± 0.68", "99.90", "84.38 ± 0.72", "0.0444 ± 0.0055"),
        "nopen": ("74.17 ± 0.30", "99.69", "75.39 ± 0.89", "0.0063 ± 0.0003"),
        "linpen": ("73.48 ± 0.47", "99.43", "68.73 ± 1.73", "0.0058 ± 0.0002"),
        "nonlinpen": ("73.47 ± 0.27", "99.51", "73.46 ± 0.61", "0.0059 ± 0.0004"),
    },
}


# ----------------------------------------------------------------------------------------------- loading


def _num(v):
    """summary.json stores inf as the string 'inf' and NaN as null."""
    if v is None:
        return float("nan")
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        return yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def find_jobs(root: Path) -> list[Path]:
    """Job folders under `root` (root itself included); hidden folders, checkpoints/, wandb/ and report/
    are not searched, nor anything below a job folder."""
    jobs = []
    for d, dirs, names in os.walk(root):
        if any(f in names for f in JOB_FILES):
            jobs.append(Path(d))
            dirs[:] = []
            continue
        dirs[:] = sorted(x for x in dirs if not x.startswith(".") and x not in SKIP_DIRS)
    return sorted(jobs)


def _run_record(run_id: str, cfg: dict, summary: dict, status: str, error: str = "") -> dict:
    """One row of runs_df from a resolved config (nested dict) and a summary (flat dict)."""
    head, data, backbone, trainer = (cfg.get(k) or {} for k in ("head", "data", "backbone", "trainer"))
    width = head.get("width") if isinstance(head, dict) else None
    rec = {
        "run_id": run_id,
        "status": status,
        "error": error,
        "data": (data.get("name") if isinstance(data, dict) else None) or summary.get("data"),
        "backbone": (backbone.get("name") if isinstance(backbone, dict) else None) or summary.get("backbone"),
        "head": (head.get("name") if isinstance(head, dict) else None) or summary.get("head"),
        "width": int(width) if isinstance(width, (int, float)) and not isinstance(width, bool) else -1,
        "seed": cfg.get("seed", summary.get("seed")),
        "lr": cfg.get("lr", summary.get("lr")),
        "max_epochs": trainer.get("max_epochs") if isinstance(trainer, dict) else None,
        "val_fraction": data.get("val_fraction") if isinstance(data, dict) else None,
        "train_augmented": bool((cfg.get("metrics") or {}).get("train_augmented", False)),
    }
    for k, v in summary.items():
        if k not in rec:
            rec[k] = _num(v)
    rec["_config"] = identity.flat_config(cfg)
    return rec


def _settings(runs: pd.DataFrame) -> pd.Series:
    """Per run, the swept settings besides lr and seed: `key=value` of every config key whose value
    varies among the runs of its (data, backbone, head, width), e.g. `head.gamma_max=10.0`."""
    out = pd.Series("", index=runs.index, dtype=object)
    for _, idx in runs.groupby(GROUP[:-1], sort=False, dropna=False).groups.items():
        cfgs = [runs.at[i, "_config"] for i in idx]
        keys = sorted({k for c in cfgs for k in c if identity.splits_report_row(k)})
        varying = [k for k in keys if len({repr(c.get(k)) for c in cfgs}) > 1]
        if "protocol" in varying:  # keys the protocol choice sets go without saying: `protocol=reference`
            varying = [k for k in varying if k == "protocol" or not _follows(cfgs, "protocol", k)]
        for i, c in zip(idx, cfgs):
            out[i] = ",".join(f"{k}={c.get(k)}" for k in varying)
    return out


def _follows(cfgs: list[dict], key: str, other: str) -> bool:
    """Whether `other` has one value per value of `key` among `cfgs`."""
    seen = {}
    return all(seen.setdefault(repr(c.get(key)), repr(c.get(other))) == repr(c.get(other)) for c in cfgs)


def _finish(records: list[dict], histories: list[pd.DataFrame], where: str):
    if not records:
        raise ValueError(f"no runs found in {where} (looked for folders with {', '.join(JOB_FILES)})")
    runs = pd.DataFrame(records)
    runs["settings"] = _settings(runs)
    runs = runs.drop(columns="_config")
    runs["seed"] = pd.to_numeric(runs["seed"], errors="coerce").astype("Int64")
    runs["lr"] = pd.to_numeric(runs["lr"], errors="coerce")
    hist = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=["run_id", "epoch"])
    if len(hist):
        last = hist.sort_values("epoch").groupby("run_id").last()  # last non-empty value per column
        for col, src in (("final_val_ce", "val/ce"), ("logged_epochs", "epoch")):
            if src in last:
                runs[col] = runs["run_id"].map(last[src])
        keys = runs.set_index("run_id")[GROUP + ["seed", "lr", "status"]]
        hist = hist.join(keys, on="run_id")
    return runs, hist


def load_runs(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs_df, history_df) of a sweep folder or a `wandb:` project.

    runs_df: one row per job: run_id (the folder relative to PATH), status (finished/failed/unfinished),
    error, data, backbone, head, width (-1 for nopen), seed, lr, max_epochs, every summary.json value,
    final_val_ce and logged_epochs (from metrics.csv).
    history_df: the metrics.csv rows of every job, with run_id and the columns above.
    Raises ValueError when there is no run.
    """
    if str(path).startswith("wandb:"):
        return load_wandb(str(path)[len("wandb:") :])
    root = Path(path)
    if not root.exists():
        raise ValueError(f"{root} does not exist")
    records, histories = [], []
    for job in find_jobs(root):
        run_id = str(job.relative_to(root)) if job != root else job.name
        cfg = _read_yaml(job / files.CONFIG) or _read_yaml(job / ".hydra" / files.CONFIG)
        summary = _read_json(job / files.SUMMARY) if (job / files.SUMMARY).exists() else None
        if summary is not None:
            status, error = "finished", ""
        elif (job / files.FAILED).exists():
            failed = _read_json(job / files.FAILED)
            status = "failed"
            error = str(failed.get("error") or failed.get("message") or failed.get("exception") or failed)[:300]
        else:
            status, error = "unfinished", ""
        records.append({**_run_record(run_id, cfg, summary or {}, status, error), "path": str(job)})
        if (job / files.METRICS).exists():
            try:
                h = pd.read_csv(job / files.METRICS)
            except (pd.errors.EmptyDataError, pd.errors.ParserError):
                h = pd.DataFrame()
            if "epoch" in h:
                histories.append(h.assign(run_id=run_id))
    return _finish(records, histories, str(root))


def load_wandb(project: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Thin adapter: the same (runs_df, history_df) from a W&B project (`entity/project` or `project`),
    online, through `wandb.Api()`: run.config (the resolved config), run.summary keys `final/<name>`
    (written only when a run finished), run.history() per epoch. NOT TESTED OFFLINE (the test suite has
    no network); latents are not available from W&B, so fig2 is skipped."""
    import wandb

    records, histories = [], []
    for run in wandb.Api().runs(project):
        if run.job_type == "report":
            continue  # the report's own runs
        summary = {k[len("final/") :]: v for k, v in dict(run.summary).items() if k.startswith("final/")}
        status = "finished" if summary else ("failed" if run.state in ("failed", "crashed") else "unfinished")
        records.append(
            _run_record(
                run.id, dict(run.config), summary, status, "" if status != "failed" else f"W&B state {run.state}"
            )
        )
        h = run.history(samples=100_000, pandas=True)
        if len(h) and "epoch" in h:
            h = h.dropna(subset=["epoch"]).groupby("epoch", as_index=False).last()
            histories.append(h.assign(run_id=run.id))
    return _finish(records, histories, f"W&B project {project}")


# ----------------------------------------------------------------------------------------- selection


def select_runs(runs: pd.DataFrame, by: str = "val") -> pd.DataFrame:
    """Per (data, backbone, head, width, seed), the finished run whose learning rate gives the best final
    `by` accuracy (`val` or `test`); runs without a validation split (`val_fraction` 0) are selected on
    test accuracy whatever `by` says. Ties: lower final validation CE, then smaller lr. The column
    `selected_on` says which split chose each run."""
    if by not in ("val", "test"):
        raise ValueError(f"select by 'val' or 'test', not {by!r}")
    if "settings" not in runs:  # a frame not made by load_runs: no swept settings besides lr and seed
        runs = runs.assign(settings="")
    done = runs[(runs["status"] == "finished") & ~_diverged(runs)].copy()
    done["selected_on"] = np.where(_no_val_split(done), "test", by)
    done["_acc"] = [r.get(f"{on}_acc", np.nan) for on, (_, r) in zip(done["selected_on"], done.iterrows())]
    done["_acc"] = pd.to_numeric(done["_acc"], errors="coerce")
    if done["_acc"].isna().all():
        raise ValueError(f"no finished run has {by}_acc")
    done = done[done["_acc"].notna()]
    done["_ce"] = done["final_val_ce"] if "final_val_ce" in done else np.nan
    done = done.sort_values(["_acc", "_ce", "lr"], ascending=[False, True, True], na_position="last")
    sel = done.groupby(GROUP + ["seed"], sort=False, dropna=False).head(1).drop(columns=["_acc", "_ce"])
    return _order(sel).reset_index(drop=True)


def _no_val_split(runs: pd.DataFrame) -> pd.Series:
    """Runs trained without a validation split: `data.val_fraction` 0 in their config."""
    if "val_fraction" not in runs:
        return pd.Series(False, index=runs.index)
    return pd.to_numeric(runs["val_fraction"], errors="coerce").eq(0)


def _order(df: pd.DataFrame) -> pd.DataFrame:
    rank = {h: i for i, h in enumerate(HEAD_ORDER)}
    cols = [c for c in ("data", "backbone", "head_rank", "head", "width", "seed", "lr") if c in df or c == "head_rank"]
    return (
        df.assign(head_rank=df["head"].map(lambda h: rank.get(h, len(rank))))
        .sort_values(cols)
        .drop(columns="head_rank")
    )


def aggregate(selected: pd.DataFrame, metrics: list[str] | None = None, ddof: int = 1) -> pd.DataFrame:
    """One row per (data, backbone, head, width): n seeds, `<metric>_mean`, `<metric>_std` (sample std,
    ddof=1; NaN for n=1) in the table's units (accuracies and AUROCs in %), `<metric>_n` (the seeds with
    a value), `lr_per_seed` and `lr_selected_on` (val, test)."""
    metrics = metrics or [m for m, *_ in TABLE]
    scale = {m: s for m, _, s, _ in TABLE}
    if "settings" not in selected:  # a frame not made by load_runs: no swept settings besides lr and seed
        selected = selected.assign(settings="")
    rows = []
    for key, g in selected.groupby(GROUP, sort=False, dropna=False):
        row = dict(zip(GROUP, key))
        row["n"] = len(g)
        for m in metrics:
            v = pd.to_numeric(g[m], errors="coerce").dropna() * scale.get(m, 1) if m in g else pd.Series(dtype=float)
            unit = "_pct" if scale.get(m, 1) == 100 else ""
            row[f"{m}{unit}_mean"] = v.mean() if len(v) else np.nan
            row[f"{m}{unit}_std"] = v.std(ddof=ddof) if len(v) > ddof and np.isfinite(v).all() else np.nan
            row[f"{m}_n"] = len(v)  # seeds with a value: a cell may hold fewer than the row's n
        row["lr_per_seed"] = "; ".join(f"{s}:{lr:g}" for s, lr in zip(g["seed"], g["lr"]))
        on = sorted(set(g["selected_on"])) if "selected_on" in g else []
        row["lr_selected_on"] = "+".join(on)
        rows.append(row)
    return _order(pd.DataFrame(rows)).reset_index(drop=True)


def _cell(mean, std, fmt, n=None):
    """`mean ± std (n=k)`: k seeds have a value (no ± for one seed; – for none)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{mean:{fmt}}" if std is None or math.isnan(std) else f"{mean:{fmt}} ± {std:{fmt}}"
    return text if n is None else f"{text} (n={int(n)})"


def to_markdown(table: pd.DataFrame, metrics: list[str] | None = None) -> str:
    """The paper's table, one per (data, backbone); `metrics` are the summary keys shown (default TABLE)."""
    spec = {m: (t, s, f) for m, t, s, f in TABLE}
    metrics = metrics or [m for m, *_ in TABLE]
    out = []
    for (data, backbone), t in table.groupby(["data", "backbone"], sort=False):
        multi_width = t.groupby("head")["width"].nunique().max() > 1
        titles = [spec.get(m, (m, 1, ".4g"))[0] for m in metrics]
        out.append(f"### {data} / {backbone}\n")
        out.append("| head | " + " | ".join(titles) + " | lr selected on | lr per seed |")
        out.append("|---|" + "---|" * len(titles) + "---|---|")
        for _, r in t.iterrows():
            name = HEAD_LABEL.get(r["head"], str(r["head"]))
            if multi_width and r["width"] >= 0:
                name += f" (d={r['width']})"
            if r.get("settings"):
                name += f" [{r['settings']}]"
            cells = []
            for m in metrics:
                _, s, f = spec.get(m, (m, 1, ".4g"))
                unit = "_pct" if s == 100 else ""
                cells.append(_cell(r.get(f"{m}{unit}_mean"), r.get(f"{m}{unit}_std"), f, r.get(f"{m}_n", r["n"])))
            on = {"val": "validation", "test": "TEST"}.get(r.get("lr_selected_on"), r.get("lr_selected_on") or "")
            out.append(f"| {name} | " + " | ".join(cells) + f" | {on} | {r['lr_per_seed']} |")
        out.append("")
    return "\n".join(out)


def _diverged(runs: pd.DataFrame) -> pd.Series:
    """Finished runs flagged `diverged` in their summary (training accuracy at chance level)."""
    if "diverged" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["diverged"].map(lambda v: v is True or v == 1 or str(v).lower() == "true")


def counts_line(runs: pd.DataFrame) -> str:
    c = runs["status"].value_counts()
    n_div = int((_diverged(runs) & (runs["status"] == "finished")).sum())
    diverged = f" ({n_div} diverged: left out of the selection)" if n_div else ""
    return (
        f"{len(runs)} runs found: {c.get('finished', 0)} finished{diverged}, {c.get('failed', 0)} failed, "
        f"{c.get('unfinished', 0)} unfinished."
    )


def _paper_markdown(datasets) -> str:
    out = []
    for data in datasets:
        if data in PAPER:
            out += [
                f"### the paper (v3, 5 seeds, lr selected on test): {data}\n",
                "| head | test acc (%) | train acc (%) | Mahalanobis AUROC (%) | DeepFool rho |",
                "|---|---|---|---|---|",
            ]
            out += [f"| {HEAD_LABEL[h]} | " + " | ".join(v) + " |" for h, v in PAPER[data].items()]
            out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- figures


# One column of a two-column paper is about 3.4 inches: figures are drawn at that width with 8-point text,
# panels stacked on a shared epoch axis, so they are legible where they will be printed.
COLUMN_WIDTH = 3.4  # inches
PANEL_HEIGHT = 1.9  # inches per panel
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.3, "lines.markersize": 3.5,
}  # fmt: skip
# readable names of the metrics.csv columns the figures show
AXIS_LABEL = {
    "train/binarity_score": "GMM log-likelihood per sample",
    "train/binarity_std": "GMM component std",
    "train/peak_dist_mean": "peak distance |μ₁ − μ₂| / std",
    "train/agreement_dim": "encoding agreement",
    "train/sigma_w": "σ_W (mean entry of Σ_W)",
    "train/nc1": "NC1 = tr(Σ_W Σ_B⁺) / C",
    "train/acc": "train accuracy (%)",
    "val/acc": "validation accuracy (%)",
}
PANEL_TITLE = {
    "train/binarity_score": "Binarity score (mean over dimensions)",
    "train/binarity_std": "Width of the two modes",
    "train/peak_dist_mean": "Separation of the two modes",
    "train/sigma_w": "Within-class covariance σ_W (the paper's Fig. 4)",
    "train/nc1": "NC1: within- vs between-class spread",
    "train/acc": "Accuracy",
    "val/acc": "Validation accuracy",
}


def head_style(head: str) -> dict:
    """Colour (Okabe-Ito), line style and marker of a head: fixed for the paper's four heads, and for any
    other head chosen by a stable hash of its name, so a head looks the same in every figure and report."""
    import zlib

    if head in HEAD_STYLE:
        return dict(HEAD_STYLE[head])
    return dict(_OTHER_STYLES[zlib.crc32(str(head).encode()) % len(_OTHER_STYLES)])


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(panels: int, sharex: bool = True):
    """A one-column figure of `panels` stacked panels (sharing the epoch axis unless `sharex` is False)."""
    plt = _plt()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            panels, 1, figsize=(COLUMN_WIDTH, 0.9 + PANEL_HEIGHT * panels), sharex=sharex, squeeze=False,
            layout="constrained",
        )  # fmt: skip
    return fig, list(axes[:, 0])


def _heads(hist: pd.DataFrame, only=None) -> list[tuple]:
    """(head, width, settings) of every curve, in the paper's order of the heads: runs of different
    settings (e.g. `protocol=reference` beside `protocol=default`) are never averaged together."""
    if "settings" not in hist:
        hist = hist.assign(settings="")
    rows = hist[["head", "width", "settings"]].drop_duplicates().itertuples(index=False, name=None)
    rank = {h: i for i, h in enumerate(HEAD_ORDER)}
    rows = [r for r in rows if only is None or r[0] in only]
    return sorted(rows, key=lambda r: (rank.get(r[0], len(rank)), r[0], r[1], str(r[2])))


def _band(ax, hist, col, heads, log=False, last=True):
    """Mean over seeds per epoch with a +- std band, one line per head (its `head_style`). Returns True if
    anything was drawn. `last`: the bottom panel of its figure, which carries the epoch label."""
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
        ax.set_ylabel(AXIS_LABEL.get(col, col) + (" (log)" if ax.get_yscale() == "log" else ""))
        ax.set_title(PANEL_TITLE.get(col, ""), loc="left")
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
        fig.suptitle(heading + (f"\n{title.lstrip(' —')}" if title else ""), fontsize=8.5)
    return _save(fig, path)


def plot_binarity(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 1: train binarity score, GMM std and peak distance per epoch, BinEnc vs LinPen."""
    cols = ["train/binarity_score", "train/binarity_std", "train/peak_dist_mean"]
    heads = _heads(hist, only={"binenc", "linpen"})
    if not heads:
        return f"{path.name}: skipped, no binenc or linpen run"
    if note := _need(hist, cols, path.name):
        return note
    fig, axes = _figure(3)
    for ax, col, log in zip(axes, cols, [False, False, "auto"]):
        _band(ax, hist, col, heads, log=log, last=ax is axes[-1])
    return _finish_figure(fig, axes, f"Binarity of the latents, 2-component GMM ({train})", title, path)


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
        fig.suptitle(f"Latent histograms of BinEnc{title}" + (f"\n{run}" if run else ""), fontsize=8.5)
    return _save(fig, path)


def plot_agreement(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 3: per-dimension encoding agreement per epoch, all heads (train split)."""
    col = "train/agreement_dim"
    if note := _need(hist, [col], path.name):
        return note
    fig, axes = _figure(1)
    _band(axes[0], hist, col, _heads(hist))
    return _finish_figure(fig, axes, f"Encoding agreement per dimension ({train})", title, path)


def plot_collapse(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 4: the within-class covariance sigma_w per epoch (what the paper's Figure 4 plots) and NC1
    below it, log y-scales, all heads (train split)."""
    cols = ["train/sigma_w", "train/nc1"]
    if note := _need(hist, cols, path.name):
        return note
    fig, axes = _figure(2)
    for ax, col in zip(axes, cols):
        _band(ax, hist, col, _heads(hist), log=True, last=ax is axes[-1])
    return _finish_figure(fig, axes, f"Collapse of the latents ({train})", title, path)


def plot_accuracy(hist: pd.DataFrame, path: Path, title: str = "", train: str = "train split") -> str:
    """Fig. 5: train accuracy and validation accuracy per epoch, all heads (the test split is only
    evaluated at the end); runs without a validation split get the train panel alone."""
    if note := _need(hist, ["train/acc"], path.name):
        return note
    cols = ["train/acc"] + ([] if _need(hist, ["val/acc"], path.name) else ["val/acc"])
    fig, axes = _figure(len(cols))
    for ax, col in zip(axes, cols):
        _band(ax, hist.assign(**{col: hist[col] * 100}), col, _heads(hist), last=ax is axes[-1])
    heading = f"Accuracy per epoch ({train}" + (")" if len(cols) > 1 else "; no validation split)")
    return _finish_figure(fig, axes, heading, title, path)


def _save(fig, path: Path) -> str:
    """The figure as PNG (300 dpi: sharp at one column) and as a vector PDF beside it."""
    fig.savefig(path, dpi=300)
    fig.savefig(path.with_suffix(".pdf"))
    _plt().close(fig)
    return f"{path.name}: written (and {path.with_suffix('.pdf').name})"


# ---------------------------------------------------------------------------------------------- main


def _pick_latents(selected: pd.DataFrame) -> tuple[Path, str] | None:
    """latents.npz of the selected BinEnc run with the lowest seed that saved one (local runs only)."""
    if "path" not in selected:
        return None
    for _, r in selected[selected["head"] == "binenc"].sort_values("seed").iterrows():
        if isinstance(r["path"], str) and (Path(r["path"]) / files.LATENTS).exists():
            return Path(r["path"]) / files.LATENTS, f"train split, seed {r['seed']}, lr {r['lr']:g}, d={r['width']}"
    return None


def write_report(
    path, out=None, select: str = "val", metrics: list[str] | None = None, ddof: int = 1, wandb_mode: str = "auto"
) -> dict:
    """Load, select, aggregate, write everything into `out`, publish to W&B (`publish_wandb`; `wandb_mode`: auto,
    online, offline or off); returns {'markdown', 'files', 'notes', 'counts', 'wandb'}."""
    runs, hist = load_runs(path)
    local = None if str(path).startswith("wandb:") else Path(path)
    out = Path(out) if out else (local / "report" if local else Path("report"))
    out.mkdir(parents=True, exist_ok=True)
    counts = counts_line(runs)
    if not (runs["status"] == "finished").any():
        raise ValueError(f"{counts} No finished run to report on in {path}.")
    shown = [m for m, *_ in TABLE] + [m for m in (metrics or []) if m not in {t[0] for t in TABLE}]
    selected = select_runs(runs, by=select)
    table = aggregate(selected, shown, ddof)
    files, notes = [], []

    done = _order(runs[runs["status"] == "finished"]).assign(selected=lambda d: d["run_id"].isin(selected["run_id"]))
    for name, df in (("all_runs.csv", done), ("selected_runs.csv", selected), ("results.csv", table)):
        df.to_csv(out / name, index=False)
        files.append(out / name)

    for _, g in _order(runs).groupby(GROUP, sort=False, dropna=False):  # config differences inside a row
        g = g[g["status"] == "finished"]
        if "max_epochs" in g and g["max_epochs"].nunique() > 1:
            notes.append(
                f"note: {g['head'].iloc[0]} on {g['data'].iloc[0]} mixes max_epochs "
                f"{sorted(g['max_epochs'].dropna().unique().tolist())}"
            )
    how = "final validation accuracy" if select == "val" else "final TEST accuracy (the reference's choice)"
    if select == "val" and (selected["selected_on"] == "test").any():
        how += (
            "; runs trained without a validation split (data.val_fraction=0, protocol=reference) on final "
            "TEST accuracy, as the reference (column 'lr selected on')"
        )
    md = "\n".join(
        [
            f"# Results of {path}\n",
            counts,
            f"Learning rate selected per (head, seed) on {how}; ties: lower final validation CE, then smaller lr. "
            f"Cells: mean ± {'sample std (ddof=1)' if ddof == 1 else 'population std (ddof=0, as the paper'}"
            f"{')' if ddof == 0 else ''} over the n selected seeds with a value; accuracies and AUROCs in %.\n",
            to_markdown(table, shown),
        ]
    )
    bad = runs[runs["status"] != "finished"]
    if len(bad):
        md += "\n### runs not finished\n\n" + "\n".join(
            f"- {r['status']}: `{r['run_id']}`" + (f" ({r['error']})" if r["error"] else "") for _, r in bad.iterrows()
        )
        md += "\n"
    if paper := _paper_markdown(table["data"].unique()):
        md += "\n" + paper
    (out / "results.md").write_text(md)
    files.insert(0, out / "results.md")

    sel_hist = hist[hist["run_id"].isin(selected["run_id"])] if len(hist) else hist
    pairs = selected[["data", "backbone"]].drop_duplicates().itertuples(index=False, name=None)
    pairs = list(pairs)
    for data, backbone in pairs:
        suffix = f"_{data}_{backbone}" if len(pairs) > 1 else ""
        h = sel_hist[(sel_hist["data"] == data) & (sel_hist["backbone"] == backbone)] if len(sel_hist) else sel_hist
        s = selected[(selected["data"] == data) & (selected["backbone"] == backbone)]
        on = " and ".join(sorted(set(s["selected_on"]), reverse=True)) if "selected_on" in s else select
        title = f" — {data} / {backbone}, lr selected on {on}"
        aug = s["train_augmented"] if "train_augmented" in s else pd.Series(False, index=s.index)
        train = (
            "train split"
            if not aug.any()
            else "augmented train split"
            if aug.all()
            else "train split, augmented in part"
        )
        for fn, stem, arg in (
            (plot_binarity, "fig1_binarity", h),
            (plot_histograms, "fig2_histograms", None),
            (plot_agreement, "fig3_agreement", h),
            (plot_collapse, "fig4_collapse", h),
            (plot_accuracy, "fig5_accuracy", h),
        ):
            p = out / f"{stem}{suffix}.png"
            try:
                if fn is plot_histograms:
                    latents, run = _pick_latents(s) or (None, "")
                    note = fn(latents, p, title, run)
                elif len(arg) == 0:
                    note = f"{p.name}: skipped, no metrics.csv history"
                else:
                    note = fn(arg, p, title, train)
            except Exception as e:  # a figure never stops the report
                note = f"{p.name}: skipped, {type(e).__name__}: {e}"
            if note.startswith(f"{p.name}: written"):
                files += [p, p.with_suffix(".pdf")]
            else:
                notes.append("note: " + note)
    published = None
    if (target := wandb_target(path, runs)) and wandb_mode != "off":
        figures = [f for f in files if f.suffix == ".png"]
        published = publish_wandb(target, out, table, selected, figures, wandb_mode, {"select": select, "ddof": ddof})
    return {"markdown": md, "files": files, "notes": notes, "counts": counts, "wandb": published}


def wandb_target(path, runs: pd.DataFrame) -> dict | None:
    """Where a sweep's runs were logged on W&B: {'project', 'entity', 'group', 'ids'} (W&B run ids of
    the runs by run_id), or None when they were not (logger=csv/none)."""
    if str(path).startswith("wandb:"):
        entity, _, project = str(path)[len("wandb:") :].rpartition("/")
        return {
            "project": project,
            "entity": entity or None,
            "group": project,
            "ids": dict(zip(runs.run_id, runs.run_id)),
        }
    ids, logger, names = {}, None, set()
    for _, r in runs.iterrows():
        job = Path(r["path"])
        cfg = _read_yaml(job / files.CONFIG) or {}
        if "wandb_logger" in str((cfg.get("logger") or {}).get("_target_", "")):
            logger = logger or cfg["logger"]
            names.add(str(cfg.get("name")))
            if (job / files.WANDB_ID).exists():
                ids[r["run_id"]] = (job / files.WANDB_ID).read_text().strip()
    if logger is None:
        return None
    group = names.pop() if len(names) == 1 else Path(path).name
    return {"project": logger.get("project"), "entity": logger.get("entity"), "group": group, "ids": ids}


def publish_wandb(
    target: dict, out: Path, table: pd.DataFrame, selected: pd.DataFrame, figures: list[Path], mode: str, config: dict
) -> str:
    """One W&B run of job_type "report" in the sweep's project (group: the sweep name) holding the results
    table (`wandb.Table`) and the figures (`wandb.Image`); online, the runs the selection picked are tagged
    `selected`. Offline, the run is written under `out/wandb` for a later `wandb sync`. Returns a line to print."""
    import wandb

    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_run.wandb_logged_in() else "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(
        project=target["project"],
        entity=target["entity"],
        group=target["group"],
        job_type="report",
        name=f"report {target['group']}",
        tags=["report"],
        dir=str(out),
        mode=mode,
        config={**config, "runs_selected": len(selected)},
    )
    try:
        cells = table.astype(object).where(table.notna(), None)
        run.log(
            {
                "results": wandb.Table(dataframe=cells),
                "selected_runs": wandb.Table(dataframe=selected.astype(str)),
                **{f"figures/{f.stem}": wandb.Image(str(f)) for f in figures},
            }
        )
        if mode == "online":
            line = f"W&B report run: {run.url}"
            api = wandb.Api()
            for run_id in selected["run_id"]:
                if wid := target["ids"].get(run_id):
                    r = api.run(f"{run.entity}/{run.project}/{wid}")
                    if "selected" not in r.tags:
                        r.tags.append("selected")
                        r.update()
        else:
            line = f"W&B report run written offline; upload with: {wandb_run.offline_sync_command(out, run.id)}"
    finally:
        run.finish()
    return line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m binary_encoding.report", description=__doc__.split("\n")[0])
    ap.add_argument("path", help="multirun folder (searched recursively) or wandb:[entity/]project")
    ap.add_argument("--out", help="output folder (default PATH/report/)")
    ap.add_argument(
        "--select",
        choices=["val", "test"],
        default="val",
        help="pick the lr per (head, seed) on final validation (default) or test accuracy",
    )
    ap.add_argument(
        "--metric",
        action="append",
        default=[],
        help="extra summary.json key(s) for the table, e.g. --metric nc3 --metric msp_fpr95,nc4",
    )
    ap.add_argument(
        "--ddof",
        type=int,
        choices=[0, 1],
        default=1,
        help="std of the seeds: 1 = sample std (default), 0 = population std (the paper's error bars)",
    )
    ap.add_argument(
        "--wandb",
        choices=["auto", "online", "offline", "off"],
        default="auto",
        help="publish a job_type=report run to the sweep's W&B project when its runs were logged to W&B "
        "(auto: online when W&B has credentials, else offline for a later `wandb sync`)",
    )
    args = ap.parse_args(argv)
    metrics = [m.strip() for s in args.metric for m in s.split(",") if m.strip()]
    try:
        res = write_report(args.path, args.out, args.select, metrics, args.ddof, args.wandb)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"report: {e}") from None
    print(res["markdown"])
    for n in res["notes"]:
        print(n)
    print("written:")
    for f in res["files"]:
        print(f"  {f}")
    if res["wandb"]:
        print(res["wandb"])
    return 0
