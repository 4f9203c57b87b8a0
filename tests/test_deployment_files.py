"""The deployment files say what the README promises (no Docker engine runs here, so we parse them)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO

AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_compose_has_the_official_airflow_3_layout(compose: dict) -> None:
    services = compose["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "results-db", "airflow-init"} <= set(services)
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }


def test_every_airflow_service_runs_our_image_with_the_project_mounted(compose: dict) -> None:
    for name in AIRFLOW_SERVICES | {"airflow-init"}:
        svc = compose["services"][name]
        assert svc["build"] == ".", name
        assert "devops-automation" in svc["image"], name
        mounts = {v.split(":")[1] for v in svc["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= mounts, name
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert env["AIRFLOW_CONN_DEVOPS_RESULTS_DB"].startswith("postgres://")
        assert "@results-db:5432/" in env["AIRFLOW_CONN_DEVOPS_RESULTS_DB"]
        assert "AIRFLOW__API_AUTH__JWT_SECRET" in env  # one secret shared by every component


def test_init_migrates_and_applies_settings(compose: dict) -> None:
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "devops_automation.settings_loader /opt/airflow/airflow_settings.yaml" in script


def test_dockerfile_builds_on_airflow_332_with_our_pins() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", text, re.M)
    assert "-r /opt/devops-automation/requirements.txt -c /opt/devops-automation/constraints.txt" in text


def test_requirements_are_exact_pins_covered_by_the_lock() -> None:
    lock = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version
    for req in ("requirements.txt", "requirements-dev.txt"):
        checked = 0
        for line in (REPO / req).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line:
                continue
            checked += 1
            name, sep, version = line.partition("==")
            assert sep, f"{req}: {line!r} is not pinned with =="
            assert lock.get(name.lower().replace("_", "-")) == version, f"{req}: {line} disagrees with constraints.txt"
        assert checked > 0, f"{req} pins nothing"
    required = {
        "apache-airflow",
        "apache-airflow-providers-http",
        "apache-airflow-providers-postgres",
        "apache-airflow-providers-slack",
        "apache-airflow-providers-telegram",
        "apache-airflow-providers-smtp",
        "apache-airflow-providers-standard",
        "apache-airflow-providers-common-sql",
        "apache-airflow-providers-sqlite",
        "openai",
        "imap-tools",
    }
    pinned = {
        line.split("==")[0].lower() for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line
    }
    assert required <= pinned
    assert lock["apache-airflow"] == "3.3.2"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    head = (REPO / "README.md").read_text().split("\n## ", 1)[0]
    assert "make demo" in head
    assert "make test" in head
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
