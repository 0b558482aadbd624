"""Stop: the user ends a generation's remaining variants while it is writing.

The Stop button sets a Redis flag (`gen:<id>:stop`). The job's token callback looks at it at most
every CHECK_EVERY seconds and, once set, raises GenerationStopped out of the model call (the
connection is closed, so the model stops too). Finished variants are kept and charged; variants
still being written are dropped and refunded through the job's usual settle (charged for what was
stored). A generation stopped while still queued is failed and refunded before it starts.
"""
from __future__ import annotations

import time

from redis.exceptions import RedisError

from app.llm import LLMError

CHECK_EVERY = 0.2
STOPPED_BEFORE_START = "You stopped this generation before it started. Nothing was charged."


class GenerationStopped(LLMError):
    """Raised from a token callback when the user pressed Stop."""

    def __init__(self) -> None:
        super().__init__("stopped", "stopped by the user")


def stop_key(generation_id: int) -> str:
    return f"gen:{generation_id}:stop"


def request_stop(redis, generation_id: int, ttl: int) -> None:
    redis.set(stop_key(generation_id), "1", ex=max(int(ttl), 60))


def is_stopped(redis, generation_id: int) -> bool:
    try:
        return bool(redis.exists(stop_key(generation_id)))
    except RedisError:
        return False  # cannot tell: keep writing (Stop is a convenience, not a guarantee)


class StopWatch:
    """The job's view of the flag: cheap to ask on every token (Redis at most every CHECK_EVERY s)."""

    def __init__(self, redis, generation_id: int) -> None:
        self.redis, self.generation_id = redis, generation_id
        self.stopped = False
        self._checked = 0.0

    def check(self) -> None:
        """Raise GenerationStopped once the flag is set."""
        now = time.monotonic()
        if not self.stopped and now - self._checked >= CHECK_EVERY:
            self._checked = now
            self.stopped = is_stopped(self.redis, self.generation_id)
        if self.stopped:
            raise GenerationStopped()


def partial_message(total: int, stored: int, stopped: int) -> str:
    """The note on a generation that stored fewer variants than asked for."""
    if stopped:
        return (f"You stopped this generation: {stored} of {total} variants were written. "
                f"You were charged for {stored}; the rest was refunded.")
    failed = total - stored
    return f"{failed} of {total} variants could not be generated; you were charged for {stored}."
