"""A second line-by-line pass over the report (`binary_encoding.report`): behaviours that only unusual input
reaches and no other test reads. Job folders whose config files are empty, whose metrics.csv is out of epoch
order, has no epoch column, is no UTF-8 or is a folder (`load`); a report of a W&B project written into
./report (`cli.write_report`); the W&B line the command line prints and the settings the W&B run records
(`cli`); a tie on one seed, which is no win (`claims`); a figure's resolution and its PDF, and the claims
figure's log scale and unused panel (`figures`)."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from test_pipeline_lines import SUMMARY, _job, _row

from binary_encoding import report
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
