"""The command line of the report, and `write_report`, which runs every part of it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from . import __doc__ as _package_doc
from .claims import write_claims
from .figures import plot_claims, write_figures
from .load import load_runs
from .publish import publish_wandb, wandb_target
from .select import _order, aggregate, counts_line, left_out, select_runs
from .tables import results_markdown, shown_columns, value_notes

DESCRIPTION = (_package_doc or "").split("\n")[0]
CLAIMS_FIGURE = "fig7_claims"


def write_report(
    path, out=None, select: str = "val", metrics: list[str] | None = None, ddof: int = 1, wandb_mode: str = "auto"
) -> dict:
    """Load, select, aggregate, write everything into `out`, publish to W&B (`publish_wandb`; `wandb_mode`: auto,
    online, offline or off); returns {'markdown', 'files', 'notes', 'counts', 'left_out', 'wandb'}."""
    runs, hist = load_runs(path)
    local = None if str(path).startswith("wandb:") else Path(path)
    out = Path(out) if out else (local / "report" if local else Path("report"))
    out.mkdir(parents=True, exist_ok=True)
    counts = counts_line(runs)
    if not (runs["status"] == "finished").any():
        raise ValueError(f"{counts} No finished run to report on in {path}.")
    shown = shown_columns(metrics)
    selected = select_runs(runs, by=select)
    table = aggregate(selected, shown, ddof)
    written, notes = [], []

    done = _order(runs[runs["status"] == "finished"]).assign(selected=lambda d: d["run_id"].isin(selected["run_id"]))
    for name, df in (("all_runs.csv", done), ("selected_runs.csv", selected), ("results.csv", table)):
        df.drop(columns=["summary_keys"], errors="ignore").to_csv(out / name, index=False)
        written.append(out / name)

    how = "final validation accuracy" if select == "val" else "final TEST accuracy (the reference's choice)"
    if select == "val" and (selected["selected_on"] == "test").any():
        how += (
            "; runs trained without a validation split (data.val_fraction=0, protocol=reference) on final "
            "TEST accuracy, as the reference (column 'lr selected on')"
        )
    dropped = left_out(runs, select)
    unusable = value_notes(runs, selected, shown)
    notes += [f"note: {n}" for n in unusable]
    md = results_markdown(sweep_name(path), counts, table, shown, how, ddof, dropped, unusable)
    claims_md, claims, per_seed, claim_files = write_claims(selected, out)
    md += "\n" + claims_md
    (out / "results.md").write_text(md)
    written[:0] = [out / "results.md", *claim_files]

    sel_hist = hist[hist["run_id"].isin(selected["run_id"])] if len(hist) else hist
    pairs = list(selected[["data", "backbone"]].drop_duplicates().itertuples(index=False, name=None))
    for data, backbone in pairs:
        suffix = f"_{data}_{backbone}" if len(pairs) > 1 else ""
        h = sel_hist[(sel_hist["data"] == data) & (sel_hist["backbone"] == backbone)] if len(sel_hist) else sel_hist
        s = selected[(selected["data"] == data) & (selected["backbone"] == backbone)]
        on = " and ".join(sorted(set(s["selected_on"]), reverse=True)) if "selected_on" in s else select
        aug = s["train_augmented"] if "train_augmented" in s else pd.Series(False, index=s.index)
        train = (
            "train split"
            if not aug.any()
            else "augmented train split"
            if aug.all()
            else "train split, augmented in part"
        )
        figs, skipped = write_figures(out, h, s, suffix, f" — {data} / {backbone}, lr selected on {on}", train)
        at = (per_seed["data"] == data) & (per_seed["backbone"] == backbone)
        p = out / f"{CLAIMS_FIGURE}{suffix}.png"
        try:
            note = plot_claims(per_seed[at], p, f" — {data} / {backbone}, lr selected on {on}")
        except Exception as e:  # a figure never stops the report
            note = f"{p.name}: skipped, {type(e).__name__}: {e}"
        if note.startswith(f"{p.name}: written"):
            figs += [p, p.with_suffix(".pdf")]
        else:
            skipped.append(f"note: {note}")
        written += figs
        notes += skipped
    published = None
    if (target := wandb_target(path, runs)) and wandb_mode != "off":
        figures = [f for f in written if f.suffix == ".png"]
        config = {"select": select, "ddof": ddof}
        tables = {"claims": claims, "claims_per_seed": per_seed}
        published = publish_wandb(target, out, table, selected, figures, wandb_mode, config, tables)
    return {"markdown": md, "files": written, "notes": notes, "counts": counts, "left_out": dropped, "wandb": published}


def sweep_name(path) -> str:
    """How results.md names the sweep: a W&B project as given, a folder relative to the working directory
    when it lies below it, else by its own name (never an absolute path of the machine that made it)."""
    if str(path).startswith("wandb:"):
        return str(path)
    folder = Path(path).resolve()
    try:
        relative = folder.relative_to(Path.cwd().resolve())
    except ValueError:
        return folder.name
    return folder.name if relative == Path(".") else str(relative)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m binary_encoding.report", description=DESCRIPTION)
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
