"""The layout rules (README "Layout"), checked on the import edges of the package and dags/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from include.scripts import import_edges

REPO = Path(__file__).resolve().parents[1]


def test_the_package_keeps_the_layout_rules() -> None:
    found = import_edges.edges(REPO)
    # the walk really read the tree: the three DAG files and the workflows import what we know they do
    sources = {e.source for e in found}
    assert {
        "dags/ci_failure_triage.py",
        "dags/devlake_project_setup.py",
        "dags/devlake_blueprint_monitor.py",
    } <= sources
    assert any(
        e.source.startswith("devops_automation.workflows.ci_failure_triage")
        and e.target.startswith("devops_automation.ci_logs")
        for e in found
    )
    assert import_edges.violations(found) == []


def test_the_script_exits_0_on_the_tree_and_prints_a_summary() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "include" / "scripts" / "import_edges.py")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].endswith("violations=0")


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in {
        "plugins/devops_automation/__init__.py": "",
        "plugins/devops_automation/workflows/__init__.py": "",
        **files,
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "dags").mkdir(exist_ok=True)
    return tmp_path


@pytest.mark.parametrize(
    "files, expected",
    [
        pytest.param(
            {
                "plugins/devops_automation/workflows/a/ops.py": (
                    "def f():\n    from devops_automation.workflows.b import plan\n"
                )
            },
            "a workflow never imports another workflow",
            id="workflow-to-workflow-lazy",
        ),
        pytest.param(
            {"plugins/devops_automation/hooks/x.py": "from devops_automation.workflows.a.plan import LIMIT\n"},
            "a shared part never imports a workflow package",
            id="hook-to-workflow",
        ),
        pytest.param(
            {"plugins/devops_automation/workflows/a/ops.py": "from ..b import plan\n"},
            "a workflow never imports another workflow",
            id="relative-import",
        ),
        pytest.param(
            {"dags/a.py": "from devops_automation.workflows.b.ops import Op\n"},
            "a DAG file imports only its own workflow package (a)",
            id="dag-to-other-workflow",
        ),
        pytest.param(
            {"dags/a.py": "from airflow.models import Variable\n"},
            "a DAG file imports only airflow.sdk from Airflow",
            id="dag-airflow-models",
        ),
        pytest.param(
            {"dags/a.py": "import requests\n"},
            "a DAG file imports only airflow.sdk, its workflow package and shared parts",
            id="dag-library",
        ),
        pytest.param(
            {"plugins/devops_automation/ci_logs/excerpt.py": "from airflow.sdk import Variable\n"},
            "domain logic is plain Python (no Airflow import)",
            id="pure-module-imports-airflow",
        ),
    ],
)
def test_each_rule_catches_a_planted_violation(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    repo = _tree(tmp_path, files)
    problems = import_edges.violations(import_edges.edges(repo))
    assert len(problems) == 1, problems
    assert problems[0].endswith(expected)


def test_allowed_edges_are_not_flagged(tmp_path: Path) -> None:
    repo = _tree(
        tmp_path,
        {
            "dags/a.py": (
                "from airflow.sdk import DAG\nfrom devops_automation.workflows.a.ops import Op\n"
                "from devops_automation.sensors.x import S\n"
            ),
            "plugins/devops_automation/workflows/a/ops.py": (
                "from devops_automation.hooks.x import H\nfrom devops_automation.workflows.a import plan\n"
            ),
            "plugins/devops_automation/hooks/x.py": "from airflow.sdk import BaseHook\n",
        },
    )
    found = import_edges.edges(repo)
    assert len([e for e in found if e.source != "devops_automation"]) >= 6
    assert import_edges.violations(found) == []
