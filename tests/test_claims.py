"""The claims section of the report (`binary_encoding.report.claims`) on fake sweeps with known per-seed values:
wins, the t-interval (scipy as the oracle), every verdict, claims.csv read back, the figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_report import _job

from binary_encoding import report
from binary_encoding.report import claims as report_claims
from binary_encoding.report import figures as report_figures

SEEDS = (0, 1, 2)
# per head, per seed: the summary values (BinEnc first); each claim metric reaches a known verdict against LinPen
VALUES = {
    "binenc": {
        "agreement_code": [0.99, 0.98, 0.97],  # +0.09, +0.18, +0.02: holds on every seed
        "n_codes": [10, 10, 10],  # 16 for LinPen on every seed: holds, a zero-width interval
        "nc1": [1e-3, 2e-3, 1e-3],  # 10x, 5x, 3x lower: holds
        "two_valued": [0.99, 0.98, 0.97],  # LinPen's runs predate the metric: not measured
        "test_acc": [0.95, 0.90, 0.97],  # +2, -2, +1 points: holds on the mean only
        "mahalanobis_auroc": [0.80, 0.81, 0.79],  # -10, -11, -12 points: reversed
        "msp_auroc": [0.91, 0.87, 0.91],  # +1, -3, +1 points: mean -1/3, interval across 0: does not hold
        "deepfool_rho": [0.2, 0.1, 0.3],  # 2x, 0.5x, 3x higher: holds on the mean only
    },
    "linpen": {
        "agreement_code": [0.90, 0.80, 0.95],
        "n_codes": [16, 16, 16],
        "nc1": [1e-2, 1e-2, 3e-3],
        "test_acc": [0.93, 0.92, 0.96],
        "mahalanobis_auroc": [0.90, 0.92, 0.91],
        "msp_auroc": [0.90, 0.90, 0.90],
        "deepfool_rho": [0.1, 0.2, 0.1],
    },
}
VERDICTS = {
    "agreement_code": "holds on every seed",
    "n_codes": "holds on every seed",
    "nc1": "holds on every seed",
    "two_valued": "not measured",
    "test_acc": "holds on the mean only",
    "mahalanobis_auroc": "reversed",
    "msp_auroc": "does not hold",
    "deepfool_rho": "holds on the mean only",
}


def _summary(head: str, seed: int) -> dict:
    values = {k: v[seed] for k, v in VALUES[head].items()}
    values.setdefault("two_valued", None)  # no value: not in the summary of a run made before the metric
    return {k: v for k, v in values.items() if v is not None}


@pytest.fixture
def sweep(tmp_path):
    """BinEnc and LinPen with 3 seeds, NoPen with seed 0 only (one pair: no verdict); two learning rates of
    BinEnc per seed, the worse on validation with values that would change every verdict."""
    root = tmp_path / "multirun" / "claims"
    for seed in SEEDS:
        for head in ("binenc", "linpen"):
            s = _summary(head, seed)
            _job(root, head, seed, 1e-3, val=0.9, test=s.pop("test_acc"), extra=s)
        bad = {k: 0.5 for k in VALUES["binenc"]}
        _job(root, "binenc", seed, 1e-2, val=0.5, test=bad.pop("test_acc"), extra=bad)
    _job(root, "nopen", 0, 1e-3, val=0.9, test=0.9, extra={"agreement_code": 0.01, "nc1": 0.2, "n_codes": 900})
    return root


def _paired(metric: str) -> tuple[list[float], list[float]]:
    c = next(c for c in report_claims.CLAIMS if c.metric == metric)
    return [v * c.scale for v in VALUES["binenc"][metric]], [v * c.scale for v in VALUES["linpen"][metric]]


def test_each_claim_gets_its_wins_t_interval_and_verdict_and_claims_csv_reads_back(sweep):
    res = report.write_report(sweep, wandb_mode="off")
    out = sweep / "report"
    table = pd.read_csv(out / "claims.csv")
    linpen = table[table["other"] == "LinPen"].set_index("metric")
    assert linpen["verdict"].to_dict() == VERDICTS
    for metric in ("agreement_code", "test_acc", "mahalanobis_auroc", "msp_auroc"):  # differences
        b, o = _paired(metric)
        d = np.subtract(b, o)
        low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
        r = linpen.loc[metric]
        assert (r["n"], r["wins"]) == (3, int((d > 0).sum())), metric
        assert r["effect"] == pytest.approx(d.mean()) and (r["ci_low"], r["ci_high"]) == pytest.approx((low, high))
        assert (r["binenc_mean"], r["other_mean"]) == pytest.approx((np.mean(b), np.mean(o)))
    assert linpen.loc["test_acc", "wins"] == 2 and linpen.loc["mahalanobis_auroc", "ci_high"] < 0
    # factors in the claimed direction, the interval on their logarithms
    for metric, higher in (("nc1", False), ("deepfool_rho", True)):
        b, o = _paired(metric)
        f = (np.array(b) / np.array(o)) ** (1 if higher else -1)
        low, high = stats.t.interval(0.95, 2, loc=np.log(f).mean(), scale=stats.sem(np.log(f)))
        r = linpen.loc[metric]
        assert r["effect"] == pytest.approx(math.exp(np.log(f).mean()))
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((math.exp(low), math.exp(high)))
        assert r["wins"] == int((f > 1).sum())
    assert linpen.loc["nc1", "effect"] == pytest.approx((10 * 5 * 3) ** (1 / 3))
    assert linpen.loc["n_codes", ["effect", "ci_low", "ci_high"]].tolist() == [-6.0, -6.0, -6.0]
    assert linpen.loc["two_valued", "n"] == 0
    # NoPen: one seed pairs up, so the values without a verdict; its missing metrics are not measured
    nopen = table[table["other"] == "NoPen"].set_index("metric")
    assert nopen.loc["nc1", ["n", "wins", "verdict"]].tolist() == [1, 1, "one seed: no verdict"]
    assert nopen.loc["nc1", "effect"] == pytest.approx(0.2 / 1e-3) and math.isnan(nopen.loc["nc1", "ci_low"])
    assert nopen.loc["two_valued", "verdict"] == "not measured"
    # per seed: both values and the effect, for the learning rate selected on validation
    per_seed = pd.read_csv(out / "claims_per_seed.csv")
    rows = per_seed[(per_seed["other"] == "LinPen") & (per_seed["metric"] == "nc1")]
    assert rows["seed"].tolist() == [0, 1, 2] and rows["binenc_value"].tolist() == pytest.approx([1e-3, 2e-3, 1e-3])
    assert rows["effect"].tolist() == pytest.approx([10, 5, 3])
    # results.md: the claims section, with the verdicts and the per-seed values
    md = (out / "results.md").read_text()
    assert "## The paper's claims: BinEnc against each head, paired by seed" in md
    assert "| 2. accuracy | test accuracy (%) | LinPen | 94.00 | 93.67 | +0.33 (" in md
    assert "| 2 of 3 | holds on the mean only |" in md and "| 0 of 3 | reversed |" in md
    assert "| 3. reliability, beside it | max-softmax AUROC (%) | LinPen |" in md
    assert "| 0 | 9.90e-01 / 9.00e-01" not in md and "| 0 | 0.990 / 0.900 (+0.090) |" in md
    assert "5.31x lower (factor " in md  # the geometric mean of 10, 5 and 3
    for name in ("claims.csv", "claims_per_seed.csv", "fig7_claims.png", "fig7_claims.pdf"):
        assert out / name in res["files"], name
    assert (out / "fig7_claims.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "toward, want",
    [
        ([0.1, 0.2], "holds on every seed"),
        ([0.3, -0.1, 0.2], "holds on the mean only"),
        ([-1.0, -1.1, -0.9], "reversed"),
        ([-0.5, 0.4, -0.2], "does not hold"),
        ([0.0, 0.0], "does not hold"),  # ties win nothing
        ([0.5], "one seed: no verdict"),
        ([], "not measured"),
    ],
)
def test_the_verdict_rule(toward, want):
    assert report_claims.verdict(toward) == want


def test_the_interval_is_the_t_interval_of_the_mean():
    v = [0.3, -0.1, 0.2, 0.7]
    mean, low, high = report_claims.interval(v)
    assert mean == pytest.approx(0.275)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 3, loc=np.mean(v), scale=stats.sem(v)))
    assert math.isnan(report_claims.interval([1.0])[1])


def test_one_seed_gives_values_and_says_there_is_no_verdict(tmp_path):
    root = tmp_path / "one"
    for head in ("binenc", "linpen"):
        _job(root, head, 0, 1e-3, val=0.9, test=0.9, extra=_summary(head, 0))
    md = report.write_report(root, wandb_mode="off")["markdown"]
    assert "Fewer than 2 seeds pair up: the table gives the values, no verdict." in md
    table = pd.read_csv(root / "report" / "claims.csv")
    assert set(table["verdict"]) == {"one seed: no verdict", "not measured"}


def test_without_binenc_or_without_another_head_the_claims_section_says_so(tmp_path):
    for heads, says in (
        (("linpen", "nopen"), "No BinEnc run among the selected runs"),
        (("binenc",), "No other head among the selected runs"),
    ):
        root = tmp_path / "-".join(heads)
        for head in heads:
            for seed in (0, 1):
                _job(root, head, seed, 1e-3, val=0.9, test=0.9)
        res = report.write_report(root, wandb_mode="off")
        assert says in res["markdown"]
        assert pd.read_csv(root / "report" / "claims.csv").empty
        assert any("fig7_claims.png: skipped" in n for n in res["notes"])


def test_the_claims_figure_has_a_panel_per_metric_and_a_line_per_seed_and_head(sweep):
    runs, _ = report.load_runs(sweep)
    _, per_seed = report_claims.claims_tables(report.select_runs(runs))
    fig = report_figures.claims_figure(per_seed)
    try:
        axes = fig.get_axes()
        # 7 metrics with values (two_valued has none): agreement, codes, NC1, accuracy, two AUROCs, rho
        assert [ax.get_title(loc="left").split(",")[0] for ax in axes] == [
            "joint-code agreement", "codes (one per class at best)", "NC1", "test accuracy (%)",
            "Mahalanobis AUROC (%)", "max-softmax AUROC (%)", "DeepFool rho",
        ]  # fmt: skip
        # 3 LinPen seeds and NoPen's one seed
        assert [len(ax.get_lines()) for ax in axes] == [4] * 7
        line = axes[2].get_lines()[1]  # NC1 (after NoPen, in the heads' order) LinPen seed 0: LinPen -> BinEnc
        assert list(line.get_xdata()) == [0, 1] and list(line.get_ydata()) == pytest.approx([1e-2, 1e-3])
        assert axes[2].get_yscale() == "log" and axes[0].get_yscale() == "linear"
        colours = {ln.get_color() for ln in axes[0].get_lines()}
        assert colours == {report.head_style("linpen")["color"], report.head_style("nopen")["color"]}
    finally:
        report_figures._plt().close(fig)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_w_and_b_report_run_holds_the_claims_table(sweep, tmp_path):
    """Read back from the offline run file, with the verdicts of the table above."""
    import json

    from wandb_record import read_run, run_files

    runs, _ = report.load_runs(sweep)
    selected = report.select_runs(runs)
    summary, per_seed = report_claims.claims_tables(selected)
    target = {"project": "claims", "entity": None, "group": "claims", "ids": {}}
    tables = {"claims": summary, "claims_per_seed": per_seed}
    report.publish_wandb(target, tmp_path, report.aggregate(selected), selected, [], "offline", {}, tables)
    (path,) = run_files(tmp_path)
    (row,) = read_run(path).history
    logged = json.loads((path.parent / "files" / row["claims/path"]).read_text())
    at = {name: i for i, name in enumerate(logged["columns"])}
    got = {r[at["metric"]]: r[at["verdict"]] for r in logged["data"] if r[at["other"]] == "LinPen"}
    assert got == VERDICTS and len(logged["data"]) == len(summary)
    seeds = json.loads((path.parent / "files" / row["claims_per_seed/path"]).read_text())
    assert len(seeds["data"]) == len(per_seed) and "binenc_value" in seeds["columns"]


def test_binenc_is_compared_with_each_head_of_its_width_and_with_nopen_which_has_none():
    rows = [
        {"data": "digits", "backbone": "mlp", "head": h, "width": w, "settings": "", "seed": s, "lr": 1e-3, "nc1": 0.1}
        for h, w in (("binenc", 4), ("binenc", 8), ("linpen", 4), ("nopen", -1))
        for s in (0, 1)
    ]
    got = [(b, o, len(br), len(orr)) for _, _, b, o, br, orr in report_claims.pairs(pd.DataFrame(rows))]
    assert got == [
        ("BinEnc (d=4)", "NoPen", 2, 2),
        ("BinEnc (d=4)", "LinPen (d=4)", 2, 2),
        ("BinEnc (d=8)", "NoPen", 2, 2),
    ]


def test_the_means_and_the_effect_of_a_comparison_are_over_its_paired_seeds_only():
    """BinEnc with seeds 0, 1 and 2 against LinPen with seeds 0 and 2: BinEnc's seed 1 enters no number."""
    accs = {"binenc": {0: 0.90, 1: 0.50, 2: 0.96}, "linpen": {0: 0.88, 2: 0.91}}
    rows = [
        {
            "data": "digits",
            "backbone": "mlp",
            "head": h,
            "width": 4,
            "settings": "",
            "seed": s,
            "lr": 1e-3,
            "test_acc": v,
        }
        for h, by_seed in accs.items()
        for s, v in by_seed.items()
    ]
    summary, per_seed = report_claims.claims_tables(pd.DataFrame(rows))
    r = summary.set_index("metric").loc["test_acc"]
    assert (r["n"], r["wins"]) == (2, 2)
    assert (r["binenc_mean"], r["other_mean"], r["effect"]) == pytest.approx((93.0, 89.5, 3.5))  # % points
    assert sorted(per_seed.loc[per_seed["metric"] == "test_acc", "seed"]) == [0, 2]


def test_each_backbones_per_seed_table_holds_its_own_runs_only():
    """A sweep over two backbones of one data set: the per-seed table under `### claims: digits / mlp` holds
    the MLP's values, the one under `resnet18` the ResNet's (a filter on the data set alone would show the
    last backbone's values under both)."""
    nc1 = {("mlp", "binenc"): [1e-3, 2e-3], ("mlp", "linpen"): [1e-2, 1e-2]}
    nc1 |= {("resnet18", "binenc"): [5e-3, 6e-3], ("resnet18", "linpen"): [4e-2, 4e-2]}
    rows = [
        {"data": "digits", "backbone": b, "head": h, "width": 4, "settings": "", "seed": s, "lr": 1e-3, "nc1": v[s]}
        for (b, h), v in nc1.items()
        for s in (0, 1)
    ]
    selected = pd.DataFrame(rows)
    text = report_claims.claims_markdown(*report_claims.claims_tables(selected), selected)
    mlp, resnet = text.split("### claims: digits / mlp")[1].split("### claims: digits / resnet18")
    per_seed = lambda section: section.split("#### per seed: BinEnc / LinPen")[1].strip().splitlines()[2:]  # noqa: E731
    assert per_seed(mlp) == ["| 0 | 1.00e-03 / 1.00e-02 (10x lower) |", "| 1 | 2.00e-03 / 1.00e-02 (5x lower) |"]
    assert per_seed(resnet) == ["| 0 | 5.00e-03 / 4.00e-02 (8x lower) |", "| 1 | 6.00e-03 / 4.00e-02 (6.67x lower) |"]
