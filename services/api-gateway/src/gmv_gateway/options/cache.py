"""The last stored options documents this process served, for a couple of seconds.

A dropdown page polled by many users would otherwise read the same document (often hundreds
of kilobytes) from the database on every request. Entries are dropped as soon as this
process hears ``OptionsUpdated`` for the binding (every gateway process consumes those
events), and expire after ``TTL_SECONDS`` anyway, so a lost event costs at most that much
staleness.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

TTL_SECONDS = 2.0
MAX_ENTRIES = 256


@dataclass(frozen=True, slots=True)
class CachedDocument:
    etag: str
    body: bytes
    gzip_body: bytes


class DocumentCache:
    def __init__(
        self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[tuple[int, int], tuple[float, CachedDocument]] = {}

    def get(self, workspace_id: int, auth_id: int) -> CachedDocument | None:
        entry = self._entries.get((workspace_id, auth_id))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, workspace_id: int, auth_id: int, document: CachedDocument) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[(workspace_id, auth_id)] = (
            time.monotonic() + self._ttl,
            document,
        )

    def invalidate(self, workspace_id: int, auth_id: int) -> None:
        self._entries.pop((workspace_id, auth_id), None)
