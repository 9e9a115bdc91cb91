# ruff: noqa: E402
"""The resilient backend client (adapters/http/) against the fake services: three figures.

Run from the repository: `python benchmarks/backend.py` (about a minute here), or `--quick`
(a smoke run, about 20 s). Everything runs in one process, on one event loop:
the client, built from config.yaml by `build_transport` as the bot builds it, and
tests/fakes/backend.py, two real aiohttp servers on 127.0.0.1 (ports chosen by the OS).
Logging is removed (`logger.remove()`, and stamina's retry hook), so no log I/O is timed.

1. Failing fast with the circuit open. The suggestions service goes down (connections
   refused); `Backend.call("get_user", ...)` is called until the breaker has seen
   `circuit_threshold` (5) consecutive failures and opens (retry delay cut to 10 ms so
   this takes no time). After an untimed warm-up of 200 calls, `--calls` calls of
   `Backend.call("get_user", ...)`, one after another, each timed with perf_counter_ns:
   every one must raise BackendUnavailable "circuit open" without touching the network.
   The same is done on the ServiceClient directly (`ServiceClient.request("GET",
   "/users/1001")`), taking turns with them, to show what the port adds. Goal: p99
   < 1 ms for Backend.call, all well inside the 30 s cool-down. Each call's CPU time
   (thread_time_ns) is taken too: a call over 1 ms with under 1 ms of CPU was waiting
   for a core, and the goal is shown again on CPU time.
   For comparison, the same service hanging (accepting, never answering): one request
   by a ServiceClient with no breaker to speak of (threshold 10^9), one attempt, with
   `--hang-timeout` (1 s) instead of the configured `timeout` (API_TIMEOUT, 15 s), and
   (not with --quick) a whole `Backend.call("get_user")` with the configured retries
   and backoff at that timeout. The 15 s figures are those scaled, not waited for.
2. Refreshes caused by 100 concurrent 401s. The registry client logs in and opens its
   connections with 100 concurrent `student_by_pinfl` calls, then every access token
   expires at the fake and 100 more run concurrently. Counted at the fake: the 401s it
   answered, refreshes and logins. Goal: exactly 1 refresh and no login. Run twice: with
   the in-flight cap lifted to 100 (so all 100 meet 401 together) and with the
   configured cap (10: the others wait their turn and mostly find the new token).
3. Throughput of `--gets` GETs (`/users/1001`, suggestions), `--concurrency` (10) at
   once, each way in turn, `--rounds` rounds with the order rotated, median req/s:
   - pooled: `ServiceClient.request`, the bot's path, on its shared keep-alive
     httpx.AsyncClient (in-flight cap, breaker, retries included);
   - pooled, bare: `ServiceClient.http.get` on the same client (httpx alone);
   - new connection per request: the same shared client with `Connection: close`, so
     every request opens (and closes) its own TCP connection;
   - new client per request: a fresh httpx.AsyncClient per GET, as code that does not
     keep a client does; it costs ~40 ms each here (TLS context set up), so only
     `--fresh` requests (100) are made, in one round.
   The fake runs in this process, so its CPU counts in every way alike; CPU per GET is
   this process's CPU time (process_time) over the requests. Goal: pooling (the bot's
   path) faster than a new connection per request (ratio > 1); issue 4 gives no number.

The machine is shared (2 vCPUs, other work running): the CPU the other processes used
during sections 1 and 3 (/proc/stat less this process) is shown. Compare the ratios
and the PASS/MISS lines of one run, not absolute figures from different runs. The exit
status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before benchmarks/, where engine.py would shadow `engine`

import httpx
import stamina.instrumentation
from loguru import logger

from adapters.http.breaker import Circuit, CircuitBreaker
from adapters.http.service import ServiceClient
from adapters.http.transport import HttpTransport, build_transport
from engine.backend import Backend
from engine.config import BackendConfig, load_settings
from engine.errors import BackendUnavailable
from tests.fakes.backend import FakeBackend

CHAT = 1001
PINFL = "12345678901234"
USER_PATH = f"/users/{CHAT}"
GOAL_OPEN_P99_US = 1000.0
GOAL_REFRESHES = 1
STORM = 100
PHASE_BOUND = 120.0  # seconds: no phase may take longer, whatever goes wrong
FAST_RETRY_DELAY = 0.01
NO_BREAKER = 10**9
OPEN_WARMUP = 200


def line(label: str, value: str) -> None:
    print(f"  {label:<52} {value}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


@dataclass
class Samples:
    """Per-call wall time (perf_counter_ns) and this thread's CPU time (thread_time_ns)."""

    wall: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)

    def p99_us(self) -> float:
        return p99([n / 1000 for n in self.wall])

    def cpu_p99_us(self) -> float:
        return p99([n / 1000 for n in self.cpu])

    def lines(self, label: str) -> None:
        wall = [n / 1000 for n in self.wall]
        cpu = [n / 1000 for n in self.cpu]
        slow = sum(1 for value in wall if value > GOAL_OPEN_P99_US)
        away = sum(
            1
            for w, c in zip(wall, cpu, strict=True)
            if w > GOAL_OPEN_P99_US and c <= GOAL_OPEN_P99_US
        )
        line(
            label,
            f"median {statistics.median(wall):6.1f} µs  p99 {p99(wall):7.1f} µs  "
            f"max {max(wall) / 1000:6.1f} ms",
        )
        line(
            "",
            f"CPU  median {statistics.median(cpu):6.1f} µs  p99 {p99(cpu):7.1f} µs  "
            f"max {max(cpu) / 1000:6.1f} ms",
        )
        line(
            "",
            f"over 1 ms: {slow} calls, {away} of them with under 1 ms of CPU (waiting for a core)",
        )


class Noise:
    """How busy the rest of the machine was: /proc/stat minus this process (os.times)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy, self.own = self._busy(), self._own()

    @staticmethod
    def _busy() -> float:
        try:
            first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return float("nan")
        values = [int(value) for value in first]
        return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        times = os.times()
        return times.user + times.system

    def report(self) -> str:
        wall = max(time.monotonic() - self.started, 1e-9)
        own = (self._own() - self.own) / wall
        others = max((self._busy() - self.busy) / wall - own, 0.0)
        return (
            f"this process {own:.2f} cores, other processes {others:.2f} cores "
            f"(of {os.cpu_count()})"
        )


def backend_for(config: BackendConfig, fake: FakeBackend) -> tuple[Backend, HttpTransport]:
    transport = build_transport(config, fake.env())
    return Backend(config.endpoints, transport), transport


# -- 1. failing fast with the circuit open ------------------------------------------------


async def time_open_calls(calls: list[Callable[[], Awaitable[Any]]], count: int) -> list[Samples]:
    """`count` calls of each, taken in turn (so noise from the machine hits all alike)."""
    samples = [Samples() for _ in calls]
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    for _ in range(count):
        for call, taken in zip(calls, samples, strict=True):
            started, used = wall(), cpu()
            try:
                await call()
            except BackendUnavailable as exc:
                taken.wall.append(wall() - started)
                taken.cpu.append(cpu() - used)
                if "circuit open" not in str(exc):
                    raise RuntimeError(f"failed, but not by the open circuit: {exc}") from exc
            else:
                raise RuntimeError("a call got through the open circuit")
    return samples


async def circuit_open(fake: FakeBackend, config: BackendConfig, calls: int) -> tuple[bool, bool]:
    print("\n1. Time to fail with the circuit open (suggestions service down)")
    fast = config.model_copy(update={"retry_delay": FAST_RETRY_DELAY})
    backend, transport = backend_for(fast, fake)
    client = transport.services["suggestions"]
    breaker = client.breaker
    params = {"chat_id": CHAT}
    try:
        await backend.call("get_user", params)  # warm: a pooled connection, code paths
        await fake.suggestions.down()
        opening = 0
        while breaker.state is not Circuit.OPEN and opening < 4 * breaker.threshold:
            with suppress(BackendUnavailable):
                await backend.call("get_user", params)
            opening += 1
        if breaker.state is not Circuit.OPEN:
            raise RuntimeError(f"the circuit did not open after {opening} calls")
        line(
            "opened after",
            f"{opening} Backend.call(s) with {fast.retry_attempts} attempts each "
            f"(threshold {breaker.threshold} consecutive failures)",
        )
        for _ in range(OPEN_WARMUP):
            with suppress(BackendUnavailable):
                await backend.call("get_user", params)
        noise = Noise()
        began = time.monotonic()
        port, direct = await time_open_calls(
            [
                lambda: backend.call("get_user", params),
                lambda: client.request("GET", USER_PATH),
            ],
            calls,
        )
        spent = time.monotonic() - began
        if breaker.state is not Circuit.OPEN:
            raise RuntimeError("the circuit left the open state during the timing")
        port.lines(f'Backend.call("get_user"), {calls:,} calls')
        direct.lines(f'ServiceClient.request("GET"), {calls:,} calls')
        line(
            "all timed calls took",
            f"{spent:.2f} s (cool-down {breaker.cooldown:g} s: no probe happened)",
        )
        line("machine", noise.report())
        ok = port.p99_us() < GOAL_OPEN_P99_US
        line("goal: Backend.call p99 < 1 ms", f"{verdict(ok)} ({port.p99_us():.1f} µs)")
        cpu_ok = port.cpu_p99_us() < GOAL_OPEN_P99_US
        line(
            "the same goal on CPU time (others' load left out)",
            f"{verdict(cpu_ok)} ({port.cpu_p99_us():.1f} µs)",
        )
    finally:
        await fake.suggestions.up()
        await transport.close()
    return ok, cpu_ok


async def hanging(fake: FakeBackend, config: BackendConfig, timeout: float, full: bool) -> None:
    print(f"\n   Without a breaker, against a hanging service (timeout {timeout:g} s here)")
    fault = fake.suggestions.hang(times=None)
    client = ServiceClient(
        "suggestions",
        fake.suggestions_url,
        timeout=timeout,
        attempts=1,
        retry_delay=config.retry_delay,
        breaker=CircuitBreaker("suggestions", threshold=NO_BREAKER),
    )
    try:
        started = time.perf_counter()
        with suppress(BackendUnavailable):
            await client.request("GET", USER_PATH)
        one = time.perf_counter() - started
        line(
            "one request, one attempt",
            f"{one:.3f} s; at the configured {config.timeout:g} s: "
            f"{one * config.timeout / timeout:.1f} s per call, each user",
        )
        if full:
            slow = config.model_copy(update={"timeout": timeout, "circuit_threshold": NO_BREAKER})
            backend, transport = backend_for(slow, fake)
            try:
                started = time.perf_counter()
                with suppress(BackendUnavailable):
                    await backend.call("get_user", {"chat_id": CHAT})
                whole = time.perf_counter() - started
            finally:
                await transport.close()
            attempts = config.retry_attempts
            backoff = max(whole - attempts * timeout, 0.0)
            line(
                f'Backend.call("get_user"), {attempts} attempts',
                f"{whole:.2f} s ({backoff:.2f} s of it backoff, retry delay "
                f"{config.retry_delay:g} s); at {config.timeout:g} s: "
                f"~{attempts * config.timeout + backoff:.0f} s",
            )
    finally:
        fault.clear()
        await client.close()


# -- 2. the refresh storm ----------------------------------------------------------------


async def refresh_storm(fake: FakeBackend, config: BackendConfig, cap: int) -> bool:
    wide = config.model_copy(
        update={"max_in_flight": cap, "max_connections": max(cap, config.max_connections)}
    )
    backend, transport = backend_for(wide, fake)
    registry = fake.registry

    async def storm() -> list[Any]:
        calls = (backend.call("student_by_pinfl", {"pinfl": PINFL}) for _ in range(STORM))
        return await asyncio.gather(*calls)

    try:
        logins, refreshes = fake.logins, fake.refreshes
        await storm()  # the first login, and the connections opened
        first_logins = fake.logins - logins
        logins, refreshes = fake.logins, fake.refreshes
        registry.reset_stats()
        fake.expire_access_tokens()
        started = time.perf_counter()
        answers = await storm()
        took = time.perf_counter() - started
    finally:
        await transport.close()
    students = registry.calls("/students/*")
    met_401 = sum(1 for call in students if call.status == 401)
    refreshed = fake.refreshes - refreshes
    logged_in = fake.logins - logins
    answered = sum(1 for answer in answers if answer and answer.get("pinfl") == PINFL)
    ok = refreshed == GOAL_REFRESHES and logged_in == 0 and answered == STORM
    line(
        f"in-flight cap {cap}",
        f"401s {met_401:3d}  refreshes {refreshed}  logins {logged_in}  "
        f"answered {answered}/{STORM}  in {took * 1000:.0f} ms  {verdict(ok)}",
    )
    line("", f"(before: {first_logins} login for the first {STORM} concurrent calls)")
    return ok


# -- 3. throughput -----------------------------------------------------------------------


@dataclass
class Way:
    label: str
    one: Callable[[], Awaitable[None]]
    count: int
    rounds: int
    rates: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)


async def run_gets(
    one: Callable[[], Awaitable[None]], count: int, concurrency: int
) -> tuple[float, float]:
    """(requests per second, CPU µs per request: this process, client and fake)."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    started, used = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    wall, cpu = time.perf_counter() - started, time.process_time() - used
    return count / wall, cpu / count * 1e6


async def throughput(
    fake: FakeBackend, config: BackendConfig, gets: int, fresh: int, rounds: int, conc: int
) -> bool:
    print(f"\n3. Throughput of GET {USER_PATH}, {conc} at once (median of rounds)")
    transport = build_transport(config, fake.env())
    client = transport.services["suggestions"]
    timeout = httpx.Timeout(config.timeout)

    def expect(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"GET {USER_PATH} answered {response.status_code}")

    async def pooled() -> None:
        status, _ = await client.request("GET", USER_PATH)
        if status != 200:
            raise RuntimeError(f"GET {USER_PATH} answered {status}")

    async def bare() -> None:
        expect(await client.http.get(USER_PATH))

    async def close() -> None:
        expect(await client.http.get(USER_PATH, headers={"Connection": "close"}))

    async def new_client() -> None:
        async with httpx.AsyncClient(base_url=fake.suggestions_url, timeout=timeout) as http:
            expect(await http.get(USER_PATH))

    ways = [
        Way("pooled: ServiceClient.request", pooled, gets, rounds),
        Way("pooled, bare: ServiceClient.http.get", bare, gets, rounds),
        Way("new connection per request (Connection: close)", close, gets, rounds),
        Way("new httpx.AsyncClient per request", new_client, fresh, 1),
    ]
    noise = Noise()
    try:
        for way in ways:  # warm-up, untimed
            await run_gets(way.one, min(20, way.count), conc)
        for number in range(rounds):
            shift = number % len(ways)
            for way in ways[shift:] + ways[:shift]:
                if len(way.rates) < way.rounds:
                    rate, cpu = await run_gets(way.one, way.count, conc)
                    way.rates.append(rate)
                    way.cpus.append(cpu)
        if client.breaker.state is not Circuit.CLOSED:
            raise RuntimeError("the suggestions circuit opened during the throughput run")
    finally:
        await transport.close()
    rate = {way.label: statistics.median(way.rates) for way in ways}
    for way in ways:
        spread = f" ({min(way.rates):.0f}-{max(way.rates):.0f})" if len(way.rates) > 1 else ""
        runs = f"{way.count:,} GETs x {len(way.rates)}"
        cpu = statistics.median(way.cpus) / 1000
        line(way.label, f"{rate[way.label]:5.0f} req/s{spread}  CPU {cpu:4.1f} ms/GET  {runs}")
    line("machine", noise.report())
    pooled_rate, bare_rate, close_rate, fresh_rate = (rate[way.label] for way in ways)
    line("ratio pooled ServiceClient / new connection", f"{pooled_rate / close_rate:.2f}x")
    line("ratio pooled bare httpx / new connection", f"{bare_rate / close_rate:.2f}x")
    line("ratio pooled ServiceClient / new client", f"{pooled_rate / fresh_rate:.1f}x")
    ok = pooled_rate > close_rate
    line("goal: pooling faster than a new connection", verdict(ok))
    return ok


# -- the run -----------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    logger.remove()
    stamina.instrumentation.set_on_retry_hooks([])
    began = time.monotonic()
    async with FakeBackend() as fake:
        fake.add_user(CHAT, fullName="Ali Valiyev")
        fake.add_student(PINFL, full_name="Ali Valiyev")
        config = load_settings(ROOT / "config.yaml", environ=fake.env()).backend
        print(
            f"flowgram backend client vs tests/fakes/backend.py on 127.0.0.1; config.yaml: "
            f"timeout {config.timeout:g} s, {config.retry_attempts} attempts, "
            f"threshold {config.circuit_threshold}, cool-down {config.circuit_cooldown:g} s, "
            f"in-flight cap {config.max_in_flight}, pool {config.max_connections}"
        )
        async with asyncio.timeout(PHASE_BOUND):
            open_ok, open_cpu_ok = await circuit_open(fake, config, args.calls)
        async with asyncio.timeout(PHASE_BOUND):
            await hanging(fake, config, args.hang_timeout, not args.quick)
        print(f"\n2. Refreshes caused by {STORM} concurrent 401s (student_by_pinfl)")
        line("goal", f"exactly {GOAL_REFRESHES} refresh, no login, all {STORM} answered")
        async with asyncio.timeout(PHASE_BOUND):
            storm_ok = [
                await refresh_storm(fake, config, cap) for cap in (STORM, config.max_in_flight)
            ]
        async with asyncio.timeout(PHASE_BOUND):
            pool_ok = await throughput(
                fake, config, args.gets, args.fresh, args.rounds, args.concurrency
            )
    goals = [
        ("open circuit: Backend.call p99 < 1 ms", open_ok),
        ("open circuit: Backend.call p99 < 1 ms on CPU time", open_cpu_ok),
        (f"{STORM} concurrent 401s: exactly 1 refresh (cap {STORM})", storm_ok[0]),
        (
            f"{STORM} concurrent 401s: exactly 1 refresh (cap {config.max_in_flight})",
            storm_ok[1],
        ),
        ("pooling faster than a new connection per request", pool_ok),
    ]
    print("\nSummary")
    for label, ok in goals:
        line(label, verdict(ok))
    print(f"\n(run took {time.monotonic() - began:.0f} s)")
    return 0 if all(ok for _, ok in goals) else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--calls", type=int, help="open-circuit calls timed (10000)")
    parser.add_argument("--gets", type=int, help="GETs per way and round (1000)")
    parser.add_argument("--fresh", type=int, help="GETs with a new client each (100)")
    parser.add_argument("--rounds", type=int, help="throughput rounds (3)")
    parser.add_argument("--concurrency", type=int, default=10, help="GETs at once (10)")
    parser.add_argument(
        "--hang-timeout", type=float, default=1.0, help="timeout against the hang (1 s)"
    )
    args = parser.parse_args(argv)
    defaults = (
        {"calls": 2000, "gets": 200, "fresh": 30, "rounds": 1}
        if args.quick
        else {"calls": 10_000, "gets": 1000, "fresh": 100, "rounds": 3}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
