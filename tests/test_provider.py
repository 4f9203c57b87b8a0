"""The installable distribution (pyproject.toml) and its Airflow provider metadata (devops_automation.provider).

``make install`` installs the package editable (``pip install --no-deps -e .``) after the pins; these
tests need that install (they fail, not skip, without it: the connection forms depend on it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import warnings
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import REPO

PLUGINS = REPO / "plugins"
AIRFLOW_DIR = Path(__import__("airflow").__file__).parent

#: connection type -> (hook class, display name): what we register, and nothing else
OURS = {
    "devlake": ("devops_automation.hooks.devlake.DevLakeHook", "Apache DevLake"),
    "github": ("devops_automation.hooks.github.GitHubHook", "GitHub"),
    "gitlab": ("devops_automation.hooks.gitlab.GitLabHook", "GitLab"),
    "imap_mailbox": ("devops_automation.hooks.imap.ImapMailboxHook", "IMAP mailbox"),
    "llm": ("devops_automation.hooks.llm.LLMHook", "LLM (OpenAI-compatible)"),
    "prometheus": ("devops_automation.hooks.prometheus.PrometheusHook", "Prometheus"),
    "sonarqube": ("devops_automation.hooks.sonarqube.SonarQubeHook", "SonarQube"),
}


def _provider_entry_point() -> metadata.EntryPoint:
    found = [
        ep
        for ep in metadata.entry_points(group="apache_airflow_provider")
        if ep.dist is not None and ep.dist.name == "devops-automation"
    ]
    assert len(found) == 1, (
        "devops-automation is not installed in this environment: run `make install` (pip install --no-deps -e .)"
    )
    return found[0]


def _python(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_base_env(), **env},
        cwd="/",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# ---- metadata ----------------------------------------------------------------------------------


def test_the_entry_point_is_installed_and_returns_our_provider_info() -> None:
    from devops_automation.provider import get_provider_info

    ep = _provider_entry_point()
    assert ep.value == "devops_automation.provider:get_provider_info"
    info = ep.load()()
    assert info == get_provider_info()
    assert info["package-name"] == "devops-automation" == ep.dist.metadata["Name"]
    assert info["versions"] == [ep.dist.version]
    # `make install` installs this checkout editable: one copy of the code, plugins/ itself (the
    # build's plugins/devops_automation.egg-info is a second, equal view of the same metadata)
    installed = [
        json.loads(d.read_text("direct_url.json"))
        for d in metadata.distributions(name="devops-automation")
        if d.read_text("direct_url.json")
    ]
    assert len(installed) == 1, installed
    direct_url = installed[0]
    assert direct_url.get("dir_info") == {"editable": True}
    assert Path(direct_url["url"].removeprefix("file://")).resolve() == REPO.resolve()


def test_provider_info_validates_against_airflows_schemas() -> None:
    from airflow.providers_manager import _create_provider_info_schema_validator

    from devops_automation.provider import get_provider_info

    info = get_provider_info()
    _create_provider_info_schema_validator().validate(info)  # what ProvidersManager runs on load
    # the development schema (provider.yaml) describes conn-fields and ui-field-behaviour strictly
    dev_schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    jsonschema.validate(info["connection-types"], dev_schema["properties"]["connection-types"])
    assert {c["connection-type"]: (c["hook-class-name"], c["hook-name"]) for c in info["connection-types"]} == OURS


def test_provider_info_imports_neither_airflow_nor_a_hook() -> None:
    """Every Airflow process loads the entry point: it must stay plain data."""
    out = _python(
        "import sys; from devops_automation.provider import get_provider_info; get_provider_info(); "
        "print(sorted(m for m in sys.modules if m.startswith(('airflow', 'devops_automation'))))"
    )
    assert out.strip() == "['devops_automation', 'devops_automation.provider']"


def test_each_hook_declares_what_the_provider_registers() -> None:
    from airflow.sdk.module_loading import import_string

    for conn_type, (class_name, hook_name) in OURS.items():
        hook = import_string(class_name)
        assert (hook.conn_type, hook.hook_name) == (conn_type, hook_name)
        assert hook.default_conn_name == f"{conn_type.split('_')[0]}_default"
        assert callable(getattr(hook, "test_connection", None))
        # Airflow >= 3.2 reads forms from the provider info; these classmethods are deprecated
        assert not {"get_connection_form_widgets", "get_ui_field_behaviour"} & set(vars(hook)), class_name


# ---- what Airflow makes of it ------------------------------------------------------------------


def test_providers_manager_lists_our_connection_types_without_importing_hooks() -> None:
    out = _python(
        "import sys, json\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "pm = ProvidersManager()\n"
        "meta = {m.connection_type: [m.hook_class_name, m.hook_name, m.field_behaviour]"
        " for m in pm.iter_connection_type_hook_ui_metadata()}\n"
        "print(json.dumps({'version': pm.providers['devops-automation'].version, 'meta': meta,\n"
        "  'hooks_imported': sorted(m for m in sys.modules if m.startswith('devops_automation.hooks'))}))\n"
    )
    got = json.loads(out.strip().splitlines()[-1])
    assert got["version"] == metadata.version("devops-automation")
    for conn_type, (class_name, hook_name) in OURS.items():
        assert got["meta"][conn_type][:2] == [class_name, hook_name], conn_type  # ours, not another provider's
    assert got["meta"]["llm"][2]["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert (
        got["meta"]["telegram"][0] == "airflow.providers.telegram.hooks.telegram.TelegramHook"
    )  # we share the provider's type
    assert got["hooks_imported"] == []  # the UI form needs no hook import


def test_the_ui_connection_form_shows_labelled_fields() -> None:
    """``GET /ui/connections/hook_meta``: what the React connection form renders."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    forms = {h.connection_type: h for h in HookMetaService.hook_meta_data.__wrapped__()}
    llm = forms["llm"]
    assert llm.hook_name == "LLM (OpenAI-compatible)"
    fields = llm.standard_fields
    assert (fields.host.title, fields.password.title) == ("Base URL", "API key")
    assert (fields.login.hidden, fields.port.hidden, fields.url_schema.hidden, fields.host.hidden) == (
        True,
        True,
        True,
        False,
    )
    assert "api.openai.com/v1" in fields.host.placeholder
    extras = llm.extra_fields
    assert list(extras) == ["model", "timeout", "max_retries"]
    assert extras["model"]["schema"]["title"] == "Model"
    assert (extras["timeout"]["value"], extras["max_retries"]["value"]) == (60, 2)

    devlake, gitlab, imap = forms["devlake"], forms["gitlab"], forms["imap_mailbox"]
    assert (devlake.standard_fields.host.title, devlake.standard_fields.password.title) == ("DevLake URL", "API key")
    assert gitlab.standard_fields.password.title == "Access token"
    assert gitlab.extra_fields["auth_type"]["schema"]["enum"] == ["private_token", "oauth"]
    assert (imap.standard_fields.url_schema.hidden, imap.standard_fields.port.hidden) == (True, False)
    assert imap.extra_fields["use_ssl"]["value"] is True  # SSL stays on unless unticked
    assert {k: imap.extra_fields[k]["value"] for k in ("folder", "processed_folder", "needs_attention_folder")} == {
        "folder": "INBOX",
        "processed_folder": "Processed",
        "needs_attention_folder": "needs-attention",
    }


def test_defaults_shown_in_the_form_are_the_hooks_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection saved with the form's prefilled values behaves like one without those extras."""
    from devops_automation.hooks.api import ApiHook
    from devops_automation.hooks.github import DEFAULT_MAX_RATE_LIMIT_WAIT
    from devops_automation.hooks.imap import ImapMailboxHook
    from devops_automation.hooks.llm import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
    from devops_automation.provider import CONNECTION_TYPES

    prefilled = {
        c["connection-type"]: {k: f["schema"].get("default") for k, f in c["conn-fields"].items()}
        for c in CONNECTION_TYPES
    }
    assert prefilled["devlake"]["timeout"] == prefilled["gitlab"]["timeout"] == ApiHook.default_timeout
    assert prefilled["devlake"]["max_retries"] == prefilled["gitlab"]["max_retries"] == ApiHook.default_max_retries
    assert (prefilled["llm"]["timeout"], prefilled["llm"]["max_retries"]) == (DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)
    assert prefilled["github"]["timeout"] == ApiHook.default_timeout
    assert prefilled["github"]["max_rate_limit_wait"] == DEFAULT_MAX_RATE_LIMIT_WAIT
    assert prefilled["prometheus"]["timeout"] == prefilled["sonarqube"]["timeout"] == ApiHook.default_timeout
    assert prefilled["prometheus"]["auth_type"] is None  # chosen from the connection's fields
    assert prefilled["sonarqube"]["auth_type"] == "bearer"
    monkeypatch.setenv("AIRFLOW_CONN_IMAP_BARE", json.dumps({"conn_type": "imap_mailbox", "host": "m"}))
    bare = ImapMailboxHook("imap_bare")
    assert (
        bare.use_ssl,
        bare.starttls,
        bare.folder,
        bare.processed_folder,
        bare.needs_attention_folder,
        bare.timeout,
    ) == (
        prefilled["imap_mailbox"]["use_ssl"],
        prefilled["imap_mailbox"]["starttls"],
        prefilled["imap_mailbox"]["folder"],
        prefilled["imap_mailbox"]["processed_folder"],
        prefilled["imap_mailbox"]["needs_attention_folder"],
        prefilled["imap_mailbox"]["timeout"],
    )


def test_task_runtime_resolves_our_types_to_our_hooks() -> None:
    """``Connection.get_hook()`` (and the UI's "Test" button) find our hook through the provider."""
    from airflow.sdk import Connection
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from devops_automation.hooks.llm import LLMHook

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated form methods are called
        hooks = ProvidersManagerTaskRuntime().hooks
        for conn_type, (class_name, hook_name) in OURS.items():
            info = hooks[conn_type]
            assert info is not None, conn_type
            assert (info.hook_class_name, info.hook_name, info.package_name, info.connection_testable) == (
                class_name,
                hook_name,
                "devops-automation",
                True,
            )
    hook = Connection(conn_id="llm_x", conn_type="llm", host="llm.example.test/v1").get_hook()
    assert isinstance(hook, LLMHook)
    assert hook.llm_conn_id == "llm_x"


def test_every_connection_type_in_the_settings_file_is_known_to_airflow() -> None:
    from airflow.providers_manager import ProvidersManager

    known = {m.connection_type for m in ProvidersManager().iter_connection_type_hook_ui_metadata()}
    conns = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]["connections"]
    types = {c["conn_id"]: c["conn_type"] for c in conns}
    assert {k: types[k] for k in ("devlake_default", "gitlab_default", "imap_default", "llm_default")} == {
        "devlake_default": "devlake",
        "gitlab_default": "gitlab",
        "imap_default": "imap_mailbox",
        "llm_default": "llm",
    }
    assert set(types.values()) <= known, set(types.values()) - known


# ---- the LLM hook (the connection behind the "LLM" form) ---------------------------------------


def test_llm_hook_turns_the_connection_into_analyse_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from devops_automation.hooks.llm import LLMHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_LLM_A",
        json.dumps(
            {
                "conn_type": "llm",
                "host": "api.example.test/v1",
                "password": "sk-x",
                "extra": {"model": "m1", "timeout": 5, "max_retries": 0},
            }
        ),
    )
    assert LLMHook("llm_a").analyse_kwargs() == {
        "base_url": "https://api.example.test/v1",
        "api_key": "sk-x",
        "model": "m1",
        "timeout": 5.0,
        "max_retries": 0,
    }
    # a form saved with empty optional fields (null) gets the defaults; "generic" (the old type) still works
    monkeypatch.setenv(
        "AIRFLOW_CONN_LLM_B",
        json.dumps(
            {
                "conn_type": "generic",
                "host": "http://localhost:11434/v1",
                "extra": {"model": None, "timeout": None, "max_retries": None},
            }
        ),
    )
    assert LLMHook("llm_b").analyse_kwargs() == {
        "base_url": "http://localhost:11434/v1",
        "api_key": None,
        "model": None,
        "timeout": 60.0,
        "max_retries": 2,
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_LLM_C", json.dumps({"conn_type": "llm", "host": "h", "extra": {"timeout": "soon"}})
    )
    with pytest.raises(ValueError, match="'llm_c': extras 'timeout' and 'max_retries' must be numbers"):
        LLMHook("llm_c").analyse_kwargs()


def test_llm_hook_test_connection_against_the_sandbox(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from devops_automation.hooks.llm import LLMHook

    def conn(model: str | None, key: str = "sk-sandbox") -> str:
        return json.dumps(
            {
                "conn_type": "llm",
                "host": sandbox.url("openai", "/v1"),
                "password": key,
                "extra": {"model": model, "max_retries": 0},
            }
        )

    monkeypatch.setenv("AIRFLOW_CONN_LLM_OK", conn("gpt-4o-mini"))
    monkeypatch.setenv("AIRFLOW_CONN_LLM_NOMODEL", conn(None))
    monkeypatch.setenv("AIRFLOW_CONN_LLM_UNKNOWN", conn("no-such-model"))
    ok, message = LLMHook("llm_ok").test_connection()
    assert ok, message
    assert "gpt-4o-mini" in message
    ok, message = LLMHook("llm_nomodel").test_connection()
    assert ok, message
    assert "no model" in message
    ok, message = LLMHook("llm_unknown").test_connection()
    assert not ok
    assert "NotFoundError" in message


# ---- the distribution ----------------------------------------------------------------------------


def test_pyproject_matches_the_pins_and_the_install_paths() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    meta = project["project"]
    assert (meta["name"], meta["requires-python"]) == ("devops-automation", ">=3.11")
    assert meta["entry-points"]["apache_airflow_provider"] == {
        "provider_info": "devops_automation.provider:get_provider_info"
    }
    deps = {}
    for dep in meta["dependencies"]:
        name, sep, bound = dep.partition(">=")
        assert sep, f"{dep}: a plain lower bound (>=), not a pin"
        assert not re.search(r"[=<>!~,;]", bound), f"{dep}: a plain lower bound, not a pin"
        deps[name.lower().replace("_", "-")] = bound
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    sandbox_only = {"uvicorn"}  # include/sandbox is not part of the distribution
    assert deps == {k: v for k, v in pins.items() if k not in sandbox_only}
    makefile = (REPO / "Makefile").read_text()
    assert "constraints.txt pyproject.toml | cksum" in makefile
    assert re.search(r"pip install -q -r requirements\.txt .*\n\t\$\(BIN\)/pip install -q --no-deps -e \.\n", makefile)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "COPY --chown=airflow:root plugins /opt/airflow/plugins" in dockerfile
    assert "pip install --no-cache-dir --no-deps -e /opt/airflow" in dockerfile
    assert dockerfile.index("requirements.txt -c") < dockerfile.index("--no-deps -e /opt/airflow")  # pins first


def _package_data() -> set[str]:
    """Files under plugins/devops_automation the code reads at run time (not .py modules of packages)."""
    root = PLUGINS / "devops_automation"
    wanted = set()
    for path in [*root.glob("store/migrations/**/*"), *root.glob("ci_logs/prompts/*")]:
        if path.is_file() and "__pycache__" not in path.parts:
            wanted.add(path.relative_to(PLUGINS).as_posix())
    return wanted


def _build_wheel(tmp_path: Path) -> Path:
    """``pip wheel`` from a copy of the project (so no build/ lands in the checkout)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copytree(PLUGINS, src / "plugins", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # build isolation fetches pyproject's build requirement (setuptools) from the index, as `make install` does
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("devops_automation-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_ships_migrations_and_prompts_and_works_installed(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    data = _package_data()
    assert {
        "devops_automation/store/migrations/env.py",
        "devops_automation/store/migrations/script.py.mako",
        "devops_automation/ci_logs/prompts/failure_analysis_system.md",
    } <= data
    assert data <= names, data - names
    assert {"devops_automation/provider.py", "devops_automation/hooks/llm.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "include/", "dags/"))]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "devops_automation.provider:get_provider_info" in zipfile.ZipFile(wheel).read(entry_points).decode()

    # installed outside the checkout, the package finds its prompts and migrates a fresh database
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    got = _python(
        "import json\n"
        "from devops_automation.ci_logs import llm\n"
        "from devops_automation.ci_logs.classify import classify_excerpt\n"
        "from devops_automation.ci_logs.excerpt import excerpt\n"
        "from devops_automation.store import ResultsStore, sqlite_url\n"
        "ex = excerpt('collecting\\nerror: cannot find symbol Foo\\nBUILD FAILED\\n')\n"
        "prompt = llm.build_prompt(ex, classify_excerpt(ex))\n"
        f"store = ResultsStore(sqlite_url({str(tmp_path / 'results.db')!r}))\n"
        "store.migrate()\n"
        "print(json.dumps({'llm': llm.__file__, 'system': prompt.system[:40],"
        " 'rev': [store.current_revision(), store.head_revision()]}))\n",
        PYTHONPATH=str(site),
    )
    result = json.loads(got.strip().splitlines()[-1])
    assert result["llm"].startswith(str(site))
    assert result["system"]  # the prompts were found and rendered
    assert result["rev"][1] is not None
    assert result["rev"][0] == result["rev"][1]  # migrated to head
