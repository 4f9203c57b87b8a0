"""Archived report files (the folder ``reports.archive_path`` names), read in the API layer.

``weekly_report`` archives each period under an ``ObjectStoragePath`` (``file://`` by default, or
``s3://``, ``gs://``, ... with a connection): ``report.md``, ``report.html`` (its images beside it),
the chart PNGs, ``figures.json``, ``report.txt``. They are read back here with
``airflow.sdk.ObjectStoragePath`` too (fsspec), whatever the scheme; ``file://`` needs no connection. The
row does not say which connection the archive used (the DAG's ``archive_conn_id`` Param): set
``DEVOPS_REPORTS_ARCHIVE_CONN_ID`` in the API server's environment when it needs one.
"""

from __future__ import annotations

import mimetypes
import os
import re

from devops_automation.webui.queries import archive_name

CONN_ENV = "DEVOPS_REPORTS_ARCHIVE_CONN_ID"
#: Largest archive file the API sends (the report's e-mail-sized HTML and PNGs are far below it).
MAX_BYTES = 20 * 1024 * 1024
_CID_SRC = re.compile(r"""(src=["'])cid:""", re.IGNORECASE)
_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


class ArchiveTooLarge(ValueError):
    pass


def media_type(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def read_file(folder: str, name: str, conn_id: str | None = None) -> bytes | None:
    """The bytes of ``<folder>/<name>`` (``None`` when the file is not there); ``name`` is one file name."""
    from airflow.sdk import ObjectStoragePath

    archive_name(name)
    conn_id = conn_id if conn_id is not None else (os.environ.get(CONN_ENV) or None)
    path = ObjectStoragePath(folder, conn_id=conn_id) / name
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ArchiveTooLarge(f"{name} is larger than {MAX_BYTES} bytes")
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def html_from_row(html: str) -> str:
    """The HTML stored in the ``reports`` row refers to its charts as e-mail attachments (``cid:``); the
    archive's copy refers to the files beside it, as this gives (what ``weekly_report``'s archive writes)."""
    return _CID_SRC.sub(r"\1", html)
