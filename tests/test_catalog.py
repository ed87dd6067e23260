"""The metric catalog (`binary_encoding.metrics.catalog`): one declaration per logged quantity, read by
the Metrics callback, metrics.csv, W&B, the console, summary.json and the report."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest
from wandb_record import read_run, run_files

from binary_encoding.metrics import catalog
from binary_encoding.report import write_report
from binary_encoding.train import train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def mean_abs_z(d: catalog.SplitData) -> float:
    """Mean magnitude of the latents: a metric the package does not have."""
    return d.z.abs().mean().item()


@pytest.fixture
def registered():
    metric = catalog.register(
        catalog.Metric(
            "mean_abs_z",
            splits=("train", "val"),
            summary="min",
            final=True,
            compute=mean_abs_z,
            table=catalog.Column("mean |z|", fmt=".3f"),
            panels=(catalog.Panel("fig6_mean_abs_z", "mean |z| of the latents", "Magnitude of the latents"),),
        )
    )
    yield metric
    catalog.unregister("mean_abs_z")
    assert catalog.get("mean_abs_z") is None


def test_the_catalog_declares_what_the_readers_show():
    """The project's declarations as each reader asks for them (what the old per-module lists held)."""
    assert catalog.console_values() == [
        ("train/loss", "train loss", ".4f"),
        ("val/acc", "val acc", ".4f"),
        ("gamma", "gamma", ".4g"),
        ("train/n_codes", "codes", ".0f"),
    ]
    best = dict(catalog.summary_definitions())
    for name in ("acc", "agreement_dim", "agreement_code", "top_codes_fraction", "binarity_score"):
        assert best[f"train/{name}"] == best[f"val/{name}"] == "max", name
    for key in ("train/ce", "val/ce", "train/loss", "train/nc1", "val/nc1", "train/sigma_w", "val/sigma_w"):
        assert best[key] == "min", key
    assert [c[0] for c in catalog.table_columns()][:2] == ["test_acc", "train_acc"]
    assert [k for k, _ in catalog.figures()["fig4_collapse"]] == ["train/sigma_w", "train/nc1"]
    assert catalog.get("test_acc").end_only and not catalog.get("nc1").end_only
    with pytest.raises(ValueError, match="summary must be"):
        catalog.Metric("x", summary="best")


def test_a_metric_registered_outside_the_package_reaches_every_record_and_the_report(registered, cfg_factory, tmp_path):
    s = train(cfg_factory("trainer.max_epochs=3", "deepfool_samples=0", "save_latents=true", logger="wandb"))

    # summary.json: the end-of-training value, that of the final training latents (recomputed with numpy)
    lat = np.load(tmp_path / "latents.npz")
    assert s["mean_abs_z"] == pytest.approx(float(np.abs(lat["train_z"].astype(np.float64)).mean()), rel=1e-5)
    assert json.loads((tmp_path / "summary.json").read_text())["mean_abs_z"] == s["mean_abs_z"]

    # metrics.csv: one value per epoch on each split; the last epoch's training latents are the final ones
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    train_curve = [float(r["train/mean_abs_z"]) for r in rows]
    val_curve = [float(r["val/mean_abs_z"]) for r in rows]
    assert all(math.isfinite(v) and v > 0 for v in train_curve + val_curve)
    assert train_curve[-1] == pytest.approx(s["mean_abs_z"], rel=1e-12)

    # the W&B run file: the curve in the history rows, its best (min) value as the summary, the final value
    (path,) = run_files(tmp_path)
    r = read_run(path)
    assert r.metric("train/mean_abs_z").summary.min and r.metric("val/mean_abs_z").summary.min
    assert r.metric("train/mean_abs_z").step_metric == "epoch"
    assert [h["train/mean_abs_z"] for h in r.history] == pytest.approx(train_curve, rel=1e-6)
    assert [h["val/mean_abs_z"] for h in r.history] == pytest.approx(val_curve, rel=1e-6)
    assert r.summary["train/mean_abs_z"]["min"] == pytest.approx(min(train_curve), rel=1e-6)
    assert r.summary["final/mean_abs_z"] == pytest.approx(s["mean_abs_z"])

    # the report: a table column (results.csv, results.md) and a figure of its own
    res = write_report(tmp_path, tmp_path / "report", wandb_mode="off")
    table = pd.read_csv(tmp_path / "report" / "results.csv")
    assert table.loc[0, "mean_abs_z_mean"] == pytest.approx(s["mean_abs_z"]) and table.loc[0, "mean_abs_z_n"] == 1
    md = (tmp_path / "report" / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| head |")).split(" | ")
    row = next(line for line in md.splitlines() if line.startswith("| BinEnc")).split(" | ")
    assert row[header.index("mean |z|")] == f"{s['mean_abs_z']:.3f} (n=1)"
    png = tmp_path / "report" / "fig6_mean_abs_z.png"
    assert png in res["files"] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
