"""Parse GitLab pipeline notification e-mails (``Notify.pipeline_{failed,success,fixed}_email``).

``ci_failure_triage`` reads its mailbox and turns every message into one :class:`MailDecision`:

* ``accept``: a failed-pipeline notification, as a :class:`PipelineMail`;
* ``ignore`` (the message is filed as processed): a pipeline notification of another status
  (``pipeline_status``: successful, fixed, or still running), a person's ``reply`` or ``forward``,
  or a GitLab notification about something else (``not_pipeline``: issue, merge request, comment);
* ``reject`` (the message goes to ``needs-attention``), one of :data:`KINDS`: ``unknown_sender``,
  ``spoofed`` (what must agree does not), ``not_gitlab``, ``unparseable``.

Every GitLab version since 11.x is read (gitlab.md §1.1, §1.1b): the three subject eras
(``<project> | Pipeline #<id> has failed for <ref> | <sha>``, ``Failed pipeline for <ref> | <project>
| <sha>``, ``<project> | Failed pipeline for <ref> | <sha>``, with any ``[EXTERNAL]``-style tag in
front), both body eras (``Your pipeline has failed.`` with ``had N failed builds``, ``…/raw`` job links
and ``Trace:`` log tails; ``Pipeline #<id> has failed!`` with ``had N failed jobs``), text and HTML
parts (the HTML Project row is ``group / project``: the project is its *last* link; jobs are name
links in ``build-state`` rows), HTML-only mail, external commit statuses (``Build #<id>``, no link),
any transfer encoding and charset. Links rewritten by mail gateways (Outlook safe links, Proofpoint,
Google redirects) are unwrapped before anything is compared; opaque ones (Mimecast) count as unknown,
never as a contradiction.

The decision is taken from the headers first: the sender (exactly one ``From`` address, on the
allow-list), then GitLab's headers for other notification kinds (``X-GitLab-Issue-ID``,
``X-GitLab-NotificationReason``, ``<issue_1@host>`` thread ids, ...), then the marks of a person's
mail (``In-Reply-To``/``References``, a ``Re:``/``Fwd:`` subject, an attached message). Only then
are the subject and the body read, and only their structural places are compared (the title, the
Project/Branch/Commit rows, the ``Pipeline #<id> ( <url> )`` line, ``List-Id``): pipeline id,
project id and path, ref and SHA must agree wherever they are given, while other URLs in the body
(a commit message, a log line) are ignored. A merge-request ref (``refs/merge-requests/N/head``)
agrees with any branch name, since GitLab writes the MR's source branch in some places and the raw
ref in others.

Without pipeline headers (a relay dropped them) the project path comes from ``List-Id`` (``<path>
<id.…>``) or else from the project link, whose path then includes any relative URL root
(``gitlab/acme/app``). GitLab's HTML labels are translated per recipient: with pipeline headers, a
body in a layout this parser does not know is still accepted when it links to that very pipeline.

``X-GitLab-Pipeline-Status`` is read by GitLab when the queued mail is *rendered*, so a "Failed
pipeline" mail can say ``running`` (the pipeline was retried meanwhile): the subject and body decide
what the mail reports; the header is kept in :attr:`PipelineMail.header_status`.

Bounded work whatever the size: parts are decoded in 1 MiB chunks and read line by line, only the
first :data:`LINE_LIMIT` characters of a line are looked at, ``Trace:`` blocks (text) and ``<pre>``
blocks (HTML) are skipped without being parsed, so megabyte log tails cost no job. No exception
escapes :func:`classify_mail`; :func:`parse_pipeline_mail` raises only :class:`MailRejected` or
:class:`MailIgnored`. Pure Python (stdlib ``email``); no Airflow imports.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.errors
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import MISSING, asdict, dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from itertools import combinations
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TEXT_LIMIT = 64 << 20  #: decoded characters of a text part read at most
HTML_LIMIT = 4 << 20  #: characters of an HTML part (outside ``<pre>``) parsed at most
LINE_LIMIT = 2_000  #: characters of a body line looked at
MAX_PARTS = 50  #: MIME parts walked at most
MAX_JOBS = 500  #: failed jobs kept at most
_CHUNK = 1 << 20
_CELL_TEXT = 4_000  #: characters of an HTML table cell kept
_CELL_DEPTH = 12  #: nesting depth of HTML cells that collect text

#: why a message is rejected (moved to the needs-attention folder)
KINDS = ("unknown_sender", "not_gitlab", "spoofed", "unparseable")
#: why a message is ignored (filed as processed)
IGNORED = ("pipeline_status", "reply", "forward", "not_pipeline")
ACTIONS = ("accept", "ignore", "reject")

_ERRORS = (ValueError, TypeError, LookupError, AttributeError, UnicodeError, email.errors.MessageError)


class _MailDecision(ValueError):
    """A message this module decided about without accepting it: ``kind`` names why, with what is
    known of the message (picklable with its keyword attributes, e.g. across processes)."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        message_id: str | None = None,
        sender: str | None = None,
        subject: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind, self.message_id, self.sender, self.subject = kind, message_id, sender, subject

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.kind, str(self), self.message_id, self.sender, self.subject))


class MailRejected(_MailDecision):
    """A message that is not a usable GitLab pipeline e-mail; ``kind`` is one of :data:`KINDS`."""


class MailIgnored(_MailDecision):
    """A message that is not a pipeline event and needs nobody; ``kind`` is one of :data:`IGNORED`."""


def _rebuild(
    cls: type, kind: str, message: str, message_id: str | None, sender: str | None, subject: str | None
) -> Any:
    return cls(kind, message, message_id=message_id, sender=sender, subject=subject)


@dataclass(frozen=True)
class PipelineMail:
    message_id: str
    sender: str
    subject: str
    status: str  #: what the mail reports: failed | success | fixed (else the header's status)
    project_id: str | None
    project_path: str | None
    project_name: str | None
    pipeline_id: str
    ref: str | None
    sha: str | None
    pipeline_url: str | None
    failed_jobs: tuple[dict, ...]  #: {"id", "name", "stage", "url", "kind": "job" | "external"}
    parsed_from: str  #: "headers" (X-GitLab-* headers, corroborated) or "body" (no pipeline headers)
    header_status: str | None = None  #: X-GitLab-Pipeline-Status as sent (read when the mail was rendered)
    failed_count: int | None = None  #: "had N failed jobs/builds"
    notes: tuple[str, ...] = ()

    @property
    def is_failure(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (``failed_jobs`` becomes a list of plain dicts)."""
        out = asdict(self)
        out["failed_jobs"] = [dict(j) for j in self.failed_jobs]
        out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineMail:
        fields_ = {k: data.get(k) for k, f in cls.__dataclass_fields__.items() if k in data or f.default is MISSING}
        fields_["failed_jobs"] = tuple(dict(j) for j in fields_.get("failed_jobs") or ())
        fields_["notes"] = tuple(fields_.get("notes") or ())
        return cls(**fields_)


@dataclass(frozen=True)
class MailDecision:
    """What to do with one message: ``action`` in :data:`ACTIONS`, ``reason`` a named reason
    (``failed`` when accepted, one of :data:`IGNORED` or :data:`KINDS` otherwise)."""

    action: str
    reason: str
    detail: str
    message_id: str
    sender: str | None
    subject: str | None
    mail: PipelineMail | None = None


# -- public helpers -------------------------------------------------------------------------------
def _cut(value: str, limit: int) -> str:
    """An untrusted value quoted in a decision's detail, its secrets redacted *before* it is cut to
    ``limit`` characters: a cut token (``ghp_`` and 30 of its 36 characters) is no longer recognised
    by the redaction the detail gets on its way out. Reached only when a mail is turned away, so the
    redactor (imported here) costs accepted mail nothing; a value without secrets is cut as before."""
    from devops_automation.ci_logs.redact import redact_text

    return redact_text(value)[:limit]


def _as_bytes(raw: Any) -> bytes:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    raise TypeError(f"expected the raw message as bytes, got {type(raw).__name__}")


def message_id_of(raw: bytes) -> str:
    """The Message-ID without ``<>``, or ``sha256:<hex>`` of the raw bytes when it is missing."""
    try:
        data = _as_bytes(raw)
    except TypeError:
        data = repr(raw).encode("utf-8", "replace")
    try:
        value = BytesHeaderParser(policy=policy.compat32).parsebytes(data).get("Message-ID")
        text = str(value or "").strip()
        found = re.search(r"<([^<>\s]+)>", text)
        text = found.group(1) if found else text.strip("<> \t\r\n")
        if text and len(text) <= 998 and text.isprintable():
            return text
    except _ERRORS:
        pass
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sender_allowed(sender: str, allowed: Sequence[str] | None) -> bool:
    """``allowed`` holds exact addresses or ``@domain`` entries; an empty or missing list allows anyone."""
    entries = [a.strip().lower() for a in (allowed or ()) if a and a.strip()]
    if not entries:
        return True
    sender = (sender or "").strip().lower()
    if "@" not in sender:
        return False
    domain = "@" + sender.rpartition("@")[2]
    return any(entry == sender or (entry.startswith("@") and entry == domain) for entry in entries)


_WRAP_PARAMS = ("url", "u", "q", "target", "redirect", "redirect_url", "link", "a")
_OPAQUE_HOSTS = ("mimecast.com", "mimecastprotect.com", "mimecast-offshore.com")
_PP_V3 = re.compile(r"^https?://[^/]*urldefense\.com/v3/__(?P<url>.+?)__;", re.I)


def unwrap_url(url: str | None) -> str | None:
    """The URL a mail gateway's link rewriting points to (Outlook safe links, Proofpoint v2/v3, Google
    and generic ``?url=`` redirects, up to 4 levels); ``None`` for a rewrite that hides it (Mimecast)."""
    if not url:
        return None
    for _ in range(4):
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return None
        host = (parts.hostname or "").lower()
        inner: str | None = None
        if m := _PP_V3.match(url):
            inner = m.group("url")
        elif "urldefense" in host and parts.path.startswith("/v2/url"):
            value = (parse_qs(parts.query).get("u") or [""])[0]
            inner = unquote(value.replace("-", "%").replace("_", "/")) if value else None
        elif any(host == h or host.endswith("." + h) for h in _OPAQUE_HOSTS):
            return None
        elif parts.query:
            query = parse_qs(parts.query)
            values = (v[0].strip() for k in _WRAP_PARAMS for v in [query.get(k)] if v)
            inner = next((v for v in values if v.lower().startswith(("http://", "https://"))), None)
        if not inner or inner == url:
            return url
        url = inner
    return url


# -- reading the parts ----------------------------------------------------------------------------
def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset() or "utf-8"
        codecs.lookup(charset)
    except _ERRORS:
        charset = "utf-8"
    return charset


def _payload_bytes(part: Message) -> Iterator[bytes]:
    """The decoded body of a leaf part in chunks of about :data:`_CHUNK` bytes."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return
    charset = _charset(part)

    def raw(text: str) -> bytes:  # the parser kept 8-bit bytes as surrogates
        try:
            return text.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode(charset, "replace")

    cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if cte == "base64":
        rest = ""
        for start in range(0, len(payload), _CHUNK):
            piece = rest + re.sub(r"[^A-Za-z0-9+/]", "", payload[start : start + _CHUNK])
            cut = len(piece) // 4 * 4
            piece, rest = piece[:cut], piece[cut:]
            yield _b64(piece)
        if len(rest) > 1:
            yield _b64(rest + "=" * (-len(rest) % 4))
    elif cte == "quoted-printable":
        start = 0
        while start < len(payload):
            end = payload.find("\n", start + _CHUNK)
            end = len(payload) if end < 0 else end + 1
            yield binascii.a2b_qp(raw(payload[start:end]))
            start = end
    else:
        for start in range(0, len(payload), _CHUNK):
            yield raw(payload[start : start + _CHUNK])


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def _part_text(part: Message, limit: int) -> Iterator[str]:
    """Decoded text chunks of a part, :data:`limit` characters at most."""
    decoder = codecs.getincrementaldecoder(_charset(part))(errors="replace")
    seen = 0
    for chunk in _payload_bytes(part):
        text = decoder.decode(chunk)
        if seen + len(text) >= limit:
            yield text[: limit - seen]
            return
        seen += len(text)
        yield text
    yield decoder.decode(b"", final=True)


def _lines(chunks: Iterator[str]) -> Iterator[str]:
    """Lines (``\\n``-separated) of a stream of text, each cut to :data:`LINE_LIMIT` characters
    without ever building the rest of a long line."""
    pending: list[str] = []
    size = 0
    for text in chunks:
        pos = 0
        while True:
            nl = text.find("\n", pos)
            end = len(text) if nl < 0 else nl
            if size < LINE_LIMIT and end > pos:
                piece = text[pos : min(end, pos + LINE_LIMIT - size)]
                pending.append(piece)
                size += len(piece)
            if nl < 0:
                break
            yield "".join(pending).rstrip("\r")
            pending, size, pos = [], 0, nl + 1
    if pending:
        yield "".join(pending).rstrip("\r")


@dataclass
class _Parts:
    text: Message | None = None
    html: Message | None = None
    attached_message: bool = False


def _find_parts(msg: Message) -> _Parts:
    """The first text/plain and text/html parts, not descending into attached messages."""
    found = _Parts()
    todo: list[Message] = [msg]
    walked = 0
    while todo and walked < MAX_PARTS:
        part = todo.pop(0)
        walked += 1
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype == "message/rfc822" or part.get_content_maintype() == "message":
                found.attached_message = True
                continue
            payload = part.get_payload()
            if isinstance(payload, list):
                todo.extend(p for p in payload if isinstance(p, Message))
            continue
        if part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain" and found.text is None:
            found.text = part
        elif ctype == "text/html" and found.html is None:
            found.html = part
    return found


# -- what one source says -------------------------------------------------------------------------
@dataclass
class _Facts:
    source: str
    matched: bool = False  #: looks like a pipeline notification (subject pattern / title or pipeline line)
    kind: str | None = None  #: failed | success | fixed
    pipeline_id: str | None = None
    id_sources: list[tuple[str, str]] = field(default_factory=list)
    pipeline_name: str | None = None
    project_name: str | None = None
    project_url: str | None = None  #: unwrapped; None when missing or hidden
    project_urls: list[tuple[str, str]] = field(default_factory=list)  #: (where, url) for the path check
    ref: str | None = None
    mr_iid: str | None = None
    sha: str | None = None
    sha_full: str | None = None
    pipeline_url: str | None = None
    failed_count: int | None = None
    jobs: list[dict] = field(default_factory=list)
    title_first: bool = False  #: the title is the body's first line (gateway banners aside)
    quoted_title: bool = False  #: a title only in quoted (``>``) lines
    forward_marker: str | None = None  #: "forward" / "reply" marker line before the title
    pipeline_links: list[tuple[str, str, str]] = field(default_factory=list)  #: HTML: (id, project path, url)


_STATUS_WORDS = {
    "failed": "failed",
    "successful": "success",
    "succeeded": "success",
    "passed": "success",
    "success": "success",
    "fixed": "fixed",
}
_HEX = r"[0-9a-f]{7,40}"
_SUBJECT_TAG = re.compile(
    r"^\s*(?:\[[^\]\n]{0,60}\]|\((?:EXTERNAL|EXT|External|SPAM|Spam|Suspicious)\)|"
    r"\*{1,3}\s*[A-Za-z][A-Za-z ]{1,30}\s*\*{1,3}|"
    r"(?:EXTERNAL|External|EXT|SPAM|CAUTION|WARNING|Suspicious)\s*(?::|\s-\s))\s*"
)
_REPLY = re.compile(r"^\s*(?:re|aw|sv|vs|antw|rif|odp|r)\s*(?:\[\d+\])?\s*[:：]", re.I)
_FORWARD = re.compile(r"^\s*(?:fwd?|wg|tr|enc|doorst|rv|vb|fs)\s*(?:\[\d+\])?\s*[:：]", re.I)
_SUBJECTS = (  # current, intermediate, without project, oldest (≈ 11.x - 13.1)
    re.compile(rf"^(?P<proj>[^|]+?) \| (?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>\S+) \| (?P<sha>{_HEX})\b"),
    re.compile(rf"^(?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>\S+) \| (?P<proj>[^|]+?) \| (?P<sha>{_HEX})\b"),
    re.compile(rf"^(?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>\S+) \| (?P<sha>{_HEX})\b"),
    re.compile(
        rf"^(?:(?P<proj>[^|]+?) \| )?Pipeline #(?P<id>\d+) has (?P<st>failed|succeeded|passed)"
        rf"(?: for (?P<ref>\S+))?(?: \| (?P<sha>{_HEX})\b)?(?: in !(?P<mr>\d+))?"
    ),
)


def strip_subject_tags(subject: str) -> str:
    """The subject without the tags gateways and lists put in front (``[EXTERNAL]``, ``[list]``,
    ``EXTERNAL:``, ``*SPAM*``). GitLab project names cannot contain brackets or colons."""
    text = " ".join((subject or "").split())
    for _ in range(6):
        m = _SUBJECT_TAG.match(text)
        if not m or not m.group(0):
            break
        text = text[m.end() :]
    return text


def _subject_facts(subject: str, source: str = "subject") -> _Facts:
    facts = _Facts(source)
    for pattern in _SUBJECTS:
        m = pattern.match(subject)
        if not m:
            continue
        g = m.groupdict()
        facts.matched = True
        facts.kind = _STATUS_WORDS[m.group("st").lower()]
        facts.project_name = (g.get("proj") or "").strip() or None
        facts.ref, facts.sha, facts.mr_iid = g.get("ref"), (g.get("sha") or None), g.get("mr")
        if g.get("id"):
            facts.pipeline_id = g["id"]
            facts.id_sources.append((source, g["id"]))
        break
    return facts


_TITLES = (
    (re.compile(r"^(?:your\s+)?pipeline\s+has\s+been\s+fixed\b", re.I), "fixed"),
    (re.compile(r"^pipeline\s+(?:#(?P<id>\d+)|(?P<name>.+?))\s+has\s+been\s+fixed\b", re.I), "fixed"),
    (re.compile(r"^(?:uh oh,\s+)?your\s+(?:ci\s+)?pipeline\s+has\s+(?P<st>failed|passed|succeeded)\b", re.I), None),
    (
        re.compile(r"^pipeline\s+(?:#(?P<id>\d+)|(?P<name>.+?))\s+has\s+(?P<st>failed|passed|succeeded)\s*[!.]", re.I),
        None,
    ),
    (re.compile(r"^pipeline\s+(?P<st>failed|passed|succeeded)\s*[!.]\s*$", re.I), None),
)
_BANNER = re.compile(
    r"^\W{0,3}(?:\[?\s*(?:external|ext|caution|warning|notice|attention)\s*\]?\s*[:!\-]|caution\b|"
    r"this (?:e-?mail|message) (?:originated|was sent|came|is) from outside)",
    re.I,
)
_FORWARD_LINE = re.compile(
    r"^(?:-{2,}\s*(?:forwarded message|original message|weitergeleitete nachricht)\s*-{2,}|begin forwarded message:)",
    re.I,
)
_WROTE_LINE = re.compile(r"^on .{4,200} wrote:$", re.I)


def _title(text: str) -> tuple[str, str | None, str | None] | None:
    """(kind, pipeline id, pipeline name) when ``text`` starts with a body title of any version."""
    for pattern, kind in _TITLES:
        m = pattern.match(text)
        if m:
            g = m.groupdict()
            return kind or _STATUS_WORDS[g["st"].lower()], g.get("id"), (g.get("name") or "").strip() or None
    return None


_PIPELINE_PATH = re.compile(r"^(?P<project>/.+?)(?:/-)?/pipelines/(?P<id>\d+)/?$")
_JOB_PATH = re.compile(r"^(?P<project>/.+?)(?:/-)?/(?:jobs|builds)/(?P<id>\d+)(?P<raw>/raw)?/?$")
_COMMIT_PATH = re.compile(r"^(?P<project>/.+?)(?:/-)?/commit/(?P<sha>[0-9a-fA-F]{7,40})/?$")


def _path_match(pattern: re.Pattern[str], url: str | None) -> tuple[re.Match[str], str] | None:
    """(match on the URL's path, the URL) after unwrapping; None when it is not such a GitLab URL."""
    url = unwrap_url(url)
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    m = pattern.match(unquote(parts.path))
    return (m, url) if m else None


def _url_path(url: str | None) -> str | None:
    url = unwrap_url(url)
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return unquote(parts.path).strip("/") or None


def _job(job_id: str | None, url: str | None, kind: str) -> dict[str, Any]:
    return {"id": job_id, "name": None, "stage": None, "url": url, "kind": kind}


def _job_link(url: str | None) -> tuple[str, str] | None:
    """(job id, the job page URL without ``/raw``) for a GitLab job URL."""
    found = _path_match(_JOB_PATH, url)
    if not found:
        return None
    m, full = found
    if m.group("raw"):
        full = full[: full.rfind("/raw")]
    return m.group("id"), full


def _note_pipeline_url(facts: _Facts, url: str | None, where: str) -> None:
    found = _path_match(_PIPELINE_PATH, url)
    if found:
        m, full = found
        facts.pipeline_url = facts.pipeline_url or full
        facts.id_sources.append((f"{where} link", m.group("id")))
        facts.project_urls.append((f"{where} link", m.group("project")))


def _note_project_url(facts: _Facts, url: str | None, where: str) -> None:
    path = _url_path(url)
    if path:
        facts.project_url = facts.project_url or unwrap_url(url)
        facts.project_urls.append((where, "/" + path))


def _note_commit(facts: _Facts, sha: str | None, url: str | None) -> None:
    if sha and re.fullmatch(_HEX, sha.lower()):
        facts.sha = facts.sha or sha.lower()
    found = _path_match(_COMMIT_PATH, url)
    if found:
        facts.sha_full = facts.sha_full or found[0].group("sha").lower()


# -- the text part --------------------------------------------------------------------------------
_T_PROJECT = re.compile(r"^Project:?\s+(?P<name>.+?)(?:\s+\(\s+(?P<url>\S+)\s+\))?\s*$", re.I)
_T_BRANCH = re.compile(r"^Branch:?\s+(?P<ref>\S+)(?:\s+\(\s+(?P<url>\S+)\s+\))?", re.I)
_T_MR = re.compile(r"^Merge request:?\s+!(?P<iid>\d+)", re.I)
_T_COMMIT = re.compile(rf"^Commit:?\s+(?P<sha>{_HEX})\b(?:\s+\(\s+(?P<url>\S+)\s+\))?", re.I)
_T_MESSAGE = re.compile(r"^Commit Message:", re.I)
_T_AUTHOR = re.compile(r"^(?:Commit Author|Committed by):", re.I)
_T_PIPELINE = re.compile(
    r"^Pipeline\s+(?:#(?P<id>\d+)|(?P<name>.+?))\s+(?:\(\s+(?P<url>\S+)\s+\)\s+)?(?P<what>triggered by|had)\b", re.I
)
_T_HAD = re.compile(r"\bhad\s+(?P<n>\d+)\s+failed\s+(?:jobs?|builds?)\b", re.I)
_T_JOB = re.compile(r"^Job:?\s+#(?P<id>\d+)(?:\s+\(\s+(?P<url>\S+)\s+\))?\s*$", re.I)
_T_BUILD = re.compile(r"^Build\s+#(?P<id>\d+)\s*$", re.I)
_T_FIELD = re.compile(r"^(?P<key>Stage|Name):\s*(?P<value>.*?)\s*$", re.I)
_T_FOOTER = re.compile(r"^(?:--|you're receiving this email because)", re.I)


def _job_header(line: str) -> dict[str, Any] | None:
    """``Job #<id> ( <url> )`` (a GitLab job) or ``Build #<id>`` (an external commit status)."""
    if m := _T_JOB.match(line):
        link = _job_link(m.group("url"))
        return _job(m.group("id"), link[1] if link else None, "job")
    if m := _T_BUILD.match(line):
        return _job(m.group("id"), None, "external")
    return None


def _text_facts(lines: Iterator[str]) -> _Facts:
    """Read a text body of any version as a small state machine over its lines."""
    f = _Facts("body")
    state = "head"  # head -> jobs; "trace" while inside a job's Trace: block
    message_budget = -1  # characters of the (50-character) commit message still to skip
    first = True
    prev_blank = True
    job: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None  # a job header inside a Trace: block, until its Stage: line confirms it
    for raw_line in lines:
        line = raw_line.strip()
        blank = not line
        if state == "trace":
            if blank:
                prev_blank = True
                continue
            if pending is not None:
                field_ = _T_FIELD.match(line)
                if field_ and field_.group("key").lower() == "stage" and len(f.jobs) < MAX_JOBS:
                    job, pending, state = pending, None, "jobs"
                    f.jobs.append(job)
                else:
                    pending, prev_blank = None, False  # a log line that looked like a job header
                    continue
            elif prev_blank and (header := _job_header(line)):
                pending, prev_blank = header, False
                continue
            else:
                prev_blank = False
                continue
        prev_blank = blank
        if blank:
            continue
        if line.startswith(">"):
            if _title(line.lstrip("> ")):
                f.quoted_title = True
            continue
        if state == "head":
            if message_budget >= 0:
                if _T_AUTHOR.match(line) or message_budget <= 0:
                    message_budget = -1
                else:
                    message_budget -= len(raw_line) + 1
                    continue
            if f.kind is None and not f.matched:
                if found := _title(line):
                    f.kind, title_id, f.pipeline_name = found
                    f.matched = True
                    f.title_first = first
                    if title_id:
                        f.id_sources.append(("body title", title_id))
                    first = False
                    continue
                if _FORWARD_LINE.match(line):
                    f.forward_marker = f.forward_marker or "forward"
                elif _WROTE_LINE.match(line):
                    f.forward_marker = f.forward_marker or "reply"
            if first and not _BANNER.match(line):
                first = False
            if m := _T_PROJECT.match(line):
                if f.project_name is None:
                    f.project_name = m.group("name").strip()
                    _note_project_url(f, m.group("url"), "body Project link")
                continue
            if m := _T_BRANCH.match(line):
                f.ref = f.ref or m.group("ref")
                continue
            if m := _T_MR.match(line):
                f.mr_iid = f.mr_iid or m.group("iid")
                continue
            if m := _T_COMMIT.match(line):
                if f.sha is None:
                    _note_commit(f, m.group("sha"), m.group("url"))
                continue
            if _T_MESSAGE.match(line):
                message_budget = max(0, 51 - len(raw_line.split(":", 1)[1].strip()))
                continue
            if m := _T_PIPELINE.match(line):
                if f.pipeline_url is None and not any(s == "body Pipeline line" for s, _ in f.id_sources):
                    f.matched = True
                    if m.group("id"):
                        f.id_sources.append(("body Pipeline line", m.group("id")))
                    f.pipeline_name = f.pipeline_name or (m.group("name") or "").strip() or None
                    _note_pipeline_url(f, m.group("url"), "body Pipeline")
                if m2 := _T_HAD.search(line):
                    f.failed_count = int(m2.group("n"))
                    state = "jobs"
                continue
            if m := _T_HAD.match(line):
                f.failed_count = int(m.group("n"))
                state = "jobs"
                continue
        if _T_FOOTER.match(line) and state != "head":
            break
        if header := _job_header(line):
            state = "jobs"
            if len(f.jobs) >= MAX_JOBS:
                break
            job = header
            f.jobs.append(job)
            continue
        if state == "jobs" and job is not None:
            if line.lower().startswith("trace:"):
                state, prev_blank = "trace", False
                continue
            if m := _T_FIELD.match(line):
                key = m.group("key").lower()
                if job[key] is None:
                    job[key] = m.group("value") or None
    return f


# -- the HTML part --------------------------------------------------------------------------------
class _PreStrip:
    """Drops ``<pre>…</pre>`` (job log tails) from a stream of HTML without parsing them."""

    def __init__(self) -> None:
        self.in_pre = False
        self.tail = ""

    def feed(self, text: str) -> str:
        text, self.tail = self.tail + text, ""
        low = text.lower()
        out: list[str] = []
        pos = 0
        while True:
            if not self.in_pre:
                i = low.find("<pre", pos)
                if i < 0:
                    keep = max(pos, len(text) - 4)
                    out.append(text[pos:keep])
                    self.tail = text[keep:]
                    break
                if i + 4 >= len(text):
                    out.append(text[pos:i])
                    self.tail = text[i:]
                    break
                if low[i + 4] not in "> \t\r\n/":
                    out.append(text[pos : i + 4])
                    pos = i + 4
                    continue
                out.append(text[pos:i] + "<pre></pre>")
                self.in_pre, pos = True, i + 4
            else:
                i = low.find("</pre", pos)
                j = low.find(">", i) if i >= 0 else -1
                if i < 0 or j < 0:
                    self.tail = text[max(pos, len(text) - 6 if i < 0 else i) :]
                    break
                self.in_pre, pos = False, j + 1
        return "".join(out)


class _Cell:
    __slots__ = ("links", "own_links", "parts", "row", "size")

    def __init__(self, row: _Row) -> None:
        self.row, self.parts, self.size = row, [], 0
        self.links: list[tuple[str, str]] = []  #: (text, href) of every link inside, nested ones too
        self.own_links: list[tuple[str, str]] = []  #: links whose innermost cell this is

    def add(self, text: str) -> None:
        if self.size < _CELL_TEXT:
            piece = text[: _CELL_TEXT - self.size]
            self.parts.append(piece)
            self.size += len(piece)

    def text(self) -> str:
        return " ".join("".join(self.parts).split())


class _Row:
    __slots__ = ("cells", "classes")

    def __init__(self, classes: str) -> None:
        self.classes, self.cells = classes.split(), []


class _HtmlRows(HTMLParser):
    """Table rows and cells (with their links) of an HTML body; ``<title>`` kept apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[_Row] = []
        self.cells: list[_Cell] = []  # in document (start) order
        self.row_stack: list[_Row] = []
        self.cell_stack: list[tuple[_Cell, int]] = []
        self.link: tuple[str, list[str]] | None = None
        self.skip = 0
        self.title: list[str] | None = None
        self.title_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "title":
            self.title = []
        elif tag == "tr":
            row = _Row(dict(attrs).get("class") or "")
            self.rows.append(row)
            self.row_stack.append(row)
        elif tag in ("td", "th"):
            if not self.row_stack:
                row = _Row("")
                self.rows.append(row)
                self.row_stack.append(row)
            cell = _Cell(self.row_stack[-1])
            self.row_stack[-1].cells.append(cell)
            self.cells.append(cell)
            self.cell_stack.append((cell, len(self.row_stack)))
        elif tag == "a":
            self.link = ((dict(attrs).get("href") or "").strip(), [])
        elif tag in ("br", "p", "div", "li", "table", "span", "img"):
            self._data(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag == "title" and self.title is not None:
            self.title_text, self.title = " ".join("".join(self.title).split())[:1000], None
        elif tag == "tr" and self.row_stack:
            depth = len(self.row_stack)
            while self.cell_stack and self.cell_stack[-1][1] >= depth:
                self.cell_stack.pop()
            self.row_stack.pop()
        elif tag in ("td", "th") and self.cell_stack and self.cell_stack[-1][1] == len(self.row_stack):
            self.cell_stack.pop()
        elif tag == "a" and self.link is not None:
            href, parts = self.link
            self.link = None
            text = " ".join("".join(parts).split())[:500]
            if self.cell_stack:
                self.cell_stack[-1][0].own_links.append((text, href))
            for cell, _ in self.cell_stack[-_CELL_DEPTH:]:
                if len(cell.links) < 100:
                    cell.links.append((text, href))
        elif tag in ("p", "div", "li", "table"):
            self._data(" ")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.title is not None:
            if sum(map(len, self.title)) < 2000:
                self.title.append(data)
            return
        if self.link is not None and sum(map(len, self.link[1])) < 500:
            self.link[1].append(data)
        self._data(data)

    def _data(self, data: str) -> None:
        for cell, _ in self.cell_stack[-_CELL_DEPTH:]:
            cell.add(data)


def _label(cell: _Cell) -> tuple[str, str]:
    """(label, rest) of a cell: ``Project`` / ``Project: x`` -> ("project", "x")."""
    text = cell.text()
    head, sep, rest = text.partition(":")
    if sep and len(head) <= 20:
        return head.strip().lower(), rest.strip()
    return text.strip().lower(), ""


_ROW_LABELS = ("project", "branch", "commit", "merge request")
_H_PIPELINE = re.compile(r"^Pipeline\s+(?:#(?P<id>\d+)|(?P<name>.+?))\s+(?:triggered by|had)\b", re.I)


def _html_facts(parser: _HtmlRows) -> _Facts:
    f = _Facts("body")
    first_text = True
    for cell in parser.cells:  # the title: the first cell (in document order) that starts with one
        text = cell.text()
        if not text:
            continue
        if found := _title(text):
            f.kind, title_id, f.pipeline_name = found
            f.matched = True
            f.title_first = first_text
            if title_id:
                f.id_sources.append(("body title", title_id))
            break
        if first_text and not _BANNER.match(text):
            first_text = False
    seen: set[str] = set()
    for row in parser.rows:
        if not row.cells:
            continue
        label, rest = _label(row.cells[0])
        if label not in _ROW_LABELS or label in seen:
            continue
        single = len(row.cells) == 1
        if single and not rest:
            continue
        seen.add(label)
        links = row.cells[0].links if single else [link for c in row.cells[1:] for link in c.links]
        value = rest if single else " ".join(c.text() for c in row.cells[1:]).strip()
        if label == "project":
            if links:
                f.project_name = links[-1][0] or None
                _note_project_url(f, links[-1][1], "body Project link")
            else:
                f.project_name = value or None
        elif label == "branch":
            f.ref = value.split()[0] if value.split() else None
        elif label == "merge request":
            if m := re.match(r"!(\d+)", value):
                f.mr_iid = m.group(1)
        else:  # commit
            sha_link = next((lk for lk in links if re.fullmatch(_HEX, lk[0].lower())), None)
            first_word = value.split()[0] if value.split() else None
            _note_commit(f, sha_link[0] if sha_link else first_word, sha_link[1] if sha_link else None)
            if mr_link := next((lk for lk in links if re.fullmatch(r"!\d+", lk[0])), None):
                f.mr_iid = mr_link[0][1:]  # the "in !<iid>" link, never the commit message's text
    # "Pipeline #<id> triggered by" / "Pipeline #<id> had N failed builds.": the innermost such cell
    # (a wrapper cell's text can start with "Pipeline ..." too: the title)
    candidates = [(len(c.text()), i, c) for i, c in enumerate(parser.cells) if _H_PIPELINE.match(c.text())]
    for _, _, cell in sorted(candidates, key=lambda t: t[:2])[:1]:
        m = _H_PIPELINE.match(cell.text())
        assert m is not None
        f.matched = True
        if m.group("id"):
            f.id_sources.append(("body Pipeline line", m.group("id")))
        f.pipeline_name = f.pipeline_name or (m.group("name") or "").strip() or None
        if cell.links:
            text, href = cell.links[0]
            _note_pipeline_url(f, href, "body Pipeline")
            if (lm := re.fullmatch(r"#(\d+)", text)) and not m.group("id"):
                f.id_sources.append(("body Pipeline line", lm.group(1)))
    for cell in parser.cells:
        for _, href in cell.own_links:
            if found := _path_match(_PIPELINE_PATH, href):
                f.pipeline_links.append((found[0].group("id"), found[0].group("project"), found[1]))
    for cell in parser.cells:
        if m := _T_HAD.search(cell.text()):
            f.failed_count = int(m.group("n"))
            break
    f.jobs = _html_jobs(parser)
    return f


def _html_jobs(parser: _HtmlRows) -> list[dict]:
    jobs: list[dict] = []
    job: dict[str, Any] | None = None
    done_rows: set[int] = set()
    for cell in parser.cells:
        if len(jobs) >= MAX_JOBS:
            break
        row = cell.row
        if "build-state" in row.classes and len(row.cells) >= 2:
            if id(row) in done_rows or cell is not row.cells[-1]:
                continue
            done_rows.add(id(row))
            stage = row.cells[0].text() or None
            if cell.links:
                text, href = cell.links[0]
                link = _job_link(href)
                job = _job(link[0] if link else None, link[1] if link else None, "job")
                job["name"] = text or None
            else:
                job = _job(None, None, "external")
                job["name"] = cell.text() or None
            job["stage"] = stage
            jobs.append(job)
            continue
        found = False
        for text, href in cell.own_links:
            link = _job_link(href)
            if not link:
                continue
            found = True
            job = _job(link[0], link[1], "job")
            if text and not text.startswith("#"):
                job["name"] = text
                if len(row.cells) >= 2 and cell is not row.cells[0]:
                    job["stage"] = row.cells[0].text() or None
            jobs.append(job)
        if found or job is None:
            continue
        if m := _T_FIELD.match(cell.text()):
            key = m.group("key").lower()
            if job[key] is None:
                job[key] = m.group("value") or None
    return jobs


def _read_html(part: Message) -> tuple[_Facts, _Facts | None]:
    """(body facts, facts of the ``<title>``, which repeats the subject in GitLab's layout)."""
    parser = _HtmlRows()
    strip = _PreStrip()
    fed = 0
    try:
        for chunk in _part_text(part, TEXT_LIMIT):
            markup = strip.feed(chunk)
            if fed + len(markup) > HTML_LIMIT:
                parser.feed(markup[: HTML_LIMIT - fed])
                break
            fed += len(markup)
            parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError, IndexError):
        pass  # what was read so far counts
    title = _subject_facts(strip_subject_tags(parser.title_text), "HTML title") if parser.title_text else None
    return _html_facts(parser), title if title and title.matched else None


def _read_body(parts: _Parts) -> tuple[_Facts, _Facts | None, str]:
    """Facts of the text part, or of the HTML part when the text part shows no pipeline."""
    text = _text_facts(_lines(_part_text(parts.text, TEXT_LIMIT))) if parts.text is not None else None
    if text is not None and text.matched:
        return text, None, "text"
    if parts.html is not None:
        html, title = _read_html(parts.html)
        if html.matched or text is None:
            return html, title, "html"
    return text or _Facts("body"), None, "text"


# -- comparing ------------------------------------------------------------------------------------
_MR_REF = re.compile(r"^refs/merge-requests/(?P<iid>\d+)/\w+$")


def _norm_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _refs_agree(a: str, b: str) -> bool:
    a, b = _norm_ref(a), _norm_ref(b)
    ma, mb = _MR_REF.match(a), _MR_REF.match(b)
    if ma and mb:
        return ma.group("iid") == mb.group("iid")
    return a == b or bool(ma or mb)  # GitLab writes an MR's source branch in some places, the raw ref in others


def _paths_agree(a: str, b: str) -> bool:
    a, b = a.strip("/").lower(), b.strip("/").lower()
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)  # a URL may carry a relative URL root


def _shas_agree(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a.startswith(b) or b.startswith(a)


def _kinds_agree(a: str, b: str) -> bool:
    return a == b or {a, b} == {"success", "fixed"}


def _disagreement(what: str, values: list[tuple[str, str | None]], same: Any) -> str | None:
    known = [(src, v) for src, v in values if v]
    for (s1, v1), (s2, v2) in combinations(known, 2):
        if not same(v1, v2):
            return f"{what}: {s1} says {v1!r} but {s2} says {v2!r}"
    return None


# -- headers --------------------------------------------------------------------------------------
_PIPELINE_HEADERS = {
    "x-gitlab-project",
    "x-gitlab-project-id",
    "x-gitlab-project-path",
    "x-gitlab-pipeline-id",
    "x-gitlab-pipeline-ref",
    "x-gitlab-pipeline-status",
}
_RESOURCE_ID = re.compile(r"^x-gitlab-(?P<res>[a-z]+)-i?id$")
_WEAK_MARKS = ("x-gitlab-notificationreason", "x-gitlab-reply-key", "x-gitlab-confidentialissue")
_THREAD_ID = re.compile(
    r"<(?P<what>issue|merge_request|note|commit|epic|work_item|snippet|design|alert|wiki_page)_\d+(?:_\d+)?@", re.I
)
_LIST_ID = re.compile(r'^\s*"?(?P<path>[^\s<>"]+/[^\s<>"]+)"?\s*<(?P<id>\d+)\.[^<>]*>\s*$')
_RESOURCE_NAMES = {"mergerequest": "merge request", "workitem": "work item", "discussion": "comment", "build": "build"}


def _safe_header(msg: Message, fallback: Message, name: str, all_values: bool = False) -> list[str]:
    """Header values as text (RFC 2047 decoded, whitespace folded); a value the modern parser cannot
    read is taken from the plain (compat32) parse instead."""
    try:
        values = [str(v) for v in (msg.get_all(name) or [])]
    except _ERRORS:
        values = []
        for v in fallback.get_all(name) or []:
            try:
                values.append(str(make_header(decode_header(str(v)))))
            except _ERRORS:
                values.append(str(v))
    out = [" ".join(v.split()) for v in values]
    return out if all_values else out[:1]


def _senders(msg: Message, fallback: Message) -> list[str]:
    addresses: list[str] = []
    try:
        headers = msg.get_all("From") or []
        for header in headers:
            found = getattr(header, "addresses", None)
            if found is None:
                addresses += [addr for _, addr in getaddresses([str(header)])]
            else:
                addresses += [a.addr_spec for a in found]
    except _ERRORS:
        addresses = [addr for _, addr in getaddresses([str(v) for v in fallback.get_all("From") or []])]
    return [a.strip().lower() for a in addresses if a and a.strip() and a.strip() != "<>"]


def _other_notification(msg: Message, fallback: Message, has_pipeline: bool) -> str | None:
    """What a GitLab notification that is not a pipeline's is about, from its headers: the id header of
    another resource (``X-GitLab-Issue-ID``, ``-MergeRequest-IID``, ``-Discussion-ID``, ...) or a
    ``<issue_1@host>``-style thread id; without ``X-GitLab-Pipeline-Id`` also the headers GitLab adds to
    those (``X-GitLab-NotificationReason``, ``-Reply-Key``, ``*-State``)."""
    names = list(dict.fromkeys(k.lower() for k in fallback))
    for name in names:
        if name in _PIPELINE_HEADERS or name.startswith(("x-gitlab-project", "x-gitlab-pipeline")):
            continue
        if m := _RESOURCE_ID.match(name):
            return _RESOURCE_NAMES.get(m.group("res"), m.group("res"))
    for name in ("Message-ID", "In-Reply-To", "References"):
        for value in _safe_header(msg, fallback, name, all_values=True):
            if m := _THREAD_ID.search(value):
                return m.group("what").lower().replace("_", " ")
    if not has_pipeline:
        for name in names:
            if name in _WEAK_MARKS or (name.startswith("x-gitlab-") and name.endswith("-state")):
                return "issue, merge request or comment"
    return None


def _personal(msg: Message, fallback: Message, subject: str, parts: _Parts) -> tuple[str, str] | None:
    """("reply"|"forward", why) for a person's mail: GitLab's pipeline mails are never replies."""
    if _REPLY.match(subject):
        return "reply", f"the subject {_cut(subject, 80)!r} is a reply"
    if _FORWARD.match(subject):
        return "forward", f"the subject {_cut(subject, 80)!r} is a forward"
    for name in ("In-Reply-To", "References"):
        if _safe_header(msg, fallback, name):
            return "reply", f"it has an {name} header: a pipeline notification starts no thread and answers none"
    if parts.attached_message:
        return "forward", "it carries another message as an attachment"
    return None


# -- the parser -----------------------------------------------------------------------------------
def classify_mail(raw: bytes, *, allowed_senders: Sequence[str] | None = None) -> MailDecision:
    """The decision for one raw message; never raises."""
    try:
        mail = parse_pipeline_mail(raw, allowed_senders=allowed_senders)
    except MailIgnored as exc:
        return MailDecision("ignore", exc.kind, str(exc), exc.message_id or message_id_of(raw), exc.sender, exc.subject)
    except MailRejected as exc:
        return MailDecision("reject", exc.kind, str(exc), exc.message_id or message_id_of(raw), exc.sender, exc.subject)
    if mail.is_failure:
        return MailDecision("accept", "failed", "pipeline failed", mail.message_id, mail.sender, mail.subject, mail)
    return MailDecision(
        "ignore", "pipeline_status", f"pipeline status {mail.status}", mail.message_id, mail.sender, mail.subject, mail
    )


def parse_pipeline_mail(raw: bytes, *, allowed_senders: Sequence[str] | None = None) -> PipelineMail:
    """Parse one raw message into a :class:`PipelineMail` (any status). Raises :class:`MailRejected`
    for a message that needs a person and :class:`MailIgnored` for one that is no pipeline event;
    never anything else."""
    ctx: dict[str, Any] = {"message_id": message_id_of(raw), "sender": None, "subject": None}
    try:
        return _parse(_as_bytes(raw), ctx, allowed_senders)
    except (MailRejected, MailIgnored):
        raise
    except Exception as exc:
        raise MailRejected(
            "unparseable", f"cannot read the message ({type(exc).__name__}: {_cut(str(exc), 200)})", **ctx
        ) from exc


def _parse(data: bytes, ctx: dict[str, Any], allowed: Sequence[str] | None) -> PipelineMail:
    def reject(kind: str, message: str) -> MailRejected:
        return MailRejected(kind, message, **ctx)

    def ignore(kind: str, message: str) -> MailIgnored:
        return MailIgnored(kind, message, **ctx)

    msg = BytesParser(policy=policy.default).parsebytes(data)
    fallback = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    if not fallback.keys():
        raise reject("unparseable", "not an e-mail: no RFC 5322 header block found")

    def header(name: str) -> str | None:
        values = _safe_header(msg, fallback, name)
        return values[0] if values and values[0] else None

    # 1. the sender
    senders = _senders(msg, fallback)
    subject_raw = header("Subject") or ""
    ctx.update(sender=senders[0] if senders else None, subject=subject_raw or None)
    if len(senders) > 1:
        raise reject(
            "unknown_sender",
            f"From: names {len(senders)} addresses ({', '.join(senders[:4])}); a GitLab notification has one sender",
        )
    sender = senders[0] if senders else ""
    if not sender_allowed(sender, allowed):
        raise reject("unknown_sender", f"sender {sender or '(no From address)'!r} is not on the allowed-senders list")

    # 2. what kind of message, from the headers
    subject = strip_subject_tags(subject_raw)
    has_pipeline = bool(fallback.get_all("X-GitLab-Pipeline-Id"))
    other = _other_notification(msg, fallback, has_pipeline)
    if other:
        if has_pipeline:
            raise reject("spoofed", f"the message carries pipeline headers and the headers of a {other} notification")
        raise ignore("not_pipeline", f"a GitLab {other} notification, not a pipeline notification")
    parts = _find_parts(msg)
    personal = _personal(msg, fallback, subject, parts)
    if personal:
        if has_pipeline:
            raise reject("spoofed", f"X-GitLab-Pipeline-Id on a person's {personal[0]}: {personal[1]}")
        raise ignore(personal[0], f"a person's {personal[0]}, not a pipeline notification: {personal[1]}")

    # 3. subject and body
    sub = _subject_facts(subject)
    body, title, body_format = _read_body(parts)
    list_id = _LIST_ID.match(header("List-Id") or "")
    for name in ("X-GitLab-Pipeline-Id", "X-GitLab-Project-Path", "X-GitLab-Project-Id", "X-GitLab-Pipeline-Ref"):
        if len(set(_safe_header(msg, fallback, name, all_values=True))) > 1:
            raise reject("spoofed", f"the message carries several different {name} headers")
    h_id, h_path, h_project_id = header("X-GitLab-Pipeline-Id"), header("X-GitLab-Project-Path"), None
    h_ref, h_status = header("X-GitLab-Pipeline-Ref"), (header("X-GitLab-Pipeline-Status") or "").lower() or None
    if has_pipeline and not h_id:
        raise reject("unparseable", "X-GitLab-Pipeline-Id is empty")
    if h_id is not None and not h_id.isdigit():
        raise reject("unparseable", f"X-GitLab-Pipeline-Id is not a number: {_cut(h_id, 40)!r}")
    if (value := header("X-GitLab-Project-Id")) is not None:
        if not value.isdigit():
            raise reject("unparseable", f"X-GitLab-Project-Id is not a number: {_cut(value, 40)!r}")
        h_project_id = value
    if h_status and not re.fullmatch(r"[a-z_]{1,40}", h_status):
        raise reject("unparseable", f"X-GitLab-Pipeline-Status is not a status word: {_cut(h_status, 40)!r}")

    notes: list[str] = []
    if has_pipeline:
        linked = [link for link in body.pipeline_links if link[0] == h_id]
        if not body.matched and linked:  # GitLab's HTML labels are translated: a layout in another language
            body.matched = True
            body.id_sources.append(("body link", linked[0][0]))
            body.project_urls.append(("body link", linked[0][1]))
            body.pipeline_url = linked[0][2]
            notes.append("the body's layout is not one this parser knows (another language?): read by its link")
        if not body.matched:
            why = "the body is empty or unreadable" if not (parts.text or parts.html) else "the body shows no pipeline"
            raise reject("spoofed", f"X-GitLab-Pipeline-Id is {h_id} but {why}")
    else:
        if not (sub.matched or body.matched or (title and title.matched)):
            raise reject(
                "not_gitlab",
                "no X-GitLab-Pipeline-Id header, and neither the subject nor the body looks like a GitLab "
                "pipeline e-mail",
            )
        if body.forward_marker and not body.title_first:
            raise ignore(body.forward_marker, f"a person's {body.forward_marker} quoting a pipeline notification")
        if body.quoted_title and not body.matched:
            raise ignore("reply", "a person's reply quoting a pipeline notification")
        if not body.matched:
            raise reject(
                "unparseable",
                "the subject names a pipeline but the body is not a pipeline notification (and there are no "
                "X-GitLab-* headers to go by)",
            )
        if not body.title_first:
            raise reject(
                "unparseable",
                "the body shows a pipeline notification but does not start with one (a paste or a forward?), "
                "and there are no X-GitLab-* headers to go by",
            )

    # 4. what must agree
    sources = [s for s in (sub, title) if s is not None]
    ids = [("X-GitLab-Pipeline-Id", h_id)] + [i for s in (*sources, body) for i in s.id_sources]
    list_path = list_id.group("path").strip("/") if list_id else None
    list_project_id = list_id.group("id") if list_id else None
    paths = [("X-GitLab-Project-Path", h_path), ("List-Id", list_path), *body.project_urls]
    refs = [("X-GitLab-Pipeline-Ref", h_ref)] + [(s.source, s.ref) for s in (*sources, body)]
    mr_from_ref = next((m.group("iid") for _, r in refs if r and (m := _MR_REF.match(_norm_ref(r)))), None)
    mrs = [("merge-request ref", mr_from_ref)] + [(s.source, s.mr_iid) for s in (*sources, body)]
    shas = [(s.source, s.sha) for s in (*sources, body)] + [("body Commit link", body.sha_full)]
    kinds = [(s.source, s.kind) for s in (*sources, body)]
    for problem in (
        _disagreement("pipeline id", ids, str.__eq__),
        _disagreement("project id", [("X-GitLab-Project-Id", h_project_id), ("List-Id", list_project_id)], str.__eq__),
        _disagreement("project path", paths, _paths_agree),
        _disagreement("ref", refs, _refs_agree),
        _disagreement("merge request", mrs, str.__eq__),
        _disagreement("commit", shas, _shas_agree),
        _disagreement("status", kinds, _kinds_agree),
    ):
        if problem:
            raise reject("spoofed", problem)

    # 5. the result
    pipeline_id = h_id or next((v for _, v in ids if v), None)
    project_id = h_project_id or list_project_id
    project_path = h_path or list_path or next((p.strip("/") for _, p in body.project_urls if p), None)
    kind = next((k for _, k in kinds if k), None)
    status = kind or (h_status if h_status else None)
    if kind and h_status and h_status != {"fixed": "success"}.get(kind, kind):
        notes.append(
            f"X-GitLab-Pipeline-Status is {h_status!r} on a {kind} mail: GitLab reads it when the queued mail is "
            "rendered (the pipeline changed meanwhile, e.g. a retry)"
        )
    if kind in ("success", "fixed") and any(k == "fixed" for _, k in kinds):
        status = "fixed"
    missing = [w for w, v in (("pipeline id", pipeline_id), ("status", status)) if not v]
    if not (project_id or project_path):
        missing.append("project (id or path)")
    if missing:
        raise reject(
            "unparseable",
            f"looks like a GitLab pipeline e-mail but no {' and '.join(missing)} found in the headers, subject or body",
        )
    assert pipeline_id and status
    if not pipeline_id.isdigit():
        raise reject("unparseable", f"the pipeline id is not a number: {_cut(pipeline_id, 40)!r}")
    if body.failed_count is not None and status == "failed" and len(body.jobs) < min(body.failed_count, MAX_JOBS):
        notes.append(f"the {body_format} body lists {len(body.jobs)} of the {body.failed_count} failed jobs it counts")
    return PipelineMail(
        message_id=ctx["message_id"],
        sender=sender,
        subject=subject_raw,
        status=status,
        project_id=project_id,
        project_path=project_path,
        project_name=header("X-GitLab-Project") or sub.project_name or body.project_name,
        pipeline_id=pipeline_id,
        ref=h_ref or sub.ref or (title.ref if title else None) or body.ref,
        sha=sub.sha or body.sha or (title.sha if title else None) or body.sha_full,
        pipeline_url=body.pipeline_url,
        failed_jobs=tuple(body.jobs),
        parsed_from="headers" if has_pipeline else "body",
        header_status=h_status,
        failed_count=body.failed_count,
        notes=tuple(notes),
    )
