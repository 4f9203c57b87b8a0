"""Reading and cleaning CI job logs: streaming line split, ANSI/control stripping, timestamp prefixes,
section markers, and the normalised keys used to compare a failing log with a passing one.

Line numbers everywhere in this package are 1-based and count lines exactly like Python's
``text.splitlines()`` of the decoded log (UTF-8, ``errors="replace"``): ``\\n``, ``\\r``, ``\\r\\n``,
``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028`` and ``\\u2029`` all end a line. GitLab's
section markers contain a bare ``\\r``, so a marker is a line of its own.

Everything here works on *batches* of lines (about a megabyte at a time) so that the expensive
steps (decoding, splitting, regular expressions) run in C over large strings and a 50 MB log never
needs more than a few batches in memory.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: Characters that end a line for ``str.splitlines()``.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

LogSource = bytes | bytearray | memoryview | str | Path | IO[bytes] | IO[str] | Iterable[bytes]
"""A log: raw bytes, already decoded text, a path, a binary/text stream, or an iterable of byte chunks."""

DEFAULT_CHUNK = 1 << 20


# ---- reading -------------------------------------------------------------------------------------
def _chunks(source: LogSource, chunk_size: int) -> Iterator[bytes | str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for i in range(0, len(view), chunk_size):
            yield bytes(view[i : i + chunk_size])
        return
    if isinstance(source, str):
        for i in range(0, len(source), chunk_size):
            yield source[i : i + chunk_size]
        return
    if isinstance(source, os.PathLike):
        with open(source, "rb") as fh:
            yield from _chunks(fh, chunk_size)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            block = read(chunk_size)
            if not block:
                return
            yield block
    for block in source:  # an iterable of chunks (e.g. ``response.iter_content()``)
        if block:
            yield block


def iter_line_batches(source: LogSource, chunk_size: int = DEFAULT_CHUNK) -> Iterator[list[str]]:
    """Yield the decoded lines of ``source`` in batches, without their line breaks.

    The concatenation of all batches equals ``decoded.splitlines()``; memory is bounded by the chunk
    size plus the longest line. Bytes are decoded as UTF-8 with ``errors="replace"`` (incrementally,
    so a multi-byte character split across chunks decodes as in one piece).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    after_cr = False  # the previous chunk ended with "\r": a leading "\n" belongs to that break
    for block in _chunks(source, chunk_size):
        text = decoder.decode(block) if isinstance(block, (bytes, bytearray)) else block
        if not text:
            continue
        if after_cr and not carry and text[0] == "\n":
            text = text[1:]
        after_cr = False
        text = carry + text if carry else text
        cut = max(text.rfind(c) for c in LINE_BREAKS)
        if cut < 0:
            carry = text
            continue
        carry = text[cut + 1 :]
        after_cr = text[cut] == "\r" and not carry
        yield text[: cut + 1].splitlines()
    tail = decoder.decode(b"", final=True)
    if tail:
        if after_cr and not carry and tail[0] == "\n":
            tail = tail[1:]
        carry += tail
        if carry:
            yield carry.splitlines()
            return
    if carry:
        yield [carry]


def read_text(source: LogSource) -> str:
    """The whole decoded log as one string (only for small logs and tests)."""
    if isinstance(source, str):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source).decode("utf-8", errors="replace")
    buf = io.StringIO()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for block in _chunks(source, DEFAULT_CHUNK):
        buf.write(decoder.decode(block) if isinstance(block, (bytes, bytearray)) else block)
    buf.write(decoder.decode(b"", final=True))
    return buf.getvalue()


# ---- cleaning ------------------------------------------------------------------------------------
#: ANSI escape sequences (CSI, OSC, two-character escapes) and C0 control characters other than tab
#: and the line breaks. None of the alternatives can match a line break, so cleaning never changes
#: the number of lines.
ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, erase line (\x1b[0K), cursor moves
    r"|\x1b\][^\x07\x1b\n\r]*(?:\x07|\x1b\\)?"  # OSC: titles, hyperlinks
    r"|\x1b[()*+][0-9A-Za-z]"  # charset designation
    r"|\x1b[@-Z\\-_]?"  # other two-character escapes, or a lone ESC
    r"|[\x00-\x08\x0e-\x1a\x1f\x7f]"
)

# Timestamp prefixes added by CI systems (matched at the start of a line only).
_GITLAB_TS = r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d\.\d{6}Z [0-9a-f]{2}[EO][+ ]"
_GITHUB_TS = r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z ?"
_GH_CLI = r"[^\t\n]*\t[^\t\n]*\t" + _GITHUB_TS  # `gh run view --log`: job<TAB>step<TAB>timestamp
_ISO_TS = r"\[?\d{4}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d:[0-5]\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?\]? "
_HMS_TS = r"\[?[0-2]\d:[0-5]\d:[0-5]\d(?:\.\d{1,6})?\]? "
# Taskcluster: "[task 2025-02-13T11:53:22.117Z] ", "[taskcluster 2025-02-13 11:53:22.117Z] ", "[vcs …] ", …
_TASKCLUSTER_TS = r"\[[a-z][\w-]{1,30} \d{4}-[01]\d-[0-3]\d[T ][0-2]\d:[0-5]\d:[0-5]\d(?:\.\d{1,9})?Z\] "

PREFIX_MODES: dict[str, re.Pattern[str]] = {
    "gitlab": re.compile(r"^(?:\x1b\[[0-9;]*[A-Za-z])*" + _GITLAB_TS, re.M),
    "gh_cli": re.compile("^" + _GH_CLI, re.M),
    "github": re.compile("^" + _GITHUB_TS, re.M),
    "taskcluster": re.compile("^" + _TASKCLUSTER_TS, re.M),
    "iso": re.compile("^" + _ISO_TS, re.M),
    "hms": re.compile("^" + _HMS_TS, re.M),
}


def detect_prefix_mode(lines: list[str], sample: int = 60) -> str | None:
    """Which timestamp prefix (if any) most of the first non-empty lines carry."""
    probe = [line for line in lines[: sample * 4] if line.strip()][:sample]
    if not probe:
        return None
    text = "\n".join(probe)
    for mode, rx in PREFIX_MODES.items():
        if len(rx.findall(text)) * 2 >= len(probe):
            return mode
    return None


_GH_CLI_STEP = re.compile(r"^[^\t\n]*\t([^\t\n]*)\t" + _GITHUB_TS)


def gh_cli_step(raw_line: str) -> str | None:
    """The step column of a ``gh run view --log`` line (``job<TAB>step<TAB>timestamp text``)."""
    m = _GH_CLI_STEP.match(raw_line)
    return m.group(1) if m else None


def clean_lines(lines: list[str], prefix_mode: str | None) -> list[str]:
    """Strip the timestamp prefix (``prefix_mode``), ANSI sequences and control characters.

    Works on the whole batch at once; the result has exactly as many lines as the input.
    """
    text = "\n".join(lines)
    if prefix_mode:
        text = PREFIX_MODES[prefix_mode].sub("", text)
    if "\x1b" in text or _HAS_CTRL.search(text):
        text = ANSI_RE.sub("", text)
    return text.split("\n")


_HAS_CTRL = re.compile(r"[\x00-\x08\x0e-\x1a\x1f\x7f]")


def clean_line(line: str, prefix_mode: str | None = None) -> str:
    """:func:`clean_lines` for one line."""
    return clean_lines([line], prefix_mode)[0]


# ---- section markers -----------------------------------------------------------------------------
#: GitLab ``section_start:<ts>:<name>[opts]`` / ``section_end:<ts>:<name>`` (after cleaning, the
#: ``\r\x1b[0K`` that follows has become a line break), GitHub ``##[group]`` / ``##[endgroup]`` /
#: ``##[error]`` and the runner's "Post job cleanup." line that starts the post-job steps.
MARKER_RE = re.compile(
    r"^(?:section_(?P<gl>start|end):\d+:(?P<glname>[A-Za-z0-9_.-]+)(?:\[[^\]\n]*\])?[ \t]*$"
    r"|##\[(?P<gh>group|endgroup|error)\](?P<ghtext>[^\n]*)$"
    r"|(?P<post>Post job cleanup\.)[ \t]*$)",
    re.M,
)


@dataclass(frozen=True)
class Marker:
    """A structural marker found in a cleaned line."""

    index: int  # index of the line in its batch
    kind: str  # section_start | section_end | group | endgroup | error | post
    name: str


def find_markers(text: str) -> Iterator[Marker]:
    """Markers in a batch joined with ``\\n`` (index = line index in the batch)."""
    pos, idx = 0, 0
    for m in MARKER_RE.finditer(text):
        idx += text.count("\n", pos, m.start())
        pos = m.start()
        if m.group("gl"):
            yield Marker(idx, "section_" + m.group("gl"), m.group("glname"))
        elif m.group("gh"):
            yield Marker(idx, m.group("gh"), m.group("ghtext").strip())
        else:
            yield Marker(idx, "post", "Post job cleanup")


# ---- normalisation for comparison ----------------------------------------------------------------
#: UUIDs, hex digests (7+ hex digits) and temporary paths, in lowercased text. Every alternative
#: starts with a character class or a literal, which keeps ``re`` fast here.
_VOLATILE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{7,}|(?:/tmp|/var/folders|/private/var|\\temp)[/\\][^\s'\":)]+|\d+"
)


def norm_key(line: str) -> str:
    """A line with volatile parts masked: UUIDs, hashes, temporary paths and every digit (so
    timestamps, durations, counts and line numbers too); case folded, whitespace runs collapsed.

    Two runs of the same job print the same ``norm_key`` for the same message, so a failing line whose
    key also occurs in the passing log is probably not the cause of the failure.
    """
    return " ".join(_VOLATILE.sub("#", line.lower()).split())


_QUOTED = re.compile(r"'[^'\n]{1,200}'|\"[^\"\n]{1,200}\"|`[^`\n]{1,200}`|‘[^’\n]{1,200}’")


def template_key(line: str) -> str:
    """A coarser key than :func:`norm_key`: paths (words with a slash) and quoted strings masked too.

    Used to recognise repetitions of "the same" error (``Unable to create file <path> (No space left
    on device)`` printed once per file) so that they are shown once, with a count.
    """
    if "'" in line or '"' in line or "`" in line or "‘" in line:
        line = _QUOTED.sub("<q>", line)
    return norm_key(" ".join("<p>" if ("/" in tok or "\\" in tok) else tok for tok in line.split()))
