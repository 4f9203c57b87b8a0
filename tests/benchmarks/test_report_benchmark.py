"""benchmarks/report.py, scaled down: it runs to the end, prints its table and the summary line with the
keys issue 13 asks for, and leaves no process behind (the PostgreSQL and the build child it started); a
SIGTERM while it loads the store stops them and ends it with 128 + 15.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, _unavailable
from tests.include.scripts.process_tree import Watch, alive

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCRIPT = REPO / "benchmarks" / "report.py"
KEYS = ["repos", "build_s", "peak_rss_mb", "email_kb"]


def _need_postgres() -> None:
    from include.sandbox.servers import MissingBinary, find_pg_bin

    try:
        find_pg_bin("initdb")
    except MissingBinary as exc:
        _unavailable("PostgreSQL", exc)


def _row(lines: list[str], label: str) -> str:
    found = [line for line in lines if line.startswith(label)]
    assert len(found) == 1, (label, lines)
    return found[0]


def test_tiny_run_prints_the_summary_line_and_stops_what_it_started() -> None:
    _need_postgres()
    cmd = [sys.executable, str(SCRIPT), "--repos", "6", "--weeks", "3", "--runs-per-day", "4", "--alerts", "10"]
    with Watch() as watch:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            watch.started()  # remember what it runs meanwhile
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
        assert proc.returncode == 0, out + err
        cmds = [p.cmd for p in watch.seen.values()]
        assert any("postgres" in c for c in cmds), cmds
        # (the build child is not asserted here: a poll every 0.2 s can miss a short-lived process; its
        # table rows below say it ran, and `alive` covers everything that was seen)
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]

    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["measure", "value", "note"], out
    # 6 repos x 21 days x 4 runs a day
    assert re.search(r"\b504 runs\b", _row(lines, "synthetic CI history")), out
    # 6 projects x 21 days x 15 metrics, and a health score a project a day
    daily = _row(lines, "daily metrics")
    assert re.search(r"\b1890 rows\b", daily) and "126 health scores" in daily and "10 alert episodes" in daily, daily
    report = _row(lines, "report")
    assert "2026-W48" in report and "without: -" in report, report  # every section has data
    assert _row(lines, "  archive files identical").split()[3] == "yes", out
    assert re.search(r"\b\d+ PNGs\b", _row(lines, "charts")), out
    assert re.search(r"\b\d+ MB\b", _row(lines, "peak RSS (child)")), out  # the build ran in its child process

    last = lines[-1]
    assert re.fullmatch(r"(\w+=\S+ ?)+", last), last
    values = dict(pair.split("=") for pair in last.split())
    assert list(values) == KEYS, last
    assert values["repos"] == "6"
    assert 0 < float(values["build_s"]) < 60
    assert 50 < float(values["peak_rss_mb"]) < 4096
    email_kb = int(values["email_kb"])
    assert 10 < email_kb < 1024, last  # the charts are inline: tens of KB at least, below the goal
    assert re.search(rf"^e-mail\s+{email_kb} KB", _row(lines, "e-mail")), out


def test_sigterm_mid_run_stops_postgresql() -> None:
    _need_postgres()
    cmd = [sys.executable, str(SCRIPT)]  # the full store: loading it takes minutes
    with Watch() as watch:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def postgres_running() -> bool:
            return any("postgres" in p.cmd for p in watch.started().values())

        deadline = time.monotonic() + 120
        while not postgres_running() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(3)  # loading the store now
        watch.started()
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 128 + signal.SIGTERM, out
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]
    assert "repos=" not in out
