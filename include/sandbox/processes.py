"""Child processes that never outlive the script that started them (the demo and the benchmarks).

    with ProcessGuard("triage_latency") as guard:      # SIGTERM, SIGINT, SIGHUP now raise Terminated
        guard.run([airflow, "db", "migrate"], env=env, check=True)      # subprocess.run, own session
        guard.popen([airflow, "standalone"], env=env, stdout=log)      # own session, ended on exit
        dovecot = guard.start(DovecotServer())                         # its stop() is called on exit

Leaving the block in any way (return, exception, SIGTERM/SIGINT/SIGHUP, or interpreter exit: an
``atexit`` backstop) ends every session started through the guard and stops every server it started.

A child's *session*, not only its process group, is ended: ``airflow standalone`` runs the scheduler,
triggerer, dag-processor, api-server and LocalExecutor workers in its session, but each task process
makes its own process group (``setpgid``), so ``killpg`` on the leader's group misses it. PostgreSQL's
children and daemons such as Dovecot call ``setsid`` themselves; :func:`terminate` also follows the
parent→child links, and the servers' ``stop()`` find their daemon by the data or config directory on
its command line (:func:`pids_with_arg`). Linux only (``/proc``); elsewhere only the process groups
are signalled.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

logger = logging.getLogger(__name__)


class Terminated(SystemExit):
    """Raised in the main thread when a guarded script gets SIGTERM, SIGINT or SIGHUP (exit code 128+n)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.signame = signal.Signals(signum).name


class Stat(NamedTuple):
    state: str
    ppid: int
    pgrp: int
    sid: int
    start: int  # clock ticks since boot: tells a process from a later one with the same pid


def stat(pid: int) -> Stat | None:
    """``/proc/<pid>/stat`` of a process, or None when there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return Stat(fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))


def process_table() -> dict[int, Stat]:
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := stat(int(name))) is not None:
            table[int(name)] = st
    return table


class Root(NamedTuple):
    """A process started by us (normally a session leader); ``start`` guards against pid reuse."""

    pid: int
    start: int | None = None

    @classmethod
    def of(cls, pid: int) -> Root:
        st = stat(pid)
        return cls(pid, st.start if st else None)


def family(roots: Iterable[Root], table: dict[int, Stat] | None = None) -> dict[int, int]:
    """Live processes (pid -> start) of the roots: themselves, their sessions and groups, and descendants.

    A root whose pid now belongs to a later process is skipped (its session was then empty: the kernel
    does not reuse a pid still in use as a session or group id). Zombies are left out: they are dead.
    """
    if table is None:
        table = process_table() if os.path.isdir("/proc/self") else {}
    ids = set()
    for root in roots:
        st = table.get(root.pid)
        if st is not None and root.start is not None and st.start != root.start:
            continue
        ids.add(root.pid)
    found = {pid for pid, st in table.items() if pid in ids or st.sid in ids or st.pgrp in ids}
    children: dict[int, list[int]] = {}
    for pid, st in table.items():
        children.setdefault(st.ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {pid: table[pid].start for pid in found if table[pid].state != "Z"}


def _signal(procs: dict[int, int], sig: int) -> None:
    for pid, start in procs.items():
        st = stat(pid)
        if st is None or st.start != start or st.state == "Z":
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _alive(procs: dict[int, int]) -> dict[int, int]:
    out = {}
    for pid, start in procs.items():
        st = stat(pid)
        if st is not None and st.start == start and st.state != "Z":
            out[pid] = start
    return out


#: seconds after SIGTERM before an idle Airflow LocalExecutor worker is killed (see :func:`_idle_airflow_worker`)
IDLE_WORKER_WAIT = 0.5


def _idle_airflow_worker(pid: int) -> bool:
    """Whether ``pid`` is an idle LocalExecutor worker of Airflow's scheduler (process title ``airflow worker
    -- LocalExecutor: <idle>``): it runs no task, and nothing but SIGKILL ends it when its scheduler does not.

    The scheduler forks its workers after installing its SIGTERM handler, which returns at once in any
    process but the scheduler: a worker ends only on the executor's poison pill. When SIGTERM reaches the
    scheduler while it is still forking them (a demo stopped mid-startup), the worker being forked is not
    yet registered, gets no pill, and the scheduler's own exit waits for it (multiprocessing joins its
    children at exit) until the SIGKILL after the grace period.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").strip()
    except OSError:
        return False
    return cmd.startswith(b"airflow worker -- LocalExecutor") and cmd.endswith(b"<idle>")


def terminate(roots: Iterable[Root], grace: float = 5.0) -> None:
    """End the roots' :func:`family`: SIGTERM, up to ``grace`` seconds, then SIGKILL; waits until gone.

    Idle Airflow LocalExecutor workers, which ignore SIGTERM, get SIGKILL after ``IDLE_WORKER_WAIT`` seconds
    (time to take the scheduler's poison pill) instead of holding their scheduler until the grace is over.
    """
    roots = list(roots)
    if not roots:
        return
    if not os.path.isdir("/proc/self"):  # no /proc: the process groups are all we can reach
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for root in roots:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(root.pid, sig)
            time.sleep(grace if sig == signal.SIGTERM else 0)
        return
    known = family(roots)
    _signal(known, signal.SIGTERM)
    told = set(known.items())
    t0 = time.monotonic()
    deadline = t0 + grace
    while True:
        known = _alive(known) | family(roots)  # children forked meanwhile, even if their parent is gone
        if not known:
            return
        if time.monotonic() >= deadline:
            break
        if time.monotonic() - t0 >= IDLE_WORKER_WAIT:
            _signal({pid: start for pid, start in known.items() if _idle_airflow_worker(pid)}, signal.SIGKILL)
        new = {pid: start for pid, start in known.items() if (pid, start) not in told}
        _signal(new, signal.SIGTERM)  # once each: a second SIGTERM makes some servers skip their clean shutdown
        told |= set(new.items())
        time.sleep(0.1)
    deadline = time.monotonic() + 10
    while known and time.monotonic() < deadline:
        _signal(known, signal.SIGKILL)
        time.sleep(0.05)
        known = _alive(known) | family(roots)
    if known:
        print(f"processes: still alive after SIGKILL: {sorted(known)}", file=sys.stderr)


def pids_with_arg(arg: str) -> list[int]:
    """Processes whose command line has ``arg`` as one of its arguments (e.g. a config file path)."""
    found = []
    want = arg.encode()
    for name in os.listdir("/proc") if os.path.isdir("/proc/self") else ():
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if want in f.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            pass
    return found


def _run_kwargs(kwargs: dict[str, Any], input: Any, capture_output: bool) -> dict[str, Any]:
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    return kwargs


def run(
    args: Sequence[str] | str,
    *,
    check: bool = False,
    timeout: float | None = None,
    input: Any = None,
    capture_output: bool = False,
    grace: float = 5.0,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a new session; on any exception (a signal, a timeout) the session is ended."""
    kwargs = _run_kwargs(kwargs, input, capture_output)
    with subprocess.Popen(args, start_new_session=True, **kwargs) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except BaseException:
            terminate([Root(proc.pid, None)], grace)
            proc.wait()
            raise
    if check and proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, args, out, err)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


class Server(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


class ProcessGuard:
    """Starts children in their own sessions; on leaving the ``with`` block ends all of them.

    ``name`` prefixes the one line printed (to stderr) when a signal arrives. ``grace`` is how long the
    children get between SIGTERM and SIGKILL. A second signal during the clean-up is ignored.
    """

    def __init__(self, name: str | None = None, grace: float = 5.0, signals: Iterable[int] = SIGNALS) -> None:
        self.name = name or os.path.basename(sys.argv[0] or "python")
        self.grace = grace
        self.signals = tuple(signals)
        self.roots: list[Root] = []
        self.procs: list[subprocess.Popen] = []
        self.cleanups: list[Callable[[], object]] = []
        self._previous: dict[int, Any] = {}
        self._defer = 0
        self._pending: int | None = None
        self._closing = False
        self._closed = False

    # ---- signals ---------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._closing:
            return
        if self._defer:
            self._pending = signum
            return
        self._raise(signum)

    def _raise(self, signum: int) -> None:
        with contextlib.suppress(OSError):  # not print(): the main thread may be inside a write to sys.stderr
            os.write(2, f"{self.name}: {signal.Signals(signum).name}: stopping every process it started\n".encode())
        raise Terminated(signum)

    @contextlib.contextmanager
    def _critical(self) -> Iterator[None]:
        """A signal here is acted on at the end: a child is never started without being registered."""
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
            if not self._defer and self._pending is not None and not self._closing:
                signum, self._pending = self._pending, None
                self._raise(signum)

    def __enter__(self) -> ProcessGuard:
        for sig in self.signals:
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: exceptions and atexit still clean up
                break
        atexit.register(self.close)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            atexit.unregister(self.close)
            for sig, handler in self._previous.items():
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)
            self._previous.clear()

    # ---- children --------------------------------------------------------------------------------

    def popen(self, args: Sequence[str] | str, **kwargs: Any) -> subprocess.Popen:
        """``subprocess.Popen`` in a new session (``start_new_session``), ended when the guard closes."""
        with self._critical():
            proc = subprocess.Popen(args, start_new_session=True, **kwargs)
            self.procs.append(proc)
            self.roots.append(Root.of(proc.pid))
        return proc

    def run(
        self,
        args: Sequence[str] | str,
        *,
        check: bool = False,
        timeout: float | None = None,
        input: Any = None,
        capture_output: bool = False,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess:
        """``subprocess.run`` in a new session, ended at once if interrupted (and on close, if it left any)."""
        proc = self.popen(args, **_run_kwargs(kwargs, input, capture_output))
        with proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except BaseException:
                terminate([self.roots[self.procs.index(proc)]], self.grace)
                proc.wait()
                raise
        if check and proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, args, out, err)
        return subprocess.CompletedProcess(args, proc.returncode, out, err)

    def start(self, server: S) -> S:
        """Register ``server`` (so a start interrupted half-way is stopped too), then ``start()`` it."""
        self.cleanups.append(server.stop)
        server.start()
        return server

    def callback(self, fn: Callable[[], object]) -> None:
        """Call ``fn`` on close (after the children are gone; last registered, first called)."""
        self.cleanups.append(fn)

    def close(self) -> None:
        """End every child session, then stop the servers and run the callbacks. Idempotent."""
        if self._closed or self._closing:
            return
        self._closing = True
        try:
            terminate(self.roots, self.grace)
            for proc in self.procs:  # reap
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(1)
            for fn in reversed(self.cleanups):
                try:
                    fn()
                except Exception as exc:  # any failure: the others must still run (logged with its traceback)
                    logger.exception("%s: clean-up %r failed: %r", self.name, fn, exc)
        finally:
            self._closed = True
