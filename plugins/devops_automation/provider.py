"""Airflow provider metadata of the ``devops-automation`` distribution.

``pyproject.toml`` registers :func:`get_provider_info` under the ``apache_airflow_provider`` entry point,
so once the package is installed (``pip install -e .``; ``make install`` does it) Airflow's
``ProvidersManager`` lists our hooks and connection types, and the connection form of the UI offers
them with labelled fields. Airflow 3.2+ builds that form from this dict alone (``conn-fields``:
extras, ``ui-field-behaviour``: hidden, relabelled and placeholder standard fields) without importing
a hook; hook classmethods ``get_connection_form_widgets``/``get_ui_field_behaviour`` are deprecated
there and ignored when these keys exist.

Types are ours only where no installed provider has one with the same fields: ``TelegramBotHook``
keeps the Telegram provider's ``telegram`` and ``AirflowApiHook`` the HTTP provider's ``http``;
``imap_mailbox`` is not ``imap`` (the IMAP provider's type, other extras). The hooks read a
connection of any type, so existing ``http``/``generic``/``imap`` connections keep working.

Plain data only: no import of Airflow or of the hooks (the providers manager loads this module in
every Airflow process). A copied plugins folder works without it; the UI then shows these
connections with the generic form.
"""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any

PACKAGE_NAME = "devops-automation"


def _optional(type_: str) -> list[str]:
    """A JSON-schema type that may be left empty (the hook then uses its default)."""
    return [type_, "null"]


def _timeout(description: str, default: float) -> dict[str, Any]:
    """Seconds, prefilled with the hook's default (not nullable: the hooks read a number)."""
    return {
        "label": "Timeout (s)",
        "description": description,
        "schema": {"type": "number", "minimum": 1, "default": default},
    }


def _retries(description: str, default: int) -> dict[str, Any]:
    return {
        "label": "Max retries",
        "description": description,
        "schema": {"type": "integer", "minimum": 0, "default": default},
    }


# ApiHook's defaults (hooks/api.py): the form shows what applies when the extra is absent
_API_TIMEOUT = _timeout("Seconds per request.", 30)
_API_MAX_RETRIES = _retries("Retries of 429/5xx and network errors, with backoff; Retry-After is honoured.", 4)
_HIDE_URL_PARTS = ["schema", "port", "login"]  # these hooks take one base URL in host and a token in password

CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "devlake",
        "hook-class-name": "devops_automation.hooks.devlake.DevLakeHook",
        "hook-name": "Apache DevLake",
        "ui-field-behaviour": {
            "hidden-fields": _HIDE_URL_PARTS,
            "relabeling": {"host": "DevLake URL", "password": "API key"},
            "placeholders": {
                "host": "http://devlake:8080 (backend) or https://devlake.example.com/api (behind config-ui)",
                "password": "optional: an API key made in config-ui (Bearer)",
            },
        },
        "conn-fields": {
            "ui_url": {
                "label": "UI URL",
                "description": "DevLake's config-ui base URL for links in alerts "
                "(default: the DevLake URL without /api).",
                "schema": {"type": _optional("string")},
            },
            "timeout": _API_TIMEOUT,
            "max_retries": _API_MAX_RETRIES,
        },
    },
    {
        "connection-type": "gitlab",
        "hook-class-name": "devops_automation.hooks.gitlab.GitLabHook",
        "hook-name": "GitLab",
        "ui-field-behaviour": {
            "hidden-fields": _HIDE_URL_PARTS,
            "relabeling": {"host": "GitLab URL", "password": "Access token"},
            "placeholders": {
                "host": "https://gitlab.com or https://gitlab.example.com (self-managed; /api/v4 optional)",
                "password": "glpat-... (personal, project or group access token, scope read_api; api to retry jobs)",
            },
        },
        "conn-fields": {
            "auth_type": {
                "label": "Token type",
                "description": "private_token: PRIVATE-TOKEN header (access tokens); oauth: Authorization: Bearer.",
                "schema": {"type": "string", "enum": ["private_token", "oauth"], "default": "private_token"},
            },
            "timeout": _API_TIMEOUT,
            "max_retries": _API_MAX_RETRIES,
        },
    },
    {
        "connection-type": "github",
        "hook-class-name": "devops_automation.hooks.github.GitHubHook",
        "hook-name": "GitHub",
        "ui-field-behaviour": {
            "hidden-fields": _HIDE_URL_PARTS,
            "relabeling": {"host": "GitHub API URL", "password": "Token"},
            "placeholders": {
                "host": "empty = https://api.github.com; https://HOST/api/v3 for Enterprise Server",
                "password": "ghp_... / github_pat_... (read: Actions, Deployments, Contents, Metadata)",
            },
        },
        "conn-fields": {
            "max_rate_limit_wait": {
                "label": "Max rate-limit wait",
                "description": "Seconds to sleep for a rate-limit reset; a longer wait defers the task until then.",
                "schema": {"type": "number", "minimum": 0, "default": 60},
            },
            "timeout": _API_TIMEOUT,
            "max_retries": _API_MAX_RETRIES,
        },
    },
    {
        "connection-type": "prometheus",
        "hook-class-name": "devops_automation.hooks.prometheus.PrometheusHook",
        "hook-name": "Prometheus",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "Prometheus URL", "login": "User (basic auth)", "password": "Password or token"},
            "placeholders": {
                "host": "http://prometheus:9090 (or a proxy path such as https://example.com/prometheus)",
                "login": "optional: basic auth user (web config or proxy)",
                "password": "optional: the basic auth password, or without a user a bearer token",
            },
        },
        "conn-fields": {
            "auth_type": {
                "label": "Authentication",
                "description": "Empty: basic with a user, else bearer with the password (or the extra "
                "bearer_token), else none. Or force one: none, basic, bearer.",
                "schema": {"type": _optional("string")},
            },
            "timeout": _API_TIMEOUT,
            "max_retries": _API_MAX_RETRIES,
        },
    },
    {
        "connection-type": "sonarqube",
        "hook-class-name": "devops_automation.hooks.sonarqube.SonarQubeHook",
        "hook-name": "SonarQube",
        "ui-field-behaviour": {
            "hidden-fields": _HIDE_URL_PARTS,
            "relabeling": {"host": "SonarQube URL", "password": "Token"},
            "placeholders": {
                "host": "https://sonar.example.com or https://sonarcloud.io",
                "password": "squ_... (a user token with Browse on the projects)",
            },
        },
        "conn-fields": {
            "auth_type": {
                "label": "Token as",
                "description": "bearer: Authorization: Bearer (SonarQube 10+, SonarQube Cloud); "
                "basic: the token as Basic login with an empty password (SonarQube 9.x and older).",
                "schema": {"type": "string", "enum": ["bearer", "basic"], "default": "bearer"},
            },
            "timeout": _API_TIMEOUT,
            "max_retries": _API_MAX_RETRIES,
        },
    },
    {
        "connection-type": "imap_mailbox",
        "hook-class-name": "devops_automation.hooks.imap.ImapMailboxHook",
        "hook-name": "IMAP mailbox",
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"host": "IMAP server", "login": "User"},
            "placeholders": {
                "host": "imap.example.com",
                "port": "993 with SSL, 143 without",
                "login": "ci-mail@example.com",
            },
        },
        "conn-fields": {
            "use_ssl": {
                "label": "SSL",
                "description": "Implicit TLS (port 993).",
                "schema": {"type": "boolean", "default": True},
            },
            "starttls": {
                "label": "STARTTLS",
                "description": "Plain connection upgraded with STARTTLS (port 143); takes precedence over SSL.",
                "schema": {"type": "boolean", "default": False},
            },
            "folder": {
                "label": "Folder",
                "description": "The folder GitLab's mails arrive in.",
                "schema": {"type": "string", "default": "INBOX"},
            },
            "processed_folder": {
                "label": "Processed folder",
                "description": "Handled mails are moved here (nothing is deleted).",
                "schema": {"type": "string", "default": "Processed"},
            },
            "needs_attention_folder": {
                "label": "Needs-attention folder",
                "description": "Mails from unknown senders, spoofed or unparsable mails are moved here.",
                "schema": {"type": "string", "default": "needs-attention"},
            },
            "allowed_senders": {
                "label": "Allowed senders",
                "description": "Addresses and @domain entries GitLab sends from, one per line; "
                "mail from anyone else is not trusted.",
                "schema": {"type": _optional("array"), "items": {"type": "string"}},
            },
            "timeout": _timeout("Socket timeout.", 30),
        },
    },
    {
        "connection-type": "llm",
        "hook-class-name": "devops_automation.hooks.llm.LLMHook",
        "hook-name": "LLM (OpenAI-compatible)",
        "ui-field-behaviour": {
            "hidden-fields": _HIDE_URL_PARTS,
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://api.openai.com/v1 (or Azure, OpenRouter, vLLM, Ollama: http://localhost:11434/v1)",
                "password": "sk-... (empty for local servers without keys)",
            },
        },
        "conn-fields": {
            "model": {
                "label": "Model",
                "description": "Model name, e.g. gpt-4o-mini. "
                "Without a model only the built-in heuristic analysis runs.",
                "schema": {"type": _optional("string")},
            },
            "timeout": _timeout("Seconds per request.", 60),
            "max_retries": _retries("The SDK's retries of 429/5xx and timeouts.", 2),
        },
    },
]


def _version() -> str:
    """The installed distribution's version (pyproject.toml); "0+unknown" in a copied plugins folder."""
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def get_provider_info() -> dict[str, Any]:
    """The provider dict Airflow reads through the ``apache_airflow_provider`` entry point
    (``airflow/provider_info.schema.json``)."""
    integration = "DevOps automation"
    return {
        "package-name": PACKAGE_NAME,
        "name": "DevOps automation",
        "description": "Hooks, triggers and notifiers for Apache DevLake, GitHub, GitLab, an IMAP mailbox, "
        "OpenAI-compatible LLMs, Prometheus, SonarQube, Slack and Telegram, used by the devops-automation DAGs.",
        "versions": [_version()],
        "integrations": [{"integration-name": integration, "tags": ["service"]}],
        "hooks": [
            {
                "integration-name": integration,
                "python-modules": [
                    "devops_automation.hooks.devlake",
                    "devops_automation.hooks.github",
                    "devops_automation.hooks.gitlab",
                    "devops_automation.hooks.imap",
                    "devops_automation.hooks.llm",
                    "devops_automation.hooks.prometheus",
                    "devops_automation.hooks.sonarqube",
                    "devops_automation.hooks.telegram",
                    "devops_automation.hooks.airflow_api",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": [
                    "devops_automation.triggers.devlake",
                    "devops_automation.triggers.imap",
                    "devops_automation.triggers.ci_run",
                ],
            }
        ],
        "sensors": [{"integration-name": integration, "python-modules": ["devops_automation.sensors.devlake"]}],
        "notifications": [
            "devops_automation.notifiers.telegram.TelegramNotifier",
            "devops_automation.notifiers.slack.SlackNotifier",
            "devops_automation.notifiers.email.EmailNotifier",
        ],
        "connection-types": copy.deepcopy(CONNECTION_TYPES),
    }
