"""The fake backend services (tests/fakes/backend.py), proven with a plain httpx client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.backend import FakeBackend

BOUND = 5.0
USERNAME = "bot"
PASSWORD = "s3cret"
PINFL = "12345678901234"
CHAT = 1001
NOW = "2025-01-15T10:30:00.000Z"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackend]:
    async with FakeBackend(username=USERNAME, password=PASSWORD) as backend:
        yield backend


def client(base_url: str, timeout: float = BOUND) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, trust_env=False)


@pytest.fixture
async def registry(fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with client(fake.registry_url) as http:
        yield http


@pytest.fixture
async def suggestions(fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    async with client(fake.suggestions_url) as http:
        yield http


async def login(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post("/auth/login", json={"username": USERNAME, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(message_id: str = "m-1", **fields: Any) -> dict[str, Any]:
    body = {
        "messageId": message_id,
        "userId": str(CHAT),
        "chatId": str(CHAT),
        "timestamp": NOW,
        "status": "pending",
        "ticketType": "suggestion",
        "text": "Please open the library on Saturdays.",
        "language": "uz",
        "isactive": False,
        "substatus": None,
    }
    return body | fields


# --------------------------------------------------------------------- the registry


async def test_listens_on_loopback_only(fake: FakeBackend) -> None:
    assert fake.registry_url.startswith("http://127.0.0.1:")
    assert fake.registry_url.endswith("/api/v1")
    assert fake.suggestions_url == f"http://127.0.0.1:{fake.suggestions.port}/"
    assert fake.registry.port != fake.suggestions.port
    assert fake.env()["API_USERNAME"] == USERNAME


async def test_login_then_protected_call(fake: FakeBackend, registry: httpx.AsyncClient) -> None:
    fake.add_student(PINFL, full_name="Ali Valiyev", course=3, field_title="Economics")
    tokens = await login(registry)
    assert set(tokens) == {"access", "refresh"}
    response = await registry.get(f"/students/by-pinfl/{PINFL}", headers=bearer(tokens["access"]))
    assert response.status_code == 200
    student = response.json()
    assert set(student) == {"id", "full_name", "pinfl", "phone", "group_id", "group"}
    assert student["full_name"] == "Ali Valiyev"
    assert student["group"]["course"] == 3
    assert student["group"]["field"] == {"title": "Economics"}
    missing = await registry.get("/students/by-pinfl/99999999999999", headers=bearer("x"))
    assert missing.status_code == 401
    unknown = await registry.get(
        "/students/by-pinfl/99999999999999", headers=bearer(tokens["access"])
    )
    assert unknown.status_code == 404
    assert (await registry.get(f"/students/by-pinfl/{PINFL}")).status_code == 401
    assert fake.logins == 1


async def test_wrong_credentials(fake: FakeBackend, registry: httpx.AsyncClient) -> None:
    response = await registry.post("/auth/login", json={"username": USERNAME, "password": "no"})
    assert response.status_code == 401
    assert "access" not in response.json()
    assert (await registry.post("/auth/login", json={})).status_code == 400
    assert fake.logins == 2
    assert fake.issued_tokens == []


async def test_student_without_phone_or_group(
    fake: FakeBackend, registry: httpx.AsyncClient
) -> None:
    fake.add_student(PINFL, phone=None, group=None)
    token = (await login(registry))["access"]
    student = (await registry.get(f"/students/by-pinfl/{PINFL}", headers=bearer(token))).json()
    assert student["phone"] is None
    assert "group" not in student


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/courses", None),
        ("/courses", "data"),
        ("/courses", "courses"),
        ("/directions", None),
        ("/directions", "data"),
        ("/directions", "directions"),
        ("/directions", "fields"),
    ],
)
async def test_lists_plain_and_wrapped(path: str, key: str | None) -> None:
    option = "courses_key" if path == "/courses" else "directions_key"
    async with FakeBackend(**{option: key}) as fake, client(fake.registry_url) as http:
        token = (await login(http))["access"]
        answer = (await http.get(path, headers=bearer(token))).json()
        items = answer if key is None else answer[key]
        assert items
        assert all(set(item) == {"id", "name", "name_uz", "name_ru"} for item in items)
        assert (await http.get(path)).status_code == 401


async def test_expired_access_then_refresh(fake: FakeBackend, registry: httpx.AsyncClient) -> None:
    fake.add_student(PINFL)
    tokens = await login(registry)
    fake.expire_access_tokens()
    refused = await registry.get(f"/students/by-pinfl/{PINFL}", headers=bearer(tokens["access"]))
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Invalid or expired token"}
    renewed = await registry.post("/auth/refresh", json={"refresh": tokens["refresh"]})
    assert renewed.status_code == 200
    assert set(renewed.json()) == {"access"}
    access = renewed.json()["access"]
    ok = await registry.get(f"/students/by-pinfl/{PINFL}", headers=bearer(access))
    assert ok.status_code == 200
    assert (fake.logins, fake.refreshes) == (1, 1)


async def test_rotated_refresh_invalidates_the_old_one(fake: FakeBackend) -> None:
    fake.registry.rotate_refresh = True
    async with client(fake.registry_url) as http:
        old = (await login(http))["refresh"]
        first = await http.post("/auth/refresh", json={"refresh": old})
        assert set(first.json()) == {"access", "refresh"}
        assert (await http.post("/auth/refresh", json={"refresh": old})).status_code == 401
        new = first.json()["refresh"]
        assert (await http.post("/auth/refresh", json={"refresh": new})).status_code == 200
    assert fake.refreshes == 3


async def test_expired_refresh_then_login_again(
    fake: FakeBackend, registry: httpx.AsyncClient
) -> None:
    tokens = await login(registry)
    fake.expire_access_tokens()
    fake.expire_refresh_tokens()
    refused = await registry.post("/auth/refresh", json={"refresh": tokens["refresh"]})
    assert refused.status_code == 401
    again = await login(registry)
    assert (await registry.get("/courses", headers=bearer(again["access"]))).status_code == 200
    assert fake.logins == 2


async def test_tokens_expire_with_their_ttl() -> None:
    now = [1000.0]
    async with (
        FakeBackend(access_ttl=60, refresh_ttl=600, clock=lambda: now[0]) as fake,
        client(fake.registry_url) as http,
    ):
        tokens = await login(http)
        now[0] += 61
        assert (await http.get("/courses", headers=bearer(tokens["access"]))).status_code == 401
        renewed = await http.post("/auth/refresh", json={"refresh": tokens["refresh"]})
        assert (await http.get("/courses", headers=bearer(renewed.json()["access"]))).is_success
        now[0] += 600
        refused = await http.post("/auth/refresh", json={"refresh": tokens["refresh"]})
        assert refused.status_code == 401


async def test_suggestions_can_require_the_registry_token() -> None:
    async with (
        FakeBackend(require_token_on_suggestions=True) as fake,
        client(fake.registry_url) as registry,
        client(fake.suggestions_url) as suggestions,
    ):
        fake.add_user(CHAT)
        assert (await suggestions.get(f"/users/{CHAT}")).status_code == 401
        assert (await suggestions.get("/health")).status_code == 200
        token = (await login(registry))["access"]
        assert (await suggestions.get(f"/users/{CHAT}", headers=bearer(token))).is_success
        fake.expire_access_tokens()
        assert (await suggestions.get(f"/users/{CHAT}", headers=bearer(token))).status_code == 401


# --------------------------------------------------------------------- the suggestions service


async def test_user_lookup_by_path_and_query(
    fake: FakeBackend, suggestions: httpx.AsyncClient
) -> None:
    fake.add_user(CHAT, fullName="Ali Valiyev")
    by_path = await suggestions.get(f"/users/{CHAT}")
    assert by_path.status_code == 200
    body = by_path.json()
    assert body["success"] is True
    assert body["data"]["user"]["fullName"] == "Ali Valiyev"
    by_query = await suggestions.get("/users", params={"chatId": CHAT})
    assert by_query.json()["data"]["user"] == body["data"]["user"]
    assert (await suggestions.get("/users/42")).status_code == 404


async def test_without_the_path_form() -> None:
    async with FakeBackend(path_form=False) as fake, client(fake.suggestions_url) as http:
        fake.add_user(CHAT)
        by_path = await http.get(f"/users/{CHAT}")
        assert by_path.status_code == 404
        assert by_path.headers["content-type"].startswith("text/html")
        assert "<pre>Cannot GET" in by_path.text
        by_query = await http.get("/users", params={"chatId": CHAT})
        assert by_query.json()["data"]["user"]["chatId"] == str(CHAT)
        missing = await http.get("/users", params={"chatId": 42})
        assert missing.status_code == 404
        assert missing.json()["success"] is False


async def test_register_then_409(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    user = {
        "userId": str(CHAT),
        "chatId": str(CHAT),
        "fullName": "Ali Valiyev",
        "phone": "+998901234567",
        "course": "2",
        "direction": "Economics",
        "language": "ru",
    }
    created = await suggestions.post("/users", json=user)
    assert created.status_code == 201
    assert created.json()["data"]["user"]["fullName"] == "Ali Valiyev"
    assert (await suggestions.post("/users", json=user)).status_code == 409
    assert (await suggestions.post("/users", json=user | {"chatId": 7})).status_code == 400
    without = {key: value for key, value in user.items() if key != "phone"}
    assert (await suggestions.post("/users", json=without | {"chatId": "7"})).status_code == 400
    assert list(fake.users) == [str(CHAT)]


async def test_activity_update(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    fake.add_user(CHAT)
    done = await suggestions.put(f"/users/{CHAT}", json={"lastActivity": NOW})
    assert done.status_code == 200
    assert fake.users[str(CHAT)]["lastActivity"] == NOW
    assert (await suggestions.put("/users/42", json={"lastActivity": NOW})).status_code == 404
    bad = await suggestions.put(f"/users/{CHAT}", json={"lastActivity": "yesterday"})
    assert bad.status_code == 400
    fake.suggestions.activity_update = False
    assert (await suggestions.put(f"/users/{CHAT}", json={"lastActivity": NOW})).status_code == 404


async def test_message_rules(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    complaint = message("m-2", ticketType="complaint", substatus=None)
    assert (await suggestions.post("/messages", json=complaint)).status_code == 400
    assert (await suggestions.post("/messages", json=message(isactive=True))).status_code == 400
    too_long = await suggestions.post("/messages", json=message(text="x" * 1001))
    assert too_long.status_code == 413
    at_limit = await suggestions.post("/messages", json=message("m-3", text="x" * 1000))
    assert at_limit.status_code == 201
    complaint["substatus"] = "Dean Office"
    created = await suggestions.post("/messages", json=complaint)
    assert created.status_code == 201
    assert created.json()["data"]["message"]["substatus"] == "Dean Office"
    listed = await suggestions.get("/messages", params={"userId": CHAT, "limit": 1})
    assert [m["messageId"] for m in listed.json()["data"]["messages"]] == ["m-2"]
    assert [m["messageId"] for m in fake.stored_messages] == ["m-3", "m-2"]


async def test_message_dedupe(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    first = await suggestions.post("/messages", json=message(), headers={"Idempotency-Key": "k1"})
    again = await suggestions.post(
        "/messages", json=message("m-other"), headers={"Idempotency-Key": "k1"}
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["data"]["message"]["messageId"] == "m-1"
    same_id = await suggestions.post("/messages", json=message())
    assert same_id.status_code == 201
    assert len(fake.stored_messages) == 1
    assert fake.duplicates_refused == 2
    keys = [call.idempotency_key for call in fake.suggestions.calls("/messages", "POST")]
    assert keys == ["k1", "k1", None]


async def test_health_and_its_fallbacks() -> None:
    async with FakeBackend(health=False) as fake, client(fake.suggestions_url) as http:
        assert (await http.get("/health")).status_code == 404
        assert (await http.get("/")).status_code == 200
        fake.suggestions.root = False
        assert (await http.get("/")).status_code == 404
        fake.add_user(CHAT)
        listed = await http.get("/users", params={"limit": 1})
        assert listed.status_code == 200
        assert len(listed.json()["data"]["users"]) == 1


# --------------------------------------------------------------------- faults


async def test_status_fault_for_the_next_requests(
    fake: FakeBackend, suggestions: httpx.AsyncClient
) -> None:
    fault = fake.fail("suggestions", 503, times=2, path="/users/*", method="GET")
    assert (await suggestions.get("/health")).status_code == 200
    statuses = [(await suggestions.get(f"/users/{CHAT}")).status_code for _ in range(3)]
    assert statuses == [503, 503, 404]
    assert fault.hits == 2
    assert not fault.active
    assert [call.fault for call in fake.suggestions.calls("/users/*")] == ["status"] * 2 + [None]


async def test_fault_until_cleared(fake: FakeBackend, registry: httpx.AsyncClient) -> None:
    fake.registry.fail(500, times=None)
    for _ in range(3):
        assert (await registry.post("/auth/login", json={})).status_code == 500
    fake.clear()
    assert (await registry.post("/auth/login", json={})).status_code == 400
    assert fake.logins == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
async def test_status_codes(
    fake: FakeBackend, suggestions: httpx.AsyncClient, status: int
) -> None:
    fake.suggestions.fail(status)
    response = await suggestions.get("/health")
    assert response.status_code == status
    assert response.json()["success"] is False
    assert ("retry-after" in response.headers) == (status == 429)


async def test_retry_after(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    fake.suggestions.fail(429)
    fake.suggestions.fail(503, retry_after=7)
    assert (await suggestions.get("/health")).headers["Retry-After"] == "1"
    assert (await suggestions.get("/health")).headers["Retry-After"] == "7"


async def test_latency(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    fake.suggestions.slow(0.3, path="/health")
    started = time.monotonic()
    response = await suggestions.get("/health")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3
    assert fake.suggestions.calls("/health")[0].fault == "latency"


async def test_hang_is_bounded_by_the_client(fake: FakeBackend) -> None:
    fake.suggestions.hang(path="/messages")
    async with client(fake.suggestions_url, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/messages", json=message())
        await fake.wait_for(lambda: fake.suggestions.in_flight == 0, what="cancelled handler")
        assert fake.suggestions.calls("/messages")[0].cancelled
        assert (await http.post("/messages", json=message())).status_code == 201
    assert len(fake.stored_messages) == 1


async def test_hang_until_cleared(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    fault = fake.suggestions.hang()
    pending = asyncio.create_task(suggestions.get("/health"))
    await fake.wait_for(lambda: fake.suggestions.in_flight == 1, what="the held request")
    assert not pending.done()
    fault.clear()
    assert (await asyncio.wait_for(pending, BOUND)).status_code == 200


async def test_close_releases_a_hung_request() -> None:
    async with FakeBackend() as fake, client(fake.suggestions_url) as http:
        fake.suggestions.hang()
        pending = asyncio.create_task(http.get("/health"))
        await fake.wait_for(lambda: fake.suggestions.in_flight == 1)
        await fake.close()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await asyncio.wait_for(pending, BOUND)


@pytest.mark.parametrize("reset", [False, True])
async def test_drop(fake: FakeBackend, suggestions: httpx.AsyncClient, reset: bool) -> None:
    fake.suggestions.drop(reset=reset)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await suggestions.get("/health")
    assert fake.suggestions.calls()[0].dropped
    assert (await suggestions.get("/health")).status_code == 200


async def test_malformed_json(fake: FakeBackend, registry: httpx.AsyncClient) -> None:
    fake.registry.malformed(path="/auth/login")
    response = await registry.post("/auth/login", json={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_html_error_page(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    fake.inject("suggestions", "html")
    response = await suggestions.get("/health")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text


async def test_down_then_up_on_the_same_port(
    fake: FakeBackend, suggestions: httpx.AsyncClient
) -> None:
    port = fake.suggestions.port
    assert (await suggestions.get("/health")).status_code == 200  # a kept-alive connection
    await fake.suggestions.down()
    assert not fake.suggestions.is_up
    with pytest.raises(httpx.ConnectError):
        await suggestions.get("/health")
    async with client(fake.registry_url) as registry:
        assert (await registry.post("/auth/login", json={})).status_code == 400
    await fake.suggestions.up()
    assert fake.suggestions.port == port
    assert (await suggestions.get("/health")).status_code == 200


async def test_down_drops_requests_in_progress(
    fake: FakeBackend, suggestions: httpx.AsyncClient
) -> None:
    fake.suggestions.slow(BOUND)
    pending = asyncio.create_task(suggestions.get("/health"))
    await fake.wait_for(lambda: fake.suggestions.in_flight == 1)
    await fake.suggestions.down()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await asyncio.wait_for(pending, BOUND)


# --------------------------------------------------------------------- recording and waiting


async def test_max_in_flight_counts_concurrent_slow_requests(
    fake: FakeBackend, suggestions: httpx.AsyncClient
) -> None:
    fake.suggestions.slow(BOUND, times=None)
    pending = [asyncio.create_task(suggestions.get("/health")) for _ in range(10)]
    await fake.wait_for(lambda: fake.suggestions.in_flight == 10, what="10 held requests")
    fake.suggestions.clear()  # releases the held requests at once
    answers = await asyncio.wait_for(asyncio.gather(*pending), BOUND)
    assert [response.status_code for response in answers] == [200] * 10
    assert fake.suggestions.max_in_flight == 10
    assert fake.suggestions.in_flight == 0
    assert fake.registry.max_in_flight == 0


async def test_requests_are_recorded(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    headers = bearer("abc") | {"Idempotency-Key": "k9"}
    await suggestions.post("/messages", json=message("m-9"), headers=headers)
    await suggestions.get("/messages", params={"userId": CHAT, "limit": 5})
    post, get = fake.calls("suggestions")
    assert (post.service, post.method, post.path, post.status) == (
        "suggestions",
        "POST",
        "/messages",
        201,
    )
    assert post.authorization == "Bearer abc"
    assert post.bearer == "abc"
    assert post.idempotency_key == "k9"
    assert post.json["messageId"] == "m-9"
    assert post.done_at is not None and post.done_at >= post.at
    assert get.query == {"userId": str(CHAT), "limit": "5"}
    assert fake.suggestions.counts["/messages"] == 2
    assert fake.suggestions.count("/messages", "GET") == 1


async def test_wait_for_is_bounded(fake: FakeBackend, suggestions: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(
        fake.wait_for(lambda: fake.suggestions.count("/health") == 1, timeout=BOUND)
    )
    await suggestions.get("/health")
    await asyncio.wait_for(waiting, BOUND)
    started = time.monotonic()
    with pytest.raises(AssertionError, match="never"):
        await fake.wait_for(lambda: False, timeout=0.05, what="never")
    assert time.monotonic() - started < 1.0
