"""The report's tables: results.md (the markdown table per (data, backbone), the jobs left out, the
paper's numbers beside them); the columns are the metric catalog's `table` columns."""

from __future__ import annotations

import math

import pandas as pd

from ..metrics import catalog
from .style import HEAD_LABEL

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


def _cell(mean, std, fmt, n=None):
    """`mean ± std (n=k)`: k seeds have a value (no ± for one seed; – for none)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{mean:{fmt}}" if std is None or math.isnan(std) else f"{mean:{fmt}} ± {std:{fmt}}"
    return text if n is None else f"{text} (n={int(n)})"


def to_markdown(table: pd.DataFrame, metrics: list[str] | None = None) -> str:
    """The paper's table, one per (data, backbone); `metrics` are the summary keys shown (default: the
    catalog's table columns)."""
    columns = catalog.table_columns()
    spec = {m: (t, s, f) for m, t, s, f in columns}
    metrics = metrics or [m for m, *_ in columns]
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


def shown_columns(extra: list[str] | None = None) -> list[str]:
    """The summary keys of the table: the catalog's columns, then `extra` ones (`--metric`)."""
    keys = [m for m, *_ in catalog.table_columns()]
    return keys + [m for m in dict.fromkeys(extra or []) if m not in keys]


def value_notes(runs: pd.DataFrame, selected: pd.DataFrame, shown: list[str]) -> list[str]:
    """What the report could not use, by job and file: each summary value left out of a cell's mean
    (`select.dropped_values`), each metrics.csv row or file left out of the figures (`load.read_history`)."""
    from .select import dropped_values

    notes = [f"`{run_id}`: {why}" for run_id, why in dropped_values(selected, shown)]
    if "unreadable_rows" in runs:
        bad = runs[runs["unreadable_rows"].fillna("").astype(str) != ""]
        notes += [f"`{r.run_id}`: metrics.csv {r.unreadable_rows}: left out of the figures" for r in bad.itertuples()]
    return notes


def results_markdown(
    path, counts: str, table: pd.DataFrame, shown: list[str], how: str, ddof: int, left_out, notes=()
) -> str:
    """results.md: the counts, how the learning rate was chosen, the tables, the values the report could
    not use (`value_notes`), the jobs left out and why."""
    std = "sample std (ddof=1)" if ddof == 1 else "population std (ddof=0, as the paper)"
    md = "\n".join(
        [
            f"# Results of {path}\n",
            counts,
            f"Learning rate selected per (head, seed) on {how}; ties: lower final validation CE, then smaller lr. "
            f"Cells: mean ± {std} over the n selected seeds with a value; accuracies and AUROCs in %.\n",
            to_markdown(table, shown),
        ]
    )
    if notes:
        md += "\n### values left out\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    if left_out:
        md += "\n### jobs left out\n\n" + "\n".join(f"- `{run_id}`: {why}" for run_id, why in left_out) + "\n"
    if paper := _paper_markdown(table["data"].unique()):
        md += "\n" + paper
    return md
