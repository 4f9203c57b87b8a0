"""A seeded generator of GitLab pipeline e-mails as every GitLab version since 11.x sends them, and of
what mail gateways, mailing lists and people do to them: the labelled corpus of the mail intake's
tests (``tests/.../ci_failure_triage/test_mail_corpus.py``) and of ``benchmarks/mail_intake.py``.

Written from the facts in ``../shared/api/gitlab.md`` §1.1 and §1.1b (and the wording of each era as
read in GitLab's mailer source and archived mails); no GitLab template or mail is copied. What each
version renders (:data:`VERSIONS`):

* subject: ``<project> | Pipeline #<id> has failed for <ref> | <sha>[ in !<iid>]`` (oldest; the raw ref
  before 12.0, the source branch after), ``Failed pipeline for <ref> | <project> | <sha>``
  (intermediate), ``<project> | Failed pipeline for <ref> | <sha>`` (current);
* body: before 13.2 ``Your pipeline has failed.`` / ``has passed.``, ``had N failed builds``, job links
  to ``…/-/jobs/<id>/raw`` and a ``Trace:`` log tail under each job (``<pre>`` in HTML); from 13.2
  ``Pipeline #<id> has failed!`` (a pipeline's name instead of ``#<id>`` once pipelines have names),
  ``had N failed jobs``, no log tails; ``Your pipeline has been fixed!`` for fixed mails;
* HTML: ``<title>`` repeats the subject, the Project row is ``<group link> / <project link>``, the
  Branch row shows the raw ref, failed jobs are name links in ``build-state`` rows; external commit
  statuses render ``Build #<id>`` (text) or their name (HTML) without a link;
* headers: ``X-GitLab-Project``/``-Project-Id``/``-Project-Path``/``-Pipeline-Id``/``-Pipeline-Ref``/
  ``-Pipeline-Status``, ``List-Id`` = ``<path> <id.reversed.path.host>``, a random mail-library
  Message-ID, no To header in the older (Bcc) mailers.

Era boundaries other than 13.2 (subject eras, ``/-/`` in URLs, pipeline names) are approximate; the
parser does not rely on them. Each :class:`Case` says what the intake must decide (:class:`Expect`).

    from include.gitlab_mails import corpus, ALLOWED_SENDERS
    for case in corpus(seed=7):
        ...  # case.raw (bytes), case.expect.action / .reason / .fields
"""

from __future__ import annotations

import base64
import binascii
import html
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

HOST = "gitlab.corp.example"
LIST_ADDRESS = "ci-list@lists.corp.example"
#: the allow-list the corpus is decided with: GitLab, the team's list, and colleagues
ALLOWED_SENDERS = (f"gitlab@{HOST}", LIST_ADDRESS, "@corp.example")


@dataclass(frozen=True)
class Version:
    name: str
    subject: str  #: oldest | intermediate | current
    body: str  #: old (< 13.2) | new
    dash_urls: bool  #: pipeline/commit/commits/MR pages under /-/
    raw_ref_subject: bool  #: the oldest subject shows the raw ref (refs/merge-requests/N/head)
    fixed_mail: bool
    named_pipelines: bool
    bcc: bool  #: one mail to all recipients in Bcc: no To header
    title_tag: bool  #: <title> repeats the subject


VERSIONS = (
    Version("11.0", "oldest", "old", False, True, False, False, True, False),
    Version("11.11", "oldest", "old", False, True, False, False, True, False),
    Version("12.0", "oldest", "old", False, False, False, False, True, True),
    Version("12.10", "oldest", "old", False, False, False, False, True, True),
    Version("13.1", "oldest", "old", True, False, False, False, True, True),
    Version("13.2", "intermediate", "new", True, False, True, False, False, True),
    Version("13.12", "intermediate", "new", True, False, True, False, False, True),
    Version("14.10", "intermediate", "new", True, False, True, False, False, True),
    Version("15.11", "current", "new", True, False, True, False, False, True),
    Version("16.11", "current", "new", True, False, True, True, False, True),
    Version("17.8", "current", "new", True, False, True, True, False, True),
)


# -- a pipeline and its e-mail --------------------------------------------------------------------
@dataclass
class Job:
    id: int
    name: str
    stage: str
    external: bool = False
    trace: list[str] = field(default_factory=list)


@dataclass
class Pipeline:
    host: str
    root: str  #: relative URL root ("" or "/gitlab")
    namespace_path: str
    namespace_name: str
    user_namespace: bool
    project_path: str  #: the last segment
    project_name: str
    project_id: int
    id: int
    name: str | None
    ref: str  #: raw ref
    source_ref: str
    mr_iid: int | None
    sha: str
    message: str
    author: tuple[str, str]
    committer: tuple[str, str] | None
    user: tuple[str, str] | None
    jobs: list[Job]
    total_jobs: int
    stages: int

    @property
    def full_path(self) -> str:
        return f"{self.namespace_path}/{self.project_path}"

    @property
    def short_sha(self) -> str:
        return self.sha[:8]


class Links:
    """GitLab URLs of one version, passed through ``wrap`` (a gateway's link rewriting)."""

    def __init__(self, p: Pipeline, v: Version, wrap: Callable[[str], str] = lambda u: u) -> None:
        self.p, self.v, self.wrap = p, v, wrap
        self.base = f"https://{p.host}{p.root}"
        self.dash = "/-" if v.dash_urls else ""

    def project(self) -> str:
        return self.wrap(f"{self.base}/{self.p.full_path}")

    def namespace(self) -> str:
        return self.wrap(f"{self.base}/{self.p.namespace_path}")

    def commits(self, ref: str) -> str:
        return self.wrap(f"{self.base}/{self.p.full_path}{self.dash}/commits/{ref}")

    def commit(self) -> str:
        return self.wrap(f"{self.base}/{self.p.full_path}{self.dash}/commit/{self.p.sha}")

    def merge_request(self) -> str:
        return self.wrap(f"{self.base}/{self.p.full_path}{self.dash}/merge_requests/{self.p.mr_iid}")

    def pipeline(self, pipeline_id: int | None = None, path: str | None = None) -> str:
        return self.wrap(f"{self.base}/{path or self.p.full_path}{self.dash}/pipelines/{pipeline_id or self.p.id}")

    def job(self, job: Job, raw: bool = False) -> str:
        return self.wrap(f"{self.base}/{self.p.full_path}/-/jobs/{job.id}" + ("/raw" if raw else ""))

    def user(self, username: str) -> str:
        return self.wrap(f"{self.base}/{username}")

    def unwrapped_project(self) -> str:
        return f"{self.base}/{self.p.full_path}"


def _truncate(text: str, length: int = 50) -> str:
    """Rails' ``String#truncate``: at most ``length`` characters, "..." when cut."""
    return text if len(text) <= length else text[: length - 3] + "..."


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def subject_of(p: Pipeline, v: Version, status: str) -> str:
    word = {"failed": "Failed", "success": "Successful", "fixed": "Fixed"}[status]
    if v.subject == "oldest":
        verb = {"failed": "failed", "success": "succeeded", "fixed": "succeeded"}[status]
        ref = p.ref if v.raw_ref_subject else p.source_ref
        mr = f" in !{p.mr_iid}" if p.mr_iid else ""
        return f"{p.project_name} | Pipeline #{p.id} has {verb} for {ref} | {p.short_sha}{mr}"
    if v.subject == "intermediate":
        return f"{word} pipeline for {p.source_ref} | {p.project_name} | {p.short_sha}"
    return f"{p.project_name} | {word} pipeline for {p.source_ref} | {p.short_sha}"


def title_of(p: Pipeline, v: Version, status: str) -> str:
    if status == "fixed":
        return "Your pipeline has been fixed!"
    if v.body == "old":
        return f"Your pipeline has {'failed' if status == 'failed' else 'passed'}."
    label = p.name if (p.name and v.named_pipelines) else f"#{p.id}"
    return f"Pipeline {label} has {'failed' if status == 'failed' else 'passed'}!"


def text_body(p: Pipeline, v: Version, status: str, links: Links) -> str:
    old = v.body == "old"
    branch = p.ref if (old and v.raw_ref_subject) else p.source_ref
    out = ["", ""] if old else []
    out += [title_of(p, v, status), "", f"Project: {p.project_name} ( {links.project()} )"]
    out.append(f"Branch: {branch} ( {links.commits(branch)} )")
    if p.mr_iid:
        out.append(f"Merge {'Request' if old else 'request'}: !{p.mr_iid} ( {links.merge_request()} )")
    out += ["", f"Commit: {p.short_sha} ( {links.commit()} )", f"Commit Message: {_truncate(p.message)}"]
    out.append(f"Commit Author: {p.author[0]} ( {links.user(p.author[1])} )")
    if p.committer:
        out.append(f"Committed by: {p.committer[0]} ( {links.user(p.committer[1])} )")
    out.append("")
    label = p.name if (p.name and v.named_pipelines) else f"#{p.id}"
    who = f"{p.user[0]} ( {links.user(p.user[1])} )" if p.user else "API"
    out.append(f"Pipeline {label} ( {links.pipeline()} ) triggered by {who}")
    if status == "failed":
        n = len(p.jobs)
        out += [f"had {n} failed {_plural(n, 'build' if old else 'job')}.", ""]
        for job in p.jobs:
            if job.external:
                out.append(f"Build #{job.id}")
            else:
                out.append(f"Job #{job.id} ( {links.job(job, raw=old)} )")
            if old:
                out.append("")
            out += [f"Stage: {job.stage}", f"Name: {job.name}"]
            if old and job.trace:
                out.append("Trace: " + "\n".join(job.trace))
                out.append("")
    else:
        out.append(
            f"successfully completed {p.total_jobs} {_plural(p.total_jobs, 'job')} in {p.stages} "
            f"{_plural(p.stages, 'stage')}."
        )
    out += ["", "-- ", f"You're receiving this email because of your account on {p.host}.", ""]
    return "\n".join(out)


def _a(href: str, text: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<a{c} href="{html.escape(href)}" style="color:#3777b0;text-decoration:none;">{html.escape(text)}</a>'


def _row(label: str, value: str) -> str:
    return f'<tr><td style="color:#8c8c8c;">{label}</td><td style="color:#333333;width:75%;">{value}</td></tr>'


def _icon_table(*cells: str) -> str:
    tds = "".join(f"<td>{c}</td>" for c in cells)
    return f'<table class="img" border="0" cellpadding="0"><tbody><tr>{tds}</tr></tbody></table>'


def html_body(p: Pipeline, v: Version, status: str, links: Links, subject: str, banner: str | None = None) -> str:
    e = html.escape
    failed = status == "failed"
    branch = p.ref if failed else p.source_ref
    icon = f'<img alt="&#10006;" height="13" width="13" src="https://{p.host}/assets/x.gif">'
    commit = _a(links.commit(), p.short_sha)
    if p.mr_iid:
        commit += " in " + _a(links.merge_request(), f"!{p.mr_iid}")
    rows = [
        _row("Project", _a(links.namespace(), p.namespace_name, "muted") + " / " + _a(links.project(), p.project_name)),
        _row("Branch", _icon_table('<img alt="" src="b.gif">', _a(links.commits(branch), branch, "muted"))),
        _row(
            "Commit",
            _icon_table('<img alt="" src="c.gif">', commit)
            + f'<div class="commit" style="color:#5c5c5c;">{e(_truncate(p.message))}</div>',
        ),
        _row(
            "Commit Author", _icon_table('<img class="avatar" src="a.png">', _a(links.user(p.author[1]), p.author[0]))
        ),
    ]
    if p.committer:
        rows.append(
            _row("Committed by", _icon_table('<img src="a.png">', _a(links.user(p.committer[1]), p.committer[0])))
        )
    label = p.name if (p.name and v.named_pipelines) else f"#{p.id}"
    who = _a(links.user(p.user[1]), p.user[0], "muted") if p.user else "API"
    colour = "#d22f57" if failed else "#31af64"
    alert = f"{_icon_table(icon, e(title_of(p, v, status)))}"
    pipeline_cell = f"Pipeline {_a(links.pipeline(), label)} triggered by"
    pre_section = _icon_table(pipeline_cell, '<img class="avatar" src="u.png">', who)
    parts = [
        f'<tr class="alert"><td style="background-color:{colour};color:#ffffff;">{alert}</td></tr>',
        '<tr class="spacer"><td>&nbsp;</td></tr>',
        f'<tr class="section"><td><table class="table-info"><tbody>{"".join(rows)}</tbody></table></td></tr>',
        '<tr class="spacer"><td>&nbsp;</td></tr>',
        f'<tr class="pre-section"><td>{pre_section}</td></tr>',
    ]
    if failed:
        n = len(p.jobs)
        word = _plural(n, "build" if v.body == "old" else "job")
        parts.append(f'<tr><td colspan="2">had {n} failed {word}.</td></tr>')
        parts.append(
            '<tr class="table-warning"><td>Logs may contain sensitive data. Please consider before forwarding '
            "this email.</td></tr>"
        )
        builds = []
        for job in p.jobs:
            name = e(job.name) if job.external else _a(links.job(job), job.name)
            builds.append(
                f'<tr class="build-state"><td>{_icon_table(icon, e(job.stage))}</td><td align="right">{name}</td></tr>'
            )
            if v.body == "old" and job.trace:
                spans = "".join(f"<span>{e(line)}<br /></span>" for line in job.trace)
                builds.append(f'<tr class="build-log"><td colspan="2"><pre>{spans}</pre></td></tr>')
            else:
                builds.append('<tr class="build-log"><td colspan="2"></td></tr>')
        parts.append(
            f'<tr class="section"><td><table class="builds" style="width:100%;"><tbody>{"".join(builds)}'
            "</tbody></table></td></tr>"
        )
    else:
        parts.append(
            f'<tr><td colspan="2">successfully completed {p.total_jobs} {_plural(p.total_jobs, "job")} in '
            f"{p.stages} {_plural(p.stages, 'stage')}.</td></tr>"
        )
    title = e(subject) if v.title_tag else ""
    top = f'<table class="gateway-banner"><tr><td>{e(banner)}</td></tr></table>' if banner else ""
    manage = _a(links.wrap(f"https://{p.host}/-/profile/notifications"), "Manage all notifications")
    helps = _a(links.wrap(f"https://{p.host}/help"), "Help")
    footer = (
        f'<tr class="footer"><td><img alt="GitLab" src="f.gif"><div>You\'re receiving this email because of your '
        f"account on {e(p.host)}. {manage} &#183; {helps}</div></td></tr>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta content="text/html; charset=UTF-8" http-equiv="Content-Type">'
        f"<title>{title}</title><style>body{{margin:0}} td{{font-family:Helvetica}}</style></head>\n"
        f'<body style="background-color:#fafafa;">{top}<table id="body"><tbody>'
        '<tr class="line"><td style="height:4px;"></td></tr>'
        '<tr class="header"><td><img alt="GitLab" height="50" src="h.gif"></td></tr>'
        '<tr><td><table class="wrapper"><tbody><tr><td class="wrapper-cell"><table class="content"><tbody>'
        + "\n".join(parts)
        + "</tbody></table></td></tr></tbody></table></td></tr>"
        + footer
        + "</tbody></table></body></html>\n"
    )


# -- MIME -----------------------------------------------------------------------------------------
def encode_header(value: str) -> str:
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        return Header(value, "utf-8").encode(maxlinelen=998)


def address(name: str, addr: str) -> str:
    if not name:
        return addr
    try:
        name.encode("ascii")
        quoted = f'"{name}"' if any(c in name for c in ',.;:()<>@"') else name
        return f"{quoted} <{addr}>"
    except UnicodeEncodeError:
        return f"{Header(name, 'utf-8').encode()} <{addr}>"


def encode_body(text: str, charset: str, cte: str) -> bytes:
    data = text.encode(charset)
    if cte == "base64":
        return base64.encodebytes(data)
    if cte == "quoted-printable":
        return binascii.b2a_qp(data, istext=True)
    return data if data.endswith(b"\n") else data + b"\n"


def leaf(ctype: str, text: str, charset: str = "UTF-8", cte: str = "quoted-printable") -> bytes:
    head = f"Content-Type: {ctype};\n charset={charset}\nContent-Transfer-Encoding: {cte}\n\n".encode()
    return head + encode_body(text, charset, cte)


def multipart(subtype: str, parts: list[bytes], rng: random.Random) -> bytes:
    boundary = f"--==_mimepart_{rng.getrandbits(64):016x}_{rng.randint(1000, 99999)}"
    body = b"".join(b"\n--" + boundary.encode() + b"\n" + part for part in parts)
    head = f'Content-Type: multipart/{subtype};\n boundary="{boundary}";\n charset=UTF-8\n'
    return head.encode() + b"Content-Transfer-Encoding: 7bit\n\n" + body + b"\n--" + boundary.encode() + b"--\n"


def message(headers: list[tuple[str, str]], content: bytes) -> bytes:
    """``content`` starts with its own Content-Type header block."""
    head = "".join(f"{k}: {encode_header(v)}\n" for k, v in headers)
    return head.encode() + b"Mime-Version: 1.0\n" + content


def gitlab_message_id(rng: random.Random, host: str) -> str:
    return f"<{rng.getrandbits(48):012x}f_{rng.getrandbits(40):x}{rng.randint(10000, 99999)}@{host}.mail>"


def list_id(p: Pipeline) -> str:
    domain = ".".join(
        "".join(c if c.isascii() and c.isalnum() else "-" for c in part)
        for part in reversed(p.full_path.lower().split("/"))
    )
    return f"{p.full_path} <{p.project_id}.{domain}.{p.host}>"


@dataclass
class Mail:
    """The parts of one e-mail before it is put together (so a case can change any of them)."""

    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    charset: str = "UTF-8"
    cte: str = "quoted-printable"
    html_cte: str = "quoted-printable"

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set(self, name: str, value: str | None) -> None:
        at = next((i for i, (k, _) in enumerate(self.headers) if k.lower() == name.lower()), None)
        if at is None:
            if value is not None:
                self.headers.append((name, value))
        elif value is None:
            del self.headers[at]
        else:
            self.headers[at] = (name, value)

    def build(self, rng: random.Random) -> bytes:
        parts = []
        if self.text is not None:
            parts.append(leaf("text/plain", self.text, self.charset, self.cte))
        if self.html is not None:
            parts.append(leaf("text/html", self.html, "UTF-8", self.html_cte))
        content = parts[0] if len(parts) == 1 else multipart("alternative", parts, rng)
        return message(self.headers, content)


def pipeline_mail(
    p: Pipeline,
    v: Version,
    status: str,
    rng: random.Random,
    *,
    wrap: Callable[[str], str] = lambda u: u,
    header_status: str | None = None,
    banner: str | None = None,
    when: datetime | None = None,
) -> Mail:
    """``Notify.pipeline_<status>_email`` of version ``v`` for pipeline ``p``."""
    links = Links(p, v, wrap)
    subject = subject_of(p, v, status)
    when = when or datetime(2020, 7, 3, 18, 1, 55, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 10**6))
    headers = [
        ("Date", format_datetime(when)),
        ("From", address("GitLab", f"gitlab@{p.host}")),
        ("Reply-To", address("GitLab", f"noreply@{p.host}")),
    ]
    if not v.bcc:
        headers.append(("To", address(rng.choice(["Dana Ops", "Kim Dev", ""]), "ci@corp.example")))
    headers += [("Message-ID", gitlab_message_id(rng, p.host)), ("Subject", subject)]
    headers += [
        ("X-GitLab-Project", p.project_name),
        ("X-GitLab-Project-Id", str(p.project_id)),
        ("X-GitLab-Project-Path", p.full_path),
        ("List-Id", list_id(p)),
        ("X-GitLab-Pipeline-Id", str(p.id)),
        ("X-GitLab-Pipeline-Ref", p.ref),
        ("X-GitLab-Pipeline-Status", header_status or ("failed" if status == "failed" else "success")),
    ]
    if not v.bcc:
        headers += [("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")]
    text = text_body(p, v, status, links)
    if banner:
        text = banner + "\n\n" + text
    return Mail(headers, text, html_body(p, v, status, links, subject, banner))


# -- random pipelines -----------------------------------------------------------------------------
_NAMESPACES = [
    ("acme/platform", "Platform", False),
    ("acme/data-team/etl", "ETL", False),
    ("payments", "Payments", False),
    ("kim.dev", "Kim Dev", True),
    ("acme", "ACME Corp", False),
]
_PROJECTS = [
    ("payments-api", "Payments API"),
    ("web_frontend", "Web Frontend"),
    ("donnees-analytics", "Données Analytics"),
    ("buecher-cafe", "Bücher-Café"),
    ("sborka", "Сборка"),
    ("build-hon", "ビルド本"),
    ("infra", "infra"),
]
_PEOPLE = [("Dana Ops", "dana"), ("Kim Dev", "kim.dev"), ("Alex Bennée", "alexb"), ("Jürgen Schmidt", "jschmidt")]
_JOBS = [
    ("unit-tests", "test"),
    ("lint", "test"),
    ("build-image", "build"),
    ("compile", "build"),
    ("e2e", "integration"),
    ("deploy-staging", "deploy"),
    ("docs", "docs"),
]
_MESSAGES = [
    "Fix flaky retry in the payment client",
    "Merge branch 'feature/login' into 'main'",
    "Bump dependencies and regenerate the lock file for the new build images",
    'Revert "Enable parallel tests"',
]


def _trace(rng: random.Random, lines: int, long_line: int = 0, mention: str | None = None) -> list[str]:
    out = [
        "\x1b[0KRunning with gitlab-runner 13.1.0 (6214287e)",
        "\x1b[0;m\x1b[0K  on docker-auto-scale 72989761",
        "section_start:1593796383:prepare_executor",
    ]
    for i in range(lines):
        out.append(f"\x1b[32;1m$ step {i}: make -j4 target_{rng.randint(0, 999)}\x1b[0;m")
    if mention:
        out.append(f"Triggered downstream pipeline {mention} (status: failed)")
        out.append(f"See {mention} for the log")
    if long_line:
        chunk = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(4096))
        out.append("minified: " + chunk * (long_line // 4096 + 1))
    out += ["", "Job #1 ( not-a-url )", "", "Build #12 finished", "\x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m"]
    return out


def random_pipeline(rng: random.Random, v: Version, *, mr: bool = False, jobs: int | None = None) -> Pipeline:
    ns_path, ns_name, user_ns = rng.choice(_NAMESPACES)
    project_path, project_name = rng.choice(_PROJECTS)
    n_jobs = jobs if jobs is not None else rng.randint(1, 4)
    picked = rng.sample(_JOBS, min(n_jobs, len(_JOBS)))
    base_job = rng.randint(10**8, 9 * 10**8)
    job_list = [Job(base_job + i * rng.randint(1, 9), name, stage) for i, (name, stage) in enumerate(picked)]
    source = rng.choice(["main", "master", "feature/login", "release-1.4", "fix/ci"])
    iid = rng.randint(2, 900) if mr else None
    author = rng.choice(_PEOPLE)
    return Pipeline(
        host=HOST,
        root="",
        namespace_path=ns_path,
        namespace_name=ns_name,
        user_namespace=user_ns,
        project_path=project_path,
        project_name=project_name,
        project_id=rng.randint(100, 99_999_999),
        id=rng.randint(10**6, 2 * 10**9),
        name=rng.choice([None, "Nightly build", "Release checks"]) if v.named_pipelines else None,
        ref=f"refs/merge-requests/{iid}/head" if mr else source,
        source_ref=source,
        mr_iid=iid,
        sha="".join(rng.choice("0123456789abcdef") for _ in range(40)),
        message=rng.choice(_MESSAGES),
        author=author,
        committer=rng.choice([None, None, rng.choice(_PEOPLE)]),
        user=rng.choice([rng.choice(_PEOPLE), None]),
        jobs=job_list,
        total_jobs=n_jobs + rng.randint(2, 20),
        stages=rng.randint(1, 5),
    )


# -- gateways ---------------------------------------------------------------------------------------
def safelinks(url: str) -> str:
    return (
        f"https://eur03.safelinks.protection.outlook.com/?url={quote(url, safe='')}"
        "&data=05%7C02%7Cci%40corp.example%7C6f1d%7C0%7C0%7C638&sdata=Zm9vYmFy%3D&reserved=0"
    )


def proofpoint_v2(url: str) -> str:
    encoded = quote(url, safe="/").replace("-", "%2D").replace("_", "%5F").replace("%", "-").replace("/", "_")
    return f"https://urldefense.proofpoint.com/v2/url?u={encoded}&d=DwMFaQ&c=euGZ&r=x1y2&m=abc&s=def&e="


def proofpoint_v3(url: str) -> str:
    return f"https://urldefense.com/v3/__{url}__;!!Q0cT!abcDEF123$"


def mimecast(rng: random.Random) -> Callable[[str], str]:
    return lambda url: f"https://protect-eu.mimecast.com/s/{rng.getrandbits(60):x}?domain={HOST}"


BANNER = (
    "CAUTION: This email originated from outside of the organization. Do not click links or open "
    "attachments unless you recognize the sender and know the content is safe."
)


# -- the corpus -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    action: str  #: accept | ignore | reject
    reason: str  #: "failed" when accepted; the ignore reason or rejection kind otherwise
    fields: dict[str, Any] | None = None  #: accepted mails: what the parser must return


@dataclass(frozen=True)
class Case:
    name: str
    cls: str
    version: str
    raw: bytes
    expect: Expect


def _fields(
    p: Pipeline,
    *,
    project_id: bool = True,
    project_path: str | None = None,
    ref: str | None = None,
    job_ids: bool = True,
    header_status: str | None = "failed",
    parsed_from: str = "headers",
) -> dict[str, Any]:
    return {
        "status": "failed",
        "pipeline_id": str(p.id),
        "project_id": str(p.project_id) if project_id else None,
        "project_path": project_path or p.full_path,
        "ref": ref or p.ref,
        "sha": p.short_sha,
        "jobs": [
            (str(j.id) if job_ids or j.external else None, j.name, j.stage, "external" if j.external else "job")
            for j in p.jobs
        ],
        "header_status": header_status,
        "parsed_from": parsed_from,
    }


def _accepted(p: Pipeline, **kw: Any) -> Expect:
    return Expect("accept", "failed", _fields(p, **kw))


CaseFn = Callable[[random.Random, Version], tuple[Mail | bytes, Expect] | None]
CLASSES: dict[str, CaseFn] = {}


def case_class(name: str) -> Callable[[CaseFn], CaseFn]:
    def register(fn: CaseFn) -> CaseFn:
        CLASSES[name] = fn
        return fn

    return register


@case_class("genuine")
def _genuine(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    p = random_pipeline(rng, v)
    return pipeline_mail(p, v, "failed", rng), _accepted(p)


@case_class("text_only")
def _text_only(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "failed", rng)
    mail.html = None
    return mail, _accepted(p)


@case_class("html_only")
def _html_only(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """A gateway kept only the HTML part (the Project row is group link / project link)."""
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "failed", rng)
    mail.text, mail.html_cte = None, rng.choice(["quoted-printable", "base64"])
    expect = _accepted(p)
    assert expect.fields is not None
    return mail, expect


@case_class("encodings")
def _encodings(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "failed", rng)
    assert mail.text is not None
    charsets = [c for c in ("iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "utf-8") if _encodes(mail.text, c)]
    mail.charset = rng.choice(charsets)
    mail.cte = rng.choice(["quoted-printable", "base64", "8bit"])
    mail.html_cte = rng.choice(["quoted-printable", "base64", "8bit"])
    return mail, _accepted(p)


def _encodes(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
        return True
    except UnicodeEncodeError:
        return False


@case_class("trace_blocks")
def _trace_blocks(rng: random.Random, v: Version) -> tuple[Mail, Expect] | None:
    """Old mails: a Trace: log tail under each job (lines of a few KB), one mentioning another pipeline."""
    if v.body != "old":
        return None
    p = random_pipeline(rng, v, jobs=3)
    other = Links(p, v).pipeline(p.id + 17, "acme/other-project")
    for i, job in enumerate(p.jobs):
        job.trace = _trace(rng, 40, long_line=rng.randint(3000, 20000), mention=other if i == 1 else None)
    return pipeline_mail(p, v, "failed", rng), _accepted(p)


@case_class("other_pipeline_urls")
def _other_pipeline_urls(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """The commit message names another pipeline (its URL is cut at 50 characters, so a short one)."""
    p = random_pipeline(rng, v)
    p.message = f"Fix https://{HOST}/a/b/-/pipelines/{p.id + 1}\nsee pipeline #{p.id + 2}"
    if v.body == "old":
        p.jobs[0].trace = _trace(rng, 5, mention=Links(p, v).pipeline(p.id + 3))
    return pipeline_mail(p, v, "failed", rng), _accepted(p)


@case_class("safe_links")
def _safe_links(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """A corporate gateway: every URL rewritten, ``[EXTERNAL]`` in the subject, a banner on top."""
    p = random_pipeline(rng, v)
    wrap = rng.choice([safelinks, proofpoint_v2, proofpoint_v3])
    mail = pipeline_mail(p, v, "failed", rng, wrap=wrap, banner=BANNER if rng.random() < 0.5 else None)
    tag = rng.choice(["[EXTERNAL] ", "EXTERNAL: ", "[EXT] ", "*EXTERNAL* "])
    mail.set("Subject", tag + (mail.header("Subject") or ""))
    if rng.random() < 0.3:
        mail.text = None
    return mail, _accepted(p)


@case_class("opaque_links")
def _opaque_links(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """A gateway whose rewritten links hide the target (Mimecast): nothing to compare, nothing contradicts."""
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "failed", rng, wrap=mimecast(rng))
    mail.set("Subject", "[EXTERNAL] " + (mail.header("Subject") or ""))
    html_only = rng.random() < 0.4
    if html_only:
        mail.text = None
    return mail, _accepted(p, job_ids=not html_only)


@case_class("running_header")
def _running_header(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """Rendered after a quick retry: the status header says ``running`` on a "Failed pipeline" mail."""
    p = random_pipeline(rng, v)
    status = rng.choice(["running", "pending"])
    return pipeline_mail(p, v, "failed", rng, header_status=status), _accepted(p, header_status=status)


@case_class("external_status")
def _external_status(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    p = random_pipeline(rng, v, jobs=rng.randint(1, 3))
    p.jobs.append(Job(rng.randint(10**5, 10**6), rng.choice(["ci/jenkins", "sonarqube"]), "external", external=True))
    mail = pipeline_mail(p, v, "failed", rng)
    html_only = rng.random() < 0.4
    if html_only:
        mail.text = None
    expect = _accepted(p)
    assert expect.fields is not None
    if html_only:  # the HTML shows an external status by name only
        expect.fields["jobs"] = [(None, *j[1:]) if j[3] == "external" else j for j in expect.fields["jobs"]]
    return mail, expect


@case_class("mailing_list")
def _mailing_list(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """Through a mailing list: From rewritten to the list, GitLab in Reply-To, List-Id replaced, a tag."""
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "failed", rng)
    mail.set("From", address("GitLab via", LIST_ADDRESS))
    mail.set("Reply-To", f"GitLab <noreply@{HOST}>, GitLab <gitlab@{HOST}>")
    mail.set("List-Id", "<ci-list.lists.corp.example>")
    mail.set("Sender", '"Ci-list" <ci-list-bounces@lists.corp.example>')
    mail.set("Precedence", "list")
    if rng.random() < 0.5:
        mail.set("Subject", "[ci-list] " + (mail.header("Subject") or ""))
    return mail, _accepted(p)


@case_class("merge_request")
def _merge_request(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """A merge-request pipeline: the raw ref in the headers (and HTML), the source branch elsewhere."""
    p = random_pipeline(rng, v, mr=True)
    return pipeline_mail(p, v, "failed", rng), _accepted(p)


@case_class("named_pipeline")
def _named_pipeline(rng: random.Random, v: Version) -> tuple[Mail, Expect] | None:
    if not v.named_pipelines:
        return None
    p = random_pipeline(rng, v)
    p.name = rng.choice(["Nightly build", "Release checks #2", "deploy (prod)"])
    return pipeline_mail(p, v, "failed", rng), _accepted(p)


@case_class("relative_root")
def _relative_root(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    p = random_pipeline(rng, v)
    p.root = "/gitlab"
    return pipeline_mail(p, v, "failed", rng), _accepted(p)


@case_class("headers_stripped")
def _headers_stripped(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """A relay dropped the X-GitLab-* headers (List-Id kept or not): subject and body are all there is."""
    p = random_pipeline(rng, v)
    if rng.random() < 0.5:
        p.root = "/gitlab"
    mail = pipeline_mail(p, v, "failed", rng)
    for name in [k for k, _ in mail.headers if k.lower().startswith("x-gitlab-")]:
        mail.set(name, None)
    keep_list_id = rng.random() < 0.5
    if not keep_list_id:
        mail.set("List-Id", None)
    html_only = rng.random() < 0.4
    if html_only:
        mail.text = None
    path = p.full_path if keep_list_id else (p.root + "/" + p.full_path).strip("/")
    ref = p.ref if (v.subject == "oldest" and v.raw_ref_subject) else p.source_ref
    return mail, _accepted(
        p, project_id=keep_list_id, project_path=path, ref=ref, header_status=None, parsed_from="body"
    )


@case_class("huge_trace")
def _huge_trace(rng: random.Random, v: Version, megabytes: float = 5.0) -> tuple[Mail, Expect] | None:
    """Three jobs whose ``Trace:`` tails hold lines of megabytes: every job must still be read."""
    if v.body != "old":
        return None
    p = random_pipeline(rng, v, jobs=3)
    per_job = int(megabytes * (1 << 20) / 3 / 2)  # text and HTML parts both carry the tails
    for job in p.jobs:
        job.trace = _trace(rng, 20, long_line=per_job)
    mail = pipeline_mail(p, v, "failed", rng)
    mail.cte = rng.choice(["quoted-printable", "base64", "8bit"])
    return mail, _accepted(p)


# -- pipeline mails that are no failure ------------------------------------------------------------
@case_class("success")
def _success(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    p = random_pipeline(rng, v)
    return pipeline_mail(p, v, "success", rng), Expect("ignore", "pipeline_status")


@case_class("fixed")
def _fixed(rng: random.Random, v: Version) -> tuple[Mail, Expect] | None:
    if not v.fixed_mail:
        return None
    p = random_pipeline(rng, v)
    return pipeline_mail(p, v, "fixed", rng), Expect("ignore", "pipeline_status")


# -- people and other notifications ----------------------------------------------------------------
def _quoted(text: str) -> str:
    return "\n".join(("> " + line).rstrip() for line in text.splitlines())


@case_class("reply_via_list")
def _reply_via_list(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    """A person answers a failure mail through the list (From rewritten to the allowed list address)."""
    p = random_pipeline(rng, v)
    original = pipeline_mail(p, v, "failed", rng)
    person = rng.choice(_PEOPLE)
    wrote = "On Fri, 3 Jul 2020 at 18:01, GitLab via wrote:"
    body = f"Looks like the runner again?\n\n{wrote}\n{_quoted(original.text or '')}"
    headers = [
        ("Date", "Fri, 03 Jul 2020 18:40:02 +0000"),
        ("From", address(f"{person[0]} via Ci-list", LIST_ADDRESS)),
        ("Reply-To", address(person[0], f"{person[1]}@corp.example")),
        ("Message-ID", f"<{rng.getrandbits(64):x}@mail.corp.example>"),
        ("Subject", "Re: [ci-list] " + (original.header("Subject") or "")),
        ("In-Reply-To", original.header("Message-ID") or ""),
        ("References", original.header("Message-ID") or ""),
        ("List-Id", "<ci-list.lists.corp.example>"),
    ]
    style = rng.choice(["threaded", "re-only", "bare"])
    if style != "threaded":  # a client or relay that drops the threading headers (and maybe the "Re:")
        headers = [(k, v2) for k, v2 in headers if k not in ("In-Reply-To", "References")]
    if style == "bare":
        headers[4] = ("Subject", original.header("Subject") or "")
    return message(headers, leaf("text/plain", body, "UTF-8", "quoted-printable")), Expect("ignore", "reply")


@case_class("forward_by_person")
def _forward_by_person(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    p = random_pipeline(rng, v)
    original = pipeline_mail(p, v, "failed", rng)
    person = rng.choice(_PEOPLE)
    style = rng.choice(["inline", "attached", "inline-no-prefix"])
    subject = original.header("Subject") or ""
    headers = [
        ("Date", "Fri, 03 Jul 2020 19:00:00 +0000"),
        ("From", address(person[0], f"{person[1]}@corp.example")),
        ("To", "ci@corp.example"),
        ("Message-ID", f"<{rng.getrandbits(64):x}@mail.corp.example>"),
    ]
    if style == "attached":
        headers.append(("Subject", "Pipeline failed again, please have a look"))
        inner = original.build(rng)
        note = leaf("text/plain", "See the attached notification.\n", "UTF-8", "7bit")
        attached = b"Content-Type: message/rfc822\nContent-Disposition: attachment\n\n" + inner
        return message(headers, multipart("mixed", [note, attached], rng)), Expect("ignore", "forward")
    headers.append(("Subject", ("Fwd: " if style == "inline" else "FYI ") + subject))
    body = (
        "FYI, can someone look?\n\n---------- Forwarded message ---------\n"
        f"From: GitLab <gitlab@{HOST}>\nDate: Fri, 3 Jul 2020 at 18:01\nSubject: {subject}\nTo: <ci@corp.example>\n\n"
        + (original.text or "")
    )
    return message(headers, leaf("text/plain", body, "UTF-8", "quoted-printable")), Expect("ignore", "forward")


@case_class("issue_notification")
def _issue_notification(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    """A GitLab issue notification whose description pastes a failure mail."""
    p = random_pipeline(rng, v)
    original = pipeline_mail(p, v, "failed", rng)
    iid, issue_id = rng.randint(1, 500), rng.randint(10**6, 10**8)
    person = rng.choice(_PEOPLE)
    headers = [
        ("Date", "Fri, 03 Jul 2020 19:10:00 +0000"),
        ("From", address(person[0], f"gitlab@{HOST}")),
        ("Reply-To", address("GitLab", f"noreply@{HOST}")),
        ("To", "ci@corp.example"),
        ("Message-ID", f"<issue_{issue_id}@{HOST}>"),
        ("Subject", f"{p.project_name} | CI is red again (#{iid})"),
        ("X-GitLab-Project", p.project_name),
        ("X-GitLab-Project-Id", str(p.project_id)),
        ("X-GitLab-Project-Path", p.full_path),
        ("List-Id", list_id(p)),
        ("X-GitLab-Issue-ID", str(issue_id)),
        ("X-GitLab-Issue-IID", str(iid)),
        ("X-GitLab-NotificationReason", "assigned"),
    ]
    body = (
        f"{person[0]} created an issue: https://{HOST}/{p.full_path}/-/issues/{iid}\n\n"
        f"Assignee: Dana Ops\n\nThe nightly failed again:\n\n{original.text or ''}"
    )
    return message(headers, leaf("text/plain", body, "UTF-8", "quoted-printable")), Expect("ignore", "not_pipeline")


@case_class("merge_request_note")
def _merge_request_note(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    p = random_pipeline(rng, v)
    iid = rng.randint(1, 900)
    person = rng.choice(_PEOPLE)
    headers = [
        ("From", address(person[0], f"gitlab@{HOST}")),
        ("To", "ci@corp.example"),
        ("Message-ID", f"<note_{rng.randint(10**6, 10**8)}@{HOST}>"),
        ("In-Reply-To", f"<merge_request_{rng.randint(10**6, 10**8)}@{HOST}>"),
        ("References", f"<merge_request_{rng.randint(10**6, 10**8)}@{HOST}>"),
        ("Subject", f"Re: {p.project_name} | Fix the build (!{iid})"),
        ("X-GitLab-Project-Path", p.full_path),
        ("X-GitLab-MergeRequest-ID", str(rng.randint(10**6, 10**8))),
        ("X-GitLab-Discussion-ID", f"{rng.getrandbits(160):040x}"),
    ]
    body = f"{person[0]} commented:\n\nPipeline #{p.id} has failed! Retrying.\n"
    return message(headers, leaf("text/plain", body, "UTF-8", "quoted-printable")), Expect("ignore", "not_pipeline")


# -- what must be rejected --------------------------------------------------------------------------
def _tampered(rng: random.Random, v: Version, change: Callable[[Mail, Pipeline], None]) -> Mail:
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "failed", rng)
    change(mail, p)
    return mail


@case_class("ref_mismatch")
def _ref_mismatch(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        mail.set("X-GitLab-Pipeline-Ref", "production" if p.ref != "production" else "main")

    return _tampered(rng, v, change), Expect("reject", "spoofed")


@case_class("sha_mismatch")
def _sha_mismatch(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        other = "".join(rng.choice("0123456789abcdef") for _ in range(8))
        mail.set("Subject", (mail.header("Subject") or "").replace(p.short_sha, other))

    return _tampered(rng, v, change), Expect("reject", "spoofed")


@case_class("pipeline_id_mismatch")
def _pipeline_id_mismatch(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        mail.set("X-GitLab-Pipeline-Id", str(p.id + rng.randint(1, 999)))

    return _tampered(rng, v, change), Expect("reject", "spoofed")


@case_class("project_mismatch")
def _project_mismatch(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        mail.set("X-GitLab-Project-Path", "acme/secrets-vault")
        mail.set("List-Id", None)

    return _tampered(rng, v, change), Expect("reject", "spoofed")


@case_class("list_id_mismatch")
def _list_id_mismatch(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        mail.set("List-Id", list_id(replace(p, project_id=p.project_id + 1)))

    return _tampered(rng, v, change), Expect("reject", "spoofed")


@case_class("status_mismatch")
def _status_mismatch(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    """A "Failed" subject on a success body."""
    p = random_pipeline(rng, v)
    mail = pipeline_mail(p, v, "success", rng)
    mail.set("Subject", subject_of(p, v, "failed"))
    mail.set("X-GitLab-Pipeline-Status", "failed")
    return mail, Expect("reject", "spoofed")


@case_class("two_senders")
def _two_senders(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        mail.set("From", f"GitLab <gitlab@{HOST}>, Eve <eve@evil.example>")

    return _tampered(rng, v, change), Expect("reject", "unknown_sender")


@case_class("unknown_sender")
def _unknown_sender(rng: random.Random, v: Version) -> tuple[Mail, Expect]:
    def change(mail: Mail, p: Pipeline) -> None:
        mail.set("From", rng.choice([f'"gitlab@{HOST}" <eve@evil.example>', "GitLab <gitlab@gitlab.evil.example>"]))

    return _tampered(rng, v, change), Expect("reject", "unknown_sender")


@case_class("copied_headers")
def _copied_headers(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    """A newsletter from the GitLab host carrying a pipeline's headers."""
    p = random_pipeline(rng, v)
    headers = [
        ("From", address("GitLab", f"gitlab@{HOST}")),
        ("Subject", "Ten tips for faster pipelines"),
        ("X-GitLab-Pipeline-Id", str(p.id)),
        ("X-GitLab-Pipeline-Status", "failed"),
        ("X-GitLab-Project-Path", p.full_path),
    ]
    return message(headers, leaf("text/html", "<p>Our March newsletter</p>", "UTF-8", "7bit")), Expect(
        "reject", "spoofed"
    )


@case_class("subject_only")
def _subject_only(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    """No GitLab headers and a body that is no pipeline notification: only the subject claims one."""
    p = random_pipeline(rng, v)
    headers = [("From", f"gitlab@{HOST}"), ("Subject", subject_of(p, v, "failed"))]
    return message(headers, leaf("text/plain", "see subject\n", "UTF-8", "7bit")), Expect("reject", "unparseable")


@case_class("garbage")
def _garbage(rng: random.Random, v: Version) -> tuple[bytes, Expect]:
    kind = rng.choice(["bytes", "no-headers", "lunch"])
    if kind == "bytes":
        noise = bytes(b for b in (rng.getrandbits(8) for _ in range(rng.randint(0, 400))) if b != ord(":"))
        return noise + b"\x00\xff", Expect("reject", "unparseable")
    if kind == "no-headers":
        return b"just some text\n\nwithout headers\n", Expect("reject", "unparseable")
    headers = [("From", f"gitlab@{HOST}"), ("Subject", "Lunch?")]
    return message(headers, leaf("text/plain", "Lunch at noon?\n", "UTF-8", "7bit")), Expect("reject", "not_gitlab")


def corpus(
    seed: int = 20260519,
    *,
    versions: tuple[Version, ...] = VERSIONS,
    classes: tuple[str, ...] | None = None,
    per_class: int = 1,
    huge_mb: float = 5.0,
    huge_versions: int = 2,
) -> list[Case]:
    """Every class for every version (``per_class`` cases each, where the class applies to the version),
    built from ``seed``. ``huge_trace`` (``huge_mb`` MB each) only for ``huge_versions`` old versions,
    to keep it cheap; 0 leaves it out."""
    cases: list[Case] = []
    old_versions = [v.name for v in versions if v.body == "old"][:huge_versions]
    for name in classes or tuple(CLASSES):
        fn = CLASSES[name]
        for v in versions:
            if name == "huge_trace" and v.name not in old_versions:
                continue
            for i in range(per_class):
                rng = random.Random(f"{seed}:{name}:{v.name}:{i}")
                made = _huge_trace(rng, v, huge_mb) if name == "huge_trace" else fn(rng, v)
                if made is None:
                    continue
                content, expect = made
                raw = content.build(rng) if isinstance(content, Mail) else content
                cases.append(Case(f"{name}-{v.name}-{i}", name, v.name, raw, expect))
    return cases


def fields_of(mail: Any) -> dict[str, Any]:
    """What a parsed mail (:class:`PipelineMail`) says, in the shape of :attr:`Expect.fields`."""
    return {
        "status": mail.status,
        "pipeline_id": mail.pipeline_id,
        "project_id": mail.project_id,
        "project_path": mail.project_path,
        "ref": mail.ref,
        "sha": mail.sha,
        "jobs": [(j.get("id"), j.get("name"), j.get("stage"), j.get("kind")) for j in mail.failed_jobs],
        "header_status": mail.header_status,
        "parsed_from": mail.parsed_from,
    }


def check(case: Case, decision: Any) -> tuple[bool, bool | None, str]:
    """(decision right, fields right (None unless the case is to be accepted), what differs) for a
    :class:`MailDecision` of ``case``."""
    got = (decision.action, decision.reason)
    want = (case.expect.action, case.expect.reason)
    if got != want:
        return False, False if case.expect.fields else None, f"decided {got} ({decision.detail[:300]}), expected {want}"
    if not case.expect.fields:
        return True, None, ""
    have = fields_of(decision.mail)
    wrong = {k: (have.get(k), v) for k, v in case.expect.fields.items() if have.get(k) != v}
    return True, not wrong, "; ".join(f"{k}: got {g!r}, expected {w!r}" for k, (g, w) in wrong.items())
