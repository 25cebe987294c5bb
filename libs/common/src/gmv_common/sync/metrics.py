"""Sync run metrics of the worker that finished them: durations and outcomes.

``finish_run`` records a run in its session; the sample is taken when that transaction
commits (a rolled-back finish is not an outcome), so each finished run counts once, in the
process that finished it.
"""

from __future__ import annotations

from prometheus_client import Histogram
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

SYNC_RUN_DURATION = Histogram(
    "gmv_sync_run_duration_seconds",
    "Sync runs finished by this process, from the run's first start to its end, "
    "by scope and outcome (the count per status is the outcome count).",
    ["scope", "status"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

_PENDING = "gmv.finished_runs"


def record_finished(
    session: Session, *, scope: str, status: str, seconds: float
) -> None:
    """Count a finished run once ``session``'s transaction commits."""
    session.info.setdefault(_PENDING, []).append((scope, status, max(seconds, 0.0)))


@sa_event.listens_for(Session, "after_commit")
def _observe(session: Session) -> None:
    for scope, status, seconds in session.info.pop(_PENDING, ()):
        SYNC_RUN_DURATION.labels(scope, status).observe(seconds)


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
