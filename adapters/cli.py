"""The `flowgram` command: check flows, chat in a terminal, replay transcripts."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from adapters import terminal
from adapters.app import build_engine, check, log_backend_health
from adapters.telegram import bot_token
from engine.config import load_settings
from engine.errors import FlowError, FlowgramError
from engine.logs import setup_logging
from engine.upkeep import start_upkeep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowgram", description=__doc__)
    parser.add_argument("--config", type=Path, help="config.yaml to use")
    commands = parser.add_subparsers(dest="command", required=True)

    check_cmd = commands.add_parser("check", help="check flow files; exit 1 on any error")
    check_cmd.add_argument("paths", nargs="*", type=Path)

    chat_cmd = commands.add_parser("chat", help="hold a conversation in the terminal")
    chat_cmd.add_argument(
        "--user-id", type=int, default=1001, help="your chat id (777 is a registered demo user)"
    )
    chat_cmd.add_argument("--phone", default="+998901234567", help="your contact's number")

    test_cmd = commands.add_parser("test", help="replay transcript tests")
    test_cmd.add_argument("paths", nargs="*", type=Path, default=[Path("tests/fixtures")])

    commands.add_parser("run", help="serve the main flow to Telegram users")

    diagram_cmd = commands.add_parser("diagram", help="print a flow as a Mermaid diagram")
    diagram_cmd.add_argument("flow", nargs="?", help="flow name (default: the main flow)")

    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        run = {"check": _check, "chat": _chat, "test": _test, "diagram": _diagram, "run": _run}
        return run[args.command](settings, args)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    except FlowgramError as exc:
        print(f"flowgram: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _check(settings, args) -> int:
    setup_logging("WARNING", settings.bot_env)
    flows, problems = check(settings, args.paths or None)
    for problem in problems:
        print(problem)
    count = len(problems)
    print(
        f"{len(flows)} flow(s) checked, {count} error(s)"
        if count
        else f"{len(flows)} flow(s) checked, no errors",
        file=sys.stderr,
    )
    return 1 if problems else 0


def _chat(settings, args) -> int:
    piped = not terminal.interactive()
    setup_logging(settings.log_level if not piped else "WARNING", settings.bot_env)
    channel = terminal.TerminalChannel(sys.stdout)
    engine = build_engine(settings, channel)
    user = terminal.TerminalUser(channel, args.user_id, args.phone)
    if not piped:
        print(
            f"flowgram chat: flow {settings.main_flow!r}, chat id {args.user_id}. "
            "Type /start to begin, :quit to leave.\n" + terminal.HELP
        )

    async def session() -> None:
        stop = asyncio.Event()
        if not piped:
            await log_backend_health(engine.backend)
        upkeep = start_upkeep(engine, settings, stop)
        try:
            await terminal.chat(engine.handle, user, sys.stdin, sys.stdout, echo=piped)
            await engine.drain()
        finally:
            stop.set()
            await upkeep
            await engine.backend.close()

    asyncio.run(session())
    return 0


def _run(settings, args) -> int:
    setup_logging(settings.log_level, settings.bot_env)
    # Told at once, before aiogram's imports (seconds): a missing token, a broken flow.
    bot_token()
    _, problems = check(settings)
    if problems:
        raise FlowError(problems)
    from adapters.telegram.serve import serve

    return serve(settings)


def _diagram(settings, args) -> int:
    from engine.diagram import mermaid

    setup_logging("WARNING", settings.bot_env)
    flows, problems = check(settings)
    for problem in problems:
        print(problem, file=sys.stderr)
    name = args.flow or settings.main_flow
    if name not in flows:
        print(
            f"flowgram: no flow named {name!r}; flows: {', '.join(sorted(flows))}", file=sys.stderr
        )
        return 1
    print(mermaid(flows[name].spec), end="")
    return 0


def _test(settings, args) -> int:
    from adapters.transcripts import TranscriptFailure, run_file, transcript_files

    setup_logging("ERROR", settings.bot_env)
    passed = failed = 0
    for path in transcript_files(args.paths):
        try:
            run_file(path, settings)
        except TranscriptFailure as exc:
            failed += 1
            print(f"FAIL {exc}")
        else:
            passed += 1
            print(f"ok   {path}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
