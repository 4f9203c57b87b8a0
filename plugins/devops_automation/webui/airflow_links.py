"""Links from the view's pages to Airflow's own UI (the run and task instance that analysed a failure).

Airflow 3.3's UI routes (``airflow/ui``): ``{root}dags/{dag_id}/runs/{run_id}``,
``.../tasks/{task_id}`` and, for a mapped task, ``.../tasks/{task_id}/mapped`` (its instances) and
``.../mapped/{map_index}``. ``{root}`` is the path of ``[api] base_url`` (``/`` by default).

``ci_failure_triage`` analyses each failed job in one instance of its mapped ``analyse`` task, whose
``map_index_template`` names the job (``"{job_name} #{job_id}"``): :func:`triage_map_index` finds that
instance's map index in the metadata database (the API server has it), so a failure links straight to its
task instance; without it (a run already deleted, no metadata database) the link goes to the mapped task's
list of instances. Airflow is imported inside the functions.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from urllib.parse import quote, urlsplit

log = logging.getLogger(__name__)

TRIAGE_DAG = "ci_failure_triage"
TRIAGE_TASK = "analyse"
#: ``map_index_template`` of ci_failure_triage's ``analyse`` task, as rendered for a job.
MAP_INDEX_LABEL = "{job_name} #{job_id}"

MapIndexLookup = Callable[[str, str | None, str], int | None]


@functools.cache
def airflow_root() -> str:
    """The path Airflow's UI is served under (``[api] base_url``'s path), ending in ``/``."""
    try:
        from airflow.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except ImportError:  # no Airflow here (a script): the default
        base = ""
    path = urlsplit(base).path or "/"
    return path if path.endswith("/") else path + "/"


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def dag_url(dag_id: str, root: str | None = None) -> str:
    return f"{root or airflow_root()}dags/{_seg(dag_id)}"


def dag_run_url(dag_id: str, run_id: str, root: str | None = None) -> str:
    return f"{dag_url(dag_id, root)}/runs/{_seg(run_id)}"


def task_url(
    dag_id: str,
    run_id: str,
    task_id: str,
    *,
    mapped: bool = False,
    map_index: int | None = None,
    root: str | None = None,
) -> str:
    """A task instance page; ``mapped``: the mapped task's instances (or one of them, ``map_index``)."""
    url = f"{dag_run_url(dag_id, run_id, root)}/tasks/{_seg(task_id)}"
    if map_index is not None and map_index >= 0:
        return f"{url}/mapped/{map_index}"
    return f"{url}/mapped" if mapped else url


def triage_map_index(run_id: str, job_name: str | None, job_id: str) -> int | None:
    """The map index of the ``analyse`` instance of ``run_id`` that analysed ``job_id`` (by its rendered
    map index), from Airflow's metadata database; ``None`` when it cannot be found."""
    try:
        import sqlalchemy as sa
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        label = MAP_INDEX_LABEL.format(job_name=job_name, job_id=job_id)
        with create_session() as session:
            found = session.scalar(
                sa.select(TaskInstance.map_index)
                .where(
                    TaskInstance.dag_id == TRIAGE_DAG,
                    TaskInstance.run_id == run_id,
                    TaskInstance.task_id == TRIAGE_TASK,
                    TaskInstance.rendered_map_index == label,
                )
                .limit(1)
            )
    except Exception:  # no metadata database here: link to the list of instances instead
        log.debug("Looking up the map index of %s in %s failed", job_id, run_id, exc_info=True)
        return None
    return int(found) if found is not None else None


def triage_task_url(
    run_id: str, job_name: str | None, job_id: str, lookup: MapIndexLookup | None = triage_map_index
) -> str:
    """The ``analyse`` task instance of ``run_id`` that analysed the job (its mapped list if unknown)."""
    index = lookup(run_id, job_name, job_id) if lookup is not None else None
    return task_url(TRIAGE_DAG, run_id, TRIAGE_TASK, mapped=True, map_index=index)


__all__ = [
    "airflow_root",
    "dag_run_url",
    "dag_url",
    "task_url",
    "triage_map_index",
    "triage_task_url",
]
