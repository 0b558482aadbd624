"""Live generation events in a Redis Stream `gen:<id>`.

The worker appends (XADD) one entry per token and a final `done` or `failed`;
the SSE endpoint reads from any entry id (XREAD BLOCK), so a reconnecting
browser resumes from its Last-Event-ID. Entry types:
  token   {v: variant index, t: text}
  reset   {v}            discard what was shown for variant v (retry, repair)
  variant {v, text, chars, over}   final text of one variant
  failed  {message}
  done    {}
"""
from __future__ import annotations

import json
from typing import Iterator

from redis import Redis

FINAL_TYPES = ("done", "failed")


def stream_key(generation_id: int) -> str:
    return f"gen:{generation_id}"


class GenerationStream:
    """The writer side, used by the worker."""

    def __init__(self, redis: Redis, generation_id: int, ttl_seconds: int = 3600):
        self.redis = redis
        self.key = stream_key(generation_id)
        self.ttl = ttl_seconds

    def _add(self, kind: str, **data) -> None:
        self.redis.xadd(self.key, {"type": kind, "data": json.dumps(data)})

    def token(self, index: int, text: str) -> None:
        self._add("token", v=index, t=text)

    def reset(self, index: int) -> None:
        self._add("reset", v=index)

    def variant(self, index: int, text: str, over: bool) -> None:
        self._add("variant", v=index, text=text, chars=len(text), over=over)

    def started(self) -> None:
        self._add("started")

    def finish(self, kind: str, **data) -> None:
        """Append the final entry and let the stream expire after the TTL."""
        pipe = self.redis.pipeline()
        pipe.xadd(self.key, {"type": kind, "data": json.dumps(data)})
        pipe.expire(self.key, self.ttl)
        pipe.execute()


def read_events(redis: Redis, generation_id: int, last_id: str, block_ms: int) -> list[tuple[str, str, dict]]:
    """Entries after last_id, waiting up to block_ms for the first one."""
    response = redis.xread({stream_key(generation_id): last_id}, block=block_ms, count=1000)
    events = []
    for _key, entries in response or []:
        for entry_id, fields in entries:
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            kind = fields[b"type"].decode()
            data = json.loads(fields[b"data"])
            events.append((entry_id, kind, data))
    return events


def partial_texts(redis: Redis, generation_id: int, variant_count: int) -> list[str]:
    """The text streamed so far for each variant (for the polling fallback)."""
    texts = [""] * variant_count
    for _entry_id, fields in redis.xrange(stream_key(generation_id)):
        kind = fields[b"type"].decode()
        data = json.loads(fields[b"data"])
        index = data.get("v")
        if index is None or not 0 <= index < variant_count:
            continue
        if kind == "token":
            texts[index] += data["t"]
        elif kind == "reset":
            texts[index] = ""
        elif kind == "variant":
            texts[index] = data["text"]
    return texts


def sse_format(entry_id: str, kind: str, data: dict) -> str:
    return f"id: {entry_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


def iter_sse(redis: Redis, generation_id: int, last_id: str, block_ms: int, max_idle_rounds: int) -> Iterator[str]:
    """The SSE body: entries from last_id until a final entry, with keep-alives."""
    yield "retry: 2000\n\n"
    idle = 0
    while idle < max_idle_rounds:
        events = read_events(redis, generation_id, last_id, block_ms)
        if not events:
            idle += 1
            if not redis.exists(stream_key(generation_id)) and idle > 1:
                # Nothing was ever written, or it expired: let the page fetch the final state.
                yield sse_format(last_id, "done", {"expired": True})
                return
            yield ": keep-alive\n\n"
            continue
        idle = 0
        for entry_id, kind, data in events:
            last_id = entry_id
            yield sse_format(entry_id, kind, data)
            if kind in FINAL_TYPES:
                return
