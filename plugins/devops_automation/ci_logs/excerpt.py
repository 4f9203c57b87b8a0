"""Cut a failed CI job's log down to the smallest excerpt that still shows every distinct error.

One streaming pass over the log keeps only bounded state:

* the *error templates*: every distinct error message (paths, quotes, numbers masked) with its score,
  how often it occurs, and a window of context around its first and last occurrence;
* the sections/steps (GitLab ``section_start``/``section_end``, GitHub ``##[group]Run …`` and
  ``##[error]``, the step column of ``gh run view --log``) and which of them failed;
* the last lines of the log.

Then every candidate line gets a value: an error line its score (lower when the same message also
occurs in the passing log, in a runner-boilerplate section, or only as a repetition), context lines
a share of their error's score that decays with distance, the last lines of the log a small value
that decays from the end. Lines are taken by value until the budget is spent or nothing valuable is
left; the excerpt shows them with their original line numbers, gaps as ``… (n lines)``, repeated
errors once with a count, long lines shortened and secrets redacted.

Memory: the current batch (about a megabyte), the windows of at most ``max_templates`` templates and
the tail; a 50 MB log is never held in memory.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from .anchors import failure_marker, is_command_start
from .models import Excerpt, Section, Signal
from .normalize import (
    DEFAULT_CHUNK,
    LogSource,
    clean_line,
    clean_lines,
    detect_prefix_mode,
    find_markers,
    gh_cli_step,
    iter_line_batches,
    norm_key,
    template_key,
)
from .redact import redact
from .signals import FRAME, Score, candidate_lines, is_boilerplate, lower_bytes, score_line

#: GitLab runner sections that wrap the user's script (their errors matter only when the job failed there).
GITLAB_BOILERPLATE_SECTIONS = frozenset(
    {
        "resolve_secrets",
        "prepare_executor",
        "prepare_script",
        "get_sources",
        "clear_worktree",
        "restore_cache",
        "download_artifacts",
        "archive_cache",
        "archive_cache_on_failure",
        "upload_artifacts_on_success",
        "upload_artifacts_on_failure",
        "cleanup_file_variables",
    }
)
_STORED_LINE_CHARS = 2000
#: Sections that run after the failed command (their output does not explain the failure).
_NOT_THE_COMMAND = frozenset({"after_script"})


@dataclass(frozen=True)
class ExcerptConfig:
    """Tunables of :func:`excerpt` (the defaults were tuned on the ci-breakages dataset)."""

    budget: int = 4000
    unit: Literal["chars", "tokens"] = "chars"
    chars_per_token: float = 4.0
    max_line_chars: int = 300  # longer lines keep their head and tail
    before: int = 6  # context lines kept in memory before / after each error
    after: int = 16
    tail_lines: int = 80
    min_score: float = 3.0  # weaker lines are not error candidates
    max_templates: int = 1500  # distinct error messages remembered while streaming
    max_offered: int = 300  # of those, how many compete for the budget
    passed_weight: float = 0.3  # multiplier for errors that the passing log also shows
    boilerplate_section_weight: float = 0.4
    failing_section_weight: float = 1.25
    last_occurrence_weight: float = 0.8
    repeat_context_weight: float = 0.5  # the last occurrence is followed by the same lines as the first
    own_line_weight: float = 1.6  # an error line itself ranks above the context of a stronger one
    recency: float = 0.25  # errors near the end weigh up to this much more than at the start
    first_error_bonus: float = 1.0
    section_header_value: float = 2.5  # the header of the failing section/step (the command that failed)
    tail_weight: float = 3.0
    tail_decay: float = 0.85
    after_decay: tuple[float, float] = (0.75, 0.8)  # first after-line share, then factor per line
    before_decay: tuple[float, float] = (0.55, 0.6)
    min_value: float = 1.0
    gap_cost: int = 16
    # failed-command anchors (see .anchors): the tail of the failed command's own output
    anchor_lines: int = 150  # lines kept before each "command failed" marker
    max_anchors: int = 12
    anchor_value: float = 9.0  # the output line just before the marker; decays towards the command's start
    anchor_decay: float = 0.93
    anchor_start_value: float = 7.0  # the command's echo / step start (what failed)
    anchor_share: float = 0.3  # the high-valued part of the output is bounded to this share of the budget ...
    anchor_max_chars: int = 1400  # ... and to this many characters
    earlier_anchor_weight: float = 0.6  # an earlier failed command (the last one matters most)
    # weak signals (no error line scoring at least ``strong_signal``): the rest of the budget goes to the
    # failed command's output, then to the last lines of the log
    strong_signal: float = 7.0
    fill_value: float = 1.4
    fill_decay: float = 0.998
    redact: bool = True
    chunk_size: int = DEFAULT_CHUNK

    @property
    def char_budget(self) -> int:
        return int(self.budget * self.chars_per_token) if self.unit == "tokens" else int(self.budget)


# ---- streaming state -----------------------------------------------------------------------------
@dataclass
class _Window:
    center: int
    before: list[str]  # lines center-len(before) .. center-1
    after: list[str] = field(default_factory=list)  # lines center+1 ..


@dataclass
class _Occurrence:
    line: int
    text: str
    window: _Window


@dataclass
class _Template:
    key: str
    score: Score
    first: _Occurrence
    last: _Occurrence | None = None
    count: int = 1

    @property
    def nkey(self) -> str:
        return _norm(self.first.text)


@dataclass
class _Anchor:
    line: int  # the marker line
    system: str
    text: str
    before: list[str]  # raw lines line-len(before) .. line-1


@dataclass
class _SectionState:
    name: str
    start: int
    header: str
    boilerplate: bool
    end: int | None = None
    error_marker: bool = False


_PEM_BEGIN = re.compile(rb"-----begin[ a-z0-9]*private key(?: block)?-----")
_PEM_END = re.compile(rb"-----end[ a-z0-9]*private key(?: block)?-----")


def _marker_lines(low: bytes) -> list[int]:
    """Indices of lines of a lowercased batch that may hold a section marker."""
    positions: list[int] = []
    for needle in (b"section_start:", b"section_end:", b"##[", b"post job cleanup."):
        pos = low.find(needle)
        while pos >= 0:
            positions.append(pos)
            pos = low.find(needle, pos + 1)
    out: list[int] = []
    idx, prev = 0, 0
    for pos in sorted(positions):
        idx += low.count(b"\n", prev, pos)
        prev = pos
        if not out or out[-1] != idx:
            out.append(idx)
    return out


@lru_cache(maxsize=16384)
def _norm(text: str) -> str:
    return norm_key(text)


def _is_boilerplate_step(name: str) -> bool:
    low = name.strip().lower()
    return (
        low in ("set up job", "complete job", "post job cleanup")
        or low.startswith("post ")
        or low in GITLAB_BOILERPLATE_SECTIONS
    )


class _Scanner:
    """Consumes cleaned line batches; keeps templates, windows, sections and the tail."""

    def __init__(self, cfg: ExcerptConfig, passed_keys: frozenset[str] | set[str] | None) -> None:
        self.cfg = cfg
        self.passed = passed_keys
        self.n = 0
        self.chars = 0
        self.tail: deque[str] = deque(maxlen=cfg.tail_lines)
        self.recent: deque[str] = deque(maxlen=cfg.before)
        self.templates: dict[str, _Template] = {}
        self.pending: list[_Window] = []
        self.sections: list[_SectionState] = []
        self.timeline: list[tuple[int, int]] = []  # (first line, section index or -1) change points
        self.stack: list[int] = []
        self.prefix_mode: str | None = None
        self._mode_known = False
        self._step_seen = False
        self._gh_step: str | None = None
        self.pem_ranges: list[tuple[int, int]] = []  # lines of private-key blocks: never shown
        self._raw_cache: dict[str, tuple[str, Score, str | None]] = {}
        self.ring: deque[str] = deque(maxlen=cfg.anchor_lines)  # the last raw lines of earlier batches
        self.anchors: list[_Anchor] = []
        self._pem_start: int | None = None

    # -- sections ----------------------------------------------------------------------------------
    def _current(self) -> int:
        return self.stack[-1] if self.stack else -1

    def _open(self, name: str, line: int, header: str, boilerplate: bool, replace_top: bool) -> None:
        if replace_top:
            while self.stack:
                self.sections[self.stack.pop()].end = line - 1
        if len(self.sections) >= 20000:  # absurdly many sections: stop tracking new ones
            return
        self.sections.append(_SectionState(name, line, header[:_STORED_LINE_CHARS], boilerplate))
        self.stack.append(len(self.sections) - 1)
        self.timeline.append((line, self.stack[-1]))

    def _close(self, name: str, line: int) -> None:
        for pos in range(len(self.stack) - 1, -1, -1):
            if self.sections[self.stack[pos]].name == name:
                for idx in self.stack[pos:]:
                    self.sections[idx].end = line
                del self.stack[pos:]
                self.timeline.append((line + 1, self._current()))
                return

    def _marker(self, kind: str, name: str, line: int, text: str) -> None:
        if kind == "section_start":
            self._open(name, line, text, name in GITLAB_BOILERPLATE_SECTIONS, replace_top=False)
        elif kind == "section_end":
            self._close(name, line)
        elif kind == "group":
            if name.startswith("Run "):
                self._step_seen = True
                self._open(name, line, text, False, replace_top=True)
            elif not self._step_seen and not self.stack:
                self._open("Set up job", line, text, True, replace_top=True)
        elif kind == "post":
            self._step_seen = True
            self._open("Post job cleanup", line, text, True, replace_top=True)
        elif kind == "error" and self.stack:
            self.sections[self.stack[-1]].error_marker = True

    # -- batches -----------------------------------------------------------------------------------
    def clean(self, raw: str) -> str:
        """A stored raw line, cleaned (timestamp prefix, ANSI codes, control characters)."""
        return clean_line(raw, self.prefix_mode)

    def feed(self, raw: list[str]) -> None:
        """Consume the next batch of raw (uncleaned) lines."""
        if not raw:
            return
        if not self._mode_known:
            self.prefix_mode = detect_prefix_mode(raw)
            self._mode_known = True
        base = self.n  # line number of raw[0] is base + 1
        steps = self._gh_cli_steps(raw) if self.prefix_mode == "gh_cli" else []
        text = "\n".join(raw)
        self.chars += len(text) + 1
        self._fill_pending(raw)
        low = lower_bytes(text)
        del text
        if b"private key" in low or self._pem_start is not None:
            self._track_pem(low, base, len(raw))
        cand = candidate_lines(low)
        markers = _marker_lines(low) if (b"section_" in low or b"##[" in low or b"post job cleanup." in low) else []
        del low
        events: list[tuple[int, int, str, Score | None]] = [(idx, 0, "", None) for idx in markers]
        events.extend((idx, -1, step, None) for idx, step in steps)
        if cand:
            events.extend(self._score_candidates(raw, cand))
        if markers or steps or any(e[1] == 2 for e in events):
            events.sort(key=lambda e: (e[0], e[1]))
        for idx, kind, text, score in events:
            line = base + idx + 1
            if kind == 1:
                self._hit(raw, idx, line, text, score)  # type: ignore[arg-type]
            elif kind == 2:
                self._anchor(raw, idx, line, text)
            elif kind == -1:
                self._open(text, line, text, _is_boilerplate_step(text), replace_top=True)
            else:
                cleaned_marker = self.clean(raw[idx])
                for m in find_markers(cleaned_marker):
                    self._marker(m.kind, m.name, line, cleaned_marker)
        self.n = base + len(raw)
        self.recent.extend(raw[-self.cfg.before :])
        self.tail.extend(raw[-self.cfg.tail_lines :])
        self.ring.extend(raw[-self.cfg.anchor_lines :])

    def _score_candidates(self, raw: list[str], cand: list[int]) -> list[tuple[int, int, str, Score | None]]:
        """Clean and score the candidate lines of a batch; exact repeats of a raw line are looked up.

        A candidate that is a CI system's "command failed" marker is also an anchor event (kind 2).
        """
        cache = self._raw_cache
        texts = [raw[i][:_STORED_LINE_CHARS] for i in cand]
        known = list(map(cache.get, texts))
        missing = [t for t, k in zip(texts, known, strict=True) if k is None]
        if missing:
            if len(cache) > 50_000:
                cache.clear()
            cleaned = clean_lines(missing, self.prefix_mode)
            for r, c in zip(missing, cleaned, strict=True):
                m = failure_marker(c)
                cache[r] = (c, score_line(c), m.system if m else None)
            known = list(map(cache.__getitem__, texts))
        min_score = self.cfg.min_score
        out: list[tuple[int, int, str, Score | None]] = []
        for i, (c, s, system) in zip(cand, known, strict=True):  # type: ignore[misc]
            if s.value >= min_score:
                out.append((i, 1, c, s))
            if system is not None:
                out.append((i, 2, system + "\t" + c, None))
        return out

    def _anchor(self, raw: list[str], idx: int, line: int, text: str) -> None:
        """Remember a "command failed" marker with the raw lines before it (bounded)."""
        system, _, marker = text.partition("\t")
        n = self.cfg.anchor_lines
        before = raw[max(0, idx - n) : idx]
        if len(before) < n and self.ring:
            before = list(self.ring)[-(n - len(before)) :] + before
        anchor = _Anchor(line, system, marker, [s[:_STORED_LINE_CHARS] for s in before])
        if len(self.anchors) >= self.cfg.max_anchors:  # keep the first and the latest ones
            del self.anchors[1]
        self.anchors.append(anchor)

    def _track_pem(self, low: bytes, base: int, count: int) -> None:
        """Remember the line ranges of PEM private-key blocks (BEGIN … END), across batches."""
        events: list[tuple[int, str]] = []
        for kind, rx in (("begin", _PEM_BEGIN), ("end", _PEM_END)):
            events.extend((m.start(), kind) for m in rx.finditer(low))
        idx, prev = 0, 0
        for pos, kind in sorted(events):
            idx += low.count(b"\n", prev, pos)
            prev = pos
            line = base + idx + 1
            if kind == "begin" and self._pem_start is None:
                self._pem_start = line
            elif kind == "end" and self._pem_start is not None:
                self.pem_ranges.append((self._pem_start, line))
                self._pem_start = None
        if self._pem_start is not None and base + count - self._pem_start > 200:  # no END line: stop after 200 lines
            self.pem_ranges.append((self._pem_start, self._pem_start + 200))
            self._pem_start = None

    def _gh_cli_steps(self, raw: list[str]) -> list[tuple[int, str]]:
        """Where the step column of ``gh run view --log`` output changes: (index in batch, step)."""
        changes = []
        for i, line in enumerate(raw):
            step = gh_cli_step(line)
            if step is not None and step != self._gh_step:
                self._gh_step = step
                changes.append((i, step))
        return changes

    def _fill_pending(self, lines: list[str]) -> None:
        if not self.pending:
            return
        still = []
        need_max = self.cfg.after
        for w in self.pending:
            need = need_max - len(w.after)
            w.after.extend(s[:_STORED_LINE_CHARS] for s in lines[:need])
            if len(w.after) < need_max:
                still.append(w)
        self.pending = still

    def _hit(self, raw: list[str], idx: int, line: int, text: str, score: Score) -> None:
        tkey = template_key(text)
        cfg = self.cfg
        before = raw[max(0, idx - cfg.before) : idx]
        if len(before) < cfg.before and idx < cfg.before and self.recent:
            before = list(self.recent)[-(cfg.before - len(before)) :] + before
        window = _Window(
            line,
            [s[:_STORED_LINE_CHARS] for s in before],
            [s[:_STORED_LINE_CHARS] for s in raw[idx + 1 : idx + 1 + cfg.after]],
        )
        if len(window.after) < cfg.after:
            self.pending.append(window)
        occ = _Occurrence(line, text, window)
        tpl = self.templates.get(tkey)
        if tpl is None:
            self.templates[tkey] = _Template(tkey, score, occ)
            if len(self.templates) > 2 * cfg.max_templates:
                self._prune()
        else:
            tpl.count += 1
            tpl.last = occ
            if score.value > tpl.score.value:
                tpl.score = score

    def _prune(self) -> None:
        keep = heapq.nlargest(
            self.cfg.max_templates, self.templates.values(), key=lambda t: (t.score.value, -t.first.line)
        )
        self.templates = {t.key: t for t in keep}

    def in_pem(self, line: int) -> bool:
        pos = bisect.bisect_right(self.pem_ranges, (line, float("inf"))) - 1
        return pos >= 0 and self.pem_ranges[pos][0] <= line <= self.pem_ranges[pos][1]

    def finish(self) -> None:
        if self._pem_start is not None:
            self.pem_ranges.append((self._pem_start, max(self._pem_start, self.n)))
            self._pem_start = None
        for idx in self.stack:
            self.sections[idx].end = self.n
        self.stack.clear()

    # -- lookups -----------------------------------------------------------------------------------
    def section_of(self, line: int) -> int:
        if not self.timeline:
            return -1
        pos = bisect.bisect_right(self.timeline, (line, float("inf"))) - 1
        return self.timeline[pos][1] if pos >= 0 else -1


# ---- selection -----------------------------------------------------------------------------------
@dataclass
class _Cand:
    text: str
    value: float
    note: str = ""


def _line_factor(text: str, prev: str | None) -> float:
    """How useful a context line is on its own (blank, boilerplate, frames and repeats are not)."""
    if not text.strip():
        return 0.05
    if (
        prev is not None
        and prev.strip()
        and (prev == text or (abs(len(prev) - len(text)) <= 12 and prev[:6] == text[:6] and _norm(prev) == _norm(text)))
    ):
        return 0.1
    if is_boilerplate(text):
        return 0.35
    if FRAME.search(text):
        return 0.5
    return 1.0


def shorten(text: str, limit: int) -> str:
    """Keep the head and the tail of an overlong line."""
    text = text.rstrip()
    if len(text) <= limit:
        return text
    tail = max(20, limit // 5)
    head = limit - tail - 12
    return f"{text[:head]} …[{len(text) - head - tail} chars]… {text[-tail:]}"


def _render(lines: list[int], shown: dict[int, str], total: int) -> str:
    out: list[str] = []
    prev = 0
    for n in lines:
        if n > prev + 1:
            out.append(f"… ({n - prev - 1} lines)")
        out.append(f"{n}: {shown[n]}")
        prev = n
    if lines and total > prev:
        out.append(f"… ({total - prev} lines)")
    return "\n".join(out)


class _Selector:
    """Values every candidate line and picks the most valuable ones that fit the budget."""

    def __init__(self, scan: _Scanner, cfg: ExcerptConfig) -> None:
        self.scan = scan
        self.cfg = cfg
        self.cands: dict[int, _Cand] = {}
        self.section_mult: dict[int, float] = {}
        self.failed: set[int] = set()
        self.failing: int = -1
        self.fill_from = 0  # with an anchor, the tail is filled only after the failed command's start

    def _sections(self) -> None:
        scan, cfg = self.scan, self.cfg
        failed = {i for i, s in enumerate(scan.sections) if s.error_marker}
        if not failed and scan.sections and scan.anchors:  # GitLab: the user section the failed job ended in
            last = scan.anchors[-1].line
            user = [
                i
                for i, s in enumerate(scan.sections)
                if s.start < last and not s.boilerplate and s.name not in _NOT_THE_COMMAND
            ]
            if user:
                failed = {user[-1]}
        if not failed and scan.sections:
            strong = sorted(
                (t for t in scan.templates.values() if t.score.value >= 6),
                key=lambda t: (t.last or t.first).line,
            )
            for t in reversed(strong):
                sec = scan.section_of((t.last or t.first).line)
                if sec >= 0 and not scan.sections[sec].boilerplate:
                    failed = {sec}
                    break
        self.failed = failed
        if failed:
            self.failing = max(failed)
        for i, s in enumerate(scan.sections):
            if i in failed:
                self.section_mult[i] = cfg.failing_section_weight
            elif s.boilerplate:
                self.section_mult[i] = cfg.boilerplate_section_weight
            else:
                self.section_mult[i] = 1.0

    def _smult(self, line: int) -> float:
        return self.section_mult.get(self.scan.section_of(line), 1.0)

    def offer(self, line: int, text: str, value: float, note: str = "") -> None:
        c = self.cands.get(line)
        if c is None:
            self.cands[line] = _Cand(text, value, note)
        else:
            if value > c.value:
                c.value = value
            if note and not c.note:
                c.note = note

    def _offer_window(self, occ: _Occurrence, eff: float, note: str) -> None:
        cfg = self.cfg
        w = occ.window
        self.offer(occ.line, occ.text, eff * cfg.own_line_weight, note)
        clean = self.scan.clean
        home = self._smult(occ.line)

        def across(line: int) -> float:  # context in another section (e.g. post-job cleanup) counts less
            return min(1.0, self._smult(line) / home) ** 2 if self.section_mult else 1.0

        prev = occ.text
        share, decay = cfg.after_decay
        for d, raw in enumerate(w.after, 1):
            text = clean(raw)
            line = occ.line + d
            self.offer(line, text, eff * share * decay ** (d - 1) * _line_factor(text, prev) * across(line))
            prev = text
        share, decay = cfg.before_decay
        before = [clean(raw) for raw in w.before]
        n = len(before)
        for d in range(1, n + 1):
            text = before[n - d]
            prev_text = before[n - d - 1] if n - d - 1 >= 0 else None
            line = occ.line - d
            self.offer(line, text, eff * share * decay ** (d - 1) * _line_factor(text, prev_text) * across(line))

    def _same_context(self, a: _Occurrence, b: _Occurrence) -> bool:
        """Whether two occurrences of an error are followed by the same (normalised) lines."""
        n = min(len(a.window.after), len(b.window.after), 4)
        clean = self.scan.clean
        return n > 0 and all(
            _norm(clean(x)) == _norm(clean(y)) for x, y in zip(a.window.after[:n], b.window.after[:n], strict=True)
        )

    def effective(self, t: _Template, occ: _Occurrence) -> float:
        pos = occ.line / max(1, self.scan.n)
        eff = t.score.value * self._smult(occ.line) * (1 - self.cfg.recency + self.cfg.recency * pos)
        if self.scan.passed is not None and t.nkey in self.scan.passed:
            eff *= self.cfg.passed_weight
        return eff

    def build(self) -> tuple[list[int], dict[int, str], dict[str, int], list[Signal]]:
        scan, cfg = self.scan, self.cfg
        self._sections()
        templates = sorted(scan.templates.values(), key=lambda t: t.first.line)
        first_strong = next(
            (t for t in templates if t.score.value >= 7 and not (scan.passed and t.nkey in scan.passed)), None
        )
        if len(templates) > cfg.max_offered:  # only the strongest can make it into the budget anyway
            keep = {id(t) for t in heapq.nlargest(cfg.max_offered, templates, key=lambda t: self.effective(t, t.first))}
            templates = [t for t in templates if id(t) in keep or t is first_strong]
        signals: list[tuple[float, Signal]] = []
        for t in templates:
            eff = self.effective(t, t.first)
            if t is first_strong:
                eff += cfg.first_error_bonus
            note = ""
            if t.count > 1 and t.last is not None:
                note = f"  [×{t.count}, last at line {t.last.line}]"
            self._offer_window(t.first, eff, note)
            if t.last is not None:
                weight = cfg.last_occurrence_weight
                if self._same_context(
                    t.first, t.last
                ):  # an exact repeat (e.g. the same stack trace): the count says it
                    weight *= cfg.repeat_context_weight
                self._offer_window(t.last, self.effective(t, t.last) * weight, "")
            signals.append(
                (
                    eff,
                    Signal(
                        line=t.first.line,
                        text=t.first.text,
                        score=round(eff, 2),
                        family=t.score.family,
                        category=t.score.category,
                        transient=t.score.transient,
                        count=t.count,
                        last_line=t.last.line if t.last else None,
                        in_passing_log=bool(scan.passed is not None and t.nkey in scan.passed),
                    ),
                )
            )
        for i in self.failed:  # a GitHub step's "##[group]Run <command>" line names what failed
            sec = scan.sections[i]
            if sec.header.startswith("##[group]"):
                value = cfg.anchor_start_value if scan.anchors else cfg.section_header_value
                self.offer(sec.start, sec.header, value)
        weak = not any(
            t.score.value >= cfg.strong_signal
            and t.score.category is not None
            and not (scan.passed is not None and t.nkey in scan.passed)
            for t in scan.templates.values()
        )
        self._offer_anchors(weak)
        total = scan.n
        prev_text: str | None = None
        tail = [scan.clean(raw) for raw in scan.tail]
        for i, text in enumerate(tail):
            line = total - len(tail) + 1 + i
            dist = total - line
            factor = _line_factor(text, prev_text) * min(1.0, self._smult(line))
            value = cfg.tail_weight * cfg.tail_decay**dist * factor
            if weak and line > self.fill_from and not self._after_command(line):  # fill what is left
                value = max(value, cfg.fill_value * 0.95 * cfg.fill_decay**dist * factor)
            self.offer(line, text, value)
            prev_text = text
        lines, shown, counts = self._choose(total)
        signals.sort(key=lambda p: (-p[0], p[1].line))
        return lines, shown, counts, [s for _, s in signals[:40]]

    def _after_command(self, line: int) -> bool:
        """Whether ``line`` is in a section that runs after the failed command (GitLab's ``after_script``)."""
        sec = self.scan.section_of(line)
        return sec >= 0 and self.scan.sections[sec].name in _NOT_THE_COMMAND

    def _anchor_output(self, a: _Anchor) -> tuple[list[tuple[int, str]], tuple[int, str] | None]:
        """The failed command's own output before marker ``a`` (last line first), and its start line.

        Lines of runner sections (GitLab's artifacts upload, cleanup; ``after_script``) and section
        markers are skipped; the output ends (going back) at the command's echo or step start.
        """
        scan = self.scan
        texts = clean_lines(a.before, scan.prefix_mode) if a.before else []
        first = a.line - len(texts)
        out: list[tuple[int, str]] = []
        for i in range(len(texts) - 1, -1, -1):
            line, text = first + i, texts[i]
            sec = scan.section_of(line)
            if sec >= 0 and (scan.sections[sec].boilerplate or scan.sections[sec].name in _NOT_THE_COMMAND):
                continue
            if text.startswith(("section_start:", "section_end:")):
                continue
            if is_command_start(text):
                if text.startswith(("##[endgroup]", "travis_fold:end:")):
                    return out, None
                return out, (line, text)
            out.append((line, text))
        return out, None

    def _offer_anchors(self, weak: bool) -> None:
        """Offer the tail of each failed command's output: valued above generic error lines up to a
        bounded share of the budget, then (when the signals are weak) as filler for the rest."""
        scan, cfg = self.scan, self.cfg
        if not scan.anchors:
            return
        cap = min(cfg.anchor_max_chars, int(cfg.anchor_share * cfg.char_budget))
        last = len(scan.anchors) - 1
        for k, a in enumerate(scan.anchors):
            weight = 1.0 if k == last else cfg.earlier_anchor_weight
            self.offer(a.line, a.text, cfg.anchor_value * weight)
            output, start = self._anchor_output(a)
            if start is not None:
                self.offer(start[0], start[1], cfg.anchor_start_value * weight)
            if k == last:
                self.fill_from = start[0] if start else (output[-1][0] - 1 if output else a.line)
            used = 0
            for d, (line, text) in enumerate(output, 1):
                above = output[d][1] if d < len(output) else None
                factor = _line_factor(text, above)
                if used <= cap:
                    self.offer(line, text, cfg.anchor_value * weight * cfg.anchor_decay ** (d - 1) * factor)
                    if factor >= 0.35:
                        used += len(shorten(text, cfg.max_line_chars)) + len(str(line)) + 3
                elif weak:
                    self.offer(line, text, cfg.fill_value * weight * cfg.fill_decay**d * max(factor, 0.75))

    def _shown(self, line: int, counts: dict[str, int] | None) -> str:
        """The text shown for a line; redacted when ``counts`` is given (which collects the kinds)."""
        c = self.cands[line]
        text = shorten(c.text, self.cfg.max_line_chars)
        if self.cfg.redact and self.scan.in_pem(line):
            if counts is not None:
                counts["private_key"] = counts.get("private_key", 0) + 1
            return "[REDACTED:private_key]"
        if self.cfg.redact and counts is not None:
            r = redact(text)
            text = r.text
            for k, v in r.counts.items():
                counts[k] = counts.get(k, 0) + v
        return text + c.note

    def _choose(self, total: int) -> tuple[list[int], dict[int, str], dict[str, int]]:
        cfg = self.cfg
        budget = cfg.char_budget
        order = sorted(self.cands.items(), key=lambda kv: (-kv[1].value, kv[0]))
        chosen: set[int] = set()
        shown: dict[int, str] = {}
        counts: dict[str, int] = {}
        used = 0
        for line, c in order:
            if c.value < cfg.min_value:
                break
            text = self._shown(line, None)
            cost = len(str(line)) + 3 + len(text)
            if (line - 1) not in chosen and (line + 1) not in chosen:
                cost += cfg.gap_cost
            if used + cost > budget:
                continue
            chosen.add(line)
            shown[line] = text
            used += cost
        if not chosen and total:  # nothing valuable: the last line, however long
            line = max(self.cands) if self.cands else total
            if line in self.cands:
                chosen.add(line)
                shown[line] = self._shown(line, None)[: max(1, budget - 20)]
        lines = sorted(chosen)
        if cfg.redact:  # only the lines that are shown are redacted (secrets become markers)
            for n in lines:
                shown[n] = self._shown(n, counts)
        rendered = _render(lines, shown, total)
        while len(rendered) > budget and len(lines) > 1:
            worst = min(lines, key=lambda n: (self.cands[n].value, -n))
            lines.remove(worst)
            rendered = _render(lines, shown, total)
        if lines and len(rendered) > budget:  # one line that does not fit: cut it
            only = lines[0]
            room = max(0, len(shown[only]) - (len(rendered) - budget))
            shown[only] = shown[only][: max(0, room - 1)] + "…"
            rendered = _render(lines, shown, total)
            if len(rendered) > budget:
                lines = []
        return lines, {n: shown[n] for n in lines}, counts


# ---- public API ----------------------------------------------------------------------------------
def passing_keys(source: LogSource, chunk_size: int = DEFAULT_CHUNK, limit: int = 500_000) -> set[str]:
    """The normalised keys of the error-like lines of a passing log (at most ``limit`` of them)."""
    keys: set[str] = set()
    mode: str | None = None
    first = True
    for raw in iter_line_batches(source, chunk_size):
        if first:
            mode = detect_prefix_mode(raw)
            first = False
        for idx in candidate_lines(lower_bytes("\n".join(raw))):
            line = clean_line(raw[idx][:_STORED_LINE_CHARS], mode)
            if score_line(line).value > 0:
                keys.add(norm_key(line))
                if len(keys) >= limit:
                    return keys
    return keys


def excerpt(
    log: LogSource,
    passed: LogSource | None = None,
    *,
    budget: int | None = None,
    config: ExcerptConfig | None = None,
) -> Excerpt:
    """The excerpt of a failed job's ``log`` (bytes, text, a path or a stream).

    ``passed`` is the log of the last successful run of the same job, if known: errors that it shows
    too count for less. ``budget`` (characters by default, see :class:`ExcerptConfig`) caps the
    excerpt's text; the excerpt is usually smaller, because lines of little value are left out.
    """
    cfg = config or ExcerptConfig()
    if budget is not None:
        cfg = replace(cfg, budget=budget)
    passed_keys = passing_keys(passed, cfg.chunk_size) if passed is not None else None
    scan = _Scanner(cfg, passed_keys)
    for batch in iter_line_batches(log, cfg.chunk_size):
        scan.feed(batch)
    scan.finish()
    selector = _Selector(scan, cfg)
    lines, shown, counts, signals = selector.build()
    text = _render(lines, shown, scan.n)
    if cfg.redact:
        signals = [
            replace(
                s,
                text="[REDACTED:private_key]"
                if scan.in_pem(s.line)
                else redact(shorten(s.text, cfg.max_line_chars)).text,
            )
            for s in signals
        ]
    else:
        signals = [replace(s, text=shorten(s.text, cfg.max_line_chars)) for s in signals]
    sections = [
        Section(
            s.name,
            s.start,
            s.end,
            redact(s.header[:200]).text if cfg.redact else s.header[:200],
            s.boilerplate,
            i in selector.failed,
        )
        for i, s in enumerate(scan.sections[:200])
    ]
    failing = scan.sections[selector.failing].name if selector.failing >= 0 else None
    return Excerpt(
        lines=lines,
        text=text,
        line_text=shown,
        total_lines=scan.n,
        total_chars=max(0, scan.chars - 1),
        budget=cfg.char_budget,
        signals=signals,
        sections=sections,
        failing_section=failing,
        used_passing_log=passed is not None,
        prefix_mode=scan.prefix_mode,
        redactions=counts,
        collapsed=sum(max(0, t.count - 2) for t in scan.templates.values()),
    )


def tail_excerpt(log: LogSource, budget: int = 4000, chunk_size: int = DEFAULT_CHUNK) -> tuple[list[int], int]:
    """The baseline: the lines touched by the last ``budget`` characters of the decoded log.

    Returns (kept line numbers, characters). Streaming with a bounded ring of lines.
    """
    ring: deque[tuple[int, int]] = deque()  # (line, length incl. break)
    size = 0
    n = 0
    for batch in iter_line_batches(log, chunk_size):
        for line in batch:
            n += 1
            ring.append((n, len(line) + 1))
            size += len(line) + 1
            while ring and size - ring[0][1] >= budget:
                size -= ring.popleft()[1]
    return [ln for ln, _ in ring], min(size, budget)


__all__ = ["ExcerptConfig", "excerpt", "passing_keys", "shorten", "tail_excerpt"]
