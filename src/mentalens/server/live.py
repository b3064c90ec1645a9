"""Run the server in this process on a free loopback port (tests, notebooks, demos).

    with LiveServer(ServerConfig(port=0)) as srv:
        httpx.get(srv.url + "/healthz")
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from mentalens.errors import ConfigError
from mentalens.server.config import ServerConfig


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn in a background thread; `url` once started; stopped on exit (bounded waits both ways)."""

    def __init__(self, config: ServerConfig | None = None, start_timeout_s: float = 300.0, **app_kwargs: Any):
        config = config or ServerConfig()
        if config.port == 0:
            config.port = free_port(config.host)
        self.config = config
        self.start_timeout_s = start_timeout_s
        self.app_kwargs = app_kwargs
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def start(self) -> LiveServer:
        import uvicorn

        from mentalens.server import create_app

        app = create_app(self.config, **self.app_kwargs)
        uv = uvicorn.Config(app, host=self.config.host, port=self.config.port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(uv)
        self._thread = threading.Thread(target=self._server.run, name="mentalens-live-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConfigError(f"the server on {self.url} did not start (port in use or start-up failed)")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the server on {self.url} did not start within {self.start_timeout_s:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
