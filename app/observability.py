"""Logs, request ids and metrics shared by the web and worker processes.

Logs. `configure_logging` installs one handler on the root logger: plain text in development,
one JSON object a line in production (LOG_FORMAT). Every record carries the ids of what it
belongs to, taken from a context variable:
  - web requests: `request_id` (the client's X-Request-ID when it is sane, else a new one; it is
    returned in the response, and gunicorn's access line for the request carries it);
  - jobs: `job_id` and `generation_id`, set by `log_context(...)` around the job. A context
    variable follows asyncio tasks; a plain thread starts empty, so code that hands work to a
    thread pool submits `carry_context(fn)`.

Metrics. Web and worker are separate processes (often separate hosts), so nothing is counted in
process memory: `record_ttft` and `record_error` add to Redis hashes (HINCRBY, atomic across
every process), and `/metrics` reads them together with gauges computed at scrape time from the
database (generations queued/running) and RQ (queue depth, live workers).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
import sys
import threading
import uuid
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, TypeVar, cast

from flask import Flask, g, request
from redis import Redis

log = logging.getLogger(__name__)
T = TypeVar("T")

LOG_FIELDS = ("request_id", "job_id", "generation_id")
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("copydeck_log_context",
                                                                         default=MappingProxyType({}))
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# --------------------------------------------------------------------------- logging


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Tag every log line inside the block with these ids (job_id, generation_id, ...).

    For an RQ job, `job_id` defaults to the job being performed, so a job function needs only
    `with log_context(generation_id=generation_id):`.
    """
    if "job_id" not in fields:
        from rq import get_current_job
        job = get_current_job()
        if job is not None:
            fields["job_id"] = job.id
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def carry_context(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn`, to run in another thread (a pool) with the log ids of the thread that wrapped it."""
    fields = _context.get()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        token = _context.set(fields)
        try:
            return fn(*args, **kwargs)
        finally:
            _context.reset(token)

    return run


class ContextFilter(logging.Filter):
    """Copies the current ids onto each record (attached to the handler, so it sees every logger)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context ids, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in LOG_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The development format, with the context ids appended when there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{key}={getattr(record, key)}" for key in LOG_FIELDS if getattr(record, key, None) is not None)
        return f"{text} [{ids}]" if ids else text


def make_handler(log_format: str, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    handler._copydeck = True  # type: ignore[attr-defined]  # replaced, not stacked, by a second create_app
    return handler


def configure_logging(app: Flask) -> None:
    """One handler on the root logger, in the configured format, tagging lines with the ids."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_copydeck", False)]:
        root.removeHandler(handler)
    root.addHandler(make_handler(app.config["LOG_FORMAT"]))
    root.setLevel(app.config["LOG_LEVEL"])


def init_request_ids(app: Flask) -> None:
    """Give each request an id (X-Request-ID honoured when sane) that tags its log lines and is
    returned in the response, where gunicorn's access log line picks it up (gunicorn.conf.py)."""

    def assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_log_token = _context.set({**_context.get(), "request_id": g.request_id})

    # First of all, so even a request refused early (413, CSRF) has its id.
    app.before_request_funcs.setdefault(None, []).insert(0, assign_request_id)

    @app.after_request
    def return_request_id(response):
        request_id = g.get("request_id")
        if request_id is not None:  # None: the request failed before before_request ran
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    @app.teardown_request
    def forget_request_id(_exc) -> None:
        token = g.pop("request_log_token", None)
        if token is not None:
            with contextlib.suppress(ValueError):  # set in another context (streamed responses)
                _context.reset(token)


# --------------------------------------------------------------------------- metrics

TTFT_KEY = "metrics:ttft"
ERRORS_KEY = "metrics:errors"
# Seconds, from submit to the first token the browser can show (queue wait included).
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)


def _redis(redis: Redis | None) -> Redis:
    if redis is not None:
        return redis
    from flask import current_app
    return current_app.extensions["redis"]


def record_ttft(seconds: float, redis: Redis | None = None) -> None:
    """Observe one time to first token, into the histogram every process shares."""
    bucket = next((str(b) for b in TTFT_BUCKETS if seconds <= b), "+Inf")
    try:
        pipe = _redis(redis).pipeline(transaction=False)
        pipe.hincrby(TTFT_KEY, bucket, 1)
        pipe.hincrby(TTFT_KEY, "count", 1)
        pipe.hincrbyfloat(TTFT_KEY, "sum", max(seconds, 0.0))
        pipe.execute()
    except Exception:  # noqa: BLE001 - metrics must never fail a generation
        log.warning("could not record time to first token", exc_info=True)


def record_error(kind: str, redis: Redis | None = None) -> None:
    """Count one error of this kind (variant_failed, job_crashed, http_500, ...)."""
    try:
        _redis(redis).hincrby(ERRORS_KEY, kind, 1)
    except Exception:  # noqa: BLE001
        log.warning("could not record error %s", kind, exc_info=True)


class FirstTokenTimer:
    """Wraps a GenerationStream: the first token() call records the time to first token.

    `since` is the submit time (an aware or naive-UTC datetime), so the figure is what the
    user waited, queue included. Thread-safe: variants stream from several threads.
    """

    def __init__(self, stream: Any, since: datetime, redis: Redis | None = None):
        self._stream, self._since, self._redis = stream, since, _redis(redis)
        self._lock = threading.Lock()
        self._seen = False

    def token(self, *args: Any, **kwargs: Any) -> Any:
        if not self._seen:
            with self._lock:
                first, self._seen = not self._seen, True
            if first:
                since = self._since if self._since.tzinfo else self._since.replace(tzinfo=timezone.utc)
                record_ttft((datetime.now(timezone.utc) - since).total_seconds(), self._redis)
        return self._stream.token(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def time_first_token(stream: T, since: datetime) -> T:
    """The job's stream, timing its first token from `since` (the generation's created_at).
    Typed as the stream it wraps: the timer forwards everything else to it."""
    return cast(T, FirstTokenTimer(stream, since))
