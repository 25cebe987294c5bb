"""The footprint benchmark reads the Kubernetes manifests it judges (nothing measured here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import bench_footprint  # noqa: E402
import report  # noqa: E402

SERVICES = ("api-gateway", "metadata-sync", "product-sync", "options-cache")


def _workload(peaks: dict[str, float]) -> dict[str, Any]:
    phase = {
        "seconds": 10.0,
        "services": {
            service: {"cpu_seconds": 1.0, "cores": 0.1, "max_rss_mib": peak}
            for service, peak in peaks.items()
        },
    }
    return {"phases": {"work": phase}, "peak_rss_mib": peaks}


def test_quantities_are_read_in_mebibytes() -> None:
    assert bench_footprint.mebibytes("512Mi") == 512
    assert bench_footprint.mebibytes("1Gi") == 1024
    assert bench_footprint.mebibytes("2048Ki") == 2
    assert bench_footprint.mebibytes(str(64 * 1024 * 1024)) == 64


def test_each_peak_is_judged_against_its_own_deployments_memory_limit() -> None:
    limits = {
        service: bench_footprint.mebibytes(
            bench_footprint.manifest_resources(service)["limit_memory"]
        )
        for service in SERVICES
    }
    peaks = {service: 100.0 for service in SERVICES}
    peaks["product-sync"] = limits["product-sync"] + 1

    results = bench_footprint.build_results(_workload(peaks))
    memory = [e for e in results["headline"] if "peak memory" in e["metric"]]
    verdicts = {
        entry["metric"].split()[0]: report.headline_of(
            {"benchmark": "footprint", "headline": [entry]}
        )[0]["goal_met"]
        for entry in memory
    }

    assert [entry["goal"] for entry in memory] == [limits[s] for s in SERVICES]
    assert verdicts == {
        "api-gateway": True,
        "metadata-sync": True,
        "product-sync": False,
        "options-cache": True,
    }
