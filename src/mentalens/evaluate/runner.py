"""Generation over IMHI sets with any Backend: batched, resumable, failures kept per row.

A run folder holds, per set:

    <set>.csv    goldens, generated_text            exactly MentaLLaMA's model_output layout
    <set>.jsonl  one line per answered query         index, query, gold, generated, seconds, error, ...

and run.json (backend, configuration, data, limit, seed, start/end). A row is done once the JSONL holds it
without an error; re-running the same command skips done rows, retries failed ones and appends. The CSV is
rewritten atomically at checkpoints and at the end of each set, from the JSONL, so a crash at any point
loses at most the batch in flight. A backend that keeps failing (an endpoint that is down) stops the run
with one clear error after a few consecutive failed rows; every finished row stays on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mentalens.backend import Backend, GenerationConfig
from mentalens.errors import BackendError, ConfigError, DataError
from mentalens.evaluate.sampling import stratified_sample

RUN_FILE = "run.json"
# describe() keys that may change between a run and its resume without changing which model answers
VOLATILE_KEYS = frozenset({"device", "devices", "dtype", "truncated_prompts", "fused", "seconds", "calls"})


@dataclass
class AnswerConfig:
    """What to answer and how: data selection, sample, batching, decoding."""

    data: str | None = None  # IMHI folder or CSV; None = the default test_instruction folder
    sets: tuple[str, ...] = ()  # IMHI sets (names or aliases); empty = every set found
    fmt: str | None = None  # instruction | complete | None (whatever the folder holds)
    split: str | None = None  # test | train | val | None (whatever the folder holds)
    limit: int | None = None  # N rows per set, stratified by gold label and aspect
    seed: int = 0
    batch_size: int = 8
    checkpoint_every: int = 64  # rewrite the CSV after this many new rows
    max_consecutive_failures: int = 3  # then stop: the backend is down, not one row bad
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, not {self.limit}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.max_consecutive_failures < 1:
            raise ConfigError("max_consecutive_failures must be at least 1")
        self.sets = tuple(self.sets or ())

    def identity(self) -> dict[str, Any]:
        """The settings that make answers comparable: a resumed run must not change them."""
        return {
            "limit": self.limit,
            "seed": self.seed,
            "fmt": self.fmt,
            "split": self.split,
            "generation": dataclasses.asdict(self.generation),
        }


@dataclass
class SetResult:
    set_name: str
    rows: int  # rows selected
    done: int  # rows answered without error (this run and earlier ones)
    new: int  # rows answered in this run
    failed: int  # rows whose last attempt failed
    empty: int  # answers that were empty
    seconds: float  # generation time in this run


@dataclass
class RunSummary:
    out_dir: Path
    sets: list[SetResult]
    backend: dict[str, Any]

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "backend": self.backend,
            "sets": [dataclasses.asdict(s) for s in self.sets],
        }


# ------------------------------------------------------------------------------------------------ data


def default_imhi_folder() -> Path:
    """The IMHI test_instruction folder of the data folder (MentaLLaMA's main benchmark)."""
    from mentalens.paths import resolve_data_dir

    root = resolve_data_dir()
    for candidate in (root / "imhi" / "test_data" / "test_instruction", root / "test_data" / "test_instruction"):
        if candidate.is_dir():
            return candidate
    raise DataError(f"{root}: no imhi/test_data/test_instruction folder: pass --data DIR or run `mentalens data fetch`")


def load_sets(config: AnswerConfig) -> dict[str, list]:
    """Records per IMHI set (file stem), sampled when config.limit is set; one source file per set."""
    from mentalens.data import load_imhi

    path = Path(config.data).expanduser() if config.data else default_imhi_folder()
    records = load_imhi(path, split=config.split, fmt=config.fmt, sets=config.sets or None)
    by_set: dict[str, list] = {}
    sources: dict[str, set[str]] = {}
    for r in records:
        by_set.setdefault(r.set_name, []).append(r)
        sources.setdefault(r.set_name, set()).add(r.source)
    for name, files in sources.items():
        if len(files) > 1:
            listed = ", ".join(sorted(files)[:3])
            raise DataError(
                f"set {name} comes from {len(files)} files ({listed}): pass --format instruction|complete, "
                "--split, or a folder with one file per set (e.g. imhi/test_data/test_instruction)"
            )
    out = {}
    for name in sorted(by_set):
        recs = sorted(by_set[name], key=lambda r: r.index)
        out[name] = stratified_sample(
            recs, config.limit, key=lambda r: (r.label, r.aspect), seed=config.seed, salt=name
        )
    return out


# ------------------------------------------------------------------------------------------------ files


def read_rows(path: Path) -> dict[int, dict[str, Any]]:
    """The last recorded attempt per row index.

    A line that is not valid JSON can only be a record torn by a crash mid-write: it is skipped, and its
    row (absent, or recorded again after it) is simply redone.
    """
    rows: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows[int(row["index"])] = row
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return rows


def _append_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    # a torn last line from a crash would swallow the next record: start on a fresh line
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            needs_newline = f.read(1) != b"\n"
    else:
        needs_newline = False
    with path.open("a", encoding="utf-8") as f:
        if needs_newline:
            f.write("\n")
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_imhi_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """MentaLLaMA's output layout (goldens, generated_text), written atomically."""
    import pandas as pd

    from mentalens.data import atomic_write

    df = pd.DataFrame(
        {"goldens": [r["gold"] for r in rows], "generated_text": [r["generated"] for r in rows]},
        columns=["goldens", "generated_text"],
    )
    with atomic_write(path) as f:
        df.to_csv(f, index=False, escapechar="\\")


def _write_csv_from(path: Path, rows: dict[int, dict[str, Any]]) -> None:
    done = [rows[i] for i in sorted(rows) if rows[i].get("error") is None]
    write_imhi_csv(path, done)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    from mentalens.data import atomic_write

    with atomic_write(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2, default=str)
        f.write("\n")


def _identity_of(desc: Any) -> Any:
    """describe() without its volatile keys (recursively): what must match for a run to be resumed."""
    if isinstance(desc, dict):
        return {k: _identity_of(v) for k, v in desc.items() if k not in VOLATILE_KEYS}
    if isinstance(desc, list | tuple):
        return [_identity_of(v) for v in desc]
    return json.loads(json.dumps(desc, default=str))


def _start_run(out_dir: Path, backend: Backend, config: AnswerConfig, data: str) -> dict[str, Any]:
    """run.json: created on the first run, checked and updated when resuming."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RUN_FILE
    desc = backend.describe()
    identity = config.identity()
    if path.is_file():
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise DataError(f"{path}: not valid JSON: repair it or answer into a new --output folder") from None
        if run.get("backend_identity") != _identity_of(desc):
            raise ConfigError(
                f"{out_dir} holds answers of another backend ({run.get('backend_identity')}): use a new --output folder"
            )
        if run.get("identity") != json.loads(json.dumps(identity, default=str)):
            raise ConfigError(
                f"{out_dir} was answered with other settings ({run.get('identity')}): resume with the same "
                "--limit/--seed/--format/decoding options or use a new --output folder"
            )
        run.setdefault("resumed", []).append(_now())
        run["finished"] = None
    else:
        from mentalens import __version__

        run = {
            "mentalens": __version__,
            "backend": desc,
            "backend_identity": _identity_of(desc),
            "identity": identity,
            "config": dataclasses.asdict(config),
            "data": data,
            "limit": config.limit,
            "seed": config.seed,
            "started": _now(),
            "resumed": [],
            "finished": None,
            "sets": {},
        }
    _write_json(path, json.loads(json.dumps(run, default=str)))
    return run


# ------------------------------------------------------------------------------------------------ runner


class _FailureStreak:
    """Counts consecutive failed rows; too many means the backend itself is broken (stop, keep rows)."""

    def __init__(self, limit: int):
        self.limit, self.count, self.last = limit, 0, ""

    def record(self, ok: bool, error: str = "") -> None:
        self.count = 0 if ok else self.count + 1
        if not ok:
            self.last = error

    @property
    def broken(self) -> bool:
        return self.count >= self.limit


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _answer_batch(
    backend: Backend, prompts: list[str], gen: GenerationConfig, max_failures: int = 3
) -> list[tuple[str | None, str | None, float]]:
    """(answer, error, seconds) per prompt; a failed batch is retried row by row to isolate bad rows.

    Row by row, max_failures failures in a row mean the backend itself is failing: the rest of the batch
    is marked as not attempted instead of waiting through every row's retries.
    """
    t0 = time.perf_counter()
    try:
        outs = backend.answer(prompts, gen)
        if not isinstance(outs, list | tuple) or len(outs) != len(prompts):
            got = len(outs) if isinstance(outs, list | tuple) else type(outs).__name__
            raise BackendError(f"backend returned {got} answers for {len(prompts)} prompts")
        per = (time.perf_counter() - t0) / len(prompts)
        return [(str(o), None, per) if o is not None else (None, "backend returned no text (None)", per) for o in outs]
    except Exception as exc:  # a backend bug or outage must not end the run: rows are isolated below
        if len(prompts) == 1:
            return [(None, _error_text(exc), time.perf_counter() - t0)]
    results: list[tuple[str | None, str | None, float]] = []
    streak = 0
    for p in prompts:
        if streak >= max_failures:
            results.append((None, "not attempted: the backend was failing", 0.0))
            continue
        (one,) = _answer_batch(backend, [p], gen)
        streak = streak + 1 if one[1] is not None else 0
        results.append(one)
    return results


def run_answers(
    backend: Backend,
    config: AnswerConfig,
    out_dir: str | Path,
    *,
    show_progress: bool = True,
    on_batch: Callable[[str, int], None] | None = None,
) -> RunSummary:
    """Answer every selected IMHI query with backend into out_dir (resuming what is already there)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(out_dir).expanduser()
    sets = load_sets(config)  # every file is read and checked before any work starts
    data = str(Path(config.data).expanduser() if config.data else default_imhi_folder())
    run = _start_run(out, backend, config, data)

    plans = []
    for name, recs in sets.items():
        rows = read_rows(out / f"{name}.jsonl")
        todo = [r for r in recs if r.index not in rows or rows[r.index].get("error") is not None]
        # longest first: batches of similar length pad less, and a prompt too long for memory fails at once
        todo.sort(key=lambda r: (-len(r.query), r.index))
        plans.append((name, recs, rows, todo))

    streak = _FailureStreak(config.max_consecutive_failures)
    results: list[SetResult] = []
    progress = Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
    )
    with progress:
        bar = progress.add_task("answer", total=sum(len(p[3]) for p in plans))
        for name, recs, rows, todo in plans:
            progress.update(bar, description=name)
            jsonl, csv = out / f"{name}.jsonl", out / f"{name}.csv"
            t_set, new, since_checkpoint = time.perf_counter(), 0, 0
            try:
                for start in range(0, len(todo), config.batch_size):
                    batch = todo[start : start + config.batch_size]
                    answers = _answer_batch(
                        backend, [r.query for r in batch], config.generation, config.max_consecutive_failures
                    )
                    fresh = []
                    for rec, (text, error, seconds) in zip(batch, answers, strict=True):
                        row = {
                            "index": rec.index,
                            "set": name,
                            "task": rec.task,
                            "aspect": rec.aspect,
                            "query": rec.query,
                            "gold": rec.answer,
                            "gold_label": rec.label,
                            "generated": text,
                            "seconds": round(seconds, 4),
                            "error": error,
                        }
                        rows[rec.index] = row
                        fresh.append(row)
                        streak.record(error is None, error or "")
                        new += error is None
                    _append_rows(jsonl, fresh)
                    since_checkpoint += len(batch)
                    progress.advance(bar, len(batch))
                    if on_batch is not None:
                        on_batch(name, len(batch))
                    if since_checkpoint >= config.checkpoint_every:
                        _write_csv_from(csv, rows)
                        since_checkpoint = 0
                    if streak.broken:
                        raise BackendError(
                            f"{streak.count} rows in a row failed ({streak.last}); stopped. Finished rows are kept "
                            f"in {out}: fix the backend and run the same command again to resume"
                        )
            finally:
                _write_csv_from(csv, rows)
            selected = {r.index for r in recs}
            mine = [rows[i] for i in selected if i in rows]
            results.append(
                SetResult(
                    set_name=name,
                    rows=len(recs),
                    done=sum(r.get("error") is None for r in mine),
                    new=new,
                    failed=sum(r.get("error") is not None for r in mine),
                    empty=sum(r.get("error") is None and not str(r.get("generated") or "").strip() for r in mine),
                    seconds=round(time.perf_counter() - t_set, 3),
                )
            )
            run["sets"][name] = dataclasses.asdict(results[-1])
            _write_json(out / RUN_FILE, json.loads(json.dumps(run, default=str)))
    run["backend"] = backend.describe()  # final counters (e.g. truncated prompts)
    if all(s.failed == 0 for s in results):
        run["finished"] = _now()
    _write_json(out / RUN_FILE, json.loads(json.dumps(run, default=str)))
    return RunSummary(out_dir=out, sets=results, backend=run["backend"])


__all__ = ["AnswerConfig", "RunSummary", "SetResult", "default_imhi_folder", "load_sets", "read_rows", "run_answers"]
