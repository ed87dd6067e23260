"""Publishing a report to W&B: one run of job_type "report" in the sweep's project."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..record import files, wandb_run
from .load import _read_yaml


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


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """A frame for `wandb.Table`: missing values as None."""
    return df.astype(object).where(df.notna(), None)


def publish_wandb(
    target: dict,
    out: Path,
    table: pd.DataFrame,
    selected: pd.DataFrame,
    figures: list[Path],
    mode: str,
    config: dict,
    tables: dict[str, pd.DataFrame] | None = None,
) -> str:
    """One W&B run of job_type "report" in the sweep's project (group: the sweep name) holding the results
    table and `tables` (e.g. the claims; `wandb.Table`) and the figures (`wandb.Image`); online, the runs the
    selection picked are tagged `selected`. Offline, the run is written under `out/wandb` for a later
    `wandb sync`. Returns a line to print."""
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
        run.log(
            {
                "results": wandb.Table(dataframe=_cells(table)),
                **{name: wandb.Table(dataframe=_cells(df)) for name, df in (tables or {}).items() if len(df)},
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
