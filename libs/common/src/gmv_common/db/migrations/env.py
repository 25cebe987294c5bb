"""Alembic environment: one history for MySQL, MariaDB and SQLite.

Run through ``gmv_common.db.migrate`` (which hands over an open connection), or by the ``alembic``
command with ``DATABASE_URL`` set.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from gmv_common.db.models import Base
from gmv_common.db.session import create_null_pool_engine
from gmv_common.settings import Settings

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_null_pool_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(
        _run_async(config.get_main_option("sqlalchemy.url") or Settings().database_url)
    )
