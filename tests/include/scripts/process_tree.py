"""What a script left behind: every process it started, found through the test process's own tree.

The test process becomes a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``) while it watches a
script, so a daemon the script starts (Dovecot and PostgreSQL fork and ``setsid`` away from their
parent) is re-parented to the test, not to init: everything the script started, at any depth, is then
a descendant of the test process. :meth:`Watch.started` is what appeared since the watch began.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import time
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgrp: int
    sid: int
    state: str
    start: int
    cmd: str

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.start


def read(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    f = data[data.rindex(b")") + 2 :].split()
    return Proc(pid, int(f[1]), int(f[2]), int(f[3]), f[0].decode(), int(f[19]), cmd)


def table() -> dict[int, Proc]:
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (p := read(int(name))) is not None:
            procs[p.pid] = p
    return procs


def descendants(root: int | None = None) -> dict[tuple[int, int], Proc]:
    """Live (non-zombie) descendants of ``root`` (default: this process), by (pid, start time)."""
    root = os.getpid() if root is None else root
    procs = table()
    children: dict[int, list[Proc]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p)
    found: dict[tuple[int, int], Proc] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child.key not in found:
                found[child.key] = child
                todo.append(child.pid)
    return {k: p for k, p in found.items() if p.state != "Z"}


def alive(procs: dict[tuple[int, int], Proc]) -> list[Proc]:
    """Those of ``procs`` still running (same pid and start time, not a zombie)."""
    out = []
    for pid, start in procs:
        now = read(pid)
        if now is not None and now.start == start and now.state != "Z":
            out.append(now)
    return out


def in_sessions(sids: set[int]) -> list[Proc]:
    return [p for p in table().values() if p.sid in sids and p.state != "Z"]


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (connection refused, and a listener could bind it)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Watch:
    """Inside the ``with``: this process is a subreaper; :meth:`started` lists the processes since."""

    def __enter__(self) -> Watch:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
        self._libc = libc
        self.before = set(descendants())
        self.seen: dict[tuple[int, int], Proc] = {}
        return self

    def started(self) -> dict[tuple[int, int], Proc]:
        """Processes started since the watch began that are running now (also remembered in ``seen``)."""
        now = {k: p for k, p in descendants().items() if k not in self.before}
        self.seen.update(now)
        return now

    def __exit__(self, *exc: object) -> None:
        try:
            # a failed test must not leave its processes either: SIGKILL what is left, sessions included
            left = alive(self.seen) + list(self.started().values())
            sids = {p.sid for p in self.seen.values()} - {os.getsid(0)}
            left += in_sessions(sids)
            for p in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
            time.sleep(0.2 if left else 0)
            self.reap()
        finally:
            self._libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)

    def reap(self) -> None:
        """Collect the zombies re-parented to this process (only processes of this watch)."""
        for pid, _ in self.seen:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


def wait_for(what: str, check, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")
