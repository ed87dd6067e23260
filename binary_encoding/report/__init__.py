"""Turn a sweep into the paper's results: `python -m binary_encoding.report PATH [--out DIR] [--select val|test]`.

PATH is a multirun folder (e.g. `multirun/digits_mlp`), searched recursively for job folders (a folder
holding `config.yaml`, `metrics.csv`, `summary.json` or `failed.json`), or a W&B project
(`wandb:entity/project`, `wandb:project`). A job is *finished* when it has `summary.json`, *failed* when it
has `failed.json` (and no summary), *unfinished* otherwise.

Selection (as the paper): per (data, backbone, head, width, seed) the learning rate with the best final
**validation** accuracy (`--select test`: best test accuracy, the reference's choice). Runs trained without
a validation split (`data.val_fraction=0`, e.g. `protocol=reference`) are selected on test accuracy in any
case, and the tables say so (column "lr selected on"). Ties go to the lower final validation
cross-entropy, then to the smaller learning rate. Then mean +- sample std (ddof=1) over seeds; every
cell states its n, the number of seeds with a value (std is empty for n=1).

Writes into `--out` (default `PATH/report/`): results.md, results.csv (one row per data set and head),
selected_runs.csv, all_runs.csv (every finished run), claims.csv and claims_per_seed.csv (the paper's
claims, BinEnc against every other head paired by seed, with a verdict each: `claims`, docs/method.md
§4.7), and the figures fig1_binarity, fig2_histograms, fig3_agreement, fig4_collapse (sigma_w and NC1),
fig5_accuracy, fig6_two_valued and fig7_claims (each seed from the other head's value to BinEnc's) as PNG
and PDF (mean over the selected seeds, band = +- std; x = epoch counted from 1), sized for one column of a paper:
panels stacked, each head in one colour of the colour-blind-safe Okabe-Ito palette with its own line
style and marker, the same in every figure (`head_style`). A sweep over several (data, backbone)
pairs gets one set of figures per pair, suffixed `_<data>_<backbone>`. A figure whose columns are
missing is skipped with a note. The table's columns and the figures' panels are those the metric
catalog declares (`binary_encoding.metrics.catalog`). results.md names every job left out and why
(failed, unfinished or with an unreadable summary.json, diverged, no finite value of the selection
metric), and every value left out: a summary value that is no finite number (out of its cell's mean,
whose n counts the rest) and a metrics.csv row that is no numbers (out of the figures).

Parts: `load` (job folders, W&B project), `select` (lr selection, jobs left out, mean ± std), `tables`
(markdown, csv), `claims` (the paired comparison per claim), `style` (head styles, palette, matplotlib
setup), `figures`, `publish` (the W&B report run), `cli` (`write_report`, the command line).
"""

from .claims import CLAIMS, claims_tables
from .cli import main, write_report
from .figures import (
    AXIS_LABEL,
    claims_figure,
    plot_accuracy,
    plot_agreement,
    plot_binarity,
    plot_collapse,
    plot_figure,
    plot_histograms,
)
from .load import find_jobs, load_runs, load_wandb
from .publish import publish_wandb, wandb_target
from .select import aggregate, counts_line, left_out, select_runs
from .style import COLUMN_WIDTH, HEAD_LABEL, HEAD_ORDER, HEAD_STYLE, OKABE_ITO, head_style
from .tables import PAPER, to_markdown

__all__ = [
    "AXIS_LABEL", "CLAIMS", "COLUMN_WIDTH", "claims_figure", "claims_tables",
    "HEAD_LABEL", "HEAD_ORDER", "HEAD_STYLE", "OKABE_ITO", "PAPER", "aggregate",
    "counts_line", "find_jobs", "head_style", "left_out", "load_runs", "load_wandb", "main", "plot_accuracy",
    "plot_agreement", "plot_binarity", "plot_collapse", "plot_figure", "plot_histograms", "publish_wandb",
    "select_runs", "to_markdown", "wandb_target", "write_report",
]  # fmt: skip
