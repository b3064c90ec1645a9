"""The raw research sets behind some IMHI tasks: IRF, CAMS and the Reddit C-SSRS suicide-risk data.

They carry labels IMHI lacks (C-SSRS severity) or more training posts (IRF, CAMS). CAMS contains every
IMHI CAMS test post: always pass training data through `LeakageGuard` (the loaders do not).
"""

from __future__ import annotations

import ast
from pathlib import Path

from mentalens.data.io import MIXED, read_table
from mentalens.data.records import RawRecord
from mentalens.errors import DataError, UnknownNameError
from mentalens.paths import resolve_data_dir

CAMS_CAUSES = ("none", "bias or abuse", "jobs and career", "medication", "relationship", "alienation")
CSSRS_LEVELS = ("Supportive", "Indicator", "Ideation", "Behavior", "Attempt")


def _binary(value: str) -> int | None:
    """0 or 1 from a cell such as "1" or "0.0"; None for anything else."""
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number in (0.0, 1.0) else None


def _base(path: str | Path | None, sub: str) -> Path:
    base = resolve_data_dir() if path is None else Path(path).expanduser()
    return base / "raw" / sub if (base / "raw" / sub).exists() else base


def load_irf_raw(path: str | Path | None = None, split: str = "train") -> list[RawRecord]:
    """IRF posts with 0/1 labels for thwarted belongingness (`belong`) and perceived burdensomeness (`burden`)."""
    if split not in ("train", "val", "test"):
        raise UnknownNameError("IRF split", split, ("train", "val", "test"))
    f = _base(path, "irf") / f"{split}_data.csv"
    df = read_table(f, ("text", "belong", "burden"))
    out = []
    for i, r in enumerate(df.itertuples(index=False)):
        labels = {"belong": _binary(r.belong), "burden": _binary(r.burden)}
        if None in labels.values():
            raise DataError(f"{f}:{i + 2}: belong/burden must be 0 or 1, got {r.belong!r}/{r.burden!r}")
        expl = " ".join(x for x in (getattr(r, "belong_exp", ""), getattr(r, "burden_exp", "")) if x and x != "nan")
        out.append(RawRecord("irf", str(r.text), labels, expl or None, split, f"irf-{split}-{i}", (str(r.text),)))
    return out


def load_cams_raw(path: str | Path | None = None) -> list[RawRecord]:
    """CAMS posts with their cause of depression (0-5 -> CAMS_CAUSES) and the annotators' inference."""
    f = _base(path, "cams") / "CAMS" / "data" / "added_CAMS_data.csv"
    if not f.is_file():
        f = _base(path, "cams") / "added_CAMS_data.csv"
    # the published file is mostly UTF-8 with some Windows-1252 bytes
    df = read_table(f, ("selftext", "cause"), encoding=MIXED)
    out = []
    for i, r in enumerate(df.itertuples(index=False)):
        try:
            code = int(float(r.cause))
        except (ValueError, OverflowError):
            continue  # a handful of rows have no usable cause
        if not 0 <= code < len(CAMS_CAUSES):
            continue
        cause = CAMS_CAUSES[code]
        text = str(r.selftext).strip()
        if text:
            out.append(
                RawRecord(
                    "cams", text, {"cause": cause}, getattr(r, "inference", None) or None, None, f"cams-{i}", (text,)
                )
            )
    return out


def load_cssrs(path: str | Path | None = None) -> list[RawRecord]:
    """Reddit C-SSRS users (Gaur et al. 2019): all of a user's posts and one severity label per user."""
    f = _base(path, "cssrs") / "500_Reddit_users_posts_labels.csv"
    df = read_table(f, ("User", "Post", "Label"))
    out = []
    for i, r in enumerate(df.itertuples(index=False)):
        try:
            posts = ast.literal_eval(r.Post)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            posts = [r.Post]
        if not isinstance(posts, list | tuple):  # a post that merely looks like a literal ("5", "{...}")
            posts = [r.Post]
        posts = tuple(str(p).strip() for p in posts if str(p).strip())
        if r.Label not in CSSRS_LEVELS:
            raise DataError(f"{f}:{i + 2}: unknown C-SSRS label {r.Label!r}; expected one of {', '.join(CSSRS_LEVELS)}")
        out.append(RawRecord("cssrs", "\n\n".join(posts), {"cssrs": r.Label}, None, None, str(r.User), posts))
    return out
