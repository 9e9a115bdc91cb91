"""Pydantic's validation errors as sentences about a flow's keys, and the repair after them.

Each error names the key, the value found and what was expected, at the
line and column of that value. A file with schema errors still gets its
semantic checks: `repair` replaces each broken node by a harmless placeholder
(or drops it) and records the paths it touched in `Located.pruned`, so that
the checker stays silent about what it could not see.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ValidationError

from engine.errors import Problem
from engine.schema import (
    ActionSpec,
    ButtonSpec,
    DataButtonsSpec,
    ExpectSpec,
    FlowSpec,
    KeyboardSpec,
    KeyButtonSpec,
    StateSpec,
    TransitionSpec,
    parse_duration,
)
from engine.yamlpos import Located, Path

_ROOT_REQUIRED = ("flow", "languages", "start")  # without them no semantic check makes sense
_REPAIR_ROUNDS = 10
_DELETE = object()  # repair: drop the key instead of replacing its value

_NOUNS: dict[type[BaseModel], str] = {
    FlowSpec: "flow",
    StateSpec: "state",
    ButtonSpec: "button",
    KeyButtonSpec: "keyboard button",
    KeyboardSpec: "keyboard",
    ActionSpec: "action",
    TransitionSpec: "transition",
    ExpectSpec: "mapping of what the state expects",
    DataButtonsSpec: "mapping of items, label and save_as",
}
_EXAMPLES: dict[type[BaseModel], str] = {
    FlowSpec: "flow: name, languages: [uz, ru], start: first_state, states: ...",
    StateSpec: '{say: "Hello", on: [{go: next_state}]}',
    ButtonSpec: '{label: "Yes", value: yes}',
    KeyButtonSpec: '{label: "Share my number", contact: true}',
    KeyboardSpec: '{buttons: [[{label: "Menu", value: menu}]]}',
    ActionSpec: "{call: get_user, save_as: user}",
    TransitionSpec: "{button: yes, go: next_state}",
    ExpectSpec: "{input: text, save_as: answer}",
    DataButtonsSpec: '{items: lists.courses, label: "{{ item.name }}", save_as: course}',
}
_PLACEHOLDERS: dict[type[BaseModel], dict[str, Any]] = {
    StateSpec: {"final": True},
    TransitionSpec: {},
    ActionSpec: {"unset": []},
    ButtonSpec: {"label": "", "value": ""},
    KeyButtonSpec: {"label": ""},
}
_PATTERNS = {r"^[a-z][a-z0-9_]*$": "lowercase letters, digits and '_', starting with a letter"}
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One pydantic error, located by YAML keys and list indexes only."""

    kind: str
    loc: Path
    input: Any = None
    message: str = ""
    ctx: Mapping[str, Any] | None = None
    union: int | None = None  # length of `loc` where the value met a union of types
    keys: tuple[str, ...] = ()  # the missing keys, for kind "missing"


def validate_schema(located: Located) -> tuple[FlowSpec | None, list[Problem]]:
    """The flow, and every schema problem; with problems the flow is a repaired copy."""
    if not isinstance(located.value, dict):
        return None, [_not_a_mapping(located)]
    try:
        return FlowSpec.model_validate(located.value), []
    except ValidationError as exc:
        errors = [_parse(error) for error in exc.errors()]
    unreadable = list(located.pruned)  # reported already, as YAML errors
    problems: list[Problem] = []
    for error in _merged(errors):
        problem = _problem(located, error)
        if problem not in problems and not _within(error.loc, unreadable):
            problems.append(problem)
    return _repair(located, errors), problems


def _not_a_mapping(located: Located) -> Problem:
    value = located.value
    found = (
        "the file is empty"
        if value is None
        else f"the file holds {'a list' if isinstance(value, list) else _got(value)}"
    )
    return located.problem(
        (),
        f"{found}; a flow file is a mapping with 'flow', 'languages', 'start' and 'states'",
        f"start from a copy of an existing flow: {_EXAMPLES[FlowSpec]}",
    )


# --- reading pydantic's errors -------------------------------------------------------------


def _parse(error: Mapping[str, Any]) -> SchemaError:
    """Drop pydantic's union branch names ('str', 'dict[str,str]') from the location."""
    loc: list[Any] = []
    union, annotation = None, FlowSpec
    for part in error["loc"]:
        if part == "[key]":
            return SchemaError("key", tuple(loc), loc[-1])
        members = _members(annotation)
        if len(members) > 1 and isinstance(part, str):
            union = len(loc) if union is None else union
            annotation = _branch(members, part)
            continue
        loc.append(part)
        annotation = child_annotation(annotation, part)
    if error["type"] == "invalid_key":  # a key of a model that is not a text
        return SchemaError("key", tuple(loc), loc[-1])
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return SchemaError(
        error["type"], tuple(loc), error.get("input"), message, error.get("ctx"), union
    )


def _merged(errors: list[SchemaError]) -> list[SchemaError]:
    """One error per union (the branch that got furthest), and one per node's missing keys."""
    chosen = [e for e in errors if e.union is None]
    unions: dict[Path, list[SchemaError]] = {}
    for error in errors:
        if error.union is not None:
            unions.setdefault(error.loc[: error.union], []).append(error)
    for point, group in unions.items():
        deeper = [e for e in group if len(e.loc) > len(point)]
        chosen += deeper or [SchemaError("union", point, group[0].input)]
    missing: dict[Path, list[str]] = {}
    for error in chosen:
        if error.kind == "missing":
            missing.setdefault(error.loc[:-1], []).append(str(error.loc[-1]))
    merged = [e for e in chosen if e.kind != "missing"]
    return merged + [
        SchemaError("missing", loc, keys=tuple(keys)) for loc, keys in missing.items()
    ]


# --- annotations ---------------------------------------------------------------------------


def _members(annotation: Any) -> list[Any]:
    if annotation is None:
        return []
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _plain(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _branch(members: list[Any], tag: str) -> Any:
    name = tag.split("[", 1)[0]
    for member in members:
        plain = _plain(member)
        origin = typing.get_origin(plain)
        if (name == "literal" and origin is Literal) or getattr(
            origin or plain, "__name__", None
        ) == name:
            return member
    return members[0]


def model_field(model: type[BaseModel], key: Any) -> Any:
    """The field named `key` (or aliased so) of `model`, or None."""
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def child_annotation(annotation: Any, part: Any) -> Any:
    """The annotation of `part` (a key or an index) inside a node of `annotation`."""
    for member in _members(annotation):
        plain = _plain(member)
        origin = typing.get_origin(plain)
        if isinstance(plain, type) and issubclass(plain, BaseModel) and isinstance(part, str):
            field = model_field(plain, part)
            return field.annotation if field else None
        if origin is list and isinstance(part, int):
            return typing.get_args(plain)[0]
        if origin is dict:
            return typing.get_args(plain)[1]
    return None


def annotation_at(loc: Path) -> Any:
    annotation: Any = FlowSpec
    for part in loc:
        annotation = child_annotation(annotation, part)
    return annotation


def allowed_keys(loc: Path) -> list[str]:
    model = _model(annotation_at(loc))
    if model is None:
        return []
    return sorted(field.alias or name for name, field in model.model_fields.items())


# --- sentences -----------------------------------------------------------------------------


def _problem(located: Located, error: SchemaError) -> Problem:
    subject = subject_of(error.loc)
    if error.kind == "extra_forbidden":
        return _unknown_key(located, error)
    if error.kind == "missing":
        model = _model(annotation_at(error.loc))
        hint = f"write it like {_EXAMPLES[model]}" if model in _EXAMPLES else None
        return located.problem(error.loc, f"{subject} is missing {_names(error.keys)}", hint)
    if error.kind == "key":
        parent = error.loc[:-1]
        what = "state name" if parent == ("states",) else "key"
        where = f" in {subject_of(parent)}" if parent and what == "key" else ""
        return located.problem(
            error.loc,
            f"{what} {error.input!r}{where} must be a text, not {_kind(error.input)}",
            f"put the key in quotes: '{error.input}'",
            key=True,
        )
    if error.kind in ("value_error", "assertion_error"):
        return located.problem(error.loc, _value_error(error.message, subject))
    message = _constraint(error, subject) or _type_error(error, subject)
    return located.problem(error.loc, message, _type_hint(error))


def _value_error(message: str, subject: str) -> str:
    # Validators say "expected X, got Y"; the sentence becomes "<subject> must be X; got Y".
    if message.startswith("expected "):
        expected, _, got = message.removeprefix("expected ").rpartition(", got ")
        return f"{subject} must be {expected}; got {got}" if expected else f"{subject}: {message}"
    return f"{subject}: {message}"


def _kind(value: Any) -> str:
    return "true or false" if isinstance(value, bool) else "a number"


def _unknown_key(located: Located, error: SchemaError) -> Problem:
    key, parent = error.loc[-1], error.loc[:-1]
    allowed = allowed_keys(parent)
    where = f"in {subject_of(parent)}" if parent else "at the top of the flow"
    return located.problem(
        error.loc,
        f"unknown key {key!r} {where}",
        did_you_mean(key, allowed) or f"allowed here: {', '.join(allowed)}",
        key=True,
    )


def _constraint(error: SchemaError, subject: str) -> str | None:
    ctx = error.ctx or {}
    if error.kind in _BOUNDS:
        name, words = _BOUNDS[error.kind]
        return f"{subject} must be {words} {ctx[name]}; got {_got(error.input)}"
    if error.kind == "too_short":
        noun = {"states": "state", "languages": "language"}.get(str(error.loc[-1]), "item")
        return f"{subject} is empty; expected at least {ctx.get('min_length', 1)} {noun}"
    if error.kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        expected = _PATTERNS.get(pattern, f"a text matching {pattern}")
        return f"{subject} must be {expected}; got {_got(error.input)}"
    return None


def _type_error(error: SchemaError, subject: str) -> str:
    expected = expected_of(annotation_at(error.loc)) + _range(error.loc)
    if error.input is None:
        return f"{subject} is empty; expected {expected}"
    return f"{subject} must be {expected}; got {_got(error.input)}"


def _range(loc: Path) -> str:
    """' from 1 to 8' for a number field with both bounds."""
    model = _model(annotation_at(loc[:-1])) if loc else None
    field = model_field(model, loc[-1]) if model else None
    bounds = {
        name: getattr(m, name)
        for m in (field.metadata if field else [])
        for name in ("ge", "le")
        if hasattr(m, name)
    }
    return f" from {bounds['ge']} to {bounds['le']}" if len(bounds) == 2 else ""


def _type_hint(error: SchemaError) -> str | None:
    annotation = annotation_at(error.loc)
    members = [_plain(m) for m in _members(annotation)]
    if str in members and isinstance(error.input, (int, float)):
        return f"put it in quotes: '{error.input}'"
    for member in members:
        if typing.get_origin(member) is list:
            item = _model(typing.get_args(member)[0])
            if item in _EXAMPLES:
                return f"a list has one item per line, e.g. - {_EXAMPLES[item]}"
        if member in _EXAMPLES:
            return f"write it like {_EXAMPLES[member]}"
    return None


def subject_of(loc: Path) -> str:
    """What a path names, for a sentence: "'columns' in state 'menu'"."""
    if not loc:
        return "the flow"
    head, rest = loc[0], loc[1:]
    base = None
    if head == "states" and rest:
        base, rest = f"state {rest[0]!r}", rest[1:]
    elif head == "global" and rest and isinstance(rest[0], int):
        base, rest = f"global transition {rest[0] + 1}", rest[1:]
    elif head in ("texts", "lists") and rest:
        base, rest = f"{head[:-1]} {rest[0]!r}", rest[1:]
    else:
        rest = loc
    inner = _inner(rest)
    if base is None:
        return inner
    return f"{inner} in {base}" if inner else base


def _inner(rest: Path) -> str:
    indexes = [i for i, part in enumerate(rest) if isinstance(part, int)]
    if not indexes:
        return " of ".join(repr(part) for part in reversed(rest[-2:]))
    item, tail = _item(rest[: indexes[-1] + 1]), rest[indexes[-1] + 1 :]
    return f"{tail[-1]!r} of {item}" if tail else item


def _item(path: Path) -> str:
    """'button 2', 'transition 1', 'keyboard button 1 of row 2', "item 3 of 'normalize'"."""
    index, owner = path[-1] + 1, path[-2] if len(path) > 1 else None
    if isinstance(owner, int):
        return f"keyboard button {index} of row {owner + 1}"
    if owner == "buttons" and "keyboard" in path:
        return f"keyboard row {index}"
    noun = {"buttons": "button", "on": "transition", "do": "action"}.get(str(owner))
    if noun or owner is None:
        return f"{noun or 'item'} {index}"
    return f"item {index} of {owner!r}"


def expected_of(annotation: Any) -> str:
    """What a value of `annotation` looks like, in words."""
    members = _members(annotation)
    if not members:
        return "a value"
    plain = [_plain(m) for m in members]
    if set(plain) == {str, dict[str, str]}:
        return "a text, or a mapping of language: text"
    if len(plain) == 2 and plain[1] == list[plain[0]]:
        return f"{expected_of(plain[0])}, or a list of them"
    if len(plain) > 1:
        return " or ".join(expected_of(m) for m in members)
    return _expected_one(members[0])


def _expected_one(member: Any) -> str:
    if typing.get_origin(member) is Annotated and _is_duration(member):
        return "a duration such as 2s, 30m or 1h"
    plain = _plain(member)
    origin = typing.get_origin(plain)
    if origin is Literal:
        values = ", ".join(repr(v) for v in typing.get_args(plain))
        return values if len(typing.get_args(plain)) == 1 else f"one of {values}"
    if origin is list:
        return f"a list of {_plural(typing.get_args(plain)[0])}"
    if origin is dict:
        model = _model(typing.get_args(plain)[1])
        if model is not None:
            return f"a mapping of {_NOUNS[model]} names to {_plural(model)}"
        values = _plural(typing.get_args(plain)[1])
        return (
            "a mapping of key: value" if values == "values" else f"a mapping of names to {values}"
        )
    if plain is StateSpec:
        return "a mapping of keys such as say, buttons and on"
    if plain in _NOUNS:
        noun = _NOUNS[plain]
        return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    return {str: "a text", int: "a whole number", float: "a number", bool: "true or false"}.get(
        plain, "a value"
    )


def _is_duration(member: Any) -> bool:
    return any(getattr(m, "func", None) is parse_duration for m in member.__metadata__)


def _plural(annotation: Any) -> str:
    plain = _plain(annotation)
    if {_plain(m) for m in _members(plain)} == {str, dict[str, str]}:
        return "texts"
    if plain in _NOUNS:
        return _NOUNS[plain] + "s"
    if typing.get_origin(plain) is list:
        items = typing.get_args(plain)[0]
        return f"rows of {_plural(items)}" if _model(items) else "lists"
    if typing.get_origin(plain) is Literal:
        return ", ".join(repr(v) for v in typing.get_args(plain))
    return {str: "texts"}.get(plain, "values")


def _got(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(keys: Iterable[str]) -> str:
    quoted = [repr(k) for k in keys]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def did_you_mean(name: Any, choices: Iterable[Any]) -> str | None:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


# --- repair --------------------------------------------------------------------------------


def _repair(located: Located, errors: list[SchemaError]) -> FlowSpec | None:
    """A valid copy of the flow with every broken node replaced, or None when it cannot be."""
    data, fixed = copy.deepcopy(located.value), []
    for _ in range(_REPAIR_ROUNDS):
        fixes: dict[Path, Any] = {}
        for error in errors:
            fix = _fix(error)
            if fix is None:
                return None
            fixes.setdefault(*fix)
        for path in sorted(fixes, key=len):
            if not _within(path, fixed) and _put(data, path, fixes[path]):
                fixed.append(path)
        try:
            spec = FlowSpec.model_validate(data)
        except ValidationError as exc:
            errors = [_parse(error) for error in exc.errors()]
        else:
            located.pruned += fixed
            return spec
    return None


def _within(path: Path, paths: list[Path]) -> bool:
    return any(path[: len(p)] == p for p in paths)


def _fix(error: SchemaError) -> tuple[Path, Any] | None:
    """Where to repair an error, and the value to put there (_DELETE to drop the key)."""
    if not error.loc or error.loc[0] in _ROOT_REQUIRED:
        return None
    if error.kind == "key":
        return error.loc, _DELETE
    node = error.loc[:-1] if error.kind == "missing" else error.loc
    while node:
        parent, part = node[:-1], node[-1]
        parent_annotation = annotation_at(parent)
        model = _model(parent_annotation)
        if model is not None and isinstance(part, str):
            field = model_field(model, part)
            if field is None or not field.is_required():
                return node, _DELETE
        else:
            value = _placeholder(child_annotation(parent_annotation, part))
            if value is not None:
                return node, value
        node = parent
    return None


def _placeholder(annotation: Any) -> Any:
    for member in _members(annotation):
        plain = _plain(member)
        origin = typing.get_origin(plain)
        if plain in _PLACEHOLDERS:
            return copy.deepcopy(_PLACEHOLDERS[plain])
        if origin is Literal:
            return typing.get_args(plain)[0]
        if origin in (list, dict) or plain in (str, bool):
            return {list: [], dict: {}, str: "", bool: False}[origin or plain]
    return None


def _put(data: Any, path: Path, value: Any) -> bool:
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    key = path[-1]
    if not isinstance(node, (dict, list)) or (isinstance(node, dict) and key not in node):
        return False
    if value is _DELETE:
        del node[key]
    else:
        node[key] = value
    return True
