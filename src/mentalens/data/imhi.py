"""IMHI loaders: the instruction and completion formats, test/train/val, any folder laid out like IMHI.

Accepted inputs: the IMHI root (test_data/, train_data/), the data folder holding it (imhi/), any folder of
IMHI-format CSVs (searched recursively), or a single CSV. A file's set comes from its name (DR.csv,
t-sid.csv) or its folder (train_data/instruction_data/DR/train.csv); its split and format from its path
or, failing that, its content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from mentalens.data.io import read_table
from mentalens.data.records import ImhiRecord
from mentalens.errors import DataError, UnknownNameError
from mentalens.paths import resolve_data_dir
from mentalens.tasks import TASKS, Task, split_answer

SPLITS = ("test", "train", "val")
FORMATS = ("instruction", "complete")

_INSTRUCTION = re.compile(r'^\s*Consider this post:\s*"?(?P<post>.*?)"?\s*Question:\s*(?P<q>.*?)\s*$', re.DOTALL)
_COMPLETE = re.compile(r"^\s*Post:\s*(?P<post>.*?)\s*Question:\s*(?P<q>.*?)\s*$", re.DOTALL)


def split_query(query: str) -> tuple[str, str, str]:
    """(post, question, fmt) of an IMHI query in either format; unknown shapes keep the whole query."""
    text = str(query)
    if text.lstrip().startswith("Consider this post:"):
        body = text.lstrip()[len("Consider this post:") :]
        post, sep, q = body.rpartition("Question:")
        if sep:
            return post.strip().strip('"').strip(), q.strip(), "instruction"
    if text.lstrip().startswith("Post:"):
        body = text.lstrip()[len("Post:") :]
        post, sep, q = body.rpartition("Question:")
        if sep:
            return post.strip(), q.strip(), "complete"
    return text.strip(), "", "instruction"


def _set_of(path: Path) -> str | None:
    """The IMHI set a CSV belongs to, from its file name or its folder name."""
    for candidate in (path.stem, path.parent.name):
        if candidate in TASKS:
            return TASKS.get(candidate).imhi_set
    return None


def _split_of(path: Path) -> str:
    parts = [p.lower() for p in path.parts]
    stem = path.stem.lower()
    if "val" in stem or "valid" in stem or "dev" in stem:
        return "val"
    if "test" in stem or any(p.startswith("test") for p in parts[-3:-1]):
        return "test"
    if "train" in stem or any("train" in p for p in parts[-3:-1]):
        return "train"
    return "test"


def _fmt_of(path: Path) -> str | None:
    parts = [p.lower() for p in path.parts]
    if any("complete" in p for p in parts[-3:-1]):
        return "complete"
    if any("instruction" in p for p in parts[-3:-1]):
        return "instruction"
    return None


def imhi_root(path: str | Path | None = None) -> Path:
    """The folder to search: the given path, or <data>/imhi of the default data folder."""
    if path is None:
        root = resolve_data_dir() / "imhi"
        if not root.is_dir():
            raise DataError(f"{root}: no IMHI folder in the data folder: run `mentalens data fetch`")
        return root
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: not found: pass an IMHI folder or CSV file")
    if p.is_dir() and (p / "imhi").is_dir():
        return p / "imhi"
    return p


def imhi_files(path: str | Path | None = None) -> list[Path]:
    """Every IMHI-format CSV under path (or path itself when it is a file)."""
    root = imhi_root(path)
    if root.is_file():
        return [root]
    files = sorted(f for f in root.rglob("*.csv") if not f.name.startswith("."))
    if not files:
        raise DataError(f"{root}: no IMHI CSV files found: expected files like DR.csv with a 'query' column")
    return files


def _rows(path: Path) -> Iterable[tuple[int, str, str, str, str, str]]:
    """(index, query, post, question, answer, fmt) for each row of an IMHI file of any known layout."""
    df = read_table(path)
    cols = set(df.columns)
    if "query" in cols:
        # files to be answered may have no gold answers: their records get answer "" and label None
        answer_col = next((c for c in ("gpt-3.5-turbo", "response", "goldens", "answer") if c in cols), None)
        golds = df[answer_col] if answer_col else [""] * len(df)
        for i, (q, a) in enumerate(zip(df["query"], golds, strict=True)):
            post, question, fmt = split_query(q)
            yield i, q, post, question, a, fmt
    elif {"post", "question", "response"} <= cols:
        for i, (p, q, a) in enumerate(zip(df["post"], df["question"], df["response"], strict=True)):
            post = re.sub(r"^\s*Post:\s*", "", p).strip()
            question = re.sub(r"^\s*Question:\s*", "", q.strip()).strip()
            yield i, f"Post: {post} Question: {question}", post, question, a, "complete"
    else:
        found = ", ".join(map(str, df.columns)) or "none"
        raise DataError(
            f"{path}: not an IMHI file: expected a 'query' column (or post/question/response); found {found}"
        )


def _task_for_file(path: Path, set_hint: str | None, first_question: str) -> Task:
    from mentalens.tasks import detect_task

    if set_hint:
        return TASKS.get(set_hint)
    found = detect_task(first_question)
    if found is None:
        raise DataError(
            f"{path}: cannot tell which IMHI set this is: name the file after the set "
            f"(one of {', '.join(t.imhi_set for _, t in TASKS.items())}) or use an IMHI question"
        )
    return found[0]


def load_imhi_file(path: str | Path, *, split: str | None = None, set_name: str | None = None) -> list[ImhiRecord]:
    """Records of one IMHI CSV (set and split inferred from the path unless given)."""
    p = Path(path)
    rows = list(_rows(p))
    if not rows:
        raise DataError(f"{p}: no rows: expected at least one IMHI query")
    task = _task_for_file(p, set_name or _set_of(p), rows[0][3])
    file_split = split or _split_of(p)
    path_fmt = _fmt_of(p)
    records = []
    for i, query, post, question, answer, fmt in rows:
        _, explanation = split_answer(answer)
        records.append(
            ImhiRecord(
                set_name=task.imhi_set,
                task=task.name,
                aspect=task.aspect_of(question),
                post=post,
                question=question,
                query=query,
                answer=answer,
                label=task.parse(answer) if answer else None,
                explanation=explanation,
                split=file_split,
                fmt=path_fmt or fmt,
                source=str(p),
                index=i,
            )
        )
    return records


def load_imhi(
    path: str | Path | None = None,
    *,
    split: str | None = None,
    fmt: str | None = None,
    sets: Iterable[str] | None = None,
) -> list[ImhiRecord]:
    """All IMHI records under path, optionally only one split ("test"/"train"/"val"), format and sets."""
    if split is not None and split not in SPLITS:
        raise UnknownNameError("split", split, SPLITS)
    if fmt is not None and fmt not in FORMATS:
        raise UnknownNameError("format", fmt, FORMATS)
    wanted = {TASKS.get(s).imhi_set for s in sets} if sets else None
    records: list[ImhiRecord] = []
    for f in imhi_files(path):
        set_hint = _set_of(f)
        if wanted is not None and set_hint is not None and set_hint not in wanted:
            continue
        if split is not None and _split_of(f) != split:
            continue
        path_fmt = _fmt_of(f)
        if fmt is not None and path_fmt is not None and path_fmt != fmt:
            continue
        recs = load_imhi_file(f)
        if fmt is not None:
            recs = [r for r in recs if r.fmt == fmt]
        if wanted is not None:
            recs = [r for r in recs if r.set_name in wanted]
        records.extend(recs)
    if not records:
        what = ", ".join(x for x in (split, fmt, ", ".join(sorted(wanted)) if wanted else None) if x)
        raise DataError(
            f"{imhi_root(path)}: no IMHI records{' for ' + what if what else ''}: check the folder and filters"
        )
    return records
