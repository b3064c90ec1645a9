"""Where mentalens finds its data and keeps its caches.

Data folder, in order: an explicit argument, $MENTALENS_DATA, the folder `mentalens data fetch` writes to
(the user data dir), then ../shared/data beside a development checkout. Caches (converted models, retrieval
indexes, embeddings) live in the user cache dir or $MENTALENS_CACHE. Nothing is written inside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from mentalens.errors import DataError

APP = "mentalens"


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP))


def cache_dir(*parts: str) -> Path:
    """A cache sub-folder (created), under $MENTALENS_CACHE or the user cache dir."""
    root = Path(os.environ.get("MENTALENS_CACHE") or platformdirs.user_cache_dir(APP)).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_data_dir() -> Path:
    """$MENTALENS_DATA if set; else the fetch folder if it exists; else a development checkout's
    ../shared/data (the layout this project is developed in); else the fetch folder (to be fetched)."""
    env = os.environ.get("MENTALENS_DATA")
    if env:
        return Path(env).expanduser()
    fetched = user_data_dir() / "data"
    if fetched.is_dir():
        return fetched
    dev = Path(__file__).resolve().parents[3] / "shared" / "data"
    return dev if (dev / "imhi").is_dir() else fetched


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data folder to read, or a one-line error that says how to get one."""
    path = Path(explicit).expanduser() if explicit else default_data_dir()
    if not path.is_dir():
        how = "check the path" if explicit else "run `mentalens data fetch` or set MENTALENS_DATA"
        raise DataError(f"data folder {path} not found: {how} (or pass --data DIR)")
    return path


def package_resource(*parts: str) -> Path:
    """A file shipped inside the package (trained analyzer, helpline table, web app)."""
    return Path(__file__).parent.joinpath("resources", *parts)
