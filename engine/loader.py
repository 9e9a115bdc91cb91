"""Load flow files through every check; the bot and `flowgram check` share this path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.checker import Known, check_flow, validate_schema
from engine.errors import FlowError, Problem
from engine.schema import FlowSpec
from engine.yamlpos import Located, load_located


@dataclass(frozen=True, slots=True)
class LoadedFlow:
    spec: FlowSpec
    located: Located


def flow_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files named, or found (non-recursively) in the folders named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            files.append(path)
    return files


def check_paths(
    paths: Iterable[Path],
    endpoints: Iterable[str],
    actions: Iterable[str],
) -> tuple[dict[str, LoadedFlow], list[Problem]]:
    """Parse, validate and check every flow file; return the good flows and every problem."""
    loaded: dict[str, LoadedFlow] = {}
    problems: list[Problem] = []
    for file in flow_files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(Problem(str(file), 1, 1, f"cannot read the file: {exc.strerror}"))
            continue
        except UnicodeDecodeError as exc:
            problems.append(_not_utf8(file, exc))
            continue
        located, found = load_located(text, str(file))
        problems += found
        if located is None:
            continue
        spec, found = validate_schema(located)
        problems += found
        if spec is None:
            continue
        if spec.flow in loaded:
            other = loaded[spec.flow].located.file
            problems.append(
                located.problem(("flow",), f"flow {spec.flow!r} is also declared in {other}")
            )
            continue
        loaded[spec.flow] = LoadedFlow(spec, located)

    known = Known(
        frozenset(endpoints),
        frozenset(actions),
        {name: flow.spec for name, flow in loaded.items()},
    )
    for flow in loaded.values():
        problems += check_flow(flow.spec, flow.located, known)
    problems.sort(key=lambda p: (p.file, p.line, p.column))
    return loaded, problems


def _not_utf8(file: Path, exc: UnicodeDecodeError) -> Problem:
    data = exc.object
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - data.rfind(b"\n", 0, exc.start)
    return Problem(
        str(file),
        line,
        column,
        f"the file is not UTF-8 text: byte {data[exc.start]:#04x} cannot be read",
        "save the file as UTF-8",
    )


def load_flows(
    paths: Iterable[Path],
    endpoints: Iterable[str],
    actions: Iterable[str],
) -> dict[str, FlowSpec]:
    """The flows, or FlowError with every problem: the bot refuses to start on any."""
    loaded, problems = check_paths(paths, endpoints, actions)
    if problems:
        raise FlowError(problems)
    return {name: flow.spec for name, flow in loaded.items()}
