"""The base of every DevLake operator: the ``devlake_default`` connection, a lazily built
:class:`~devops_automation.hooks.devlake.DevLakeHook`, and an extra link to DevLake's UI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink

if TYPE_CHECKING:
    from devops_automation.hooks.devlake import DevLakeHook

DEVLAKE_CONN_ID = "devlake_default"


class DevLakeProjectLink(BaseOperatorLink):
    """Extra link from a task to DevLake's projects page (config-ui)."""

    name = "DevLake projects"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        from airflow.sdk import BaseHook

        from devops_automation.hooks.devlake import ui_url

        conn = BaseHook.get_connection(getattr(operator, "devlake_conn_id", DEVLAKE_CONN_ID))
        return f"{ui_url(conn.host, conn.extra_dejson)}/projects"


class DevLakeBaseOperator(BaseOperator):
    """Holds ``devlake_conn_id``; :attr:`hook` is built on first use (never at DAG parse time)."""

    operator_extra_links = (DevLakeProjectLink(),)

    def __init__(self, *, devlake_conn_id: str = DEVLAKE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.devlake_conn_id = devlake_conn_id

    @property
    def hook(self) -> DevLakeHook:
        if not hasattr(self, "_hook"):
            from devops_automation.hooks.devlake import DevLakeHook  # HttpHook pulls in aiohttp: not at parse time

            self._hook = DevLakeHook(self.devlake_conn_id)
        return self._hook
