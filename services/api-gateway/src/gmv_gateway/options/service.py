"""Serve a binding's options document; refresh it on demand without holding a connection.

Reading is lean: with the process's ``DocumentCache`` a repeated read touches no database;
without it a 304 reads only the stored ETag; a 200 serves the stored bytes as they are
(``gmv_options_cache.load_options``), never re-serialized, under their strong ETag. A client
that accepts gzip gets the stored compressed bytes (``Content-Encoding: gzip``) under the tag
with ``-gzip`` appended, since a strong tag names one byte string.

No document yet (the first metadata sync has not finished): 200 with the document's shape,
empty lists, ``"pending": true`` and no ETag, so the SPA renders empty dropdowns and polls.
(``status`` in the document is the binding's status, so "pending" gets its own key.)

``?refresh=1``: request a metadata sync (``trigger="refresh"``), joining the one already
queued or running for the binding, so any number of clicks makes one run. Commit, then wait up
to ``options_refresh_wait_seconds`` for the document to change, woken by ``OptionsUpdated``
events (``OptionsWaiter``) and polling with fresh short sessions. Outcomes:

- the document changed: it is served as usual (ETag, ``X-Options-Refresh: updated``);
- the run finished and nothing changed: the current document (``X-Options-Refresh: unchanged``);
- the run failed: the current document plus ``"refresh": "failed"`` and ``error_code``;
- time ran out: the current document plus ``"refresh": "timeout"``, the ``idempotency_key``
  and ``run_id`` of the run to follow (``GET …/sync-runs/{run_id}``).

A body with added keys is not the stored document, so it carries no ETag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import Binding
from gmv_common.logging import get_context, get_logger
from gmv_common.runtime import Runtime
from gmv_common.sync.runs import request_meta_sync
from gmv_gateway import audit
from gmv_gateway.bindings.service import require_binding
from gmv_gateway.dependencies import WorkspaceAccess
from gmv_gateway.options import repository
from gmv_gateway.options.cache import CachedDocument, DocumentCache
from gmv_gateway.options.waiter import OptionsWaiter
from gmv_gateway.sync.service import require_usable
from gmv_options_cache.schemas import etag_matches
from gmv_options_cache.service import load_options

log = get_logger(__name__)

POLL_SECONDS = 0.25
# The options cache rebuilds after the run's completion event; give it this long.
REBUILD_GRACE_SECONDS = 0.5
FINAL_STATUSES = frozenset({"succeeded", "partial", "failed"})


@dataclass(frozen=True, slots=True)
class OptionsReply:
    body: bytes
    etag: str | None
    not_modified: bool = False
    refresh: str | None = None
    run_id: int | None = None
    gzip: bool = False


def gzip_etag(etag: str) -> str:
    """The strong tag of the gzip representation (its bytes differ from the JSON's)."""
    return etag[:-1] + '-gzip"' if etag.endswith('"') else etag + "-gzip"


def accepts_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            return not (params and quality in ("0", "0.0", "0.00", "0.000"))
    return False


def pending_document(binding: Binding) -> bytes:
    return orjson.dumps(
        {
            "workspace_id": binding.workspace_id,
            "auth_id": binding.id,
            "alias": binding.alias,
            "status": binding.status,
            "bcs": [],
            "advertisers": [],
            "stores": [],
            "links": {
                "bc_to_advertisers": {},
                "advertiser_to_stores": {},
                "store_to_advertisers": {},
            },
            "version": 0,
            "synced_at": None,
            "run_id": None,
            "pending": True,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def with_keys(body: bytes, extra: dict[str, Any]) -> bytes:
    """The document with keys appended, without parsing it again."""
    trimmed = body.rstrip()
    addition = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS)[1:-1]
    if trimmed == b"{}":
        return b"{" + addition + b"}"
    return trimmed[:-1] + b"," + addition + b"}"


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    return etag_matches(if_none_match, etag) or etag_matches(
        if_none_match, gzip_etag(etag)
    )


def reply_from_document(
    document: CachedDocument, *, if_none_match: str | None, gzip_ok: bool
) -> OptionsReply:
    served = gzip_etag(document.etag) if gzip_ok else document.etag
    if _not_modified(if_none_match, document.etag):
        return OptionsReply(body=b"", etag=served, not_modified=True, gzip=gzip_ok)
    body = document.gzip_body if gzip_ok else document.body
    return OptionsReply(body=body, etag=served, gzip=gzip_ok)


async def read_options(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    if_none_match: str | None,
    gzip_ok: bool = False,
    cache: DocumentCache | None = None,
) -> OptionsReply:
    if cache is None:
        etag = await repository.options_etag(session, workspace_id, auth_id)
        if etag is not None and _not_modified(if_none_match, etag):
            served = gzip_etag(etag) if gzip_ok else etag
            return OptionsReply(body=b"", etag=served, not_modified=True, gzip=gzip_ok)
        document = await _load_document(session, workspace_id, auth_id, None)
    else:

        async def load(stale: CachedDocument | None) -> CachedDocument | None:
            return await _load_document(session, workspace_id, auth_id, stale)

        document = await cache.load(workspace_id, auth_id, load)
    if document is None:
        binding = await require_binding(session, workspace_id, auth_id)
        return OptionsReply(body=pending_document(binding), etag=None)
    return reply_from_document(document, if_none_match=if_none_match, gzip_ok=gzip_ok)


async def revalidate_document(
    runtime: Runtime, cache: DocumentCache, workspace_id: int, auth_id: int
) -> None:
    """Revalidate the cached document on a session of its own (``options.edge``)."""

    async def load(stale: CachedDocument | None) -> CachedDocument | None:
        async with runtime.sessionmaker() as session:
            return await _load_document(session, workspace_id, auth_id, stale)

    await cache.load(workspace_id, auth_id, load)


async def _load_document(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    stale: CachedDocument | None,
) -> CachedDocument | None:
    """The stored document; ``stale`` again when its ETag is still the stored one."""
    if stale is not None:
        etag = await repository.options_etag(session, workspace_id, auth_id)
        if etag == stale.etag:
            return stale
    stored = await load_options(session, workspace_id, auth_id)
    if stored is None:
        return None
    return CachedDocument(
        etag=stored.etag, body=stored.body, gzip_body=stored.gzip_body
    )


async def refresh_options(
    runtime: Runtime,
    waiter: OptionsWaiter,
    access: WorkspaceAccess,
    auth_id: int,
    *,
    if_none_match: str | None,
    gzip_ok: bool = False,
    cache: DocumentCache | None = None,
) -> OptionsReply:
    workspace_id = access.workspace_id
    with waiter.subscribe(workspace_id, auth_id) as woken:
        async with runtime.sessionmaker.begin() as session:
            binding = await require_binding(session, workspace_id, auth_id)
            require_usable(binding)
            before = await repository.options_etag(session, workspace_id, auth_id)
            requested = await request_meta_sync(
                session,
                workspace_id=workspace_id,
                auth_id=auth_id,
                trigger="refresh",
                topic_prefix=runtime.settings.kafka_topic_prefix,
                user_id=access.user_id,
                correlation_id=get_context().get("correlation_id"),
            )
            run_id = requested.run.id
            if requested.created:
                audit.record(
                    session,
                    action="sync.requested",
                    actor=access.actor,
                    workspace_id=workspace_id,
                    target_type="sync_run",
                    target_id=run_id,
                    details={"auth_id": auth_id, "scope": "meta", "trigger": "refresh"},
                )
        key = requested.run.idempotency_key
        outcome, error_code = await _wait_for_change(
            runtime, woken, workspace_id, auth_id, run_id, before
        )
    log.info("options.refresh", auth_id=auth_id, run_id=run_id, outcome=outcome)
    if cache is not None:
        cache.invalidate(workspace_id, auth_id)

    served_as_stored = outcome in ("updated", "unchanged")
    async with runtime.sessionmaker() as session:
        current = await read_options(
            session,
            workspace_id,
            auth_id,
            if_none_match=if_none_match if served_as_stored else None,
            gzip_ok=gzip_ok and served_as_stored,
            cache=cache,
        )
    if served_as_stored:
        return OptionsReply(
            body=current.body,
            etag=current.etag,
            not_modified=current.not_modified,
            refresh=outcome,
            run_id=run_id,
            gzip=current.gzip,
        )
    extra: dict[str, Any] = {
        "refresh": outcome,
        "idempotency_key": key,
        "run_id": run_id,
    }
    if error_code:
        extra["error_code"] = error_code
    return OptionsReply(
        body=with_keys(current.body, extra), etag=None, refresh=outcome, run_id=run_id
    )


async def _wait_for_change(
    runtime: Runtime,
    woken: asyncio.Event,
    workspace_id: int,
    auth_id: int,
    run_id: int,
    before: str | None,
) -> tuple[str, str | None]:
    deadline = time.monotonic() + runtime.settings.options_refresh_wait_seconds
    finished_seen: float | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout=min(POLL_SECONDS, remaining))
        woken.clear()
        async with runtime.sessionmaker() as session:
            etag = await repository.options_etag(session, workspace_id, auth_id)
            state = await repository.run_state(session, run_id)
        if etag is not None and etag != before:
            return "updated", None
        if state is not None and state[0] == "failed":
            return "failed", state[1]
        if state is not None and state[0] in FINAL_STATUSES:
            finished_seen = finished_seen or time.monotonic()
            if time.monotonic() - finished_seen >= REBUILD_GRACE_SECONDS:
                return "unchanged", None
