"""Load YAML into plain Python values while remembering where each node stood.

Product staff read errors as `file:line:column`, so every mapping key and
value keeps its position. PyYAML's composer gives nodes with marks; we build
the values ourselves so that duplicate keys are reported instead of silently
overwritten (PyYAML keeps the last one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import Problem

Path = tuple[str | int, ...]


class FlowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so `on:` and `no` stay words."""


FlowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
FlowYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(slots=True)
class Located:
    """A document's values with the line and column (1-based) of each path."""

    file: str
    value: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # Paths whose value could not be read, or that the schema check replaced or dropped so
    # that the rest could still be checked: nothing more is said about them.
    pruned: list[Path] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of `path`, or of its nearest ancestor that has one."""
        table = self.key_positions if key else self.positions
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in table:
                return table[prefix]
            if prefix in self.positions:
                return self.positions[prefix]
        return (1, 1)

    def problem(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False
    ) -> Problem:
        line, column = self.where(path, key=key)
        return Problem(self.file, line, column, message, hint)


def load_located(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse `text`; on a syntax error return no value and one problem at the error's mark."""
    loader = FlowYamlLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return None, [syntax_problem(exc, file)]
    finally:
        loader.dispose()

    located = Located(file, None)
    problems: list[Problem] = []
    if node is not None:
        located.value = _build(node, (), _Builder(located, problems, loader))
    return located, problems


# --- syntax errors -------------------------------------------------------------------------

# (PyYAML's problem, PyYAML's context or None, our message, our hint, point at the context?)
_SYNTAX: list[tuple[str, str | None, str, str | None, bool]] = [
    (
        r"found character '\\t' that cannot start any token",
        None,
        "a tab character; YAML indents with spaces only",
        "replace the tab with spaces",
        False,
    ),
    (
        r"found character '(?P<char>[@`%])' that cannot start any token",
        None,
        "a value cannot start with '{char}' unless it is quoted",
        'put the value in quotes, e.g. say: "{char}welcome"',
        False,
    ),
    (
        r"found character '(?P<char>.+)' that cannot start any token",
        None,
        "unexpected character '{char}' here",
        "put the value in quotes",
        False,
    ),
    (
        r"found unexpected (end of stream|document separator)",
        "quoted scalar",
        "this quoted text is never closed",
        'end it with the same quote it starts with; inside double quotes write \\" for a quote',
        True,
    ),
    (
        r"found unknown escape character '(?P<char>.+)'",
        None,
        "'\\{char}' is not a valid escape inside double quotes",
        r"write regular expressions in single quotes, e.g. pattern: '^\d{{14}}$'",
        False,
    ),
    (
        r"expected <block end>, but found '\?'",
        "block collection",
        "a 'key: value' line among the items of a list",
        "every item of a list starts with '- ' in the same column",
        False,
    ),
    (
        r"expected <block end>",
        None,
        "wrong indentation: this line does not line up with the lines above it",
        "keys of one mapping, and items of one list, start in the same column",
        False,
    ),
    (
        r"mapping values are not allowed here",
        None,
        "unexpected ':' here",
        "put quotes around a text that contains ': ', or indent this line like the keys above it",
        False,
    ),
    (
        r"could not find expected ':'",
        None,
        "this line is neither 'key: value' nor a list item '- ...'",
        "add ':' after the key, or quote a text that runs over several lines",
        True,
    ),
    (
        r"did not find expected key",
        None,
        "expected a 'key: value' line here",
        "keys of one mapping start in the same column",
        False,
    ),
    (
        r"did not find expected '-' indicator",
        None,
        "expected a list item '- ...' here",
        "items of one list start with '- ' in the same column",
        False,
    ),
    (
        r"expected ',' or '(?P<close>[\]}])'",
        None,
        "the '{open}' opened here is never closed with '{close}'",
        "separate the items with ',' and end them with '{close}'",
        True,
    ),
    (
        r"but found another document",
        None,
        "a second YAML document starts here; a flow file holds one",
        "remove the '---' line, or put the second flow in its own file",
        False,
    ),
    (
        r"found undefined alias '(?P<char>.+)'",
        None,
        "'*{char}' refers to no anchor '&{char}'",
        "put a value that starts with '*' in quotes",
        False,
    ),
]


def syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    """A YAML syntax error as a sentence a product person can act on, at its mark."""
    reason, context = exc.problem or str(exc), exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    for pattern, where, message, hint, at_context in _SYNTAX:
        found = re.search(pattern, reason)
        if found and (where is None or where in context):
            words = found.groupdict() | _brackets(found)
            if at_context and exc.context_mark:
                mark = exc.context_mark
            text, hint = message.format(**words), hint and hint.format(**words)
            return _problem_at(file, mark, f"YAML syntax: {text}", hint)
    return _problem_at(file, mark, f"YAML syntax: {reason}", None)


def _brackets(found: re.Match[str]) -> dict[str, str]:
    close = found.groupdict().get("close")
    return {"open": {"]": "[", "}": "{"}[close]} if close else {}


def _problem_at(file: str, mark: yaml.Mark | None, message: str, hint: str | None) -> Problem:
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    return Problem(file, line, column, message, hint)


# --- values with positions -----------------------------------------------------------------


@dataclass(slots=True)
class _Builder:
    out: Located
    problems: list[Problem]
    loader: Any
    open_nodes: set[int] = field(default_factory=set)

    def report(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        self.problems.append(_problem_at(self.out.file, node.start_mark, message, hint))


def _build(node: yaml.Node, path: Path, builder: _Builder) -> Any:
    builder.out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if id(node) in builder.open_nodes:
        builder.report(node, "YAML syntax: this alias contains itself", "remove the '*' alias")
        builder.out.pruned.append(path)
        return None
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, builder, path)
    builder.open_nodes.add(id(node))
    try:
        if isinstance(node, yaml.MappingNode):
            return _mapping(node, path, builder)
        return [_build(item, (*path, i), builder) for i, item in enumerate(node.value)]
    finally:
        builder.open_nodes.discard(id(node))


def _mapping(node: yaml.MappingNode, path: Path, builder: _Builder) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = _key(key_node, builder)
        key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if key in result:
            first = builder.out.key_positions[(*path, key)][0]
            builder.report(
                key_node,
                f"duplicate key {key!r}: it already appears on line {first}",
                "each key may appear once in a mapping; merge the two entries",
            )
            continue
        builder.out.key_positions[(*path, key)] = key_mark
        result[key] = _build(value_node, (*path, key), builder)
    return result


def _key(node: yaml.Node, builder: _Builder) -> str | int | float | bool:
    if isinstance(node, yaml.ScalarNode):
        key = _scalar(node, builder)
    else:
        key = _build(node, (), _Builder(Located(builder.out.file, None), [], builder.loader))
    return key if isinstance(key, (str, int, float, bool)) else str(key)


def _scalar(node: yaml.ScalarNode, builder: _Builder, path: Path | None = None) -> Any:
    try:
        return builder.loader.construct_object(node, deep=True)
    except yaml.YAMLError:
        message, hint = f"YAML syntax: unknown tag {node.tag!r}", "remove the tag"
    except (ValueError, TypeError):
        tag = node.tag.rsplit(":", 1)[-1]
        message = f"YAML syntax: cannot read {node.value!r} as {tag}"
        hint = f"remove the '!!{tag}' tag, or fix the value"
    builder.report(node, message, hint)
    if path is not None:
        builder.out.pruned.append(path)
    return node.value
