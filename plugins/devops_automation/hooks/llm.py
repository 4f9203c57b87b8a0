"""OpenAI-compatible LLM endpoint (connection ``llm_default``) for the failure analysis.

Connection: type ``llm`` (``generic`` works too); host = the base URL of any server that speaks
``/v1/chat/completions`` (``https://api.openai.com/v1``, Azure OpenAI's v1 API, OpenRouter, vLLM,
Ollama ``http://localhost:11434/v1``; without a scheme ``https://`` is assumed); password = API key
(empty for local servers without keys). Extras: ``model`` (without it only the built-in heuristic
runs), ``timeout`` (seconds, default 60), ``max_retries`` (the SDK's retries of 429/5xx/timeouts,
default 2).

The hook only turns the connection into the plain arguments of
:func:`devops_automation.ci_logs.llm.analyse`, which stays free of Airflow, or into an
``openai.OpenAI`` client (the SDK is imported inside the methods).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from openai import OpenAI

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2


class LLMHook(BaseHook):
    """Settings of an OpenAI-compatible endpoint, read lazily from the connection."""

    conn_name_attr = "llm_conn_id"
    default_conn_name = "llm_default"
    conn_type = "llm"  # registered in devops_automation.provider (the UI form); any type works at run time
    hook_name = "LLM (OpenAI-compatible)"

    def __init__(self, llm_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm_conn_id = llm_conn_id

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.llm_conn_id)

    def analyse_kwargs(self) -> dict[str, Any]:
        """``base_url``, ``api_key``, ``model``, ``timeout``, ``max_retries`` for ``ci_logs.llm.analyse``."""
        conn = self.connection
        extra = conn.extra_dejson or {}
        host = conn.host or ""
        if host and "://" not in host:
            host = f"{conn.conn_type if conn.conn_type in ('http', 'https') else 'https'}://{host}"
        try:
            timeout = float(extra.get("timeout") or DEFAULT_TIMEOUT)
            max_retries = int(
                extra.get("max_retries") if extra.get("max_retries") not in (None, "") else DEFAULT_MAX_RETRIES
            )
        except (TypeError, ValueError):
            raise ValueError(
                f"connection {self.llm_conn_id!r}: extras 'timeout' and 'max_retries' must be numbers"
            ) from None
        return {
            "base_url": host or None,
            "api_key": conn.password or None,
            "model": extra.get("model") or None,
            "timeout": timeout,
            "max_retries": max_retries,
        }

    def get_conn(self) -> OpenAI:
        """An ``openai.OpenAI`` client for the endpoint."""
        from devops_automation.ci_logs.llm import make_client

        kw = self.analyse_kwargs()
        return make_client(kw["base_url"], kw["api_key"], kw["timeout"], kw["max_retries"])

    def test_connection(self) -> tuple[bool, str]:
        """Reach the endpoint: the model is looked up (``GET /models/{model}``), or the list without one."""
        kw = self.analyse_kwargs()
        try:
            client = self.get_conn()
            if kw["model"]:
                client.models.retrieve(kw["model"])
                return True, f"model {kw['model']!r} is available at {kw['base_url'] or 'the default endpoint'}"
            client.models.list()
        except Exception as exc:  # noqa: BLE001 - the message goes to the UI
            return False, f"{type(exc).__name__}: {exc}"
        return True, "endpoint reached, but no model is set (extra 'model'): only the heuristic analysis runs"
