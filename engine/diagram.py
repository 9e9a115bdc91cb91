"""A flow drawn as a Mermaid state diagram, for product staff to see its shape."""

from __future__ import annotations

from engine.schema import FlowSpec, TransitionSpec


def mermaid(flow: FlowSpec) -> str:
    """`stateDiagram-v2` text: every state, every transition labelled with its event."""
    lines = ["stateDiagram-v2", f"    [*] --> {flow.start}"]
    for name, state in flow.states.items():
        if state.flow:
            lines.append(f"    {name} : runs flow {state.flow}")
        if state.expect:
            lines.append(f"    {name} : waits for {', '.join(state.expect.kinds)}")
        for transition in state.on:
            target = name if transition.go in (None, "back") else transition.go
            lines.append(f"    {name} --> {target} : {_label(transition)}")
        for action in [*state.do, *(a for t in state.on for a in t.do)]:
            if action.on_failure not in (None, "continue"):
                lines.append(
                    f"    {name} --> {action.on_failure} : {action.call or action.run} failed"
                )
        if state.final:
            lines.append(f"    {name} --> [*]")
    for transition in flow.global_:
        if transition.go:
            lines.append(
                f"    note left of {transition.go} : from anywhere on {_label(transition)}"
            )
    return "\n".join(lines) + "\n"


def _label(transition: TransitionSpec) -> str:
    if transition.button is not None:
        event = f"button {transition.button}"
    elif transition.command is not None:
        event = transition.command
    elif transition.text is not None:
        event = f"text {transition.text}"
    elif transition.after is not None:
        event = f"after {transition.after:g}s"
    else:
        event = "then"
    if transition.go == "back":
        event += " (back)"
    return f"{event} if {transition.when}" if transition.when else event
