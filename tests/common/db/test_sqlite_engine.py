"""The embedded SQLite engine: several processes may open one new file at the same moment."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gmv_common.db.session import create_engine
from gmv_common.settings import Settings

ROUNDS = 60
ENGINES_PER_FILE = 4


async def _write_once(engine: AsyncEngine) -> str:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS marks (id INTEGER)"))
        await connection.execute(text("INSERT INTO marks VALUES (1)"))
        mode = await connection.scalar(text("PRAGMA journal_mode"))
    return str(mode)


async def test_engines_opening_one_new_file_together_all_connect_in_wal_mode(
    tmp_path: Path,
) -> None:
    # Switching a new file to WAL needs the file to itself; SQLite refuses at once, without
    # waiting on busy_timeout, while another engine is switching it. Every engine must connect.
    settings = Settings()
    for round_number in range(ROUNDS):
        url = f"sqlite+aiosqlite:///{tmp_path / f'shared-{round_number}.db'}"
        engines = [
            create_engine(settings, database_url=url) for _ in range(ENGINES_PER_FILE)
        ]
        try:
            modes = await asyncio.gather(*(_write_once(engine) for engine in engines))
        finally:
            for engine in engines:
                await engine.dispose()
        assert modes == ["wal"] * ENGINES_PER_FILE
        async with engines[0].connect() as connection:
            count = await connection.scalar(text("SELECT COUNT(*) FROM marks"))
        await engines[0].dispose()
        assert count == ENGINES_PER_FILE
