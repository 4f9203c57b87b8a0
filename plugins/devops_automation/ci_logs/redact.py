"""Secret redaction: every text that leaves the process (LLM request, Slack, Telegram, e-mail, the
database, reports) goes through :func:`redact` first. A secret is replaced by ``[REDACTED:<kind>]``.

Detected, in this order (the first rule to claim a span wins):

1. PEM private keys (``-----BEGIN … PRIVATE KEY-----`` up to the END line, or up to the last body
   line when the END line is missing; also inside JSON strings with ``\\n`` escapes, as in a
   service-account file), PuTTY private keys, and lines that are a PEM body on their own (base64
   that decodes to binary, not to text);
2. self-identifying tokens, wherever they stand (:mod:`.secret_formats`: about 100 formats of
   GitHub, GitLab, Slack, AWS, Google, Azure AD, OpenAI/Anthropic, Docker Hub, npm, PyPI, Stripe,
   Shopify, SendGrid, Twilio, Vault, Telegram, JWTs, …);
3. credentials in URLs (``scheme://user:password@host``, any length; a random user name alone);
4. ``Authorization:``/``Proxy-Authorization:`` headers with any scheme (the scheme word is kept);
5. credential flags of command lines: ``curl -u user:secret``, ``docker|helm|oc|cf|az … login -p``,
   ``mysql -psecret``, ``sshpass -p``, ``redis-cli -a``, ``sqlcmd -P``, ``ldapsearch -w``;
6. assignments whose name says secret (env ``NAME=value``, YAML ``name: value``, JSON
   ``"name": "value"``, ``-Dname=value``, ``--name=value``, URL query parameters, connection strings
   ``…;AccountKey=…;``, XML ``<password>…</password>``) and ``--flag value`` pairs;
7. a random-looking value right after a secret word in prose ("using token 9f8A…").

Keyword rules (5-7) redact only the **value**, and only a value that looks like a secret for its
name: after a name that is clearly a secret (password, token, secret, API/access/private/account key,
credentials…) anything but a placeholder, a number, a variable, a path, a URL, a version, a dotted
Java/Kotlin name, a Maven coordinate, a Gradle task path or an English word; after a name that only
may be one (``*_KEY``, ``auth``, ``sig``) a generated-looking string. A value never crosses a line
end. Look-alikes survive: commit SHAs, UUIDs, digests and integrity hashes, base64 of text, class
names, coordinates, task paths, file paths, versions, ``max_tokens=4000``, prose such as
``auth-token-service: There are test failures`` or ``secrets: inherit``, placeholders (``***``,
``${{ secrets.X }}``, ``$TOKEN``) and text already redacted.

**Fast path.** A few searches over the lower-cased text find every line that holds a trigger (a
secret word, a token prefix, ``://user@``, a PEM marker, a line of base64): one pattern for all the
triggers that hold a character rare in logs, each looked for from that character (``k`` of
``token``, ``_`` of ``ghp_``), and a literal search for the few made of common letters only. Only
those lines are run through the rules, joined into one text, and the rest is copied as it is.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

from .secret_formats import FORMATS, TokenFormat

REDACTED = "[REDACTED:{kind}]"
_MARKER = "[REDACTED:"
_ALREADY = r"(?!\[REDACTED:)"
_ALREADY_LOW = r"(?!\[redacted:)"  # the same, in lower-cased text


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


# ---- value shapes --------------------------------------------------------------------------------
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_PLACEHOLDER = re.compile(
    r"\*+|x{3,}|X{3,}|\.{2,}|…|-+|_+|<[^<>]*>|\(\w*\)|\[[A-Za-z ._-]*\]"
    r"|\$\{\{.*\}\}|\$\{[^}]*\}|\$\(.*\)|\$[A-Za-z_][A-Za-z0-9_]*"
    r"|%[A-Za-z_][A-Za-z0-9_]*%|%\(?\w*\)?s|\{\{.*\}\}|\{[A-Za-z_][\w.]*\}|#\{[^}]*\}|@[A-Za-z_][\w.]*@"
    r"|(?i:null|none|nil|nan|true|false|yes|no|on|off|undefined|empty|required|optional|redacted|masked|hidden|secret|secrets"
    r"|password|passwd|token|changeme|change_me|string|str|int|bool|boolean|any|n/a|na|tbd|todo|example|dummy|sample|test"
    r"|foo|bar|baz|filtered|sensitive|omitted|removed|unset|default|inherit)"
)
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|k|kb|mb|gb|%|px)?")
_VERSION = re.compile(r"[vV]?\d+(?:\.\d+)+(?:[-+._~][0-9A-Za-z.-]+)?|\d+(?:\.x)+")
_UPPER_SNAKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_QUALIFIED = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)+(?:\(\))?\.?")
_MAVEN = re.compile(r"[A-Za-z][\w.-]*:[A-Za-z][\w.-]*(?::[\w.+-]*){0,4}")
_GRADLE = re.compile(r":[A-Za-z][\w.-]*(?::[A-Za-z][\w.-]*)*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_VARIABLE = re.compile(r"\$[A-Za-z_{(]|%[A-Za-z_]\w*%$|@[\w./-]+$")  # $VAR, ${VAR}, $(cmd), %VAR%, @file
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_VOWELS = frozenset("aeiouyAEIOUY")
_CONSONANT_RUN = re.compile(r"[b-df-hj-np-tv-xzB-DF-HJ-NP-TV-XZ]{5}")


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 4 and v[:2] in ('\\"', "\\'") and v[-2:] == v[:2]:
        return v[2:-2]
    if len(v) >= 2 and v[0] in "\"'`" and v[-1] == v[0]:
        return v[1:-1]
    return v


def _is_placeholder(v: str) -> bool:
    return (
        not v
        or _MARKER in v
        or _PLACEHOLDER.fullmatch(v) is not None
        or re.fullmatch(r"[*/ .:_-]*\*[*/ .:_-]*", v) is not None  # masked: ****/**/**
        or re.search(r"(?:^|[ '\"{(:/=,\[])%[sdr](?:$|[ '\"}):/,\]])|%\(\w+\)[sdr]|\{\d*\}", v) is not None  # "{%s}"
    )


def _is_wordlike(v: str) -> bool:
    """A word or a camelCase / PascalCase identifier made of words (``compileJava``, ``SqlJobHook``)."""
    if not v.isalpha():
        return False
    if not v.isascii():  # a word of another script: generated credentials are ASCII
        return True
    parts = _CAMEL.findall(v)
    if len(v) > 12 and len(parts) == 1 and v.islower() and _CONSONANT_RUN.search(v):
        return False
    singles = sum(1 for p in parts if len(p) == 1)
    if singles > 1 or (len(parts) > 1 and singles and len(v) < 2 * len(parts) + 2):
        return False
    voweless = [p for p in parts if len(p) > 1 and not any(c in _VOWELS for c in p)]
    if any(len(p) > 4 or (len(p) > 3 and not p.isupper()) for p in voweless):
        return False
    return not any(_CONSONANT_RUN.search(p) for p in parts)


def _camel_words(p: str) -> bool:
    """Words, acronyms and short numbers run together: ``MLDSA44PublicKey``, ``Base64UrlEncoder``; not
    generated letters, which split into many acronyms and two-letter pieces (``QzsajZgcTLBElnKDZ``)."""
    parts = _CAMEL.findall(p)
    if "".join(parts) != p or sum(1 for q in parts if len(q) == 1) > 1:
        return False
    odd = sum(1 for q in parts if q.isalpha() and (len(q) <= 2 or (q.isupper() and len(parts) > 1)))
    if odd > max(2, len(parts) // 3):
        return False
    return all(
        (q.isdigit() and len(q) <= 4) or (q.isupper() and len(q) <= 6) or (q.isalpha() and _is_wordlike(q))
        for q in parts
    )


def _segment_is_plain(p: str) -> bool:
    """A piece of an identifier: a word, a number, a short tag (v1, x86), a hex digest or nothing."""
    if not p or _is_wordlike(p) or p.isdigit():
        return True
    if len(p) <= 4 and p.isalnum():
        return True
    if len(p) <= 12 and re.fullmatch(r"[a-z]*\d{1,4}[a-z]*|[A-Z]*\d{1,4}[A-Z]*|[vV]\d+[a-z0-9]*", p):  # x86, base64url
        return True
    return len(p) >= 7 and _HEX.fullmatch(p) is not None  # a digest inside a cache key or file name


def _is_identifier(v: str, hex_is_secret: bool = False) -> bool:
    """Words joined by ``-_.:/@`` (``auth-token-service``, ``Linux-gradle-<sha>``, ``com.acme.Foo``);
    with ``hex_is_secret`` a UUID or a hex string of 16 or more (``key-<hex>``, ``api-<uuid>``) is not."""
    if hex_is_secret and (_UUID.search(v) or re.search(r"(?<![0-9a-fA-F])[0-9a-f]{16,}(?![0-9a-fA-F])", v)):
        return False
    parts = re.split(r"[-_.:/@+]+", v)
    return len(parts) > 1 and all(_segment_is_plain(p) for p in parts)


def _is_path(v: str) -> bool:
    if v.startswith(("/", "./", "../", "~/", "\\\\")) or re.match(r"[A-Za-z]:[\\/]", v):
        return all(_segment_is_plain(p) or len(p) < 24 for p in re.split(r"[\\/.]+", v))
    return bool(re.fullmatch(r"[\w.-]+(?:/[\w.-]+)+/?", v)) and _is_identifier(v)


def _is_prose(v: str) -> bool:
    words = v.split()
    return (
        len(words) > 1
        and sum(1 for w in words if _is_wordlike(w.strip(".,;:!?()'\"")) or w.isdigit()) >= len(words) - 1
    )


def _is_reference(v: str) -> bool:
    """Values that name or point at something rather than being a secret."""
    return bool(
        _NUMBER.fullmatch(v)
        or _VERSION.fullmatch(v)
        or _UPPER_SNAKE.fullmatch(v)
        or "://" in v
        or _EMAIL.fullmatch(v)
        or re.fullmatch(r"#[0-9a-fA-F]{3,8}", v)  # a colour
        or (_GRADLE.fullmatch(v) and all(_segment_is_plain(p) for p in re.split(r"[:.-]+", v)))
        or _is_path(v)
        or _is_qualified_name(v)
        or (_MAVEN.fullmatch(v) and _is_identifier(v))
    )


def _is_qualified_name(v: str) -> bool:
    """``com.example.TokenService``, ``frames.nextToken``, ``spring.datasource.password``: dotted
    identifiers whose pieces are words, not generated strings (``pat.<id>.<secret>`` is a token)."""
    if not _QUALIFIED.fullmatch(v):
        return False
    return all(_name_piece(p) for p in re.split(r"[.$]|::|\(\)", v) if p)


def _name_piece(p: str) -> bool:
    """A piece of a qualified name: a package (``lang3``), a class or method (camel case words), a
    constant (``MAX_SIZE``), a number (``Foo$1``)."""
    return bool(
        len(p) <= 3
        or re.fullmatch(r"[a-z][a-z0-9_]*|[A-Z][A-Z0-9_]*|\d+", p)
        or _is_wordlike(p)
        or _camel_words(p.replace("_", ""))
    )


def _random_piece(p: str) -> bool:
    classes = (any(c.islower() for c in p), any(c.isupper() for c in p), any(c.isdigit() for c in p))
    return len(p) >= 12 and sum(classes) >= 2 and shannon_entropy(p) >= 3.0 and not _camel_words(p)


def _is_assignment(v: str) -> bool:
    """``id=npm,src=.npmrc``, ``expires_in=3600``: names given plain values, not a password with a ``=``."""
    m = re.match(r"[a-z_][a-z0-9_]*=([^,=&;]*)(?:[,&;]|$)", v)
    return m is not None and (_segment_is_plain(m.group(1)) or _is_identifier(m.group(1)) or _is_path(m.group(1)))


def _short_random(v: str) -> bool:
    """A short password after a clear secret word: upper and lower case and digits (or two of them and
    a symbol), not a name."""
    classes = sum(any(f(c) for c in v) for f in (str.islower, str.isupper, str.isdigit))
    symbol = any(c in "!#$%^*~@_+=" for c in v)
    mixed_letters = v.isalpha() and len(v) >= 12 and classes == 2  # upper and lower case only
    return len(v) >= 10 and (classes == 3 or (classes == 2 and symbol) or mixed_letters) and _looks_random(v, 10)


def _percent_decoded(v: str) -> str:
    if "%" not in v or not re.search(r"%[0-9A-Fa-f]{2}", v):
        return v
    d = unquote(v)
    return d if d.isascii() and d.isprintable() else v


def _looks_random(value: str, min_len: int = 16, allow_hex: bool = False) -> bool:
    """A generated-looking credential: long, varied, not a digest / UUID / version / identifier / word."""
    v = _percent_decoded(value.strip().strip("'\"`").rstrip(".,;:"))
    if len(v) < min_len or not re.fullmatch(r"[A-Za-z0-9+/=_.~%!#$*@^:-]+", v) or _is_placeholder(v):
        return False
    if _is_assignment(v):
        return False
    if _UUID.fullmatch(v) or _HEX.fullmatch(v):
        return allow_hex and (len(v) >= 32 or _UUID.fullmatch(v) is not None)
    if _is_reference(v) or _is_wordlike(v) or _is_identifier(v, hex_is_secret=allow_hex):
        return False
    if allow_hex and (_UUID.search(v) or re.search(r"[0-9a-f]{16,}", v)):
        return True
    classes = sum((any(c.islower() for c in v), any(c.isupper() for c in v), any(c.isdigit() for c in v)))
    symbols = any(c in "+/=_-~.!@#$%^&*" for c in v)
    return (classes >= 2 or (classes == 1 and symbols and len(v) >= 24)) and shannon_entropy(v) >= 3.0


def _plausible_secret(value: str) -> bool:
    """After a name that says secret: anything that is not a placeholder, a reference or prose."""
    v = _percent_decoded(_unquote(value)).strip()
    if len(v) < 4 or _is_placeholder(v) or _VARIABLE.match(v) or not v.isascii():
        return False
    if any(c.isspace() for c in v):
        return not _is_prose(v) and len(v.split()) <= 3 and _looks_random(v.replace(" ", ""), min_len=12)
    if _UUID.fullmatch(v) or _HEX.fullmatch(v):
        return len(v) >= 8
    if _is_reference(v) or _is_wordlike(v) or _is_assignment(v):
        return False
    if _is_identifier(v, hex_is_secret=True) and not any(_random_piece(p) for p in re.split(r"[-_.:/@+]+", v)):
        return False
    return not (v.startswith(("env:", "file:", "fd:")) or v.endswith("("))


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ---- secret names ----------------------------------------------------------------------------------
_STRONG_WORDS = _words(
    "password passwords passwd passphrase pass pwd secret secrets token credential credentials creds apikey"
)
_COMPOUND_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "credentials", "credential", "apikey")
_COMPOUND_WORDS = {  # names run together: apikey, storepass, oauth
    **{w + "key": "key" for w in _words("api access secret private auth app master signing account shared client")},
    **{w + "key": "key" for w in _words("session license storage hmac encryption")},
    **{w + "pass": "pass" for w in _words("store key my db root admin ssh pg smtp ftp ldap mail")},
    **{w + "auth": "auth" for w in _words("o basic http proxy")},
}
_WEAK_WORDS = frozenset({"key", "keys", "auth", "sig", "signature", "dsn"})
_NOT_AFTER = _words(
    """count counts usage used limit limits type types url urls uri endpoint endpoints host hosts file files path
    paths dir name names id ids arn ref refs version versions store manager service services server expiry expires
    expiration expire ttl lifetime length len size policy policies min max minimum maximum prompt stdin reset
    changed required enabled disabled enable disable env var vars variable field param params parameter provider
    source location generator helper mode method format algorithm algo rotation pattern regex strength validator
    validation checker check label description desc hint placeholder template schema spec scope scopes audience
    issuer timeout interval age created updated status state error errors message exception handler filter class
    ring pair alias slot index input output valid invalid expired missing present exists set rotated fingerprint
    hash digest prefix suffix owner user username login account region project group kind mount engine backend
    plugin storage cache config option options flag flags support reference tag tags mask masked masking cls
    restype argtypes attr attrs attribute attributes arg args"""
)
_NOT_BEFORE = _words(
    """max min num number total count use enable disable skip no has is require requires should allow next page
    continuation cancellation cancel sync lexer parser syntax unexpected end start eof pagination cursor invalid
    wrong bad incorrect missing expired empty weak get set load read fetch generate create verify validate check
    change reset forgot update delete revoke rotate encode decode parse with without"""
)
_KEY_NOT_SECRET = _words(
    """public cache primary sort partition row hash group lookup restore foreign unique composite idempotency dedup
    routing map dict index object file gpg pgp host known trusted kms ssh feature label message translation i18n
    setting config registry node entry sequence pub"""
)
_KEY_SECRET = _words(
    """api access secret private account app application master signing client auth iam shared storage license
    subscription admin hmac sas session webhook integration ingest write read server mobile live service cosmosdb
    cosmos datadog dd algolia mailgun sendgrid heroku twilio cloudflare sentry snyk mapbox stripe openai anthropic
    bot deploy personal encryption crypto jwt"""
)


def _name_words(name: str) -> list[str]:
    return [w.lower() for w in _CAMEL.findall(name)]


@lru_cache(maxsize=4096)
def _name_policy(name: str) -> str | None:
    """How sure a name is to hold a secret: ``"strong"``, ``"weak"`` (``*_KEY``, ``auth``), ``"sig"``
    (a signature: hex allowed) or ``None`` (not a secret: ``max_tokens``, ``secret_name``, ``cache-key``)."""
    words = _name_words(name)
    idx, word = -1, ""
    for i in range(len(words) - 1, -1, -1):
        w = words[i]
        if w in _STRONG_WORDS or w in _WEAK_WORDS:
            idx, word = i, w
            break
        if w in _COMPOUND_WORDS:
            idx, word = i, _COMPOUND_WORDS[w]
            break
        if w.endswith(_COMPOUND_SUFFIXES) and w not in {"tokens"}:
            idx, word = i, next(s for s in _COMPOUND_SUFFIXES if w.endswith(s))
            break
        compound = next((c for c in _COMPOUND_WORDS if len(c) >= 6 and w.endswith(c)), None)
        if compound:  # deststorepass, mysqlrootpassword
            idx, word = i, _COMPOUND_WORDS[compound]
            break
    if idx < 0:
        return None
    after, before = words[idx + 1 :], words[:idx]
    if any(w in _NOT_AFTER for w in after) or any(w in _NOT_BEFORE for w in before):
        return None
    if word in ("sig", "signature"):
        return "sig"
    if word in ("key", "keys", "auth", "dsn"):
        if any(w in _KEY_NOT_SECRET for w in before[-1:]):
            return None
        if word not in ("auth", "dsn") and any(w in _KEY_SECRET for w in before):
            return "strong"
        return "weak"
    if (
        word == "pass"
        and before
        and before[-1] in {"by", "com", "sur", "tres", "over", "under", "first", "second", "last"}
    ):
        return None
    return "strong"


def _value_is_secret(policy: str, value: str) -> bool:
    if policy == "strong":
        return _plausible_secret(value)
    if not re.fullmatch(r"[A-Za-z0-9+/=_.~%-]+", _unquote(value)):  # keys and signatures are base64, hex, url-safe
        return False
    if policy == "sig":
        return _looks_random(_unquote(value), min_len=16, allow_hex=True)
    return _looks_random(_unquote(value), min_len=12)


# ---- rules ---------------------------------------------------------------------------------------
Counts = Counter[str]


class _Lowered:
    """A match found in the lower-cased text, read from the original text (the offsets are the same)."""

    __slots__ = ("_m", "string")

    def __init__(self, m: re.Match[str], string: str) -> None:
        self._m, self.string = m, string

    def group(self, g: int | str = 0) -> str:
        start, end = self._m.span(g)
        return "" if start < 0 else self.string[start:end]

    def start(self, g: int | str = 0) -> int:
        return self._m.start(g)

    def end(self, g: int | str = 0) -> int:
        return self._m.end(g)


Match = re.Match[str] | _Lowered


def _lower(text: str) -> str:
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)  # keep the offsets aligned


def _sub(
    rx: re.Pattern[str], fn: Callable[[Match], tuple[str, str] | None], lowered: bool = False
) -> Callable[[str, Counts], str]:
    """A rule from a pattern and a function that returns (replacement, kind) or None (leave it). With
    ``lowered`` the pattern (lower case only, no ``(?i)``, so that the engine skips positions fast)
    runs over the lower-cased text and ``fn`` reads the original one."""

    def rule(text: str, counts: Counts) -> str:
        out, pos = [], 0
        for m in rx.finditer(_lower(text) if lowered else text):
            r = fn(_Lowered(m, text) if lowered else m)
            if r is not None:
                out += [text[pos : m.start()], r[0]]
                pos = m.end()
                counts[r[1]] += 1
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    return rule


_SGR_END = re.compile(r"\x1b\[[0-9;]*m$")


def _format_ok(fmt: TokenFormat, m: re.Match[str]) -> bool:
    token, start = m.group(0), m.start()
    if start and m.string[start - 1] in fmt.left and not _SGR_END.search(m.string, max(0, start - 12), start):
        return False  # glued to a word: not a token of its own
    if fmt.random and not _random_piece(re.sub(r"^[a-z0-9]+[_.-]", "", token)):
        return False
    if fmt.kind == "private_key":  # base64 of a PEM block: only a private one
        head = token[:96]
        return b"PRIVATE" in base64.b64decode(head[: len(head) - len(head) % 4])
    return True


def _lines_with(text: str, needles: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of the lines of ``text`` that hold one of ``needles``, in order, without repeats."""
    found: set[tuple[int, int]] = set()
    for needle in needles:
        i = text.find(needle)
        while i >= 0:
            start = text.rfind("\n", 0, i) + 1
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            found.add((start, end))
            i = text.find(needle, end)
    return sorted(found)


def _formats(text: str, counts: Counts) -> str:
    """Every self-identifying format: a pattern that starts with its literal prefix runs over the
    whole text; the others only on the lines that hold one of their needles."""
    for fmt in FORMATS:

        def repl(m: re.Match[str], fmt: TokenFormat = fmt) -> str:
            if not _format_ok(fmt, m):
                return m.group(0)
            counts[fmt.kind] += 1
            return _mark(fmt.kind)

        if fmt.needles and not any(n in text for n in fmt.needles):
            continue
        if fmt.whole_text or not fmt.needles:
            text = fmt.regex.sub(repl, text)
            continue
        out, pos = [], 0
        for start, end in _lines_with(text, fmt.needles):
            out += [text[pos:start], fmt.regex.sub(repl, text[start:end])]
            pos = end
        out.append(text[pos:])
        text = "".join(out)
    return text


_URL_CRED = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{1,30}://)(?P<user>[^:/?#@\s\"'<>\[\]]*)"
    r"(?::" + _ALREADY + r"(?P<pw>[^/?#\s\"'<>]+))?@(?=[\w\[.-])"
)


def _url_cred(m: Match) -> tuple[str, str] | None:
    user, pw = m.group("user"), m.group("pw")
    if pw is not None:
        if _is_placeholder(pw) or _VARIABLE.match(unquote(pw)):
            return None
        return f"{m.group('scheme')}{user}:{_mark('url_password')}@", "url_password"
    if _looks_random(user, min_len=16, allow_hex=True):  # a token as the user name: https://<token>@host
        return f"{m.group('scheme')}{_mark('url_password')}@", "url_password"
    return None


_AUTH = re.compile(
    r"(?P<head>\b(?:proxy-)?authorization\b[\"']?[ \t]*[:=][ \t]*[\"']?)"
    + _ALREADY_LOW
    + r"(?P<rest>[^\s\"'\\]+(?:[ \t]+[^\s\"'\\]+)?)"
)
_MARKER_RX = re.compile(r"\[REDACTED:[a-z0-9_]+\]")


def _auth(m: Match) -> tuple[str, str] | None:
    parts = m.group("rest").split()
    if len(parts) == 2 and re.fullmatch(r"[A-Za-z][\w.-]*", parts[0]):  # scheme + credential
        cred = parts[1]
        residue = _MARKER_RX.sub("", cred).strip(",;")
        if residue and (_credential(residue) or (residue != cred.strip(",;") and len(residue) >= 8)):
            return f"{m.group('head')}{parts[0]} {_mark('authorization')}", "authorization"
        if residue != cred.strip(",;") or _credential(cred):  # already redacted, or a credential as said
            return None
    cred = parts[0]
    if cred.startswith(_MARKER) or re.fullmatch(r"(?i)bearer|basic|token|digest|negotiate|ntlm", cred):
        return None
    if _credential(cred):
        tail = m.group("rest")[len(cred) :]
        return f"{m.group('head')}{_mark('authorization')}{tail}", "authorization"
    return None


def _credential(v: str) -> bool:
    v = v.strip(",;`")
    if len(v) < 6 or not re.fullmatch(r"[A-Za-z0-9+/=_.~:%!#$*@,^&|?-]+", v):  # code (``generate({``) or prose
        return False
    return not (
        _is_placeholder(v)
        or _VARIABLE.match(v)
        or _is_wordlike(v)
        or _is_reference(v)
        or _is_identifier(v, hex_is_secret=True)
    )


_CLI_VALUE = r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"';|&<>\x00-\x1f]+)"
_CLI = [
    # curl / wget: -u user:password, --user "user:password"
    re.compile(
        r"(?P<head>\b(?:curl|wget)\b[^\n]*?[ \t](?:-u|--user|--proxy-user|-U|--http-user)(?:[ \t]+|=)(?P<q>[\"']?)"
        r"[^\s:\"']*:)" + _ALREADY + r"(?P<value>[^\s\"']+)"
    ),
    # registry and platform logins: docker login -u ci -p <value>, helm registry login, oc/cf/az login, twine upload
    re.compile(
        r"(?P<head>\b(?:docker|podman|buildah|skopeo|nerdctl|oras|crane|regctl|helm|cf|oc|az|argocd|jf|jfrog|twine)\b"
        r"[^\n|;&]*?\b(?:login|upload|auth)\b[^\n|;&]*?[ \t](?:-p|--password)(?:[ \t]+|=))" + _ALREADY + _CLI_VALUE
    ),
    re.compile(
        r"(?P<head>\bmysql(?:dump|admin|import|check|sh|slap)?\b[^\n|;&]*?[ \t]-p)"
        + _ALREADY
        + r"(?P<value>[^\s\"';|&<>]+)"
    ),
    re.compile(
        r"(?P<head>\b(?:sshpass[^\n|;&]*?[ \t]-p|redis-cli[^\n|;&]*?[ \t]-a|sqlcmd[^\n|;&]*?[ \t]-P"
        r"|ldap(?:search|add|modify|delete|passwd|whoami)[^\n|;&]*?[ \t]-w"
        r"|mongo(?:sh|dump|restore)?\b[^\n|;&]*?[ \t]-p)"
        r"(?:[ \t]*))" + _ALREADY + _CLI_VALUE
    ),
    re.compile(r"(?P<head>[ \t]-pass(?:in|out)?[ \t]+pass:)" + _ALREADY + r"(?P<value>[^\s\"';|&<>]+)"),
]


def _cli(m: Match) -> tuple[str, str] | None:
    value = _unquote(m.group("value"))
    if _is_placeholder(value) or _VARIABLE.match(value) or re.fullmatch(r"-[A-Za-z]|--[a-z][a-z-]*", value):
        return None
    q = m.group("value")[0] if m.group("value")[:1] in "\"'" else ""
    return f"{m.group('head')}{q}{_mark('secret')}{q}", "secret"


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_KW = r"passw(?:or)?d|passphrase|pass|pwd|secret|token|credential|creds|key|auth|sig(?:nature)?|dsn"
_VALUE = (
    r"(?P<value>\\\"(?:[^\"\\\n]|\\[^\"\n])*\\\"|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|`[^`\n]*`"
    r"|[^\s\"'`,;<>{}\[\]()|&\\\x00-\x1f]+)"
)
_KV = re.compile(
    r"(?P<kw>" + _KW + r")(?P<rest>[a-z0-9_.-]{0,40}?)(?P<close>\\?[\"'`]|\])?"
    r"(?P<sep>[ \t]*(?:=>|:=|=(?!=[= \t])|:(?![:/\\]))[ \t]*)" + _ALREADY_LOW + _VALUE
)


def _kv(m: Match) -> tuple[str, str] | None:
    text, start = m.string, m.start()
    while start > 0 and text[start - 1] in _NAME_CHARS:
        start -= 1
    if start > 0 and text[start - 1] in "!<>":  # a comparison
        return None
    name = text[start : m.end("rest")]
    policy = _name_policy(name)
    value = m.group("value")
    if policy is None or not _value_is_secret(policy, value):
        return None
    if text[m.end() : m.end() + 1] == "(":  # code: token = next(...)
        return None
    quote = value[:2] if value[:2] in ('\\"', "\\'") else value[:1] if value[:1] in "\"'`" else ""
    prefix = m.group(0)[: m.start("value") - m.start()]
    return f"{prefix}{quote}{_mark('secret')}{quote}", "secret"


_XML = re.compile(r"<(?P<tag>[A-Za-z][\w.:-]{0,60})>" + _ALREADY + r"(?P<value>[^<\n]{1,1000})</(?P=tag)>")
_XML_ADD = re.compile(
    r"(?P<head>\bkey[ \t]*=[ \t]*\"(?P<name>[^\"\n]{1,80})\"[ \t]+value[ \t]*=[ \t]*\")"
    + _ALREADY_LOW
    + r"(?P<value>[^\"\n]+)\""
)


def _xml(m: Match) -> tuple[str, str] | None:
    policy = _name_policy(m.group("tag"))
    if policy is None or not _value_is_secret(policy, m.group("value")):
        return None
    return f"<{m.group('tag')}>{_mark('secret')}</{m.group('tag')}>", "secret"


def _xml_add(m: Match) -> tuple[str, str] | None:
    policy = _name_policy(m.group("name"))
    if policy is None or not _value_is_secret(policy, m.group("value")):
        return None
    return f'{m.group("head")}{_mark("secret")}"', "secret"


_FLAG = re.compile(
    r"(?<![\w-])(?P<flag>--?(?:[a-z0-9]+[_.-])*[a-z0-9]*(?:"
    + _KW
    + r")[a-z0-9_.-]*)(?P<sep>[ \t]+)"
    + _ALREADY_LOW
    + r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|(?!-)[^\s\"';|&<>\x00-\x1f]+)"
)


def _flag(m: Match) -> tuple[str, str] | None:
    policy = _name_policy(m.group("flag").lstrip("-"))
    if policy is None or not _value_is_secret(policy, m.group("value")):
        return None
    value = m.group("value")
    q = value[0] if value[:1] in "\"'" else ""
    return f"{m.group('flag')}{m.group('sep')}{q}{_mark('secret')}{q}", "secret"


_PROSE_STRONG = (
    r"(?:api|access|secret|private|auth|client|bearer|session|refresh|deploy|personal[ _-]access|registry|bot|app"
    r"|application|account|master|admin|service|storage|signing|license|subscription|sas|webhook|integration)"
    r"[ _-]?(?:keys?|tokens?|secrets?)|tokens?|secrets?|passwords?|passwd|passphrase|pwd|credentials?|creds|bearer"
)
_PROSE = re.compile(
    r"(?P<kw>" + _PROSE_STRONG + r"|keys?|signature)\b"
    r"(?P<fill>(?:[ \t]+(?:is|was|=|value|provided|given|used)\b)?[ \t]*(?:[:=]|=>|->)?[ \t]*[(<\[]?)"
    + _ALREADY_LOW
    + r"(?P<value>(?P<q>[\"'`])[^\"'`\s]{8,200}(?P=q)|[A-Za-z0-9+/_.~=%!#^*@$-]{10,})"
)
_PROSE_STRONG_RX = re.compile(r"(?i)" + _PROSE_STRONG)


def _prose(m: Match) -> tuple[str, str] | None:
    start = m.start()
    glued = start and (m.string[start - 1].isalnum() or m.string[start - 1] == "_")
    if glued and not _SGR_END.search(m.string, max(0, start - 12), start):  # a colour code may end right before
        return None  # inside a word
    if not m.group("fill"):
        return None  # glued to the word
    strong = _PROSE_STRONG_RX.fullmatch(m.group("kw")) is not None
    head = m.group(0)[: m.start("value") - m.start()]
    if not strong and not re.fullmatch(r"[\"'`]?[A-Za-z0-9+/=_.~%-]+[\"'`]?", m.group("value")):
        return None
    if m.group("q"):  # quoted after a secret word: 'invalid password "S3cr3t^x"'
        inner = m.group("value")[1:-1]
        plausible = strong and _plausible_secret(inner) and _random_piece(inner.ljust(12, inner[-1]))
        if not plausible and not _looks_random(inner, min_len=16, allow_hex=strong):
            return None
        q = m.group("q")
        return f"{head}{q}{_mark('high_entropy')}{q}", "high_entropy"
    value = m.group("value").rstrip(".")
    if m.string[m.end() : m.end() + 1] == "(" or not (
        _looks_random(value, min_len=16, allow_hex=strong) or (strong and _short_random(value))
    ):
        return None
    tail = m.group("value")[len(value) :]
    return head + _mark("high_entropy") + tail, "high_entropy"


_PEM_LINE = re.compile(
    r"(?m)^(?P<pre>[ \t]*(?:\d+: |\d{4}-\d\d-\d\dT[\d:.]+Z? )?[ \t]*[\"']?)"
    r"(?P<b64>[A-Za-z0-9+/]{60,76}={0,2})(?P<post>[\"']?,?[ \t]*\r?)$"
)


def _pem_line(m: Match) -> tuple[str, str] | None:
    body = m.group("b64")
    if not _binary_base64(body):
        return None
    return f"{m.group('pre')}{_mark('private_key')}{m.group('post')}", "private_key"


def _binary_base64(s: str) -> bool:
    """Base64 that decodes to binary (key material), not to text (``base64 of ordinary words``)."""
    if not (re.search(r"[a-z]", s) and re.search(r"[A-Z]", s) and re.search(r"\d", s)) or s.count("/") > 6:
        return False
    if len(re.findall(r"[^0-9A-Fa-f]", s)) < 16:  # hex (0xFFFF…), not base64
        return False
    try:
        raw = base64.b64decode(s[: len(s) - len(s) % 4] if not s.endswith("=") else s, validate=True)
    except (binascii.Error, ValueError):
        return False
    if not raw:
        return False
    printable = sum(1 for b in raw if 32 <= b < 127 or b in (9, 10, 13))
    return printable / len(raw) < 0.85


_GLUED = re.compile(r"(?P<mark>\[REDACTED:[a-z0-9_]+\])(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9+/=_-]|[.~](?=[A-Za-z0-9]))+")


def _glued(text: str, counts: Counts) -> str:
    """Token characters glued to a marker are the rest of that token (``…%3D002E2E6C``)."""
    return _GLUED.sub(lambda m: m.group("mark"), text) if "[REDACTED:" in text else text


LINE_RULES: list[Callable[[str, Counts], str]] = [
    _formats,
    _sub(_URL_CRED, _url_cred),
    _sub(_AUTH, _auth, lowered=True),
    *(_sub(rx, _cli) for rx in _CLI),
    _sub(_XML_ADD, _xml_add, lowered=True),
    _sub(_XML, _xml),
    _sub(_KV, _kv, lowered=True),
    _sub(_FLAG, _flag, lowered=True),
    _sub(_PROSE, _prose, lowered=True),
    _sub(_PEM_LINE, _pem_line),
    _glued,
]


# ---- whole-text rules: multi-line private keys -------------------------------------------------
_PEM_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END[ A-Z0-9_-]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"(?:\r?\n[ \t]*(?:\d+: )?[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*)*")
_PUTTY = re.compile(r"(?m)^(?P<head>Private-Lines:[ \t]*(?P<n>\d{1,3})[ \t]*\r?\n)")
_OTHER_PEM = re.compile(
    r"-----BEGIN (?![A-Z0-9 _-]*PRIVATE)[A-Z0-9 _-]{1,40}-----[\s\S]{0,20000}?-----END [A-Z0-9 _-]{1,40}-----"
)


def _private_keys(text: str, counts: Counts) -> str:
    out, pos = [], 0
    for m in _PEM_BEGIN.finditer(text):
        if m.start() < pos:
            continue
        end = _PEM_END.search(text, m.end(), m.end() + 20000)
        stop = end.end() if end else _PEM_BODY.match(text, m.end()).end()  # type: ignore[union-attr]
        out += [text[pos : m.start()], _mark("private_key")]
        counts["private_key"] += 1
        pos = stop
    for m in _PEM_END.finditer(text, pos):  # an END line whose BEGIN is not in this text
        out += [text[pos : m.start()], _mark("private_key")]
        counts["private_key"] += 1
        pos = m.end()
    out.append(text[pos:])
    text = "".join(out)
    if "Private-Lines:" in text:
        out, pos = [], 0
        for m in _PUTTY.finditer(text):
            body_end = m.end()
            for _ in range(int(m.group("n"))):  # the key's lines: base64, nothing else
                nl = text.find("\n", body_end)
                nl = len(text) if nl < 0 else nl + 1
                if not re.fullmatch(r"[A-Za-z0-9+/=]+\r?\n?", text[body_end:nl]):
                    break
                body_end = nl
            if body_end == m.end():
                continue
            out += [text[pos : m.end()], _mark("private_key") + ("\n" if text[body_end - 1 : body_end] == "\n" else "")]
            counts["private_key"] += 1
            pos = body_end
        out.append(text[pos:])
        text = "".join(out)
    return text


# ---- fast path -------------------------------------------------------------------------------------
_KEYWORDS = _words(
    "pass pwd secret token cred key auth bearer sig dsn private login curl wget mysql sshpass redis sqlcmd ldap mongo"
    " twine"
)
#: characters from the rarest to the commonest in CI logs (lower-cased), up to the ones rare enough to
#: look for first: a trigger that holds one is found from it (a look-behind checks the rest), so that
#: the engine skips most positions of a log at once; a trigger made only of common characters is
#: looked for on its own (a literal search)
_RARE = "~*&^!\\+%q|@$<\"'>}{#z\t_,;]k=xy()wvjh\nb:"  # digits are not: timestamps are everywhere


def _anchored(literal: str) -> tuple[str, str, str] | None:
    """``literal`` split at its rarest character: (that character, the literal up to and with it, the
    rest), or None if all its characters are common."""
    i = min(range(len(literal)), key=lambda k: _RARE.find(literal[k]) % (len(_RARE) + 1))
    if literal[i] not in _RARE:
        return None
    return literal[i], literal[: i + 1] if i else "", literal[i + 1 :]


def _grouped(anchored: Iterable[tuple[str, str, str]], patterns: Iterable[str]) -> str:
    """One alternation grouped by first character. For each character, the literals that end there
    are one look-behind per length (``(?<=ghp_|gho_|npm_)``), which the engine checks at once."""
    groups: dict[str, set[str]] = {}
    ends: dict[str, dict[int, set[str]]] = {}
    for head, behind, after in anchored:
        if behind and not after:
            ends.setdefault(head, {}).setdefault(len(behind), set()).add(re.escape(behind))
            continue
        tail = (f"(?<={re.escape(behind)})" if behind else "") + re.escape(after)
        groups.setdefault(re.escape(head), set()).add(tail)
    for head, by_len in ends.items():
        for alternatives in by_len.values():
            groups.setdefault(re.escape(head), set()).add(f"(?<={'|'.join(sorted(alternatives))})")
    for pat in patterns:
        head = pat[:2] if pat.startswith("\\") else pat[0]
        groups.setdefault(head, set()).add(pat[len(head) :])
    parts = []
    for head in sorted(groups):
        tails = sorted(groups[head], key=len, reverse=True)
        parts.append(head + (f"(?:{'|'.join(tails)})" if len(tails) > 1 or tails[0] else ""))
    return "|".join(parts)


def _common_prefix(words: list[str]) -> str:
    first, last = min(words), max(words)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


def _build_triggers() -> list[re.Pattern[str]]:
    literals = set(_KEYWORDS) | {t for fmt in FORMATS for t in fmt.triggers}
    patterns = {t for fmt in FORMATS for t in fmt.trigger_patterns}
    patterns.add(r":(?=//[^\s/?#@\"'<>]+@)")
    literals |= {"-----begin", "-----end"}
    rare, rare_patterns, plain_literals, plain_patterns = [], [], [], []
    for lit in sorted(literals):
        a = _anchored(lit)
        (rare.append(a) if a else plain_literals.append(lit))
    for pat in sorted(patterns):
        head = pat[1] if pat.startswith("\\") else pat[0]
        (rare_patterns if head in _RARE else plain_patterns).append(pat)
    compiled = [re.compile(_grouped(rare, rare_patterns)), re.compile(_grouped([], plain_patterns))]
    by_head: dict[str, list[str]] = {}
    for lit in plain_literals:  # one search per first character, from the group's common prefix
        by_head.setdefault(lit[0], []).append(lit)
    for group in by_head.values():
        common = _common_prefix(group)
        tails = sorted({re.escape(g[len(common) :]) for g in group}, key=len, reverse=True)
        compiled.append(re.compile(re.escape(common) + (f"(?:{'|'.join(tails)})" if tails != [""] else "")))
    return compiled


_TRIGGERS = _build_triggers()
_PEM_LINE_TRIGGER = re.compile(r"\n[ \t\"'0-9TZ:.-]{0,40}[A-Za-z0-9+/]{60}")  # a superset of _PEM_LINE
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _candidate_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line that holds a trigger, in order."""
    low = text.lower()
    if len(low) != len(text):  # a character whose lower case is longer: keep offsets aligned
        low = text.translate(_ASCII_LOWER)
    hits = sorted({m.start() for rx in _TRIGGERS for m in rx.finditer(low)})
    spans: list[tuple[int, int]] = []
    n, last_end = len(text), -1
    for pos in hits:
        if pos <= last_end:
            continue
        end = text.find("\n", pos)
        last_end = n if end < 0 else end
        spans.append((text.rfind("\n", 0, pos) + 1, last_end))
    pem = [(m.start() + 1, text.find("\n", m.start() + 1)) for m in _PEM_LINE_TRIGGER.finditer(text)]
    if _PEM_LINE_TRIGGER.match("\n" + text[:200]):
        pem.append((0, text.find("\n")))
    if pem:
        spans = sorted(set(spans) | {(s, n if e < 0 else e) for s, e in pem})
    if "-----BEGIN" in text:  # certificates and public keys are not secrets: their lines are left alone
        skip = [(m.start(), m.end()) for m in _OTHER_PEM.finditer(text)]
        spans = [(s, e) for s, e in spans if not any(a < s and e < b for a, b in skip)]
    return spans


def redact(text: str) -> Redaction:
    """Replace every secret in ``text`` with ``[REDACTED:<kind>]``; counts per kind."""
    if not text:
        return Redaction(text, {})
    counts: Counts = Counter()
    if "PRIVATE KEY" in text or "Private-Lines:" in text:
        text = _private_keys(text, counts)
    spans = _candidate_lines(text)
    if not spans:
        return Redaction(text, dict(counts))
    chunk = "\n".join(text[s:e] for s, e in spans)
    new = chunk
    for rule in LINE_RULES:
        new = rule(new, counts)
    if new == chunk:
        return Redaction(text, dict(counts))
    lines = new.split("\n")
    out, pos = [], 0
    for (s, e), line in zip(spans, lines, strict=True):
        out += [text[pos:s], line]
        pos = e
    out.append(text[pos:])
    return Redaction("".join(out), dict(counts))


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
