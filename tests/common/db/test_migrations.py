"""One Alembic history for MariaDB and SQLite: it goes down and up again, and matches the models."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from gmv_common.db import migrate
from gmv_common.db.models import TASK_KINDS, Base, TaskCatalogEntry
from gmv_common.db.session import create_null_pool_engine


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def migrated_url(request: pytest.FixtureRequest) -> str:
    """A database already upgraded to head: a SQLite file or one on the real MariaDB."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


def head_revision() -> str:
    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert len(heads) == 1, f"the history has several heads: {heads}"
    return heads[0]


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def inspect_database(url: str) -> tuple[list[Any], set[str], list[str]]:
    """Schema differences to the models, the tables there, and the task catalog's kinds."""
    engine = create_null_pool_engine(url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            tables = await connection.run_sync(_tables)
            kinds = []
            if TaskCatalogEntry.__tablename__ in tables:
                kinds = list(
                    await connection.scalars(
                        select(TaskCatalogEntry.task_kind).order_by(
                            TaskCatalogEntry.task_kind
                        )
                    )
                )
    finally:
        await engine.dispose()
    return differences, tables, kinds


def test_the_history_has_a_single_head() -> None:
    assert head_revision()


async def test_upgraded_schema_matches_the_models_and_has_the_task_catalog(
    migrated_url: str,
) -> None:
    differences, tables, kinds = await inspect_database(migrated_url)

    assert differences == []
    assert set(Base.metadata.tables) <= tables
    assert kinds == sorted(TASK_KINDS)
    assert await migrate.current_revision(migrated_url) == head_revision()


async def test_downgrade_to_base_then_upgrade_again_restores_the_same_schema(
    migrated_url: str,
) -> None:
    await migrate.downgrade(migrated_url, "base")
    _, tables_at_base, _ = await inspect_database(migrated_url)
    revision_at_base = await migrate.current_revision(migrated_url)
    await migrate.upgrade(migrated_url)
    differences, tables, kinds = await inspect_database(migrated_url)

    assert tables_at_base <= {"alembic_version"}
    assert revision_at_base is None
    assert differences == []
    assert set(Base.metadata.tables) <= tables
    assert kinds == sorted(TASK_KINDS)
    assert await migrate.current_revision(migrated_url) == head_revision()
