"""Messages for the ``ci_failure_triage`` DAG, and the fingerprint that recognises a recurring failure.

Pure Python (no Airflow, no client libraries). One pipeline gives one Slack message (fallback text +
Block Kit blocks) and one Telegram message (HTML parse mode), with one part per analysed job.

Why it looks like this:

* Every string that comes from a CI log or an LLM is untrusted. Slack text is escaped (``& < >``),
  so ``<!channel>``, ``<@U1>`` and ``<https://evil|click>`` arrive as plain text; backticks are
  swapped for a look-alike (U+02CB) so nothing can close or open a code block; ``@channel`` /
  ``@user`` get a word joiner after the ``@`` so neither platform turns them into mentions; control
  and bidi-override characters are dropped. Telegram text is HTML-escaped. Links are only built from
  ``http(s)`` URLs (the pipeline's and jobs' own), never from the untrusted text.
* Limits (Slack: header 150, section 3,000, 50 blocks and ~12k characters in all; Telegram: 4,096)
  are met by rendering each job at decreasing levels of detail: a job gets an equal share of what is
  left, and what a short job does not use goes to the next ones. At most :data:`MAX_JOBS_SHOWN`
  jobs are shown, then "+N more jobs".
* A needs-attention message (an e-mail the classifier rejected) says why: the rejection kind and
  the classifier's reason, with the sender and subject. Those come from the mail, so they are
  redacted (lazily imported ``ci_logs.redact``) before they are cut, and in Slack they stand in
  inline code, since mrkdwn has no escape for ``*``, ``_`` and ``~``.
* :func:`normalise_error` has its own rules instead of ``logs.normalize.norm_key``: fingerprints are
  stored, so they must not change when the log-excerpt code is tuned, and importing ``logs`` pulls
  in jinja2 and pydantic. ``messaging.html_to_mrkdwn`` is not used either: it decodes entities, which
  would turn escaped untrusted ``&lt;!channel&gt;`` back into live Slack markup.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devops_automation.messaging import TELEGRAM_TEXT_LIMIT, escape_html

MAX_JOBS_SHOWN = 10
SLACK_HEADER_LIMIT = 150
SLACK_SECTION_LIMIT = 3000
SLACK_MAX_BLOCKS = 50
SLACK_TOTAL_BUDGET = 11_000  # all block texts together (msg_blocks_too_long appears near 13k)
SLACK_FALLBACK_LIMIT = 3000
TELEGRAM_BUDGET = TELEGRAM_TEXT_LIMIT - 96  # raw HTML length, so the visible length is lower still
#: categories a plain retry never fixes: a message never calls them "likely transient", whatever the analysis said
NEVER_TRANSIENT = frozenset({"compile_error", "test_failure", "lint", "configuration"})

# ---- fingerprints ------------------------------------------------------------------------------
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_MASKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]"), ""),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d(?:[t ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:z|[+-]\d\d:?\d\d)?\b)?"), "<ts>"),
    (re.compile(r"<ts> [0-9a-f]{2}[eo][+ ]"), "<ts> "),  # GitLab's "<timestamp> 01O+" line prefix
    (
        re.compile(
            rf"\b(?:{_DAY},? +)?\d{{1,2}} {_MONTH}\.? \d{{4}}\b"
            rf"|\b(?:{_DAY},? +)?{_MONTH}\.? +\d{{1,2}}(?:,? \d{{4}})?\b"
        ),
        "<ts>",
    ),
    (re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"), "<ts>"),
    (re.compile(r"\b\d{1,2}:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:z|utc|[+-]\d\d:?\d\d))?\b"), "<ts>"),
    (
        re.compile(
            r"(?:/private)?/(?:tmp|var/folders|var/tmp|dev/shm)/[^\s'\"`:,;)\]}>]*|[a-z]:\\[^\s'\"]*\\temp\\[^\s'\":,;)]*"
        ),
        "<tmp>",
    ),
    (re.compile(r"/builds/[^/\s]+/\d+/"), "/builds/<runner>/"),
    (re.compile(r"\b(?:tmp|temp)[a-z0-9_]{5,}\b"), "<tmp>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (
        re.compile(
            r"\[?(?<![\w:.])(?=[0-9a-f:]*::|(?:[0-9a-f]{1,4}:){7})(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])\]?(?::\d+)?"
        ),
        "<ip>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b"), "<hex>"),
    (re.compile(r"(?<![a-z0-9])(?=[a-z0-9]*\d)(?=[0-9]*[a-f])[0-9a-f]{6,}(?![a-z0-9])|\b[0-9a-f]{16,}\b"), "<hex>"),
    (re.compile(r"(?<![a-z0-9])(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{10,}(?![a-z0-9])"), "<id>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|msec|s|sec|secs|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b"), "<dur>"),
    (re.compile(r"<dur>(?:,?\s*(?:and\s+)?<dur>)+"), "<dur>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"<n>(?:[.:]<n>)+"), "<n>"),
]


def normalise_error(text: str) -> str:
    """``text`` with its volatile parts masked: timestamps, dates, durations, UUIDs, hex ids/SHAs and
    addresses, temporary paths, GitLab runner build dirs, IPs and ports, and then every number (line
    and column positions, counts, ids). Lower-cased, whitespace collapsed. Two runs of the same error
    give the same string."""
    text = str(text or "").lower()
    for rx, repl in _MASKS:
        text = rx.sub(repl, text)
    return " ".join(text.split())


def fingerprint(project: str, job_name: str, first_error: str) -> str:
    """First 32 hex digits of the sha256 of (project, job name, normalised first error line)."""
    triple = [
        " ".join(str(project or "").lower().split()),
        " ".join(str(job_name or "").split()),
        normalise_error(first_error),
    ]
    return hashlib.sha256(json.dumps(triple, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


def _evidence(job: Mapping[str, Any]) -> list[tuple[Any, str]]:
    out = []
    for item in job.get("evidence") or job.get("evidence_lines") or []:
        if isinstance(item, Mapping):
            out.append((item.get("line"), str(item.get("text") or "")))
        elif isinstance(item, str):
            out.append((None, item))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((item[0], str(item[1] or "")))
    return out


def first_error_line(job: Mapping[str, Any]) -> str:
    """The text of the first non-blank evidence line, else the first non-blank line of the root cause."""
    for _, text in _evidence(job):
        if text.strip():
            return text.strip()
    for line in str(job.get("root_cause") or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


# ---- cleaning, escaping, links -----------------------------------------------------------------
_CTRL = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]|\x1b\\[[0-?]*[ -/]*[@-~]")
_MENTION = re.compile(r"(?<![\w.+-])([@＠])(?=[\w])")
_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`\\\x00-\x1f\x7f]+$", re.I)


def _clean(value: Any, limit: int | None = None, *, flat: bool = True) -> str:
    """Untrusted text made inert for both outputs (before the format's own escaping), then cut."""
    text = _CTRL.sub("", str(value if value is not None else "").replace("\t", "    "))
    text = " ".join(text.split()) if flat else text.rstrip()
    text = _MENTION.sub("\\1\u2060", text)
    return _cut(text, limit)


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def _safe_url(url: Any) -> str | None:
    url = str(url or "").strip()
    return url.replace("|", "%7C") if len(url) <= 2000 and _SAFE_URL.match(url) else None


def _sk(text: str) -> str:
    """Slack mrkdwn escaping of cleaned text; backticks become U+02CB so no code span can form."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "\u02cb")


def _plain(text: str) -> str:
    """For Slack ``plain_text`` (the header): no markup is parsed there, but angle brackets become
    look-alikes anyway, so nothing in it can ever read as ``<!channel>`` or a link."""
    return text.replace("<", "‹").replace(">", "›")


def _sk_link(url: Any, label: str) -> str:
    safe = _safe_url(url)
    return f"<{_sk(safe)}|{_sk(label).replace('|', '¦')}>" if safe else _sk(label)


def _tg_link(url: Any, label: str) -> str:
    safe = _safe_url(url)
    return f'<a href="{html.escape(safe, quote=True)}">{escape_html(label)}</a>' if safe else escape_html(label)


# ---- what a job says, at a level of detail ------------------------------------------------------
# (root cause chars, fix steps, chars per step, evidence lines, chars per evidence line, note chars);
# the root cause then grows into whatever room the chosen level leaves.
_LEVELS = [
    (2400, 5, 300, 3, 200, 300),
    (1200, 5, 200, 3, 160, 200),
    (600, 4, 160, 3, 140, 160),
    (400, 3, 140, 2, 120, 120),
    (260, 2, 120, 1, 110, 80),
    (160, 1, 100, 1, 90, 60),
    (100, 0, 0, 0, 0, 40),
    (0, 0, 0, 0, 0, 0),
]
_SOURCES = {"email": "via e-mail", "webhook": "via webhook", "manual": "manual run"}


def _confidence(value: Any) -> str | None:
    try:
        c = float(value)
    except (TypeError, ValueError):
        return None
    c = c * 100 if c <= 1 else c
    return f"{max(0, min(100, round(c)))}%"


def _retry_url(job: Mapping[str, Any], retried: str) -> str | None:
    url = _safe_url(job.get("job_url"))
    m = re.match(r"^(.*/-/jobs/)\d+/?$", url or "")
    return m.group(1) + retried if m and retried.isdigit() else None


def _job_facts(job: Mapping[str, Any], level: int | None, root: int | None = None) -> dict[str, Any]:
    """Cleaned (not yet escaped) parts of one job at a level of detail (None = the bare minimum, no
    link); ``root`` overrides the level's root cause length."""
    root_n, steps_n, step_n, ev_n, evlen_n, note_n = _LEVELS[level] if level is not None else (0, 0, 0, 0, 0, 0)
    root_n = root_n if root is None or level is None else root
    analyser = str(job.get("analyser") or "")
    note = _clean(job.get("analyser_note"), note_n) if note_n else ""
    model = _clean(job.get("model"), 60)
    tail = {
        "llm": f"analysed by LLM{f' ({model})' if model else ''}",
        "heuristic": "🧩 heuristic analysis (no LLM)",
        "heuristic_fallback": "🧩 heuristic fallback (the LLM answer was not usable)",
        "unavailable": "❔ analysis unavailable",
    }.get(analyser, f"analyser: {_clean(analyser, 40)}" if analyser else "")
    markers = [tail] if tail else []
    if note:
        markers.append(note)
    if job.get("skipped"):
        markers.append("⏭️ log analysis skipped")
    retried = _clean(job.get("retried_job_id"), 20)
    try:
        occurrences = int(job.get("occurrences") or 1)
    except (TypeError, ValueError):
        occurrences = 1
    steps = (
        [s for s in (job.get("fix_steps") or []) if str(s or "").strip()]
        if isinstance(job.get("fix_steps"), (list, tuple))
        else []
    )
    return {
        "name": _clean(job.get("job_name") or f"job {job.get('job_id') or '?'}", 80 if level is not None else 40),
        "url": job.get("job_url") if level is not None else None,
        "stage": _clean(job.get("stage"), 40),
        "category": _clean(job.get("category") or "unknown", 40),
        "transient": bool(job.get("is_transient")) and str(job.get("category") or "unknown") not in NEVER_TRANSIENT,
        "confidence": _confidence(job.get("confidence")) if level is not None else None,
        "root": _clean(job.get("root_cause"), root_n) if root_n else "",
        "steps": [_clean(s, step_n) for s in steps[:steps_n]],
        "more_steps": max(len(steps) - steps_n, 0) if steps_n else 0,
        "evidence": [
            (_clean(n, 8) if n is not None else "?", _clean(t, evlen_n, flat=False).replace("\n", " "))
            for n, t in _evidence(job)[:ev_n]
        ],
        "markers": markers,
        "retried": retried,
        "retried_url": _retry_url(job, retried) if retried and level is not None else None,
        "seen": occurrences if occurrences > 1 else 0,
    }


Render = Callable[[Mapping[str, Any], int | None, int | None], str]


def _fit(render: Render, job: Mapping[str, Any], budget: int) -> str:
    """The most detailed rendering of ``job`` within ``budget`` characters: the first level that fits,
    its root cause then lengthened (binary search) to use the room left."""
    full_root = len(_clean(job.get("root_cause")))
    for level, spec in enumerate(_LEVELS):
        text = render(job, level, None)
        if len(text) > budget:
            continue
        lo, hi = spec[0], min(full_root, spec[0] + budget - len(text))
        while lo < hi:  # the longest root cause that still fits
            mid = (lo + hi + 1) // 2
            candidate = render(job, level, mid)
            if len(candidate) <= budget:
                lo, text = mid, candidate
            else:
                hi = mid - 1
        return text
    return render(job, None, None)


def _fair(render: Render, jobs: Sequence[Mapping[str, Any]], total: int, cap: int) -> list[str]:
    """Water-filling: jobs that need less than an equal share get what they need, the others split
    the rest equally (each at most ``cap``)."""
    need = [len(render(job, 0, len(_clean(job.get("root_cause"))))) for job in jobs]
    budgets, left = [0] * len(jobs), total
    for k, i in enumerate(sorted(range(len(jobs)), key=need.__getitem__)):
        budgets[i] = min(cap, need[i], max(left, 0) // (len(jobs) - k))
        left -= budgets[i]
    return [_fit(render, job, budget) for job, budget in zip(jobs, budgets, strict=True)]


@dataclass(frozen=True)
class _Markup:
    """How one chat marks text up; every untrusted string goes through ``esc``."""

    esc: Callable[[str], str]
    link: Callable[[Any, str], str]
    bold: Callable[[str], str]
    code: Callable[[str], str]
    category: Callable[[str], str]
    pre: Callable[[str], str]
    first_marker: Callable[[str], str]
    emoji_in_link: bool


_SLACK = _Markup(
    esc=_sk,
    link=_sk_link,
    bold=lambda t: f"*{t}*",
    code=lambda t: f"`{t}`",
    category=lambda t: f"`{t}`",
    pre=lambda t: f"```{t}```",
    first_marker=lambda t: t,
    emoji_in_link=True,
)
_TELEGRAM = _Markup(
    esc=escape_html,
    link=_tg_link,
    bold=lambda t: f"<b>{t}</b>",
    code=lambda t: f"<code>{t}</code>",
    category=lambda t: f"<i>{t}</i>",
    pre=lambda t: f"<pre>{t}</pre>",
    first_marker=lambda t: f"<i>{t}</i>",
    emoji_in_link=False,
)


def _job_text(m: _Markup, job: Mapping[str, Any], level: int | None, root: int | None = None) -> str:
    f = _job_facts(job, level, root)
    meta = [
        m.bold(m.link(f["url"], "🔴 " + f["name"])) if m.emoji_in_link else "🔴 " + m.bold(m.link(f["url"], f["name"]))
    ]
    if f["stage"]:
        meta.append(f"stage {m.code(m.esc(f['stage']))}")
    meta.append(m.category(m.esc(f["category"])))
    if f["transient"]:
        meta.append("⚠️ likely transient")
    if f["confidence"]:
        meta.append(f"confidence {f['confidence']}")
    lines = [" · ".join(meta)]
    if f["root"]:
        lines.append(f"{m.bold('Root cause:')} {m.esc(f['root'])}")
    if f["steps"]:
        lines.append(m.bold("Fix:"))
        lines += [f"{i}. {m.esc(s)}" for i, s in enumerate(f["steps"], 1)]
        if f["more_steps"]:
            lines.append(f"…and {f['more_steps']} more")
    if f["evidence"]:
        lines.append(m.pre("\n".join(f"{m.esc(n):>6} | {m.esc(t)}" for n, t in f["evidence"])))
    notes = [m.esc(x) for x in f["markers"]]
    if notes:
        notes[0] = m.first_marker(notes[0])
    if f["retried"]:
        notes.append("🔁 retried automatically as job " + m.link(f["retried_url"], "#" + f["retried"]))
    if f["seen"]:
        notes.append(f"🔂 seen {f['seen']} times")
    if notes:
        lines.append(" · ".join(notes))
    return "\n".join(lines)


def _job_slack(job: Mapping[str, Any], level: int | None, root: int | None = None) -> str:
    return _job_text(_SLACK, job, level, root)


def _job_telegram(job: Mapping[str, Any], level: int | None, root: int | None = None) -> str:
    return _job_text(_TELEGRAM, job, level, root)


# ---- the pipeline ------------------------------------------------------------------------------
def _head(pipeline: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    summary = pipeline.get("test_summary")
    tests = None
    if isinstance(summary, Mapping):
        try:
            failed, total = summary.get("failed"), summary.get("total")
            tests = (
                f"tests: {int(failed)} failed" + (f" of {int(total)}" if total is not None else "")
                if failed is not None and (int(failed) or total is None or int(total))  # no "0 failed of 0"
                else None
            )
        except (TypeError, ValueError):
            tests = None
    source = str(pipeline.get("source") or "")
    return {
        "project": _clean(pipeline.get("project_path") or f"project {pipeline.get('project_id') or '?'}", 80),
        "ref": _clean(pipeline.get("ref"), 60),
        "id": _clean(pipeline.get("pipeline_id") or "?", 20),
        "url": pipeline.get("pipeline_url"),
        "sha": _clean(pipeline.get("sha"), 12),
        "source": _SOURCES.get(source, _clean(f"via {source}", 30) if source else ""),
        "tests": tests,
        "count": f"{len(jobs)} failed job{'s' if len(jobs) != 1 else ''}",
    }


def _names(jobs: Sequence[Mapping[str, Any]], limit: int = 5) -> list[str]:
    names = [_clean(j.get("job_name") or f"job {j.get('job_id') or '?'}", 40) for j in jobs[:limit]]
    return names + ([f"+{len(jobs) - limit} more"] if len(jobs) > limit else [])


def slack_message(pipeline: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Fallback text and Block Kit blocks for one failed pipeline, one section per job (at most
    :data:`MAX_JOBS_SHOWN`), within Slack's limits."""
    h = _head(pipeline, jobs)
    title = f"❌ {h['project']}" + (f" · {h['ref']}" if h["ref"] else "") + f" · pipeline #{h['id']}"
    text = _cut(f"{title} failed: " + ", ".join(_names(jobs)) if jobs else f"{title} failed", SLACK_FALLBACK_LIMIT)
    context = [_sk_link(h["url"], f"Pipeline #{h['id']}")]
    context += [f"commit `{_sk(h['sha'])}`"] if h["sha"] else []
    context += [_sk(x) for x in (h["source"], h["tests"], h["count"]) if x]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(_plain(title), SLACK_HEADER_LIMIT), "emoji": True},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
    ]
    shown, hidden = list(jobs[:MAX_JOBS_SHOWN]), list(jobs[MAX_JOBS_SHOWN:])
    for section in _fair(_job_slack, shown, SLACK_TOTAL_BUDGET, SLACK_SECTION_LIMIT):
        blocks += [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": section}}]
    if not jobs:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "_No job details are available._"}})
    if hidden:
        more = f"+{len(hidden)} more failed job{'s' if len(hidden) != 1 else ''} not shown: " + _sk(
            ", ".join(_names(hidden, 20))
        )
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(more, 2000)}]})
    url = _safe_url(h["url"])
    if url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open pipeline", "emoji": True},
                        "url": url,
                        "action_id": "open_pipeline",
                    },
                ],
            }
        )
    return _sk(text), blocks


def telegram_message(pipeline: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]) -> str:
    """One Telegram HTML message for a failed pipeline, at most :data:`TELEGRAM_BUDGET` characters of
    HTML (so under the 4,096 limit), each job cut to its fair share; never split."""
    h = _head(pipeline, jobs)
    first = f"❌ <b>{escape_html(h['project'])}</b>" + (f" · <code>{escape_html(h['ref'])}</code>" if h["ref"] else "")
    first += " · " + _tg_link(h["url"], f"pipeline #{h['id']}") + " failed"
    second = ([f"commit <code>{escape_html(h['sha'])}</code>"] if h["sha"] else []) + [
        escape_html(x) for x in (h["source"], h["tests"], h["count"]) if x
    ]
    head = first + "\n" + " · ".join(second)
    for n_shown in range(min(len(jobs), MAX_JOBS_SHOWN), -1, -1):
        hidden = jobs[n_shown:]
        tail = ""
        if hidden:
            tail = (
                f"\n\n+{len(hidden)} more failed job{'s' if len(hidden) != 1 else ''}: "
                + escape_html(", ".join(_names(hidden, 8)))
                + " · "
                + _tg_link(h["url"], "open the pipeline")
            )
        room = TELEGRAM_BUDGET - len(head) - len(tail) - 2 * n_shown
        parts = _fair(_job_telegram, jobs[:n_shown], room, TELEGRAM_BUDGET)
        message = head + "".join("\n\n" + p for p in parts) + tail
        if len(message) <= TELEGRAM_BUDGET:
            return message
    return _cut(head, TELEGRAM_BUDGET)  # not reached with the caps above; kept as a guarantee


# ---- short messages ----------------------------------------------------------------------------
def _times(n: int) -> str:
    return "twice" if n == 2 else f"{n} times"


def slack_repeat_text(pipeline: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], occurrences: int) -> str:
    """The thread reply when the same failure comes back: "🔂 Seen again (3 times now) …"."""
    h = _head(pipeline, jobs)
    where = (
        _sk_link(h["url"], f"pipeline #{h['id']}")
        + (f" on `{_sk(h['ref'])}`" if h["ref"] else "")
        + (f" (`{_sk(h['sha'])}`)" if h["sha"] else "")
    )
    names = ", ".join(_sk_link(j.get("job_url"), _clean(j.get("job_name") or "job", 40)) for j in jobs[:5])
    more = f" +{len(jobs) - 5} more" if len(jobs) > 5 else ""
    return f"🔂 Same failure seen again ({_times(int(occurrences or 0))} now): {where}" + (
        f": {names}{more}" if names else ""
    )


def telegram_repeat_text(pipeline: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], occurrences: int) -> str:
    """:func:`slack_repeat_text` in Telegram HTML."""
    h = _head(pipeline, jobs)
    where = _tg_link(h["url"], f"pipeline #{h['id']}") + (
        f" on <code>{escape_html(h['ref'])}</code>" if h["ref"] else ""
    )
    where += f" (<code>{escape_html(h['sha'])}</code>)" if h["sha"] else ""
    names = ", ".join(_tg_link(j.get("job_url"), _clean(j.get("job_name") or "job", 40)) for j in jobs[:5])
    more = f" +{len(jobs) - 5} more" if len(jobs) > 5 else ""
    return (
        f"🔂 Same failure seen again ({_times(int(occurrences or 0))} now) "
        f"in <b>{escape_html(h['project'])}</b>: {where}" + (f": {names}{more}" if names else "")
    )


# ---- e-mails that need attention ----------------------------------------------------------------
ATTENTION_LIMIT = 2000  #: characters (escaped) of either needs-attention message at most
#: escaped characters shown at most per field of a needs-attention message
ATTENTION_FIELDS = {"kind": 60, "folder": 120, "message_id": 300, "sender": 200, "subject": 300, "reason": 600}
_ATTENTION_RAW = 10_000  #: characters of a field redacted at most: far more than is ever shown


def _redacted(value: Any) -> str:
    """An untrusted field flattened to one line, secrets replaced (:func:`ci_logs.redact.redact_text`,
    imported here only: it pulls in jinja2 and pydantic), then made inert like :func:`_clean`. Redacted
    before it is cut, so a cut never leaves the start of a secret the redactor no longer recognises."""
    from devops_automation.ci_logs.redact import redact_text

    flat = " ".join(_CTRL.sub("", str(value if value is not None else "")).split())[:_ATTENTION_RAW]
    return _clean(redact_text(flat))


def _cut_escaped(text: str, limit: int, esc: Callable[[str], str]) -> str:
    """``esc(text)`` cut so that the *escaped* text has at most ``limit`` characters (``&`` alone
    becomes ``&amp;``); never cuts inside an entity. Both escapers work character by character."""
    out = esc(text)
    if len(out) <= limit:
        return out
    room, n = limit - 1, 0
    for ch in text:
        width = len(esc(ch))
        if width > room:
            break
        room, n = room - width, n + 1
    return esc(text[:n].rstrip()) + "…"


def needs_attention_text(
    kind: str,
    sender: str | None,
    subject: str | None,
    message_id: str,
    folder: str,
    reason: str | None = None,
) -> tuple[str, str]:
    """(Slack mrkdwn, Telegram HTML) for an e-mail that could not be processed and was moved to
    ``folder``: the rejection ``kind`` (one of ``mail.KINDS``), the classifier's ``reason`` (what it
    found), sender, subject and Message-ID. Every field is redacted, made inert, escaped for its
    channel and cut to :data:`ATTENTION_FIELDS` (escaped length), so each message stays within
    :data:`ATTENTION_LIMIT`. Slack mrkdwn cannot escape ``*``, ``_`` or ``~``, so the untrusted
    fields stand in inline code there (backticks are already swapped for U+02CB); Telegram HTML
    needs only its escaping."""
    raw = {"kind": kind, "folder": folder, "message_id": message_id, "sender": sender, "subject": subject}
    defaults = {
        "kind": "unparseable",
        "folder": "?",
        "message_id": "?",
        "sender": "unknown sender",
        "subject": "(no subject)",
    }
    clean = {name: _redacted(value) or defaults[name] for name, value in raw.items()}
    clean["reason"] = _redacted(reason)
    sk = {name: _cut_escaped(text, ATTENTION_FIELDS[name], _sk) for name, text in clean.items()}
    tg = {name: _cut_escaped(text, ATTENTION_FIELDS[name], escape_html) for name, text in clean.items()}
    slack = (
        f"⚠️ *A CI e-mail needs attention* (`{sk['kind']}`): it could not be processed "
        f"and was moved to folder `{sk['folder']}`.\n"
        + (f"Reason: `{sk['reason']}`\n" if clean["reason"] else "")
        + f"From: `{sk['sender']}` · Subject: `{sk['subject']}` · Message-ID: `{sk['message_id']}`"
    )
    telegram = (
        f"⚠️ <b>A CI e-mail needs attention</b> (<code>{tg['kind']}</code>): it could not be processed "
        f"and was moved to folder <code>{tg['folder']}</code>.\n"
        + (f"Reason: {tg['reason']}\n" if clean["reason"] else "")
        + f"From: {tg['sender']} · Subject: {tg['subject']} · Message-ID: <code>{tg['message_id']}</code>"
    )
    return slack, telegram


# ---- the run note ------------------------------------------------------------------------------
def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def run_note(
    pipelines: Sequence[Mapping[str, Any]],
    sent: Mapping[str, int],
    *,
    skipped: int = 0,
    attention: int = 0,
    enabled: bool = True,
    errors: Sequence[str] = (),
) -> str:
    """One line for the run's note: the pipelines this run analysed (``project_path``, ``pipeline_id``
    and the ``categories`` of their failed jobs), the categories counted over all of them, the
    messages sent per channel (``{"slack": 2, "telegram": 2}``), pipelines skipped because they were
    analysed before, e-mails that need attention and failed notifications."""
    counts: dict[str, int] = {}
    for p in pipelines:
        for category in p.get("categories") or []:
            counts[str(category)] = counts.get(str(category), 0) + 1
    if pipelines:
        names = [
            f"{_clean(p.get('project_path') or p.get('project_id'), 60)} #{p.get('pipeline_id')}" for p in pipelines
        ]
        shown = ", ".join(names[:3]) + (f" +{len(names) - 3} more" if len(names) > 3 else "")
        jobs = sum(counts.values())
        head = f"{_plural(len(pipelines), 'pipeline')} analysed ({shown}), {_plural(jobs, 'failed job')}"
        if counts:
            head += ": " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    else:
        head = "no new failed pipeline"
    parts = [head]
    if not enabled:
        parts.append("notifications off")
    else:
        total = {k: v for k, v in sent.items() if v}
        label = {"slack": "Slack", "telegram": "Telegram"}
        parts.append(
            "messages sent: " + (", ".join(f"{label.get(k, k)} {v}" for k, v in total.items()) if total else "none")
        )
    if skipped:
        parts.append(f"{_plural(skipped, 'pipeline')} skipped (analysed before or by another run)")
    if attention:
        parts.append(f"{_plural(attention, 'e-mail')} {'needs' if attention == 1 else 'need'} attention")
    if errors:
        parts.append(f"FAILED: {_clean('; '.join(errors), 200)}")
    return "; ".join(parts)
