"""Developer apps, auth codes and access tokens of the sandbox.

The Marketing API flow: an admin (standing in for the advertiser clicking through
TikTok's consent page) mints an auth code for an app and a set of advertisers; the
app exchanges it once, within its lifetime, at ``oauth2/access_token`` for a
long-term access token; the token works until revoked. A grant of ``None``
advertisers means "every advertiser in the world, now and later", which keeps the
token useful while tests add advertisers.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from random import Random

from gmv_sandbox.errors import InvalidChange, TikTokCode, TikTokError, UnknownObject

DEFAULT_QPS = 10
DEFAULT_AUTH_CODE_TTL_SECONDS = 3600.0
DEFAULT_SCOPE = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
_APP_ID_RANGE = (7_300_000_000_000_000_000, 7_400_000_000_000_000_000)


@dataclass(slots=True)
class DeveloperApp:
    """A TikTok developer app: its credentials and its request budget."""

    app_id: str
    secret: str
    name: str
    qps: int = DEFAULT_QPS
    scope: tuple[int, ...] = DEFAULT_SCOPE


@dataclass(slots=True)
class AuthCode:
    """A single-use code granting ``advertiser_ids`` (``None``: all) to an app."""

    auth_code: str
    app_id: str
    advertiser_ids: frozenset[str] | None
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class AccessToken:
    """A long-term Marketing API token of one app."""

    access_token: str
    app_id: str
    advertiser_ids: frozenset[str] | None
    scope: tuple[int, ...]
    created_at: float
    revoked: bool = False
    revoked_advertisers: set[str] = field(default_factory=set)

    def covers(self, advertiser_id: str) -> bool:
        """Whether the grant names this advertiser (existence is checked elsewhere)."""
        if advertiser_id in self.revoked_advertisers:
            return False
        return self.advertiser_ids is None or advertiser_id in self.advertiser_ids


class Authorizations:
    """Registry of apps, codes and tokens. ``SandboxState`` guards it with its lock."""

    def __init__(
        self, *, seed: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.apps: dict[str, DeveloperApp] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, AccessToken] = {}
        self._clock = clock
        self._rng = Random(seed)

    def create_app(
        self,
        *,
        app_id: str | None = None,
        secret: str | None = None,
        name: str | None = None,
        qps: int = DEFAULT_QPS,
    ) -> DeveloperApp:
        """Register an app; ``qps`` 0 disables the app-wide rate limit."""
        if qps < 0:
            raise InvalidChange("qps must not be negative", qps=qps)
        if app_id is None:
            app_id = str(self._rng.randrange(*_APP_ID_RANGE))
            while app_id in self.apps:
                app_id = str(self._rng.randrange(*_APP_ID_RANGE))
        elif app_id in self.apps:
            raise InvalidChange(f"app {app_id} exists already", app_id=app_id)
        app = DeveloperApp(
            app_id=app_id,
            secret=secret or secrets.token_hex(20),
            name=name or f"Sandbox app {len(self.apps) + 1}",
            qps=qps,
        )
        self.apps[app_id] = app
        return app

    def app(self, app_id: str) -> DeveloperApp:
        """The app, or ``UnknownObject``."""
        app = self.apps.get(app_id)
        if app is None:
            raise UnknownObject(f"no app {app_id}", app_id=app_id)
        return app

    def set_qps(self, app_id: str, qps: int) -> DeveloperApp:
        """Change an app's QPS limit (0: unlimited)."""
        if qps < 0:
            raise InvalidChange("qps must not be negative", qps=qps)
        app = self.app(app_id)
        app.qps = qps
        return app

    def mint_auth_code(
        self,
        app_id: str,
        advertiser_ids: Iterable[str] | None,
        *,
        ttl_seconds: float = DEFAULT_AUTH_CODE_TTL_SECONDS,
    ) -> AuthCode:
        """What TikTok's consent page hands back in ``redirect_uri?auth_code=...``."""
        self.app(app_id)
        code = AuthCode(
            auth_code=secrets.token_hex(20),
            app_id=app_id,
            advertiser_ids=_grant(advertiser_ids),
            expires_at=self._clock() + ttl_seconds,
        )
        self.auth_codes[code.auth_code] = code
        return code

    def check_app(self, app_id: str, secret: str) -> DeveloperApp:
        """The app if ``secret`` is its secret; a 40101 otherwise."""
        app = self.apps.get(app_id)
        if app is None or not secrets.compare_digest(app.secret, secret):
            raise TikTokError(TikTokCode.INVALID_AUTH_PARAMS)
        return app

    def exchange(self, app: DeveloperApp, auth_code: str) -> AccessToken:
        """Spend an auth code of ``app`` for a new access token (40110 if unusable)."""
        code = self.auth_codes.get(auth_code)
        if (
            code is None
            or code.app_id != app.app_id
            or code.used
            or code.expires_at <= self._clock()
        ):
            raise TikTokError(TikTokCode.AUTH_CODE_INVALID)
        code.used = True
        return self.issue_token(app.app_id, code.advertiser_ids)

    def issue_token(
        self,
        app_id: str,
        advertiser_ids: Iterable[str] | None,
        *,
        access_token: str | None = None,
    ) -> AccessToken:
        """Create a token directly, skipping the auth-code step.

        A chosen ``access_token`` value lets a restarted sandbox honour a token a
        client stored earlier.
        """
        app = self.app(app_id)
        if access_token is not None and access_token in self.tokens:
            raise InvalidChange("this access token exists already")
        token = AccessToken(
            access_token=access_token or secrets.token_hex(20),
            app_id=app_id,
            advertiser_ids=_grant(advertiser_ids),
            scope=app.scope,
            created_at=self._clock(),
        )
        self.tokens[token.access_token] = token
        return token

    def live_token(self, access_token: str) -> AccessToken | None:
        """The token if it exists and is not revoked."""
        token = self.tokens.get(access_token)
        if token is None or token.revoked:
            return None
        return token

    def revoke(self, access_token: str) -> AccessToken:
        """Revoke a token (what the advertiser cancelling authorization does)."""
        token = self.tokens.get(access_token)
        if token is None:
            raise UnknownObject("no such access token")
        token.revoked = True
        return token

    def revoke_advertiser(self, access_token: str, advertiser_id: str) -> AccessToken:
        """Withdraw one advertiser from a token, leaving the rest of the grant."""
        token = self.tokens.get(access_token)
        if token is None:
            raise UnknownObject("no such access token")
        token.revoked_advertisers.add(advertiser_id)
        return token

    def live_tokens_of(self, app_id: str) -> list[AccessToken]:
        """Every usable token of an app."""
        return [
            token
            for token in self.tokens.values()
            if token.app_id == app_id and not token.revoked
        ]


def _grant(advertiser_ids: Iterable[str] | None) -> frozenset[str] | None:
    if advertiser_ids is None:
        return None
    return frozenset(str(advertiser_id) for advertiser_id in advertiser_ids)
