"""The report archive: a period's files under an Airflow ``ObjectStoragePath``.

``<base>/<period_label>/`` holds ``report.md``, ``report.html``, the chart PNGs and ``figures.json``
(:func:`report_files` makes that set from a rendered report). ``base`` is any fsspec URL that
``airflow.sdk.ObjectStoragePath`` opens: ``file:///srv/reports`` (the default:
``file://$AIRFLOW_HOME/reports``), ``s3://bucket/reports``, ``gs://...``, ``abfs://...`` with
``conn_id`` naming the Airflow connection that holds the credentials, ``memory://`` in tests.

**Idempotent.** Each file is read back first and written only when its bytes differ (or it is missing),
so re-running or backfilling a period whose report did not change writes nothing (file times kept, no
object-store PUTs). Files in the period's directory that the report no longer has (a chart that went
away when the data changed) are removed: the directory is exactly the report.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: a period label or file name: one path segment, no ``..``, nothing a URL or shell would read specially
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_CID_SRC = re.compile(r"""(src=["'])cid:""", re.IGNORECASE)


def default_base() -> str:
    """``file://$AIRFLOW_HOME/reports`` (``~/airflow`` when ``AIRFLOW_HOME`` is not set)."""
    from devops_automation.store import airflow_home

    return f"file://{airflow_home().resolve()}/reports"


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value) or ".." in value:
        raise ValueError(f"{what} {value!r} must be one path segment matching {_SEGMENT.pattern} (no '..')")
    return value


def report_files(*, markdown: str, html: str, charts: Mapping[str, bytes], figures: Any) -> dict[str, bytes]:
    """The archive's files of a rendered report: ``report.md``, ``report.html`` (its ``src="cid:name"``
    images pointing at the PNG beside it, so the archived page opens in a browser), each chart by its
    name, and ``figures.json`` (sorted keys, 2-space indent, UTF-8, final newline: the same figures give
    the same bytes)."""
    files = {
        "report.md": markdown.encode(),
        "report.html": _CID_SRC.sub(r"\1", html).encode(),
        "figures.json": (json.dumps(figures, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(),
    }
    for name, png in charts.items():
        if name in files:
            raise ValueError(f"chart name {name!r} is one of the report's own files")
        files[name] = bytes(png)
    return files


def _read(path: ObjectStoragePath) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def archive_report(
    base: str | ObjectStoragePath | None,
    period_label: str,
    files: Mapping[str, bytes],
    *,
    conn_id: str | None = None,
) -> list[str]:
    """Write ``files`` (name → bytes) under ``<base>/<period_label>/``; returns every file's path (a URL
    such as ``file:///…/reports/2026-W47/report.md``) in the order given.

    ``base``: a URL or an ``ObjectStoragePath`` (None: :func:`default_base`); ``conn_id`` the connection
    for a URL base (an ``ObjectStoragePath`` carries its own). Names and the label are single path
    segments (a ValueError names a bad one). Unchanged files are not rewritten; files of an earlier
    version of the report that are not in ``files`` are removed.
    """
    from airflow.sdk import ObjectStoragePath

    _segment(period_label, "period label")
    for name in files:
        _segment(name, "archive file name")
        if not isinstance(files[name], bytes | bytearray):
            raise ValueError(f"archive file {name!r} must be bytes, got {type(files[name]).__name__}")
    if base is None:
        base = default_base()
    root = base if isinstance(base, ObjectStoragePath) else ObjectStoragePath(base, conn_id=conn_id)
    folder = root / period_label
    folder.mkdir(parents=True, exist_ok=True)
    paths, written, removed = [], [], []
    for name, data in files.items():
        target = folder / name
        if _read(target) != bytes(data):
            target.write_bytes(bytes(data))
            written.append(name)
        paths.append(str(target))
    for entry in folder.iterdir():
        if entry.name not in files and entry.is_file():
            entry.unlink()
            removed.append(entry.name)
    log.info(
        "report archive %s: %d file(s), %d written (%s), %d unchanged, %d removed (%s)",
        folder,
        len(files),
        len(written),
        ", ".join(written) or "none",
        len(files) - len(written),
        len(removed),
        ", ".join(sorted(removed)) or "none",
    )
    return paths
