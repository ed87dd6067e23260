"""What the report's files say about themselves: the sweep's name in results.md (never a machine's absolute
path) and figure headings that fit their figure."""

from __future__ import annotations

import os

from test_report import sweep  # noqa: F401 -- the fake sweep fixture

from binary_encoding import report
from binary_encoding.report import cli as report_cli
from binary_encoding.report import figures as report_figures


def test_results_md_names_the_sweep_relative_to_where_the_report_ran(sweep, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    md = report.write_report(sweep, tmp_path / "out", wandb_mode="off")["markdown"]
    assert md.splitlines()[0] == "# Results of multirun/fake"
    assert str(tmp_path) not in md
    monkeypatch.chdir(sweep / "later")  # a sweep outside the working directory: its own name
    assert report_cli.sweep_name(sweep) == "fake" and report_cli.sweep_name(str(sweep) + os.sep) == "fake"
    monkeypatch.chdir(sweep)
    assert report_cli.sweep_name(".") == "fake"
    assert report_cli.sweep_name("wandb:me/proj") == "wandb:me/proj"


def test_every_figure_heading_fits_inside_its_figure(sweep, monkeypatch):  # noqa: F811
    """The latent histograms' long heading (data, backbone, selection, the run) included: after drawing,
    each heading's window extent lies inside the figure."""
    drawn, save = [], report_figures._save

    def keep(fig, path):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        heading = fig._suptitle
        drawn.append((path.stem, heading.get_text(), heading.get_window_extent(renderer), fig.bbox))
        return save(fig, path)

    monkeypatch.setattr(report_figures, "_save", keep)
    runs, hist = report.load_runs(sweep)
    sel = report.select_runs(runs)
    title = " — a_rather_long_dataset_name / a_long_backbone_name, lr selected on validation and TEST"
    report_figures.write_figures(sweep, hist[hist["run_id"].isin(sel["run_id"])], sel, "", title, "train split")
    assert {d[0] for d in drawn} >= {"fig1_binarity", "fig2_histograms", "fig4_collapse"}
    for stem, text, box, fig_box in drawn:
        assert "\n" in text, stem  # wrapped
        assert fig_box.x0 <= box.x0 and box.x1 <= fig_box.x1 and box.y1 <= fig_box.y1, (stem, text)
