"""One correlation id follows a sync from the HTTP request through Kafka to its last event.

What ``docs/operations.md`` ("Following a sync") promises an operator: send
``X-Correlation-ID`` (or read the ``X-Request-ID`` answered), then find the request, the
worker's run, the options rebuild and every message they caused by that one id, in each
service's log lines and in the ``ce_correlationid`` header of each message, with the
request's W3C trace id carried in ``traceparent`` all the way; and see the run finish in the
worker's metrics.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_support import Stack, read_topics

from gmv_common.bus import topics

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]


def _log_events(stack: Stack, service: str, correlation_id: str) -> list[str]:
    """The ``event`` of each JSON log line of ``service`` carrying ``correlation_id``."""
    events = []
    for line in stack.services[service].log_text().splitlines():
        if correlation_id not in line:
            continue
        with_id: dict[str, Any] = json.loads(line)
        if with_id.get("correlation_id") == correlation_id:
            events.append(str(with_id["event"]))
    return events


async def _messages_of(
    stack: Stack, correlation_id: str
) -> dict[str, list[dict[str, str]]]:
    """Headers of every message carrying ``correlation_id``, by logical topic."""
    logical = (topics.META_SYNC_COMMANDS, topics.SYNC_EVENTS, topics.OPTIONS_EVENTS)
    names = {topics.topic_name(stack.topic_prefix, name): name for name in logical}
    found: dict[str, list[dict[str, str]]] = {name: [] for name in logical}
    for record in await read_topics(stack, *logical):
        headers = {key: value.decode() for key, value in record.headers}
        if headers.get("ce_correlationid") == correlation_id:
            found[names[record.topic]].append(headers)
    return found


async def _finished_meta_runs(stack: Stack) -> float:
    """The metadata-sync process's count of succeeded meta runs, from its /metrics."""
    port = stack.ports["metadata-sync"]
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    sample = 'gmv_sync_run_duration_seconds_count{scope="meta",status="succeeded"}'
    for line in metrics.splitlines():
        if line.startswith(sample):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_one_correlation_id_follows_a_sync_through_every_service_and_event(
    stack: Stack, figures: Callable[[str, Any], None]
) -> None:
    tenant = await stack.bootstrap_tenant(name="Tracing agency")
    grant = (await stack.sandbox.advertiser_ids())[18:20]
    auth_id, run_id = await stack.connect_binding(tenant, advertiser_ids=grant)
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    # A change upstream, so the sync rebuilds the options document and announces it.
    await stack.sandbox.admin(
        "PATCH", f"/advertisers/{grant[0]}", json={"name": "Traced advertiser"}
    )
    finished_before = await _finished_meta_runs(stack)
    correlation_id = f"follow-{uuid.uuid4().hex[:12]}"
    trace_id = uuid.uuid4().hex
    answer = await stack.http.post(
        f"{tenant.account(auth_id)}/sync",
        json={"scope": "meta"},
        headers={
            **tenant.headers,
            "X-Correlation-ID": correlation_id,
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
        },
    )
    assert answer.status_code == 202, answer.text
    run = await stack.wait_finished(tenant, auth_id, answer.json()["run"]["id"])
    assert run["status"] == "succeeded", run

    messages = await _messages_of(stack, correlation_id)
    finished_after = await _finished_meta_runs(stack)
    logged = {
        service: _log_events(stack, service, correlation_id)
        for service in ("api-gateway", "metadata-sync", "options-cache")
    }

    assert [len(messages[t]) for t in messages] == [1, 1, 1], messages
    types = {headers["ce_type"] for found in messages.values() for headers in found}
    assert types == {
        "gmv.command.meta_sync.v1",
        "gmv.sync.completed.v1",
        "gmv.options.updated.v1",
    }
    for found in messages.values():
        assert found[0]["traceparent"].split("-")[1] == trace_id
    # The lines docs/operations.md tells an operator to look for.
    assert "http.request" in logged["api-gateway"]
    assert {
        "sync.claimed",
        "meta_sync.started",
        "meta_sync.upstream_read",
        "meta_sync.completed",
        "sync.finished",
    } <= set(logged["metadata-sync"]), logged["metadata-sync"]
    assert "options.changed" in logged["options-cache"], logged["options-cache"]
    assert finished_after == finished_before + 1
    figures("log_lines_with_the_id", {name: len(e) for name, e in logged.items()})
    figures("message_types_with_the_id", sorted(types))
