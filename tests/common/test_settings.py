"""Settings: the older system's URLs keep working, and production refuses unsafe defaults."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest

from gmv_common.settings import (
    INSECURE_CRYPTO_KEY,
    INSECURE_SECRET_KEY,
    Settings,
    UnsafeProductionSettingsError,
)

STRONG_SECRET = "k3Y-" + "x" * 40
STRONG_CRYPTO_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize(
    ("configured", "used"),
    [
        (
            "mysql+pymysql://gmv:pw@db.internal:3306/gmv?charset=utf8mb4",
            "mysql+aiomysql://gmv:pw@db.internal:3306/gmv?charset=utf8mb4",
        ),
        ("mysql://gmv:pw@db/gmv", "mysql+aiomysql://gmv:pw@db/gmv"),
        ("mariadb+pymysql://gmv:pw@db/gmv", "mysql+aiomysql://gmv:pw@db/gmv"),
        ("mysql+aiomysql://gmv:pw@db/gmv", "mysql+aiomysql://gmv:pw@db/gmv"),
        ("sqlite:///./gmv.db", "sqlite+aiosqlite:///./gmv.db"),
    ],
)
def test_database_url_of_the_older_system_maps_to_the_async_driver(
    make_settings: Callable[..., Settings], configured: str, used: str
) -> None:
    assert make_settings(database_url=configured).database_url == used


def test_database_url_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://app:app@127.0.0.1:3307/app")

    settings = Settings(_env_file=None)

    assert settings.database_url == "mysql+aiomysql://app:app@127.0.0.1:3307/app"


def test_production_with_the_default_secret_key_refuses_to_start_and_names_it(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        environment="production",
        secret_key=INSECURE_SECRET_KEY,
        crypto_keys={1: STRONG_CRYPTO_KEY},
    )

    with pytest.raises(UnsafeProductionSettingsError, match="SECRET_KEY") as raised:
        settings.check_production()

    assert "CRYPTO_KEYS" not in str(raised.value)


def test_production_with_the_default_crypto_key_refuses_to_start_and_names_it(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        environment="production",
        secret_key=STRONG_SECRET,
        crypto_keys={1: STRONG_CRYPTO_KEY, 2: INSECURE_CRYPTO_KEY},
        crypto_active_key_version=1,
    )

    with pytest.raises(UnsafeProductionSettingsError, match="CRYPTO_KEYS") as raised:
        settings.check_production()

    assert "SECRET_KEY" not in str(raised.value)


def test_production_with_every_default_names_every_variable(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(environment="production")

    with pytest.raises(UnsafeProductionSettingsError) as raised:
        settings.check_production()

    assert "SECRET_KEY" in str(raised.value)
    assert "CRYPTO_KEYS" in str(raised.value)


def test_production_with_a_short_secret_key_refuses_to_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        environment="production",
        secret_key="too-short",
        crypto_keys={1: STRONG_CRYPTO_KEY},
    )

    with pytest.raises(UnsafeProductionSettingsError, match="SECRET_KEY"):
        settings.check_production()


def test_production_with_an_unknown_active_key_version_refuses_to_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        environment="production",
        secret_key=STRONG_SECRET,
        crypto_keys={1: STRONG_CRYPTO_KEY},
        crypto_active_key_version=2,
    )

    with pytest.raises(
        UnsafeProductionSettingsError, match="CRYPTO_ACTIVE_KEY_VERSION"
    ):
        settings.check_production()


def test_production_with_own_secrets_starts(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        environment="production",
        secret_key=STRONG_SECRET,
        crypto_keys={1: STRONG_CRYPTO_KEY},
    )

    settings.check_production()


def test_development_tolerates_the_defaults(
    make_settings: Callable[..., Settings],
) -> None:
    make_settings(environment="development").check_production()


@pytest.mark.parametrize(
    ("configured", "origins"),
    [
        (
            "http://localhost:5173, https://app.example.com",
            ["http://localhost:5173", "https://app.example.com"],
        ),
        ('["https://app.example.com"]', ["https://app.example.com"]),
    ],
)
def test_cors_origins_accept_a_comma_list_or_json_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, configured: str, origins: list[str]
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", configured)

    assert Settings(_env_file=None).cors_origins == origins
