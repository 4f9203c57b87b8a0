"""The sandbox model's own answer to a CI failure-analysis prompt (``ci_failure_triage``'s prompts).

A stand-in for a model that read the prompt: the answer is built from what the request contains and
nothing else. It reads

* the log excerpt between ``<<<LOG_EXCERPT id=…>>>`` and ``<<<END_LOG_EXCERPT id=…>>>`` (kept lines
  as ``<number>: <text>``, gaps as ``… (n lines)``);
* the job facts (``- job_name: …``, ``- failure_reason: …``);
* the rule-based classifier's suggestion the prompt carries (``suggests: <category> — <explanation>``,
  the explanation quoting the line it relied on);
* the categories it may answer with (the schema's enum, else the system prompt's list).

and answers with its own reading of the excerpt (a few patterns per kind of failure):

* ``category``: the suggestion when the excerpt bears it out, else its own reading, else ``unknown``;
* ``evidence_lines``: the decisive line (the one the suggestion quotes, else the first strong line of
  that kind), then the other lines of the same kind, at most :data:`MAX_EVIDENCE`, all numbers that
  appear before a colon in the excerpt;
* ``root_cause`` and ``fix_steps``: reworded from those lines (the file and line of a compiler error,
  the failing test and its values, the command the job ran), not copied from the suggestion;
* ``is_transient``: only for infrastructure or timeout failures whose lines name a network, registry,
  disk or runner problem (never for compile, test, lint or configuration failures);
* ``confidence``: 0.3 to 0.85 (never 1): higher when the suggestion and its own reading agree.

The sandbox stands for a remote service, so this module does not import the ``devops_automation``
package (the sandbox runs without it): its patterns are its own, and tests compare its answers with
the package's heuristic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: the model name the sandbox reports for the answers it wrote itself (scripted answers report the requested model)
SANDBOX_MODEL = "sandbox"
MAX_EVIDENCE = 5
ANSWER_KEYS = ("category", "root_cause", "fix_steps", "evidence_lines", "is_transient", "confidence")
DEFAULT_CATEGORIES = (
    "compile_error",
    "test_failure",
    "dependency",
    "infrastructure",
    "timeout",
    "configuration",
    "lint",
    "permission",
    "unknown",
)
NEVER_TRANSIENT = frozenset({"compile_error", "test_failure", "lint", "configuration"})

_BLOCK = re.compile(r"<<<LOG_EXCERPT id=([^>\s]+)>>>\n(.*?)\n?<<<END_LOG_EXCERPT id=\1>>>", re.S)
_LINE = re.compile(r"^(\d+): ?(.*)$")
_HINT = re.compile(r"suggests: ([a-z_]+) — (.+)$", re.M)
_FACT = re.compile(r"^- ([a-z_]+): (.+)$", re.M)
_ENUM_LINE = re.compile(r"`category`: one of ([a-z_, ]+)\.")


@dataclass(frozen=True)
class _Rule:
    category: str
    pattern: re.Pattern[str]
    strength: int


def _rx(pattern: str, flags: int = re.I) -> re.Pattern[str]:
    return re.compile(pattern, flags)


#: the sandbox model's reading: which lines say what kind of failure, and how clearly (3 = decisive)
RULES: tuple[_Rule, ...] = (
    _Rule("test_failure", _rx(r"^E\s+\w*(Error|Exception)\b", 0), 3),
    _Rule("test_failure", _rx(r"\bAssertionError\b|\bassertion failed\b|\bexpected:? .+\b(got|but was|actual)\b"), 3),
    _Rule("test_failure", _rx(r"^FAILED \S+|^--- FAIL: |\bFailure in test\b|Tests run: .*(Failures|Errors): [1-9]"), 2),
    _Rule("test_failure", _rx(r"^\s*=*\s*\d+ failed\b|^>\s+assert\b|\bFAIL \d+ \w+"), 1),
    _Rule(
        "compile_error",
        _rx(r"^[\w./\\-]+\.\w+:\d+(:\d+)?:\s*(error\b|undefined\b|cannot\b|syntax error|expected\b)"),
        3,
    ),
    _Rule(
        "compile_error",
        _rx(
            r"\berror(\[E\d+\])?:|\berror TS\d+|cannot find symbol|COMPILATION ERROR|\bSyntaxError:|undefined reference"
        ),
        2,
    ),
    _Rule(
        "dependency",
        _rx(
            r"No matching distribution|Could not find a version|\bERESOLVE\b|Could not resolve dependencies"
            r"|\bModuleNotFoundError\b|unknown revision|npm ERR! 404|version solving failed|unable to resolve dependenc"
        ),
        3,
    ),
    _Rule(
        "infrastructure",
        _rx(
            r"connection refused|connection reset|could not resolve host|name resolution|TLS handshake timeout"
            r"|i/o timeout|failed to pull image|no space left on device|out of memory|\bOOMKilled\b"
            r"|system failure|runner .*(lost|shut ?down)|503 Service Unavailable|502 Bad Gateway|too many requests"
        ),
        3,
    ),
    _Rule(
        "timeout", _rx(r"timed out|deadline exceeded|execution took longer than|maximum execution time|\btimeout\b"), 2
    ),
    _Rule(
        "lint",
        _rx(r"would reformat|\b\d+ problems? \(|\bFound \d+ errors?\b|golangci-lint|\beslint\b|\bflake8\b|\bruff\b"),
        2,
    ),
    _Rule(
        "permission",
        _rx(r"permission denied|403 Forbidden|401 Unauthorized|access denied|not authorized|authentication failed"),
        3,
    ),
    _Rule(
        "configuration",
        _rx(r"command not found|No such file or directory|invalid configuration|unknown (flag|option)|is not set\b"),
        2,
    ),
)
#: lines that say something failed without saying what (used only when nothing else speaks)
GENERIC = _rx(r"\berror\b|\bfailed\b|\bfatal\b|exit (code|status) [1-9]")
#: the runner's own closing line: never the cause
JOB_END = _rx(r"^(ERROR: )?Job failed\b|^Cleaning up |^section_(start|end):|^Uploading artifacts")
TRANSIENT = _rx(
    r"connection refused|connection reset|could not resolve host|name resolution|TLS handshake|i/o timeout"
    r"|failed to pull image|no space left|system failure|runner .*(lost|shut ?down)|50[234] |too many requests"
)
_COMMAND = re.compile(r"^\$ (.+)$")
_FILE_LINE = re.compile(r"^([\w./\\-]+\.\w+):(\d+)(?::\d+)?:\s*(.+)$")
_ASSERT = re.compile(r"assert (.+?) == (.+?)\s*$")


@dataclass(frozen=True)
class _Hit:
    line: int
    text: str
    category: str
    strength: int


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int = 200) -> str:
    text = _collapse(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_excerpt(prompt: str) -> dict[int, str] | None:
    """Kept lines of the log excerpt in the prompt (number -> text), or None when it has no excerpt."""
    m = _BLOCK.search(prompt)
    if not m:
        return None
    lines: dict[int, str] = {}
    for raw in m.group(2).splitlines():
        lm = _LINE.match(raw)
        if lm:
            lines[int(lm.group(1))] = lm.group(2)
    return lines


def _hint(prompt: str) -> tuple[str | None, str]:
    m = _HINT.search(prompt)
    return (m.group(1), _collapse(m.group(2))) if m else (None, "")


def _facts(prompt: str) -> dict[str, str]:
    head = _BLOCK.split(prompt, maxsplit=1)[0]
    return {k: v.strip() for k, v in _FACT.findall(head) if k != "log"}


def _hits(lines: dict[int, str]) -> list[_Hit]:
    out = []
    for n, text in lines.items():
        if JOB_END.search(text.strip()):
            continue
        best = None
        for rule in RULES:
            if rule.pattern.search(text.strip()) and (best is None or rule.strength > best.strength):
                best = rule
        if best is not None:
            out.append(_Hit(n, text.strip(), best.category, best.strength))
    return out


def _quoted(lines: dict[int, str], explanation: str) -> int | None:
    """The excerpt line the classifier's explanation quotes (the longest that appears in it)."""
    found: tuple[int, int] | None = None
    for n, text in lines.items():
        t = _collapse(text)[:150].rstrip("…")
        if len(t) >= 8 and t in explanation and (found is None or len(t) > found[1]):
            found = (n, len(t))
    return found[0] if found else None


def _command_before(lines: dict[int, str], line: int) -> str | None:
    cmd = None
    for n, text in lines.items():
        if n >= line:
            break
        m = _COMMAND.match(text.strip())
        if m:
            cmd = m.group(1).strip()
    return cmd


def _test_name(hits: Sequence[_Hit]) -> str | None:
    for h in hits:
        for rx in (r"^FAILED (\S+)", r"^--- FAIL: (\S+)", r"Failure in test (\S+)"):
            m = re.search(rx, h.text)
            if m:
                return m.group(1)
    return None


def _test_command(test: str | None, facts: dict[str, str], cmd: str | None) -> str:
    if test and "::" in test:
        return f"pytest {test}"
    if test and re.fullmatch(r"Test\w+", test):
        return f"go test -run '^{test}$' ./..."
    if test and facts.get("job_name", "").startswith("dbt"):
        return f"dbt test --select {test}"
    return cmd or "the job's test command"


def _root_and_steps(
    category: str, decisive: _Hit, same: Sequence[_Hit], lines: dict[int, str], facts: dict[str, str]
) -> tuple[str, list[str]]:
    q, n = _clip(decisive.text), decisive.line
    cmd = _command_before(lines, n)
    if category == "test_failure":
        test = _test_name(same)
        where = f"Test {test}" if test else "A test"
        values = _ASSERT.search(decisive.text)
        detail = f": got {values.group(1)} where {values.group(2)} was expected" if values else ""
        root = f'{where} failed on line {n} of the log, "{q}"{detail}.'
        steps = [
            f"Reproduce it locally: {_test_command(test, facts, cmd)}",
            (
                "Compare the expected and the actual value and fix the code under test; change the test only if "
                "its expectation is outdated."
            ),
            "Push the fix and re-run the pipeline.",
        ]
    elif category == "compile_error":
        fm = _FILE_LINE.match(decisive.text)
        others = len([h for h in same if h.line != n])
        if fm:
            root = f'The build stops at a compiler error in {fm.group(1)} line {fm.group(2)}: "{_clip(fm.group(3))}".'
            first = f"Fix {fm.group(1)} line {fm.group(2)} ({_clip(fm.group(3), 100)})."
        else:
            root = f'The build stops at a compiler error on line {n} of the log: "{q}".'
            first = f"Fix the error reported on line {n} of the log."
        if others:
            more = "error follows" if others == 1 else "errors follow"
            root += f" {others} more compiler {more}, likely from the same change."
        steps = [
            first,
            f"Build locally with the job's command ({cmd}) until it compiles."
            if cmd
            else "Build locally until it compiles.",
            "If this code did not change, look for an API change in an upgraded dependency.",
        ]
    elif category == "dependency":
        root = f'A dependency could not be resolved or installed: "{q}" (line {n}).'
        steps = [
            "Check the package and version named in that line against the registry and the lock file.",
            "Pin a version that exists (or update the lock file) and push.",
            "If the registry was unreachable, retry the job once.",
        ]
    elif category == "infrastructure":
        root = f'The job failed outside the code, on the runner or its network: "{q}" (line {n}).'
        steps = [
            "Retry the job: nothing in the code caused this.",
            "If it fails the same way, check the runner, registry or service named in that line.",
        ]
    elif category == "timeout":
        root = f'The job ran out of time: "{q}" (line {n}).'
        steps = [
            f"Find the step that was running when time ran out (the lines before line {n}).",
            "Make it faster or split it; raise the time limit only if the work legitimately grew.",
        ]
    elif category == "lint":
        root = f'A lint or formatting check failed: "{q}" (line {n}).'
        steps = [
            f"Run the same check locally ({cmd}) and fix or reformat what it reports."
            if cmd
            else "Run the same check locally and fix or reformat what it reports.",
            "Commit the fixes and push.",
        ]
    elif category == "permission":
        root = f'The job was denied access: "{q}" (line {n}).'
        steps = [
            "Check the credentials the job uses (expiry, scopes, protected variables).",
            "Check the access rights on the resource named in that line.",
        ]
    elif category == "configuration":
        root = f'The job\'s configuration or environment is wrong: "{q}" (line {n}).'
        steps = [
            "Check the CI configuration, paths, variables and tool versions named in that line.",
            "Re-run the job after fixing it.",
        ]
    else:
        root = (
            f'The excerpt shows no recognisable error; the clearest failing line is "{q}" (line {n}), so the cause '
            "may lie before the excerpt."
        )
        steps = [
            f"Open the full job log and read the lines before line {n} for the first error.",
            "Re-run the job with verbose logging if the log does not say more.",
        ]
    return root, steps


def _categories(prompt: str, schema: dict[str, Any] | None) -> list[str]:
    enum = (((schema or {}).get("properties") or {}).get("category") or {}).get("enum")
    if isinstance(enum, list) and enum:
        return [str(c) for c in enum]
    m = _ENUM_LINE.search(prompt)
    return [c.strip() for c in m.group(1).split(",")] if m else list(DEFAULT_CATEGORIES)


def wants_analysis(schema: dict[str, Any] | None) -> bool:
    """Whether a response schema asks for exactly the failure analysis this module writes."""
    props = (schema or {}).get("properties")
    return isinstance(props, dict) and set(props) == set(ANSWER_KEYS)


def answer(prompt: str, system: str = "", schema: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The analysis of the log excerpt in ``prompt`` (the user messages), or None without an excerpt."""
    lines = read_excerpt(prompt)
    if not lines:
        return None
    categories = _categories(system + "\n" + prompt, schema)
    hint_category, explanation = _hint(prompt)
    facts = _facts(prompt)
    hits = _hits(lines)
    by_kind: dict[str, int] = {}
    for h in hits:
        by_kind[h.category] = by_kind.get(h.category, 0) + h.strength
    if hint_category in categories and hint_category != "unknown":
        category = hint_category
    elif by_kind:
        category = max(by_kind, key=lambda c: (by_kind[c], -min(h.line for h in hits if h.category == c)))
    else:
        category = "unknown"
    if category not in categories:
        category = "unknown" if "unknown" in categories else categories[0]
    same = [h for h in hits if h.category == category]
    quoted = _quoted(lines, explanation) if category == hint_category else None
    if quoted is not None:
        decisive = next((h for h in same if h.line == quoted), _Hit(quoted, lines[quoted].strip(), category, 1))
    elif same:
        top = max(h.strength for h in same)
        decisive = min((h for h in same if h.strength == top), key=lambda h: h.line)
    else:
        generic = [n for n, t in lines.items() if GENERIC.search(t) and not JOB_END.search(t.strip())]
        last = generic[0] if generic else max(lines)
        decisive = _Hit(last, lines[last].strip(), category, 0)
    evidence = [decisive.line] + [h.line for h in sorted(same, key=lambda h: h.line) if h.line != decisive.line]
    evidence = evidence[:MAX_EVIDENCE]
    root, steps = _root_and_steps(category, decisive, same, lines, facts)
    transient = category not in NEVER_TRANSIENT and any(
        TRANSIENT.search(lines[n]) for n in evidence if category in ("infrastructure", "timeout")
    )
    if category == "unknown":
        confidence = 0.3
    else:
        confidence = 0.45 + (0.2 if same else 0) + (0.15 if category == hint_category else 0)
        confidence += 0.05 if quoted is not None else 0
    return {
        "category": category,
        "root_cause": root,
        "fix_steps": steps,
        "evidence_lines": evidence,
        "is_transient": bool(transient),
        "confidence": round(min(confidence, 0.85), 2),
    }
