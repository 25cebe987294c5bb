"""Fixtures of the end-to-end suite: stacks of real processes and a figures report.

``figures`` records measured numbers, printed in the terminal summary whatever ``-s`` says.
Stacks of processes come from ``e2e_support.open_stack`` in module-scoped fixtures.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from e2e_support import REPO_ROOT, Stack, open_stack

_FIGURES: list[tuple[str, str, Any]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("end-to-end figures")
    for test, name, value in _FIGURES:
        terminalreporter.write_line(f"{test}: {name} = {value}")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """``figures("recovery_seconds", 4.2)``: a number shown in the terminal summary."""

    def record(name: str, value: Any) -> None:
        _FIGURES.append((request.node.name, name, value))

    return record


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """One stack of processes for the whole e2e run (starting one costs ~30 s here).

    Process logs stay in ``.local/e2e/<run>/`` (ignored by git) for a look after a failure.
    """
    log_dir = REPO_ROOT / ".local" / "e2e" / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    async with open_stack(log_dir) as started:
        yield started
