"""Counselling conversations: CounselChat (local file) and the Hugging Face sets the seed used.

All sources become CounselRecord (help-seeker text -> counsellor answer). CounselChat's therapist names,
profile text and URLs are dropped at load time so nothing downstream can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mentalens.data.io import read_table
from mentalens.data.records import CounselRecord
from mentalens.errors import DataError, UnknownNameError
from mentalens.paths import resolve_data_dir
from mentalens.registry import Registry

COUNSELCHAT_FILE = "counselchat/data/20200325_counsel_chat.csv"
COUNSELCHAT_COLUMNS = ("questionID", "questionTitle", "questionText", "topic", "answerText")


def _counselchat_path(path: str | Path | None) -> Path:
    if path is None:
        return resolve_data_dir() / COUNSELCHAT_FILE
    p = Path(path).expanduser()
    if p.is_dir():
        for candidate in (
            p / COUNSELCHAT_FILE,
            p / "data" / Path(COUNSELCHAT_FILE).name,
            p / Path(COUNSELCHAT_FILE).name,
        ):
            if candidate.is_file():
                return candidate
        raise DataError(f"{p}: no CounselChat file ({Path(COUNSELCHAT_FILE).name}) in this folder")
    return p


def load_counselchat(path: str | Path | None = None, split: str | None = None) -> list[CounselRecord]:
    """CounselChat answers as records, optionally one split (train/val/test as the file assigns)."""
    p = _counselchat_path(path)
    df = read_table(p, COUNSELCHAT_COLUMNS)
    has_split = "split" in df.columns
    if split is not None and split not in ("train", "val", "test"):
        raise UnknownNameError("split", split, ("train", "val", "test"))
    records = []
    for row in df.itertuples(index=False):
        r = row._asdict()
        s = r.get("split") or "train" if has_split else "train"
        if split is not None and s != split:
            continue
        answer = str(r["answerText"]).strip()
        if not answer:
            continue
        try:
            upvotes = int(float(r.get("upvotes") or 0))
        except (ValueError, OverflowError):
            upvotes = 0
        records.append(
            CounselRecord(
                question_id=str(r["questionID"]),
                title=str(r["questionTitle"]).strip(),
                text=str(r["questionText"]).strip(),
                topic=str(r["topic"]).strip(),
                answer=answer,
                upvotes=upvotes,
                split=s,
                source="counselchat",
            )
        )
    if not records:
        raise DataError(f"{p}: no counselling answers{' in split ' + split if split else ''}")
    return records


@dataclass(frozen=True)
class HFCounsellingSource:
    """How one Hugging Face counselling set maps to CounselRecord."""

    dataset: str
    context: str
    response: str
    extra_context: str | None = None  # e.g. "input" appended to "instruction"
    language: str = "en"


HF_COUNSELLING: Registry[HFCounsellingSource] = Registry("counselling dataset")
HF_COUNSELLING.register(
    "amod",
    HFCounsellingSource("Amod/mental_health_counseling_conversations", "Context", "Response"),
    aliases=("Amod/mental_health_counseling_conversations",),
)
HF_COUNSELLING.register(
    "es",
    HFCounsellingSource("Intuit-GenSRF/es_mental_health_counseling", "Context", "Response", language="es"),
    aliases=("Intuit-GenSRF/es_mental_health_counseling",),
)
HF_COUNSELLING.register(
    "marmik",
    HFCounsellingSource("marmikpandya/mental-health", "instruction", "output", extra_context="input"),
    aliases=("marmikpandya/mental-health",),
)


def load_hf_counselling(name: str, split: str = "train", **load_kwargs) -> list[CounselRecord]:
    """A Hugging Face counselling set through `datasets` (needs the hub or a local cache of it)."""
    source = HF_COUNSELLING.get(name)
    try:
        import datasets

        ds = datasets.load_dataset(source.dataset, split=split, **load_kwargs)
    except Exception as exc:  # network, auth, missing split: all user-fixable
        raise DataError(
            f"cannot load {source.dataset} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}): "
            "check your internet connection / HF login (HF_TOKEN), or use a local file"
        ) from None
    missing = [c for c in (source.context, source.response) if c not in ds.column_names]
    if missing:
        raise DataError(f"{source.dataset}: missing column(s) {', '.join(missing)}; found {', '.join(ds.column_names)}")
    records = []
    for i, row in enumerate(ds):
        context = str(row[source.context] or "").strip()
        if source.extra_context and row.get(source.extra_context):
            context = f"{context}\n{str(row[source.extra_context]).strip()}".strip()
        answer = str(row[source.response] or "").strip()
        if context and answer:
            records.append(
                CounselRecord(
                    question_id=f"{name}-{i}",
                    title="",
                    text=context,
                    topic="",
                    answer=answer,
                    split=split,
                    source=source.dataset,
                    language=source.language,
                )
            )
    return records
