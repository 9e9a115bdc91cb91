"""Templates and conditions over a conversation's data, in a Jinja2 sandbox.

Only texts written in flow files are ever compiled. What a user typed enters
a template as a value, never as template source, so `{{ 7*7 }}` typed as a
name stays that literal text. A value that is a per-language mapping
(`{uz: ..., ru: ...}`) is shown in the conversation's language.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)


@pass_context
def _localize(context: Context, value: Any) -> Any:
    if isinstance(value, Mapping):
        language = context.get("language")
        if language in value:
            return value[language]
    if value is None or isinstance(value, Undefined):
        return ""
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _uuid() -> str:
    return str(uuid.uuid4())


ENV = ImmutableSandboxedEnvironment(
    undefined=ChainableUndefined, autoescape=False, finalize=_localize, keep_trailing_newline=False
)
ENV.globals.update(now=_now, uuid=_uuid)

BUILTIN_NAMES = frozenset(
    {
        "chat_id",
        "user",
        "language",
        "texts",
        "lists",
        "item",
        "now",
        "uuid",
        "true",
        "false",
        "none",
        "True",
        "False",
        "None",
    }
)


class Template:
    """A compiled text: renders to a string, or to a native value when it is one `{{ expr }}`."""

    __slots__ = ("_expression", "_template", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = None
        self._expression = None
        match = _SINGLE_EXPRESSION.match(source)
        if match:
            self._expression = ENV.compile_expression(match.group("expr"), undefined_to_none=True)
        elif "{{" in source or "{%" in source:
            self._template = ENV.from_string(source)

    def render(self, context: Mapping[str, Any]) -> str:
        if self._expression is not None:
            return str(_localize_plain(self._expression(**context), context))
        if self._template is not None:
            return self._template.render(context)
        return self.source

    def value(self, context: Mapping[str, Any]) -> Any:
        """The native value of a single expression (a list stays a list), else the text."""
        if self._expression is not None:
            return _localize_plain(self._expression(**context), context, keep_none=True)
        return self.render(context)


class Condition:
    """A compiled expression such as `student and not student.phone`."""

    __slots__ = ("_expression", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._expression = ENV.compile_expression(source, undefined_to_none=True)

    def holds(self, context: Mapping[str, Any]) -> bool:
        return bool(self._expression(**context))

    def value(self, context: Mapping[str, Any]) -> Any:
        return self._expression(**context)


def _localize_plain(value: Any, context: Mapping[str, Any], keep_none: bool = False) -> Any:
    if isinstance(value, Mapping) and context.get("language") in value:
        return value[context["language"]]
    if value is None or isinstance(value, Undefined):
        return None if keep_none else ""
    return value


def template_variables(source: str) -> set[str]:
    """Top-level names a template reads; raises TemplateSyntaxError on bad markup."""
    return meta.find_undeclared_variables(ENV.parse(source))


def expression_variables(source: str) -> set[str]:
    """Top-level names an expression reads, and the syntax check of it."""
    ENV.compile_expression(source)
    tree = ENV.parse("{{ " + source + " }}")
    return meta.find_undeclared_variables(tree)


def attribute_paths(source: str, *, expression: bool = False) -> set[tuple[str, str]]:
    """Pairs (name, attribute) read as `name.attribute`, e.g. ('lists', 'courses')."""
    tree = ENV.parse("{{ " + source + " }}" if expression else source)
    found = set()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name):
            found.add((node.node.name, node.attr))
    return found


__all__ = [
    "BUILTIN_NAMES",
    "Condition",
    "Template",
    "TemplateSyntaxError",
    "attribute_paths",
    "expression_variables",
    "template_variables",
]
