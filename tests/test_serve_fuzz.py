"""The drawing page's API fuzzed from its own OpenAPI document (schemathesis) on a real server.

Every operation gets a bounded number of generated requests, valid ones and
ones that break the schema; none may answer with a 5xx, an undocumented status
code, a wrong content type or a body that breaks the documented schema.
Starting a training run is left out (a valid draw would train for real in the
background; test_serve_api covers it).

schemathesis' own pytest plugin (``from_fixture``) does not run under pytest 9
(it reads ``request.node._nodeid``), so each operation's strategy is driven by
Hypothesis directly, one test per operation and generation mode.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serve_helpers import running_server  # noqa: E402

EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations():
    from nnscratch.serve import create_app

    spec = create_app(runs_dir="runs-not-read", digits_dir="digits-not-written").openapi()
    cases = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if (method, path) == ("post", "/api/train"):
                continue
            cases.append(pytest.param(method.upper(), path, GenerationMode.POSITIVE, id=f"{method} {path}"))
            if operation.get("parameters") or operation.get("requestBody"):   # something to break
                cases.append(pytest.param(method.upper(), path, GenerationMode.NEGATIVE,
                                          id=f"{method} {path} negative"))
    return cases


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    digits = tmp_path_factory.mktemp("digits")
    with running_server(runs_dir=runs, digits_dir=digits) as (base, app):
        yield schemathesis.openapi.from_url(base + "/openapi.json")


@pytest.mark.parametrize("method, path, mode", _operations())
def test_api_answers_every_generated_request_as_documented(api_schema, method, path, mode):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(timeout=30)
        case.validate_response(response, checks=CHECKS)

    check()
