"""`flowgram diagram` draws a flow for product staff."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_the_feedback_flow_is_drawn_with_its_events_and_failures() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "diagram", "feedback"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    [*] --> start"]
    assert "    menu --> ask_category : button complaint" in lines
    assert "    register : runs flow registration" in lines
    assert "    submit --> submit_failed : submit_message failed" in lines
    assert "    start --> menu : then if account" in lines


def test_an_unknown_flow_is_named_with_the_ones_that_exist() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "diagram", "feedbak"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )

    assert result.returncode == 1
    assert "no flow named 'feedbak'; flows: feedback, registration" in result.stderr
