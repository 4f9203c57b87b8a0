"""The package's import edges and the layout rules they must keep (README "Layout").

    python include/scripts/import_edges.py            # violations only; exit 1 when there are any
    python include/scripts/import_edges.py --edges    # every edge first, then the violations

Every ``import``/``from ... import`` in ``plugins/devops_automation/`` and ``dags/`` is read with
``ast`` (imports inside functions count too: a lazy import is still a dependency). The rules:

1. a module in ``workflows/<a>/`` never imports ``workflows/<b>/``;
2. nothing shared (hooks, triggers, sensors, notifiers, operators, store, ci_logs, the package root)
   imports a workflow package;
3. a file in ``dags/`` imports only ``airflow.sdk``, its own workflow package
   (``devops_automation.workflows.<its dag_id>``) and shared parts;
4. domain logic (``ci_logs/``, ``messaging.py``, the pure modules of workflows, the DevLake watch and
   alert texts) imports nothing from Airflow.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "devops_automation"

#: DAGs built by another DAG's workflow package (the same code, another schedule and period).
SAME_CODE = {"monthly_report": "weekly_report"}

#: Modules that must stay plain Python (no ``airflow`` import), as glob patterns on the module name.
PURE = (
    "devops_automation.ci_logs",
    "devops_automation.ci_logs.*",
    "devops_automation.ci_analytics",
    "devops_automation.ci_analytics.*",
    "devops_automation.workflows.ci_pipeline_analytics.normalize",
    "devops_automation.workflows.ci_pipeline_analytics.alert_rules",
    "devops_automation.workflows.ci_pipeline_analytics.alert_store",
    "devops_automation.workflows.ci_pipeline_analytics.collect",
    "devops_automation.workflows.ci_pipeline_analytics.observe",
    "devops_automation.workflows.daily_project_metrics.projects",
    "devops_automation.workflows.daily_project_metrics.health",
    "devops_automation.workflows.daily_project_metrics.thresholds",
    "devops_automation.workflows.daily_project_metrics.metrics",
    "devops_automation.workflows.daily_project_metrics.metric_rows",
    "devops_automation.workflows.daily_project_metrics.github_metrics",
    "devops_automation.workflows.daily_project_metrics.prometheus_metrics",
    "devops_automation.workflows.daily_project_metrics.sonarqube_metrics",
    "devops_automation.workflows.daily_project_metrics.issue_text",
    "devops_automation.workflows.daily_project_metrics.alerts",
    "devops_automation.workflows.daily_project_metrics.ci_metrics",
    "devops_automation.workflows.weekly_report.figures",
    "devops_automation.workflows.weekly_report.charts",
    "devops_automation.workflows.weekly_report.render",
    "devops_automation.workflows.weekly_report.chat",
    "devops_automation.workflows.weekly_report.store",
    "devops_automation.webui.queries",
    "devops_automation.webui.page_charts",
    "devops_automation.charts",
    "devops_automation.charts.*",
    "devops_automation.messaging",
    "devops_automation.yaml_config",
    "devops_automation.store.alert_events",
    "devops_automation.store.run_actions",
    "devops_automation.dag_defaults",
    "devops_automation.triggers.devlake_watch",
    "devops_automation.sensors.devlake_alerts",
    "devops_automation.workflows.*.plan",
    "devops_automation.workflows.*.messages",
    "devops_automation.workflows.*.mail",
    "devops_automation.workflows.*.webhook",
    "devops_automation.workflows.*.intake",
    "devops_automation.workflows.*.store",
)


@dataclass(frozen=True)
class Edge:
    source: str  # module name, or "dags/<file>.py"
    target: str  # imported module name (absolute)
    path: Path
    line: int


def module_name(path: Path, plugins: Path) -> str:
    parts = list(path.relative_to(plugins).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, source: str) -> Iterator[tuple[str, int]]:
    """Absolute names imported by one file (``from x import y`` gives ``x.y`` too, so a submodule counts)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            yield mod, node.lineno
            for alias in node.names:
                if alias.name != "*":
                    yield f"{mod}.{alias.name}", node.lineno


def edges(repo: Path = REPO) -> list[Edge]:
    plugins = repo / "plugins"
    found: list[Edge] = []
    for path in sorted((plugins / PACKAGE).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = module_name(path, plugins)
        found += [Edge(source, target, path, line) for target, line in imports_of(path, source)]
    for path in sorted((repo / "dags").glob("*.py")):
        found += [
            Edge(f"dags/{path.name}", target, path, line) for target, line in imports_of(path, f"dags.{path.stem}")
        ]
    return found


def workflow_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) >= 3 and parts[0] == PACKAGE and parts[1] == "workflows":
        return parts[2]
    return None


def is_pure(module: str) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in PURE)


def violations(found: list[Edge]) -> list[str]:
    """One line per offending import statement (``file:line: what -> why``)."""
    out: list[str] = []
    reported: set[str] = set()
    for e in sorted(found, key=lambda e: (str(e.path), e.line, len(e.target))):
        if f"{e.path}:{e.line}" in reported:
            continue  # ``from x import y`` yields x and x.y: one statement, one line
        before = len(out)
        where = f"{e.path}:{e.line}"
        target_wf = workflow_of(e.target)
        if e.source.startswith("dags/"):
            dag_id = e.source[len("dags/") : -len(".py")]
            dag_id = SAME_CODE.get(dag_id, dag_id)
            top = e.target.split(".")[0]
            if top == "airflow" and not (e.target == "airflow.sdk" or e.target.startswith("airflow.sdk.")):
                out.append(f"{where}: {e.source} imports {e.target}: a DAG file imports only airflow.sdk from Airflow")
            elif top == PACKAGE and target_wf is not None and target_wf != dag_id:
                out.append(
                    f"{where}: {e.source} imports {e.target}: "
                    f"a DAG file imports only its own workflow package ({dag_id})"
                )
            elif top not in ("airflow", PACKAGE, "__future__"):
                out.append(
                    f"{where}: {e.source} imports {e.target}: "
                    "a DAG file imports only airflow.sdk, its workflow package and shared parts"
                )
            if len(out) > before:
                reported.add(where)
            continue
        source_wf = workflow_of(e.source)
        if target_wf is not None:
            if source_wf is None:
                out.append(f"{where}: {e.source} imports {e.target}: a shared part never imports a workflow package")
            elif source_wf != target_wf:
                out.append(f"{where}: {e.source} imports {e.target}: a workflow never imports another workflow")
        if is_pure(e.source) and (e.target == "airflow" or e.target.startswith("airflow.")):
            out.append(f"{where}: {e.source} imports {e.target}: domain logic is plain Python (no Airflow import)")
        if len(out) > before:
            reported.add(where)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="list every import edge inside the package and from dags/")
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args(argv)
    found = edges(args.repo)
    if args.edges:
        for e in found:
            if e.target.startswith(PACKAGE) or e.source.startswith("dags/"):
                print(f"{e.source} -> {e.target}")
    problems = violations(found)
    for p in problems:
        print(p)
    print(f"edges={len(found)} violations={len(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
