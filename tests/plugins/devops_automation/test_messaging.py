"""Splitting HTML messages below Telegram's limit without breaking tags or entities."""

from __future__ import annotations

from devops_automation.messaging import escape_html, split_html, visible_length


def test_escape_and_visible_length() -> None:
    text = escape_html("a < b & c > d")
    assert text == "a &lt; b &amp; c &gt; d"
    assert visible_length(f"<b>{text}</b>") == len("a < b & c > d")


def test_short_message_is_one_chunk() -> None:
    assert split_html("<b>hi</b>\nthere") == ["<b>hi</b>\nthere"]
    assert split_html("") == []
    assert split_html("\n\n") == []


def test_long_message_splits_on_lines_and_counts_visible_characters() -> None:
    line = "<b>" + escape_html("x&" * 20) + "</b>"  # 40 visible, 60+ raw characters
    chunks = split_html("\n".join([line] * 300), limit=4096)
    assert len(chunks) > 1
    assert all(visible_length(c) <= 4096 for c in chunks)
    assert all(c.count("<b>") == c.count("</b>") for c in chunks)
    assert sum(c.count("<b>") for c in chunks) == 300


def test_an_overlong_single_line_is_cut_as_plain_text() -> None:
    chunks = split_html("<code>" + "&amp;" * 5000 + "</code>", limit=1000)
    assert all(visible_length(c) <= 1000 for c in chunks)
    assert "<code>" not in "".join(chunks)
    assert sum(visible_length(c) for c in chunks) == 5000
