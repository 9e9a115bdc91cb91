"""pytest collects every transcript under tests/fixtures/ as a test item."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.transcripts import TranscriptFailure, run_file
from engine.config import load_settings
from engine.logs import setup_logging

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

setup_logging("WARNING")  # tests that read logs add their own sink


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and FIXTURES in file_path.parents:
        return TranscriptFile.from_parent(parent, path=file_path)
    return None


class TranscriptFile(pytest.File):
    def collect(self):
        yield TranscriptItem.from_parent(self, name=self.path.stem)


class TranscriptItem(pytest.Item):
    def runtest(self) -> None:
        run_file(self.path, load_settings(ROOT / "config.yaml"))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, TranscriptFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"transcript {self.path.name}"
