"""What one product sync run reads, writes and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gmv_common.events.schemas import EntityChanges

# Event payloads stay well under a broker's message limit: past this many ids per list,
# the lists are cut and ``stats["changes_truncated"]`` says so (counts stay exact).
CHANGE_IDS_LIMIT = 10_000


@dataclass(slots=True)
class KindRead:
    """One eligibility kind's listing: what TikTok promised and what arrived."""

    kind: str
    total_numbers: set[int] = field(default_factory=set)
    rows_read: int = 0
    pages: int = 0
    seen: set[str] = field(default_factory=set)
    error: Exception | None = None

    @property
    def complete(self) -> bool:
        return (
            self.error is None
            and len(self.total_numbers) == 1
            and self.rows_read == len(self.seen) == next(iter(self.total_numbers))
        )

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "total_number": max(self.total_numbers, default=0),
            "fetched": self.rows_read,
            "pages": self.pages,
            "complete": self.complete,
        }
        if self.error is not None:
            summary["error"] = getattr(self.error, "code", type(self.error).__name__)
        return summary


@dataclass(slots=True)
class ChangeSet:
    added: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    unchanged: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated - self.added),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
        }

    @property
    def truncated(self) -> bool:
        return any(
            len(ids) > CHANGE_IDS_LIMIT
            for ids in (self.added, self.updated - self.added, self.removed)
        )

    def event_changes(self) -> EntityChanges:
        """The changed ids for the event, each list cut at ``CHANGE_IDS_LIMIT``."""
        lists = (self.added, self.updated - self.added, self.removed)
        added, updated, removed = (sorted(ids)[:CHANGE_IDS_LIMIT] for ids in lists)
        return EntityChanges(added=added, updated=updated, removed=removed)


@dataclass(slots=True)
class RunTally:
    """Counters and clocks of one run, rendered into ``sync_runs.stats``."""

    products: ChangeSet = field(default_factory=ChangeSet)
    eligibility: ChangeSet = field(default_factory=ChangeSet)
    reads: dict[str, KindRead] = field(default_factory=dict)
    api_calls: int = 0
    db_seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fetched(self) -> int:
        return sum(read.rows_read for read in self.reads.values())

    def stats(self, *, total_seconds: float, attempt: int) -> dict[str, Any]:
        total = max(total_seconds, 1e-9)
        return {
            "fetched": self.fetched,
            **self.products.counts(),
            "eligibility": self.eligibility.counts(),
            "api_calls": self.api_calls,
            "reads": {kind: read.summary() for kind, read in self.reads.items()},
            "phases_ms": {
                name: round(seconds * 1000, 1)
                for name, seconds in {**self.phase_seconds, "total": total}.items()
            },
            "db_ms": round(self.db_seconds * 1000, 1),
            "db_share": round(self.db_seconds / total, 4),
            "products_per_second": round(self.fetched / total, 1),
            "attempt": attempt,
            "changes_truncated": self.products.truncated or self.eligibility.truncated,
        }


def read_error(reads: dict[str, KindRead]) -> Exception | None:
    """The first read error, if any kind failed."""
    for read in reads.values():
        if read.error is not None:
            return read.error
    return None
