"""The hostile-input properties of `make test` with far more (random, not derandomised) examples, and the API
fuzzed over HTTP against a real server process with API keys and SQLite persistence on: no 5xx, every response
matches the schema, and the server's own log holds neither the user's text nor the key."""

from __future__ import annotations

import os
from collections import Counter

import httpx
import pytest
import schemathesis
from harness import ServerProcess, chat_once
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import ignored_auth, not_a_server_error, positive_data_acceptance
from schemathesis.generation import GenerationMode

import test_hostile_loaders as loaders
import test_hostile_text as text

EXAMPLES = int(os.environ.get("MENTALENS_HOSTILE_EXAMPLES", "1500"))
API_EXAMPLES = int(os.environ.get("MENTALENS_API_EXAMPLES", "60"))
KEY = "reliability-key-5b1e0c9f7a3d8e2c"
SECRET = "periwinkle-harbour-9137 is the thing I have never said out loud"


def _deep(check, strategy, n: int):
    @given(strategy)
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(value):
        check(value)

    run()


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", ["parse", "assess", "guard", "redact", "redact_pii"])
def test_text_properties_hold_on_many_random_inputs(name, record):
    strategy = text.pii_texts if name == "redact_pii" else text.any_text
    _deep(getattr(text, f"check_{name}"), strategy, EXAMPLES)
    record(examples=EXAMPLES)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(loaders.LOADERS))
def test_loader_properties_hold_on_many_random_files(name, record):
    def check(data):
        loaders.check_loader(name, data)

    _deep(check, loaders.LOADERS[name][2], max(EXAMPLES // 3, 50))
    record(examples=max(EXAMPLES // 3, 50))


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("hostile")
    args = ["--api-key", KEY, "--persist", f"sqlite:{tmp / 'sessions.db'}", "--log-level", "debug"]
    with ServerProcess(args, log_path=tmp / "server.log", api_key=KEY) as srv:
        yield srv


@pytest.mark.timeout(2400)
def test_the_api_fuzzed_over_http_never_fails_and_matches_its_schema(server, record):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    violations: Counter[str] = Counter()
    requests = 0
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(operation.as_strategy(generation_mode=mode))
            @settings(max_examples=API_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def fuzz(case):
                nonlocal requests
                if mode is GenerationMode.POSITIVE and case.headers:  # noqa: B023 - called before the next loop
                    case.headers.pop("Authorization", None)  # a generated (wrong) key; negative cases keep theirs
                explicit = {} if "Authorization" in (case.headers or {}) else server.headers
                response = case.call(base_url=server.url, headers=explicit, timeout=120)
                requests += 1
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(f"{case.method} {case.path} {response.status_code} {response.text[:200]}")
                try:
                    case.validate_response(response, excluded_checks=[positive_data_acceptance, not_a_server_error],
                                           additional_checks=[ignored_auth], headers=explicit)
                except BaseException as exc:  # count every kind of mismatch, keep going
                    for line in str(exc).splitlines():
                        if line.strip().startswith("- "):
                            violations[f"{case.method} {case.path}: {line.strip()[2:]}"] += 1

            try:
                fuzz()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE
    alive = httpx.get(server.url + "/healthz", timeout=10).json()
    record(api_requests=requests, schemathesis_5xx=len(server_errors), api_examples_per_operation=API_EXAMPLES,
           schema_violations=sum(violations.values()), violations=dict(violations),
           statuses=dict(sorted(statuses.items())), server_errors=server_errors[:20])
    assert server_errors == []
    assert dict(violations) == {}
    assert alive["status"] == "ok" and server.proc.poll() is None and requests >= 10 * API_EXAMPLES


@pytest.mark.timeout(600)
def test_the_server_log_holds_neither_user_text_nor_the_key(server, record):
    auth = server.headers
    with httpx.Client(timeout=120) as client:
        sid = client.post(server.url + "/v1/sessions", json={"persist": True}, headers=auth).json()["id"]
        for stream in (False, True):
            assert chat_once(client, server.url, SECRET, stream=stream, session_id=sid, headers=auth)["status"] == 200
            assert chat_once(client, server.url, SECRET + " I want to die tonight", stream=stream,
                             headers=auth)["status"] == 200
        client.post(server.url + "/v1/analyze", json={"text": SECRET}, headers=auth)
        client.post(server.url + "/v1/risk", json={"text": SECRET}, headers=auth)
        client.get(f"{server.url}/v1/sessions/{SECRET}", headers=auth)
        client.get(f"{server.url}/v1/{SECRET}?api_key={KEY}", headers=auth)
        client.post(server.url + "/v1/analyze", json={"text": SECRET}, headers={"Authorization": f"Bearer {SECRET}"})
        client.post(server.url + "/v1/chat/completions", headers=auth,
                    content=b'{"model": "' + SECRET.encode() + b'"')
        client.get(f"{server.url}/v1/sessions/{sid}/export", headers=auth)
    log = server.log_text()
    found = [w for w in (KEY, SECRET, "periwinkle", "harbour-9137", "never said out loud") if w in log]
    record(log_lines=len(log.splitlines()), log_leaks=len(found))
    assert "POST /v1/chat/completions 200" in log and found == []
