"""The report's charts as PNG bytes: sparklines, grouped bars, 8-period trend lines and stacked bars.

The drawing is the package's shared chart module (``devops_automation.charts``: ``spec`` and ``draw``),
which the DevOps view also uses (as SVG); this module names what the report uses, as PNG.

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

from devops_automation.charts.draw import bar_chart, line_chart, sparkline, stacked_bar
from devops_automation.charts.draw import check_bundled_font as _check_bundled_font
from devops_automation.charts.spec import DPI as _DPI
from devops_automation.charts.spec import MAX_BAR_CATEGORIES as _MAX_BAR_CATEGORIES
from devops_automation.charts.spec import MAX_LABEL_CHARS as _MAX_LABEL_CHARS
from devops_automation.charts.spec import OKABE_ITO
from devops_automation.charts.spec import RC as _RC

__all__ = ["OKABE_ITO", "bar_chart", "line_chart", "sparkline", "stacked_bar"]
_EXPORTED = (_check_bundled_font, _DPI, _MAX_BAR_CATEGORIES, _MAX_LABEL_CHARS, _RC)  # the report's settings, as tested
