"""Where sessions live: in memory (default), SQLite (WAL) or PostgreSQL, behind one interface.

Only sessions created with `persist: true` on a server started with persistence reach a database; every
other session stays in process memory (bounded, least-recently-used and idle sessions dropped) and is gone on
restart. One row per turn; a turn is committed before the reply that produced it is acknowledged.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any

from mentalens.counsel.session import ChatSession, Turn
from mentalens.errors import ConfigError


class SessionStore(ABC):
    """Sessions by id. Implementations are thread-safe (the server answers requests in a thread pool)."""

    @abstractmethod
    def create(self, session: ChatSession) -> None: ...

    @abstractmethod
    def get(self, session_id: str) -> ChatSession | None: ...

    @abstractmethod
    def append_turn(self, session: ChatSession, turn: Turn) -> None: ...

    @abstractmethod
    def delete(self, session_id: str) -> bool: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def describe(self) -> dict[str, Any]:
        return {"store": type(self).__name__}


class MemoryStore(SessionStore):
    """In-process sessions, bounded: at most max_sessions, each dropped after ttl_s without use."""

    def __init__(self, max_sessions: int = 1000, ttl_s: float = 6 * 3600):
        self.max_sessions, self.ttl_s = max_sessions, ttl_s
        self._sessions: OrderedDict[str, tuple[float, ChatSession]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._sessions:
            sid, (seen, _) = next(iter(self._sessions.items()))
            if now - seen <= self.ttl_s and len(self._sessions) <= self.max_sessions:
                break
            self._sessions.pop(sid)

    def create(self, session: ChatSession) -> None:
        with self._lock:
            now = time.monotonic()
            self._sessions[session.id] = (now, session)
            self._expire(now)

    def get(self, session_id: str) -> ChatSession | None:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            item = self._sessions.get(session_id)
            if item is None:
                return None
            self._sessions[session_id] = (now, item[1])
            self._sessions.move_to_end(session_id)
            return item[1]

    def append_turn(self, session: ChatSession, turn: Turn) -> None:
        with self._lock:
            if session.id in self._sessions:
                self._sessions[session.id] = (time.monotonic(), session)
                self._sessions.move_to_end(session.id)

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def __len__(self) -> int:
        return len(self._sessions)


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mentalens_sessions (id TEXT PRIMARY KEY, owner TEXT, created DOUBLE PRECISION, "
    "locale TEXT)",
    "CREATE TABLE IF NOT EXISTS mentalens_turns (session_id TEXT NOT NULL, idx INTEGER NOT NULL, "
    "created DOUBLE PRECISION, data TEXT NOT NULL, PRIMARY KEY (session_id, idx))",
)


class SQLStore(SessionStore):
    """Sessions in a SQL database (SQLite here; PostgresStore changes only the connection and placeholders)."""

    param = "?"

    def __init__(self, path: str | Path):
        import sqlite3

        p = Path(path).expanduser()
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(p), check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # a committed turn survives a crash
            self._conn.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the session database {p} ({exc}): check the path and permissions") from None
        self.path = p
        self._lock = threading.Lock()
        self._init()

    def _init(self) -> None:
        with self._lock:
            for stmt in _SCHEMA:
                self._conn.execute(stmt)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.param)

    def _run(self, statements: list[tuple[str, tuple]], fetch: bool = False) -> list[tuple]:
        """Run statements in one transaction (committed before returning)."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN")
                rows: list[tuple] = []
                for sql, args in statements:
                    cur.execute(self._sql(sql), args)
                    if fetch:
                        rows.extend(cur.fetchall())
                cur.execute("COMMIT")
                return rows
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def create(self, session: ChatSession) -> None:
        stmts = [("INSERT INTO mentalens_sessions (id, owner, created, locale) VALUES (?, ?, ?, ?)",
                  (session.id, session.owner, session.created, session.locale))]
        stmts += [self._turn_insert(session.id, t) for t in session.turns]
        self._run(stmts)

    def _turn_insert(self, session_id: str, turn: Turn) -> tuple[str, tuple]:
        return ("INSERT INTO mentalens_turns (session_id, idx, created, data) VALUES (?, ?, ?, ?)",
                (session_id, turn.index, turn.created, json.dumps(turn.to_dict(), ensure_ascii=False)))

    def get(self, session_id: str) -> ChatSession | None:
        rows = self._run([("SELECT id, owner, created, locale FROM mentalens_sessions WHERE id = ?", (session_id,))],
                         fetch=True)
        if not rows:
            return None
        sid, owner, created, locale = rows[0]
        turns = self._run([("SELECT data FROM mentalens_turns WHERE session_id = ? ORDER BY idx", (session_id,))],
                          fetch=True)
        return ChatSession(id=sid, owner=owner, created=float(created), locale=locale, persist=True,
                           turns=[Turn.from_dict(json.loads(r[0])) for r in turns])

    def append_turn(self, session: ChatSession, turn: Turn) -> None:
        self._run([self._turn_insert(session.id, turn)])

    def delete(self, session_id: str) -> bool:
        found = self.exists(session_id)
        self._run([("DELETE FROM mentalens_turns WHERE session_id = ?", (session_id,)),
                   ("DELETE FROM mentalens_sessions WHERE id = ?", (session_id,))])
        return found

    def exists(self, session_id: str) -> bool:
        return bool(self._run([("SELECT 1 FROM mentalens_sessions WHERE id = ?", (session_id,))], fetch=True))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def describe(self) -> dict[str, Any]:
        return {"store": "sqlite", "path": str(self.path)}


class PostgresStore(SQLStore):
    """The same tables in PostgreSQL, through psycopg 3 (`pip install 'mentalens[postgres]'`)."""

    param = "%s"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError:
            raise ConfigError("PostgreSQL persistence needs psycopg: pip install 'mentalens[postgres]'") from None
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except Exception as exc:
            raise ConfigError(
                f"cannot connect to PostgreSQL ({type(exc).__name__}): check the URL and that the server is up"
            ) from None
        self.path = None
        self._url_host = url.split("@")[-1].split("/")[0]
        self._lock = threading.Lock()
        self._init()

    def describe(self) -> dict[str, Any]:
        return {"store": "postgresql", "host": self._url_host}


class TieredStore(SessionStore):
    """Memory for every session; the database only for sessions that asked to persist."""

    def __init__(self, memory: MemoryStore, database: SQLStore | None = None):
        self.memory, self.database = memory, database

    def create(self, session: ChatSession) -> None:
        if session.persist:
            if self.database is None:
                raise ConfigError("persistence is off on this server: start it with --persist sqlite:PATH to keep "
                                  "sessions, or create the session with persist=false")
            self.database.create(session)
        self.memory.create(session)

    def get(self, session_id: str) -> ChatSession | None:
        session = self.memory.get(session_id)
        if session is None and self.database is not None:
            session = self.database.get(session_id)
            if session is not None:
                self.memory.create(session)
        return session

    def append_turn(self, session: ChatSession, turn: Turn) -> None:
        if session.persist and self.database is not None:
            self.database.append_turn(session, turn)
        self.memory.append_turn(session, turn)

    def delete(self, session_id: str) -> bool:
        found = self.memory.delete(session_id)
        if self.database is not None and self.database.exists(session_id):
            self.database.delete(session_id)
            found = True
        return found

    def close(self) -> None:
        if self.database is not None:
            self.database.close()

    def describe(self) -> dict[str, Any]:
        return {"memory_sessions": len(self.memory),
                "database": self.database.describe() if self.database is not None else None}


def open_store(persistence: str, max_sessions: int = 1000, ttl_s: float = 6 * 3600) -> TieredStore:
    """The store for a persistence setting: off | sqlite:PATH | PATH.db | postgresql://URL."""
    memory = MemoryStore(max_sessions, ttl_s)
    value = (persistence or "off").strip()
    if value.lower() in ("", "off", "none", "false", "0", "no"):
        return TieredStore(memory)
    if value.startswith(("postgres://", "postgresql://")):
        return TieredStore(memory, PostgresStore(value))
    if value.startswith("sqlite:"):
        value = value[len("sqlite:") :].removeprefix("//")
    if not value:
        raise ConfigError("persistence 'sqlite:' needs a path: write sqlite:/path/to/sessions.db")
    if not value.endswith((".db", ".sqlite", ".sqlite3")) and not persistence.startswith("sqlite:"):
        raise ConfigError(f"unknown persistence {persistence!r}: use off, sqlite:PATH or postgresql://URL")
    return TieredStore(memory, SQLStore(value))
