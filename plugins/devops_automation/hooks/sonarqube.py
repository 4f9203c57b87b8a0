"""SonarQube Web API (v1) hook (connection ``sonarqube_default``) for the ``daily_project_metrics`` DAG.

Connection: type ``sonarqube`` (``http`` works too); host = the server's base URL
(``https://sonar.example.com``, ``https://sonarcloud.io``); password = a user or project analysis
token (``squ_...``, Browse permission on the projects). Extras: ``auth_type`` = ``bearer`` (default,
``Authorization: Bearer``, SonarQube 10+ and SonarQube Cloud) or ``basic`` (the token as the Basic
login with an empty password, SonarQube 9.x and older), plus :class:`ApiHook`'s ``timeout``,
``max_retries``, ``backoff_initial``, ``backoff_max``, ``max_retry_wait``, ``headers``.

SonarQube facts this hook encodes (``/work/shared/api/sonarqube.md``):

* ``api/measures/component?component=&metricKeys=`` answers strings; a metric without a value is
  *omitted*; new-code metrics carry their value in ``period.value``;
* ``api/measures/search_history?component=&metrics=&from=&to=&p=&ps=`` (``metrics``, not
  ``metricKeys``), chronological, paged per metric (``ps`` at most 1,000); an analysis without a
  value for a metric is listed without ``value``;
* ``api/qualitygates/project_status?projectKey=``: ``OK``, ``ERROR`` or ``NONE`` (no gate);
* unknown metric keys answer 404 ("The following metric keys are not found: a, b" / "Metrics a, b
  are not found", e.g. a server older than the ``software_quality_*`` metrics): :meth:`measures`
  and :meth:`measures_history` ask again without them (they are then absent, and logged);
* errors are ``{"errors": [{"msg": ...}]}``; a missing or rejected token is 401 with an empty body
  (:class:`SonarQubeAuthError`); an unknown project (or one the token may not browse) is 404
  (:class:`SonarQubeProjectNotFound`, naming the project key).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import requests

from devops_automation.hooks.api import ApiError, ApiHook

if TYPE_CHECKING:
    from airflow.sdk import Connection

AUTH_TYPES = ("bearer", "basic")
MAX_PAGE_SIZE = 1000
#: one value of a history: (analysis date, value or None when that analysis has none)
HistoryPoint = tuple[dt.datetime, str | None]


class SonarQubeAuthError(ApiError):
    """401: SonarQube rejected the token (missing, wrong, expired or revoked)."""


class SonarQubeProjectNotFound(ApiError):
    """404 for a project key: it does not exist, or the token may not browse it."""

    def __init__(self, project_key: str, cause: ApiError) -> None:
        super().__init__(
            cause.system,
            cause.method,
            cause.path,
            cause.status,
            f"SonarQube project {project_key!r} not found (or the token may not browse it); "
            f"SonarQube said {cause.message!r}",
            body=cause.body,
        )
        self.project_key = project_key


def parse_sonar_time(value: Any) -> dt.datetime | None:
    """SonarQube's ``2026-01-01T12:00:00+0000`` (or ISO with ``Z``/``+00:00``) as aware UTC; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def sonar_time(value: dt.date | dt.datetime, name: str) -> str:
    """A ``from``/``to`` parameter: a date as ``YYYY-MM-DD``, an aware datetime as ``YYYY-MM-DDTHH:MM:SS+0000``."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be a date or a timezone-aware datetime, got {value!r}")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise ValueError(f"{name} must be a date or a timezone-aware datetime, got {value!r}")


def _keys(metric_keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys(str(k).strip() for k in metric_keys if str(k).strip()))
    if not keys:
        raise ValueError("at least one SonarQube metric key is required")
    return keys


def unknown_metrics(message: str, asked: Iterable[str]) -> list[str]:
    """The asked metric keys that a "metric keys are not found" message names."""
    return [k for k in asked if re.search(rf"(?<![\w]){re.escape(k)}(?![\w])", message)]


def _is_metric_error(error: ApiError, project_key: str, asked: Iterable[str]) -> bool:
    """A 404 about metric keys (it names some of ``asked``, not the project)."""
    return (
        error.status == 404 and f"'{project_key}'" not in error.message and bool(unknown_metrics(error.message, asked))
    )


class SonarQubeHook(ApiHook):
    """Measures, their history and the quality gate of SonarQube projects. See the module docstring."""

    conn_name_attr = "sonarqube_conn_id"
    default_conn_name = "sonarqube_default"
    conn_type = "sonarqube"  # registered in devops_automation.provider (the UI form); any type works at run time
    hook_name = "SonarQube"
    system = "SonarQube"
    test_path = "/api/authentication/validate"

    def __init__(self, sonarqube_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(sonarqube_conn_id, **kwargs)
        self.sonarqube_conn_id = sonarqube_conn_id
        #: metric keys this server said it does not know: not asked again by this hook
        self.unknown_metric_keys: set[str] = set()

    # -- plumbing --------------------------------------------------------------------------------
    def auth_headers(self, conn: Connection) -> dict[str, str]:
        auth_type = str(self.extras.get("auth_type") or "bearer").strip().lower()
        if auth_type not in AUTH_TYPES:
            raise ValueError(
                f"connection {self.sonarqube_conn_id!r}: extra 'auth_type' must be one of {AUTH_TYPES}, "
                f"got {auth_type!r}"
            )
        token = conn.password
        if not token:
            self.log.warning(
                "Connection %r has no token (password): only public projects are readable", self.sonarqube_conn_id
            )
            return {}
        if auth_type == "basic":
            return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}
        return {"Authorization": f"Bearer {token}"}

    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            msgs = [str(e.get("msg")) for e in body["errors"] if isinstance(e, dict) and e.get("msg")]
            if msgs:
                return "; ".join(msgs)
        if not response.content:
            return f"{response.status_code} {response.reason or ''} (empty body)".replace("  ", " ")
        return super().error_message(response)

    def _get(self, path: str, params: dict[str, Any], project_key: str, metric_keys: Iterable[str] = ()) -> Any:
        """GET ``path``; 401 and a 404 for the project become clear errors naming it (a 404 about
        ``metric_keys`` stays an :class:`ApiError`)."""
        try:
            return self.request_json("GET", path, params=params)
        except ApiError as exc:
            if exc.status == 401:
                raise SonarQubeAuthError(
                    exc.system,
                    exc.method,
                    exc.path,
                    401,
                    f"SonarQube rejected the token of connection {self.sonarqube_conn_id!r} (missing, wrong, "
                    "expired or revoked; SonarQube 9.x and older need extra auth_type 'basic')",
                ) from None
            if exc.status == 404 and not _is_metric_error(exc, project_key, metric_keys):
                raise SonarQubeProjectNotFound(project_key, exc) from None
            if exc.status == 403:
                raise ApiError(
                    exc.system,
                    exc.method,
                    exc.path,
                    403,
                    f"the token may not read project {project_key!r} (needs Browse): {exc.message}",
                    body=exc.body,
                ) from None
            raise

    def _without_unknown(
        self, path: str, params: dict[str, Any], param: str, keys: list[str], project_key: str
    ) -> tuple[Any, list[str]]:
        """GET with ``param`` = the metric keys; unknown keys are dropped and asked again (once)."""
        keys = [k for k in keys if k not in self.unknown_metric_keys] or keys
        try:
            return self._get(path, {**params, param: ",".join(keys)}, project_key, keys), []
        except ApiError as exc:
            if not _is_metric_error(exc, project_key, keys):
                raise
            unknown = unknown_metrics(exc.message, keys)
            known = [k for k in keys if k not in unknown]
            if not unknown or not known:
                raise
            self.unknown_metric_keys.update(unknown)
            self.log.warning(
                "SonarQube does not know metric(s) %s (project %r); asking for the others", unknown, project_key
            )
            return self._get(path, {**params, param: ",".join(known)}, project_key, known), unknown

    # -- API -------------------------------------------------------------------------------------
    def measures(self, project_key: str, metric_keys: Iterable[str], *, branch: str | None = None) -> dict[str, str]:
        """The current measures of a project: ``{metric: value}`` as SonarQube sent them (strings;
        the period value for new-code metrics). Metrics without a value, or unknown to this server,
        are absent."""
        keys = _keys(metric_keys)
        params: dict[str, Any] = {"component": project_key}
        if branch:
            params["branch"] = branch
        body, _ = self._without_unknown("/api/measures/component", params, "metricKeys", keys, project_key)
        measures = ((body or {}).get("component") or {}).get("measures") or []
        out: dict[str, str] = {}
        for m in measures:
            if not isinstance(m, dict) or not m.get("metric"):
                continue
            value = m.get("value")
            if value is None and isinstance(m.get("period"), dict):
                value = m["period"].get("value")
            if value is not None:
                out[str(m["metric"])] = str(value)
        return out

    def measures_history(
        self,
        project_key: str,
        metric_keys: Iterable[str],
        from_: dt.date | dt.datetime | None = None,
        to: dt.date | dt.datetime | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
    ) -> dict[str, list[HistoryPoint]]:
        """Every analysis's value of each metric from ``from_`` to ``to`` (both included; a date means
        the whole day), chronological, all pages: ``{metric: [(date, value or None), ...]}``. Metrics
        unknown to this server are absent."""
        keys = _keys(metric_keys)
        params: dict[str, Any] = {"component": project_key, "ps": max(1, min(int(page_size), MAX_PAGE_SIZE))}
        if from_ is not None:
            params["from"] = sonar_time(from_, "from_")
        if to is not None:
            params["to"] = sonar_time(to, "to")
        history: dict[str, list[HistoryPoint]] = {}
        page = 1
        while True:
            body, unknown = self._without_unknown(
                "/api/measures/search_history", {**params, "p": page}, "metrics", keys, project_key
            )
            if unknown:
                keys = [k for k in keys if k not in unknown]
            for m in (body or {}).get("measures") or []:
                metric = m.get("metric") if isinstance(m, dict) else None
                if not metric:
                    continue
                points = history.setdefault(str(metric), [])
                for entry in m.get("history") or []:
                    when = parse_sonar_time(entry.get("date"))
                    if when is not None:
                        value = entry.get("value")
                        points.append((when, None if value is None else str(value)))
            paging = (body or {}).get("paging") or {}
            total, size = int(paging.get("total") or 0), int(paging.get("pageSize") or params["ps"])
            if page * size >= total:
                break
            page += 1
        for points in history.values():
            points.sort(key=lambda p: p[0])
        return history

    def quality_gate(self, project_key: str, *, branch: str | None = None) -> dict[str, Any]:
        """The project's quality gate: SonarQube's ``projectStatus`` (``status`` ``OK``/``ERROR``/``NONE``,
        ``conditions``, ``caycStatus``, ...)."""
        params: dict[str, Any] = {"projectKey": project_key}
        if branch:
            params["branch"] = branch
        body = self._get("/api/qualitygates/project_status", params, project_key)
        status = (body or {}).get("projectStatus")
        if not isinstance(status, dict):
            raise ApiError(
                self.system, "GET", "/api/qualitygates/project_status", 200, f"no projectStatus in {body!r:.300}"
            )
        return status

    def test_connection(self) -> tuple[bool, str]:
        """``GET /api/authentication/validate``: whether SonarQube accepts the token."""
        try:
            body = self.request_json("GET", "/api/authentication/validate") or {}
        except (ApiError, requests.RequestException, ValueError) as exc:  # the UI shows the message
            return False, str(exc)
        if body.get("valid") is not True:
            return False, "SonarQube answered but rejected the token (api/authentication/validate: valid=false)"
        return True, "SonarQube answered and accepts the token"
