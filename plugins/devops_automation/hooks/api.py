"""A JSON API hook on top of the HTTP provider's :class:`HttpHook`, shared by our API hooks.

What every external HTTP API call here gets, whichever system it talks to:

* configuration from the Airflow connection (host = base URL; ``timeout``, ``max_retries``,
  ``backoff_initial``, ``backoff_max``, ``max_retry_wait`` from its extras), resolved lazily on first
  use; extras are settings, never headers (HttpHook would send them as headers): custom headers go in
  the extra ``headers`` mapping;
* a per-request timeout;
* retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx, honouring
  ``Retry-After`` (seconds or an HTTP date) up to ``max_retry_wait``; a longer wait is not slept
  through but fails at once with the server's message (POST is retried only when the server refused
  it before doing anything: 429/503, or the connection could not be made);
* errors that carry the system's own message (:class:`ApiError`), and a clear error when a JSON API
  answers something else (an HTML login page from a proxy, say);
* no credential in logs: tokens travel in headers, and errors name the path, never the headers.

Subclasses set ``conn_name_attr``/``default_conn_name``/``hook_name``, build their auth headers in
:meth:`auth_headers`, parse their error bodies in :meth:`error_message`, and add pagination.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.http.hooks.http import HttpHook
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

if TYPE_CHECKING:
    from airflow.sdk import Connection

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


class ApiError(Exception):
    """An HTTP API answered with an error (or not at all)."""

    def __init__(
        self,
        system: str,
        method: str,
        path: str,
        status: int | None,
        message: str,
        *,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        where = f"{method} {path}"
        super().__init__(f"{system} {where} -> {status if status is not None else 'no response'}: {message}")
        self.system = system
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.body = body


class NotJsonError(ApiError):
    """The API answered 2xx with something that is not JSON (e.g. a proxy's HTML login page)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ApiHook(HttpHook):
    """Base for JSON API hooks (see module docstring). Not used directly."""

    system = "API"
    #: statuses worth retrying (idempotent requests)
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    #: statuses worth retrying even for POST (the server refused before acting)
    refused_statuses: frozenset[int] = frozenset({429, 503})
    default_timeout = 30.0
    default_max_retries = 4
    default_backoff_initial = 1.0
    default_backoff_max = 30.0
    default_max_retry_wait = 120.0
    #: how retries wait (tests replace it to record the waits instead of sleeping)
    sleep = staticmethod(time.sleep)

    def __init__(
        self, conn_id: str | None = None, *, timeout: float | None = None, max_retries: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(method="GET", http_conn_id=conn_id or self.default_conn_name, **kwargs)
        self._timeout = timeout
        self._max_retries = max_retries
        self.request_count = 0

    # -- configuration (lazy) --------------------------------------------------------------------
    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.http_conn_id)

    @cached_property
    def extras(self) -> dict[str, Any]:
        return dict(self.connection.extra_dejson or {})

    def _extra_float(self, key: str, default: float) -> float:
        try:
            return float(self.extras.get(key, default))
        except (TypeError, ValueError):
            raise ValueError(
                f"connection {self.http_conn_id!r}: extra {key!r} must be a number, got {self.extras.get(key)!r}"
            ) from None

    @property
    def timeout(self) -> float:
        return self._timeout if self._timeout is not None else self._extra_float("timeout", self.default_timeout)

    @property
    def max_retries(self) -> int:
        return (
            self._max_retries
            if self._max_retries is not None
            else int(self._extra_float("max_retries", self.default_max_retries))
        )

    def _extract_auth(self, connection: Any) -> Any | None:
        return None  # auth goes in headers (auth_headers), never as HttpHook's Basic auth by default

    def auth_headers(self, conn: Connection) -> dict[str, str]:
        """Headers that authenticate a request (subclasses)."""
        return {}

    @cached_property
    def session(self) -> requests.Session:
        session = self.get_conn()
        for key in self.extras:  # HttpHook turns every extra into a header; ours are settings
            session.headers.pop(key, None)
        session.headers.update({"Accept": "application/json", "User-Agent": "devops-automation"})
        custom = self.extras.get("headers") or {}
        if not isinstance(custom, dict):
            raise ValueError(
                f"connection {self.http_conn_id!r}: extra 'headers' must be a mapping of header names to values"
            )
        session.headers.update({str(k): str(v) for k, v in custom.items()})
        session.headers.update(self.auth_headers(self.connection))
        if not self.base_url:
            raise ValueError(f"connection {self.http_conn_id!r} has no host (the {self.system} base URL)")
        if session.trust_env:
            self._settle_environment(session)
        return session

    def _settle_environment(self, session: requests.Session) -> None:
        """Read the proxy and CA-bundle variables (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``,
        ...) once for the base URL's host, as ``requests`` would for each request, and stop it from
        reading them again: it walks the whole environment twice per request (about 0.5 ms each time
        with Airflow's many variables). ``~/.netrc`` is no longer consulted, which also keeps it from
        replacing the token header (``requests`` lets a netrc entry override ``Authorization``)."""
        settings = session.merge_environment_settings(self.base_url, {}, None, None, None)
        session.proxies = dict(settings["proxies"])
        session.verify = settings["verify"]
        session.trust_env = False

    def url(self, path: str) -> str:
        self.session  # noqa: B018 - resolves base_url
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    # -- errors ----------------------------------------------------------------------------------
    def error_message(self, response: requests.Response) -> str:
        """The system's own error text from an error response (subclasses refine)."""
        try:
            body = response.json()
        except ValueError:
            text = response.text.strip()
            return text[:500] or response.reason or "empty body"
        if isinstance(body, dict):
            for key in ("message", "error_description", "error", "description", "detail"):
                if body.get(key):
                    value = body[key]
                    return value if isinstance(value, str) else str(value)
        return str(body)[:500]

    def _error(self, method: str, path: str, response: requests.Response) -> ApiError:
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text[:2000]
        return ApiError(
            self.system,
            method,
            path,
            response.status_code,
            self.error_message(response),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            body=body,
        )

    def is_retryable(self, exc: BaseException, method: str) -> bool:
        if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
            return True  # the request did not reach the server (or the connection broke)
        if isinstance(exc, requests.Timeout):
            return method in IDEMPOTENT
        if isinstance(exc, NotJsonError) or not isinstance(exc, ApiError) or exc.status is None:
            return False
        if exc.retry_after is not None and exc.retry_after > self._extra_float(
            "max_retry_wait", self.default_max_retry_wait
        ):
            return False
        if method in IDEMPOTENT:
            return exc.status in self.retry_statuses
        return exc.status in self.refused_statuses

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        initial = self._extra_float("backoff_initial", self.default_backoff_initial)
        ceiling = self._extra_float("backoff_max", self.default_backoff_max)
        delay = min(ceiling, initial * 2 ** (state.attempt_number - 1))
        return delay * (0.5 + random.random() / 2)  # full jitter on the upper half

    # -- requests --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        ok: Iterable[int] = (),
    ) -> requests.Response:
        """Send one request with retries; returns the response (2xx, or a status in ``ok``)."""
        method = method.upper()
        allowed = set(ok)

        def once() -> requests.Response:
            self.request_count += 1
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    params=params,
                    json=json,
                    headers=dict(headers or {}),
                    timeout=self.timeout,
                    stream=stream,
                )
            except requests.RequestException as exc:
                raise type(exc)(f"{self.system} {method} {path}: {exc.__class__.__name__}: {exc}") from None
            if response.status_code >= 400 and response.status_code not in allowed:
                raise self._error(method, path, response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            sleep=self.sleep,
            retry=retry_if_exception(lambda exc: self.is_retryable(exc, method)),
            before_sleep=lambda s: self.log.warning(
                "%s %s %s failed (%s); retry %d/%d in %.1fs",
                self.system,
                method,
                path,
                s.outcome.exception() if s.outcome else "?",
                s.attempt_number,
                self.max_retries,
                s.next_action.sleep if s.next_action else 0,
            ),
            reraise=True,
        )
        return retrying(once)

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, then the JSON body (``None`` for an empty body)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "?")
            snippet = " ".join(response.text[:200].split())
            raise NotJsonError(
                self.system,
                method.upper(),
                path,
                response.status_code,
                f"expected JSON but got {ctype!r}: {snippet!r} (is the connection's host the API base URL?)",
            ) from None

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.request("GET", self.test_path)
        except Exception as exc:  # noqa: BLE001 - the UI shows the message
            return False, str(exc)
        return True, f"{self.system} answered"

    test_path = "/"
