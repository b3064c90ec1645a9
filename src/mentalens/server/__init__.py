"""The mentalens server: OpenAI-compatible counselling chat, analysis and risk APIs, sessions, and the web app.

    from mentalens.server import ServerConfig, create_app, serve
    serve(ServerConfig(port=8000))            # what `mentalens serve` and `make run` start
"""

from __future__ import annotations

from typing import Any

from mentalens.server.config import ServerConfig, is_loopback

__all__ = ["ServerConfig", "create_app", "is_loopback", "serve"]


def create_app(config: ServerConfig | None = None, **kwargs: Any):
    """The FastAPI app (imported lazily: FastAPI is only loaded when a server is made)."""
    from mentalens.server.app import create_app as _create

    return _create(config, **kwargs)


def serve(config: ServerConfig, log_level: str = "info") -> None:
    """Run the server with uvicorn until interrupted (access log: method, path, status, latency only)."""
    import logging

    import uvicorn

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(config)
    if config.preload:  # load here, so a missing model or data file is one clear error before binding the port
        app.state.mentalens.load()
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)
