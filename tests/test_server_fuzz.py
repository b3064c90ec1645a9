"""Schema-driven fuzzing of every API operation (schemathesis strategies from the app's own OpenAPI schema):
valid and invalid requests alike get a 2xx or a clear 4xx in OpenAI's error shape, never a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from mentalens.server import ServerConfig, create_app
from mentalens.server.state import build_engine


@pytest.fixture(scope="module")
def schema(data_dir):
    from mentalens.analyze import get_analyzer

    analyzer = get_analyzer()
    app = create_app(ServerConfig(), engine=build_engine(ServerConfig(), analyzer), analyzer=analyzer)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_request_makes_the_server_fail(schema, mode):
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"

        @given(operation.as_strategy(generation_mode=mode))
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call()
            seen.setdefault(name, set()).add(response.status_code)  # noqa: B023 - run before the next loop
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if response.status_code >= 400:
                message = response.json()["error"]["message"]
                assert message and "\n" not in message and "Traceback" not in message

        try:
            check()
        except Unsatisfiable:  # nothing about this operation can be made invalid (e.g. GET /healthz)
            assert mode is GenerationMode.NEGATIVE
    if mode is GenerationMode.POSITIVE:
        assert len(seen) >= 9  # every operation of the API was exercised
    else:
        for name in ("POST /v1/chat/completions", "POST /v1/analyze", "POST /v1/risk", "POST /v1/sessions"):
            assert any(code >= 400 for code in seen[name]), (name, seen.get(name))
