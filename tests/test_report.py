"""`binary_encoding.report` on a fake sweep with known numbers (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from binary_encoding import report
from binary_encoding.report import figures as report_figures

# (head, seed, lr) -> (val_acc, test_acc, final val CE); chosen so that val and test selection differ
RUNS = {
    ("binenc", 0, 1e-3): (0.90, 0.80, 0.50),
    ("binenc", 0, 3e-3): (0.85, 0.88, 0.40),
    ("binenc", 1, 1e-3): (0.80, 0.82, 0.60),
    ("binenc", 1, 3e-3): (0.95, 0.78, 0.30),
    ("nopen", 0, 1e-3): (0.92, 0.91, 0.35),  # val tie with 3e-3: the lower val CE (3e-3) wins
    ("nopen", 0, 3e-3): (0.92, 0.93, 0.25),
    ("nopen", 1, 1e-3): (0.97, 0.96, 0.20),
    ("nopen", 1, 3e-3): (0.93, 0.90, 0.45),
}
PICK_VAL = {("binenc", 0): 1e-3, ("binenc", 1): 3e-3, ("nopen", 0): 3e-3, ("nopen", 1): 1e-3}
PICK_TEST = {("binenc", 0): 3e-3, ("binenc", 1): 1e-3, ("nopen", 0): 3e-3, ("nopen", 1): 1e-3}
EPOCHS = 3
HIST_COLS = [
    "train/binarity_score",
    "train/binarity_std",
    "train/peak_dist_mean",
    "train/agreement_dim",
    "train/nc1",
    "train/sigma_w",
    "train/acc",
]


def _config(head, seed, lr):
    return {
        "seed": seed,
        "lr": lr,
        "name": "fake",
        "data": {"name": "digits"},
        "backbone": {"name": "mlp"},
        "head": {"name": head, "width": None if head == "nopen" else 4},
        "trainer": {"max_epochs": EPOCHS},
    }


def _job(
    root, head, seed, lr, *, val=0.5, test=0.5, ce=1.0, status="finished", epochs=EPOCHS, latents=False, extra=None
):
    d = root / f"head={head},lr={lr},seed={seed}"
    (d / ".hydra").mkdir(parents=True)
    cfg = _config(head, seed, lr)
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))  # must not count as a second job
    rows = []
    for e in range(epochs):
        f = (e + 1) / EPOCHS
        row = {"epoch": e, "step": 10 * (e + 1), "val/acc": val * f, "val/ce": ce / f, "gamma": 0.01}
        row.update({c: 0.5 + 0.1 * f + 0.01 * seed for c in HIST_COLS})
        row["train/nc1"] = 10.0 ** (-e - seed)
        row["train/sigma_w"] = 10.0 ** (-2 * e - seed)
        rows.append(row)
    pd.DataFrame(rows).to_csv(d / "metrics.csv", index=False)
    if status == "finished":
        summary = {
            "head": head,
            "backbone": "mlp",
            "data": "digits",
            "seed": seed,
            "lr": lr,
            "epochs": epochs,
            "train_acc": 0.99,
            "val_acc": val,
            "test_acc": test,
            "mahalanobis_auroc": 0.9 + 0.01 * seed,
            "msp_auroc": 0.8,
            "deepfool_rho": 0.1 * (1 + seed),
            "agreement_code": 0.7,
            "n_codes": 10 + seed,
            "nc1": 0.1,
            "sigma_w": None,
            "deepfool_fooled": "inf",
            **(extra or {}),
        }
        (d / "summary.json").write_text(json.dumps(summary))
    elif status == "failed":
        (d / "failed.json").write_text(json.dumps({"error": "RuntimeError: boom"}))
    if latents:
        rng = np.random.default_rng(0)
        z = np.sign(rng.standard_normal((40, 4))) + 0.1 * rng.standard_normal((40, 4))
        np.savez(d / "latents.npz", train_z=z.astype(np.float32), train_y=np.arange(40) % 4)
    return d


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "multirun" / "fake"
    for (head, seed, lr), (val, test, ce) in RUNS.items():
        _job(root, head, seed, lr, val=val, test=test, ce=ce, latents=head == "binenc")
    part = root / "later"  # nested deeper: the search is recursive
    _job(part, "linpen", 0, 1e-3, status="failed", epochs=1)
    _job(part, "linpen", 1, 1e-3, status="unfinished", epochs=2)
    return root


def _picks(sel):
    return {(r.head, int(r.seed)): r.lr for r in sel.itertuples()}


def test_load_counts_and_history(sweep):
    runs, hist = report.load_runs(sweep)
    assert len(runs) == 10
    assert runs["status"].value_counts().to_dict() == {"finished": 8, "failed": 1, "unfinished": 1}
    assert "boom" in runs.loc[runs["status"] == "failed", "error"].item()
    assert report.counts_line(runs) == "10 runs found: 8 finished, 1 failed, 1 unfinished."
    assert len(hist) == 8 * EPOCHS + 1 + 2
    assert runs["deepfool_fooled"].dropna().eq(math.inf).all()  # 'inf' in summary.json read back as a float
    assert runs.loc[runs["head"] == "nopen", "width"].eq(-1).all()


def test_select_on_val_and_on_test(sweep):
    runs, _ = report.load_runs(sweep)
    val = report.select_runs(runs, by="val")
    assert _picks(val) == PICK_VAL
    assert list(val["head"]) == ["binenc", "binenc", "nopen", "nopen"]  # paper order, failed linpen absent
    assert _picks(report.select_runs(runs, by="test")) == PICK_TEST
    with pytest.raises(ValueError, match="select by"):
        report.select_runs(runs, by="train")


def test_aggregate_mean_and_sample_std(sweep):
    runs, _ = report.load_runs(sweep)
    table = report.aggregate(report.select_runs(runs, by="val")).set_index("head")
    # val selection: binenc test acc 0.80, 0.78; nopen 0.93, 0.96
    assert table.loc["binenc", "test_acc_pct_mean"] == pytest.approx(79.0)
    assert table.loc["binenc", "test_acc_pct_std"] == pytest.approx(np.std([80.0, 78.0], ddof=1))  # 1.4142
    assert table.loc["nopen", "test_acc_pct_mean"] == pytest.approx(94.5)
    assert table.loc["nopen", "test_acc_pct_std"] == pytest.approx(np.std([93.0, 96.0], ddof=1))
    assert table.loc["binenc", "deepfool_rho_mean"] == pytest.approx(0.15)
    assert table.loc["binenc", "mahalanobis_auroc_pct_mean"] == pytest.approx(90.5)
    assert table.loc["binenc", "n"] == 2
    assert table.loc["binenc", "lr_per_seed"] == "0:0.001; 1:0.003"
    test = report.aggregate(report.select_runs(runs, by="test")).set_index("head")
    assert test.loc["binenc", "test_acc_pct_mean"] == pytest.approx(85.0)
    assert test.loc["binenc", "test_acc_pct_std"] == pytest.approx(np.std([88.0, 82.0], ddof=1))
    md = report.to_markdown(table.reset_index())
    assert "| BinEnc | 79.00 ± 1.41 (n=2) |" in md
    assert md.index("BinEnc") < md.index("NoPen")


def test_main_writes_tables_and_figures(sweep, capsys):
    assert report.main([str(sweep)]) == 0
    out = sweep / "report"
    printed = capsys.readouterr().out
    assert "| BinEnc | 79.00 ± 1.41 (n=2) |" in printed and "written:" in printed
    res = pd.read_csv(out / "results.csv").set_index("head")
    assert list(res.index) == ["binenc", "nopen"]
    assert res.loc["nopen", "test_acc_pct_mean"] == pytest.approx(94.5)
    assert res.loc["nopen", "n"] == 2
    assert res.loc["nopen", "lr_per_seed"] == "0:0.003; 1:0.001"
    md = (out / "results.md").read_text()
    assert "10 runs found: 8 finished, 1 failed, 1 unfinished." in md
    assert "ddof=1" in md and "validation accuracy" in md
    all_runs = pd.read_csv(out / "all_runs.csv")
    assert len(all_runs) == 8 and all_runs["selected"].sum() == 4
    for name in ("fig1_binarity", "fig2_histograms", "fig3_agreement", "fig4_collapse", "fig5_accuracy"):
        png = out / f"{name}.png"
        assert png.exists() and png.stat().st_size > 5000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name  # a vector copy beside it
    # the printed list names every file the report wrote, PDFs included, each once
    listed = printed.split("written:\n")[1].split()
    assert sorted(listed) == sorted(str(f) for f in out.iterdir()) and len(listed) > 10


def test_select_test_option_and_extra_metric(sweep, tmp_path):
    out = tmp_path / "rep"
    report.main([str(sweep), "--out", str(out), "--select", "test", "--metric", "n_codes,deepfool_fooled"])
    res = pd.read_csv(out / "results.csv").set_index("head")
    assert res.loc["binenc", "test_acc_pct_mean"] == pytest.approx(85.0)
    assert res.loc["binenc", "lr_per_seed"] == "0:0.003; 1:0.001"
    assert "TEST accuracy" in (out / "results.md").read_text()


def test_missing_columns_and_latents_skip_figures(tmp_path, capsys):
    root = tmp_path / "sweep"
    for seed in (0, 1):
        d = _job(root, "nopen", seed, 1e-3, val=0.9, test=0.9)
        h = pd.read_csv(d / "metrics.csv").drop(columns=["train/nc1", "train/agreement_dim"])
        h.to_csv(d / "metrics.csv", index=False)
    report.main([str(root)])
    printed = capsys.readouterr().out
    for name in ("fig1_binarity", "fig2_histograms", "fig3_agreement", "fig4_collapse"):
        assert f"{name}.png: skipped" in printed
        assert not (root / "report" / f"{name}.png").exists()
    assert (root / "report" / "fig5_accuracy.png").stat().st_size > 0
    assert "n=1" not in printed  # two seeds


def test_no_runs_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no runs found"):
        report.main([str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="no runs found"):
        report.load_runs(tmp_path / "empty")
    with pytest.raises(SystemExit, match="does not exist"):
        report.main([str(tmp_path / "nowhere")])
    _job(tmp_path / "bad", "binenc", 0, 1e-3, status="failed")
    with pytest.raises(SystemExit, match="No finished run"):
        report.main([str(tmp_path / "bad")])


def _best_lr(by):
    """docs/method.md §4.2 in plain python over RUNS: per (head, seed) the largest final `by` accuracy,
    then the lower final validation CE, then the smaller learning rate."""
    best = {}
    for (head, seed, lr), (val, test, ce) in RUNS.items():
        key = (-(val if by == "val" else test), ce, lr)
        if (head, seed) not in best or key < best[head, seed][0]:
            best[head, seed] = (key, lr)
    return {k: lr for k, (_, lr) in best.items()}


def test_learning_rate_is_selected_on_validation_unless_told_otherwise(sweep, tmp_path, capsys):
    """Without --select / by / select, every entry point picks the validation-best learning rate."""
    val, test = _best_lr("val"), _best_lr("test")
    assert val != test  # the fake sweep makes the two choices differ
    runs, _ = report.load_runs(sweep)
    assert _picks(report.select_runs(runs)) == val
    report.write_report(sweep, tmp_path / "w")
    sel = pd.read_csv(tmp_path / "w" / "selected_runs.csv")
    assert _picks(sel) == val
    report.main([str(sweep), "--out", str(tmp_path / "m")])
    res = pd.read_csv(tmp_path / "m" / "results.csv").set_index("head")
    for head in ("binenc", "nopen"):
        assert res.loc[head, "lr_per_seed"] == "; ".join(f"{s}:{val[head, s]:g}" for s in (0, 1))
    capsys.readouterr()


@pytest.mark.parametrize("by", ["val", "test"])
def test_selection_ties_go_to_the_lower_validation_ce_then_to_the_smaller_learning_rate(by):
    """Four runs tie on the accuracy; two of them also on the validation CE: the smaller of their
    learning rates wins, whatever the order of the rows (a run without a CE comes after them)."""
    rows = [
        (3e-3, 0.9, 0.40),  # tied accuracy, tied CE, larger lr
        (1e-3, 0.9, 0.40),  # tied accuracy, tied CE, smaller lr: the pick
        (1e-4, 0.9, 0.45),  # tied accuracy, higher CE
        (1e-5, 0.8, 0.10),  # lower accuracy, lowest CE
        (1e-6, 0.9, float("nan")),  # tied accuracy, no CE recorded: ranked after every known CE
    ]
    base = {"status": "finished", "data": "d", "backbone": "b", "head": "binenc", "width": 4, "seed": 0}
    df = pd.DataFrame([{**base, "lr": lr, f"{by}_acc": acc, "final_val_ce": ce} for lr, acc, ce in rows])
    other = "test" if by == "val" else "val"
    df[f"{other}_acc"] = [0.1, 0.2, 0.3, 0.99, 0.1]  # the other split would pick the 1e-5 run
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 0, 4, 3, 2]):
        assert report.select_runs(df.iloc[order], by=by)["lr"].tolist() == [1e-3]
    without_ce = df.drop(columns="final_val_ce")  # no history: accuracy, then the smaller lr
    assert report.select_runs(without_ce, by=by)["lr"].tolist() == [1e-6]


def test_a_diverged_run_is_counted_and_never_selected(tmp_path):
    """A run flagged `diverged` (training accuracy at chance) is left out of the selection even where its
    validation accuracy would win, and the counts say how many there were."""
    root = tmp_path / "sweep"
    _job(root, "binenc", 0, 1e-3, val=0.8, test=0.8)
    _job(root, "binenc", 0, 100.0, val=0.9, test=0.9, extra={"diverged": True, "train_acc": 0.1})
    _job(root, "binenc", 1, 1e-3, val=0.7, test=0.7, extra={"diverged": False})
    runs, _ = report.load_runs(root)
    assert report.counts_line(runs) == (
        "3 runs found: 3 finished (1 diverged: left out of the selection), 0 failed, 0 unfinished."
    )
    for by in ("val", "test"):
        assert _picks(report.select_runs(runs, by=by)) == {("binenc", 0): 1e-3, ("binenc", 1): 1e-3}


def test_runs_that_differ_in_a_swept_setting_get_their_own_rows(tmp_path):
    """A sweep over head.gamma_max (besides lr and seed): one table row per value, each selecting its
    own learning rate per seed; settings that do not define an experiment (runtime, logger) split nothing."""
    root = tmp_path / "sweep"
    for seed in (0, 1):
        for lr, (cap_val, free_val) in ((1e-3, (0.9, 0.5)), (1e-2, (0.6, 0.8))):
            for cap, val in ((10.0, cap_val), (None, free_val)):
                d = _job(root / f"cap={cap}", "binenc", seed, lr, val=val, test=val)
                cfg = yaml.safe_load((d / "config.yaml").read_text())
                cfg["head"]["gamma_max"] = cap
                cfg["runtime"] = {"compile": seed == 0}  # varies, but is no setting of the experiment
                (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    runs, _ = report.load_runs(root)
    assert sorted(set(runs["settings"])) == ["head.gamma_max=10.0", "head.gamma_max=None"]
    sel = report.select_runs(runs)
    picks = {(r.settings, int(r.seed)): r.lr for r in sel.itertuples()}
    assert picks == {
        ("head.gamma_max=10.0", 0): 1e-3,
        ("head.gamma_max=10.0", 1): 1e-3,
        ("head.gamma_max=None", 0): 1e-2,
        ("head.gamma_max=None", 1): 1e-2,
    }
    table = report.aggregate(sel)
    assert len(table) == 2 and table["n"].tolist() == [2, 2]
    md = report.to_markdown(table)
    assert "BinEnc [head.gamma_max=10.0]" in md and "BinEnc [head.gamma_max=None]" in md


def test_ddof_0_gives_the_papers_population_std_and_says_so(sweep, tmp_path):
    out = tmp_path / "r0"
    assert report.main([str(sweep), "--out", str(out), "--ddof", "0"]) == 0
    table = pd.read_csv(out / "results.csv").set_index("head")
    assert table.loc["nopen", "test_acc_pct_std"] == pytest.approx(np.std([93.0, 96.0], ddof=0))  # 1.5
    md = (out / "results.md").read_text()
    assert "population std (ddof=0, as the paper)" in md and "ddof=1" not in md


def _without_val_split(d):
    """Turn a fake job into one trained without a validation split (protocol=reference): val_fraction 0
    in its config, no val_acc in its summary, no val columns in its history."""
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["data"]["val_fraction"], cfg["protocol"] = 0, "reference"
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = json.loads((d / "summary.json").read_text())
    del summary["val_acc"]
    (d / "summary.json").write_text(json.dumps(summary))
    h = pd.read_csv(d / "metrics.csv")
    h.drop(columns=[c for c in h if c.startswith("val/")]).to_csv(d / "metrics.csv", index=False)


def test_runs_without_a_validation_split_are_selected_on_test_and_the_report_says_so(tmp_path, capsys):
    """A sweep of both protocols: default runs pick their lr on validation accuracy, reference runs
    (val_fraction=0) on test accuracy, each in its own row, and the output says which row chose how."""
    root = tmp_path / "sweep"
    for (head, seed, lr), (val, test, ce) in RUNS.items():
        if head == "binenc":
            _job(root / "default", head, seed, lr, val=val, test=test, ce=ce)
            _without_val_split(_job(root / "reference", head, seed, lr, val=val, test=test, ce=ce))
            cfg = yaml.safe_load((root / "default" / f"head={head},lr={lr},seed={seed}" / "config.yaml").read_text())
            cfg["data"]["val_fraction"], cfg["protocol"] = 0.1, "default"
            (root / "default" / f"head={head},lr={lr},seed={seed}" / "config.yaml").write_text(yaml.safe_dump(cfg))
    runs, _ = report.load_runs(root)
    sel = report.select_runs(runs)  # by="val", the default
    picks = {(r.settings, int(r.seed)): (r.lr, r.selected_on) for r in sel.itertuples()}
    val, test = _best_lr("val"), _best_lr("test")
    assert picks == {
        **{("protocol=default", s): (val["binenc", s], "val") for s in (0, 1)},
        **{("protocol=reference", s): (test["binenc", s], "test") for s in (0, 1)},
    }
    assert report.main([str(root), "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    assert "without a validation split (data.val_fraction=0, protocol=reference) on final TEST accuracy" in printed
    rows = {line.split(" | ")[0]: line for line in printed.splitlines() if line.startswith("| BinEnc")}
    assert set(rows) == {"| BinEnc [protocol=default]", "| BinEnc [protocol=reference]"}  # what it sets: implied
    ref_row, default_row = rows["| BinEnc [protocol=reference]"], rows["| BinEnc [protocol=default]"]
    assert "| TEST | 0:0.003; 1:0.001 |" in ref_row and "| validation | 0:0.001; 1:0.003 |" in default_row
    assert (tmp_path / "r" / "fig5_accuracy.png").exists()
    _, hist = report.load_runs(root)  # one curve per protocol in the figures, never the two averaged
    assert [(h, s) for h, _, s in report_figures._heads(hist)] == [
        ("binenc", "protocol=default"),
        ("binenc", "protocol=reference"),
    ]


def test_every_cell_states_how_many_seeds_it_averages():
    """n per cell: a metric missing for one seed (here the DeepFool rho of seed 1) is averaged over the
    other seed, and its cell says n=1 where the others say n=2."""
    base = {"status": "finished", "data": "d", "backbone": "b", "head": "binenc", "width": 4, "lr": 1e-3}
    sel = pd.DataFrame(
        [
            {**base, "seed": 0, "test_acc": 0.90, "deepfool_rho": 0.10},
            {**base, "seed": 1, "test_acc": 0.92, "deepfool_rho": float("nan")},
        ]
    )
    table = report.aggregate(sel, ["test_acc", "deepfool_rho"])
    assert table.loc[0, "test_acc_n"] == 2 and table.loc[0, "deepfool_rho_n"] == 1
    md = report.to_markdown(table, ["test_acc", "deepfool_rho"])
    assert "| BinEnc | 91.00 ± 1.41 (n=2) | 0.1000 (n=1) |" in md


def test_each_head_has_its_own_colour_line_style_and_marker_in_every_figure(sweep, monkeypatch):
    """The paper's four heads: four Okabe-Ito colours, four line styles, four markers; another head gets
    the same style on every call; every drawn line carries its head's style, and no axis shows a raw
    metrics.csv key."""
    styles = {h: report.head_style(h) for h in report.HEAD_ORDER}
    for key in ("color", "linestyle", "marker"):
        assert len({repr(s[key]) for s in styles.values()}) == 4, key
    assert {s["color"] for s in styles.values()} <= set(report.OKABE_ITO.values())
    assert report.head_style("tanhpen") == report.head_style("tanhpen") and "tanhpen" not in report.HEAD_STYLE
    assert report.head_style("tanhpen")["color"] in report.OKABE_ITO.values()
    figures = []
    monkeypatch.setattr(report_figures, "_save", lambda fig, path: figures.append(fig) or f"{path.name}: written")
    runs, hist = report.load_runs(sweep)
    sel = hist[hist["run_id"].isin(report.select_runs(runs)["run_id"])]
    for plot in (report.plot_binarity, report.plot_agreement, report.plot_collapse, report.plot_accuracy):
        assert plot(sel, sweep / "x.png").endswith("written")
    from matplotlib.colors import to_hex

    for fig in figures:
        for ax in fig.axes:
            text = ax.get_ylabel() + ax.get_xlabel() + ax.get_title(loc="left")
            raw = [k for k in report.AXIS_LABEL if k in text or ("_" in k and k.split("/")[1] in text)]
            assert not raw, text  # e.g. neither "train/nc1" nor "sigma_w"
            for line in ax.get_lines():
                head = next(h for h, label in report.HEAD_LABEL.items() if line.get_label().startswith(label + " "))
                assert to_hex(line.get_color()) == styles[head]["color"].lower()
                assert line.get_marker() == styles[head]["marker"]
        assert fig.get_size_inches()[0] == pytest.approx(report.COLUMN_WIDTH)  # one column of a paper


def test_the_report_names_every_job_it_leaves_out_and_why_and_survives_a_broken_summary(tmp_path, capsys):
    """Failed, unfinished, a summary.json cut off while written, an empty one, one holding NaN for the
    selection metric and a diverged run: none is selected, results.md and the console name each with
    its reason, and the settings labels come from the finished runs only (the unfinished job asked for
    other epochs, which labels no row)."""
    root = tmp_path / "sweep"
    _job(root, "binenc", 0, 1e-3, val=0.9, test=0.9)
    _job(root, "binenc", 1, 1e-3, val=0.8, test=0.8)
    _job(root, "binenc", 0, 1e-2, status="failed", epochs=1)
    longer = _job(root, "binenc", 1, 1e-2, status="unfinished", epochs=1)
    cfg = yaml.safe_load((longer / "config.yaml").read_text())
    cfg["trainer"]["max_epochs"] = 5
    (longer / "config.yaml").write_text(yaml.safe_dump(cfg))
    cut = _job(root, "binenc", 0, 3e-3, val=0.99)
    (cut / "summary.json").write_text((cut / "summary.json").read_text()[:40])
    empty = _job(root, "binenc", 1, 3e-3, val=0.99)
    (empty / "summary.json").write_text("")
    _job(root, "binenc", 0, 1e-4, val=0.99, extra={"val_acc": None})  # NaN: written as null
    _job(root, "binenc", 1, 1e-4, val=0.99, extra={"diverged": True})

    runs, _ = report.load_runs(root)
    assert report.counts_line(runs) == (
        "8 runs found: 4 finished (1 diverged: left out of the selection), 1 failed, 3 unfinished."
    )
    assert set(runs["settings"]) == {""}  # no "[trainer.max_epochs=5]" from the unfinished job
    assert _picks(report.select_runs(runs)) == {("binenc", 0): 1e-3, ("binenc", 1): 1e-3}
    why = dict(report.left_out(runs))
    cut_off = "unfinished (its summary.json is unreadable (JSONDecodeError; cut off by a crash?))"
    assert why == {
        "head=binenc,lr=0.01,seed=0": "failed (RuntimeError: boom)",
        "head=binenc,lr=0.01,seed=1": "unfinished (no summary.json)",
        "head=binenc,lr=0.003,seed=0": cut_off,
        "head=binenc,lr=0.003,seed=1": cut_off,
        "head=binenc,lr=0.0001,seed=0": "summary.json holds NaN for val_acc, the selection metric",
        "head=binenc,lr=0.0001,seed=1": "diverged (final training accuracy at chance level)",
    }
    assert report.main([str(root)]) == 0
    printed = capsys.readouterr().out
    md = (root / "report" / "results.md").read_text()
    for run_id, reason in why.items():
        assert f"- `{run_id}`: {reason}" in md and f"- `{run_id}`: {reason}" in printed
    assert "| BinEnc | 85.00 ± 7.07 (n=2) |" in md  # the two good runs only
    del_val = _job(tmp_path / "novalue", "binenc", 0, 1e-3)
    summary = json.loads((del_val / "summary.json").read_text())
    del summary["val_acc"]
    (del_val / "summary.json").write_text(json.dumps(summary))
    _job(tmp_path / "novalue", "binenc", 1, 1e-3)
    runs, _ = report.load_runs(tmp_path / "novalue")
    assert dict(report.left_out(runs)) == {
        "head=binenc,lr=0.001,seed=0": "summary.json has no val_acc, the selection metric"
    }


def test_the_report_reads_the_last_row_of_real_job_folders(tmp_path, monkeypatch):
    """Three real digits MLP jobs of 3 epochs (two learning rates, one of them over two seeds): the
    final validation CE and the epochs the report takes from each metrics.csv equal that file's last row
    read with the csv module; two learning rates tied on validation accuracy go to the lower final CE."""
    import csv

    from conftest import make_cfg

    from binary_encoding.train import train

    root = tmp_path / "sweep"
    jobs = {}
    for lr, seed in ((1e-3, 0), (3e-3, 0), (1e-3, 1)):
        d = root / f"lr={lr},seed={seed}"
        train(make_cfg(d, "trainer.max_epochs=3", "deepfool_samples=0", f"lr={lr}", f"seed={seed}"))
        jobs[d.name] = d
    runs, hist = report.load_runs(root)
    assert set(runs["status"]) == {"finished"} and len(runs) == 3
    for run_id, d in jobs.items():
        with open(d / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
        r = runs.set_index("run_id").loc[run_id]
        assert r["final_val_ce"] == pytest.approx(float(rows[-1]["val/ce"]), rel=1e-12)
        assert r["logged_epochs"] == int(rows[-1]["epoch"]) == 2
        assert r["val_acc"] == pytest.approx(json.loads((d / "summary.json").read_text())["val_acc"])
        h = hist[hist["run_id"] == run_id].sort_values("epoch")
        assert h["val/ce"].tolist() == pytest.approx([float(x["val/ce"]) for x in rows], rel=1e-12)
    # tie the two seed-0 runs on validation accuracy: the lower final validation CE of metrics.csv wins
    a, b = jobs["lr=0.001,seed=0"], jobs["lr=0.003,seed=0"]
    tied = json.loads((a / "summary.json").read_text())["val_acc"]
    summary = json.loads((b / "summary.json").read_text())
    (b / "summary.json").write_text(json.dumps({**summary, "val_acc": tied}))
    last_ce = {}
    for name in ("lr=0.001,seed=0", "lr=0.003,seed=0"):
        with open(jobs[name] / "metrics.csv") as f:
            last_ce[name] = float(list(csv.DictReader(f))[-1]["val/ce"])
    assert last_ce["lr=0.001,seed=0"] != last_ce["lr=0.003,seed=0"]
    want = 1e-3 if last_ce["lr=0.001,seed=0"] < last_ce["lr=0.003,seed=0"] else 3e-3
    runs, _ = report.load_runs(root)
    assert _picks(report.select_runs(runs)) == {("binenc", 0): want, ("binenc", 1): 1e-3}


def test_values_that_are_no_finite_numbers_and_unreadable_rows_are_named_and_every_figure_is_still_drawn(
    tmp_path, capsys
):
    """Five seeds of one setting whose test accuracies are 0.9, 0.8, NaN, "inf" and "0.9x", one job whose
    validation accuracy at another lr is "inf", and one metrics.csv with a row of `x`: the cell averages
    the two numbers (n=2, never inf), the inf accuracy is never selected, results.md and the console name
    every value and row left out with its job and file, and every figure is drawn from what can be read."""
    root = tmp_path / "sweep"
    tests = [0.9, 0.8, None, "inf", "0.9x"]
    for seed, test in enumerate(tests):
        _job(root, "binenc", seed, 1e-3, val=0.9, test=0.5, extra={"test_acc": test}, latents=seed == 0)
    _job(root, "binenc", 0, 1e-2, val=0.5, extra={"val_acc": "inf"})
    bad_csv = root / "head=binenc,lr=0.001,seed=1" / "metrics.csv"
    lines = bad_csv.read_text().splitlines()
    lines[2] = ",".join(["x"] * len(lines[0].split(",")))  # the row of epoch 1
    bad_csv.write_text("\n".join(lines) + "\n")

    runs, hist = report.load_runs(root)
    assert sorted(hist[hist["run_id"] == "head=binenc,lr=0.001,seed=1"]["epoch"]) == [0, 2]
    assert all(pd.api.types.is_numeric_dtype(hist[c]) for c in ["epoch", *HIST_COLS])
    assert _picks(report.select_runs(runs)) == {("binenc", s): 1e-3 for s in range(5)}
    assert report.main([str(root), "--wandb", "off"]) == 0
    printed = capsys.readouterr().out
    md = (root / "report" / "results.md").read_text()
    assert "| BinEnc | 85.00 ± 7.07 (n=2) |" in md and "inf" not in md.split("### values left out")[0]
    expected = [
        "`head=binenc,lr=0.001,seed=2`: summary.json holds NaN for test_acc, not a finite number: "
        "left out of its cell's mean",
        "`head=binenc,lr=0.001,seed=3`: summary.json holds inf for test_acc, not a finite number: "
        "left out of its cell's mean",
        "`head=binenc,lr=0.001,seed=4`: summary.json holds '0.9x' for test_acc, not a finite number: "
        "left out of its cell's mean",
        "`head=binenc,lr=0.001,seed=1`: metrics.csv line 3 holds values that are no numbers: left out of the figures",
    ]
    for line in expected:
        assert f"- {line}" in md and f"note: {line}" in printed, line
    assert "- `head=binenc,lr=0.01,seed=0`: summary.json holds inf for val_acc, the selection metric" in md
    drawn = sorted(p.stem for p in (root / "report").glob("fig*.png"))
    assert drawn == ["fig1_binarity", "fig2_histograms", "fig3_agreement", "fig4_collapse", "fig5_accuracy"]
    skipped = [line for line in printed.splitlines() if "skipped" in line]  # only what these fixtures lack:
    assert all("fig6_two_valued" in line or "fig7_claims" in line for line in skipped), skipped  # no metric, one head


def test_cells_are_means_over_three_or_more_seeds_with_unequal_values(tmp_path):
    """Four seeds of one head whose values make the mean differ from the median (and from the mean of any
    two): each cell is numpy's mean ± sample std of the four, in the table and in results.md."""
    root = tmp_path / "multirun" / "fake"
    tests = [0.60, 0.70, 0.95, 0.99]
    for seed, test in enumerate(tests):
        _job(root, "binenc", seed, 1e-3, val=0.5, test=test)
    runs, _ = report.load_runs(root)
    table = report.aggregate(report.select_runs(runs, by="val"))
    pct = 100 * np.array(tests)
    assert np.mean(pct) != np.median(pct)
    assert table.loc[0, "n"] == 4 and table.loc[0, "test_acc_pct_mean"] == pytest.approx(np.mean(pct))
    assert table.loc[0, "test_acc_pct_std"] == pytest.approx(np.std(pct, ddof=1))
    rho = 0.1 * (1 + np.arange(4))  # _job's deepfool_rho of seeds 0-3
    assert table.loc[0, "deepfool_rho_mean"] == pytest.approx(np.mean(rho))
    assert report.main([str(root), "--wandb", "off"]) == 0
    cell = f"| BinEnc | {np.mean(pct):.2f} ± {np.std(pct, ddof=1):.2f} (n=4) |"
    assert cell in (root / "report" / "results.md").read_text()


def test_a_diverged_run_is_left_out_when_every_summary_holds_the_flag(tmp_path):
    """As real runs write it: every summary.json holds `diverged` (true or false), so the loaded column is
    boolean; the flagged run (the best validation accuracy) is still counted and never selected."""
    root = tmp_path / "sweep"
    _job(root, "binenc", 0, 1e-3, val=0.8, test=0.8, extra={"diverged": False})
    _job(root, "binenc", 0, 100.0, val=0.9, test=0.9, extra={"diverged": True, "train_acc": 0.1})
    _job(root, "binenc", 1, 1e-3, val=0.7, test=0.7, extra={"diverged": False})
    runs, _ = report.load_runs(root)
    assert report.counts_line(runs).startswith("3 runs found: 3 finished (1 diverged: left out of the selection)")
    for by in ("val", "test"):
        assert _picks(report.select_runs(runs, by=by)) == {("binenc", 0): 1e-3, ("binenc", 1): 1e-3}
    assert [why for _, why in report.left_out(runs)] == ["diverged (final training accuracy at chance level)"]


@pytest.mark.parametrize(("flag", "clear"), [(1.0, 0.0), ("true", "false"), ("True", "False"), (np.True_, np.False_)])
def test_a_diverged_flag_read_as_a_number_or_a_string_still_leaves_the_run_out(flag, clear):
    """A runs frame not made by load_runs (a W&B or CSV export: the flag as 1.0, 'true' or numpy's bool):
    the flagged run, best on validation, is not selected, and left_out names it."""
    base = {"status": "finished", "data": "d", "backbone": "b", "head": "binenc", "width": 4, "seed": 0}
    runs = pd.DataFrame(
        [
            {**base, "run_id": "good", "lr": 1e-3, "val_acc": 0.8, "test_acc": 0.8, "diverged": clear},
            {**base, "run_id": "broken", "lr": 100.0, "val_acc": 0.9, "test_acc": 0.9, "diverged": flag},
        ]
    )
    assert list(report.select_runs(runs)["run_id"]) == ["good"]
    assert report.left_out(runs) == [("broken", "diverged (final training accuracy at chance level)")]


def test_a_summary_made_before_two_valuedness_gets_it_from_the_latents_it_saved(tmp_path):
    """Runs made before the metric existed: the report reads two-valuedness from their latents.npz (the
    training split at the end), equal to sklearn's per-dimension R² (tests/oracles.py); a summary that holds
    the value keeps it, and a run without latents has none."""
    from oracles import two_valuedness_reference

    root = tmp_path / "sweep"
    old = _job(root, "binenc", 0, 1e-3, latents=True)
    _job(root, "binenc", 1, 1e-3, latents=True, extra={"two_valued": 0.5, "two_valued_min": 0.25})
    _job(root, "linpen", 0, 1e-3)
    runs, _ = report.load_runs(root)
    got = runs.set_index(["head", "seed"])
    want = two_valuedness_reference(np.load(old / "latents.npz")["train_z"])
    assert got.loc[("binenc", 0), "two_valued"] == pytest.approx(want.mean(), rel=1e-6)
    assert got.loc[("binenc", 0), "two_valued_min"] == pytest.approx(want.min(), rel=1e-6)
    assert want.mean() < 0.999  # the latents are not exactly two-valued: a constant would not pass
    assert (got.loc[("binenc", 1), "two_valued"], got.loc[("binenc", 1), "two_valued_min"]) == (0.5, 0.25)
    assert pd.isna(got.loc[("linpen", 0), "two_valued"])


def test_the_papers_table_in_the_report_is_the_one_docs_method_restates():
    """The report prints the paper's numbers beside a sweep's (`tables.PAPER`): each cell equals the
    paper's table as docs/method.md §9 restates it, dataset by dataset, head by head, in its order."""
    from binary_encoding.report import tables
    from binary_encoding.report.style import HEAD_LABEL

    text = (Path(__file__).parents[1] / "docs" / "method.md").read_text()
    section = text[text.index("## 9. Results reported in the paper") :].split("\n## ")[0]
    docs: dict[str, dict[str, tuple[str, ...]]] = {}
    data = None
    for line in section.splitlines():
        if line.startswith("| head | CIFAR-"):
            data = "cifar" + line.split("CIFAR-")[1].split()[0]
            docs[data] = {}
        elif line.startswith("| ") and not line.startswith(("| head", "|---")) and data:
            label, *cells = [c.strip() for c in line.strip("|").split("|")]
            head = {v: k for k, v in HEAD_LABEL.items()}[label]
            docs[data][head] = tuple(c.replace("+-", "±") for c in cells)
    assert list(docs) == ["cifar10", "cifar100"] and all(len(d) == 4 for d in docs.values())
    assert {d: dict(v) for d, v in tables.PAPER.items()} == docs
    assert [list(v) for v in tables.PAPER.values()] == [list(v) for v in docs.values()]


def test_an_extra_metric_already_in_the_table_is_not_shown_twice():
    """`--metric` adds columns to the table: one that is already a column, or given twice, appears once."""
    from binary_encoding.report.tables import shown_columns

    keys = shown_columns()
    assert len(keys) == len(set(keys)) and "test_acc" in keys
    assert shown_columns(["test_acc", "two_valued_min", "two_valued_min"]) == [
        *keys,
        *(["two_valued_min"] if "two_valued_min" not in keys else []),
    ]
    assert shown_columns(["my_metric", keys[0], "my_metric"]) == [*keys, "my_metric"]


def test_every_curve_is_the_mean_over_the_selected_runs_on_an_epoch_axis_counted_from_1(sweep, monkeypatch):
    """The accuracy figure of a whole report: each head's line is, epoch by epoch, the mean of its
    selected runs' metrics.csv rows (the other learning rates' runs left out), at x = epoch + 1 as the
    console and the tables count epochs."""
    figures = []
    monkeypatch.setattr(report_figures, "_save", lambda fig, path: figures.append((path.stem, fig)) or "written")
    assert report.main([str(sweep)]) == 0
    (fig,) = [f for stem, f in figures if stem == "fig5_accuracy"]
    runs, hist = report.load_runs(sweep)
    picked = report.select_runs(runs)
    checked = 0
    for line in (line for ax in fig.axes for line in ax.get_lines()):
        head = next(h for h, label in report.HEAD_LABEL.items() if line.get_label().startswith(label + " "))
        ids = picked.loc[picked["head"] == head, "run_id"]
        ys = np.asarray(line.get_ydata(), dtype=float)
        means = {c: 100 * hist[hist["run_id"].isin(ids)].groupby("epoch")[c].mean() for c in ("train/acc", "val/acc")}
        (col,) = [c for c, m in means.items() if np.allclose(ys, m.to_numpy())]
        everyone = 100 * hist[hist["head"] == head].groupby("epoch")[col].mean()
        # the fixture's validation accuracy depends on the learning rate: all runs' mean is another curve
        assert col == "train/acc" or not np.allclose(ys, everyone.to_numpy())
        assert list(line.get_xdata()) == [1, 2, 3]
        checked += col == "val/acc"
    assert checked == 2  # the validation curves of both heads


def test_finished_runs_trained_for_other_epochs_get_rows_of_their_own_and_no_note(tmp_path, no_figures):
    """trainer.max_epochs splits a table row (identity.splits_report_row): a sweep over 2 and 5 epochs gives
    one row per epoch count, each labelled with it, and no row mixes the two (so no note is needed)."""
    root = tmp_path / "sweep"
    for seed in (0, 1):
        _job(root, "binenc", seed, 1e-3, val=0.9, test=0.9)
        longer = _job(root / "five", "binenc", seed, 1e-3, val=0.8, test=0.7)
        cfg = yaml.safe_load((longer / "config.yaml").read_text())
        cfg["trainer"]["max_epochs"] = 5
        (longer / "config.yaml").write_text(yaml.safe_dump(cfg))
    runs, _ = report.load_runs(root)
    assert sorted(runs["settings"]) == sorted([f"trainer.max_epochs={EPOCHS}"] * 2 + ["trainer.max_epochs=5"] * 2)
    res = report.write_report(root, tmp_path / "out", wandb_mode="off")
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert sorted(zip(table["settings"], table["n"], table["test_acc_pct_mean"])) == [
        (f"trainer.max_epochs={EPOCHS}", 2, pytest.approx(90.0)),
        ("trainer.max_epochs=5", 2, pytest.approx(70.0)),
    ]
    assert res["notes"] == []
