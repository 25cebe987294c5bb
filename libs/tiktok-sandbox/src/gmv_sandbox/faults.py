"""Fault injection: make chosen endpoints slow, failing or silent on purpose.

A ``FaultRule`` targets one endpoint (``"store/product/get"``) or every endpoint
(``"*"``). For each call it matches, the rule adds latency, then rolls one number
from the injector's seeded RNG and picks at most one outcome, in this order:

* ``drop_rate``: the connection is closed without any response;
* ``http_error_rate``: an HTTP ``http_status`` (5xx) with a plain-text body;
* ``error_rate``: HTTP 200 with the envelope ``error_code`` (40100, 50002, ...).

``remaining`` limits a rule to the next N calls it matches ("the next 3 calls get
40100"); the rule disappears once spent. Rules are tried in order and the first one
that picks an outcome wins; latency from every matching rule adds up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from random import Random
from typing import Any

from gmv_sandbox.errors import InvalidChange

EVERY_ENDPOINT = "*"
_API_PATH = "open_api/v1.3/"


class FaultKind(StrEnum):
    """What an injected fault does to the call."""

    DROP = "drop"
    HTTP_ERROR = "http_error"
    ERROR_CODE = "error_code"


@dataclass(slots=True)
class FaultRule:
    """One fault recipe for an endpoint (see the module docstring)."""

    endpoint: str = EVERY_ENDPOINT
    error_code: int | None = None
    error_rate: float = 0.0
    error_message: str | None = None
    http_status: int = 504
    http_error_rate: float = 0.0
    drop_rate: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    remaining: int | None = None

    def __post_init__(self) -> None:
        name = self.endpoint.strip("/")
        self.endpoint = name.removeprefix(_API_PATH) or EVERY_ENDPOINT
        rates = (self.error_rate, self.http_error_rate, self.drop_rate)
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise InvalidChange("fault rates must be between 0 and 1")
        if sum(rates) > 1.0 + 1e-9:
            raise InvalidChange("fault rates of one rule must add up to at most 1")
        if self.error_rate and not self.error_code:
            raise InvalidChange("error_rate needs an error_code")
        if not 500 <= self.http_status <= 599:
            raise InvalidChange("http_status must be a 5xx status")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            raise InvalidChange("latency must not be negative")
        if self.remaining is not None and self.remaining < 1:
            raise InvalidChange("remaining must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What the injector decided for one call."""

    latency_seconds: float = 0.0
    kind: FaultKind | None = None
    error_code: int | None = None
    error_message: str | None = None
    http_status: int = 504


NO_FAULT = FaultDecision()


class FaultInjector:
    """Ordered fault rules and the seeded RNG that drives them."""

    def __init__(self, seed: int = 0) -> None:
        self.rules: list[FaultRule] = []
        self.seed = seed
        self._rng = Random(seed)

    def set_rules(self, rules: list[FaultRule], *, seed: int | None = None) -> None:
        """Replace every rule; a new ``seed`` also restarts the RNG."""
        self.rules = list(rules)
        if seed is not None:
            self.seed = seed
            self._rng = Random(seed)

    def add_rule(self, rule: FaultRule) -> None:
        """Append a rule after the existing ones."""
        self.rules.append(rule)

    def clear(self) -> None:
        """Drop every rule."""
        self.rules = []

    def decide(self, endpoint: str) -> FaultDecision:
        """Roll the dice for one call of ``endpoint``."""
        if not self.rules:
            return NO_FAULT
        latency = 0.0
        outcome: FaultDecision | None = None
        spent: list[FaultRule] = []
        for rule in self.rules:
            if rule.endpoint not in (EVERY_ENDPOINT, endpoint):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    spent.append(rule)
            latency += self._latency(rule)
            if outcome is None:
                outcome = self._outcome(rule)
        for rule in spent:
            self.rules.remove(rule)
        if outcome is None:
            return FaultDecision(latency_seconds=latency) if latency else NO_FAULT
        return FaultDecision(
            latency_seconds=latency,
            kind=outcome.kind,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            http_status=outcome.http_status,
        )

    def _latency(self, rule: FaultRule) -> float:
        if not rule.latency_ms and not rule.latency_jitter_ms:
            return 0.0
        jitter = self._rng.random() * rule.latency_jitter_ms
        return (rule.latency_ms + jitter) / 1000.0

    def _outcome(self, rule: FaultRule) -> FaultDecision | None:
        if not (rule.drop_rate or rule.http_error_rate or rule.error_rate):
            return None
        roll = self._rng.random()
        if roll < rule.drop_rate:
            return FaultDecision(kind=FaultKind.DROP)
        roll -= rule.drop_rate
        if roll < rule.http_error_rate:
            return FaultDecision(
                kind=FaultKind.HTTP_ERROR, http_status=rule.http_status
            )
        roll -= rule.http_error_rate
        if roll < rule.error_rate:
            return FaultDecision(
                kind=FaultKind.ERROR_CODE,
                error_code=rule.error_code,
                error_message=rule.error_message,
            )
        return None
