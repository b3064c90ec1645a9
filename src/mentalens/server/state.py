"""What the server holds: the analyzer, the backend, the retrieval counsellor, the engine and the store.

Loaded once (at start-up when `preload`, else on first use) and shared by every request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import threading
import time
from typing import Any

from mentalens.server.config import ServerConfig
from mentalens.server.store import TieredStore, open_store


class Permit:
    """A slot of the generation semaphore (and the session's turn), released exactly once, also when a
    stream is abandoned before it started. `on_release`, when given, disposes of the slot itself (it may hand
    it to a waiting request instead of releasing the semaphore)."""

    def __init__(self, sem: threading.BoundedSemaphore, on_release: Any = None):
        self._sem = sem
        self._on_release = on_release
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                if self._on_release is None:
                    self._sem.release()
                else:
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
        # requests waiting for a slot wait on the event loop (futures woken by Permit.release), never in a
        # worker thread: 50 blocked waiters once took every thread of the pool, so the replies holding the
        # slots could not run and /healthz stopped answering until the waiters timed out with 503
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = collections.deque()
        self._waiters_lock = threading.RLock()  # re-entrant: a Permit dropped by GC hands its slot on
        self.queued = 0
        self.generating = 0
        self._count_lock = threading.Lock()
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
        from mentalens.safety.semantic import enabled_by_default, warm_up

        if enabled_by_default():
            warm_up()  # the sentence encoder and the learned readers' LM, before the first message
        fallback = getattr(engine, "_fallback", None)
        counsellor = getattr(fallback, "__self__", None)
        if counsellor is not None and hasattr(counsellor, "index"):
            counsellor.index  # noqa: B018 - builds or loads the cached index

    def _claim(self, session_id: str | None) -> None:
        """A stored session takes one turn at a time: a second concurrent turn is refused with 409."""
        if session_id is None:
            return
        with self._busy_lock:
            if session_id in self._busy:
                from mentalens.server.errors import APIError

                raise APIError(409, "a reply is still being written in this session: wait for it to finish",
                               "session_busy", "session_id")
            self._busy.add(session_id)

    def _permit(self, session_id: str | None) -> Permit:
        with self._count_lock:
            self.generating += 1

        def released() -> None:
            with self._count_lock:
                self.generating -= 1
            if session_id is not None:
                self._free(session_id)
            self._hand_off()

        return Permit(self._sem, released)

    def acquire(self, session_id: str | None = None) -> Permit | None:
        """A generation slot within queue_timeout_s, or None when the server is saturated (blocking: for
        callers outside the event loop; the server uses acquire_async)."""
        self._claim(session_id)
        if self._sem.acquire(timeout=self.config.queue_timeout_s):
            return self._permit(session_id)
        if session_id is not None:
            self._free(session_id)
        return None

    async def acquire_async(self, session_id: str | None = None) -> Permit | None:
        """A generation slot within queue_timeout_s, or None when the server is saturated.

        First come, first served: a request takes a free slot only when nobody is waiting, and a released
        slot is handed straight to the longest-waiting request (the semaphore is not released in between, so
        neither a newcomer nor another waiter can take it first). Before, any request could grab a released
        slot: under load (bench/load.py, 50 sessions on 4 slots) some waited past the 30 s queue timeout and got
        503 while later ones were served. Waiting happens on the event loop, never in a worker thread."""
        self._claim(session_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.queue_timeout_s
        with self._waiters_lock:
            if not self._waiters and self._sem.acquire(blocking=False):
                return self._permit(session_id)
            waiter = loop.create_future()
            entry = (loop, waiter)
            self._waiters.append(entry)
        self.queued += 1
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining > 0:
                    await asyncio.wait({waiter}, timeout=min(remaining, 1.0))
                with self._waiters_lock:
                    handed = entry not in self._waiters  # a released slot was handed to this request
                    if not handed and deadline - loop.time() <= 0:
                        self._waiters.remove(entry)
                if handed:
                    return self._permit(session_id)
                if deadline - loop.time() <= 0:
                    if session_id is not None:
                        self._free(session_id)
                    return None
        except BaseException:  # cancelled (the client went away): the session is free again, the slot passed on
            with self._waiters_lock:
                handed = entry not in self._waiters
                if not handed:
                    self._waiters.remove(entry)
            if handed:
                self._hand_off()
            if session_id is not None:
                self._free(session_id)
            raise
        finally:
            self.queued -= 1

    def _hand_off(self) -> None:
        """Called from any thread when a slot is given back: it goes to the longest-waiting request (woken on
        its loop), or back to the semaphore when nobody waits."""
        with self._waiters_lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                if loop.is_closed():
                    continue
                try:
                    loop.call_soon_threadsafe(_set_result, waiter)
                except RuntimeError:  # the loop closed meanwhile
                    continue
                return
            self._sem.release()

    def _free(self, session_id: str) -> None:
        with self._busy_lock:
            self._busy.discard(session_id)

    def stats(self) -> dict[str, Any]:
        """Counters for /healthz: turns, backend failures answered by the fallback, escalations, guard
        interventions, replies being generated and requests queued. Counts only, never text."""
        engine_stats = dict(getattr(self._engine, "stats", None) or {}) if self._engine is not None else {}
        return {**engine_stats, "generating": self.generating, "queued": self.queued}

    # -- what /v1/models and /healthz show ---------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        return ["mentalens", f"mentalens-{self.config.backend}"]

    def close(self) -> None:
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.backend.close()
        self.store.close()


def _set_result(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


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
