"""CloudEvents 1.0 in Kafka binary mode.

Attributes travel as ``ce_*`` headers, the JSON payload is the message value, and two extensions
carry the correlation id and the W3C ``traceparent``. ``Envelope`` is what handlers receive.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gmv_common.bus.base import Message

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"


class MalformedMessageError(ValueError):
    """A message that is not a CloudEvent we understand; it goes to the dead-letter topic."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    type: str
    source: str
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    traceparent: str | None = None
    data: dict[str, Any]

    def headers(self) -> dict[str, str]:
        headers = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_time": self.time.isoformat(),
            "content-type": CONTENT_TYPE,
        }
        if self.subject:
            headers["ce_subject"] = self.subject
        if self.correlation_id:
            headers["ce_correlationid"] = self.correlation_id
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        return headers

    def body(self) -> bytes:
        return orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_message(cls, message: Message) -> Envelope:
        headers = message.headers
        try:
            data = orjson.loads(message.value)
        except orjson.JSONDecodeError as exc:
            raise MalformedMessageError(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedMessageError("value is not a JSON object")
        for required in ("ce_id", "ce_type", "ce_source"):
            if not headers.get(required):
                raise MalformedMessageError(f"header {required} is missing")
        try:
            time = datetime.fromisoformat(headers.get("ce_time") or "")
        except ValueError:
            time = datetime.now(UTC)
        return cls(
            id=headers["ce_id"][:64],
            type=headers["ce_type"],
            source=headers["ce_source"],
            subject=headers.get("ce_subject"),
            time=time if time.tzinfo else time.replace(tzinfo=UTC),
            correlation_id=headers.get("ce_correlationid"),
            traceparent=headers.get("traceparent"),
            data=data,
        )
