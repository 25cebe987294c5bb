"""Call counters and the app-wide QPS limit.

TikTok budgets requests per developer app (10 QPS on the basic tier) and answers
``40100`` beyond it. The sandbox keeps, per app, two trailing one-second windows of
call times: every attempt (to report the highest rate the client ever reached, which
is what a well-behaved client keeps at or under its limit) and the admitted calls
(to decide whether one more fits). Refused calls do not use up budget.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 1.0


@dataclass(slots=True)
class AppTraffic:
    """Counters of one app."""

    calls: int = 0
    throttled: int = 0
    max_qps: int = 0
    attempts: deque[float] = field(default_factory=deque)
    admitted: deque[float] = field(default_factory=deque)

    def as_dict(self) -> dict[str, int]:
        """The public counters."""
        return {
            "calls": self.calls,
            "throttled": self.throttled,
            "max_qps": self.max_qps,
        }


def _trim(window: deque[float], now: float) -> None:
    horizon = now - WINDOW_SECONDS
    while window and window[0] <= horizon:
        window.popleft()


class Traffic:
    """Counters per endpoint, per app and per token, and the QPS gate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget every counter and window."""
        self.calls: Counter[str] = Counter()
        self.codes: dict[str, Counter[str]] = {}
        self.faults: Counter[str] = Counter()
        self.token_calls: Counter[str] = Counter()
        self.apps: dict[str, AppTraffic] = {}
        self.total_calls = 0
        self.total_throttled = 0

    def admit(self, app_id: str, qps: int) -> bool:
        """Record an attempt for the app; ``False`` if it would exceed ``qps``."""
        now = self._clock()
        traffic = self.apps.get(app_id)
        if traffic is None:
            traffic = self.apps[app_id] = AppTraffic()
        traffic.calls += 1
        attempts = traffic.attempts
        attempts.append(now)
        _trim(attempts, now)
        if len(attempts) > traffic.max_qps:
            traffic.max_qps = len(attempts)
        admitted = traffic.admitted
        _trim(admitted, now)
        if qps and len(admitted) >= qps:
            traffic.throttled += 1
            self.total_throttled += 1
            return False
        admitted.append(now)
        return True

    def record(self, endpoint: str, outcome: str, access_token: str | None) -> None:
        """Count one finished call and its outcome: the envelope code as text, or
        ``http_<status>`` / ``dropped`` for an injected transport fault."""
        self.total_calls += 1
        self.calls[endpoint] += 1
        codes = self.codes.get(endpoint)
        if codes is None:
            codes = self.codes[endpoint] = Counter()
        codes[outcome] += 1
        if access_token is not None:
            self.token_calls[access_token] += 1

    def record_fault(self, endpoint: str) -> None:
        """Count one injected fault."""
        self.faults[endpoint] += 1

    def snapshot(self) -> dict[str, Any]:
        """Every counter, as plain JSON-ready data."""
        return {
            "total_calls": self.total_calls,
            "total_throttled": self.total_throttled,
            "calls": dict(self.calls),
            "codes": {endpoint: dict(codes) for endpoint, codes in self.codes.items()},
            "faults": dict(self.faults),
            "apps": {app_id: app.as_dict() for app_id, app in self.apps.items()},
            "tokens": dict(self.token_calls),
        }
