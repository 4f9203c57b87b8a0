"""A browser tab driven over the DevTools protocol for the view's browser tests: navigate, run a script,
wait until the page shows something, type, click, take a screenshot. Built on ``include/sandbox/browser.py``'s
:class:`Browser` (its ``send`` / ``wait_event``), one tab per :class:`Tab`, each in a browser context of its
own (its own cookies: one login per tab).

Frames: Airflow shows the DevOps pages in an iframe of its own origin, so a script in the Airflow page reaches
the frame's document as ``document.querySelector('iframe').contentDocument`` (:data:`FRAME`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from include.sandbox.browser import Browser, BrowserError

#: The DevOps frame's document, from a script in the Airflow page.
FRAME = "document.querySelector('iframe[title]').contentDocument"


class Tab:
    def __init__(self, browser: Browser, *, width: int = 1400, height: int = 900) -> None:
        self.browser = browser
        self.context = browser.send("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        self.target = browser.send("Target.createTarget", {"url": "about:blank", "browserContextId": self.context})[
            "targetId"
        ]
        self.session = browser.send("Target.attachToTarget", {"targetId": self.target, "flatten": True})["sessionId"]
        self.resize(width, height)
        self.send("Emulation.setScrollbarsHidden", {"hidden": True})
        self.send("Page.enable")

    def resize(self, width: int, height: int) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics)

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params or {}, self.session)

    def close(self) -> None:
        with contextlib.suppress(BrowserError):
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        with contextlib.suppress(BrowserError):
            self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})

    # -- pages ---------------------------------------------------------------------------------------------
    def goto(self, url: str) -> None:
        nav = self.send("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise BrowserError(f"could not open {url}: {nav['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session)

    def js(self, expression: str) -> Any:
        """The value of a script in the page (promises awaited); an exception in it is an error here."""
        found = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in found:
            details = found["exceptionDetails"]
            raise BrowserError(f"{expression[:120]}: {details.get('exception', {}).get('description') or details}")
        return found.get("result", {}).get("value")

    def wait(self, expression: str, timeout: float = 20.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy (an exception counts as not yet); returns its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        # an element (of any frame's realm) counts as found
        value = (
            f"(() => {{ const v = ({expression}); "
            "return v && typeof v === 'object' && 'nodeType' in v ? true : v; })()"
        )
        while True:
            try:
                last = self.js(value)
            except BrowserError as exc:
                last = exc
            else:
                if last:
                    return last
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what or expression} (last: {last!r})")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return str(self.js("location.href"))

    def text(self, root: str = "document") -> str:
        return str(self.js(f"{root}.body.innerText"))

    def click(self, selector: str, root: str = "document") -> None:
        """Click the element a CSS selector finds (as a user would: the click's default action runs)."""
        found = self.js(
            f"(() => {{ const el = {root}.querySelector({json.dumps(selector)}); "
            "if (!el) return false; el.click(); return true; })()"
        )
        if not found:
            raise AssertionError(f"nothing matches {selector!r}")

    def type(self, selector: str, text: str) -> None:
        """Focus an input and type into it (``Input.insertText``: the page's own handlers see the input)."""
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path) -> bytes:
        """The viewport as PNG, written to ``path``."""
        data = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def resources(self, root: str = "window") -> list[str]:
        """Every URL the document (or the frame ``root`` names) loaded: itself and its resources."""
        return list(
            self.js(
                f"(() => {{ const w = {root}; return [w.location.href, "
                "...w.performance.getEntriesByType('resource').map(e => e.name)]; })()"
            )
        )
