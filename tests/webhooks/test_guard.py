"""The SSRF guard: non-public addresses refused at registration and at delivery, redirects not followed,
the checked address is the one connected to, answers read up to a limit."""
from __future__ import annotations

import json
import socket
import threading

import pytest
from sqlalchemy import select

from app.extensions import db
from app.webhooks import guard, tasks
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import add_endpoint


def _endpoints(app) -> int:
    with app.app_context():
        return db.session.scalar(select(db.func.count(WebhookEndpoint.id)))


@pytest.mark.parametrize("url, reason", [
    ("http://10.1.2.3/hook", "private"),
    ("http://192.168.0.10:8080/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://127.0.0.1:9/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://0.0.0.0/hook", "reserved"),
    ("http://100.64.0.1/hook", "reserved"),
    ("http://localhost:9/hook", "loopback"),  # a host name that resolves to loopback
])
def test_registration_refuses_non_public_addresses(app, hooks_team, url, reason):
    owner = hooks_team.client("owner@example.com")
    response = owner.post("/workspace/webhooks", data={"url": url, "events": ["generation.completed"]})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f"resolves to a {reason} address" in page
    assert _endpoints(app) == 0


def test_a_host_with_any_private_address_is_refused_and_the_checked_address_is_pinned():
    def resolver(*addresses):
        return lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    with pytest.raises(guard.UnsafeURL, match="private"):
        guard.check("https://hooks.example.com/x", resolver=resolver("93.184.216.34", "10.0.0.7"))
    target = guard.check("https://hooks.example.com/x?a=1", resolver=resolver("93.184.216.34", "93.184.216.35"))
    assert (target.host, target.ip, target.port, target.path) == ("hooks.example.com", "93.184.216.34", 443, "/x?a=1")
    allowed = guard.check("http://hooks.internal/x", allowed_hosts=frozenset({"hooks.internal"}),
                          resolver=resolver("10.0.0.7"))
    assert allowed.ip == "10.0.0.7"


def test_the_attempt_connects_to_the_checked_address_not_a_new_lookup(receiver):
    """A name that does not resolve at all is still reached at the pinned IP: no second DNS lookup, so a
    rebinding DNS server cannot swap the address after the check. The Host header keeps the name."""
    port = receiver.server.server_port
    target = guard.Target("http", "rebind.invalid", port, "/pinned", "127.0.0.1")
    answer = guard.post(target, b"{}", {"Content-Type": "application/json"}, timeout=5, deadline=10, max_bytes=100)
    assert answer.ok
    got = receiver.next()
    assert got.path == "/pinned" and got.headers["Host"] == f"rebind.invalid:{port}"


def test_https_is_required_in_production_unless_allow_listed(app, hooks_team, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_REQUIRE_HTTPS", True)
    owner = hooks_team.client("owner@example.com")
    response = owner.post("/workspace/webhooks", data={"url": "http://example.com/hook",
                                                        "events": ["generation.completed"]})
    assert response.status_code == 422 and "must use https://" in response.get_data(as_text=True)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1"])
    add_endpoint(owner, "http://127.0.0.1:9/hook")
    assert _endpoints(app) == 1


def test_delivery_checks_again_after_resolution(app, hooks_team, allow_loopback, receiver, run_worker,
                                                monkeypatch):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url)
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", [])  # e.g. the allow-list was emptied since
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    run_worker()
    assert receiver.all() == []
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "pending" and delivery.attempts == 1 and delivery.status_code is None
        assert delivery.error.startswith("Refused:") and "loopback" in delivery.error


def test_redirects_are_not_followed(app, hooks_team, allow_loopback, receiver, other_receiver, run_worker):
    receiver.status, receiver.headers = 302, {"Location": other_receiver.url}
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url)
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    run_worker()
    receiver.next()
    assert other_receiver.all() == []
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status_code == 302 and delivery.status == "pending"
        assert "only a 2xx" in delivery.error


def test_the_answer_is_read_up_to_a_limit(app, hooks_team, allow_loopback, receiver, run_worker, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_MAX_RESPONSE_BYTES", 64)
    receiver.body = b"x" * 1_000_000
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url)
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    run_worker()
    receiver.next()
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "succeeded" and delivery.response_excerpt == "x" * 64


def test_a_receiver_that_does_not_answer_times_out(app, hooks_team, allow_loopback, receiver, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_TIMEOUT", 0.3)
    receiver.hang = threading.Event()
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, receiver.url)
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    with app.app_context():
        delivery_id = db.session.scalars(select(WebhookDelivery.id)).one()
    with app.app_context():
        assert tasks.deliver(delivery_id, 0) == "retrying"
    with app.app_context():
        delivery = db.session.get(WebhookDelivery, delivery_id)
        assert delivery.status_code is None and "Timed out" in delivery.error
    receiver.hang.set()
    assert json.loads(receiver.next().body)["type"] == "webhook.test"
