"""The pages' Jinja2 templates, their formatting filters and the static files the plugin serves (no CDN).

**Where the files are.** ``include/templates/webui/`` of the project (pages: ``*.html``; assets in
``static/``: the stylesheet, the script of the overview's live list and of links out of Airflow's frame,
the navigation icon), found like
the weekly report's templates: beside the DAGs folder (``[core] dags_folder``'s parent, where ``include/``
lives in the Astro layout, the image and ``make demo``), else relative to this package's checkout;
``DEVOPS_WEBUI_TEMPLATES`` names another folder. Nothing is read from anywhere but this server.

**Pages are strict.** Autoescaping is on (every value from the store is text, never markup) and an
undefined name in a template is an error, not an empty string. The pages' Content-Security-Policy
(:data:`PAGE_CSP`) lets them load only this server's own scripts, styles, images and event stream, and
be framed only by Airflow's own pages (the ``external_views`` iframe).

Plain Python (Jinja2, no Airflow import except the dags folder lookup, inside a function).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TEMPLATES_ENV = "DEVOPS_WEBUI_TEMPLATES"
RELATIVE_DIR = Path("include") / "templates" / "webui"
#: The static files served at ``/static/<name>`` and their types (nothing else is served from there).
STATIC_FILES: Mapping[str, str] = {
    "devops.css": "text/css; charset=utf-8",
    "devops.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
#: Pages and charts: this server only; framed only by Airflow's pages (same origin).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def templates_dir() -> Path:
    """The folder of the pages' templates (see the module docstring)."""
    explicit = os.environ.get(TEMPLATES_ENV)
    if explicit:
        return Path(explicit)
    candidates = []
    try:
        from airflow.configuration import conf

        candidates.append(Path(conf.get("core", "dags_folder")).parent / RELATIVE_DIR)
    except ImportError:  # no Airflow here: the checkout's copy
        pass
    candidates.append(Path(__file__).resolve().parents[3] / RELATIVE_DIR)
    for folder in candidates:
        if (folder / "base.html").is_file():
            return folder
    return candidates[-1]


# -- formatting ----------------------------------------------------------------------------------------
def fmt_time(value: Any) -> str:
    """``2026-11-20 10:01 UTC`` (an aware or naive-UTC time, or an ISO string); a day as ``2026-11-20``."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def fmt_day(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return "–" if value in (None, "") else str(value)


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A ratio as a percentage: ``0.4`` -> ``40.0 %``."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value * 100:.{digits}f} %"


def fmt_duration(value: Any) -> str:
    """Seconds as ``45 s``, ``12.5 min``, ``3.2 h`` or ``2.1 d``."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    seconds = float(value)
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    if abs(seconds) < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def fmt_number(value: Any, digits: int = 0) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:,.{digits}f}".replace(",", "\u202f")


def fmt_signed(value: Any, digits: int = 1) -> str:
    """A change with its sign: ``+10.0``, ``−5.0`` (a real minus), ``±0.0``."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return f"±{text}"
    return f"+{text}" if value > 0 else f"\u2212{text}"


def fmt_short(value: Any, limit: int = 120) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


FILTERS = {
    "time": fmt_time,
    "day": fmt_day,
    "pct": fmt_pct,
    "duration": fmt_duration,
    "number": fmt_number,
    "signed": fmt_signed,
    "short": fmt_short,
}


# -- templates and assets ------------------------------------------------------------------------------
class Templates:
    """The Jinja2 environment of a templates folder and its static files (read once, with a digest each,
    so their URLs change when they do: ``/static/devops.css?v=<digest>``)."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self._lock = threading.Lock()
        self._env: Any = None
        self._static: dict[str, tuple[bytes, str]] = {}

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = templates_dir()
        return self._folder

    @property
    def env(self) -> Any:
        with self._lock:
            if self._env is None:
                import jinja2

                env = jinja2.Environment(
                    loader=jinja2.FileSystemLoader(str(self.folder)),
                    autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
                    undefined=jinja2.StrictUndefined,
                    trim_blocks=True,
                    lstrip_blocks=True,
                    auto_reload=False,
                )
                env.filters.update(FILTERS)
                self._env = env
            return self._env

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        return self.env.get_template(name).render(**context)

    def static(self, name: str) -> tuple[bytes, str] | None:
        """``(bytes, digest)`` of a static file (``None``: not one of :data:`STATIC_FILES`)."""
        if name not in STATIC_FILES:
            return None
        with self._lock:
            found = self._static.get(name)
            if found is None:
                data = (self.folder / "static" / name).read_bytes()
                found = (data, hashlib.sha256(data).hexdigest()[:12])
                self._static[name] = found
            return found

    def asset_url(self, root: str, name: str) -> str:
        found = self.static(name)
        version = f"?v={found[1]}" if found else ""
        return f"{root}/static/{name}{version}"


@functools.cache
def default_templates() -> Templates:
    return Templates()


__all__ = [
    "FILTERS",
    "PAGE_CSP",
    "PAGE_HEADERS",
    "STATIC_FILES",
    "Templates",
    "default_templates",
    "fmt_duration",
    "fmt_number",
    "fmt_pct",
    "fmt_signed",
    "fmt_time",
    "templates_dir",
]
