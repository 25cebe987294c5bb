"""The last stored options documents this process served, kept for a couple of seconds.

A dropdown page polled by many users would otherwise read the same document (often hundreds
of kilobytes) from the database on every request. Entries are dropped as soon as this
process hears ``OptionsUpdated`` for the binding (every gateway process consumes those
events), and are fresh for ``TTL_SECONDS`` only, so a lost event costs at most that much
staleness.

After that the entry is revalidated, not reloaded: one query for the stored ETag, and the
bytes are reloaded only when it changed. Concurrent misses for one binding share one load
(``load``), and the entry keeps being served while that load runs, so a page polled by a
hundred clients costs one query per ``TTL_SECONDS`` and never stalls them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

TTL_SECONDS = 2.0
MAX_ENTRIES = 256

Key = tuple[int, int]


@dataclass(frozen=True, slots=True)
class CachedDocument:
    etag: str
    body: bytes
    gzip_body: bytes
    # Ready-made answers by If-None-Match and Accept-Encoding, filled by ``options.edge``.
    answers: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


Loader = Callable[[CachedDocument | None], Awaitable[CachedDocument | None]]


class DocumentCache:
    def __init__(
        self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[Key, tuple[float, CachedDocument]] = {}
        self._loading: dict[Key, asyncio.Future[CachedDocument | None]] = {}
        # Bumped by ``invalidate``: a load that started before it must not store.
        self._generation = 0

    def get(self, workspace_id: int, auth_id: int) -> CachedDocument | None:
        """The entry while it is fresh, or while it is being revalidated."""
        key = (workspace_id, auth_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic() and key not in self._loading:
            return None
        return entry[1]

    def entry(self, key: Key) -> tuple[float, CachedDocument] | None:
        """The stored ``(expires, document)`` pair, however old; each ``put`` makes a new one."""
        return self._entries.get(key)

    def stale(self, workspace_id: int, auth_id: int) -> CachedDocument | None:
        """The entry however old: until ``invalidate``, only revalidation can replace it."""
        entry = self._entries.get((workspace_id, auth_id))
        return None if entry is None else entry[1]

    async def load(
        self, workspace_id: int, auth_id: int, loader: Loader
    ) -> CachedDocument | None:
        """The fresh entry, else what ``loader`` returns, given the stale entry if any.

        Callers arriving while a load runs wait for it instead of starting their own.
        """
        key = (workspace_id, auth_id)
        fresh = self.get(workspace_id, auth_id)
        if fresh is not None:
            return fresh
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedDocument | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._loading[key] = future
        generation = self._generation
        try:
            stale = self._entries.get(key)
            document = await loader(stale[1] if stale else None)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: only the waiters re-raise it
            raise
        else:
            if document is None:
                self._entries.pop(key, None)
            elif generation == self._generation:
                self.put(workspace_id, auth_id, document)
            future.set_result(document)
            return document
        finally:
            self._loading.pop(key, None)

    def put(self, workspace_id: int, auth_id: int, document: CachedDocument) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[(workspace_id, auth_id)] = (
            time.monotonic() + self._ttl,
            document,
        )

    def invalidate(self, workspace_id: int, auth_id: int) -> None:
        self._generation += 1
        self._entries.pop((workspace_id, auth_id), None)
