"""Users, login sessions, CSRF tokens, personal API tokens and login throttling.

- Passwords are hashed with argon2id.
- A login session is a random id, sent to the browser signed (itsdangerous) in the session
  cookie; the database keeps only its SHA-256, an expiry and a revocation time, so logout,
  the user (from any of their sessions or with an API token) and an administrator can end
  it on the server.
- Cookie-authenticated writes must echo the session's CSRF token in ``X-CSRF-Token``
  (double submit: the token is also in the readable ``gmv_csrf`` cookie). Bearer requests
  carry no ambient credential and are exempt.
- API tokens (``gmv_…``) are shown once and stored as SHA-256.
- Failed logins are counted per e-mail and per client address in ``login_attempts`` (shared
  by every gateway); past the limit the key is locked for a while: 429 ``LOGIN_THROTTLED``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.base import utcnow
from gmv_common.db.models import ApiToken, LoginAttempt, User, UserSession
from gmv_common.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ValidationFailedError,
)
from gmv_common.logging import get_logger
from gmv_common.settings import Settings
from gmv_gateway import audit
from gmv_gateway.audit import Actor
from gmv_gateway.auth import repository

log = get_logger(__name__)

API_TOKEN_PREFIX = "gmv_"
CSRF_COOKIE_NAME = "gmv_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_SALT = "gmv.session"

EMAIL_MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 20
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_LOCK = timedelta(minutes=15)
SEEN_UPDATE_INTERVAL = timedelta(minutes=1)

_hasher = PasswordHasher()
# Verifying against this keeps an unknown e-mail as slow as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    user: User
    via: str  # "session" or "token"
    session_row_id: int | None = None
    token_id: int | None = None
    csrf_token_hash: str | None = None
    ip: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user.id, ip=self.ip)


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    cookie_value: str
    csrf_token: str
    expires_at: datetime


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    display_name: str | None = None,
    is_platform_admin: bool = False,
) -> User:
    """A new active user; 409 ``EMAIL_TAKEN`` when the e-mail is already registered."""
    email = normalize_email(email)
    if len(password) < 8:
        raise ValidationFailedError(
            "a password needs at least 8 characters", code="PASSWORD_TOO_SHORT"
        )
    if await repository.user_by_email(session, email) is not None:
        raise ConflictError("this e-mail is already registered", code="EMAIL_TAKEN")
    user = User(
        email=email,
        display_name=display_name,
        password_hash=hash_password(password),
        is_platform_admin=is_platform_admin,
        is_active=True,
    )
    session.add(user)
    await session.flush()
    log.info("auth.user_created", user_id=user.id)
    return user


async def set_password(session: AsyncSession, *, user: User, password: str) -> None:
    """Replace the password and end every session of the user."""
    if len(password) < 8:
        raise ValidationFailedError(
            "a password needs at least 8 characters", code="PASSWORD_TOO_SHORT"
        )
    user.password_hash = hash_password(password)
    await repository.revoke_sessions_of(session, user.id, utcnow())
    await session.flush()


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=SESSION_SALT)


def _throttle_keys(email: str, client_ip: str | None) -> dict[str, int]:
    keys = {f"email:{email}": EMAIL_MAX_FAILURES}
    if client_ip:
        keys[f"ip:{client_ip}"] = ADDRESS_MAX_FAILURES
    return keys


async def check_login_throttle(
    session: AsyncSession, *, email: str, client_ip: str | None
) -> None:
    now = utcnow()
    keys = _throttle_keys(normalize_email(email), client_ip)
    attempts = await repository.login_attempts(session, list(keys))
    retry_after = 0
    for row in attempts.values():
        if row.locked_until is not None and row.locked_until > now:
            retry_after = max(
                retry_after, int((row.locked_until - now).total_seconds())
            )
    if retry_after:
        raise RateLimitedError(
            "too many failed logins; try again later",
            code="LOGIN_THROTTLED",
            retry_after=retry_after + 1,
        )


async def record_login_failure(
    session: AsyncSession, *, email: str, client_ip: str | None
) -> None:
    """Count a failed login against the e-mail and the address (own transaction)."""
    now = utcnow()
    email = normalize_email(email)
    limits = _throttle_keys(email, client_ip)
    attempts = await repository.login_attempts(session, list(limits))
    for key, limit in limits.items():
        row = attempts.get(key)
        if row is None:
            row = LoginAttempt(throttle_key=key, failures=0, window_started_at=now)
            session.add(row)
        if now - row.window_started_at > THROTTLE_WINDOW:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + THROTTLE_LOCK
            log.warning("auth.login_locked", throttle_kind=key.split(":", 1)[0])
    audit.record(
        session,
        action="auth.login_failed",
        actor=Actor(user_id=None, ip=client_ip),
        details={"email_hash": sha256_hex(email)[:16]},
    )
    await session.flush()


async def login(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    client_ip: str | None,
    user_agent: str | None,
) -> LoginResult:
    """Check the password and open a server-side session; 401 ``INVALID_CREDENTIALS``."""
    email = normalize_email(email)
    await check_login_throttle(session, email=email, client_ip=client_ip)
    user = await repository.user_by_email(session, email)
    if user is None:
        _password_matches(_DUMMY_HASH, password)
        raise AuthError("e-mail or password is wrong", code="INVALID_CREDENTIALS")
    if not _password_matches(user.password_hash, password) or not user.is_active:
        raise AuthError("e-mail or password is wrong", code="INVALID_CREDENTIALS")

    now = utcnow()
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.cookie_max_age)
    session.add(
        UserSession(
            session_hash=sha256_hex(session_id),
            csrf_token_hash=sha256_hex(csrf_token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
            ip=client_ip,
            user_agent=(user_agent or "")[:256] or None,
        )
    )
    user.last_login_at = now
    attempts = await repository.login_attempts(session, [f"email:{email}"])
    for row in attempts.values():
        await session.delete(row)
    audit.record(
        session,
        action="auth.login",
        actor=Actor(user_id=user.id, ip=client_ip),
        target_type="user",
        target_id=user.id,
    )
    await session.flush()
    log.info("auth.login", user_id=user.id)
    return LoginResult(
        user=user,
        cookie_value=_serializer(settings).dumps(session_id),
        csrf_token=csrf_token,
        expires_at=expires_at,
    )


async def logout(session: AsyncSession, principal: Principal) -> None:
    if principal.session_row_id is not None:
        row = await session.get(UserSession, principal.session_row_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
    audit.record(
        session,
        action="auth.logout",
        actor=principal.actor,
        target_type="user",
        target_id=principal.user.id,
    )
    await session.flush()


async def principal_from_cookie(
    session: AsyncSession, settings: Settings, cookie_value: str, *, ip: str | None
) -> Principal:
    try:
        session_id = _serializer(settings).loads(
            cookie_value, max_age=settings.cookie_max_age
        )
    except BadSignature as exc:
        raise AuthError("the session is not valid", code="SESSION_INVALID") from exc
    if not isinstance(session_id, str):
        raise AuthError("the session is not valid", code="SESSION_INVALID")
    found = await repository.session_with_user(session, sha256_hex(session_id))
    now = utcnow()
    if found is None:
        raise AuthError("the session is not valid", code="SESSION_INVALID")
    row, user = found
    if row.revoked_at is not None or row.expires_at <= now or not user.is_active:
        raise AuthError("the session has ended; log in again", code="SESSION_EXPIRED")
    if now - row.last_seen_at > SEEN_UPDATE_INTERVAL:
        row.last_seen_at = now
    return Principal(
        user=user,
        via="session",
        session_row_id=row.id,
        csrf_token_hash=row.csrf_token_hash,
        ip=ip,
    )


async def principal_from_token(
    session: AsyncSession, token: str, *, ip: str | None
) -> Principal:
    if not token.startswith(API_TOKEN_PREFIX):
        raise AuthError("the API token is not valid", code="TOKEN_INVALID")
    found = await repository.token_with_user(session, sha256_hex(token))
    now = utcnow()
    if found is None:
        raise AuthError("the API token is not valid", code="TOKEN_INVALID")
    row, user = found
    expired = row.expires_at is not None and row.expires_at <= now
    if row.revoked_at is not None or expired or not user.is_active:
        raise AuthError("the API token is revoked or expired", code="TOKEN_INVALID")
    if row.last_used_at is None or now - row.last_used_at > SEEN_UPDATE_INTERVAL:
        row.last_used_at = now
    return Principal(user=user, via="token", token_id=row.id, ip=ip)


def check_csrf(principal: Principal, method: str, header_value: str | None) -> None:
    """Cookie-authenticated writes must echo the session's CSRF token."""
    if principal.via != "session" or method in SAFE_METHODS:
        return
    expected = principal.csrf_token_hash or ""
    given = sha256_hex(header_value) if header_value else ""
    if not given or not hmac.compare_digest(given, expected):
        raise ForbiddenError(
            "missing or wrong X-CSRF-Token header for a cookie-authenticated write",
            code="CSRF_FAILED",
        )


async def create_api_token(
    session: AsyncSession,
    *,
    user_id: int,
    name: str,
    expires_at: datetime | None = None,
    actor: Actor | None = None,
) -> tuple[ApiToken, str]:
    """A new personal API token; the plaintext is returned once and never stored."""
    plaintext = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        name=name,
        token_prefix=plaintext[:12],
        token_hash=sha256_hex(plaintext),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        action="auth.token_created",
        actor=actor or Actor(user_id=user_id),
        target_type="api_token",
        target_id=row.id,
        details={"name": name},
    )
    log.info("auth.token_created", user_id=user_id, token_id=row.id)
    return row, plaintext


async def list_api_tokens(session: AsyncSession, user_id: int) -> Sequence[ApiToken]:
    return await repository.tokens_of(session, user_id)


async def revoke_api_token(
    session: AsyncSession, principal: Principal, token_id: int
) -> ApiToken:
    row = await repository.token_of(session, principal.user.id, token_id)
    if row is None:
        raise NotFoundError("API token not found", details={"resource": "api_token"})
    await _revoke(session, principal, row, action="auth.token_revoked")
    return row


async def list_sessions(session: AsyncSession, user_id: int) -> Sequence[UserSession]:
    """The user's active login sessions, newest first."""
    return await repository.active_sessions_of(session, user_id, utcnow())


async def revoke_session(
    session: AsyncSession, principal: Principal, session_id: int
) -> UserSession:
    """End one of the caller's sessions; another user's session is 404 like a missing one."""
    row = await repository.session_of(session, principal.user.id, session_id)
    if row is None:
        raise NotFoundError("session not found", details={"resource": "session"})
    await _revoke(session, principal, row, action="auth.session_revoked")
    return row


async def _revoke(
    session: AsyncSession,
    principal: Principal,
    row: ApiToken | UserSession,
    *,
    action: str,
) -> None:
    """Mark a token or session of the caller revoked, once, with its audit record."""
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        target_type = "api_token" if isinstance(row, ApiToken) else "session"
        audit.record(
            session,
            action=action,
            actor=principal.actor,
            target_type=target_type,
            target_id=row.id,
        )
        log.info(action, user_id=principal.user.id, target_id=row.id)
    await session.flush()


async def revoke_other_sessions(
    session: AsyncSession, principal: Principal
) -> list[int]:
    """End every active session of the caller but the current one (all, with a token)."""
    revoked = await repository.revoke_active_sessions(
        session, principal.user.id, utcnow(), keep_id=principal.session_row_id
    )
    audit.record(
        session,
        action="auth.sessions_revoked_others",
        actor=principal.actor,
        target_type="user",
        target_id=principal.user.id,
        details={"revoked": len(revoked)},
    )
    await session.flush()
    log.info(
        "auth.sessions_revoked_others", user_id=principal.user.id, revoked=len(revoked)
    )
    return revoked
