"""What the server holds: the analyzer, the backend, the retrieval counsellor, the engine and the store.

Loaded once (at start-up when `preload`, else on first use) and shared by every request.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from typing import Any

from mentalens.server.config import ServerConfig
from mentalens.server.store import TieredStore, open_store


class Permit:
    """A slot of the generation semaphore (and the session's turn), released exactly once, also when a
    stream is abandoned before it started."""

    def __init__(self, sem: threading.BoundedSemaphore, on_release: Any = None):
        self._sem = sem
        self._on_release = on_release
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._sem.release()
                if self._on_release is not None:
                    self._on_release()

    def __del__(self) -> None:
        self.release()


class AppState:
    def __init__(
        self, config: ServerConfig, engine: Any = None, analyzer: Any = None, store: TieredStore | None = None
    ):
        self.config = config
        self._engine = engine
        self._analyzer = analyzer
        self.store = store or open_store(config.persistence, config.memory_sessions, config.session_ttl_s)
        self._lock = threading.RLock()  # engine -> analyzer: the same thread takes it twice
        self._sem = threading.BoundedSemaphore(config.max_concurrency)
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self.started = time.time()
        self.load_error: str | None = None

    # -- lazy pieces -------------------------------------------------------------------------------------------
    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            with self._lock:
                if self._analyzer is None:
                    from mentalens.analyze import get_analyzer

                    self._analyzer = get_analyzer()
        return self._analyzer

    @property
    def engine(self) -> Any:
        if self._engine is None:
            analyzer = self.analyzer
            with self._lock:
                if self._engine is None:
                    self._engine = build_engine(self.config, analyzer)
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None and self._analyzer is not None

    def load(self) -> None:
        """Load everything now (start-up), including the retrieval index, so the first reply is fast."""
        engine = self.engine
        fallback = getattr(engine, "_fallback", None)
        counsellor = getattr(fallback, "__self__", None)
        if counsellor is not None and hasattr(counsellor, "index"):
            counsellor.index  # noqa: B018 - builds or loads the cached index

    def acquire(self, session_id: str | None = None) -> Permit | None:
        """A generation slot within queue_timeout_s, or None when the server is saturated.

        A stored session takes one turn at a time: a second concurrent turn is refused with 409."""
        if session_id is not None:
            with self._busy_lock:
                if session_id in self._busy:
                    from mentalens.server.errors import APIError

                    raise APIError(409, "a reply is still being written in this session: wait for it to finish",
                                   "session_busy", "session_id")
                self._busy.add(session_id)
        if self._sem.acquire(timeout=self.config.queue_timeout_s):
            return Permit(self._sem, (lambda: self._free(session_id)) if session_id else None)
        if session_id is not None:
            self._free(session_id)
        return None

    def _free(self, session_id: str) -> None:
        with self._busy_lock:
            self._busy.discard(session_id)

    # -- what /v1/models and /healthz show ---------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        return ["mentalens", f"mentalens-{self.config.backend}"]

    def close(self) -> None:
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.backend.close()
        self.store.close()


def build_engine_parts(
    backend: str, options: dict[str, Any] | None = None, analyzer: Any = None, data: str | None = None
):
    """(analyzer, backend, retrieval counsellor): one analyzer shared by all three (one encoder in memory)."""
    from mentalens.backend import BACKENDS, get_backend
    from mentalens.counsel.retrieval import RetrievalCounsellor

    if analyzer is None:
        from mentalens.analyze import get_analyzer

        analyzer = get_analyzer()
    counsellor = RetrievalCounsellor(analyzer=analyzer, data=data)
    options = dict(options or {})
    cls = BACKENDS.get(backend)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        params = {}
    if "analyzer" in params and "analyzer" not in options:
        options["analyzer"] = analyzer
    return analyzer, get_backend(backend, **options), counsellor


def build_engine(config: ServerConfig, analyzer: Any) -> Any:
    """The backend named in the config, with the retrieval counsellor as its fallback, in a CounselEngine."""
    from mentalens.counsel.engine import CounselEngine, EngineConfig

    analyzer, backend, counsellor = build_engine_parts(config.backend, config.backend_options, analyzer, config.data)
    engine_config = EngineConfig(
        first_token_timeout_s=config.first_token_timeout_s,
        stall_timeout_s=config.stall_timeout_s,
        total_timeout_s=config.total_timeout_s,
        max_message_chars=config.max_message_chars,
        locale=config.locale,
    )
    return CounselEngine(backend, analyzer=analyzer, config=engine_config, fallback=counsellor.reply)
