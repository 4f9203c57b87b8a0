"""The chart specification every chart of the package follows: palette, markers, fonts, sizes, limits.

Plain constants (no matplotlib import): the weekly report's e-mail charts and the DevOps view's pages
draw with the same look. :data:`RC` is applied on top of matplotlib's own default style for every chart
(so a ``matplotlibrc`` on the machine changes nothing); :data:`SVG_RC` adds what makes SVG output
byte-identical from run to run.
"""

from __future__ import annotations

from typing import Any

#: Okabe & Ito (2008) colour-blind-safe palette, in the order series take it.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)
#: Line markers, one per series, so lines are told apart without colour.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
GREY = "#6E6E6E"
#: Fixed resolution: sizes are given in pixels at 1x, 10 pt text is about 14 px high.
DPI = 100
#: A chart fits a 700 px e-mail; a sparkline sits in a table cell.
CHART_WIDTH_PX = 680
CHART_HEIGHT_PX = 300
SPARK_WIDTH_PX = 120
SPARK_HEIGHT_PX = 28
#: At most this many series (the palette's size): group the rest into "other".
MAX_SERIES = len(OKABE_ITO)
#: Bar-chart categories readable at e-mail size.
MAX_BAR_CATEGORIES = 20
#: Category and series names longer than this end in "…".
MAX_LABEL_CHARS = 22
#: Output formats: PNG from the Agg canvas (e-mail, chat, archive), SVG (web pages).
FORMATS = ("png", "svg")
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

#: Every setting the look depends on, on top of matplotlib's default style.
RC: dict[str, Any] = {
    "font.family": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 11.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.edgecolor": GREY,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-6, 9),
    "axes.unicode_minus": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "lines.linewidth": 1.8,
    "lines.markersize": 4.0,
    "text.color": "#222222",
    "text.parse_math": False,  # workflow names may contain "$"
    "text.hinting": "force_autohint",
    "text.antialiased": True,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "savefig.bbox": None,
    "path.simplify": True,
    "agg.path.chunksize": 0,
}

#: SVG only: text drawn as paths (no font needed where it is shown) and fixed element ids (matplotlib
#: otherwise salts them with random bytes), so the same input gives the same SVG bytes.
SVG_RC: dict[str, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "devops-automation",
}

__all__ = [
    "CHART_HEIGHT_PX",
    "CHART_WIDTH_PX",
    "DPI",
    "FORMATS",
    "GREY",
    "MARKERS",
    "MAX_BAR_CATEGORIES",
    "MAX_LABEL_CHARS",
    "MAX_SERIES",
    "MEDIA_TYPES",
    "OKABE_ITO",
    "RC",
    "SPARK_HEIGHT_PX",
    "SPARK_WIDTH_PX",
    "SVG_RC",
]
