"""What the DevLake pipeline watcher concludes from one look at the pipeline list (pure, no I/O).

The statuses are DevLake's, defined once with :mod:`devops_automation.hooks.devlake`: waiting and
running pipelines are still going, terminal ones are final, and failed and partial ones are failures
to report. Any other status is treated as still going (and reported as unknown) rather than guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devops_automation.hooks.devlake import FAILED_STATUSES, KNOWN_STATUSES, RUNNING, TERMINAL_STATUSES, parse_iso

#: A watched pipeline that no longer exists in DevLake (deleted while watched).
DELETED = "DELETED"


def compact(p: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe fields of a pipeline that events, alerts and summaries use."""
    return {
        "id": int(p["id"]),
        "blueprint_id": int(p.get("blueprintId") or 0),
        "name": p.get("name") or "",
        "status": str(p.get("status") or ""),
        "began_at": p.get("beganAt"),
        "finished_at": p.get("finishedAt"),
        "finished_tasks": p.get("finishedTasks"),
        "total_tasks": p.get("totalTasks"),
        "spent_seconds": p.get("spentSeconds"),
        "message": (p.get("message") or "")[:2000],
    }


@dataclass
class Assessment:
    """The state of the watched pipelines after one poll."""

    pipelines: dict[int, dict[str, Any]]
    new_failures: list[int] = field(default_factory=list)
    new_stale: list[int] = field(default_factory=list)
    unknown_status: list[int] = field(default_factory=list)

    @property
    def all_terminal(self) -> bool:
        return all(p["status"] in TERMINAL_STATUSES or p["status"] == DELETED for p in self.pipelines.values())


def assess(
    watched: Iterable[int],
    seen: Iterable[dict[str, Any]],
    *,
    now: dt.datetime,
    known_failures: Iterable[int] = (),
    known_stale: Iterable[int] = (),
    stale_after_s: float | None = None,
) -> Assessment:
    """Compare the watched ids with the pipelines listed (every page down to the oldest watched id).

    A watched id absent from the listing is DELETED (the listing covered its id range). A pipeline
    running (``beganAt`` set, not final) for longer than ``stale_after_s`` is stale; one waiting in
    the queue never is.
    """
    watched = {int(i) for i in watched}
    by_id = {int(p["id"]): p for p in seen if int(p["id"]) in watched}
    known_f, known_s = {int(i) for i in known_failures}, {int(i) for i in known_stale}
    result = Assessment(pipelines={})
    for pid in sorted(watched):
        raw = by_id.get(pid)
        if raw is None:
            result.pipelines[pid] = {
                "id": pid,
                "status": DELETED,
                "blueprint_id": 0,
                "name": "",
                "message": "pipeline no longer exists in DevLake",
            }
            continue
        p = compact(raw)
        result.pipelines[pid] = p
        status = p["status"]
        if status not in KNOWN_STATUSES:
            result.unknown_status.append(pid)
        if status in FAILED_STATUSES and pid not in known_f:
            result.new_failures.append(pid)
        began = parse_iso(p["began_at"])
        if (
            stale_after_s
            and status == RUNNING
            and began
            and pid not in known_s
            and (now - began).total_seconds() > stale_after_s
        ):
            result.new_stale.append(pid)
    return result
