"""include.sandbox.browser: headless Chromium reports broken images, horizontal overflow and what a page shows,
and leaves nothing behind when stopped."""

from __future__ import annotations

import io
import os
import struct
import zlib
from email.message import EmailMessage

import pytest
from PIL import Image

from include.sandbox import processes
from include.sandbox.browser import Browser, BrowserError, PageCheck, find_chromium, inline_cid_images
from include.sandbox.servers import MissingBinary
from tests.conftest import _unavailable

RED = (213, 94, 0)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour RGB PNG (stdlib only)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def page(body: str) -> str:
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body style="margin:0">{body}</body></html>'


def pixel(check: PageCheck, x: int, y: int) -> tuple[int, ...]:
    return Image.open(io.BytesIO(check.screenshot_png)).convert("RGB").getpixel((x, y))


def test_good_page_has_no_broken_image_and_no_overflow(browser: Browser) -> None:
    html = page(
        '<table width="700" cellpadding="0" cellspacing="0" style="width:700px;max-width:700px">'
        '<tr><td><img src="cid:chart.png" width="680" height="40" alt="chart" style="display:block"></td></tr>'
        "<tr><td>Weekly report: 3 runs</td></tr></table>"
    )
    got = browser.check_html(html, images={"chart.png": png(680, 40, RED)}, width=700)
    assert got.broken_images == []
    assert got.overflow_px == 0
    assert got.text.strip() == "Weekly report: 3 runs"
    shot = Image.open(io.BytesIO(got.screenshot_png))
    assert shot.format == "PNG"
    assert shot.size == (700, 900)  # the viewport: the page is shorter
    assert pixel(got, 10, 10) == RED  # the cid: image is painted where it belongs
    assert pixel(got, 690, 10) == (255, 255, 255)  # right of the 680 px image: the white page


def test_broken_images_are_reported_by_their_src(browser: Browser) -> None:
    html = page(
        '<img src="cid:ok.png" alt="ok"><img src="cid:missing.png" alt="no part">'
        '<img src="cid:corrupt.png" alt="not a PNG"><img src="https://example.com/remote.png" alt="remote">'
    )
    images = {"ok.png": png(4, 4, RED), "corrupt.png": b"this is not an image"}
    got = browser.check_html(html, images=images)
    # a cid: with no part, bytes that are no image, and a remote image (blocked, as in a mail client)
    assert got.broken_images == ["cid:missing.png", "cid:corrupt.png", "https://example.com/remote.png"]
    assert got.overflow_px == 0


def test_wide_table_overflows_at_700(browser: Browser) -> None:
    html = page('<table width="900" style="width:900px"><tr><td>wide</td></tr></table>')
    got = browser.check_html(html, width=700)
    assert got.overflow_px == 200
    assert got.broken_images == []
    assert Image.open(io.BytesIO(got.screenshot_png)).size == (900, 900)  # the whole page, overflow included
    assert browser.check_html(html, width=900).overflow_px == 0


def test_tall_page_is_captured_whole(browser: Browser) -> None:
    got = browser.check_html(page('<div style="height:2500px;background:#d55e00">tall</div>'))
    assert Image.open(io.BytesIO(got.screenshot_png)).size == (700, 2500)
    assert pixel(got, 350, 2490) == RED  # beyond the 900 px viewport: captured too


def test_email_is_shown_with_its_cid_parts(browser: Browser) -> None:
    msg = EmailMessage()
    msg["Subject"] = "report"
    msg.set_content("plain text alternative")
    shown = '<img src="cid:chart.png" width="8" height="8" alt="c" style="display:block">'
    msg.add_alternative(page(shown + '<img src="cid:gone.png" alt="g">'), "html")
    msg.get_payload()[1].add_related(png(8, 8, RED), "image", "png", cid="<chart.png>")
    got = browser.check_email(msg)
    assert got.broken_images == ["cid:gone.png"]  # chart.png came from its part
    assert pixel(got, 2, 2) == RED
    with pytest.raises(ValueError, match="no text/html part"):
        plain = EmailMessage()
        plain.set_content("only text")
        browser.check_email(plain)


def test_inline_cid_images_maps_back() -> None:
    images = {"a.png": b"A", "a.png.bak": b"B", "c.gif": b"C"}
    html, back = inline_cid_images('<img src="cid:a.png"><img src="cid:a.png.bak"><img src="cid:c.gif">', images)
    a, b, c = "data:image/png;base64,QQ==", "data:image/png;base64,Qg==", "data:image/gif;base64,Qw=="
    assert html == f'<img src="{a}"><img src="{b}"><img src="{c}">'  # the longer name is not eaten by a.png
    assert back == {a: "cid:a.png", b: "cid:a.png.bak", c: "cid:c.gif"}


def test_missing_binary_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(MissingBinary, match="install the Debian package 'chromium'"):
        find_chromium()
    with pytest.raises(MissingBinary):
        Browser().start()


def test_a_crashed_browser_is_a_clear_error() -> None:
    server = Browser(timeout=10)
    try:
        server.start()
    except MissingBinary as exc:
        _unavailable("Chromium", exc)
    try:
        assert server.proc is not None
        processes.terminate([processes.Root.of(server.proc.pid)], grace=5)
        with pytest.raises(BrowserError, match="chromium closed the DevTools connection"):
            server.check_html(page("<p>x</p>"))
    finally:
        server.stop()
    assert server.dir is None


def test_stop_leaves_nothing_behind() -> None:
    server = Browser()
    try:
        server.start()
    except MissingBinary as exc:
        _unavailable("Chromium", exc)
    try:
        profile = str(server.profile)
        directory = server.dir
        assert processes.pids_with_arg(f"--user-data-dir={profile}")  # the browser and its helpers
        assert server.check_html(page("<p>x</p>")).text == "x"
    finally:
        server.stop()
    assert processes.pids_with_arg(f"--user-data-dir={profile}") == []
    assert directory is not None and not os.path.exists(directory)
    server.stop()  # twice: nothing to do
