"""Long reliability tests (a separate server process, faults, kill -9, load): `pytest -m reliability`, run by
`make reliability` through bench/reliability.py. Not part of `make test` (pyproject: -m "not reliability").

Each test asserts its goal and records its figures with the `record` fixture; bench/reliability.py reads them
from $MENTALENS_RELIABILITY_RESULTS (one JSON file per test) into bench/results/reliability.json.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def record(request):
    """record(name=value, ...): figures of this test, written when the test ends (pass or fail)."""
    figures: dict = {}

    def add(**values):
        figures.update(values)

    yield add
    out = os.environ.get("MENTALENS_RELIABILITY_RESULTS")
    if out and figures:
        path = Path(out) / (re.sub(r"[^\w.-]+", "_", request.node.name) + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"test": request.node.nodeid, **figures}, indent=2, default=str))
