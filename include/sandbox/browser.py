"""Headless Chromium (Debian's ``chromium``) for checking pages and HTML reports as a person would see them.

    with Browser() as browser:                       # or: guard.start(Browser()) in a ProcessGuard
        page = browser.check_html(html, images={"chart.png": png_bytes}, width=700)
        assert page.broken_images == [] and page.overflow_px == 0
        Path("shot.png").write_bytes(page.screenshot_png)

Chromium is driven over the Chrome DevTools Protocol (CDP) on a WebSocket (``websockets``' sync client);
no chromedriver, no Selenium. It runs in a session of its own with a throwaway profile in a temp dir and
``--remote-debugging-port=0``: Chromium picks a free loopback port itself and writes it to
``DevToolsActivePort`` in the profile, so two browsers never race for a port. ``stop()`` closes the
browser and ends whatever is left of its session (found by the profile directory on the command line
too), then removes the temp dir.

:meth:`Browser.check_html` shows an HTML document the way a mail client shows an e-mail: ``cid:``
references are replaced by ``data:`` URIs of the given images (a ``cid:`` with no image stays broken),
and every request to the network (``http:``/``https:``) is blocked, like remote images in most mail
clients; :meth:`Browser.check_email` does the same with a message's ``text/html`` body and its
``Content-ID`` parts. Either reports the images that did not load (``naturalWidth == 0``), the
horizontal overflow of the document at the viewport width, the visible text, and a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import mimetypes
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from include.sandbox import processes
from include.sandbox.servers import MissingBinary

#: where Debian's package puts the browser; ``$CHROMIUM`` names another binary
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Chromium without the background traffic a closed network refuses (updates, sync, safe browsing, …)
FLAGS = (
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
)

#: run in the page once it has loaded; returns what :class:`PageCheck` reports (images by their src)
_MEASURE = """(() => {
  const doc = document.documentElement, body = document.body;
  const broken = Array.from(document.images)
    .filter(img => !img.complete || img.naturalWidth === 0)
    .map(img => img.getAttribute("src") || "");
  const scrollWidth = Math.max(doc.scrollWidth, body ? body.scrollWidth : 0);
  const scrollHeight = Math.max(doc.scrollHeight, body ? body.scrollHeight : 0);
  return {broken, scrollWidth, scrollHeight, clientWidth: doc.clientWidth, text: body ? body.innerText : ""};
})()"""


class BrowserError(RuntimeError):
    """Chromium did not start, answered a DevTools command with an error, or did not answer in time."""


@dataclass(frozen=True)
class PageCheck:
    """What a page looked like in the browser.

    ``broken_images``: the ``src`` of every image that did not load (as written in the HTML, so
    ``cid:name`` for an e-mail), in document order. ``overflow_px``: how far the document is wider than
    the viewport (``scrollWidth - clientWidth``; 0 = no horizontal scrolling). ``screenshot_png``: the
    whole page, ``width`` pixels wide (wider if it overflows). ``text``: the rendered text (innerText).
    """

    broken_images: list[str]
    overflow_px: int
    screenshot_png: bytes
    text: str
    width: int
    height: int


def find_chromium() -> str:
    """The Chromium binary: ``$CHROMIUM``, else the first of :data:`CANDIDATES` on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        if shutil.which(explicit):
            return explicit
        raise MissingBinary(explicit, "chromium")
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise MissingBinary("chromium", "chromium")


def inline_cid_images(html: str, images: Mapping[str, bytes]) -> tuple[str, dict[str, str]]:
    """``cid:name`` → ``data:`` URI for each image given, as a mail client shows inline (CID) parts.

    The type is guessed from the name (``image/png`` when it names no image type). Returns the new HTML
    and, for each URI put in, the ``cid:`` reference it replaced (longest names first, so ``cid:a.png``
    does not eat into ``cid:a.png.bak``).
    """
    back: dict[str, str] = {}
    for name in sorted(images, key=len, reverse=True):
        guessed = mimetypes.guess_type(name)[0] or ""
        mime = guessed if guessed.startswith("image/") else "image/png"
        uri = f"data:{mime};base64,{base64.b64encode(images[name]).decode('ascii')}"
        back[uri] = f"cid:{name}"
        html = html.replace(f"cid:{name}", uri)
    return html, back


class Browser:
    """One headless Chromium; :meth:`check_html` opens a fresh tab for each page and closes it after."""

    def __init__(self, binary: str | None = None, *, timeout: float = 30.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._ws: Any = None
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._stack = contextlib.ExitStack()

    # ---- process -----------------------------------------------------------------------------------

    @property
    def profile(self) -> Path:
        if not self.dir:
            raise BrowserError("the browser is not started")
        return self.dir / "profile"

    def start(self) -> Browser:
        binary = self.binary or find_chromium()  # MissingBinary before anything is started
        try:
            return self._start(binary)
        except BaseException:
            self.stop()
            raise

    def _start(self, binary: str) -> Browser:
        from websockets.sync.client import connect

        self.dir = Path(tempfile.mkdtemp(prefix="devops-chromium-"))
        self.profile.mkdir()
        args = [binary, *FLAGS, f"--user-data-dir={self.profile}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
        args.append("about:blank")
        with open(self.dir / "chromium.log", "wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode}: {self._log_tail()}")
            lines = port_file.read_text().split("\n") if port_file.exists() else []
            if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].strip():
                break
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"chromium did not open its DevTools port within {self.timeout}s: {self._log_tail()}"
                )
            time.sleep(0.05)
        url = f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
        conn = connect(url, proxy=None, max_size=None, open_timeout=self.timeout, ping_interval=None)
        self._ws = self._stack.enter_context(conn)  # websockets 17: a connection is a context manager
        return self

    def _log_tail(self) -> str:
        log = self.dir / "chromium.log" if self.dir else None
        return log.read_text(errors="replace")[-2000:] if log and log.exists() else ""

    def stop(self) -> None:
        """Close the browser, end its session (renderers, GPU and zygote processes), remove the profile."""
        if self._ws is not None:
            with contextlib.suppress(Exception):  # it may be gone already: what is left is ended below
                self._ws.send(json.dumps({"id": self._new_id(), "method": "Browser.close"}))
            with contextlib.suppress(Exception):
                self._stack.close()
            self._ws = None
        if not self.dir:
            return
        roots = [processes.Root.of(pid) for pid in processes.pids_with_arg(f"--user-data-dir={self.profile}")]
        if self.proc and self.proc.poll() is None:
            roots.append(processes.Root.of(self.proc.pid))
        if self.proc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)  # after Browser.close it exits by itself, with its children
        processes.terminate(roots, grace=5)
        if self.proc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- DevTools protocol -------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _recv(self, deadline: float, what: str) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrowserError(f"no answer from chromium within {self.timeout}s: {what}")
        from websockets.exceptions import ConnectionClosed

        try:
            return json.loads(self._ws.recv(timeout=left))
        except TimeoutError as exc:
            raise BrowserError(f"no answer from chromium within {self.timeout}s: {what}") from exc
        except ConnectionClosed as exc:
            raise BrowserError(f"chromium closed the DevTools connection ({what}): {self._log_tail()}") from exc

    def send(self, method: str, params: Mapping[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """One CDP command; returns its result (events that arrive meanwhile are kept for :meth:`wait_event`)."""
        if self._ws is None:
            raise BrowserError("the browser is not started")
        msg: dict[str, Any] = {"id": self._new_id(), "method": method, "params": dict(params or {})}
        if session:
            msg["sessionId"] = session
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(json.dumps(msg))
        except ConnectionClosed as exc:
            raise BrowserError(f"chromium closed the DevTools connection ({method}): {self._log_tail()}") from exc
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._recv(deadline, method)
            if reply.get("id") == msg["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')} ({reply['error'].get('code')})")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict[str, Any]:
        """The first event ``method`` (of ``session``) received so far or within the timeout; it is consumed."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method and event.get("sessionId") == session:
                    return self._events.pop(i).get("params", {})
            reply = self._recv(deadline, f"event {method}")
            if "method" in reply:
                self._events.append(reply)

    # ---- pages -------------------------------------------------------------------------------------

    def check_html(
        self, html: str, *, images: Mapping[str, bytes] | None = None, width: int = 700, height: int = 900
    ) -> PageCheck:
        """Load ``html`` (``cid:`` images from ``images``) in a ``width`` px wide viewport and look at it."""
        if not self.dir:
            raise BrowserError("the browser is not started")
        page, back = inline_cid_images(html, images or {})
        fd, name = tempfile.mkstemp(suffix=".html", dir=self.dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        try:
            return self._check(Path(name).as_uri(), back, width, height)
        finally:
            Path(name).unlink(missing_ok=True)

    def check_email(self, message: EmailMessage, *, width: int = 700, height: int = 900) -> PageCheck:
        """Show an e-mail as a mail client does: its ``text/html`` body with the parts it references by
        ``Content-ID`` (``cid:``) as images. A message with no HTML body is a :class:`ValueError`."""
        body = message.get_body(preferencelist=("html",))
        if body is None:
            raise ValueError("the message has no text/html part")
        images = {}
        for part in message.walk():
            cid = part["Content-ID"]
            if cid and not part.is_multipart():
                images[str(cid).strip().removeprefix("<").removesuffix(">")] = part.get_payload(decode=True) or b""
        return self.check_html(body.get_content(), images=images, width=width, height=height)

    def check_url(self, url: str, *, width: int = 700, height: int = 900) -> PageCheck:
        """Like :meth:`check_html` for a page already served (``http://127.0.0.1:…`` is not blocked here)."""
        return self._check(url, {}, width, height, block_network=False)

    def _check(
        self, url: str, back: Mapping[str, str], width: int, height: int, *, block_network: bool = True
    ) -> PageCheck:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        try:
            session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            self.send("Emulation.setDeviceMetricsOverride", metrics, session)
            self.send("Emulation.setScrollbarsHidden", {"hidden": True}, session)  # clientWidth == width
            if block_network:
                self.send("Network.enable", {}, session)
                self.send("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]}, session)
            self.send("Page.enable", {}, session)
            nav = self.send("Page.navigate", {"url": url}, session)
            if nav.get("errorText"):
                raise BrowserError(f"could not open {url}: {nav['errorText']}")
            self.wait_event("Page.loadEventFired", session)
            measure = {"expression": _MEASURE, "returnByValue": True, "awaitPromise": True}
            found = self.send("Runtime.evaluate", measure, session)
            if "exceptionDetails" in found:
                raise BrowserError(f"measuring the page failed: {found['exceptionDetails']}")
            m = found["result"]["value"]
            full_width = max(width, int(m["scrollWidth"]))
            full_height = max(1, int(m["scrollHeight"]))
            shot = self.send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": full_width, "height": full_height, "scale": 1},
                },
                session,
            )
            return PageCheck(
                broken_images=[back.get(src, src) for src in m["broken"]],
                overflow_px=max(0, int(m["scrollWidth"]) - int(m["clientWidth"])),
                screenshot_png=base64.b64decode(shot["data"]),
                text=m["text"],
                width=full_width,
                height=full_height,
            )
        finally:
            with contextlib.suppress(BrowserError):
                self.send("Target.closeTarget", {"targetId": target})
            self._events.clear()
