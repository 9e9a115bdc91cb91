"""The flow checker: every problem of a flow file, each with file:line:column and a hint.

Schema errors come from pydantic and are translated into sentences about the
flow's keys; the rest needs the whole flow: where transitions lead, which
states are reached, which texts, endpoints, actions and variables exist.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.errors import Problem
from engine.schema import FlowSpec, KeyboardSpec, StateSpec, TransitionSpec
from engine.templates import (
    BUILTIN_NAMES,
    TemplateSyntaxError,
    attribute_paths,
    expression_variables,
    template_variables,
)
from engine.yamlpos import Located, Path

CALLBACK_DATA_LIMIT = 64  # bytes; Bot API, InlineKeyboardButton.callback_data


@dataclass(frozen=True, slots=True)
class Known:
    """What exists outside the flow file: endpoints, custom actions and other flows."""

    endpoints: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    flows: Mapping[str, FlowSpec] | None = None


def did_you_mean(name: str, choices: typing.Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


# --- schema errors -----------------------------------------------------------------------


def validate_schema(located: Located) -> tuple[FlowSpec | None, list[Problem]]:
    if not isinstance(located.value, dict):
        return None, [
            located.problem(
                (), "a flow file must be a mapping with 'flow', 'languages', 'start' and 'states'"
            )
        ]
    try:
        return FlowSpec.model_validate(located.value), []
    except ValidationError as exc:
        problems, seen = [], set()
        for error in exc.errors():
            problem = _schema_problem(located, error)
            if (problem.line, problem.column) not in seen:
                seen.add((problem.line, problem.column))
                problems.append(problem)
        return None, problems


def _schema_problem(located: Located, error: Mapping[str, Any]) -> Problem:
    loc = tuple(part for part in error["loc"] if part in _real_parts(located, error["loc"]))
    kind, where = error["type"], _describe(loc)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return located.problem(
            loc,
            f"unknown key {loc[-1]!r}{where[1]}",
            did_you_mean(loc[-1], allowed) or f"allowed here: {', '.join(sorted(allowed))}",
            key=True,
        )
    if kind == "missing":
        return located.problem(loc[:-1], f"missing key {loc[-1]!r}{where[1]}")
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = f" (got {_short(got)})" if kind not in ("value_error", "assertion_error") else ""
    return located.problem(loc, f"{where[0]}: {message}{shown}")


def _real_parts(located: Located, loc: tuple[Any, ...]) -> set[Any]:
    # Union branches add names such as 'dict[str,str]' to the location; keep YAML keys only.
    parts, path = set(), ()
    for part in loc:
        candidate = (*path, part)
        if (
            candidate in located.positions
            or candidate in located.key_positions
            or isinstance(part, int)
            or part == loc[-1]
        ):
            parts.add(part)
            path = candidate
    return parts


def _describe(loc: tuple[Any, ...]) -> tuple[str, str]:
    text = ".".join(str(p) for p in loc) or "flow"
    if len(loc) >= 2 and loc[0] == "states":
        return text, f" in state {loc[1]!r}"
    return text, ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _allowed_keys(loc: tuple[Any, ...]) -> set[str]:
    model: Any = FlowSpec
    for part in loc:
        model = _step_into(model, part)
    model = _unwrap_model(model)
    if model is None:
        return set()
    return {field.alias or name for name, field in model.model_fields.items()}


def _step_into(annotation: Any, part: Any) -> Any:
    model = _unwrap_model(annotation)
    if model is not None and isinstance(part, str):
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    for arg in typing.get_args(annotation) or ():
        origin = typing.get_origin(arg) or arg
        if origin in (list, dict):
            return typing.get_args(arg)[-1]
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return typing.get_args(annotation)[-1]
    return None


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found:
                return found
    return None


# --- texts and templates -----------------------------------------------------------------


def _texts_of(spec: FlowSpec) -> Iterator[tuple[Path, Any]]:
    """Every text of a flow with its path: say, labels, errors, fallbacks, descriptions."""
    for key in ("fallback", "error"):
        if getattr(spec, key) is not None:
            yield (key,), getattr(spec, key)
    for name, text in spec.texts.items():
        yield ("texts", name), text
    for index, transition in enumerate(spec.global_):
        yield from _transition_texts(("global", index), transition)
    for name, state in spec.states.items():
        path = ("states", name)
        for key in ("say", "fallback"):
            if getattr(state, key) is not None:
                yield (*path, key), getattr(state, key)
        for index, button in enumerate(state.buttons):
            yield (*path, "buttons", index, "label"), button.label
        if isinstance(state.keyboard, KeyboardSpec):
            for r, row in enumerate(state.keyboard.buttons):
                for c, button in enumerate(row):
                    yield (*path, "keyboard", "buttons", r, c, "label"), button.label
        if state.expect:
            if state.expect.error is not None:
                yield (*path, "expect", "error"), state.expect.error
            for reason, text in state.expect.errors.items():
                yield (*path, "expect", "errors", reason), text
        for index, transition in enumerate(state.on):
            yield from _transition_texts((*path, "on", index), transition)


def _transition_texts(path: Path, transition: TransitionSpec) -> Iterator[tuple[Path, Any]]:
    for key in ("say", "description"):
        if getattr(transition, key) is not None:
            yield (*path, key), getattr(transition, key)


def _templates_of(spec: FlowSpec) -> Iterator[tuple[Path, str, bool]]:
    """Every template (False) and expression (True) of a flow, with its path."""
    for path, text in _texts_of(spec):
        if isinstance(text, dict):
            for language, source in text.items():
                yield (*path, language), source, False
        elif not text.startswith("@"):
            yield path, text, False
    for index, transition in enumerate(spec.global_):
        yield from _transition_templates(("global", index), transition)
    for name, state in spec.states.items():
        path = ("states", name)
        yield from _action_templates((*path, "do"), state.do)
        yield from _values((*path, "with"), state.with_)
        yield from _values((*path, "result"), state.result or {})
        if state.buttons_from:
            data = state.buttons_from
            yield (*path, "buttons_from", "items"), data.items, True
            yield (*path, "buttons_from", "label"), data.label, False
            if data.value is not None:
                yield (*path, "buttons_from", "value"), data.value, False
        for index, transition in enumerate(state.on):
            yield from _transition_templates((*path, "on", index), transition)


def _transition_templates(path: Path, transition: TransitionSpec) -> Iterator[Any]:
    if transition.when is not None:
        yield (*path, "when"), transition.when, True
    yield from _action_templates((*path, "do"), transition.do)


def _action_templates(path: Path, actions: list[Any]) -> Iterator[Any]:
    for index, action in enumerate(actions):
        yield from _values((*path, index, "set"), action.set or {})
        yield from _values((*path, index, "with"), action.with_)


def _values(path: Path, values: Any) -> Iterator[Any]:
    if isinstance(values, str):
        yield path, values, False
    elif isinstance(values, dict):
        for key, value in values.items():
            yield from _values((*path, key), value)
    elif isinstance(values, list):
        for index, value in enumerate(values):
            yield from _values((*path, index), value)


def _set_names(spec: FlowSpec) -> set[str]:
    names = set()
    actions = [a for s in spec.states.values() for a in s.do]
    actions += [a for s in spec.states.values() for t in s.on for a in t.do]
    actions += [a for t in spec.global_ for a in t.do]
    for action in actions:
        names |= set(action.set or {}) | set(action.unset or ())
        if action.save_as:
            names.add(action.save_as)
    for state in spec.states.values():
        for holder in (state.expect, state.buttons_from, state):
            if holder is not None and holder.save_as:
                names.add(holder.save_as)
    return names


class _TextChecks:
    def check_texts(self: Any) -> None:
        languages = set(self.spec.languages)
        for path, text in _texts_of(self.spec):
            if isinstance(text, dict):
                for language in sorted(languages - set(text)):
                    self.report(
                        path,
                        f"text has no {language!r} translation",
                        f"add '{language}: ...' beside the others",
                        key=True,
                    )
                for language in sorted(set(text) - languages):
                    self.report(
                        (*path, language),
                        f"unknown language {language!r}; this flow "
                        f"speaks {', '.join(self.spec.languages)}",
                        did_you_mean(language, languages),
                        key=True,
                    )
            elif text.startswith("@") and text[1:] not in self.spec.texts:
                self.report(
                    path,
                    f"no shared text named {text[1:]!r}",
                    did_you_mean(text[1:], self.spec.texts)
                    or "shared texts are declared under 'texts'",
                )
        for name, items in self.spec.lists.items():
            self.check_list_texts(("lists", name), items, languages)

    def check_list_texts(self: Any, path: Path, value: Any, languages: set[str]) -> None:
        if isinstance(value, dict):
            if set(value) & languages and set(value) <= languages | {"_"}:
                for language in sorted(languages - set(value)):
                    self.report(path, f"text has no {language!r} translation", key=True)
                return
            for key, item in value.items():
                self.check_list_texts((*path, key), item, languages)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_list_texts((*path, index), item, languages)

    def check_variables(self: Any) -> None:
        known = BUILTIN_NAMES | _set_names(self.spec) | self.passed_in()
        for path, source, is_expression in _templates_of(self.spec):
            try:
                names = (
                    expression_variables(source) if is_expression else template_variables(source)
                )
                attributes = attribute_paths(source, expression=is_expression)
            except TemplateSyntaxError as exc:
                self.report(
                    path,
                    f"template syntax: {exc.message}",
                    "templates look like '{{ name }}'; conditions like 'name and not phone'",
                )
                continue
            for name in sorted(names - known):
                self.report(
                    path,
                    f"{name!r} is used here but nothing sets it",
                    did_you_mean(name, known - BUILTIN_NAMES)
                    or "set it with 'set', 'save_as' or an 'expect'",
                )
            for holder, attribute in sorted(attributes):
                table = {"lists": self.spec.lists, "texts": self.spec.texts}.get(holder)
                if (
                    table is not None
                    and holder not in known - BUILTIN_NAMES
                    and attribute not in table
                ):
                    self.report(
                        path,
                        f"no {holder[:-1]} named {attribute!r}",
                        did_you_mean(attribute, table),
                    )

    def passed_in(self: Any) -> set[str]:
        """Data a parent flow hands to this one with `with:` (known when flows are given)."""
        names: set[str] = set()
        for parent in (self.known.flows or {}).values():
            for state in parent.states.values():
                if state.flow == self.spec.flow:
                    names |= set(state.with_)
        return names


# --- semantic checks ---------------------------------------------------------------------


def check_flow(spec: FlowSpec, located: Located, known: Known) -> list[Problem]:
    """Every semantic problem of one schema-valid flow."""
    checker = _FlowChecker(spec, located, known)
    checker.run()
    return checker.problems


class _FlowChecker(_TextChecks):
    def __init__(self, spec: FlowSpec, located: Located, known: Known) -> None:
        self.spec, self.located, self.known = spec, located, known
        self.problems: list[Problem] = []
        self.states = set(spec.states)

    def report(self, path: Path, message: str, hint: str | None = None, key: bool = False) -> None:
        self.problems.append(self.located.problem(path, message, hint, key=key))

    def run(self) -> None:
        if self.spec.start not in self.states:
            self.report(
                ("start",),
                f"start state {self.spec.start!r} does not exist",
                did_you_mean(self.spec.start, self.states),
            )
        for index, transition in enumerate(self.spec.global_):
            self.check_transition(("global", index), transition, None)
        for name, state in self.spec.states.items():
            self.check_state(name, state)
        self.check_reachable()
        self.check_texts()
        self.check_variables()

    # states and transitions

    def check_state(self, name: str, state: StateSpec) -> None:
        path = ("states", name)
        if not state.final and not state.on:
            self.report(
                path,
                f"state {name!r} has no way out",
                "add a transition under 'on', or mark it 'final: true'",
                key=True,
            )
        auto = [t for t in state.on if t.event == "auto"]
        if not state.waits and not state.final and auto and all(t.when for t in auto):
            self.report(
                path,
                f"state {name!r} can stop with nowhere to go: every automatic "
                "transition has 'when'",
                "add a last transition without 'when'",
                key=True,
            )
        if state.result is not None and not state.final:
            self.report(
                (*path, "result"),
                "'result' belongs to a final state",
                "add 'final: true'",
                key=True,
            )
        if state.flow is not None:
            self.check_subflow(path, state)
        for index, action in enumerate(state.do):
            self.check_action((*path, "do", index), action)
        for index, transition in enumerate(state.on):
            self.check_transition((*path, "on", index), transition, state)
        self.check_buttons(path, state)
        if state.expect and state.expect.pattern:
            try:
                re.compile(state.expect.pattern)
            except re.error as exc:
                self.report(
                    (*path, "expect", "pattern"),
                    f"pattern is not a valid regular expression: {exc}",
                )

    def check_subflow(self, path: Path, state: StateSpec) -> None:
        flows = self.known.flows
        if flows is not None and state.flow not in flows:
            self.report(
                (*path, "flow"), f"no flow named {state.flow!r}", did_you_mean(state.flow, flows)
            )
        elif flows is not None:
            child = flows[state.flow]
            if set(child.languages) != set(self.spec.languages):
                self.report(
                    (*path, "flow"),
                    f"flow {state.flow!r} speaks "
                    f"{child.languages}, this flow {self.spec.languages}",
                )

    def check_transition(
        self, path: Path, transition: TransitionSpec, state: StateSpec | None
    ) -> None:
        if transition.go is not None and transition.go != "back":
            self.check_target((*path, "go"), transition.go)
        for index, action in enumerate(transition.do):
            self.check_action((*path, "do", index), action)
        if transition.button is not None:
            values = self.button_values(state) if state else self.keyboard_values()
            if transition.button not in values:
                self.report(
                    (*path, "button"),
                    f"no button has the value {transition.button!r} here",
                    did_you_mean(transition.button, values)
                    or "buttons: " + (", ".join(sorted(values)) or "none"),
                )
        if (
            state is None
            and transition.command is None
            and transition.button is None
            and transition.text is None
        ):
            self.report(path, "a global transition needs 'command', 'button' or 'text'")

    def check_target(self, path: Path, target: str) -> None:
        if target not in self.states:
            self.report(path, f"no state named {target!r}", did_you_mean(target, self.states))

    def check_action(self, path: Path, action: Any) -> None:
        if action.call is not None and action.call not in self.known.endpoints:
            self.report(
                (*path, "call"),
                f"no endpoint named {action.call!r}",
                did_you_mean(action.call, self.known.endpoints)
                or "endpoints are declared in config.yaml under backend.endpoints",
            )
        if action.run is not None and action.run not in self.known.actions:
            self.report(
                (*path, "run"),
                f"no custom action named {action.run!r}",
                did_you_mean(action.run, self.known.actions)
                or "custom actions are registered with @action in a custom_actions module",
            )
        if action.on_failure not in (None, "continue"):
            self.check_target((*path, "on_failure"), action.on_failure)

    def button_values(self, state: StateSpec) -> set[str]:
        return {b.value for b in state.buttons} | _keyboard_values(state)

    def keyboard_values(self) -> set[str]:
        flows = [self.spec, *(self.known.flows or {}).values()]
        return {
            v for flow in flows for state in flow.states.values() for v in _keyboard_values(state)
        }

    def check_buttons(self, path: Path, state: StateSpec) -> None:
        seen: set[str] = set()
        for index, button in enumerate(state.buttons):
            where = (*path, "buttons", index, "value")
            if button.value in seen:
                self.report(
                    where,
                    f"two buttons share the value {button.value!r}",
                    "give each button of a state its own value",
                )
            seen.add(button.value)
            size = len(button.value.encode())
            if size > CALLBACK_DATA_LIMIT:
                self.report(
                    where,
                    f"button value is {size} bytes; Telegram allows {CALLBACK_DATA_LIMIT}",
                    "use a short value; the label may be long",
                )
            if button.value.startswith(("#", "~")):
                self.report(
                    where,
                    "button values may not start with '#' or '~' "
                    "(reserved for list buttons and paging)",
                )

    def check_reachable(self) -> None:
        reached, queue = set(), [self.spec.start]
        targets_of = {name: set(self.targets(state)) for name, state in self.spec.states.items()}
        queue += [t.go for t in self.spec.global_ if t.go]
        while queue:
            name = queue.pop()
            if name in reached or name not in self.states:
                continue
            reached.add(name)
            queue.extend(targets_of[name])
        for name in self.states - reached:
            self.report(
                ("states", name),
                f"state {name!r} is never reached",
                "add a transition that goes to it, or delete it",
                key=True,
            )

    @staticmethod
    def targets(state: StateSpec) -> Iterator[str]:
        actions = list(state.do)
        for transition in state.on:
            if transition.go and transition.go != "back":
                yield transition.go
            actions += transition.do
        for action in actions:
            if action.on_failure not in (None, "continue"):
                yield action.on_failure


def _keyboard_values(state: StateSpec) -> set[str]:
    if not isinstance(state.keyboard, KeyboardSpec):
        return set()
    return {b.value for row in state.keyboard.buttons for b in row if b.value}
