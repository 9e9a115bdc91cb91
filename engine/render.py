"""Turning a state into a message: its text, inline buttons (paged) and reply keyboard."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.actions import Button, Keyboard, KeyButton
from engine.schema import DataButtonsSpec, FlowSpec, KeyboardSpec, StateSpec
from engine.templates import Condition, Template

_TEMPLATES: dict[str, Template] = {}
_CONDITIONS: dict[str, Condition] = {}

PAGE_PREFIX = "~p:"
ITEM_PREFIX = "#"


def template(source: str) -> Template:
    """The compiled template for `source`; each source is compiled once per process."""
    found = _TEMPLATES.get(source)
    if found is None:
        found = _TEMPLATES[source] = Template(source)
    return found


def condition(source: str) -> Condition:
    found = _CONDITIONS.get(source)
    if found is None:
        found = _CONDITIONS[source] = Condition(source)
    return found


def text_source(text: Any, flow: FlowSpec, language: str) -> str:
    """The template source of a text in a language: inline, shared (`@name`) or neutral."""
    if type(text) is dict:  # flow texts are plain dicts: no ABC check on the hot path
        return text.get(language) or next(iter(text.values()))
    if text.startswith("@"):
        return text_source(flow.texts[text[1:]], flow, language)
    return text


def render_text(text: Any, flow: FlowSpec, context: Mapping[str, Any]) -> str:
    return template(text_source(text, flow, context["language"])).render(context)


def value_of(raw: Any, context: Mapping[str, Any]) -> Any:
    """A `set`/`with` value: templates rendered, single expressions kept native, recursively."""
    kind = type(raw)
    if kind is str:
        return template(raw).value(context)
    if kind is dict:
        return {key: value_of(item, context) for key, item in raw.items()}
    if kind is list:
        return [value_of(item, context) for item in raw]
    return raw


def params_of(raw: dict[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for an endpoint or a custom action: like `value_of`, but a number that a
    template produced is sent as text (the services take ids and courses as strings)."""
    params = {}
    for key, item in raw.items():
        value = value_of(item, context)
        if type(item) is str and type(value) in (int, float):
            value = str(value)
        params[key] = value
    return params


def data_items(spec: DataButtonsSpec, context: Mapping[str, Any]) -> list[Any]:
    items = condition(spec.items).value(context)
    return list(items) if isinstance(items, Sequence) and not isinstance(items, str) else []


def inline_buttons(
    state: StateSpec,
    flow: FlowSpec,
    context: Mapping[str, Any],
    page: int,
) -> tuple[tuple[Button, ...], ...]:
    """Rows of inline buttons: the data buttons of this page, paging, then the static ones."""
    rows: list[tuple[Button, ...]] = []
    if state.buttons_from is not None:
        rows += _data_rows(state.buttons_from, context, page)
    static = [Button(render_text(b.label, flow, context), b.value) for b in state.buttons]
    rows += _rows(static, state.columns if state.buttons_from is None else 2)
    return tuple(rows)


def _data_rows(
    spec: DataButtonsSpec,
    context: Mapping[str, Any],
    page: int,
) -> list[tuple[Button, ...]]:
    items = data_items(spec, context)
    size = spec.page_size or len(items) or 1
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 0), pages - 1)
    label = template(spec.label)
    scope = dict(context)  # one copy for the page, `item` replaced in it for each button
    shown = []
    for index in range(page * size, min((page + 1) * size, len(items))):
        scope["item"] = items[index]
        shown.append(Button(label.render(scope), f"{ITEM_PREFIX}{index}"))
    rows = _rows(shown, spec.columns)
    if pages > 1:
        paging = []
        if page > 0:
            paging.append(Button("◀️", f"{PAGE_PREFIX}{page - 1}"))
        paging.append(Button(f"{page + 1}/{pages}", f"{PAGE_PREFIX}{page}"))
        if page < pages - 1:
            paging.append(Button("▶️", f"{PAGE_PREFIX}{page + 1}"))
        rows.append(tuple(paging))
    return rows


def _rows(buttons: list[Button], columns: int) -> list[tuple[Button, ...]]:
    return [tuple(buttons[i : i + columns]) for i in range(0, len(buttons), columns)]


def reply_keyboard(spec: KeyboardSpec, flow: FlowSpec, context: Mapping[str, Any]) -> Keyboard:
    rows = tuple(
        tuple(KeyButton(render_text(b.label, flow, context), b.contact) for b in row)
        for row in spec.buttons
    )
    return Keyboard(rows, spec.persistent)


def reply_values(flows: Mapping[str, FlowSpec]) -> dict[str, str]:
    """Every reply-keyboard label, in every language, mapped to its button's value."""
    values: dict[str, str] = {}
    for flow in flows.values():
        for state in flow.states.values():
            if not isinstance(state.keyboard, KeyboardSpec):
                continue
            for button in (b for row in state.keyboard.buttons for b in row if b.value):
                for language in flow.languages:
                    context = {"language": language}
                    values[render_text(button.label, flow, context).strip()] = button.value
    return values
