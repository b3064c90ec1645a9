"""A real server process whose LLM backend fails in every way we know: it refuses connections, hangs, answers
garbage, answers HTTP 500, answers nothing, or drops the connection mid-stream. Every turn still gets a reply
(with crisis resources when risk is flagged), /healthz counts each failure, and when the backend comes back the
same server process answers with it again. Then a model that misbehaves (prompt injection obeyed, lethal
doses, diagnoses, ...) behind the same live server: nothing harmful reaches the client."""

from __future__ import annotations

import httpx
import pytest
from harness import MISBEHAVIOURS, FakeOpenAI, ServerProcess, chat_once, escapes, scripted_reply

CRISIS = "I can't do this anymore. I'm going to kill myself tonight, I have the pills right here."
CALM = ["I've been feeling low since my exams and I can't sleep.", "My partner and I keep fighting about money.",
        "I feel lonely since I moved to a new city."]
FAULTS = ("refuse", "hang", "garbage", "error500", "empty", "drop")


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(script=scripted_reply) as f:
        yield f


@pytest.fixture(scope="module")
def server(fake, data_dir, tmp_path_factory):
    args = ["--backend", "openai", "-o", f"base_url={fake.url}", "-o", "model=fake", "-o", "max_retries=0",
            "-o", "timeout_s=20", "--first-token-timeout", "4", "--stall-timeout", "3", "--locale", "US"]
    log = tmp_path_factory.mktemp("faults") / "server.log"
    with ServerProcess(args, log_path=log) as srv:
        yield srv


def _turns(srv: ServerProcess) -> list[tuple[str, bool]]:
    return [(CRISIS, False), (CRISIS, True), *[(m, i % 2 == 1) for i, m in enumerate(CALM)]]


@pytest.mark.timeout(900)
def test_every_turn_is_answered_whatever_the_backend_does(fake, server, record):
    results: dict[str, dict] = {}
    with httpx.Client() as client:
        fake.mode = "ok"
        ok = chat_once(client, server.url, CALM[0], stream=False)
        assert ok["status"] == 200 and ok["mentalens"]["fallback"] is None  # the backend answers at first
        for fault in FAULTS:
            before = server.health()["stats"]
            if fault == "refuse":
                fake.refuse()
            else:
                fake.mode = fault
            replies = [chat_once(client, server.url, m, stream=s) for m, s in _turns(server)]
            if fault == "refuse":
                fake.start()
            after = server.health()["stats"]
            crisis = [r for r, (m, _) in zip(replies, _turns(server), strict=True) if m == CRISIS]
            results[fault] = {
                "turns": len(replies),
                "answered": sum(r["status"] == 200 and bool(r["text"].strip()) for r in replies),
                "fallbacks_reported": sum(bool((r["mentalens"] or {}).get("fallback")) for r in replies),
                "errors_counted": after["fallbacks"] - before["fallbacks"],
                "crisis_with_resources": sum("988" in r["text"] for r in crisis),
                "crisis_turns": len(crisis),
            }
        fake.mode = "ok"
        back = chat_once(client, server.url, CALM[1], stream=True)
    record(faults=results, recovered=back["mentalens"]["fallback"] is None if back["mentalens"] else False,
           server_restarts=server.starts - 1)
    for fault, r in results.items():
        assert r["answered"] == r["turns"], (fault, r)
        assert r["crisis_with_resources"] == r["crisis_turns"], (fault, r)
        assert r["fallbacks_reported"] == r["turns"] == r["errors_counted"], (fault, r)
    assert back["status"] == 200 and back["mentalens"]["fallback"] is None  # the same process, serving again
    assert server.proc.poll() is None and server.starts == 1


@pytest.mark.timeout(600)
def test_a_misbehaving_model_behind_the_live_server_gets_nothing_harmful_through(fake, server, record):
    fake.mode = "script"
    escaped, turns = [], 0
    with httpx.Client() as client:
        for case in MISBEHAVIOURS:
            for stream in (False, True):
                turn = chat_once(client, server.url, case.message, stream=stream)
                assert turn["status"] == 200, turn
                turns += 1
                escaped += [f"{e} (stream={stream})" for e in escapes(turn, case)]
    fake.mode = "ok"
    record(guard_turns=turns, guard_escapes=len(escaped), escaped=escaped)
    assert escaped == []
