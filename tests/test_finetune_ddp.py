"""The same finetune command under torchrun: two CPU processes (gloo), one tiny model, real DDP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny():
    from mentalens.llm.tiny import tiny_family

    return tiny_family()  # built here once, so the two ranks only read the cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_train_in_lockstep_and_save_one_adapter(tiny, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), "-m", "mentalens.finetune", "-",
    ]
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(
        f"model: {{name: {tiny['small']}}}\n"
        "data:\n  sources: [{kind: imhi, sets: [DR], limit: 40}]\n  max_length: 512\n  eval_max_examples: 8\n"
        f"train:\n  output_dir: {out}\n  max_steps: 4\n  batch_size: 2\n  grad_accum: 2\n  eval_steps: 2\n"
        "  save_steps: 2\n  logging_steps: 1\n  learning_rate: 5.0e-3\n  tensorboard: false\n  threads: 1\n"
    )
    cmd[-1] = str(cfg)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = [json.loads((out / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, log in enumerate(ranks):
        assert log["rank"] == r and log["world_size"] == 2 and log["steps"] == [1, 2, 3, 4]
    # gradients were averaged across ranks: both moved away from the same start to the same weights
    assert ranks[0]["initial_abs_sum"] == pytest.approx(ranks[1]["initial_abs_sum"], rel=1e-12)
    assert ranks[0]["trainable_abs_sum"] == pytest.approx(ranks[1]["trainable_abs_sum"], rel=1e-9)
    assert ranks[0]["trainable_abs_sum"] != pytest.approx(ranks[0]["initial_abs_sum"], rel=1e-6)

    adapters = list(out.rglob("adapter_config.json"))
    assert adapters == [out / "adapter" / "adapter_config.json"]  # exactly one adapter, written by rank 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4
    assert not list(Path(out).glob(".adapter.tmp*"))
