"""Rate limits per key and per workspace: 429 problem+json with Retry-After and RateLimit headers."""
from __future__ import annotations

import pytest

from tests.api.test_bad_input import problem


@pytest.fixture
def limits(app):
    saved = app.config["API_RATE_LIMIT_PER_KEY"], app.config["API_RATE_LIMIT_PER_WORKSPACE"]
    yield app.config
    app.config["API_RATE_LIMIT_PER_KEY"], app.config["API_RATE_LIMIT_PER_WORKSPACE"] = saved


def test_per_key_limit(api, limits):
    limits["API_RATE_LIMIT_PER_KEY"] = "2 per minute"
    first = api.get("/api/v1/templates")
    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == "2" and first.headers["RateLimit-Remaining"] == "1"
    assert 0 <= int(first.headers["RateLimit-Reset"]) <= 60 and first.headers["RateLimit-Policy"] == "2;w=60"
    assert api.get("/api/v1/templates").status_code == 200
    refused = api.get("/api/v1/templates")
    problem(refused, 429, "rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Another key of the same workspace has its own allowance.
    assert api.get("/api/v1/templates", key=api.make_key()).status_code == 200


def test_per_workspace_limit_spans_its_keys(api, limits):
    limits["API_RATE_LIMIT_PER_WORKSPACE"] = "3 per minute"
    other = api.make_key()
    assert [api.get("/api/v1/templates", key=k).status_code for k in (api.key, other, api.key)] == [200] * 3
    problem(api.get("/api/v1/templates", key=other), 429, "rate-limited")


def test_bad_keys_are_limited_by_address(api, limits):
    limits["API_RATE_LIMIT_PER_KEY"] = "2 per minute"
    bad = {"Authorization": "Bearer cd_test_" + "b" * 40}
    assert [api.client.get("/api/v1/templates", headers=bad).status_code for _ in range(2)] == [401, 401]
    problem(api.client.get("/api/v1/templates", headers=bad), 429, "rate-limited")
