"""Schemathesis against the served /openapi.json: no 5xx, answers as documented."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.conftest import Api

EXAMPLES = 15


def test_every_operation_survives_generated_requests(api: Api) -> None:
    schema = schemathesis.openapi.from_url(f"{api.served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    paths = {(op.method.upper(), op.path) for op in operations}
    assert ("POST", "/intake/elastic") in paths and ("GET", "/metrics") in paths
    headers = {"Authorization": f"Bearer {api.tokens['all']}"}
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
            )
            assert response.status_code < 500, (case.method, case.formatted_path)

        check()
    assert api.call("GET", "/healthz", who=None).json()["status"] == "ok"
