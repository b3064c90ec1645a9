"""`mentalens answer` / `mentalens eval run|score|report` end to end with real small models, and bad input."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def tiny_llama() -> str:
    from mentalens.llm.tiny import tiny_family

    return str(tiny_family()["small"])


def test_eval_run_with_a_local_model_writes_answers_scores_and_a_self_contained_report(cli, tmp_path, tiny_llama):
    out = tmp_path / "run"
    args = [
        "--backend",
        "hf",
        "--model",
        tiny_llama,
        "--set",
        "DR",
        "--set",
        "Irf",
        "--limit",
        "4",
        "--max-new-tokens",
        "6",
        "--output",
        str(out),
        "--no-progress",
        "--resamples",
        "50",
    ]
    code, stdout, stderr = cli("eval", "run", *args)
    assert code == 0, stderr
    for name in ("DR", "Irf"):
        df = pd.read_csv(out / f"{name}.csv")
        assert list(df.columns) == ["goldens", "generated_text"] and len(df) == 4
    run = json.loads((out / "run.json").read_text())
    assert run["backend"]["backend"] == "hf" and run["backend"]["model"]
    scores = json.loads((out / "scores.json").read_text())
    irf = scores["sets"]["Irf"]["correctness"]
    assert irf["n"] == 4 and set(irf["per_aspect"]) == {"thwarted belongingness", "perceived burdensomeness"}
    page = (out / "report.html").read_text()
    assert "MentaLLaMA-chat-13B" in page and "85.68" in page and "-3.24" in page
    assert page.count("data:image/png;base64,") >= 3  # F1 chart, ROUGE chart, confusion matrices
    assert not re.search(r"""(src|href)=["']https?://""", page)  # nothing loaded from the network
    md = (out / "report.md").read_text()
    assert "| DR | 4 |" in md and "Example answers" in md

    # a publishable copy: no IMHI text in it, headline figures as JSON
    pub = tmp_path / "pub"
    code, _, stderr = cli("eval", "report", str(out), "--no-examples", "--out", str(pub), "--json", str(pub / "s.json"))
    assert code == 0, stderr
    first_post = scores["sets"]["DR"]["examples"][0]["post"][:80]
    assert first_post and first_post in page and first_post not in (pub / "report.html").read_text()
    headline = json.loads((pub / "s.json").read_text())
    assert set(headline["sets"]) == {"DR", "Irf"} and headline["sets"]["DR"]["anchor_mentallama_chat_13b_wf1"] == 85.68

    # the same command again resumes: nothing left to answer
    code, stdout, _ = cli("answer", *[a for a in args if a not in ("--resamples", "50")])
    assert code == 0 and re.search(r"DR\s*│\s*4\s*│\s*4\s*│\s*0\s*│", stdout)


def test_smollm2_answers_an_imhi_query(cli, tmp_path, imhi_dir):
    df = pd.read_csv(imhi_dir / "test_data" / "test_instruction" / "loneliness.csv")
    shortest = df.loc[[df["query"].str.len().idxmin()]]  # a real query, short enough for a quick CPU test
    (tmp_path / "data").mkdir()
    shortest.to_csv(tmp_path / "data" / "loneliness.csv", index=False)
    out = tmp_path / "smol"
    code, _, stderr = cli(
        "answer",
        "--backend",
        "hf",
        "--model",
        "smollm2-135m-instruct",
        "--data",
        str(tmp_path / "data"),
        "--max-new-tokens",
        "12",
        "--output",
        str(out),
        "--no-progress",
    )
    assert code == 0, stderr
    row = json.loads((out / "loneliness.jsonl").read_text().splitlines()[0])
    assert row["error"] is None and len(row["generated"].split()) >= 3  # a real model writes words
    assert row["gold"] == shortest["gpt-3.5-turbo"].iloc[0]
    code, _, stderr = cli("eval", "score", str(out), "--no-progress", "--resamples", "10")
    assert code == 0, stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{empty}"], "no IMHI CSV files"),
        (["--data", "{noquery}"], "'query'"),
        (["--backend", "embedded", "--adapter", "x"], "does not take --adapter"),
        (["--backend", "hf"], "needs --model"),
        (["--backend", "gpt5"], "unknown backend"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--set", "nosuchset"], "unknown IMHI task"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "noquery").mkdir()
    (tmp_path / "noquery" / "DR.csv").write_text("post,label\nhello,1\n")
    args = [a.format(empty=tmp_path / "empty", noquery=tmp_path / "noquery") for a in args]
    code, _, stderr = cli("answer", "--output", str(tmp_path / "out"), "--no-progress", *args)
    assert code == 2
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr


def test_report_and_score_need_a_run(cli, tmp_path):
    code, _, stderr = cli("eval", "report", str(tmp_path))
    assert code == 2 and "mentalens eval score" in stderr
    code, _, stderr = cli("eval", "score", str(tmp_path / "nope"))
    assert code == 2 and "run folder not found" in stderr


class _FakeServer:
    """A local OpenAI-compatible endpoint on 127.0.0.1 answering IMHI queries with their gold answers;
    queries in `refuse` get HTTP 400, and `delay` makes every answer slow."""

    def __init__(self, golds: dict[str, str]):
        import http.server
        import threading

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                import time

                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                query = body["messages"][-1]["content"]
                server.requests += 1
                if server.delay:
                    time.sleep(server.delay)
                if query in server.refuse:
                    self._send(400, {"error": {"message": "prompt rejected"}})
                else:
                    msg = {"role": "assistant", "content": server.golds.get(query, "")}
                    self._send(200, {"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]})

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.golds, self.refuse, self.delay, self.requests = golds, set(), 0.0, 0

        class Quiet(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a client that timed out hung up: expected
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_endpoint_rows_fail_alone_then_a_down_endpoint_stops_with_one_line(cli, tmp_path, imhi_dir):
    from mentalens.evaluate import AnswerConfig, load_sets

    df = pd.read_csv(imhi_dir / "test_data" / "test_instruction" / "DR.csv")
    server = _FakeServer(dict(zip(df["query"], df["gpt-3.5-turbo"], strict=True)))
    chosen = load_sets(AnswerConfig(data=str(imhi_dir / "test_data" / "test_instruction"), sets=("DR",), limit=6))
    server.refuse = {chosen["DR"][2].query}
    out = tmp_path / "api"
    args = [
        "answer",
        "--backend",
        "openai",
        "--base-url",
        server.url,
        "--model",
        "gold",
        "--set",
        "DR",
        "--limit",
        "6",
        "--output",
        str(out),
        "--no-progress",
        "--max-retries",
        "1",
        "--timeout",
        "0.3",
    ]
    try:
        code, _, stderr = cli(*args)
        assert code == 0 and "1 row(s) failed" in stderr
        rows = [json.loads(x) for x in (out / "DR.jsonl").read_text().splitlines()]
        assert sum(r["error"] is None for r in rows) == 5
        assert [r for r in rows if r["error"]][0]["query"] == chosen["DR"][2].query
        assert (pd.read_csv(out / "DR.csv")["goldens"] == pd.read_csv(out / "DR.csv")["generated_text"]).all()

        server.refuse = set()
        server.delay = 1.0  # slower than --timeout: retried with backoff, then the row fails
        slow = tmp_path / "slow"
        code, _, stderr = cli(*[str(slow) if a == str(out) else a for a in args])
        assert code == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1
        assert "Finished rows are kept" in stderr
        server.delay = 0.0
    finally:
        server.stop()
    code, _, stderr = cli(*args)  # the retry of the failed row meets a server that is gone
    assert code == 0 and "1 row(s) failed" in stderr  # one failure is not yet "down"; the 5 rows stay
    assert len(pd.read_csv(out / "DR.csv")) == 5
