"""Prometheus HTTP API stand-in (prometheus.md): ``/prometheus/api/v1/query`` and ``/query_range``.

Base URL ``http://127.0.0.1:PORT/prometheus`` (what ``http://prometheus:9090`` is for a real server);
GET or POST form. No auth unless a control sets basic or bearer credentials.

Data: deterministic series, pure functions of absolute time (and the seed), scraped every 30 s:

* ``up{job, instance, env}`` for jobs ``api`` (2 instances), ``web`` (2), ``worker`` (1) and
  ``prometheus``. Built-in outages: ``api-1`` is down daily 03:00-03:10 UTC (minute shifted by
  ``seed % 50``), ``web-0`` is down for 2 min at 00:30/06:30/12:30/18:30 UTC.
* ``http_requests_total{job, instance, env, method, code}`` counters (GET 80 % / POST 20 %;
  codes 200 / 404 (2 %) / 500 (api 1 %, web 0.2 %, worker 5 %)) with a daily sine traffic pattern.
* ``http_request_duration_seconds_bucket{le}`` / ``_sum`` / ``_count``: a log-normal latency per job.
* ``process_start_time_seconds``.

While a target is down, ``up`` is 0 and its other series have no samples; a "gap" outage (target
removed) drops ``up`` too. The evaluator implements the PromQL subset in prometheus.md: selectors
with matchers, ``[range]`` and ``offset``, ``rate``/``irate``/``increase``/``*_over_time``,
``histogram_quantile``, aggregations with ``by``/``without``, arithmetic/comparison/logical binary
operators with ``on``/``ignoring`` matching, and a few math functions.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from include.sandbox.systems._common import ApiError, ErrorRoute, basic_credentials, read_params, retry_after_headers

NAME = "prometheus"
PREFIX = "/prometheus"
SCRAPE = 30.0
LOOKBACK = 300.0
MAX_POINTS = 11_000
T0 = 1_700_000_000.0  # process start of the seeded targets
DAY = 86400.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)

#: job -> (instances, requests/s per instance, 5xx share, median latency s)
JOBS = {"api": (2, 40.0, 0.01, 0.08), "web": (2, 15.0, 0.002, 0.2), "worker": (1, 2.0, 0.05, 1.5)}


class PromError(ApiError):
    """An API error in Prometheus's envelope ``{"status": "error", "errorType", "error"}``."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def response(self) -> Response:
        return JSONResponse(
            {"status": "error", "errorType": self.error_type, "error": self.message}, status_code=self.status
        )


def bad_data(message: str) -> PromError:
    return PromError(400, "bad_data", message)


# -- time and numbers ------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str) -> float:
    """PromQL duration (``5m``, ``1h30m``, ``500ms``) or plain seconds (``300``, ``1.5``)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a valid duration string: {text!r}")
    return total


def parse_time(text: str) -> float:
    """RFC 3339 or Unix seconds (float)."""
    text = text.strip()
    try:
        value = float(text)
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot parse {text!r} to a valid timestamp") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def format_value(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest exact decimal, no exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    text = repr(v)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text


def format_ts(t: float) -> float | int:
    t = round(t, 3)
    return int(t) if t == int(t) else t


# -- series ----------------------------------------------------------------------------------------
@dataclass
class Outage:
    start: float
    end: float
    mode: str = "down"  # down: up == 0, other series absent; gap: target removed, nothing scraped


@dataclass
class Target:
    job: str
    instance: str
    outages: list[Outage] = field(default_factory=list)
    daily: list[tuple[float, float, str]] = field(default_factory=list)  # (second of day, length, mode)
    every: list[tuple[float, float, float]] = field(default_factory=list)  # (period, offset, length): down

    def state_at(self, t: float) -> str | None:
        """None when healthy, else "down" or "gap"."""
        for o in self.outages:
            if o.start <= t < o.end:
                return o.mode
        sod = t % DAY
        for start, length, mode in self.daily:
            if start <= sod < start + length:
                return mode
        for period, offset, length in self.every:
            if offset <= t % period < offset + length:
                return "down"
        return None

    def unhealthy_points(self, lo: float, hi: float, mode: str | None = None) -> int:
        """Scrape points in ``(lo, hi]`` that fall in an outage (of ``mode``, or any)."""
        intervals: list[tuple[float, float]] = []
        for o in self.outages:
            if mode in (None, o.mode):
                intervals.append((o.start, o.end))
        first_day = math.floor(lo / DAY) - 1
        for day in range(first_day, math.floor(hi / DAY) + 1):
            for start, length, m in self.daily:
                if mode in (None, m):
                    intervals.append((day * DAY + start, day * DAY + start + length))
        for period, offset, length in self.every:
            if mode in (None, "down"):
                for k in range(math.floor(lo / period) - 1, math.floor(hi / period) + 1):
                    intervals.append((k * period + offset, k * period + offset + length))
        intervals.sort()
        merged: list[list[float]] = []
        for a, b in intervals:
            a, b = max(a, lo), min(b, hi + SCRAPE)
            if a >= b:
                continue
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        total = 0
        for a, b in merged:  # points p with a <= p < b and lo < p <= hi
            total += max(
                0, grid_count(max(lo, a - 1e-3), min(hi, b - 1e-3))
            )  # epsilon: below SCRAPE, above the float ulp at 1e9
        return total


def grid_count(lo: float, hi: float) -> int:
    """Number of scrape points p (multiples of SCRAPE) with lo < p <= hi."""
    if hi <= lo:
        return 0
    return math.floor(hi / SCRAPE) - math.floor(lo / SCRAPE)


@dataclass
class Series:
    labels: dict[str, str]  # includes __name__
    kind: str  # gauge | counter
    fn: Callable[[float], float]  # gauge value, or cumulative counter value
    target: Target | None = None
    is_up: bool = False
    constant: float | None = None  # for the fast path of *_over_time on a constant gauge
    start: float = -math.inf  # no samples before
    monotonic: bool = True  # counters: no resets (lets rate() read only the window's end samples)

    @property
    def name(self) -> str:
        return self.labels["__name__"]

    def has_sample(self, t: float) -> bool:
        if t < self.start:
            return False
        if self.target is None:
            return True
        state = self.target.state_at(t)
        return state is None or (self.is_up and state == "down")

    def value(self, t: float) -> float:
        if self.is_up and self.target is not None and self.target.state_at(t) == "down":
            return 0.0
        return self.fn(t)

    def samples(self, lo: float, hi: float) -> list[tuple[float, float]]:
        """Scraped samples in ``(lo, hi]``."""
        out = []
        p = (math.floor(lo / SCRAPE) + 1) * SCRAPE
        while p <= hi:
            if self.has_sample(p):
                out.append((p, self.value(p)))
            p += SCRAPE
        return out

    def latest(self, t: float) -> tuple[float, float] | None:
        """The sample an instant selector sees at ``t`` (stale after an outage starts; 5 min lookback)."""
        p = math.floor(t / SCRAPE) * SCRAPE
        if (
            self.target is not None
            and self.target.state_at(p) is not None
            and not (self.is_up and self.target.state_at(p) == "down")
        ):
            return None  # stale marker: the target stopped answering
        while p > t - LOOKBACK:
            if self.has_sample(p):
                return p, self.value(p)
            p -= SCRAPE
        return None


def sine_counter(
    rate: float, amplitude: float = 0.5, start: float = T0, phase: float = 0.0
) -> Callable[[float], float]:
    """Cumulative count since ``start`` of a rate ``rate * (1 + amplitude * sin(2π t / day + phase))``."""
    k = 2 * math.pi / DAY

    def fn(t: float) -> float:
        if t <= start:
            return 0.0
        return rate * (t - start) + rate * amplitude / k * (math.cos(k * start + phase) - math.cos(k * t + phase))

    return fn


def step_values(points: list[tuple[float, float]]) -> Callable[[float], float]:
    """A step function holding each value from its timestamp on."""
    pts = sorted(points)

    def fn(t: float) -> float:
        value = pts[0][1]
        for ts, v in pts:
            if ts > t:
                break
            value = v
        return value

    return fn


def lognormal_cdf(x: float, median: float, sigma: float = 0.6) -> float:
    if math.isinf(x):
        return 1.0
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


def label_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@dataclass
class PromState:
    now: Callable[[], float]
    seed: int = 0
    targets: dict[tuple[str, str], Target] = field(default_factory=dict)
    series: dict[tuple[tuple[str, str], ...], Series] = field(default_factory=dict)
    auth: dict[str, Any] = field(default_factory=dict)  # {"basic": [user, password]} | {"bearer": token}
    queries: int = 0

    def add(self, s: Series) -> Series:
        self.series[label_key(s.labels)] = s
        return s

    def by_name(self, name: str) -> list[Series]:
        return [s for s in self.series.values() if s.name == name]

    def target(self, job: str, instance: str) -> Target:
        return self.targets.setdefault((job, instance), Target(job, instance))


def _seed_target(state: PromState, job: str, instance: str, rps: float, err: float, median: float) -> None:
    target = state.target(job, instance)
    base = {"job": job, "instance": instance, "env": "prod"}
    state.add(Series({"__name__": "up", **base}, "gauge", lambda t: 1.0, target, is_up=True, constant=1.0))
    state.add(Series({"__name__": "process_start_time_seconds", **base}, "gauge", lambda t: T0, target, constant=T0))
    if rps <= 0:
        return
    phase = (sum(map(ord, instance)) % 7) / 7  # deterministic (not hash(), which is salted)
    total = sine_counter(rps, 0.5, T0, phase)
    for method, m_share in (("GET", 0.8), ("POST", 0.2)):
        for code, c_share in (("200", 1 - err - 0.02), ("404", 0.02), ("500", err)):
            share = m_share * c_share
            state.add(
                Series(
                    {"__name__": "http_requests_total", **base, "method": method, "code": code},
                    "counter",
                    lambda t, s=share: total(t) * s,
                    target,
                )
            )
    for le in BUCKETS:
        frac = lognormal_cdf(le, median)
        state.add(
            Series(
                {"__name__": "http_request_duration_seconds_bucket", **base, "le": format_value(le)},
                "counter",
                lambda t, f=frac: total(t) * f,
                target,
            )
        )
    mean = median * math.exp(0.6**2 / 2)
    state.add(Series({"__name__": "http_request_duration_seconds_count", **base}, "counter", total, target))
    state.add(
        Series({"__name__": "http_request_duration_seconds_sum", **base}, "counter", lambda t: total(t) * mean, target)
    )


def make_state(seed: int, sandbox: Any) -> PromState:
    state = PromState(now=lambda: sandbox.clock.now(), seed=seed)
    for job, (instances, rps, err, median) in JOBS.items():
        for i in range(instances):
            _seed_target(state, job, f"{job}-{i}:8080", rps, err, median)
    _seed_target(state, "prometheus", "localhost:9090", 0, 0, 1)
    state.target("api", "api-1:8080").daily.append((3 * 3600 + (seed % 50) * 60, 600, "down"))
    state.target("web", "web-0:8080").every.append((6 * 3600, 1800, 120))
    return state


# -- PromQL parser ---------------------------------------------------------------------------------
AGGREGATIONS = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile"}
_PARAM_AGGS = {"topk", "bottomk", "quantile"}
_KEYWORD_OPS = {"and", "or", "unless", "atan2"}
_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    "==": 3,
    "!=": 3,
    "<=": 3,
    ">=": 3,
    "<": 3,
    ">": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}
_COMPARISON = {"==", "!=", "<=", ">=", "<", ">"}
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+(?![\w.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=(){}\[\],:@])
""",
    re.VERBOSE,
)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int


@dataclass
class Num:
    value: float


@dataclass
class Str:
    value: str


@dataclass
class Selector:
    name: str | None
    matchers: list[tuple[str, str, str]]
    range: float | None = None
    offset: float = 0.0


@dataclass
class Call:
    func: str
    args: list[Any]


@dataclass
class Agg:
    op: str
    expr: Any
    param: Any = None
    by: list[str] | None = None
    without: list[str] | None = None


@dataclass
class Binary:
    op: str
    lhs: Any
    rhs: Any
    bool_mod: bool = False
    on: list[str] | None = None
    ignoring: list[str] | None = None
    group: str | None = None  # "left" | "right"
    include: list[str] = field(default_factory=list)


@dataclass
class Unary:
    op: str
    expr: Any


def tokenize(text: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError(pos, f"unexpected character: {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            value = m.group(kind)
            if kind == "ident" and value.lower() in ("inf", "nan"):
                kind = "number"
            out.append(Tok(kind, value, pos))
        pos = m.end()
    out.append(Tok("eof", "", len(text)))
    return out


class ParseError(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos, self.message = pos, message


def _unquote(s: str) -> str:
    if s.startswith("`"):
        return s[1:-1]
    body = s[1:-1]
    return re.sub(
        r"\\(.)", lambda m: {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(m.group(1), m.group(1)), body
    )


class Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self, text: str | None = None, kind: str | None = None) -> Tok:
        t = self.tok
        if (text is not None and t.text.lower() != text) or (kind is not None and t.kind != kind):
            want = text or kind
            got = "end of input" if t.kind == "eof" else f"{t.kind} {t.text!r}"
            raise ParseError(t.pos, f"unexpected {got}, expected {want}")
        self.i += 1
        return t

    def parse(self) -> Any:
        if self.tok.kind == "eof":
            raise ParseError(0, "no expression found in input")
        node = self.expr(0)
        if self.tok.kind != "eof":
            raise ParseError(self.tok.pos, f"unexpected {self.tok.kind} {self.tok.text!r}")
        return node

    def binop(self) -> str | None:
        t = self.tok
        if t.kind == "op" and t.text in _PRECEDENCE:
            return t.text
        if t.kind == "ident" and t.text.lower() in _KEYWORD_OPS:
            return t.text.lower()
        return None

    def labels_list(self) -> list[str]:
        self.take("(")
        names: list[str] = []
        while self.tok.text != ")":
            names.append(self.take(kind="ident").text)
            if self.tok.text == ",":
                self.take(",")
        self.take(")")
        return names

    def expr(self, min_prec: int) -> Any:
        lhs = self.unary()
        while True:
            op = self.binop()
            if op is None or _PRECEDENCE[op] < min_prec:
                return lhs
            self.i += 1
            node = Binary(op, lhs, None)
            if self.tok.text.lower() == "bool":
                self.i += 1
                node.bool_mod = True
            if self.tok.text.lower() in ("on", "ignoring"):
                kw = self.take(kind="ident").text.lower()
                setattr(node, kw, self.labels_list())
                if self.tok.text.lower() in ("group_left", "group_right"):
                    node.group = self.take(kind="ident").text.lower().split("_")[1]
                    if self.tok.text == "(":
                        node.include = self.labels_list()
            prec = _PRECEDENCE[op]
            node.rhs = self.expr(prec if op == "^" else prec + 1)
            lhs = node

    def unary(self) -> Any:
        if self.tok.text in ("-", "+"):
            op = self.take().text
            inner = self.expr(_PRECEDENCE["^"])
            if isinstance(inner, Num):
                return Num(-inner.value if op == "-" else inner.value)
            return Unary(op, inner)
        return self.postfix(self.primary())

    def postfix(self, node: Any) -> Any:
        while True:
            if self.tok.text == "[":
                self.take("[")
                dur = self.take(kind="duration")
                if self.tok.text == ":":
                    raise ParseError(self.tok.pos, "subqueries are not supported by the sandbox")
                self.take("]")
                if not isinstance(node, Selector) or node.range is not None:
                    raise ParseError(dur.pos, "ranges only allowed for vector selectors")
                node.range = parse_duration(dur.text)
            elif self.tok.text.lower() == "offset":
                self.take()
                neg = self.tok.text == "-"
                if neg:
                    self.take("-")
                d = parse_duration(self.take(kind="duration").text)
                if not isinstance(node, Selector):
                    raise ParseError(
                        self.tok.pos,
                        "offset modifier must be preceded by an instant vector selector or range vector selector",
                    )
                node.offset = -d if neg else d
            elif self.tok.text == "@":
                raise ParseError(self.tok.pos, "the @ modifier is not supported by the sandbox")
            else:
                return node

    def primary(self) -> Any:
        t = self.tok
        if t.kind == "number":
            self.i += 1
            return Num(float(int(t.text, 16)) if t.text.lower().startswith("0x") else float(t.text))
        if t.kind == "duration":
            raise ParseError(t.pos, f"unexpected duration {t.text!r}")
        if t.kind == "string":
            self.i += 1
            return Str(_unquote(t.text))
        if t.text == "(":
            self.take("(")
            inner = self.expr(0)
            self.take(")")
            return inner
        if t.text == "{":
            return self.selector(None)
        if t.kind == "ident":
            low = t.text.lower()
            nxt = self.peek().text.lower()
            if low in AGGREGATIONS and nxt in ("(", "by", "without"):
                return self.aggregation()
            if nxt == "(" and low not in _KEYWORD_OPS:
                return self.call()
            self.i += 1
            return self.selector(t.text)
        got = "end of input" if t.kind == "eof" else f"{t.kind} {t.text!r}"
        raise ParseError(t.pos, f"unexpected {got}")

    def selector(self, name: str | None) -> Selector:
        matchers: list[tuple[str, str, str]] = []
        if self.tok.text == "{":
            self.take("{")
            while self.tok.text != "}":
                label = self.take(kind="ident").text
                op = self.take(kind="op").text
                if op not in ("=", "!=", "=~", "!~"):
                    raise ParseError(
                        self.tok.pos, f'unexpected {op!r} in label matching, expected one of "=", "!=", "=~" or "!~"'
                    )
                value = _unquote(self.take(kind="string").text)
                if op in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise ParseError(self.tok.pos, f"invalid regular expression {value!r}: {exc}") from None
                matchers.append((label, op, value))
                if self.tok.text == ",":
                    self.take(",")
            self.take("}")
        if name is None and not any(
            op in ("=", "=~") and not re.fullmatch(v if op == "=~" else re.escape(v), "") for _, op, v in matchers
        ):
            raise ParseError(self.tok.pos, "vector selector must contain at least one non-empty matcher")
        return Selector(name, matchers)

    def aggregation(self) -> Agg:
        op = self.take(kind="ident").text.lower()
        node = Agg(op, None)
        if self.tok.text.lower() in ("by", "without"):
            setattr(node, self.take().text.lower(), self.labels_list())
        self.take("(")
        if op in _PARAM_AGGS:
            node.param = self.expr(0)
            self.take(",")
        node.expr = self.expr(0)
        self.take(")")
        if self.tok.text.lower() in ("by", "without"):
            if node.by is not None or node.without is not None:
                raise ParseError(self.tok.pos, "duplicate by/without clause")
            setattr(node, self.take().text.lower(), self.labels_list())
        return node

    def call(self) -> Call:
        name = self.take(kind="ident")
        if name.text not in FUNCTIONS:
            raise ParseError(name.pos, f"unknown function with name {name.text!r}")
        self.take("(")
        args = []
        while self.tok.text != ")":
            args.append(self.expr(0))
            if self.tok.text == ",":
                self.take(",")
            elif self.tok.text != ")":
                raise ParseError(self.tok.pos, f"unexpected {self.tok.text!r} in function call")
        self.take(")")
        return Call(name.text, args)


def parse(query: str) -> Any:
    try:
        return Parser(query).parse()
    except ParseError as exc:
        line = query[: exc.pos].count("\n") + 1
        col = exc.pos - (query.rfind("\n", 0, exc.pos) + 1) + 1
        raise bad_data(f'invalid parameter "query": {line}:{col}: parse error: {exc.message}') from None
    except ValueError as exc:
        raise bad_data(f'invalid parameter "query": parse error: {exc}') from None


# -- evaluation ------------------------------------------------------------------------------------
Labels = dict[str, str]
Vector = list[tuple[Labels, float]]


@dataclass
class RangeVector:
    items: list[tuple[Series, float, float]]  # (series, lo, hi): samples in (lo, hi]


def _matches(labels: Labels, matchers: list[tuple[str, str, str]]) -> bool:
    for label, op, value in matchers:
        have = labels.get(label, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True


def _select(state: PromState, sel: Selector) -> list[Series]:
    matchers = list(sel.matchers) + ([("__name__", "=", sel.name)] if sel.name else [])
    return [s for s in state.series.values() if _matches(s.labels, matchers)]


def _drop_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _fast_constant(s: Series, lo: float, hi: float) -> tuple[int, int, float] | None:
    """(samples, zero samples, value) for a constant gauge without scanning, or None."""
    if s.constant is None or s.start > lo:
        return None
    total = grid_count(lo, hi)
    if s.target is None:
        return total, 0, s.constant
    if s.is_up:
        gaps = s.target.unhealthy_points(lo, hi, "gap")
        return total - gaps, s.target.unhealthy_points(lo, hi, "down"), s.constant
    return total - s.target.unhealthy_points(lo, hi), 0, s.constant


def _counter_window(s: Series, lo: float, hi: float) -> list[tuple[float, float]]:
    """Samples for rate/increase. The analytic counters are monotonic, so only the first and last
    sample and the sample count matter: found without scanning the whole window (outages included)."""
    if not (s.kind == "counter" and s.monotonic and s.start <= lo):
        return s.samples(lo, hi)
    n = grid_count(lo, hi) - (s.target.unhealthy_points(lo, hi) if s.target is not None else 0)
    if n < 2:
        return s.samples(lo, hi)
    first = (math.floor(lo / SCRAPE) + 1) * SCRAPE
    while not s.has_sample(first):
        first += SCRAPE
    last = math.floor(hi / SCRAPE) * SCRAPE
    while not s.has_sample(last):
        last -= SCRAPE
    return _Endpoints(first, s.value(first), last, s.value(last), n)


class _Endpoints(list):  # type: ignore[type-arg]
    """Stands for n evenly spaced monotonic samples, of which only the ends are known."""

    def __init__(self, t1: float, v1: float, tn: float, vn: float, n: int) -> None:
        super().__init__([(t1, v1), (tn, vn)])
        self.n = n


def extrapolated_rate(
    samples: list[tuple[float, float]], lo: float, hi: float, is_counter: bool, is_rate: bool
) -> float | None:
    """Prometheus' extrapolatedRate (promql/functions.go)."""
    n = getattr(samples, "n", len(samples))
    if n < 2:
        return None
    (t1, v1), (tn, vn) = samples[0], samples[-1]
    result = vn - v1
    if is_counter and not isinstance(samples, _Endpoints):
        prev = v1
        for _, v in samples[1:]:
            if v < prev:
                result += prev
            prev = v
    duration_start, duration_end = t1 - lo, hi - tn
    sampled = tn - t1
    avg_step = sampled / (n - 1)
    if is_counter and result > 0 and v1 >= 0:
        to_zero = sampled * (v1 / result)
        duration_start = min(duration_start, to_zero)
    threshold = avg_step * 1.1
    interval = sampled
    interval += duration_start if duration_start < threshold else avg_step / 2
    interval += duration_end if duration_end < threshold else avg_step / 2
    result *= interval / sampled
    return result / (hi - lo) if is_rate else result


def _range_fn(name: str, s: Series, lo: float, hi: float, arg: float | None = None) -> float | None:
    if name in ("rate", "increase", "delta"):
        samples = _counter_window(s, lo, hi) if name != "delta" else s.samples(lo, hi)
        return extrapolated_rate(samples, lo, hi, name != "delta", name == "rate")
    if name in ("irate", "idelta"):
        samples = s.samples(max(lo, hi - 10 * SCRAPE), hi) or s.samples(lo, hi)
        if len(samples) < 2:
            return None
        (ta, va), (tb, vb) = samples[-2], samples[-1]
        diff = vb - va if name == "idelta" or vb >= va else vb
        return diff / (tb - ta) if name == "irate" else diff
    fast = _fast_constant(s, lo, hi) if name.endswith("_over_time") and name != "quantile_over_time" else None
    if fast is not None:
        count, zeros, value = fast
        if count <= 0:
            return None
        ones = count - zeros
        return {
            "avg_over_time": (ones * value) / count,
            "sum_over_time": ones * value,
            "count_over_time": float(count),
            "min_over_time": 0.0 if zeros else value,
            "max_over_time": value if ones else 0.0,
            "present_over_time": 1.0,
            "last_over_time": s.value(math.floor(hi / SCRAPE) * SCRAPE),
            "stddev_over_time": math.sqrt(max(0.0, ones * value * value / count - (ones * value / count) ** 2)),
        }.get(name)
    values = [v for _, v in s.samples(lo, hi)]
    if not values:
        return None
    if name == "avg_over_time":
        return sum(values) / len(values)
    if name == "sum_over_time":
        return sum(values)
    if name == "count_over_time":
        return float(len(values))
    if name == "min_over_time":
        return min(values)
    if name == "max_over_time":
        return max(values)
    if name == "last_over_time":
        return values[-1]
    if name == "present_over_time":
        return 1.0
    if name == "stddev_over_time":
        mean = sum(values) / len(values)
        return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    if name == "quantile_over_time":
        return _quantile(arg if arg is not None else math.nan, values)
    if name == "changes":
        return float(sum(1 for a, b in itertools.pairwise(values) if a != b))
    if name == "resets":
        return float(sum(1 for a, b in itertools.pairwise(values) if b < a))
    return None


def _quantile(q: float, values: list[float]) -> float:
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    vs = sorted(values)
    rank = q * (len(vs) - 1)
    lower, upper = math.floor(rank), min(len(vs) - 1, math.floor(rank) + 1)
    weight = rank - lower
    return vs[lower] * (1 - weight) + vs[upper] * weight


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' bucketQuantile over (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if not buckets or not math.isinf(buckets[-1][0]) or len(buckets) < 2:
        return math.nan
    fixed, high = [], -math.inf  # make cumulative counts monotonic
    for le, c in buckets:
        high = max(high, c)
        fixed.append((le, high))
    observations = fixed[-1][1]
    if observations == 0 or math.isnan(observations):
        return math.nan
    rank = q * observations
    b = next(i for i, (_, c) in enumerate(fixed) if c >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0]
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    start = 0.0 if b == 0 else fixed[b - 1][0]
    end = fixed[b][0]
    count = fixed[b][1] - (fixed[b - 1][1] if b > 0 else 0)
    rank -= fixed[b - 1][1] if b > 0 else 0
    return start + (end - start) * (rank / count) if count else start


RANGE_FUNCTIONS = {
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "changes",
    "resets",
}
_MATH = {
    "abs": abs,
    "ceil": math.ceil,
    "floor": math.floor,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "ln": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "sgn": lambda v: math.copysign(1.0, v) if v else 0.0,
}
FUNCTIONS = (
    RANGE_FUNCTIONS
    | set(_MATH)
    | {
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "scalar",
        "vector",
        "time",
        "timestamp",
        "histogram_quantile",
        "absent",
        "sort",
        "sort_desc",
        "label_replace",
    }
)


def _type(v: Any) -> str:
    if isinstance(v, RangeVector):
        return "range vector"
    if isinstance(v, list):
        return "instant vector"
    return "string" if isinstance(v, str) else "scalar"


def _safe(fn: Callable[[float], float], v: float) -> float:
    try:
        return float(fn(v))
    except (ValueError, OverflowError):
        return math.nan if not (fn is math.sqrt and v == math.inf) else math.inf


def arith(op: str, a: float, b: float) -> float:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * (math.copysign(1, b))
        return a / b
    if op == "%":
        return math.nan if b == 0 else math.fmod(a, b)
    if op == "^":
        try:
            return math.pow(a, b)
        except (OverflowError, ValueError):
            return math.inf if a > 0 else math.nan
    if op == "atan2":
        return math.atan2(a, b)
    return float({"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])


class Evaluator:
    def __init__(self, state: PromState) -> None:
        self.state = state
        # series a selector matches, per selector node: the same for every step of one range query
        # (which evaluates the tree once per step), so matched once rather than at each of its steps
        self._selected: dict[int, tuple[Selector, list[Series]]] = {}

    def select(self, node: Selector) -> list[Series]:
        hit = self._selected.get(id(node))
        if hit is None or hit[0] is not node:
            hit = self._selected[id(node)] = (node, _select(self.state, node))
        return hit[1]

    def eval(self, node: Any, t: float) -> Any:
        if isinstance(node, Num):
            return node.value
        if isinstance(node, Str):
            return node.value
        if isinstance(node, Selector):
            at = t - node.offset
            if node.range is not None:
                return RangeVector([(s, at - node.range, at) for s in self.select(node)])
            out: Vector = []
            for s in self.select(node):
                got = s.latest(at)
                if got is not None:
                    out.append((dict(s.labels), got[1]))
            return out
        if isinstance(node, Unary):
            v = self.eval(node.expr, t)
            if node.op == "+":
                return v
            if isinstance(v, list):
                return [(_drop_name(lbl), -x) for lbl, x in v]
            if isinstance(v, float):
                return -v
            raise bad_data(
                f"unary expression only allowed on expressions of type scalar or instant vector, got {_type(v)!r}"
            )
        if isinstance(node, Call):
            return self.call(node, t)
        if isinstance(node, Agg):
            return self.aggregate(node, t)
        if isinstance(node, Binary):
            return self.binary(node, t)
        raise bad_data(f"unsupported expression {node!r}")

    def _vector_arg(self, node: Call, i: int, t: float) -> Vector:
        if i >= len(node.args):
            raise bad_data(f"expected at least {i + 1} argument(s) in call to {node.func!r}, got {len(node.args)}")
        v = self.eval(node.args[i], t)
        if not isinstance(v, list):
            raise bad_data(f'expected type instant vector in call to function "{node.func}", got {_type(v)}')
        return v

    def _scalar_arg(self, node: Call, i: int, t: float) -> float:
        if i >= len(node.args):
            raise bad_data(f"expected at least {i + 1} argument(s) in call to {node.func!r}, got {len(node.args)}")
        v = self.eval(node.args[i], t)
        if not isinstance(v, float):
            raise bad_data(f'expected type scalar in call to function "{node.func}", got {_type(v)}')
        return v

    def call(self, node: Call, t: float) -> Any:
        f = node.func
        if f in RANGE_FUNCTIONS:
            idx = 1 if f == "quantile_over_time" else 0
            arg = self._scalar_arg(node, 0, t) if idx else None
            if len(node.args) != idx + 1:
                raise bad_data(f"expected {idx + 1} argument(s) in call to {f!r}, got {len(node.args)}")
            rv = self.eval(node.args[idx], t)
            if not isinstance(rv, RangeVector):
                raise bad_data(f'expected type range vector in call to function "{f}", got {_type(rv)}')
            out: Vector = []
            for s, lo, hi in rv.items:
                value = _range_fn(f, s, lo, hi, arg)
                if value is not None:
                    out.append((dict(s.labels) if f == "last_over_time" else _drop_name(s.labels), value))
            return out
        if f == "time":
            return float(t)
        if f == "vector":
            return [({}, self._scalar_arg(node, 0, t))]
        if f == "scalar":
            v = self._vector_arg(node, 0, t)
            return v[0][1] if len(v) == 1 else math.nan
        if f in _MATH:
            return [(_drop_name(lbl), _safe(_MATH[f], x)) for lbl, x in self._vector_arg(node, 0, t)]
        if f == "round":
            nearest = self._scalar_arg(node, 1, t) if len(node.args) > 1 else 1.0
            return [
                (_drop_name(lbl), math.floor(x / nearest + 0.5) * nearest if math.isfinite(x) else x)
                for lbl, x in self._vector_arg(node, 0, t)
            ]
        if f in ("clamp", "clamp_min", "clamp_max"):
            v = self._vector_arg(node, 0, t)
            lo = self._scalar_arg(node, 1, t) if f in ("clamp", "clamp_min") else -math.inf
            hi = self._scalar_arg(node, 2 if f == "clamp" else 1, t) if f in ("clamp", "clamp_max") else math.inf
            return [(_drop_name(lbl), max(lo, min(hi, x))) for lbl, x in v]
        if f == "timestamp":
            return [(_drop_name(lbl), math.floor(t / SCRAPE) * SCRAPE) for lbl, _ in self._vector_arg(node, 0, t)]
        if f in ("sort", "sort_desc"):
            return sorted(self._vector_arg(node, 0, t), key=lambda lx: lx[1], reverse=f == "sort_desc")
        if f == "absent":
            v = self._vector_arg(node, 0, t)
            if v:
                return []
            arg = node.args[0]
            labels = {k: val for k, op, val in arg.matchers if op == "="} if isinstance(arg, Selector) else {}
            return [(labels, 1.0)]
        if f == "label_replace":
            v = self._vector_arg(node, 0, t)
            dst, repl, src, regex = (self.eval(a, t) for a in node.args[1:5])
            out = []
            for lbl, x in v:
                m = re.fullmatch(regex, lbl.get(src, ""))
                l2 = dict(lbl)
                if m:
                    l2[dst] = m.expand(re.sub(r"\$(\d+)", r"\\\1", re.sub(r"\$\{(\d+)\}", r"\\\1", repl)))
                out.append((l2, x))
            return out
        if f == "histogram_quantile":
            q = self._scalar_arg(node, 0, t)
            groups: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
            for lbl, x in self._vector_arg(node, 1, t):
                if "le" not in lbl:
                    continue
                try:
                    le = float(lbl["le"])
                except ValueError:
                    continue
                key = label_key({k: v for k, v in lbl.items() if k not in ("le", "__name__")})
                groups.setdefault(key, []).append((le, x))
            return [(dict(k), bucket_quantile(q, b)) for k, b in groups.items()]
        raise bad_data(f"unknown function with name {f!r}")

    def aggregate(self, node: Agg, t: float) -> Vector:
        v = self.eval(node.expr, t)
        if not isinstance(v, list):
            raise bad_data(f"expected type instant vector in aggregation expression, got {_type(v)}")
        param = self.eval(node.param, t) if node.param is not None else None
        groups: dict[tuple[tuple[str, str], ...], list[tuple[Labels, float]]] = {}
        for lbl, x in v:
            if node.by is not None:
                key_labels = {k: lbl[k] for k in node.by if k in lbl}
            elif node.without is None:
                key_labels = {}
            else:
                drop = set(node.without or []) | {"__name__"}
                key_labels = {k: val for k, val in lbl.items() if k not in drop}
            groups.setdefault(label_key(key_labels), []).append((lbl, x))
        out: Vector = []
        for key, members in groups.items():
            xs = [x for _, x in members]
            if node.op in ("topk", "bottomk"):
                k = int(param) if isinstance(param, float) and math.isfinite(param) else 0
                ordered = sorted(members, key=lambda lx: lx[1], reverse=node.op == "topk")
                out.extend(ordered[: max(0, k)])
                continue
            value = {
                "sum": lambda xs=xs: sum(xs),
                "avg": lambda xs=xs: sum(xs) / len(xs),
                "min": lambda xs=xs: min(xs),
                "max": lambda xs=xs: max(xs),
                "count": lambda xs=xs: float(len(xs)),
                "group": lambda: 1.0,
                "stddev": lambda xs=xs: math.sqrt(sum((x - sum(xs) / len(xs)) ** 2 for x in xs) / len(xs)),
                "stdvar": lambda xs=xs: sum((x - sum(xs) / len(xs)) ** 2 for x in xs) / len(xs),
                "quantile": lambda xs=xs: _quantile(param if isinstance(param, float) else math.nan, xs),
            }[node.op]()
            out.append((dict(key), value))
        return out

    def binary(self, node: Binary, t: float) -> Any:
        lhs, rhs = self.eval(node.lhs, t), self.eval(node.rhs, t)
        op = node.op
        for side in (lhs, rhs):
            if isinstance(side, (RangeVector, str)):
                raise bad_data(
                    f"binary expression must contain only scalar and instant vector types, got {_type(side)}"
                )
        comparison = op in _COMPARISON
        if op in ("and", "or", "unless"):
            if not (isinstance(lhs, list) and isinstance(rhs, list)):
                raise bad_data(f"set operator {op!r} not allowed in binary scalar expression")
            return self._set_op(node, lhs, rhs)
        if isinstance(lhs, float) and isinstance(rhs, float):
            if comparison and not node.bool_mod:
                raise bad_data("comparisons between scalars must use BOOL modifier")
            return arith(op, lhs, rhs)
        if isinstance(lhs, float) or isinstance(rhs, float):
            vec, scalar, vec_left = (lhs, rhs, True) if isinstance(lhs, list) else (rhs, lhs, False)
            out: Vector = []
            for lbl, x in vec:
                a, b = (x, scalar) if vec_left else (scalar, x)
                r = arith(op, a, b)
                if comparison and not node.bool_mod:
                    if r:
                        out.append((lbl, x))
                else:
                    out.append((_drop_name(lbl), r))
            return out
        return self._vector_op(node, lhs, rhs)

    @staticmethod
    def _key(node: Binary, labels: Labels) -> tuple[tuple[str, str], ...]:
        if node.on is not None:
            return label_key({k: labels[k] for k in node.on if k in labels})
        drop = set(node.ignoring or []) | {"__name__"}
        return label_key({k: v for k, v in labels.items() if k not in drop})

    def _set_op(self, node: Binary, lhs: Vector, rhs: Vector) -> Vector:
        rkeys = {self._key(node, lbl) for lbl, _ in rhs}
        if node.op == "and":
            return [(lbl, x) for lbl, x in lhs if self._key(node, lbl) in rkeys]
        if node.op == "unless":
            return [(lbl, x) for lbl, x in lhs if self._key(node, lbl) not in rkeys]
        lkeys = {self._key(node, lbl) for lbl, _ in lhs}
        return list(lhs) + [(lbl, x) for lbl, x in rhs if self._key(node, lbl) not in lkeys]

    def _vector_op(self, node: Binary, lhs: Vector, rhs: Vector) -> Vector:
        comparison = node.op in _COMPARISON
        drop_name = not comparison or node.bool_mod
        many, one, many_is_left = (lhs, rhs, True) if node.group != "right" else (rhs, lhs, False)
        one_by_key: dict[tuple[tuple[str, str], ...], tuple[Labels, float]] = {}
        for lbl, x in one:
            key = self._key(node, lbl)
            if key in one_by_key:
                side = "right" if many_is_left else "left"
                raise PromError(
                    422,
                    "execution",
                    f"found duplicate series for the match group {dict(key)} on the {side} hand-side of the operation: "
                    "many-to-many matching not allowed: matching labels must be unique on one side",
                )
            one_by_key[key] = (lbl, x)
        seen: set[tuple[tuple[str, str], ...]] = set()
        out: Vector = []
        for lbl, x in many:
            key = self._key(node, lbl)
            match = one_by_key.get(key)
            if match is None:
                continue
            if node.group is None:
                if key in seen:
                    raise PromError(
                        422,
                        "execution",
                        f"found duplicate series for the match group {dict(key)} "
                        "on the left hand-side of the operation: "
                        "many-to-many matching not allowed: matching labels must be unique on one side",
                    )
                seen.add(key)
            ol, ox = match
            a, b = (x, ox) if many_is_left else (ox, x)
            r = arith(node.op, a, b)
            if comparison and not node.bool_mod and not r:
                continue
            labels = _drop_name(lbl) if drop_name else dict(lbl)
            if node.group is None:
                if node.on is not None:
                    labels = {k: v for k, v in labels.items() if k in node.on or (k == "__name__" and not drop_name)}
                elif node.ignoring:
                    labels = {k: v for k, v in labels.items() if k not in node.ignoring}
            else:
                for k in node.include:
                    if k in ol:
                        labels[k] = ol[k]
            value = r if (not comparison or node.bool_mod) else a
            out.append((labels, value))
        return out


# -- query execution -------------------------------------------------------------------------------
def _vector_json(v: Vector, t: float) -> list[dict[str, Any]]:
    return [
        {"metric": dict(label_key(lbl)), "value": [format_ts(t), format_value(x)]}
        for lbl, x in sorted(v, key=lambda lx: label_key(lx[0]))
    ]


def instant_query(state: PromState, query: str, t: float, limit: int = 0) -> dict[str, Any]:
    node = parse(query)
    result = Evaluator(state).eval(node, t)
    warnings: list[str] = []
    if isinstance(result, RangeVector):
        series = []
        for s, lo, hi in result.items:
            values = [[format_ts(ts), format_value(v)] for ts, v in s.samples(lo, hi)]
            if values:
                series.append({"metric": dict(label_key(s.labels)), "values": values})
        series.sort(key=lambda m: label_key(m["metric"]))
        data: dict[str, Any] = {"resultType": "matrix", "result": series}
    elif isinstance(result, list):
        data = {"resultType": "vector", "result": _vector_json(result, t)}
    elif isinstance(result, str):
        data = {"resultType": "string", "result": [format_ts(t), result]}
    else:
        data = {"resultType": "scalar", "result": [format_ts(t), format_value(result)]}
    if limit and data["resultType"] in ("vector", "matrix") and len(data["result"]) > limit:
        data["result"] = data["result"][:limit]
        warnings.append("results truncated due to limit")
    return {"data": data, "warnings": warnings}


def range_query(state: PromState, query: str, start: float, end: float, step: float, limit: int = 0) -> dict[str, Any]:
    node = parse(query)
    ev = Evaluator(state)
    series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
    n = math.floor((end - start) / step + 1e-9) + 1
    for k in range(n):
        t = start + k * step
        result = ev.eval(node, t)
        if isinstance(result, RangeVector):
            raise bad_data(
                'invalid parameter "query": invalid expression type "range vector" for range query, '
                "must be Scalar or instant Vector"
            )
        if isinstance(result, str):
            raise bad_data(
                'invalid parameter "query": invalid expression type "string" for range query, '
                "must be Scalar or instant Vector"
            )
        items = result if isinstance(result, list) else [({}, result)]
        for lbl, x in items:
            series.setdefault(label_key(lbl), []).append([format_ts(t), format_value(x)])
    out = [{"metric": dict(k), "values": v} for k, v in sorted(series.items())]
    warnings = []
    if limit and len(out) > limit:
        out = out[:limit]
        warnings.append("results truncated due to limit")
    return {"data": {"resultType": "matrix", "result": out}, "warnings": warnings}


# -- HTTP API --------------------------------------------------------------------------------------
router = APIRouter(route_class=ErrorRoute)
control = APIRouter()
_ERROR_TYPES = {
    400: "bad_data",
    404: "not_found",
    406: "not_acceptable",
    422: "execution",
    499: "canceled",
    503: "timeout",
}


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    error_type = _ERROR_TYPES.get(status, "internal" if status < 500 or status == 500 else "unavailable")
    return JSONResponse(
        {"status": "error", "errorType": error_type, "error": message},
        status_code=status,
        headers=retry_after_headers(retry_after),
    )


def prom_state(request: Request) -> PromState:
    return request.app.state.sandbox.state(NAME)


def _unauthorized(state: PromState, request: Request) -> Response | None:
    if not state.auth:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    credentials = basic_credentials(header)
    if "basic" in state.auth and credentials is not None and list(credentials) == list(state.auth["basic"]):
        return None
    if "bearer" in state.auth and scheme.lower() == "bearer" and value.strip() == state.auth["bearer"]:
        return None
    return PlainTextResponse("Unauthorized\n", status_code=401, headers={"WWW-Authenticate": "Basic"})


def _time_param(params: dict[str, str], name: str, default: float | None) -> float:
    raw = params.get(name)
    if raw in (None, ""):
        if default is None:
            raise bad_data(f'invalid parameter "{name}": cannot parse "" to a valid timestamp')
        return default
    try:
        return parse_time(raw)
    except ValueError:
        raise bad_data(f'invalid parameter "{name}": cannot parse "{raw}" to a valid timestamp') from None


def _timeout_and_limit(params: dict[str, Any]) -> int:
    """Validate ``timeout``; return ``limit`` (0 = no limit)."""
    if params.get("timeout"):
        try:
            parse_duration(params["timeout"])
        except ValueError:
            raise bad_data(
                f'invalid parameter "timeout": cannot parse "{params["timeout"]}" to a valid duration'
            ) from None
    try:
        limit = int(params.get("limit") or 0)
    except ValueError:
        raise bad_data(f'invalid parameter "limit": cannot parse "{params.get("limit")}" to a valid integer') from None
    if limit < 0:
        raise bad_data('invalid parameter "limit": limit must be non-negative')
    return limit


def _success(result: dict[str, Any]) -> Response:
    body: dict[str, Any] = {"status": "success", "data": result["data"]}
    if result.get("warnings"):
        body["warnings"] = result["warnings"]
    return JSONResponse(body)


@router.api_route("/api/v1/query", methods=["GET", "POST"])
async def query(request: Request) -> Response:
    state = prom_state(request)
    if (denied := _unauthorized(state, request)) is not None:
        return denied
    params = (await read_params(request, json_body=False)).values
    limit = _timeout_and_limit(params)
    t = _time_param(params, "time", state.now())
    if not params.get("query"):
        raise bad_data('invalid parameter "query": 1:1: parse error: no expression found in input')
    state.queries += 1
    return _success(instant_query(state, params["query"], t, limit))


@router.api_route("/api/v1/query_range", methods=["GET", "POST"])
async def query_range(request: Request) -> Response:
    state = prom_state(request)
    if (denied := _unauthorized(state, request)) is not None:
        return denied
    params = (await read_params(request, json_body=False)).values
    limit = _timeout_and_limit(params)
    start = _time_param(params, "start", None)
    end = _time_param(params, "end", None)
    if end < start:
        raise bad_data('invalid parameter "end": end timestamp must not be before start time')
    raw = params.get("step", "")
    try:
        step = parse_duration(raw)
    except ValueError:
        raise bad_data(f'invalid parameter "step": cannot parse "{raw}" to a valid duration') from None
    if step <= 0:
        raise bad_data(
            'invalid parameter "step": zero or negative query resolution step widths are not accepted. '
            "Try a positive integer"
        )
    if (end - start) / step > MAX_POINTS:
        raise bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    if not params.get("query"):
        raise bad_data('invalid parameter "query": 1:1: parse error: no expression found in input')
    state.queries += 1
    return _success(range_query(state, params["query"], start, end, step, limit))


@router.api_route("/api/v1/series", methods=["GET", "POST"])
async def series_endpoint(request: Request) -> Response:
    state = prom_state(request)
    if (denied := _unauthorized(state, request)) is not None:
        return denied
    matches = request.query_params.getlist("match[]")
    if request.method == "POST":
        form = await request.form()
        matches += [str(v) for v in form.getlist("match[]")]
    if not matches:
        raise bad_data("no match[] parameter provided")
    found: dict[Any, dict[str, str]] = {}
    for m in matches:
        node = parse(m)
        if not isinstance(node, Selector) or node.range is not None:
            raise bad_data(f'invalid parameter "match[]": {m} is not an instant vector selector')
        for s in _select(state, node):
            found[label_key(s.labels)] = dict(label_key(s.labels))
    return JSONResponse({"status": "success", "data": [found[k] for k in sorted(found)]})


@router.get("/api/v1/labels")
async def labels(request: Request) -> Response:
    state = prom_state(request)
    if (denied := _unauthorized(state, request)) is not None:
        return denied
    names = sorted({k for s in state.series.values() for k in s.labels})
    return JSONResponse({"status": "success", "data": names})


@router.get("/api/v1/label/{name}/values")
async def label_values(request: Request, name: str) -> Response:
    state = prom_state(request)
    if (denied := _unauthorized(state, request)) is not None:
        return denied
    values = sorted({s.labels[name] for s in state.series.values() if name in s.labels})
    return JSONResponse({"status": "success", "data": values})


@router.get("/api/v1/status/buildinfo")
async def buildinfo() -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"version": "3.5.0", "revision": "sandbox", "branch": "HEAD", "goVersion": "go1.24.0"},
    }


@router.get("/-/healthy")
async def healthy() -> Response:
    return PlainTextResponse("Prometheus Server is Healthy.\n")


@router.get("/-/ready")
async def ready() -> Response:
    return PlainTextResponse("Prometheus Server is Ready.\n")


# -- controls (/_sandbox/prometheus) ---------------------------------------------------------------
class OutageBody(BaseModel):
    job: str
    instance: str | None = None  # None: every instance of the job
    start: str | float
    end: str | float
    mode: str = "down"  # down | gap


class SeriesBody(BaseModel):
    metric: str
    labels: dict[str, str] = {}
    type: str = "gauge"  # gauge | counter
    value: float | None = None  # gauge: a constant
    rate: float | None = None  # counter: per-second rate (with a daily sine of ``amplitude``)
    amplitude: float = 0.0
    values: list[tuple[str | float, float]] | None = None  # explicit points, each held until the next
    start: str | float | None = None  # no samples before


class AuthBody(BaseModel):
    basic: tuple[str, str] | None = None
    bearer: str | None = None


def _ts(value: str | float) -> float:
    try:
        return parse_time(str(value))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@control.post("/outages")
def add_outage(request: Request, body: OutageBody) -> dict[str, Any]:
    state = prom_state(request)
    if body.mode not in ("down", "gap"):
        raise HTTPException(400, "mode must be down or gap")
    targets = [t for (job, inst), t in state.targets.items() if job == body.job and body.instance in (None, inst)]
    if not targets:
        if body.instance is None:
            raise HTTPException(404, f"no targets for job {body.job!r}")
        targets = [state.target(body.job, body.instance)]
    start, end = _ts(body.start), _ts(body.end)
    for t in targets:
        t.outages.append(Outage(start, end, body.mode))
    return {"targets": [t.instance for t in targets], "start": start, "end": end, "mode": body.mode}


@control.delete("/outages")
def clear_outages(request: Request, builtin: bool = False) -> dict[str, Any]:
    """Remove added outages (and with ``?builtin=true`` the seeded daily/periodic ones too)."""
    n = 0
    for t in prom_state(request).targets.values():
        n += len(t.outages)
        t.outages.clear()
        if builtin:
            n += len(t.daily) + len(t.every)
            t.daily.clear()
            t.every.clear()
    return {"cleared": n}


@control.post("/series")
def set_series(request: Request, body: SeriesBody) -> dict[str, Any]:
    """Add or replace one series (exact label set). ``up`` series keep the up/down semantics."""
    state = prom_state(request)
    labels = {"__name__": body.metric, **body.labels}
    target = state.target(labels["job"], labels["instance"]) if "job" in labels and "instance" in labels else None
    start = _ts(body.start) if body.start is not None else -math.inf
    constant: float | None = None
    monotonic = True
    if body.values:
        points = [(_ts(ts), float(v)) for ts, v in body.values]
        fn = step_values(points)
        start = max(start, min(ts for ts, _ in points))
        monotonic = all(b[1] >= a[1] for a, b in itertools.pairwise(sorted(points)))
    elif body.type == "counter":
        if body.rate is None:
            raise HTTPException(400, "a counter needs rate or values")
        fn = sine_counter(body.rate, body.amplitude, T0 if start == -math.inf else start)
    else:
        if body.value is None:
            raise HTTPException(400, "a gauge needs value or values")
        constant = float(body.value)
        fn = lambda t, c=constant: c  # noqa: E731
    if body.type not in ("gauge", "counter"):
        raise HTTPException(400, "type must be gauge or counter")
    s = state.add(
        Series(
            labels,
            body.type,
            fn,
            target,
            is_up=body.metric == "up",
            constant=constant,
            start=start,
            monotonic=monotonic,
        )
    )
    return {"metric": dict(label_key(s.labels)), "series": len(state.series)}


@control.delete("/series")
def delete_series(request: Request) -> dict[str, Any]:
    """``DELETE /series?metric=up&job=api``: remove series whose labels include all given ones."""
    state = prom_state(request)
    want = dict(request.query_params)
    if "metric" in want:
        want["__name__"] = want.pop("metric")
    doomed = [k for k, s in state.series.items() if all(s.labels.get(a) == b for a, b in want.items())]
    for k in doomed:
        del state.series[k]
    return {"deleted": len(doomed)}


@control.get("/series")
def list_series(request: Request, metric: str | None = None) -> list[dict[str, str]]:
    state = prom_state(request)
    return [dict(label_key(s.labels)) for s in state.series.values() if metric in (None, s.name)]


@control.post("/auth")
def set_auth(request: Request, body: AuthBody) -> dict[str, Any]:
    state = prom_state(request)
    state.auth = {k: v for k, v in (("basic", list(body.basic) if body.basic else None), ("bearer", body.bearer)) if v}
    return {"auth": sorted(state.auth)}


@control.get("/counts")
def counts(request: Request) -> dict[str, Any]:
    state = prom_state(request)
    return {"queries": state.queries, "series": len(state.series)}
