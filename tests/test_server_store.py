"""Session stores: SQLite (WAL) and PostgreSQL (a real server from the `pgserver` package) keep the same
contract: one row per turn, in order, committed when append_turn returns, gone when deleted."""

from __future__ import annotations

import time

import pytest

from mentalens.counsel.session import ChatSession, Turn
from mentalens.errors import ConfigError
from mentalens.server.store import PostgresStore, SQLStore, open_store


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory):
    import pgserver

    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request, tmp_path, postgres_url):
    """A factory: each call opens a new connection to the same database (as a restarted server would)."""
    opened = []

    def make():
        store = SQLStore(tmp_path / "s.db") if request.param == "sqlite" else PostgresStore(postgres_url)
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()


def _turn(i: int, text: str) -> Turn:
    return Turn(index=i, user=text, reply=f"reply {i}", created=time.time(), emotions={"sadness": 0.5 + i / 10},
                risk_level="low" if i else "none", conditions=[{"task": "DR", "label": "yes", "probability": 0.7}])


def test_turns_are_kept_in_order_across_a_reopen_and_deleted(make_store):
    store = make_store()
    session = ChatSession(locale="GB", owner="key_abc", persist=True)
    store.create(session)
    for i, text in enumerate(["first ünïcode message", "second", "third"]):
        turn = _turn(i, text)
        session.turns.append(turn)
        store.append_turn(session, turn)
    again = make_store().get(session.id)  # a second connection sees every committed turn
    assert again is not None and again.owner == "key_abc" and again.locale == "GB" and again.persist
    assert [t.user for t in again.turns] == ["first ünïcode message", "second", "third"]
    assert again.turns[2].emotions == {"sadness": 0.7} and again.turns[1].conditions[0]["task"] == "DR"
    assert again.timeline()["risk"] == ["none", "low", "low"]
    with pytest.raises(Exception):  # noqa: B017 - the database refuses a duplicate turn index
        store.append_turn(session, _turn(1, "duplicate"))
    assert [t.user for t in make_store().get(session.id).turns] == ["first ünïcode message", "second", "third"]
    assert store.delete(session.id) is True
    assert make_store().get(session.id) is None and store.delete(session.id) is False


def test_open_store_reads_the_persistence_setting(tmp_path, postgres_url):
    assert open_store("off").database is None
    assert isinstance(open_store(f"sqlite:{tmp_path / 'a.db'}").database, SQLStore)
    assert isinstance(open_store(str(tmp_path / "b.sqlite")).database, SQLStore)
    pg = open_store(postgres_url)
    assert isinstance(pg.database, PostgresStore) and pg.describe()["database"]["store"] == "postgresql"
    pg.close()
    with pytest.raises(ConfigError, match="unknown persistence"):
        open_store("mysql://x")
    with pytest.raises(ConfigError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_only_sessions_that_asked_are_written(tmp_path):
    store = open_store(f"sqlite:{tmp_path / 'c.db'}")
    kept, passing = ChatSession(persist=True), ChatSession()
    for s in (kept, passing):
        store.create(s)
        t = _turn(0, "hello")
        s.turns.append(t)
        store.append_turn(s, t)
    assert store.database.get(kept.id) is not None and store.database.get(passing.id) is None
    assert store.get(passing.id) is passing  # in memory only
    memory_only = open_store("off")
    with pytest.raises(ConfigError, match="persistence is off"):
        memory_only.create(ChatSession(persist=True))
