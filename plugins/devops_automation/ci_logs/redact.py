"""Secret redaction: every text that leaves the process (LLM request, Slack, Telegram, the database)
goes through :func:`redact` first. A secret is replaced by ``[REDACTED:<kind>]``.

Detected, in this order (the first rule to claim a span wins):

* PEM private keys (``-----BEGIN … PRIVATE KEY-----`` up to the END line, or up to the last body
  line when the END line is missing), and lines that look like a PEM body on their own;
* tokens with a recognisable shape: AWS access key ids, GitHub (``ghp_``/``gho_``/``ghu_``/``ghs_``/
  ``ghr_``/``github_pat_``), GitLab (``glpat-`` and the other ``gl…-`` prefixes), Slack (``xox…-``,
  ``xapp-``, webhook URLs), OpenAI/Anthropic (``sk-…``), Google API keys, Stripe, npm, PyPI,
  Telegram bot tokens, JWTs;
* ``Authorization:``/``Proxy-Authorization:`` headers and API-key headers (the scheme is kept);
* passwords in URLs (``scheme://user:password@host``);
* ``KEY=value`` / ``key: value`` / ``"key": "value"`` / ``--key value`` where the name says secret,
  token, password, api key, private key, credentials…;
* high-entropy strings right after such a word ("using token 9f8A…").

Look-alikes are left alone: commit SHAs and other pure hex digests, UUIDs, version numbers, numeric
or boolean values of ``*_tokens``-style settings (``max_tokens=4000``), placeholders (``***``,
``${{ secrets.X }}``, ``$TOKEN``) and text already redacted.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

REDACTED = "[REDACTED:{kind}]"
_ALREADY = r"(?!\[REDACTED:)"


@dataclass
class Redaction:
    """Redacted text and how many secrets of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _mark(kind: str) -> str:
    return REDACTED.format(kind=kind)


def shannon_entropy(s: str) -> float:
    """Bits per character."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


_HEX_ONLY = re.compile(r"^(?:[0-9a-f]+|[0-9A-F]+)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PLACEHOLDER = re.compile(
    r"^(?:\*+|x{3,}|X{3,}|\.{3}|…|<[^>]*>|\$\{\{.*\}\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|%\(?\w*\)?s|\{\{.*\}\}|\{[A-Za-z_]\w*\}"
    r"|null|none|nil|true|false|yes|no|on|off|undefined|empty|required|optional|redacted|masked|hidden|secret|password|token|changeme|string|str|int|bool"
    r"|\[REDACTED[^\]]*\]|\[MASKED\]|\[secure\]|\[FILTERED\]|\(hidden\)|\*\*\*\*\*\*)$",
    re.I,
)


def _looks_random(value: str, min_len: int = 16, min_entropy: float = 3.0) -> bool:
    """A credential-like string: long, varied, not a hex digest / UUID / version / word."""
    v = value.strip("'\"")
    if len(v) < min_len or _UUID.match(v) or _HEX_ONLY.match(v):
        return False
    if re.fullmatch(r"[\d.]+|v?\d+(?:\.\d+)+(?:[-+][\w.]+)?", v):  # numbers, versions
        return False
    if re.fullmatch(r"[A-Za-z]+(?:[-_][A-Za-z]+)*", v) and len(v) < 40:  # plain words / identifiers
        return False
    if re.fullmatch(r"\.?[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+\.?", v):  # dotted names: com.example.TokenService
        return False
    if "/" in v and re.fullmatch(r"[\w.-]*(?:/[\w.-]+)+/?", v) and shannon_entropy(v) < 4.2:  # paths
        return False
    classes = sum(bool(re.search(p, v)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    return classes >= 2 and shannon_entropy(v) >= min_entropy


# ---- rules ---------------------------------------------------------------------------------------
Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str]], str] | None]

_SECRET_NAME = (
    r"(?:[A-Za-z0-9]+[_.-])*(?:[A-Za-z0-9]*(?:secret|token|passw(?:or)?d|passwd|passphrase|pwd|pass|api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret[_-]?key"
    r"|client[_-]?secret|credentials?|auth[_-]?key|session[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key|webhook[_-]?url|dsn|connection[_-]?string)[A-Za-z0-9]*)"
    r"(?:[_.-][A-Za-z0-9]+)*"
)
_SECRET_WORD = (
    r"(?:secret|token|passw(?:or)?d|passwd|passphrase|pwd|pass|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth[_-]?key"
    r"|session[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key|webhook[_-]?url|dsn|connection[_-]?string)"
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_NOT_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:tokens?[_.-]?(?:count|usage|limit|type|url|endpoint|file|path|name|id|expir\w*|ttl|length|len)|max[_.-]?tokens?|\w*tokens$|\w*_tokens?_\w*count"
    r"|password[_.-]?(?:length|len|policy|min\w*|max\w*|file|path|prompt|stdin|reset\w*|changed|expir\w*)|secret[_.-]?(?:name|ref|id|path|file|arn|version|store)"
    r"|(?:key|secret|token)[_.-]?(?:ring|id|file|path|name|store|vault)|bypass|compass|passenger|pass(?:ed|es|ing|through|thru)?$|\w+pass(?:ed|es|ing)?$|tokeni[sz]\w*)(?:$|[_.-])|tokeni[sz]|tokens|^test",
    re.I,
)


def _value_is_secret(value: str, strict_name: bool) -> bool:
    v = value.strip().strip("'\"`")
    if not v or _PLACEHOLDER.match(v) or v.startswith("["):  # [MASKED], [REDACTED:…], [secure]
        return False
    if re.fullmatch(r"\d{1,8}|\d+\.\d+|[<>]=?\d+", v):  # counts, limits
        return False
    if re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", v):  # the name of a variable: server-password: GITHUB_TOKEN
        return False
    if re.fullmatch(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*){2,}", v):  # a qualified name: org.example.Foo
        return False
    if len(v) < 4:
        return False
    if strict_name:
        return True
    return _looks_random(v, min_len=12, min_entropy=2.8)


def _pem_body(m: re.Match[str]) -> str:
    body = m.group(0)
    if body.count("/") > 4 or shannon_entropy(body) < 4.8:  # a path or a word salad, not random base64
        return body
    return _mark("private_key")


def _kv(m: re.Match[str]) -> str:
    text, start = m.string, m.start()
    while start > 0 and text[start - 1] in _NAME_CHARS:  # the whole name: DB_PASSWORD, client_secret, …
        start -= 1
    name = text[start : m.end("rest")]
    value = m.group("value")
    if _NOT_SECRET_NAME.search(name) or not _value_is_secret(value, strict_name=True):
        return m.group(0)
    if text[m.end() : m.end() + 1] == "(" or value.endswith("("):  # code: token = next(...)
        return m.group(0)
    quote = value[0] if value[:1] in "'\"" and value[-1:] == value[0] and len(value) > 1 else ""
    return f"{m.group('kw')}{m.group('rest')}{m.group('sep')}{quote}{_mark('secret')}{quote}"


def _flag(m: re.Match[str]) -> str:
    name, value = m.group("name"), m.group("value")
    if _NOT_SECRET_NAME.search(name.lstrip("-")) or not _value_is_secret(value, strict_name=True):
        return m.group(0)
    return f"{name}{m.group('sep')}{_mark('secret')}"


def _near_word(m: re.Match[str]) -> str:
    value = m.group("value")
    if not _looks_random(value, min_len=16, min_entropy=3.0):
        return m.group(0)
    return m.group(0)[: m.start("value") - m.start(0)] + _mark("high_entropy")


def _auth(m: re.Match[str]) -> str:
    cred = m.group("cred")
    if cred.startswith("[REDACTED") or _PLACEHOLDER.match(cred):
        return m.group(0)
    return f"{m.group('head')}{m.group('scheme') or ''}{_mark('authorization')}"


def _aws_secret(m: re.Match[str]) -> str:
    return m.group("sep") + _mark("aws_secret_key")


def _login_password(m: re.Match[str]) -> str:
    value = m.group("value")
    if _PLACEHOLDER.match(value) or value.startswith(("[REDACTED", "%", "${", "<")):
        return m.group(0)
    return m.group("head") + _mark("secret")


def _url_password(m: re.Match[str]) -> str:
    pw = m.group("pw")
    if pw.startswith("[REDACTED") or _PLACEHOLDER.match(pw):
        return m.group(0)
    return f"{m.group('scheme')}{m.group('user')}:{_mark('url_password')}@"


_SCHEMES = r"bearer|basic|token|digest|negotiate|bot|apikey|api-key|sso-key|otp"
_PEM_BODY_LINE = r"(?:[ \t]*\d+: )?[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*"
RULES: list[Rule] = [
    (
        "private_key",
        re.compile(
            r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|(?:\r?\n" + _PEM_BODY_LINE + r")*)"
        ),
        None,
    ),
    ("private_key", re.compile(r"-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----"), None),
    # a PEM body line on its own (64 base64 characters, mixed case and digits) — e.g. an excerpt that
    # kept a middle line of a key without its BEGIN line
    (
        "private_key",
        re.compile(
            r"(?m)(?<![\w+/=])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*\d)"
            r"[A-Za-z0-9+/]{60,76}={0,2}(?=[ \t]*$)"
        ),
        _pem_body,
    ),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b"), None),
    (
        "aws_secret_key",
        re.compile(
            r"(?i)(?<=aws_secret_access_key)(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
            + _ALREADY
            + r"[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
        ),
        _aws_secret,
    ),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), None),
    (
        "gitlab_token",
        re.compile(
            r"\b(?:glpat|glptt|gldt|glrt|glcbt|glsoat|glffct|glimt|glagent|gloas|glft|glwt)-[A-Za-z0-9_-]{20,}\b|\bGR1348941[A-Za-z0-9_-]{20,}\b"
        ),
        None,
    ),
    (
        "slack_webhook",
        re.compile(r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}"),
        None,
    ),
    ("slack_token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}\b|\bxapp-\d-[A-Za-z0-9-]{10,}\b"), None),
    ("openai_key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}\b"), None),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), None),
    ("stripe_key", re.compile(r"\b[rsp]k_(?:live|test)_[0-9A-Za-z]{16,}\b"), None),
    ("npm_token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), None),
    ("pypi_token", re.compile(r"\bpypi-AgE[A-Za-z0-9_-]{50,}"), None),
    ("telegram_token", re.compile(r"(?<!\d)\d{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])"), None),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{0,}"), None),
    (
        "authorization",
        re.compile(
            r"(?i)(?P<head>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(?P<scheme>(?:"
            + _SCHEMES
            + r")\s+)?"
            + _ALREADY
            + r"(?!(?:"
            + _SCHEMES
            + r")\s)(?P<cred>[^\s\"',;]+)"
        ),
        _auth,
    ),
    (
        "authorization",
        re.compile(
            r"(?i)(?P<head>\b(?:x-api-key|api-key|x-auth-token|private-token|x-gitlab-token|job-token|x-vault-token|x-jfrog-art-api|x-github-token|x-access-token|x-goog-api-key)[\"']?\s*[:=]\s*[\"']?)"
            r"(?P<scheme>)" + _ALREADY + r"(?P<cred>[^\s\"',;]+)"
        ),
        _auth,
    ),
    (
        "url_password",
        re.compile(
            r"(?i)(?P<scheme>\b[a-z][a-z0-9+.-]{1,20}://)(?P<user>[^:/?#@\s\"'<>]{0,256}):"
            + _ALREADY
            + r"(?P<pw>[^@/?#\s\"'<>]{1,256})@(?=[\w\[.-])"
        ),
        _url_password,
    ),
    (
        "secret",
        # anchored on the secret word (fast); the rest of the name before it is found in _kv
        re.compile(
            r"(?i)(?P<kw>"
            + _SECRET_WORD
            + r")(?P<rest>[A-Za-z0-9_.-]{0,40}?)(?P<sep>[\"']?\s*(?:=|:=|:|=>)\s*)"
            + _ALREADY
            + r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s,;\"'}\])(]+)"
        ),
        _kv,
    ),
    (
        "secret",
        re.compile(
            r"(?P<name>--?" + _SECRET_NAME + r")(?P<sep>=|\s+)" + _ALREADY + r"(?P<value>(?!-)[^\s\"';|&]+)", re.I
        ),
        _flag,
    ),
    (
        "secret",
        # a password given as -p on a registry/database login command line: docker login -u ci -p …, mysql -pSECRET
        re.compile(
            r"(?P<head>\b(?:docker|podman|buildah|skopeo|oras|nerdctl|crane|regctl|helm(?:\s+registry)?|cf|oc)\s+login\b[^\n|;&]*?\s-p(?:\s+|=)"
            r"|\bmysql(?:dump|admin|import)?\b[^\n|;&]*?\s-p)" + _ALREADY + r"(?P<value>(?![-$])[^\s\"';|&]+)"
        ),
        _login_password,
    ),
    (
        "high_entropy",
        re.compile(
            r"(?i)\b(?:secret|token|passw(?:or)?d|passwd|pwd|api[ _-]?key|apikey|access[ _-]?key|credentials?|bearer"
            r"|auth(?:entication|orization)?|private key)\b"
            r"(?:[ \t]*(?:(?:is|was)[ \t]*)?(?:[:=]|:=|->|=>)[ \t]*|[ \t]+(?:(?:is|was)[ \t]+)?)[\"'`(]?"
            + _ALREADY
            + r"(?P<value>[A-Za-z0-9+/_.~=-]{16,})"
        ),
        _near_word,
    ),
]


def redact(text: str) -> Redaction:
    """Replace every secret in ``text`` with ``[REDACTED:<kind>]``; counts per kind."""
    counts: Counter[str] = Counter()
    if not text:
        return Redaction(text, {})
    for kind, rx, fn in RULES:

        def repl(m: re.Match[str], kind: str = kind, fn: Callable[[re.Match[str]], str] | None = fn) -> str:
            new = fn(m) if fn else _mark(kind)
            if new != m.group(0):
                counts[kind] += 1
            return new

        text = rx.sub(repl, text)
    return Redaction(text, dict(counts))


def redact_text(text: str) -> str:
    """:func:`redact` returning only the text."""
    return redact(text).text


def redact_lines(lines: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """Redact each line on its own (for excerpts, whose lines may not be contiguous)."""
    counts: Counter[str] = Counter()
    out = []
    for line in lines:
        r = redact(line)
        counts.update(r.counts)
        out.append(r.text)
    return out, dict(counts)


def redact_obj(obj: object) -> object:
    """Redact every string inside a JSON-like structure (dicts, lists, tuples)."""
    if isinstance(obj, str):
        return redact(obj).text
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj
