"""kill -9 during writes: a server with SQLite persistence, four clients chatting in persisted sessions
(streaming and not), SIGKILL at random moments, restart, again. Every acknowledged turn (a 200 reply, or a
stream's final chunk) must be in the database after the restarts, readable through the API by its session, and
the database must pass PRAGMA integrity_check."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time

import httpx
import pytest
from harness import ServerProcess, chat_once

KILLS = 6
WORKERS = 4
MESSAGES = ("I can't stop worrying about my exams.", "My sister and I haven't spoken in months.",
            "I feel so tired all the time, even after sleeping.", "Work has been overwhelming lately.",
            "I think I'm finally feeling a bit better today.")


@pytest.mark.timeout(1500)
def test_no_acknowledged_turn_is_lost_when_the_server_is_killed(tmp_path, data_dir, record):
    db = tmp_path / "sessions.db"
    srv = ServerProcess(["--persist", f"sqlite:{db}"], log_path=tmp_path / "server.log")
    rng = random.Random(20261125)
    acked: list[tuple[str, int, str]] = []  # (session id, turn index, the user's text)
    sessions: dict[int, str] = {}  # worker -> its session (kept across restarts)
    created: list[str] = []
    attempts = {"sent": 0, "acknowledged": 0, "cut_by_kill": 0}
    lock = threading.Lock()
    kill_at: list[float] = []

    def worker(w: int, rnd: int, stop: threading.Event) -> None:
        with httpx.Client(timeout=60) as client:
            i = 0
            while not stop.is_set():
                try:
                    if w not in sessions:
                        r = client.post(srv.url + "/v1/sessions", json={"persist": True, "locale": "US"})
                        if r.status_code != 201:
                            continue
                        sid = r.json()["id"]
                        with lock:
                            sessions[w] = sid
                            created.append(sid)
                    text = f"[r{rnd} w{w} t{i}] {MESSAGES[(w + i) % len(MESSAGES)]}"
                    with lock:
                        attempts["sent"] += 1
                    turn = chat_once(client, srv.url, text, stream=(i + w) % 2 == 0, session_id=sessions[w])
                    if turn["status"] == 200:
                        assert turn["mentalens"]["session_id"] == sessions[w]
                        with lock:
                            acked.append((sessions[w], turn["mentalens"]["turn"], text))
                            attempts["acknowledged"] += 1
                    i += 1
                except (httpx.HTTPError, json.JSONDecodeError):
                    with lock:
                        attempts["cut_by_kill"] += 1
                    time.sleep(0.2)

    for rnd in range(KILLS):
        srv.start()
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(w, rnd, stop), daemon=True) for w in range(WORKERS)]
        for t in threads:
            t.start()
        wait = rng.uniform(1.5, 6.0)
        kill_at.append(round(wait, 2))
        time.sleep(wait)
        srv.kill9()  # mid-traffic: replies being generated, turns being committed, streams half sent
        stop.set()
        for t in threads:
            t.join(90)
    srv.start()
    try:
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            rows = {(sid, idx): json.loads(data)["user"] for sid, idx, data in
                    conn.execute("SELECT session_id, idx, data FROM mentalens_turns")}
            stored_sessions = {r[0] for r in conn.execute("SELECT id FROM mentalens_sessions")}
        lost = [(sid, idx, text) for sid, idx, text in acked if rows.get((sid, idx)) != text]
        lost_sessions = [sid for sid in created if sid not in stored_sessions]
        through_api = 0
        with httpx.Client(timeout=30) as client:
            for sid in {s for s, _, _ in acked}:
                got = client.get(f"{srv.url}/v1/sessions/{sid}").json()
                turns = {t["index"]: t["user"] for t in got["turns"]}
                assert sorted(turns) == list(range(len(turns)))  # no holes in a session
                through_api += sum(turns.get(idx) == text for s, idx, text in acked if s == sid)
    finally:
        srv.stop()
    record(kills=KILLS, kill_after_s=kill_at, turns_sent=attempts["sent"], acknowledged_turns=len(acked),
           requests_cut_by_kill=attempts["cut_by_kill"], stored_turns=len(rows), lost_turns=len(lost),
           lost_sessions=len(lost_sessions), integrity_check=integrity, acknowledged_readable_via_api=through_api)
    assert len(acked) >= KILLS * WORKERS  # the test did write while being killed
    assert integrity == "ok"
    assert lost == [] and lost_sessions == []
    assert through_api == len(acked)
