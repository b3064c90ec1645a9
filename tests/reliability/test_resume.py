"""Killed mid-run, resumed: the same result.

- Fine-tuning (`mentalens finetune`, a tiny Llama, LoRA, checkpoints every 2 steps) is SIGKILLed once a
  checkpoint exists, run again with the same command, and must end with the adapter and the per-step losses of
  an uninterrupted run with the same seed.
- Evaluation (`mentalens answer` against an OpenAI-compatible endpoint that counts every request) is SIGKILLed
  mid-run and run again: no finished row is asked again, and the output is complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import MENTALENS, REPO, FakeOpenAI

ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str], log: Path, kill_when=None, timeout_s: float = 600) -> tuple[int, bool]:
    """Run a CLI command; if kill_when() turns true while it runs, SIGKILL it. (exit code, killed)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if kill_when is not None and kill_when():
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return proc.returncode, True
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{cmd[1:3]} ran past {timeout_s} s: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    return proc.returncode, False


# -- fine-tuning ---------------------------------------------------------------------------------------------------
def _finetune_config(tmp: Path, tiny: dict) -> Path:
    cfg = tmp / "tiny.yaml"
    cfg.write_text(f"""
model: {{name: "{tiny['small']}"}}
lora: {{r: 8, dropout: 0.0}}
data:
  sources: [{{kind: imhi, sets: [DR], limit: 40}}, {{kind: imhi, sets: [SAD], limit: 24}}]
  max_length: 512
  eval_max_examples: 8
  eval_fraction: 0.15
train:
  max_steps: 16
  batch_size: 4
  grad_accum: 1
  learning_rate: 0.005
  warmup_ratio: 0
  logging_steps: 1
  eval_steps: 2
  save_steps: 2
  save_total_limit: 20
  keep_checkpoints: true
  tensorboard: false
  threads: 1
  seed: 7
""")
    return cfg


def _losses(run: Path) -> dict[int, float]:
    state = json.loads((run / "checkpoint-16" / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "adapter" / "adapter_model.safetensors"))


@pytest.mark.timeout(1800)
def test_finetuning_killed_mid_run_resumes_to_the_same_adapter(tmp_path, data_dir, record):
    from mentalens.finetune.trainer import checkpoint_is_complete
    from mentalens.llm.tiny import tiny_family

    cfg = _finetune_config(tmp_path, tiny_family())
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    cmd = [str(MENTALENS), "finetune", str(cfg), "--json"]
    code, _ = _run([*cmd, f"train.output_dir={whole}"], tmp_path / "whole.log")
    assert code == 0, (tmp_path / "whole.log").read_text()[-3000:]

    def some_checkpoint() -> bool:
        return any(checkpoint_is_complete(p) for p in broken.glob("checkpoint-*") if p.name != "checkpoint-2")

    code, killed = _run([*cmd, f"train.output_dir={broken}"], tmp_path / "broken.log", kill_when=some_checkpoint)
    assert killed and code == -signal.SIGKILL and not (broken / "adapter").exists()
    at_kill = sorted(int(p.name.split("-")[1]) for p in broken.glob("checkpoint-*") if checkpoint_is_complete(p))
    code, _ = _run([*cmd, f"train.output_dir={broken}"], tmp_path / "resume.log")
    assert code == 0, (tmp_path / "resume.log").read_text()[-3000:]

    metrics = json.loads((broken / "metrics.json").read_text())
    reference = json.loads((whole / "metrics.json").read_text())
    a, b = _weights(whole), _weights(broken)
    max_diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    la, lb = _losses(whole), _losses(broken)
    loss_diff = max(abs(la[s] - lb[s]) for s in la)
    eval_diff = abs(metrics["eval_loss_after"] - reference["eval_loss_after"])
    record(finetune_resumed_from=metrics["resumed_from"], finetune_checkpoints_at_kill=at_kill,
           finetune_adapter_max_abs_diff=max_diff, finetune_step_loss_max_abs_diff=loss_diff,
           finetune_eval_loss_diff=eval_diff, finetune_steps=metrics["global_step"])
    assert metrics["resumed_from"] and metrics["global_step"] == reference["global_step"] == 16
    assert set(a) == set(b) and set(la) == set(lb) == set(range(1, 17))
    assert max_diff <= 1e-5 and loss_diff <= 1e-4 and eval_diff <= 1e-4


# -- evaluation ----------------------------------------------------------------------------------------------------
@pytest.mark.timeout(900)
def test_evaluation_killed_mid_run_redoes_no_finished_row(tmp_path, imhi_dir, record):
    out = tmp_path / "run"
    with FakeOpenAI(delay_s=0.15) as fake:  # "ok": a fixed answer per query, after a short think
        cmd = [str(MENTALENS), "answer", "--backend", "openai", "--base-url", fake.url, "--model", "fake",
               "--data", str(imhi_dir / "test_data" / "test_instruction"), "--set", "DR", "--set", "Irf",
               "--limit", "30", "--batch-size", "4", "--max-retries", "0", "--no-progress", "--output", str(out)]

        def rows_done() -> int:
            return sum(len(p.read_text().splitlines()) for p in out.glob("*.jsonl")) if out.is_dir() else 0

        code, killed = _run(cmd, tmp_path / "first.log", kill_when=lambda: rows_done() >= 22)
        assert killed, (tmp_path / "first.log").read_text()[-2000:]
        from mentalens.evaluate.runner import read_rows

        before = {name: read_rows(out / f"{name}.jsonl") for name in ("DR", "Irf")}
        done_before = {(n, i) for n, rows in before.items() for i, r in rows.items() if r.get("error") is None}
        asked_before = dict(fake.requests)
        code, killed = _run(cmd, tmp_path / "second.log")
        assert code == 0 and not killed, (tmp_path / "second.log").read_text()[-2000:]
        after = {name: read_rows(out / f"{name}.jsonl") for name in ("DR", "Irf")}
        asked_again = {q: n - asked_before.get(q, 0) for q, n in fake.requests.items() if n > asked_before.get(q, 0)}
    redone = [(n, i) for n, i in done_before if after[n][i]["query"] in asked_again]
    rows = sum(len(r) for r in after.values())
    import pandas as pd

    csv_rows = sum(len(pd.read_csv(p)) for p in out.glob("*.csv"))
    run = json.loads((out / "run.json").read_text())
    record(eval_rows=rows, eval_rows_done_at_kill=len(done_before), eval_rows_redone=len(redone),
           eval_requests_total=fake.total, eval_resumed=len(run["resumed"]))
    assert len(done_before) >= 20 and redone == []
    assert rows == 60 and all(r["error"] is None and r["generated"] for n in after for r in after[n].values())
    assert csv_rows == 60 and run["finished"] and len(run["resumed"]) == 1
    assert 60 <= fake.total <= 60 + 4  # at most the batch in flight at the kill is asked twice
