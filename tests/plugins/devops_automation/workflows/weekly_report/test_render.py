"""Rendering a report: golden Markdown/HTML/text, e-mail-safe HTML structure, no-data sections, formatting
and determinism.

The golden input ``golden/figures.json`` is the output of ``report_figures`` for the store of
``test_figures.py`` (week 2026-W47), checked in so that this test does not depend on the store. After an
intended change of the templates or of ``render.py``, regenerate the expected files with::

    WEEKLY_REPORT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest \
        tests/plugins/devops_automation/workflows/weekly_report/test_render.py -p no:cacheprovider

and review the diff of ``golden/report.md``, ``golden/report.html`` and ``golden/report.txt``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from devops_automation.workflows.weekly_report import render as rr

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
TEMPLATES = HERE.parents[4] / "include" / "templates" / "weekly_report"
UPDATE = os.environ.get("WEEKLY_REPORT_UPDATE_GOLDEN") == "1"


def load_figures() -> dict[str, Any]:
    return json.loads((GOLDEN / "figures.json").read_text(encoding="utf-8"))


def render(figures: dict[str, Any], **kwargs: Any) -> rr.Rendered:
    return rr.render_report(figures, templates_dir=TEMPLATES, **kwargs)


@pytest.fixture(scope="module")
def golden() -> rr.Rendered:
    return render(load_figures())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class Tags(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


# ---- golden -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "attr"), [("report.md", "markdown"), ("report.html", "html"), ("report.txt", "text")])
def test_golden(golden: rr.Rendered, name: str, attr: str) -> None:
    got = getattr(golden, attr)
    path = GOLDEN / name
    if UPDATE:
        path.write_text(got, encoding="utf-8", newline="\n")
        pytest.skip(f"rewrote {path}")
    assert got == path.read_text(encoding="utf-8")


def test_golden_charts_and_summary(golden: rr.Rendered) -> None:
    sparks = sorted(n for n in golden.charts if n.startswith("spark-"))
    big = sorted(n for n in golden.charts if n.startswith("chart-"))
    assert big == [
        "chart-ci_runs-success_rate.png",
        "chart-durations-slowest_workflows.png",
        "chart-durations-trend.png",
        "chart-failure_triage-categories.png",
    ]
    assert len(sparks) == 24  # one per headline with a value in some period; prs_opened/issues_closed have none
    assert "spark-pull_requests_issues-prs_opened.png" not in golden.charts
    for name, data in golden.charts.items():
        assert png_size(data) == ((120, 28) if name.startswith("spark-") else (680, 300)), name
    summary = golden.summary
    assert summary["title"] == "Weekly engineering report 2026-W47"
    assert summary["has_data"] is True
    assert [h["text"] for h in summary["headlines"]] == [
        "Runs: 3 (▲ +1)",
        "Success rate: 66.7% (▲ +16.7 pp, better)",
        "Run duration p50: 6 min 40 s (▲ +4 min 10 s, worse)",
        "MTTR on default branches: 5 d (–)",
        "Flaky rate: 25.0% (▲ +25.0 pp, worse)",
        "Analysed failures: 4 (▲ +3, worse)",
        "PRs merged: 5 (▲ +4, better)",
        "Mean health score: 70.0 (▲ +2.5, better)",
        "Alerts fired: 1 (= 0)",
    ]
    # biggest relative change |change| / |previous| first (from 0: counted as 100 %); only figures with a direction
    assert [(m["figure"], m["text"]) for m in summary["movers"]] == [
        ("prs_merged", "PRs merged: 5 (▲ +4, better)"),  # 1 -> 5: 400 %
        ("analysed_failures", "Analysed failures: 4 (▲ +3, worse)"),  # 1 -> 4: 300 %
        ("duration_p50_s", "Run duration p50: 6 min 40 s (▲ +4 min 10 s, worse)"),  # 150 -> 400 s: 167 %
        ("duration_p90_s", "Run duration p90: 8 min (▲ +4 min 50 s, worse)"),  # 190 -> 480 s: 153 %
        ("queue_run_p90_s", "Run queue time p90: 47 s (▲ +28 s, worse)"),  # 19 -> 47 s: 147 %
    ]
    assert summary["project_movers"] == [
        {"project": "api", "score": 80.0, "previous": 70.0, "change": 10.0},
        {"project": "web", "score": 60.0, "previous": 65.0, "change": -5.0},
    ]
    assert summary["omitted"] == [
        {"section": "dora", "title": "DORA four keys", "why": "no deployment to a production environment in the period"}
    ]
    json.dumps(summary)  # JSON-able


# ---- HTML structure ---------------------------------------------------------------------------------

_PX = re.compile(r"(?<![\w-])(?:max-)?(?:min-)?width\s*:\s*(\d+(?:\.\d+)?)px")


def check_email_html(rendered: rr.Rendered) -> None:
    html = rendered.html
    lowered = html.lower()
    for forbidden in ("<style", "<script", "<link", "<iframe", "<object", "<embed", "javascript:", "@import", "url("):
        assert forbidden not in lowered, forbidden
    parsed = parse(html)
    cids = []
    for tag, attrs in parsed.tags:
        assert "class" not in attrs, (tag, attrs)  # every style inline
        for name in ("src", "href", "background"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("cid:"), (tag, name, value)  # no external resource
        width = attrs.get("width")
        if width is not None and not width.endswith("%"):
            assert int(width) <= 700, (tag, attrs)
        for px in _PX.findall(attrs.get("style") or ""):
            assert float(px) <= 700, (tag, attrs["style"])
        if tag == "img":
            name = attrs["src"][len("cid:") :]
            cids.append(name)
            assert name in rendered.charts, name
            assert attrs.get("alt"), attrs
            w, h = png_size(rendered.charts[name])
            assert (attrs["width"], attrs["height"]) == (str(w), str(h))
            assert w <= 700
            assert f"width:{w}px" in attrs["style"]
            assert "max-width:100%" in attrs["style"]
    assert sorted(cids) == sorted(rendered.charts)  # each PNG is used exactly once
    outer = [a for t, a in parsed.tags if t == "table" and a.get("width") == "700"]
    assert len(outer) == 1
    assert "width:700px" in outer[0]["style"]
    assert "max-width:700px" in outer[0]["style"]
    assert "font-family:Arial,Helvetica,sans-serif" in outer[0]["style"]
    assert [t for t, _ in parsed.tags if t in ("div", "section", "header", "footer", "main")] == []  # table layout


def test_html_is_email_safe(golden: rr.Rendered) -> None:
    check_email_html(golden)
    assert golden.html.startswith("<!DOCTYPE html>\n")
    assert '<meta charset="utf-8">' in golden.html


def test_html_change_colours_follow_direction(golden: rr.Rendered) -> None:
    rows = re.findall(r"<tr>\n<td[^>]*>([^<]+)</td>\n(?:<td[^>]*>.*\n){1}<td[^>]*color:(#\w+);\">([^<]+)", golden.html)
    tone = {label: (colour, change) for label, colour, change in rows}
    assert tone["Success rate"] == ("#0072B2", "▲ +16.7 pp")  # higher is better, went up: better (blue)
    assert tone["Run duration p50"] == ("#D55E00", "▲ +4 min 10 s")  # lower is better, went up: worse
    assert tone["Runs"] == ("#444444", "▲ +1")  # no direction: neutral
    assert tone["Availability"] == ("#D55E00", "▼ −0.65")


def test_markdown_has_no_html_and_lists(golden: rr.Rendered) -> None:
    assert re.search(r"</?[a-zA-Z][^>]*>", golden.markdown) is None
    assert "cid:" not in golden.markdown
    lines = golden.markdown.splitlines()
    assert lines[0] == "# Weekly engineering report 2026-W47"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings == [
        "## 1. CI runs and success rate",
        "## 2. Durations and queue times",
        "## 3. Recovery: MTTR and red branches",
        "## 4. Flaky jobs and re-runs",
        "## 5. Failure categories and recurring failures",
        "## 7. Pull requests and issues",  # numbers of the shared list: 6 (DORA) has no data
        "## 8. Health scores, quality and SLOs",
        "## 9. Alerts",
        "## Not in this report",
    ]
    assert "- **Success rate**: 66.7% · ▲ +16.7 pp (better) · previous 50.0% · `·····█▁▃`" in lines
    assert "- `test_failure` · Failures: 2 · Previous: 0" in lines


# ---- no data ----------------------------------------------------------------------------------------


def test_no_data_sections_have_their_line(golden: rr.Rendered) -> None:
    why = "no deployment to a production environment in the period"
    assert f"- 6. DORA four keys: {why}." in golden.markdown.splitlines()
    assert f"* 6. DORA four keys: {why}." in golden.text.splitlines()
    assert f"<strong>6. DORA four keys</strong>: {why}." in golden.html
    assert "DORA four keys" not in "".join(line for line in golden.markdown.splitlines() if line.startswith("## "))
    assert not any(name.startswith(("spark-dora", "chart-dora")) for name in golden.charts)


def test_health_part_without_data_gets_a_note() -> None:
    figures = load_figures()
    figures["sections"]["health"]["sonarqube"] = {"no_data": "no SonarQube figure was collected for the period"}
    got = render(figures)
    assert "- SonarQube: no SonarQube figure was collected for the period." in got.markdown.splitlines()
    assert "spark-health-sonarqube-quality_gates_failing.png" not in got.charts
    assert "SonarQube (latest in the period)" not in got.markdown
    check_email_html(got)


def test_empty_period_is_a_short_report() -> None:
    figures = load_figures()
    for name in figures["sections_order"]:
        figures["sections"][name] = {"no_data": f"nothing for {name}"}
    figures["has_data"] = False
    got = render(figures)
    assert got.charts == {}
    assert "**No data for this period.**" in got.markdown
    assert "No data for this period." in got.text
    assert [line for line in got.markdown.splitlines() if line.startswith("- ")] == [
        f"- {i}. {rr.SECTION_TITLES[name]}: nothing for {name.replace('_', chr(92) + '_')}."
        for i, name in enumerate(figures["sections_order"], start=1)
    ]
    assert got.summary["has_data"] is False
    assert got.summary["headlines"] == [] and got.summary["movers"] == []
    check_email_html(got)


# ---- determinism ------------------------------------------------------------------------------------


def _reversed(value: Any) -> Any:
    """The same data with every dict's keys in reverse order (lists unchanged)."""
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def test_deterministic(golden: rr.Rendered) -> None:
    again = render(load_figures())
    assert again.markdown == golden.markdown
    assert again.html == golden.html
    assert again.text == golden.text
    assert again.charts == golden.charts
    assert list(again.charts) == list(golden.charts)
    assert again.summary == golden.summary
    shuffled = render(_reversed(load_figures()))  # dict order of the input does not matter
    assert (shuffled.markdown, shuffled.html, shuffled.text, shuffled.charts) == (
        golden.markdown,
        golden.html,
        golden.text,
        golden.charts,
    )


def test_input_is_not_modified() -> None:
    figures = load_figures()
    before = copy.deepcopy(figures)
    render(figures, title="Team A")
    assert figures == before


# ---- other sections and inputs ----------------------------------------------------------------------


def test_dora_section_and_custom_title() -> None:
    figures = load_figures()
    series = [None, None, None, None, None, None, 4, 6]
    figures["sections"]["dora"] = {
        "deployments": {
            "value": 6,
            "previous": 4,
            "change": 2,
            "series": series,
            "unit": "count",
            "direction": "higher_is_better",
        },
        "deployments_per_day": {
            "value": 6 / 7,
            "previous": 4 / 7,
            "change": 2 / 7,
            "series": [None] * 6 + [4 / 7, 6 / 7],
            "unit": "1/d",
            "direction": "higher_is_better",
        },
        "change_failure_rate": {
            "value": 0.5,
            "previous": 0.25,
            "change": 0.25,
            "series": [None] * 6 + [0.25, 0.5],
            "unit": "ratio",
            "direction": "lower_is_better",
        },
        "bands": {
            "change_failure_rate": "low",
            "deployment_frequency": "high",
            "lead_time": None,
            "recovery_time": None,
        },
        "environments": ["production"],
        "rollbacks": [],
    }
    got = render(figures, title="Team *A* weekly")
    lines = got.markdown.splitlines()
    assert lines[0] == "# Team \\*A\\* weekly"
    assert "## 6. DORA four keys" in lines
    assert "- **Deployments**: 6 · ▲ +2 (better) · previous 4 · `······▁█`" in lines
    assert "- **Deployment frequency**: 0.86/day · ▲ +0.29/day (better) · previous 0.57/day · `······▁█`" in lines
    assert "- **Change failure rate**: 50.0% · ▲ +25.0 pp (worse) · previous 25.0% · `······▁█`" in lines
    assert (
        "- DORA 2023 bands: change failure rate: low; deployment frequency: high; lead time: –; recovery time: –"
        in lines
    )
    assert "- Rollbacks: 0" in lines
    assert "Not in this report" not in got.markdown
    assert got.summary["title"] == "Team *A* weekly"
    assert "<title>Team *A* weekly</title>" in got.html
    check_email_html(got)


def test_names_are_escaped() -> None:
    figures = load_figures()
    evil = "<script>alert(1)</script>*x*_y_`z`"
    figures["sections"]["ci_runs"]["failures_by_actor"] = [{"actor": evil, "failures": 1}]
    figures["sections"]["failure_triage"]["recurring_fingerprints"][0]["first_error"] = "a <b>bold</b> | *error*"
    got = render(figures)
    assert "<script>" not in got.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;*x*_y_`z`" in got.html
    assert "- `<script>alert(1)</script>*x*_y_'z'` · Failures: 1" in got.markdown.splitlines()
    assert "First error: a \\<b\\>bold\\</b\\> \\| \\*error\\*" in got.markdown
    check_email_html(got)


def test_monthly_period_labels_and_scope() -> None:
    figures = load_figures()
    figures["period"] = {**figures["period"], "kind": "month", "label": "2026-11"}
    figures["scope"] = {"projects": ["api"], "repos": ["acme/api"]}
    got = render(figures)
    assert got.markdown.splitlines()[0] == "# Monthly engineering report 2026-11"
    assert "Scope: repositories: acme/api; projects: api" in got.markdown


def test_bad_figures_are_refused() -> None:
    figures = load_figures()
    del figures["sections"]["alerts"]
    with pytest.raises(ValueError, match="section 'alerts' of sections_order is missing"):
        render(figures)
    with pytest.raises(ValueError, match="missing key 'periods'"):
        render({"period": {}, "sections_order": [], "sections": {}})


def test_templates_are_strict(tmp_path: Path) -> None:
    for name in ("report.html.j2", "report.txt.j2"):
        (tmp_path / name).write_text((TEMPLATES / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "report.md.j2").write_text("{{ title }} {{ no_such_variable }}\n", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError, match="no_such_variable"):
        rr.render_report(load_figures(), templates_dir=tmp_path)
    with pytest.raises(jinja2.TemplateNotFound):
        rr.render_report(load_figures(), templates_dir=tmp_path / "missing")


# ---- formatting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (None, "s", "–"),
        (4.2, "s", "4.2 s"),
        (42, "s", "42 s"),
        (252, "s", "4 min 12 s"),
        (240, "s", "4 min"),
        (3599.6, "s", "1 h"),
        (11100, "s", "3 h 5 min"),
        (187200, "s", "2 d 4 h"),
        (432000, "s", "5 d"),
        (4.5, "min", "4 min 30 s"),
        (0.913, "ratio", "91.3%"),
        (1.0, "ratio", "100.0%"),
        (1234, "count", "1,234"),
        (1234.0, "count", "1,234"),
        (2.25, "count", "2.2"),
        (72.46, "score", "72.5"),
        (0.4286, "1/d", "0.43/day"),
        (99.25, "", "99.25"),
        (120.5, "ms", "120.5 ms"),
    ],
)
def test_format_value(value: float | None, unit: str, expected: str) -> None:
    assert rr.format_value(value, unit) == expected


@pytest.mark.parametrize(
    ("change", "unit", "expected"),
    [
        (None, "count", "–"),
        (0.0, "count", "= 0"),
        (1e-12, "ratio", "= 0"),
        (3, "count", "▲ +3"),
        (-1234, "count", "▼ −1,234"),
        (-0.052, "ratio", "▼ −5.2 pp"),
        (250, "s", "▲ +4 min 10 s"),
    ],
)
def test_format_change(change: float | None, unit: str, expected: str) -> None:
    assert rr.format_change(change, unit) == expected


def test_text_sparkline() -> None:
    assert rr.text_sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert rr.text_sparkline([None, 5, 5]) == "·▄▄"
    assert rr.text_sparkline([None, None]) == "··"


def test_max_rows_limits_tables() -> None:
    figures = load_figures()
    actors = [{"actor": f"user{i:02d}", "failures": 20 - i} for i in range(10)]
    figures["sections"]["ci_runs"]["failures_by_actor"] = actors
    got = render(figures, max_rows=3)
    lines = got.markdown.splitlines()
    start = lines.index("**Failures by actor**")
    assert lines[start + 1 : start + 5] == [
        "- `user00` · Failures: 20",
        "- `user01` · Failures: 19",
        "- `user02` · Failures: 18",
        "- … and 7 more",
    ]
    assert "  - … and 7 more" in got.text.splitlines()
    assert re.search(r'<td colspan="2" style="[^"<>]*">… and 7 more</td>', got.html)
    assert "user03" not in got.html
    check_email_html(got)
    assert "user09" in render(figures).markdown  # default: 10 rows
    with pytest.raises(ValueError, match="max_rows"):
        render(figures, max_rows=0)
