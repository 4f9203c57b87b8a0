"""benchmarks/triage_latency.py leaves nothing behind when SIGTERM ends it mid-run (issue 10).

It is started for real (``airflow standalone`` with all its components, the sandbox, Dovecot); once
Airflow is healthy and a task process runs (in Airflow's session but a process group of its own), the
script gets SIGTERM. Everything it started must then be gone: no process of those seen before the
signal (found through this test's process tree, this test being a subreaper so that daemons stay in
it), nothing in their sessions, nothing on the ports it used, and its temporary home removed.
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
from tests.include.scripts.process_tree import (
    Watch,
    alive,
    in_sessions,
    port_free,
    port_open,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.imap]


def test_sigterm_mid_run_stops_airflow_sandbox_and_dovecot(tmp_path: Path) -> None:
    from include.sandbox.servers import DovecotServer, MissingBinary

    if not DovecotServer().binary:  # the benchmark needs it
        _unavailable("Dovecot IMAP", MissingBinary("dovecot", "dovecot-imapd"))
    out = tmp_path / "out.txt"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "triage_latency.py"),
        "--emails",
        "60",
        "--interval",
        "0.5",
        "--timeout",
        "120",
    ]
    with Watch() as watch, open(out, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        text = wait_for(
            "the ports line",
            lambda: out.read_text() if "logs in" in out.read_text() or proc.poll() is not None else "",
            30,
        )
        m = re.search(r"Airflow 127\.0\.0\.1:(\d+), sandbox :(\d+), IMAP :(\d+); logs in (\S+)", text)
        assert m, text
        ports, home = [int(x) for x in m.groups()[:3]], Path(m.group(4)).parent
        wait_for("Airflow healthy", lambda: "Airflow healthy" in out.read_text() or proc.poll() is not None, 100)
        assert proc.poll() is None, out.read_text()

        def airflow_session() -> list:
            procs = watch.started().values()
            standalone = [p for p in procs if p.cmd.endswith("airflow standalone")]
            return [p for p in procs if standalone and p.sid == standalone[0].pid]

        # a task process: in Airflow's session, in a process group of its own (killpg of Airflow's misses it)
        wait_for("a task process", lambda: any(p.pgrp != p.sid for p in airflow_session()), 30, 0.1)
        started = watch.started()
        cmds = [p.cmd for p in started.values()]
        for part in (
            "airflow standalone",
            "airflow scheduler",
            "airflow triggerer",
            "airflow dag-processor",
            "airflow api_server",
            "LocalExecutor",
            "-m include.sandbox",
            "dovecot -c",
            "dovecot/",
        ):
            assert any(part in c for c in cmds), f"{part!r} not running before the signal: {cmds}"
        assert all(port_open(p) for p in ports)
        assert home.is_dir()

        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
        took = time.monotonic() - t0
        left = alive(started) + list(watch.started().values())
        assert not left, f"left behind: {[p.cmd for p in left]}"
        assert not in_sessions({p.sid for p in started.values()} | {proc.pid}), (
            "a session it started still has processes"
        )
        assert all(port_free(p) for p in ports), [(p, port_free(p)) for p in ports]
        assert not home.exists()
        text = out.read_text()
        assert code == 128 + signal.SIGTERM, text  # it handled the signal (not killed by it)
        assert "triage_latency: SIGTERM: stopping every process it started" in text
    print(f"{len(started)} processes before SIGTERM, all gone {took:.1f}s after it")
