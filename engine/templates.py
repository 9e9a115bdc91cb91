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


_NAME_PATH = re.compile(r"^\s*(not\s+)?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*$")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_DICT_NAMES = frozenset(dir(dict))
_MISSING = object()


class _Lookup:
    """A fast path for the commonest expressions: `name`, `name.key.key`, `not name`.

    It gives what Jinja would (a missing name or key is None) at a fraction of the
    cost; anything else, or a value that is not a plain mapping, goes to Jinja.
    """

    __slots__ = ("negate", "parts")

    def __init__(self, negate: bool, parts: tuple[str, ...]) -> None:
        self.negate, self.parts = negate, parts

    @classmethod
    def parse(cls, source: str) -> _Lookup | None:
        match = _NAME_PATH.match(source)
        if not match:
            return None
        parts = tuple(match.group(2).split("."))
        if parts[0] in (
            "not",
            "and",
            "or",
            "in",
            "is",
            "if",
            "else",
            "true",
            "false",
            "none",
            "True",
            "False",
            "None",
        ) or _DICT_NAMES & set(parts[1:]):
            return None
        return cls(bool(match.group(1)), parts)

    def get(self, context: Mapping[str, Any]) -> Any:
        """The value, or _MISSING when Jinja must decide (an object that is not a dict)."""
        value = context.get(self.parts[0])
        for part in self.parts[1:]:
            if value is None:
                break
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(part)
        return (not value) if self.negate else value


class Template:
    """A compiled text: renders to a string, or to a native value when it is one `{{ expr }}`."""

    __slots__ = ("_expression", "_lookup", "_parts", "_template", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = None
        self._expression = None
        self._lookup = None
        self._parts: list[str | _Lookup] | None = None
        match = _SINGLE_EXPRESSION.match(source)
        if match:
            self._expression = ENV.compile_expression(match.group("expr"), undefined_to_none=True)
            self._lookup = _Lookup.parse(match.group("expr"))
        elif "{{" in source or "{%" in source:
            self._template = ENV.from_string(source)
            self._parts = _fast_parts(source)

    def render(self, context: Mapping[str, Any]) -> str:
        if self._expression is not None:
            return str(_localize_plain(self.value(context), context))
        if self._parts is not None:
            rendered = _render_parts(self._parts, context)
            if rendered is not None:
                return rendered
        if self._template is not None:
            return self._template.render(context)
        return self.source

    def value(self, context: Mapping[str, Any]) -> Any:
        """The native value of a single expression (a list stays a list), else the text."""
        if self._expression is None:
            return self.render(context)
        if self._lookup is not None:
            found = self._lookup.get(context)
            if found is not _MISSING:
                return _localize_plain(found, context, keep_none=True)
        return _localize_plain(self._expression(**context), context, keep_none=True)


def _fast_parts(source: str) -> list[str | _Lookup] | None:
    """Literal text and simple lookups, when the template has nothing else; else None."""
    if "{%" in source or "{#" in source:
        return None
    if source.endswith("\n"):  # Jinja drops one trailing newline (keep_trailing_newline)
        source = source[:-1]
    parts: list[str | _Lookup] = []
    position = 0
    for match in _PLACEHOLDER.finditer(source):
        lookup = _Lookup.parse(match.group(1))
        if lookup is None or lookup.negate:
            return None
        parts += [source[position : match.start()], lookup]
        position = match.end()
    parts.append(source[position:])
    return [part for part in parts if part != ""]


def _render_parts(parts: list[str | _Lookup], context: Mapping[str, Any]) -> str | None:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = part.get(context)
        if value is _MISSING:
            return None
        value = _localize_plain(value, context)
        out.append(value if isinstance(value, str) else str(value))
    return "".join(out)


class Condition:
    """A compiled expression such as `student and not student.phone`."""

    __slots__ = ("_expression", "_lookup", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._expression = ENV.compile_expression(source, undefined_to_none=True)
        self._lookup = _Lookup.parse(source)

    def holds(self, context: Mapping[str, Any]) -> bool:
        return bool(self.value(context))

    def value(self, context: Mapping[str, Any]) -> Any:
        if self._lookup is not None:
            found = self._lookup.get(context)
            if found is not _MISSING:
                return found
        return self._expression(**context)


def _localize_plain(value: Any, context: Mapping[str, Any], keep_none: bool = False) -> Any:
    kind = type(value)
    if kind is str or kind is int:  # the commonest values, settled without ABC checks
        return value
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
