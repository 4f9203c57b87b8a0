"""benchmarks/metrics.py, scaled down: it runs to the end, prints its table and the summary line with
the keys issue 12 asks for, and leaves no process behind (the sandbox and PostgreSQL it started); a
SIGTERM while the pools collect stops both and ends it with 128 + 15.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, _unavailable
from tests.include.scripts.process_tree import Watch, alive

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SCRIPT = REPO / "benchmarks" / "metrics.py"
KEYS = ["projects", "calls_per_project", "speedup", "rerun_writes"]


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


def _api_calls(line: str) -> dict[str, int]:
    """``github 81 (3 x 404); prometheus 18; sonarqube 12; ...`` -> per system."""
    return {name: int(n) for name, n in re.findall(r"\b(github|prometheus|sonarqube) (\d+)", line)}


def test_tiny_run_prints_the_summary_line_and_stops_what_it_started() -> None:
    _need_postgres()
    projects = 8
    cmd = [sys.executable, str(SCRIPT), "--projects", str(projects), "--items", "30"]
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
        assert any("-m include.sandbox" in c for c in cmds), cmds
        assert any("postgres" in c for c in cmds), cmds
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]

    assert "problem:" not in err, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["measure", "value", "note"], out
    pooled = _api_calls(_row(lines, "with the pools: API calls"))
    serial = _api_calls(_row(lines, "one at a time: API calls"))
    again = _row(lines, "again, same day: API calls")
    assert pooled == serial, (pooled, serial)  # the same requests either way
    assert pooled["sonarqube"] == 2 * projects  # measures + quality gate per project
    assert pooled["github"] >= 10 * projects  # repository, lists, pages, alerts, protection per repository
    assert re.search(r"github \d+ \((\d+) x 304", again), again  # the ETag cache answers the second time
    first = re.search(r"rows\s+(\d+) / (\d+)", _row(lines, "with the pools: rows"))
    second = re.search(r"rows\s+(\d+) / (\d+)", _row(lines, "again, same day: rows"))
    assert first and second, out
    assert int(first[1]) == int(first[2]) > 0  # a first collection: every figure is new
    assert (int(second[1]), int(second[2])) == (int(first[1]), 0)  # the same figures, nothing written
    assert re.search(r"same figures both ways\s+yes\s", out), out
    assert "at most" in _row(lines, "speedup with the pools"), out

    last = lines[-1]
    assert re.fullmatch(r"(\w+=\S+ ?)+", last), last
    values = dict(pair.split("=") for pair in last.split())
    assert list(values) == KEYS, last
    assert int(values["projects"]) == projects
    assert float(values["calls_per_project"]) == pytest.approx(sum(pooled.values()) / projects, abs=0.01)
    assert 12 <= float(values["calls_per_project"]) <= 40
    assert float(values["speedup"]) > 1.0  # ten threads beat one, even for eight projects
    assert int(values["rerun_writes"]) == 0  # the goal: the same day again writes nothing


def test_sigterm_while_the_pools_collect_stops_the_sandbox_and_postgresql(tmp_path: Path) -> None:
    _need_postgres()
    log = tmp_path / "stderr.log"
    cmd = [sys.executable, str(SCRIPT), "--projects", "200", "--items", "30"]  # busy for a minute or more
    with Watch() as watch, open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
        deadline = time.monotonic() + 180
        while "with the pools: collecting" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            watch.started()
            time.sleep(0.2)
        assert "with the pools: collecting" in log.read_text(), log.read_text()
        time.sleep(2)  # the threads are collecting now
        cmds = [p.cmd for p in watch.started().values()]
        assert any("-m include.sandbox" in c for c in cmds), cmds
        assert any("postgres" in c for c in cmds), cmds
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 128 + signal.SIGTERM, out + log.read_text()
        assert not alive(watch.seen) and not watch.started(), [p.cmd for p in alive(watch.seen)]
    assert "projects=" not in out
    assert "SIGTERM: stopping every process it started" in log.read_text()
