"""The package's charts (no Airflow): one chart specification for the weekly report and the DevOps view.

* :mod:`.spec`: palette (Okabe-Ito), markers, matplotlib settings (:data:`~.spec.RC`), sizes and limits;
* :mod:`.draw`: :func:`sparkline`, :func:`bar_chart`, :func:`line_chart`, :func:`stacked_bar` as PNG
  (e-mail, chat, archive) or SVG (web pages) bytes, byte-identical for the same input.

matplotlib is imported only when a chart is drawn.
"""

from devops_automation.charts.draw import bar_chart, line_chart, render, sparkline, stacked_bar
from devops_automation.charts.spec import (
    CHART_HEIGHT_PX,
    CHART_WIDTH_PX,
    DPI,
    MAX_BAR_CATEGORIES,
    MAX_SERIES,
    MEDIA_TYPES,
    OKABE_ITO,
    SPARK_HEIGHT_PX,
    SPARK_WIDTH_PX,
)

__all__ = [
    "CHART_HEIGHT_PX",
    "CHART_WIDTH_PX",
    "DPI",
    "MAX_BAR_CATEGORIES",
    "MAX_SERIES",
    "MEDIA_TYPES",
    "OKABE_ITO",
    "SPARK_HEIGHT_PX",
    "SPARK_WIDTH_PX",
    "bar_chart",
    "line_chart",
    "render",
    "sparkline",
    "stacked_bar",
]
