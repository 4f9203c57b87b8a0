"""include/sandbox/processes.py, for real: a guarded script ends every process it started, however it ends.

The script (written below) starts, through one ``ProcessGuard``: a shell whose two ``sleep`` jobs have
process groups of their own (job control, like Airflow's task processes); a shell that exits at once
leaving a ``sleep`` in its session; a shell whose ``sleep`` ignores SIGTERM (needs the SIGKILL after the
grace period); and a real Dovecot (a daemon in a session of its own). Then it is ended by SIGTERM,
SIGINT, SIGHUP, two SIGTERMs in a row, an exception or a plain return.
"""

from __future__ import annotations

import os
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

pytestmark = pytest.mark.imap

SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from include.sandbox.processes import ProcessGuard
from include.sandbox.servers import DovecotServer

mode, go = sys.argv[1], Path(sys.argv[2])
with ProcessGuard("guarded", grace=1) as guard:
    guard.popen(["bash", "-c", "set -m; sleep 300 & sleep 301 & wait"])
    guard.popen(["bash", "-c", "set -m; sleep 302 & exit 0"])
    guard.popen(["bash", "-c", "trap '' TERM; sleep 303 & wait"])
    dovecot = guard.start(DovecotServer())
    guard.run(["true"], check=True)
    print("ready", dovecot.port, flush=True)
    while not go.exists():
        time.sleep(0.05)
    if mode == "raise":
        raise RuntimeError("boom")
print("returned", flush=True)
"""

ENDINGS = {  # how the script is ended -> its exit code
    "SIGTERM": 128 + signal.SIGTERM,
    "SIGINT": 128 + signal.SIGINT,
    "SIGHUP": 128 + signal.SIGHUP,
    "SIGTERM twice": 128 + signal.SIGTERM,
    "raise": 1,
    "return": 0,
}


@pytest.fixture(scope="module")
def dovecot_binary() -> None:
    from include.sandbox.servers import DovecotServer, MissingBinary

    if not DovecotServer().binary:
        _unavailable("Dovecot IMAP", MissingBinary("dovecot", "dovecot-imapd"))


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_guard_ends_every_process_it_started(ending: str, tmp_path: Path, dovecot_binary: None) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(SCRIPT.format(repo=str(REPO)))
    out = tmp_path / "out.txt"
    go = tmp_path / "go"
    mode = ending if ending in ("raise", "return") else "wait"
    with Watch() as watch, open(out, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(script), mode, str(go)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for("the guarded script's children", lambda: "ready" in out.read_text() or proc.poll() is not None, 30)
        assert proc.poll() is None, out.read_text()
        port = int(out.read_text().split("ready ")[1].split()[0])

        def everything_up() -> bool:
            cmds = [p.cmd for p in watch.started().values()]
            return sum(c.startswith("sleep 30") for c in cmds) == 4 and any("dovecot -c" in c for c in cmds)

        wait_for("sleeps and dovecot running", everything_up, 10)
        started = watch.started()
        cmds = {p.cmd: p for p in started.values()}
        # not vacuous: the processes that escape a plain killpg of the child are all there
        assert cmds["sleep 300"].pgrp != cmds["sleep 300"].sid and cmds["sleep 301"].pgrp != cmds["sleep 300"].pgrp
        assert cmds["sleep 302"].ppid == os.getpid(), "its shell exited: it was re-parented to this test (a subreaper)"
        dovecot = [p for p in started.values() if "dovecot -c" in p.cmd]
        assert dovecot and dovecot[0].sid == dovecot[0].pid, "dovecot is a daemon in a session of its own"
        assert any(p.cmd.startswith("dovecot/") and p.sid == dovecot[0].pid for p in started.values())
        assert port_open(port)

        t0 = time.monotonic()
        if ending in ("raise", "return"):
            go.touch()
        else:
            os.kill(proc.pid, getattr(signal, ending.split()[0]))
            if ending.endswith("twice"):
                time.sleep(0.05)
                os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - t0
        text = out.read_text()
        assert code == ENDINGS[ending], text
        if ending.startswith("SIG"):
            assert f"guarded: {ending.split()[0]}: stopping every process it started" in text
        assert ("returned" in text) == (ending == "return")

        left = alive(started) + list(watch.started().values())
        assert not left, f"left behind: {[p.cmd for p in left]}"
        assert not in_sessions({p.sid for p in started.values()}), "a session the script started still has processes"
        assert port_free(port)
        assert took < 10, f"stopping took {took:.1f}s"
