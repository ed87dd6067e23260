"""A second line-by-line pass over the report (`binary_encoding.report`): behaviours that only unusual input
reaches and no other test reads. Job folders whose config files are empty, whose metrics.csv is out of epoch
order, has no epoch column, is no UTF-8 or is a folder (`load`); a report of a W&B project written into
./report (`cli.write_report`); the W&B line the command line prints and the settings the W&B run records
(`cli`); a tie on one seed, which is no win (`claims`); a figure's resolution and its PDF, and the claims
figure's log scale and unused panel (`figures`)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest
from test_pipeline_lines import SUMMARY, _job, _row

from binary_encoding import report
from binary_encoding.report import claims, publish, tables
from binary_encoding.report import cli as report_cli
from binary_encoding.report import figures as report_figures
from binary_encoding.report import load as report_load

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _png_size(path) -> tuple[int, int]:
    """(width, height) in pixels of a PNG, from its IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _per_seed(metric: str, pairs: list[tuple[float, float]], other: str = "LinPen") -> pd.DataFrame:
    """Per-seed claim rows (`claims.claims_tables`' second frame) of one metric: (other's value, BinEnc's)."""
    return pd.DataFrame(
        [
            {"data": "d", "backbone": "b", "binenc": "BinEnc", "other": other, "other_head": other.lower(),
             "metric": metric, "seed": s, "other_value": o, "binenc_value": b, "effect": b - o}
            for s, (o, b) in enumerate(pairs)
        ]
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------
# load: _read_yaml, _finish, load_runs, read_history
# ------------------------------------------------------------------------------------------------


def test_an_empty_config_yaml_beside_an_empty_hydra_config_leaves_a_finished_row_named_by_its_summary(tmp_path):
    """Both config files empty (a job killed while writing them): no config at all, so data, backbone, head,
    seed and lr come from summary.json and the width is -1."""
    d = _job(tmp_path / "j", config="", summary=SUMMARY)
    (d / ".hydra").mkdir()
    (d / ".hydra" / "config.yaml").write_text("")
    runs, _ = report.load_runs(tmp_path)
    r = runs.iloc[0]
    assert (r["status"], r["data"], r["backbone"], r["head"], r["seed"], r["lr"], r["width"]) == (
        "finished", "digits", "mlp", "binenc", 0, 0.1, -1,
    )  # fmt: skip


def test_metrics_rows_out_of_epoch_order_give_the_highest_epochs_validation_ce(tmp_path):
    """A metrics.csv whose rows are not in epoch order (epoch 2 written before epoch 1): the final CE and the
    logged epochs are those of the highest epoch, not of the file's last row."""
    _job(tmp_path / "j", summary=SUMMARY, metrics_csv="epoch,val/ce\n0,3.0\n2,0.5\n1,2.0\n")
    runs, hist = report.load_runs(tmp_path)
    assert (runs.at[0, "final_val_ce"], runs.at[0, "logged_epochs"]) == (0.5, 2)
    assert len(hist) == 3


def test_a_metrics_csv_without_an_epoch_column_adds_no_history(tmp_path):
    """Rows without an epoch cannot be drawn on the epoch axis: the job loads, its history is empty."""
    _job(tmp_path / "j", summary=SUMMARY, metrics_csv="step,train/acc\n10,0.5\n20,0.6\n")
    runs, hist = report.load_runs(tmp_path)
    assert runs["status"].tolist() == ["finished"] and runs.at[0, "unreadable_rows"] == ""
    assert len(hist) == 0 and "final_val_ce" not in runs


def test_a_metrics_csv_that_is_no_utf8_is_named_unreadable_and_the_job_still_loads(tmp_path):
    d = _job(tmp_path / "j", summary=SUMMARY)
    (d / "metrics.csv").write_bytes(b"epoch,val/ce\n0,\xff\xfe\n")
    runs, hist = report.load_runs(tmp_path)
    assert runs.at[0, "status"] == "finished" and len(hist) == 0
    assert runs.at[0, "unreadable_rows"] == (
        "cannot be read (UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"
    )


def test_a_metrics_csv_that_is_a_folder_is_named_unreadable(tmp_path):
    (tmp_path / "j" / "metrics.csv").mkdir(parents=True)
    rows, why = report_load.read_history(tmp_path / "j" / "metrics.csv")
    assert len(rows) == 0 and why.startswith("cannot be read (IsADirectoryError: [Errno 21] Is a directory")


# ------------------------------------------------------------------------------------------------
# claims: claims_tables
# ------------------------------------------------------------------------------------------------


def test_a_seed_where_both_heads_tie_is_no_win():
    """test_acc: BinEnc 90, 80, 70 %, LinPen 90, 70, 60 %: effects 0, +10, +10 points: 2 wins of 3, and
    with a tie not every seed wins: the mean only."""
    sel = pd.DataFrame(
        [_row("binenc", s, 0.1, test_acc=b) for s, b in enumerate((0.9, 0.8, 0.7))]
        + [_row("linpen", s, 0.1, test_acc=o) for s, o in enumerate((0.9, 0.7, 0.6))]
    )
    summary, per_seed = report.claims_tables(sel)
    r = summary.set_index("metric").loc["test_acc"]
    assert (r["n"], r["wins"], r["verdict"]) == (3, 2, "holds on the mean only")
    assert per_seed["effect"].round(9).tolist() == [0.0, 10.0, 10.0]


# ------------------------------------------------------------------------------------------------
# figures: _save, claims_figure
# ------------------------------------------------------------------------------------------------


def test_a_figure_is_saved_as_a_300_dpi_png_one_column_wide_with_a_pdf_beside_it(tmp_path):
    """Two latent dimensions: two panels, 3.4 x (0.9 + 2 x 1.9) inches at 300 dpi."""
    lat = tmp_path / "latents.npz"
    np.savez(lat, train_z=np.random.default_rng(0).normal(size=(50, 3)))
    png = tmp_path / "fig2.png"
    assert report_figures.plot_histograms(lat, png) == "fig2.png: written (and fig2.pdf)"
    assert _png_size(png) == (1020, 1410)
    assert (tmp_path / "fig2.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize(("binenc", "log"), [(2000.0, "log"), (500.0, "linear")])
def test_a_difference_claim_is_drawn_on_a_log_scale_only_where_its_values_span_more_than_two_decades(binenc, log):
    """n_codes (a difference): NoPen's 10 codes beside 2000 (200x) are drawn on a log scale, beside 500 (50x)
    on a linear one."""
    fig = report.claims_figure(_per_seed("n_codes", [(binenc, 10.0), (binenc, 11.0)], other="NoPen"))
    try:
        assert fig.axes[0].get_yscale() == log
    finally:
        report_figures._plt().close(fig)


def test_a_claims_figure_of_three_metrics_has_three_panels_and_no_empty_fourth():
    """Two columns of panels: three metrics take a 2 x 2 grid whose fourth panel is removed."""
    per_seed = pd.concat([_per_seed(m, [(0.5, 0.6), (0.4, 0.7)]) for m in ("agreement_code", "two_valued", "test_acc")])
    fig = report.claims_figure(per_seed)
    try:
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert titles == [
            "joint-code agreement, higher claimed",
            "two-valuedness (sign R²), higher claimed",
            "test accuracy (%), higher claimed",
        ]
    finally:
        report_figures._plt().close(fig)


# ------------------------------------------------------------------------------------------------
# cli: write_report, main
# ------------------------------------------------------------------------------------------------


def test_a_report_of_a_w_and_b_project_goes_to_report_in_the_working_directory(tmp_path, monkeypatch, no_figures):
    """`wandb:me/proj` has no folder of its own: the report is written into ./report, headed by the project,
    and with --wandb off nothing is published."""
    d = _job(tmp_path / "jobs" / "j", summary=SUMMARY)
    runs, hist = report.load_runs(d.parent)
    monkeypatch.setattr(report_cli, "load_runs", lambda path: (runs, hist))
    monkeypatch.chdir(tmp_path)
    res = report.write_report("wandb:me/proj", wandb_mode="off")
    assert (tmp_path / "report" / "results.md").read_text().startswith("# Results of wandb:me/proj\n")
    assert res["wandb"] is None and not (tmp_path / "jobs" / "report").exists()


def test_the_w_and_b_run_records_the_selection_split_and_the_std_asked_for(tmp_path, monkeypatch, no_figures):
    calls = []
    monkeypatch.setattr(report_cli, "wandb_target", lambda path, runs: {"project": "p"})
    monkeypatch.setattr(report_cli, "publish_wandb", lambda *a: calls.append(a) or "published")
    _job(tmp_path / "j", summary=SUMMARY)
    res = report.write_report(tmp_path, tmp_path / "out", select="test", ddof=0, wandb_mode="offline")
    (target, out, _, selected, _, mode, config, tables) = calls[0]
    assert (target, out, mode, config) == ({"project": "p"}, tmp_path / "out", "offline", {"select": "test", "ddof": 0})
    assert selected["run_id"].tolist() == ["j"] and sorted(tables) == ["claims", "claims_per_seed"]
    assert res["wandb"] == "published"


def test_the_command_line_prints_the_w_and_b_line_after_the_files_written(monkeypatch, capsys):
    res = {"markdown": "MD", "notes": [], "files": ["a.md"], "wandb": "W&B report run: https://x"}
    monkeypatch.setattr(report_cli, "write_report", lambda *a: res)
    assert report.main(["p"]) == 0
    assert capsys.readouterr().out.splitlines() == ["MD", "written:", "  a.md", "W&B report run: https://x"]


# --- second pass ---
# What the report writes (which files, in which order, their columns), sweeps over several data sets,
# backbones, widths and settings at once, and the keys of every groupby and filter.


ACC = {"val_acc": 0.5, "test_acc": 0.5}


def _cfg(data: str, head: str, seed: int, lr: float, width=4, backbone: str = "mlp", gamma=None, **extra) -> str:
    """A resolved config.yaml of one job (`gamma`: its head.gamma_max, a swept setting)."""
    import yaml

    h = {"name": head, "width": width, **({} if gamma is None else {"gamma_max": gamma})}
    return yaml.safe_dump({
        "seed": seed, "lr": lr, "data": {"name": data, "val_fraction": 0.1}, "backbone": {"name": backbone},
        "head": h, "trainer": {"max_epochs": 3}, **extra,
    })  # fmt: skip


def _two_data_sets(root, acc=None) -> None:
    """Jobs of two data sets (`a`, `b`), heads binenc and linpen, seeds 0 and 1, one lr: four per data set."""
    for data in ("a", "b"):
        for head in ("binenc", "linpen"):
            for seed in (0, 1):
                v = (acc or {}).get((data, head, seed), 0.5 + 0.1 * seed + (0.2 if head == "binenc" else 0))
                _job(root / f"{data}-{head}-{seed}", config=_cfg(data, head, seed, 0.1),
                     summary={"val_acc": v, "test_acc": v}, metrics_csv="epoch,val/ce\n0,1.0\n")  # fmt: skip


def _sel(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# load: find_jobs, load_runs, _finish
# ------------------------------------------------------------------------------------------------


def test_jobs_under_checkpoints_wandb_report_and_hidden_folders_are_not_found_and_nested_ones_are(tmp_path):
    for d in ("checkpoints/x", "wandb/x", "report/x", "__pycache__/x", ".hidden/x", "sweep/a/b", "sweep/c"):
        _job(tmp_path / d, summary=SUMMARY)
    assert [p.relative_to(tmp_path).as_posix() for p in report.find_jobs(tmp_path)] == ["sweep/a/b", "sweep/c"]


def test_a_job_folder_below_another_job_folder_is_not_a_job_of_its_own(tmp_path):
    _job(tmp_path / "j", summary=SUMMARY)
    _job(tmp_path / "j" / "inner", summary=SUMMARY)
    assert report.find_jobs(tmp_path) == [tmp_path / "j"]


def test_a_job_with_only_a_failed_json_or_only_a_metrics_csv_is_a_job(tmp_path):
    _job(tmp_path / "f", failed_json="{}")
    _job(tmp_path / "m", metrics_csv="epoch\n0\n")
    assert report.find_jobs(tmp_path) == [tmp_path / "f", tmp_path / "m"]


def test_a_nested_run_id_is_the_folder_relative_to_the_sweep(tmp_path):
    _job(tmp_path / "x" / "y", summary=SUMMARY)
    runs, _ = report.load_runs(tmp_path)
    assert runs["run_id"].tolist() == [str(tmp_path.joinpath("x", "y").relative_to(tmp_path))]
    assert runs.at[0, "path"] == str(tmp_path / "x" / "y")


def test_a_failed_jobs_error_is_cut_to_300_characters_and_falls_back_to_the_message(tmp_path):
    _job(tmp_path / "long", failed_json=json.dumps({"error": "e" * 500}))
    _job(tmp_path / "msg", failed_json=json.dumps({"message": "out of memory"}))
    runs, _ = report.load_runs(tmp_path)
    err = dict(zip(runs["run_id"], runs["error"]))
    assert err == {"long": "e" * 300, "msg": "out of memory"}
    assert runs["status"].tolist() == ["failed", "failed"]


def test_a_failed_json_beside_a_summary_is_a_finished_job(tmp_path):
    _job(tmp_path / "j", summary=SUMMARY, failed_json=json.dumps({"error": "old"}))
    runs, _ = report.load_runs(tmp_path)
    assert (runs.at[0, "status"], runs.at[0, "error"]) == ("finished", "")


def test_a_row_reads_max_epochs_val_fraction_and_train_augmented_from_its_config(tmp_path):
    _job(tmp_path / "j", config=_cfg("a", "binenc", 3, 0.01, metrics={"train_augmented": True}), summary=ACC)
    _job(tmp_path / "k", config=_cfg("a", "binenc", 4, 0.01), summary=ACC)
    runs, _ = report.load_runs(tmp_path)
    r = runs.set_index("run_id")
    assert r.loc["j", ["max_epochs", "val_fraction", "train_augmented", "seed", "lr"]].tolist() == [
        3,
        0.1,
        True,
        3,
        0.01,
    ]
    assert r.at["k", "train_augmented"] == False  # noqa: E712
    assert str(runs["seed"].dtype) == "Int64"


def test_the_history_carries_the_status_and_settings_of_its_run(tmp_path):
    _job(tmp_path / "f", config=_cfg("a", "binenc", 0, 0.1), failed_json="{}", metrics_csv="epoch,val/ce\n0,1.0\n")
    _job(tmp_path / "g", config=_cfg("a", "binenc", 0, 0.1, gamma=1), summary=ACC,
         metrics_csv="epoch,val/ce\n0,2.0\n1,1.5\n")  # fmt: skip
    runs, hist = report.load_runs(tmp_path)
    assert hist.groupby("run_id")["status"].first().to_dict() == {"f": "failed", "g": "finished"}
    assert set(hist.columns) >= {"data", "backbone", "head", "width", "settings", "seed", "lr", "status"}
    assert dict(zip(runs["run_id"], runs["logged_epochs"])) == {"f": 0, "g": 1}


def test_settings_vary_within_each_data_set_and_head_not_across_them(tmp_path):
    """gamma_max varies among binenc runs of data set a only: b's runs and a's linpen runs get no settings,
    though the key differs across data sets and heads."""
    for i, (data, head, g) in enumerate([("a", "binenc", 1), ("a", "binenc", 10), ("b", "binenc", 5),
                                         ("b", "binenc", 5), ("a", "linpen", 7)]):  # fmt: skip
        _job(tmp_path / f"j{i}", config=_cfg(data, head, i, 0.1, gamma=g), summary=ACC)
    runs, _ = report.load_runs(tmp_path)
    assert runs["settings"].tolist() == ["head.gamma_max=1", "head.gamma_max=10", "", "", ""]


def test_a_failed_job_adds_no_setting_and_gets_none(tmp_path):
    _job(tmp_path / "j0", config=_cfg("a", "binenc", 0, 0.1, gamma=1), summary=ACC)
    _job(tmp_path / "j1", config=_cfg("a", "binenc", 1, 0.1, gamma=1), summary=ACC)
    _job(tmp_path / "j2", config=_cfg("a", "binenc", 2, 0.1, gamma=9), failed_json="{}")
    runs, _ = report.load_runs(tmp_path)
    assert runs["settings"].tolist() == ["", "", ""]


# ------------------------------------------------------------------------------------------------
# select: select_runs, aggregate, left_out, counts_line
# ------------------------------------------------------------------------------------------------


def _grid() -> pd.DataFrame:
    """Finished runs of 2 data sets x 2 backbones x 2 widths x 2 settings, seed 0, lrs 0.1 and 0.01: the
    better lr is 0.01 in data set a and 0.1 in b."""
    rows = []
    for data in ("b", "a"):
        for backbone in ("mlp", "cnn"):
            for width in (8, 4):
                for settings in ("x=2", "x=1"):
                    for lr in (0.1, 0.01):
                        acc = 0.9 if (lr == 0.01) == (data == "a") else 0.5
                        rows.append({**_row("binenc", 0, lr, val_acc=acc, test_acc=acc), "data": data,
                                     "backbone": backbone, "width": width, "settings": settings,
                                     "run_id": f"{data}-{backbone}-{width}-{settings}-{lr}"})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_selection_picks_one_lr_per_data_set_backbone_width_and_setting_in_the_reports_order():
    sel = report.select_runs(_grid())
    assert len(sel) == 16
    assert sel["run_id"].tolist()[:4] == [
        "a-cnn-4-x=2-0.01",
        "a-cnn-4-x=1-0.01",
        "a-cnn-8-x=2-0.01",
        "a-cnn-8-x=1-0.01",
    ]
    assert sel.groupby("data")["lr"].unique().map(list).to_dict() == {"a": [0.01], "b": [0.1]}
    assert sel[["data", "backbone", "width"]].drop_duplicates().values.tolist()[:3] == [
        ["a", "cnn", 4], ["a", "cnn", 8], ["a", "mlp", 4],
    ]  # fmt: skip


def test_the_heads_are_ordered_as_the_paper_then_other_heads_by_name():
    rows = [_row(h, 0, 0.1, val_acc=0.5) for h in ("zeta", "nonlinpen", "alpha", "binenc", "linpen", "nopen")]
    assert report.select_runs(pd.DataFrame(rows))["head"].tolist() == [
        "binenc", "nopen", "linpen", "nonlinpen", "alpha", "zeta",
    ]  # fmt: skip


def test_a_tie_on_accuracy_and_ce_goes_to_the_smaller_lr_and_a_missing_ce_loses_to_a_known_one():
    rows = [_row("binenc", 0, lr, val_acc=0.8, final_val_ce=ce) for lr, ce in ((0.1, 1.0), (0.01, 1.0), (0.001, 2.0))]
    rows += [_row("binenc", 1, lr, val_acc=0.8, final_val_ce=ce) for lr, ce in ((0.001, float("nan")), (0.1, 3.0))]
    sel = report.select_runs(pd.DataFrame(rows))
    assert sel["lr"].tolist() == [0.01, 0.1]


def test_a_row_of_each_width_and_setting_is_averaged_apart_with_its_lr_per_seed():
    sel = report.select_runs(_grid())
    table = report.aggregate(sel, ["test_acc"])
    assert len(table) == 16 and table["n"].tolist() == [1] * 16
    a = table[(table["data"] == "a") & (table["backbone"] == "mlp") & (table["width"] == 8)]
    assert a[["settings", "test_acc_pct_mean", "lr_per_seed", "lr_selected_on"]].values.tolist() == [
        ["x=2", 90.0, "0:0.01", "val"], ["x=1", 90.0, "0:0.01", "val"],
    ]  # fmt: skip


def test_a_row_of_three_seeds_lists_each_seeds_lr_in_seed_order_and_its_mean_and_sample_std():
    sel = pd.DataFrame(
        [_row("binenc", s, lr, test_acc=a) for s, lr, a in ((2, 0.5, 0.7), (0, 0.1, 0.9), (1, 1e-4, 0.8))]
    )
    sel = report.select_runs(sel, by="test")
    r = report.aggregate(sel, ["test_acc"]).iloc[0]
    assert r["lr_per_seed"] == "0:0.1; 1:0.0001; 2:0.5"
    assert (round(r["test_acc_pct_mean"], 9), round(r["test_acc_pct_std"], 9), r["test_acc_n"]) == (80.0, 10.0, 3)


def test_a_diverged_run_is_left_out_of_the_selection_and_named_so():
    runs = pd.DataFrame([
        {**_row("binenc", 0, 0.1, val_acc=0.99), "diverged": "True", "run_id": "div"},
        {**_row("binenc", 0, 0.01, val_acc=0.5), "diverged": False, "run_id": "ok"},
    ])  # fmt: skip
    assert report.select_runs(runs)["run_id"].tolist() == ["ok"]
    assert report.left_out(runs) == [("div", "diverged (final training accuracy at chance level)")]
    assert report.counts_line(runs) == (
        "2 runs found: 2 finished (1 diverged: left out of the selection), 0 failed, 0 unfinished."
    )


def test_a_run_with_a_cut_off_summary_is_left_out_as_unfinished_with_the_reason(tmp_path):
    d = _job(tmp_path / "cut", summary=SUMMARY)
    (d / "summary.json").write_text('{"test_acc": 0.')
    _job(tmp_path / "ok", summary=SUMMARY)
    runs, _ = report.load_runs(tmp_path)
    assert report.left_out(runs) == [
        ("cut", "unfinished (its summary.json is unreadable (JSONDecodeError; cut off by a crash?))")
    ]


# ------------------------------------------------------------------------------------------------
# tables: to_markdown, shown_columns, results_markdown, value_notes
# ------------------------------------------------------------------------------------------------


def test_each_data_set_and_backbone_gets_its_own_table_and_widths_are_named_only_where_its_block_has_two():
    rows = [_row("binenc", 0, 0.1, test_acc=0.5, data=d, width=w) for d, w in (("a", 4), ("a", 8), ("b", 4))]
    md = report.to_markdown(report.aggregate(pd.DataFrame(rows), ["test_acc"]), ["test_acc"])
    assert [line for line in md.splitlines() if line.startswith(("###", "| BinEnc"))] == [
        "### a / mlp", "| BinEnc (d=4) | 50.00 (n=1) | validation | 0:0.1 |",
        "| BinEnc (d=8) | 50.00 (n=1) | validation | 0:0.1 |",
        "### b / mlp", "| BinEnc | 50.00 (n=1) | validation | 0:0.1 |",
    ]  # fmt: skip


def test_a_row_selected_on_both_splits_shows_test_plus_val_in_the_table():
    rows = [_row("binenc", 0, 0.1, test_acc=0.5), {**_row("binenc", 1, 0.1, test_acc=0.5), "selected_on": "test"}]
    md = report.to_markdown(report.aggregate(pd.DataFrame(rows), ["test_acc"]), ["test_acc"])
    assert "| BinEnc | 50.00 ± 0.00 (n=2) | test+val | 0:0.1; 1:0.1 |" in md.splitlines()


def test_shown_columns_add_each_extra_metric_once_after_the_catalogs():
    base = tables.shown_columns()
    assert tables.shown_columns(["nc3", base[0], "nc3", "msp_fpr95"]) == [*base, "nc3", "msp_fpr95"]


def test_results_md_names_the_population_std_when_ddof_is_0():
    table = report.aggregate(pd.DataFrame([_row("binenc", 0, 0.1, test_acc=0.5)]), ["test_acc"])
    md = tables.results_markdown("sw", "C.", table, ["test_acc"], "HOW", 0, [])
    assert "on HOW; ties" in md and "Cells: mean ± population std (ddof=0, as the paper) over" in md
    assert md.startswith("# Results of sw\n\nC.\n")


def test_value_notes_name_a_jobs_unreadable_metrics_rows_after_the_dropped_values():
    runs = pd.DataFrame(
        {"run_id": ["a", "b", "c"], "unreadable_rows": ["line 3 holds values that are no numbers", "", None]}
    )
    sel = pd.DataFrame([_row("binenc", 0, 0.1, test_acc="x"), _row("binenc", 1, 0.1, test_acc=0.5)])
    assert tables.value_notes(runs, sel, ["test_acc"]) == [
        "`binenc-0-0.1`: summary.json has no test_acc, not a finite number: left out of its cell's mean",
        "`a`: metrics.csv line 3 holds values that are no numbers: left out of the figures",
    ]


# ------------------------------------------------------------------------------------------------
# claims: pairs, claims_tables, claims_markdown, write_claims
# ------------------------------------------------------------------------------------------------


def test_binenc_is_compared_only_within_its_data_set_and_backbone_and_with_other_heads_of_its_width():
    rows = [_row(h, s, 0.1, test_acc=0.5, data=d, width=w, backbone=b)
            for d, b in (("a", "mlp"), ("b", "mlp"), ("a", "cnn")) for h, w in
            (("binenc", 4), ("binenc", 8), ("linpen", 4), ("nopen", -1)) for s in (0, 1)
            if not (d == "b" and h == "linpen")]  # fmt: skip
    got = [(d, b, x, y, len(bx), len(by)) for d, b, x, y, bx, by in claims.pairs(pd.DataFrame(rows))]
    assert got == [
        ("a", "cnn", "BinEnc (d=4)", "NoPen", 2, 2), ("a", "cnn", "BinEnc (d=4)", "LinPen (d=4)", 2, 2),
        ("a", "cnn", "BinEnc (d=8)", "NoPen", 2, 2),
        ("a", "mlp", "BinEnc (d=4)", "NoPen", 2, 2), ("a", "mlp", "BinEnc (d=4)", "LinPen (d=4)", 2, 2),
        ("a", "mlp", "BinEnc (d=8)", "NoPen", 2, 2),
        ("b", "mlp", "BinEnc (d=4)", "NoPen", 2, 2), ("b", "mlp", "BinEnc (d=8)", "NoPen", 2, 2),
    ]  # fmt: skip


def _two_data_set_rows(seed_b: int) -> pd.DataFrame:
    """BinEnc against LinPen on data set a (seed 0: 90% / 80%) and on b (seed `seed_b`: 50% / 70%)."""
    rows = [
        ("a", "binenc", 0, 0.9),
        ("a", "linpen", 0, 0.8),
        ("b", "binenc", seed_b, 0.5),
        ("b", "linpen", seed_b, 0.7),
    ]
    return pd.DataFrame([_row(h, s, 0.1, test_acc=v, data=d) for d, h, s, v in rows])


def test_the_claims_of_two_data_sets_pair_each_seed_with_its_own_data_sets_run():
    summary, per_seed = report.claims_tables(_two_data_set_rows(seed_b=0))
    t = per_seed[per_seed["metric"] == "test_acc"]
    assert t[["data", "binenc_value", "other_value"]].round(6).values.tolist() == [["a", 90.0, 80.0], ["b", 50.0, 70.0]]
    assert summary[summary["metric"] == "test_acc"]["other_head"].tolist() == ["linpen", "linpen"]


def test_the_claims_section_has_one_table_and_one_per_seed_block_per_data_set_each_with_its_own_seeds():
    sel = _two_data_set_rows(seed_b=3)
    md = claims.claims_markdown(*report.claims_tables(sel), sel)
    lines = md.splitlines()
    assert [x for x in lines if x.startswith("###")] == [
        "### claims: a / mlp", "#### per seed: BinEnc / LinPen",
        "### claims: b / mlp", "#### per seed: BinEnc / LinPen",
    ]  # fmt: skip
    assert [x for x in lines if x.startswith(("| 0 |", "| 3 |"))] == [
        "| 0 | 90.00 / 80.00 (+10.00) |", "| 3 | 50.00 / 70.00 (-20.00) |",
    ]  # fmt: skip


def test_write_claims_writes_both_csv_files_with_their_columns(tmp_path):
    sel = pd.DataFrame([_row(h, s, 0.1, test_acc=0.5 + 0.1 * s) for h in ("binenc", "nopen") for s in (0, 1)])
    _, summary, per_seed, written = claims.write_claims(sel, tmp_path)
    assert written == [tmp_path / "claims.csv", tmp_path / "claims_per_seed.csv"]
    back = pd.read_csv(written[0])
    assert list(back.columns) == list(summary.columns) and len(back) == len(summary) == len(report.CLAIMS)
    assert back.set_index("metric").at["test_acc", "verdict"] == "does not hold"
    seeds = pd.read_csv(written[1])
    assert seeds[["seed", "effect"]].values.tolist() == [[0, 0.0], [1, 0.0]]


# ------------------------------------------------------------------------------------------------
# cli: write_report, sweep_name, main
# ------------------------------------------------------------------------------------------------


def test_a_sweep_of_two_data_sets_draws_each_pairs_figures_with_its_suffix_and_title(tmp_path, no_figures):
    _two_data_sets(tmp_path)
    res = report.write_report(tmp_path, tmp_path / "out", wandb_mode="off")
    train = "train split"
    assert no_figures == [
        ("_a_mlp", " — a / mlp, lr selected on val", train), ("_b_mlp", " — b / mlp, lr selected on val", train),
    ]  # fmt: skip
    out = tmp_path / "out"
    assert res["files"] == [
        out / "results.md", out / "claims.csv", out / "claims_per_seed.csv", out / "all_runs.csv",
        out / "selected_runs.csv", out / "results.csv", out / "fig7_claims_a_mlp.png", out / "fig7_claims_a_mlp.pdf",
        out / "fig7_claims_b_mlp.png", out / "fig7_claims_b_mlp.pdf",
    ]  # fmt: skip


def test_one_pair_draws_its_figures_without_a_suffix(tmp_path, no_figures):
    _job(tmp_path / "j", config=_cfg("a", "binenc", 0, 0.1), summary=ACC)
    res = report.write_report(tmp_path, wandb_mode="off")
    assert [c[0] for c in no_figures] == [""]
    assert tmp_path / "report" / "fig7_claims.png" in res["files"]


def test_each_pairs_figures_get_only_the_history_and_runs_of_that_pair(tmp_path, monkeypatch):
    got = []
    monkeypatch.setattr(
        report_cli, "write_figures", lambda out, h, s, *a: got.append((h, s)) or ([], ["note: f1", "note: f2"])
    )
    monkeypatch.setattr(report_cli, "plot_claims", lambda per_seed, p, title: got.append(per_seed) or "x")
    _two_data_sets(tmp_path)
    res = report.write_report(tmp_path, tmp_path / "out", wandb_mode="off")
    (h_a, s_a), ps_a, (h_b, s_b), ps_b = got
    assert set(h_a["data"]) == set(s_a["data"]) == set(ps_a["data"]) == {"a"} and len(h_a) == len(s_a) == 4
    assert set(h_b["data"]) == set(s_b["data"]) == set(ps_b["data"]) == {"b"}
    assert res["notes"] == ["note: f1", "note: f2", "note: x"] * 2


def test_the_csv_files_hold_every_finished_run_the_selected_ones_and_one_row_per_table_row(tmp_path, no_figures):
    _two_data_sets(tmp_path)
    _job(tmp_path / "failed", config=_cfg("a", "binenc", 5, 0.1), failed_json="{}")
    report.write_report(tmp_path, tmp_path / "out", wandb_mode="off")
    all_runs = pd.read_csv(tmp_path / "out" / "all_runs.csv")
    assert len(all_runs) == 8 and all_runs["selected"].all() and "summary_keys" not in all_runs
    assert all_runs["run_id"].tolist()[:2] == ["a-binenc-0", "a-binenc-1"]
    assert len(pd.read_csv(tmp_path / "out" / "selected_runs.csv")) == 8
    res = pd.read_csv(tmp_path / "out" / "results.csv")
    assert res[["data", "head", "n"]].values.tolist() == [["a", "binenc", 2], ["a", "linpen", 2], ["b", "binenc", 2],
                                                           ["b", "linpen", 2]]  # fmt: skip


def test_a_sweep_without_a_finished_run_is_refused_with_its_counts(tmp_path):
    _job(tmp_path / "f", failed_json="{}")
    with pytest.raises(ValueError, match=r"^1 runs found: 0 finished, 1 failed, 0 unfinished\. No finished run"):
        report.write_report(tmp_path, wandb_mode="off")


def test_a_sweep_below_the_working_directory_is_named_relative_to_it_and_the_directory_itself_by_name(
    tmp_path, monkeypatch
):
    (tmp_path / "multirun" / "s").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert report_cli.sweep_name(tmp_path / "multirun" / "s") == str(
        tmp_path.joinpath("multirun", "s").relative_to(tmp_path)
    )
    assert report_cli.sweep_name(".") == tmp_path.resolve().name
    monkeypatch.chdir(tmp_path / "multirun" / "s")
    assert report_cli.sweep_name(tmp_path / "multirun") == "multirun"


def test_the_command_line_splits_comma_separated_metrics_and_passes_every_option(monkeypatch, capsys):
    calls = []
    res = {"markdown": "MD", "notes": ["n1"], "files": [], "wandb": None}
    monkeypatch.setattr(report_cli, "write_report", lambda *a: calls.append(a) or res)
    argv = ["p", "--out", "o", "--select", "test", "--metric", " nc3, msp_fpr95 ,", "--metric", "nc4", "--ddof", "0",
            "--wandb", "off"]  # fmt: skip
    assert report.main(argv) == 0
    assert calls == [("p", "o", "test", ["nc3", "msp_fpr95", "nc4"], 0, "off")]
    assert capsys.readouterr().out.splitlines() == ["MD", "n1", "written:"]


# ------------------------------------------------------------------------------------------------
# publish: wandb_target
# ------------------------------------------------------------------------------------------------


def test_the_w_and_b_target_reads_each_runs_id_file_and_names_the_group_by_the_folder_when_names_differ(tmp_path):
    import yaml

    for name, jid in (("s1", "id1"), ("s2", None)):
        d = _job(tmp_path / name, config=yaml.safe_dump({
            "name": name, "logger": {"_target_": "lightning.pytorch.loggers.wandb_logger.WandbLogger",
                                     "project": "proj", "entity": "me"}}))  # fmt: skip
        if jid:
            (d / "wandb_id.txt").write_text(jid + "\n")
    runs = pd.DataFrame({"run_id": ["s1", "s2"], "path": [str(tmp_path / "s1"), str(tmp_path / "s2")]})
    assert publish.wandb_target(tmp_path, runs) == {
        "project": "proj", "entity": "me", "group": tmp_path.name, "ids": {"s1": "id1"},
    }  # fmt: skip
