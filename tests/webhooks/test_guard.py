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


def _resolving_to(*addresses):
    """A resolver (getaddrinfo's shape) that answers these addresses for any host."""
    def resolve(host, port, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolve


def _unresolvable(host, port, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("url, resolver, message", [
    ("   ", _resolving_to("93.184.216.34"), "Enter the endpoint's URL."),
    ("https://" + "a" * 1990 + ".example.com/", _resolving_to("93.184.216.34"),
     "The URL is longer than 2000 characters."),
    ("https://hooks.example.com:99999/x", _resolving_to("93.184.216.34"), "That is not a valid URL."),
    ("https://:8443/x", _resolving_to("93.184.216.34"), "The URL has no host name."),
    ("gopher://hooks.example.com/x", _resolving_to("93.184.216.34"), "The URL must start with https://"),
    ("https://hooks.example.com/x", _unresolvable, "The host hooks.example.com could not be resolved."),
    ("https://hooks.example.com/x", _resolving_to(), "The host hooks.example.com could not be resolved."),
    ("https://hooks.example.com/x", _resolving_to("::ffff:10.0.0.1"),
     "resolves to a private address (::ffff:10.0.0.1)"),
    ("https://hooks.example.com/x", _resolving_to("fe80::1%eth0"), "resolves to a link-local address (fe80::1%eth0)"),
    ("https://hooks.example.com/x", _resolving_to("fc00::1"), "resolves to a private address (fc00::1)"),
    ("https://hooks.example.com/x", _resolving_to("224.0.0.1"), "resolves to a reserved address (224.0.0.1)"),
    ("https://hooks.example.com/x", _resolving_to("93.184.216.34", "::1"), "resolves to a loopback address (::1)"),
], ids=["blank", "too long", "port out of range", "no host", "scheme", "unresolvable", "no address",
        "IPv4-mapped private", "IPv6 link-local", "IPv6 unique local", "multicast", "one of two is loopback"])
def test_the_guard_refuses_with_the_message_the_user_reads(url, resolver, message):
    with pytest.raises(guard.UnsafeURL) as refused:
        guard.check(url, resolver=resolver)
    assert message in str(refused.value)


@pytest.mark.parametrize("url, message", [("https://hooks.example.com:99999/x", "That is not a valid URL."),
                                          ("https://:8443/x", "The URL has no host name.")])
def test_registration_shows_the_guard_s_refusal(app, hooks_team, url, message):
    owner = hooks_team.client("owner@example.com")
    response = owner.post("/workspace/webhooks", data={"url": url, "events": ["generation.completed"]})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert _endpoints(app) == 0


class _RawReceiver:
    """A receiver on 127.0.0.1 written with a bare socket: it reads the request, sends `head`, then `drip`
    one byte every `every` seconds until `stop` (or the connection breaks: `cut` is set)."""

    def __init__(self, head: bytes, drip: bytes = b"", every: float = 0.1, close_at_once: bool = False):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stop, self.cut, self.sent = threading.Event(), threading.Event(), 0
        self.thread = threading.Thread(target=self._serve, args=(head, drip, every, close_at_once), daemon=True)
        self.thread.start()

    def _serve(self, head: bytes, drip: bytes, every: float, close_at_once: bool) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.recv(65536)
            if close_at_once:
                return
            try:
                conn.sendall(head)
                for byte in drip:
                    if self.stop.wait(every):
                        return
                    conn.sendall(bytes([byte]))
                    self.sent += 1
            except OSError:
                self.cut.set()

    def target(self) -> guard.Target:
        return guard.Target("http", "hooks.example.com", self.port, "/hook", "127.0.0.1")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.server.close()


@pytest.fixture
def raw_receivers():
    made: list[_RawReceiver] = []
    yield lambda *args, **kwargs: made.append(_RawReceiver(*args, **kwargs)) or made[-1]
    for receiver in made:
        receiver.close()


def _post(target: guard.Target, deadline: float = 0.5) -> guard.Answer:
    return guard.post(target, b"{}", {"Content-Type": "application/json"}, timeout=5, deadline=deadline,
                      max_bytes=4096)


def test_a_receiver_that_drips_its_status_line_is_cut_off_at_the_deadline(raw_receivers):
    receiver = raw_receivers(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", every=0.2)
    answer = _post(receiver.target())
    assert (answer.status_code, answer.error) == (None, "No complete answer within 0.5 s.")
    assert not answer.ok


def test_a_receiver_that_drips_a_body_it_will_close_is_cut_off_at_the_deadline_too(raw_receivers):
    """http.client lets go of the connection of a response that says `Connection: close`; the deadline
    must still shut it, or a receiver dripping its body holds the worker for max_bytes x timeout."""
    receiver = raw_receivers(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"x" * 200, every=0.05)
    answer = _post(receiver.target())
    assert answer.status_code == 200  # it answered 200: the event was received
    assert len(answer.excerpt) < 200  # but its body was not waited for past the deadline
    assert receiver.cut.wait(10)  # the receiver saw its connection shut under it


def test_a_refused_connection_and_a_receiver_that_hangs_up_are_failed_attempts(raw_receivers):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    refused = _post(guard.Target("http", "hooks.example.com", port, "/hook", "127.0.0.1"))
    assert (refused.status_code, refused.error) == (None, "Connection refused.")
    hung_up = _post(raw_receivers(b"", close_at_once=True).target())
    assert hung_up.status_code is None
    assert hung_up.error == "RemoteDisconnected: Remote end closed connection without response"
