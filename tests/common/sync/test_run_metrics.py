"""A finished run is counted once, by scope and outcome, when its finish commits."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import seal_access_token, seal_app_secret
from gmv_common.crypto import Keyring
from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, ProviderApp, Workspace
from gmv_common.events.schemas import SyncCompleted
from gmv_common.sync.runs import claim_run, finish_run, request_meta_sync

OWNER = "worker-1"


def _finished(status: str) -> float:
    labels = {"scope": "meta", "status": status}
    value = REGISTRY.get_sample_value("gmv_sync_run_duration_seconds_count", labels)
    return value or 0.0


async def _claimed_run(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> tuple[int, int]:
    keyring = Keyring({1: b"k" * 32}, 1)
    async with sqlite_sessions.begin() as session:
        workspace = Workspace(name="Metrics")
        app = ProviderApp(app_id="app-1", name="App", redirect_uri="http://x/cb")
        seal_app_secret(app, keyring, "secret")
        session.add_all([workspace, app])
        await session.flush()
        binding = Binding(workspace_id=workspace.id, provider_app_id=app.id)
        seal_access_token(binding, keyring, "token")
        session.add(binding)
        await session.flush()
        requested = await request_meta_sync(
            session,
            workspace_id=workspace.id,
            auth_id=binding.id,
            trigger="manual",
            topic_prefix="gmv",
        )
    claimed = await claim_run(
        sqlite_sessions, requested.run.id, owner=OWNER, lease_seconds=60
    )
    assert claimed is not None
    return workspace.id, claimed.id


def _completed(run_id: int) -> SyncCompleted:
    return SyncCompleted(
        workspace_id=1,
        auth_id=1,
        run_id=run_id,
        scope="meta",
        mode="full",
        trigger="manual",
        status="succeeded",
        finished_at=utcnow(),
    )


async def _finish(session: AsyncSession, run_id: int) -> None:
    await finish_run(
        session,
        run_id,
        owner=OWNER,
        status="succeeded",
        stats={},
        event=_completed(run_id),
        topic_prefix="gmv",
    )


async def test_a_finished_run_counts_when_its_finish_commits(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, run_id = await _claimed_run(sqlite_sessions)
    before = _finished("succeeded")

    async with sqlite_sessions() as session, session.begin():
        await _finish(session, run_id)
        await session.rollback()  # the handler failed after finishing
    after_rollback = _finished("succeeded")
    async with sqlite_sessions.begin() as session:
        await _finish(session, run_id)

    assert after_rollback == before
    assert _finished("succeeded") == before + 1
