"""Tests for workflows/weekly_report/charts.py: PNG size, byte-identical output (also across processes,
hash seeds and a hostile matplotlibrc), the palette, gaps, "no data" images and input errors."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from devops_automation.workflows.weekly_report import charts

REPO = Path(__file__).resolve().parents[5]
WEEKS = [f"2026-W{w:02d}" for w in range(11, 19)]

CASES = {
    "sparkline": lambda: charts.sparkline([3, 4, None, 5, 7, 6, None, 8]),
    "bar_chart": lambda: charts.bar_chart(
        "Runs per workflow",
        ["build", "test-linux-and-windows-matrix", "deploy"],
        {"Previous week": [40, 55, None], "This week": [42.5, 50, 12]},
        y_label="Runs",
        unit="count",
    ),
    "line_chart": lambda: charts.line_chart(
        "CI success rate",
        WEEKS,
        {"all": [91.2, 92.5, None, 90.1, 94.3, 95.0, 93.2, 96.1], "payments": [85, 88, 87, None, 90, 91, None, 93]},
        y_label="Success rate",
        unit="%",
    ),
    "stacked_bar": lambda: charts.stacked_bar(
        "Failures by category",
        WEEKS,
        {"test": [5, 6, 4, 8, 3, 2, 5, 4], "infra": [1, 0, 2, None, 1, 1, 0, 3], "flaky": [3, 4, 2, 2, 5, 1, 0, 2]},
        y_label="Failed runs",
        unit="count",
    ),
}


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def png_size(data: bytes) -> tuple[int, int]:
    kind, body = png_chunks(data)[0]
    assert kind == b"IHDR"
    return struct.unpack(">II", body[:8])


def colours(data: bytes) -> set[tuple[int, int, int]]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return {c[:3] for _, c in img.convert("RGBA").getcolors(maxcolors=1 << 20)}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


# ---------------------------------------------------------------------------------------- size, format


@pytest.mark.parametrize("name", CASES)
def test_default_sizes_fit_an_email(name: str) -> None:
    expected = (120, 28) if name == "sparkline" else (680, 300)
    assert png_size(CASES[name]()) == expected


@pytest.mark.parametrize(("width", "height"), [(700, 29), (8, 8), (121, 57), (58, 14)])
def test_exact_pixel_size_for_awkward_sparkline_sizes(width: int, height: int) -> None:
    # 29/100*100 is 28.999...: the canvas must not floor it to 28 (matplotlib rounds within 1e-8 px).
    assert png_size(charts.sparkline([1, 2, 3], width_px=width, height_px=height)) == (width, height)


@pytest.mark.parametrize(("width", "height"), [(700, 290), (402, 203), (510, 251), (477, 228)])
def test_exact_pixel_size_for_awkward_chart_sizes(width: int, height: int) -> None:
    line = charts.line_chart("t", ["a", "b"], {"s": [1, 2]}, y_label="y", unit="u", width_px=width, height_px=height)
    assert png_size(line) == (width, height)


@pytest.mark.parametrize("name", CASES)
def test_png_has_no_software_or_time_chunk(name: str) -> None:
    kinds = [kind for kind, _ in png_chunks(CASES[name]())]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert b"tIME" not in kinds
    texts = [body for kind, body in png_chunks(CASES[name]()) if kind in (b"tEXt", b"iTXt", b"zTXt")]
    assert not any(body.startswith(b"Software") for body in texts)


# ------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", CASES)
def test_same_input_same_bytes(name: str) -> None:
    assert CASES[name]() == CASES[name]()


def test_different_input_different_bytes() -> None:
    assert charts.sparkline([1, 2, 3]) != charts.sparkline([1, 3, 2])
    assert CASES["line_chart"]() != charts.line_chart(
        "CI success rate", WEEKS, {"all": [91.2] * 8}, y_label="Success rate", unit="%"
    )


SCRIPT = """
import hashlib, json, sys
sys.path[:0] = [{repo!r}, {plugins!r}]
import importlib.util
spec = importlib.util.spec_from_file_location("case_module", {this!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(json.dumps({{name: hashlib.sha256(make()).hexdigest() for name, make in mod.CASES.items()}}))
"""


def run_cases_in_subprocess(tmp_path: Path, seed: str, rc_lines: str) -> dict[str, str]:
    config = tmp_path / f"mplconfig-{seed}"  # a fresh font cache per process
    config.mkdir()
    (config / "matplotlibrc").write_text(rc_lines)
    env = {**os.environ, "PYTHONHASHSEED": seed, "MPLCONFIGDIR": str(config)}
    script = SCRIPT.format(repo=str(REPO), plugins=str(REPO / "plugins"), this=__file__)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_byte_identical_across_processes_hash_seeds_and_a_hostile_matplotlibrc(tmp_path: Path) -> None:
    import hashlib

    here = {name: hashlib.sha256(make()).hexdigest() for name, make in CASES.items()}
    plain = run_cases_in_subprocess(tmp_path, "1", "")
    hostile = run_cases_in_subprocess(
        tmp_path,
        "4242",
        "font.size: 20\nfont.family: serif\nlines.linewidth: 5\naxes.prop_cycle: cycler('color', ['r', 'g'])\n"
        "savefig.dpi: 300\nfigure.facecolor: black\naxes.grid: False\ntext.hinting: none\n",
    )
    assert plain == here
    assert hostile == here


def test_rcparams_are_restored_after_a_chart() -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    CASES["stacked_bar"]()
    assert dict(matplotlib.rcParams) == before


# ------------------------------------------------------------------------------------ font, palette


def test_font_is_matplotlibs_bundled_dejavu_even_with_a_system_copy_installed() -> None:
    import matplotlib
    from matplotlib.font_manager import FontProperties, findfont

    path = findfont(FontProperties(family="DejaVu Sans"), fallback_to_default=False)
    assert path.startswith(matplotlib.get_data_path())
    assert path.endswith("DejaVuSans.ttf")


def test_a_font_lookup_outside_the_bundle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.font_manager

    monkeypatch.setattr(matplotlib.font_manager, "findfont", lambda *a, **k: "/usr/share/fonts/x/DejaVuSans.ttf")
    charts._check_bundled_font.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="not matplotlib's bundled"):
            charts.sparkline([1, 2])
    finally:
        monkeypatch.undo()
        charts._check_bundled_font.cache_clear()
    assert png_size(charts.sparkline([1, 2])) == (120, 28)


def test_series_take_the_okabe_ito_palette_in_order() -> None:
    seen = colours(CASES["stacked_bar"]())
    assert {rgb(c) for c in charts.OKABE_ITO[:3]} <= seen
    assert rgb(charts.OKABE_ITO[3]) not in seen  # only three series
    bars = colours(charts.bar_chart("t", ["a"], {"only": [3]}, y_label="y", unit="u"))
    assert rgb(charts.OKABE_ITO[0]) in bars and rgb(charts.OKABE_ITO[1]) not in bars


def test_background_is_white_for_email() -> None:
    from PIL import Image

    with Image.open(io.BytesIO(CASES["line_chart"]())) as img:
        assert img.convert("RGB").getpixel((0, 0)) == (255, 255, 255)
        assert img.convert("RGB").getpixel((679, 299)) == (255, 255, 255)


# ------------------------------------------------------------------------------------ gaps, no data


def test_gaps_do_not_crash_and_are_drawn() -> None:
    isolated = charts.sparkline([None, 5, None, None, 7, 8, None, 9])
    assert png_size(isolated) == (120, 28)
    assert charts.sparkline([1, None, 3]) != charts.sparkline([1, 2, 3])
    stacked = charts.stacked_bar("t", ["a", "b"], {"x": [None, None], "y": [None, 2]}, y_label="y", unit="u")
    assert png_size(stacked) == (680, 300)
    bars = charts.bar_chart("t", ["a", "b"], {"x": [None, 1]}, y_label="y", unit="u")
    assert bars != charts.bar_chart("t", ["a", "b"], {"x": [1, 1]}, y_label="y", unit="u")


def test_flat_and_single_value_sparklines() -> None:
    assert png_size(charts.sparkline([5.0] * 8)) == (120, 28)
    assert png_size(charts.sparkline([0, 0])) == (120, 28)
    assert png_size(charts.sparkline([42])) == (120, 28)


def test_empty_or_all_none_gives_a_no_data_image_of_the_same_size() -> None:
    empty_line = charts.line_chart("p90 duration", WEEKS, {"all": [None] * 8}, y_label="Duration", unit="min")
    assert png_size(empty_line) == (680, 300)
    # every "no data" chart with the same title is the same image, whatever the empty input looked like
    assert charts.line_chart("p90 duration", [], {}, y_label="Duration", unit="min") == empty_line
    assert charts.bar_chart("p90 duration", ["a"], {"x": [None]}, y_label="D", unit="min") == empty_line
    assert charts.stacked_bar("p90 duration", WEEKS, {}, y_label="D", unit="min") == empty_line
    assert empty_line != charts.line_chart("p90 duration", WEEKS, {"all": [1.0] * 8}, y_label="Duration", unit="min")
    assert len(empty_line) < 10_000
    assert charts.sparkline([]) == charts.sparkline([None] * 8)
    assert png_size(charts.sparkline([])) == (120, 28)


# ---------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: charts.line_chart("t", ["a", "b"], {"s": [1]}, y_label="y", unit="u"), r"'s' has 1 values for 2"),
        (lambda: charts.line_chart("t", ["a"], {"s": [float("nan")]}, y_label="y", unit="u"), r"'s'\]?\[0\] = nan"),
        (lambda: charts.bar_chart("t", ["a"], {"s": [float("inf")]}, y_label="y", unit="u"), r"\[0\] = inf"),
        (lambda: charts.bar_chart("t", ["a"], {"s": [True]}, y_label="y", unit="u"), r"\[0\] = True"),
        (lambda: charts.bar_chart("t", ["a"], {"s": ["3"]}, y_label="y", unit="u"), r"\[0\] = '3'"),
        (lambda: charts.stacked_bar("t", ["a", "b"], {"s": [1, -2]}, y_label="y", unit="u"), r"'s'\[1\] = -2"),
        (lambda: charts.line_chart("", ["a"], {"s": [1]}, y_label="y", unit="u"), "title must be a non-empty"),
        (lambda: charts.line_chart("t", ["a"], {"": [1]}, y_label="y", unit="u"), "series name must be"),
        (lambda: charts.line_chart("t", "ab", {"s": [1, 2]}, y_label="y", unit="u"), "periods must be a sequence"),
        (
            lambda: charts.line_chart("t", ["a"], {str(i): [i] for i in range(9)}, y_label="y", unit="u"),
            "9 series, at most 8",
        ),
        (
            lambda: charts.bar_chart("t", [str(i) for i in range(21)], {"s": [1] * 21}, y_label="y", unit="u"),
            "21 categories, at most 20",
        ),
        (lambda: charts.sparkline([1, 2], width_px=0), "width_px must be"),
        (lambda: charts.sparkline([1, 2], height_px=12.5), "height_px must be"),
        (lambda: charts.sparkline("123"), "must be a sequence"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------------------- purity


def test_module_imports_neither_airflow_nor_matplotlib() -> None:
    code = (
        "import sys; import devops_automation.workflows.weekly_report.charts; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'matplotlib')); print(bad); "
        "devops_automation.workflows.weekly_report.charts.sparkline([1, 2]); "
        "print(sorted(m for m in sys.modules if m in ('airflow', 'matplotlib.pyplot', 'tkinter')))"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'plugins'}"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "[]"]  # and drawing needs no pyplot or GUI toolkit
    source = (REPO / "plugins/devops_automation/workflows/weekly_report/charts.py").read_text()
    assert "import airflow" not in source and "from airflow" not in source
