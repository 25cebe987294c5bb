"""A short-lived, per-process cache of who the caller is and their workspace role.

Only reads use it (GET, HEAD, OPTIONS): a dropdown polled by many users costs one query (the
document's ETag) instead of four. Writes always resolve the caller and role from the database.
Logout, token revocation and membership changes clear the entries of this process at once;
another gateway process may keep serving reads to a revoked credential for at most
``TTL_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT")
ValueT = TypeVar("ValueT")

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


class TTLCache(Generic[KeyT, ValueT]):
    def __init__(
        self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[KeyT, tuple[float, ValueT]] = {}

    def get(self, key: KeyT) -> ValueT | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    def entry(self, key: KeyT) -> tuple[float, ValueT] | None:
        """The stored ``(expires, value)`` pair, however old; each ``put`` makes a new one."""
        return self._entries.get(key)

    def due(self, key: KeyT, within: float) -> bool:
        """Whether ``key``'s entry expires within ``within`` seconds (false when absent)."""
        entry = self._entries.get(key)
        return entry is not None and entry[0] - time.monotonic() < within

    def put(self, key: KeyT, value: ValueT) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)

    def discard(self, key: KeyT) -> None:
        self._entries.pop(key, None)

    def discard_where(self, predicate: Callable[[KeyT, ValueT], bool]) -> None:
        for key, (_, value) in list(self._entries.items()):
            if predicate(key, value):
                self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
