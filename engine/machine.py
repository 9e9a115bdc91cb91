"""One `transitions` Machine per flow, shared by every conversation in it.

A machine built per user costs milliseconds and tens of kilobytes; a shared
one triggered on plain objects costs microseconds. So the machine is built
with no model at all and each event is triggered on the conversation itself
(`Event.trigger(conversation)`), which never registers it (`add_model` grows
with every model it holds). The sync Machine is used on purpose: AsyncMachine
cancels a model's running callbacks when a new transition passes, and a double
tap must never cancel a backend call in flight. Actions run outside the
machine, in the engine; the machine only chooses the transition and moves the
state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transitions import EventData, Machine

from engine.events import Event
from engine.schema import FlowSpec, TransitionSpec
from engine.templates import Condition

Choice = list[TransitionSpec]


def build_machine(spec: FlowSpec) -> Machine:
    """A model-less machine whose triggers are event kinds: button, command, text, timer, auto.

    Each transition's condition matches the event and evaluates its `when`
    over the conversation's data; the first that holds is taken, in the order
    the flow lists them, and records itself in the `chosen` list passed along.
    """
    transitions = []
    for source, state in spec.states.items():
        for transition in state.on:
            dest = transition.go if transition.go not in (None, "back") else None
            transitions.append(
                {
                    "trigger": transition.event,
                    "source": source,
                    "dest": dest,
                    "conditions": [_matcher(transition)],
                    "after": [_recorder(transition)],
                }
            )
    return Machine(
        model=None,
        states=list(spec.states),
        initial=spec.start,
        transitions=transitions,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
        name=spec.flow,
    )


def choose(
    machine: Machine,
    conversation: Any,
    kind: str,
    event: Event | None,
    context: Callable[[], dict[str, Any]],
) -> TransitionSpec | None:
    """Trigger `kind` on the conversation; return the transition taken, if any.

    `context` gives the template context, built only if a `when` needs it.
    """
    trigger = machine.events.get(kind)
    if trigger is None or not trigger.transitions.get(conversation.state):
        return None  # nothing listens: skip the library's event machinery
    chosen: Choice = []
    trigger.trigger(conversation, event=event, chosen=chosen, context=context)
    return chosen[0] if chosen else None


def matches(transition: TransitionSpec, event: Event | None) -> bool:
    """Does the event fit the transition's trigger value (button value, command, text, delay)?"""
    if event is None or transition.event == "auto":
        return True
    if transition.button is not None:
        return event.value == transition.button
    if transition.command is not None:
        return event.value == transition.command
    if transition.text is not None:
        return event.text.strip().casefold() == transition.text.casefold()
    return event.value == str(transition.after)


def _matcher(transition: TransitionSpec) -> Callable[[EventData], bool]:
    guard = Condition(transition.when) if transition.when else None

    def condition(event_data: EventData) -> bool:
        if not matches(transition, event_data.kwargs["event"]):
            return False
        return guard is None or guard.holds(event_data.kwargs["context"]())

    return condition


def _recorder(transition: TransitionSpec) -> Callable[[EventData], None]:
    def record(event_data: EventData) -> None:
        event_data.kwargs["chosen"].append(transition)

    return record
