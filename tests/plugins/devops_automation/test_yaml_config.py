"""The line-numbered YAML configuration helpers: syntax errors, duplicate keys, merges, converters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devops_automation import yaml_config as yc


class DemoError(yc.ConfigError):
    what = "the demo file"


def build(p: yc.NodeParser, root: yaml.Node | None) -> dict[str, Any]:
    """A tiny schema: ``size`` (whole 1-10), ``tags`` (list of strings), ``mode`` (a or b)."""
    out: dict[str, Any] = {}
    if root is None:
        p.problem(1, None, "empty")
        return out
    for name, (key_node, value_node) in (p.mapping(root, "", "size, tags, mode") or {}).items():
        if name == "size":
            out[name] = p.convert(value_node, name, yc.whole(1, 10))
        elif name == "tags":
            out[name] = p.items(value_node, name, yc.text)
        elif name == "mode":
            out[name] = p.convert(value_node, name, yc.one_of(("alpha", "beta")))
        else:
            p.unknown(key_node, "", ("size", "tags", "mode"))
    return out


def parse(text: str) -> dict[str, Any]:
    return yc.parse_document(text, "demo.yaml", DemoError, build)


def problems(text: str) -> list[str]:
    with pytest.raises(DemoError) as info:
        parse(text)
    return [str(p) for p in info.value.problems]


def test_values_lists_and_merges() -> None:
    assert parse("size: 3\ntags: [a, b]\nmode: beta\n") == {"size": 3, "tags": ("a", "b"), "mode": "beta"}
    assert parse("tags: solo\n") == {"tags": ("solo",)}  # one value stands for a list of one
    merged = yc.parse_document("x: &x {size: 4}\ny: {<<: *x, mode: alpha}\n", "demo.yaml", DemoError, merged_build)
    assert merged == {"size": 4, "mode": "alpha"}


def merged_build(p: yc.NodeParser, root: yaml.Node | None) -> dict[str, Any]:
    assert root is not None
    top = p.mapping(root, "", "x, y")
    assert top is not None
    y = top["y"][1]
    return build(p, y)


def test_every_problem_names_the_line_and_the_field_in_line_order() -> None:
    found = problems("mode: gamma\nsize: 11\ntags: [a, 3]\nsise: 2\nsize: 2\n")
    assert found == [
        'demo.yaml line 1, mode: must be one of alpha, beta, got "gamma"',
        "demo.yaml line 2, size: must be a whole number from 1 to 10, got 11",
        "demo.yaml line 3, tags[1]: must be a string, got 3",
        "demo.yaml line 4, sise: unknown field (did you mean size?)",
        "demo.yaml line 5, size: duplicate key (first at line 2)",
    ]
    with pytest.raises(DemoError, match=r"^5 problems in the demo file:\n  demo.yaml line 1, mode"):
        parse("mode: gamma\nsize: 11\ntags: [a, 3]\nsise: 2\nsize: 2\n")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("size: [1\n", "demo.yaml line 2: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
        ("size: 1\n  mode: a\n", "demo.yaml line 2: YAML syntax error: mapping values are not allowed here"),
        ("size: !!int x\n", "demo.yaml line 1, size: cannot read this value"),
        ("size: 1\nmode: \x07\n", "demo.yaml line 2: YAML error: unacceptable character #x0007"),
        (
            "a: 1\n---\nb: 2\n",
            (
                "demo.yaml line 2: YAML syntax error: but found another document (expected a single document in the "
                "stream at line 1)"
            ),
        ),
        ("- 1\n", "demo.yaml line 1: must be a mapping (size, tags, mode), got a list"),
        ("tags: []\n", "demo.yaml line 1, tags: must not be an empty list (leave the field out)"),
        ("tags: {a: 1}\n", "demo.yaml line 1, tags: must be a value or a list of values, got a mapping"),
        ("size: {a: 1}\n", "demo.yaml line 1, size: must be a whole number from 1 to 10, got a mapping"),
        ("", "demo.yaml line 1: empty"),
    ],
)
def test_syntax_and_shape_errors(text: str, expected: str) -> None:
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_converters_and_got() -> None:
    assert [yc.got(v) for v in (None, True, "x", 1.5, yc.Shape("a list"), object())][:5] == [
        "nothing (null)",
        "true",
        '"x"',
        "1.5",
        "a list",
    ]
    assert yc.positive(2) == 2.0 and yc.non_negative(0) == 0.0 and yc.number(-3) == -3.0
    for conv, bad in ((yc.positive, 0), (yc.non_negative, -1), (yc.number, True), (yc.boolean, "yes")):
        with pytest.raises(yc.Bad):
            conv(bad)
    assert yc.as_number(float("inf")) is None and yc.as_number(False) is None


def test_read_config_text_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "a.yaml"
    good.write_text("size: 1\n")
    assert yc.read_config_text(good, DemoError) == ("size: 1\n", "a.yaml")
    bad = tmp_path / "b.yaml"
    bad.write_bytes(b"size: \xff\n")
    with pytest.raises(DemoError, match=r"^b.yaml line 1: not UTF-8 text"):
        yc.read_config_text(bad, DemoError)
    with pytest.raises(FileNotFoundError):
        yc.read_config_text(tmp_path / "missing.yaml", DemoError)
