"""JSON logs with request and job ids, and the Prometheus endpoint."""
from __future__ import annotations

import io
import json
import logging
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from app import observability
from tests.fakes.openai_server import error
from tests.generation.helpers import submit


@pytest.fixture
def json_log():
    """Everything logged during the test, as the production JSON handler writes it."""
    stream = io.StringIO()
    handler = observability.make_handler("json", stream)
    handler._copydeck = False  # not the app's handler: a second create_app must not remove it
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_json_lines_carry_time_level_logger_message_and_exception(json_log):
    log = logging.getLogger("copydeck.test")
    with observability.log_context(job_id="job-1", generation_id=7):
        log.info("hello %s", "world")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = json_log()
    assert first["message"] == "hello world" and first["level"] == "INFO" and first["logger"] == "copydeck.test"
    assert first["job_id"] == "job-1" and first["generation_id"] == 7 and first["time"].endswith("+00:00")
    assert "job_id" not in second  # the context ended with the block
    assert "ValueError: boom" in second["exception"]


def test_a_request_id_is_honoured_returned_and_on_every_line(app, client, json_log):
    """/up/ready with Redis unreachable logs a warning from inside the request."""
    real = app.extensions["redis"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        app.extensions["redis"] = Redis(port=probe.getsockname()[1], socket_connect_timeout=0.5)
    try:
        response = client.get("/up/ready", headers={"X-Request-ID": "req-abc.123"})
    finally:
        app.extensions["redis"] = real
    assert response.status_code == 503 and response.headers["X-Request-ID"] == "req-abc.123"
    line = next(line for line in json_log() if "redis down" in line["message"])
    assert line["request_id"] == "req-abc.123" and line["level"] == "WARNING"


def test_a_missing_or_unsafe_request_id_is_replaced(client):
    generated = client.get("/up").headers["X-Request-ID"]
    assert len(generated) == 32 and generated.isalnum()
    forged = client.get("/up", headers={"X-Request-ID": 'x" injected\\n' + "a" * 300}).headers["X-Request-ID"]
    assert len(forged) == 32 and "injected" not in forged
    assert client.get("/up").headers["X-Request-ID"] != generated


def test_job_lines_carry_the_job_and_generation_ids_in_every_thread(app, client, login, run_worker, fake_llm,
                                                                   json_log):
    """A 3-variant generation: variants run in a thread pool, and their failure lines keep the ids."""
    login()
    fake_llm.default_reply = lambda req: "A good variant."
    fake_llm.script(error(400, "bad request"))  # one variant fails, logged from its thread
    generation_id = submit(client, app, "x-post", variants=3)
    run_worker()
    job_lines = [line for line in json_log() if line["logger"] == "app.generation.tasks"]
    assert job_lines, json_log()
    assert all(line["generation_id"] == generation_id and line.get("job_id") for line in job_lines), job_lines
    assert any("variant" in line["message"] and "failed" in line["message"] for line in job_lines)


# --------------------------------------------------------------------------- metrics


def _metrics(client, **kwargs) -> dict[str, list]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    families = text_string_to_metric_families(response.get_data(as_text=True))
    return {family.name: family.samples for family in families}


def _value(samples, name: str, **labels) -> float:
    return next(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_are_hidden_from_the_public(app, client):
    assert client.get("/metrics").status_code == 200  # loopback, no token configured
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
    # Through a proxy on this host: the loopback address is the proxy's, so no.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404


def test_metrics_with_a_token_need_it_from_anywhere(app, client):
    app.config["METRICS_TOKEN"] = "scrape-secret"
    try:
        assert client.get("/metrics").status_code == 404  # loopback is not enough once a token is set
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
        remote = {"REMOTE_ADDR": "203.0.113.9"}
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}, environ_base=remote)
        assert ok.status_code == 200 and "copydeck_queue_depth" in ok.get_data(as_text=True)
    finally:
        app.config["METRICS_TOKEN"] = None


def test_metrics_show_queue_depth_and_generations_waiting(app, client, login):
    login()
    submit(client, app, "x-post", variants=1)
    submit(client, app, "x-post", variants=1)
    metrics = _metrics(client)
    assert _value(metrics["copydeck_queue_depth"], "copydeck_queue_depth", queue=app.config["RQ_QUEUE"]) == 2
    assert _value(metrics["copydeck_generations_queued"], "copydeck_generations_queued") == 2
    assert _value(metrics["copydeck_generations_in_flight"], "copydeck_generations_in_flight") == 0


def test_metrics_count_running_generations_from_the_database(app, client, login):
    from sqlalchemy import update

    from app.extensions import db
    from app.generation.models import Generation
    login()
    generation_id = submit(client, app, "x-post", variants=1)
    with app.app_context():
        db.session.execute(update(Generation).where(Generation.id == generation_id).values(status="running"))
        db.session.commit()
    metrics = _metrics(client)
    assert _value(metrics["copydeck_generations_in_flight"], "copydeck_generations_in_flight") == 1


def test_time_to_first_token_and_errors_are_shared_through_redis(app, client, login, run_worker, fake_llm):
    """The worker (here in-process, in production another host) records; /metrics reads."""
    login()
    fake_llm.default_reply = lambda req: "A good variant."
    submit(client, app, "x-post", variants=2)
    fake_llm.script(error(400, "bad request"))
    submit(client, app, "x-post", variants=1)
    run_worker()
    metrics = _metrics(client)
    ttft = metrics["copydeck_time_to_first_token_seconds"]
    # One observation per generation (not per variant): each had a variant that streamed.
    assert _value(ttft, "copydeck_time_to_first_token_seconds_count") == 2
    assert _value(ttft, "copydeck_time_to_first_token_seconds_bucket", le="+Inf") == 2
    assert 0 < _value(ttft, "copydeck_time_to_first_token_seconds_sum") < 60
    assert _value(metrics["copydeck_errors"], "copydeck_errors_total", kind="variant_failed") == 1


def test_record_helpers_fill_the_histogram_buckets_cumulatively(app, client):
    with app.app_context():
        for seconds in (0.05, 0.4, 0.4, 7.0, 500.0):
            observability.record_ttft(seconds)
        observability.record_error("http_500")
        observability.record_error("http_500")
    metrics = _metrics(client)
    ttft = metrics["copydeck_time_to_first_token_seconds"]
    bucket = {s.labels["le"]: s.value for s in ttft if s.name.endswith("_bucket")}
    assert bucket["0.1"] == 1 and bucket["0.5"] == 3 and bucket["10.0"] == 4 and bucket["+Inf"] == 5
    assert _value(metrics["copydeck_errors"], "copydeck_errors_total", kind="http_500") == 2
