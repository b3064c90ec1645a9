"""Load: the real server in its own process on 127.0.0.1, driven by this process over HTTP.

    python bench/load.py [--sessions 50] [--turns 20] [--rounds 6] [--analyze-clients 10] [--analyze-each 20]

Part 1 (embedded backend, default settings): each round opens --sessions server-side sessions at once and runs
--turns turns in each (half of the sessions stream, half do not; each session's turns one after the other, as a
person would), while --analyze-clients clients post IMHI test posts to /v1/analyze. Messages are CounselChat
questions (real people's words) with a few crisis messages mixed in. Every request's latency and outcome is
recorded; a request is an error unless it is a 200 with a reply (a stream: the final chunk and [DONE]).
Sessions are deleted at the end of each round, and the server's resident memory is read before the first round
and after each one: a leak shows as growth from round to round.

Part 2 (responsiveness): the same server binary with the openai backend pointed at a fake OpenAI endpoint in
this process that streams one word every 0.15 s; --slow-streams chats stream from it (more than the
generation slots, so some queue) while /healthz is polled every 0.1 s.

Writes bench/results/load.json. The machine is shared (2 cores, other jobs): read throughput as what this box
gave at that moment; errors and memory growth are the figures that must hold anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from harness import FakeOpenAI, ServerProcess  # noqa: E402

CRISIS = ("I can't do this anymore, I want to die tonight.", "I've been cutting again and I don't know how to stop.",
          "Everyone would be better off without me.")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return round(s[k] * 1000, 1)


def messages(seed: int) -> tuple[list[str], list[str]]:
    """(chat messages, analysis posts) from the public data: CounselChat questions, IMHI test posts."""
    from mentalens.data import load_counselchat, load_imhi

    questions = sorted({r.text.strip() for r in load_counselchat() if 20 <= len(r.text.strip()) <= 1500})
    posts = sorted({r.post.strip() for r in load_imhi(split="test") if 20 <= len(r.post.strip()) <= 3000})
    rng = random.Random(seed)
    rng.shuffle(questions)
    rng.shuffle(posts)
    return questions, posts[:2000]


async def chat_turn(client: httpx.AsyncClient, sid: str, text: str,
                    stream: bool) -> tuple[str, float, float | None]:
    """(outcome, seconds, seconds to the first content) for one turn. outcome: "ok", "busy_503" (shed after the
    queue timeout), "busy_503_with_resources" (a crisis message shed, its refusal carrying 988), "http_<code>",
    "broken_stream" or "exception"."""
    body = {"model": "mentalens", "messages": [{"role": "user", "content": text}], "session_id": sid,
            "stream": stream}
    start = time.perf_counter()
    first = None
    try:
        if not stream:
            r = await client.post("/v1/chat/completions", json=body)
            if r.status_code != 200:
                return refused(r), time.perf_counter() - start, None
            ok = bool(r.json()["choices"][0]["message"]["content"].strip())
            return "ok" if ok else "empty_reply", time.perf_counter() - start, None
        final = done = False
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                return refused(r), time.perf_counter() - start, None
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = True
                    break
                event = json.loads(line[6:])
                if "error" in event:
                    break
                if first is None and any((c.get("delta") or {}).get("content") for c in event.get("choices") or []):
                    first = time.perf_counter() - start
                final = final or "mentalens" in event
        return "ok" if final and done else "broken_stream", time.perf_counter() - start, first
    except (httpx.HTTPError, json.JSONDecodeError, KeyError):
        return "exception", time.perf_counter() - start, first


def refused(r: httpx.Response) -> str:
    if r.status_code != 503:
        return f"http_{r.status_code}"
    try:
        message = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "busy_503"
    return "busy_503_with_resources" if "988" in message else "busy_503"


async def session_worker(client: httpx.AsyncClient, texts: list[str], stream: bool, out: dict) -> None:
    r = await client.post("/v1/sessions", json={"locale": "US"})
    if r.status_code != 201:
        out["errors"] += len(texts)
        out["error_kinds"][f"session {r.status_code}"] = out["error_kinds"].get(f"session {r.status_code}", 0) + 1
        return
    sid = r.json()["id"]
    for text in texts:
        outcome, seconds, first = await chat_turn(client, sid, text, stream)
        (out["stream_ms"] if stream else out["json_ms"]).append(seconds)
        if first is not None:
            out["first_content"].append(first)
        out["turns"] += 1
        out["errors"] += outcome != "ok"
        if outcome != "ok":
            kind = outcome + (" (crisis message)" if text in CRISIS else "")
            out["error_kinds"][kind] = out["error_kinds"].get(kind, 0) + 1
        out["crisis_turns"] += text in CRISIS
    got = await client.get(f"/v1/sessions/{sid}")
    out["stored_turns"] += len(got.json()["turns"]) if got.status_code == 200 else 0
    await client.delete(f"/v1/sessions/{sid}")


async def analyze_worker(client: httpx.AsyncClient, posts: list[str], out: dict) -> None:
    for post in posts:
        start = time.perf_counter()
        try:
            r = await client.post("/v1/analyze", json={"text": post})
            ok = r.status_code == 200 and bool(r.json()["tasks"])
        except (httpx.HTTPError, json.JSONDecodeError, KeyError):
            ok = False
        out["analyze_ms"].append(time.perf_counter() - start)
        out["analyze"] += 1
        out["analyze_errors"] += not ok


async def one_round(url: str, args: argparse.Namespace, questions: list[str], posts: list[str], rnd: int) -> dict:
    rng = random.Random(1000 + rnd)
    out = {"turns": 0, "errors": 0, "error_kinds": {}, "stream_ms": [], "json_ms": [], "first_content": [],
           "crisis_turns": 0, "analyze": 0, "analyze_errors": 0, "analyze_ms": [], "stored_turns": 0}
    limits = httpx.Limits(max_connections=args.sessions + args.analyze_clients + 10)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        jobs = []
        for s in range(args.sessions):
            texts = [rng.choice(CRISIS) if rng.random() < 0.05 else rng.choice(questions) for _t in range(args.turns)]
            jobs.append(session_worker(client, texts, stream=s % 2 == 0, out=out))
        for _ in range(args.analyze_clients):
            jobs.append(analyze_worker(client, [rng.choice(posts) for _p in range(args.analyze_each)], out))
        start = time.perf_counter()
        await asyncio.gather(*jobs)
        out["seconds"] = time.perf_counter() - start
    return out


async def slow_backend(args: argparse.Namespace, data: str) -> dict:
    """/healthz latency while chats stream from a slow OpenAI-compatible endpoint."""
    with FakeOpenAI(mode="slow", slow_delay_s=0.15) as fake, ServerProcess(
            ["--backend", "openai", "-o", f"base_url={fake.url}", "-o", "model=fake", "-o", "max_retries=0"],
            log_path=Path(data) / "slow-server.log") as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=300) as client:
            health_ms: list[float] = []
            busy_during: list[int] = []
            stop = asyncio.Event()

            async def poll() -> None:
                while not stop.is_set():
                    t = time.perf_counter()
                    r = await client.get("/healthz")
                    health_ms.append(time.perf_counter() - t)
                    busy_during.append(r.json()["stats"]["generating"])
                    await asyncio.sleep(0.1)

            poller = asyncio.create_task(poll())
            out = {"turns": 0, "errors": 0, "error_kinds": {}, "stream_ms": [], "json_ms": [], "first_content": [],
                   "stored_turns": 0, "crisis_turns": 0}
            start = time.perf_counter()
            await asyncio.gather(*[session_worker(client, ["I feel anxious about tomorrow."], True, out)
                                   for _ in range(args.slow_streams)])
            streaming_s = time.perf_counter() - start
            stop.set()
            await poller
    return {
        "slow_streams": args.slow_streams,
        "slow_stream_errors": out["errors"],
        "slow_stream_seconds_p50": pct(out["stream_ms"], 50),
        "streaming_wall_s": round(streaming_s, 1),
        "healthz_polls": len(health_ms),
        "healthz_polls_while_generating": sum(b > 0 for b in busy_during),
        "healthz_p50_ms": pct(health_ms, 50),
        "healthz_p99_ms": pct(health_ms, 99),
        "healthz_max_ms": round(max(health_ms) * 1000, 1) if health_ms else None,
    }


def merged_kinds(rounds: list[dict]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in rounds:
        for k, n in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + n
        if r["analyze_errors"]:
            kinds["analyze"] = kinds.get("analyze", 0) + r["analyze_errors"]
    return dict(sorted(kinds.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--analyze-clients", type=int, default=10)
    parser.add_argument("--analyze-each", type=int, default=20)
    parser.add_argument("--slow-streams", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "results" / "load.json"))
    parser.add_argument("--log-dir", default=os.environ.get("TMPDIR", "/tmp"))
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    questions, posts = messages(args.seed)
    rounds = []
    t0 = time.perf_counter()
    server_log_path = Path(args.log_dir) / "load-server.log"
    server_log_path.unlink(missing_ok=True)  # the server appends: count this run's lines only
    with ServerProcess([], log_path=server_log_path) as srv:
        # warm-up: the first requests pay one-time costs (lazy imports, caches) that are not load
        asyncio.run(one_round(srv.url, argparse.Namespace(sessions=2, turns=2, analyze_clients=1, analyze_each=2),
                              questions, posts, -1))
        rss = [round(srv.rss_mb(), 1)]
        for rnd in range(args.rounds):
            with console.status(f"round {rnd + 1}/{args.rounds}: {args.sessions} sessions x {args.turns} turns"):
                r = asyncio.run(one_round(srv.url, args, questions, posts, rnd))
            rss.append(round(srv.rss_mb(), 1))
            stats = srv.health()["stats"]
            chats = r["stream_ms"] + r["json_ms"]
            rounds.append({
                "round": rnd + 1, "turns": r["turns"], "errors": r["errors"], "analyze": r["analyze"],
                "analyze_errors": r["analyze_errors"], "stored_turns": r["stored_turns"],
                "error_kinds": r["error_kinds"], "crisis_turns": r["crisis_turns"],
                "seconds": round(r["seconds"], 1), "turns_per_s": round(r["turns"] / r["seconds"], 2),
                "requests_per_s": round((r["turns"] + r["analyze"]) / r["seconds"], 2),
                "chat_p50_ms": pct(chats, 50), "chat_p95_ms": pct(chats, 95), "chat_p99_ms": pct(chats, 99),
                "stream_first_content_p50_ms": pct(r["first_content"], 50),
                "stream_first_content_p99_ms": pct(r["first_content"], 99),
                "analyze_p50_ms": pct(r["analyze_ms"], 50), "analyze_p99_ms": pct(r["analyze_ms"], 99),
                "rss_after_mb": rss[-1], "server_fallbacks_total": stats.get("fallbacks"),
                "_chats": chats, "_analyze": r["analyze_ms"],
            })
        server_log = srv.log_text()
    with console.status(f"slow backend: {args.slow_streams} streams, /healthz polled"):
        slow = asyncio.run(slow_backend(args, args.log_dir))

    all_chats = [x for r in rounds for x in r.pop("_chats")]
    all_analyze = [x for r in rounds for x in r.pop("_analyze")]
    total_s = sum(r["seconds"] for r in rounds)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "config": {"sessions": args.sessions, "turns": args.turns, "rounds": args.rounds,
                   "analyze_clients": args.analyze_clients, "analyze_each": args.analyze_each,
                   "backend": "embedded", "server": "defaults (max_concurrency 4, queue timeout 30 s)"},
        "load_turns": sum(r["turns"] for r in rounds),
        "load_errors": sum(r["errors"] + r["analyze_errors"] for r in rounds),
        "load_analyze_requests": sum(r["analyze"] for r in rounds),
        "load_error_kinds": merged_kinds(rounds),
        "load_crisis_turns": sum(r["crisis_turns"] for r in rounds),
        "load_turns_per_s": round(sum(r["turns"] for r in rounds) / total_s, 2),
        "load_requests_per_s": round(sum(r["turns"] + r["analyze"] for r in rounds) / total_s, 2),
        "load_p50_ms": pct(all_chats, 50), "load_p95_ms": pct(all_chats, 95), "load_p99_ms": pct(all_chats, 99),
        "analyze_p50_ms": pct(all_analyze, 50), "analyze_p99_ms": pct(all_analyze, 99),
        "rss_mb_before": rss[0], "rss_mb_after_each_round": rss[1:],
        "rss_growth_mb_first_to_last_round": round(rss[-1] - rss[1], 1),
        "rss_growth_mb_per_round_after_first": round((rss[-1] - rss[1]) / max(1, len(rss) - 2), 1),
        # a leak keeps growing round after round; the allocators' warm-up to a high-water mark stops: the
        # growth of the last two rounds tells them apart (None with fewer than 3 rounds)
        "rss_growth_mb_per_round_last_two": round((rss[-1] - rss[-3]) / 2, 1) if len(rss) >= 4 else None,
        "server_log_error_lines": sum(" ERROR " in line or "Traceback" in line for line in server_log.splitlines()),
        "rounds": rounds,
        **slow,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    table = Table(title=f"load: {args.sessions} sessions x {args.turns} turns x {args.rounds} rounds "
                        f"+ /v1/analyze ({os.cpu_count()} cores, shared)")
    for col in ("round", "turns", "errors", "analyze", "turns/s", "req/s", "p50 ms", "p95 ms", "p99 ms",
                "first delta p50", "RSS MB"):
        table.add_column(col, justify="right")
    for r in rounds:
        table.add_row(str(r["round"]), str(r["turns"]), str(r["errors"] + r["analyze_errors"]), str(r["analyze"]),
                      str(r["turns_per_s"]), str(r["requests_per_s"]), str(r["chat_p50_ms"]), str(r["chat_p95_ms"]),
                      str(r["chat_p99_ms"]), str(r["stream_first_content_p50_ms"]), str(r["rss_after_mb"]))
    console.print(table)
    console.print(f"errors by kind: {result['load_error_kinds'] or 'none'} ({result['load_crisis_turns']} crisis "
                  "messages sent)")
    console.print(f"RSS before {rss[0]} MB, after each round {rss[1:]} MB; server log error lines: "
                  f"{result['server_log_error_lines']}")
    console.print(f"slow backend: {slow['slow_streams']} streams ({slow['slow_stream_errors']} errors, "
                  f"{slow['streaming_wall_s']} s); /healthz p50 {slow['healthz_p50_ms']} ms, p99 "
                  f"{slow['healthz_p99_ms']} ms, max {slow['healthz_max_ms']} ms over {slow['healthz_polls']} polls "
                  f"({slow['healthz_polls_while_generating']} while replies were being generated)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
