"""The one door to the language model.

Every call goes through the official `openai` client with a configurable base
URL, so OpenAI, any OpenAI-compatible server (Ollama, vLLM, LM Studio,
llama.cpp) and the bundled local model share this code path.

Retries are ours, not the client's (max_retries=0): transient failures (429,
5xx, timeouts, dropped connections) are retried with exponential backoff, and
every attempt, including its timeout, fits inside one deadline that the caller
derives from the RQ job timeout.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import openai

try:  # openai 3.x ships its own fork of httpx
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - older openai releases
    import httpx as _httpx

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
    _httpx.TransportError,
    TimeoutError,  # our own deadline, hit mid-stream
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
        )


class LLMError(Exception):
    """A final failure, with a message a marketer can act on."""

    def __init__(self, user_message: str, detail: str = ""):
        super().__init__(detail or user_message)
        self.user_message = user_message


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    attempts: int = 1
    extra: dict = field(default_factory=dict)


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


def _user_message(exc: Exception) -> str:
    if isinstance(exc, openai.RateLimitError):
        return "The AI service is busy right now (rate limited). Your quota was not used; please try again in a minute."
    if isinstance(exc, (openai.APITimeoutError, _httpx.TimeoutException, TimeoutError)):
        return "The AI service took too long to answer. Your quota was not used; please try again."
    if isinstance(exc, (openai.APIConnectionError, _httpx.TransportError)):
        return "We could not reach the AI service. Your quota was not used; please try again shortly."
    if isinstance(exc, openai.AuthenticationError):
        return "The AI service rejected our credentials. An administrator has to fix the API key; your quota was not used."
    if isinstance(exc, openai.BadRequestError):
        return "The AI service refused this request. Try shorter or different inputs; your quota was not used."
    return "The AI service failed to answer. Your quota was not used; please try again."


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


def stream_chat(
    settings: LLMSettings,
    messages: list[dict],
    *,
    temperature: float,
    deadline_at: float,
    on_token: Callable[[str], None] | None = None,
    on_restart: Callable[[], None] | None = None,
    max_tokens: int | None = None,
) -> Completion:
    """Stream one chat completion, calling on_token for every piece of text.

    A transient failure restarts the completion from scratch (on_restart tells
    the listener to discard what it showed) until the attempts or the deadline
    run out; then LLMError is raised.
    """
    client = client_for(settings)
    attempt = 0
    last_exc: Exception | None = None
    while attempt < settings.max_attempts:
        remaining = deadline_at - time.monotonic()
        if remaining <= 1.0:
            break
        attempt += 1
        if attempt > 1 and on_restart is not None:
            on_restart()
        pieces: list[str] = []
        usage = None
        model = settings.model
        try:
            stream = client.chat.completions.create(
                model=settings.model,
                messages=messages,
                temperature=temperature,
                max_tokens=max_tokens or settings.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                timeout=min(settings.request_timeout, remaining),
            )
            with stream:
                for chunk in stream:
                    if time.monotonic() > deadline_at:
                        raise TimeoutError("generation deadline reached mid-stream")
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        piece = choice.delta.content if choice.delta else None
                        if piece:
                            pieces.append(piece)
                            if on_token is not None:
                                on_token(piece)
            text = "".join(pieces)
            prompt_tokens = usage.prompt_tokens if usage else _estimate_tokens(messages)
            completion_tokens = usage.completion_tokens if usage else max(len(text) // 4, 1)
            return Completion(text, prompt_tokens, completion_tokens, model, attempt)
        except TRANSIENT_ERRORS as exc:
            last_exc = exc
            log.warning("LLM attempt %s/%s failed: %r", attempt, settings.max_attempts, exc)
            delay = _retry_after(exc)
            if delay is None:
                delay = settings.backoff * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            if time.monotonic() + delay + 1.0 >= deadline_at:
                break
            if attempt < settings.max_attempts:
                time.sleep(delay)
        except openai.APIError as exc:  # 4xx other than 429: retrying will not help
            raise LLMError(_user_message(exc), repr(exc)) from exc
    if last_exc is None:
        raise LLMError(_user_message(TimeoutError()), "deadline reached before an attempt")
    raise LLMError(_user_message(last_exc), repr(last_exc)) from last_exc


def _estimate_tokens(messages: list[dict]) -> int:
    return max(sum(len(str(m.get("content", ""))) for m in messages) // 4, 1)


def check_connection(settings: LLMSettings, timeout: float = 10.0) -> str:
    """List the server's models; return the model we use, or raise LLMError."""
    try:
        client_for(settings).models.list(timeout=timeout)
    except openai.APIError as exc:
        raise LLMError(_user_message(exc), repr(exc)) from exc
    return settings.model
