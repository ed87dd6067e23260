"""The report's words around its numbers, line by line: where a job's fields come from when its config is
missing, W&B projects read through a stand-in API, the swept settings a row is named by, the notes and
sections results.md writes only when needed, the cells' text, the claims' wording, the figures' headings,
legends, sizes and skip notes, the W&B report run's names and tags, and the defaults of the Python API."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from test_report import _job
from test_report_values import BASE, SEEDS, _cells, _history

from binary_encoding import report
from binary_encoding.report import claims as report_claims
from binary_encoding.report import cli as report_cli
from binary_encoding.report import figures as report_figures
from binary_encoding.report import load as report_load
from binary_encoding.report import publish as report_publish
from binary_encoding.report import select as report_select
from binary_encoding.report import tables as report_tables

# ------------------------------------------------------------------------------------------------
# load: where a job's fields come from, W&B projects, the swept settings
# ------------------------------------------------------------------------------------------------


def test_a_job_takes_hydras_config_then_its_summary_and_its_config_wins_over_its_summary(tmp_path):
    """Without config.yaml the job's .hydra/config.yaml is read; without either, data, backbone, head, seed
    and lr come from summary.json (no width: -1); where both hold a value, the config's counts."""
    root = tmp_path / "sweep"
    hydra_only = _job(root, "linpen", 0, 1e-3, val=0.9, test=0.9)
    (hydra_only / "config.yaml").unlink()
    bare = _job(root, "binenc", 1, 3e-3, val=0.9, test=0.9, extra={"data": "other"})
    (bare / "config.yaml").unlink()
    shutil.rmtree(bare / ".hydra")
    differs = _job(root, "binenc", 2, 1e-3, val=0.9, test=0.9, extra={"data": "other", "seed": 99, "lr": 5.0})
    runs, _ = report.load_runs(root)
    r = runs.set_index("run_id")
    assert r.loc[hydra_only.name, ["head", "width", "max_epochs"]].tolist() == ["linpen", 4, 3]
    assert r.loc[bare.name, ["data", "backbone", "head", "width", "seed", "lr"]].tolist() == [
        "other", "mlp", "binenc", -1, 1, 3e-3,
    ]  # fmt: skip
    assert pd.isna(r.loc[bare.name, "max_epochs"])
    assert r.loc[differs.name, ["data", "seed", "lr"]].tolist() == ["digits", 2, 1e-3]


def test_a_failed_job_is_explained_by_its_error_message_or_exception_else_by_the_whole_file(tmp_path):
    root = tmp_path / "sweep"
    for seed, failed in enumerate(
        ({"exception": "KeyError: 'x'"}, {"error": "", "message": "disk full"}, {"code": 3}, ["a", "b"])
    ):
        d = _job(root, "binenc", seed, 1e-3, status="failed")
        (d / "failed.json").write_text(json.dumps(failed))
    runs, _ = report.load_runs(root)
    assert runs.set_index("seed")["error"].tolist() == ["KeyError: 'x'", "disk full", "{'code': 3}", "['a', 'b']"]


def test_a_metrics_csv_pandas_cannot_parse_is_named_with_the_parsers_first_line_and_nan_in_any_case_is_kept(
    tmp_path,
):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,a\n0,1\n1,2,3\n")
    rows, why = report_load.read_history(path)
    assert rows.empty and why == (
        "cannot be read (ParserError: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3)"
    )
    runs = pd.DataFrame({"run_id": ["r"], "unreadable_rows": [why]})
    none = pd.DataFrame(columns=["run_id", *report_load.GROUP])
    assert report_tables.value_notes(runs, none, []) == [f"`r`: metrics.csv {why}: left out of the figures"]
    path.write_text("epoch,a\n0,NaN\n1,Nan\n2,0.5\n")
    rows, why = report_load.read_history(path)
    assert why == "" and rows["epoch"].tolist() == [0, 1, 2] and rows["a"].isna().tolist() == [True, True, False]


def test_the_final_validation_ce_is_the_last_value_logged_and_the_history_carries_each_runs_keys(tmp_path):
    """A last metrics.csv row without val/ce (e.g. the end-of-training row) does not blank the final CE;
    every history row carries its run's data, backbone, head, width, settings, seed, lr and status."""
    d = _job(tmp_path / "sweep", "binenc", 1, 3e-3, val=0.9, test=0.9)
    h = pd.read_csv(d / "metrics.csv")
    pd.concat([h, pd.DataFrame([{"epoch": 2, "step": 99}])]).to_csv(d / "metrics.csv", index=False)
    runs, hist = report.load_runs(tmp_path / "sweep")
    assert (runs.loc[0, "final_val_ce"], runs.loc[0, "logged_epochs"]) == (1.0, 2)
    assert hist[[*report_load.GROUP, "seed", "lr", "status"]].drop_duplicates().values.tolist() == [
        ["digits", "mlp", "binenc", 4, "", 1, 3e-3, "finished"]
    ]


def test_a_folder_without_jobs_names_the_files_it_looked_for(tmp_path):
    with pytest.raises(ValueError) as e:
        report.load_runs(tmp_path)
    assert str(e.value) == f"no runs found in {tmp_path} (looked for folders with config.yaml, metrics.csv, " + (
        "summary.json, failed.json)"
    )


class _Run:
    """A W&B run as `wandb.Api().runs()` gives it: the attributes load_wandb reads."""

    def __init__(self, id, state, summary, history=None, job_type="train", config=None):
        self.id, self.state, self.summary, self.job_type = id, state, summary, job_type
        self.config = config or {
            "seed": 0, "lr": 1e-3, "data": {"name": "digits", "val_fraction": 0.1}, "backbone": {"name": "mlp"},
            "head": {"name": "binenc", "width": 4}, "trainer": {"max_epochs": 3},
        }  # fmt: skip
        self._history = history if history is not None else pd.DataFrame()

    def history(self, samples, pandas):
        assert pandas and samples >= 100_000  # every epoch, not W&B's default sample of 500 rows
        return self._history


def test_a_w_and_b_project_is_read_from_final_summary_keys_and_its_history_per_epoch(monkeypatch):
    """Through a stand-in `wandb.Api`: the report's own runs are skipped; a run with `final/` keys is finished
    (other summary keys are not its results), one without is failed when W&B says failed or crashed, else
    unfinished; the history has one row per epoch (the last value of each column) and no row without one."""
    import wandb

    history = pd.DataFrame(
        {"epoch": [0, 0, np.nan, 1], "train/acc": [0.5, np.nan, 0.7, 0.8], "val/ce": [np.nan, 2.0, np.nan, 1.5]}
    )
    runs = [
        _Run("a1", "finished", {"final/val_acc": 0.9, "final/test_acc": 0.8, "val/acc": 0.1}, history),
        _Run("b2", "crashed", {"val/acc": 0.2}),
        _Run("c3", "running", {}),
        _Run("r0", "finished", {"final/val_acc": 1.0}, job_type="report"),
    ]
    asked = []

    class Api:
        def runs(self, project):
            asked.append(project)
            return runs

    monkeypatch.setattr(wandb, "Api", Api)
    got, hist = report.load_runs("wandb:me/proj")
    assert asked == ["me/proj"]
    assert got[["run_id", "status", "error"]].values.tolist() == [
        ["a1", "finished", ""], ["b2", "failed", "W&B state crashed"], ["c3", "unfinished", ""],
    ]  # fmt: skip
    a1 = got.set_index("run_id").loc["a1"]
    assert (a1["val_acc"], a1["test_acc"], a1["width"], a1["max_epochs"], a1["val_fraction"]) == (0.9, 0.8, 4, 3, 0.1)
    assert "val/acc" not in got and (a1["final_val_ce"], a1["logged_epochs"]) == (1.5, 1)
    assert hist[["epoch", "train/acc", "val/ce"]].values.tolist() == [[0, 0.5, 2.0], [1, 0.8, 1.5]]
    runs[:] = [runs[-1]]
    with pytest.raises(ValueError, match=r"^no runs found in W&B project me/proj "):
        report.load_runs("wandb:me/proj")


def _configs(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"status": "finished", "data": "d", "backbone": "b", **r} for r in rows])


def test_a_row_is_named_by_every_swept_key_in_order_and_keys_the_protocol_sets_go_without_saying():
    """protocol (3 values) sets data.val_fraction (0.1, 0, 0.1: not the other way round), head.gamma_max varies
    on its own: both named, in alphabetical order; head.width (another row) and keys that differ between
    heads name nothing; a failed run neither gets settings nor makes a key vary."""
    vf = {"default": 0.1, "reference": 0.0, "short": 0.1}
    rows = [
        {
            "head": "binenc",
            "width": w,
            "_config": {"protocol": p, "data.val_fraction": vf[p], "head.gamma_max": g, "head.width": w, "seed": s},
        }  # fmt: skip
        for w in (4, 8)
        for p in vf
        for g in (1.0, 2.0)
        for s in (0, 1)
    ]
    rows.append({"head": "linpen", "width": 4, "_config": {"protocol": "default", "head.alpha": 0.5, "head.width": 4}})
    rows.append({"head": "linpen", "width": 4, "_config": {"protocol": "default", "head.alpha": 0.5, "head.width": 4}})
    rows.append({"head": "nopen", "width": -1, "status": "failed", "_config": {"protocol": "x", "head.width": None}})
    rows.append({"head": "nopen", "width": -1, "_config": {"protocol": "default", "head.width": None}})
    s = report_load._settings(_configs(rows))
    assert s[:4].tolist() == [
        "head.gamma_max=1.0,protocol=default", "head.gamma_max=1.0,protocol=default",
        "head.gamma_max=2.0,protocol=default", "head.gamma_max=2.0,protocol=default",
    ]  # fmt: skip
    assert set(s[:24]) == {f"head.gamma_max={g},protocol={p}" for g in (1.0, 2.0) for p in vf}
    assert s[24:].tolist() == ["", "", "", ""]


# ------------------------------------------------------------------------------------------------
# select: why a job is left out, how a value is named, the counts
# ------------------------------------------------------------------------------------------------


def test_a_job_left_out_says_failed_alone_without_a_message_and_names_the_metric_its_split_selects_on():
    """A failed job of a frame not made by load_runs (no error text): "failed", never "failed ()"; a run
    without a validation split is selected on test accuracy, so missing that is what it is left out for."""
    runs = pd.DataFrame(
        [
            {**BASE, "run_id": "f", "status": "failed", "seed": 0, "lr": 1e-3, "error": np.nan},
            {**BASE, "run_id": "ref", "seed": 0, "lr": 1e-3, "val_fraction": 0.0, "val_acc": 0.9},
            {**BASE, "run_id": "ok", "seed": 1, "lr": 1e-3, "val_fraction": 0.1, "val_acc": 0.9, "test_acc": 0.9},
        ]
    )
    assert report.left_out(runs) == [("f", "failed"), ("ref", "summary.json has no test_acc, the selection metric")]


@pytest.mark.parametrize(("value", "shown"), [(None, "NaN"), (float("nan"), "NaN"), ("x", "'x'"), (0.5, "0.5")])
def test_a_summary_value_is_named_as_results_md_writes_it(value, shown):
    assert report_select.shown_value(value) == shown


def test_the_counts_name_only_finished_runs_as_diverged():
    runs = pd.DataFrame({"status": ["finished", "failed", "unfinished"], "diverged": [False, True, True]})
    assert report.counts_line(runs) == "3 runs found: 1 finished, 1 failed, 1 unfinished."


def test_a_metric_no_seed_holds_gets_no_note_and_one_that_some_seeds_lack_gets_one_per_seed():
    """A cell without any value shows "–" and needs no note; a cell that one of two seeds fills names the
    other seed's run."""
    sel = pd.DataFrame(
        [
            {**BASE, "run_id": "s0", "seed": 0, "lr": 1e-3, "test_acc": 0.9, "nc1": 0.1},
            {**BASE, "run_id": "s1", "seed": 1, "lr": 1e-3, "test_acc": 0.8, "nc1": np.nan},
        ]
    )
    assert report_select.dropped_values(sel, ["test_acc", "nc1", "deepfool_rho"]) == [
        ("s1", "summary.json has no nc1, not a finite number: left out of its cell's mean")
    ]
    sel["deepfool_rho"] = np.nan
    assert len(report_select.dropped_values(sel, ["deepfool_rho"])) == 0


# ------------------------------------------------------------------------------------------------
# tables: the cells' text, the sections of results.md
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((1.234, 0.5, ".2f", 3.0), "1.23 ± 0.50 (n=3)"),
        ((1.234, float("nan"), ".2f", 1), "1.23 (n=1)"),
        ((1.234, None, ".2f"), "1.23"),
        ((float("nan"), 0.1, ".2f", 0), "–"),
        ((None, None, ".2f", 0), "–"),
    ],
)
def test_a_cell_is_mean_plus_minus_std_with_its_n_and_a_dash_without_a_value(args, text):
    assert report_tables._cell(*args) == text


def test_a_table_without_per_cell_counts_or_values_says_the_rows_n_a_dash_and_how_each_row_was_selected():
    """A results table made before per-cell counts: each cell states its row's n; a metric no seed holds
    is "–"; an extra metric is written with 4 significant digits; a row that mixed validation and test
    selection says so."""
    sel = pd.DataFrame(
        [
            {**BASE, "run_id": "a", "seed": 0, "lr": 1e-3, "test_acc": 0.9, "my": 0.1234567, "selected_on": "val"},
            {**BASE, "run_id": "b", "seed": 1, "lr": 1e-2, "test_acc": 0.8, "my": 0.1234567, "selected_on": "test"},
        ]
    )
    table = report.aggregate(sel, ["test_acc", "nc1", "my"])
    assert table.loc[0, ["lr_selected_on", "nc1_n"]].tolist() == ["test+val", 0] and math.isnan(
        table.loc[0, "nc1_mean"]
    )
    row = _cells(report.to_markdown(table, ["test_acc", "nc1", "my"]).splitlines()[4])
    assert row[1:] == ["85.00 ± 7.07 (n=2)", "–", "0.1235 ± 0 (n=2)", "test+val", "0:0.001; 1:0.01"]
    old = table.drop(columns=[c for c in table if c.endswith("_n") and c != "n"])
    assert _cells(report.to_markdown(old, ["test_acc"]).splitlines()[4])[1] == "85.00 ± 7.07 (n=2)"


def test_results_md_has_no_sections_for_values_or_jobs_left_out_when_there_are_none_and_else_says_them_in_order():
    sel = pd.DataFrame([{**BASE, "run_id": "a", "seed": 0, "lr": 1e-3, "test_acc": 0.9, "selected_on": "val"}])
    table = report.aggregate(sel, ["test_acc"])
    clean = report_tables.results_markdown("s", "1 run.", table, ["test_acc"], "x", 1, [])
    assert "left out" not in clean
    assert clean.splitlines()[:3] == ["# Results of s", "", "1 run."]
    md = report_tables.results_markdown("s", "c", table, ["test_acc"], "x", 1, [("j", "failed")], ["`v`: why"])
    assert md.index("### values left out\n\n- `v`: why\n") < md.index("### jobs left out\n\n- `j`: failed\n")
    assert "Learning rate selected per (head, seed) on x; ties: lower final validation CE, then smaller lr." in md


# ------------------------------------------------------------------------------------------------
# claims: the effect's words, the markdown around the verdicts
# ------------------------------------------------------------------------------------------------

CLAIM = {c.metric: c for c in report_claims.CLAIMS}


@pytest.mark.parametrize(
    ("metric", "effect", "low", "high", "text"),
    [
        ("deepfool_rho", 2.0, 1.5, 3.0, "2x higher (factor 1.5 to 3)"),  # claimed higher, a factor above 1
        ("deepfool_rho", 0.25, 0.2, 0.3, "4x lower (factor 0.2 to 0.3)"),
        ("nc1", 5.0, float("nan"), float("nan"), "5x lower"),  # one seed: no interval
        ("n_codes", -6.0, -7.25, -4.75, "-6.0 (-7.2 to -4.8)"),  # codes: one decimal
        ("test_acc", 0.333, -1.0, 2.0, "+0.33 (-1.00 to +2.00)"),
        ("test_acc", float("nan"), float("nan"), float("nan"), "–"),
    ],
)
def test_an_effect_reads_as_a_signed_difference_or_a_factor_in_words_with_its_interval(metric, effect, low, high, text):
    c = CLAIM[metric]
    assert report_claims._effect(c, effect) + report_claims._interval(c, low, high) == text


def test_the_claims_section_leaves_unmeasured_values_as_dashes_and_warns_of_single_seeds_only_when_all_are():
    """LinPen pairs on 2 seeds (NC1 only on seed 0), NoPen on one: the warning that no verdict can be given
    is not written (one comparison has 2 seeds); a metric no pair holds is "–"; a seed without a metric's
    pair shows "–" in the per-seed table."""
    values = {("binenc", 0): 0.9, ("binenc", 1): 0.92, ("linpen", 0): 0.88, ("linpen", 1): 0.9, ("nopen", 0): 0.8}
    rows = [
        {
            **BASE,
            "head": h,
            "width": -1 if h == "nopen" else 4,
            "seed": s,
            "lr": 1e-3,
            "test_acc": v,
            "nc1": 0.1 if s == 0 else np.nan,
            "n_codes": 10.0 + s + (h != "binenc"),
        }  # fmt: skip
        for (h, s), v in values.items()
    ]
    selected = pd.DataFrame(rows)
    summary, per_seed = report_claims.claims_tables(selected)
    md = report_claims.claims_markdown(summary, per_seed, selected)
    assert "Fewer than 2 seeds pair up" not in md
    lines = md.splitlines()
    assert "| 1. codes and collapse | joint-code agreement | LinPen | – | – | – | 0 of 0 | not measured |" in lines
    assert (
        "| 1. codes and collapse | codes (one per class at best) | LinPen | 10.5 | 11.5 | -1.0 (-1.0 to -1.0) | "
        + ("2 of 2 | holds on every seed |")
        in lines
    )
    block = md[md.index("#### per seed: BinEnc / LinPen") :].split("\n\n")[1].splitlines()
    assert block[0] == "| seed | codes (one per class at best) | NC1 | test accuracy (%) |"
    assert block[2:] == [
        "| 0 | 10.0 / 11.0 (-1.0) | 1.00e-01 / 1.00e-01 (1x lower) | 90.00 / 88.00 (+2.00) |",
        "| 1 | 11.0 / 12.0 (-1.0) | – | 92.00 / 90.00 (+2.00) |",
    ]
    assert md.index("#### per seed: BinEnc / NoPen") < md.index("#### per seed: BinEnc / LinPen")  # the paper's order


def test_the_claims_figure_says_each_claims_direction_and_draws_factors_on_a_log_scale_from_a_decade():
    """Two panels: NC1 (a factor, values 50x apart: log) and test accuracy (a difference, 50x apart: linear);
    each title says the claimed direction, the x axis names the two heads, the legend one entry per head;
    two columns of a paper wide."""
    per_seed = pd.DataFrame(
        [
            {
                "metric": m,
                "other_head": h,
                "other": report.HEAD_LABEL[h],
                "binenc": "BinEnc",
                "seed": s,
                "other_value": o,
                "binenc_value": b,
            }  # fmt: skip
            for m, (o, b) in (("nc1", (0.5, 0.01)), ("test_acc", (50.0, 1.0)))
            for h in ("linpen", "nopen")
            for s in (0, 1)
        ]
    )
    fig = report_figures.claims_figure(per_seed, " — d / b")
    try:
        nc1, acc = fig.get_axes()
        assert nc1.get_title(loc="left") == "NC1, lower claimed" and nc1.get_yscale() == "log"
        assert acc.get_title(loc="left") == "test accuracy (%), higher claimed" and acc.get_yscale() == "linear"
        assert [t.get_text() for t in acc.get_xticklabels()] == ["other head", "BinEnc"]
        (legend,) = fig.legends
        assert [t.get_text() for t in legend.get_texts()] == ["LinPen", "NoPen"] and legend._ncols == 2
        assert fig._suptitle.get_text().replace("\n", " ") == (
            "The paper's claims, seed by seed: each line one seed, other head → BinEnc — d / b"
        )
        assert fig.get_size_inches() == pytest.approx((2 * report.COLUMN_WIDTH, 0.9 + 1.6))
    finally:
        report_figures._plt().close(fig)


# ------------------------------------------------------------------------------------------------
# figures: headings, legends, sizes, bands, skip notes
# ------------------------------------------------------------------------------------------------


def test_every_figure_has_its_heading_with_the_split_and_the_title_below(tmp_path, drawn):
    """Figures the report names take their heading from `FIGURES`; another (fig6) is headed by its first
    panel's title; the split ("train split" by default) in brackets, the title on a line of its own."""
    cols = [k for ps in report_figures.panels().values() for k, _ in ps]
    hist = _history({c: SEEDS for c in cols}, heads=("binenc", "linpen"))
    want = {
        "fig1_binarity": "Binarity of the latents, 2-component GMM (train split)",
        "fig3_agreement": "Encoding agreement per dimension (train split)",
        "fig4_collapse": "Collapse of the latents (train split)",
        "fig5_accuracy": "Accuracy per epoch (train split)",
        "fig6_two_valued": "Two-valuedness: variance explained by the sign (train split)",
    }
    plots = [report.plot_binarity, report.plot_agreement, report.plot_collapse, report.plot_accuracy]  # defaults
    for stem, plot in zip(want, [*plots, lambda h, p: report.plot_figure("fig6_two_valued", h, p)]):
        plot(hist, tmp_path / f"{stem}.png")
    report.plot_figure("fig5_accuracy", hist, tmp_path / "titled.png", " — d / b, lr selected on val", "augmented")
    assert {stem: drawn[stem]._suptitle.get_text().replace("\n", " ") for stem in want} == want  # wrapped to fit
    assert drawn["titled"]._suptitle.get_text() == "Accuracy per epoch (augmented)\nd / b, lr selected on val"


def test_a_figure_is_one_column_wide_with_stacked_panels_on_one_epoch_axis_in_8_point_text(tmp_path, drawn):
    """Three panels: 3.4 x (0.9 + 3 x 1.9) inches, sharing the epoch axis; 8-point titles, 7-point ticks and
    legend; a legend of two columns for short labels, of one for long ones; one seed draws no band; markers
    on about 8 points of a long curve."""
    cols = [k for k, _ in report_figures.panels()["fig1_binarity"]]
    hist = _history({c: SEEDS for c in cols}, heads=("binenc", "linpen"))
    report_figures.plot_binarity(hist, tmp_path / "short.png")
    fig = drawn["short"]
    assert fig.get_size_inches() == pytest.approx((3.4, 0.9 + 3 * 1.9))
    top, middle, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert top.title.get_fontsize() == 8 and top.get_yticklabels()[0].get_fontsize() == 7
    (legend,) = fig.legends
    assert legend._ncols == 2 and legend.get_texts()[0].get_fontsize() == 7
    long = pd.concat([hist, hist.assign(settings="head.gamma_max=10.0", run_id=hist["run_id"] + "-cap")])
    report_figures.plot_binarity(long, tmp_path / "long.png")
    assert drawn["long"].legends[0]._ncols == 1  # "BinEnc [head.gamma_max=10.0] (n=3)": 34 characters
    one = hist[hist["run_id"] == "binenc-0"].iloc[[0] * 17].assign(epoch=range(17), **{"train/agreement_dim": 0.5})
    report_figures.plot_agreement(one, tmp_path / "one.png")
    (ax,) = drawn["one"].axes
    assert len(ax.collections) == 0 and ax.get_lines()[0].get_label() == "BinEnc (n=1)"
    assert ax.get_lines()[0].get_markevery() == 2  # 17 epochs // 8


def test_a_figure_that_cannot_be_drawn_says_why(tmp_path):
    hist = _history({"train/agreement_dim": SEEDS}, heads=("nopen",))
    p = tmp_path / "f.png"
    assert (
        report_figures.plot_figure("fig9_none", hist, p) == "f.png: skipped, no metric of the catalog draws fig9_none"
    )
    assert report_figures.plot_binarity(hist, p) == "f.png: skipped, no binenc or linpen run"
    assert report_figures.plot_collapse(hist, p) == "f.png: skipped, no values for train/sigma_w, train/nc1"
    assert report_figures.plot_histograms(None, p) == (
        "f.png: skipped, no selected binenc run saved latents.npz (train with save_latents=true)"
    )
    np.savez(tmp_path / "latents.npz", test_z=np.zeros((3, 2)))
    assert report_figures.plot_histograms(tmp_path / "latents.npz", p) == (
        f"f.png: skipped, {tmp_path / 'latents.npz'} has no train_z"
    )


def test_a_metric_logged_every_other_epoch_is_drawn_from_the_epochs_that_have_it(tmp_path, drawn):
    """metrics_every=2 leaves NaN in the geometry columns at odd epochs: a figure needs some value in each
    column, not a value at every epoch (skipped only when a column is all NaN)."""
    every_other = {seed: [v[0], float("nan"), v[2]] for seed, v in SEEDS.items()}
    hist = _history({"train/sigma_w": every_other, "train/nc1": every_other})
    assert report_figures.plot_collapse(hist, tmp_path / "fig4.png") == "written"
    assert all(len(ax.get_lines()) == 4 for ax in drawn["fig4"].axes)  # a curve per head in each panel


def test_without_a_history_every_figure_is_a_note_in_the_order_of_their_names_and_an_error_is_one_too(
    tmp_path, monkeypatch
):
    sel = pd.DataFrame([{**BASE, "seed": 0, "lr": 1e-3}])
    written, notes = report_figures.write_figures(tmp_path, pd.DataFrame(), sel, "_d_b", "", "train split")
    stems = sorted(["fig2_histograms", *report_figures.panels()])
    assert written == [] and [n.split(".png")[0] for n in notes] == [f"note: {s}_d_b" for s in stems]
    assert notes[0] == "note: fig1_binarity_d_b.png: skipped, no metrics.csv history"
    assert notes[1].startswith("note: fig2_histograms_d_b.png: skipped, no selected binenc run saved latents.npz")

    def boom(*a):
        raise RuntimeError("boom")

    monkeypatch.setattr(report_figures, "plot_figure", boom)
    _, notes = report_figures.write_figures(tmp_path, _history({"train/acc": SEEDS}), sel, "", "", "train split")
    assert notes[0] == "note: fig1_binarity.png: skipped, RuntimeError: boom"


def test_the_histograms_of_a_one_dimensional_latent_have_one_panel_headed_by_the_run(tmp_path, drawn):
    np.savez(tmp_path / "latents.npz", train_z=np.linspace(-1, 1, 50)[:, None])
    note = report_figures.plot_histograms(tmp_path / "latents.npz", tmp_path / "h.png", " — d / b", "seed 0")
    assert note == "written"  # the `drawn` fixture's stand-in for the saved files
    fig = drawn["h"]
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(loc="left")) == (
        "latent z1", "training samples", "Latent dimension 1",
    )  # fmt: skip
    assert fig._suptitle.get_text() == "Latent histograms of BinEnc — d / b\nseed 0"


def test_a_heads_style_is_a_copy_and_other_heads_keep_their_colour_from_one_session_to_the_next():
    """Drawing BinEnc with hollow markers must not change its style for the next figure; the style of a head
    outside the paper depends on its name only (crc32, not Python's per-process hash)."""
    s = report.head_style("binenc")
    s["markerfacecolor"] = "white"
    assert "markerfacecolor" not in report.head_style("binenc")
    assert {h: report.head_style(h)["color"] for h in ("tanhpen", "zpen", "mypen", "apen")} == {
        "tanhpen": "#CC79A7", "zpen": "#56B4E9", "mypen": "#000000", "apen": "#F0E442",
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------
# write_report: the Python API's defaults, the figures' subtitle; publish: the W&B report run
# ------------------------------------------------------------------------------------------------


def test_write_report_defaults_to_the_sample_std_and_auto_w_and_b_and_says_how_each_pair_was_selected(
    tmp_path, monkeypatch
):
    """write_report(path) alone: sample std (ddof=1), W&B mode "auto" for a sweep logged to W&B; a pair whose
    rows were selected on validation and on test says "val and test"; every run augmented: "augmented train
    split"; the csv files hold no `summary_keys`."""
    from test_report import _without_val_split

    root = tmp_path / "sweep"
    logger = {"_target_": "binary_encoding.record.wandb_run.wandb_logger", "project": "pr", "entity": None}
    for part in ("default", "reference"):
        for seed, test in ((0, 0.9), (1, 0.8)):
            d = _job(root / part, "binenc", seed, 1e-3, val=0.9, test=test)
            cfg = yaml.safe_load((d / "config.yaml").read_text())
            cfg |= {"logger": logger, "name": "s", "protocol": part, "metrics": {"train_augmented": True}}
            (d / "config.yaml").write_text(yaml.safe_dump(cfg))
            if part == "reference":
                _without_val_split(d)
    calls = []
    monkeypatch.setattr(
        report_cli, "write_figures", lambda out, h, s, suffix, title, train: calls.append((title, train)) or ([], [])
    )
    monkeypatch.setattr(report_cli, "plot_claims", lambda per_seed, p, title: f"{p.name}: skipped")
    monkeypatch.setattr(report_cli, "publish_wandb", lambda target, out, table, sel, figs, mode, config, tables: mode)
    res = report.write_report(root)
    assert res["wandb"] == "auto"
    assert "mean ± sample std (ddof=1)" in res["markdown"]
    assert calls == [(" — digits / mlp, lr selected on val and test", "augmented train split")]
    for name in ("all_runs.csv", "selected_runs.csv", "results.csv"):
        assert "summary_keys" not in pd.read_csv(root / "report" / name).columns, name
    assert pd.read_csv(root / "report" / "results.csv")["test_acc_pct_std"].tolist() == pytest.approx(
        [np.std([90.0, 80.0], ddof=1)] * 2
    )


class _FakeWandb:
    """What publish_wandb calls of the wandb module, recorded: init's arguments, the logged keys, the runs
    of the API and the tags they get."""

    def __init__(self, tags):
        self.inits, self.logged, self.updated, self.finished = [], [], [], 0
        self.api_runs = {wid: type("R", (), {"tags": list(t), "update": lambda s, w=wid: self.updated.append(w)})()
                         for wid, t in tags.items()}  # fmt: skip

    def install(self, monkeypatch):
        import wandb

        fake = self

        class Run:
            url, entity, project, id = "https://w/run", "en", "pr", "rid"

            def log(self, d):
                fake.logged.append(sorted(d))

            def finish(self):
                fake.finished += 1

        class Api:
            def run(self, path):
                return fake.api_runs[path.split("/")[-1]]

        monkeypatch.setattr(wandb, "init", lambda **kw: fake.inits.append(kw) or Run())
        monkeypatch.setattr(wandb, "Table", lambda dataframe: dataframe)
        monkeypatch.setattr(wandb, "Image", lambda path: path)
        monkeypatch.setattr(wandb, "Api", Api)


def test_the_w_and_b_report_run_is_named_by_its_group_and_tags_only_the_selected_runs_once(tmp_path, monkeypatch):
    """Online: a run `report <group>` of job_type report; an empty table is not logged; every selected run
    with a W&B id gets the tag `selected` (once: not again where it has it), no other run; offline: the line
    gives the sync command; WANDB_MODE decides "auto"."""
    fake = _FakeWandb({"w1": [], "w2": ["selected"], "w3": []})
    fake.install(monkeypatch)
    target = {"project": "pr", "entity": "en", "group": "g", "ids": {"a": "w1", "b": "w2", "c": "w3"}}
    selected = pd.DataFrame({"run_id": ["a", "b", "d"]})
    tables = {"claims": pd.DataFrame({"x": [1]}), "claims_per_seed": pd.DataFrame()}
    fig = tmp_path / "fig1_binarity.png"
    line = report.publish_wandb(target, tmp_path, pd.DataFrame({"n": [1]}), selected, [fig], "online", {"k": 1}, tables)
    assert line == "W&B report run: https://w/run"
    (init,) = fake.inits
    assert {k: init[k] for k in ("project", "entity", "group", "job_type", "name", "tags", "dir", "mode")} == {
        "project": "pr", "entity": "en", "group": "g", "job_type": "report", "name": "report g", "tags": ["report"],
        "dir": str(tmp_path), "mode": "online",
    }  # fmt: skip
    assert init["config"] == {"k": 1, "runs_selected": 3}
    assert fake.logged == [["claims", "figures/fig1_binarity", "results", "selected_runs"]]
    assert fake.updated == ["w1"] and fake.api_runs["w1"].tags == ["selected"] and fake.finished == 1
    assert fake.api_runs["w2"].tags == ["selected"] and fake.api_runs["w3"].tags == []
    monkeypatch.setattr(report_publish.wandb_run, "wandb_logged_in", lambda: False)
    monkeypatch.setenv("WANDB_MODE", "online")  # "auto": WANDB_MODE first, then whether W&B has a login
    assert (
        report.publish_wandb(target, tmp_path, pd.DataFrame(), selected, [], "auto", {}, None)
        == "W&B report run: https://w/run"
    )
    assert fake.inits[-1]["mode"] == "online" and fake.updated == ["w1"]
    monkeypatch.delenv("WANDB_MODE")
    line = report.publish_wandb(target, tmp_path, pd.DataFrame(), selected, [], "auto", {}, None)
    assert fake.inits[-1]["mode"] == "offline" and fake.updated == ["w1"]
    assert line == f"W&B report run written offline; upload with: wandb sync {tmp_path / 'wandb'}/offline-run-*-rid"


def test_the_w_and_b_group_comes_from_the_runs_logged_to_w_and_b_only(tmp_path):
    """A run logged to csv beside those logged to W&B (another `name`) neither renames the group nor is a
    W&B run; a sweep logged to csv alone has no target."""
    root = tmp_path / "mixed"
    logger = {"_target_": "binary_encoding.record.wandb_run.wandb_logger", "project": "pr", "entity": "en"}
    for seed, (log, name) in enumerate(((logger, "onw"), ({"_target_": "x.csv_logger"}, "oncsv"))):
        d = _job(root, "binenc", seed, 1e-3, val=0.9, test=0.9)
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        (d / "config.yaml").write_text(yaml.safe_dump({**cfg, "logger": log, "name": name}))
        (d / "wandb_id.txt").write_text(f"id{seed}")
    runs, _ = report.load_runs(root)
    target = report_publish.wandb_target(root, runs)
    assert (target["group"], target["project"], target["ids"]) == ("onw", "pr", {"head=binenc,lr=0.001,seed=0": "id0"})


def test_the_command_lines_help_starts_with_the_packages_first_line(capsys):
    with pytest.raises(SystemExit):
        report.main(["--help"])
    out = capsys.readouterr().out
    assert "Turn a sweep into the paper's results: `python -m binary_encoding.report PATH" in out


def test_blank_cells_of_a_metric_logged_every_other_epoch_are_missing_values_not_bad_rows(tmp_path):
    """metrics_every=2 leaves the geometry columns blank on the epochs between: every row is kept, the blank
    cells read back as NaN, and nothing is named as unreadable."""
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,val/acc,train/nc1\n0,0.5,\n1,0.6,0.01\n2,0.7, \n")
    rows, why = report_load.read_history(path)
    assert why == "" and rows["epoch"].tolist() == [0, 1, 2]
    assert rows["train/nc1"].isna().tolist() == [True, False, True] and rows["train/nc1"][1] == 0.01


def test_what_is_left_out_follows_the_split_the_selection_is_made_on(tmp_path):
    """A finished run whose summary holds no finite val_acc (null) but a test_acc: selecting on test uses
    it, so it is left out only when selecting on validation."""
    root = tmp_path / "sweep"
    _job(root, "binenc", 0, 1e-3, val=0.9, test=0.9)
    _job(root, "binenc", 1, 1e-3, val=0.8, test=0.8, extra={"val_acc": None})
    runs, _ = report.load_runs(root)
    assert report_select.left_out(runs, "test") == []
    assert report_select.left_out(runs, "val") == [
        ("head=binenc,lr=0.001,seed=1", "summary.json holds NaN for val_acc, the selection metric")
    ]
