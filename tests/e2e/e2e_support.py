"""The end-to-end harness: every service and the TikTok sandbox as a process of its own.

``Stack`` owns one fresh MariaDB database, one Kafka topic prefix, one sandbox process and
one process per service (``gmv serve <service> --port N``), each with its stdout and stderr in
a log file. Users, workspaces, API tokens and provider apps are created with the gateway's own
service functions on the test database (as ``gmv dev`` does); everything else goes through
HTTP like a user would, including the OAuth flow through the sandbox's consent stand-in.

Waiting is always bounded polling on a condition (``wait_until``), never a bare sleep, and
every process started here is killed by ``Stack.close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gmv_common.bus import topics
from gmv_common.bus.memory import InMemoryBus
from gmv_common.db.session import create_null_pool_engine
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_gateway.audit import Actor
from gmv_gateway.auth.service import create_api_token, create_user
from gmv_gateway.bindings.schemas import ProviderAppIn
from gmv_gateway.bindings.service import save_provider_app
from gmv_gateway.workspaces.service import create_workspace

REPO_ROOT = Path(__file__).resolve().parents[2]
GMV = REPO_ROOT / ".venv" / "bin" / "gmv"
DEPLOY = REPO_ROOT / "deploy" / "local"
WORKER_SERVICES = ("metadata-sync", "product-sync", "options-cache")
ALL_SERVICES = ("api-gateway", *WORKER_SERVICES)
TERMINAL = {"succeeded", "partial", "failed"}
SANDBOX_APP_ID = "7000000000000000001"
SANDBOX_APP_SECRET = "e2e-sandbox-app-secret-0123456789"
USER_PASSWORD = "e2e correct horse battery"
SPA_ORIGIN = "http://spa.e2e.test"
# Variables whose value is JSON (pydantic-settings parses them from the environment).
JSON_ENV = {"CORS_ORIGINS", "CRYPTO_KEYS"}

T = TypeVar("T")


def root_conftest() -> ModuleType:
    """``tests/conftest.py`` as a module (its helpers create and drop test databases)."""
    name = "gmv_tests_root_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO_ROOT / "tests" / "conftest.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def wait_until(
    condition: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = await condition()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f" (last error: {last_error!r})" if last_error else "")
            )
        await asyncio.sleep(interval)


def run_script(*argv: str, timeout: float = 180) -> str:
    """Run a ``deploy/local`` script; raise with its output when it fails."""
    done = subprocess.run(
        [str(DEPLOY / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}"
        )
    return done.stdout


class Process:
    """One child process; output goes to ``log_path``; killed on ``stop``."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert not self.running, f"{self.name} already runs"
        log_file = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
                start_new_session=True,
            )
        finally:
            log_file.close()
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_text(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )


@dataclass
class SandboxWorld:
    """The generated TikTok world shared by the suite (one page of products a store)."""

    seed: int = 11
    business_centers: int = 3
    advertisers: int = 24
    stores_per_advertiser: int = 1
    products_per_store: int = 40
    qps: int = 0

    def argv(self, port: int) -> list[str]:
        return [
            str(GMV),
            "sandbox",
            "--port",
            str(port),
            "--seed",
            str(self.seed),
            "--business-centers",
            str(self.business_centers),
            "--advertisers",
            str(self.advertisers),
            "--stores-per-advertiser",
            str(self.stores_per_advertiser),
            "--products-per-store",
            str(self.products_per_store),
            "--qps",
            str(self.qps),
            "--app-id",
            SANDBOX_APP_ID,
            "--secret",
            SANDBOX_APP_SECRET,
            "--log-level",
            "warning",
        ]


class Sandbox:
    """The sandbox process and its admin API."""

    def __init__(self, world: SandboxWorld, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = Process(
            "sandbox", world.argv(self.port), env, log_dir / "sandbox.log"
        )
        self.http = httpx.AsyncClient(base_url=f"{self.url}/_sandbox", timeout=30)

    async def start(self) -> None:
        self.process.start()

        async def healthy() -> bool:
            if not self.process.running:
                raise AssertionError(f"sandbox exited:\n{self.process.log_text()}")
            return (await self.http.get("/health")).status_code == 200

        await wait_until(healthy, timeout=60, what="sandbox health")

    async def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    async def set_faults(self, rules: list[dict[str, Any]], seed: int = 1) -> None:
        await self.admin("PUT", "/faults", json={"rules": rules, "seed": seed})

    async def clear_faults(self) -> None:
        await self.admin("DELETE", "/faults")

    async def advertiser_ids(self) -> list[str]:
        advertisers = await self.admin("GET", "/advertisers")
        return sorted(item["advertiser_id"] for item in advertisers)

    async def snapshot(self, *, access_token: str, products: bool = False) -> Any:
        params: dict[str, Any] = {"access_token": access_token}
        if products:
            params["include_products"] = "true"
        return await self.admin("GET", "/snapshot", params=params)

    async def close(self) -> None:
        self.process.kill()
        await self.http.aclose()


@dataclass
class Tenant:
    workspace_id: int
    user_id: int
    email: str
    api_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    @property
    def base(self) -> str:
        return f"/api/v1/tenants/{self.workspace_id}"

    def account(self, auth_id: int) -> str:
        return f"{self.base}/providers/tiktok-business/accounts/{auth_id}"


@dataclass
class Stack:
    """A database, a topic prefix, the sandbox and every service as processes."""

    log_dir: Path
    database_url: str
    kafka_bootstrap: str
    world: SandboxWorld = field(default_factory=SandboxWorld)
    extra_env: dict[str, str] = field(default_factory=dict)
    topic_prefix: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:10]}")
    services: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sandbox = Sandbox(self.world, self.log_dir)
        self.ports = {name: free_port() for name in ALL_SERVICES}
        self.gateway_url = f"http://127.0.0.1:{self.ports['api-gateway']}"
        self.settings = self._settings()
        self.engine: AsyncEngine = create_null_pool_engine(self.database_url)
        self.http = httpx.AsyncClient(base_url=self.gateway_url, timeout=30)
        for name in ALL_SERVICES:
            argv = [str(GMV), "serve", name, "--host", "127.0.0.1"]
            argv += ["--port", str(self.ports[name])]
            env = {**os.environ, **self.env(), "PYTHONUNBUFFERED": "1"}
            log_path = self.log_dir / f"{name}.log"
            self.services[name] = Process(name, argv, env, log_path)

    def _settings(self) -> Settings:
        """The services' settings, for what this process does on their database."""
        values: dict[str, Any] = {}
        for key, value in self.env().items():
            values[key.lower()] = json.loads(value) if key in JSON_ENV else value
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def env(self) -> dict[str, str]:
        callback = f"{self.gateway_url}/api/oauth/tiktok-business/callback"
        return {
            "DATABASE_URL": self.database_url,
            "BUS_BACKEND": "kafka",
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "KAFKA_PARTITIONS": "2",
            "TIKTOK_API_BASE_URL": f"{self.sandbox.url}/open_api/v1.3/",
            "TIKTOK_AUTHORIZE_URL": f"{self.sandbox.url}/portal/auth",
            "TIKTOK_RETRY_INITIAL_SECONDS": "0.05",
            "TIKTOK_RETRY_MAX_SECONDS": "0.5",
            "TIKTOK_HTTP_TIMEOUT_SECONDS": "5",
            "PUBLIC_BASE_URL": self.gateway_url,
            "TIKTOK_OAUTH_REDIRECT_URI": callback,
            "CORS_ORIGINS": f'["{SPA_ORIGIN}"]',
            "SYNC_LEASE_SECONDS": "4",
            "SYNC_HEARTBEAT_SECONDS": "1",
            "PRODUCT_SYNC_REDISPATCH_SECONDS": "2",
            "PRODUCT_SYNC_COOLDOWN_SECONDS": "0",
            "PRODUCT_AUTO_SYNC_MIN_INTERVAL_SECONDS": "3600",
            "SCHEDULER_TICK_SECONDS": "1",
            "OUTBOX_POLL_SECONDS": "0.1",
            "DATABASE_POOL_TIMEOUT": "3",
            "ENVIRONMENT": "test",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **self.extra_env,
        }

    # processes

    async def start(self) -> None:
        # The servers are shared: another suite may be restarting one right now.
        for server in ("mariadb", "kafka"):
            await asyncio.to_thread(run_script, server, "wait")
        await self.sandbox.start()
        for name in ALL_SERVICES:
            self.services[name].start()
        for name in ALL_SERVICES:
            await self.wait_healthy(name)

    async def wait_healthy(self, name: str, timeout: float = 90) -> None:
        process = self.services[name]

        async def healthy() -> bool:
            if not process.running:
                raise AssertionError(f"{name} exited:\n{process.log_text()[-4000:]}")
            async with httpx.AsyncClient(timeout=2) as client:
                url = f"http://127.0.0.1:{self.ports[name]}/healthz"
                return (await client.get(url)).status_code == 200

        await wait_until(healthy, timeout=timeout, what=f"{name} /healthz")

    async def restart(self, name: str) -> None:
        self.services[name].stop()
        self.services[name].start()
        await self.wait_healthy(name)

    async def reconfigure(self, env: dict[str, str]) -> None:
        """Change environment variables of every service and restart them all."""
        self.extra_env.update(env)
        self.settings = self._settings()
        for process in self.services.values():
            process.env.update(env)
            process.stop()
        for name in ALL_SERVICES:
            await self.start_service(name)

    async def start_service(self, name: str) -> None:
        if not self.services[name].running:
            self.services[name].start()
        await self.wait_healthy(name)

    def logs(self) -> str:
        return "\n".join(p.log_text() for p in self.services.values())

    async def close(self) -> None:
        for process in self.services.values():
            process.kill()
        await self.sandbox.close()
        await self.http.aclose()
        await self.engine.dispose()

    # bootstrap through the gateway's own service functions

    async def bootstrap_tenant(self, *, name: str = "Agency") -> Tenant:
        runtime = Runtime.create(self.settings, bus=InMemoryBus())
        email = f"{uuid.uuid4().hex[:8]}@e2e.test"
        try:
            async with runtime.sessionmaker.begin() as session:
                user = await create_user(
                    session, email=email, password=USER_PASSWORD, display_name=name
                )
                workspace = await create_workspace(
                    session, name=name, owner_user_id=user.id
                )
                _, token = await create_api_token(session, user_id=user.id, name="e2e")
        finally:
            await runtime.engine.dispose()
        return Tenant(
            workspace_id=workspace.id, user_id=user.id, email=email, api_token=token
        )

    async def register_provider_app(self) -> None:
        runtime = Runtime.create(self.settings, bus=InMemoryBus())
        try:
            async with runtime.sessionmaker.begin() as session:
                await save_provider_app(
                    session,
                    runtime,
                    ProviderAppIn(
                        app_id=SANDBOX_APP_ID,
                        name="TikTok sandbox app",
                        secret=SANDBOX_APP_SECRET,
                        redirect_uri=self.settings.tiktok_oauth_redirect_uri,  # type: ignore[arg-type]
                        qps_limit=1000.0,
                        is_default=True,
                        api_base_url=self.settings.tiktok_api_base_url,  # type: ignore[arg-type]
                        authorize_url=self.settings.tiktok_authorize_url,  # type: ignore[arg-type]
                    ),
                    Actor(user_id=None),
                )
        finally:
            await runtime.engine.dispose()

    async def set_provider_qps(self, qps: float) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                text("UPDATE provider_apps SET qps_limit = :qps WHERE app_id = :app"),
                {"qps": qps, "app": SANDBOX_APP_ID},
            )

    async def connect_binding(
        self, tenant: Tenant, *, advertiser_ids: list[str] | str = "all"
    ) -> tuple[int, int | None]:
        """The OAuth flow as the browser runs it; returns (auth_id, first meta run id)."""
        started = await self.http.post(
            f"{tenant.base}/oauth/tiktok-business/authorize",
            json={"alias": f"shop {uuid.uuid4().hex[:4]}"},
            headers=tenant.headers,
        )
        assert started.status_code == 200, started.text
        state = parse_qs(urlparse(started.json()["authorize_url"]).query)["state"][0]
        code = await self.sandbox.admin(
            "POST",
            "/auth_codes",
            json={
                "app_id": SANDBOX_APP_ID,
                "advertiser_ids": advertiser_ids,
                "ttl_seconds": 300,
            },
        )
        callback = await self.http.get(
            "/api/oauth/tiktok-business/callback",
            params={"auth_code": code["auth_code"], "state": state},
        )
        assert callback.status_code == 200, callback.text
        body = callback.json()
        return body["auth_id"], body.get("run_id")

    # runs through HTTP

    async def request_sync(
        self,
        tenant: Tenant,
        auth_id: int,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        timeout: float = 30,
    ) -> httpx.Response:
        headers = dict(tenant.headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return await self.http.post(
            f"{tenant.account(auth_id)}/sync",
            json=body or {"scope": "meta"},
            headers=headers,
            timeout=timeout,
        )

    async def run(self, tenant: Tenant, auth_id: int, run_id: int) -> dict[str, Any]:
        response = await self.http.get(
            f"{tenant.account(auth_id)}/sync-runs/{run_id}", headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run

    async def wait_finished(
        self, tenant: Tenant, auth_id: int, run_id: int, *, timeout: float = 90
    ) -> dict[str, Any]:
        async def finished() -> dict[str, Any] | None:
            run = await self.run(tenant, auth_id, run_id)
            return run if run["status"] in TERMINAL else None

        return await wait_until(finished, timeout=timeout, what=f"run {run_id} ends")

    # the database, read directly

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def access_token(self, auth_id: int) -> str:
        """The binding's TikTok token, decrypted with the keyring (for sandbox snapshots)."""
        from gmv_common.crypto import binding_token_context

        row = (
            await self.rows(
                "SELECT workspace_id, provider_app_id, access_token_cipher "
                "FROM ttb_bindings WHERE id = :id",
                id=auth_id,
            )
        )[0]
        runtime = Runtime.create(self.settings, bus=InMemoryBus())
        try:
            return runtime.keyring.decrypt(
                bytes(row[2]), associated_data=binding_token_context(row[0], row[1])
            )
        finally:
            await runtime.engine.dispose()


async def duplicate_keys(stack: Stack) -> dict[str, int]:
    """Rows sharing a natural key, per table (all zero when nothing is duplicated)."""
    keys = {
        "ttb_business_centers": "workspace_id, auth_id, bc_id",
        "ttb_advertisers": "workspace_id, auth_id, advertiser_id",
        "ttb_stores": "workspace_id, auth_id, store_id",
        "ttb_products": "workspace_id, auth_id, store_id, item_group_id",
        "ttb_bc_advertiser_links": "workspace_id, auth_id, bc_id, advertiser_id",
        "ttb_advertiser_store_links": "workspace_id, auth_id, advertiser_id, store_id",
        "inbox": "consumer_group, message_id",
    }
    counts: dict[str, int] = {}
    for table, columns in keys.items():
        counts[table] = int(
            await stack.scalar(
                f"SELECT COUNT(*) FROM (SELECT {columns} FROM {table} "
                f"GROUP BY {columns} HAVING COUNT(*) > 1) AS d"
            )
        )
    return counts


async def assert_meta_matches(stack: Stack, auth_id: int) -> dict[str, int]:
    """Live centers, advertisers and stores of the binding are exactly the sandbox's."""
    expected = await stack.sandbox.snapshot(
        access_token=await stack.access_token(auth_id)
    )
    live = "auth_id = :a AND deleted_at IS NULL"
    centers = {
        r[0]
        for r in await stack.rows(
            f"SELECT bc_id FROM ttb_business_centers WHERE {live}", a=auth_id
        )
    }
    advertisers = {
        r[0]: r[1]
        for r in await stack.rows(
            f"SELECT advertiser_id, name FROM ttb_advertisers WHERE {live}", a=auth_id
        )
    }
    stores = {
        r[0]
        for r in await stack.rows(
            f"SELECT store_id FROM ttb_stores WHERE {live}", a=auth_id
        )
    }
    assert centers == {c["bc_info"]["bc_id"] for c in expected["business_centers"]}
    assert advertisers == {
        info["advertiser_id"]: info["name"] for info in expected["advertiser_info"]
    }
    assert stores == {
        store["store_id"]
        for per_advertiser in expected["stores"].values()
        for store in per_advertiser
    }
    return {
        "business_centers": len(centers),
        "advertisers": len(advertisers),
        "stores": len(stores),
    }


async def assert_products_match(
    stack: Stack, auth_id: int, *, store_id: str, advertiser_id: str
) -> int:
    """The live products of a store are the sandbox's GMV Max eligible items, exactly."""
    expected = await stack.sandbox.admin(
        "GET",
        f"/stores/{store_id}/expected_products",
        params={"advertiser_id": advertiser_id, "ad_creation_eligible": "GMV_MAX"},
    )
    stored = {
        r[0]: r[1]
        for r in await stack.rows(
            "SELECT item_group_id, title FROM ttb_products "
            "WHERE auth_id = :a AND store_id = :s AND deleted_at IS NULL",
            a=auth_id,
            s=store_id,
        )
    }
    wanted = {item["item_group_id"]: item["title"] for item in expected}
    assert len(stored) == len(wanted)
    assert stored == wanted
    return len(stored)


async def store_pairs(stack: Stack, auth_id: int) -> list[tuple[str, str]]:
    """(advertiser_id, store_id) pairs the binding may sync products for."""
    rows = await stack.rows(
        "SELECT l.advertiser_id, l.store_id FROM ttb_advertiser_store_links l "
        "JOIN ttb_stores s ON s.auth_id = l.auth_id AND s.store_id = l.store_id "
        "WHERE l.auth_id = :a AND l.deleted_at IS NULL AND s.deleted_at IS NULL "
        "ORDER BY l.advertiser_id, l.store_id",
        a=auth_id,
    )
    return [(r[0], r[1]) for r in rows]


@contextlib.asynccontextmanager
async def open_stack(
    log_dir: Path,
    *,
    world: SandboxWorld | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """A started stack on a fresh database; killed and dropped on exit."""
    root = root_conftest()
    database_url = await root.create_mariadb_database()
    stack = Stack(
        log_dir=log_dir,
        database_url=database_url,
        kafka_bootstrap=root.KAFKA_BOOTSTRAP,
        world=world or SandboxWorld(),
        extra_env=env or {},
    )
    try:
        await stack.start()
        await stack.register_provider_app()
        yield stack
    finally:
        await stack.close()
        await root.drop_mariadb_database(database_url)


async def read_topics(stack: Stack, *logical: str) -> list[ConsumerRecord[Any, Any]]:
    """Every message of the stack's ``logical`` topics from offset 0, in no group."""
    consumer = AIOKafkaConsumer(
        *(topics.topic_name(stack.topic_prefix, name) for name in logical),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def table_checksums(
    stack: Stack, *, volatile: dict[str, set[str]]
) -> dict[str, str]:
    """A SHA-256 of every table's rows (order-free), without the ``volatile`` columns."""
    checksums: dict[str, str] = {}
    for (table,) in await stack.rows("SHOW TABLES"):
        if "*" in volatile.get(table, set()):
            continue
        columns = [
            row[0]
            for row in await stack.rows(f"SHOW COLUMNS FROM `{table}`")
            if row[0] not in volatile.get(table, set())
        ]
        selected = ", ".join(f"`{column}`" for column in columns)
        rows = sorted(
            repr(tuple(r))
            for r in await stack.rows(f"SELECT {selected} FROM `{table}`")
        )
        digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        checksums[table] = f"{len(rows)}:{digest[:16]}"
    return checksums


def consumer_lag(group: str, topic_prefix: str) -> int | None:
    """The group's total lag on the prefix's topics (None while it has no offsets there)."""
    output = run_script("kafka-cli", "consumer-groups", "--describe", "--group", group)
    lag = 0
    seen = False
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1].startswith(topic_prefix + "."):
            seen = True
            lag += int(fields[5]) if fields[5].isdigit() else 0
    return lag if seen else None
