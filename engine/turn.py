"""One event taken through a conversation: the engine's decisions, in order.

A turn works on a freshly loaded copy of the conversation; the runtime saves
it only when the turn ends well, so a failure leaves the last good state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any

from loguru import logger

from engine.actions import Action, AnswerButton, EditMessage, SendMessage, ShowTyping
from engine.conversation import Conversation, Frame
from engine.custom import ActionContext, run_action
from engine.errors import ConversationError, RecipientGone
from engine.events import Event
from engine.inputs import judge
from engine.logs import debug_enabled
from engine.machine import choose, matches
from engine.render import (
    ITEM_PREFIX,
    PAGE_PREFIX,
    condition,
    data_items,
    inline_buttons,
    params_of,
    render_text,
    reply_keyboard,
    template,
    text_source,
    value_of,
)
from engine.schema import ActionSpec, FlowSpec, KeyboardSpec, StateSpec, TransitionSpec

if TYPE_CHECKING:
    from engine.runtime import Engine

TYPING_AFTER = 0.3  # seconds a call may take before the user sees 'typing...'
MAX_ENTRIES = 64  # state entries in one turn; more means a loop of automatic transitions

DEFAULT_FALLBACK = "🤔"


class Turn:
    def __init__(self, engine: Engine, conversation: Conversation, event: Event) -> None:
        self.engine = engine
        self.conversation = conversation
        self.event = event
        self.answered = False
        self.entries = 0

    # -- where we are ------------------------------------------------------------------

    @property
    def flow(self) -> FlowSpec:
        return self.engine.flows[self.conversation.flow]

    @property
    def state(self) -> StateSpec:
        return self.flow.states[self.conversation.state]

    def context(
        self,
        data: dict[str, Any] | None = None,
        flow: FlowSpec | None = None,
    ) -> dict[str, Any]:
        conversation, flow = self.conversation, flow or self.flow
        return {
            **(conversation.data if data is None else data),
            "chat_id": conversation.chat_id,
            "language": conversation.language,
            "user": {"id": self.event.sender, "name": self.event.user_name},
            "texts": flow.texts,
            "lists": flow.lists,
        }

    def log(self) -> Any:
        c = self.conversation
        return logger.bind(chat=c.chat_id, flow=c.flow, state=c.state, step=c.step)

    def debug(self, message: str, *args: Any) -> None:
        """A DEBUG line with the conversation's fields, built only when a sink takes it."""
        if debug_enabled():
            self.log().debug(message, *args)

    async def deliver(self, action: Action) -> int | None:
        return await self.engine.channel.deliver(action)

    async def answer(self, notice: str | None = None) -> None:
        if self.event.callback_id and not self.answered:
            self.answered = True
            await self.deliver(AnswerButton(self.event.callback_id, notice))

    # -- the event -----------------------------------------------------------------------

    async def begin(self) -> None:
        """A new conversation: a global command runs at once, anything else starts the flow."""
        if self.event.kind == "button":
            await self.answer(self.stale_notice())
        if self.event.kind == "command" and await self.take_global() and self.entries:
            return
        await self.enter(self.flow.start)

    async def process(self) -> bool:
        """Take the event in the current state; False when nothing changed (do not save)."""
        event = self.event
        if event.kind == "button":
            if self.is_stale():
                await self.answer(self.stale_notice())
                self.debug(
                    "stale button refused message={} live={}",
                    event.message_id,
                    self.conversation.live_message_id,
                )
                return False
            await self.answer()
            if event.value.startswith(PAGE_PREFIX):
                return await self.flip_page(event.value[len(PAGE_PREFIX) :])
            if event.value.startswith(ITEM_PREFIX):
                return await self.pick_item(event.value[len(ITEM_PREFIX) :])
        elif event.kind == "text" and event.text.strip() in self.engine.reply_values:
            self.event = dataclasses.replace(
                event, kind="button", value=self.engine.reply_values[event.text.strip()]
            )

        if self.event.kind in ("button", "command", "text", "timer"):
            if await self.trigger(self.event.kind, self.event):
                return True
            if self.event.kind != "timer" and await self.take_global():
                return True
        if self.event.kind == "timer":
            return False

        state = self.state
        if state.expect and self.event.kind in ("text", "contact", "media"):
            return await self.take_answer(state)
        if self.event.kind == "button":
            self.debug("unknown button value={} ignored", self.event.value)
            return False
        await self.refuse(state.fallback)
        return True

    def is_stale(self) -> bool:
        policy = self.state.stale_buttons or self.flow.stale_buttons
        live = self.conversation.live_message_id
        if live is None and (self.state.buttons or self.state.buttons_from):
            return False  # sent, but its id was lost on the way back: the user has the buttons
        return policy == "refuse" and self.event.message_id != live

    async def trigger(self, kind: str, event: Event | None) -> bool:
        source = self.conversation.state
        machine = self.engine.machines[self.conversation.flow]
        transition = choose(machine, self.conversation, kind, event, self.context)
        if transition is None:
            return False
        self.debug("transition {} -> {} on {}", source, transition.go or "(stay)", kind)
        await self.take(source, transition)
        return True

    async def take_global(self) -> bool:
        """A flow-wide transition (commands, persistent buttons) of this flow or a parent."""
        frames = [
            *self.conversation.parents,
            Frame(self.conversation.flow, self.conversation.state, self.conversation.data),
        ]
        for depth in range(len(frames) - 1, -1, -1):
            flow = self.engine.flows[frames[depth].flow]
            for transition in flow.global_:
                if self.global_fits(transition, flow, frames[depth].data):
                    self.debug(
                        "global {} of flow {}",
                        transition.command or transition.button or transition.text,
                        flow.flow,
                    )
                    if transition.go is not None:
                        self.unwind(depth)
                    await self.take(self.conversation.state, transition, flow)
                    return True
        return False

    def global_fits(self, transition: TransitionSpec, flow: FlowSpec, data: dict) -> bool:
        if transition.event != self.event.kind or not matches(transition, self.event):
            return False
        if transition.admin and self.event.sender not in self.engine.admin_ids:
            return False
        return transition.when is None or condition(transition.when).holds(
            self.context(data, flow)
        )

    def unwind(self, depth: int) -> None:
        """Leave every sub-flow above `depth`: a global of a parent flow was taken."""
        while len(self.conversation.parents) > depth:
            frame = self.conversation.parents.pop()
            self.conversation.flow, self.conversation.state = frame.flow, frame.state
            self.conversation.data = frame.data
            self.conversation.previous = None  # a state of the flow left behind

    # -- answers ------------------------------------------------------------------------

    async def take_answer(self, state: StateSpec) -> bool:
        expect = state.expect
        assert expect is not None
        verdict = judge(expect, self.event)
        if not verdict.ok:
            self.debug("answer refused reason={}", verdict.reason)
            await self.refuse(expect.errors.get(verdict.reason) or expect.error or state.fallback)
            return True
        self.keep(expect.save_as, verdict.value)
        await self.advance()
        return True

    async def pick_item(self, raw_index: str) -> bool:
        spec = self.state.buttons_from
        items = data_items(spec, self.context()) if spec else []
        if not raw_index.isdigit() or int(raw_index) >= len(items):
            self.log().warning("forged or outdated list button data={!r} ignored", raw_index)
            return False
        item = items[int(raw_index)]
        value = (
            template(spec.value).value({**self.context(), "item": item}) if spec.value else item
        )
        self.keep(spec.save_as, value)
        await self.advance()
        return True

    async def flip_page(self, raw_page: str) -> bool:
        if not raw_page.isdigit() or self.state.buttons_from is None:
            return False
        self.conversation.page = int(raw_page)
        await self.show(self.state, edit=True)
        return True

    def keep(self, key: str, value: Any) -> None:
        if key == "language":
            if value in self.engine.flows[self.conversation.flow].languages:
                self.conversation.language = value
            return
        self.conversation.data[key] = value

    async def refuse(self, text: Any) -> None:
        """Say why the input was not taken, then ask the same question again."""
        flow = self.flow
        if text is None:
            flow, text = self.inherited("fallback")
        if text is not None:
            await self.say(text, flow)
        else:
            await self.deliver(SendMessage(self.conversation.chat_id, DEFAULT_FALLBACK))
        await self.show(self.state, edit=False)

    def lineage(self) -> list[FlowSpec]:
        """This flow, then the flows that started it, nearest first."""
        names = [self.conversation.flow, *(f.flow for f in reversed(self.conversation.parents))]
        return [self.engine.flows[name] for name in names]

    def inherited(self, key: str) -> tuple[FlowSpec, Any]:
        """A flow-wide text (`fallback`, `error`) of this flow, else of the nearest parent."""
        for flow in self.lineage():
            if getattr(flow, key) is not None:
                return flow, getattr(flow, key)
        return self.flow, None

    def stale_notice(self) -> str:
        """The shared text `stale` of this flow or a parent: the toast of an outdated button."""
        for flow in self.lineage():
            if "stale" in flow.texts:
                return text_source(flow.texts["stale"], flow, self.conversation.language)
        return "⌛"

    # -- transitions and states ---------------------------------------------------------

    async def take(
        self, source: str, transition: TransitionSpec, declared_in: FlowSpec | None = None
    ) -> None:
        for action in transition.do:
            route = await self.act(action)
            if route is not None:
                await self.enter(route)
                return
        if transition.say is not None:
            await self.say(transition.say, declared_in or self.flow)
        if transition.go is None:
            await self.show(self.state, edit=False)
            return
        if transition.go == "back":
            target, run_actions = self.conversation.previous or source, False
        else:
            target, run_actions = transition.go, True
        if self.flow.states[source].waits:
            self.conversation.previous = source
        await self.enter(target, run_actions=run_actions)

    async def advance(self) -> None:
        """Take the first automatic transition whose `when` holds."""
        await self.trigger("auto", None)

    async def enter(self, name: str, run_actions: bool = True) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise ConversationError(
                f"more than {MAX_ENTRIES} states entered in one event; "
                f"automatic transitions loop around {name!r}"
            )
        conversation = self.conversation
        conversation.state, conversation.page = name, 0
        conversation.step += 1
        state = self.state
        self.debug("enter state")

        if state.flow is not None:
            await self.start_subflow(state)
            return
        if run_actions:
            for action in state.do:
                route = await self.act(action)
                if route is not None:
                    await self.enter(route)
                    return
        await self.show(state)
        if state.final:
            await self.finish(state)
            return
        self.engine.schedule_timers(conversation, state)
        if not state.waits:
            await self.advance()

    async def start_subflow(self, state: StateSpec) -> None:
        conversation = self.conversation
        data = value_of(state.with_, self.context())
        conversation.parents.append(
            Frame(conversation.flow, conversation.state, conversation.data)
        )
        conversation.flow, conversation.data = state.flow, data
        self.log().info("sub-flow started")
        await self.enter(self.flow.start)

    async def finish(self, state: StateSpec) -> None:
        """A final state: hand the result to the parent flow, which moves on."""
        conversation = self.conversation
        if not conversation.parents:
            self.log().info("flow finished")
            return
        result = value_of(state.result or {}, self.context())
        frame = conversation.parents.pop()
        conversation.flow, conversation.state, conversation.data = (
            frame.flow,
            frame.state,
            frame.data,
        )
        parent_state = self.state
        if parent_state.save_as:
            conversation.data[parent_state.save_as] = result
        self.log().info("sub-flow finished, back in the parent flow")
        await self.advance()

    # -- saying -------------------------------------------------------------------------

    async def say(self, text: Any, flow: FlowSpec) -> None:
        rendered = render_text(text, flow, self.context(flow=flow))
        await self.deliver(SendMessage(self.conversation.chat_id, rendered))

    async def show(self, state: StateSpec, edit: bool | None = None) -> None:
        """Send (or edit into place) the state's message with its buttons or keyboard."""
        if state.say is None:
            return
        conversation, flow, context = self.conversation, self.flow, self.context()
        text = render_text(state.say, flow, context)
        buttons = inline_buttons(state, flow, context, conversation.page)
        keyboard = (
            reply_keyboard(state.keyboard, flow, context)
            if isinstance(state.keyboard, KeyboardSpec)
            else None
        )
        edit = state.edit if edit is None else edit
        if edit and conversation.live_message_id is not None and state.keyboard is None:
            action: Action = EditMessage(
                conversation.chat_id, conversation.live_message_id, text, buttons
            )
        else:
            action = SendMessage(
                conversation.chat_id,
                text,
                buttons,
                keyboard,
                remove_keyboard=state.keyboard == "remove",
            )
        message_id = await self.deliver(action)
        conversation.live_message_id = message_id if buttons else None

    # -- actions ------------------------------------------------------------------------

    async def act(self, action: ActionSpec) -> str | None:
        """Do one action; return the state to go to when it failed with `on_failure`."""
        verb = action.verb
        if verb == "set":
            context = self.context()
            for key, raw in action.set.items():
                self.keep(key, value_of(raw, context))
            return None
        if verb == "unset":
            for key in action.unset:
                self.conversation.data.pop(key, None)
            return None

        params = params_of(action.with_, self.context())
        if not action.wait:
            self.engine.spawn(
                self.call(action, params), self.log(), verb, action.call or action.run
            )
            return None
        started = time.perf_counter()
        try:
            result = await self.call_showing_typing(action, params)
        except (asyncio.CancelledError, RecipientGone):
            raise
        except Exception as exc:
            return self.failed(action, exc)
        self.debug(
            "{} {} done ms={:.1f}",
            verb,
            action.call or action.run,
            (time.perf_counter() - started) * 1000,
        )
        if action.save_as:
            self.keep(action.save_as, result)
        return None

    async def call_showing_typing(self, action: ActionSpec, params: dict[str, Any]) -> Any:
        """Call; if it is still running after TYPING_AFTER seconds, show the user we work."""
        loop = asyncio.get_running_loop()
        typing = ShowTyping(self.conversation.chat_id)
        timer = loop.call_later(
            TYPING_AFTER,
            lambda: self.engine.spawn(self.deliver(typing), self.log(), "show", "typing"),
        )
        try:
            return await self.call(action, params)
        finally:
            timer.cancel()

    async def call(self, action: ActionSpec, params: dict[str, Any]) -> Any:
        if action.call is not None:
            return await self.engine.backend.call(action.call, params)
        context = ActionContext(
            self.conversation.chat_id,
            self.conversation.language,
            dict(self.conversation.data),
            self.engine.status,
        )
        return await run_action(action.run, context, params)

    def failed(self, action: ActionSpec, exc: Exception) -> str | None:
        name = action.call or action.run
        route = action.on_failure
        self.log().warning(
            "{} {} failed: {}; next: {}",
            action.verb,
            name,
            exc,
            {None: "error text", "continue": "carry on"}.get(route, route),
        )
        if route is None:
            raise exc
        if action.save_as:
            self.conversation.data[action.save_as] = None
        return None if route == "continue" else route
