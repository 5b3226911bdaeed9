"""Prints the bounce corpus agreement (per field, reason and format) after the test run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

AGREEMENT_REPORT = pytest.StashKey[Callable[[], str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = terminalreporter.config.stash.get(AGREEMENT_REPORT, None)
    if report is not None:
        terminalreporter.section("bounce corpus agreement")
        terminalreporter.write_line(report())
