"""Export records for training: chat `messages` JSONL, prompt/completion JSONL, or a datasets.Dataset.

The same records feed any trainer (ours, trl, axolotl, LLaMA-Factory) in the two formats they all read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from mentalens.data.io import write_jsonl
from mentalens.data.records import CounselRecord, ImhiRecord
from mentalens.errors import DataError, UnknownNameError

ExportFormat = Literal["messages", "prompt_completion"]
FORMATS: tuple[str, ...] = ("messages", "prompt_completion")

COUNSELLING_INSTRUCTION = (
    "You are a supportive counsellor. Respond with empathy to the person's concern, without diagnosing."
)


def _prompt_and_answer(record: ImhiRecord | CounselRecord) -> tuple[str, str]:
    if isinstance(record, ImhiRecord):
        return record.query, record.answer
    if isinstance(record, CounselRecord):
        return record.context, record.answer
    raise DataError(f"cannot export a {type(record).__name__}: expected IMHI or counselling records")


def to_messages(record: ImhiRecord | CounselRecord, system: str | None = None) -> dict[str, Any]:
    """{"messages": [system?, user, assistant]} for chat-template training."""
    prompt, answer = _prompt_and_answer(record)
    if system is None and isinstance(record, CounselRecord):
        system = COUNSELLING_INSTRUCTION
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": answer},
    ]
    return {"messages": messages}


def to_prompt_completion(record: ImhiRecord | CounselRecord) -> dict[str, Any]:
    """{"prompt", "completion"} for completion-only training (the completion is what gets the loss)."""
    prompt, answer = _prompt_and_answer(record)
    return {"prompt": prompt, "completion": " " + answer.strip()}


_CONVERTERS = {"messages": to_messages, "prompt_completion": to_prompt_completion}


def _rows(records: Iterable[ImhiRecord | CounselRecord], fmt: str) -> list[dict[str, Any]]:
    if fmt not in _CONVERTERS:
        raise UnknownNameError("export format", fmt, FORMATS)
    return [_CONVERTERS[fmt](r) for r in records]


def export_jsonl(records: Sequence[ImhiRecord | CounselRecord], path: str | Path, fmt: str = "messages") -> int:
    """Write records as JSONL in the given format (atomically); returns the row count."""
    rows = _rows(records, fmt)
    if not rows:
        raise DataError("nothing to export: the selection is empty")
    return write_jsonl(rows, path)


def to_dataset(records: Sequence[ImhiRecord | CounselRecord], fmt: str = "messages"):
    """A datasets.Dataset in the given format."""
    import datasets

    return datasets.Dataset.from_list(_rows(records, fmt))
