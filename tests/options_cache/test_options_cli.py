"""``gmv options rebuild``: one binding or all of them, printing what changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from options_support import make_binding, seed_small_graph, tombstone
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, Store
from gmv_common.db.session import create_null_pool_engine, create_sessionmaker
from gmv_options_cache import load_options
from gmv_options_cache.cli import app


def with_session(url: str, work: Callable[[AsyncSession], object]) -> object:
    async def main() -> object:
        engine = create_null_pool_engine(url)
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)  # type: ignore[misc]
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def two_bindings(session: AsyncSession) -> tuple[Binding, Binding]:
    first = await make_binding(session, last_meta_sync_at=utcnow())
    await seed_small_graph(session, first)
    second = await make_binding(session, alias=None, last_meta_sync_at=utcnow())
    await make_binding(session, alias="Never synced")
    return first, second


def invoke(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["rebuild", *args], env={"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    )
    return result.exit_code, result.output


def test_rebuild_one_binding_prints_changed_then_unchanged(sqlite_url: str) -> None:
    first, _ = with_session(sqlite_url, two_bindings)  # type: ignore[misc]
    target = ["--workspace-id", str(first.workspace_id), "--auth-id", str(first.id)]

    code, output = invoke(sqlite_url, *target)
    again_code, again = invoke(sqlite_url, *target)

    assert code == 0
    assert (
        f"workspace_id={first.workspace_id} auth_id={first.id} changed version=1"
        in (output)
    )
    assert "rebuilt 1 binding(s): 1 changed, 0 unchanged, 0 not found" in output
    assert again_code == 0
    assert f"auth_id={first.id} unchanged version=1" in again
    stored = with_session(
        sqlite_url, lambda s: load_options(s, first.workspace_id, first.id)
    )
    assert stored is not None
    assert stored.etag in again  # type: ignore[attr-defined]


def test_rebuild_all_picks_up_changes_and_leaves_never_synced_bindings_pending(
    sqlite_url: str,
) -> None:
    first, second = with_session(sqlite_url, two_bindings)  # type: ignore[misc]
    assert invoke(sqlite_url, "--all")[0] == 0
    with_session(
        sqlite_url, lambda s: tombstone(s, Store, auth_id=first.id, store_id="8003")
    )

    code, output = invoke(sqlite_url, "--all")

    assert code == 0
    assert f"auth_id={first.id} changed version=2" in output
    assert f"auth_id={second.id} unchanged version=1" in output
    assert "rebuilt 2 binding(s): 1 changed, 1 unchanged, 0 not found" in output


def test_rebuild_of_an_unknown_binding_exits_one(sqlite_url: str) -> None:
    first, _ = with_session(sqlite_url, two_bindings)  # type: ignore[misc]

    code, output = invoke(
        sqlite_url, "--workspace-id", str(first.workspace_id + 99), "--auth-id", "1"
    )

    assert code == 1
    assert "not_found" in output


@pytest.mark.parametrize(
    "args",
    [[], ["--workspace-id", "1"], ["--all", "--auth-id", "2"]],
    ids=["nothing", "workspace-only", "all-and-binding"],
)
def test_rebuild_needs_one_binding_or_all(sqlite_url: str, args: list[str]) -> None:
    code, output = invoke(sqlite_url, *args)

    assert code == 2
    assert "--all" in output or "--auth-id" in output
