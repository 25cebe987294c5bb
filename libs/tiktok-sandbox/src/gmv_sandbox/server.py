"""Run the sandbox over real HTTP: in a background thread, or in the foreground.

``SandboxServer`` starts uvicorn on a free port in a daemon thread and exposes its
``base_url``, so a test session (or several worker processes given that URL) can
share one sandbox::

    with SandboxServer(state) as server:
        httpx.get(f"{server.base_url}/open_api/v1.3/bc/get/", headers=...)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import uvicorn

from gmv_sandbox.app import create_app
from gmv_sandbox.state import SandboxState

_START_TIMEOUT_SECONDS = 10.0


def uvicorn_config(
    state: SandboxState, *, host: str, port: int, log_level: str = "warning"
) -> uvicorn.Config:
    """The uvicorn settings the sandbox runs with (h11, no lifespan, no access log)."""
    return uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        http="h11",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )


class SandboxServer:
    """uvicorn serving one ``SandboxState`` from a background thread."""

    def __init__(
        self,
        state: SandboxState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.state = state
        self.host = host
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets
        # whose proto says TCP, and without it every answer waits ~40 ms for an ACK.
        self._socket = socket.socket(
            socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
        )
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn_config(state, host=host, port=self.port, log_level=log_level)
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_base_url(self) -> str:
        """The TikTok base URL clients are configured with (ends in ``/``)."""
        return f"{self.base_url}/open_api/v1.3/"

    def start(self) -> SandboxServer:
        """Start serving and wait until the socket accepts requests."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        self._thread = threading.Thread(
            target=self._run, name=f"gmv-sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT_SECONDS)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(state: SandboxState, *, host: str = "127.0.0.1") -> SandboxServer:
    """Start a ``SandboxServer`` on a free port; call ``stop()`` when done."""
    return SandboxServer(state, host=host).start()


def serve_forever(
    state: SandboxState, *, host: str, port: int, log_level: str = "info"
) -> None:
    """Serve in the foreground until interrupted (what ``gmv sandbox`` does)."""
    uvicorn.Server(
        uvicorn_config(state, host=host, port=port, log_level=log_level)
    ).run()
