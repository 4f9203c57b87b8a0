"""Throwaway real servers started from local binaries in a temp dir: PostgreSQL, Dovecot IMAP and an
SMTP sink (aiosmtpd).

Used by the test suite (session fixtures), the benchmarks and ``make demo``. Each starts within about
two seconds, listens only on 127.0.0.1 on a free port, and is removed with its temp dir on ``stop()``.
When a binary is missing, :class:`MissingBinary` names the Debian package that provides it
(``make system-deps`` installs them when run as root).

PostgreSQL and Dovecot daemonise into sessions of their own (PostgreSQL's children even call
``setsid`` each), so ``stop()`` does not rely on the caller's process group: it asks the server to
stop, then ends whatever is left of it (found by its data or config directory on the command line).
aiosmtpd runs as a child in a session of its own and is found the same way (by its Maildir). A
``start()`` that fails or is interrupted stops what it had started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from include.sandbox import processes
from include.sandbox.client import free_port

#: Debian's python3-aiosmtpd, run by the system interpreter (it is not in the project's venv)
DEBIAN_AIOSMTPD = "/usr/lib/python3/dist-packages/aiosmtpd/__main__.py"


class MissingBinary(RuntimeError):
    """A server binary is not installed; the message names the Debian package."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(f"{binary} not found: install the Debian package '{package}' (as root: make system-deps)")
        self.binary = binary
        self.package = package


def _is_root() -> bool:
    return os.geteuid() == 0


def find_pg_bin(name: str) -> str:
    """Locate a PostgreSQL server binary (Debian keeps them out of PATH)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise MissingBinary(name, "postgresql")
    return found


def _wait_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class PostgresServer:
    """``initdb`` + ``pg_ctl start`` in a temp dir (as the ``postgres`` user when running as root)."""

    def __init__(self, port: int | None = None, user: str = "postgres", database: str = "devops") -> None:
        self.port = port or free_port()
        self.user = user
        self.database = database
        self.dir: Path | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver, as the Postgres provider uses with SQLAlchemy 2)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def airflow_conn(self) -> str:
        """The value for ``AIRFLOW_CONN_<ID>`` pointing at this server."""
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", "postgres", "--", *cmd] if _is_root() else list(cmd)
        # in a session of its own, ended if interrupted: an initdb cut short leaves no postgres behind
        return processes.run(
            full, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout
        )

    def start(self) -> PostgresServer:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PostgresServer:
        initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
        self.dir = Path(tempfile.mkdtemp(prefix="devops-pg-"))
        if _is_root():
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = self.dir / "data"
        self._run(initdb, "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        psql = find_pg_bin("psql")
        self._run(
            psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-c",
            f"CREATE DATABASE {self.database}",
        )
        return self

    def create_database(self, name: str) -> str:
        """Create another empty database on the server; returns its SQLAlchemy URL."""
        psql = find_pg_bin("psql")
        self._run(
            psql,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-c",
            f"CREATE DATABASE {name}",
        )
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if not self.dir:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired, MissingBinary):
                self._run(find_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-t", "15", "stop", timeout=30)
        # the postmaster (or an initdb's postgres) has the data directory on its command line; its
        # children are found through it, although each of them is a session leader
        processes.terminate([processes.Root.of(pid) for pid in processes.pids_with_arg(str(data))], grace=5)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{dir}/mail/%u
first_valid_uid = 1
first_valid_gid = 1
mail_privileged_group =
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class DovecotServer:
    """A Dovecot IMAP server with one user, plain IMAP on a loopback port (IDLE supported)."""

    def __init__(
        self, port: int | None = None, user: str = "ci@example.test", password: str = "sandbox-imap-pw"
    ) -> None:
        self.port = port or free_port()
        self.user = user
        self.password = password
        self.dir: Path | None = None
        self.binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)

    def airflow_conn(self) -> str:
        from urllib.parse import quote

        return (
            f"imap://{quote(self.user, safe='')}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/?use_ssl=false"
        )

    def start(self) -> DovecotServer:
        if not self.binary:
            raise MissingBinary("dovecot", "dovecot-imapd")
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> DovecotServer:
        self.dir = Path(tempfile.mkdtemp(prefix="devops-imap-"))
        if _is_root():
            mail = pwd.getpwnam("mail")
            uid, gid = mail.pw_uid, mail.pw_gid
        else:
            uid, gid = os.getuid(), os.getgid()
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        os.chmod(self.dir, 0o755)
        if _is_root():
            os.chown(self.dir / "mail", uid, gid)
        (self.dir / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        conf = DOVECOT_CONF.format(dir=self.dir, port=self.port, uid=uid, gid=gid)
        if not _is_root():
            user = pwd.getpwuid(os.getuid()).pw_name
            conf += (
                f"default_login_user = {user}\ndefault_internal_user = {user}\n"
                f"default_internal_group = {pwd.getpwuid(os.getuid()).pw_name}\n"
            )
        (self.dir / "dovecot.conf").write_text(conf)
        # dovecot daemonises; its children keep stdout/stderr open, so never capture them through a pipe
        with open(self.dir / "start.log", "wb") as out:
            processes.run(
                [self.binary, "-c", str(self.dir / "dovecot.conf")],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=30,
            )
        try:
            _wait_port(self.port, 15)
        except TimeoutError as exc:
            log = "".join(p.read_text() for p in (self.dir / "start.log", self.dir / "dovecot.log") if p.exists())
            raise RuntimeError(f"dovecot did not start: {log[-2000:]}") from exc
        return self

    def stop(self) -> None:
        """End the master and its session (anvil, log, config, auth, imap-login, imap processes).

        The master is found by its config path on its command line (a pid file could name a later,
        unrelated process). A master that exited but is not yet reaped (a zombie: its pid is not reused)
        is taken from the pid file, so that children it left are still found by their session.
        """
        if not self.dir:
            return
        pids = set(processes.pids_with_arg(str(self.dir / "dovecot.conf")))
        try:
            master = int((self.dir / "run" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            master = None
        st = processes.stat(master) if master else None
        if st and st.state == "Z":  # exited, not yet reaped (so its pid is not reused); children may linger
            pids.add(master)
        processes.terminate([processes.Root.of(pid) for pid in pids], grace=5)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SmtpServer:
    """An SMTP sink on a loopback port: aiosmtpd (Debian ``python3-aiosmtpd``) accepts every message and
    writes it, as received plus ``X-MailFrom``/``X-RcptTo`` (the envelope) and ``X-Peer``, to a Maildir
    in its temp dir; :meth:`messages` reads them back. Plain SMTP, no AUTH, no TLS: the connection
    (:meth:`airflow_conn`) has no login and ``disable_ssl``/``disable_tls`` set. A message is in the
    Maildir before the server answers the DATA command, so it can be read as soon as the send returned.
    """

    def __init__(self, port: int | None = None, from_email: str = "devops-automation@example.test") -> None:
        self.port = port or free_port()
        self.from_email = from_email
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def command() -> list[str]:
        """The interpreter that runs aiosmtpd's CLI: the system one with Debian's package, else this one."""
        import importlib.util

        if os.path.exists(DEBIAN_AIOSMTPD) and os.path.exists("/usr/bin/python3"):
            return ["/usr/bin/python3", "-I", "-m", "aiosmtpd"]
        if importlib.util.find_spec("aiosmtpd") is not None:
            return [sys.executable, "-I", "-m", "aiosmtpd"]
        raise MissingBinary("aiosmtpd", "python3-aiosmtpd")

    @property
    def maildir(self) -> Path:
        if not self.dir:
            raise RuntimeError("the SMTP server is not started")
        return self.dir / "maildir"

    def airflow_conn(self) -> str:
        """The value for ``AIRFLOW_CONN_SMTP_DEFAULT`` (JSON: the TLS flags must be real booleans)."""
        import json

        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {"from_email": self.from_email, "disable_ssl": True, "disable_tls": True, "timeout": 10},
            }
        )

    def start(self, timeout: float = 15.0) -> SmtpServer:
        cmd = self.command()
        try:
            return self._start(cmd, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, cmd: list[str], timeout: float) -> SmtpServer:
        self.dir = Path(tempfile.mkdtemp(prefix="devops-smtp-"))
        args = [*cmd, "-n", "-l", f"127.0.0.1:{self.port}", "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        # the child writes to its own copy of the log's file descriptor: ours is closed once it is started
        with open(self.dir / "smtp.log", "wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"aiosmtpd exited with {self.proc.returncode}: {(self.dir / 'smtp.log').read_text()[-2000:]}"
                )
            with contextlib.suppress(TimeoutError):
                _wait_port(self.port, 0.2)
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"aiosmtpd did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, oldest first (``email.policy.default``: ``msg["Subject"]``,
        ``msg["X-RcptTo"]``, ``msg.get_body().get_content()``)."""
        from email import policy
        from email.parser import BytesParser

        files = [p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*") if p.is_file()]
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        parser = BytesParser(policy=policy.default)
        return [cast("EmailMessage", parser.parsebytes(p.read_bytes())) for p in files]

    def clear(self) -> None:
        """Forget every message received so far."""
        for sub in ("new", "cur", "tmp"):
            for p in (self.maildir / sub).glob("*"):
                p.unlink(missing_ok=True)

    def stop(self) -> None:
        """End aiosmtpd (found by its Maildir on the command line too: after a SIGKILLed demo it is not
        our child) and remove the temp dir."""
        if not self.dir:
            return
        roots = [processes.Root.of(pid) for pid in processes.pids_with_arg(str(self.maildir))]
        if self.proc and self.proc.poll() is None:
            roots.append(processes.Root.of(self.proc.pid))
        processes.terminate(roots, grace=5)
        if self.proc:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
