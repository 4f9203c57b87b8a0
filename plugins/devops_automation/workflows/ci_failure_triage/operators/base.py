"""What the ``ci_failure_triage`` operators share: connection ids, the store, the run's time, links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from devops_automation.store import ResultsStore

DAG_ID = "ci_failure_triage"


def run_time(context: Context) -> dt.datetime:
    """The run's own time (``run_after``): what the store records instead of the wall clock, so a
    re-run of the same run writes the same values."""
    dag_run = context.get("dag_run")
    when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None) or context.get("logical_date")
    if when is None:
        raise RuntimeError("the task has no dag_run.run_after or logical_date")
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class _XComLink(BaseOperatorLink):
    """An extra link whose URL the task pushed to XCom under ``xcom_key``."""

    name = ""
    xcom_key = ""

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return str(value) if value else ""


class GitLabPipelineLink(_XComLink):
    """Extra link to the (first) GitLab pipeline the task worked on."""

    name = "GitLab pipeline"
    xcom_key = "pipeline_url"


class GitLabJobLink(_XComLink):
    """Extra link to the GitLab job a mapped analysis task analysed."""

    name = "GitLab job"
    xcom_key = "job_url"


class TriageOperator(BaseOperator):
    """Base: the connection ids every triage step may use, and the results store."""

    def __init__(
        self,
        *,
        gitlab_conn_id: str = "gitlab_default",
        imap_conn_id: str = "imap_default",
        llm_conn_id: str = "llm_default",
        slack_conn_id: str = "slack_default",
        telegram_conn_id: str = "telegram_default",
        results_conn_id: str = "devops_results_db",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gitlab_conn_id = gitlab_conn_id
        self.imap_conn_id = imap_conn_id
        self.llm_conn_id = llm_conn_id
        self.slack_conn_id = slack_conn_id
        self.telegram_conn_id = telegram_conn_id
        self.results_conn_id = results_conn_id

    @cached_property
    def store(self) -> ResultsStore:
        from devops_automation.store import ResultsStore

        return ResultsStore.from_connection(self.results_conn_id)

    @cached_property
    def gitlab(self) -> Any:
        from devops_automation.hooks.gitlab import GitLabHook  # HttpHook pulls in aiohttp: not at parse time

        return GitLabHook(self.gitlab_conn_id)

    @staticmethod
    def push_link(context: Context, key: str, url: str | None) -> None:
        if url:
            context["ti"].xcom_push(key=key, value=url)


def first(items: Sequence[Any], default: Any = None) -> Any:
    return items[0] if items else default
