"""Line-numbered YAML configuration files: every problem named by file, line and field.

Pure Python (PyYAML only; no Airflow). The technique of
``workflows/ci_pipeline_analytics/alert_rules.py``, shared so that other configuration files can use it
without one workflow importing another: the text is *composed* (not loaded), so every node keeps its
line; a parser walks the nodes, converts each scalar with a small converter function and collects every
problem instead of stopping at the first one. The caller raises them together as one
:class:`ConfigError` subclass, each line reading like
``projects.yaml line 12, projects[2].github: must be "owner/name", got "acme"``.

Building blocks:

* :class:`Problem` (source, 1-based line, field path, message) and :class:`ConfigError` (a
  ``ValueError`` listing every problem; subclass it per file kind and set ``what``);
* :class:`Bad`: what a converter raises; its text completes ``"<field>: ..."``;
* :func:`got`: how a wrong value is quoted in a message (``"high"``, ``nothing (null)``, ``a list``);
* :class:`NodeParser`: ``problem``, ``convert``, ``items``, ``mapping`` (``<<`` merges applied,
  duplicate keys reported with the first key's line), ``unknown`` (with a "did you mean" hint);
* :func:`parse_document`: compose the text (a syntax error becomes a problem with its line), run a
  builder on the root node, raise the collected problems sorted by line;
* :func:`read_config_text`: read a file as UTF-8 (errors name the file).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

MERGE_TAG = "tag:yaml.org,2002:merge"

#: Returned by :meth:`NodeParser.convert` and friends (after reporting) when a value is wrong.
MISSING: Any = object()


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where (file, 1-based line, field path) and what."""

    source: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source} line {self.line}"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A configuration file is not valid; ``problems`` lists every problem (each names file, line, field)."""

    #: Completes "N problems in ...": subclasses name their file kind.
    what = "the configuration"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        if n == 1:
            message = str(self.problems[0])
        else:
            body = "\n".join(f"  {p}" for p in self.problems)
            message = f"{n} problems in {self.what}:\n{body}"
        super().__init__(message)


class Bad(Exception):
    """A value is wrong; the message completes ``"<field>: ..."``."""


class Shape:
    """Stands for a list or a mapping where a single value was expected, so converters word the error."""

    def __init__(self, what: str) -> None:
        self.what = what


def got(value: Any) -> str:
    """A value as quoted in an error message."""
    if isinstance(value, Shape):
        return value.what
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def as_number(value: Any) -> float | None:
    """A finite int or float (not a bool) as a float, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# ---- converters ----------------------------------------------------------------------------------


def number(value: Any) -> float:
    v = as_number(value)
    if v is None:
        raise Bad(f"must be a number, got {got(value)}")
    return v


def non_negative(value: Any) -> float:
    v = as_number(value)
    if v is None or v < 0:
        raise Bad(f"must be a number of at least 0, got {got(value)}")
    return v


def positive(value: Any) -> float:
    v = as_number(value)
    if v is None or v <= 0:
        raise Bad(f"must be a number above 0, got {got(value)}")
    return v


def whole(lo: int, hi: int) -> Callable[[Any], int]:
    def conv(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise Bad(f"must be a whole number from {lo} to {hi}, got {got(value)}")
        return value

    return conv


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, got {got(value)}")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"must be a string, got {got(value)}")
    return value


def one_of(choices: Sequence[str]) -> Callable[[Any], str]:
    def conv(value: Any) -> str:
        if value not in choices:
            close = difflib.get_close_matches(value, list(choices), n=1) if isinstance(value, str) else []
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise Bad(f"must be one of {', '.join(choices)}{hint}, got {got(value)}")
        return str(value)

    return conv


# ---- the node walker -----------------------------------------------------------------------------


def shape(node: yaml.Node) -> str:
    """What a node holds, for messages: ``a list``, ``a mapping``, ``nothing (null)`` or its text."""
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if node.tag.endswith(":null"):
        return "nothing (null)"
    return json.dumps(str(node.value), ensure_ascii=False) if node.tag.endswith(":str") else str(node.value)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class NodeParser:
    """Walks composed YAML nodes (which keep their line numbers) and collects every problem."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader
        self.problems: list[Problem] = []

    def problem(self, at: yaml.Node | int, where: str | None, message: str) -> None:
        line = at if isinstance(at, int) else line_of(at)
        self.problems.append(Problem(self.source, line, where or None, message))

    def value(self, node: yaml.Node, where: str) -> Any:
        """The Python value of a scalar (a :class:`Shape` for a list or mapping); MISSING when unreadable."""
        if not isinstance(node, yaml.ScalarNode):
            return Shape(shape(node))
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:  # an unknown tag, "!!int x", ...
            self.problem(node, where, f"cannot read this value: {getattr(exc, 'problem', None) or exc}")
            return MISSING

    def convert(self, node: yaml.Node, where: str, conv: Callable[[Any], Any]) -> Any:
        """The node's value checked by ``conv``; MISSING (after reporting) when wrong."""
        value = self.value(node, where)
        if value is MISSING:
            return MISSING
        try:
            return conv(value)
        except Bad as exc:
            self.problem(node, where, str(exc))
            return MISSING

    def items(self, node: yaml.Node, where: str, conv: Callable[[Any], Any], *, empty: str | None = None) -> Any:
        """A list of values, or one value standing for a list of one; MISSING when wrong.

        ``empty``: the message for an empty list (default: it is refused).
        """
        if isinstance(node, yaml.SequenceNode):
            if not node.value:
                self.problem(node, where, empty or "must not be an empty list (leave the field out)")
                return MISSING
            values = [self.convert(item, f"{where}[{i}]", conv) for i, item in enumerate(node.value)]
            return MISSING if any(v is MISSING for v in values) else tuple(values)
        if isinstance(node, yaml.MappingNode):
            self.problem(node, where, "must be a value or a list of values, got a mapping")
            return MISSING
        value = self.convert(node, where, conv)
        return MISSING if value is MISSING else (value,)

    def mapping(self, node: yaml.Node, where: str, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """Key -> (key node, value node); ``<<`` merges applied, duplicate keys reported.

        ``what`` completes "must be a mapping (...)" when the node is something else (then None).
        """
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, where, f"must be a mapping ({what}), got {shape(node)}")
            return None
        own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for src in sources:
                    for name, pair in (self.mapping(src, where, "a << merge takes mappings") or {}).items():
                        merged.setdefault(name, pair)
                continue
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            path = f"{where}.{name}" if where else str(name)
            if name is None:
                self.problem(key_node, where, "keys must be plain names")
            elif name in own:
                self.problem(key_node, path, f"duplicate key (first at line {line_of(own[name][0])})")
            else:
                own[name] = (key_node, value_node)
        return {**merged, **own}

    def unknown(self, key_node: yaml.Node, where: str, known: Sequence[str], suffix: str = "") -> None:
        """Report an unknown key, with the closest known one as a hint."""
        name = str(key_node.value)
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        self.problem(key_node, f"{where}.{name}" if where else name, f"unknown field{hint}{suffix}")


def parse_document(
    text: str,
    source: str,
    error: type[ConfigError],
    build: Callable[[NodeParser, yaml.Node | None], T],
) -> T:
    """Compose ``text`` and run ``build(parser, root)`` (root None for an empty document).

    A YAML syntax error, or any problem ``build`` reported, raises ``error`` with every problem sorted by
    line; otherwise ``build``'s result is returned.
    """

    def reader_error(exc: yaml.YAMLError) -> ConfigError:  # e.g. a character YAML does not allow
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
        return error([Problem(source, line, None, f"YAML error: {exc}")])

    try:
        loader = yaml.SafeLoader(text)  # the reader checks every character here already
    except yaml.YAMLError as exc:
        raise reader_error(exc) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            what = str(exc.problem or exc)
            if exc.context:
                started = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
                what += f" ({exc.context}{started})"
            raise error([Problem(source, line, None, f"YAML syntax error: {what}")]) from None
        except yaml.YAMLError as exc:
            raise reader_error(exc) from None
        parser = NodeParser(source, loader)
        result = build(parser, root)
    finally:
        loader.dispose()
    if parser.problems:
        raise error(sorted(parser.problems, key=lambda p: p.line))
    return result


def read_config_text(path: str | Path, error: type[ConfigError]) -> tuple[str, str]:
    """``(text, source)`` of a file, ``source`` being its name; not UTF-8 raises ``error`` naming it.

    A missing file raises ``FileNotFoundError`` (naming the path).
    """
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8"), p.name
    except UnicodeDecodeError as exc:
        raise error([Problem(p.name, 1, None, f"not UTF-8 text: {exc}")]) from None
