"""benchmarks/analytics.py, scaled down: it runs to the end, prints its table and the summary line with
the keys issue 11 asks for, and leaves no process behind (the sandbox and PostgreSQL it started).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, _unavailable
from tests.include.scripts.process_tree import Watch, alive

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

KEYS = ["runs", "calls_per_attempt", "recollect_cost_ratio", "analytics_1m_s"]


def test_tiny_run_prints_the_summary_line_and_stops_what_it_started() -> None:
    from include.sandbox.servers import MissingBinary, find_pg_bin

    try:
        find_pg_bin("initdb")
    except MissingBinary as exc:
        _unavailable("PostgreSQL", exc)
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "analytics.py"),
        *("--repos", "2", "--days", "9", "--runs-per-day", "6"),
        *("--analytics-runs", "3000", "--analytics-repos", "10", "--analytics-days", "14", "--dense-days", "7"),
    ]
    with Watch() as watch:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            watch.started()  # remember what it runs meanwhile
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
        assert proc.returncode == 0, out
        cmds = [p.cmd for p in watch.seen.values()]
        assert any("-m include.sandbox" in c for c in cmds), cmds
        assert any("postgres" in c for c in cmds), cmds
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]

    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["measure", "value", "note"], out
    assert any(line.startswith("re-collection cost / first") for line in lines), out
    assert any(line.startswith("window_summary(group_by=repo)") for line in lines), out
    assert any(line.startswith("  the same runs over 7 d") for line in lines), out
    last = lines[-1]
    assert re.fullmatch(r"(\w+=\S+ ?)+", last), last
    values = dict(pair.split("=") for pair in last.split())
    assert list(values) == KEYS, last
    assert int(values["runs"]) > 0
    assert 1.0 <= float(values["calls_per_attempt"]) < 2.0  # a jobs call per attempt, few more
    assert float(values["recollect_cost_ratio"]) <= 0.05  # the goal: looking again is nearly free
    assert float(values["analytics_1m_s"]) > 0


def test_sigterm_mid_run_stops_the_sandbox_and_postgresql() -> None:
    import os
    import signal

    from include.sandbox.servers import MissingBinary, find_pg_bin

    try:
        find_pg_bin("initdb")
    except MissingBinary as exc:
        _unavailable("PostgreSQL", exc)
    cmd = [sys.executable, str(REPO / "benchmarks" / "analytics.py"), "--repos", "40"]  # busy for a minute
    with Watch() as watch:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def both_running() -> bool:
            cmds = [p.cmd for p in watch.started().values()]
            return any("-m include.sandbox" in c for c in cmds) and any("postgres" in c for c in cmds)

        deadline = time.monotonic() + 120
        while not both_running() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(2)  # collecting now
        watch.started()
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 128 + signal.SIGTERM, out
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]
    assert "runs=" not in out
