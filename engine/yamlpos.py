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
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or str(exc)
        return None, [Problem(file, line, column, f"YAML syntax: {reason}", _syntax_hint(reason))]
    finally:
        loader.dispose()

    located = Located(file, None)
    problems: list[Problem] = []
    if node is not None:
        located.value = _build(node, (), located, problems, loader)
    return located, problems


def _syntax_hint(reason: str) -> str | None:
    if "tab" in reason:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in reason:
        return "put quotes around a text that contains ': '"
    return None


def _build(node: yaml.Node, path: Path, out: Located, problems: list[Problem], loader: Any) -> Any:
    out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(key)
            child = (*path, key)
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                problems.append(
                    Problem(
                        out.file,
                        *key_mark,
                        f"duplicate key {key!r}",
                        "each key may appear once; merge the two entries",
                    )
                )
                continue
            out.key_positions[child] = key_mark
            result[key] = _build(value_node, child, out, problems, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), out, problems, loader) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
