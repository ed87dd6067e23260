"""How the report draws: the heads' names, colours, line styles and markers, and matplotlib's setup for
figures one column of a paper wide."""

from __future__ import annotations

HEAD_ORDER = ["binenc", "nopen", "linpen", "nonlinpen"]
HEAD_LABEL = {"binenc": "BinEnc", "nopen": "NoPen", "linpen": "LinPen", "nonlinpen": "NonlinPen"}
# Okabe & Ito's colour-blind-safe palette; each head also has its own line style and marker, so the lines
# stay apart in grey print. Other heads take the remaining colours by a stable hash of their name.
OKABE_ITO = {
    "vermillion": "#D55E00", "blue": "#0072B2", "bluish green": "#009E73", "orange": "#E69F00",
    "reddish purple": "#CC79A7", "sky blue": "#56B4E9", "yellow": "#F0E442", "black": "#000000",
}  # fmt: skip
HEAD_STYLE = {
    "binenc": {"color": OKABE_ITO["vermillion"], "linestyle": "-", "marker": "o"},
    "nopen": {"color": OKABE_ITO["blue"], "linestyle": "--", "marker": "s"},
    "linpen": {"color": OKABE_ITO["bluish green"], "linestyle": "-.", "marker": "^"},
    "nonlinpen": {"color": OKABE_ITO["orange"], "linestyle": ":", "marker": "D"},
}
_OTHER_STYLES = [
    {"color": OKABE_ITO[c], "linestyle": ls, "marker": m}
    for c, ls, m in (("reddish purple", (0, (5, 1)), "v"), ("sky blue", (0, (3, 1, 1, 1, 1, 1)), "P"),
                     ("black", (0, (1, 2)), "X"), ("yellow", (0, (8, 2)), "*"))
]  # fmt: skip


# One column of a two-column paper is about 3.4 inches: figures are drawn at that width with 8-point text,
# panels stacked on a shared epoch axis, so they are legible where they will be printed.
COLUMN_WIDTH = 3.4  # inches
PANEL_HEIGHT = 1.9  # inches per panel
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.3, "lines.markersize": 3.5,
}  # fmt: skip
# readable names of the metrics.csv columns the figures show


def head_style(head: str) -> dict:
    """Colour (Okabe-Ito), line style and marker of a head: fixed for the paper's four heads, and for any
    other head chosen by a stable hash of its name, so a head looks the same in every figure and report."""
    import zlib

    if head in HEAD_STYLE:
        return dict(HEAD_STYLE[head])
    return dict(_OTHER_STYLES[zlib.crc32(str(head).encode()) % len(_OTHER_STYLES)])


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(panels: int, sharex: bool = True):
    """A one-column figure of `panels` stacked panels (sharing the epoch axis unless `sharex` is False)."""
    plt = _plt()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            panels, 1, figsize=(COLUMN_WIDTH, 0.9 + PANEL_HEIGHT * panels), sharex=sharex, squeeze=False,
            layout="constrained",
        )  # fmt: skip
    return fig, list(axes[:, 0])
