"""Prometheus HTTP API hook (connection ``prometheus_default``) for the ``daily_project_metrics`` DAG.

Connection: type ``prometheus`` (``http`` works too); host = the server's base URL
(``http://prometheus:9090``, a path prefix behind a proxy such as ``https://example.com/prometheus``, or
already ending in ``/api/v1``). Authentication, from the connection:

* none (Prometheus itself checks nothing unless ``--web.config.file`` sets users);
* basic: login + password (``basic_auth_users`` of the web config, or a proxy);
* bearer: the extra ``bearer_token``, or the password when there is no login (a reverse proxy or a
  managed backend checks it; Prometheus does not);
* the extra ``auth_type`` (``none``, ``basic``, ``bearer``) forces one of these.

Plus :class:`ApiHook`'s extras ``timeout``, ``max_retries``, ``backoff_initial``, ``backoff_max``,
``max_retry_wait``, ``headers``.

Prometheus facts this hook encodes (``/work/shared/api/prometheus.md``):

* ``/api/v1/query`` (``query``, ``time``) and ``/api/v1/query_range`` (``query``, ``start``, ``end``
  both inclusive, ``step``); times are sent as RFC 3339 UTC (``2026-11-23T00:00:00Z``), the step as
  float seconds (``300``: a fraction such as ``0.5`` is not a valid PromQL duration);
* the envelope ``{"status": "success", "data": {"resultType", "result"}, "warnings"?, "infos"?}``;
  sample values are strings because JSON cannot hold ``NaN``/``+Inf``: :class:`Sample` keeps the
  string (``value_raw``) and a float only when it is finite (``value``, else None);
* errors ``{"status": "error", "errorType", "error"}``: 400 ``bad_data`` (bad PromQL or parameters),
  422 ``execution`` (cannot be executed), 503 ``timeout``/``canceled``. Those are the query's fault
  and raise :class:`PrometheusQueryError` naming the query (a query timeout is not retried: it would
  time out again); other errors (a proxy's 502, 401/403) are :class:`ApiError`, and a server that
  cannot be reached at all is :class:`PrometheusUnavailable`;
* at most 11,000 points per series in a range query: checked before sending;
* an empty vector is "no data", not an error; ``warnings``/``infos`` are logged and kept.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from devops_automation.hooks.api import ApiError, ApiHook

if TYPE_CHECKING:
    from airflow.sdk import Connection

API_PREFIX = "/api/v1"
MAX_POINTS = 11_000
AUTH_TYPES = ("none", "basic", "bearer")
#: errorType values that are the query's own fault (prometheus.md): recorded per query, not retried
QUERY_ERROR_TYPES = frozenset({"bad_data", "execution", "timeout", "canceled", "not_acceptable"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class PrometheusQueryError(ApiError):
    """Prometheus refused or could not run one query (400 ``bad_data``, 422 ``execution``, 503
    ``timeout``/``canceled``), or its result cannot be one figure (then ``status`` is the 200 it
    answered). ``query`` is the PromQL, ``error_type`` Prometheus's ``errorType`` (None when the check
    is ours). ``per_query`` tells callers that other queries may still work."""

    per_query = True

    def __init__(
        self,
        query: str,
        error_type: str | None,
        error: str,
        *,
        method: str = "GET",
        path: str = API_PREFIX + "/query",
        status: int | None = 200,
        body: Any = None,
    ) -> None:
        kind = f"{error_type}: " if error_type else ""
        super().__init__("Prometheus", method, path, status, f"query {query!r} failed: {kind}{error}", body=body)
        self.query = query
        self.error_type = error_type
        self.error = error


class PrometheusUnavailable(ApiError):
    """Prometheus could not be reached (connection refused, DNS, TLS, timeout) after the retries."""

    per_query = False


@dataclass(frozen=True)
class Sample:
    """One value: ``value_raw`` as Prometheus sent it ("0.25", "NaN", "+Inf"), ``value`` the float
    when it is finite (None for NaN/±Inf or a non-number), ``time`` the sample's Unix seconds."""

    labels: Mapping[str, str]
    time: float
    value_raw: str

    @property
    def value(self) -> float | None:
        return finite(self.value_raw)


@dataclass(frozen=True)
class InstantResult:
    """What ``/api/v1/query`` answered: ``result_type`` ``vector``, ``scalar`` or ``string``; an
    empty ``samples`` is "no data"."""

    query: str
    time: dt.datetime
    result_type: str
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()

    @property
    def no_data(self) -> bool:
        return not self.samples

    def single(self) -> Sample | None:
        """The one sample of a query meant to give one figure; None for an empty vector (no data).
        More than one series is the query's fault (:class:`PrometheusQueryError`)."""
        if len(self.samples) > 1:
            raise PrometheusQueryError(self.query, None, too_many_series(self.samples))
        return self.samples[0] if self.samples else None


@dataclass(frozen=True)
class RangeSeries:
    labels: Mapping[str, str]
    points: tuple[Sample, ...]


@dataclass(frozen=True)
class RangeResult:
    """What ``/api/v1/query_range`` answered (a matrix); no series is "no data"."""

    query: str
    start: dt.datetime
    end: dt.datetime
    step: float
    series: tuple[RangeSeries, ...]
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()

    @property
    def no_data(self) -> bool:
        return not any(s.points for s in self.series)

    def single(self) -> RangeSeries | None:
        """The one series of a query meant to give one figure; None when there is none (no data)."""
        series = [s for s in self.series if s.points]
        if len(series) > 1:
            raise PrometheusQueryError(self.query, None, too_many_series(series), path=API_PREFIX + "/query_range")
        return series[0] if series else None


def finite(raw: Any) -> float | None:
    """A sample string as a float, None when it is NaN, ±Inf or not a number."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def too_many_series(series: Any) -> str:
    labels = [dict(getattr(s, "labels", {})) for s in series]
    shown = ", ".join("{" + ", ".join(f'{k}="{v}"' for k, v in sorted(lbl.items())) + "}" for lbl in labels[:3])
    more = f" and {len(labels) - 3} more" if len(labels) > 3 else ""
    return (
        f"returned {len(labels)} series ({shown}{more}) where one figure is expected: "
        "aggregate them, e.g. sum(...), avg(...) or avg by (job) (...) with one job selected"
    )


def prom_time(value: dt.datetime, name: str = "time") -> str:
    """An aware datetime as RFC 3339 UTC (``2026-11-23T00:00:00Z``); naive ones are refused."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def step_seconds(step: dt.timedelta | float | int | str) -> float:
    """A range step as seconds: a timedelta, a number of seconds or a PromQL duration (``5m``, ``1h30m``)."""
    if isinstance(step, dt.timedelta):
        seconds = step.total_seconds()
    elif isinstance(step, int | float) and not isinstance(step, bool):
        seconds = float(step)
    elif isinstance(step, str):
        text = step.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if not text or pos != len(text):
                raise ValueError(f"step {step!r} is not a duration (e.g. 30s, 5m, 1h) or seconds") from None
    else:
        raise ValueError(f"step {step!r} is not a duration (e.g. 30s, 5m, 1h) or seconds")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"step {step!r} must be positive")
    return seconds


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _sample(labels: Any, pair: Any, query: str) -> Sample:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise PrometheusQueryError(query, None, f"unexpected sample {pair!r} in the answer")
    ts, raw = pair
    try:
        when = float(ts)
    except (TypeError, ValueError):
        raise PrometheusQueryError(query, None, f"unexpected sample time {ts!r} in the answer") from None
    return Sample(dict(labels or {}), when, str(raw))


def instant_result(query: str, time: dt.datetime, data: Mapping[str, Any]) -> InstantResult:
    """An :class:`InstantResult` from the envelope's ``data`` (plus its ``warnings``/``infos``)."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector" and isinstance(result, list):
        samples = tuple(_sample(item.get("metric"), item.get("value"), query) for item in result)
    elif kind in ("scalar", "string"):
        samples = (_sample({}, result, query),)
    elif kind == "matrix":
        raise PrometheusQueryError(
            query,
            None,
            "returned a range vector (matrix): wrap the [range] selector in a function such as "
            "avg_over_time(...), or use a range query",
        )
    else:
        raise PrometheusQueryError(query, None, f"unexpected resultType {kind!r}")
    return InstantResult(query, time, str(kind), samples, _strings(data.get("warnings")), _strings(data.get("infos")))


def range_result(query: str, start: dt.datetime, end: dt.datetime, step: float, data: Mapping[str, Any]) -> RangeResult:
    """A :class:`RangeResult` from the envelope's ``data`` (plus its ``warnings``/``infos``)."""
    kind, result = data.get("resultType"), data.get("result")
    if kind != "matrix" or not isinstance(result, list):
        raise PrometheusQueryError(
            query, None, f"unexpected resultType {kind!r} for a range query", path=API_PREFIX + "/query_range"
        )
    series = tuple(
        RangeSeries(
            dict(item.get("metric") or {}),
            tuple(_sample(item.get("metric"), pair, query) for pair in item.get("values") or []),
        )
        for item in result
    )
    return RangeResult(query, start, end, step, series, _strings(data.get("warnings")), _strings(data.get("infos")))


class PrometheusHook(ApiHook):
    """PromQL instant and range queries. See the module docstring for the connection."""

    conn_name_attr = "prometheus_conn_id"
    default_conn_name = "prometheus_default"
    conn_type = "prometheus"  # registered in devops_automation.provider (the UI form); any type works at run time
    hook_name = "Prometheus"
    system = "Prometheus"
    test_path = API_PREFIX + "/status/buildinfo"

    def __init__(self, prometheus_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(prometheus_conn_id, **kwargs)
        self.prometheus_conn_id = prometheus_conn_id

    # -- plumbing --------------------------------------------------------------------------------
    def auth_type_of(self, conn: Connection) -> str:
        """``none``, ``basic`` or ``bearer``: the extra ``auth_type``, else what the connection holds."""
        forced = self.extras.get("auth_type")
        if forced not in (None, ""):
            kind = str(forced).strip().lower()
            if kind not in AUTH_TYPES:
                raise ValueError(
                    f"connection {self.prometheus_conn_id!r}: extra 'auth_type' must be one of {AUTH_TYPES}, "
                    f"got {forced!r}"
                )
            return kind
        if conn.login:
            return "basic"
        if self.extras.get("bearer_token") or conn.password:
            return "bearer"
        return "none"

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        kind = self.auth_type_of(conn)
        if kind == "basic":
            pair = f"{conn.login or ''}:{conn.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if kind == "bearer":
            token = self.extras.get("bearer_token") or conn.password
            if not token:
                raise ValueError(
                    f"connection {self.prometheus_conn_id!r}: auth_type 'bearer' needs the extra 'bearer_token' "
                    "or a password"
                )
            return {"Authorization": f"Bearer {token}"}
        return {}

    @property
    def api_url(self) -> str:
        """``<host>/api/v1`` (not doubled when the host already ends with it)."""
        _ = self.session  # resolves base_url
        base = self.base_url.rstrip("/")
        return base if base.endswith(API_PREFIX) else base + API_PREFIX

    @property
    def where(self) -> str:
        """The server's URL for messages (without any user:password@ part)."""
        parts = urlsplit(self.api_url[: -len(API_PREFIX)])
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def url(self, path: str) -> str:
        path = "/" + path.lstrip("/")
        return self.api_url + path.removeprefix(API_PREFIX)

    def error_message(self, response: requests.Response) -> str:
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("error"):
            kind = body.get("errorType")
            return f"{kind}: {body['error']}" if kind else str(body["error"])
        if response.status_code == 401:
            return "401 Unauthorized: check the connection's login/password or bearer token"
        return super().error_message(response)

    def is_retryable(self, exc: BaseException, method: str) -> bool:
        body = getattr(exc, "body", None)
        if isinstance(exc, ApiError) and isinstance(body, dict) and body.get("errorType") in QUERY_ERROR_TYPES:
            return False  # the query's own fault (a query timeout would time out again)
        return super().is_retryable(exc, method)

    def _get_data(self, path: str, query: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET an API path; the envelope's ``data`` with ``warnings``/``infos`` (logged)."""
        try:
            body = self.request_json("GET", path, params=params)
        except ApiError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            if exc.status in (400, 422) or body.get("errorType") in QUERY_ERROR_TYPES:
                raise PrometheusQueryError(
                    query,
                    body.get("errorType") or None,
                    str(body.get("error") or exc.message),
                    path=self.api_path(path),
                    status=exc.status,
                    body=exc.body,
                ) from None
            raise
        except requests.ReadTimeout as exc:
            raise PrometheusQueryError(
                query,
                "timeout",
                f"no answer within {self.timeout:g}s (the connection's timeout): {exc}",
                path=self.api_path(path),
                status=None,
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise PrometheusUnavailable(
                self.system,
                "GET",
                self.api_path(path),
                None,
                f"cannot reach Prometheus at {self.where} ({exc.__class__.__name__}): is it running, and is the "
                f"connection {self.prometheus_conn_id!r} host right? {exc}",
            ) from None
        if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
            status = body.get("status") if isinstance(body, dict) else None
            if status == "error":
                raise PrometheusQueryError(
                    query, body.get("errorType"), str(body.get("error")), path=self.api_path(path), body=body
                )
            raise ApiError(
                self.system, "GET", self.api_path(path), 200, f"unexpected answer for query {query!r}: {body!r:.300}"
            )
        for kind in ("warnings", "infos"):
            for text in _strings(body.get(kind)):
                self.log.warning("Prometheus %s for query %r: %s", kind[:-1], query, text)
        return {**body["data"], "warnings": body.get("warnings") or [], "infos": body.get("infos") or []}

    @staticmethod
    def api_path(path: str) -> str:
        return API_PREFIX + "/" + path.lstrip("/").removeprefix(API_PREFIX.lstrip("/") + "/")

    # -- queries ---------------------------------------------------------------------------------
    def query(self, promql: str, time: dt.datetime) -> InstantResult:
        """Evaluate ``promql`` at ``time`` (pass the data interval's end, so a re-run or a backfill
        gives what that moment was). Vector and scalar (and string) results; a range vector is the
        query's fault here (use :meth:`query_range`)."""
        params = {"query": promql, "time": prom_time(time)}
        return instant_result(promql, time, self._get_data("/query", promql, params))

    def query_range(
        self, promql: str, start: dt.datetime, end: dt.datetime, step: dt.timedelta | float | int | str
    ) -> RangeResult:
        """Evaluate ``promql`` at ``start``, ``start + step``, ... up to ``end`` (both included)."""
        seconds = step_seconds(step)
        begin, finish = prom_time(start, "start"), prom_time(end, "end")
        if end < start:
            raise ValueError(f"query_range of {promql!r}: end {finish} is before start {begin}")
        points = (end - start).total_seconds() / seconds
        if points > MAX_POINTS:
            raise ValueError(
                f"query_range of {promql!r}: {points:.0f} points per series from {begin} to {finish} every "
                f"{seconds:g}s, over Prometheus's limit of {MAX_POINTS:,}: use a larger step"
            )
        params = {"query": promql, "start": begin, "end": finish, "step": f"{seconds:g}"}  # float seconds
        return range_result(promql, start, end, seconds, self._get_data("/query_range", promql, params))

    def test_connection(self) -> tuple[bool, str]:
        """``GET /api/v1/status/buildinfo`` (the server's version), then ``query=1`` (auth, query path)."""
        try:
            info = (self.request_json("GET", "/status/buildinfo") or {}).get("data") or {}
            self._get_data("/query", "1", {"query": "1"})  # no time: the server's now
        except (ApiError, requests.RequestException, ValueError) as exc:  # the UI shows the message
            return False, str(exc)
        return True, f"Prometheus {self.where} answered: version {info.get('version', '?')}"


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
