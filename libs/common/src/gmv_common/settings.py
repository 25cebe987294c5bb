"""Process settings, read from the environment and an optional ``.env`` file.

One ``Settings`` class serves every process; a service reads only what it needs. Values are
validated at start-up, and ``Settings.check_production()`` refuses unsafe defaults in production.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

INSECURE_SECRET_KEY = "dev-insecure-secret-key-change-me"
# 32 zero-ish bytes, url-safe base64: usable locally, refused in production.
INSECURE_CRYPTO_KEY = base64.urlsafe_b64encode(
    b"gmv-dev-insecure-crypto-key-32b!"
).decode()


def _env_files() -> tuple[str, ...]:
    # `.env` in the working directory (the project root under `make`), then beside the project.
    here = Path.cwd() / ".env"
    return (str(here),)


class UnsafeProductionSettingsError(RuntimeError):
    """A production start found a default secret; the message names the variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=_env_files(),
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
    )

    # General
    environment: Literal["development", "test", "production"] = "development"
    app_version: str = "0.1.0"
    service_name: str = "gmv"
    log_level: str = "INFO"
    log_format: Literal["console", "json", "auto"] = "auto"

    # HTTP / cookies (names as in the older system)
    # NoDecode: the validator below accepts a JSON list or the older comma-separated form.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173"]
    )
    secret_key: str = INSECURE_SECRET_KEY
    cookie_name: str = "gmv_session"
    cookie_max_age: int = 604800
    cookie_secure: bool = False
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    public_base_url: str = "http://127.0.0.1:8000"

    # Database
    database_url: str = "sqlite+aiosqlite:///./gmv-dev.db"
    database_pool_size: int = 10
    database_max_overflow: int = 10
    database_pool_timeout: float = 5.0
    database_echo: bool = False

    # Bus
    bus_backend: Literal["kafka", "memory"] = "memory"
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_topic_prefix: str = "gmv"
    kafka_partitions: int = 12
    kafka_replication_factor: int = 1
    kafka_client_id: str = "gmv"
    # How long one publish waits for the broker before failing (the outbox relay retries).
    kafka_delivery_timeout_seconds: float = 30.0
    consumer_max_attempts: int = 5

    # Crypto: url-safe base64 of 32 bytes per key; versions are keys of the keyring.
    crypto_keys: dict[int, str] = Field(
        default_factory=lambda: {1: INSECURE_CRYPTO_KEY}
    )
    crypto_active_key_version: int = 1

    # TikTok
    tiktok_api_base_url: str = "https://business-api.tiktok.com/open_api/v1.3/"
    tiktok_authorize_url: str = "https://business-api.tiktok.com/portal/auth"
    tiktok_app_id: str = ""
    tiktok_app_secret: str = ""
    tiktok_default_qps: float = 10.0
    tiktok_http_timeout_seconds: float = 15.0
    tiktok_max_attempts: int = 6
    tiktok_retry_initial_seconds: float = 0.5
    tiktok_retry_max_seconds: float = 10.0
    tiktok_oauth_redirect_uri: str = (
        "http://127.0.0.1:8000/api/oauth/tiktok-business/callback"
    )

    # Sync behaviour
    sync_lease_seconds: float = 30.0
    sync_heartbeat_seconds: float = 10.0
    meta_sync_interval_seconds: int = 1800
    # TikTok calls of one meta sync in flight at once; the app's QPS budget still paces them.
    meta_sync_chain_concurrency: int = Field(default=16, ge=1, le=64)
    product_sync_cooldown_seconds: int = 900
    product_auto_sync_min_interval_seconds: int = 900
    product_sync_max_concurrent_runs: int = 4
    product_sync_redispatch_seconds: float = 30.0
    scheduler_tick_seconds: float = 15.0
    options_refresh_wait_seconds: float = 3.0
    idempotency_window_seconds: int = 86400

    # Outbox relay
    outbox_batch_size: int = 200
    outbox_poll_seconds: float = 0.2

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Map the older system's sync URLs onto the async drivers."""
        for sync_prefix in (
            "mysql+pymysql://",
            "mysql://",
            "mariadb+pymysql://",
            "mariadb://",
        ):
            if value.startswith(sync_prefix):
                return "mysql+aiomysql://" + value[len(sync_prefix) :]
        if value.startswith("sqlite:///") or value.startswith("sqlite://"):
            return "sqlite+aiosqlite" + value[len("sqlite") :]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse to start production with a default secret; say which variable to set."""
        if not self.is_production:
            return
        problems = []
        if self.secret_key == INSECURE_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("SECRET_KEY (at least 32 random characters)")
        if INSECURE_CRYPTO_KEY in self.crypto_keys.values():
            problems.append(
                "CRYPTO_KEYS (JSON map of version to url-safe base64 32-byte key)"
            )
        if self.crypto_active_key_version not in self.crypto_keys:
            problems.append(
                "CRYPTO_ACTIVE_KEY_VERSION (must name a key in CRYPTO_KEYS)"
            )
        if problems:
            raise UnsafeProductionSettingsError(
                "refusing to start in production with unsafe settings; set "
                + ", ".join(problems)
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
