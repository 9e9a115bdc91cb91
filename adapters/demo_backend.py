"""The embedded demo backend: both services of the feedback bot, in process.

It answers the same paths, bodies and statuses as the real student registry
and suggestions service (`shared/product/backend-api.md`), so the feedback
flow runs unchanged against it. Seeded students cover every branch of
registration; users and messages are kept in memory for the process's life.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Mapping
from typing import Any

from loguru import logger

_GROUP = {"title": "KI-21", "course": 2, "field": {"title": "Kompyuter injiniringi"}}

STUDENTS: dict[str, dict[str, Any]] = {
    "12345678901234": {
        "id": 1,
        "full_name": "Aliyev Vali Karimovich",
        "phone": "+998901234567",
        "group_id": 7,
        "group": _GROUP,
    },
    "23456789012345": {
        "id": 2,
        "full_name": "Karimova Nodira",
        "phone": None,
        "group_id": 7,
        "group": _GROUP,
    },
    "34567890123456": {
        "id": 3,
        "full_name": "Rustamov Jasur",
        "phone": "+998935550011",
        "group_id": None,
    },
    "45678901234567": {"id": 4, "full_name": "", "phone": None, "group_id": None},
}
"""PINFL -> student. 1: complete; 2: no phone; 3: no group; 4: no name, phone or group.
Any other PINFL is not found."""

COURSES = [
    {"id": n, "name": f"{n}-kurs", "name_uz": f"{n}-kurs", "name_ru": f"{n} курс"}
    for n in range(1, 5)
]

DIRECTIONS = [
    {"id": i + 1, "name": uz, "name_uz": uz, "name_ru": ru}
    for i, (uz, ru) in enumerate(
        [
            ("Kompyuter injiniringi", "Компьютерная инженерия"),
            ("Dasturiy injiniring", "Программная инженерия"),
            ("Axborot xavfsizligi", "Информационная безопасность"),
            ("Iqtisodiyot", "Экономика"),
            ("Moliya", "Финансы"),
            ("Buxgalteriya hisobi", "Бухгалтерский учёт"),
            ("Pedagogika", "Педагогика"),
            ("Filologiya", "Филология"),
        ]
    )
]

REGISTERED_USER = {
    "chatId": "777",
    "fullName": "Saidova Malika",
    "phone": "+998911112233",
    "course": "3",
    "direction": "Moliya",
    "language": "ru",
}
"""Chat 777 is already registered (in Russian), for trying the returning-user path."""

_USER_FIELDS = ("userId", "chatId", "fullName", "phone", "course", "direction", "language")


class DemoBackend:
    """A `Transport` answering from memory; `calls` records every request for tests."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {"777": dict(REGISTERED_USER)}
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.down: set[str] = set()
        """Services that answer 503, to try a flow while a backend is out."""
        self.refusing: set[str] = set()
        """Services that answer 400 to every write, to try a flow's refusal path."""
        self.gates: dict[str, asyncio.Event] = {}
        """Path -> event: a request to that path waits until the event is set (a slow call)."""
        self._routes = [
            ("registry", "GET", r"/students/by-pinfl/(?P<pinfl>[^/]+)", self._student),
            ("registry", "GET", r"/courses", lambda **_: (200, copy.deepcopy(COURSES))),
            ("registry", "GET", r"/directions", lambda **_: (200, copy.deepcopy(DIRECTIONS))),
            ("suggestions", "GET", r"/users/(?P<chat_id>[^/]+)", self._get_user),
            ("suggestions", "GET", r"/users", self._find_user),
            ("suggestions", "POST", r"/users", self._create_user),
            ("suggestions", "PUT", r"/users/(?P<chat_id>[^/]+)", self._touch_user),
            ("suggestions", "POST", r"/messages", self._create_message),
            ("suggestions", "GET", r"/messages", self._list_messages),
            ("suggestions", "GET", r"/health", lambda **_: (200, {"status": "ok"})),
        ]

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any],
        body: Mapping[str, Any] | None,
        token: bool,
        retry: bool,
        key: str | None = None,
    ) -> tuple[int, Any]:
        self.calls.append(
            {
                "service": service,
                "method": method,
                "path": path,
                "query": dict(query),
                "body": dict(body or {}),
            }
        )
        gate = self.gates.get(path)
        if gate is not None:
            await gate.wait()
        if service in self.refusing and method != "GET":
            return 400, {"success": False, "message": "refused (demo)"}
        if service in self.down:
            return 503, {"detail": "Service unavailable (demo outage)"}
        for route_service, route_method, pattern, handler in self._routes:
            if route_service != service or route_method != method:
                continue
            match = re.fullmatch(pattern, path)
            if match:
                return handler(query=query, body=body or {}, **match.groupdict())
        logger.warning(
            "demo backend has no route service={} method={} path={}", service, method, path
        )
        return 404, {"detail": "Not found"}

    async def health(self) -> dict[str, str]:
        return {
            name: "down (demo)" if name in self.down else "up (demo)"
            for name in ("registry", "suggestions")
        }

    async def close(self) -> None:
        return None

    def _student(self, pinfl: str, **_: Any) -> tuple[int, Any]:
        student = STUDENTS.get(pinfl)
        if student is None:
            return 404, {"detail": "Not found."}
        return 200, {**copy.deepcopy(student), "pinfl": pinfl}

    def _get_user(self, chat_id: str, **_: Any) -> tuple[int, Any]:
        user = self.users.get(chat_id)
        if user is None:
            return 404, {"success": False, "message": "User not found"}
        return 200, {"success": True, "data": {"user": dict(user)}}

    def _find_user(self, query: Mapping[str, Any], **_: Any) -> tuple[int, Any]:
        return self._get_user(str(query.get("chatId", "")))

    def _create_user(self, body: Mapping[str, Any], **_: Any) -> tuple[int, Any]:
        missing = [f for f in _USER_FIELDS if not isinstance(body.get(f), str) or not body[f]]
        if missing:
            return 400, {"success": False, "message": f"missing or not a string: {missing}"}
        if body["chatId"] in self.users:
            return 409, {"success": False, "message": "User already exists"}
        self.users[body["chatId"]] = {k: body[k] for k in _USER_FIELDS if k != "userId"}
        return 201, {"success": True, "data": {"user": dict(body)}}

    def _touch_user(self, chat_id: str, body: Mapping[str, Any], **_: Any) -> tuple[int, Any]:
        if chat_id not in self.users:
            return 404, {"success": False}
        self.users[chat_id]["lastActivity"] = body.get("lastActivity")
        return 200, {"success": True}

    def _create_message(self, body: Mapping[str, Any], **_: Any) -> tuple[int, Any]:
        text = body.get("text")
        if (
            not isinstance(text, str)
            or not text
            or body.get("ticketType") not in ("suggestion", "complaint")
        ):
            return 400, {"success": False, "message": "invalid message"}
        if len(text) > 1000:
            return 413, {"success": False, "message": "text too long"}
        if any(m["messageId"] == body.get("messageId") for m in self.messages):
            return 201, {"success": True, "data": {"message": dict(body)}}
        self.messages.append(dict(body))
        return 201, {"success": True, "data": {"message": dict(body)}}

    def _list_messages(self, query: Mapping[str, Any], **_: Any) -> tuple[int, Any]:
        mine = [m for m in self.messages if m.get("chatId") == str(query.get("userId"))]
        return 200, {"success": True, "data": {"messages": mine[-int(query.get("limit", 10)) :]}}
