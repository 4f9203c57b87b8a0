"""Apply an Astro-CLI ``airflow_settings.yaml`` (connections, pools, variables) to any Airflow.

    python -m devops_automation.settings_loader [airflow_settings.yaml] [--check]

The file is validated first; an error names the line and the field at fault, e.g.
``airflow_settings.yaml:14: airflow.connections[2].conn_port: expected an integer, got 'http'``.
Nothing is written when any entry is wrong. Applying is idempotent: each connection, pool and
variable is created, updated or left alone, and a second run reports everything unchanged.

String values may use ``${NAME}`` or ``${NAME:-default}`` to take a value from the environment (so a
deployment keeps secrets out of the file). It writes through the Airflow metadata database, so run it
where ``airflow db migrate`` works (the scheduler's or API server's environment).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONNECTION_FIELDS = {
    "conn_id": str,
    "conn_type": str,
    "conn_host": str,
    "conn_schema": str,
    "conn_login": str,
    "conn_password": str,
    "conn_port": int,
    "conn_uri": str,
    "conn_extra": (dict, str),
}
POOL_FIELDS = {"pool_name": str, "pool_slot": int, "pool_description": str}
VARIABLE_FIELDS = {"variable_name": str, "variable_value": str}
SECTIONS = {"connections": CONNECTION_FIELDS, "pools": POOL_FIELDS, "variables": VARIABLE_FIELDS}
REQUIRED = {
    "connections": ("conn_id",),
    "pools": ("pool_name", "pool_slot"),
    "variables": ("variable_name", "variable_value"),
}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class SettingsError(ValueError):
    """A malformed settings file: ``source:line: field: problem``."""

    def __init__(self, source: str, line: int, where: str, problem: str) -> None:
        super().__init__(f"{source}:{line}: {where}: {problem}")
        self.source, self.line, self.where, self.problem = source, line, where, problem


@dataclass(frozen=True)
class ConnectionSpec:
    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    uri: str | None = None


@dataclass(frozen=True)
class PoolSpec:
    name: str
    slots: int
    description: str


@dataclass(frozen=True)
class VariableSpec:
    name: str
    value: str


@dataclass
class Settings:
    connections: list[ConnectionSpec] = field(default_factory=list)
    pools: list[PoolSpec] = field(default_factory=list)
    variables: list[VariableSpec] = field(default_factory=list)


# ---- parsing ------------------------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _expand(value: str, node: yaml.Node, where: str, source: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise SettingsError(
            source,
            _line(node),
            where,
            f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
        )

    return ENV_REF.sub(sub, value)


def _value(
    loader: yaml.SafeLoader, node: yaml.Node, expected: Any, where: str, source: str, env: Mapping[str, str]
) -> Any:
    value = loader.construct_object(node, deep=True)
    if value is None:
        return None
    if expected is int:
        if isinstance(value, str):
            value = _expand(value, node, where, source, env)
            if not re.fullmatch(r"-?\d+", value.strip()):
                raise SettingsError(source, _line(node), where, f"expected an integer, got {value!r}")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(source, _line(node), where, f"expected an integer, got {value!r}")
        return value
    if expected is str:
        if isinstance(value, (dict, list)):
            raise SettingsError(source, _line(node), where, f"expected a string, got a {type(value).__name__}")
        return _expand(str(value) if not isinstance(value, bool) else str(value).lower(), node, where, source, env)
    # conn_extra: a mapping, or a JSON object in a string
    if isinstance(value, str):
        try:
            value = json.loads(_expand(value, node, where, source, env))
        except json.JSONDecodeError as exc:
            raise SettingsError(source, _line(node), where, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise SettingsError(source, _line(node), where, "expected a JSON object")
        return value
    if not isinstance(value, dict):
        raise SettingsError(
            source, _line(node), where, f"expected a mapping or a JSON string, got a {type(value).__name__}"
        )
    return {k: _expand(v, node, f"{where}.{k}", source, env) if isinstance(v, str) else v for k, v in value.items()}


def parse_settings(text: str, source: str = "airflow_settings.yaml", env: Mapping[str, str] | None = None) -> Settings:
    """Validate and parse the file's text; raises :class:`SettingsError` naming line and field."""
    env = os.environ if env is None else env
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SettingsError(source, (mark.line + 1) if mark else 0, "(yaml)", str(exc.problem or exc)) from None
    finally:
        loader.dispose()
    settings = Settings()
    if root is None:
        return settings
    if not isinstance(root, yaml.MappingNode):
        raise SettingsError(source, _line(root), "(top level)", "expected a mapping with the key 'airflow'")
    top = {k.value: (k, v) for k, v in root.value}
    unknown = set(top) - {"airflow"}
    if unknown:
        k, _ = top[sorted(unknown)[0]]
        raise SettingsError(source, _line(k), k.value, "unknown top-level key (expected 'airflow')")
    if "airflow" not in top:
        raise SettingsError(source, _line(root), "(top level)", "the key 'airflow' is missing")
    airflow = top["airflow"][1]
    if isinstance(airflow, yaml.ScalarNode) and airflow.value in ("", "~", "null"):
        return settings
    if not isinstance(airflow, yaml.MappingNode):
        raise SettingsError(source, _line(airflow), "airflow", "expected a mapping of connections, pools, variables")
    seen: dict[str, dict[str, int]] = {s: {} for s in SECTIONS}
    for key_node, section_node in airflow.value:
        section = key_node.value
        if section not in SECTIONS:
            raise SettingsError(
                source,
                _line(key_node),
                f"airflow.{section}",
                f"unknown section (expected one of {', '.join(SECTIONS)})",
            )
        if isinstance(section_node, yaml.ScalarNode) and section_node.value in ("", "~", "null"):
            continue
        if not isinstance(section_node, yaml.SequenceNode):
            raise SettingsError(source, _line(section_node), f"airflow.{section}", "expected a list")
        for i, item in enumerate(section_node.value):
            where = f"airflow.{section}[{i}]"
            if not isinstance(item, yaml.MappingNode):
                raise SettingsError(source, _line(item), where, "expected a mapping")
            fields: dict[str, Any] = {}
            for fk, fv in item.value:
                if fk.value not in SECTIONS[section]:
                    raise SettingsError(
                        source,
                        _line(fk),
                        f"{where}.{fk.value}",
                        f"unknown field (expected one of {', '.join(SECTIONS[section])})",
                    )
                fields[fk.value] = _value(loader, fv, SECTIONS[section][fk.value], f"{where}.{fk.value}", source, env)
            for req in REQUIRED[section]:
                if fields.get(req) in (None, ""):
                    raise SettingsError(source, _line(item), f"{where}.{req}", "required field is missing or empty")
            name_field = REQUIRED[section][0]
            name = fields[name_field]
            if name in seen[section]:
                raise SettingsError(
                    source,
                    _line(item),
                    f"{where}.{name_field}",
                    f"duplicate {name!r} (first at line {seen[section][name]})",
                )
            seen[section][name] = _line(item)
            if section == "connections":
                settings.connections.append(_connection(fields, source, _line(item), where))
            elif section == "pools":
                if fields["pool_slot"] < -1:
                    raise SettingsError(source, _line(item), f"{where}.pool_slot", "must be -1 (unlimited) or more")
                settings.pools.append(PoolSpec(name, fields["pool_slot"], fields.get("pool_description") or ""))
            else:
                settings.variables.append(VariableSpec(name, fields["variable_value"]))
    return settings


def _connection(fields: dict[str, Any], source: str, line: int, where: str) -> ConnectionSpec:
    uri = fields.get("conn_uri")
    others = [k for k in CONNECTION_FIELDS if k not in ("conn_id", "conn_uri") and fields.get(k) not in (None, "", {})]
    if uri and others:
        raise SettingsError(
            source,
            line,
            f"{where}.conn_uri",
            f"give either conn_uri or the separate fields, not both (also set: {', '.join(others)})",
        )
    if not uri and not fields.get("conn_type"):
        raise SettingsError(source, line, f"{where}.conn_type", "required field is missing (or give conn_uri)")
    return ConnectionSpec(
        conn_id=fields["conn_id"],
        conn_type=fields.get("conn_type"),
        host=fields.get("conn_host") or None,
        schema=fields.get("conn_schema") or None,
        login=fields.get("conn_login") or None,
        password=fields.get("conn_password") or None,
        port=fields.get("conn_port"),
        extra=fields.get("conn_extra") or {},
        uri=uri or None,
    )


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    p = Path(path)
    return parse_settings(p.read_text(encoding="utf-8"), source=p.name, env=env)


# ---- applying -----------------------------------------------------------------------------------


def _conn_state(conn: Any) -> tuple[Any, ...]:
    return (conn.conn_type, conn.host, conn.schema, conn.login, conn.password, conn.port, conn.extra_dejson)


def apply_settings(settings: Settings) -> dict[str, Counter[str]]:
    """Write the settings into the Airflow metadata DB; returns created/updated/unchanged per kind."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    report: dict[str, Counter[str]] = {"connections": Counter(), "pools": Counter(), "variables": Counter()}
    with create_session() as session:
        for spec in settings.connections:
            wanted = (
                Connection(conn_id=spec.conn_id, uri=spec.uri)
                if spec.uri
                else Connection(
                    conn_id=spec.conn_id,
                    conn_type=spec.conn_type,
                    host=spec.host,
                    schema=spec.schema,
                    login=spec.login,
                    password=spec.password,
                    port=spec.port,
                    extra=json.dumps(spec.extra) if spec.extra else None,
                )
            )
            existing = session.scalar(select(Connection).where(Connection.conn_id == spec.conn_id))
            if existing is None:
                session.add(wanted)
                report["connections"]["created"] += 1
            elif _conn_state(existing) == _conn_state(wanted):
                report["connections"]["unchanged"] += 1
            else:
                for attr in ("conn_type", "host", "schema", "login", "password", "port", "extra"):
                    setattr(existing, attr, getattr(wanted, attr))
                report["connections"]["updated"] += 1
        for pool in settings.pools:
            existing = session.scalar(select(Pool).where(Pool.pool == pool.name))
            if existing is not None and (existing.slots, existing.description or "") == (pool.slots, pool.description):
                report["pools"]["unchanged"] += 1
                continue
            report["pools"]["created" if existing is None else "updated"] += 1
            Pool.create_or_update_pool(pool.name, pool.slots, pool.description, include_deferred=False, session=session)
        for var in settings.variables:
            existing = session.scalar(select(Variable).where(Variable.key == var.name))
            if existing is not None and existing.val == var.value:
                report["variables"]["unchanged"] += 1
                continue
            report["variables"]["created" if existing is None else "updated"] += 1
            Variable.set(var.name, var.value, session=session)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m devops_automation.settings_loader", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("file", nargs="?", default="airflow_settings.yaml")
    ap.add_argument("--check", action="store_true", help="only validate the file")
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.file)
    except (OSError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = (
        f"{len(settings.connections)} connections, {len(settings.pools)} pools, {len(settings.variables)} variables"
    )
    if args.check:
        print(f"{args.file}: ok ({counts})")
        return 0
    report = apply_settings(settings)
    for kind, c in report.items():
        print(f"{kind}: " + ", ".join(f"{k}={c.get(k, 0)}" for k in ("created", "updated", "unchanged")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
