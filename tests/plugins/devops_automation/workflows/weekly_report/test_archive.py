"""The report archive (ObjectStoragePath: a local file:// base, memory://) and the ``reports`` row
(SQLite and PostgreSQL): idempotent, a re-run writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow.sdk import ObjectStoragePath

from devops_automation.store import ResultsStore, schema
from devops_automation.workflows.weekly_report.archive import archive_report, default_base, report_files
from devops_automation.workflows.weekly_report.store import record_report

PNG = b"\x89PNG\r\n\x1a\n" + b"chart-bytes"
FILES = {
    "report.md": b"# Week 47\n",
    "report.html": b'<img src="chart.png">',
    "chart.png": PNG,
    "figures.json": b'{"a": 1}\n',
}
OLD = 1_600_000_000_000_000_000  # ns: a time no write of this test can produce


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_a_local_archive_holds_the_files_and_a_rerun_rewrites_nothing(tmp_path: Path) -> None:
    base = f"file://{tmp_path}/reports"
    paths = archive_report(base, "2026-W47", FILES)
    folder = tmp_path / "reports" / "2026-W47"
    assert paths == [f"file://{folder}/{name}" for name in FILES]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == FILES
    for p in folder.iterdir():
        os.utime(p, ns=(OLD, OLD))
    assert archive_report(base, "2026-W47", dict(FILES)) == paths
    assert mtimes(folder) == dict.fromkeys(FILES, OLD)  # compared, not rewritten
    # a changed report: only what changed is written, what went away is removed
    changed = {**FILES, "report.md": b"# Week 47 (rebuilt)\n", "other.png": PNG}
    del changed["chart.png"]
    archive_report(base, "2026-W47", changed)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == changed
    times = mtimes(folder)
    assert times["report.html"] == times["figures.json"] == OLD
    assert times["report.md"] != OLD and times["other.png"] != OLD


def test_the_default_base_is_airflow_home_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert default_base() == f"file://{tmp_path.resolve()}/reports"
    (path, *_) = archive_report(None, "2026-11", FILES)
    assert path == f"file://{tmp_path.resolve()}/reports/2026-11/report.md"
    assert (tmp_path / "reports" / "2026-11" / "chart.png").read_bytes() == PNG


def test_a_memory_url_and_an_object_storage_path_work_too() -> None:
    bucket = f"memory://reports-{uuid.uuid4().hex}"
    paths = archive_report(bucket, "2026-W47", FILES)
    assert paths == [f"{bucket}/2026-W47/{name}" for name in FILES]
    assert [ObjectStoragePath(p).read_bytes() for p in paths] == list(FILES.values())
    root = ObjectStoragePath(f"{bucket}/team-a")
    (path,) = archive_report(root, "2026-W47", {"report.md": b"team"})
    assert ObjectStoragePath(path).read_bytes() == b"team"
    assert sorted(p.name for p in (root / "2026-W47").iterdir()) == ["report.md"]


@pytest.mark.parametrize(
    ("label", "files", "message"),
    [
        ("../etc", FILES, r"period label '../etc' must be one path segment"),
        ("2026-W47", {"a/b.png": PNG}, r"archive file name 'a/b.png' must be one path segment"),
        ("2026-W47", {"report.md": "text"}, r"archive file 'report.md' must be bytes, got str"),
    ],
)
def test_bad_labels_names_and_contents_are_refused_before_anything_is_written(
    tmp_path: Path, label: str, files: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        archive_report(f"file://{tmp_path}", label, files)
    assert list(tmp_path.iterdir()) == []


def test_report_files_point_the_html_at_the_pngs_and_write_figures_deterministically() -> None:
    html = '<img src="cid:spark-a.png" alt="a"><img SRC=\'cid:chart-b.png\'><p>cid: in text stays</p>'
    files = report_files(
        markdown="# R\n", html=html, charts={"spark-a.png": PNG, "chart-b.png": PNG}, figures={"b": [1, 2], "a": "é"}
    )
    assert list(files) == ["report.md", "report.html", "figures.json", "spark-a.png", "chart-b.png"]
    assert files["report.html"] == b'<img src="spark-a.png" alt="a"><img SRC=\'chart-b.png\'><p>cid: in text stays</p>'
    assert files["figures.json"] == '{\n  "a": "é",\n  "b": [\n    1,\n    2\n  ]\n}\n'.encode()
    assert json.loads(files["figures.json"]) == {"a": "é", "b": [1, 2]}
    with pytest.raises(ValueError, match=r"chart name 'report\.md' is one of the report's own files"):
        report_files(markdown="", html="", charts={"report.md": PNG}, figures={})


def rows(store: ResultsStore) -> list[dict]:
    t = schema.reports
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def test_record_report_upserts_the_row_once_per_kind_and_period(results_store: ResultsStore) -> None:
    t0 = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
    args = {
        "kind": "weekly",
        "period_start": dt.date(2026, 11, 16),
        "period_end": dt.date(2026, 11, 23),
        "markdown": "# Week 47\n",
        "html": "<p>Week 47</p>",
        "summary": {"title": "Week 47", "movers": [("a", 1.5)]},
        "archive_path": "file:///srv/reports/2026-W47",
    }
    assert record_report(results_store, **args, at=t0) is True
    (row,) = rows(results_store)
    assert (row["kind"], row["period_start"], row["period_end"], row["markdown"], row["html"]) == (
        "weekly",
        dt.date(2026, 11, 16),
        dt.date(2026, 11, 23),
        "# Week 47\n",
        "<p>Week 47</p>",
    )
    assert (row["summary"], row["archive_path"]) == ({"title": "Week 47", "movers": [["a", 1.5]]}, args["archive_path"])
    assert row["created_at"] == row["updated_at"] == t0
    # a re-record (a re-run or a backfill of an unchanged week) changes nothing
    t1 = t0 + dt.timedelta(days=7)
    assert record_report(results_store, **args, at=t1) is False
    assert rows(results_store) == [row]
    # a datetime period start (local midnight) is its date: the same row
    start = dt.datetime(2026, 11, 16, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert record_report(results_store, **{**args, "period_start": start}, at=t1) is False
    # a rebuilt week whose data changed: the row is updated, created_at kept
    assert record_report(results_store, **{**args, "markdown": "# Week 47 (late data)\n"}, at=t1) is True
    (updated,) = rows(results_store)
    assert (updated["id"], updated["markdown"], updated["created_at"], updated["updated_at"]) == (
        row["id"],
        "# Week 47 (late data)\n",
        t0,
        t1,
    )
    # another kind (a team's report) or period is another row
    assert record_report(results_store, **{**args, "kind": "weekly:platform"}, at=t1) is True
    assert record_report(results_store, **{**args, "kind": "monthly", "period_start": dt.date(2026, 11, 1)}, at=t1)
    assert [(r["kind"], r["period_start"]) for r in rows(results_store)] == [
        ("weekly", dt.date(2026, 11, 16)),
        ("weekly:platform", dt.date(2026, 11, 16)),
        ("monthly", dt.date(2026, 11, 1)),
    ]


def test_record_report_refuses_what_the_table_cannot_hold(results_store: ResultsStore) -> None:
    at = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    common = {"markdown": None, "html": None, "summary": None, "archive_path": None}
    with pytest.raises(ValueError, match="report kind must be 1 to 32 characters"):
        record_report(
            results_store,
            kind="w" * 33,
            period_start=dt.date(2026, 11, 16),
            period_end=dt.date(2026, 11, 23),
            **common,
            at=at,
        )
    with pytest.raises(ValueError, match="period_end 2026-11-09 is before period_start 2026-11-16"):
        record_report(
            results_store,
            kind="weekly",
            period_start=dt.date(2026, 11, 16),
            period_end=dt.date(2026, 11, 9),
            **common,
            at=at,
        )
    with pytest.raises(ValueError, match="at must be an aware datetime"):
        record_report(
            results_store,
            kind="weekly",
            period_start=dt.date(2026, 11, 16),
            period_end=dt.date(2026, 11, 23),
            **common,
            at=at.replace(tzinfo=None),
        )
    assert rows(results_store) == []
