"""Request and response models of the workspaces and members endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

WorkspaceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
]


class WorkspaceIn(BaseModel):
    name: WorkspaceName = Field(description="Trimmed; 1 to 120 characters.")


class WorkspaceOut(BaseModel):
    id: int
    name: str
    role: str = Field(description="The caller's role in the workspace.")
    created_at: datetime


class WorkspaceListOut(BaseModel):
    items: list[WorkspaceOut]


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
