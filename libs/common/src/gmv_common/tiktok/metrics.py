"""Prometheus metrics of TikTok calls and of the shared request budget."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TIKTOK_CALLS = Counter(
    "gmv_tiktok_calls",
    "TikTok API answers by endpoint and body code (HTTP_<status> or TRANSPORT if none).",
    ["endpoint", "code"],
)
TIKTOK_THROTTLED = Counter(
    "gmv_tiktok_throttled",
    "TikTok 40100 answers: the app-wide request budget was exceeded upstream.",
)
LIMITER_WAIT = Histogram(
    "gmv_tiktok_limiter_wait_seconds",
    "Time a TikTok call waited for its slot in the app's request budget.",
    ["priority"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LIMITER_MISSED_SLOTS = Counter(
    "gmv_tiktok_limiter_missed_slots",
    "Slots given up because the caller woke too late to send inside the budget.",
)
LIMITER_RATE_FACTOR = Gauge(
    "gmv_tiktok_limiter_rate_factor",
    "Share of an app's configured QPS the pacer currently hands out (1 = full).",
    ["app_id"],
)
