"""Every DAG file parses like the DAG processor sees it, cheaply, and explains itself in the UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PARSE_GUARD = Path(__file__).with_name("parse_guard.py")
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
    assert sorted(dagbag.dag_ids) == sorted(p.stem for p in DAG_FILES)  # every DAG is looked at below
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
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "parse_time.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert [f["file"] for f in result["files"]] == [p.name for p in DAG_FILES]  # every file was measured
    assert [f for f in result["files"] if "error" in f or f["heavy"]] == []
    assert result["dagbag"].get("import_errors", {}) == {}


def parse_guarded(paths: list[Path]) -> dict[str, dict]:
    """Run ``paths`` through tests/dags/parse_guard.py (a fresh interpreter); its report per file name."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    out = subprocess.run(
        [sys.executable, str(PARSE_GUARD), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    reports = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [Path(r["file"]).name for r in reports] == [p.name for p in paths], out.stderr[-3000:]
    return {Path(r["file"]).name: r for r in reports}


@pytest.fixture(scope="module")
def dag_file_reports() -> dict[str, dict]:
    return parse_guarded(DAG_FILES)


def test_there_are_dag_files_to_check() -> None:
    assert [p.name for p in DAG_FILES] == [
        "ci_failure_triage.py",
        "ci_pipeline_analytics.py",
        "ci_run_action.py",
        "daily_project_metrics.py",
        "devlake_blueprint_monitor.py",
        "devlake_project_setup.py",
        "monthly_report.py",
        "weekly_report.py",
    ]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_has_no_top_level_io(path: Path, dag_file_reports: dict[str, dict]) -> None:
    """Importing a DAG file must not read variables or connections, nor touch files, the network or the database."""
    report = dag_file_reports[path.name]
    assert report["events"] == []
    assert report["error"] is None
    assert report["dags"] == [path.stem]  # the file really ran, and defined its DAG


# The guard itself: each planted DAG file does one forbidden thing at parse time (most of them
# swallowing the exception, as a careless file would) and must be caught.
PLANTED = {
    "clean": ("", []),
    "variable_sdk": (
        (
            "from airflow.sdk import Variable\n"
            "try:\n    Variable.get('threshold', default='1')\nexcept Exception:\n    pass\n"
        ),
        ["variable"],
    ),
    "variable_models": (
        (
            "from airflow.models import Variable\n"
            "try:\n    Variable.get('threshold', default_var='1')\nexcept Exception:\n    pass\n"
        ),
        ["variable"],
    ),
    "variable_env_only": (
        (
            "import os\nos.environ['AIRFLOW_VAR_THRESHOLD'] = '1'\n"
            "from airflow.sdk import Variable\nVariable.get('threshold')\n"
        ),
        ["variable"],
    ),
    "connection_basehook": (
        (
            "from airflow.sdk import BaseHook\n"
            "try:\n    BaseHook.get_connection('gitlab_default')\nexcept Exception:\n    pass\n"
        ),
        ["connection"],
    ),
    "connection_legacy_import": (
        "from airflow.hooks.base import BaseHook\nBaseHook.get_connection('gitlab_default')\n",
        ["connection"],
    ),
    "connection_sdk": (
        "from airflow.sdk import Connection\ntry:\n    Connection.get('gitlab_default')\nexcept Exception:\n    pass\n",
        ["connection"],
    ),
    "connection_models": (
        (
            "from airflow.models import Connection\n"
            "try:\n    Connection.get_connection_from_secrets('x')\nexcept Exception:\n    pass\n"
        ),
        ["connection"],
    ),
    "hook_property": (
        (
            "from devops_automation.hooks.devlake import DevLakeHook\n"
            "try:\n    DevLakeHook().ui_url()\nexcept Exception:\n    pass\n"
        ),
        ["connection"],
    ),
    "file_outside": ("open({outside!r}).read()\n", ["file"]),
    "file_in_repo_not_python": ("open({readme!r}).read()\n", ["file"]),
    "file_write": ("open({written!r}, 'w').write('x')\n", ["file"]),
    "socket": (
        (
            "import socket\ns = socket.socket()\ns.settimeout(0.5)\n"
            "try:\n    s.connect(('127.0.0.1', {port}))\nexcept OSError:\n    pass\n"
        ),
        ["network"],
    ),
    "http": (
        (
            "import urllib.request\n"
            "try:\n    urllib.request.urlopen('http://localhost:{port}/', timeout=0.5)\nexcept Exception:\n    pass\n"
        ),
        ["network"],
    ),
    "sqlite": ("import sqlite3\nsqlite3.connect(':memory:')\n", ["database"]),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])\n", ["process"]),
}


@pytest.fixture(scope="module")
def planted_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    from include.sandbox.client import free_port

    tmp = tmp_path_factory.mktemp("planted")
    outside = tmp / "settings.yaml"
    outside.write_text("threshold: 1\n")
    files = []
    for name, (body, _) in PLANTED.items():
        code = body.format(
            outside=str(outside), readme=str(REPO / "README.md"), written=str(tmp / "out.txt"), port=free_port()
        )
        dag_file = tmp / f"planted_{name}.py"
        dag_file.write_text(
            f"from airflow.sdk import DAG\n{code}\nwith DAG('planted_{name}', schedule=None) as dag:\n    pass\n"
        )
        files.append(dag_file)
    return parse_guarded(files)


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_parse_guard_catches_a_planted_dag_file(name: str, planted_reports: dict[str, dict]) -> None:
    _, kinds = PLANTED[name]
    report = planted_reports[f"planted_{name}.py"]
    assert sorted({kind for kind, _ in report["events"]}) == kinds, report
    if kinds:
        assert report["events"][0][1]  # says what was called or opened
    else:
        assert report["error"] is None
        assert report["dags"] == [f"planted_{name}"]
