"""Shapes the metadata sync passes between its steps: upstream reads, rows, diffs, stats."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gmv_common.events.schemas import EntityChanges
from gmv_common.tiktok import (
    AdvertiserInfo,
    AuthorizedAdvertiser,
    BusinessCenter,
    GmvMaxStore,
    Store,
)

Key = tuple[str, ...]

# How strongly a piece of evidence ties an advertiser to a business center. A weaker
# relation never overwrites a stronger one learned in the same run.
RELATION_RANK = {"owner": 3, "store_authorized": 2, "partner": 1, "unknown": 0}

SOURCE_ADVERTISER_INFO = "advertiser.info"
SOURCE_STORE_LIST = "store.list"

ENTITY_KINDS = (
    "business_centers",
    "advertisers",
    "stores",
    "bc_advertiser_links",
    "advertiser_store_links",
)


@dataclass(slots=True)
class PhaseError:
    """One part of the chain that failed without failing the whole run."""

    phase: str
    code: str
    message: str
    advertiser_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "code": self.code,
            "message": self.message[:300],
            "advertiser_ids": self.advertiser_ids[:20],
            "advertiser_count": len(self.advertiser_ids),
        }


@dataclass(slots=True)
class AdvertiserStores:
    """What ``store/list`` and ``gmv_max/store/list`` said for one advertiser."""

    stores: list[Store]
    gmv_max: dict[str, GmvMaxStore]


@dataclass(slots=True)
class UpstreamSnapshot:
    """Everything one run read from TikTok, and which parts of it are complete."""

    business_centers: list[BusinessCenter] = field(default_factory=list)
    business_centers_complete: bool = False
    advertisers: list[AuthorizedAdvertiser] = field(default_factory=list)
    infos: dict[str, AdvertiserInfo] = field(default_factory=dict)
    # advertiser_id → its stores; an advertiser missing here had its store read fail.
    stores: dict[str, AdvertiserStores] = field(default_factory=dict)
    errors: list[PhaseError] = field(default_factory=list)
    api_calls: Counter[str] = field(default_factory=Counter)
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def advertiser_ids(self) -> list[str]:
        return [advertiser.advertiser_id for advertiser in self.advertisers]

    @property
    def stores_complete(self) -> bool:
        return all(a in self.stores for a in self.advertiser_ids)


@dataclass(frozen=True, slots=True)
class Record:
    """One row as upstream describes it: column values and their signature.

    ``signature`` is None for a row we know exists but could not read in full (its
    hydration failed): such a row is confirmed, never rewritten.
    """

    key: Key
    values: dict[str, Any]
    signature: str | None


@dataclass(frozen=True, slots=True)
class ExistingRow:
    id: int
    signature: str | None
    deleted: bool


@dataclass(slots=True)
class EntityDiff:
    """What one entity kind's upsert did."""

    fetched: int = 0
    added: list[Key] = field(default_factory=list)
    updated: list[Key] = field(default_factory=list)
    removed: list[Key] = field(default_factory=list)
    unchanged: int = 0

    def stats(self) -> dict[str, int]:
        return {
            "fetched": self.fetched,
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
        }

    def changes(self) -> EntityChanges:
        return EntityChanges(
            added=[":".join(key) for key in self.added],
            updated=[":".join(key) for key in self.updated],
            removed=[":".join(key) for key in self.removed],
        )


@dataclass(slots=True)
class SyncOutcome:
    """A finished chain: per-kind diffs, what failed, and the run's stats document."""

    diffs: dict[str, EntityDiff]
    errors: list[PhaseError]
    api_calls: dict[str, int]
    phase_seconds: dict[str, float]

    @property
    def status(self) -> str:
        return "partial" if self.errors else "succeeded"

    def stats(self) -> dict[str, Any]:
        return {
            "entities": {kind: diff.stats() for kind, diff in self.diffs.items()},
            "api_calls": {"total": sum(self.api_calls.values()), **self.api_calls},
            "phase_seconds": {k: round(v, 3) for k, v in self.phase_seconds.items()},
            "errors": [error.as_dict() for error in self.errors],
        }

    def changes(self) -> dict[str, EntityChanges]:
        return {kind: diff.changes() for kind, diff in self.diffs.items()}


class PhaseTimer:
    """Accumulates wall time per phase into a dict."""

    def __init__(self, into: dict[str, float], phase: str) -> None:
        self._into = into
        self._phase = phase
        self._started = 0.0

    def __enter__(self) -> PhaseTimer:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        elapsed = time.perf_counter() - self._started
        self._into[self._phase] = self._into.get(self._phase, 0.0) + elapsed
