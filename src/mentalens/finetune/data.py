"""Training examples from every source, leakage-guarded, mixed with weights and split into train/eval.

Sources become `Example`s (a chat `messages` list whose assistant turns are the answers). Before anything
else, every example passes the leakage guard: a post (or user message) that appears in any IMHI test set
is dropped and counted, whatever the source, so no fine-tuned model has seen the posts it is scored on.
The guard is not optional; without the IMHI test sets there is nothing to guard against, so that is an
error too.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mentalens.errors import DataError
from mentalens.finetune.config import DataSection, SourceSection
from mentalens.registry import Registry


@dataclass
class Example:
    """One conversation to learn from; the loss falls on its assistant turns only."""

    messages: list[dict[str, str]]
    source: str  # e.g. "imhi:DR", "counselchat", "jsonl:my.jsonl"
    stratum: str = ""  # set + label, for stratified sampling and splits
    texts: tuple[str, ...] = ()  # what the leakage guard compares (posts / user messages)


@dataclass
class DataReport:
    """What was loaded, dropped and kept, per source: written next to every run."""

    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    leakage: dict[str, Any] = field(default_factory=dict)
    train: int = 0
    eval: int = 0
    train_by_source: dict[str, int] = field(default_factory=dict)
    dropped_overlength: dict[str, int] = field(default_factory=lambda: {"train": 0, "eval": 0})

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "leakage_guard": self.leakage,
            "train_examples": self.train,
            "eval_examples": self.eval,
            "train_by_source": self.train_by_source,
            "dropped_overlength": self.dropped_overlength,
        }


# ------------------------------------------------------------------------------------------------ loaders

SOURCES: Registry[Callable[[SourceSection], list[Example]]] = Registry("data source")


def _system(src: SourceSection, default: str | None) -> list[dict[str, str]]:
    prompt = src.system_prompt if src.system_prompt is not None else default
    return [{"role": "system", "content": prompt}] if prompt else []


@SOURCES.register("imhi")
def _imhi(src: SourceSection) -> list[Example]:
    from mentalens.data import load_imhi
    from mentalens.data.imhi import imhi_root

    splits = ("train", "val") if src.split == "train+val" else (src.split,)
    records = []
    for split in splits:
        try:
            records += load_imhi(src.path, split=split, fmt=src.fmt, sets=src.sets or None)
        except DataError:
            if len(splits) == 1:
                raise
    if not records:
        raise DataError(f"{imhi_root(src.path)}: no IMHI {src.split} records for sets {src.sets or 'all'}")
    out = []
    for r in records:
        if r.split == "test":  # never, whatever the folder layout says
            continue
        msgs = [*_system(src, None), {"role": "user", "content": r.query}, {"role": "assistant", "content": r.answer}]
        out.append(Example(msgs, f"imhi:{r.set_name}", f"{r.set_name}|{r.aspect}|{r.label}", (r.post,)))
    return out


def _counsel_examples(records: Sequence[Any], src: SourceSection, source: str) -> list[Example]:
    from mentalens.llm.prompts import COUNSELLING_SYSTEM_PROMPT

    out = []
    for r in records:
        msgs = [*_system(src, COUNSELLING_SYSTEM_PROMPT), {"role": "user", "content": r.context},
                {"role": "assistant", "content": r.answer}]
        out.append(Example(msgs, source, r.topic or "", (r.context, r.text)))
    return out


@SOURCES.register("counselchat")
def _counselchat(src: SourceSection) -> list[Example]:
    from mentalens.data import load_counselchat

    records = load_counselchat(src.path, split=None if src.split == "all" else src.split)
    return _counsel_examples(records, src, "counselchat")


@SOURCES.register("hf_counselling")
def _hf_counselling(src: SourceSection) -> list[Example]:
    from mentalens.data import load_hf_counselling

    split = "train" if src.split in ("all", "train+val") else src.split
    return _counsel_examples(load_hf_counselling(str(src.name), split=split), src, f"hf:{src.name}")


@SOURCES.register("jsonl")
def _jsonl(src: SourceSection) -> list[Example]:
    """Chat rows {"messages": [...]} or prompt/completion rows {"prompt": ..., "completion": ...}."""
    from mentalens.data import read_jsonl
    from mentalens.data.imhi import split_query

    path = Path(str(src.path)).expanduser()
    rows = read_jsonl(path)
    out = []
    for i, row in enumerate(rows, 1):
        if isinstance(row.get("messages"), list):
            msgs = []
            for m in row["messages"]:
                if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                    raise DataError(f"{path}:{i}: each message needs role system|user|assistant and content")
                msgs.append({"role": m["role"], "content": str(m.get("content") or "")})
            if not any(m["role"] == "assistant" for m in msgs):
                raise DataError(f"{path}:{i}: no assistant message: nothing to learn from this row")
            if src.system_prompt and msgs[0]["role"] != "system":
                msgs.insert(0, {"role": "system", "content": src.system_prompt})
        elif "prompt" in row and "completion" in row:
            msgs = [*_system(src, None), {"role": "user", "content": str(row["prompt"])},
                    {"role": "assistant", "content": str(row["completion"]).strip()}]
        else:
            raise DataError(
                f"{path}:{i}: expected {{\"messages\": [...]}} or {{\"prompt\": ..., \"completion\": ...}}, "
                f"found keys {', '.join(map(str, row)) or 'none'}"
            )
        users = [m["content"] for m in msgs if m["role"] == "user"]
        texts = tuple(users) + tuple(split_query(u)[0] for u in users)
        out.append(Example(msgs, f"jsonl:{path.name}", str(row.get("label", "")), texts))
    if not out:
        raise DataError(f"{path}: no rows: expected JSON lines with messages or prompt/completion")
    return out


# ------------------------------------------------------------------------------------------------ mixing


def _prompt_chars(ex: Example) -> int:
    return sum(len(m["content"]) for m in ex.messages if m["role"] != "assistant")


def stratified_sample(items: Sequence[Example], n: int, rng: random.Random, balance: bool = False) -> list[Example]:
    """n items keeping each stratum's share (or equal shares when balance=True, as far as strata allow)."""
    if n >= len(items):
        return list(items)
    groups: dict[str, list[Example]] = defaultdict(list)
    for it in items:
        groups[it.stratum].append(it)
    for g in groups.values():
        rng.shuffle(g)
    keys = sorted(groups)
    if balance:
        picked: list[Example] = []
        while len(picked) < n:  # round robin across strata
            for k in keys:
                if groups[k] and len(picked) < n:
                    picked.append(groups[k].pop())
        return picked
    quotas = {k: len(groups[k]) * n / len(items) for k in keys}
    take = {k: math.floor(q) for k, q in quotas.items()}
    for k in sorted(keys, key=lambda k: quotas[k] - take[k], reverse=True)[: n - sum(take.values())]:
        take[k] += 1
    return [it for k in keys for it in groups[k][: take[k]]]


def apply_weight(items: list[Example], weight: float, rng: random.Random) -> list[Example]:
    """Repeat each example floor(weight) times and a random share of them once more."""
    whole, frac = int(weight), weight - int(weight)
    out = items * whole
    if frac > 0:
        out += rng.sample(items, round(frac * len(items)))
    return out


def _split_eval(items: list[Example], fraction: float, rng: random.Random) -> tuple[list[Example], list[Example]]:
    if fraction <= 0 or len(items) < 2:
        return items, []
    n_eval = max(1, round(fraction * len(items)))
    held = stratified_sample(items, n_eval, rng)
    held_ids = {id(x) for x in held}
    return [x for x in items if id(x) not in held_ids], held


def load_source(src: SourceSection, guard: Any, report: DataReport, rng: random.Random) -> list[Example]:
    """Examples of one source: loaded, leakage-guarded, length-capped and limited."""
    examples = SOURCES.get(src.kind)(src)
    label = examples[0].source.split(":")[0] if examples else src.kind
    kept, leak = guard.filter(examples, text=lambda e: e.texts, source=lambda e: e.source)
    stats = {"loaded": len(examples), "leaked": leak.dropped}
    for k, v in leak.by_source.items():
        report.leakage.setdefault("by_source", {})[k] = report.leakage.get("by_source", {}).get(k, 0) + v
    report.leakage["dropped"] = report.leakage.get("dropped", 0) + leak.dropped
    if src.max_chars:
        before = len(kept)
        kept = [e for e in kept if _prompt_chars(e) <= src.max_chars]
        stats["too_long_chars"] = before - len(kept)
    if src.limit is not None:
        kept = stratified_sample(kept, src.limit, rng, balance=src.balance)
    stats["kept"] = len(kept)
    key = f"{src.kind}:{src.path or src.name or label}:{src.split}:{','.join(src.sets) or 'all'}"
    report.sources[key] = stats
    return kept


@functools.lru_cache(maxsize=4)
def _guard(data_dir: str | None) -> Any:
    """The guard over a data folder's IMHI test sets (built once per process: 27k rows take seconds)."""
    from mentalens.data import LeakageGuard
    from mentalens.paths import resolve_data_dir

    return LeakageGuard.from_data_dir(resolve_data_dir(data_dir))


def build_examples(
    data: DataSection, guard: Any | None = None
) -> tuple[list[Example], list[Example], DataReport]:
    """(train, eval, report): every source guarded, eval held out per source, weights applied to train."""
    if guard is None:
        try:
            guard = _guard(str(Path(data.data_dir).expanduser().resolve()) if data.data_dir else None)
        except DataError as exc:
            raise DataError(
                f"the leakage guard needs the IMHI test sets ({exc}): run `mentalens data fetch`, set "
                "MENTALENS_DATA or data.data_dir"
            ) from None
    rng = random.Random(data.seed)
    report = DataReport(leakage={"test_posts": len(guard), "dropped": 0})
    train: list[Example] = []
    held: list[Example] = []
    for src in data.sources:
        items = load_source(src, guard, report, rng)
        if not data.eval_sources:
            items, ev = _split_eval(items, data.eval_fraction, rng)
            held += ev
        train += apply_weight(items, src.weight, rng)
    if data.eval_sources:
        for src in data.eval_sources:
            held += load_source(src, guard, report, rng)
    if data.eval_max_examples is not None and len(held) > data.eval_max_examples:
        held = stratified_sample(held, data.eval_max_examples, rng)
    rng.shuffle(train)
    report.train, report.eval = len(train), len(held)
    report.train_by_source = dict(Counter(e.source for e in train))
    if not train:
        detail = "; ".join(f"{k}: {v}" for k, v in report.sources.items())
        raise DataError(f"no training examples left after filtering ({detail}): widen the sources or limits")
    return train, held, report


__all__ = ["SOURCES", "DataReport", "Example", "apply_weight", "build_examples", "stratified_sample"]
