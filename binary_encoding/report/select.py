"""Choosing and pooling: the learning rate per (data, backbone, head, width, settings, seed), the jobs
left out and why, and the mean ± std over seeds of every table column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import catalog
from .load import GROUP
from .style import HEAD_ORDER


def select_runs(runs: pd.DataFrame, by: str = "val") -> pd.DataFrame:
    """Per (data, backbone, head, width, seed), the finished run whose learning rate gives the best final
    `by` accuracy (`val` or `test`); runs without a validation split (`val_fraction` 0) are selected on
    test accuracy whatever `by` says. Ties: lower final validation CE, then smaller lr. The column
    `selected_on` says which split chose each run."""
    if by not in ("val", "test"):
        raise ValueError(f"select by 'val' or 'test', not {by!r}")
    if "settings" not in runs:  # a frame not made by load_runs: no swept settings besides lr and seed
        runs = runs.assign(settings="")
    done = _selection_values(runs[(runs["status"] == "finished") & ~_diverged(runs)].copy(), by)
    if done["_acc"].isna().all():
        raise ValueError(f"no finished run has {by}_acc")
    done = done[done["_acc"].notna()]
    done["_ce"] = done["final_val_ce"] if "final_val_ce" in done else np.nan
    done = done.sort_values(["_acc", "_ce", "lr"], ascending=[False, True, True], na_position="last")
    sel = done.groupby(GROUP + ["seed"], sort=False, dropna=False).head(1).drop(columns=["_acc", "_ce"])
    return _order(sel).reset_index(drop=True)


def _selection_values(done: pd.DataFrame, by: str) -> pd.DataFrame:
    """`done` with `selected_on` (the split that chooses each run) and `_acc` (its final accuracy there)."""
    done["selected_on"] = np.where(_no_val_split(done), "test", by)
    done["_acc"] = [r.get(f"{on}_acc", np.nan) for on, (_, r) in zip(done["selected_on"], done.iterrows())]
    done["_acc"] = done["_acc"].where(finite(done["_acc"]))  # "inf" or "0.9x" never wins the selection
    return done


def finite(values: pd.Series) -> pd.Series:
    """Which values are finite numbers (NaN, inf, text and other objects are not): the only ones averaged."""
    return pd.Series(np.isfinite(pd.to_numeric(values, errors="coerce").astype(float)), index=values.index)


def shown_value(v) -> str:
    """A summary value as results.md names it: NaN (summary.json's null), quoted text, or the number."""
    return "NaN" if v is None or (isinstance(v, float) and np.isnan(v)) else repr(v) if isinstance(v, str) else str(v)


def left_out(runs: pd.DataFrame, by: str = "val") -> list[tuple[str, str]]:
    """(run_id, why) of every job the selection cannot use: failed, unfinished (no summary.json, or one that
    cannot be read), diverged, or a summary without a finite value of its selection metric (missing,
    NaN, inf or text)."""
    out = []
    done = _selection_values(runs[runs["status"] == "finished"].copy(), by) if len(runs) else runs
    diverged = _diverged(done)
    for i, r in runs.iterrows():
        error = r.get("error") if isinstance(r.get("error"), str) else ""
        if r["status"] == "failed":
            out.append((r["run_id"], "failed" + (f" ({error})" if error else "")))
        elif r["status"] != "finished":
            out.append((r["run_id"], f"unfinished ({error or 'no summary.json'})"))
        elif diverged[i]:
            out.append((r["run_id"], "diverged (final training accuracy at chance level)"))
        elif pd.isna(done.at[i, "_acc"]):
            key = f"{done.at[i, 'selected_on']}_acc"
            raw = r.get(key)
            why = f"holds {shown_value(raw)} for" if _in_summary(r, key) else "has no"
            out.append((r["run_id"], f"summary.json {why} {key}, the selection metric"))
    return out


def _in_summary(r: pd.Series, key: str) -> bool:
    """Whether the summary of row `r` named `key` (load keeps the names it held in `summary_keys`)."""
    return key in str(r.get("summary_keys", "")).split(",")


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
    a finite value: `dropped_values` names the others), `lr_per_seed` and `lr_selected_on` (val, test)."""
    columns = catalog.table_columns()
    metrics = metrics or [m for m, *_ in columns]
    scale = {m: s for m, _, s, _ in columns}
    if "settings" not in selected:  # a frame not made by load_runs: no swept settings besides lr and seed
        selected = selected.assign(settings="")
    rows = []
    for key, g in selected.groupby(GROUP, sort=False, dropna=False):
        row = dict(zip(GROUP, key))
        row["n"] = len(g)
        for m in metrics:
            v = pd.to_numeric(g[m][finite(g[m])]) * scale.get(m, 1) if m in g else pd.Series(dtype=float)
            unit = "_pct" if scale.get(m, 1) == 100 else ""
            row[f"{m}{unit}_mean"] = v.mean() if len(v) else np.nan
            row[f"{m}{unit}_std"] = v.std(ddof=ddof) if len(v) > ddof and np.isfinite(v).all() else np.nan
            row[f"{m}_n"] = len(v)  # seeds with a value: a cell may hold fewer than the row's n
        row["lr_per_seed"] = "; ".join(f"{s}:{lr:g}" for s, lr in zip(g["seed"], g["lr"]))
        on = sorted(set(g["selected_on"])) if "selected_on" in g else []
        row["lr_selected_on"] = "+".join(on)
        rows.append(row)
    return _order(pd.DataFrame(rows)).reset_index(drop=True)


def dropped_values(selected: pd.DataFrame, metrics: list[str]) -> list[tuple[str, str]]:
    """(run_id, why) of every value a table cell leaves out of its mean: each value of a selected run that
    is there but no finite number (inf, text), and each missing or null one in a cell that other seeds
    fill (the cell's n is then below its row's n)."""
    out = []
    if "settings" not in selected:
        selected = selected.assign(settings="")
    for _, g in selected.groupby(GROUP, sort=False, dropna=False):
        for m in metrics:
            if m not in g:
                continue
            ok, missing = finite(g[m]), g[m].isna()
            for i in g.index[~ok & (~missing | ok.any())]:  # a cell without any value shows "–": said enough
                raw = g.at[i, m]
                why = f"holds {shown_value(raw)} for {m}" if _in_summary(g.loc[i], m) else f"has no {m}"
                out.append((g.at[i, "run_id"], f"summary.json {why}, not a finite number: left out of its cell's mean"))
    return out


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
