"""Request and response models of the members endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class MemberIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    role: Literal["owner", "admin", "member"] = "member"


class MemberOut(BaseModel):
    user_id: int
    email: str
    display_name: str | None
    role: str
    since: datetime


class MemberListOut(BaseModel):
    items: list[MemberOut]
