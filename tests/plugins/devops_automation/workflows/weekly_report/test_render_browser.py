"""The golden report in a real browser (headless Chromium): at 700 px every chart loads from its ``cid:`` part
and nothing scrolls sideways, as a person would see the e-mail.

The screenshot is saved under the test's tmp path. To refresh the picture in the README, set
``WEEKLY_REPORT_SCREENSHOT`` to where it goes (relative to the repository)::

    WEEKLY_REPORT_SCREENSHOT=docs/weekly_report.png .venv/bin/python -m pytest \\
        tests/plugins/devops_automation/workflows/weekly_report/test_render_browser.py -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from devops_automation.workflows.weekly_report import render as rr
from include.sandbox.browser import Browser

HERE = Path(__file__).parent
REPO = HERE.parents[4]
TEMPLATES = REPO / "include" / "templates" / "weekly_report"


def load_figures() -> dict[str, Any]:
    return json.loads((HERE / "golden" / "figures.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def golden() -> rr.Rendered:
    return rr.render_report(load_figures(), templates_dir=TEMPLATES)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_golden_report_in_the_browser(browser: Browser, golden: rr.Rendered, tmp_path: Path) -> None:
    got = browser.check_html(golden.html, images=golden.charts, width=700)
    shot = tmp_path / "weekly_report.png"
    shot.write_bytes(got.screenshot_png)
    target = os.environ.get("WEEKLY_REPORT_SCREENSHOT")
    if target:
        path = Path(target) if Path(target).is_absolute() else REPO / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got.screenshot_png)
    assert got.broken_images == []
    assert got.overflow_px == 0
    width, height = png_size(got.screenshot_png)
    assert width == 700  # nothing wider than the viewport was painted
    assert height > 900  # the whole report, not only the first screen
    lines = got.text.splitlines()
    assert "Weekly engineering report 2026-W47" in lines
    for heading in ("1. CI runs and success rate", "5. Failure categories and recurring failures", "9. Alerts"):
        assert heading in lines, heading


def test_a_missing_chart_is_seen_as_broken(browser: Browser, golden: rr.Rendered) -> None:
    """The check can fail: the same report without one of its image parts shows a broken image."""
    name = "chart-ci_runs-success_rate.png"
    images = {k: v for k, v in golden.charts.items() if k != name}
    got = browser.check_html(golden.html, images=images, width=700)
    assert got.broken_images == [f"cid:{name}"]
