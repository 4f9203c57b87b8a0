"""benchmarks/dashboard.py, scaled down: it loads its PostgreSQL store, starts the real API server with the
plugin, measures, prints its table and the summary line with the keys issue 14 asks for, and leaves no
process behind (PostgreSQL, the API server and its workers)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, _unavailable
from tests.include.scripts.process_tree import Watch, alive

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCRIPT = REPO / "benchmarks" / "dashboard.py"
KEYS = ["runs", "api_p95_ms", "page_p95_ms", "event_lag_s"]


def _row(lines: list[str], label: str) -> str:
    found = [line for line in lines if line.startswith(label)]
    assert len(found) == 1, (label, lines)
    return found[0]


def test_tiny_run_prints_the_summary_line_and_stops_what_it_started() -> None:
    from include.sandbox.servers import MissingBinary, find_pg_bin

    try:
        find_pg_bin("initdb")
    except MissingBinary as exc:
        _unavailable("PostgreSQL", exc)
    cmd = [sys.executable, str(SCRIPT), "--runs", "3000", "--analyses", "600", "--repos", "10", "--projects", "5"]
    cmd += ["--requests", "120", "--clients", "4", "--events", "3", "--workers", "1"]
    with Watch() as watch:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 400
        while proc.poll() is None and time.monotonic() < deadline:
            watch.started()
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        assert proc.returncode == 0, out + err[-4000:]
        cmds = [p.cmd for p in watch.seen.values()]
        assert any("postgres" in c for c in cmds), cmds
        assert any("api-server" in c or "api_server" in c for c in cmds), cmds
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]

    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["measure", "value", "note"], out
    history = _row(lines, "synthetic CI history")
    assert history.split()[3:5] == ["3000", "runs"] and "600 failure analyses" in history, history
    assert re.search(r"\b300 scores\b", _row(lines, "health, alerts, reports")), out  # 5 projects x 60 days
    assert "1 workers" in _row(lines, "airflow api-server")
    for label in ("  api failures/jobs/{id}", "  page overview", "  page dag-run view", "  chart ci charts"):
        assert re.search(r"\d+ ms\s+p95 of \d+; p50 \d+ ms; cold \d+ ms", _row(lines, label)), label
    assert "max of 3 failures" in _row(lines, "event lag") and "never arrived" not in out

    last = lines[-1]
    assert re.fullmatch(r"(\w+=\S+ ?)+", last), last
    values = dict(pair.split("=") for pair in last.split())
    assert list(values) == KEYS, last
    assert values["runs"] == "3000"
    assert 0 < int(values["api_p95_ms"]) < 5000 and 0 < int(values["page_p95_ms"]) < 5000
    assert 0 < float(values["event_lag_s"]) < 2.0  # the server polls every 0.5 s
