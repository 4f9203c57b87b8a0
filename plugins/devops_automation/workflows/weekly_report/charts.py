"""The report's charts as PNG bytes: sparklines, grouped bars, 8-period trend lines and stacked bars.

Plain Python (no Airflow). matplotlib renders them headless: a ``Figure`` drawn on the Agg canvas,
without pyplot, so no backend is selected, no display or browser is needed, and no figure is left in
a global registry. matplotlib is imported inside the functions (importing it costs ~0.3 s, which DAG
parsing must not pay).

**Byte-identical output.** The same input gives the same PNG bytes, in any process (a backfilled
report equals the one sent then), for the pinned matplotlib/Pillow/numpy (``constraints.txt``):

* every chart is drawn under matplotlib's own default style plus :data:`_RC` (a ``matplotlib.style``
  and ``rc_context`` pair, undone afterwards), so a ``matplotlibrc`` on the machine changes nothing;
* the one font is matplotlib's bundled DejaVu Sans; :func:`_check_bundled_font` refuses to draw if the
  font lookup would pick another file (e.g. a system copy of DejaVu Sans of another version);
* the PNG has no ``Software`` text chunk and no time chunk; DPI, size and compression are fixed.

**Size.** Charts are ``width_px`` × ``height_px`` pixels at 1x (default 680 × 300, fits a 700 px
e-mail), sparklines 120 × 28; the fixed DPI is 100, so 10 pt text is ~14 px high.

**Colours.** Series take the Okabe-Ito colour-blind-safe palette in order (blue, orange, bluish green,
vermillion, reddish purple, sky blue, yellow, black); lines also get distinct markers, so they are
told apart without colour. At most 8 series (the palette's size): group the rest into "other".

**Missing values.** ``None`` is a gap: no bar, a break in a line (the points next to a gap keep their
markers), nothing stacked for that segment.

**No data.** A chart whose every value is ``None`` (or that has no series, categories or periods) is
not an error: it is an image of the same size with the title and "No data" (a sparkline: a dashed
grey baseline), so the report's layout and its list of images do not depend on the data. Inputs that
are wrong rather than empty raise ``ValueError`` naming the series and position: a series whose
length differs from the categories/periods, a value that is not a finite number (NaN, inf, a bool, a
string), a negative value in a stacked bar, an empty title or series name, more than 8 series, more
than 20 bar-chart categories (unreadable at e-mail size: pick the top ones).

Not thread-safe (matplotlib's rcParams are process-global); Airflow runs each task in its own process.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["OKABE_ITO", "bar_chart", "line_chart", "sparkline", "stacked_bar"]

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
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_GREY = "#6E6E6E"
_DPI = 100
_MAX_BAR_CATEGORIES = 20
_MAX_LABEL_CHARS = 22

#: Every setting the look depends on, on top of matplotlib's default style.
_RC: dict[str, Any] = {
    "font.family": ["DejaVu Sans"],
    "font.size": 9.0,
    "axes.titlesize": 11.0,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9.0,
    "axes.edgecolor": _GREY,
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
    "figure.dpi": _DPI,
    "savefig.dpi": _DPI,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "savefig.bbox": None,
    "path.simplify": True,
    "agg.path.chunksize": 0,
}

Values = Sequence[float | None]


# --------------------------------------------------------------------------------------------- public


def sparkline(values: Values, *, width_px: int = 120, height_px: int = 28) -> bytes:
    """A tiny trend line (typically 8 periods, oldest first) with the last value as a dot; no axes.

    ``None`` is a gap; an isolated value between gaps is drawn as a dot. Empty or all-``None`` input
    gives a dashed grey baseline of the same size.
    """
    points = _check_values("sparkline", values)
    _check_size(width_px, height_px)

    def draw(fig: Any) -> None:
        # lines in figure coordinates, no Axes (an Axes and its ticks cost most of a small image): x from
        # -0.5 to n - 0.5 + padding, y from the lowest to the highest value + 15 % each side
        from matplotlib.lines import Line2D

        known = [(i, v) for i, v in enumerate(points) if v is not None]
        if not known:
            fig.add_artist(Line2D([0.0, 1.0], [0.5, 0.5], color=_GREY, linewidth=1.0, linestyle=(0, (2, 2))))
            return
        low, high = min(v for _, v in known), max(v for _, v in known)
        pad = (high - low) * 0.15 or (abs(high) * 0.1 or 1.0)
        x_low, x_high = -0.5, max(len(points) - 1, 1) + 0.5
        y_low, y_high = low - pad, high + pad

        def x(i: int) -> float:
            return (i - x_low) / (x_high - x_low)

        def y(v: float) -> float:
            return (v - y_low) / (y_high - y_low)

        ys = [math.nan if v is None else y(v) for v in points]
        fig.add_artist(
            Line2D([x(i) for i in range(len(ys))], ys, color=OKABE_ITO[0], linewidth=1.4, solid_capstyle="round")
        )
        alone = [(i, v) for i, v in known if _isolated(points, i)]
        if alone:
            xs, dots = [x(i) for i, _ in alone], [y(v) for _, v in alone]
            fig.add_artist(Line2D(xs, dots, color=OKABE_ITO[0], marker="o", markersize=2.0, linestyle="None"))
        last_i, last_v = known[-1]
        fig.add_artist(
            Line2D([x(last_i)], [y(last_v)], color=OKABE_ITO[3], marker="o", markersize=3.0, linestyle="None")
        )

    return _render(draw, width_px, height_px)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Values],
    *,
    y_label: str,
    unit: str,
    x_label: str = "Workflow",
    width_px: int = 680,
    height_px: int = 300,
) -> bytes:
    """Grouped vertical bars: one group per category, one bar per series (e.g. "previous" and "this
    period" per workflow), bars from 0. The y axis is titled "``y_label`` (``unit``)"; long category
    names are shortened with "…" and slanted. At most 20 categories and 8 series.
    """
    labels = _check_labels(title, categories, "categories")
    if len(labels) > _MAX_BAR_CATEGORIES:
        raise ValueError(
            f"bar chart {title!r}: {len(labels)} categories, at most {_MAX_BAR_CATEGORIES} are readable "
            "at e-mail size; pass the top ones"
        )
    data = _check_series(title, series, len(labels))
    _check_size(width_px, height_px)
    if not _has_data(data):
        return _no_data(title, width_px, height_px)

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        n = len(data)
        width = 0.8 / n
        for k, (name, values) in enumerate(data.items()):
            xs = [i - 0.4 + width * (k + 0.5) for i, v in enumerate(values) if v is not None]
            ys = [v for v in values if v is not None]
            ax.bar(xs, ys, width=width * 0.92, color=OKABE_ITO[k], label=_short(name))
        ax.axhline(0, color=_GREY, linewidth=0.8)
        _category_axis(ax, labels)
        _titles(ax, title, x_label, y_label, unit)
        _finish(fig, ax, n)

    return _render(draw, width_px, height_px)


def line_chart(
    title: str,
    periods: Sequence[str],
    series: Mapping[str, Values],
    *,
    y_label: str,
    unit: str,
    x_label: str = "Period",
    width_px: int = 680,
    height_px: int = 300,
) -> bytes:
    """Trend lines over periods (oldest first, e.g. 8 weeks of success rate or p90 duration), one line
    with markers per series; ``None`` breaks the line. The y axis is scaled to the data (not from 0).
    """
    labels = _check_labels(title, periods, "periods")
    data = _check_series(title, series, len(labels))
    _check_size(width_px, height_px)
    if not _has_data(data):
        return _no_data(title, width_px, height_px)

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        for k, (name, values) in enumerate(data.items()):
            ys = [math.nan if v is None else v for v in values]
            ax.plot(range(len(ys)), ys, color=OKABE_ITO[k], marker=_MARKERS[k], label=_short(name))
        ax.margins(x=0.03, y=0.12)
        _category_axis(ax, labels)
        _titles(ax, title, x_label, y_label, unit)
        _finish(fig, ax, len(data))

    return _render(draw, width_px, height_px)


def stacked_bar(
    title: str,
    periods: Sequence[str],
    series: Mapping[str, Values],
    *,
    y_label: str,
    unit: str,
    x_label: str = "Period",
    width_px: int = 680,
    height_px: int = 300,
) -> bytes:
    """Stacked bars per period (e.g. failures per failure category per week); series stack bottom-up in
    the order given and take the palette in that order (the legend lists them top-down). Values must
    be ≥ 0; ``None`` adds nothing.
    """
    labels = _check_labels(title, periods, "periods")
    data = _check_series(title, series, len(labels))
    for name, values in data.items():
        for i, v in enumerate(values):
            if v is not None and v < 0:
                raise ValueError(f"stacked bar {title!r}: series {name!r}[{i}] = {v} is negative")
    _check_size(width_px, height_px)
    if not _has_data(data):
        return _no_data(title, width_px, height_px)

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        bottom = [0.0] * len(labels)
        for k, (name, values) in enumerate(data.items()):
            heights = [0.0 if v is None else float(v) for v in values]
            ax.bar(range(len(labels)), heights, width=0.7, bottom=bottom, color=OKABE_ITO[k], label=_short(name))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.axhline(0, color=_GREY, linewidth=0.8)
        _category_axis(ax, labels)
        _titles(ax, title, x_label, y_label, unit)
        _finish(fig, ax, len(data), reverse=True)

    return _render(draw, width_px, height_px)


# -------------------------------------------------------------------------------------------- drawing


def _render(draw: Callable[[Any], None], width_px: int, height_px: int) -> bytes:
    """Draw a figure of exactly ``width_px`` × ``height_px`` under the fixed settings; return its PNG."""
    import matplotlib.style
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"), rc_context(_RC):
        _check_bundled_font()
        fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
        FigureCanvasAgg(fig)
        draw(fig)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=_DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 9})
        fig.clear()
    return out.getvalue()


def _no_data(title: str, width_px: int, height_px: int) -> bytes:
    def draw(fig: Any) -> None:
        fig.text(0.02, 0.96, title, ha="left", va="top", fontsize=_RC["axes.titlesize"], fontweight="bold")
        fig.text(0.5, 0.5, "No data", ha="center", va="center", color=_GREY, fontsize=11)

    return _render(draw, width_px, height_px)


def _category_axis(ax: Any, labels: list[str]) -> None:
    shown = [_short(lab) for lab in labels]
    crowded = len(labels) > 10 or (len(labels) > 5 and max(map(len, shown)) > 10)
    if crowded:
        ax.set_xticks(range(len(labels)), shown, rotation=30, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(len(labels)), shown)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _short(label: str) -> str:
    """Category and series names longer than 22 characters end in "…" (readable at e-mail size)."""
    return label if len(label) <= _MAX_LABEL_CHARS else label[: _MAX_LABEL_CHARS - 1] + "…"


def _titles(ax: Any, title: str, x_label: str, y_label: str, unit: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"{y_label} ({unit})" if unit else y_label)


def _finish(fig: Any, ax: Any, n: int, *, reverse: bool = False) -> None:
    """Whole-number data gets whole-number y ticks (no "2.5 runs"). The legend goes outside the plot, so
    it never hides data: up to 3 series in one row right of the title, more in a column right of the
    plot (``reverse`` lists a stack top-down, as it is drawn). Constrained layout keeps the pixel size."""
    if all(float(v).is_integer() for line in ax.get_lines() for v in line.get_ydata() if math.isfinite(v)) and all(
        float(p.get_height()).is_integer() and float(p.get_y()).is_integer() for p in ax.patches
    ):
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    if n <= 3:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=n, borderaxespad=0.2, handlelength=1.5)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, handlelength=1.5, reverse=reverse)
    fig.set_layout_engine("constrained")


@functools.cache
def _check_bundled_font() -> None:
    """Fail rather than draw with a font file that could differ between machines."""
    import matplotlib
    from matplotlib.font_manager import FontProperties, findfont

    bundled = f"{matplotlib.get_data_path()}/fonts/ttf/"
    for weight in ("normal", "bold"):
        path = findfont(FontProperties(family="DejaVu Sans", weight=weight), fallback_to_default=False)
        if not path.startswith(bundled):
            raise RuntimeError(f"charts: DejaVu Sans ({weight}) resolves to {path}, not matplotlib's bundled {bundled}")


def _isolated(points: list[float | None], i: int) -> bool:
    before = points[i - 1] if i > 0 else None
    after = points[i + 1] if i + 1 < len(points) else None
    return before is None and after is None


# ----------------------------------------------------------------------------------------- validation


def _check_size(width_px: int, height_px: int) -> None:
    for name, value in (("width_px", width_px), ("height_px", height_px)):
        if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 4000:
            raise ValueError(f"{name} must be a whole number of pixels from 8 to 4000, got {value!r}")


def _check_values(where: str, values: Values) -> list[float | None]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"{where}: values must be a sequence of numbers or None, got {type(values).__name__}")
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{where}[{i}] = {v!r} is not a finite number or None")
        else:
            out.append(float(v))
    return out


def _check_labels(title: str, labels: Sequence[str], what: str) -> list[str]:
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"chart title must be a non-empty string, got {title!r}")
    if isinstance(labels, str) or not all(isinstance(lab, str) for lab in labels):
        raise ValueError(f"chart {title!r}: {what} must be a sequence of strings, got {labels!r}")
    return list(labels)


def _check_series(title: str, series: Mapping[str, Values], length: int) -> dict[str, list[float | None]]:
    if not isinstance(series, Mapping):
        raise ValueError(f"chart {title!r}: series must be a mapping name -> values, got {type(series).__name__}")
    if len(series) > len(OKABE_ITO):
        raise ValueError(
            f"chart {title!r}: {len(series)} series, at most {len(OKABE_ITO)} (the colour-blind-safe palette); "
            "group the rest into one"
        )
    data: dict[str, list[float | None]] = {}
    for name, values in series.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"chart {title!r}: series name must be a non-empty string, got {name!r}")
        checked = _check_values(f"chart {title!r}: series {name!r}", values)
        if len(checked) != length:
            raise ValueError(f"chart {title!r}: series {name!r} has {len(checked)} values for {length} x positions")
        data[name] = checked
    return data


def _has_data(data: Mapping[str, list[float | None]]) -> bool:
    return any(v is not None for values in data.values() for v in values)
