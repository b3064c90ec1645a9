"""Server settings: one dataclass, validated before anything starts (no keys on a public address = no start)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Any

from mentalens.errors import ConfigError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


@dataclasses.dataclass
class ServerConfig:
    """How `mentalens serve` runs.

    persistence: "off" (default: sessions only in memory, gone on restart), "sqlite:PATH" or a path ending
    in .db/.sqlite (SQLite, WAL), or a "postgresql://..." URL (needs the `postgres` extra).
    api_keys: required when host is not a loopback address; sessions belong to the key that made them.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    backend: str = "embedded"
    backend_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    persistence: str = "off"
    api_keys: list[str] = dataclasses.field(default_factory=list)
    max_request_bytes: int = 512 * 1024
    max_message_chars: int = 32_000
    max_messages: int = 200
    cors_origins: list[str] = dataclasses.field(default_factory=list)
    locale: str | None = None
    data: str | None = None  # folder (or CSV) with CounselChat for the retrieval counsellor; default: data folder
    default_max_tokens: int = 512
    max_concurrency: int = 4  # turns generated at once; more wait up to queue_timeout_s, then 503
    queue_timeout_s: float = 30.0
    first_token_timeout_s: float = 60.0
    stall_timeout_s: float = 30.0
    total_timeout_s: float = 180.0
    memory_sessions: int = 1000  # at most this many in-memory sessions (least recently used dropped)
    session_ttl_s: float = 6 * 3600  # in-memory sessions idle this long are dropped
    preload: bool = True  # load analyzer, backend and retrieval index at start-up (first reply is fast)
    web: bool = True  # serve the web app at /

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port must be between 0 (any free port) and 65535, not {self.port}")
        if self.max_request_bytes < 1024:
            raise ConfigError(f"max_request_bytes must be at least 1024, not {self.max_request_bytes}")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be at least 1, not {self.max_concurrency}")
        self.api_keys = [k.strip() for k in self.api_keys if k and k.strip()]
        for k in self.api_keys:
            if len(k) < 16:
                raise ConfigError("API keys must be at least 16 characters: generate one with "
                                  "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        self.persistence = (self.persistence or "off").strip()
        if not self.api_keys and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve on {self.host} without API keys: anyone on the network could read sessions. "
                "Pass --api-key KEY (or set MENTALENS_API_KEYS), or bind to 127.0.0.1"
            )

    @property
    def persistent(self) -> bool:
        return self.persistence.lower() not in ("", "off", "none", "false", "0", "no")

    @classmethod
    def from_env(cls, **overrides: Any) -> ServerConfig:
        """Defaults, then MENTALENS_API_KEYS (comma-separated) and MENTALENS_PERSISTENCE, then overrides."""
        env: dict[str, Any] = {}
        if os.environ.get("MENTALENS_API_KEYS"):
            env["api_keys"] = os.environ["MENTALENS_API_KEYS"].split(",")
        if os.environ.get("MENTALENS_PERSISTENCE"):
            env["persistence"] = os.environ["MENTALENS_PERSISTENCE"]
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost names: only this machine can connect."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
