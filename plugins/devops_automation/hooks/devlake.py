"""Apache DevLake REST API hook (connection ``devlake_default``).

Connection: type ``devlake`` (``http`` works too); host = DevLake's base URL, either the backend
directly (``http://devlake:8080``) or through config-ui (``https://devlake.example.com/api``);
password = an optional API key. With a key, requests go to ``<host>/rest/...`` with
``Authorization: Bearer`` (DevLake checks the key only on ``/rest`` paths). Extras: ``timeout``,
``max_retries``, ``backoff_initial``, ``backoff_max``, ``ui_url``.

DevLake facts this hook encodes (``../shared/api/devlake.md``): core lists page with ``page`` and
``pageSize`` (camelCase) while the pipeline filter is ``blueprint_id`` (snake_case); plugin scope
lists allow ``pageSize`` up to 1000; remote scopes page with an opaque base64 ``pageToken`` (sent
URL-encoded); a plugin without a connection API answers a text/plain ``404 page not found``; HTTP
428 means a database migration is pending (fail at once, never retry); duplicate names answer 500
with a misleading message; list endpoints may answer errors with an empty body.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devops_automation.hooks.api import ApiError, ApiHook

if TYPE_CHECKING:
    import httpx
    from airflow.sdk import Connection

# ---- DevLake API facts (``../shared/api/devlake.md``), defined once, here ----------------------------

#: Pipeline statuses (devlake.md §8). Waiting in TASK_CREATED behind PIPELINE_MAX_PARALLEL is not being stuck;
#: ``finishedTasks == totalTasks`` says nothing about success.
RUNNING = "TASK_RUNNING"
WAITING_STATUSES = frozenset({"TASK_CREATED", "TASK_RERUN", "TASK_RESUME"})
PENDING_STATUSES = WAITING_STATUSES | {RUNNING}
TERMINAL_STATUSES = frozenset({"TASK_COMPLETED", "TASK_FAILED", "TASK_CANCELLED", "TASK_PARTIAL"})
#: Final statuses that are failures to report.
FAILED_STATUSES = frozenset({"TASK_FAILED", "TASK_PARTIAL"})
KNOWN_STATUSES = TERMINAL_STATUSES | PENDING_STATUSES

#: The scope id field of each plugin's scope objects (devlake.md §4).
SCOPE_ID_FIELD = {
    "github": "githubId",
    "gitlab": "gitlabId",
    "bitbucket": "bitbucketId",
    "bitbucket_server": "bitbucketId",
    "jira": "boardId",
    "azuredevops_go": "id",
    "jenkins": "fullName",
    "sonarqube": "projectKey",
    "bamboo": "planKey",
    "argocd": "name",
    "asana": "gid",
}
REMOTE_PAGE_CAP = {"bitbucket": 100}  # remote-scopes stops here without a next token (use search)


def ui_url(host: str | None, extra: Mapping[str, Any] | None) -> str:
    """DevLake's UI (config-ui) base URL: the connection's extra ``ui_url``, else its host without
    a trailing ``/api`` (config-ui serves the API under /api)."""
    explicit = (extra or {}).get("ui_url")
    return str(explicit or (host or "").rstrip("/").removesuffix("/api")).rstrip("/")


def scope_id(plugin: str, scope: dict[str, Any]) -> str:
    """The blueprint ``scopeId`` of a scope object: its plugin's id field, as a string."""
    field = SCOPE_ID_FIELD.get(plugin, "id")
    value = scope.get(field)
    if value in (None, ""):
        raise ValueError(f"{plugin} scope has no {field!r}: {sorted(scope)}")
    return str(value)


def parse_iso(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp from DevLake as an aware datetime (None when empty, unset or unreadable);
    a time without an offset is taken as UTC (DevLake stores UTC)."""
    if not value or str(value).startswith("0001-01-01"):
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class DevLakeMigrationPending(ApiError):
    """DevLake answered 428: a database migration must be run before the API works again."""


class DevLakeHook(ApiHook):
    """Typed access to the DevLake REST API. See the module docstring for the connection."""

    conn_name_attr = "devlake_conn_id"
    default_conn_name = "devlake_default"
    conn_type = "devlake"  # registered in devops_automation.provider (the UI form); any type works at run time
    hook_name = "Apache DevLake"
    system = "DevLake"
    test_path = "/version"
    retry_statuses = frozenset({429, 500, 502, 503, 504})

    def __init__(self, devlake_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(devlake_conn_id, **kwargs)
        self.devlake_conn_id = devlake_conn_id

    # -- plumbing --------------------------------------------------------------------------------
    def auth_headers(self, conn: Connection) -> dict[str, str]:
        return {"Authorization": f"Bearer {conn.password}"} if conn.password else {}

    def api_base_url(self, conn: Connection) -> str:
        """Where requests go: the connection's base URL (built as :class:`HttpHook` builds it), plus
        ``/rest`` when an API key is set (DevLake checks keys only there)."""
        self._set_base_url(conn)
        return self.base_url.rstrip("/") + ("/rest" if conn.password else "")

    def url(self, path: str) -> str:
        self.session  # noqa: B018 - headers and auth are set up on first use
        return f"{self.api_base_url(self.connection)}/{path.lstrip('/')}"

    async def async_client(self, *, timeout: float) -> httpx.AsyncClient:
        """An ``httpx`` client for the triggerer: the same base URL and auth as the sync calls, the
        connection read with the async API (the triggerer's event loop must not block)."""
        import httpx
        from airflow.sdk import BaseHook

        conn = await BaseHook.aget_connection(self.devlake_conn_id)
        headers = {"Accept": "application/json", "User-Agent": "devops-automation", **self.auth_headers(conn)}
        return httpx.AsyncClient(base_url=self.api_base_url(conn), headers=headers, timeout=timeout)

    def error_message(self, response: Any) -> str:
        if not response.content:
            return f"{response.status_code} {response.reason} (empty body)"
        return super().error_message(response)

    def _error(self, method: str, path: str, response: Any) -> ApiError:
        err = super()._error(method, path, response)
        if response.status_code == 428:
            return DevLakeMigrationPending(
                self.system,
                method,
                path,
                428,
                f"DevLake awaits a database migration: {err.message} -- run it (GET /proceed-db-migration) "
                "or ask the DevLake admin",
                body=err.body,
            )
        return err

    def is_retryable(self, exc: BaseException, method: str) -> bool:
        if isinstance(exc, DevLakeMigrationPending):
            return False
        if isinstance(exc, ApiError) and exc.status in (401, 403):
            return False
        return super().is_retryable(exc, method)

    def _get(self, path: str, **params: Any) -> Any:
        return self.request_json("GET", path, params={k: v for k, v in params.items() if v is not None})

    def _paged(self, path: str, items_key: str, page_size: int = 100, **params: Any) -> Iterator[dict[str, Any]]:
        """Walk a ``page``/``pageSize`` list answering ``{"count": N, items_key: [...]}``."""
        page = 1
        seen = 0
        while True:
            body = self._get(path, page=page, pageSize=page_size, **params) or {}
            items = body.get(items_key) or []
            yield from items
            seen += len(items)
            if not items or len(items) < page_size or seen >= int(body.get("count") or 0):
                return
            page += 1

    def ui_url(self) -> str:
        """DevLake's UI base URL (for links in alerts and the task's extra link)."""
        return ui_url(self.connection.host, self.extras)

    # -- meta and plugins ------------------------------------------------------------------------
    def version(self) -> str:
        return (self._get("/version") or {}).get("version", "unknown")

    def plugins(self) -> list[str]:
        return [p["plugin"] for p in self._get("/plugins") or []]

    def connections(self, plugin: str) -> list[dict[str, Any]] | None:
        """The plugin's connections, or None when the plugin has no connection API."""
        try:
            return list(self._get(f"/plugins/{plugin}/connections") or [])
        except ApiError as exc:
            if exc.status == 404 and not isinstance(exc.body, dict):
                return None  # gin's text/plain "404 page not found": no such route for this plugin
            raise

    # -- remote scopes ---------------------------------------------------------------------------
    def remote_scope_page(
        self, plugin: str, connection_id: int, group_id: str | None = None, page_token: str | None = None
    ) -> dict[str, Any]:
        # requests URL-encodes params, so the token's + / = arrive intact
        return (
            self._get(
                f"/plugins/{plugin}/connections/{connection_id}/remote-scopes",
                groupId=group_id or None,
                pageToken=page_token or None,
            )
            or {}
        )

    def remote_scopes(self, plugin: str, connection_id: int) -> Iterator[dict[str, Any]]:
        """Every selectable remote scope entry of a connection: groups walked breadth-first, all pages.

        Where the plugin's listing stops at a fixed cap without a next token (Bitbucket: 100 per
        workspace), the group is completed through ``search-remote-scopes``.
        """
        queue: list[str | None] = [None]
        seen_groups: set[str] = set()
        seen_scopes: set[str] = set()
        while queue:
            group = queue.pop(0)
            token: str | None = None
            in_group = 0
            while True:
                page = self.remote_scope_page(plugin, connection_id, group, token)
                for entry in page.get("children") or []:
                    if entry.get("type") == "group":
                        gid = str(entry.get("id"))
                        if gid not in seen_groups:
                            seen_groups.add(gid)
                            queue.append(gid)
                    elif entry.get("type") == "scope" and str(entry.get("id")) not in seen_scopes:
                        seen_scopes.add(str(entry.get("id")))
                        in_group += 1
                        yield entry
                token = page.get("nextPageToken") or None
                if not token:
                    break
            cap = REMOTE_PAGE_CAP.get(plugin)
            if cap and group is not None and in_group >= cap:
                for entry in self.search_remote_scopes(plugin, connection_id, f"{group}/"):
                    if str(entry.get("id")) not in seen_scopes and str(entry.get("id")).startswith(f"{group}/"):
                        seen_scopes.add(str(entry.get("id")))
                        yield entry

    def search_remote_scopes(
        self, plugin: str, connection_id: int, search: str, page_size: int = 50
    ) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = (
                self._get(
                    f"/plugins/{plugin}/connections/{connection_id}/search-remote-scopes",
                    search=search,
                    page=page,
                    pageSize=page_size,
                )
                or {}
            )
            children = body.get("children") or []
            yield from (c for c in children if c.get("type", "scope") == "scope")
            if len(children) < page_size:
                return
            page += 1

    # -- scopes and scope configs ----------------------------------------------------------------
    def scopes(self, plugin: str, connection_id: int, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Stored scopes: ``{"scope": {...}, "scopeConfig": {...}?}`` items."""
        yield from self._paged(f"/plugins/{plugin}/connections/{connection_id}/scopes", "scopes", page_size=page_size)

    def put_scopes(self, plugin: str, connection_id: int, scopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batch upsert of scope objects (idempotent on the plugin's id field)."""
        if not scopes:
            return []
        return list(
            self.request_json("PUT", f"/plugins/{plugin}/connections/{connection_id}/scopes", json={"data": scopes})
            or []
        )

    def scope_configs(self, plugin: str, connection_id: int) -> list[dict[str, Any]]:
        return list(self._get(f"/plugins/{plugin}/connections/{connection_id}/scope-configs") or [])

    def create_scope_config(self, plugin: str, connection_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self.request_json("POST", f"/plugins/{plugin}/connections/{connection_id}/scope-configs", json=body)

    # -- projects and blueprints -----------------------------------------------------------------
    def projects(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        yield from self._paged("/projects", "projects", page_size=page_size)

    def project(self, name: str) -> dict[str, Any] | None:
        try:
            return self._get(f"/projects/{quote(name, safe='')}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_project(
        self, name: str, description: str = "", metrics: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Create a project; DevLake creates its blueprint too (never send one: #7650)."""
        body = {"name": name, "description": description, "metrics": metrics or []}
        return self.request_json("POST", "/projects", json=body)

    def update_project(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request_json("PATCH", f"/projects/{quote(name, safe='')}", json=body)

    def blueprint(self, blueprint_id: int) -> dict[str, Any]:
        return self._get(f"/blueprints/{blueprint_id}")

    def update_blueprint(self, blueprint_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH a blueprint. ``connections`` in ``body`` replaces the whole list."""
        return self.request_json("PATCH", f"/blueprints/{blueprint_id}", json=body)

    def trigger_blueprint(
        self, blueprint_id: int, *, skip_collectors: bool = False, full_sync: bool = False
    ) -> dict[str, Any]:
        """Start a pipeline; when one is already pending, return that one (DevLake answers 400)."""
        try:
            return self.request_json(
                "POST",
                f"/blueprints/{blueprint_id}/trigger",
                json={"skipCollectors": skip_collectors, "fullSync": full_sync},
            )
        except ApiError as exc:
            if exc.status == 400 and "pending pipelines" in exc.message:
                pending = self.pipelines(blueprint_id=blueprint_id, pending=True)
                if pending:
                    return pending[0]
            raise

    # -- pipelines -------------------------------------------------------------------------------
    def pipelines(
        self,
        *,
        blueprint_id: int | None = None,
        status: str | None = None,
        pending: bool = False,
        label: str | None = None,
        page_size: int = 100,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "blueprint_id": blueprint_id,
            "status": status,
            "label": label,
            "pending": 1 if pending else None,
        }
        return list(self._paged("/pipelines", "pipelines", page_size=page_size, **params))

    def pipeline(self, pipeline_id: int) -> dict[str, Any]:
        return self._get(f"/pipelines/{pipeline_id}")

    def pipeline_tasks(self, pipeline_id: int) -> list[dict[str, Any]]:
        return list((self._get(f"/pipelines/{pipeline_id}/tasks") or {}).get("tasks") or [])

    def rerun_pipeline(self, pipeline_id: int) -> list[dict[str, Any]]:
        return list(self.request_json("POST", f"/pipelines/{pipeline_id}/rerun") or [])

    # -- webhook connections ---------------------------------------------------------------------
    def webhook_connections(self) -> list[dict[str, Any]]:
        return list(self._get("/plugins/webhook/connections") or [])

    def create_webhook_connection(self, name: str) -> dict[str, Any]:
        """Create a webhook connection. Its ``apiKey.apiKey`` is shown only in this answer."""
        return self.request_json("POST", "/plugins/webhook/connections", json={"name": name})
