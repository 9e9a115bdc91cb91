# ruff: noqa: E402
"""Benchmarks of the flowgram engine, against a `transitions` machine per user.

Run: `python benchmarks/engine.py` (a minute or two), or with `--quick` (about 15 s);
`--profile` adds a cProfile breakdown of the event workload. Logging is removed, so
no log I/O is measured. The naive baseline runs in the same process and run, since
timings on a shared machine are noisy: compare ratios, not absolute figures.

1. Engine time per event. Users each go through the whole feedback conversation:
   /start, language, the PINFL of a student the registry knows (registration
   completes), the complaint button, a category, the complaint's text. After every
   tenth user, the registered chat 777 goes through /start, suggestion, text. Each
   `await engine.handle(event)` is timed with `time.perf_counter_ns`. The channel is
   a no-op that numbers messages; the backend is the in-process demo backend, so its
   (small) cost is included. Background calls (`wait: false`) run after the event.
2. Memory per idle conversation. A MemoryStore is filled with `--conversations`
   copies of a conversation as it stands after step 1 (at the menu, registered),
   each with its own chat id and expiry: the growth of the memory traced by
   tracemalloc / count, and of the resident memory (RSS) / count.
3. Expiry sweep: `await store.sweep(now)` over `--conversations` conversations,
   when all are expired and when none is.
4. The naive design: one `transitions.Machine(model=user)` per user, over the same
   flows (feedback with registration inlined: 18 states), its build time, memory
   per user (tracemalloc) and the time of the triggers each event of step 1 needs,
   fired right after the event in a second pass, in which the time flowgram spends
   in its shared machines (`engine.machine.choose`, timed) is measured too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import cProfile
import gc
import itertools
import pstats
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before benchmarks/, where this very file would be `engine`

import transitions
from loguru import logger
from transitions import EventData, Machine

import engine.turn
from adapters.app import build_engine
from adapters.demo_backend import DemoBackend
from engine.actions import Action, EditMessage, SendMessage
from engine.backend import Backend
from engine.config import load_settings
from engine.conversation import Conversation
from engine.events import Event, EventKind
from engine.machine import build_machine, choose, matches
from engine.runtime import Engine, memory_mb
from engine.schema import FlowSpec, TransitionSpec
from engine.storage import MemoryStore
from engine.templates import Condition

GOAL_EVENT_US = 100.0
GOAL_IDLE_BYTES = 1024
GOAL_SWEEP_MS = 50.0

BATCH = 100  # users whose events interleave; the demo backend is reset between batches
REGISTERED_EVERY = 10  # chat 777's path follows every tenth user
FIRST_CHAT = 1_000_000
WARMUP_USERS = 50
SWEEP_REPEATS = 5

PINFL = "12345678901234"
COMPLAINT = "The tutor never answers messages, tezkor!"
SUGGESTION = "Please put more sockets in the reading room."
ACCOUNT = {"fullName": "Saidova Malika", "language": "ru"}

# -- the conversation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One event of the conversation, and what the naive machine does for it.

    `triggers` are the (trigger, value) pairs the naive machine fires; `facts` are
    the data the naive user holds by then (the flowgram engine gets them itself);
    `reaches` is the naive state after the step, checked.
    """

    label: str
    kind: EventKind
    value: str
    triggers: tuple[tuple[str, str], ...]
    reaches: str
    facts: dict[str, Any] = field(default_factory=dict)

    def event(self, chat_id: int, channel: NullChannel, callback: int) -> Event:
        if self.kind == "button":
            return Event(
                chat_id,
                "button",
                user_id=chat_id,
                value=self.value,
                message_id=channel.live.get(chat_id),
                callback_id=f"cb{callback}",
            )
        if self.kind == "command":
            return Event(chat_id, "command", user_id=chat_id, value=self.value)
        return Event(chat_id, "text", user_id=chat_id, text=self.value)


AUTO = ("auto", "")
NEW_USER = (
    Step("/start, new user", "command", "/start", (("command", "/start"), AUTO, AUTO),
         "registration:choose_language"),
    Step("language button", "button", "ru", (("button", "ru"),), "registration:ask_pinfl"),
    Step("PINFL, registered", "text", PINFL, (AUTO,) * 4, "feedback:menu",
         {"pinfl": PINFL, "full_name": "A V", "phone": "+998", "course": 2, "direction": "KI"}),
    Step("complaint button", "button", "complaint", (("button", "complaint"),),
         "feedback:ask_category"),
    Step("category button", "button", "#0", (("button", "#0"), AUTO), "feedback:ask_text"),
    Step("complaint text", "text", COMPLAINT, (AUTO, AUTO), "feedback:menu",
         {"registered": True, "text": COMPLAINT}),
)  # fmt: skip
REGISTERED = (
    Step("/start, registered 777", "command", "/start", (("command", "/start"), AUTO),
         "feedback:menu", {"account": ACCOUNT}),
    Step("suggestion button", "button", "suggestion", (("button", "suggestion"),),
         "feedback:ask_text"),
    Step("suggestion text", "text", SUGGESTION, (AUTO, AUTO), "feedback:menu"),
)  # fmt: skip
REGISTERED_CHAT = 777


@dataclass(slots=True)
class NullChannel:
    """Delivers nothing; numbers sent messages and keeps each chat's last one with buttons."""

    next_id: int = 0
    live: dict[int, int] = field(default_factory=dict)

    async def deliver(self, action: Action) -> int | None:
        if type(action) is SendMessage:
            self.next_id += 1
            if action.buttons:
                self.live[action.chat_id] = self.next_id
            return self.next_id
        if type(action) is EditMessage:
            return action.message_id
        return None


@dataclass(slots=True)
class Rig:
    engine: Engine
    channel: NullChannel
    demo: DemoBackend
    callbacks: Iterator[int] = field(default_factory=itertools.count)


def make_rig() -> Rig:
    settings = load_settings(ROOT / "config.yaml", environ={})
    channel, demo = NullChannel(), DemoBackend()
    backend = Backend(settings.backend.endpoints, demo)
    return Rig(build_engine(settings, channel, backend=backend), channel, demo)


# -- 1. time per event ---------------------------------------------------------------------

Samples = dict[str, list[int]]  # step label -> nanoseconds, one per event
Measure = Callable[[Rig, Step, int], Awaitable[int]]


async def wall_time(rig: Rig, step: Step, chat: int) -> int:
    """Nanoseconds of `engine.handle` for the step's event."""
    event = step.event(chat, rig.channel, next(rig.callbacks))
    started = time.perf_counter_ns()
    await rig.engine.handle(event)
    return time.perf_counter_ns() - started


class MachineTime:
    """Machine time of each event: flowgram's in its shared machines (`choose`, patched in),
    and the naive design's, triggering a per-user machine right after the same event."""

    def __init__(self, naive: NaiveFlow) -> None:
        self.spent = 0
        self.flow = naive
        self.users: dict[int, NaiveUser] = {}
        self.naive: Samples = defaultdict(list)

    def choose(self, *args: Any, **kwargs: Any) -> TransitionSpec | None:
        started = time.perf_counter_ns()
        try:
            return choose(*args, **kwargs)
        finally:
            self.spent += time.perf_counter_ns() - started

    async def __call__(self, rig: Rig, step: Step, chat: int) -> int:
        event = step.event(chat, rig.channel, next(rig.callbacks))
        self.spent = 0
        await rig.engine.handle(event)
        spent = self.spent
        user = self.users.get(chat)
        if user is None:
            user = self.users[chat] = NaiveUser(chat, {})
            build_naive(self.flow, user)
        self.naive[step.label].append(naive_step(user, step))
        return spent


async def drive(rig: Rig, users: int, first_chat: int, measure: Measure) -> Samples:
    """Take `users` users through the conversation, `BATCH` at a time, step by step."""
    samples: Samples = defaultdict(list)
    for start in range(0, users, BATCH):
        chats = range(first_chat + start, first_chat + min(start + BATCH, users))
        for step in NEW_USER:
            for chat in chats:
                samples[step.label].append(await measure(rig, step, chat))
        for _ in range(len(chats) // REGISTERED_EVERY):
            for step in REGISTERED:
                samples[step.label].append(await measure(rig, step, REGISTERED_CHAT))
        await rig.engine.drain()
        rig.demo.messages.clear()  # its duplicate check scans every message it keeps
        rig.demo.calls.clear()
    return samples


async def event_times(users: int, measure: Measure = wall_time) -> tuple[Samples, Rig]:
    """Per-step samples after a warm-up (templates compile on first use), and the rig."""
    rig = make_rig()
    await drive(rig, WARMUP_USERS, FIRST_CHAT - WARMUP_USERS, wall_time)
    return await drive(rig, users, FIRST_CHAT, measure), rig


async def machine_times(users: int, naive: NaiveFlow) -> tuple[Samples, Samples]:
    """Per-step machine time of the same events: (flowgram's shared machines, naive)."""
    timer = MachineTime(naive)
    with mock.patch.object(engine.turn, "choose", timer.choose):
        samples, _ = await event_times(users, timer)
    return samples, timer.naive


async def idle_conversation(rig: Rig, users: int) -> Conversation:
    """The last user's conversation, checked to be at the menu and registered."""
    conversation = await rig.engine.store.load(FIRST_CHAT + users - 1)
    if (
        conversation is None
        or conversation.state != "menu"
        or conversation.data.get("registered") is not True
    ):
        raise SystemExit(f"the conversation did not end registered at the menu: {conversation}")
    return conversation


# -- 2. and 3. memory and sweep ------------------------------------------------------------


@dataclass(slots=True)
class Dumped:
    """What MemoryStore.save reads of a conversation, its JSON made beforehand (fast fills)."""

    chat_id: int
    expires_at: float
    blob: bytes

    def dump(self) -> bytes:
        return self.blob


def copies(template: Conversation, count: int, expires_at: float) -> Iterator[Dumped]:
    """`count` copies of `template` as it dumps, each with its own chat id and expiry."""
    head = b'{"chat_id":%d,' % template.chat_id
    blob = template.dump()
    if not blob.startswith(head):
        raise SystemExit("Conversation.dump no longer starts with chat_id; update copies()")
    tail = blob[len(head) :]
    for index in range(count):
        chat_id = FIRST_CHAT + index
        yield Dumped(chat_id, expires_at + index / 1000, b'{"chat_id":%d,%s' % (chat_id, tail))


def check_copies(template: Conversation) -> None:
    copied = next(copies(template, 1, 0.0))
    same = replace(template, chat_id=copied.chat_id)
    if Conversation.load(copied.blob) != same or same.dump() != copied.blob:
        raise SystemExit("a copied conversation differs from the conversation it copies")


async def fill(store: MemoryStore, items: Iterator[Dumped]) -> None:
    for item in items:
        await store.save(cast(Conversation, item))


@contextlib.contextmanager
def tracing() -> Iterator[Callable[[], int]]:
    """tracemalloc on, the garbage collector paused (it frees nothing that is kept);
    yields a function giving the bytes traced so far."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.enable()


async def idle_memory(template: Conversation, count: int) -> tuple[float, float]:
    """Bytes per idle conversation held in a MemoryStore: (tracemalloc, RSS)."""
    gc.collect()
    rss_before = memory_mb()
    store = MemoryStore()
    await fill(store, copies(template, count, time.time() + 3600))
    gc.collect()
    rss = (memory_mb() - rss_before) * 2**20 / count
    del store
    with tracing() as traced:
        before = traced()
        store = MemoryStore()
        await fill(store, copies(template, count, time.time() + 3600))
        grown = traced() - before
    return grown / count, rss


async def timed_sweep(store: MemoryStore, now: float, expected: int) -> float:
    gc.collect()
    started = time.perf_counter()
    removed = await store.sweep(now)
    elapsed = (time.perf_counter() - started) * 1000
    if removed != expected:
        raise SystemExit(f"sweep removed {removed} conversations, expected {expected}")
    return elapsed


async def sweep_times(
    template: Conversation, count: int, repeats: int
) -> tuple[list[float], list[float]]:
    """Milliseconds of a sweep of `count` conversations: all expired, and none expired."""
    expires_at = 1_800_000_000.0
    every: list[float] = []
    for _ in range(repeats):
        store = MemoryStore()
        await fill(store, copies(template, count, expires_at))
        every.append(await timed_sweep(store, expires_at + count, count))
    store = MemoryStore()
    await fill(store, copies(template, count, expires_at))
    none = [await timed_sweep(store, expires_at - 1, 0) for _ in range(repeats)]
    return every, none


# -- 4. the naive design -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NaiveFlow:
    """The flows as one flat machine definition: states `flow:state`, sub-flows inlined."""

    states: list[str]
    transitions: list[dict[str, Any]]
    initial: str


class NaiveUser:
    """The naive design's model: a live object per user, which its own machine decorates."""

    def __init__(self, chat_id: int, data: dict[str, Any]) -> None:
        self.chat_id, self.language, self.data = chat_id, "ru", data
        self.state = ""

    def context(self) -> dict[str, Any]:
        return {**self.data, "chat_id": self.chat_id, "language": self.language}


def naive_flow(flows: dict[str, FlowSpec], main: str) -> NaiveFlow:
    """The same states and transitions (conditions and all), the way a naive bot writes them:
    a sub-flow state enters the sub-flow's start; its final states take the way out."""
    transitions: list[dict[str, Any]] = []
    for flow in flows.values():
        for name, state in flow.states.items():
            source = f"{flow.flow}:{name}"
            if state.flow is None:
                transitions += [_naive(t, source, flow.flow) for t in state.on]
                continue
            sub = flows[state.flow]
            transitions.append(
                {"trigger": "auto", "source": source, "dest": f"{sub.flow}:{sub.start}"}
            )
            finals = [f"{sub.flow}:{n}" for n, s in sub.states.items() if s.final]
            transitions += [_naive(t, final, flow.flow) for t in state.on for final in finals]
    transitions += [_naive(t, "*", main) for t in flows[main].global_ if t.go]
    states = [f"{flow.flow}:{name}" for flow in flows.values() for name in flow.states]
    return NaiveFlow(states, transitions, f"{main}:{flows[main].start}")


def _naive(transition: TransitionSpec, source: str, flow: str) -> dict[str, Any]:
    dest = None if transition.go in (None, "back") else f"{flow}:{transition.go}"
    guard = Condition(transition.when) if transition.when else None

    def holds(event_data: EventData) -> bool:  # as engine.machine does
        if not matches(transition, event_data.kwargs["event"]):
            return False
        return guard is None or guard.holds(event_data.kwargs["context"]())

    def record(event_data: EventData) -> None:
        event_data.kwargs["chosen"].append(transition)

    return {
        "trigger": transition.event,
        "source": source,
        "dest": dest,
        "conditions": [holds],
        "after": [record],
    }


def build_naive(flow: NaiveFlow, user: NaiveUser) -> Machine:
    return Machine(
        model=user,
        states=flow.states,
        transitions=flow.transitions,
        initial=flow.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
    )


def trigger_event(trigger: str, value: str) -> Event | None:
    """The event a naive trigger is fired with: none for `auto`."""
    return None if trigger == "auto" else Event(0, cast(EventKind, trigger), value=value)


TRIGGER_EVENTS = {
    (trigger, value): trigger_event(trigger, value)
    for step in NEW_USER + REGISTERED
    for trigger, value in step.triggers
}


def naive_step(user: NaiveUser, step: Step) -> int:
    """Nanoseconds of the triggers the event needs on the user's own machine."""
    user.data.update(step.facts)
    started = time.perf_counter_ns()
    for trigger, value in step.triggers:
        getattr(user, trigger)(
            event=TRIGGER_EVENTS[trigger, value], chosen=[], context=user.context
        )
    elapsed = time.perf_counter_ns() - started
    if user.state != step.reaches:
        raise SystemExit(f"naive machine: {step.label} reached {user.state}, not {step.reaches}")
    return elapsed


def naive_builds(flow: NaiveFlow, count: int) -> list[int]:
    """Nanoseconds to build each of `count` naive users' machines, all kept."""
    users, builds = [NaiveUser(FIRST_CHAT + i, {}) for i in range(count)], []
    for user in users:
        started = time.perf_counter_ns()
        build_naive(flow, user)
        builds.append(time.perf_counter_ns() - started)
    return builds


def naive_memory(flow: NaiveFlow, data: dict[str, Any], count: int) -> tuple[float, float]:
    """Bytes per naive user, by tracemalloc: (its live model and data, its machine)."""
    with tracing() as traced:
        before = traced()
        users = [NaiveUser(FIRST_CHAT + i, copy.deepcopy(data)) for i in range(count)]
        middle = traced()
        for user in users:
            build_naive(flow, user)
        after = traced()
    return (middle - before) / count, (after - middle) / count


def shared_build_ms(flows: dict[str, FlowSpec]) -> float:
    started = time.perf_counter()
    for spec in flows.values():
        build_machine(spec)
    return (time.perf_counter() - started) * 1000


# -- the run -------------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    engine: Samples
    machine: Samples
    json_bytes: int
    idle_traced: float
    idle_rss: float
    sweep_all: list[float]
    sweep_none: list[float]
    naive: NaiveFlow
    naive_builds: list[int]
    naive_events: Samples
    naive_model: float
    naive_machine: float
    shared_ms: float
    flows: int


async def measure(args: argparse.Namespace) -> Results:
    engine_samples, rig = await event_times(args.users)
    template = await idle_conversation(rig, args.users)
    check_copies(template)
    traced, rss = await idle_memory(template, args.conversations)
    every, none = await sweep_times(template, args.conversations, args.repeats)
    flows = rig.engine.flows
    naive = naive_flow(flows, rig.engine.main_flow)
    shared, naive_samples = await machine_times(max(args.users // 2, BATCH), naive)
    model, machine = naive_memory(naive, template.data, args.naive_users)
    return Results(
        engine=engine_samples,
        machine=shared,
        naive_events=naive_samples,
        json_bytes=len(template.dump()),
        idle_traced=traced,
        idle_rss=rss,
        sweep_all=every,
        sweep_none=none,
        naive=naive,
        naive_builds=naive_builds(naive, args.naive_users),
        naive_model=model,
        naive_machine=machine,
        shared_ms=shared_build_ms(flows),
        flows=len(flows),
    )


def us(values: list[int], quantile: float = 0.5) -> float:
    """A quantile (nearest rank) of nanosecond samples, in microseconds."""
    ordered = sorted(values)
    return ordered[max(round(quantile * len(ordered)) - 1, 0)] / 1000


def everything(samples: Samples) -> list[int]:
    return [value for values in samples.values() for value in values]


def report_events(r: Results, users: int) -> None:
    print(f"\n1. Engine time per event, µs: {users:,} users through the whole feedback")
    print("   conversation, chat 777's registered path after every tenth user. Adapters")
    print("   excluded (no-op channel); the demo backend runs in process, so it is included.")
    print(
        f"   {'step':<24}{'events':>7}{'median':>9}{'p99':>9}{'machine: shared':>17}{'naive':>8}"
    )
    rows = [
        (s.label, r.engine[s.label], r.machine[s.label], r.naive_events[s.label])
        for s in NEW_USER + REGISTERED
    ]
    rows.append(("all events", *map(everything, (r.engine, r.machine, r.naive_events))))
    for label, engine_ns, machine_ns, naive_ns in rows:
        print(
            f"   {label:<24}{len(engine_ns):>7,}{us(engine_ns):>9.1f}{us(engine_ns, 0.99):>9.1f}"
            f"{us(machine_ns):>17.1f}{us(naive_ns):>8.1f}"
        )
    print("   machine, medians of a second pass over the same events: shared = the time in")
    print("   flowgram's shared machines (engine.machine.choose); naive = the triggers the")
    print("   event needs on the user's own Machine, fired right after it, nothing else (no")
    print("   rendering, storage or backend). p99 includes garbage collection and noise.")


def report_memory(r: Results, count: int) -> None:
    traced, rss = r.idle_traced, r.idle_rss
    print(f"\n2. Memory per idle conversation, {count:,} held in a MemoryStore")
    print(f"   (at the menu, registered; its JSON is {r.json_bytes} bytes)")
    print(f"   tracemalloc: {traced:,.0f} B per conversation ({traced * count / 2**20:,.1f} MB)")
    print(f"   RSS growth:  {rss:,.0f} B per conversation ({rss * count / 2**20:,.1f} MB)")


def report_sweep(r: Results, count: int) -> None:
    print(f"\n3. Expiry sweep: `await store.sweep(now)` over {count:,} conversations, ms")
    print(f"   {'':<14}{'median':>8}{'max':>8}   (of {len(r.sweep_all)})")
    for label, values in (("all expired", r.sweep_all), ("none expired", r.sweep_none)):
        print(f"   {label:<14}{statistics.median(values):>8.1f}{max(values):>8.1f}")


def report_naive(r: Results, count: int) -> None:
    flow, builds = r.naive, r.naive_builds
    per_user = r.naive_model + r.naive_machine
    print("\n4. Naive design: one transitions.Machine(model=user) per user, over the same")
    print(f"   flows flattened: {len(flow.states)} states, {len(flow.transitions)} transitions")
    print(
        f"   build, {count:,} users kept: median {us(builds) / 1000:.2f} ms, "
        f"p99 {us(builds, 0.99) / 1000:.2f} ms, mean {statistics.mean(builds) / 1e6:.2f} ms"
    )
    print(f"   (flowgram builds its {r.flows} shared machines once: {r.shared_ms:.1f} ms)")
    print(
        f"   memory (tracemalloc): {per_user / 1024:.1f} KB per user = machine "
        f"{r.naive_machine / 1024:.1f} KB + live user and data {r.naive_model / 1024:.1f} KB"
    )
    mb, build_s = per_user * 1e5 / 2**20, statistics.mean(builds) * 1e5 / 1e9
    print(
        f"   for 100,000 users: {mb:,.0f} MB (flowgram: {r.idle_traced * 1e5 / 2**20:,.0f} MB),"
        f" build {build_s:.0f} s"
    )
    engine_us, shared_us, naive_us = (
        us(everything(samples)) for samples in (r.engine, r.machine, r.naive_events)
    )
    print("   ratios flowgram / naive, this run (medians per event):")
    print(f"     time, whole engine / naive machine alone:  {engine_us / naive_us:>7.2f}")
    print(f"     time, shared machine / per-user machine:   {shared_us / naive_us:>7.2f}")
    print(f"     memory per idle conversation / per user:   {r.idle_traced / per_user:>7.3f}")


def report_summary(r: Results, count: int) -> None:
    event, idle, sweep = us(everything(r.engine)), r.idle_traced, statistics.median(r.sweep_all)
    rows = (
        ("median engine time per event", f"≤ {GOAL_EVENT_US:.0f} µs", f"{event:.1f} µs",
         event <= GOAL_EVENT_US),
        ("memory per idle conversation", f"≤ {GOAL_IDLE_BYTES} B", f"{idle:.0f} B",
         idle <= GOAL_IDLE_BYTES),
        (f"sweep of {count:,}, all expired", f"< {GOAL_SWEEP_MS:.0f} ms", f"{sweep:.1f} ms",
         sweep < GOAL_SWEEP_MS),
    )  # fmt: skip
    print("\nSummary")
    print(f"   {'figure':<34}{'goal':>10}{'result':>12}  verdict")
    for label, goal, result, ok in rows:
        print(f"   {label:<34}{goal:>10}{result:>12}  {'PASS' if ok else 'MISS'}")


# -- profile -------------------------------------------------------------------------------

HOT_SPOTS = (
    ("engine/conversation.py", "dump", "Conversation.dump (dataclasses.asdict, json)"),
    ("engine/conversation.py", "load", "Conversation.load (json)"),
    ("jinja2/environment.py", "__call__", "Jinja expressions (TemplateExpression)"),
    ("jinja2/environment.py", "render", "Jinja templates (Template.render)"),
    ("jinja2/runtime.py", "new_context", "  of both: jinja2 new_context"),
    ("transitions/core.py", "trigger", "transitions Event.trigger (with conditions)"),
    ("engine/turn.py", "show", "Turn.show (message, buttons)"),
    ("engine/backend.py", "call", "Backend.call (with the demo backend)"),
    ("engine/turn.py", "context", "Turn.context (template context dicts)"),
    ("loguru/_logger.py", "bind", "loguru logger.bind"),
)


def cumulative(stats: pstats.Stats, path: str, name: str) -> tuple[int, float]:
    """Calls and inclusive seconds of the functions `name` defined in a file ending in `path`."""
    calls, seconds = 0, 0.0
    for (filename, _, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and filename.endswith(path):
            calls, seconds = calls + row[1], seconds + row[3]
    return calls, seconds


async def profile(users: int) -> None:
    """Event workload under cProfile: inclusive share of Engine.handle (shares overlap)."""
    profiler = cProfile.Profile()
    profiler.enable()
    samples, _ = await event_times(users)
    profiler.disable()
    stats = pstats.Stats(profiler)
    events = len(everything(samples)) + WARMUP_USERS * len(NEW_USER)
    _, total = cumulative(stats, "engine/runtime.py", "handle")
    print(f"\nProfile (cProfile, {users:,} users): inclusive share of Engine.handle")
    print(f"   {'function':<48}{'share':>7}{'calls/event':>13}")
    for path, name, label in HOT_SPOTS:
        calls, seconds = cumulative(stats, path, name)
        print(f"   {label:<48}{seconds / total:>7.0%}{calls / events:>13.1f}")
    print("\n   own time, top 12:")
    stats.sort_stats("tottime").print_stats(12)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users", type=int, help="users through the conversation (2000; --quick 300)"
    )
    parser.add_argument(
        "--conversations",
        type=int,
        default=100_000,
        help="idle conversations held and swept (100000)",
    )
    parser.add_argument(
        "--naive-users", type=int, help="users of the naive design (5000; --quick 500)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer users and repeats: about 15 s")
    parser.add_argument(
        "--profile", action="store_true", help="then profile the event workload (cProfile)"
    )
    args = parser.parse_args(argv)
    args.users = args.users or (300 if args.quick else 2000)
    args.naive_users = args.naive_users or (500 if args.quick else 5000)
    args.repeats = 3 if args.quick else SWEEP_REPEATS
    return args


async def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    results = await measure(args)
    python = sys.version.split()[0]
    print(f"flowgram engine benchmark: Python {python}, transitions {transitions.__version__}")
    report_events(results, args.users)
    report_memory(results, args.conversations)
    report_sweep(results, args.conversations)
    report_naive(results, args.naive_users)
    report_summary(results, args.conversations)
    print(f"\n(measured in {time.perf_counter() - started:.0f} s)")
    if args.profile:
        await profile(min(args.users, 500))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logger.remove()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
