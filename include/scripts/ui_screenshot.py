"""A screenshot of a page of a running Airflow UI (``make demo``), in headless Chromium.

    python include/scripts/ui_screenshot.py --url http://127.0.0.1:8080 --password PW \\
        --page /dags/ci_failure_triage/runs --wait-for "pipeline analysed" --out docs/demo_triage_runs.png

Logs in as the simple auth manager does (``POST /auth/token``, the JWT as the ``_token`` cookie), opens
the page, waits until its text contains ``--wait-for`` (the UI fills itself in after loading), and saves
a PNG of the viewport. The browser is ``include/sandbox/browser.py``'s (DevTools protocol, no driver).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def token(url: str, user: str, password: str) -> str:
    body = json.dumps({"username": user, "password": password}).encode()
    request = urllib.request.Request(
        f"{url}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)["access_token"]


def screenshot(
    url: str, jwt: str, page: str, *, wait_for: str = "", width: int = 1400, height: int = 900, timeout: float = 60
) -> tuple[bytes, str]:
    """(PNG of the viewport, the page's text) once ``wait_for`` is in the text (or at the timeout)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # `include`, when run as a script
    from include.sandbox.browser import Browser, BrowserError

    with Browser() as browser:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        browser.send("Emulation.setDeviceMetricsOverride", metrics, session)
        browser.send("Network.enable", {}, session)
        cookie = {"name": "_token", "value": jwt, "url": url, "path": "/", "httpOnly": True, "sameSite": "Lax"}
        browser.send("Network.setCookie", cookie, session)
        browser.send("Page.enable", {}, session)
        nav = browser.send("Page.navigate", {"url": f"{url}{page}"}, session)
        if nav.get("errorText"):
            raise BrowserError(f"could not open {url}{page}: {nav['errorText']}")
        browser.wait_event("Page.loadEventFired", session)
        text, deadline = "", time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = browser.send(
                "Runtime.evaluate", {"expression": "document.body.innerText", "returnByValue": True}, session
            )
            text = str(got.get("result", {}).get("value") or "")
            if wait_for in text:
                break
            time.sleep(0.5)
        time.sleep(1.0)  # the last requests' rendering
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)
        return base64.b64decode(shot["data"]), text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--page", default="/")
    parser.add_argument("--wait-for", default="")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    png, text = screenshot(
        args.url.rstrip("/"),
        token(args.url.rstrip("/"), args.user, args.password),
        args.page,
        wait_for=args.wait_for,
        width=args.width,
        height=args.height,
    )
    args.out.write_bytes(png)
    found = args.wait_for in text
    print(f"{args.out}: {len(png)} bytes; {'found' if found else 'did NOT find'} {args.wait_for!r}")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
