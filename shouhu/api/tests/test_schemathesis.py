"""Property-based fuzzing of the API from its own OpenAPI schema: no input gives a server error.

The schemathesis pytest plugin is off by default (pyproject `-p no:schemathesis`, it slows every
pytest start); this module drives schemathesis programmatically instead: one hypothesis run per
operation, requests sent through the WSGI application with the district office's bearer token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from schemathesis import DataGenerationMethod  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

pytestmark = pytest.mark.schemathesis

# Per operation; the module runs in about 15 s on 2 cores. SHOUHU_FUZZ_EXAMPLES=500 digs deeper.
MAX_EXAMPLES = int(os.environ.get("SHOUHU_FUZZ_EXAMPLES", "40"))


def _schema():  # noqa: ANN202
    import json

    from ninja.responses import NinjaJSONEncoder

    from shouhu.api.api import api
    from shouhu.wsgi import application

    # As /api/v1/openapi.json serves it: the descriptions and summaries are lazy translations,
    # rendered to text by ninja's encoder (schemathesis would json.dumps the raw proxies).
    served = json.loads(json.dumps(api.get_openapi_schema(), cls=NinjaJSONEncoder))
    return schemathesis.from_dict(
        served,
        app=application,
        force_schema_version="30",  # ninja writes 3.1; schemathesis 3.x reads it as 3.0
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )


SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture
def wsgi_in_test_transaction() -> Iterator[None]:
    """Like Django's test client: a request must not close the connection holding the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def district_token(db) -> str:  # noqa: ANN001
    out = StringIO()
    call_command("issue_token", "district", stdout=out)
    return out.getvalue().strip()


def test_the_schema_lists_every_operation():
    assert {(op.method.upper(), op.path) for op in OPERATIONS} >= {
        ("GET", "/api/v1/children"),
        ("POST", "/api/v1/children"),
        ("POST", "/api/v1/children/search"),
        ("GET", "/api/v1/children/{child_id}"),
        ("PATCH", "/api/v1/children/{child_id}"),
    }


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_no_server_error(operation, district_token, wsgi_in_test_transaction, hutang_village, make_child):  # noqa: ANN001
    child = make_child(hutang_village, name="模糊测试")
    headers = {"Authorization": f"Bearer {district_token}"}
    failures: list[str] = []

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case) -> None:  # noqa: ANN001
        if "child_id" in (case.path_parameters or {}) and case.path_parameters["child_id"] != "":
            # Half the cases address a real child, so the validation behind the 404 is fuzzed too.
            if str(case.path_parameters["child_id"])[-1:] in "02468acegikmoqsuwy":
                case.path_parameters["child_id"] = str(child.pk)
        response = case.call_wsgi(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}\n{case.as_curl_command()}")
        case.validate_response(response, checks=(not_a_server_error,))

    run()
    assert not failures, "\n\n".join(failures)
