"""Request and response models of the auth endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class MembershipOut(BaseModel):
    workspace_id: int
    workspace_name: str
    role: str


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str | None
    is_platform_admin: bool


class MeOut(BaseModel):
    user: UserOut
    workspaces: list[MembershipOut]
    auth_method: str


class LoginOut(MeOut):
    csrf_token: str = Field(
        description="Send it as X-CSRF-Token on writes made with the session cookie."
    )
    expires_at: datetime


class TokenCreateRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    token_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The token itself; shown only in this answer.")


class TokenListOut(BaseModel):
    items: list[TokenOut]


class SessionOut(BaseModel):
    id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None = Field(description="The client address that logged in.")
    user_agent: str | None = Field(description="The browser that logged in.")
    current: bool = Field(description="True for the session of this very request.")


class SessionListOut(BaseModel):
    items: list[SessionOut]


class SessionsRevokedOut(BaseModel):
    revoked: int = Field(description="How many sessions were ended.")
