"""Reading tables with one-line errors, and writing files atomically (nothing half-written)."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from mentalens.errors import DataError

MIXED = "utf-8+cp1252"


def _cp1252_fallback(err: UnicodeError) -> tuple[str, int]:
    """Decode bytes that are not UTF-8 as Windows-1252 (files scraped from the web often mix the two)."""
    bad = err.object[err.start : err.end]  # type: ignore[attr-defined]
    return bad.decode("cp1252", errors="replace"), err.end  # type: ignore[attr-defined]


codecs.register_error("mentalens-cp1252", _cp1252_fallback)

# mkstemp creates 0600 files; outputs should get the permissions a plain open() would give them
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def read_table(
    path: str | Path,
    required: Sequence[str] = (),
    *,
    sep: str | None = None,
    encoding: str | None = None,
    header: int | None = 0,
    names: Sequence[str] | None = None,
):
    """Read a CSV/TSV into a DataFrame of strings; missing file/columns, empty file, bad encoding -> DataError."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found: check the path")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: file is empty: expected a table with columns {', '.join(required) or '(any)'}")
    sep = sep or ("\t" if p.suffix.lower() in (".tsv", ".tab") else ",")
    source: str | io.StringIO | Path = p
    if encoding == MIXED:
        source = io.StringIO(p.read_bytes().decode("utf-8", errors="mentalens-cp1252"))
        encoding = None
    try:
        df = pd.read_csv(
            source,
            sep=sep,
            encoding=encoding or "utf-8",
            dtype=str,
            keep_default_na=False,
            header=header,
            names=names,
        )
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{p}: not valid {encoding or 'UTF-8'} text (byte {exc.start}): re-save the file as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{p}: file has no rows: expected columns {', '.join(required) or '(any)'}") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{p}: malformed table ({str(exc).splitlines()[0]}): fix the quoting or delimiter") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{p}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, df.columns)) or 'none'}"
        )
    return df


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temp file beside path and move it into place only when the block succeeds."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(rows: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write rows as JSON Lines atomically; returns the number of rows written."""
    n = 0
    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_json(obj: Any, path: str | Path, **dump: Any) -> Path:
    """Write one JSON document (indent 1, a final newline) atomically: a results file is whole or absent.
    `dump` goes to json.dump (sort_keys, default, ...)."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=1, **dump)
        f.write("\n")
    return Path(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read JSON Lines; a malformed line is reported with its number."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found: check the path")
    rows = []
    try:
        with p.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{i}: not valid JSON ({exc.msg}): one JSON object per line") from None
                if not isinstance(row, dict):
                    raise DataError(f"{p}:{i}: expected a JSON object per line, got {type(row).__name__}")
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not valid UTF-8 text (byte {exc.start}): re-save the file as UTF-8") from None
    return rows
