"""Helpers shared by the sandbox system modules (OpenAI, GitHub, Prometheus, SonarQube, Slack, Telegram).

* :class:`ApiError` / :class:`ErrorRoute`: route handlers raise an ``ApiError`` subclass that knows
  how to render itself in its system's error format; the route class turns it into the response.
* :func:`read_params`: the parameters of a request however the client sent them (query string,
  urlencoded form, multipart form with files, or a JSON object), as Slack and Telegram accept all.
* :func:`basic_credentials`, :func:`retry_after_headers`, :func:`retry_after_seconds`: header plumbing.
* :class:`SlidingWindow`: per-channel/per-chat send limits on the sandbox's virtual clock.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile


class ApiError(Exception):
    """An error answer of a system's real API; subclasses render it in that system's format."""

    def response(self) -> Response:
        raise NotImplementedError


class ErrorRoute(APIRoute):
    """Route class that answers :class:`ApiError` raised by a handler with ``exc.response()``."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return exc.response()

        return handle


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Params:
    """Request parameters merged from query, form and JSON body (later sources win)."""

    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def json_value(self, name: str) -> Any:
        """A parameter that form-encoding clients send as a JSON string (blocks, files, options)."""
        value = self.values.get(name)
        if isinstance(value, str):
            return json.loads(value)  # ValueError for callers to map to their own error
        return value


async def read_params(request: Request, json_body: bool = True) -> Params:
    """Collect the parameters of ``request``; a body that is not valid JSON/form is ignored, and so
    is a JSON body when ``json_body`` is false (APIs that take only query and form parameters)."""
    params = Params(values=dict(request.query_params))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                params.files[key] = Upload(
                    value.filename or key, value.content_type or "application/octet-stream", await value.read()
                )
            else:
                params.values[key] = value
    elif content_type == "application/json" and json_body:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.values.update(body)
    return params


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` header value; None for other schemes or bad base64."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def retry_after_headers(retry_after: float | None) -> dict[str, str]:
    """``{"Retry-After": "3"}`` (fractions kept: "0.5") for an injected fault's ``retry_after``; {} for None."""
    if retry_after is None:
        return {}
    return {"Retry-After": str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)}


def retry_after_seconds(wait: float) -> int:
    """A ``Retry-After`` value in whole seconds (at least 1) for a wait of ``wait`` seconds."""
    return max(1, math.ceil(wait))


@dataclass
class SlidingWindow:
    """At most ``limit`` sends per key (a Slack channel, a Telegram chat) in any ``window_seconds``;
    time comes from the caller (the virtual clock)."""

    limit: int
    window_seconds: float
    sent_at: dict[Any, deque[float]] = field(default_factory=dict)  # key -> send times inside the window

    def take(self, key: Any, now: float) -> float | None:
        """Record one send and answer None; over the limit, record nothing and answer the seconds until
        the oldest send in the window ages out (a sliding window, not fixed buckets)."""
        times = self.sent_at.setdefault(key, deque())
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if len(times) >= self.limit:
            return times[0] + self.window_seconds - now
        times.append(now)
        return None
