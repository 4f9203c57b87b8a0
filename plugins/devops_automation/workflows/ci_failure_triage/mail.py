"""Parse GitLab pipeline notification e-mails (``Notify.pipeline_{failed,success,fixed}_email``).

``ci_failure_triage`` reads its mailbox and must turn every message into either a
:class:`PipelineMail` or a :class:`MailRejected` with a reason a human can act on. The rules
(gitlab.md §1.1):

* the sender must be on the allow-list (exact address or ``@domain``) -> else ``unknown_sender``;
* the ``X-GitLab-Pipeline-*`` / ``X-GitLab-Project*`` headers are the primary source. When they are
  present the body must corroborate them: a body naming another pipeline id or another project
  path, or naming no pipeline at all (a newsletter carrying a copied ``X-GitLab-Pipeline-Id``),
  is ``spoofed``;
* without those headers the subject (three subject eras) and the text body (or the HTML body turned
  into text) are parsed (``parsed_from="body"``); a recognisable mail without a pipeline id and
  status is ``unparseable``; a message with nothing GitLab-like is ``not_gitlab``;
* anything unexpected (broken MIME, bad header values, garbage) is ``unparseable``, never a crash.
  Only the first ``PART_LIMIT`` bytes of each body part are decoded, so huge mails stay cheap.

A ``fixed`` mail carries ``X-GitLab-Pipeline-Status: success``; its status is reported as ``fixed``
(from the subject or body title) because that is the useful "recovered" event. Without GitLab
headers ``project_path`` comes from ``List-Id`` or else the project link's URL path (which then
includes any relative URL root, e.g. ``gitlab/acme/app``) and ``project_id`` from ``List-Id``.
Pure Python (stdlib ``email`` with ``policy.default``); no Airflow imports.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import quopri
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

PART_LIMIT = 200_000  #: decoded bytes looked at per body part
MAX_PARTS = 50  #: MIME parts walked at most
MAX_JOBS = 500  #: failed jobs kept at most
_LINE_LIMIT = 2_000  #: characters per body line looked at (keeps the line regexes cheap)
KINDS = ("unknown_sender", "not_gitlab", "spoofed", "unparseable")

_WORDS = {"failed": "failed", "successful": "success", "fixed": "fixed", "succeeded": "success", "passed": "success"}
_SEP = r"\s*\|\s*"
_SHA = r"(?P<sha>[0-9a-f]{7,40})\b"
_SUBJECTS = (  # current, intermediate, current without project prefix, old (≈ 12.x)
    re.compile(
        rf"^\s*(?P<proj>[^|]+?){_SEP}(?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>\S+){_SEP}{_SHA}", re.I
    ),
    re.compile(
        rf"^\s*(?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>\S+){_SEP}(?P<proj>[^|]+?){_SEP}{_SHA}", re.I
    ),
    re.compile(rf"^\s*(?P<st>Failed|Successful|Fixed) pipeline for (?P<ref>\S+){_SEP}{_SHA}", re.I),
    re.compile(
        rf"^\s*(?:(?P<proj>[^|]+?){_SEP})?Pipeline #(?P<id>\d+) has (?P<st>failed|succeeded|passed)"
        rf"(?: for (?P<ref>\S+))?(?:{_SEP}{_SHA})?",
        re.I,
    ),
)
_TITLES = (  # (regex, status): the first body line in the known template versions
    (
        re.compile(
            r"^\s*(?:Your pipeline|Pipeline) has been fixed(?: and (?:#(?P<id>\d+)|.+?) has passed)?", re.I | re.M
        ),
        "fixed",
    ),
    (re.compile(r"^\s*Pipeline (?:#(?P<id>\d+)|.+?) has (?P<st>failed|passed)!", re.I | re.M), None),
    (re.compile(r"^\s*Your pipeline has (?P<st>failed|passed)", re.I | re.M), None),
)
_LINK = r"\s*\(\s*(?P<url>https?://[^\s()<>]+)\s*\)"
_PROJECT = re.compile(rf"^\s*Project:?\s+(?P<name>[^\n]+?){_LINK}", re.I | re.M)
_BRANCH = re.compile(rf"^\s*Branch:?\s+(?P<ref>\S+){_LINK}", re.I | re.M)
_COMMIT = re.compile(r"^\s*Commit:?\s+(?P<sha>[0-9a-f]{7,40})\b", re.I | re.M)
_PIPELINE = re.compile(rf"^\s*Pipeline\s+(?:#(?P<id>\d+)|[^\n]+?){_LINK}\s+triggered by", re.I | re.M)
_URL = re.compile(r"https?://[^\s()<>\"']+")
_PIPELINE_URL = re.compile(r"^(?P<url>.+?/-/pipelines/(?P<id>\d+))(?:[/?#]|$)")
_JOB = re.compile(rf"^\s*Job:?\s+#(?P<id>\d+)(?:{_LINK})?", re.I)
_FIELD = re.compile(r"^\s*(?P<key>Stage|Name):?\s+(?P<value>.+?)\s*$", re.I)
_LIST_ID = re.compile(r"^\s*(?P<path>[^\s<>]+/[^\s<>]+)?\s*<(?P<id>\d+)\.", re.I)


class MailRejected(ValueError):
    """A message that is not a usable GitLab pipeline e-mail; ``kind`` is one of :data:`KINDS`."""

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

    def __reduce__(self) -> Any:  # picklable with its keyword attributes
        return (_rebuild_rejected, (self.kind, str(self), self.message_id, self.sender, self.subject))


def _rebuild_rejected(
    kind: str, message: str, message_id: str | None, sender: str | None, subject: str | None
) -> MailRejected:
    return MailRejected(kind, message, message_id=message_id, sender=sender, subject=subject)


@dataclass(frozen=True)
class PipelineMail:
    message_id: str
    sender: str
    subject: str
    status: str
    project_id: str | None
    project_path: str | None
    project_name: str | None
    pipeline_id: str
    ref: str | None
    sha: str | None
    pipeline_url: str | None
    failed_jobs: tuple[dict, ...]
    parsed_from: str

    @property
    def is_failure(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (``failed_jobs`` becomes a list of plain dicts)."""
        out = asdict(self)
        out["failed_jobs"] = [dict(j) for j in self.failed_jobs]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineMail:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__}
        fields["failed_jobs"] = tuple(dict(j) for j in fields["failed_jobs"] or ())
        return cls(**fields)


# -- small helpers --------------------------------------------------------------------------------
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
    except Exception:  # noqa: BLE001 - never raises: fall back to the content hash
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


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _sender_of(msg: Message) -> str:
    header = msg.get("From")
    if header is None:
        return ""
    addresses = getattr(header, "addresses", None)
    if addresses:
        return (addresses[0].addr_spec or "").strip().lower()
    pairs = getaddresses([str(header)])
    return pairs[0][1].strip().lower() if pairs else ""


def _decode_part(part: Message) -> str:
    """The first :data:`PART_LIMIT` bytes of a leaf part, decoded leniently to text."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"

    def raw(text: str) -> bytes:  # get_payload() has already decoded 8-bit bytes with the charset
        try:
            return text.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode(charset, "replace")

    cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if cte == "base64":
        chunk = re.sub(r"[^A-Za-z0-9+/]", "", payload[: PART_LIMIT * 4 // 3 + 4096])
        chunk = chunk[: min(len(chunk), PART_LIMIT * 4 // 3 + 4) // 4 * 4]
        try:
            data = base64.b64decode(chunk)
        except (binascii.Error, ValueError):
            data = b""
    elif cte == "quoted-printable":
        data = quopri.decodestring(raw(payload[: PART_LIMIT * 3]))
    else:
        data = raw(payload[:PART_LIMIT])
    return data[:PART_LIMIT].decode(charset, "replace")


class _HtmlText(HTMLParser):
    """HTML to text with links rendered like GitLab's text template: ``label ( url )``."""

    BLOCK = frozenset(
        {"br", "p", "div", "tr", "table", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "body", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hrefs: list[str | None] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag == "a":
            self.hrefs.append(dict(attrs).get("href"))
        elif tag in self.BLOCK:
            self.out.append("\n")
        elif tag == "td":
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and self.hrefs:
            href = self.hrefs.pop()
            if href and href.startswith(("http://", "https://")):
                self.out.append(f" ( {href} )")
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = (re.sub(r"[ \t\xa0]+", " ", line).strip() for line in "".join(self.out).split("\n"))
        return "\n".join(line for line in lines if line)


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.text()


def _body_text(msg: Message) -> str:
    """The first text/plain part, else the first text/html part as text (attachments skipped)."""
    plain = html = None
    for index, part in enumerate(msg.walk()):
        if index >= MAX_PARTS:
            break
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = _decode_part(part)
        elif ctype == "text/html" and html is None:
            html = _decode_part(part)
    if plain and plain.strip():
        return plain
    return html_to_text(html) if html else ""


# -- what the subject and the body say ------------------------------------------------------------
@dataclass
class _Facts:
    matched: bool = False
    status: str | None = None
    pipeline_ids: tuple[str, ...] = ()
    project_name: str | None = None
    project_url: str | None = None
    ref: str | None = None
    sha: str | None = None
    pipeline_url: str | None = None
    failed_jobs: tuple[dict, ...] = ()


def _subject_facts(subject: str) -> _Facts:
    for pattern in _SUBJECTS:
        m = pattern.match(subject)
        if m:
            groups = m.groupdict()
            proj = (groups.get("proj") or "").strip() or None
            ids = (groups["id"],) if groups.get("id") else ()
            return _Facts(True, _WORDS[m.group("st").lower()], ids, proj, None, groups.get("ref"), groups.get("sha"))
    return _Facts()


def _jobs(lines: list[str]) -> tuple[dict, ...]:
    jobs: list[dict] = []
    current: dict | None = None
    for line in lines:
        m = _JOB.match(line)
        if m:
            if len(jobs) >= MAX_JOBS:
                break
            current = {"id": m.group("id"), "name": None, "stage": None, "url": m.group("url")}
            jobs.append(current)
            continue
        f = _FIELD.match(line) if current is not None else None
        if f and current is not None and current[f.group("key").lower()] is None:
            current[f.group("key").lower()] = f.group("value")
    return tuple(jobs)


def _body_facts(text: str) -> _Facts:
    lines = [line[:_LINE_LIMIT] for line in text.splitlines()]
    text = "\n".join(lines)
    facts = _Facts()
    ids: list[str] = []
    for pattern, status in _TITLES:
        m = pattern.search(text)
        if m:
            facts.matched = True
            facts.status = status or _WORDS[m.group("st").lower()]
            ids += [m.group("id")] if m.group("id") else []
            break
    if m := _PIPELINE.search(text):
        facts.matched = True
        facts.pipeline_url = m.group("url")
        ids += [m.group("id")] if m.group("id") else []
    for i, url in enumerate(_URL.finditer(text)):
        if i >= 1000:
            break
        if m := _PIPELINE_URL.match(url.group(0)):
            facts.pipeline_url = facts.pipeline_url or m.group("url")
            ids.append(m.group("id"))
    facts.pipeline_ids = tuple(dict.fromkeys(ids))
    if m := _PROJECT.search(text):
        facts.project_name, facts.project_url = m.group("name").strip(), m.group("url")
    elif facts.pipeline_url and "/-/pipelines/" in facts.pipeline_url:
        facts.project_url = facts.pipeline_url.split("/-/pipelines/")[0]
    if m := _BRANCH.search(text):
        facts.ref = m.group("ref")
    if m := _COMMIT.search(text):
        facts.sha = m.group("sha")
    facts.failed_jobs = _jobs(lines)
    return facts


def _url_path(url: str | None) -> str | None:
    path = urlsplit(url).path.strip("/") if url else ""
    return path or None


def _same_project(url: str, path: str) -> bool:
    have, want = (_url_path(url) or "").lower(), path.strip("/").lower()
    return have == want or have.endswith("/" + want)


# -- the parser -----------------------------------------------------------------------------------
def parse_pipeline_mail(raw: bytes, *, allowed_senders: Sequence[str] | None = None) -> PipelineMail:
    """Parse one raw message; raises :class:`MailRejected` (never anything else) when it is unusable."""
    ctx: dict[str, Any] = {"message_id": message_id_of(raw), "sender": None, "subject": None}
    try:
        return _parse(_as_bytes(raw), ctx, allowed_senders)
    except MailRejected:
        raise
    except Exception as exc:
        raise MailRejected(
            "unparseable", f"cannot read the message ({type(exc).__name__}: {str(exc)[:200]})", **ctx
        ) from exc


def _parse(data: bytes, ctx: dict[str, Any], allowed: Sequence[str] | None) -> PipelineMail:
    def reject(kind: str, message: str) -> MailRejected:
        return MailRejected(kind, message, **ctx)

    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    if not msg.keys():
        raise reject("unparseable", "not an e-mail: no RFC 5322 header block found")
    sender = _sender_of(msg)
    subject = _header(msg, "Subject") or ""
    ctx.update(sender=sender or None, subject=subject or None)
    if not sender_allowed(sender, allowed):
        raise reject("unknown_sender", f"sender {sender or '(no From address)'!r} is not on the allowed-senders list")
    sub, body = _subject_facts(subject), _body_facts(_body_text(msg))
    list_id = _LIST_ID.match(_header(msg, "List-Id") or "")
    header_id = _header(msg, "X-GitLab-Pipeline-Id")
    named = tuple(dict.fromkeys(sub.pipeline_ids + body.pipeline_ids))

    if header_id is not None:
        parsed_from, pipeline_id = "headers", header_id
        if not header_id.isdigit():
            raise reject("unparseable", f"X-GitLab-Pipeline-Id is not a number: {header_id[:40]!r}")
        for name in ("X-GitLab-Pipeline-Id", "X-GitLab-Project-Path", "X-GitLab-Project-Id"):
            if len({" ".join(str(v).split()) for v in msg.get_all(name, [])}) > 1:
                raise reject("spoofed", f"the message carries several different {name} headers")
        others = [i for i in named if i != header_id]
        if others:
            raise reject(
                "spoofed", f"X-GitLab-Pipeline-Id is {header_id} but the subject/body names pipeline #{others[0]}"
            )
        if not named:
            raise reject("spoofed", f"X-GitLab-Pipeline-Id is {header_id} but the body does not mention that pipeline")
        header_path = _header(msg, "X-GitLab-Project-Path")
        if header_path and body.project_url and not _same_project(body.project_url, header_path):
            raise reject(
                "spoofed", f"X-GitLab-Project-Path is {header_path!r} but the body links project {body.project_url!r}"
            )
        project_id = _header(msg, "X-GitLab-Project-Id")
        if project_id is not None and not project_id.isdigit():
            raise reject("unparseable", f"X-GitLab-Project-Id is not a number: {project_id[:40]!r}")
        status = (_header(msg, "X-GitLab-Pipeline-Status") or "").lower() or sub.status or body.status
        if status and not re.fullmatch(r"[a-z_]{1,40}", status):
            raise reject("unparseable", f"X-GitLab-Pipeline-Status is not a status word: {status[:40]!r}")
        if status == "success" and "fixed" in (sub.status, body.status):
            status = "fixed"
        project_name = _header(msg, "X-GitLab-Project") or sub.project_name or body.project_name
        ref = _header(msg, "X-GitLab-Pipeline-Ref") or sub.ref or body.ref
    else:
        parsed_from = "body"
        if not (sub.matched or body.matched):
            raise reject(
                "not_gitlab",
                "no X-GitLab-Pipeline-Id header, and neither the subject nor the body looks like "
                "a GitLab pipeline e-mail",
            )
        if len(named) > 1:
            raise reject(
                "unparseable", f"the subject/body name several pipelines: {', '.join('#' + i for i in named[:5])}"
            )
        pipeline_id = named[0] if named else ""
        status = sub.status or body.status
        header_path, project_id = None, list_id.group("id") if list_id else None
        project_name, ref = sub.project_name or body.project_name, sub.ref or body.ref
    if not pipeline_id or not status:
        missing = " and ".join(w for w, v in (("pipeline id", pipeline_id), ("status", status)) if not v)
        raise reject(
            "unparseable", f"looks like a GitLab pipeline e-mail but no {missing} found in the headers, subject or body"
        )
    project_path = header_path or (list_id.group("path") if list_id else None) or _url_path(body.project_url)
    return PipelineMail(
        message_id=ctx["message_id"],
        sender=sender,
        subject=subject,
        status=status,
        project_id=project_id,
        project_path=project_path,
        project_name=project_name,
        pipeline_id=pipeline_id,
        ref=ref,
        sha=sub.sha or body.sha,
        pipeline_url=body.pipeline_url,
        failed_jobs=body.failed_jobs,
        parsed_from=parsed_from,
    )
