"""The published event contracts (docs/events/) agree with the code that produces the events.

- The committed JSON Schema files are exactly what ``json_schemas()`` renders today.
- ``asyncapi.yaml`` has a channel per topic and a message per event type, on the right topic,
  with payloads pointing at those files and the CloudEvents headers.
- A message built from an envelope turns back into the same envelope, and its payload
  validates against the committed schema.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from gmv_common.bus.base import Message, TopicSpec
from gmv_common.bus.kafka import KafkaBus
from gmv_common.bus.topics import ALL_TOPICS, DEAD_LETTERS, topic_name
from gmv_common.events import EVENT_TYPES, Envelope, EventModel
from gmv_common.events.schemas import json_schemas

DOCS = Path(__file__).resolve().parents[3] / "docs"
EVENTS_DIR = DOCS / "events"
EVENTS_PAGE = DOCS / "events.md"
ASYNCAPI = EVENTS_DIR / "asyncapi.yaml"
PREFIX = "gmv"
REGENERATE = "run `gmv events schemas --out docs/events` and commit the result"

FINISHED_AT = datetime(2026, 12, 3, 14, 5, 6, 789012, tzinfo=UTC)

EXAMPLES: dict[str, dict[str, Any]] = {
    "gmv.command.meta_sync.v1": {
        "workspace_id": 7,
        "auth_id": 42,
        "run_id": 1001,
        "mode": "incremental",
        "trigger": "refresh",
    },
    "gmv.command.product_sync.v1": {
        "workspace_id": 7,
        "auth_id": 42,
        "run_id": 1002,
        "advertiser_id": "7001234567890123456",
        "store_id": "7495123456789012345",
        "bc_id": "7300000000000000001",
        "eligibility": "all",
    },
    "gmv.sync.completed.v1": {
        "workspace_id": 7,
        "auth_id": 42,
        "run_id": 1001,
        "scope": "meta",
        "mode": "full",
        "trigger": "schedule",
        "status": "partial",
        "started_at": FINISHED_AT,
        "finished_at": FINISHED_AT,
        "stats": {"advertisers": {"seen": 3}},
        "changes": {"advertisers": {"added": ["1"], "removed": ["2"]}},
        "errors": [{"code": "RATE_LIMITED", "advertiser_id": "3"}],
    },
    "gmv.sync.failed.v1": {
        "workspace_id": 7,
        "auth_id": 42,
        "run_id": 1003,
        "scope": "products",
        "mode": "full",
        "trigger": "manual",
        "error_code": "TOKEN_INVALID",
        "error_message": "the access token was revoked",
        "finished_at": FINISHED_AT,
    },
    "gmv.options.updated.v1": {
        "workspace_id": 7,
        "auth_id": 42,
        "etag": '"5d41402abc4b2a76"',
        "version": 3,
        "run_id": 1001,
        "synced_at": FINISHED_AT,
    },
    "gmv.binding.changed.v1": {
        "workspace_id": 7,
        "auth_id": 42,
        "change": "status_changed",
        "status": "needs_reauth",
    },
}


def committed_schemas() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text())
        for path in EVENTS_DIR.glob("*.schema.json")
    }


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(ASYNCAPI.read_text())
    return document


def resolve(document: dict[str, Any], reference: str) -> dict[str, Any]:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def field_type(prop: dict[str, Any]) -> str:
    """How the field tables of docs/events.md spell a JSON Schema property's type."""
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(field_type(option) for option in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "string" and prop.get("format") == "date-time":
        return "date-time"
    if kind == "array":
        return f"array of {field_type(prop.get('items', {}))}"
    extra = prop.get("additionalProperties")
    if kind == "object" and isinstance(extra, dict) and extra:
        return f"object of {field_type(extra)}"
    return str(kind)


def documented_fields(page: str, event_type: str) -> list[tuple[str, str, str]]:
    """(field, type, required) rows of the table under ``### `event_type` ``."""
    section = page.split(f"### `{event_type}`", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| (yes|no) \|", section, re.MULTILINE)
    return [(name, kind, required) for name, kind, required in rows]


def example_event(event_type: str) -> EventModel:
    return EVENT_TYPES[event_type].model_validate(EXAMPLES[event_type])


def to_message(envelope: Envelope, event: EventModel) -> Message:
    return Message(
        topic=topic_name(PREFIX, event.topic),
        key=event.key,
        value=envelope.body(),
        headers=envelope.headers(),
        partition=5,
        offset=17,
    )


def test_committed_schema_files_match_the_code() -> None:
    generated = json_schemas()
    committed = committed_schemas()

    assert sorted(committed) == sorted(generated), (
        f"event types and schema files differ: {REGENERATE}"
    )
    for event_type, schema in generated.items():
        # Compare as the CLI writes them, so key order and float formatting count too.
        expected = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        path = EVENTS_DIR / f"{event_type}.schema.json"
        assert path.read_text() == expected, f"{path.name} drifted: {REGENERATE}"


def test_asyncapi_has_a_channel_for_every_topic() -> None:
    addresses = {channel["address"] for channel in asyncapi()["channels"].values()}

    assert addresses == {topic_name(PREFIX, logical) for logical in ALL_TOPICS}


def test_asyncapi_has_a_message_for_every_event_type_on_its_topic() -> None:
    document = asyncapi()
    on_channel: dict[str, str] = {}
    for channel in document["channels"].values():
        for reference in channel["messages"].values():
            message = resolve(document, reference["$ref"])
            on_channel[message["name"]] = channel["address"]

    for event_type, model in EVENT_TYPES.items():
        assert on_channel.get(event_type) == topic_name(PREFIX, model.topic), event_type
    assert set(on_channel) - set(EVENT_TYPES) == {"dead-letter"}
    assert on_channel["dead-letter"] == topic_name(PREFIX, DEAD_LETTERS)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_asyncapi_message_points_at_the_schema_file_and_cloudevents_headers(
    event_type: str,
) -> None:
    document = asyncapi()
    (message,) = [
        message
        for message in document["components"]["messages"].values()
        if message["name"] == event_type
    ]
    headers = resolve(document, message["headers"]["$ref"])
    key = resolve(document, message["bindings"]["kafka"]["key"]["$ref"])
    payload_file = EVENTS_DIR / message["payload"]["$ref"]

    assert payload_file.resolve() == (EVENTS_DIR / f"{event_type}.schema.json")
    assert payload_file.exists()
    assert {"ce_id", "ce_type", "ce_source", "ce_time", "content-type"} <= set(
        headers["required"]
    )
    assert {"ce_subject", "ce_correlationid", "traceparent"} <= set(
        headers["properties"]
    )
    assert key["pattern"] == "^[0-9]+:[0-9]+$"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_events_page_tables_list_every_field_with_its_type(event_type: str) -> None:
    schema = json_schemas()[event_type]
    required = set(schema.get("required", []))
    expected = [
        (name, field_type(prop), "yes" if name in required else "no")
        for name, prop in schema["properties"].items()
    ]

    assert documented_fields(EVENTS_PAGE.read_text(), event_type) == expected


def test_every_event_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_envelope_survives_a_message_round_trip(event_type: str) -> None:
    event = example_event(event_type)
    envelope = Envelope(
        type=event.event_type,
        source="/gmv/tests",
        subject=event.subject,
        time=FINISHED_AT,
        correlation_id="req-7f3a",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        data=event.model_dump(mode="json"),
    )

    message = to_message(envelope, event)
    received = Envelope.from_message(message)

    assert received == envelope
    assert message.key == f"{event.workspace_id}:{event.auth_id}"
    assert EVENT_TYPES[received.type].model_validate(received.data) == event


def test_envelope_without_optional_attributes_round_trips_without_them() -> None:
    event = example_event("gmv.binding.changed.v1")
    envelope = Envelope(
        type=event.event_type, source="/gmv/tests", data=event.model_dump(mode="json")
    )

    message = to_message(envelope, event)

    assert not {"ce_subject", "ce_correlationid", "traceparent"} & set(message.headers)
    assert Envelope.from_message(message) == envelope


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_produced_payload_validates_against_the_committed_schema(
    event_type: str,
) -> None:
    schema = committed_schemas()[event_type]
    event = example_event(event_type)
    envelope = Envelope(
        type=event.event_type, source="/gmv/tests", data=event.model_dump(mode="json")
    )

    payload = json.loads(envelope.body())

    assert jsonschema_rs.validator_for(schema).is_valid(payload)


def test_committed_schema_rejects_a_payload_missing_its_binding() -> None:
    schema = committed_schemas()["gmv.command.meta_sync.v1"]

    assert not jsonschema_rs.validator_for(schema).is_valid({"run_id": 1})


@pytest.mark.kafka
async def test_envelope_survives_a_round_trip_through_the_real_broker(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    event = example_event("gmv.sync.completed.v1")
    envelope = Envelope(
        type=event.event_type,
        source="/gmv/tests",
        subject=event.subject,
        time=FINISHED_AT,
        correlation_id="req-7f3a",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        data=event.model_dump(mode="json"),
    )
    topic = topic_name(topic_prefix, event.topic)
    bus = KafkaBus(kafka_bootstrap, client_id="gmv-tests", replication_factor=1)
    await bus.start()
    try:
        await bus.ensure_topics([TopicSpec(topic, partitions=3)])
        await bus.publish(topic, event.key, envelope.body(), envelope.headers())
        consumer = bus.consumer(f"{topic_prefix}.contracts", [topic])
        await consumer.start()
        try:
            received: list[Message] = []
            for _ in range(30):
                received += await consumer.getmany(timeout=1.0)
                if received:
                    break
        finally:
            await consumer.stop()
    finally:
        await bus.delete_topics([topic])
        await bus.stop()

    (message,) = received
    assert message.key == "7:42"
    assert Envelope.from_message(message) == envelope
