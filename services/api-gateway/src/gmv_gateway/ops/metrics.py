"""Gateway metrics, registered on the process-wide Prometheus registry.

``/metrics`` renders that whole registry: next to the request latency below it carries what
the shared library records in this process (outbox backlog and lag, TikTok calls and the
limiter, consumer outcomes) and the sync run counts refreshed from the database at scrape time.
"""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

REQUEST_LATENCY = Histogram(
    "gmv_http_request_duration_seconds",
    "HTTP request latency by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SYNC_RUNS = Gauge(
    "gmv_sync_runs",
    "Sync runs created in the last 24 hours, by scope and status (read at scrape time).",
    ["scope", "status"],
)
