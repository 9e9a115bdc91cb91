"""A fake of the feedback bot's two backend services, for tests.

`FakeBackend` runs two real aiohttp servers on 127.0.0.1 (ephemeral ports) that follow
`shared/product/backend-api.md`: the student registry (`registry_url`, ending in `/api/v1`)
with JWT-style tokens that expire, and the suggestions service (`suggestions_url`). Every
request is recorded; faults (status codes, latency, hangs, dropped connections, malformed
bodies, the whole service down and back on the same port) can be injected per service.

    async with FakeBackend(username="bot", password="s3cret") as fake:
        fake.add_student("12345678901234", full_name="Ali Valiyev")
        fake.add_user(1001, fullName="Ali Valiyev", language="uz")
        fake.suggestions.fail(503, times=2, path="/messages", method="POST")
        fake.registry.expire_access_tokens()
        await fake.suggestions.down()  # connections refused ...
        await fake.suggestions.up()  # ... until it is back on the same port
        await fake.wait_for(lambda: len(fake.stored_messages) == 1, timeout=5)

Recorded paths are relative to the service's base URL (`/auth/login`, `/users/1001`). Fault
paths are globs (`/users/*`) or compiled regular expressions, matched against those paths.

Deployment differences are switches, given to `FakeBackend(...)` or set later on the service:
registry `rotate_refresh`, `access_ttl`, `refresh_ttl`, `courses_key` ("data" | "courses"),
`directions_key` ("data" | "directions" | "fields"); suggestions `require_token`
(`require_token_on_suggestions=`), `path_form`, `activity_update`, `health`, `root`,
`count_utf16` (text length counted in UTF-16 code units, as a JavaScript service does).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import fnmatch
import itertools
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.signal import Signal as _Signal

JsonDict = dict[str, Any]
Clock = Callable[[], float]
PathPattern = str | re.Pattern[str]

LOOPBACK = "127.0.0.1"
REGISTRY_PREFIX = "/api/v1"
MAX_TEXT = 1000
EXPIRED_DETAIL = "Invalid or expired token"
FAULT_KINDS = frozenset({"status", "latency", "hang", "drop", "malformed", "html"})
USER_FIELDS = ("userId", "chatId", "fullName", "phone", "course", "direction", "language")
SUBSTATUSES = frozenset(
    {"Conditions", "Admission", "Learning Process", "Teacher", "Tutor", "Dean Office", "Other"}
)
COURSES_KEYS = frozenset({"data", "courses"})
DIRECTIONS_KEYS = frozenset({"data", "directions", "fields"})
MALFORMED_JSON = '{"success": true, "data": {"user": {"chatId": "1'
SHUTDOWN_TIMEOUT = 0.5

DEFAULT_COURSES: list[JsonDict] = [
    {"id": n, "name": f"Course {n}", "name_uz": f"{n}-kurs", "name_ru": f"{n} курс"}
    for n in range(1, 5)
]
DEFAULT_DIRECTIONS: list[JsonDict] = [
    {"id": n, "name": name, "name_uz": uz, "name_ru": ru}
    for n, (name, uz, ru) in enumerate(
        [
            ("Software Engineering", "Dasturiy injiniring", "Программная инженерия"),
            ("Computer Engineering", "Kompyuter injiniringi", "Компьютерная инженерия"),
            ("Economics", "Iqtisodiyot", "Экономика"),
            ("Law", "Yurisprudensiya", "Юриспруденция"),
            ("Medicine", "Tibbiyot", "Медицина"),
            ("Pedagogy", "Pedagogika", "Педагогика"),
            ("Philology", "Filologiya", "Филология"),
            ("Tourism", "Turizm", "Туризм"),
        ],
        start=1,
    )
]


@dataclass
class BackendCall:
    """One request as a fake service saw it; `status` is 0 while unanswered or when dropped."""

    service: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    json: Any = None
    body: str = ""
    status: int = 0
    response: Any = None
    fault: str | None = None
    dropped: bool = False
    cancelled: bool = False
    done_at: float | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def bearer(self) -> str | None:
        scheme, _, token = (self.authorization or "").partition(" ")
        return (token.strip() or None) if scheme.lower() == "bearer" else None

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def answered(self) -> bool:
        return self.status != 0 and not self.dropped


@dataclass(eq=False)
class Fault:
    """An injected fault for the next `times` matching requests (None: until cleared)."""

    kind: str
    status: int = 500
    times: int | None = 1
    path: PathPattern | None = None
    method: str | None = None
    retry_after: int | str | None = None
    delay: float = 0.0
    reset: bool = False
    hits: int = 0
    cleared: bool = False
    on_clear: Callable[[Fault], None] | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return not self.cleared and (self.times is None or self.hits < self.times)

    def matches(self, call: BackendCall) -> bool:
        if not self.active:
            return False
        if self.method is not None and self.method.upper() != call.method:
            return False
        if self.path is None:
            return True
        if isinstance(self.path, re.Pattern):
            return self.path.fullmatch(call.path) is not None
        return fnmatch.fnmatchcase(call.path, self.path)

    def clear(self) -> None:
        """Stop this fault now; requests it holds (hang, latency) are answered at once."""
        self.cleared = True
        if self.on_clear is not None:
            self.on_clear(self)


Handler = Callable[[BackendCall, re.Match[str]], web.Response]
Route = tuple[str, re.Pattern[str], Handler]


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64(data: JsonDict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _html_page(title: str, text: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n</head>\n<body>\n<pre>{text}</pre>\n</body>\n</html>\n"
    )


def _int_param(value: str | None, default: int, upper: int) -> int | None:
    if value is None:
        return default
    return int(value) if value.isdigit() and 1 <= int(value) <= upper else None


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeService:
    """One fake HTTP service: listener, request log, in-flight gauge and fault injection."""

    def __init__(self, name: str, signal: _Signal, clock: Clock, prefix: str = "") -> None:
        self.name = name
        self.prefix = prefix
        self.port = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults: list[Fault] = []
        self._calls: list[BackendCall] = []
        self._signal = signal
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self._routes: list[Route] = self._route_table()

    # ----------------------------------------------------------------- lifecycle

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + (self.prefix or "/")

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        await self._listen(self.port)

    async def close(self) -> None:
        """Release held requests, close every connection, stop listening."""
        self._stopping = True
        self._signal.notify()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._signal.notify()

    async def down(self) -> None:
        """The service goes away: open connections close, new ones are refused."""
        await self.close()

    async def up(self) -> None:
        """The service comes back on the same port."""
        if self._runner is None:
            await self._listen(self.port)
            self._signal.notify()

    async def _listen(self, port: int) -> None:
        self._stopping = False
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT, handler_cancellation=True
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, LOOPBACK, port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    # ----------------------------------------------------------------- faults

    def inject(
        self,
        kind: str,
        *,
        status: int | None = None,
        times: int | None = 1,
        path: PathPattern | None = None,
        method: str | None = None,
        retry_after: int | str | None = None,
        delay: float = 0.0,
        reset: bool = False,
    ) -> Fault:
        """Add a fault of `kind` (one of FAULT_KINDS); the first active match applies.

        status defaults to 500 (status), 502 (html) or 200 (malformed).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        status = status or {"html": 502, "malformed": 200}.get(kind, 500)
        if kind == "status" and status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(kind, status, times, path, method, retry_after, delay, reset)
        fault.on_clear = self._forget
        self.faults.append(fault)
        self._signal.notify()
        return fault

    def fail(self, status: int = 500, **options: Any) -> Fault:
        """Answer `status` (JSON error; 429 carries Retry-After: 1 unless `retry_after`)."""
        return self.inject("status", status=status, **options)

    def slow(self, seconds: float, **options: Any) -> Fault:
        """Hold the answer for `seconds`, then answer normally."""
        return self.inject("latency", delay=seconds, **options)

    def hang(self, **options: Any) -> Fault:
        """Never answer until the fault is cleared (then answer normally) or the service stops."""
        return self.inject("hang", **options)

    def drop(self, *, reset: bool = False, **options: Any) -> Fault:
        """Close the connection without an answer (`reset`: abort it with a TCP RST)."""
        return self.inject("drop", reset=reset, **options)

    def malformed(self, **options: Any) -> Fault:
        """Answer 200 with a body that is not valid JSON (content type application/json)."""
        return self.inject("malformed", **options)

    def html_error(self, status: int = 502, **options: Any) -> Fault:
        """Answer `status` with an HTML error page, like a proxy in front of a dead service."""
        return self.inject("html", status=status, **options)

    def clear(self) -> None:
        """Remove every fault; held requests (hang, latency) are answered at once."""
        for fault in list(self.faults):
            fault.clear()

    def _forget(self, fault: Fault) -> None:
        self.faults = [f for f in self.faults if f is not fault]
        self._signal.notify()

    # ----------------------------------------------------------------- recording

    def calls(
        self, path: PathPattern | None = None, method: str | None = None
    ) -> list[BackendCall]:
        """Recorded requests, optionally only those matching a path glob/regex and a method."""
        probe = Fault("status", times=None, path=path, method=method)
        return [call for call in self._calls if probe.matches(call)]

    def count(self, path: PathPattern | None = None, method: str | None = None) -> int:
        return len(self.calls(path, method))

    @property
    def counts(self) -> Counter[str]:
        """Requests per path."""
        return Counter(call.path for call in self._calls)

    def reset_stats(self) -> None:
        """Forget recorded requests and the in-flight peak (not the data)."""
        self._calls.clear()
        self.max_in_flight = self.in_flight

    # ----------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = self._record(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._signal.notify()
        try:
            await self._read_body(request, call)
            return await self._serve(request, call)
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        finally:
            self.in_flight -= 1
            call.done_at = time.monotonic()
            self._signal.notify()

    def _record(self, request: web.Request) -> BackendCall:
        path = request.path
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            path = path[len(self.prefix) :] or "/"
        headers = {key.lower(): value for key, value in request.headers.items()}
        call = BackendCall(
            self.name, request.method, path, dict(request.query), headers, time.monotonic()
        )
        self._calls.append(call)
        return call

    @staticmethod
    async def _read_body(request: web.Request, call: BackendCall) -> None:
        if not request.body_exists:
            return
        call.body = await request.text()
        try:
            call.json = json.loads(call.body)
        except ValueError:
            call.json = None

    async def _serve(self, request: web.Request, call: BackendCall) -> web.StreamResponse:
        fault = next((f for f in self.faults if f.matches(call)), None)
        if fault is None:
            return self._answer(call)
        fault.hits += 1
        call.fault = fault.kind
        if fault.delay:
            await self._signal.wait_until(lambda: self._stopping or fault.cleared, fault.delay)
        if fault.kind == "hang":
            await self._signal.wait_until(lambda: self._stopping or fault.cleared, None)
        if self._stopping or fault.kind == "drop":
            return self._drop(request, call, reset=fault.reset)
        if fault.kind in {"latency", "hang"}:
            return self._answer(call)
        return self._faulty(call, fault)

    def _answer(self, call: BackendCall) -> web.Response:
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match is None:
                continue
            if method == call.method:
                return handler(call, match)
            allowed = True
        return self._no_route(call, allowed)

    @staticmethod
    def _drop(request: web.Request, call: BackendCall, *, reset: bool) -> web.Response:
        call.dropped = True
        transport = request.transport
        if transport is not None and reset:
            transport.abort()
        elif transport is not None:
            transport.close()
        return web.Response()

    def _faulty(self, call: BackendCall, fault: Fault) -> web.Response:
        if fault.kind == "malformed":
            call.status, call.response = 200, MALFORMED_JSON
            return web.Response(text=MALFORMED_JSON, content_type="application/json")
        phrase = HTTPStatus(fault.status).phrase
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.kind == "html":
            page = _html_page(f"{fault.status} {phrase}", f"{fault.status} {phrase}\nnginx")
            call.status, call.response = fault.status, page
            return web.Response(
                status=fault.status, text=page, content_type="text/html", headers=headers
            )
        return self._json(call, fault.status, self._error_body(phrase), headers)

    def _json(
        self, call: BackendCall, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        call.status, call.response = status, copy.deepcopy(body)
        return web.json_response(body, status=status, headers=headers)

    def _html(self, call: BackendCall, status: int, text: str) -> web.Response:
        page = _html_page("Error", text)
        call.status, call.response = status, page
        return web.Response(status=status, text=page, content_type="text/html")

    # ----------------------------------------------------------------- per service

    def _route_table(self) -> list[Route]:
        return []

    def _error_body(self, message: str) -> JsonDict:
        return {"detail": message}

    def _no_route(self, call: BackendCall, allowed: bool) -> web.Response:
        return self._json(call, 404, self._error_body("Not found."))


class Registry(FakeService):
    """The student registry: login, refresh, students by PINFL, courses and directions."""

    def __init__(
        self,
        signal: _Signal,
        clock: Clock,
        *,
        username: str,
        password: str,
        access_ttl: float,
        refresh_ttl: float,
        rotate_refresh: bool,
        courses_key: str | None,
        directions_key: str | None,
    ) -> None:
        super().__init__("registry", signal, clock, REGISTRY_PREFIX)
        self.username = username
        self.password = password
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.rotate_refresh = rotate_refresh
        self.courses_key = courses_key
        self.directions_key = directions_key
        self.courses: list[JsonDict] = copy.deepcopy(DEFAULT_COURSES)
        self.directions: list[JsonDict] = copy.deepcopy(DEFAULT_DIRECTIONS)
        self.students: dict[str, JsonDict] = {}
        self.logins = 0
        self.refreshes = 0
        self.issued_tokens: list[str] = []
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- tokens

    def token_valid(self, token: str | None) -> bool:
        """Whether `token` is an access token issued here and not expired."""
        return token is not None and self._access.get(token, float("-inf")) > self._clock()

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on."""
        self._access.clear()
        self._signal.notify()

    def expire_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on."""
        self._refresh.clear()
        self._signal.notify()

    def _issue(self, kind: str, ttl: float) -> str:
        claims = {"token_type": kind, "exp": int(time.time() + ttl), "jti": secrets.token_hex(8)}
        header = _b64({"alg": "HS256", "typ": "JWT"})
        token = f"{header}.{_b64(claims)}.{secrets.token_urlsafe(32)}"
        table = self._access if kind == "access" else self._refresh
        table[token] = self._clock() + ttl
        self.issued_tokens.append(token)
        return token

    # ----------------------------------------------------------------- data

    def add_student(self, pinfl: str, **fields: Any) -> JsonDict:
        """Seed a student; `group=None` leaves the group out; shortcuts: group_title, course,
        field_title (into the nested group)."""
        number = next(self._ids)
        group: JsonDict = {
            "title": fields.pop("group_title", f"SE-{number:02d}"),
            "course": fields.pop("course", 1),
            "field": {"title": fields.pop("field_title", "Software Engineering")},
        }
        student: JsonDict = {
            "id": number,
            "full_name": f"Student {number}",
            "pinfl": str(pinfl),
            "phone": "+998901234567",
            "group_id": 100 + number,
            "group": group,
        } | fields
        if student["group"] is None:
            del student["group"]
            student["group_id"] = fields.get("group_id")
        self.students[str(pinfl)] = student
        self._signal.notify()
        return copy.deepcopy(student)

    # ----------------------------------------------------------------- routes

    def _route_table(self) -> list[Route]:
        return [
            ("POST", re.compile(r"/auth/login"), self._login),
            ("POST", re.compile(r"/auth/refresh"), self._refresh_token),
            ("GET", re.compile(r"/students/by-pinfl/(?P<pinfl>[^/]+)"), self._student),
            ("GET", re.compile(r"/courses"), self._courses),
            ("GET", re.compile(r"/directions"), self._directions),
        ]

    def _no_route(self, call: BackendCall, allowed: bool) -> web.Response:
        if allowed:
            return self._json(call, 405, {"detail": f'Method "{call.method}" not allowed.'})
        return self._json(call, 404, {"detail": "Not found."})

    def _login(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        self.logins += 1
        body = call.json if isinstance(call.json, dict) else {}
        missing = [key for key in ("username", "password") if not isinstance(body.get(key), str)]
        if missing:
            return self._json(call, 400, {key: ["This field is required."] for key in missing})
        if (body["username"], body["password"]) != (self.username, self.password):
            detail = "No active account found with the given credentials"
            return self._json(call, 401, {"detail": detail})
        access = self._issue("access", self.access_ttl)
        refresh = self._issue("refresh", self.refresh_ttl)
        return self._json(call, 200, {"access": access, "refresh": refresh})

    def _refresh_token(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        self.refreshes += 1
        body = call.json if isinstance(call.json, dict) else {}
        token = body.get("refresh")
        if not isinstance(token, str):
            return self._json(call, 400, {"refresh": ["This field is required."]})
        if self._refresh.get(token, float("-inf")) <= self._clock():
            detail = {"detail": "Token is invalid or expired", "code": "token_not_valid"}
            return self._json(call, 401, detail)
        answer = {"access": self._issue("access", self.access_ttl)}
        if self.rotate_refresh:
            del self._refresh[token]
            answer["refresh"] = self._issue("refresh", self.refresh_ttl)
        return self._json(call, 200, answer)

    def _unauthorized(self, call: BackendCall) -> web.Response | None:
        if call.bearer is None:
            detail = "Authentication credentials were not provided."
            return self._json(call, 401, {"detail": detail})
        if not self.token_valid(call.bearer):
            return self._json(call, 401, {"detail": EXPIRED_DETAIL})
        return None

    def _student(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        refused = self._unauthorized(call)
        if refused is not None:
            return refused
        student = self.students.get(match["pinfl"])
        if student is None:
            return self._json(call, 404, {"detail": "Not found."})
        return self._json(call, 200, student)

    def _courses(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        return self._listing(call, self.courses, self.courses_key)

    def _directions(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        return self._listing(call, self.directions, self.directions_key)

    def _listing(self, call: BackendCall, items: list[JsonDict], key: str | None) -> web.Response:
        refused = self._unauthorized(call)
        if refused is not None:
            return refused
        return self._json(call, 200, items if key is None else {key: items})


class Suggestions(FakeService):
    """The suggestions service: users, activity, messages (deduplicated) and health."""

    def __init__(
        self,
        signal: _Signal,
        clock: Clock,
        *,
        token_valid: Callable[[str | None], bool],
        require_token: bool,
        path_form: bool,
        activity_update: bool,
        health: bool,
        root: bool,
    ) -> None:
        super().__init__("suggestions", signal, clock)
        self.require_token = require_token
        self.path_form = path_form
        self.activity_update = activity_update
        self.health = health
        self.root = root
        self.count_utf16 = True
        self.users: dict[str, JsonDict] = {}
        self.messages: list[JsonDict] = []
        self.duplicates_refused = 0
        self._token_valid = token_valid
        self._by_key: dict[str, JsonDict] = {}
        self._by_id: dict[str, JsonDict] = {}

    # ----------------------------------------------------------------- data

    def add_user(self, chat_id: int | str, **fields: Any) -> JsonDict:
        """Seed a registered user (all seven fields, as strings unless given otherwise)."""
        user: JsonDict = {
            "userId": str(chat_id),
            "chatId": str(chat_id),
            "fullName": "Test User",
            "phone": "+998901234567",
            "course": "1",
            "direction": "Software Engineering",
            "language": "uz",
            "createdAt": _now_iso(),
        } | fields
        self.users[str(chat_id)] = user
        self._signal.notify()
        return copy.deepcopy(user)

    # ----------------------------------------------------------------- routes

    def _route_table(self) -> list[Route]:
        chat = r"/users/(?P<chat>[^/]+)"
        return [
            ("GET", re.compile(r"/health"), self._health),
            ("GET", re.compile(r"/"), self._root),
            ("GET", re.compile(r"/users"), self._list_users),
            ("POST", re.compile(r"/users"), self._register),
            ("GET", re.compile(chat), self._user_by_path),
            ("PUT", re.compile(chat), self._activity),
            ("POST", re.compile(r"/messages"), self._submit),
            ("GET", re.compile(r"/messages"), self._messages),
        ]

    def _answer(self, call: BackendCall) -> web.Response:
        guarded = self.require_token and call.path not in {"/", "/health"}
        if guarded and not self._token_valid(call.bearer):
            return self._json(call, 401, self._error_body("Unauthorized"))
        return super()._answer(call)

    def _error_body(self, message: str) -> JsonDict:
        return {"success": False, "message": message}

    def _no_route(self, call: BackendCall, allowed: bool) -> web.Response:
        return self._html(call, 404, f"Cannot {call.method} {call.path}")

    def _ok(self, call: BackendCall, status: int, **data: Any) -> web.Response:
        return self._json(call, status, {"success": True, "data": data})

    def _refuse(self, call: BackendCall, status: int, message: str) -> web.Response:
        return self._json(call, status, self._error_body(message))

    def _health(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        if not self.health:
            return self._no_route(call, False)
        return self._json(call, 200, {"status": "ok"})

    def _root(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        if not self.root:
            return self._no_route(call, False)
        return self._json(call, 200, {"success": True, "message": "Suggestions API"})

    def _found(self, call: BackendCall, chat_id: str) -> web.Response:
        user = self.users.get(chat_id)
        if user is None:
            return self._refuse(call, 404, "User not found")
        return self._ok(call, 200, user=user)

    def _user_by_path(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        if not self.path_form:
            return self._no_route(call, False)
        return self._found(call, match["chat"])

    def _list_users(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        if "chatId" in call.query:
            return self._found(call, call.query["chatId"])
        limit = _int_param(call.query.get("limit"), 20, 100)
        if limit is None:
            return self._refuse(call, 400, "limit must be an integer from 1 to 100")
        return self._ok(call, 200, users=list(self.users.values())[:limit])

    def _register(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        body = call.json
        if not isinstance(body, dict):
            return self._refuse(call, 400, "Request body must be a JSON object")
        wrong = [key for key in USER_FIELDS if not isinstance(body.get(key), str)]
        if wrong:
            return self._refuse(call, 400, f"Missing or invalid fields: {', '.join(wrong)}")
        if body["chatId"] in self.users:
            return self._refuse(call, 409, "User already registered")
        user = {key: body[key] for key in USER_FIELDS} | {"createdAt": _now_iso()}
        self.users[body["chatId"]] = user
        return self._ok(call, 201, user=user)

    def _activity(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        if not self.activity_update:
            return self._no_route(call, False)
        user = self.users.get(match["chat"])
        if user is None:
            return self._refuse(call, 404, "User not found")
        moment = call.json.get("lastActivity") if isinstance(call.json, dict) else None
        try:
            datetime.fromisoformat(str(moment))
        except ValueError:
            return self._refuse(call, 400, "lastActivity must be an ISO-8601 time")
        user["lastActivity"] = moment
        return self._ok(call, 200, user=user)

    def _submit(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        key = call.idempotency_key
        if key is not None and key in self._by_key:
            return self._duplicate(call, self._by_key[key])
        problem = self._message_problem(call.json)
        if problem is not None:
            return self._refuse(call, *problem)
        body: JsonDict = call.json
        known = self._by_id.get(body["messageId"])
        if known is not None:
            if key is not None:
                self._by_key[key] = known
            return self._duplicate(call, known)
        message = body | {"createdAt": _now_iso()}
        message.setdefault("substatus", None)
        self.messages.append(message)
        self._by_id[body["messageId"]] = message
        if key is not None:
            self._by_key[key] = message
        return self._ok(call, 201, message=message)

    def _duplicate(self, call: BackendCall, message: JsonDict) -> web.Response:
        self.duplicates_refused += 1
        return self._ok(call, 201, message=message)

    def _message_problem(self, body: Any) -> tuple[int, str] | None:
        """The status and message a submission is refused with, or None when it is valid."""
        if not isinstance(body, dict):
            return 400, "Request body must be a JSON object"
        wrong = [name for name, ok in self._message_checks(body) if not ok]
        if wrong:
            return 400, f"Missing or invalid fields: {', '.join(wrong)}"
        text = body["text"]
        if (_utf16_len(text) if self.count_utf16 else len(text)) > MAX_TEXT:
            return 413, f"Text is longer than {MAX_TEXT} characters"
        return None

    @staticmethod
    def _message_checks(body: JsonDict) -> list[tuple[str, bool]]:
        def ident(value: Any) -> bool:
            return (isinstance(value, str) and bool(value)) or (
                isinstance(value, int) and not isinstance(value, bool)
            )

        kind = body.get("ticketType")
        substatus = body.get("substatus")
        return [
            ("messageId", isinstance(body.get("messageId"), str) and bool(body["messageId"])),
            ("userId", ident(body.get("userId"))),
            ("chatId", ident(body.get("chatId"))),
            ("timestamp", _is_iso(body.get("timestamp"))),
            ("status", body.get("status") == "pending"),
            ("ticketType", kind in {"suggestion", "complaint"}),
            ("text", isinstance(body.get("text"), str) and bool(body["text"].strip())),
            ("language", body.get("language") in {"uz", "ru"}),
            ("isactive", body.get("isactive") is False),
            ("substatus", substatus in SUBSTATUSES if kind == "complaint" else substatus is None),
        ]

    def _messages(self, call: BackendCall, match: re.Match[str]) -> web.Response:
        limit = _int_param(call.query.get("limit"), 20, 100)
        if limit is None:
            return self._refuse(call, 400, "limit must be an integer from 1 to 100")
        wanted = call.query.get("userId")
        mine = [
            message
            for message in reversed(self.messages)
            if wanted is None or wanted in {str(message["userId"]), str(message["chatId"])}
        ]
        return self._ok(call, 200, messages=mine[:limit])


def _is_iso(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


class FakeBackend:
    """Both services on 127.0.0.1, plus the state and the hooks a test needs."""

    def __init__(
        self,
        *,
        username: str = "bot",
        password: str = "s3cret",
        access_ttl: float = 3600.0,
        refresh_ttl: float = 86400.0,
        rotate_refresh: bool = False,
        require_token_on_suggestions: bool = False,
        path_form: bool = True,
        activity_update: bool = True,
        health: bool = True,
        root: bool = True,
        courses_key: str | None = None,
        directions_key: str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        for key, keys in ((courses_key, COURSES_KEYS), (directions_key, DIRECTIONS_KEYS)):
            if key is not None and key not in keys:
                raise ValueError(f"wrap key {key!r} not one of {sorted(keys)}")
        self._signal = _Signal()
        self.registry = Registry(
            self._signal,
            clock,
            username=username,
            password=password,
            access_ttl=access_ttl,
            refresh_ttl=refresh_ttl,
            rotate_refresh=rotate_refresh,
            courses_key=courses_key,
            directions_key=directions_key,
        )
        self.suggestions = Suggestions(
            self._signal,
            clock,
            token_valid=self.registry.token_valid,
            require_token=require_token_on_suggestions,
            path_form=path_form,
            activity_update=activity_update,
            health=health,
            root=root,
        )

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> FakeBackend:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        await self.registry.start()
        try:
            await self.suggestions.start()
        except BaseException:
            await self.registry.close()
            raise

    async def close(self) -> None:
        await asyncio.gather(self.registry.close(), self.suggestions.close())

    @property
    def registry_url(self) -> str:
        """AUTH_API_BASE_URL: http://127.0.0.1:P/api/v1"""
        return self.registry.base_url

    @property
    def suggestions_url(self) -> str:
        """API_BASE_URL: http://127.0.0.1:P/"""
        return self.suggestions.base_url

    def env(self) -> dict[str, str]:
        """The environment variables that point the bot at this fake."""
        return {
            "API_BASE_URL": self.suggestions_url,
            "AUTH_API_BASE_URL": self.registry_url,
            "API_USERNAME": self.registry.username,
            "API_PASSWORD": self.registry.password,
        }

    def service(self, name: str) -> FakeService:
        services: dict[str, FakeService] = {
            "registry": self.registry,
            "suggestions": self.suggestions,
        }
        if name not in services:
            raise ValueError(f"unknown service {name!r}; 'registry' or 'suggestions'")
        return services[name]

    # ----------------------------------------------------------------- faults

    def fail(self, service: str, status: int = 500, **options: Any) -> Fault:
        """`fake.fail("suggestions", 503, times=2)`: a status fault on one service."""
        return self.service(service).fail(status, **options)

    def inject(self, service: str, kind: str, **options: Any) -> Fault:
        """Any fault kind on one service (see `FakeService.inject`)."""
        return self.service(service).inject(kind, **options)

    def clear(self) -> None:
        self.registry.clear()
        self.suggestions.clear()

    # ----------------------------------------------------------------- data and tokens

    def add_student(self, pinfl: str, **fields: Any) -> JsonDict:
        return self.registry.add_student(pinfl, **fields)

    def add_user(self, chat_id: int | str, **fields: Any) -> JsonDict:
        return self.suggestions.add_user(chat_id, **fields)

    @property
    def users(self) -> dict[str, JsonDict]:
        """Registered users by chatId (copies)."""
        return copy.deepcopy(self.suggestions.users)

    @property
    def stored_messages(self) -> list[JsonDict]:
        """Stored submissions, oldest first (copies)."""
        return copy.deepcopy(self.suggestions.messages)

    @property
    def duplicates_refused(self) -> int:
        return self.suggestions.duplicates_refused

    @property
    def logins(self) -> int:
        return self.registry.logins

    @property
    def refreshes(self) -> int:
        return self.registry.refreshes

    @property
    def issued_tokens(self) -> list[str]:
        """Every token handed out, for checking that none reaches a log."""
        return list(self.registry.issued_tokens)

    def expire_access_tokens(self) -> None:
        self.registry.expire_access_tokens()

    def expire_refresh_tokens(self) -> None:
        self.registry.expire_refresh_tokens()

    # ----------------------------------------------------------------- looking and waiting

    def calls(self, service: str | None = None, **filters: Any) -> list[BackendCall]:
        """Recorded requests of one service or both (in arrival order)."""
        if service is not None:
            return self.service(service).calls(**filters)
        both = self.registry.calls(**filters) + self.suggestions.calls(**filters)
        return sorted(both, key=lambda call: call.at)

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, *, what: str = "condition"
    ) -> None:
        """Wait, bounded, until `predicate()` holds; re-checked on every request and change."""
        if not await self._signal.wait_until(predicate, timeout):
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
