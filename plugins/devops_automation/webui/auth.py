"""Who is asking and what they may read: Airflow's own auth manager and JWT, nothing of our own.

Airflow does not put plugin apps behind its auth, so every data route of the view depends on
:func:`get_viewer` (401 without a valid token) and on :func:`requires` for its data set (403 without read
access to the DAG the data belongs to, :data:`~devops_automation.webui.queries.DATASET_DAGS`).

**The token.** The same JWT the Airflow UI holds, found the way Airflow's own API finds it
(``airflow.api_fastapi.core_api.security.get_user``): an ``Authorization: Bearer <jwt>`` header (scripts:
the token from ``POST /auth/token``), else the ``_token`` cookie the UI's login sets (HttpOnly, path
``[api] base_url`` or ``/``, so the browser sends it to the plugin's pages and API too; the UI's own
requests carry nothing else). Airflow's ``JWTRefreshMiddleware`` wraps the whole API server, plugin apps
included, and refreshes that cookie as for any UI request. No token, an expired one or a bad signature
-> 401 with ``WWW-Authenticate: Bearer`` (Airflow's ``get_user`` answers 403 for an invalid token; the
view answers 401 for every authentication failure and keeps 403 for "authenticated, not allowed").

**The check.** ``auth_manager.is_authorized_dag(method="GET", details=DagDetails(id=<dag_id>,
team_name=...), user=user)`` of the configured auth manager (simple, FAB, Keycloak, ...), once per DAG
and request (:class:`Viewer` remembers the answers). The team is looked up (``DagModel.get_team_name``, as
Airflow's ``requires_access_dag`` does) only when ``[core] multi_team`` is on. ``access_entity`` is not
given: the data sets are what the DAGs produced, readable by whoever may read the DAG.

**Airflow internals relied on** (Airflow 3.3.2; covered by the tests against a real ``airflow
api-server``): ``airflow.api_fastapi.core_api.security.get_user``,
``airflow.api_fastapi.app.get_auth_manager``, ``BaseAuthManager.is_authorized_dag``,
``airflow.api_fastapi.auth.managers.models.resource_details.DagDetails``, ``DagModel.get_team_name``.
Airflow is imported inside the functions, so importing this module (the plugin loads in every Airflow
component) stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from devops_automation.webui.queries import DATASET_DAGS

#: The bearer scheme in the OpenAPI document (the header is read by Airflow's ``get_user``).
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AirflowJWT",
    description="The Airflow JWT: `POST /auth/token` with username and password gives `access_token`. "
    "The Airflow UI's `_token` cookie works too.",
)

DagCheck = Callable[[str], bool]


class Viewer:
    """An authenticated Airflow user and the DAGs whose data they may read (each asked once)."""

    def __init__(self, user: Any, may_read_dag: DagCheck) -> None:
        self.user = user
        self._check = may_read_dag
        self._answers: dict[str, bool] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        getter = getattr(self.user, "get_name", None)
        return str(getter() if callable(getter) else getattr(self.user, "username", "") or "")

    def may_read(self, dag_id: str) -> bool:
        """Whether the auth manager lets this user read the DAG (blocking: call it from a thread)."""
        with self._lock:
            known = self._answers.get(dag_id)
        if known is None:
            known = bool(self._check(dag_id))
            with self._lock:
                self._answers[dag_id] = known
        return known

    def readable(self, dag_ids: Iterable[str]) -> set[str]:
        return {dag_id for dag_id in dag_ids if self.may_read(dag_id)}

    def require_any(self, dag_ids: Iterable[str]) -> set[str]:
        """The readable ones of ``dag_ids``; 403 when there is none."""
        wanted = list(dict.fromkeys(dag_ids))
        allowed = self.readable(wanted)
        if not allowed:
            raise forbidden(wanted)
        return allowed


def forbidden(dag_ids: Iterable[str]) -> HTTPException:
    names = " or ".join(repr(d) for d in dag_ids)
    return HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: no read access to DAG {names}")


def unauthorized(detail: str = "Not authenticated") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def airflow_dag_check(user: Any) -> DagCheck:
    """``dag_id -> bool`` by the configured auth manager's ``is_authorized_dag`` (GET)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.configuration import conf

    manager = get_auth_manager()
    multi_team = conf.getboolean("core", "multi_team", fallback=False)

    def check(dag_id: str) -> bool:
        team = None
        if multi_team:
            from airflow.models.dag import DagModel

            team = DagModel.get_team_name(dag_id)
        return bool(manager.is_authorized_dag(method="GET", details=DagDetails(id=dag_id, team_name=team), user=user))

    return check


async def get_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Viewer:
    """The Airflow user of the request (bearer header, else the UI's cookie); 401 when there is none."""
    from airflow.api_fastapi.core_api.security import get_user

    try:
        user = await get_user(request, None, credentials)
    except HTTPException as exc:
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            detail = exc.detail if exc.status_code == status.HTTP_401_UNAUTHORIZED else "Invalid token"
            raise unauthorized(str(detail)) from None
        raise
    return Viewer(user, airflow_dag_check(user))


def requires(dataset: str) -> Callable[[Viewer], Viewer]:
    """A dependency: the viewer, after a 403 unless they may read one of the data set's DAGs.

    A plain ``def``: FastAPI runs it in a worker thread, since an auth manager may ask a remote service."""
    dags = DATASET_DAGS[dataset]

    def dependency(viewer: Annotated[Viewer, Depends(get_viewer)]) -> Viewer:
        viewer.require_any(dags)
        return viewer

    dependency.__name__ = f"requires_{dataset}"
    return dependency


__all__ = ["Viewer", "airflow_dag_check", "bearer", "forbidden", "get_viewer", "requires", "unauthorized"]
