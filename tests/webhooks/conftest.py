"""A real HTTP receiver on 127.0.0.1 and a Business-plan team whose webhooks may call it."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every request; answers with `status`, `body` and `headers` (a 302 with Location, say)."""

    server: ThreadingHTTPServer
    requests: "queue.Queue[Received]" = field(default_factory=queue.Queue)
    status: int = 200
    body: bytes = b'{"received": true}'
    headers: dict[str, str] = field(default_factory=dict)
    hang: threading.Event | None = None  # set: the handler waits on it before answering

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/copydeck"

    def next(self, timeout: float = 10.0) -> Received:
        """The next request received; fails the test if none comes within `timeout`."""
        return self.requests.get(timeout=timeout)

    def all(self) -> list[Received]:
        items = []
        while not self.requests.empty():
            items.append(self.requests.get_nowait())
        return items


def _start() -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            receiver = holder["r"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.put(Received(self.path, {k: v for k, v in self.headers.items()}, body))
            if receiver.hang is not None:
                receiver.hang.wait(10)
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.body)))
            self.end_headers()
            try:
                self.wfile.write(receiver.body)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = holder["r"] = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture
def receiver():
    r = _start()
    yield r
    if r.hang is not None:
        r.hang.set()
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def other_receiver():
    r = _start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def allow_loopback(app, monkeypatch):
    """The explicit allow-list setting: tests may call a receiver on 127.0.0.1."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1"])


@pytest.fixture
def hooks_team(team, app):
    """The shared Team fixture on the Business plan (webhooks need api_access)."""
    from app.extensions import db
    from app.workspaces import services as teams

    with app.app_context():
        teams.set_seats(team.workspace_id, 5, generations_per_seat=10, plan="business")
        db.session.commit()
    return team


def add_endpoint(client, url: str, events=("generation.completed",), description: str = "") -> int:
    response = client.post("/workspace/webhooks", data={"url": url, "events": list(events),
                                                         "description": description})
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
