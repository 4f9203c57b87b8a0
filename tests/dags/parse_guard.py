"""Import DAG files as the DAG processor would and report every I/O each does at parse time.

    python tests/dags/parse_guard.py path/to/dag_file.py [...]    # one JSON line per file

Run in a fresh interpreter (the test starts it as a subprocess): Airflow is imported first (the DAG
processor has it loaded), then the guard is armed and each file is executed in a forked child, as
the DAG processor parses each file in a child of its own. Recorded, with what was asked for:

* ``variable``: ``Variable.get``/``set`` (``airflow.sdk`` and ``airflow.models``) and the SDK's
  ``_get_variable`` underneath them;
* ``connection``: ``BaseHook.get_connection``/``get_hook``, ``Connection.get`` (SDK),
  ``Connection.get_connection_from_secrets`` (models) and the SDK's ``_get_connection``;
* audit events (``sys.addaudithook``): ``open`` of any file other than the DAG file itself, Python's
  own files (``sys.prefix``, ``sys.base_prefix``: stdlib and site-packages), the null device and the repository's
  Python sources (``plugins/``, ``dags/``); ``socket.connect``, ``socket.getaddrinfo``;
  ``sqlite3.connect``; ``subprocess.Popen``, ``os.system``, ``os.exec``, ``os.posix_spawn``.

A recorded call also raises (so the file cannot go on with a value it should not have had); a file
that catches the exception is still recorded. Each JSON line: ``{"file": path, "events": [[kind,
detail], ...], "error": str | null, "dags": [dag_id, ...]}``.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON_SOURCES = (REPO / "plugins", REPO / "dags")
_SOURCE_FILE = re.compile(r"\.(py|pyc)$")
AUDITED = {
    "socket.connect": "network",
    "socket.getaddrinfo": "network",
    "sqlite3.connect": "database",
    "subprocess.Popen": "process",
    "os.system": "process",
    "os.exec": "process",
    "os.posix_spawn": "process",
}


class ParseTimeAccess(RuntimeError):
    """Raised by a guarded function called while the DAG file is parsed."""


def _roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(sorted({os.path.realpath(r) + os.sep for r in roots}))


def allowed_open(path: Any, dag_file: str, roots: tuple[str, ...]) -> bool:
    if isinstance(path, int):  # os.fdopen of a descriptor already open
        return True
    real = os.path.realpath(os.fsdecode(path))
    if real in (dag_file, os.devnull):  # the null device: nothing read or written (dill probes its file types)
        return True
    if real.startswith(roots):
        return True
    return bool(_SOURCE_FILE.search(real)) and any(real.startswith(str(p) + os.sep) for p in PYTHON_SOURCES)


def guard(events: list[list[str]]) -> None:
    """Replace the Variable / Connection entry points with recorders that raise."""
    import airflow.models
    import airflow.sdk
    import airflow.sdk.execution_time.context as sdk_context

    def recorder(kind: str, name: str, original: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            shown = [a for a in args if isinstance(a, str)][:1] or [str(v) for v in kwargs.values()][:1]
            events.append([kind, f"{name}({', '.join(shown)})"])
            raise ParseTimeAccess(f"{name} called while parsing the DAG file")

        guarded.__wrapped__ = original  # type: ignore[attr-defined]
        return guarded

    targets = [
        ("variable", airflow.sdk.Variable, ["get", "set"]),
        ("variable", airflow.models.Variable, ["get", "set", "setdefault", "get_variable_from_secrets"]),
        ("connection", airflow.sdk.BaseHook, ["get_connection", "get_hook"]),
        ("connection", airflow.sdk.Connection, ["get"]),
        ("connection", airflow.models.Connection, ["get_connection_from_secrets"]),
    ]
    for kind, cls, names in targets:
        for name in names:
            original = cls.__dict__[name]
            fn = recorder(kind, f"{cls.__module__}.{cls.__qualname__}.{name}", original)
            setattr(
                cls,
                name,
                classmethod(lambda _cls, *a, _fn=fn, **k: _fn(*a, **k))
                if isinstance(original, classmethod)
                else staticmethod(fn),
            )
    for kind, name in [
        ("variable", "_get_variable"),
        ("connection", "_get_connection"),
        ("connection", "_async_get_connection"),
    ]:
        setattr(
            sdk_context, name, recorder(kind, f"airflow.sdk.execution_time.context.{name}", getattr(sdk_context, name))
        )


def audit(events: list[list[str]], current: list[str]) -> None:
    """Record audit events while ``current[0]`` (the DAG file being parsed) is set."""
    roots = _roots()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not current[0]:
            return
        if event == "open":
            if not allowed_open(args[0], current[0], roots):
                events.append(["file", f"open({os.fsdecode(args[0])!s}, {args[1]!r})"])
        elif event in AUDITED:
            detail = repr(args[1]) if event == "socket.connect" else repr(args[0])
            events.append([AUDITED[event], f"{event}({detail[:200]})"])

    sys.addaudithook(hook)


def run_one(dag_file: str, events: list[list[str]]) -> dict[str, Any]:
    from airflow.sdk import DAG

    error = None
    namespace: dict[str, Any] = {}
    try:
        namespace = runpy.run_path(dag_file, run_name="__dag_file__")
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        error = f"{type(exc).__name__}: {exc}"
    dags = sorted({v.dag_id for v in namespace.values() if isinstance(v, DAG)})
    return {"file": dag_file, "events": events, "error": error, "dags": dags}


def main(paths: list[str]) -> int:
    """Arm the guard once, then parse each file in a forked child (a fresh state for every file)."""
    sys.dont_write_bytecode = True  # no .pyc writes to tell apart from the file's own
    import airflow.sdk  # noqa: F401 - what every DAG-processor child has loaded
    import croniter  # noqa: F401 - loaded with Airflow's cron timetables; its import runs `file` (platform.architecture)

    events: list[list[str]] = []
    current = [""]
    guard(events)
    audit(events, current)
    status = 0
    for path in paths:
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child never returns to the loop
            code = 1
            try:
                current[0] = os.path.realpath(path)
                report = run_one(current[0], events)
                current[0] = ""
                sys.stdout.write(json.dumps(report) + "\n")
                sys.stdout.flush()
                code = 0
            finally:
                os._exit(code)
        _, code = os.waitpid(pid, 0)
        status = status or int(code != 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
