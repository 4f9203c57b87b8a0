"""DevLake sandbox: Apache DevLake's REST API (v1.0.x, ``../shared/api/devlake.md``) at ``/devlake``.

A client's base URL is ``http://127.0.0.1:PORT/devlake``. Route functions only translate HTTP to
:class:`~include.sandbox.systems.devlake.state.DevLakeState` calls; the rules live there. Every
route first brings the simulated pipelines up to the virtual clock's now. DevLake's quirks kept on
purpose: bare arrays vs ``{count, items}`` lists, 201 vs 200, text/plain ``404 page not found`` for
unknown routes, the error envelope, raw-path project names, ``/rest`` with Bearer API keys, and the
428 (migration pending) and HTML (proxy login page) modes set through the controls.

Pipeline timing (virtual clock): a queued pipeline takes a free ``maxParallel`` slot 1 s after it
was queued at the earliest; tasks run one after another, ``taskSeconds`` (5 s) each; a cancelled
running pipeline reaches TASK_CANCELLED 1 s later. Seeded: 5 connections (github 1-2, gitlab 1,
bitbucket 1, jira 1) with ~64 remote repos/boards, and nothing else.

Controls, under ``/_sandbox/devlake`` (bodies use camelCase keys):

* ``GET|POST /settings`` ``{maxParallel, taskSeconds, remotePageSize, migrationPending, htmlMode}``
* ``POST /scripts`` ``{blueprintId?, pipelineId?, failAtTask?, message?, partial?, taskSeconds?,
  forever?, succeedOnRerun?}`` (neither id: every pipeline); ``DELETE /scripts``
* ``POST /connections/{plugin}/{id}/remote-repos`` ``{name, group?}``;
  ``POST /connections/{plugin}/{id}/remote-failure`` ``{status|null, message}``;
  ``POST /remote-repos/bulk`` ``{count}``
* ``POST /pipelines/{id}/status`` ``{status}``; ``DELETE /pipelines/{id}``
* ``POST /api-keys`` ``{name, allowedPath?, expiredAt?}`` (answers the plaintext ``apiKey``)
* ``GET /counts``; ``GET /project?name=``; ``GET /blueprints/{id}`` (full state for assertions)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from include.sandbox.core import get_sandbox, json_error
from include.sandbox.systems.devlake.state import (
    MIGRATION_PENDING,
    VERSION,
    DevLakeError,
    DevLakeState,
    NoRoute,
    PipelineScript,
    int_id,
)

NAME = "devlake"
PREFIX = "/devlake"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: Routes answering even while a migration is pending.
PUBLIC_PATHS = frozenset({"/ping", "/ready", "/health", "/version", "/proceed-db-migration"})
#: What an authenticating proxy in front of DevLake answers in the "html" mode.
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Sign in to continue</h1>"
    '<form method="post" action="/oauth2/sign_in"><input name="username"><input name="password" type="password">'
    "<button>Sign in</button></form></body></html>"
)


def make_state(seed: int, sandbox: Any) -> DevLakeState:
    return DevLakeState(seed, sandbox)


def envelope(message: str, data: Any = None, success: bool = False) -> dict[str, Any]:
    """DevLake's response envelope (errors, and successes that return nothing)."""
    return {"code": 0, "success": success, "message": message, "causes": None, "data": data}


SUCCESS = envelope("success", success=True)


def error_response(status: int, message: str, retry_after: float | None) -> Response:
    return json_error(status, envelope(message), retry_after)


def _state(request: Request) -> DevLakeState:
    return get_sandbox(request).state(NAME)


def _answer(error: DevLakeError) -> Response:
    if isinstance(error, NoRoute):
        return PlainTextResponse("404 page not found", status_code=404)
    if error.empty:
        return Response(status_code=error.status)
    return JSONResponse(envelope(error.message, error.data), status_code=error.status)


def _ok(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class _StateRoute(APIRoute):
    """Brings the pipelines up to now before the handler and answers a DevLakeError DevLake's way."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            state = _state(request)
            blocked = self.gate(state, request)
            if blocked is not None:
                return blocked
            state.advance()
            try:
                return await handler(request)
            except DevLakeError as error:
                return _answer(error)

        return route

    def gate(self, state: DevLakeState, request: Request) -> Response | None:
        return None


class _ApiRoute(_StateRoute):
    """A DevLake route: also answers for the HTML and migration-pending modes."""

    def gate(self, state: DevLakeState, request: Request) -> Response | None:
        if state.settings.html_mode:
            return HTMLResponse(LOGIN_PAGE)
        if state.settings.migration_pending and request.url.path[len(PREFIX) :] not in PUBLIC_PATHS:
            return JSONResponse(envelope(MIGRATION_PENDING), status_code=428)
        return None


router = APIRouter(route_class=_ApiRoute)
control = APIRouter(route_class=_StateRoute)


async def _json(request: Request, core: bool = False) -> dict[str, Any]:
    """The request body as an object. Core endpoints bind by Content-Type: without a JSON type the
    body is silently empty; plugin endpoints always decode JSON. An empty body is ``{}``."""
    if core and "application/json" not in request.headers.get("content-type", ""):
        return {}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise DevLakeError(400, f"invalid JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise DevLakeError(400, "the request body must be a JSON object")
    return body


def _connection_id(plugin: str, connection_id: str) -> int:
    DevLakeState.require_data_source(plugin)
    return int_id(connection_id, "connectionId")


# ---- meta -----------------------------------------------------------------------------------------


@router.get("/ping")
async def ping() -> Response:
    return Response(status_code=200)


@router.get("/ready")
@router.get("/health")
async def ready() -> JSONResponse:
    return _ok({"success": True, "message": "success"})


@router.get("/version")
async def version() -> JSONResponse:
    return _ok({"version": VERSION})


@router.get("/proceed-db-migration")
async def proceed_db_migration(request: Request) -> JSONResponse:
    _state(request).configure({"migration_pending": False})
    return _ok(SUCCESS)


@router.get("/plugins")
async def plugins(request: Request) -> JSONResponse:
    return _ok(_state(request).plugins())


# ---- webhook connections (before the generic plugin routes) ---------------------------------------


def _by_name(request: Request) -> bool:
    return "/connections/by-name/" in request.url.path


@router.get("/plugins/webhook/connections")
async def list_webhooks(request: Request) -> JSONResponse:
    return _ok(_state(request).list_webhooks())


@router.post("/plugins/webhook/connections")
async def create_webhook(request: Request) -> JSONResponse:
    return _ok(_state(request).create_webhook(await _json(request)))  # 200, not 201


@router.get("/plugins/webhook/connections/by-name/{ref}")
@router.get("/plugins/webhook/connections/{ref}")
async def get_webhook(request: Request, ref: str) -> JSONResponse:
    return _ok(_state(request).webhook(ref, _by_name(request)).as_json())


@router.patch("/plugins/webhook/connections/by-name/{ref}")
@router.patch("/plugins/webhook/connections/{ref}")
async def update_webhook(request: Request, ref: str) -> JSONResponse:
    return _ok(_state(request).update_webhook(ref, _by_name(request), await _json(request)))


@router.delete("/plugins/webhook/connections/by-name/{ref}")
@router.delete("/plugins/webhook/connections/{ref}")
async def delete_webhook(request: Request, ref: str) -> JSONResponse:
    return _ok(_state(request).delete_webhook(ref, _by_name(request)))


# ---- data-source connections, remote scopes ------------------------------------------------------

_CONNECTION = "/plugins/{plugin}/connections/{connection_id}"


@router.get("/plugins/{plugin}/connections")
async def list_connections(request: Request, plugin: str) -> JSONResponse:
    return _ok(_state(request).list_connections(plugin))


@router.post("/plugins/{plugin}/connections")
async def create_connection(request: Request, plugin: str) -> JSONResponse:
    DevLakeState.require_data_source(plugin)
    return _ok(_state(request).create_connection(plugin, await _json(request)), 201)


@router.get(_CONNECTION)
async def get_connection(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    return _ok(_state(request).connection(plugin, _connection_id(plugin, connection_id)).as_json())


@router.patch(_CONNECTION)
async def update_connection(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).update_connection(plugin, cid, await _json(request)))


@router.delete(_CONNECTION)
async def delete_connection(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    return _ok(_state(request).delete_connection(plugin, _connection_id(plugin, connection_id)))


@router.get(_CONNECTION + "/remote-scopes")
async def remote_scopes(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    # query_params decodes the raw query string like Go's url.ParseQuery: an unencoded "+" in
    # pageToken arrives as a space and fails base64 decoding (400), as it does in DevLake
    q = request.query_params
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).remote_scopes(plugin, cid, q.get("groupId"), q.get("pageToken")))


@router.get(_CONNECTION + "/search-remote-scopes")
async def search_remote_scopes(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).search_remote_scopes(plugin, cid, request.query_params))


# ---- scopes and scope configs ---------------------------------------------------------------------


@router.put(_CONNECTION + "/scopes")
async def put_scopes(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).put_scopes(plugin, cid, await _json(request)))


@router.get(_CONNECTION + "/scopes")
async def list_scopes(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).list_scopes(plugin, cid, request.query_params))


# scope ids may contain "/" (bitbucket "workspace/repo"): a catch-all segment, as in DevLake
@router.get(_CONNECTION + "/scopes/{scope_id:path}")
async def get_scope(request: Request, plugin: str, connection_id: str, scope_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).get_scope(plugin, cid, scope_id, request.query_params))


@router.patch(_CONNECTION + "/scopes/{scope_id:path}")
async def patch_scope(request: Request, plugin: str, connection_id: str, scope_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).patch_scope(plugin, cid, scope_id, await _json(request)))


@router.delete(_CONNECTION + "/scopes/{scope_id:path}")
async def delete_scope(request: Request, plugin: str, connection_id: str, scope_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    data_only = request.query_params.get("delete_data_only", "").lower() in ("1", "true")
    return _ok(_state(request).delete_scope(plugin, cid, scope_id, data_only))


@router.get(_CONNECTION + "/scope-configs")
async def list_scope_configs(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    return _ok(_state(request).list_scope_configs(plugin, _connection_id(plugin, connection_id)))


@router.post(_CONNECTION + "/scope-configs")
async def create_scope_config(request: Request, plugin: str, connection_id: str) -> JSONResponse:
    cid = _connection_id(plugin, connection_id)
    return _ok(_state(request).create_scope_config(plugin, cid, await _json(request)), 201)


@router.get(_CONNECTION + "/scope-configs/{config_id}")
async def get_scope_config(request: Request, plugin: str, connection_id: str, config_id: str) -> JSONResponse:
    _connection_id(plugin, connection_id)
    return _ok(_state(request).scope_config(plugin, int_id(config_id, "scopeConfigId")).as_json())


@router.patch(_CONNECTION + "/scope-configs/{config_id}")
async def update_scope_config(request: Request, plugin: str, connection_id: str, config_id: str) -> JSONResponse:
    _connection_id(plugin, connection_id)
    return _ok(_state(request).update_scope_config(plugin, int_id(config_id, "scopeConfigId"), await _json(request)))


@router.delete(_CONNECTION + "/scope-configs/{config_id}")
async def delete_scope_config(request: Request, plugin: str, connection_id: str, config_id: str) -> JSONResponse:
    _connection_id(plugin, connection_id)
    return _ok(_state(request).delete_scope_config(plugin, int_id(config_id, "scopeConfigId")))


# ---- projects -------------------------------------------------------------------------------------


@router.get("/projects")
async def list_projects(request: Request) -> JSONResponse:
    return _ok(_state(request).list_projects(request.query_params))


@router.post("/projects")
async def create_project(request: Request) -> JSONResponse:
    return _ok(_state(request).create_project(await _json(request, core=True)), 201)


@router.api_route("/projects/{tail:path}", methods=["GET", "PATCH", "DELETE"])
async def project_routes(request: Request, tail: str) -> JSONResponse:
    """``/projects/{name}`` and ``/projects/{name}/check``, routed on the raw path: a name's
    percent-encoded "/" (``a%2Fb``) stays inside its segment and is decoded afterwards."""
    raw = request.scope["raw_path"].decode("utf-8", "replace").split("?", 1)[0]
    segments = [unquote(part) for part in raw.split(f"{PREFIX}/projects/", 1)[1].split("/")]
    state = _state(request)
    match request.method, segments:
        case "GET", [name]:
            return _ok(state.project_json(state.project(name)))
        case "GET", [name, "check"]:
            return _ok({"exist": name in state.projects})
        case "PATCH", [name]:
            return _ok(state.update_project(name, await _json(request, core=True)), 201)  # 201, sic
        case "DELETE", [name]:
            state.delete_project(name)
            return _ok(SUCCESS)
    raise NoRoute()


# ---- blueprints -----------------------------------------------------------------------------------


@router.get("/blueprints")
async def list_blueprints(request: Request) -> JSONResponse:
    return _ok(_state(request).list_blueprints(request.query_params))


@router.post("/blueprints")
async def create_blueprint(request: Request) -> JSONResponse:
    return _ok(_state(request).create_blueprint(await _json(request, core=True)), 201)


@router.get("/blueprints/{blueprint_id}")
async def get_blueprint(request: Request, blueprint_id: str) -> JSONResponse:
    return _ok(_state(request).blueprint(int_id(blueprint_id, "blueprintId")).as_json())


@router.patch("/blueprints/{blueprint_id}")
async def update_blueprint(request: Request, blueprint_id: str) -> JSONResponse:
    return _ok(_state(request).update_blueprint(int_id(blueprint_id, "blueprintId"), await _json(request, core=True)))


@router.delete("/blueprints/{blueprint_id}")
async def delete_blueprint(request: Request, blueprint_id: str) -> JSONResponse:
    _state(request).delete_blueprint(int_id(blueprint_id, "blueprintId"))
    return _ok(SUCCESS)


@router.post("/blueprints/{blueprint_id}/trigger")
async def trigger_blueprint(request: Request, blueprint_id: str) -> JSONResponse:
    return _ok(_state(request).trigger(int_id(blueprint_id, "blueprintId"), await _json(request, core=True)))


@router.get("/blueprints/{blueprint_id}/pipelines")
async def blueprint_pipelines(request: Request, blueprint_id: str) -> JSONResponse:
    return _ok(_state(request).list_pipelines(request.query_params, int_id(blueprint_id, "blueprintId")))


# ---- pipelines ------------------------------------------------------------------------------------


@router.get("/pipelines")
async def list_pipelines(request: Request) -> JSONResponse:
    return _ok(_state(request).list_pipelines(request.query_params))


@router.post("/pipelines")
async def create_pipeline(request: Request) -> JSONResponse:
    return _ok(_state(request).create_pipeline(await _json(request, core=True)), 201)


@router.get("/pipelines/{pipeline_id}")
async def get_pipeline(request: Request, pipeline_id: str) -> JSONResponse:
    return _ok(_state(request).pipeline(int_id(pipeline_id, "pipelineId")).as_json())


@router.delete("/pipelines/{pipeline_id}")
async def cancel_pipeline(request: Request, pipeline_id: str) -> JSONResponse:
    _state(request).cancel_pipeline(int_id(pipeline_id, "pipelineId"))
    return _ok(SUCCESS)


@router.post("/pipelines/{pipeline_id}/rerun")
async def rerun_pipeline(request: Request, pipeline_id: str) -> JSONResponse:
    return _ok(_state(request).rerun_pipeline(int_id(pipeline_id, "pipelineId")))


@router.get("/pipelines/{pipeline_id}/tasks")
async def pipeline_tasks(request: Request, pipeline_id: str) -> JSONResponse:
    return _ok(_state(request).pipeline_tasks(int_id(pipeline_id, "pipelineId")))


@router.get("/pipelines/{pipeline_id}/subtasks")
async def pipeline_subtasks(request: Request, pipeline_id: str) -> JSONResponse:
    return _ok(_state(request).pipeline_subtasks(int_id(pipeline_id, "pipelineId")))


# ---- API keys -------------------------------------------------------------------------------------


@router.get("/api-keys")
async def list_api_keys(request: Request) -> JSONResponse:
    return _ok(_state(request).list_api_keys(request.query_params))


@router.post("/api-keys")
async def create_api_key(request: Request) -> JSONResponse:
    return _ok(_state(request).create_api_key(await _json(request, core=True)), 201)


@router.put("/api-keys/{key_id}")
async def regenerate_api_key(request: Request, key_id: str) -> JSONResponse:
    return _ok(_state(request).regenerate_api_key(int_id(key_id, "apiKeyId")))


@router.delete("/api-keys/{key_id}")
async def delete_api_key(request: Request, key_id: str) -> JSONResponse:
    _state(request).delete_api_key(int_id(key_id, "apiKeyId"))
    return _ok(SUCCESS)


# ---- /rest and unknown routes (last) --------------------------------------------------------------


@router.api_route("/rest/{path:path}", methods=ALL_METHODS)
async def rest(request: Request, path: str) -> Response:
    """``/rest/<path>``: the Bearer API key must allow ``/<path>``; then ``/<path>`` answers."""
    denied = _state(request).check_api_key(request.headers.get("authorization"), "/" + path)
    if denied is not None:
        return _ok({"success": False, "message": denied[1]}, denied[0])
    return await _redispatch(request, f"{PREFIX}/rest", PREFIX)


async def _redispatch(request: Request, old_prefix: str, new_prefix: str) -> Response:
    """Serve the request again under another path prefix through the app's router (as DevLake's
    ``HandleContext``), without passing the sandbox middleware a second time."""
    body = await request.body()
    scope = dict(request.scope)
    scope["path"] = new_prefix + scope["path"][len(old_prefix) :]
    scope["raw_path"] = new_prefix.encode() + scope["raw_path"][len(old_prefix) :]
    delivered = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await request.app.router(scope, receive, send)
    response = Response(b"".join(m.get("body", b"") for m in sent[1:]), status_code=sent[0]["status"])
    response.raw_headers = list(sent[0]["headers"])
    return response


@router.api_route("/{path:path}", methods=ALL_METHODS)
async def no_route(path: str) -> Response:
    """Anything else: gin's text/plain ``404 page not found``."""
    raise NoRoute()


# ---- sandbox controls (/_sandbox/devlake) ---------------------------------------------------------


class _Body(BaseModel):
    """Control bodies take camelCase keys, like the DevLake API."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SettingsBody(_Body):
    max_parallel: int = Field(1, ge=1, description="PIPELINE_MAX_PARALLEL (DevLake's default: 1)")
    task_seconds: float = Field(5.0, gt=0, description="default simulated seconds per task")
    remote_page_size: int | None = Field(None, ge=1, description="remote-scopes page size; null = each plugin's own")
    migration_pending: bool = Field(False, description="every non-public route answers 428")
    html_mode: bool = Field(False, description="every route answers 200 with an HTML login page")


class ScriptBody(_Body):
    blueprint_id: int | None = Field(None, ge=1, description="script every pipeline of this blueprint")
    pipeline_id: int | None = Field(None, ge=1, description="script this pipeline (wins over the blueprint's)")
    fail_at_task: int | None = Field(None, ge=1, description="this task (1-based, plan order) fails")
    message: str = PipelineScript.message
    partial: bool = Field(False, description="go on after the failure and end TASK_PARTIAL")
    task_seconds: float | None = Field(None, gt=0)
    forever: bool = Field(False, description="the first task never ends")
    succeed_on_rerun: bool = Field(False, description="a rerun of the failed task completes")


class RemoteRepoBody(_Body):
    name: str
    group: str | None = Field(
        None, description="group id (owner, namespace id, workspace, org/project); created when unknown"
    )


class RemoteFailureBody(_Body):
    status: int | None = Field(..., description="status remote-scopes calls answer; null stops failing")
    message: str = "upstream API error"


class BulkBody(_Body):
    count: int = Field(..., ge=1, le=100_000)


class StatusBody(_Body):
    status: str


class ApiKeyBody(_Body):
    name: str
    allowed_path: str = ".*"
    expired_at: str | None = None


@control.get("/settings")
async def get_settings(request: Request) -> JSONResponse:
    return _ok(_state(request).settings.as_json())


@control.post("/settings")
async def set_settings(request: Request, body: SettingsBody) -> JSONResponse:
    return _ok(_state(request).configure(body.model_dump(exclude_unset=True)))


@control.post("/scripts")
async def set_script(request: Request, body: ScriptBody) -> JSONResponse:
    script = PipelineScript(**body.model_dump(exclude={"blueprint_id", "pipeline_id"}))
    _state(request).set_script(script, body.blueprint_id, body.pipeline_id)
    return _ok(body.model_dump(by_alias=True))


@control.delete("/scripts")
async def clear_scripts(request: Request) -> JSONResponse:
    _state(request).clear_scripts()
    return _ok({"cleared": True})


@control.post("/connections/{plugin}/{connection_id}/remote-repos")
async def add_remote_repo(request: Request, plugin: str, connection_id: int, body: RemoteRepoBody) -> JSONResponse:
    return _ok(_state(request).add_remote_repo(plugin, connection_id, body.name, body.group))


@control.post("/connections/{plugin}/{connection_id}/remote-failure")
async def fail_remote(request: Request, plugin: str, connection_id: int, body: RemoteFailureBody) -> JSONResponse:
    _state(request).fail_remote(plugin, connection_id, body.status, body.message)
    return _ok(body.model_dump())


@control.post("/remote-repos/bulk")
async def grow_remote(request: Request, body: BulkBody) -> JSONResponse:
    return _ok(_state(request).grow_remote(body.count))


@control.post("/pipelines/{pipeline_id}/status")
async def force_pipeline_status(request: Request, pipeline_id: int, body: StatusBody) -> JSONResponse:
    return _ok(_state(request).force_pipeline_status(pipeline_id, body.status))


@control.delete("/pipelines/{pipeline_id}")
async def delete_pipeline(request: Request, pipeline_id: int) -> JSONResponse:
    _state(request).delete_pipeline(pipeline_id)
    return _ok({"deleted": pipeline_id})


@control.post("/api-keys")
async def create_key(request: Request, body: ApiKeyBody) -> JSONResponse:
    key = {"name": body.name, "type": "devlake", "allowedPath": body.allowed_path, "expiredAt": body.expired_at}
    return _ok(_state(request).create_api_key(key))


@control.get("/counts")
async def counts(request: Request) -> JSONResponse:
    return _ok(_state(request).counts())


@control.get("/project")
async def project_state(request: Request, name: str) -> JSONResponse:
    return _ok(_state(request).project_state(name))


@control.get("/blueprints/{blueprint_id}")
async def blueprint_state(request: Request, blueprint_id: int) -> JSONResponse:
    return _ok(_state(request).blueprint_state(blueprint_id))
