"""Audit log rows for every write, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import AuditLogEntry
from gmv_common.logging import get_context


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: the user (None for the system) and the client address."""

    user_id: int | None
    ip: str | None = None


def record(
    session: AsyncSession,
    *,
    action: str,
    actor: Actor,
    workspace_id: int | None = None,
    target_type: str | None = None,
    target_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLogEntry(
            workspace_id=workspace_id,
            actor_user_id=actor.user_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            details=details or None,
            ip=actor.ip,
            request_id=get_context().get("request_id"),
        )
    )
