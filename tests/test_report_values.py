"""The report's parts one by one, on small synthetic inputs with known answers: which folders are jobs, the
rows of metrics.csv, the fields a job's config gives, the selection, the order of the rows, the tables'
layout, the committed reports of docs/results/ reproduced from their runs, the claims against docs/method.md
§4.7, the data drawn in the figures (read from the matplotlib artists), the command line's options and the
W&B target."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_report import _job

from binary_encoding import report
from binary_encoding.metrics import catalog
from binary_encoding.report import claims as report_claims
from binary_encoding.report import cli as report_cli
from binary_encoding.report import figures as report_figures
from binary_encoding.report import load as report_load
from binary_encoding.report import tables as report_tables

DOCS = Path(__file__).resolve().parents[1] / "docs" / "method.md"


def _touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ------------------------------------------------------------------------------------------------
# load: job folders, metrics.csv, the fields of a job
# ------------------------------------------------------------------------------------------------


def test_job_folders_are_found_by_any_job_file_but_never_in_skipped_hidden_or_nested_folders(tmp_path):
    """Each of config.yaml, metrics.csv, summary.json and failed.json makes a job folder; wandb/, report/,
    checkpoints/, __pycache__/ and hidden folders are not searched (an offline W&B run holds a config.yaml),
    nor anything below a job folder."""
    for rel in ("a/failed.json", "b/config.yaml", "b/sub/summary.json", "c/d/metrics.csv", "e/summary.json"):
        _touch(tmp_path / rel)
    for skipped in ("wandb/offline-run/files", "report/x", "checkpoints/y", "__pycache__/z", ".hidden"):
        _touch(tmp_path / skipped / "config.yaml")
    _touch(tmp_path / "f" / "notes.txt")
    assert report_load.find_jobs(tmp_path) == [tmp_path / p for p in ("a", "b", "c/d", "e")]
    assert report_load.find_jobs(tmp_path / "b") == [tmp_path / "b"]  # the path itself may be the job


def test_rows_of_metrics_csv_that_are_no_numbers_are_named_by_their_lines_and_nan_text_is_kept(tmp_path):
    """Line 1 is the header; a row with text or without an epoch is left out and named ("lines 3, 5, 6
    hold", "line 3 holds"); a written "nan" is a missing value, not a bad row; epochs stay integers."""
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val/acc\n0,10,0.5\n1,x,0.6\n2,30,nan\n,40,0.7\n3,y,0.8\n4,50,0.9\n")
    rows, why = report_load.read_history(path)
    assert why == "lines 3, 5, 6 hold values that are no numbers"
    assert rows["epoch"].tolist() == [0, 2, 4] and rows["epoch"].dtype.kind == "i"
    assert rows["step"].tolist() == [10, 30, 50] and math.isnan(rows["val/acc"][1]) and rows["val/acc"][2] == 0.9
    path.write_text("epoch,val/acc\n0,0.5\n1,bad\n")
    assert report_load.read_history(path)[1] == "line 3 holds values that are no numbers"
    path.write_text("")
    assert report_load.read_history(path)[1] == "" and report_load.read_history(tmp_path / "none.csv")[1] == ""


def test_a_job_row_takes_epochs_val_fraction_augmentation_seed_and_lr_from_its_config(tmp_path):
    """max_epochs, data.val_fraction and metrics.train_augmented from config.yaml; the seed and lr from the
    summary when the config lacks them; a job folder given as the path is named by its folder."""
    d = _job(tmp_path / "sweep", "binenc", 3, 1e-3, val=0.8, test=0.7)
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["trainer"]["max_epochs"], cfg["data"]["val_fraction"], cfg["metrics"] = 7, 0.2, {"train_augmented": True}
    del cfg["seed"], cfg["lr"]
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    runs, _ = report.load_runs(d)
    r = runs.iloc[0]
    assert r["run_id"] == d.name and r["status"] == "finished"
    assert (r["max_epochs"], r["val_fraction"], r["train_augmented"]) == (7, 0.2, True)
    assert (r["seed"], r["lr"], r["width"]) == (3, 1e-3, 4)
    assert (r["final_val_ce"], r["logged_epochs"]) == (1.0, 2)  # _job's last metrics.csv row: ce / 1, epoch 2


def test_a_failed_job_keeps_the_message_of_its_failed_json_cut_to_300_characters(tmp_path):
    root = tmp_path / "sweep"
    a = _job(root, "binenc", 0, 1e-3, status="failed")
    (a / "failed.json").write_text(json.dumps({"message": "CUDA out of memory " + "x" * 400}))
    b = _job(root, "binenc", 1, 1e-3, status="failed")
    (b / "failed.json").write_text(json.dumps("killed"))
    _job(root, "binenc", 2, 1e-3, val=0.9, test=0.9)
    runs, _ = report.load_runs(root)
    errors = runs.set_index("seed")["error"]
    assert errors[0] == ("CUDA out of memory " + "x" * 400)[:300] and len(errors[0]) == 300
    assert errors[1] == "killed"


# ------------------------------------------------------------------------------------------------
# select: runs without a selection value, the order of the rows
# ------------------------------------------------------------------------------------------------

BASE = {"status": "finished", "data": "digits", "backbone": "mlp", "head": "binenc", "width": 4}


def test_a_seed_whose_runs_have_no_finite_selection_value_gets_no_row():
    """Seed 1's runs hold NaN and inf validation accuracies (their test accuracy is the best): seed 1 is not
    in the selection; a sweep in which no finished run has the value is an error, whatever failed runs hold."""
    runs = pd.DataFrame(
        [
            {**BASE, "run_id": "a", "seed": 0, "lr": 1e-3, "val_acc": 0.8, "test_acc": 0.8},
            {**BASE, "run_id": "b", "seed": 1, "lr": 1e-3, "val_acc": float("nan"), "test_acc": 0.99},
            {**BASE, "run_id": "c", "seed": 1, "lr": 1e-2, "val_acc": float("inf"), "test_acc": 0.99},
        ]
    )
    assert report.select_runs(runs)["run_id"].tolist() == ["a"]
    assert report.select_runs(runs, by="test")["run_id"].tolist() == ["a", "b"]  # tie on 0.99: smaller lr
    none = runs.assign(val_acc=float("nan"))
    none.loc[0, "status"], none.loc[0, "val_acc"] = "failed", 0.9
    with pytest.raises(ValueError, match="no finished run has val_acc"):
        report.select_runs(none)


def test_table_rows_follow_data_backbone_the_papers_head_order_then_width_and_seeds_ascend():
    """Runs given in a shuffled order: the selection, then the table, go by data and backbone alphabetically,
    then BinEnc, NoPen, LinPen, NonlinPen and other heads by name, each head's widths ascending, and
    `lr_per_seed` lists the seeds in order."""
    keys = [
        ("digits", "mlp", "zpen", 4), ("digits", "mlp", "nonlinpen", 4), ("digits", "mlp", "linpen", 8),
        ("digits", "mlp", "apen", 4), ("cifar10", "mlp", "linpen", 4), ("digits", "mlp", "linpen", 4),
        ("digits", "conv", "nopen", -1), ("digits", "mlp", "nopen", -1), ("digits", "mlp", "binenc", 4),
    ]  # fmt: skip
    rows = [
        {**BASE, "data": d, "backbone": b, "head": h, "width": w, "seed": s, "lr": lr, "val_acc": 0.5}
        for d, b, h, w in keys
        for s, lr in ((2, 3e-4), (0, 1e-5 * 1.5), (1, 0.01))  # the grid of docs/method.md §4.3
    ]
    table = report.aggregate(report.select_runs(pd.DataFrame(rows)))
    assert list(zip(table["data"], table["backbone"], table["head"], table["width"])) == [
        ("cifar10", "mlp", "linpen", 4), ("digits", "conv", "nopen", -1), ("digits", "mlp", "binenc", 4),
        ("digits", "mlp", "nopen", -1), ("digits", "mlp", "linpen", 4), ("digits", "mlp", "linpen", 8),
        ("digits", "mlp", "nonlinpen", 4), ("digits", "mlp", "apen", 4), ("digits", "mlp", "zpen", 4),
    ]  # fmt: skip
    assert set(table["lr_per_seed"]) == {"0:1.5e-05; 1:0.01; 2:0.0003"} and set(table["n"]) == {3}
    md = report.to_markdown(table)
    assert [line for line in md.splitlines() if line.startswith("###")] == [
        "### cifar10 / mlp", "### digits / conv", "### digits / mlp",
    ]  # fmt: skip
    block = md.split("### digits / mlp")[1]  # LinPen has two widths: every head with one is named by it
    labels = [_cells(line)[0] for line in block.splitlines() if line.startswith("| ") and "|---" not in line][1:]
    assert labels == [
        "BinEnc (d=4)",
        "NoPen",
        "LinPen (d=4)",
        "LinPen (d=8)",
        "NonlinPen (d=4)",
        "apen (d=4)",
        "zpen (d=4)",
    ]


def test_one_seed_has_no_sample_std_and_a_population_std_of_zero():
    sel = pd.DataFrame([{**BASE, "seed": 0, "lr": 1e-3, "test_acc": 0.9, "nc1": 0.25, "selected_on": "val"}])
    one = report.aggregate(sel, ["test_acc", "nc1"])
    assert one.loc[0, "test_acc_pct_mean"] == pytest.approx(90.0) and math.isnan(one.loc[0, "test_acc_pct_std"])
    assert one.loc[0, "nc1_mean"] == 0.25 and "nc1_pct_mean" not in one  # not a percentage: unscaled
    assert report.aggregate(sel, ["test_acc"], ddof=0).loc[0, "test_acc_pct_std"] == 0.0
    assert one.loc[0, "lr_selected_on"] == "val"


RESULTS = DOCS.parent / "results"


@pytest.mark.parametrize("sweep", sorted(p.name for p in RESULTS.iterdir() if (p / "all_runs.csv").exists()))
def test_the_committed_reports_are_reproduced_from_their_all_runs_csv(sweep):
    """docs/results/<sweep>: from all_runs.csv (every finished run of a real sweep, several learning rates
    per seed), the selection picks the runs of selected_runs.csv in its order, and their mean ± sample std
    and the claims reproduce results.csv, claims.csv and claims_per_seed.csv, value by value."""

    def read(name):
        return pd.read_csv(RESULTS / sweep / name, dtype={"settings": str}).fillna({"settings": ""})

    assert "sample std (ddof=1)" in (RESULTS / sweep / "results.md").read_text()
    selected = report.select_runs(read("all_runs.csv"))
    assert selected["run_id"].tolist() == read("selected_runs.csv")["run_id"].tolist()
    want = read("results.csv")
    table = report.aggregate(selected, [c.removesuffix("_n") for c in want if c.endswith("_n") and c != "n"])
    assert list(table.columns) == list(want.columns)
    pd.testing.assert_frame_equal(table, want, check_dtype=False, rtol=1e-9)
    summary, per_seed = report_claims.claims_tables(selected)
    pd.testing.assert_frame_equal(summary, pd.read_csv(RESULTS / sweep / "claims.csv"), check_dtype=False, rtol=1e-9)
    got = per_seed.reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got, pd.read_csv(RESULTS / sweep / "claims_per_seed.csv"), check_dtype=False, rtol=1e-9
    )


# ------------------------------------------------------------------------------------------------
# tables: the layout of results.md
# ------------------------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_every_markdown_table_has_its_header_and_as_many_cells_in_every_row(tmp_path):
    """The sweep's table: `head`, the catalog's column titles in order, `lr selected on`, `lr per seed`, and
    a separator and rows of that many cells; for a CIFAR-10 sweep the paper's CIFAR-10 table follows, its
    heads in the paper's order (and no CIFAR-100 table)."""
    sel = pd.DataFrame(
        [
            {**BASE, "data": "cifar10", "head": h, "seed": s, "lr": 1e-3, "test_acc": 0.9, "selected_on": "val"}
            for h in ("linpen", "binenc")
            for s in (0, 1)
        ]
    )
    shown = report_tables.shown_columns(["my_metric"])
    table = report.aggregate(sel, shown)
    md = report_tables.results_markdown("s", "counts", table, shown, "validation", 1, [])
    lines = [line for line in md.splitlines() if line.startswith("|")]
    titles = [t for _, t, _, _ in catalog.table_columns()]
    assert _cells(lines[0]) == ["head", *titles, "my_metric", "lr selected on", "lr per seed"]
    assert _cells(lines[1]) == ["---"] * len(_cells(lines[0]))
    assert _cells(lines[2])[0] == "BinEnc" and _cells(lines[3])[0] == "LinPen"
    assert _cells(lines[2])[-2:] == ["validation", "0:0.001; 1:0.001"]
    assert all(len(_cells(line)) == len(_cells(lines[0])) for line in lines[:4])
    paper = md[md.index("### the paper (v3, 5 seeds, lr selected on test): cifar10") :].splitlines()
    assert paper[2] == "| head | test acc (%) | train acc (%) | Mahalanobis AUROC (%) | DeepFool rho |"
    assert paper[3] == "|---|---|---|---|---|"
    assert paper[4:8] == [
        "| BinEnc | 93.79 ± 0.21 | 99.97 | 87.74 ± 0.62 | 0.1176 ± 0.0281 |",
        "| NoPen | 93.33 ± 0.05 | 99.85 | 77.50 ± 2.84 | 0.0120 ± 0.0004 |",
        "| LinPen | 93.27 ± 0.15 | 99.86 | 75.47 ± 1.43 | 0.0131 ± 0.0006 |",
        "| NonlinPen | 92.90 ± 0.21 | 99.83 | 81.45 ± 2.56 | 0.0134 ± 0.0008 |",
    ]
    assert "cifar100" not in md
    digits = report.aggregate(sel.assign(data="digits"), shown)
    assert "the paper" not in report_tables.results_markdown("s", "c", digits, shown, "validation", 1, [])


# ------------------------------------------------------------------------------------------------
# claims: each claim as docs/method.md §4.7 states it
# ------------------------------------------------------------------------------------------------

# the rows of the table of docs/method.md §4.7, in its order
DOC_CLAIM_METRICS = [
    "agreement_code", "n_codes", "nc1", "two_valued", "test_acc", "mahalanobis_auroc", "msp_auroc", "deepfool_rho",
]  # fmt: skip


def _doc_claims() -> list[tuple[str, str]]:
    """(claimed, effect per seed) of each row of docs/method.md §4.7's table of claims."""
    text = DOCS.read_text()
    section = text[text.index("### 4.7 The paper's claims") :].split("\n## ")[0]
    rows = [_cells(line) for line in section.splitlines() if line.startswith("|")][2:]
    return [(r[2], r[3]) for r in rows]


def test_each_claim_has_the_direction_and_effect_docs_method_states():
    """Per claim metric: BinEnc claimed higher or lower, the effect a difference (in percentage points for
    accuracies and AUROCs) or a factor, as docs/method.md §4.7 says; checked on claims.csv's columns and on
    effects of known size (BinEnc against LinPen over 2 seeds)."""
    docs = _doc_claims()
    assert [c.metric for c in report_claims.CLAIMS] == DOC_CLAIM_METRICS and len(docs) == len(DOC_CLAIM_METRICS)
    binenc = {"agreement_code": (0.9, 0.8), "n_codes": (10, 12), "nc1": (0.01, 0.04), "two_valued": (0.9, 0.7),
              "test_acc": (0.91, 0.92), "mahalanobis_auroc": (0.85, 0.87), "msp_auroc": (0.83, 0.80),
              "deepfool_rho": (0.2, 0.3)}  # fmt: skip
    linpen = {"agreement_code": (0.5, 0.6), "n_codes": (20, 18), "nc1": (0.02, 0.16), "two_valued": (0.4, 0.4),
              "test_acc": (0.90, 0.90), "mahalanobis_auroc": (0.80, 0.80), "msp_auroc": (0.81, 0.81),
              "deepfool_rho": (0.1, 0.1)}  # fmt: skip
    rows = [
        {**BASE, "head": h, "seed": s, "lr": 1e-3, **{m: v[s] for m, v in values.items()}}
        for h, values in (("binenc", binenc), ("linpen", linpen))
        for s in (0, 1)
    ]
    summary, _ = report_claims.claims_tables(pd.DataFrame(rows))
    got = summary.set_index("metric")
    kind = {
        "difference BinEnc - other": "difference BinEnc - other",
        "difference": "difference BinEnc - other",
        "difference in percentage points": "difference BinEnc - other (percentage points)",
        "factor other / BinEnc": "factor other / BinEnc",
        "factor BinEnc / other": "factor BinEnc / other",
    }
    for metric, (claimed, effect) in zip(DOC_CLAIM_METRICS, docs):
        assert (got.loc[metric, "claimed"], got.loc[metric, "effect_kind"]) == (claimed, kind[effect]), metric
    effects = {  # nc1: other / BinEnc = 2 and 4; rho: BinEnc / other = 2 and 3 (geometric means)
        "agreement_code": 0.3, "n_codes": -8.0, "nc1": math.sqrt(2 * 4), "two_valued": 0.4, "test_acc": 1.5,
        "mahalanobis_auroc": 6.0, "msp_auroc": 0.5, "deepfool_rho": math.sqrt(2 * 3),
    }  # fmt: skip
    assert got["effect"].to_dict() == pytest.approx(effects)
    assert got["wins"].to_dict() == {**dict.fromkeys(DOC_CLAIM_METRICS, 2), "msp_auroc": 1}


def test_a_factor_skips_seeds_without_a_positive_value_and_a_factor_below_one_reads_as_its_inverse():
    """NC1 of BinEnc twice LinPen's on seeds 0 and 1 and 0 on seed 2: the factor other / BinEnc is 0.5 on
    the two seeds that pair up (n=2, no division by zero), reversed, written "2x higher (factor 0.5 to 0.5)"."""
    rows = [
        {**BASE, "head": h, "seed": s, "lr": 1e-3, "nc1": v}
        for h, values in (("binenc", (0.2, 0.4, 0.0)), ("linpen", (0.1, 0.2, 0.1)))
        for s, v in enumerate(values)
    ]
    selected = pd.DataFrame(rows)
    summary, per_seed = report_claims.claims_tables(selected)
    r = summary.set_index("metric").loc["nc1"]
    assert (r["n"], r["wins"], r["verdict"]) == (2, 0, "reversed")
    assert (r["effect"], r["ci_low"], r["ci_high"]) == pytest.approx((0.5, 0.5, 0.5))
    assert per_seed["seed"].tolist() == [0, 1] and per_seed["effect"].tolist() == pytest.approx([0.5, 0.5])
    md = report_claims.claims_markdown(summary, per_seed, selected)
    row = "| 1. codes and collapse | NC1 | LinPen | 3.00e-01 | 1.50e-01 | 2x higher (factor 0.5 to 0.5) | 0 of 2 |"
    assert row in md


def test_with_several_widths_each_claim_row_names_the_binenc_row_it_compares():
    """BinEnc and LinPen at widths 4 and 8: the claims table says which BinEnc row each LinPen row is paired
    with, and the per-seed tables are headed by both rows."""
    rows = [
        {**BASE, "head": h, "width": w, "seed": s, "lr": 1e-3, "test_acc": 0.9 + 0.01 * s + (h == "binenc") / 50}
        for h in ("linpen", "binenc")
        for w in (8, 4)
        for s in (0, 1)
    ]
    selected = pd.DataFrame(rows)
    summary, per_seed = report_claims.claims_tables(selected)
    md = report_claims.claims_markdown(summary, per_seed, selected)
    assert summary[["binenc", "other"]].drop_duplicates().values.tolist() == [
        ["BinEnc (d=4)", "LinPen (d=4)"], ["BinEnc (d=8)", "LinPen (d=8)"],
    ]  # fmt: skip
    assert "| 2. accuracy | test accuracy (%) | LinPen (d=4) (BinEnc (d=4)) | 92.50 | 90.50 | +2.00 (" in md
    assert "| 2. accuracy | test accuracy (%) | LinPen (d=8) (BinEnc (d=8)) |" in md
    assert "#### per seed: BinEnc (d=8) / LinPen (d=8)" in md


# ------------------------------------------------------------------------------------------------
# cli: the options reach write_report; publish: where a sweep was logged on W&B
# ------------------------------------------------------------------------------------------------


def test_the_command_line_options_reach_write_report(monkeypatch, capsys):
    calls = []

    def fake(*args):
        calls.append(args)
        return {"markdown": "MD", "notes": ["note: n"], "files": [Path("f")], "wandb": None}

    monkeypatch.setattr(report_cli, "write_report", fake)
    assert report.main(["p"]) == 0
    assert calls[-1] == ("p", None, "val", [], 1, "auto")
    argv = [
        "p",
        "--out",
        "o",
        "--select",
        "test",
        "--metric",
        "a, b",
        "--metric",
        "c,",
        "--ddof",
        "0",
        "--wandb",
        "off",
    ]
    assert report.main(argv) == 0
    assert calls[-1] == ("p", "o", "test", ["a", "b", "c"], 0, "off")
    assert capsys.readouterr().out.splitlines()[:3] == ["MD", "note: n", "written:"]
    for bad in (["p", "--ddof", "2"], ["p", "--select", "train"], ["p", "--wandb", "maybe"]):
        with pytest.raises(SystemExit):
            report.main(bad)
    capsys.readouterr()


def test_the_w_and_b_target_of_a_project_and_of_a_sweep_logged_to_w_and_b(tmp_path):
    runs = pd.DataFrame({"run_id": ["x1", "x2"]})
    assert report.wandb_target("wandb:me/proj", runs) == {
        "project": "proj", "entity": "me", "group": "proj", "ids": {"x1": "x1", "x2": "x2"},
    }  # fmt: skip
    assert report.wandb_target("wandb:proj", runs)["entity"] is None
    root = tmp_path / "sweep"
    logger = {"_target_": "binary_encoding.record.wandb_run.wandb_logger", "project": "pr", "entity": "en"}
    jobs = []
    for seed in (0, 1):
        d = _job(root, "binenc", seed, 1e-3, val=0.9, test=0.9)
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        (d / "config.yaml").write_text(yaml.safe_dump({**cfg, "logger": logger, "name": "digits_mlp"}))
        jobs.append(d)
    (jobs[1] / "wandb_id.txt").write_text("abc123\n")
    runs, _ = report.load_runs(root)
    assert report.wandb_target(root, runs) == {
        "project": "pr", "entity": "en", "group": "digits_mlp", "ids": {jobs[1].name: "abc123"},
    }  # fmt: skip
    assert report.wandb_target(tmp_path / "other", runs.iloc[:0]) is None


# ------------------------------------------------------------------------------------------------
# figures: the data of the drawn lines and bands
# ------------------------------------------------------------------------------------------------

# per seed, per epoch: the mean over the three seeds differs from their median, the sample std from the population's
SEEDS = {0: [0.1, 0.2, 0.9], 1: [0.2, 0.4, 0.1], 2: [0.6, 0.3, 0.2]}
WIDTH = {"binenc": 4, "nopen": -1, "linpen": 4, "nonlinpen": 4}


def _history(cols: dict[str, dict[int, list[float]]], heads=("nonlinpen", "linpen", "nopen", "binenc")) -> pd.DataFrame:
    """metrics.csv rows of every head and seed: column -> seed -> values per epoch (the same for each head,
    shifted by the head's position so that the curves differ)."""
    rows = []
    for k, head in enumerate(heads):
        for seed in SEEDS:
            for epoch in range(3):
                values = {c: v[seed][epoch] + (k if c != "train/sigma_w" else 0) for c, v in cols.items()}
                rows.append(
                    {"run_id": f"{head}-{seed}", "epoch": epoch, "head": head, "width": WIDTH[head], "settings": "",
                     "data": "digits", "backbone": "mlp", "seed": seed, **values}
                )  # fmt: skip
    return pd.DataFrame(rows)


def _band(ax, k: int = 0) -> dict[float, tuple[float, float]]:
    """x -> (lowest, highest) y of the k-th band (fill_between) of an axis."""
    verts = ax.collections[k].get_paths()[0].vertices
    return {x: (verts[verts[:, 0] == x, 1].min(), verts[verts[:, 0] == x, 1].max()) for x in np.unique(verts[:, 0])}


def test_a_curve_is_the_mean_of_its_seeds_with_a_band_of_one_sample_std_in_the_papers_head_order(tmp_path, drawn):
    """fig3: per head a line through the mean of its three seeds at epochs 1, 2, 3 and a band of ± the
    sample std (ddof 1), the heads in the paper's order, each label with its head's n; fig1 shows BinEnc
    and LinPen only."""
    cols = ["train/agreement_dim", *[k for k, _ in report_figures.panels()["fig1_binarity"]]]
    hist = _history({c: SEEDS for c in cols})
    report_figures.plot_agreement(hist, tmp_path / "fig3_agreement.png")
    (ax,) = drawn["fig3_agreement"].axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["BinEnc (n=3)", "NoPen (n=3)", "LinPen (n=3)", "NonlinPen (n=3)"]
    values = np.array(list(SEEDS.values()))  # seeds x epochs
    mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
    assert not np.allclose(mean, np.median(values, axis=0)) and not np.allclose(std, values.std(axis=0))
    for k, (line, shift) in enumerate(zip(lines, (3, 2, 1, 0))):  # BinEnc was given last (+3)
        assert list(line.get_xdata()) == [1, 2, 3]
        assert np.asarray(line.get_ydata()) == pytest.approx(mean + shift)
        band = _band(ax, k)
        assert sorted(band) == [1, 2, 3]
        assert np.array([band[x] for x in (1, 2, 3)]) == pytest.approx(np.c_[mean + shift - std, mean + shift + std])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "encoding agreement"
    report_figures.plot_binarity(hist, tmp_path / "fig1_binarity.png")
    fig1 = drawn["fig1_binarity"].axes
    assert len(fig1) == 3
    for ax in fig1:
        assert [line.get_label() for line in ax.get_lines()] == ["BinEnc (n=3)", "LinPen (n=3)"]
    assert [ax.get_xlabel() for ax in fig1] == ["", "", "epoch"]  # the shared epoch axis is labelled once


def test_curves_of_one_head_are_named_by_their_width_or_settings_and_other_settings_get_hollow_markers(tmp_path, drawn):
    binenc = _history({"train/agreement_dim": SEEDS}, heads=("binenc",))
    wide = binenc.assign(width=8, run_id=binenc["run_id"] + "-wide")
    nopen = _history({"train/agreement_dim": SEEDS}, heads=("nopen",))
    report_figures.plot_agreement(pd.concat([wide, binenc, nopen]), tmp_path / "widths.png")
    labels = [line.get_label() for line in drawn["widths"].axes[0].get_lines()]
    assert labels == ["BinEnc (d=4) (n=3)", "BinEnc (d=8) (n=3)", "NoPen (n=3)"]
    ref = binenc.assign(settings="protocol=reference", run_id=binenc["run_id"] + "-ref")
    report_figures.plot_agreement(pd.concat([ref, binenc.assign(settings="protocol=default")]), tmp_path / "set.png")
    lines = drawn["set"].axes[0].get_lines()
    assert [line.get_label() for line in lines] == [
        "BinEnc [protocol=default] (n=3)",
        "BinEnc [protocol=reference] (n=3)",
    ]
    colour = report.head_style("binenc")["color"]
    assert [line.get_markerfacecolor() for line in lines] == [colour, "white"]
    assert {line.get_color() for line in lines} == {colour}


def test_the_collapse_figure_is_on_log_scales_and_leaves_values_that_are_not_positive_out_of_the_mean(tmp_path, drawn):
    """fig4: σ_W above NC1, both on log scales (the label says so); a σ_W of 0 (seed 2, epoch 1) is left out
    of that epoch's mean, and a band reaching below 0 is cut at a tenth of the mean."""
    sigma = {0: [1e-2, 1e-3, 1e-4], 1: [3e-2, 3e-3, 3e-4], 2: [0.0, 2e-3, 2e-4]}
    nc1 = {0: [1.0, 0.1, 0.01], 1: [3.0, 0.3, 0.03], 2: [2.0, 0.2, 0.02]}
    hist = _history({"train/sigma_w": sigma, "train/nc1": nc1}, heads=("binenc",))
    report_figures.plot_collapse(hist, tmp_path / "fig4_collapse.png")
    top, bottom = drawn["fig4_collapse"].axes
    assert top.get_ylabel() == "σ_W (mean entry of Σ_W) (log)" and bottom.get_ylabel().startswith("NC1 = ")
    assert top.get_yscale() == bottom.get_yscale() == "log" and bottom.get_ylabel().endswith(" (log)")
    (line,) = top.get_lines()
    assert np.asarray(line.get_ydata()) == pytest.approx([2e-2, 2e-3, 2e-4])  # epoch 1: mean of 1e-2 and 3e-2
    assert np.asarray(bottom.get_lines()[0].get_ydata()) == pytest.approx([2.0, 0.2, 0.02])
    hist.loc[(hist["seed"] == 0) & (hist["epoch"] == 2), "train/sigma_w"] = 1e-2  # std above the mean
    report_figures.plot_collapse(hist, tmp_path / "again.png")
    values = np.array([1e-2, 3e-4, 2e-4])
    low, high = _band(drawn["again"].axes[0])[3]
    assert (low, high) == pytest.approx((values.mean() / 10, values.mean() + values.std(ddof=1)))


def test_the_peak_distance_is_drawn_on_a_log_scale_only_where_it_spans_more_than_a_decade(tmp_path, drawn):
    cols = [k for k, _ in report_figures.panels()["fig1_binarity"]]
    narrow = {s: [1.0, 2.0, 9.0] for s in SEEDS}
    report_figures.plot_binarity(_history({c: narrow for c in cols}, heads=("binenc",)), tmp_path / "narrow.png")
    wide = {s: [0.5, 2.0, 9.0] for s in SEEDS}  # 18x
    report_figures.plot_binarity(_history({c: wide for c in cols}, heads=("binenc",)), tmp_path / "wide.png")
    assert [ax.get_yscale() for ax in drawn["narrow"].axes] == ["linear"] * 3
    assert [ax.get_yscale() for ax in drawn["wide"].axes] == ["linear", "linear", "log"]


def test_the_accuracy_figure_in_percent_drops_the_validation_panel_of_runs_without_one(tmp_path, drawn):
    acc = {s: [0.5, 0.6, 0.7] for s in SEEDS}
    hist = _history({"train/acc": acc, "val/acc": acc}, heads=("binenc",))
    report_figures.plot_accuracy(hist, tmp_path / "with.png")
    report_figures.plot_accuracy(hist.drop(columns="val/acc"), tmp_path / "without.png")
    both, alone = drawn["with"], drawn["without"]
    assert [ax.get_title(loc="left") for ax in both.axes] == ["Accuracy", "Validation accuracy"]
    assert [ax.get_ylabel() for ax in both.axes] == ["train accuracy (%)", "validation accuracy (%)"]
    assert np.asarray(both.axes[1].get_lines()[0].get_ydata()) == pytest.approx([50.0, 60.0, 70.0])
    assert [ax.get_title(loc="left") for ax in alone.axes] == ["Accuracy"]
    assert "no validation split" in alone._suptitle.get_text() and "no validation" not in both._suptitle.get_text()


def test_the_histograms_are_of_the_first_two_latent_dimensions_of_the_lowest_selected_binenc_seed(tmp_path, drawn):
    """fig2: 80 bins of z1 and of z2 (numpy's histogram) of latents.npz of the selected BinEnc run with the
    lowest seed that saved one (NoPen's and seed 0's without latents do not count)."""
    rng = np.random.default_rng(0)
    paths = {}
    for head, seed, latents in (("nopen", 0, True), ("binenc", 0, False), ("binenc", 2, True), ("binenc", 1, True)):
        d = tmp_path / f"{head}{seed}"
        d.mkdir()
        if latents:
            z = rng.standard_normal((200, 3)) * [1.0, 3.0, 9.0] + seed
            np.savez(d / "latents.npz", train_z=z.astype(np.float32))
        paths[head, seed] = str(d)
    selected = pd.DataFrame([{"head": h, "seed": s, "lr": 3e-4, "width": 4, "path": p} for (h, s), p in paths.items()])
    latents, run = report_figures._pick_latents(selected)
    assert latents == Path(paths["binenc", 1]) / "latents.npz"
    assert run == "train split, seed 1, lr 0.0003, d=4"
    report_figures.plot_histograms(latents, tmp_path / "fig2_histograms.png")
    z = np.load(latents)["train_z"]
    axes = drawn["fig2_histograms"].axes
    assert [ax.get_xlabel() for ax in axes] == ["latent z1", "latent z2"]
    for j, ax in enumerate(axes):
        counts, edges = np.histogram(z[:, j], bins=80)
        assert [p.get_height() for p in ax.patches] == counts.tolist()
        assert [p.get_x() for p in ax.patches] == pytest.approx(edges[:-1].tolist())


# ------------------------------------------------------------------------------------------------
# write_report: one set of figures per (data, backbone), from that pair's selected runs only
# ------------------------------------------------------------------------------------------------


def test_each_data_set_gets_its_own_figures_from_its_own_selected_runs(tmp_path, monkeypatch):
    """Two data sets in one sweep: the figures of each are suffixed `_<data>_<backbone>` and drawn from the
    histories of that data set's selected runs; the heading says how the lr was chosen and whether the
    training split was augmented (digits: one run of two, other: none)."""
    root = tmp_path / "sweep"
    for data in ("digits", "other"):
        for seed in (0, 1):
            for lr, val in ((1e-3, 0.9), (1e-2, 0.5)):
                d = _job(root / data, "binenc", seed, lr, val=val, test=val)
                cfg = yaml.safe_load((d / "config.yaml").read_text())
                cfg["data"]["name"] = data
                cfg["metrics"] = {"train_augmented": data == "digits" and seed == 1}
                (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    calls = []

    def figures(out, hist, selected, suffix, title, train):
        calls.append((suffix, sorted(set(hist["run_id"])), sorted(selected["run_id"]), title, train))
        return [], []

    monkeypatch.setattr(report_cli, "write_figures", figures)
    monkeypatch.setattr(report_cli, "plot_claims", lambda per_seed, p, title: f"{p.name}: skipped")
    report.write_report(root, tmp_path / "out", wandb_mode="off")
    picked = {data: [f"{data}/head=binenc,lr=0.001,seed={s}" for s in (0, 1)] for data in ("digits", "other")}
    assert calls == [
        ("_digits_mlp", picked["digits"], picked["digits"], " — digits / mlp, lr selected on val",
         "train split, augmented in part"),
        ("_other_mlp", picked["other"], picked["other"], " — other / mlp, lr selected on val", "train split"),
    ]  # fmt: skip


def test_a_curve_label_counts_every_seed_when_one_seed_logged_fewer_epochs(tmp_path, drawn):
    """A curve's n is its number of seeds, the most at any epoch: a seed cut short (no row at the last epoch)
    still counts, and the last point is the mean of the two seeds that reached it."""
    hist = _history({"train/agreement_dim": SEEDS}, heads=("binenc",))
    short = hist[~((hist["run_id"] == "binenc-2") & (hist["epoch"] == 2))]
    report_figures.plot_agreement(short, tmp_path / "short.png")
    (line,) = drawn["short"].axes[0].get_lines()
    assert line.get_label() == "BinEnc (n=3)"
    assert np.asarray(line.get_ydata()) == pytest.approx([0.3, 0.3, (0.9 + 0.1) / 2])


def test_only_runs_with_unreadable_rows_get_a_note_also_when_the_column_reads_back_empty_as_nan(tmp_path):
    """all_runs.csv read back gives NaN where a run had no unreadable row (and a failed job has none at
    all): no note for those, one for the run whose metrics.csv had bad lines."""
    bad = "line 3 holds values that are no numbers"
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "unreadable_rows": ["", bad, ""]})
    runs.to_csv(tmp_path / "all_runs.csv", index=False)
    back = pd.read_csv(tmp_path / "all_runs.csv")
    assert back["unreadable_rows"].isna().sum() == 2
    none = pd.DataFrame(columns=["run_id", *report_load.GROUP])
    assert report_tables.value_notes(back, none, []) == [f"`b`: metrics.csv {bad}: left out of the figures"]


def test_a_clean_sweep_gets_no_note(tmp_path, no_figures):
    """Two heads x two seeds x two learning rates, every run finished with every value: the report has
    nothing to say about them (a note on a row that mixes nothing would be noise on every report)."""
    root = tmp_path / "sweep"
    for head in ("binenc", "linpen"):
        for seed in (0, 1):
            for lr, val in ((1e-3, 0.9), (1e-2, 0.5)):
                _job(root, head, seed, lr, val=val, test=val)
    res = report.write_report(root, tmp_path / "out", wandb_mode="off")
    assert res["notes"] == [] and res["left_out"] == []


def test_runs_logged_to_several_w_and_b_names_are_grouped_by_the_sweep_folder(tmp_path):
    """One `name` for every run: that is the W&B group; two names (two sweeps under one folder): the
    folder's name, never one of the two picked at random."""
    root = tmp_path / "both"
    logger = {"_target_": "binary_encoding.record.wandb_run.wandb_logger", "project": "pr", "entity": "en"}
    for seed, name in ((0, "first"), (1, "second")):
        d = _job(root, "binenc", seed, 1e-3, val=0.9, test=0.9)
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        (d / "config.yaml").write_text(yaml.safe_dump({**cfg, "logger": logger, "name": name}))
    runs, _ = report.load_runs(root)
    assert report.wandb_target(root, runs)["group"] == "both"
