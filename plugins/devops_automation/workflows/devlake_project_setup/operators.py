"""Operators of ``devlake_project_setup``: discover → sync scopes (per connection) → plan → ensure
projects (per batch of repositories) → summary.

Every operator reads DevLake first and writes only what differs, so a second run against an
unchanged DevLake makes no write calls, and a retried task finishes what its first try left undone.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from devops_automation.operators.devlake import DevLakeBaseOperator
from devops_automation.workflows.devlake_project_setup.plan import (
    DATA_SOURCE_PLUGINS,
    Repo,
    assign_project_names,
    blueprint_patch,
    compile_patterns,
    dora_metrics,
    previous_weekday_midnight,
    selected,
    variable_name,
    webhook_name,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


log = logging.getLogger(__name__)

#: Plugins whose scope configs carry DORA deployment patterns (devlake.md §5).
DORA_PATTERN_PLUGINS = {"github", "gitlab", "bitbucket", "azuredevops_go"}
ENTITIES = {"jira": ["TICKET", "CROSS"]}
DEFAULT_ENTITIES = ["CODE", "TICKET", "CODEREVIEW", "CROSS", "CICD"]


def scope_full_name(plugin: str, scope: dict[str, Any]) -> str:
    """A human-readable full name of a stored scope (the include/exclude patterns match on it)."""
    for key in ("fullName", "pathWithNamespace", "full_name", "bitbucketId", "name"):
        if scope.get(key):
            return str(scope[key])
    from devops_automation.hooks.devlake import scope_id

    return scope_id(plugin, scope)


class DevLakeDiscoverConnectionsOperator(DevLakeBaseOperator):
    """Every connection of every data-source plugin DevLake has (optionally only ``plugins``).

    Returns ``[{"plugin", "connection_id", "connection_name"}]`` for the mapped sync tasks.
    """

    template_fields: Sequence[str] = ("plugins",)

    def __init__(self, *, plugins: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugins = plugins

    def execute(self, context: Context) -> list[dict[str, Any]]:
        hook = self.hook
        self.log.info("DevLake %s", hook.version())
        available = hook.plugins()
        wanted = [p for p in (self.plugins or DATA_SOURCE_PLUGINS) if p]
        unknown = sorted(set(wanted) - set(DATA_SOURCE_PLUGINS))
        if unknown:
            raise ValueError(f"plugins {unknown} are not supported; choose from {', '.join(DATA_SOURCE_PLUGINS)}")
        found = []
        for plugin in wanted:
            if plugin not in available:
                self.log.info("plugin %s is not loaded in this DevLake", plugin)
                continue
            conns = hook.connections(plugin)
            if not conns:
                self.log.info("plugin %s has no connections", plugin)
                continue
            found += [
                {"plugin": plugin, "connection_id": int(c["id"]), "connection_name": c.get("name", "")} for c in conns
            ]
        self.log.info(
            "found %d connections: %s", len(found), ", ".join(f"{c['plugin']}#{c['connection_id']}" for c in found)
        )
        return found


class DevLakeSyncScopesOperator(DevLakeBaseOperator):
    """One connection: store new remote repositories as scopes and make sure they have a scope config.

    New scopes are written in batches with ``PUT .../scopes``; a scope config named
    ``devops-<plugin>-<connection id>`` is created (with the DORA patterns) only when the connection has
    none, and attached to scopes that have no config (never replacing one chosen by hand).
    Returns ``{"connection", "repos", "counts"}``; ``repos`` are all selected scopes (new and stored).
    """

    template_fields: Sequence[str] = ("connection", "include", "exclude", "dora_patterns", "dry_run")
    batch_size = 100

    def __init__(
        self,
        *,
        connection: dict[str, Any],
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        dora_patterns: dict[str, str] | None = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection = connection
        self.include = include
        self.exclude = exclude
        self.dora_patterns = dora_patterns
        self.dry_run = dry_run

    def _scope_config(self, plugin: str, cid: int, stored: list[dict[str, Any]], counts: Counter[str]) -> int | None:
        hook = self.hook
        configs = hook.scope_configs(plugin, cid)
        name = f"devops-{plugin}-{cid}"
        if configs:
            by_name = {c.get("name"): c for c in configs}
            if name in by_name:
                return int(by_name[name]["id"])
            used = Counter(s["scope"].get("scopeConfigId") for s in stored if s["scope"].get("scopeConfigId"))
            return int(used.most_common(1)[0][0]) if used else int(configs[0]["id"])
        body: dict[str, Any] = {"name": name, "entities": ENTITIES.get(plugin, DEFAULT_ENTITIES)}
        if plugin in DORA_PATTERN_PLUGINS:
            body.update({k: v for k, v in (self.dora_patterns or {}).items() if v is not None})
        counts["scope_configs_created"] += 1
        if self.dry_run:
            self.log.info("[dry run] would create scope config %s: %s", name, body)
            return None
        return int(hook.create_scope_config(plugin, cid, body)["id"])

    def execute(self, context: Context) -> dict[str, Any]:
        from devops_automation.hooks.devlake import scope_id

        plugin, cid = self.connection["plugin"], int(self.connection["connection_id"])
        include, exclude = compile_patterns(self.include, "include"), compile_patterns(self.exclude, "exclude")
        hook = self.hook
        counts: Counter[str] = Counter()
        stored = list(hook.scopes(plugin, cid))
        stored_ids = {scope_id(plugin, s["scope"]): s["scope"] for s in stored}
        remote = [e for e in hook.remote_scopes(plugin, cid) if e.get("data")]
        if not remote and not stored:
            self.log.warning(
                "%s connection %s (%s) has no remote repositories", plugin, cid, self.connection.get("connection_name")
            )
        new = [
            e
            for e in remote
            if selected(e.get("fullName") or e.get("name") or "", include, exclude) and str(e["id"]) not in stored_ids
        ]
        config_id = self._scope_config(plugin, cid, stored, counts)
        to_put = [{**e["data"], "scopeConfigId": config_id} if config_id else dict(e["data"]) for e in new]
        unattached = [
            dict(s)
            for sid, s in stored_ids.items()
            if not s.get("scopeConfigId") and selected(scope_full_name(plugin, s), include, exclude)
        ]
        if config_id:
            to_put += [{**s, "scopeConfigId": config_id} for s in unattached]
        counts["scopes_created"] = len(new)
        counts["scopes_attached"] = len(unattached) if config_id else 0
        for e in new:
            self.log.info("%s new scope: %s", "[dry run]" if self.dry_run else "+", e.get("fullName") or e.get("name"))
        if not self.dry_run:
            for i in range(0, len(to_put), self.batch_size):
                hook.put_scopes(plugin, cid, to_put[i : i + self.batch_size])
        repos = []
        for e in new:
            repos.append(
                Repo(
                    plugin,
                    cid,
                    self.connection.get("connection_name", ""),
                    str(e["id"]),
                    e.get("fullName") or e.get("name") or str(e["id"]),
                    e.get("name") or str(e["id"]),
                )
            )
        for sid, s in stored_ids.items():
            full = scope_full_name(plugin, s)
            if selected(full, include, exclude):
                repos.append(
                    Repo(plugin, cid, self.connection.get("connection_name", ""), sid, full, str(s.get("name") or full))
                )
        self.log.info("%s#%s: %d repositories, %s", plugin, cid, len(repos), dict(counts))
        return {"connection": self.connection, "repos": [r.as_dict() for r in repos], "counts": dict(counts)}


class DevLakePlanProjectsOperator(DevLakeBaseOperator):
    """Name every repository's project (unique, stable) and cut the work into batches.

    Reads DevLake's projects (with their blueprints) and webhook connections once, so the batches
    carry everything the ensure step needs and an unchanged repository costs no further call.
    """

    template_fields: Sequence[str] = ("synced", "name_template", "batch_size")

    def __init__(self, *, synced: Any, name_template: str = "{full_name}", batch_size: int = 25, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.synced = synced
        self.name_template = name_template
        self.batch_size = batch_size

    def execute(self, context: Context) -> list[dict[str, Any]]:
        results = [r for r in (self.synced or []) if r]  # a failed connection's mapped XCom is missing
        repos = [Repo(**d) for r in results for d in r["repos"]]
        hook = self.hook
        projects = {p["name"]: p for p in hook.projects()}
        webhooks = {w["name"]: int(w["id"]) for w in hook.webhook_connections()}
        owners: dict[str, str] = {}
        for name, p in projects.items():
            conns = [
                c for c in ((p.get("blueprint") or {}).get("connections") or []) if c.get("pluginName") != "webhook"
            ]
            if len(conns) == 1 and len(conns[0].get("scopes") or []) == 1:
                c = conns[0]
                owners[name] = f"{c['pluginName']}:{int(c['connectionId'])}:{c['scopes'][0]['scopeId']}"
        names = assign_project_names(repos, self.name_template, owners)
        items = []
        for repo in sorted(repos, key=lambda r: r.key):
            name = names[repo.key]
            project = projects.get(name)
            items.append(
                {
                    "repo": repo.as_dict(),
                    "project": name,
                    "existing": {"metrics": project.get("metrics"), "blueprint": project.get("blueprint")}
                    if project
                    else None,
                    "webhook_id": webhooks.get(webhook_name(name)),
                }
            )
        size = max(1, int(self.batch_size))
        batches = [{"items": items[i : i + size]} for i in range(0, len(items), size)]
        self.log.info("%d repositories in %d batches of up to %d", len(items), len(batches), size)
        return batches


class DevLakeEnsureProjectsOperator(DevLakeBaseOperator):
    """A batch of repositories: each gets its project (DORA on), webhook connection and blueprint.

    Per repository: create the project when missing (DevLake creates its blueprint), create and link a
    webhook connection (its API key goes to a masked Variable, never to a log or XCom), and PATCH the
    blueprint only where it differs: exactly this repository's scope, hand-added connections kept,
    ``isManual``, ``enable`` and ``timeAfter`` = the ``time_after_weekday`` 00:00 before the run's
    logical date. One repository's failure does not stop the batch; the task fails at the end
    (so Airflow retries it) after pushing its report.
    """

    template_fields: Sequence[str] = ("batch", "is_manual", "time_after_weekday", "timezone", "dry_run")

    def __init__(
        self,
        *,
        batch: dict[str, Any],
        is_manual: bool = True,
        time_after_weekday: str = "saturday",
        timezone: str = "UTC",
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.is_manual = is_manual
        self.time_after_weekday = time_after_weekday
        self.timezone = timezone
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        anchor = context.get("logical_date") or context.get("data_interval_end") or context["dag_run"].run_after
        time_after = previous_weekday_midnight(anchor, self.timezone, self.time_after_weekday)
        report: dict[str, Any] = {"results": [], "time_after": time_after.isoformat()}
        for item in self.batch["items"]:
            repo = Repo(**item["repo"])
            try:
                outcome, blueprint_id = self._ensure(item, repo, time_after)
                report["results"].append(
                    {
                        "project": item["project"],
                        "connection": f"{repo.plugin}#{repo.connection_id}",
                        "outcome": outcome,
                        "blueprint_id": blueprint_id,
                    }
                )
            except Exception as exc:  # noqa: BLE001 - one repository must not stop the batch
                self.log.error("project %s (%s): %s", item["project"], repo.full_name, exc)
                report["results"].append(
                    {
                        "project": item["project"],
                        "connection": f"{repo.plugin}#{repo.connection_id}",
                        "outcome": "failed",
                        "error": str(exc)[:500],
                    }
                )
        failed = [r for r in report["results"] if r["outcome"] == "failed"]
        context["ti"].xcom_push(key="report", value=report)
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(report['results'])} projects failed: "
                + "; ".join(f"{r['project']}: {r['error']}" for r in failed[:5])
            )
        return report

    def _ensure(self, item: dict[str, Any], repo: Repo, time_after: Any) -> tuple[str, int | None]:
        hook, name = self.hook, item["project"]
        existing = item.get("existing")
        outcome = "unchanged"
        if existing is None:
            if self.dry_run:
                self.log.info("[dry run] would create project %s for %s", name, repo.full_name)
                return "created", None
            try:
                created = hook.create_project(name, f"{repo.plugin} {repo.full_name}", dora_metrics(None))
            except Exception as exc:
                if "already exists" not in str(exc):
                    raise
                created = hook.project(name)  # an earlier try created it
            existing = {"metrics": created.get("metrics"), "blueprint": created.get("blueprint")}
            outcome = "created"
        else:
            metrics = dora_metrics(existing.get("metrics"))
            if metrics is not None:
                outcome = "updated"
                if not self.dry_run:
                    hook.update_project(
                        name, {"name": name, "description": f"{repo.plugin} {repo.full_name}", "metrics": metrics}
                    )
        webhook_id = item.get("webhook_id")
        if webhook_id is None:
            outcome = outcome if outcome == "created" else "updated"
            if self.dry_run:
                self.log.info("[dry run] would create webhook connection %s", webhook_name(name))
            else:
                webhook_id = self._create_webhook(name)
        blueprint = existing.get("blueprint") or {}
        if not blueprint.get("id"):
            raise RuntimeError(f"project {name} has no blueprint in DevLake")
        patch = blueprint_patch(blueprint, repo, webhook_id, time_after, bool(self.is_manual))
        if patch:
            outcome = outcome if outcome == "created" else "updated"
            self.log.info(
                "%sPATCH blueprint %s of %s: %s",
                "[dry run] " if self.dry_run else "",
                blueprint["id"],
                name,
                sorted(patch),
            )
            if not self.dry_run:
                hook.update_blueprint(int(blueprint["id"]), patch)
        return outcome, int(blueprint["id"])

    def _create_webhook(self, project: str) -> int:
        from airflow.sdk import Variable

        name = webhook_name(project)
        try:
            created = self.hook.create_webhook_connection(name)
        except Exception as exc:
            if "already exists" not in str(exc):
                raise
            return next(int(w["id"]) for w in self.hook.webhook_connections() if w.get("name") == name)
        key = ((created.get("apiKey") or {}).get("apiKey")) or ""
        if key:
            Variable.set(
                variable_name(project),
                key,
                description=f"DevLake webhook API key of project {project} (shown once by DevLake)",
            )
        return int(created["id"])


class DevLakeSetupSummaryOperator(DevLakeBaseOperator):
    """The run's last step: a per-connection summary, a Telegram alert only when something failed
    (sent once per run, however often this task is retried), optionally the blueprints triggered, and
    the task fails when anything upstream failed so the run shows it.
    """

    template_fields: Sequence[str] = (
        "connections",
        "synced",
        "batches",
        "reports",
        "trigger_blueprints",
        "dry_run",
        "telegram_conn_id",
    )

    def __init__(
        self,
        *,
        connections: Any,
        synced: Any,
        batches: Any,
        reports: Any,
        trigger_blueprints: bool = False,
        dry_run: bool = False,
        telegram_conn_id: str | None = "telegram_default",
        **kwargs: Any,
    ) -> None:
        """``connections``, ``synced``, ``batches`` and ``reports`` are the outputs (XComArgs) of
        discover, sync (mapped), plan and ensure (mapped, key ``report``); None where a step failed."""
        super().__init__(**kwargs)
        self.connections = connections
        self.synced = synced
        self.batches = batches
        self.reports = reports
        self.trigger_blueprints = trigger_blueprints
        self.dry_run = dry_run
        self.telegram_conn_id = telegram_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        discovered = self.connections
        connections = discovered or []
        synced = [r for r in _as_list(self.synced) if r]
        batches = self.batches
        reports = [r for r in _as_list(self.reports) if r]
        per = summarise(synced, reports, connections)
        failures = [
            (r["project"], r.get("error", "")) for rep in reports for r in rep["results"] if r["outcome"] == "failed"
        ]
        failed_connections = [k for k, v in per.items() if v.get("sync_failed")]
        if discovered is None:
            failures.append(("(all)", "discovering DevLake's connections failed: see the task discover_connections"))
        elif batches is None:
            failures.append(("(all)", "planning the projects failed: see the task plan_projects"))
        elif len(reports) < len(batches):
            failures.append(
                ("(some)", f"{len(batches) - len(reports)} ensure_projects batch(es) failed before reporting")
            )
        lines = [f"{'connection':28} {'created':>8} {'updated':>8} {'unchanged':>10} {'failed':>7} {'new scopes':>11}"]
        for key, c in per.items():
            status = "SYNC FAILED" if c.get("sync_failed") else ""
            lines.append(
                f"{key:28} {c.get('created', 0):8} {c.get('updated', 0):8} {c.get('unchanged', 0):10} "
                f"{c.get('failed', 0):7} {c.get('scopes_created', 0):11} {status}"
            )
        self.log.info("DevLake project setup%s:\n%s", " (dry run)" if self.dry_run else "", "\n".join(lines))
        triggered = []
        if self.trigger_blueprints and not self.dry_run:
            for rep in reports:
                for r in (rep or {}).get("results", []):
                    if r.get("blueprint_id") and r["outcome"] != "failed":
                        triggered.append(self.hook.trigger_blueprint(int(r["blueprint_id"])).get("id"))
            self.log.info("triggered %d blueprints", len(triggered))
        summary = {
            "connections": per,
            "failed_projects": len(failures),
            "failed_connections": failed_connections,
            "triggered_pipelines": triggered,
        }
        totals = Counter()
        for c in per.values():
            totals.update(c)
        note = (
            f"{'Dry run: ' if self.dry_run else ''}projects created {totals['created']}, updated {totals['updated']}, "
            f"unchanged {totals['unchanged']}, failed {totals['failed']}; new scopes {totals['scopes_created']}"
            + (f"; connections that failed to sync: {', '.join(failed_connections)}" if failed_connections else "")
            + (f"; {len(triggered)} blueprints triggered" if triggered else "")
        )
        from devops_automation.hooks.airflow_api import set_run_note

        set_run_note(context, note)
        if failures or failed_connections:
            self._alert(context, per, failures, failed_connections)
            raise RuntimeError(
                f"DevLake setup incomplete: {len(failed_connections)} connection(s) failed to sync, "
                f"{len(failures)} project(s) failed"
            )
        return summary

    def _alert(
        self, context: Context, per: dict[str, Any], failures: list[tuple[str, str]], failed_connections: list[str]
    ) -> None:
        if not self.telegram_conn_id:
            return
        from devops_automation.messaging import escape_html
        from devops_automation.notifiers.telegram import send_telegram_once

        run_id = context["run_id"]
        lines = [f"<b>DevLake project setup failed</b> ({escape_html(run_id)})"]
        lines += [f"connection <code>{escape_html(c)}</code>: scope sync failed" for c in failed_connections]
        lines += [f"project <code>{escape_html(p)}</code>: {escape_html(e[:300])}" for p, e in failures[:30]]
        if len(failures) > 30:
            lines.append(f"... and {len(failures) - 30} more")
        try:
            send_telegram_once(
                "\n".join(lines),
                dedup_key=f"devlake_project_setup:{run_id}:failures",
                telegram_conn_id=self.telegram_conn_id,
            )
        except Exception as exc:  # noqa: BLE001 - the failure itself is what the run reports
            self.log.error("could not send the Telegram alert: %s", exc)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return list(value)


def summarise(
    sync_results: list[dict[str, Any] | None],
    ensure_reports: list[dict[str, Any] | None],
    connections: list[dict[str, Any]],
) -> dict[str, Any]:
    """created / updated / unchanged / failed per connection, from the mapped tasks' outputs."""
    per: dict[str, Counter[str]] = {f"{c['plugin']}#{c['connection_id']}": Counter() for c in connections or []}
    synced = {f"{r['connection']['plugin']}#{r['connection']['connection_id']}" for r in sync_results or [] if r}
    for key in per:
        if key not in synced:
            per[key]["sync_failed"] += 1
    for rep in ensure_reports or []:
        for r in (rep or {}).get("results", []):
            per.setdefault(r["connection"], Counter())[r["outcome"]] += 1
    for r in sync_results or []:
        if r:
            key = f"{r['connection']['plugin']}#{r['connection']['connection_id']}"
            per[key]["scopes_created"] += r["counts"].get("scopes_created", 0)
    return {k: dict(v) for k, v in sorted(per.items())}
