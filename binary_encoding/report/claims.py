"""The paper's claims on any sweep: BinEnc against every other head present, paired by seed.

Each head's runs are those the selection picked (`select.select_runs`: the learning rate per seed chosen on
validation). Per (data, backbone), every BinEnc row of the table is compared with every other head's row of
the same width (NoPen, which has none, with every BinEnc row), seed by seed, on the metrics of each claim
(`CLAIMS`). Per seed: both values and their difference (or factor). Across the seeds: the wins, the mean
effect with a 95% t-interval, and a verdict (`verdict`); the rule and the interval are those of
docs/method.md §4.7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .select import _order
from .style import HEAD_LABEL


@dataclass(frozen=True)
class Claim:
    """One metric of one of the paper's claims: BinEnc's value is claimed `higher` (or lower) than another
    head's. `ratio`: the effect is a factor (in the claimed direction, > 1 when the claim holds) with its
    interval taken on the logarithms; else a difference BinEnc - other in the metric's units (`scale` 100:
    percentage points)."""

    claim: str
    metric: str  # summary.json key
    label: str
    higher: bool
    ratio: bool = False
    scale: float = 1
    fmt: str = ".3f"


CLAIMS = (
    Claim("1. codes and collapse", "agreement_code", "joint-code agreement", True),
    Claim("1. codes and collapse", "n_codes", "codes (one per class at best)", False, fmt=".1f"),
    Claim("1. codes and collapse", "nc1", "NC1", False, ratio=True, fmt=".2e"),
    Claim("1. codes and collapse", "two_valued", "two-valuedness (sign R²)", True),
    Claim("2. accuracy", "test_acc", "test accuracy (%)", True, scale=100, fmt=".2f"),
    Claim("3. reliability", "mahalanobis_auroc", "Mahalanobis AUROC (%)", True, scale=100, fmt=".2f"),
    Claim("3. reliability, beside it", "msp_auroc", "max-softmax AUROC (%)", True, scale=100, fmt=".2f"),
    Claim("4. robustness", "deepfool_rho", "DeepFool rho", True, ratio=True, fmt=".3f"),
)
BINENC = "binenc"
HOLDS, MEAN_ONLY, NOT, REVERSED = "holds on every seed", "holds on the mean only", "does not hold", "reversed"
ONE_SEED, UNMEASURED = "one seed: no verdict", "not measured"


def interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `values` and its t-interval, mean ± t_{(1+level)/2, n-1} s / sqrt(n)
    (s: the sample std, ddof 1); NaN bounds for fewer than 2 values."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    mean = float(v.mean()) if len(v) else math.nan
    if len(v) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def verdict(toward: list[float]) -> str:
    """The verdict on per-seed effects measured toward the claim (> 0: the claim's direction; a difference
    signed so, or a factor's logarithm): every seed toward it (n >= 2) holds; a 95% interval entirely
    against it is reversed; a mean toward it holds on the mean only; anything else does not hold."""
    n = len(toward)
    if n == 0:
        return UNMEASURED
    if n == 1:
        return ONE_SEED
    mean, _, high = interval(toward)
    if all(t > 0 for t in toward):
        return HOLDS
    if high < 0:
        return REVERSED
    return MEAN_ONLY if mean > 0 else NOT


def _label(key: tuple, multi_width: bool) -> str:
    head, width, settings = key
    name = HEAD_LABEL.get(head, str(head))
    if multi_width and width >= 0:
        name += f" (d={width})"
    return name + (f" [{settings}]" if settings else "")


def pairs(selected: pd.DataFrame) -> list[tuple[str, str, str, str, pd.DataFrame, pd.DataFrame]]:
    """(data, backbone, BinEnc's row label, the other's, BinEnc's runs, the other's runs) of every comparison."""
    sel = selected.assign(settings=selected["settings"].fillna("")) if "settings" in selected else selected
    if "settings" not in sel:
        sel = sel.assign(settings="")
    out = []
    for (data, backbone), block in _order(sel).groupby(["data", "backbone"], sort=False):
        rows = {k: g for k, g in block.groupby(["head", "width", "settings"], sort=False)}
        multi = block.loc[block["width"] >= 0, "width"].nunique() > 1
        for b in (k for k in rows if k[0] == BINENC):
            for o in (k for k in rows if k[0] != BINENC and (k[1] == b[1] or k[1] < 0)):
                out.append((data, backbone, _label(b, multi), _label(o, multi), rows[b], rows[o]))
    return out


def _values(runs: pd.DataFrame, c: Claim) -> pd.Series:
    """The metric per seed, in the claim's units, without missing or non-finite values."""
    if c.metric not in runs:
        return pd.Series(dtype=float)
    v = pd.to_numeric(runs.set_index("seed")[c.metric], errors="coerce") * c.scale
    return v[np.isfinite(v)]


def claims_tables(selected: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, per_seed): one summary row per comparison and claim metric (n paired seeds, wins, the means,
    the effect and its 95% interval, the verdict) and one per-seed row (both values and the effect)."""
    summary, per_seed = [], []
    for data, backbone, b_name, o_name, b_runs, o_runs in pairs(selected):
        for c in CLAIMS:
            b, o = _values(b_runs, c), _values(o_runs, c)
            seeds = sorted(set(b.index) & set(o.index))
            if c.ratio:
                seeds = [s for s in seeds if b[s] > 0 and o[s] > 0]
                effects = [(b[s] / o[s]) ** (1 if c.higher else -1) for s in seeds]
                toward = [math.log(e) for e in effects]
                mean, low, high = (math.exp(x) for x in interval(toward))
            else:
                effects = [b[s] - o[s] for s in seeds]
                toward = [e if c.higher else -e for e in effects]
                mean, low, high = interval(effects)
            key = {
                "data": data,
                "backbone": backbone,
                "binenc": b_name,
                "other": o_name,
                "other_head": o_runs["head"].iloc[0],
            }
            what = {"claim": c.claim, "metric": c.metric, "label": c.label}
            for s, e in zip(seeds, effects):
                per_seed.append({**key, **what, "seed": int(s), "binenc_value": b[s], "other_value": o[s], "effect": e})
            summary.append(
                {
                    **key,
                    **what,
                    "claimed": "higher" if c.higher else "lower",
                    "effect_kind": _kind(c),
                    "n": len(seeds),
                    "wins": sum(t > 0 for t in toward),
                    "binenc_mean": float(np.mean([b[s] for s in seeds])) if seeds else math.nan,
                    "other_mean": float(np.mean([o[s] for s in seeds])) if seeds else math.nan,
                    "effect": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "verdict": verdict(toward),
                }
            )
    columns = ["data", "backbone", "binenc", "other", "other_head", "claim", "metric", "label"]
    return (
        pd.DataFrame(summary, columns=[*columns, "claimed", "effect_kind", "n", "wins", "binenc_mean", "other_mean",
                                       "effect", "ci_low", "ci_high", "verdict"]),
        pd.DataFrame(per_seed, columns=[*columns, "seed", "binenc_value", "other_value", "effect"]),
    )  # fmt: skip


def _kind(c: Claim) -> str:
    if c.ratio:
        return "factor BinEnc / other" if c.higher else "factor other / BinEnc"
    return "difference BinEnc - other" + (" (percentage points)" if c.scale == 100 else "")


def _effect(c: Claim, e: float) -> str:
    """A difference with its sign; a factor as "3.6x higher" (below 1: its inverse, "2x lower")."""
    if math.isnan(e):
        return "–"
    if c.ratio:
        words = ("higher", "lower") if c.higher else ("lower", "higher")
        return f"{e:.3g}x {words[0]}" if e >= 1 else f"{1 / e:.3g}x {words[1]}"
    return f"{e:+{c.fmt}}"


def _interval(c: Claim, low: float, high: float) -> str:
    """The 95% interval: of the difference, or of the factor in the claimed direction."""
    if math.isnan(low):
        return ""
    if c.ratio:
        return f" (factor {low:.3g} to {high:.3g})"
    return f" ({low:+{c.fmt}} to {high:+{c.fmt}})"


def claims_markdown(summary: pd.DataFrame, per_seed: pd.DataFrame, selected: pd.DataFrame) -> str:
    """The claims section of results.md: per (data, backbone) the table of verdicts, then per other head the
    values seed by seed (BinEnc / other (effect))."""
    spec = {c.metric: c for c in CLAIMS}
    out = ["## The paper's claims: BinEnc against each head, paired by seed\n"]
    out.append(
        "Each head with its learning rate selected as above, BinEnc compared seed by seed with every other head "
        "of its width. Effect: the mean over the paired seeds of the difference BinEnc - other, or the factor in "
        "the claimed direction (geometric mean); 95% t-interval across the seeds (on the logarithms for a "
        "factor). Wins: seeds on which BinEnc is on the claimed side. Verdict: holds on every seed (every seed "
        "wins, at least 2), reversed (the interval entirely against the claim), holds on the mean only (mean "
        "on the claimed side), else does not hold; docs/method.md §4.7.\n"
    )
    if BINENC not in set(selected["head"]):
        return "\n".join(out + ["No BinEnc run among the selected runs: no claim to compare.\n"])
    if summary.empty:
        return "\n".join(out + ["No other head among the selected runs: nothing to compare BinEnc with.\n"])
    if summary["n"].max() < 2:
        out.append("Fewer than 2 seeds pair up: the table gives the values, no verdict.\n")
    for (data, backbone), t in summary.groupby(["data", "backbone"], sort=False):
        out += [f"### claims: {data} / {backbone}\n", "| claim | metric | BinEnc against | BinEnc | other | "
                "effect (95% CI) | wins | verdict |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for _, r in t.iterrows():
            c = spec[r["metric"]]
            vs = r["other"] if r["binenc"] == "BinEnc" else f"{r['other']} ({r['binenc']})"
            means = [_num(r["binenc_mean"], c.fmt), _num(r["other_mean"], c.fmt)]
            effect = _effect(c, r["effect"]) + _interval(c, r["ci_low"], r["ci_high"])
            out.append(f"| {r['claim']} | {c.label} | {vs} | {means[0]} | {means[1]} | {effect} | "
                       f"{r['wins']} of {r['n']} | {r['verdict']} |")  # fmt: skip
        out.append("")
        ps = per_seed[(per_seed["data"] == data) & (per_seed["backbone"] == backbone)]
        for (b_name, o_name), g in ps.groupby(["binenc", "other"], sort=False):
            metrics = [c for c in CLAIMS if c.metric in set(g["metric"])]
            out += [f"#### per seed: {b_name} / {o_name}\n", "| seed | " + " | ".join(c.label for c in metrics) + " |",
                    "|---|" + "---|" * len(metrics)]  # fmt: skip
            cells = {(r.seed, r.metric): r for r in g.itertuples()}
            for seed in sorted(g["seed"].unique()):
                row = [_seed_cell(c, cells.get((seed, c.metric))) for c in metrics]
                out.append(f"| {seed} | " + " | ".join(row) + " |")
            out.append("")
    return "\n".join(out)


def _num(v: float, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{fmt}}"


def _seed_cell(c: Claim, r) -> str:
    if r is None:
        return "–"
    return f"{_num(r.binenc_value, c.fmt)} / {_num(r.other_value, c.fmt)} ({_effect(c, r.effect)})"


def write_claims(selected: pd.DataFrame, out) -> tuple[str, pd.DataFrame, pd.DataFrame, list]:
    """claims.csv and claims_per_seed.csv into `out`; returns (the markdown section, summary, per_seed, files)."""
    summary, per_seed = claims_tables(selected)
    files = [out / "claims.csv", out / "claims_per_seed.csv"]
    summary.to_csv(files[0], index=False)
    per_seed.to_csv(files[1], index=False)
    return claims_markdown(summary, per_seed, selected), summary, per_seed, files
