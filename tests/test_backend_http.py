"""The resilient HTTP backend client against the fake services, over real HTTP on loopback.

Each test builds the `Backend` the bot builds: config.yaml read with the environment the
fake hands out (short retry delays and timeouts), `build_transport`, and endpoints called by
name as the engine calls them. Nothing of our own is mocked; the breakers get a clock the
test moves, so a cool-down passes when the story says so. Every wait is bounded and waits
on what the fake sees, never on a fixed sleep (except the one cache TTL that must pass).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from adapters.app import log_backend_health
from adapters.http.auth import LoginFailed
from adapters.http.breaker import Circuit
from adapters.http.service import ServiceClient
from adapters.http.transport import HttpTransport, build_transport
from engine.backend import Backend
from engine.config import load_settings
from engine.errors import BackendError, BackendUnavailable
from engine.logs import FORMAT, mask, setup_logging
from engine.outbox import Outbox
from tests.fakes.backend import FakeBackend

ROOT = Path(__file__).resolve().parent.parent
BOUND = 5.0  # any one wait
FAST = {"API_RETRY_DELAY": "10", "API_TIMEOUT": "2000"}  # milliseconds, as deployments say
PASSWORD = "s3cret"
PINFL = "31234567890123"
NAME = "Valiyev Alisher Karimovich"
PHONE = "+998935556677"
CHAT = 1001


# -- building the client as the bot does -------------------------------------------------


@dataclass
class Clock:
    """The breakers' clock, moved by hand."""

    now: float = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Client:
    """The real Backend over the real HTTP transport, and handles on its parts."""

    backend: Backend
    transport: HttpTransport
    clock: Clock

    async def call(self, endpoint: str, **params: Any) -> Any:
        return await self.backend.call(endpoint, params)

    def service(self, name: str) -> ServiceClient:
        return self.transport.services[name]


@contextlib.asynccontextmanager
async def connect(
    fake: FakeBackend,
    env: dict[str, str] | None = None,
    outbox: Outbox | None = None,
    **backend_settings: Any,
) -> AsyncIterator[Client]:
    """A Backend from config.yaml and the fake's environment; `backend_settings` override
    config.yaml's `backend:` keys (max_in_flight=100, queue_timeout=0.2, ...)."""
    environ = fake.env() | FAST | (env or {})
    settings = load_settings(ROOT / "config.yaml", environ=environ)
    config = settings.backend.model_copy(update=backend_settings)
    transport = build_transport(config, environ)
    clock = Clock()
    for service in transport.services.values():
        service.breaker.clock = clock
    backend = Backend(config.endpoints, transport, outbox)
    try:
        yield Client(backend, transport, clock)
    finally:
        await backend.close()


def message(message_id: str, kind: str = "suggestion", **fields: Any) -> dict[str, Any]:
    """The parameters the feedback flow gives `submit_message`."""
    return {
        "messageId": message_id,
        "userId": str(CHAT),
        "chatId": str(CHAT),
        "timestamp": "2026-01-15T10:30:00.000Z",
        "status": "pending",
        "ticketType": kind,
        "text": "Kutubxonani shanba kunlari ham ochsangiz.",
        "language": "uz",
        "isactive": False,
        "substatus": "Conditions" if kind == "complaint" else None,
    } | fields


def new_user(chat: int = CHAT) -> dict[str, str]:
    """The parameters the registration flow gives `register_user`."""
    return {
        "userId": str(chat),
        "chatId": str(chat),
        "fullName": NAME,
        "phone": PHONE,
        "course": "2",
        "direction": "Economics",
        "language": "uz",
    }


@contextlib.contextmanager
def log_lines(level: str = "INFO") -> Iterator[list[Any]]:
    """Every log line from `level` up while the block runs (loguru messages: str + record)."""
    lines: list[Any] = []
    sink = logger.add(lines.append, level=level, format=FORMAT)
    try:
        yield lines
    finally:
        logger.remove(sink)


def at(lines: list[Any], level: str, *needles: str) -> list[str]:
    return [
        str(line)
        for line in lines
        if line.record["level"].name == level and all(n in line for n in needles)
    ]


async def settle(tasks: list[asyncio.Task[Any]], count: int) -> list[asyncio.Task[Any]]:
    """Wait (bounded) until `count` of `tasks` have ended; the ones that have."""
    async with asyncio.timeout(BOUND):
        while sum(task.done() for task in tasks) < count:
            running = [task for task in tasks if not task.done()]
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    return [task for task in tasks if task.done()]


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackend]:
    async with FakeBackend(password=PASSWORD) as services:
        services.add_student(PINFL, full_name=NAME, phone=PHONE)
        services.add_user(CHAT, fullName=NAME, phone=PHONE)
        yield services


@pytest.fixture
async def client(fake: FakeBackend) -> AsyncIterator[Client]:
    async with connect(fake) as built:
        yield built


# -- the registry's tokens ---------------------------------------------------------------


@pytest.mark.parametrize("storms", [1, 2], ids=["one-storm", "rotating-two-storms"])
async def test_a_hundred_401s_at_once_cause_one_refresh(storms: int) -> None:
    async with (
        FakeBackend(rotate_refresh=storms > 1) as fake,
        connect(fake, max_in_flight=100) as client,
    ):
        fake.add_student(PINFL)
        await client.call("student_by_pinfl", pinfl=PINFL)
        for storm in range(1, storms + 1):
            fake.expire_access_tokens()
            before = len(fake.registry.calls("/students/*"))
            students = await asyncio.gather(
                *(client.call("student_by_pinfl", pinfl=PINFL) for _ in range(100))
            )
            assert [student["pinfl"] for student in students] == [PINFL] * 100
            refused = [c for c in fake.registry.calls("/students/*")[before:] if c.status == 401]
            assert len(refused) == 100  # all of them met the expired token together ...
            assert (fake.logins, fake.refreshes) == (1, storm)  # ... and one refresh served all


async def test_an_expired_refresh_token_means_logging_in_again(
    fake: FakeBackend, client: Client
) -> None:
    await client.call("student_by_pinfl", pinfl=PINFL)
    fake.expire_access_tokens()
    fake.expire_refresh_tokens()
    with log_lines() as lines:
        student = await client.call("student_by_pinfl", pinfl=PINFL)
    assert student["full_name"] == NAME
    assert [call.status for call in fake.registry.calls("/auth/*")] == [200, 401, 200]
    assert fake.logins == 2
    assert at(lines, "INFO", "the registry refused to refresh (status 401); logging in again")
    assert at(lines, "INFO", "logged in to the registry")


async def test_wrong_credentials_fail_the_call_clearly_and_nothing_else(
    fake: FakeBackend,
) -> None:
    async with connect(fake, env={"API_PASSWORD": "not-the-password"}) as client:
        with pytest.raises(LoginFailed, match=r"auth/login.*refused the service account") as why:
            await client.call("student_by_pinfl", pinfl=PINFL)
        assert isinstance(why.value, BackendError) and why.value.status == 401
        assert not fake.registry.calls("/students/*")  # never asked without a token
        assert (await client.call("get_user", chat_id=CHAT))["fullName"] == NAME
        assert client.service("registry").breaker.state is Circuit.CLOSED

        fake.registry.password = "not-the-password"  # the account is put right
        assert (await client.call("student_by_pinfl", pinfl=PINFL))["pinfl"] == PINFL


async def test_missing_credentials_fail_without_asking(fake: FakeBackend) -> None:
    async with connect(fake, env={"API_USERNAME": "", "API_PASSWORD": ""}) as client:
        with pytest.raises(LoginFailed, match="API_USERNAME and API_PASSWORD are not set"):
            await client.call("courses")
    assert not fake.registry.calls()


# -- retries -----------------------------------------------------------------------------


async def test_a_get_is_retried_with_exponential_backoff(fake: FakeBackend) -> None:
    async with connect(fake, env={"API_RETRY_DELAY": "100"}) as client:
        fake.suggestions.fail(503, times=2, path="/users/*")
        assert (await client.call("get_user", chat_id=CHAT))["fullName"] == NAME
    calls = fake.suggestions.calls("/users/*")
    assert [call.status for call in calls] == [503, 503, 200]
    first, second = calls[1].at - calls[0].at, calls[2].at - calls[1].at
    assert first >= 0.1 and second >= 0.2  # 100 ms, then 200 ms (plus jitter)


async def test_each_retry_is_one_warning_through_loguru_only(
    fake: FakeBackend, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fake.suggestions.fail(503, path="/users/*")
    with log_lines("WARNING") as lines:
        assert (await client.call("get_user", chat_id=CHAT))["fullName"] == NAME
    [retried] = at(lines, "WARNING", f"suggestions GET /users/{CHAT} failed (status 503)")
    assert "attempt 1" in retried
    assert not [record for record in caplog.records if record.name.startswith("stamina")]


async def test_429_waits_as_long_as_retry_after_says(fake: FakeBackend, client: Client) -> None:
    fake.suggestions.fail(429, path="/users/*", retry_after=1)
    assert (await client.call("get_user", chat_id=CHAT))["chatId"] == str(CHAT)
    refused, answered = fake.suggestions.calls("/users/*")
    assert (refused.status, answered.status) == (429, 200)
    assert answered.at - refused.at >= 1.0  # not the 10 ms backoff


@pytest.mark.parametrize("status", [400, 404, 409, 413])
async def test_other_4xx_answers_are_not_retried(
    fake: FakeBackend, client: Client, status: int
) -> None:
    fake.suggestions.fail(status, path="/users/*")
    if status == 404:
        assert await client.call("get_user", chat_id=CHAT) is None  # "not registered"
    else:
        with pytest.raises(BackendError) as why:
            await client.call("get_user", chat_id=CHAT)
        assert not isinstance(why.value, BackendUnavailable)
        assert why.value.status == status
    assert fake.suggestions.count("/users/*") == 1


async def test_a_post_without_an_idempotency_key_is_sent_once(
    fake: FakeBackend, client: Client
) -> None:
    fake.suggestions.fail(503, path="/users", method="POST")
    with pytest.raises(BackendUnavailable, match="status 503 after 1 attempt"):
        await client.call("register_user", **new_user(2002))
    assert fake.suggestions.count("/users", "POST") == 1
    assert "2002" not in fake.users
    await client.call("register_user", **new_user(2002))  # the user presses "retry"
    assert fake.users["2002"]["fullName"] == NAME


async def test_a_post_with_an_idempotency_key_is_retried_and_stored_once(
    fake: FakeBackend, client: Client
) -> None:
    fake.suggestions.fail(503, times=2, path="/messages")
    stored = await client.call("submit_message", **message("m-42", "complaint"))
    assert stored["data"]["message"]["messageId"] == "m-42"
    posts = fake.suggestions.calls("/messages", "POST")
    assert [call.status for call in posts] == [503, 503, 201]
    assert {call.idempotency_key for call in posts} == {"m-42"}
    assert [m["messageId"] for m in fake.stored_messages] == ["m-42"]
    assert fake.stored_messages[0]["substatus"] == "Conditions"


# -- the circuit breaker -----------------------------------------------------------------


async def open_circuit(fake: FakeBackend, client: Client) -> None:
    """Five consecutive failures: two calls of three attempts, the sixth never sent."""
    fake.suggestions.fail(503, times=None, path="/users/*")
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            await client.call("get_user", chat_id=CHAT)
    fake.suggestions.clear()
    assert fake.suggestions.count("/users/*") == 5
    assert client.service("suggestions").breaker.state is Circuit.OPEN


async def test_five_failures_open_the_circuit_and_calls_then_fail_fast(
    fake: FakeBackend, client: Client
) -> None:
    with log_lines("DEBUG") as lines:
        await open_circuit(fake, client)
        took = []
        for _ in range(20):
            started = time.perf_counter()
            with pytest.raises(BackendUnavailable, match="circuit open"):
                await client.call("get_user", chat_id=CHAT)
            took.append(time.perf_counter() - started)
    assert fake.suggestions.count("/users/*") == 5  # none of the 20 reached the service
    assert sorted(took)[10] < 0.01  # the median; a timeout would cost 2 s (15 s deployed)
    changes = [line for line in lines if "circuit suggestions" in line]
    assert len(changes) == 1 and changes[0].record["level"].name == "INFO"
    assert "closed -> open" in changes[0]
    # Each service has its own circuit: the registry still answers.
    assert client.service("registry").breaker.state is Circuit.CLOSED
    assert (await client.call("student_by_pinfl", pinfl=PINFL))["pinfl"] == PINFL


async def test_after_the_cool_down_exactly_one_probe_goes_through(
    fake: FakeBackend, client: Client
) -> None:
    await open_circuit(fake, client)
    breaker = client.service("suggestions").breaker
    with log_lines() as lines:
        client.clock.advance(breaker.cooldown)
        held = fake.suggestions.hang(path="/users/*")
        callers = [asyncio.create_task(client.call("get_user", chat_id=CHAT)) for _ in range(20)]
        await fake.wait_for(lambda: fake.suggestions.in_flight == 1, what="the probe")
        failed_fast = await settle(callers, 19)
        for task in failed_fast:
            with pytest.raises(BackendUnavailable, match="probe in flight"):
                task.result()
        assert breaker.state is Circuit.HALF_OPEN
        held.clear()  # the service answers the probe
        [probe] = [task for task in callers if task not in failed_fast]
        assert (await asyncio.wait_for(probe, BOUND))["fullName"] == NAME
    assert fake.suggestions.count("/users/*") == 5 + 1
    assert breaker.state is Circuit.CLOSED
    changes = [str(line) for line in lines if "circuit suggestions" in line]
    assert len(changes) == 2
    assert "open -> half-open" in changes[0] and "half-open -> closed" in changes[1]
    answers = await asyncio.gather(*(client.call("get_user", chat_id=CHAT) for _ in range(5)))
    assert all(answer["chatId"] == str(CHAT) for answer in answers)


async def test_a_failed_probe_opens_the_circuit_again(fake: FakeBackend, client: Client) -> None:
    await open_circuit(fake, client)
    breaker = client.service("suggestions").breaker
    client.clock.advance(breaker.cooldown)
    fake.suggestions.fail(502, path="/users/*")
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await client.call("get_user", chat_id=CHAT)  # the probe fails; its retry is refused
    assert fake.suggestions.count("/users/*") == 6
    assert breaker.state is Circuit.OPEN
    client.clock.advance(breaker.cooldown - 1)
    with pytest.raises(BackendUnavailable, match="circuit open"):
        await client.call("get_user", chat_id=CHAT)  # a new cool-down, not yet over
    client.clock.advance(1)
    assert (await client.call("get_user", chat_id=CHAT))["fullName"] == NAME
    assert breaker.state is Circuit.CLOSED


async def test_4xx_answers_are_not_failures_of_the_service(fake: FakeBackend) -> None:
    async with connect(fake, retry_attempts=1) as client:
        breaker = client.service("suggestions").breaker

        async def failures(count: int) -> None:
            fake.suggestions.fail(503, times=count, path="/users/*")
            for _ in range(count):
                with pytest.raises(BackendUnavailable):
                    await client.call("get_user", chat_id=CHAT)

        await failures(4)
        for status in (400, 404, 409):
            fake.suggestions.fail(status, path="/users/*")
            with contextlib.suppress(BackendError):
                await client.call("get_user", chat_id=CHAT)
        assert await client.call("get_user", chat_id=4242) is None  # not registered: a 404
        await failures(4)
        assert breaker.state is Circuit.CLOSED  # 4 + 4 failures, never 5 in a row
        await failures(1)
        assert breaker.state is Circuit.OPEN


# -- in flight, waiting, cancelled -------------------------------------------------------


async def test_at_most_ten_requests_are_in_flight_per_service(
    fake: FakeBackend, client: Client
) -> None:
    held = fake.suggestions.hang(times=None, path="/users/*")
    callers = [asyncio.create_task(client.call("get_user", chat_id=CHAT)) for _ in range(30)]
    await fake.wait_for(lambda: fake.suggestions.in_flight == 10, what="10 held requests")
    assert fake.suggestions.count("/users/*") == 10  # the other 20 wait their turn
    held.clear()
    users = await asyncio.wait_for(asyncio.gather(*callers), BOUND)
    assert [user["chatId"] for user in users] == [str(CHAT)] * 30
    assert fake.suggestions.max_in_flight == 10
    assert fake.registry.max_in_flight == 0  # the cap is per service


async def test_callers_that_wait_too_long_for_their_turn_fail_clearly(
    fake: FakeBackend,
) -> None:
    async with connect(fake, queue_timeout=0.2) as client:
        held = fake.suggestions.hang(times=None, path="/users/*")
        callers = [asyncio.create_task(client.call("get_user", chat_id=CHAT)) for _ in range(15)]
        await fake.wait_for(lambda: fake.suggestions.in_flight == 10, what="10 held requests")
        for task in await settle(callers, 5):
            with pytest.raises(BackendUnavailable, match=r"no free slot after 0\.2s"):
                task.result()
        held.clear()
        served = [task for task in callers if not task.done()]
        users = await asyncio.wait_for(asyncio.gather(*served), BOUND)
        assert len(users) == 10
        assert fake.suggestions.count("/users/*") == 10
        assert client.service("suggestions").breaker.failures == 0


async def test_cancelled_requests_leave_the_pool_healthy(fake: FakeBackend) -> None:
    """encode/httpcore#1093: requests cancelled under load have leaked pool connections.

    A pool no larger than the in-flight cap: one connection lost is one request waiting
    for the pool's timeout.
    """
    async with connect(fake, max_connections=10) as client:
        await cancel_many_then_ask(fake, client)


async def cancel_many_then_ask(fake: FakeBackend, client: Client) -> None:
    for _ in range(3):
        held = fake.suggestions.hang(times=None, path="/users/*")
        callers = [asyncio.create_task(client.call("get_user", chat_id=CHAT)) for _ in range(30)]
        await fake.wait_for(lambda: fake.suggestions.in_flight == 10, what="10 held requests")
        for task in callers:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), BOUND)
        assert all(task.cancelled() for task in callers)  # the callers stop at once ...
        assert fake.suggestions.in_flight == 10  # ... their requests are left to finish
        held.clear()
        await fake.wait_for(lambda: fake.suggestions.in_flight == 0, what="their answers")
    # Churn too: callers giving up at staggered moments while the service is merely slow.
    fake.suggestions.slow(0.01, times=None, path="/users/*")
    for round_ in range(60):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(client.call("get_user", chat_id=CHAT) for _ in range(10))),
                0.002 * (round_ % 10),
            )
    fake.suggestions.clear()

    started = time.perf_counter()
    users = await asyncio.wait_for(
        asyncio.gather(*(client.call("get_user", chat_id=CHAT) for _ in range(20))), BOUND
    )
    assert [user["chatId"] for user in users] == [str(CHAT)] * 20
    assert time.perf_counter() - started < 1.5  # a leaked slot costs a 2 s pool timeout
    assert client.service("suggestions").breaker.failures == 0  # cancelling is no failure
    assert fake.suggestions.max_in_flight == 10  # left to finish, they kept their slots


# -- the cache ---------------------------------------------------------------------------


async def test_courses_are_cached(fake: FakeBackend, client: Client) -> None:
    first = await client.call("courses")
    second = await client.call("courses")
    assert first == second and [course["id"] for course in first] == [1, 2, 3, 4]
    assert fake.registry.count("/courses") == 1


async def test_a_failing_registry_serves_the_last_good_list(fake: FakeBackend) -> None:
    async with connect(fake) as client:
        ttl = 0.05
        endpoints = client.backend.endpoints
        endpoints["courses"] = endpoints["courses"].model_copy(update={"cache": ttl})
        good = await client.call("courses")
        fake.registry.fail(503, times=None, path="/courses")
        await asyncio.sleep(ttl * 3)  # the cache's hour passes (a TTL, not a synchronisation)
        with log_lines("WARNING") as lines:
            assert await client.call("courses") == good
        assert fake.registry.count("/courses") == 1 + 3
        assert at(lines, "WARNING", "courses failed; serving its last good answer")
        with pytest.raises(BackendUnavailable):  # nothing good yet: the flow's own list
            fake.registry.fail(503, times=None, path="/directions")
            await client.call("directions")


# -- reading answers tolerantly ----------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ("courses", None),
        ("courses", "data"),
        ("courses", "courses"),
        ("directions", None),
        ("directions", "data"),
        ("directions", "directions"),
        ("directions", "fields"),
    ],
)
async def test_lists_are_read_plain_or_wrapped(endpoint: str, key: str | None) -> None:
    async with FakeBackend(**{f"{endpoint}_key": key}) as fake, connect(fake) as client:
        items = await client.call(endpoint)
    assert isinstance(items, list) and len(items) >= 4
    assert all({"id", "name", "name_uz", "name_ru"} <= set(item) for item in items)


async def test_without_the_path_form_users_are_looked_up_by_query() -> None:
    async with FakeBackend(path_form=False) as fake, connect(fake) as client:
        fake.add_user(CHAT, fullName=NAME)
        assert (await client.call("get_user", chat_id=CHAT))["fullName"] == NAME
        assert await client.call("get_user", chat_id=4242) is None
    paths = [(call.path, call.query, call.status) for call in fake.suggestions.calls()]
    assert paths == [
        (f"/users/{CHAT}", {}, 404),
        ("/users", {"chatId": str(CHAT)}, 200),
        ("/users/4242", {}, 404),
        ("/users", {"chatId": "4242"}, 404),
    ]


async def test_an_unknown_user_is_not_registered_and_a_missing_activity_update_is_ignored(
    fake: FakeBackend, client: Client
) -> None:
    assert await client.call("get_user", chat_id=4242) is None
    now = "2026-01-15T10:30:00.000Z"
    assert await client.call("touch_user", chat_id=4242, lastActivity=now) is None
    assert await client.call("touch_user", chat_id=CHAT, lastActivity=now)
    assert fake.users[str(CHAT)]["lastActivity"] == now
    fake.suggestions.activity_update = False  # deployments without PUT /users/{chatId}
    assert await client.call("touch_user", chat_id=CHAT, lastActivity=now) is None


async def test_malformed_json_is_a_clear_error(fake: FakeBackend, client: Client) -> None:
    fake.suggestions.malformed(path="/users/*")
    with log_lines("WARNING") as lines, pytest.raises(BackendError, match="not JSON"):
        await client.call("get_user", chat_id=CHAT)
    assert at(lines, "WARNING", f"/users/{CHAT} answered 200 with a body that is not JSON")
    assert (await client.call("get_user", chat_id=CHAT))["fullName"] == NAME


async def test_an_html_error_page_is_a_clear_error(fake: FakeBackend, client: Client) -> None:
    fake.inject("suggestions", "html", times=None, path="/users/*")
    with pytest.raises(BackendUnavailable, match="status 502 after 3 attempt"):
        await client.call("get_user", chat_id=CHAT)
    fake.registry.malformed(path="/auth/login")
    with pytest.raises(LoginFailed):  # a login answered with garbage
        await client.call("student_by_pinfl", pinfl=PINFL)
    assert (await client.call("student_by_pinfl", pinfl=PINFL))["pinfl"] == PINFL


# -- health at start ---------------------------------------------------------------------


async def test_health_at_start_tries_health_then_root_then_users(
    fake: FakeBackend, client: Client
) -> None:
    async def suggestions() -> str:
        return (await client.backend.status())["services"]["suggestions"]

    assert await suggestions() == "up, circuit closed"
    fake.suggestions.health = False
    assert await suggestions() == "up, circuit closed"
    fake.suggestions.root = False
    assert await suggestions() == "up, circuit closed"
    asked = [(call.path, call.query, call.status) for call in fake.suggestions.calls()]
    assert asked == [
        ("/health", {}, 200),
        ("/health", {}, 404),
        ("/", {}, 200),
        ("/health", {}, 404),
        ("/", {}, 404),
        ("/users", {"limit": "1"}, 200),
    ]
    await fake.suggestions.down()
    with log_lines() as lines:
        await log_backend_health(client.backend)  # a down service does not stop the start
    assert at(lines, "INFO", "backend suggestions at start: down (ConnectError)")
    assert at(lines, "INFO", "backend registry at start: up")


# -- the log -----------------------------------------------------------------------------


async def test_the_log_has_a_line_per_request_and_no_secret(fake: FakeBackend) -> None:
    setup_logging("DEBUG")
    try:
        with log_lines("DEBUG") as lines:
            async with connect(fake) as client:
                await client.call("student_by_pinfl", pinfl=PINFL)  # logs in
                fake.expire_access_tokens()
                await client.call("student_by_pinfl", pinfl=PINFL)  # 401, refreshes
                await client.call("register_user", **new_user(2002))
                fake.suggestions.fail(503, path="/messages")
                await client.call("submit_message", **message("m-7", text=f"Men {NAME}"))
    finally:
        setup_logging("WARNING")

    whole = "".join(lines)
    secrets = [*fake.issued_tokens, PASSWORD, PINFL, PHONE, PHONE[1:], NAME, *NAME.split()]
    assert len(fake.issued_tokens) == 3
    for secret in secrets:
        assert secret not in whole, secret
    # Nothing needed hiding either: no line says "token", "password" or "Bearer" before
    # a word (the mask would have made it "token ***"); masked numbers keep their digits.
    assert not re.search(r"[^\d*]\*\*\*", whole)
    assert re.search(r"312\*+23", whole)  # the PINFL in the lookup's path, masked

    for call in fake.calls():
        line = f"{call.service} {call.method} {mask(call.path)} status={call.status} ms="
        assert at(lines, "DEBUG", line, "attempt="), f"no DEBUG line for {line}"
    assert at(lines, "WARNING", "suggestions POST /messages failed (status 503)", "attempt 1")
    assert at(lines, "INFO", "logged in to the registry")
    assert at(lines, "INFO", "refreshed the registry's access token")
