"""Trainer callbacks: a rich progress display, per-rank step logs, a simulated interruption for drills."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class RichProgressCallback(TrainerCallback):
    """One live progress bar (main process) with loss, eval loss, learning rate and answer tokens/s."""

    def __init__(self, console: Any = None, answer_tokens_per_step: float = 0.0):
        self.console = console
        self.answer_tokens_per_step = answer_tokens_per_step
        self.progress = None
        self.task = None
        self.last: dict[str, float] = {}
        self._t0 = 0.0
        self._step0 = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]fine-tuning"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=self.console, transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, info="")
        self._t0, self._step0 = time.perf_counter(), state.global_step

    def _info(self, state) -> str:
        parts = []
        if "loss" in self.last:
            parts.append(f"loss {self.last['loss']:.3f}")
        if "eval_loss" in self.last:
            parts.append(f"eval {self.last['eval_loss']:.3f}")
        if "learning_rate" in self.last:
            parts.append(f"lr {self.last['learning_rate']:.1e}")
        steps = state.global_step - self._step0
        elapsed = time.perf_counter() - self._t0
        if steps > 0 and elapsed > 0 and self.answer_tokens_per_step:
            parts.append(f"{steps * self.answer_tokens_per_step / elapsed:.0f} answer tok/s")
        return "  ".join(parts)

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, info=self._info(state))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        self.last.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
        self.progress.update(self.task, info=self._info(state))

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, info=self._info(state))
            self.progress.stop()
            self.progress = None


class RankLogCallback(TrainerCallback):
    """Each rank writes its own steps and final trainable-weight checksum (ranks/rank<N>.json).

    In data-parallel training every rank must take every optimizer step and end with identical weights;
    these files let tests and users check exactly that.
    """

    def __init__(self, out_dir: Path, model: Any):
        self.out_dir = Path(out_dir) / "ranks"
        self.model = model
        self.steps: list[int] = []
        self.losses: list[float] = []

    @staticmethod
    def rank() -> int:
        return int(os.environ.get("RANK", "0"))

    def _checksum(self) -> tuple[float, int]:
        import torch

        total = torch.zeros((), dtype=torch.float64)
        n = 0
        for p in self.model.parameters():
            if p.requires_grad:
                total += p.detach().double().abs().sum().cpu()
                n += p.numel()
        return float(total), n

    def on_train_begin(self, args, state, control, **kwargs):
        self.initial = self._checksum()[0]

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def on_train_end(self, args, state, control, **kwargs):
        total, n = self._checksum()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        data = {
            "rank": self.rank(),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "steps": self.steps,
            "losses": self.losses,
            "trainable_parameters": n,
            "initial_abs_sum": getattr(self, "initial", None),
            "trainable_abs_sum": total,
        }
        (self.out_dir / f"rank{self.rank()}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")


class StopAfterStepCallback(TrainerCallback):
    """Raise after a given step (simulates a crash in tests and `train.crash_after_step` drills)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt(f"simulated interruption after step {state.global_step}")
