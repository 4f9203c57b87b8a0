"""The report's summary as chat messages: Slack Block Kit and Telegram HTML.

Pure: no Airflow, no client library. Both take :attr:`.render.Rendered.summary` (``title``, ``period``,
``has_data``, ``headlines``, ``movers``, ``project_movers``, ``omitted``; each figure with its
``label``, ``value_text``, ``change_text``, ``tone`` and one-line ``text``) and only lay it out: every
number is formatted by :mod:`.render`, so the chat messages say what the report says.

**Slack** (:func:`report_blocks`, :func:`slack_fallback_text`): a header with the title, a context line
with the period, a section per headline figure (value, change and *better*/*worse*), the biggest
movers and the health-score movers as bullet lists, and a context line naming the sections left out
and why. Within Block Kit's limits (``../shared/api/slack.md`` §6.1): at most 50 blocks (headlines
beyond the budget are listed in one section), header text ≤ 150 and section text ≤ 3,000 characters
(longer text is cut at a line end, with ``…``), ``block_id`` ≤ 255. Text is Slack mrkdwn with ``&``,
``<`` and ``>`` escaped; project names in code spans. Post the blocks with
:func:`slack_fallback_text` as the message ``text`` (Slack shows it in notifications).

**Telegram** (:func:`telegram_text`, :func:`telegram_caption`): HTML parse mode with every value
escaped, one balanced fragment per line, split on line boundaries into messages of at most 4,096
visible characters (Telegram's limit after entity parsing; :func:`devops_automation.messaging.split_html`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devops_automation.messaging import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, escape_html, split_html
from devops_automation.workflows.weekly_report.render import format_change, format_value

__all__ = [
    "SLACK_MAX_BLOCKS",
    "report_blocks",
    "slack_fallback_text",
    "telegram_caption",
    "telegram_text",
]

SLACK_MAX_BLOCKS = 50
SLACK_SECTION_TEXT = 3000
SLACK_HEADER_TEXT = 150
SLACK_BLOCK_ID = 255
#: The message ``text`` that goes with the blocks (Slack truncates at 40,000; slack.md says keep < 4,000).
SLACK_FALLBACK_TEXT = 3000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# -- shared -------------------------------------------------------------------------------------------
def _day(iso: str) -> str:
    """``2026-11-16T00:00:00+00:00`` → ``16 Nov 2026`` (the UTC date the summary carries)."""
    year, month, day = int(iso[0:4]), int(iso[5:7]), int(iso[8:10])
    return f"{day} {_MONTHS[month - 1]} {year}"


def _period_text(summary: Mapping[str, Any]) -> str:
    period = summary.get("period") or {}
    if not period.get("start") or not period.get("end"):
        return str(period.get("label") or "")
    label = f"{period['label']}: " if period.get("label") else ""
    return f"{label}{_day(period['start'])} – {_day(period['end'])} (end exclusive, UTC)"


def _figure_line(item: Mapping[str, Any]) -> str:
    """``66.7% (▲ +16.7 pp, better)``: the value and its change, as the report writes them."""
    verdict = {"good": ", better", "bad": ", worse"}.get(str(item.get("tone")), "")
    return f"{item['value_text']} ({item['change_text']}{verdict})"


def _project_mover(mover: Mapping[str, Any]) -> tuple[str, str]:
    """(project, ``80.0 (▲ +10.0 from 70.0)``) of a health-score mover."""
    score = format_value(mover.get("score"), "score")
    change = format_change(mover.get("change"), "score")
    previous = format_value(mover.get("previous"), "score")
    return str(mover["project"]), f"{score} ({change} from {previous})"


def _omitted_text(omitted: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"{o['title']} ({o['why']})" for o in omitted]


# -- Slack --------------------------------------------------------------------------------------------
def _mrkdwn(value: Any) -> str:
    """Text for Slack mrkdwn: ``&``, ``<`` and ``>`` escaped as Slack requires (no markup is added)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(value: Any) -> str:
    return "`" + _mrkdwn(value).replace("`", "'") + "`"


def _cut_lines(lines: Sequence[str], limit: int) -> str:
    """``lines`` joined, keeping whole lines up to ``limit`` characters; ``…`` marks what was left out.
    A first line longer than the limit is cut inside."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        extra = len(line) + (1 if out else 0)
        more = i < len(lines) - 1
        if size + extra + (2 if more else 0) > limit:
            if not out:
                return line[: limit - 1] + "…"
            out.append("…")
            break
        out.append(line)
        size += extra
    return "\n".join(out)


def _section(text_lines: Sequence[str], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut_lines(text_lines, SLACK_SECTION_TEXT)},
    }
    if block_id:
        block["block_id"] = block_id[:SLACK_BLOCK_ID]
    return block


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut_lines([text], SLACK_SECTION_TEXT)}]}


def _headline_block(item: Mapping[str, Any]) -> dict[str, Any]:
    lines = [f"*{_mrkdwn(item['label'])}*", _mrkdwn(_figure_line(item))]
    return _section(lines, f"headline-{item.get('section', '')}-{item.get('figure', item['label'])}")


def report_blocks(summary: Mapping[str, Any], *, max_blocks: int = SLACK_MAX_BLOCKS) -> list[dict[str, Any]]:
    """Block Kit blocks for the summary message (see the module docstring); at most ``max_blocks``.

    Raises ``ValueError`` when ``max_blocks`` is below 8 (the fixed blocks and one headline need them)
    or above Slack's 50, and ``KeyError`` naming a key the summary lacks."""
    if isinstance(max_blocks, bool) or not isinstance(max_blocks, int) or not 8 <= max_blocks <= SLACK_MAX_BLOCKS:
        raise ValueError(f"max_blocks must be a whole number from 8 to {SLACK_MAX_BLOCKS}, got {max_blocks!r}")
    title = str(summary["title"])
    if len(title) > SLACK_HEADER_TEXT:
        title = title[: SLACK_HEADER_TEXT - 1] + "…"
    head: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}]
    if period := _period_text(summary):
        head.append(_context(_mrkdwn(period)))
    tail: list[dict[str, Any]] = []
    movers = summary.get("movers") or []
    if movers:
        lines = ["*Biggest movers*", *(f"• {_mrkdwn(m['text'])}" for m in movers)]
        tail += [{"type": "divider"}, _section(lines, "movers")]
    projects = summary.get("project_movers") or []
    if projects:
        rows = [_project_mover(p) for p in projects]
        lines = ["*Health score movers*", *(f"• {_code(name)} {_mrkdwn(text)}" for name, text in rows)]
        if not movers:
            tail.append({"type": "divider"})
        tail.append(_section(lines, "project-movers"))
    omitted = summary.get("omitted") or []
    if omitted:
        tail.append(_context("Not in this report: " + "; ".join(_mrkdwn(t) for t in _omitted_text(omitted)) + "."))
    if not summary.get("has_data", True):
        return [*head, _section(["*No data for this period.*"], "no-data"), *tail]
    headlines = list(summary.get("headlines") or [])
    room = max_blocks - len(head) - len(tail)
    if len(headlines) <= room:
        body = [_headline_block(h) for h in headlines]
    else:  # the first ones as sections, the rest listed in the last one
        body = [_headline_block(h) for h in headlines[: room - 1]]
        rest = headlines[room - 1 :]
        body.append(_section([f"• {_mrkdwn(h['text'])}" for h in rest], "headlines-more"))
    return [*head, *body, *tail]


def slack_fallback_text(summary: Mapping[str, Any]) -> str:
    """The plain ``text`` sent with the blocks (notifications, clients without Block Kit): the title and
    the headline lines, cut to 3,000 characters at a line end."""
    lines = [_mrkdwn(summary["title"])]
    if not summary.get("has_data", True):
        lines.append("No data for this period.")
    lines += [f"• {_mrkdwn(h['text'])}" for h in summary.get("headlines") or []]
    return _cut_lines(lines, SLACK_FALLBACK_TEXT)


# -- Telegram -----------------------------------------------------------------------------------------
def telegram_text(summary: Mapping[str, Any], *, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """The summary in Telegram HTML, split on line boundaries into messages of at most ``limit``
    (default 4,096) visible characters; every value escaped. Lines: the title (bold), the period, the
    headlines, the biggest movers, the health-score movers and the sections left out (italic)."""
    e = escape_html
    lines = [f"<b>{e(summary['title'])}</b>"]
    if period := _period_text(summary):
        lines.append(e(period))
    if not summary.get("has_data", True):
        lines += ["", "<b>No data for this period.</b>"]
    headlines = summary.get("headlines") or []
    if headlines:
        lines += ["", "<b>Headlines</b>"]
        lines += [f"• {e(h['label'])}: {e(_figure_line(h))}" for h in headlines]
    movers = summary.get("movers") or []
    if movers:
        lines += ["", "<b>Biggest movers</b>"]
        lines += [f"• {e(m['label'])}: {e(_figure_line(m))}" for m in movers]
    projects = summary.get("project_movers") or []
    if projects:
        lines += ["", "<b>Health score movers</b>"]
        lines += [f"• <code>{e(name)}</code> {e(text)}" for name, text in map(_project_mover, projects)]
    omitted = summary.get("omitted") or []
    if omitted:
        lines += ["", "<i>Not in this report:</i>"]
        lines += [f"• {e(text)}" for text in _omitted_text(omitted)]
    return [chunk.strip("\n") for chunk in split_html("\n".join(lines), limit)]


def telegram_caption(summary: Mapping[str, Any], what: str = "") -> str:
    """A short HTML caption for a photo or document of the report (title, then ``what``), at most 1,024
    visible characters."""
    text = f"<b>{escape_html(summary['title'])}</b>"
    if what:
        text += f"\n{escape_html(what)}"
    return split_html(text, TELEGRAM_CAPTION_LIMIT)[0]
