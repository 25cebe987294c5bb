"""Bad input: fuzzed and hostile requests on every route, poison messages on every topic.

- schemathesis generates valid and invalid requests for every operation of the gateway's
  OpenAPI document (path ids pinned to a real workspace and binding so requests reach the
  logic): no answer may be a 5xx and every answer must match its declared schema.
- Hand-written hostile inputs (huge page sizes, unicode, SQL-ish strings, wrong JSON types,
  malformed and oversized bodies) on every route: 4xx with the error envelope (HEAD answers
  carry no body), never 5xx.
- Malformed and unknown messages produced with aiokafka on every topic: the consumers
  dead-letter what they cannot read and keep going — a sync requested afterwards completes.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from e2e_support import Stack, Tenant, store_pairs, wait_until
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from gmv_common.bus import topics

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]

EXAMPLES_PER_OPERATION = 3
# Fuzzing these would end the fuzzer's own access, not test anything more.
SKIPPED = {
    ("DELETE", "/api/v1/auth/tokens/{token_id}"),
    ("POST", "/api/v1/auth/logout"),
}
HOSTILE_STRINGS = [
    "1' OR '1'='1",
    "1; DROP TABLE users; --",
    "ünïcødé 😀 \u202e",
    "%00%ff",
    "9" * 400,
    "-1",
]
HOSTILE_QUERIES = [
    {"page_size": "1000000000", "page": "-5"},
    {"page_size": "abc", "page": "1e309"},
    {"sort": "name; DROP TABLE x", "q": "' OR 1=1 --", "status": "😀"},
    {"page": "99999999999999999999999"},
]
HOSTILE_BODIES: list[Any] = [
    [],
    "text",
    12,
    {"scope": 12, "mode": ["x"], "options": "y"},
    {"alias": "ä" * 5000, "return_to": "javascript:alert(1)"},
    {"email": "' OR 1=1 --", "password": {"$ne": 1}},
]


@pytest.fixture(scope="module")
async def target(stack: Stack) -> tuple[Tenant, int]:
    tenant = await stack.bootstrap_tenant(name="Fuzz agency")
    await stack.set_provider_qps(1000)
    grant = (await stack.sandbox.advertiser_ids())[18:20]
    auth_id, run_id = await stack.connect_binding(tenant, advertiser_ids=grant)
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    return tenant, auth_id


def _operations(stack: Stack) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]


def _pinned(operation: Any, tenant: Tenant, auth_id: int) -> dict[str, Any]:
    names = {p.name for p in operation.path_parameters}
    known = {"workspace_id": tenant.workspace_id, "auth_id": auth_id}
    return {name: value for name, value in known.items() if name in names}


def _fuzz(operation: Any, mode: GenerationMode, tenant: Tenant, auth_id: int) -> int:
    """Run ``EXAMPLES_PER_OPERATION`` generated cases; return how many were sent."""
    sent = 0
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE:
        checks.append(response_schema_conformance)
    strategy = operation.as_strategy(
        generation_mode=mode, path_parameters=_pinned(operation, tenant, auth_id)
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=tenant.headers, checks=checks, timeout=30)

    try:
        run()
    except Unsatisfiable:
        # An operation without anything to make invalid has no negative cases.
        assert mode is GenerationMode.NEGATIVE
    return sent


@pytest.mark.timeout(600)
async def test_fuzzed_requests_on_every_operation_never_answer_5xx_and_match_schemas(
    stack: Stack, target: tuple[Tenant, int], figures: Callable[[str, Any], None]
) -> None:
    tenant, auth_id = target
    operations = await asyncio.to_thread(_operations, stack)
    started = time.monotonic()
    sent = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += await asyncio.to_thread(_fuzz, operation, mode, tenant, auth_id)

    figures("operations_fuzzed", len(operations))
    figures("fuzzed_requests", sent)
    figures("fuzz_seconds", round(time.monotonic() - started, 1))
    assert len(operations) >= 20


def _hostile_requests(
    path: str, method: str, tenant: Tenant, auth_id: int
) -> list[dict[str, Any]]:
    real = path.replace("{workspace_id}", str(tenant.workspace_id)).replace(
        "{auth_id}", str(auth_id)
    )
    requests: list[dict[str, Any]] = []
    for text in HOSTILE_STRINGS:
        odd = path
        for name in ("workspace_id", "auth_id", "run_id", "token_id", "user_id"):
            odd = odd.replace("{" + name + "}", text)
        requests.append({"url": odd.replace("{", "").replace("}", "")})
    for query in HOSTILE_QUERIES:
        requests.append({"url": real, "params": query})
    if method in {"POST", "PUT", "PATCH"}:
        for body in HOSTILE_BODIES:
            requests.append({"url": real, "content": json.dumps(body)})
        requests.append({"url": real, "content": b"{not json"})
        requests.append({"url": real, "content": b"{" + b'"a":"x",' * 300_000 + b"}"})
    return requests


async def test_hostile_inputs_on_every_route_answer_4xx_with_the_error_envelope(
    stack: Stack, target: tuple[Tenant, int], figures: Callable[[str, Any], None]
) -> None:
    tenant, auth_id = target
    document = (await stack.http.get("/api/openapi.json")).json()
    headers = {**tenant.headers, "Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    failures: list[str] = []

    for path, item in document["paths"].items():
        for method in item:
            if (method.upper(), path) in SKIPPED:
                continue
            for request in _hostile_requests(path, method.upper(), tenant, auth_id):
                try:
                    answer = await stack.http.request(
                        method.upper(), headers=headers, timeout=20, **request
                    )
                except httpx.TimeoutException:
                    failures.append(f"{method} {request['url']}: timeout")
                    continue
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code >= 500:
                    failures.append(f"{method} {request['url']}: {answer.text[:200]}")
                elif (
                    answer.status_code >= 400
                    and method != "head"
                    and not _is_error_envelope(answer)
                ):
                    failures.append(
                        f"{method} {request['url']}: {answer.status_code} "
                        f"without the error envelope: {answer.text[:200]!r}"
                    )

    figures("hostile_requests_by_status", dict(sorted(statuses.items())))
    assert failures == []


def _is_error_envelope(answer: httpx.Response) -> bool:
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body.get("error", {})) >= {"code", "message"}


POISON: list[tuple[bytes | None, dict[str, str]]] = [
    (b"\x00\xff not json at all", {}),
    (b'{"half": ', {}),
    (json.dumps([1, 2, 3]).encode(), {}),
    (json.dumps({"specversion": "1.0", "id": "x"}).encode(), {}),
    (None, {}),
    (
        json.dumps(
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "e2e",
                "type": "com.example.unknown.v1",
                "time": "2026-01-01T00:00:00Z",
                "datacontenttype": "application/json",
                "data": {"anything": True},
            }
        ).encode(),
        {},
    ),
]


async def test_poison_messages_on_every_topic_are_dead_lettered_and_consumers_go_on(
    stack: Stack, target: tuple[Tenant, int], figures: Callable[[str, Any], None]
) -> None:
    tenant, auth_id = target
    prefix = stack.topic_prefix
    consumed = [
        topics.META_SYNC_COMMANDS,
        topics.PRODUCT_SYNC_COMMANDS,
        topics.SYNC_EVENTS,
        topics.OPTIONS_EVENTS,
        topics.BINDING_EVENTS,
    ]
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        for logical in consumed:
            for value, _ in POISON:
                await producer.send_and_wait(
                    topics.topic_name(prefix, logical), value=value, key=b"poison"
                )
    finally:
        await producer.stop()

    meta = await stack.request_sync(tenant, auth_id, {"scope": "meta"})
    advertiser_id, store_id = (await store_pairs(stack, auth_id))[0]
    product = await stack.request_sync(
        tenant,
        auth_id,
        {"scope": "products", "advertiser_id": advertiser_id, "store_id": store_id},
    )
    for answer in (meta, product):
        assert answer.status_code == 202, answer.text
        run = await stack.wait_finished(tenant, auth_id, answer.json()["run"]["id"])
        assert run["status"] == "succeeded", run

    dead = await _dead_letters(stack, minimum=len(POISON) * 2)
    figures("poison_messages_sent", len(POISON) * len(consumed))
    figures("dead_lettered_by_topic", dead)
    assert all(p.running for p in stack.services.values())
    commands = (topics.META_SYNC_COMMANDS, topics.PRODUCT_SYNC_COMMANDS)
    for logical in commands:
        assert dead.get(topics.topic_name(prefix, logical), 0) >= 4


async def _dead_letters(stack: Stack, *, minimum: int) -> dict[str, int]:
    """Dead letters per original topic, read from the start of the DLQ topic."""
    consumer = AIOKafkaConsumer(
        topics.topic_name(stack.topic_prefix, topics.DEAD_LETTERS),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    counts: dict[str, int] = {}
    try:

        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    origin = headers.get("dlq_original_topic", "?")
                    counts[origin] = counts.get(origin, 0) + 1
            return sum(counts.values()) >= minimum

        await wait_until(enough, timeout=60, interval=0.1, what="dead letters")
    finally:
        await consumer.stop()
    return counts
