"""Result types of the log analysis: the excerpt, the heuristic classification and the final analysis.

Plain dataclasses (no Airflow, no pydantic) with ``to_dict()`` for XCom/JSON/the results store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Analyser = Literal["llm", "heuristic", "heuristic_fallback"]


def line_ranges(lines: list[int]) -> list[tuple[int, int]]:
    """Sorted line numbers as inclusive ``(first, last)`` runs: ``[3, 4, 5, 9]`` -> ``[(3, 5), (9, 9)]``."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(lines)):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def format_ranges(lines: list[int]) -> list[str]:
    """``[3, 4, 5, 9]`` -> ``["3-5", "9"]``."""
    return [f"{a}-{b}" if a != b else str(a) for a, b in line_ranges(lines)]


@dataclass(frozen=True)
class Signal:
    """An error line found in the log (line number of the original log, cleaned and redacted text)."""

    line: int
    text: str
    score: float
    family: str | None
    category: str | None
    transient: bool = False
    count: int = 1  # how often this message (masked paths/numbers) occurs in the log
    last_line: int | None = None  # its last occurrence, when count > 1
    in_passing_log: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Section:
    """A GitLab section or a GitHub step (``##[group]Run …``, a ``gh run view --log`` step column)."""

    name: str
    start: int
    end: int | None = None
    header: str = ""
    boilerplate: bool = False
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Excerpt:
    """The smallest part of a failed job's log that still shows every distinct error.

    ``lines`` are the kept 1-based line numbers of the original log (``str.splitlines()`` numbering);
    ``text`` is what a person or a model reads: each kept line as ``<number>: <text>`` (cleaned of
    ANSI codes and timestamps, long lines shortened, secrets redacted), gaps as ``… (n lines)``.
    ``line_text`` maps each kept line to the text shown for it.
    """

    lines: list[int]
    text: str
    line_text: dict[int, str]
    total_lines: int
    total_chars: int
    budget: int
    signals: list[Signal] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    failing_section: str | None = None
    used_passing_log: bool = False
    prefix_mode: str | None = None
    redactions: dict[str, int] = field(default_factory=dict)
    collapsed: int = 0  # repeated lines shown once

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return line_ranges(self.lines)

    @property
    def chars(self) -> int:
        return len(self.text)

    def to_dict(self, with_text: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lines": format_ranges(self.lines),
            "kept_lines": len(self.lines),
            "chars": self.chars,
            "total_lines": self.total_lines,
            "total_chars": self.total_chars,
            "budget": self.budget,
            "failing_section": self.failing_section,
            "used_passing_log": self.used_passing_log,
            "prefix_mode": self.prefix_mode,
            "redactions": dict(self.redactions),
            "signals": [s.to_dict() for s in self.signals],
            "sections": [s.to_dict() for s in self.sections],
        }
        if with_text:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class EvidenceLine:
    line: int
    text: str


@dataclass
class Classification:
    """The offline (heuristic) verdict on a failed job."""

    category: str
    is_transient: bool
    confidence: float
    evidence: list[EvidenceLine]
    explanation: str
    next_step: str
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def evidence_lines(self) -> list[int]:
        return [e.line for e in self.evidence]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence_lines"] = self.evidence_lines
        return d


@dataclass
class LLMUsage:
    """What one analysis cost: model, tokens (summed over attempts) and wall time."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 0
    response_format: str = "json_schema"
    base_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Analysis:
    """Root cause and fix for a failed job, from the LLM or from the heuristic classifier.

    ``analyser`` says which: ``"llm"``, ``"heuristic"`` (no LLM configured) or ``"heuristic_fallback"``
    (the LLM failed or answered invalidly twice; ``reason`` says why). ``evidence_lines`` are line
    numbers of the original log, always a subset of the excerpt's lines. Every text field is redacted.
    """

    category: str
    root_cause: str
    fix_steps: list[str]
    evidence_lines: list[int]
    is_transient: bool
    confidence: float
    analyser: Analyser
    reason: str | None = None
    evidence: list[EvidenceLine] = field(default_factory=list)
    usage: LLMUsage | None = None
    heuristic: Classification | None = None
    excerpt_lines: list[int] = field(default_factory=list)
    excerpt_chars: int = 0
    redactions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "root_cause": self.root_cause,
            "fix_steps": list(self.fix_steps),
            "evidence_lines": list(self.evidence_lines),
            "is_transient": self.is_transient,
            "confidence": self.confidence,
            "analyser": self.analyser,
            "reason": self.reason,
            "evidence": [asdict(e) for e in self.evidence],
            "usage": self.usage.to_dict() if self.usage else None,
            "heuristic": self.heuristic.to_dict() if self.heuristic else None,
            "excerpt_lines": format_ranges(self.excerpt_lines),
            "excerpt_chars": self.excerpt_chars,
            "redactions": dict(self.redactions),
        }

    def summary_text(self, max_steps: int = 5) -> str:
        """A short plain-text summary for a chat notification (already redacted)."""
        head = f"[{self.category}{', transient' if self.is_transient else ''}] {self.root_cause}"
        steps = "\n".join(f"{i}. {s}" for i, s in enumerate(self.fix_steps[:max_steps], 1))
        ev = "\n".join(f"{e.line}: {e.text}" for e in self.evidence[:5])
        parts = [head]
        if steps:
            parts.append("Next steps:\n" + steps)
        if ev:
            parts.append("Evidence:\n" + ev)
        parts.append(f"(analysed by {self.analyser}{': ' + self.reason if self.reason else ''})")
        return "\n\n".join(parts)
