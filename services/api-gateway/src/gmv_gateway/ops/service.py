"""Readiness and the metrics refreshed at scrape time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gmv_common.db.base import utcnow
from gmv_common.db.models.work import FINAL_RUN_STATUSES, RUN_SCOPES
from gmv_common.logging import get_logger
from gmv_common.ops import check_readiness
from gmv_common.runtime import Runtime
from gmv_gateway.ops import repository
from gmv_gateway.ops.metrics import SYNC_RUNS

log = get_logger(__name__)

RUN_STATUSES = ("queued", "running", *FINAL_RUN_STATUSES)
RUN_COUNT_WINDOW = timedelta(hours=24)


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    checks = await check_readiness(runtime)
    return all(value == "ok" for value in checks.values()), checks


async def render_metrics(runtime: Runtime) -> tuple[bytes, str]:
    await _refresh_run_counts(runtime)
    return generate_latest(), CONTENT_TYPE_LATEST


async def _refresh_run_counts(runtime: Runtime) -> None:
    try:
        async with runtime.sessionmaker() as session:
            counts = await repository.count_runs_since(
                session, utcnow() - RUN_COUNT_WINDOW
            )
    except Exception as exc:
        # Metrics must answer during a database outage; the gauge keeps its last values.
        log.warning("metrics.run_counts_failed", error_type=type(exc).__name__)
        return
    seen = {(scope, status): count for scope, status, count in counts}
    for scope in RUN_SCOPES:
        for status in RUN_STATUSES:
            SYNC_RUNS.labels(scope, status).set(seen.get((scope, status), 0))
