"""The shared charts (devops_automation.charts): the weekly report's chart specification, as PNG and SVG.

The PNGs must be the weekly report's own bytes (same palette, fonts, sizes, layout: its charts.py can import
these), the SVGs the same bytes on every call, and drawing from several threads (the API server's pages)
must not mix matplotlib's settings.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from devops_automation import charts
from devops_automation.charts import spec
from tests.conftest import REPO

PERIODS = ["W40", "W41", "W42", "W43"]
SERIES = {"Success rate": [91.0, None, 88.5, 90.25], "First-attempt success": [85.0, 84.0, None, 86.5]}
CASES = [
    ("line_chart", ("CI success rate", PERIODS, SERIES), {"y_label": "Success rate", "unit": "%"}),
    (
        "bar_chart",
        (
            "Slowest workflows (p50 duration)",
            ["build", "a-very-long-workflow-name-indeed", "lint"],
            {"Previous period": [4.5, 12.25, None], "This period": [5.0, 11.0, 1.5]},
        ),
        {"y_label": "p50 duration", "unit": "min"},
    ),
    (
        "stacked_bar",
        ("Failures by category", ["Previous period", "This period"], {"test_failure": [3, 5], "dependency": [1, None]}),
        {"y_label": "Analysed failures", "unit": "count"},
    ),
    ("line_chart", ("Empty", PERIODS, {"x": [None] * 4}), {"y_label": "Runs", "unit": ""}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_png_is_the_weekly_reports_own(name: str, args: tuple, kwargs: dict) -> None:
    from devops_automation.workflows.weekly_report import charts as report_charts

    mine = getattr(charts, name)(*args, **kwargs)
    assert mine.startswith(b"\x89PNG\r\n\x1a\n")
    assert mine == getattr(report_charts, name)(*args, **kwargs)


def test_sparkline_and_the_constants_match_the_weekly_report() -> None:
    from devops_automation.workflows.weekly_report import charts as report_charts

    for values in ([3.0, None, 4.5, 4.0, None, 6.0], [2.0], [], [None, None], [1.0, None, 1.0]):
        assert charts.sparkline(values) == report_charts.sparkline(values), values
    assert charts.OKABE_ITO == report_charts.OKABE_ITO
    assert spec.RC == report_charts._RC
    assert (spec.DPI, spec.MAX_BAR_CATEGORIES, spec.MAX_LABEL_CHARS) == (
        report_charts._DPI,
        report_charts._MAX_BAR_CATEGORIES,
        report_charts._MAX_LABEL_CHARS,
    )


@pytest.mark.parametrize(("name", "args", "kwargs"), CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_svg_is_the_same_bytes_every_time_with_text_as_paths(name: str, args: tuple, kwargs: dict) -> None:
    first = getattr(charts, name)(*args, fmt="svg", **kwargs)
    assert first == getattr(charts, name)(*args, fmt="svg", **kwargs)
    text = first.decode()
    assert text.startswith("<?xml") and "<svg" in text
    assert 'width="489.6pt" height="216pt"' in text  # 680 x 300 px at 100 dpi
    assert "<text" not in text  # glyphs as paths: nothing depends on the viewer's fonts
    assert "<dc:date>" not in text and "Matplotlib v" not in text
    assert charts.OKABE_ITO[0].lower() in text.lower()  # the palette's first colour


def test_drawing_from_threads_gives_the_serial_bytes() -> None:
    def draw(i: int) -> bytes:
        return charts.line_chart(f"Chart {i}", PERIODS, SERIES, y_label="Rate", unit="%")

    expected = [draw(i) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:  # an error in a thread is raised here
        assert list(pool.map(draw, range(6))) == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: charts.line_chart("t", ["a"], {"s": [1, 2]}, y_label="y", unit=""), "has 2 values for 1"),
        (lambda: charts.line_chart("t", ["a"], {"s": [float("nan")]}, y_label="y", unit=""), "not a finite number"),
        (lambda: charts.bar_chart("t", [str(i) for i in range(21)], {}, y_label="y", unit=""), "21 categories"),
        (lambda: charts.stacked_bar("t", ["a"], {"s": [-1]}, y_label="y", unit=""), "is negative"),
        (lambda: charts.line_chart("t", ["a"], {"s": [1]}, y_label="y", unit="", fmt="gif"), "fmt must be"),
    ],
)
def test_wrong_input_is_an_error_naming_it(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_importing_the_package_does_not_import_matplotlib() -> None:
    code = "import sys; import devops_automation.charts; print('matplotlib' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO / "plugins", capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
