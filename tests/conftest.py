"""Shared test fixtures: the real data folder (../shared/data, or $MENTALENS_DATA) and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MENTALENS_DATA", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real public data; its absence is a setup error, never a silent skip."""
    path = Path(os.environ["MENTALENS_DATA"])
    assert (path / "imhi").is_dir(), f"test data not found at {path}: set MENTALENS_DATA"
    return path


@pytest.fixture(scope="session")
def imhi_dir(data_dir: Path) -> Path:
    return data_dir / "imhi"


@pytest.fixture
def cli(capsys):
    """Run `mentalens ARGS...` in-process; returns (exit_code, stdout, stderr)."""
    from mentalens.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
