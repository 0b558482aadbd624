"""The OpenAPI document, checked by schemathesis against the running app (gunicorn, as `make run`
starts it), with a valid key holding every scope and a worker pool finishing the generations:
no 500 anywhere, and every response matches the document (status, content type, body, headers)."""
from __future__ import annotations

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from tests.stream_server import running_stream_server

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture
def live_app(base_env, tmp_root):
    with running_stream_server(base_env, tmp_root, API_RATE_LIMIT_PER_KEY="100000 per minute",
                               API_RATE_LIMIT_PER_WORKSPACE="100000 per minute", LLM_DEADLINE="20") as base:
        yield base


def test_the_document_is_openapi_3_1_and_has_every_endpoint(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/v1/templates", "/api/v1/templates/{slug}", "/api/v1/generations", "/api/v1/generations/{generation_id}",
        "/api/v1/generations/{generation_id}/stream", "/api/v1/variants/{variant_id}/favourite",
        "/api/v1/variants/{variant_id}/rating", "/api/v1/variants/{variant_id}/text", "/api/v1/usage",
        "/api/v1/bulk-runs", "/api/v1/bulk-runs/upload", "/api/v1/bulk-runs/{run_id}", "/api/v1/bulk-runs/{run_id}/results.csv",
        "/api/v1/bulk-runs/{run_id}/results.xlsx", "/api/v1/webhook-endpoints", "/api/v1/webhook-endpoints/{endpoint_id}",
        "/api/v1/webhook-endpoints/{endpoint_id}/deliveries",
        "/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver"}
    components = document["components"].get("responses", {})
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                response = components[response["$ref"].rsplit("/", 1)[-1]] if "$ref" in response else response
                if status == "default" or int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)


def test_the_docs_page_renders_offline(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "POST /api/v1/generations" in page and 'id="quota-exhausted"' in page
    assert "http://" not in page.replace("http://localhost", "") and "https://" not in page


def test_schemathesis_against_the_running_app(api, app, live_app, worker_process):
    key = api.make_key(scopes=("generate", "read", "bulk", "webhooks"))
    # Something to find: a finished generation with variants, so ids 1.. are real for some cases.
    assert requests.post(f"{live_app}/api/v1/generations?wait=30", json=api.body(variants=1),
                         headers={"Authorization": f"Bearer {key}"}, timeout=60).status_code == 200
    schema = schemathesis.openapi.from_url(f"{live_app}/api/v1/openapi.json")
    session = requests.Session()
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(f"{operation.method.upper()} {operation.path}")

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=30, deadline=None, database=None, derandomize=True,
                             phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=live_app, session=session, checks=CHECKS,
                                   headers={"Authorization": f"Bearer {key}"}, timeout=90)

        check()
    assert len(tested) == 21, tested
