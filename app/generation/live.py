"""Bounds on live streams (SSE): per user, per generation and per web process.

A live stream holds a connection (and, on a threaded web server, a thread) for as
long as a generation runs, so an unbounded number of them can starve page
requests. Each open stream holds a *lease* in two Redis sorted sets,
`sse:user:<id>` and `sse:gen:<id>`, scored by the lease's expiry time. Opening
drops expired leases, counts, and adds one, atomically (one Lua script), so two
web processes cannot both take the last slot. An open stream renews its lease
every few seconds and removes it when it closes; a process that crashes leaves
leases that simply expire (STREAM_LEASE_SECONDS), so slots cannot leak.

The per-process bound is a plain counter: it keeps a threaded web worker's
threads for pages even when streams are (mis)routed to it.
"""
from __future__ import annotations

import threading
import time
import uuid

from redis import Redis

_ACQUIRE = """
local now, expires, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local limits = {tonumber(ARGV[4]), tonumber(ARGV[5])}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= limits[i] then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, expires, member)
  redis.call('EXPIRE', key, ARGV[6])
end
return 0
"""


class TooManyStreams(Exception):
    """No slot for another live stream; `scope` is "user", "generation" or "process"."""

    def __init__(self, scope: str, limit: int):
        super().__init__(f"at most {limit} live streams per {scope}")
        self.scope = scope
        self.limit = limit


class _ProcessSlots:
    """How many live streams this process holds, with a ceiling."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0

    def take(self, limit: int) -> bool:
        with self._lock:
            if limit and self.open >= limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


PROCESS_SLOTS = _ProcessSlots()


class StreamLease:
    """One live stream's slot for a user and a generation (see the module docstring)."""

    def __init__(self, redis: Redis, user_key: str, generation_id: int, lease_seconds: int):
        self.redis = redis
        self.keys = [f"sse:user:{user_key}", f"sse:gen:{generation_id}"]
        self.member = uuid.uuid4().hex
        self.lease_seconds = lease_seconds
        self._held_process_slot = False

    @classmethod
    def acquire(cls, redis: Redis, *, user_key: str, generation_id: int, per_user: int, per_generation: int,
                per_process: int, lease_seconds: int) -> "StreamLease":
        """Take a slot, or raise TooManyStreams naming the bound that is full."""
        lease = cls(redis, user_key, generation_id, lease_seconds)
        if not PROCESS_SLOTS.take(per_process):
            raise TooManyStreams("process", per_process)
        lease._held_process_slot = True
        try:
            now = time.time()
            # redis-py types the script's arguments as str and its answer as str; it sends numbers as their text
            # and the script answers an integer or nil.
            full = redis.eval(_ACQUIRE, 2, *lease.keys, now, now + lease_seconds, lease.member,  # type: ignore[arg-type]
                              per_user, per_generation, lease_seconds + 60)  # type: ignore[arg-type]
        except BaseException:
            lease._give_back_process_slot()
            raise
        if full:
            lease._give_back_process_slot()
            raise TooManyStreams(("user", "generation")[int(full) - 1], (per_user, per_generation)[int(full) - 1])  # type: ignore[arg-type]
        return lease

    def renew(self) -> None:
        """Push this lease's expiry forward (called every few seconds while the stream is open)."""
        expires = time.time() + self.lease_seconds
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys:
            pipe.zadd(key, {self.member: expires}, xx=True)
            pipe.expire(key, self.lease_seconds + 60)
        pipe.execute()

    def release(self) -> None:
        """Free the slot (idempotent)."""
        self._give_back_process_slot()
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrem(key, self.member)
        pipe.execute()

    def _give_back_process_slot(self) -> None:
        if self._held_process_slot:
            self._held_process_slot = False
            PROCESS_SLOTS.give_back()
