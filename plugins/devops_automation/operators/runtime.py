"""What every workflow's operators read from their run: the data interval as plain aware datetimes,
whether the run is a backfill, project-relative config paths; and an extra link whose URL a task
pushes to XCom."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import Context


def data_interval(context: Context, dag_id: str = "this DAG") -> tuple[dt.datetime, dt.datetime]:
    """The run's data interval as aware UTC ``datetime`` objects (not pendulum's: the pure modules
    compare and serialise them). A run without one is refused with a clear error."""
    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None:
        raise ValueError(f"{dag_id} needs a data interval (scheduled, backfilled, or triggered with one)")
    return dt.datetime.fromtimestamp(start.timestamp(), dt.UTC), dt.datetime.fromtimestamp(end.timestamp(), dt.UTC)


def is_backfill(context: Context) -> bool:
    """Whether the run was made by ``airflow dags backfill`` (it records, it never pages)."""
    return str(getattr(context.get("dag_run"), "run_type", "")).lower().endswith("backfill")


def task_started(context: Context, default: dt.datetime) -> dt.datetime:
    """When this try of the task started (for "is this the latest interval" and message ageing)."""
    started = getattr(context.get("ti"), "start_date", None)
    if started is None:
        return default
    return dt.datetime.fromtimestamp(started.timestamp(), dt.UTC)


def param_names(value: Any, what: str, noun: str = "name") -> list[str]:
    """A Param's list of names, stripped, in the order given (a comma- or line-separated string works
    too; empty: ``[]``). A wrong value is a ValueError naming the Param and the item."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = value.replace(",", "\n").splitlines()
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list of {noun}s, got {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{what}[{i}] must be a {noun}, got {item!r}")
        out.append(item.strip())
    return out


def mapped_results(collected: Any) -> list[dict[str, Any]]:
    """The outputs of mapped tasks as one list of dicts (each XComArg a lazy sequence; a failed map index
    or a failed task gives nothing)."""
    out: list[dict[str, Any]] = []
    for part in collected or []:
        if part is None:
            continue
        if isinstance(part, dict):
            out.append(part)
            continue
        out.extend(r for r in part if isinstance(r, dict))
    return out


def project_file(path: str) -> str:
    """A relative path is taken from the project root: the parent of the DAGs folder (where
    ``include/`` lives in the Astro layout, the docker-compose image and ``make demo``)."""
    if Path(path).is_absolute():
        return path
    from airflow.configuration import conf

    return str(Path(conf.get("core", "dags_folder")).parent / path)


class XComUrlLink(BaseOperatorLink):
    """An extra link whose URL the task pushed to XCom under :attr:`key` (before doing its work, so a
    failed try has its link too). Subclasses set ``name`` and ``key``."""

    name = "Link"
    key = "link_url"

    def get_link(self, operator: BaseOperator, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.key)
        return str(value) if value else ""
