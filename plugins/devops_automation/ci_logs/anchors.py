"""Failed-command anchors: the line where a CI system says that a command or step failed, and where
that command's own output starts.

Many failures never print the word "error" (a linter's findings list, a ``git diff --exit-code``
check, a test runner's summary in its own words), but every CI system says, right after the
command's output, that the command failed. The output just before that marker, back to the
command's echo (``$ cmd``, ``+ cmd``) or the step's start, is what explains the failure most of the
time, so the excerpt keeps its tail ahead of generic error signals.

Markers (matched on cleaned lines, see :func:`failure_marker`):

==================  ===============================================================================
Travis CI           ``The command "…" exited with N.`` / ``… failed and exited with N``
GitHub Actions      ``##[error]Process completed with exit code N.`` (also ``Error: Process completed …``)
GitLab CI           ``ERROR: Job failed: exit code N`` (the output is the last user section before it)
Jenkins             ``ERROR: script returned exit code N``, ``Build step '…' marked build as failure``
CircleCI            ``Exited with code exit status N``, ``CircleCI received exit code N``
Buildkite           ``🚨 Error: The command exited with status N``, ``user command error: exit status N``
Azure Pipelines     ``##[error]Bash exited with code 'N'.``, ``##[error]Script failed with exit code: N``,
                    ``##[error]The process '…' failed with exit code N``
Drone / Woodpecker  ``exit status N`` / ``exit code N`` alone on a line
Taskcluster         ``Unsuccessful task run with exit code: N``, ``[taskcluster:error] …``
==================  ===============================================================================

Every marker contains one of the prefilter keywords of :mod:`.signals` ("exit", "fail", "err"), so
only candidate lines need to be tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: (CI system, pattern on the cleaned line). The first that matches names the system.
MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("travis", re.compile(r'^The command ".{1,2000}" (?:failed and )?exited with -?[1-9]\d*\.?\s*$')),
    ("github", re.compile(r"^(?:##\[error\]|Error: )Process completed with exit code [1-9]\d*\.?\s*$")),
    ("gitlab", re.compile(r"^(?:ERROR: )?Job failed(?: \(system failure\))?: .{1,300}$")),
    (
        "jenkins",
        re.compile(
            r"^(?:ERROR: )?script returned exit code [1-9]\d*\s*$|^Build step '.{1,200}' marked build as failure\s*$"
        ),
    ),
    ("circleci", re.compile(r"^Exited with (?:code )?(?:exit status )?[1-9]\d*\s*$|CircleCI received exit code [1-9]")),
    (
        "buildkite",
        re.compile(
            r"Error: The command exited with status -?[1-9]\d*\s*$|^user command error: exit status [1-9]\d*\s*$"
        ),
    ),
    (
        "azure",
        re.compile(
            r"^##\[error\](?:(?:Bash|PowerShell|Cmd|Script|Python) (?:exited|failed) with (?:exit )?code:? '?[1-9]\d*'?"
            r"|The process '.{1,300}' failed with exit code [1-9]\d*)"
        ),
    ),
    ("drone", re.compile(r"^(?:\[[\w .:-]{1,60}\] ?)?exit (?:status|code) [1-9]\d*\s*$")),
    (
        "taskcluster",
        re.compile(
            r"^(?:\[taskcluster[^\]]*\] )?Unsuccessful task run with exit code: [1-9]|^\[taskcluster:error\] \S"
        ),
    ),
)

_MARKER_HINT = re.compile(r"exit|fail|taskcluster:error", re.I)

#: Where a command's own output starts: the echo of the command (``$ cmd`` by Travis, GitLab and
#: Buildkite, ``+ cmd`` by ``sh -x`` in Jenkins and Drone), a GitHub/Azure step start, a Jenkins
#: ``sh`` step, a Buildkite group header, CircleCI's step shell line.
COMMAND_START = re.compile(
    r"^(?:\$ \S|\+ \S|##\[group\]Run |##\[endgroup\]|##\[section\]Starting: |=+ Starting Command Output =+"
    r"|\[Pipeline\] (?:sh|bat|powershell|pwsh)\s*$|(?:~~~|---|\+\+\+) \S|#!/bin/(?:ba)?sh -eo pipefail"
    r"|travis_fold:end:|\[command\]|section_start:\d+:)"
)


@dataclass(frozen=True)
class Marker:
    """A failed-command marker: the CI system that printed it."""

    system: str


def failure_marker(line: str) -> Marker | None:
    """The CI system whose "command failed" marker ``line`` (cleaned) is, if any."""
    if len(line) > 2500 or not _MARKER_HINT.search(line):
        return None
    text = line.strip()
    for system, rx in MARKERS:
        if rx.search(text):
            return Marker(system)
    return None


def is_command_start(line: str) -> bool:
    """Whether a cleaned line starts a command's output (its echo, a step or group start)."""
    return bool(COMMAND_START.match(line))


__all__ = ["COMMAND_START", "MARKERS", "Marker", "failure_marker", "is_command_start"]
