"""Live generation events in a Redis Stream `gen:<id>`.

The worker appends (XADD) token batches and a final `done` or `failed`;
the SSE endpoint reads from any entry id (XREAD BLOCK), so a reconnecting
browser resumes from its Last-Event-ID. Entry types:
  token   {v: variant index, t: text of one or more tokens}
  reset   {v}            discard what was shown for variant v (retry, repair)
  variant {v, text, chars, over}   final text of one variant
  failed  {message}
  done    {}

SSE_FORMAT: what the SSE endpoint sends (static/js/app.js and bench/client.py read it).
  retry: 2000                               first, once
  id: <id of the batch's last entry>
  event: batch
  data: [["<type>",{<entry data>}], ...]    one event per XREAD: every entry it returned, in
                                            order, as [type, data] pairs; it ends at done/failed
  event: closed / data: {"reason": "signed-out"}   the user was suspended or signed out
                                            everywhere meanwhile: reload (the stream ends)
  : keep-alive                              a comment while nothing happens
A `token` entry's t may hold many tokens (the worker flushes in batches).
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterator

from redis import Redis

if TYPE_CHECKING:
    from app.generation.live import StreamLease

log = logging.getLogger(__name__)

FINAL_TYPES = ("done", "failed")


def stream_key(generation_id: int) -> str:
    return f"gen:{generation_id}"


class _Flusher:
    """One thread per process that flushes token batches when they fall due."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, "GenerationStream"]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, stream: "GenerationStream", due: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (due, next(self._ids), stream))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="stream-flusher", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._due:
                    self._cond.wait(30)
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _due, _id, stream = heapq.heappop(self._due)
            try:
                stream.flush()
            except Exception:  # Redis away: the job's own writes will report it
                log.warning("could not flush tokens to %s", stream.key, exc_info=True)


_flusher = _Flusher()


class GenerationStream:
    """The writer side, used by the worker.

    Tokens are batched: a variant's first token (and its first after a reset)
    is written at once, later ones at most every `flush_ms`, one `token` entry
    per variant per batch (its `t` holds the batch's text). Any other entry
    first writes what is pending, so the order of a variant's entries is kept.
    Safe to call from the variant threads of one generation at once.
    """

    def __init__(self, redis: Redis, generation_id: int, ttl_seconds: int = 3600, flush_ms: int = 0):
        self.redis = redis
        self.key = stream_key(generation_id)
        self.ttl = ttl_seconds
        self.flush_interval = flush_ms / 1000
        self._lock = threading.Lock()
        self._pending: dict[int, list[str]] = {}
        self._shown: set[int] = set()  # variants that already showed a token since their last reset
        self._last_flush = 0.0
        self._scheduled = False

    def _entry(self, kind: str, data: dict) -> dict:
        return {"type": kind, "data": json.dumps(data)}

    def _write(self, kind: str | None = None, data: dict | None = None, expire: bool = False) -> None:
        """Write the pending tokens, then the entry `kind` if given, in one round trip (lock held)."""
        pipe = self.redis.pipeline(transaction=expire)
        for index, pieces in self._pending.items():
            pipe.xadd(self.key, self._entry("token", {"v": index, "t": "".join(pieces)}))
        self._pending.clear()
        self._last_flush = time.monotonic()
        if kind is not None:
            pipe.xadd(self.key, self._entry(kind, data or {}))
        if expire:
            pipe.expire(self.key, self.ttl)
        pipe.execute()

    def _add(self, kind: str, **data) -> None:
        with self._lock:
            self._write(kind, data)

    def flush(self) -> None:
        """Write the pending tokens now."""
        with self._lock:
            self._scheduled = False
            if self._pending:
                self._write()

    def token(self, index: int, text: str) -> None:
        with self._lock:
            self._pending.setdefault(index, []).append(text)
            first = index not in self._shown
            self._shown.add(index)
            due = self._last_flush + self.flush_interval
            if first or time.monotonic() >= due:
                self._write()
            elif not self._scheduled:
                self._scheduled = True
                _flusher.schedule(self, due)

    def reset(self, index: int) -> None:
        with self._lock:
            self._pending.pop(index, None)  # never shown, and about to be discarded anyway
            self._shown.discard(index)
        self._add("reset", v=index)

    def variant(self, index: int, text: str, over: bool) -> None:
        self._add("variant", v=index, text=text, chars=len(text), over=over)

    def started(self) -> None:
        self._add("started")

    def finish(self, kind: str, **data) -> None:
        """Append the final entry and let the stream expire after the TTL."""
        with self._lock:
            self._write(kind, data, expire=True)


def read_batch(redis: Redis, generation_id: int, last_id: str, block_ms: int) -> list[tuple[str, str, bytes]]:
    """Entries after last_id as (id, type, raw JSON data), waiting up to block_ms for the first one.

    The data stays undecoded: the SSE endpoint forwards it as it is.
    """
    response = redis.xread({stream_key(generation_id): last_id}, block=block_ms, count=1000)
    entries = []
    for _key, items in response or []:  # type: ignore[union-attr]  # redis-py types sync and async answers as one
        for entry_id, fields in items:
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            entries.append((entry_id, fields[b"type"].decode(), fields[b"data"]))
    return entries


def partial_texts(redis: Redis, generation_id: int, variant_count: int) -> list[str]:
    """The text streamed so far for each variant (for the polling fallback)."""
    texts = [""] * variant_count
    for _entry_id, fields in redis.xrange(stream_key(generation_id)):  # type: ignore[union-attr]  # as above
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


def batch_event(entries: list[tuple[str, str, bytes]]) -> str:
    """One SSE event for the entries of one XREAD (see SSE_FORMAT), up to the first final entry.

    The worker's JSON is forwarded byte for byte (no decode and re-encode per entry); JSON
    keeps newlines inside strings escaped, and anything else is re-encoded on one line.
    """
    parts = []
    last_id = entries[-1][0]
    for entry_id, kind, raw in entries:
        data = raw.decode()
        if "\n" in data or "\r" in data:
            data = json.dumps(json.loads(data))
        parts.append(f'["{kind}",{data}]')
        if kind in FINAL_TYPES:
            last_id = entry_id
            break
    return f"id: {last_id}\nevent: batch\ndata: [{','.join(parts)}]\n\n"


def is_final(entries: list[tuple[str, str, bytes]]) -> bool:
    return any(kind in FINAL_TYPES for _id, kind, _raw in entries)


EXPIRED_EVENT = 'event: batch\ndata: [["done",{"expired":true}]]\n\n'
RETRY_LINE = "retry: 2000\n\n"


def closed_event(reason: str) -> str:
    return f"event: closed\ndata: {json.dumps({'reason': reason})}\n\n"


def iter_sse(redis: Redis, generation_id: int, last_id: str, block_ms: int, max_idle_rounds: int,
             check_every: float = 0.0, still_allowed: Callable[[], bool] | None = None,
             lease: "StreamLease | None" = None) -> Iterator[str]:
    """The SSE body: one `batch` event per XREAD from last_id until a final entry, with keep-alives.

    Every `check_every` seconds it renews the stream's lease and asks `still_allowed()`
    (is the user still signed in and not suspended?); when not, it sends `closed` and ends.
    The lease is released however the body ends (done, client gone, error).
    """
    try:
        yield RETRY_LINE
        idle = 0
        next_check = time.monotonic() + check_every
        while idle < max_idle_rounds:
            if still_allowed is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + check_every
                if not still_allowed():
                    yield closed_event("signed-out")
                    return
                if lease is not None:
                    lease.renew()
            entries = read_batch(redis, generation_id, last_id, block_ms)
            if not entries:
                idle += 1
                if idle > 1 and not redis.exists(stream_key(generation_id)):
                    # Nothing was ever written, or it expired: let the page fetch the final state.
                    yield EXPIRED_EVENT
                    return
                yield ": keep-alive\n\n"
                continue
            idle = 0
            last_id = entries[-1][0]
            yield batch_event(entries)
            if is_final(entries):
                return
    finally:
        if lease is not None:
            lease.release()
