"""A small client for the sandbox's ``/_sandbox`` control API (used by tests, benchmarks, the demo)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from include.sandbox.processes import Root, terminate

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def url(self, system: str, path: str = "") -> str:
        """Base URL of one system, e.g. ``url("gitlab")`` -> ``http://127.0.0.1:PORT/gitlab``."""
        return f"{self.base_url}/{system}{path}"

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.session.request(method, f"{self.base_url}/_sandbox{path}", timeout=self.timeout, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"sandbox control {method} {path} -> {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def reset(self, seed: int | None = None) -> None:
        self._call("POST", "/reset", json={"seed": seed})

    def requests(
        self, system: str | None = None, method: str | None = None, path: str | None = None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"system": system, "method": method, "path": path}.items() if v}
        return self._call("GET", "/requests", params=params)

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def fault(self, **rule: Any) -> dict[str, Any]:
        """Inject a fault, e.g. ``fault(system="gitlab", path="/jobs/", status=429, retry_after=1, times=2)``."""
        return self._call("POST", "/faults", json=rule)

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def latency(self, ms: int, system: str = "*") -> None:
        self._call("POST", "/latency", json={"system": system, "ms": ms})

    def advance(self, seconds: float) -> float:
        return self._call("POST", "/clock/advance", json={"seconds": seconds})["now"]

    def control(self, system: str, method: str, path: str, **kw: Any) -> Any:
        """Call a system-specific control route under ``/_sandbox/<system>``."""
        return self._call(method, f"/{system}{path}", **kw)


class SandboxServer:
    """Run the sandbox as a child process on a free loopback port (context manager)."""

    def __init__(
        self,
        port: int | None = None,
        seed: int = 0,
        latency_ms: int = 0,
        log_path: str | os.PathLike[str] | None = None,
        systems: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.systems = systems
        self.seed = seed
        self.latency_ms = latency_ms
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> SandboxServer:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
        # the child writes to its own copy of the log's file descriptor: ours is closed once it is started
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(open(self.log_path, "ab")) if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "include.sandbox",
                    "--port",
                    str(self.port),
                    "--seed",
                    str(self.seed),
                    "--latency-ms",
                    str(self.latency_ms),
                ]
                + (["--systems", *self.systems] if self.systems else []),
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._root = Root.of(self.proc.pid)
        try:
            deadline = time.monotonic() + timeout
            client = SandboxClient(self.base_url, timeout=2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"sandbox exited with {self.proc.returncode}; see {self.log_path or 'its output'}"
                    )
                try:
                    client.health()
                    return self
                except (requests.RequestException, RuntimeError, ValueError):  # not answering (well) yet
                    time.sleep(0.1)
            raise RuntimeError(f"sandbox did not answer on {self.base_url} within {timeout}s")
        except BaseException:  # a failed or interrupted start (a `with` block's __exit__ would not run)
            self.stop()
            raise

    def stop(self) -> None:
        """End the sandbox's session (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc:
            terminate([self._root], grace=10)
            self.proc.wait(5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
