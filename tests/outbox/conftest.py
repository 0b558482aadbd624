"""A Redis of the test's own that really goes away (SIGKILL) and comes back on the same port, empty."""
from __future__ import annotations

import subprocess

import pytest
from redis import Redis

from workers import embedded_redis


class OwnRedis:
    """A real redis-server process the app is pointed at for one test."""

    def __init__(self, workdir: str):
        self.port = embedded_redis.free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(embedded_redis.command(self.port, self.workdir), stdout=subprocess.DEVNULL)
        embedded_redis.wait_ready(self.port)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis(app, tmp_path, monkeypatch):
    server = OwnRedis(str(tmp_path))
    server.start()
    monkeypatch.setitem(app.extensions, "redis", Redis.from_url(server.url, health_check_interval=30))
    yield server
    server.kill()
