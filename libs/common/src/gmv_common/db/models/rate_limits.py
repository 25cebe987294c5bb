"""The shared TikTok request budget: one pacer row per developer app.

Every process that calls TikTok for an app reserves its send time on this row, so the
app's budget holds across processes and hosts. Times are epoch seconds (``DOUBLE``) so the
pacing arithmetic stays exact and identical on MySQL, MariaDB and SQLite.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Double, String
from sqlalchemy.orm import Mapped, mapped_column

from gmv_common.db.base import Base, Timestamp, utcnow


class TikTokRateLimit(Base):
    """Pacing state of one TikTok app id, shared by every caller of that app.

    ``next_slot_at`` is the earliest send time not yet handed out. ``rate_factor`` (0-1]
    scales the configured ``qps`` down after a ``40100`` and grows back over time from
    ``rate_factor_at``. ``jitter`` is the callers' recent worst send delay (decaying from
    ``jitter_at``), which widens the spacing. ``version`` makes each reservation a
    compare-and-set.
    """

    __tablename__ = "tiktok_rate_limits"

    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    qps: Mapped[float] = mapped_column(Double())
    rate_factor: Mapped[float] = mapped_column(Double(), default=1.0)
    rate_factor_at: Mapped[float] = mapped_column(Double(), default=0.0)
    next_slot_at: Mapped[float] = mapped_column(Double(), default=0.0)
    throttled_at: Mapped[float | None] = mapped_column(Double())
    throttle_count: Mapped[int] = mapped_column(BigInteger, default=0)
    jitter: Mapped[float] = mapped_column(Double(), default=0.0)
    jitter_at: Mapped[float] = mapped_column(Double(), default=0.0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        Timestamp(), default=utcnow, onupdate=utcnow
    )
