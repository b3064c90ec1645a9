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

    # the same command again resumes: nothing left to answer
    code, stdout, _ = cli("answer", *[a for a in args if a not in ("--resamples", "50")])
    assert code == 0 and re.search(r"DR\s*│\s*4\s*│\s*4\s*│\s*0\s*│", stdout)


def test_smollm2_answers_an_imhi_query(cli, tmp_path):
    out = tmp_path / "smol"
    code, _, stderr = cli(
        "answer",
        "--backend",
        "hf",
        "--model",
        "smollm2-135m-instruct",
        "--set",
        "loneliness",
        "--limit",
        "1",
        "--max-new-tokens",
        "12",
        "--output",
        str(out),
        "--no-progress",
    )
    assert code == 0, stderr
    row = json.loads((out / "loneliness.jsonl").read_text().splitlines()[0])
    assert row["error"] is None and len(row["generated"].split()) >= 3  # a real model writes words
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
