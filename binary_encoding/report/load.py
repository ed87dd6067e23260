"""Loading a sweep: job folders found under a path (or runs of a W&B project) as one row per job and
the per-epoch history of every job."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pandas as pd

from ..record import files, identity, summarize

GROUP = ["data", "backbone", "head", "width", "settings"]  # a table row; `seed` and `lr` vary inside it
JOB_FILES = (files.CONFIG, files.METRICS, files.SUMMARY, files.FAILED)
SKIP_DIRS = {"checkpoints", "wandb", "report", "__pycache__"}


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


def _read_summary(job: Path) -> tuple[dict | None, str]:
    """(summary, "") of a job whose summary.json counts (`summarize.read`: whole, and of the config and
    checkpoint beside it); (None, why) when it is cut, empty or another run's (a job killed while writing
    it, a disk that filled up, a folder reused): such a job is unfinished; (None, "") without one."""
    if not (job / files.SUMMARY).exists():
        return None, ""
    return summarize.read(job)


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
    rec["summary_keys"] = ",".join(summary)  # what the summary named (a NaN value reads as missing otherwise)
    rec["_config"] = identity.flat_config(cfg)
    return rec


def _settings(runs: pd.DataFrame) -> pd.Series:
    """Per finished run, the swept settings besides lr and seed: `key=value` of every config key whose value
    varies among the finished runs of its (data, backbone, head, width), e.g. `head.gamma_max=10.0`; failed
    and unfinished jobs (whose settings may be a cut-off attempt's, e.g. fewer epochs) get none and add none."""
    out = pd.Series("", index=runs.index, dtype=object)
    done = runs[runs["status"] == "finished"]
    for _, idx in done.groupby(GROUP[:-1], sort=False, dropna=False).groups.items():
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
    history_df: the metrics.csv rows of every job, with run_id and the columns above; a row with a value
    that is no number is left out, and runs_df's `unreadable_rows` says which (`read_history`).
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
        summary, unreadable = _read_summary(job)
        if summary is not None:
            status, error = "finished", ""
        elif (job / files.FAILED).exists():
            failed = _read_json(job / files.FAILED)
            failed = failed if isinstance(failed, dict) else {"error": failed}
            status = "failed"
            error = str(failed.get("error") or failed.get("message") or failed.get("exception") or failed)[:300]
        else:
            status, error = "unfinished", unreadable
        h, unreadable_rows = read_history(job / files.METRICS)
        if summary is not None and "two_valued" not in summary:
            summary = {**summary, **_two_valued_from_latents(job)}
        record = _run_record(run_id, cfg, summary or {}, status, error)
        records.append({**record, "path": str(job), "unreadable_rows": unreadable_rows})
        if "epoch" in h:
            histories.append(h.assign(run_id=run_id))
    return _finish(records, histories, str(root))


def _two_valued_from_latents(job: Path) -> dict:
    """`two_valued` and `two_valued_min` of a run whose summary predates the metric, from the training
    split's latents it saved at the end (`save_latents=true`): the value its summary would hold. {} without."""
    import numpy as np

    try:
        with np.load(job / files.LATENTS) as lat:
            z = lat["train_z"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # cut off (EOF), empty, no train_z
        return {}
    import torch

    from ..metrics.two_valued import two_valuedness

    t = two_valuedness(torch.from_numpy(z))
    return {"two_valued": t["mean"], "two_valued_min": t["min"]}


def read_history(path: Path) -> tuple[pd.DataFrame, str]:
    """(rows, what could not be read) of a job's metrics.csv: every value a number. A row holding a value
    that is no number (a corrupted line) is left out whole and named (its line in the file), so that one
    job's bad row neither turns the sweep's columns into text nor loses the figures of the other jobs."""
    if not path.exists():
        return pd.DataFrame(), ""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(), ""
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
        return pd.DataFrame(), f"cannot be read ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})"
    text = raw.apply(lambda c: c.str.strip())
    values = text.apply(pd.to_numeric, errors="coerce")
    bad = (values.isna() & text.ne("") & ~text.apply(lambda c: c.str.lower()).isin(["nan"])).any(axis=1)
    if "epoch" in values:
        bad |= values["epoch"].isna()
    lines = [str(i + 2) for i in raw.index[bad]]  # line 1 is the header
    why = f"line{'s' * (len(lines) > 1)} {', '.join(lines)} hold{'s' * (len(lines) == 1)} values that are no numbers"
    kept = text[~bad].reset_index(drop=True).apply(pd.to_numeric, errors="coerce")  # integers stay integers
    return kept, why if lines else ""


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
