"""The one door to the language model.

Every call goes through the official `openai` client with a configurable base
URL, so OpenAI, any OpenAI-compatible server (Ollama, vLLM, LM Studio,
llama.cpp) and the bundled local model share this code path.

- **One retry layer.** The client is created with max_retries=0; `stream_chat`
  retries transient failures (429, 5xx, timeouts, dropped connections, streams
  that end before the model finished) with exponential backoff.
- **A real total deadline.** Every attempt, backoff included, fits inside the
  caller's `deadline_at`: a watchdog shuts the socket down at the deadline, so
  a stream that trickles forever, or a server that stops sending, ends on time
  instead of one read timeout later (see `Watchdog`).
- **Complete means the model said so.** A stream is finished only with a
  `finish_reason` or the raw stream's `[DONE]`; a connection that closes
  earlier is a transient failure, never copy. `finish_reason="length"` keeps
  the text but flags it `cut_off`.
- **Lean reading.** The stream is read through the same client's raw streaming
  response and each SSE line is parsed with `json`, instead of building a
  pydantic model per chunk (scripts/llm_cpu.py measures both).
- **Bounded output.** NUL bytes are dropped and the text is capped at
  `max_output_chars`; a capped text is flagged cut off too.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import openai

try:  # openai 3.x ships its own fork of httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - older openai releases
    import httpx as _httpx  # type: ignore[no-redef]  # the same API under its usual name

log = logging.getLogger(__name__)


class StreamCutOff(Exception):
    """The model's stream ended before the model finished (connection dropped, server killed)."""


class DeadlineReached(Exception):
    """The generation's total deadline passed mid-call."""


TRANSIENT_ERRORS = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
    _httpx.TransportError,
    StreamCutOff,
)


@dataclass(frozen=True)
class LLMSettings:
    base_url: str | None
    api_key: str | None
    model: str
    request_timeout: float = 30.0
    max_attempts: int = 3
    deadline: float = 120.0
    backoff: float = 1.0
    max_tokens: int = 800
    max_output_chars: int = 20_000

    @classmethod
    def from_config(cls, config: Mapping) -> "LLMSettings":
        return cls(
            base_url=config.get("OPENAI_BASE_URL"),
            api_key=config.get("OPENAI_API_KEY"),
            model=config["OPENAI_MODEL"],
            request_timeout=float(config["LLM_REQUEST_TIMEOUT"]),
            max_attempts=int(config["LLM_MAX_ATTEMPTS"]),
            deadline=float(config["LLM_DEADLINE"]),
            backoff=float(config["LLM_BACKOFF"]),
            max_tokens=int(config["LLM_MAX_TOKENS"]),
            max_output_chars=int(config.get("LLM_MAX_OUTPUT_CHARS", 20_000)),
        )


# What went wrong (problem) and what the reader can do (advice), by kind of failure. The caller chooses
# the rest of the words its reader sees (the generation job adds that no quota was used).
FAILURES: dict[str, tuple[str, str]] = {
    "rate_limited": ("The AI service is busy right now (rate limited).", "please try again in a minute."),
    "timeout": ("The AI service took too long to answer.", "please try again."),
    "cut_off": ("The AI service stopped in the middle of an answer.", "please try again."),
    "unreachable": ("We could not reach the AI service.", "please try again shortly."),
    "auth": ("The AI service rejected our credentials.", "an administrator has to fix the API key."),
    "refused": ("The AI service refused this request.", "try shorter or different inputs."),
    "empty": ("The AI service returned an empty answer.", "please try again."),
    "interrupted": ("The writer was restarting.", "please try again."),
    "stopped": ("You stopped this generation before any variant was finished.", "nothing was charged."),
    "failed": ("The AI service failed to answer.", "please try again."),
}


class LLMError(Exception):
    """A final failure of a model call, typed by `kind` (a key of FAILURES)."""

    def __init__(self, kind: str, detail: str = ""):
        if kind not in FAILURES:
            raise ValueError(f"unknown LLM failure kind {kind!r}")
        super().__init__(detail or FAILURES[kind][0])
        self.kind = kind

    @property
    def problem(self) -> str:
        """What went wrong, in words a marketer understands."""
        return FAILURES[self.kind][0]

    @property
    def advice(self) -> str:
        """What to do about it (lower case, to follow a clause)."""
        return FAILURES[self.kind][1]

    @property
    def summary(self) -> str:
        """Problem and advice as two sentences, for readers who pay nothing (admins, test runs)."""
        return f"{self.problem} {self.advice[0].upper()}{self.advice[1:]}"


class LLMInterrupted(LLMError):
    """The call was stopped from outside (the worker is shutting down); the caller hands the job back."""

    def __init__(self) -> None:
        super().__init__("interrupted")


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    attempts: int = 1
    finish_reason: str = "stop"
    cut_off: bool = False
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the watchdog


class Watchdog:
    """One thread per process that ends calls at their deadline, or all of them on `interrupt()`.

    A blocked socket read cannot be cancelled from another thread by closing it;
    `shutdown(SHUT_RDWR)` can: the read returns at once and the stream reports
    the connection closed, which `stream_chat` then maps to the real reason.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._calls: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self.interrupted = threading.Event()

    def watch(self, deadline_at: float, stop: Callable[[], None]) -> int:
        with self._lock:
            token = next(self._ids)
            self._calls[token] = stop
            heapq.heappush(self._heap, (deadline_at, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llm-watchdog", daemon=True)
                self._thread.start()
            self._lock.notify()
            return token

    def release(self, token: int) -> None:
        with self._lock:
            self._calls.pop(token, None)

    def interrupt(self) -> None:
        """Stop every call in flight now, and refuse new ones (the worker is shutting down)."""
        self.interrupted.set()
        with self._lock:
            for stop in self._calls.values():
                stop()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][1] not in self._calls:
                    heapq.heappop(self._heap)  # already finished
                if not self._heap:
                    self._lock.wait(30)
                    continue
                deadline_at, token = self._heap[0]
                wait = deadline_at - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                heapq.heappop(self._heap)
                stop = self._calls.pop(token, None)
                if stop is not None:  # under the lock: a released call is never stopped
                    stop()


watchdog = Watchdog()


def _socket_stopper(response) -> Callable[[], None]:
    """A function that unblocks whoever reads this HTTP response."""
    stream = response.http_response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def stop() -> None:
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return stop


# --------------------------------------------------------------------------- the client


_clients: dict[tuple, openai.OpenAI] = {}
_clients_lock = threading.Lock()


def client_for(settings: LLMSettings) -> openai.OpenAI:
    """A shared client per endpoint, so connections are pooled across jobs."""
    key = (settings.base_url, settings.api_key)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = openai.OpenAI(
                base_url=settings.base_url,
                # Local and compatible servers accept any key; the client insists on one.
                api_key=settings.api_key or "not-needed",
                max_retries=0,
                timeout=settings.request_timeout,
            )
            _clients[key] = client
        return client


def _failure_kind(exc: Exception) -> str:
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, (openai.APITimeoutError, _httpx.TimeoutException, DeadlineReached)):
        return "timeout"
    if isinstance(exc, StreamCutOff):
        return "cut_off"
    if isinstance(exc, (openai.APIConnectionError, _httpx.TransportError)):
        return "unreachable"
    if isinstance(exc, openai.AuthenticationError):
        return "auth"
    if isinstance(exc, openai.BadRequestError):
        return "refused"
    return "failed"


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


@dataclass
class _Attempt:
    """What one streamed attempt produced."""
    pieces: list[str] = field(default_factory=list)
    chars: int = 0
    model: str = ""
    usage: dict | None = None
    finish_reason: str | None = None
    capped: bool = False


def _read_stream(response, attempt: _Attempt, limit: int, on_token: Callable[[str], None] | None) -> None:
    """Parse the raw SSE lines of a chat completion stream into `attempt`.

    Returns normally only when the model finished (a finish_reason, or the raw
    stream's `[DONE]`) or the output cap was reached; raises StreamCutOff when
    the body ends without either.
    """
    done = False
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments, `event:` lines
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        chunk = json.loads(data)
        if chunk.get("error") and not chunk.get("choices"):  # the server gave up mid-stream
            raise StreamCutOff(f"error event in the stream: {chunk['error']!r:.300}")
        attempt.model = chunk.get("model") or attempt.model
        if chunk.get("usage"):
            attempt.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                piece = piece.replace("\x00", "")
                room = limit - attempt.chars
                if len(piece) > room:
                    piece = piece[:room]
                    attempt.capped = True
                if piece:
                    attempt.pieces.append(piece)
                    attempt.chars += len(piece)
                    if on_token is not None:
                        on_token(piece)
            if choice.get("finish_reason"):
                attempt.finish_reason = choice["finish_reason"]
        if attempt.capped:
            return  # stop reading: the rest would be thrown away
    if attempt.finish_reason is None and not done:
        raise StreamCutOff(f"stream ended without finishing (finish_reason={attempt.finish_reason}, [DONE]={done})")


def stream_chat(
    settings: LLMSettings,
    messages: list[dict],
    *,
    temperature: float,
    deadline_at: float,
    on_token: Callable[[str], None] | None = None,
    on_restart: Callable[[], None] | None = None,
    max_tokens: int | None = None,
    response_format: dict | None = None,
) -> Completion:
    """Stream one chat completion, calling on_token for every piece of text.

    `response_format` (structured output, e.g. a JSON schema) is passed through as given.

    A transient failure restarts the completion from scratch (on_restart tells
    the listener to discard what it showed) until the attempts or the deadline
    run out; then LLMError is raised. LLMInterrupted is raised at once when
    the worker interrupts its calls (shutdown).
    """
    client = client_for(settings)
    attempt_no = 0
    last_exc: Exception | None = None
    while attempt_no < settings.max_attempts:
        if watchdog.interrupted.is_set():
            raise LLMInterrupted()
        remaining = deadline_at - time.monotonic()
        if remaining <= 1.0:
            break
        attempt_no += 1
        if attempt_no > 1 and on_restart is not None:
            on_restart()
        attempt = _Attempt(model=settings.model)
        try:
            # openai's overloads want its TypedDicts for messages and response_format; ours are plain dicts.
            with client.chat.completions.with_streaming_response.create(  # type: ignore[call-overload]
                model=settings.model,
                messages=messages,
                temperature=temperature,
                max_tokens=max_tokens or settings.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                timeout=min(settings.request_timeout, remaining),
                **({"response_format": response_format} if response_format else {}),
            ) as response:
                # Released before the connection goes back to the pool, so a late stop cannot hit another call.
                token = watchdog.watch(deadline_at, _socket_stopper(response))
                try:
                    _read_stream(response, attempt, settings.max_output_chars, on_token)
                except (_httpx.TransportError, StreamCutOff) as exc:
                    if watchdog.interrupted.is_set():
                        raise LLMInterrupted() from exc
                    if time.monotonic() >= deadline_at:
                        raise DeadlineReached("generation deadline reached mid-stream") from exc
                    raise
                finally:
                    watchdog.release(token)
            text = "".join(attempt.pieces)
            usage = attempt.usage or {}
            finish = "length" if attempt.capped else attempt.finish_reason or "stop"
            return Completion(
                text,
                usage.get("prompt_tokens") or _estimate_tokens(messages),
                usage.get("completion_tokens") or max(len(text) // 4, 1),
                attempt.model,
                attempt_no,
                finish_reason=finish,
                cut_off=finish == "length",
            )
        except DeadlineReached as exc:
            last_exc = exc
            break
        except TRANSIENT_ERRORS as exc:
            if watchdog.interrupted.is_set():
                raise LLMInterrupted() from exc
            last_exc = exc
            log.warning("LLM attempt %s/%s failed: %r", attempt_no, settings.max_attempts, exc)
            delay = _retry_after(exc)
            if delay is None:
                delay = settings.backoff * (2 ** (attempt_no - 1)) * random.uniform(0.8, 1.2)
            if time.monotonic() + delay + 1.0 >= deadline_at:
                break
            if attempt_no < settings.max_attempts and watchdog.interrupted.wait(delay):
                raise LLMInterrupted() from exc
        except openai.APIError as exc:  # 4xx other than 429: retrying will not help
            raise LLMError(_failure_kind(exc), repr(exc)) from exc
    if last_exc is None:
        raise LLMError("timeout", "deadline reached before an attempt")
    raise LLMError(_failure_kind(last_exc), repr(last_exc)) from last_exc


def _estimate_tokens(messages: list[dict]) -> int:
    return max(sum(len(str(m.get("content", ""))) for m in messages) // 4, 1)


def check_connection(settings: LLMSettings, timeout: float = 10.0) -> str:
    """List the server's models; return the model we use, or raise LLMError."""
    try:
        client_for(settings).models.list(timeout=timeout)
    except openai.APIError as exc:
        raise LLMError(_failure_kind(exc), repr(exc)) from exc
    return settings.model
