# ruff: noqa: E402
"""The Telegram adapter under load: `flowgram run` against a hand-written aiogram bot.

Run from the repository: `python benchmarks/telegram.py` (500 users, about 2 minutes),
`--quick` (50 users: a smoke run), `--with-limits` (then flowgram with its default send
limits too, rush only, about 2 minutes more), `--profile` (both bots sampled by py-spy
during the load: their hot spots; `pip install py-spy`).

One fake Bot API server (tests/fakes/telegram.py, a real aiohttp server on 127.0.0.1)
runs in this process. Each bot runs as a subprocess that polls it over loopback HTTP,
one after the other, against the same server with the same users and pace: first
`flowgram --config TMP run`, TMP being config.yaml with `telegram.global_per_second`
and `per_chat_per_second` lifted to 100000, so that its send limits (30 messages/s
overall, 1/s per chat after a burst of 5, as Telegram advises) do not throttle the load
(the limiter still runs, and its CPU counts); then `benchmarks/baseline/bot.py`, aiogram
FSM with no send limiter. Both take their data from the in-process demo backend.

Each simulated user holds the whole feedback conversation, 6 updates: /start, the
language button, a complete student's PINFL (checking, found, registered, menu), the
complaint button, a category (rotating over the 7), the complaint's text (submitted,
menu). A user takes a step once the bot's last message for the previous one arrived.
Each bot gets two crowds of `--users` fresh users:

- rush: they start over `--stagger` seconds (1) and take each step as soon as the last
  is answered: the bot's capacity; latency here is mostly queueing (Little's law:
  users / updates per second).
- steady: they start over `--think` seconds (5) and think that long (±25 %) before each
  step, as people do: about users / think updates per second.

Startup (importing aiogram takes seconds here) is excluded: measuring starts once the
bot polls and 10 warm-up users went through the conversation.

What is measured, per bot and crowd:
- updates per second: the crowd's updates / (last step answered - first update made).
- reply latency: per update, from the moment the fake server made it available (queued
  for getUpdates) to the moment the bot's first reply call for that chat (sendMessage or
  editMessageText) reached the fake server (its handler started). "in bot" is the part
  from getUpdates answering with the update to that reply call. Both are read on this
  process's monotonic clock, so they include the fake's delays too (its CPU is shown).
- CPU per update: utime + stime of the bot process (/proc/PID/stat, 10 ms ticks) over
  the crowd, divided by its updates.
- Bot API calls per update, by method, from the fake's record.
The machine's other processes are watched (/proc/stat); when they took more than 10 %
of a core, the figures are marked noisy. Compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # before benchmarks/, where engine.py would shadow `engine`

from tests.fakes.telegram import FakeTelegram, FakeUser, JsonDict, StoredMessage, _Chat

GOAL_CPU_RATIO = 1.2
GOAL_P99_MS = 50.0
GOAL_USERS = 500
LIFTED = 100_000

FIRST_USER = 10_000_000
WARMUP_USERS = 10
READY_TIMEOUT = 90.0  # seconds for a bot to start polling
STOP_TIMEOUT = 15.0
PINFL = "12345678901234"
COMPLAINT = "Darsxonada proyektor ishlamayapti, iltimos tezroq tuzating."
REPLY_METHODS = frozenset({"sendmessage", "editmessagetext"})
CATEGORIES = (  # the button, and a piece of the prompt it leads to
    ("🏫 Sharoit", "infratuzilma"),
    ("📝 Qabul", "o'qishga kirish"),
    ("📚 Dars jarayoni", "dars vaqtini"),
    ("👨‍🏫 O'qituvchi", "O'qituvchining ismini"),
    ("🧑‍💼 Tyutor", "tyutorning ismini"),
    ("🏛 Dekanat", "dekanat bilan"),
    ("❓ Boshqa", "tafsilotlari"),
)
STEP_NAMES = ("/start", "language", "PINFL", "complaint", "category", "text")
UPDATES_PER_USER = len(STEP_NAMES)


class Stuck(Exception):
    """A run that cannot go on: the message says what and where."""


# -- the fake server, instrumented ------------------------------------------------------


class BenchTelegram(FakeTelegram):
    """The fake Bot API, timing each update and waking only the chat a message is for.

    FakeUser.wait_for_message wakes every waiter on any change (fine for a test, O(N²)
    with 500 users); here a user waits on its own chat's future instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.made_available: dict[int, float] = {}
        self.handed_over: dict[int, float] = {}
        self.last_update_id = 0
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._cursors: dict[int, int] = {}

    def _enqueue(self, update: JsonDict) -> None:
        self.made_available[update["update_id"]] = time.monotonic()
        self.last_update_id = update["update_id"]
        super()._enqueue(update)

    async def _get_updates(self, params: JsonDict) -> list[JsonDict]:
        updates = await super()._get_updates(params)
        now = time.monotonic()
        for update in updates:
            self.handed_over.setdefault(update["update_id"], now)
        return updates

    def _bot_event(self, chat: _Chat, kind: str, message: StoredMessage) -> None:
        super()._bot_event(chat, kind, message)
        waiter = self._waiters.pop(chat.id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def drop_pending(self) -> None:
        """Forget updates no bot confirmed, so the next bot starts clean."""
        self._updates.clear()
        for chat_id, chat in self._chats.items():
            self._cursors[chat_id] = len(chat.events)

    async def reply(self, chat_id: int, contains: str, timeout: float) -> None:
        """Wait for the next bot message (sent or edited) in the chat containing `contains`."""
        chat = self._chats[chat_id]
        deadline = time.monotonic() + timeout
        while True:
            events = chat.events
            for index in range(self._cursors.get(chat_id, 0), len(events)):
                if events[index].kind != "deleted" and contains in (events[index].text or ""):
                    self._cursors[chat_id] = index + 1
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                raise Stuck(
                    f"user {chat_id} got no message containing {contains!r} "
                    f"within {timeout:.0f}s:\n{chat.transcript()}"
                )
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[chat_id] = waiter
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, left)


# -- the users ----------------------------------------------------------------------------


@dataclass
class StepTime:
    chat_id: int
    step: int
    update_id: int
    done: float


def conversation(user: FakeUser, number: int) -> list[tuple[Callable[[], Awaitable[Any]], str]]:
    """The steps of one user: an action, and a piece of the bot's last message for it."""
    category, prompt = CATEGORIES[number % len(CATEGORIES)]
    return [
        (lambda: user.send("/start"), "Tilni tanlang"),
        (lambda: user.press("🇺🇿 O'zbekcha"), "JSHSHIR (PINFL)"),
        (lambda: user.send(PINFL), "Asosiy menyu"),
        (lambda: user.press("⚠️ Shikoyat"), "Bo'limni tanlang"),
        (lambda: user.press(category), prompt),
        (lambda: user.send(COMPLAINT), "Asosiy menyu"),
    ]


async def converse(
    tg: BenchTelegram,
    user_id: int,
    *,
    delay: float,
    think: float,
    timeout: float,
    times: list[StepTime],
    check: Callable[[], None],
) -> None:
    await asyncio.sleep(delay)
    user = tg.user(user_id, first_name="Talaba", language_code="uz")
    for index, (act, last) in enumerate(conversation(user, user_id)):
        if index and think:
            await asyncio.sleep(think * random.uniform(0.75, 1.25))
        check()
        try:
            await act()  # queues the update without yielding: last_update_id is its id
            update_id = tg.last_update_id
            await tg.reply(user_id, last, timeout)
        except (AssertionError, Stuck) as exc:  # AssertionError: FakeUser found no button
            raise Stuck(f"step {STEP_NAMES[index]!r}: {exc}") from None
        times.append(StepTime(user_id, index, update_id, time.monotonic()))


# -- a bot process --------------------------------------------------------------------------


@dataclass
class Bot:
    name: str
    argv: list[str]
    note: str


@dataclass
class Phase:
    """A crowd of users: how they start and how long they think between steps."""

    name: str
    about: str
    stagger: float
    think: float
    users: range


@dataclass
class Result:
    bot: str
    phase: Phase
    updates: int
    seconds: float
    cpu: float
    fake_cpu: float
    others: float
    latency_ms: list[float]
    in_bot_ms: list[float]
    calls: Counter[str]
    steps: list[int]

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / self.updates

    @property
    def p99(self) -> float:
        return percentile(self.latency_ms, 0.99)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all processes spent so far, all cores together (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


async def start_bot(
    tg: BenchTelegram, bot: Bot, log: Path
) -> tuple[asyncio.subprocess.Process, float]:
    """Spawn the bot; return it once it polls (bounded), with its startup time."""
    polls = len(tg.calls("getUpdates"))
    started = time.monotonic()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_SERVER": tg.base_url}
    for name in ("API_BASE_URL", "AUTH_API_BASE_URL", "TELEGRAM_MODE", "LOG_LEVEL", "BOT_ENV"):
        env.pop(name, None)
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *bot.argv, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        while len(tg.calls("getUpdates")) == polls:
            if process.returncode is not None:
                raise Stuck(f"it exited with {process.returncode} at startup")
            if time.monotonic() - started > READY_TIMEOUT:
                raise Stuck(f"it did not poll within {READY_TIMEOUT:.0f}s")
            await asyncio.sleep(0.05)
    except BaseException:
        await stop_bot(process)
        raise
    return process, time.monotonic() - started


async def stop_bot(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL when it is not gone within STOP_TIMEOUT."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()


async def crowd(
    tg: BenchTelegram,
    phase: Phase,
    *,
    timeout: float,
    process: asyncio.subprocess.Process,
) -> list[StepTime]:
    """Every user of the phase through the conversation; the first failure stops them all."""
    times: list[StepTime] = []

    def check() -> None:
        if process.returncode is not None:
            raise Stuck(f"the bot exited with {process.returncode} under load")

    count = len(phase.users)
    tasks = [
        asyncio.create_task(
            converse(
                tg,
                user_id,
                delay=phase.stagger * index / count,
                think=phase.think,
                timeout=timeout,
                times=times,
                check=check,
            )
        )
        for index, user_id in enumerate(phase.users)
    ]
    budget = phase.stagger + UPDATES_PER_USER * phase.think * 1.25 + max(180.0, 3 * timeout)
    try:
        async with asyncio.timeout(budget):
            await asyncio.gather(*tasks)
    except TimeoutError:
        raise Stuck(f"the {phase.name} phase did not end within {budget:.0f}s") from None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return times


def latencies(
    tg: BenchTelegram, times: list[StepTime], since: float
) -> tuple[list[float], list[float]]:
    """Per update: made available -> first reply call, and handed over -> that call (ms)."""
    replies: dict[Any, list[float]] = defaultdict(list)
    for call in tg.calls():
        if call.at >= since and call.method.lower() in REPLY_METHODS and call.ok:
            replies[call.chat_id].append(call.at)
    whole, in_bot = [], []
    for step in times:
        available = tg.made_available[step.update_id]
        calls = replies[step.chat_id]
        index = bisect.bisect_left(calls, available)
        if index == len(calls):
            raise Stuck(f"no reply call recorded for update {step.update_id}")
        whole.append((calls[index] - available) * 1000)
        handed = tg.handed_over.get(step.update_id, available)
        in_bot.append((calls[index] - handed) * 1000)
    return whole, in_bot


async def load(
    tg: BenchTelegram, bot: Bot, phase: Phase, process: asyncio.subprocess.Process, timeout: float
) -> Result:
    """One phase against a running bot, measured."""
    cpu, fake, busy = cpu_seconds(process.pid), time.process_time(), machine_busy()
    began = time.monotonic()
    times = await crowd(tg, phase, timeout=timeout, process=process)
    ended = max(step.done for step in times)
    cpu = cpu_seconds(process.pid) - cpu
    fake = time.process_time() - fake
    others = machine_busy() - busy - cpu - fake
    first = min(tg.made_available[step.update_id] for step in times)
    whole, in_bot = latencies(tg, times, began)
    calls = Counter(call.method for call in tg.calls() if began <= call.at <= ended)
    result = Result(
        bot.name,
        phase,
        len(times),
        ended - first,
        cpu,
        fake,
        others,
        whole,
        in_bot,
        calls,
        [step.step for step in times],
    )
    report(result)
    await asyncio.sleep(0.5)  # background calls (wait: false) settle before the next phase
    return result


async def measure(
    tg: BenchTelegram,
    bot: Bot,
    phases: list[Phase],
    timeout: float,
    logs: Path,
    *,
    spy: Path | None = None,
) -> list[Result]:
    """Start the bot, warm it up, run the phases (sampled by py-spy into `spy`), stop it."""
    log = logs / f"{bot.name.split()[0]}.log"
    print(f"\n{bot.name}: {bot.note}", flush=True)
    tg.drop_pending()
    process: asyncio.subprocess.Process | None = None
    try:
        process, startup = await start_bot(tg, bot, log)
        warmup = Phase("warm-up", "", 0.2, 0, range(FIRST_USER, FIRST_USER + WARMUP_USERS))
        await crowd(tg, warmup, timeout=timeout, process=process)
        print(f"  polling after {startup:.1f} s (startup excluded); {WARMUP_USERS} warm-up users")
        await asyncio.sleep(0.5)
        if spy is None:
            return [await load(tg, bot, phase, process, timeout) for phase in phases]
        async with sampled(process.pid, spy):
            return [await load(tg, bot, phase, process, timeout) for phase in phases]
    except Stuck as exc:
        raise Stuck(f"{bot.name}: {exc}\n  bot log ({log}):\n{tail(log)}") from None
    finally:
        if process is not None:
            await stop_bot(process)


# -- output -----------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(result: Result) -> None:
    whole, in_bot, seconds = result.latency_ms, result.in_bot_ms, result.seconds
    print(f"  {result.phase.name} ({result.phase.about}):")
    print(
        f"    {result.updates} updates in {seconds:.1f} s: {result.per_second:.0f} updates/s; "
        f"CPU {result.cpu:.2f} s = {result.cpu_ms:.2f} ms per update "
        f"({result.cpu / seconds:.0%} of a core)"
    )
    print(
        f"    reply latency: median {statistics.median(whole):.1f} ms, p99 {result.p99:.1f} ms, "
        f"max {max(whole):.0f} ms (in bot: median {statistics.median(in_bot):.1f} ms, "
        f"p99 {percentile(in_bot, 0.99):.1f} ms)"
    )
    by_step: dict[int, list[float]] = defaultdict(list)
    for step, latency in zip(result.steps, whole, strict=True):
        by_step[step].append(latency)
    print(
        "    median / p99 by step (ms): "
        + ", ".join(
            f"{STEP_NAMES[step]} {statistics.median(v):.0f}/{percentile(v, 0.99):.0f}"
            for step, v in sorted(by_step.items())
        )
    )
    calls = ", ".join(f"{m} {n / result.updates:.2f}" for m, n in result.calls.most_common())
    print(f"    Bot API calls per update: {calls}")
    busy = f"fake server {result.fake_cpu / seconds:.0%} of a core"
    others = result.others / seconds
    if others > 0.1:
        busy += f"; OTHER PROCESSES {others:.0%} of a core: the machine was shared, figures noisy"
    print(f"    {busy}", flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def goals(flowgram: list[Result], baseline: list[Result]) -> None:
    print("\nflowgram / baseline (flowgram with its send limits lifted):")
    for ours, theirs in zip(flowgram, baseline, strict=True):
        print(
            f"  {ours.phase.name}: CPU per update {ours.cpu_ms:.2f} / {theirs.cpu_ms:.2f} ms "
            f"= {ours.cpu_ms / theirs.cpu_ms:.2f}; p99 {ours.p99:.0f} / {theirs.p99:.0f} ms; "
            f"{ours.per_second:.0f} / {theirs.per_second:.0f} updates/s"
        )
    ratio = sum(r.cpu for r in flowgram) / sum(r.cpu for r in baseline)
    ratio *= sum(r.updates for r in baseline) / sum(r.updates for r in flowgram)
    print("goals:")
    print(
        f"  {verdict(ratio <= GOAL_CPU_RATIO)}  CPU per update <= {GOAL_CPU_RATIO} x baseline "
        f"(all phases): {ratio:.2f} x"
    )
    for ours, theirs in zip(flowgram, baseline, strict=True):
        users = len(ours.phase.users)
        at = "" if users >= GOAL_USERS else f" (the goal is at {GOAL_USERS})"
        print(
            f"  {verdict(ours.p99 < GOAL_P99_MS)}  p99 reply latency < {GOAL_P99_MS:.0f} ms, "
            f"{users} users, {ours.phase.name}{at}: {ours.p99:.1f} ms "
            f"(baseline {theirs.p99:.1f} ms)"
        )


# -- the bots -------------------------------------------------------------------------------


def flowgram_config(directory: Path, lifted: float | None) -> Path:
    """config.yaml with absolute paths, and the send limits replaced when given."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["flows"] = str(ROOT / config["flows"])
    config["custom_actions"] = [str(ROOT / path) for path in config.get("custom_actions", [])]
    if lifted is not None:
        telegram = config.setdefault("telegram", {})
        telegram["global_per_second"] = telegram["per_chat_per_second"] = lifted
    name = "lifted" if lifted is not None else "default"
    path = directory / f"config-{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def flowgram_bot(directory: Path, *, lifted: bool) -> Bot:
    config = flowgram_config(directory, LIFTED if lifted else None)
    argv = [sys.executable, "-m", "adapters.cli", "--config", str(config), "run"]
    if lifted:
        note = (
            f"flowgram run, send limits lifted: telegram.global_per_second and "
            f"per_chat_per_second {LIFTED} (not 30 and 1)"
        )
        return Bot("flowgram", argv, note)
    note = "flowgram run with its default send limits (30/s overall; per chat 5, then 1/s)"
    return Bot("flowgram-limits", argv, note)


def baseline_bot() -> Bot:
    return Bot(
        "baseline",
        [sys.executable, str(ROOT / "benchmarks" / "baseline" / "bot.py")],
        "benchmarks/baseline/bot.py: aiogram FSM, MemoryStorage, no send limiter",
    )


# -- main -----------------------------------------------------------------------------------


def phases(args: argparse.Namespace) -> list[Phase]:
    first = FIRST_USER + WARMUP_USERS
    rush = Phase(
        "rush",
        f"users start over {args.stagger:g} s, each step as soon as the last is answered",
        args.stagger,
        0.0,
        range(first, first + args.users),
    )
    first += args.users
    steady = Phase(
        "steady",
        f"users start over {args.think:g} s, then think {args.think:g} s (±25 %) per step",
        args.think,
        args.think,
        range(first, first + args.users),
    )
    return [rush, steady] if args.think else [rush]


async def run(args: argparse.Namespace) -> int:
    plan = phases(args)
    print(
        f"{args.users} users x {UPDATES_PER_USER} updates per phase; one fake Bot API server "
        f"in this process ({os.cpu_count()} cores), each bot polling it over loopback HTTP",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="flowgram-bench-") as folder:
        directory = Path(folder)
        async with BenchTelegram() as tg:
            if args.profile:
                return await profile(tg, plan, args.timeout, directory)
            flowgram = await measure(
                tg, flowgram_bot(directory, lifted=True), plan, args.timeout, directory
            )
            baseline = await measure(tg, baseline_bot(), plan, args.timeout, directory)
            if args.with_limits:
                timeout = max(args.timeout, args.users * 8 / 30 + 30)
                bot = flowgram_bot(directory, lifted=False)
                await measure(tg, bot, plan[:1], timeout, directory)
            goals(flowgram, baseline)
    return 0


# -- profiling --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def sampled(pid: int, output: Path) -> AsyncIterator[None]:
    """py-spy samples the process (on CPU only, without pausing it) while the block runs."""
    spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if spy is None:
        raise Stuck("--profile needs py-spy: pip install py-spy")
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--full-filenames"]
    process = await asyncio.create_subprocess_exec(
        *argv,
        "--rate",
        "250",
        "--nonblocking",
        "--output",
        str(output),
        stdout=DEVNULL,
        stderr=DEVNULL,
    )
    await asyncio.sleep(1.0)  # attaching takes a moment
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()


FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
LOOP_FRAMES = ("_run_once", "Handle._run", "_run")  # the event loop calling back
AREAS = (  # what a function's file belongs to; the first match wins
    (f"{ROOT}/engine/", "flowgram engine/"),
    (f"{ROOT}/adapters/telegram/", "flowgram adapters/telegram/"),
    (f"{ROOT}/adapters/demo_backend", "demo backend"),
    (f"{ROOT}/flows/", "flows/actions.py"),
    (f"{ROOT}/benchmarks/baseline/", "baseline bot.py"),
    ("site-packages/aiogram/", "aiogram"),
    ("site-packages/pydantic", "pydantic"),
    ("site-packages/aiohttp/", "aiohttp"),
    ("site-packages/multidict/", "aiohttp"),
    ("site-packages/yarl/", "aiohttp"),
    ("site-packages/loguru/", "loguru"),
    ("site-packages/jinja2/", "jinja2"),
    ("site-packages/aiolimiter/", "aiolimiter"),
    ("site-packages/magic_filter/", "aiogram"),
    ("/logging/", "logging"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/concurrent/", "threads (concurrent.futures)"),
    ("/threading.py", "threads (concurrent.futures)"),
)


SHARED_AREAS = frozenset(
    {"aiogram", "pydantic", "aiohttp", "asyncio", "json", "other", "threads (concurrent.futures)"}
)


def area(path: str) -> str:
    return next((label for marker, label in AREAS if marker in path), "other")


def short(path: str) -> str:
    for marker in ("site-packages/", f"{ROOT}/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def hot_spots(output: Path, title: str, rows: int = 15) -> None:
    """The sampled profile: own time by area and by function, inclusive time by function.

    Inclusive time counts the frames the event loop called back (the outer frames of
    asyncio.run and the loop itself are left out), each once per sample.
    """
    own: Counter[str] = Counter()
    own_code: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in output.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [(m["function"], m["file"]) for m in map(FRAME.match, stack.split(";")) if m]
        if not frames:
            continue
        names = [f"{short(file)}:{function}" for function, file in frames]
        own[names[-1]] += samples
        areas[area(frames[-1][1])] += samples
        if area(frames[-1][1]) not in SHARED_AREAS:
            own_code[names[-1]] += samples
        loop = [i for i, (function, _) in enumerate(frames) if function.endswith(LOOP_FRAMES)]
        for name in set(names[loop[-1] + 1 if loop else 0 :]):
            inclusive[name] += samples
    if not total:
        print(f"\n{title}: no samples (py-spy could not attach?)")
        return
    print(f"\n{title}: {total} samples on CPU during the load")
    print(
        "  own time by area: " + ", ".join(f"{n} {c / total:.0%}" for n, c in areas.most_common())
    )
    print("  own time, by function:")
    for name, samples in own.most_common(rows):
        print(f"    {samples / total:6.1%}  {name}")
    print("  own time, by function, outside what both bots share (aiogram, pydantic, ...):")
    for name, samples in own_code.most_common(rows):
        print(f"    {samples / total:6.1%}  {name}")
    print("  inclusive time, by function (what the event loop called back, and below):")
    for name, samples in inclusive.most_common(rows + 10):
        print(f"    {samples / total:6.1%}  {name}")


async def profile(tg: BenchTelegram, plan: list[Phase], timeout: float, folder: Path) -> int:
    for bot in (flowgram_bot(folder, lifted=True), baseline_bot()):
        output = folder / f"{bot.name}.spy"
        await measure(tg, bot, plan, timeout, folder, spy=output)
        hot_spots(output, f"{bot.name} under py-spy")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=GOAL_USERS, help="users per phase")
    parser.add_argument("--stagger", type=float, default=1.0, help="rush: seconds to start all")
    parser.add_argument(
        "--think", type=float, default=5.0, help="steady: seconds between steps (0: no phase)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per step")
    parser.add_argument("--quick", action="store_true", help="50 users, think 2 s: a smoke run")
    parser.add_argument(
        "--with-limits", action="store_true", help="also flowgram with its default limits (rush)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample both bots with py-spy: hot spots"
    )
    args = parser.parse_args()
    if args.quick:
        args.users, args.think = min(args.users, 50), min(args.think, 2.0)
    try:
        return asyncio.run(run(args))
    except Stuck as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
