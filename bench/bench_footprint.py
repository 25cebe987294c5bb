"""Service footprint: each service's memory and CPU under load, next to its Kubernetes manifest.

Runs the production shape (the harness of ``tests/e2e``: every service a ``gmv serve``
process on MariaDB and Kafka, the TikTok sandbox in a process of its own at 1,000 QPS) through
the heaviest work one binding gives each service:

1. connect a binding of 1,000 advertisers (1,000 stores) through OAuth: its first metadata
   sync (about 2,000 TikTok calls) and the 1 MB options document built from it;
2. a full product sync of one store of ``--products`` products (100,000: the biggest store
   the product benchmark syncs);
3. the options endpoint loaded by ``wrk`` (32 connections, as ``bench_options_endpoint``
   does; its 32 httpx clients when wrk cannot be installed) for ``--seconds`` seconds each way:
   with ``If-None-Match`` (304s) and without (200s of the document, gzip).

Every half second it reads each service's resident memory (``VmRSS``) and CPU time from
``/proc``; at the end, each process's peak resident memory (``VmHWM``). For each service the
headline compares the peak with the memory limit of its Deployment in ``deploy/k8s`` (goal:
below it, with the manifest's requests kept for the report) and gives the busiest phase's CPU
use, in cores. Writes ``bench/results/footprint.json``.

    .venv/bin/python bench/bench_footprint.py [--products 100000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from bench_options_endpoint import ensure_wrk, run_httpx_loop, run_wrk
from support import machine, write_results

from gmv_common.logging import configure_logging

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = REPO_ROOT / "deploy" / "k8s"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.5
MIB = 1024 * 1024

sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))
import e2e_support  # noqa: E402


def proc_sample(pid: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system) of ``pid`` now."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    cpu_seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * PAGE_BYTES, cpu_seconds


def peak_resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


class Sampler:
    """Samples every service process while phases run; CPU and memory per phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.phases: dict[str, dict[str, Any]] = {}
        self._max_rss: dict[str, int] = dict.fromkeys(pids, 0)

    async def phase(self, name: str, work: Awaitable[Any]) -> Any:
        before = {service: proc_sample(pid) for service, pid in self.pids.items()}
        phase_max = {service: rss for service, (rss, _) in before.items()}
        started = time.monotonic()
        task = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.wait({task}, timeout=SAMPLE_SECONDS)
            for service, pid in self.pids.items():
                rss, _ = proc_sample(pid)
                phase_max[service] = max(phase_max[service], rss)
        result = task.result()
        seconds = time.monotonic() - started
        after = {service: proc_sample(pid) for service, pid in self.pids.items()}
        self.phases[name] = {
            "seconds": round(seconds, 1),
            "services": {
                service: {
                    "cpu_seconds": round(after[service][1] - before[service][1], 2),
                    "cores": round(
                        (after[service][1] - before[service][1]) / seconds, 3
                    ),
                    "max_rss_mib": round(phase_max[service] / MIB, 1),
                }
                for service in self.pids
            },
        }
        for service in self.pids:
            self._max_rss[service] = max(self._max_rss[service], phase_max[service])
        return result


def manifest_resources(service: str) -> dict[str, str]:
    """The requests and limits of the service's container in its Deployment."""
    for document in yaml.safe_load_all((MANIFESTS / f"{service}.yaml").read_text()):
        if document and document.get("kind") == "Deployment":
            container = document["spec"]["template"]["spec"]["containers"][0]
            resources = container["resources"]
            return {
                "request_cpu": str(resources["requests"]["cpu"]),
                "request_memory": str(resources["requests"]["memory"]),
                "limit_cpu": str(resources["limits"]["cpu"]),
                "limit_memory": str(resources["limits"]["memory"]),
            }
    raise RuntimeError(f"no Deployment in {service}.yaml")


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity) / MIB


async def load(url: str, headers: dict[str, str], seconds: float) -> float:
    """Requests per second the options endpoint answered under ``WRK_CONNECTIONS``."""
    wrk = ensure_wrk()
    if wrk is not None:
        return await asyncio.to_thread(run_wrk, wrk, url, headers, seconds)
    return await asyncio.to_thread(run_httpx_loop, url, headers, seconds)


async def run_workload(products: int, seconds: float, work: Path) -> dict[str, Any]:
    world = e2e_support.SandboxWorld(
        seed=7,
        business_centers=20,
        advertisers=1000,
        stores_per_advertiser=1,
        products_per_store=products,
        qps=1000,
    )
    async with e2e_support.open_stack(
        work, world=world, env={"LOG_LEVEL": "WARNING"}
    ) as stack:
        pids = {name: process.popen.pid for name, process in stack.services.items()}
        sampler = Sampler(pids)
        tenant = await stack.bootstrap_tenant(name="Footprint agency")

        async def meta_sync() -> int:
            auth_id, run_id = await stack.connect_binding(tenant)
            assert run_id is not None, "connecting started no metadata sync"
            run = await stack.wait_finished(tenant, auth_id, run_id, timeout=900)
            assert run["status"] == "succeeded", run
            return int(auth_id)

        auth_id = await sampler.phase("meta sync, 1,000 advertisers", meta_sync())
        advertiser_id, store_id = (await e2e_support.store_pairs(stack, auth_id))[0]

        async def product_sync() -> None:
            body = {
                "scope": "products",
                "mode": "full",
                "options": {"advertiser_id": advertiser_id, "store_id": store_id},
            }
            accepted = await stack.request_sync(tenant, auth_id, body)
            assert accepted.status_code == 202, accepted.text
            run = await stack.wait_finished(
                tenant, auth_id, accepted.json()["run"]["id"], timeout=900
            )
            assert run["status"] == "succeeded", run

        await sampler.phase(f"product sync, {products:,} products", product_sync())

        url = f"{stack.gateway_url}{tenant.account(auth_id)}/gmvmax/options"
        plain = {**tenant.headers, "Accept-Encoding": "gzip"}
        async with httpx.AsyncClient(timeout=60) as client:
            first = await client.get(url, headers=plain)
        first.raise_for_status()
        conditional = {**plain, "If-None-Match": first.headers["etag"]}
        rate_304 = await sampler.phase(
            "options endpoint, 304s", load(url, conditional, seconds)
        )
        rate_200 = await sampler.phase(
            "options endpoint, 200s", load(url, plain, seconds)
        )

        peaks = {service: peak_resident_bytes(pid) for service, pid in pids.items()}
        return {
            "sandbox_world": {
                "business_centers": world.business_centers,
                "advertisers": world.advertisers,
                "stores_per_advertiser": world.stores_per_advertiser,
                "products_per_store": world.products_per_store,
            },
            "options_requests_per_second": {
                "304": round(rate_304),
                "200": round(rate_200),
            },
            "document_gzip_bytes": len(first.content),
            "phases": sampler.phases,
            "peak_rss_mib": {
                service: round(peak / MIB, 1) for service, peak in peaks.items()
            },
        }


def build_results(workload: dict[str, Any]) -> dict[str, Any]:
    headline: list[dict[str, Any]] = []
    services: dict[str, Any] = {}
    for service, peak in workload["peak_rss_mib"].items():
        resources = manifest_resources(service)
        busiest = max(
            workload["phases"].items(),
            key=lambda item: item[1]["services"][service]["cores"],
        )
        cores = busiest[1]["services"][service]["cores"]
        services[service] = {
            "manifest": resources,
            "peak_rss_mib": peak,
            "busiest_phase": busiest[0],
            "busiest_cores": cores,
        }
        headline += [
            {
                "metric": f"{service} peak memory (goal: its limit)",
                "value": peak,
                "unit": "MiB",
                "goal": mebibytes(resources["limit_memory"]),
                "better": "lower",
            },
            # No goal: the CPU request is sized for typical use, not for this peak, and one
            # Python process never uses more than a core.
            {
                "metric": f"{service} CPU, busiest phase",
                "value": round(cores, 2),
                "unit": "cores",
            },
        ]
    return {
        "benchmark": "footprint",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "headline": headline,
        "services": services,
        **workload,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging(level="WARNING", fmt="console", service="bench")
    with tempfile.TemporaryDirectory(prefix="gmv-bench-") as folder:
        workload = asyncio.run(run_workload(args.products, args.seconds, Path(folder)))
    results = build_results(workload)
    write_results("footprint", results)
    for entry in results["headline"]:
        goal = f" (goal ≤ {entry['goal']})" if "goal" in entry else ""
        print(f"{entry['metric']}: {entry['value']} {entry['unit']}{goal}")


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
