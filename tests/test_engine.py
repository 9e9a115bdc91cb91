"""The engine as a user meets it: order, isolation, failures, timers, expiry, buttons."""

from __future__ import annotations

import asyncio

from engine import custom
from engine.actions import AnswerButton, EditMessage, SendMessage
from engine.conversation import Conversation
from engine.events import Contact, Event
from tests.helpers import ROOT, Bot, command, make_bot, press, text

FOUND = "12345678901234"


async def register_until_pinfl(bot, chat: int) -> None:
    await bot.engine.handle(command(chat, "/start"))
    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(chat, message_id, "uz"))
    bot.said()


async def features_bot(chat: int) -> tuple[Bot, int]:
    """The small test flow of engine features, started; its first message's id."""
    custom.REGISTRY["explode"] = lambda context: 1 / 0
    bot = make_bot(ROOT / "tests" / "flows", main="features")
    await bot.engine.handle(command(chat, "/start"))
    message_id, _ = bot.last_buttons()
    return bot, message_id


async def test_a_slow_backend_call_for_one_user_blocks_nobody_else() -> None:
    bot = make_bot()
    gate = bot.demo.gates[f"/students/by-pinfl/{FOUND}"] = asyncio.Event()
    await register_until_pinfl(bot, 1)

    slow = asyncio.create_task(bot.engine.handle(text(1, FOUND)))
    await asyncio.wait_for(bot.engine.handle(command(2, "/start")), timeout=5)

    assert not slow.done()
    assert any("Tilni tanlang" in t for t in bot.texts())
    gate.set()
    await asyncio.wait_for(slow, timeout=5)


async def test_a_double_tap_waits_for_the_call_in_flight_instead_of_cancelling_it() -> None:
    bot = make_bot()
    gate = bot.demo.gates[f"/students/by-pinfl/{FOUND}"] = asyncio.Event()
    await register_until_pinfl(bot, 1)

    first = asyncio.create_task(bot.engine.handle(text(1, FOUND)))
    second = asyncio.create_task(bot.engine.handle(command(1, "/help")))
    await asyncio.sleep(0)
    assert not second.done()
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)

    said = bot.texts()
    found = next(i for i, t in enumerate(said) if "Aliyev Vali" in t)
    help_text = next(i for i, t in enumerate(said) if "taklif yoki shikoyat" in t)
    assert found < help_text, said


async def test_what_a_user_types_is_never_evaluated_as_a_template() -> None:
    bot = make_bot()
    await register_until_pinfl(bot, 5)
    await bot.engine.handle(text(5, "45678901234567"))
    bot.said()

    await bot.engine.handle(text(5, "{{ 7*7 }} {% for x in range(3) %}x{% endfor %}"))

    stored = await bot.engine.store.load(5)
    assert stored.data["full_name"] == "{{ 7*7 }} {% for x in range(3) %}x{% endfor %}"


async def test_a_failing_custom_action_keeps_the_last_good_state_and_says_so() -> None:
    bot, message_id = await features_bot(9)
    await bot.engine.handle(press(9, message_id, "ask"))
    bot.said()

    await bot.engine.handle(command(9, "/boom"))

    assert bot.texts() == ["Something broke."]
    assert (await bot.engine.store.load(9)).state == "ask_age"


async def test_a_failing_template_keeps_the_last_good_state() -> None:
    bot, message_id = await features_bot(9)

    await bot.engine.handle(press(9, message_id, "broken"))

    assert bot.texts()[-1] == "Something broke."
    stored = await bot.engine.store.load(9)
    assert stored.state == "hello"
    assert [a for a in bot.channel.actions if isinstance(a, AnswerButton)], "button answered"


async def test_a_delayed_transition_fires_after_its_time_and_not_after_leaving() -> None:
    bot, message_id = await features_bot(3)
    await bot.engine.handle(press(3, message_id, "wait"))
    bot.said()

    bot.clock.now += 1
    assert await bot.engine.fire_due_timers() == 0
    bot.clock.now += 1.5
    assert await bot.engine.fire_due_timers() == 1
    assert (await bot.engine.store.load(3)).state == "hello"

    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(3, message_id, "wait"))
    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(3, message_id, "stay"))
    bot.said()
    bot.clock.now += 5
    await bot.engine.fire_due_timers()
    assert (await bot.engine.store.load(3)).state == "ask_age"
    assert bot.texts() == []


async def test_go_back_returns_to_the_previous_question() -> None:
    bot, message_id = await features_bot(4)
    await bot.engine.handle(press(4, message_id, "wait"))
    message_id, _ = bot.last_buttons()
    await bot.engine.handle(press(4, message_id, "stay"))
    await bot.engine.handle(text(4, "abc"))
    assert bot.texts()[-2:] == ["A number from 1 to 120, please.", "How old are you?"]

    await bot.engine.handle(command(4, "/back"))

    assert (await bot.engine.store.load(4)).state == "waiting"


async def test_list_buttons_fit_telegrams_64_bytes_whatever_the_labels() -> None:
    bot, message_id = await features_bot(6)
    await bot.engine.handle(press(6, message_id, "long"))
    message_id, buttons = bot.last_buttons()
    assert all(len(b.data.encode()) <= 64 for b in buttons)
    assert [b.label[-1] for b in buttons[:4]] == ["0", "1", "2", "3"]

    await bot.engine.handle(press(6, message_id, "~p:2"))
    edited = [a for a in bot.said() if isinstance(a, EditMessage)]
    assert edited and edited[-1].message_id == message_id
    assert edited[-1].buttons[0][0].label.endswith("8")

    await bot.engine.handle(press(6, message_id, edited[-1].buttons[0][0].data))
    assert bot.texts()[-1] == "Picked 8."


async def test_idle_conversations_are_swept_and_the_next_start_begins_anew() -> None:
    bot = make_bot()
    await bot.engine.handle(command(777, "/start"))
    await bot.engine.handle(command(1, "/start"))
    bot.clock.now += 29 * 60
    await bot.engine.handle(command(1, "/help"))

    bot.clock.now += 2 * 60
    assert await bot.engine.sweep() == 1
    assert await bot.engine.store.load(777) is None
    assert await bot.engine.store.load(1) is not None

    bot.said()
    await bot.engine.handle(command(777, "/start"))
    assert bot.texts()[:2] == [
        "С возвращением, Saidova Malika!",
        "Главное меню. Что вы хотите отправить?",
    ]


async def test_a_conversation_survives_a_round_trip_through_its_serialised_form() -> None:
    bot = make_bot()
    await register_until_pinfl(bot, 8)
    await bot.engine.handle(text(8, FOUND))
    stored = await bot.engine.store.load(8)

    assert Conversation.load(stored.dump()) == stored
    assert stored.flow == "feedback" and stored.state == "menu"
    assert len(stored.dump()) < 700


async def test_only_admins_get_the_status() -> None:
    bot = make_bot(admins=frozenset({42}))
    await bot.engine.handle(command(42, "/start"))
    await bot.engine.handle(command(42, "/status"))
    assert any("Faol suhbatlar: 1" in t for t in bot.texts())

    await bot.engine.handle(command(43, "/status"))
    assert not any("Faol suhbatlar" in t for t in bot.texts())


async def test_a_button_pressed_on_an_older_message_is_refused_politely() -> None:
    bot = make_bot()
    await bot.engine.handle(command(777, "/start"))
    old_id, _ = bot.last_buttons()
    await bot.engine.handle(command(777, "/menu"))
    bot.said()

    await bot.engine.handle(press(777, old_id, "complaint", callback="old"))

    said = bot.said()
    assert said == [
        AnswerButton("old", "Эта кнопка устарела, нажмите кнопку в последнем сообщении.")
    ]
    assert (await bot.engine.store.load(777)).state == "menu"
    assert not any(isinstance(a, SendMessage) for a in said)


async def test_a_contact_card_of_someone_not_on_telegram_is_not_taken_as_ones_own() -> None:
    bot = make_bot()
    await register_until_pinfl(bot, 21)
    await bot.engine.handle(text(21, "23456789012345"))
    bot.said()

    card = Event(21, "contact", user_id=21, contact=Contact("+998901112233", None))
    await bot.engine.handle(card)

    assert bot.texts()[0] == "Faqat o'zingizning raqamingizni yuboring."
    assert (await bot.engine.store.load(21)).state == "ask_phone"


async def test_a_number_answer_refuses_nan_infinity_and_underscores() -> None:
    bot, message_id = await features_bot(7)
    await bot.engine.handle(press(7, message_id, "ask"))

    for answer in ("nan", "inf", "1_0", "-5"):
        bot.said()
        await bot.engine.handle(text(7, answer))
        assert bot.texts()[0] == "A number from 1 to 120, please.", answer
    await bot.engine.handle(text(7, "42"))
    assert bot.texts()[-2] == "You are 42."


async def test_a_conversation_whose_state_left_the_flow_starts_anew() -> None:
    bot = make_bot()
    await bot.engine.handle(command(777, "/start"))
    stored = await bot.engine.store.load(777)
    stored.state = "a_state_someone_renamed"
    await bot.engine.store.save(stored)
    bot.said()

    await bot.engine.handle(text(777, "hello"))

    assert bot.texts()[:2] == [
        "С возвращением, Saidova Malika!",
        "Главное меню. Что вы хотите отправить?",
    ]
    assert (await bot.engine.store.load(777)).state == "menu"
