"""Process runner: one service per process (production shape) or all of them (embedded mode)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import uvicorn
import uvloop

from gmv_common.logging import get_logger
from gmv_common.messaging.outbox import OutboxRelay
from gmv_common.ops import create_ops_app
from gmv_common.runtime import Runtime

log = get_logger(__name__)

WORKERS: dict[str, str] = {
    "metadata-sync": "gmv_metadata_sync.app:run",
    "product-sync": "gmv_product_sync.app:run",
    "options-cache": "gmv_options_cache.app:run",
}
SERVICES = ("api-gateway", *WORKERS)

WorkerRun = Callable[[Runtime, asyncio.Event], Awaitable[None]]


def load_worker(service: str) -> WorkerRun:
    module_name, attribute = WORKERS[service].split(":")
    run: WorkerRun = getattr(importlib.import_module(module_name), attribute)
    return run


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


def run_server_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived process's ``main`` on uvloop, the faster event loop."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process stops every job on one signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return _Server(config)


async def serve_until_stopped(server: uvicorn.Server, stop: asyncio.Event) -> None:
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await task
    stopper.cancel()
    if task in done and not stop.is_set():
        stop.set()


async def run_all(
    runtime: Runtime,
    stop: asyncio.Event,
    jobs: list[Awaitable[None]],
) -> None:
    """Run the outbox relay and ``jobs`` until ``stop``; any job failing stops the process."""
    relay = OutboxRelay(
        runtime.sessionmaker,
        runtime.bus,
        batch_size=runtime.settings.outbox_batch_size,
        poll_seconds=runtime.settings.outbox_poll_seconds,
    )
    tasks = [asyncio.create_task(relay.run(stop))]
    tasks += [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(
            [*tasks, asyncio.create_task(stop.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in done:
            if task in tasks and task.exception() is not None:
                log.error("process.job_failed", error=repr(task.exception()))
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError
            ):
                log.error("process.job_error", error=repr(result))


async def serve_service(
    runtime: Runtime, service: str, *, host: str, port: int, stop: asyncio.Event
) -> None:
    """Production shape: one service in this process, with its HTTP surface on ``port``."""
    if service == "api-gateway":
        from gmv_gateway.app import create_app

        app: Any = create_app(runtime)
        jobs: list[Awaitable[None]] = [
            serve_until_stopped(http_server(app, host, port), stop)
        ]
    else:
        run = load_worker(service)
        ops = http_server(create_ops_app(runtime, service), host, port)
        jobs = [run(runtime, stop), serve_until_stopped(ops, stop)]
    # What exists now (modules, the application, its routes and models) lives as long as
    # the process: frozen, the cyclic collector stops walking it on every full collection.
    gc.freeze()
    await run_all(runtime, stop, jobs)
