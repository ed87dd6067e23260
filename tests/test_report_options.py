"""The report's less-travelled options and inputs, value by value: selection on test, runs without a
validation split, ratio claims with zeros or missing values, extra `--metric` columns, several widths,
ddof, a single seed, values that are text, NaN or inf, metrics logged every other epoch, W&B cells."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_report import _job, _without_val_split
from test_report_values import BASE

from binary_encoding import report
from binary_encoding.report import claims as report_claims
from binary_encoding.report import load as report_load
from binary_encoding.report import publish as report_publish
from binary_encoding.report import select as report_select
from binary_encoding.report import tables as report_tables

# ------------------------------------------------------------------------------------------------
# load
# ------------------------------------------------------------------------------------------------


def test_a_summary_value_reads_inf_from_text_keeps_other_text_and_null_as_nan():
    assert report_load._num("inf") == math.inf
    assert report_load._num("-inf") == -math.inf
    assert report_load._num("0.9x") == "0.9x"
    assert math.isnan(report_load._num(None))
    assert report_load._num(0.25) == 0.25


def test_a_width_given_as_a_float_is_an_integer_and_a_boolean_width_is_none():
    cfg = {"head": {"name": "binenc", "width": 8.0}, "data": {"name": "d"}, "backbone": {"name": "b"}}
    assert report_load._run_record("r", cfg, {}, "finished")["width"] == 8
    cfg["head"]["width"] = True
    assert report_load._run_record("r", cfg, {}, "finished")["width"] == -1


def test_the_final_validation_ce_of_a_metric_logged_every_other_epoch_is_its_last_logged_value(tmp_path):
    """val/ce on epochs 0 and 2 only (blank on 1 and 3): final_val_ce is epoch 2's, logged_epochs is 3."""
    root = tmp_path / "sweep"
    d = _job(root, "binenc", 0, 1e-3, val=0.9, test=0.9)
    (d / "metrics.csv").write_text("epoch,val/ce,train/acc\n0,2.0,0.5\n1,,0.6\n2,1.25,0.7\n3,,0.8\n")
    runs, hist = report.load_runs(root)
    assert runs["final_val_ce"].tolist() == [1.25]
    assert runs["logged_epochs"].tolist() == [3]
    assert hist["val/ce"].isna().tolist() == [False, True, False, True]


# ------------------------------------------------------------------------------------------------
# select
# ------------------------------------------------------------------------------------------------


def _sel_runs():
    """Seed 0 with a validation split, seed 1 without one (val_acc absent, val_fraction 0)."""
    return pd.DataFrame(
        [
            {**BASE, "run_id": "a", "seed": 0, "lr": 1e-3, "val_fraction": 0.1, "val_acc": 0.9, "test_acc": 0.7},
            {**BASE, "run_id": "b", "seed": 0, "lr": 1e-2, "val_fraction": 0.1, "val_acc": 0.8, "test_acc": 0.95},
            {**BASE, "run_id": "c", "seed": 1, "lr": 1e-3, "val_fraction": 0, "val_acc": np.nan, "test_acc": 0.6},
            {**BASE, "run_id": "d", "seed": 1, "lr": 1e-2, "val_fraction": 0, "val_acc": np.nan, "test_acc": 0.85},
        ]
    )


def test_selecting_on_test_picks_every_seeds_best_test_accuracy_and_says_test():
    sel = report.select_runs(_sel_runs(), by="test")
    assert sel["run_id"].tolist() == ["b", "d"]
    assert sel["selected_on"].tolist() == ["test", "test"]


def test_selecting_on_validation_uses_test_only_for_the_seed_without_a_validation_split():
    sel = report.select_runs(_sel_runs(), by="val")
    assert sel["run_id"].tolist() == ["a", "d"]
    assert sel["selected_on"].tolist() == ["val", "test"]


def test_a_frame_without_val_fraction_is_selected_on_the_split_asked_for():
    runs = _sel_runs().drop(columns="val_fraction").iloc[:2]
    sel = report.select_runs(runs, by="val")
    assert sel["run_id"].tolist() == ["a"] and sel["selected_on"].tolist() == ["val"]


def test_a_run_without_a_validation_split_is_not_left_out_for_lacking_val_acc():
    runs = _sel_runs()
    assert report_select.left_out(runs, "val") == []
    runs["test_acc"] = runs["test_acc"].astype(object)
    runs.loc[3, "test_acc"] = "n/a"
    assert report_select.left_out(runs, "val") == [("d", "summary.json has no test_acc, the selection metric")]


def test_the_selection_of_a_row_selected_on_both_splits_is_named_test_plus_val():
    sel = report.select_runs(_sel_runs(), by="val")
    table = report.aggregate(sel, ["test_acc"])
    assert table["lr_selected_on"].tolist() == ["test+val"]
    assert table["lr_per_seed"].tolist() == ["0:0.001; 1:0.01"]
    assert table["test_acc_pct_mean"].tolist() == pytest.approx([77.5])
    assert table["test_acc_pct_std"].tolist() == pytest.approx([np.std([70, 85], ddof=1)])


# ------------------------------------------------------------------------------------------------
# aggregate and tables
# ------------------------------------------------------------------------------------------------


def _selected(values: dict[str, list], head="binenc", width=4):
    n = len(next(iter(values.values())))
    rows = [
        {**BASE, "head": head, "width": width, "run_id": f"{head}{width}-{s}", "seed": s, "lr": 1e-3}
        | {k: v[s] for k, v in values.items()}
        for s in range(n)
    ]
    return pd.DataFrame(rows).assign(selected_on="val")


def test_an_extra_metric_outside_the_catalog_is_averaged_unscaled_and_written_with_four_significant_digits():
    sel = _selected({"test_acc": [0.8, 0.9, 1.0], "nc3": [0.1234, 0.2345, 0.3456]})
    table = report.aggregate(sel, report_tables.shown_columns(["nc3", "nc3"]))
    r = table.iloc[0]
    assert "nc3_pct_mean" not in table
    assert (r["nc3_mean"], r["nc3_std"], r["nc3_n"]) == pytest.approx((0.2345, 0.1111, 3))
    assert r["test_acc_pct_mean"] == pytest.approx(90.0)
    assert report_tables.shown_columns(["nc3", "nc3", "test_acc"]).count("nc3") == 1
    md = report_tables.to_markdown(table, ["test_acc", "nc3"])
    assert "| BinEnc | 90.00 ± 10.00 (n=3) | 0.2345 ± 0.1111 (n=3) | validation | 0:0.001; 1:0.001; 2:0.001 |" in md
    assert "| head | test acc (%) | nc3 | lr selected on | lr per seed |" in md


def test_the_population_std_of_three_seeds_is_numpys_with_ddof_0():
    sel = _selected({"test_acc": [0.8, 0.9, 1.0]})
    for ddof in (0, 1):
        table = report.aggregate(sel, ["test_acc"], ddof=ddof)
        assert table["test_acc_pct_std"].item() == pytest.approx(np.std([80.0, 90.0, 100.0], ddof=ddof))


def test_inf_and_text_values_are_left_out_of_a_cells_mean_and_named():
    sel = _selected({"deepfool_rho": [0.2, math.inf, "0.9x", 0.4]})
    sel["summary_keys"] = "deepfool_rho"
    table = report.aggregate(sel, ["deepfool_rho"])
    assert (table["deepfool_rho_mean"].item(), table["deepfool_rho_n"].item()) == pytest.approx((0.3, 2))
    assert report_select.dropped_values(sel, ["deepfool_rho"]) == [
        ("binenc4-1", "summary.json holds inf for deepfool_rho, not a finite number: left out of its cell's mean"),
        ("binenc4-2", "summary.json holds '0.9x' for deepfool_rho, not a finite number: left out of its cell's mean"),
    ]


def test_with_one_width_no_row_is_named_by_it_and_with_two_only_rows_that_have_one():
    one = pd.concat([_selected({"test_acc": [0.9]}), _selected({"test_acc": [0.8]}, head="nopen", width=-1)])
    md = report_tables.to_markdown(report.aggregate(one, ["test_acc"]), ["test_acc"])
    assert "| BinEnc | 90.00 (n=1) |" in md and "| NoPen | 80.00 (n=1) |" in md
    two = pd.concat([one, _selected({"test_acc": [0.7]}, width=8)])
    md = report_tables.to_markdown(report.aggregate(two, ["test_acc"]), ["test_acc"])
    assert "| BinEnc (d=4) | 90.00 (n=1) |" in md and "| BinEnc (d=8) | 70.00 (n=1) |" in md
    assert "| NoPen | 80.00 (n=1) |" in md


# ------------------------------------------------------------------------------------------------
# claims
# ------------------------------------------------------------------------------------------------


def _pair(metric: str, binenc: list, other: list, other_head="linpen") -> pd.DataFrame:
    return pd.concat([_selected({metric: binenc}), _selected({metric: other}, head=other_head)])


def test_a_ratio_claim_leaves_out_a_seed_where_the_other_head_has_0_or_no_value():
    """DeepFool rho: BinEnc 0.4, 0.3, 0.6, 0.2; LinPen 0.1, 0 (no factor), NaN (missing), 0.1: n=2,
    factors 4 and 2, geometric mean sqrt(8), the t-interval on the logarithms."""
    sel = _pair("deepfool_rho", [0.4, 0.3, 0.6, 0.2], [0.1, 0.0, np.nan, 0.1])
    summary, per_seed = report_claims.claims_tables(sel)
    r = summary.set_index("metric").loc["deepfool_rho"]
    assert (r["n"], r["wins"], r["verdict"]) == (2, 2, "holds on every seed")
    assert per_seed["seed"].tolist() == [0, 3] and per_seed["effect"].tolist() == pytest.approx([4.0, 2.0])
    logs = np.log([4.0, 2.0])
    half = stats.t.ppf(0.975, 1) * logs.std(ddof=1) / math.sqrt(2)
    assert (r["effect"], r["ci_low"], r["ci_high"]) == pytest.approx(
        (math.sqrt(8), math.exp(logs.mean() - half), math.exp(logs.mean() + half))
    )
    assert (r["binenc_mean"], r["other_mean"]) == pytest.approx((0.3, 0.1))


def test_a_ratio_claim_leaves_out_a_seed_where_either_head_has_no_positive_value():
    """NC1 is compared as a ratio (a geometric mean of per-seed ratios): a seed where BinEnc's NC1 is 0
    (seed 2) or the other head's is (seed 3) has no ratio and enters no number; seeds 0 and 1 give 10x and
    5x lower, so the effect is their geometric mean, sqrt(50)."""
    summary, per_seed = report_claims.claims_tables(_pair("nc1", [1e-3, 2e-3, 0.0, 1e-3], [1e-2, 1e-2, 5e-3, 0.0]))
    r = summary.set_index("metric").loc["nc1"]
    assert (r["n"], r["wins"]) == (2, 2)
    assert r["effect"] == pytest.approx(math.sqrt(50))
    assert sorted(per_seed.loc[per_seed["metric"] == "nc1", "seed"]) == [0, 1]


def test_nc1_claimed_lower_is_a_factor_other_over_binenc_and_an_inf_seed_is_left_out():
    sel = _pair("nc1", [0.1, 0.05, math.inf], [0.5, 0.1, 0.2])
    summary, per_seed = report_claims.claims_tables(sel)
    r = summary.set_index("metric").loc["nc1"]
    assert (r["n"], r["wins"], r["effect_kind"]) == (2, 2, "factor other / BinEnc")
    assert per_seed["effect"].tolist() == pytest.approx([5.0, 2.0])
    assert r["effect"] == pytest.approx(math.sqrt(10))


def test_a_difference_claim_pairs_only_the_seeds_both_heads_have_a_number_for():
    """test_acc (percentage points): seed 1 of the other head holds text, seed 2 of BinEnc is missing."""
    sel = _pair("test_acc", [0.9, 0.8, np.nan], [0.85, "n/a", 0.7])
    summary, per_seed = report_claims.claims_tables(sel)
    r = summary.set_index("metric").loc["test_acc"]
    assert (r["n"], r["verdict"]) == (1, "one seed: no verdict")
    assert r["effect"] == pytest.approx(5.0) and math.isnan(r["ci_low"])
    assert per_seed[["seed", "binenc_value", "other_value"]].values.tolist()[0] == pytest.approx([0, 90.0, 85.0])
    assert len(per_seed[per_seed["metric"] == "test_acc"]) == 1


def test_a_factor_of_exactly_one_reads_in_the_claimed_direction():
    nc1, rho = (next(c for c in report_claims.CLAIMS if c.metric == m) for m in ("nc1", "deepfool_rho"))
    assert report_claims._effect(nc1, 1.0) == "1x lower"
    assert report_claims._effect(rho, 1.0) == "1x higher"
    assert report_claims._effect(rho, 0.5) == "2x lower"
    assert report_claims._interval(rho, math.nan, math.nan) == ""


def test_a_claim_row_against_another_binenc_width_names_both_rows():
    sel = pd.concat(
        [
            _selected({"test_acc": [0.9, 0.8]}),
            _selected({"test_acc": [0.7, 0.6]}, width=8),
            _selected({"test_acc": [0.5, 0.5]}, head="nopen", width=-1),
        ]
    )
    summary, per_seed = report_claims.claims_tables(sel)
    acc = summary[summary["metric"] == "test_acc"]
    assert acc[["binenc", "other", "effect"]].values.tolist() == [
        ["BinEnc (d=4)", "NoPen", pytest.approx(35.0)],
        ["BinEnc (d=8)", "NoPen", pytest.approx(15.0)],
    ]
    md = report_claims.claims_markdown(summary, per_seed, sel)
    assert "| 2. accuracy | test accuracy (%) | NoPen (BinEnc (d=8)) | 65.00 | 50.00 | +15.00 " in md


# ------------------------------------------------------------------------------------------------
# write_report and publish
# ------------------------------------------------------------------------------------------------


def test_write_report_on_test_leaves_out_by_test_acc_and_says_test_without_the_validation_note(tmp_path, no_figures):
    """select="test": a run with a null val_acc is used, a run without a validation split needs no note, a run
    with a null test_acc is left out; the figures' titles say test."""
    root = tmp_path / "sweep"
    _job(root, "binenc", 0, 1e-3, val=0.9, test=0.9, extra={"val_acc": None})
    _without_val_split(_job(root, "binenc", 1, 1e-3, val=0.8, test=0.8))
    _job(root, "binenc", 1, 1e-2, val=0.95, test=0.5, extra={"test_acc": None})
    res = report.write_report(root, tmp_path / "out", select="test", wandb_mode="off")
    assert res["left_out"] == [
        ("head=binenc,lr=0.01,seed=1", "summary.json holds NaN for test_acc, the selection metric")
    ]
    assert "selected per (head, seed) on final TEST accuracy (the reference's choice); ties:" in res["markdown"]
    assert "without a validation split" not in res["markdown"]
    assert [title for _, title, _ in no_figures] == [" — digits / mlp, lr selected on test"]
    sel = pd.read_csv(tmp_path / "out" / "selected_runs.csv")
    assert sel["run_id"].tolist() == ["head=binenc,lr=0.001,seed=0", "head=binenc,lr=0.001,seed=1"]


def test_write_report_with_an_extra_metric_and_ddof_0_writes_them_into_results(tmp_path, no_figures):
    root = tmp_path / "sweep"
    for seed, nc3 in ((0, 0.2), (1, 0.4), (2, "bad")):
        _job(root, "binenc", seed, 1e-3, val=0.9, test=0.8 + 0.05 * seed, extra={"nc3": nc3})
    res = report.write_report(root, tmp_path / "out", metrics=["nc3"], ddof=0, wandb_mode="off")
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert table[["nc3_mean", "nc3_std", "nc3_n"]].values.tolist()[0] == pytest.approx([0.3, 0.1, 2])
    assert table["test_acc_pct_std"].item() == pytest.approx(np.std([80.0, 85.0, 90.0]))
    assert "population std (ddof=0, as the paper)" in res["markdown"]
    assert "| 0.3 ± 0.1 (n=2) |" in res["markdown"]
    assert "`head=binenc,lr=0.001,seed=2`: summary.json holds 'bad' for nc3" in res["markdown"]


def test_all_runs_csv_marks_the_selected_runs_and_leaves_failed_ones_out(tmp_path, no_figures):
    root = tmp_path / "sweep"
    _job(root, "binenc", 0, 1e-3, val=0.9, test=0.5)
    _job(root, "binenc", 0, 1e-2, val=0.7, test=0.9)
    _job(root, "binenc", 1, 1e-3, status="failed")
    report.write_report(root, tmp_path / "out", wandb_mode="off")
    done = pd.read_csv(tmp_path / "out" / "all_runs.csv")
    assert done[["run_id", "selected"]].values.tolist() == [
        ["head=binenc,lr=0.001,seed=0", True],
        ["head=binenc,lr=0.01,seed=0", False],
    ]


def test_a_w_and_b_table_holds_none_for_missing_values_and_keeps_the_others():
    df = pd.DataFrame({"a": [1.5, np.nan], "b": ["x", None]})
    cells = report_publish._cells(df)
    assert cells["a"].tolist() == [1.5, None] and cells["b"].tolist() == ["x", None]


def test_a_w_and_b_target_of_a_project_without_an_entity_has_none():
    runs = pd.DataFrame({"run_id": ["r1", "r2"]})
    assert report_publish.wandb_target("wandb:proj", runs) == {
        "project": "proj",
        "entity": None,
        "group": "proj",
        "ids": {"r1": "r1", "r2": "r2"},
    }
    assert report_publish.wandb_target("wandb:me/proj", runs)["entity"] == "me"


def test_a_failed_json_holding_a_bare_string_is_the_error_itself(tmp_path):
    root = tmp_path / "sweep"
    d = _job(root, "binenc", 0, 1e-3, status="failed")
    (d / "failed.json").write_text(json.dumps("CUDA out of memory"))
    runs, _ = report.load_runs(root)
    assert runs[["status", "error"]].values.tolist() == [["failed", "CUDA out of memory"]]


def test_with_one_binenc_width_beside_nopen_the_claim_rows_are_not_named_by_width():
    sel = pd.concat([_selected({"test_acc": [0.9, 0.8]}), _selected({"test_acc": [0.5, 0.6]}, head="nopen", width=-1)])
    summary, _ = report_claims.claims_tables(sel)
    acc = summary[summary["metric"] == "test_acc"]
    assert acc[["binenc", "other", "wins", "verdict"]].values.tolist() == [
        ["BinEnc", "NoPen", 2, "holds on every seed"]
    ]


def test_the_papers_numbers_are_given_only_for_the_data_sets_of_the_sweep_that_the_paper_has():
    md = report_tables._paper_markdown(["digits", "cifar100"])
    assert md.splitlines()[0] == "### the paper (v3, 5 seeds, lr selected on test): cifar100"
    assert "| BinEnc | 75.54 ± 0.68 | 99.90 | 84.38 ± 0.72 | 0.0444 ± 0.0055 |" in md
    assert "cifar10:" not in md and "digits" not in md
    assert report_tables._paper_markdown(["digits"]) == ""
