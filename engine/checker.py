"""The flow checker: every problem of a flow file, each with file:line:column and a hint.

Schema errors come from pydantic and are translated into sentences about the
flow's keys (engine.schema_errors); the rest needs the whole flow: where
transitions lead, which states are reached, which texts, endpoints, actions
and variables exist. A flow repaired after schema errors is checked too, but
nothing is said about the parts the repair replaced (`Located.pruned`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import Problem
from engine.schema import FlowSpec, KeyboardSpec, StateSpec, TransitionSpec
from engine.schema_errors import did_you_mean, subject_of, validate_schema
from engine.templates import (
    BUILTIN_NAMES,
    TemplateSyntaxError,
    attribute_paths,
    expression_variables,
    template_variables,
)
from engine.yamlpos import Located, Path

__all__ = ["CALLBACK_DATA_LIMIT", "Known", "check_flow", "did_you_mean", "validate_schema"]

CALLBACK_DATA_LIMIT = 64  # bytes; Bot API, InlineKeyboardButton.callback_data


@dataclass(frozen=True, slots=True)
class Known:
    """What exists outside the flow file: endpoints, custom actions and other flows."""

    endpoints: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    flows: Mapping[str, FlowSpec] | None = None


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
    """Texts in every language, shared-text references, templates and their variables."""

    def check_texts(self: Any) -> None:
        for path, text in _texts_of(self.spec):
            if isinstance(text, dict):
                self.check_translations(path, text)
            elif text.startswith("@") and text[1:] not in self.spec.texts:
                self.check_reference(path, text[1:])
        for name, items in self.spec.lists.items():
            self.check_list_texts(("lists", name), items, set(self.spec.languages))

    def check_translations(self: Any, path: Path, text: dict[str, str]) -> None:
        languages, spoken = set(self.spec.languages), ", ".join(self.spec.languages)
        for language in sorted(languages - set(text)):
            self.report(
                path,
                f"{subject_of(path)} has no {language!r} text; this flow speaks {spoken}",
                f"add '{language}: ...' beside {', '.join(map(repr, text)) or 'the others'}",
                key=True,
            )
        for language in sorted(set(text) - languages):
            self.report(
                (*path, language),
                f"{subject_of(path)} has a text in {language!r}, a language this flow does "
                f"not speak ({spoken})",
                did_you_mean(language, languages) or "add it to 'languages', or delete it",
                key=True,
            )

    def check_reference(self: Any, path: Path, name: str) -> None:
        if self.unsure(("texts", name)):
            return
        close = did_you_mean(f"@{name}", [f"@{t}" for t in self.spec.texts])
        self.report(
            path,
            f"'@{name}' refers to a shared text that does not exist: no {name!r} under 'texts'",
            close or "declare it under 'texts', or write the text here",
        )

    def check_list_texts(self: Any, path: Path, value: Any, languages: set[str]) -> None:
        if isinstance(value, dict):
            if set(value) & languages and set(value) <= languages | {"_"}:
                self.check_translations(path, {k: v for k, v in value.items() if k != "_"})
                return
            for key, item in value.items():
                self.check_list_texts((*path, key), item, languages)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_list_texts((*path, index), item, languages)

    def check_variables(self: Any) -> None:
        known = BUILTIN_NAMES | _set_names(self.spec) | self.passed_in() | self.pruned_names()
        for path, source, is_expression in _templates_of(self.spec):
            try:
                names = (
                    expression_variables(source) if is_expression else template_variables(source)
                )
                attributes = attribute_paths(source, expression=is_expression)
            except TemplateSyntaxError as exc:
                self.report_syntax(path, source, is_expression, exc)
                continue
            for name in sorted(names - known):
                self.report(
                    path,
                    f"{name!r} is used here, but nothing sets it",
                    did_you_mean(name, known - BUILTIN_NAMES)
                    or "set it with 'set', 'save_as' or 'expect' in an earlier state",
                )
            for holder, attribute in sorted(attributes):
                self.check_attribute(path, holder, attribute, known)

    def report_syntax(
        self: Any, path: Path, source: str, is_expression: bool, exc: TemplateSyntaxError
    ) -> None:
        shown = source if len(source) <= 50 else source[:47] + "..."
        if is_expression:
            message = f"condition {shown!r} is not valid: {exc.message}"
            hint = "conditions look like 'full_name and not phone'"
        else:
            message = f"template {shown!r} is not valid: {exc.message}"
            hint = "variables look like '{{ full_name }}', blocks like '{% if x %}...{% endif %}'"
        self.report(path, message, hint)

    def check_attribute(
        self: Any, path: Path, holder: str, attribute: str, known: set[str]
    ) -> None:
        table = {"lists": self.spec.lists, "texts": self.spec.texts}.get(holder)
        if (
            table is None
            or holder in known - BUILTIN_NAMES
            or attribute in table
            or self.unsure((holder, attribute))
        ):
            return
        self.report(
            path,
            f"'{holder}.{attribute}' refers to no {holder[:-1]}: no {attribute!r} "
            f"under {holder!r}",
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

    def pruned_names(self: Any) -> set[str]:
        """Names that broken (pruned) actions or expects may set: never reported as unset."""
        names: set[str] = set()
        for path in self.located.pruned:
            names |= {str(v) for v in _found_under(self.raw(path), _SETTERS, path[-1])}
            sets = _found_under(self.raw(path), {"set"}, path[-1])
            names |= {str(k) for v in sets if isinstance(v, dict) for k in v}
        return names


_SETTERS = {"save_as", "unset"}


def _found_under(value: Any, keys: set[str], own_key: Any = None) -> Iterator[Any]:
    """Every value found under one of `keys` in a raw YAML value; list items one by one."""
    if own_key in keys and not isinstance(value, list):
        yield value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _found_under(item, keys, key)
    elif isinstance(value, list):
        for item in value:
            yield from _found_under(item, keys, own_key)


# --- semantic checks ---------------------------------------------------------------------


def check_flow(spec: FlowSpec, located: Located, known: Known) -> list[Problem]:
    """Every semantic problem of one schema-valid (or repaired) flow."""
    checker = _FlowChecker(spec, located, known)
    checker.run()
    return checker.problems


class _FlowChecker(_TextChecks):
    def __init__(self, spec: FlowSpec, located: Located, known: Known) -> None:
        self.spec, self.located, self.known = spec, located, known
        self.problems: list[Problem] = []
        self.states = set(spec.states)

    def report(self, path: Path, message: str, hint: str | None = None, key: bool = False) -> None:
        if not self.unsure(path):
            self.problems.append(self.located.problem(path, message, hint, key=key))

    def unsure(self, path: Path) -> bool:
        """True when the schema check replaced `path`, a part of it, or a node around it."""
        return any(p[: len(path)] == path or path[: len(p)] == p for p in self.located.pruned)

    def raw(self, path: Path) -> Any:
        """The value at `path` as written in the file."""
        value = self.located.value
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def run(self) -> None:
        if self.spec.start not in self.states:
            self.report(
                ("start",),
                f"'start' names state {self.spec.start!r}, which does not exist",
                self.no_state_hint(self.spec.start),
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
        self.check_way_out(name, state)
        if state.result is not None and not state.final:
            self.report(
                (*path, "result"),
                f"state {name!r} has 'result' but is not final; only a final state hands "
                "back a result",
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
            self.check_pattern((*path, "expect", "pattern"), state.expect.pattern)

    def check_way_out(self, name: str, state: StateSpec) -> None:
        if not state.final and not state.on:
            self.report(
                ("states", name),
                f"state {name!r} has no way out: no transition under 'on', and it is not final",
                "add a transition under 'on', or mark it 'final: true'",
                key=True,
            )
        auto = [t for t in state.on if t.event == "auto"]
        # Automatic transitions run after entry, or after an answer or a list pick: if all
        # are guarded and none holds, the user would hear nothing.
        answers = not state.waits or state.expect is not None or state.buttons_from is not None
        if answers and not state.final and auto and all(t.when for t in auto):
            self.report(
                ("states", name),
                f"state {name!r} can stop with nowhere to go: every automatic "
                "transition has 'when'",
                "add a last transition without 'when'",
                key=True,
            )

    def check_pattern(self, path: Path, pattern: str) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            where = f" at character {exc.pos + 1}" if exc.pos is not None else ""
            self.report(
                path,
                f"pattern '{pattern}' is not a valid regular expression: {exc.msg}{where}",
                "check the brackets; e.g. '^\\d{14}$' is exactly 14 digits",
            )

    def check_subflow(self, path: Path, state: StateSpec) -> None:
        flows = self.known.flows
        if flows is not None and state.flow not in flows:
            self.report(
                (*path, "flow"),
                f"there is no flow named {state.flow!r} to run as a sub-flow",
                did_you_mean(state.flow, flows)
                or f"flows checked with this one: {', '.join(sorted(flows))}; check the "
                "sub-flow's file together with this one",
            )
        elif flows is not None:
            child = flows[state.flow]
            if set(child.languages) != set(self.spec.languages):
                self.report(
                    (*path, "flow"),
                    f"flow {state.flow!r} speaks {', '.join(child.languages)}, "
                    f"this flow {', '.join(self.spec.languages)}",
                    "a sub-flow speaks the same languages as the flow that runs it",
                )

    def check_transition(
        self, path: Path, transition: TransitionSpec, state: StateSpec | None
    ) -> None:
        if transition.go is not None and transition.go != "back":
            self.check_target((*path, "go"), transition.go)
        for index, action in enumerate(transition.do):
            self.check_action((*path, "do", index), action)
        if transition.button is not None:
            self.check_button_event(path, transition.button, state)
        if (
            state is None
            and transition.command is None
            and transition.button is None
            and transition.text is None
        ):
            self.report(
                path,
                "a global transition needs 'command', 'button' or 'text'",
                "e.g. {command: /menu, go: menu}",
            )

    def check_button_event(self, path: Path, value: str, state: StateSpec | None) -> None:
        if state is None:
            if any("keyboard" in p for p in self.located.pruned):
                return
            values, where = self.keyboard_values(), "no keyboard button of any flow"
        else:
            state_path = path[:2]
            if self.unsure((*state_path, "buttons")) or self.unsure((*state_path, "keyboard")):
                return
            values, where = self.button_values(state), f"no button of state {path[1]!r}"
        if value not in values:
            self.report(
                (*path, "button"),
                f"{where} has the value {value!r}",
                did_you_mean(value, values)
                or (f"buttons: {', '.join(sorted(values))}" if values else "there are no buttons"),
            )

    def check_target(self, path: Path, target: str) -> None:
        if target not in self.states:
            self.report(
                path,
                f"there is no state named {target!r} to go to",
                self.no_state_hint(target),
            )

    def no_state_hint(self, name: str) -> str:
        return did_you_mean(name, self.states) or f"states: {', '.join(sorted(self.states))}"

    def check_action(self, path: Path, action: Any) -> None:
        if action.call is not None and action.call not in self.known.endpoints:
            endpoints = sorted(self.known.endpoints)
            self.report(
                (*path, "call"),
                f"there is no backend endpoint named {action.call!r}",
                did_you_mean(action.call, endpoints)
                or f"endpoints in config.yaml under backend.endpoints: "
                f"{', '.join(endpoints) or 'none'}",
            )
        if action.run is not None and action.run not in self.known.actions:
            actions = sorted(self.known.actions)
            self.report(
                (*path, "run"),
                f"there is no custom action named {action.run!r}",
                did_you_mean(action.run, actions)
                or f"custom actions: {', '.join(actions) or 'none'}; register one with "
                "@action in a custom_actions module",
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
        first: dict[str, int] = {}
        for index, button in enumerate(state.buttons):
            where = (*path, "buttons", index, "value")
            if button.value in first:
                line = self.located.where((*path, "buttons", first[button.value], "value"))[0]
                self.report(
                    where,
                    f"two buttons of state {path[1]!r} share the value {button.value!r}",
                    f"the other one is on line {line}; give each button its own value",
                )
            first.setdefault(button.value, index)
            self.check_button_value(where, button.value)

    def check_button_value(self, path: Path, value: str) -> None:
        size = len(value.encode())
        if size > CALLBACK_DATA_LIMIT:
            shown = value if len(value) <= 24 else value[:21] + "..."
            self.report(
                path,
                f"button value {shown!r} is {size} bytes; Telegram allows at most "
                f"{CALLBACK_DATA_LIMIT}",
                "use a short value; the label may be long",
            )
        if value.startswith(("#", "~")):
            self.report(
                path,
                f"button value {value!r} starts with {value[0]!r}, which is reserved for "
                "list buttons and paging",
                "start the value with a letter or a digit",
            )

    def check_reachable(self) -> None:
        targets_of = {name: set(self.targets(state)) for name, state in self.spec.states.items()}
        queue = [self.spec.start, *(t.go for t in self.spec.global_ if t.go)]
        for path in self.located.pruned:
            found = {str(v) for v in _found_under(self.raw(path), _GOES, path[-1])}
            if path[0] == "states" and len(path) > 1 and path[1] in targets_of:
                targets_of[path[1]] |= found
            else:
                queue += found
        reached: set[str] = set()
        while queue:
            name = self.resolve(queue.pop())
            if name is None or name in reached:
                continue
            reached.add(name)
            queue.extend(targets_of[name])
        for name in sorted(self.states - reached):
            self.report(
                ("states", name),
                f"state {name!r} is never reached: no transition goes to it",
                f"add a transition with 'go: {name}', or delete the state",
                key=True,
            )

    def resolve(self, name: str) -> str | None:
        """The state `name` leads to; a misspelled one counts as the state it resembles."""
        if name in self.states:
            return name
        close = difflib.get_close_matches(name, sorted(self.states), n=1, cutoff=0.6)
        return close[0] if close else None

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


_GOES = {"go", "on_failure"}


def _keyboard_values(state: StateSpec) -> set[str]:
    if not isinstance(state.keyboard, KeyboardSpec):
        return set()
    return {b.value for row in state.keyboard.buttons for b in row if b.value}
