"""devops-automation: Airflow 3 hooks, operators, sensors, triggers, notifiers and domain logic."""

from __future__ import annotations

from typing import Any

_FALSE = frozenset({"false", "0", "no", "off", "n", ""})


def as_bool(value: Any, default: bool = False) -> bool:
    """A flag from a connection extra or a Param rendered as text ("false", "0", "no", "" are false)."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)
