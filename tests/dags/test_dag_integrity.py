"""Every DAG file parses like the DAG processor sees it, cheaply, and explains itself in the UI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

DAG_FILES = sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_a_dag(dagbag) -> None:
    files_with_dags = {dag.fileloc.rsplit("/", 1)[-1] for dag in dagbag.dags.values()}
    assert {p.name for p in DAG_FILES} <= files_with_dags


def test_each_dag_explains_itself(dagbag) -> None:
    problems = []
    for dag_id, dag in dagbag.dags.items():
        owners = {t.owner for t in dag.tasks}
        if not owners or owners & {"airflow", ""}:
            problems.append(f"{dag_id}: owner left as the default ({owners})")
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag_id}: no doc_md")
        if dag.start_date is None or dag.start_date.tzinfo is None:
            problems.append(f"{dag_id}: start_date must be timezone-aware")
        for name, param in dag.params.items():
            if not getattr(param, "description", None):
                problems.append(f"{dag_id}: Param {name!r} has no description (the trigger form shows it)")
        for task in dag.tasks:
            if task.retries < 1:
                problems.append(f"{dag_id}.{task.task_id}: no retries (tasks are idempotent, so retry them)")
    assert problems == []


def test_dag_files_import_only_what_they_declare_with() -> None:
    """Parsing a DAG file must not import heavy client libraries (they load inside tasks)."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "parse_time.py"), "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert [f for f in result["files"] if "error" in f or f["heavy"]] == []
    assert result["dagbag"].get("import_errors", {}) == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_has_no_top_level_io(path, monkeypatch) -> None:
    """Importing a DAG file must not touch connections, variables or the network."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError(f"{path.name} opened a network connection at parse time")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    spec = importlib.util.spec_from_file_location(f"_dagfile_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
