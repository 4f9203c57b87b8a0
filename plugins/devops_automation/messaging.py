"""Message text helpers shared by the notifiers (pure Python, no Airflow, no client libraries).

Telegram limits a message to 4,096 characters *after entity parsing* and rejects HTML whose tags
are unbalanced, so long messages are split on line boundaries, never inside a tag or an entity;
a single overlong line is cut as plain text.
"""

from __future__ import annotations

import html
import re

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
_TAG = re.compile(r"<[^>]+>")


def escape_html(text: object) -> str:
    """Escape text for Telegram's HTML parse mode (``&``, ``<``, ``>``; quotes stay as they are)."""
    return html.escape(str(text), quote=False)


def visible_length(html_text: str) -> int:
    """Length of an HTML message as Telegram counts it (tags removed, entities decoded)."""
    return len(html.unescape(_TAG.sub("", html_text)))


def split_html(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split an HTML message into chunks of at most ``limit`` visible characters.

    Lines are kept whole (each line of our messages is a balanced HTML fragment); a line longer than
    the limit is reduced to its plain text and cut into pieces (escaped again), so no chunk ever holds
    half a tag or half an entity. Empty input gives no chunks.
    """
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        n = visible_length(line)
        if n > limit:
            if current:
                chunks.append("\n".join(current))
                current, size = [], 0
            plain = html.unescape(_TAG.sub("", line))
            chunks.extend(escape_html(plain[i : i + limit]) for i in range(0, len(plain), limit))
            continue
        extra = n + (1 if current else 0)
        if current and size + extra > limit:
            chunks.append("\n".join(current))
            current, size = [line], n
        else:
            current.append(line)
            size += extra
    if current and any(part.strip() for part in current):
        chunks.append("\n".join(current))
    return [c for c in chunks if c.strip()]


_LINK = re.compile(r'<a href="([^"]+)">(.*?)</a>', re.S)


def html_to_mrkdwn(html_text: str) -> str:
    """Our Telegram HTML as Slack mrkdwn: bold, italics, code, links; entities decoded."""
    text = _LINK.sub(lambda m: f"<{html.unescape(m.group(1))}|{html.unescape(_TAG.sub('', m.group(2)))}>", html_text)
    for tag, mark in (("b", "*"), ("strong", "*"), ("i", "_"), ("em", "_"), ("code", "`"), ("s", "~")):
        text = re.sub(rf"</?{tag}>", mark, text)
    text = re.sub(r"</?pre>", "```", text)
    text = re.sub(r"<(?!https?://)[^>]+>", "", text)  # any other tag, but not the <url|text> links
    return html.unescape(text)
