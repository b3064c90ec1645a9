"""Download the public data files from their GitHub sources (pinned commits), or copy a local folder.

Every file has a pinned URL and SHA-256 in resources/data_manifest.json. Downloads go to `<file>.part`,
resume with HTTP Range after an interruption, and are moved into place only once the checksum matches,
so a folder never holds a half-written or tampered file under its real name.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mentalens.errors import DataError, UnknownNameError
from mentalens.paths import package_resource

CHUNK = 1 << 16


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the data folder, e.g. "imhi/test_data/test_instruction/DR.csv"
    url: str
    sha256: str
    size: int

    @property
    def group(self) -> str:
        parts = self.path.split("/")
        return "/".join(parts[:2]) if parts[0] == "raw" else parts[0]


def manifest() -> tuple[dict[str, dict], list[DataFile]]:
    """(sources with repository/commit/licence, files) of the public data mentalens uses."""
    data = json.loads(package_resource("data_manifest.json").read_text(encoding="utf-8"))
    return data["sources"], [DataFile(**f) for f in data["files"]]


def select(only: Iterable[str] | None = None) -> list[DataFile]:
    """Files of the chosen groups (imhi, goemotions, counselchat, raw/irf, raw/cams, raw/cssrs, hotlines)."""
    sources, files = manifest()
    if not only:
        return files
    wanted = set()
    for name in only:
        if name not in sources:
            raise UnknownNameError("data group", name, sources)
        wanted.add(name)
    return [f for f in files if f.group in wanted]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verified_move(tmp: Path, dest: Path, expected: str) -> None:
    got = sha256_of(tmp)
    if got != expected:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{dest.name}: checksum mismatch (got {got[:12]}…, expected {expected[:12]}…): retry the fetch")
    tmp.replace(dest)


def download(
    f: DataFile, dest_root: Path, *, client=None, progress: Callable[[int], None] | None = None, retries: int = 3
) -> str:
    """Fetch one file into dest_root (resuming a .part file); returns "ok", "present" or raises DataError."""
    import httpx

    dest = dest_root / f.path
    if dest.is_file() and dest.stat().st_size == f.size and sha256_of(dest) == f.sha256:
        if progress:
            progress(f.size)
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    own_client = client is None
    client = client or httpx.Client(follow_redirects=True, timeout=60)
    try:
        last_error: Exception | None = None
        for _ in range(retries):
            have = part.stat().st_size if part.exists() else 0
            if have > f.size:
                part.unlink()
                have = 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with client.stream("GET", f.url, headers=headers) as resp:
                    if resp.status_code == 416:  # already complete
                        break
                    if resp.status_code not in (200, 206):
                        raise DataError(f"{f.url}: HTTP {resp.status_code}: check your connection or try later")
                    mode = "ab" if resp.status_code == 206 else "wb"
                    if mode == "wb" and progress and have:
                        progress(-have)
                    with part.open(mode) as out:
                        for chunk in resp.iter_bytes(CHUNK):
                            out.write(chunk)
                            if progress:
                                progress(len(chunk))
                break
            except httpx.HTTPError as exc:
                last_error = exc
        else:
            raise DataError(
                f"{f.url}: download failed ({type(last_error).__name__}); run the fetch again to resume, "
                "or use --from DIR with a local copy"
            )
        _verified_move(part, dest, f.sha256)
        return "ok"
    finally:
        if own_client:
            client.close()


def copy_from(f: DataFile, src_root: Path, dest_root: Path) -> str:
    """Copy one file from a local folder with the same layout, verifying its checksum."""
    src = src_root / f.path
    if not src.is_file():
        raise DataError(f"{src}: missing in --from folder: expected the layout of `mentalens data fetch`")
    dest = dest_root / f.path
    if dest.is_file() and dest.stat().st_size == f.size and sha256_of(dest) == f.sha256:
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    _verified_move(tmp, dest, f.sha256)
    return "ok"


def write_source_notes(dest_root: Path) -> None:
    """A SOURCES.md beside the data: where each group comes from, at which commit, under which licence."""
    sources, _ = manifest()
    lines = ["# Data sources (fetched by mentalens)", "", "| folder | repository @ commit | licence |", "|---|---|---|"]
    for name, s in sources.items():
        lines.append(f"| {name}/ | {s['repository']} @ {s['commit']} | {s['licence']} |")
    (dest_root / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
