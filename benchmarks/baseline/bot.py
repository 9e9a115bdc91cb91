"""The feedback bot written by hand on aiogram 3: the baseline of benchmarks/telegram.py.

Plain aiogram: a Router, StatesGroups, CallbackData factories, a Dispatcher with
MemoryStorage, long polling with the dispatcher's defaults. It holds the same
conversation as flows/feedback.yaml, in Uzbek, with the same messages and buttons:

    /start -> language -> PINFL -> checking, found, registered (reply keyboard), menu
    -> complaint -> category (7 + back) -> text -> submitted, menu

and asks the same in-process demo backend (adapters.demo_backend.DemoBackend) the same
requests, awaited as the engine awaits them. Simplified: a student the registry does not
know, or knows only in part, is asked for the PINFL again instead of name, phone, course
and direction; there is no Russian, no /help, /cancel or admin commands.

Every filter is async on purpose: aiogram 3 runs a sync filter, such as a bare state
(`@router.message(Form.name)`) or `F.text == ...`, in a worker thread for each update it
checks, which costs CPU that a careful bot does not spend.

    TELEGRAM_BOT_TOKEN=... [TELEGRAM_API_SERVER=http://127.0.0.1:8081] \
        python benchmarks/baseline/bot.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandStart, Filter, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from adapters.demo_backend import DemoBackend

CATEGORIES = {  # key: (button, prompt, substatus)
    "sharoit": (
        "🏫 Sharoit",
        "Bino, xona, jihozlar yoki infratuzilma bilan bog'liq muammoni yozing.",
        "Conditions",
    ),
    "qabul": (
        "📝 Qabul",
        "Qabul, hujjatlar yoki o'qishga kirish bo'yicha muammoni yozing.",
        "Admission",
    ),
    "dars": (
        "📚 Dars jarayoni",
        "Muammoni yozing: o'qituvchi ismi, xona va dars vaqtini ko'rsating.",
        "Learning Process",
    ),
    "teacher": (
        "👨‍🏫 O'qituvchi",
        "O'qituvchining ismini ko'rsatib, vaziyatni yozing.",
        "Teacher",
    ),
    "tutor": (
        "🧑‍💼 Tyutor",
        "Vaziyatni yozing; iloji bo'lsa, tyutorning ismini ko'rsating.",
        "Tutor",
    ),
    "dekanat": (
        "🏛 Dekanat",
        "Ma'muriyat, kafedra yoki dekanat bilan bog'liq muammoni yozing.",
        "Dean Office",
    ),
    "other": ("❓ Boshqa", "Muammoni barcha kerakli tafsilotlari bilan yozing.", "Other"),
}
SEND_MESSAGE = "✉️ Xabar yuborish"
SUGGESTION_PROMPT = "Taklifingizni yozing (10 dan 1000 gacha belgi)."
FALLBACK = "Buni tushunmadim. Iltimos, quyidagi savolga javob bering."
URGENT_WORDS = ("shoshilinch", "muhim", "zudlik", "tezkor")


class Language(CallbackData, prefix="lang"):
    code: str


class MenuItem(CallbackData, prefix="menu"):
    item: str


class Category(CallbackData, prefix="cat"):
    key: str


class TextIs(Filter):
    """A message with exactly this text (an async filter: aiogram runs a plain `F.text ==`
    in a thread for every update it checks)."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def __call__(self, message: Message) -> bool:
        return message.text == self.text


def buttons(pairs: list[tuple[str, CallbackData]], columns: int) -> InlineKeyboardMarkup:
    row = [InlineKeyboardButton(text=label, callback_data=data.pack()) for label, data in pairs]
    return InlineKeyboardMarkup(
        inline_keyboard=[row[i : i + columns] for i in range(0, len(row), columns)]
    )


LANGUAGES = buttons(
    [("🇺🇿 O'zbekcha", Language(code="uz")), ("🇷🇺 Русский", Language(code="ru"))], 2
)
MENU = buttons(
    [("💡 Taklif", MenuItem(item="suggestion")), ("⚠️ Shikoyat", MenuItem(item="complaint"))], 2
)
CATEGORY_BUTTONS = buttons(
    [(label, Category(key=key)) for key, (label, _, _) in CATEGORIES.items()], 2
)
CATEGORY_BUTTONS.inline_keyboard.append(
    [InlineKeyboardButton(text="⬅️ Orqaga", callback_data=MenuItem(item="menu").pack())]
)
SEND_KEYBOARD = ReplyKeyboardMarkup(
    keyboard=[[KeyboardButton(text=SEND_MESSAGE)]], resize_keyboard=True, is_persistent=True
)


class Registration(StatesGroup):
    language = State()
    pinfl = State()


class Feedback(StatesGroup):
    menu = State()
    category = State()
    text = State()


router = Router()
backend = DemoBackend()


async def call(service: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The demo backend's answer body, or None unless it answered 2xx."""
    status, answer = await backend.request(
        service, method, path, query={}, body=body, token=service == "registry", retry=False
    )
    return answer if 200 <= status < 300 else None


async def show_menu(message: Message, state: FSMContext, *, edit: bool = False) -> None:
    await state.set_state(Feedback.menu)
    text = "Asosiy menyu. Nima yubormoqchisiz?"
    if edit:
        await message.edit_text(text, reply_markup=MENU)
    else:
        await message.answer(text, reply_markup=MENU)


@router.message(CommandStart())
async def start(message: Message, state: FSMContext) -> None:
    await state.clear()
    chat_id = message.chat.id
    account = await call("suggestions", "GET", f"/users/{chat_id}")
    if account is None:
        await state.set_state(Registration.language)
        await message.answer(
            "Assalomu alaykum! Tilni tanlang.\nЗдравствуйте! Выберите язык.",
            reply_markup=LANGUAGES,
        )
        return
    user = account["data"]["user"]
    await state.update_data(registered=True, language=user["language"])
    touch = {"lastActivity": datetime.now(UTC).isoformat()}
    asyncio.create_task(call("suggestions", "PUT", f"/users/{chat_id}", touch))  # noqa: RUF006
    await message.answer(f"Xush kelibsiz, {user['fullName']}!")
    await show_menu(message, state)


@router.callback_query(StateFilter(Registration.language), Language.filter())
async def choose_language(
    query: CallbackQuery, callback_data: Language, state: FSMContext
) -> None:
    await query.answer()
    await state.update_data(language=callback_data.code)
    await state.set_state(Registration.pinfl)
    await query.message.edit_text("JSHSHIR (PINFL) raqamingizni yuboring: 14 ta raqam.")


@router.message(StateFilter(Registration.pinfl))
async def take_pinfl(message: Message, state: FSMContext) -> None:
    pinfl = re.sub(r"[\s-]", "", message.text or "")
    if not re.fullmatch(r"\d{14}", pinfl):
        await message.answer("JSHSHIR 14 ta raqamdan iborat bo'lishi kerak. Qaytadan yuboring.")
        return
    await message.answer("⏳ Ma'lumotlaringiz tekshirilmoqda...")
    student = await call("registry", "GET", f"/students/by-pinfl/{pinfl}")
    group = (student or {}).get("group") or {}
    if not (student and student["full_name"] and student["phone"] and group):
        await message.answer("Ma'lumotlaringiz topilmadi. JSHSHIR raqamini qayta yuboring.")
        return
    name = student["full_name"]
    await message.answer(f"Assalomu alaykum, {name}! Ma'lumotlaringiz topildi.")
    data = await state.get_data()
    chat = str(message.chat.id)
    profile = {
        "userId": chat,
        "chatId": chat,
        "fullName": name,
        "phone": student["phone"],
        "course": str(group["course"]),
        "direction": group["field"]["title"],
        "language": data["language"],
    }
    status, _ = await backend.request(
        "suggestions", "POST", "/users", query={}, body=profile, token=False, retry=False
    )
    if status not in (200, 201, 409):
        await message.answer("Ro'yxatdan o'tkazib bo'lmadi. Qayta urinib ko'ring: /start")
        return
    await state.update_data(registered=True, full_name=name)
    await message.answer(
        "✅ Ro'yxatdan o'tdingiz! Xabar yuborish uchun pastdagi tugmadan foydalaning.",
        reply_markup=SEND_KEYBOARD,
    )
    await show_menu(message, state)


@router.callback_query(StateFilter(Feedback.menu), MenuItem.filter(F.item == "complaint"))
async def complaint(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await state.set_state(Feedback.category)
    await query.message.edit_text(
        "Shikoyat nima haqida? Bo'limni tanlang.", reply_markup=CATEGORY_BUTTONS
    )


@router.callback_query(StateFilter(Feedback.menu), MenuItem.filter(F.item == "suggestion"))
async def suggestion(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await state.update_data(ticket_type="suggestion", category=None)
    await state.set_state(Feedback.text)
    await query.message.edit_text(SUGGESTION_PROMPT)


@router.callback_query(StateFilter(Feedback.category), Category.filter(F.key.in_(CATEGORIES)))
async def choose_category(
    query: CallbackQuery, callback_data: Category, state: FSMContext
) -> None:
    key = callback_data.key
    await query.answer()
    await state.update_data(ticket_type="complaint", category=key)
    await state.set_state(Feedback.text)
    await query.message.edit_text(CATEGORIES[key][1])


@router.callback_query(StateFilter(Feedback.category), MenuItem.filter(F.item == "menu"))
async def back(query: CallbackQuery, state: FSMContext) -> None:
    await query.answer()
    await show_menu(query.message, state, edit=True)


@router.message(StateFilter(Feedback.text))
async def take_text(message: Message, state: FSMContext) -> None:
    if message.text is None:
        await message.answer("Iltimos, xabaringizni matn ko'rinishida yozing.")
        return
    text = message.text.strip()
    if len(text) < 10:
        await message.answer("Matn juda qisqa: kamida 10 ta belgi yozing.")
        return
    if len(text) > 1000:
        await message.answer("Matn juda uzun: ko'pi bilan 1000 ta belgi bo'lsin.")
        return
    data = await state.get_data()
    category = data.get("category")
    urgent = category in ("dekanat", "teacher") or any(w in text.lower() for w in URGENT_WORDS)
    priority = "high" if urgent else "medium" if len(text) > 200 else "low"
    logging.info("submission chat=%s category=%s priority=%s", message.chat.id, category, priority)
    chat = str(message.chat.id)
    sent = await call(
        "suggestions",
        "POST",
        "/messages",
        {
            "messageId": str(uuid.uuid4()),
            "userId": chat,
            "chatId": chat,
            "timestamp": datetime.now(UTC).isoformat(),
            "status": "pending",
            "ticketType": data["ticket_type"],
            "text": text,
            "language": data["language"],
            "isactive": False,
            "substatus": CATEGORIES[category][2] if category else None,
        },
    )
    if sent is None:
        await message.answer("Xabarni hozir yuborib bo'lmadi. Qayta yozib ko'ring.")
        return
    await message.answer(
        "Rahmat! Xabaringiz ko'rib chiqishga yuborildi. 24-48 soat ichida javob beramiz."
    )
    await show_menu(message, state)


@router.message(Command("menu"))
@router.message(TextIs(SEND_MESSAGE))
async def menu(message: Message, state: FSMContext) -> None:
    if (await state.get_data()).get("registered"):
        await show_menu(message, state)
    else:
        await start(message, state)


@router.message()
async def fallback(message: Message) -> None:
    await message.answer(FALLBACK)


@router.callback_query()
async def stale(query: CallbackQuery) -> None:
    await query.answer("Bu tugma eskirgan, oxirgi xabardagisini bosing.")


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = os.environ.get("TELEGRAM_API_SERVER")
    session = AiohttpSession(api=TelegramAPIServer.from_base(server)) if server else None
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=session)
    dispatcher = Dispatcher(storage=MemoryStorage())
    dispatcher.include_router(router)
    await dispatcher.start_polling(bot)


if __name__ == "__main__":
    asyncio.run(main())
