"""A fake OpenAI-compatible HTTP server for tests and benchmarks (standard library only).

The real ``openai`` client talks to it over HTTP through ``base_url``; nothing in
the library is patched.

Usage in tests::

    from tests.fakes.openai_server import FakeOpenAI, error, hang, reply, long, break_stream

    with FakeOpenAI(ttft=0.0, token_delay=0.0) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        fake.script(error(429, "slow down"), reply("Hello there"))
        ...
        assert fake.requests[-1]["json"]["messages"][-1]["content"] == "..."

Standalone, for benchmarks (serves until killed, prints the base URL on stdout)::

    python -m tests.fakes.openai_server --port 8099 --ttft-ms 200 --tokens 50 --token-ms 20

Endpoints
---------
* ``GET  /v1/models`` and ``GET /v1/models/<id>`` - one model, ``fake-model``.
* ``POST /v1/chat/completions`` - ``stream: false`` gives a ``chat.completion``
  object with ``usage``; ``stream: true`` gives ``text/event-stream`` (HTTP/1.1,
  chunked transfer encoding, one flushed HTTP chunk per SSE event) in the
  OpenAI ``chat.completion.chunk`` format: a chunk with ``delta.role`` (and
  ``content: ""``), one chunk per content token, a chunk with
  ``finish_reason: "stop"``, then - only if the request had
  ``stream_options: {"include_usage": true}`` - a chunk with ``choices: []`` and
  ``usage`` (all earlier chunks then carry ``usage: null``, like the real API),
  then ``data: [DONE]``.
* ``GET /_fake/stats`` - ``{"requests", "chat_requests", "active", "max_active"}``.
* Anything else: 404 with an OpenAI-style error body.
  (The ``/v1`` prefix is optional on every path.)

Reply text (first match wins)
-----------------------------
1. the next scripted behaviour, if any (see below);
2. ``fake.tokens = N`` -> exactly N tokens ``" word1", " word2", ...``;
3. ``fake.default_reply(request_json) -> str`` if set;
4. built-in: ``"Variant copy for: <first 40 chars of the last user message> #<n>"``
   where ``n`` is the 1-based number of this chat-completions request since
   start/reset.

Text is split into word tokens with ``re.findall(r"\\s*\\S+")``: each token keeps
its leading whitespace, so ``"".join(tokens) == text`` (trailing whitespace is
appended to the last token). ``completion_tokens`` = number of tokens emitted;
``prompt_tokens`` = number of whitespace-separated words in the text content of
all request messages.

Timing profile (constructor kwargs, also plain settable attributes)
-------------------------------------------------------------------
* ``ttft`` (seconds): for streams, the headers and the role chunk are sent at
  once, the first content token ``ttft`` later;
* ``token_delay`` (seconds) between content tokens (scheduled from the stream
  start, so write time does not accumulate drift);
* ``tokens``: see above (``None`` = use the reply text).
A non-streaming reply is sent after ``ttft + token_delay * (ntokens - 1)``.

Scripted behaviours
-------------------
``fake.script(*behaviours)`` queues behaviours; each chat-completions request
pops one (FIFO, thread-safe); with an empty script the default reply is used.
Other endpoints never consume the script. Build them with the module-level
functions (also available as ``FakeOpenAI.error`` etc.), or pass a dict such as
``{"kind": "error", "status": 429}`` (keys = the function's arguments), or a
plain ``str`` as shorthand for ``reply(str)``:

* ``error(status=500, message=None, *, type=None, code=None, headers=None)`` -
  that HTTP status with body ``{"error": {"message", "type", "param", "code"}}``.
  429 also sends ``retry-after: 0`` and ``retry-after-ms: 10`` (so the client's
  retry sleeps ~10 ms); ``headers`` adds/overrides response headers.
* ``hang(seconds)`` - sleep that long before sending anything, then answer with
  the normal (unscripted) reply. Only that request's thread sleeps;
  ``stop()`` interrupts it.
* ``reply(text)`` - reply with exactly ``text`` (streamed or not, as requested).
* ``long(chars)`` - reply with a text of exactly ``chars`` characters (words of
  plain ASCII letters separated by single spaces).
* ``break_stream(after_tokens)`` - stream the role chunk and ``after_tokens``
  content tokens, then close the connection abruptly in the middle of the
  chunked body (the client sees an incomplete read -> ``openai.APIConnectionError``).
  For a non-streaming request the connection is closed without any response.
* ``end_stream(after_tokens)`` - stream the role chunk and ``after_tokens`` content
  tokens, then end the chunked body cleanly with no ``finish_reason`` and no
  ``[DONE]`` (a model server killed behind a proxy).
* ``trickle(interval)`` - stream a token every ``interval`` seconds, forever.
* ``reply(text, finish_reason="length")`` - as ``reply``, but the model says it
  stopped at max tokens.

Recording
---------
Every request (all endpoints) is appended to ``fake.requests`` as a dict::

    {"n": <chat request number or None>, "method": "POST", "path": "/v1/chat/completions",
     "headers": {lower-cased name: value}, "json": <parsed body or None>,
     "body": <same object as "json">, "behaviour": "default"|"error"|"hang"|...,
     "status": <HTTP status sent or None>, "started": <time.monotonic()>,
     "finished": <time.monotonic() or None>, "token_times": [monotonic per content token sent]}

``fake.chat_requests`` filters the chat-completions ones;
``fake.wait_for_requests(count, timeout=5.0)`` blocks until that many were
recorded (handy when the client runs in another thread); ``fake.reset()`` clears
the script, the records and the request counter, and restores ``ttft``,
``token_delay``, ``tokens`` and ``default_reply`` to the constructor's values
(so one session-wide fake can be reset between tests). ``fake.record = False``
disables recording (the standalone server does that unless ``--record``).
``fake.stats()`` gives the same counters as ``GET /_fake/stats``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Union

__all__ = [
    "FakeOpenAI",
    "Error",
    "Hang",
    "Reply",
    "Long",
    "BreakStream",
    "error",
    "hang",
    "reply",
    "long",
    "break_stream",
    "end_stream",
    "trickle",
    "tokenize",
    "main",
]

MODEL_ID = "fake-model"


# --------------------------------------------------------------------------- behaviours


@dataclasses.dataclass(frozen=True)
class Error:
    status: int = 500
    message: Optional[str] = None
    type: Optional[str] = None
    code: Optional[str] = None
    headers: Optional[dict] = None
    kind = "error"


@dataclasses.dataclass(frozen=True)
class Hang:
    seconds: float
    kind = "hang"


@dataclasses.dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str = "stop"
    kind = "reply"


@dataclasses.dataclass(frozen=True)
class Long:
    chars: int
    kind = "long"


@dataclasses.dataclass(frozen=True)
class BreakStream:
    after_tokens: int
    kind = "break_stream"


@dataclasses.dataclass(frozen=True)
class EndStream:
    after_tokens: int
    kind = "end_stream"


@dataclasses.dataclass(frozen=True)
class Trickle:
    interval: float
    kind = "trickle"


Behaviour = Union[Error, Hang, Reply, Long, BreakStream, EndStream, Trickle]


def error(
    status: int = 500,
    message: Optional[str] = None,
    *,
    type: Optional[str] = None,  # noqa: A002 - mirrors the OpenAI field name
    code: Optional[str] = None,
    headers: Optional[dict] = None,
) -> Error:
    """Answer with HTTP ``status`` and an OpenAI-style error body."""
    return Error(int(status), message, type, code, dict(headers) if headers else None)


def hang(seconds: float) -> Hang:
    """Sleep ``seconds`` before sending anything, then answer normally."""
    return Hang(float(seconds))


def reply(text: str, finish_reason: str = "stop") -> Reply:
    """Reply with exactly ``text``, ending with ``finish_reason`` (``"length"``: stopped at max tokens)."""
    return Reply(str(text), str(finish_reason))


def long(chars: int) -> Long:  # noqa: A001 - the brief's name
    """Reply with a text of exactly ``chars`` characters."""
    if chars < 0:
        raise ValueError("chars must be >= 0")
    return Long(int(chars))


def _token_count(after_tokens: int) -> int:
    if after_tokens < 0:
        raise ValueError("after_tokens must be >= 0")
    return int(after_tokens)


def break_stream(after_tokens: int) -> BreakStream:
    """Drop the connection abruptly after ``after_tokens`` content tokens."""
    return BreakStream(_token_count(after_tokens))


def end_stream(after_tokens: int) -> EndStream:
    """End the body cleanly after ``after_tokens`` tokens, with no finish_reason and no ``[DONE]``
    (what a model server that is killed or restarted behind a proxy looks like)."""
    return EndStream(_token_count(after_tokens))


def trickle(interval: float) -> Trickle:
    """Stream a token every ``interval`` seconds, forever (until the client hangs up)."""
    return Trickle(float(interval))


_FACTORIES: dict[str, Callable[..., Behaviour]] = {
    "error": error,
    "hang": hang,
    "reply": reply,
    "long": long,
    "break_stream": break_stream,
    "end_stream": end_stream,
    "trickle": trickle,
}


def _coerce_behaviour(b: Any) -> Behaviour:
    if isinstance(b, (Error, Hang, Reply, Long, BreakStream, EndStream, Trickle)):
        return b
    if isinstance(b, str):
        return reply(b)
    if isinstance(b, dict):
        d = dict(b)
        kind = d.pop("kind", None) or d.pop("behaviour", None)
        if kind is None:
            raise ValueError(f"behaviour dict needs a 'kind' key: {b!r}")
        if kind not in _FACTORIES:
            raise ValueError(f"unknown behaviour kind {kind!r}; expected one of {sorted(_FACTORIES)}")
        return _FACTORIES[kind](**d)
    raise TypeError(f"not a behaviour: {b!r}")


# --------------------------------------------------------------------------- text helpers

_TOKEN_RE = re.compile(r"\s*\S+")
_LONG_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima "
    "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
    "xray yankee zulu"
).split()


def tokenize(text: str) -> list[str]:
    """Split into word tokens that keep their leading whitespace; ``"".join(result) == text``."""
    tokens = _TOKEN_RE.findall(text)
    consumed = sum(len(t) for t in tokens)
    if consumed < len(text):  # trailing whitespace (or a whitespace-only text)
        rest = text[consumed:]
        if tokens:
            tokens[-1] += rest
        else:
            tokens = [rest]
    return tokens


def _long_text(chars: int) -> str:
    if chars <= 0:
        return ""
    parts: list[str] = []
    size = 0
    i = 0
    while size < chars:
        w = _LONG_WORDS[i % len(_LONG_WORDS)]
        parts.append(w)
        size += len(w) + 1
        i += 1
    text = " ".join(parts)[:chars]
    if text.endswith(" "):
        text = text[:-1] + "z"
    return text


def _content_text(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
        return " ".join(out)
    return str(content)


def _messages(body: Any) -> list:
    if isinstance(body, dict) and isinstance(body.get("messages"), list):
        return [m for m in body["messages"] if isinstance(m, dict)]
    return []


def _list_schema(body: Any) -> Optional[dict]:
    """The array schema under "items" of a structured-output request, in either dialect accepted:
    OpenAI's {"type": "json_schema", "json_schema": {"schema": ...}} or llama.cpp's
    {"type": "json_object", "schema": ...}. None without one (or for any other shape)."""
    fmt = body.get("response_format") if isinstance(body, dict) else None
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
    elif fmt.get("type") == "json_object":
        schema = fmt.get("schema")
    else:
        return None
    items = ((schema or {}).get("properties") or {}).get("items")
    return items if isinstance(items, dict) and items.get("type") == "array" else None


def _prompt_tokens(body: Any) -> int:
    return sum(len(_content_text(m.get("content")).split()) for m in _messages(body))


def _last_user_text(body: Any) -> str:
    for m in reversed(_messages(body)):
        if m.get("role") == "user":
            return _content_text(m.get("content"))
    return ""


_ERROR_DEFAULTS = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "Not found."),
    408: ("server_error", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for fake-model. Please try again later."),
}


# --------------------------------------------------------------------------- server plumbing


class _Abort(Exception):
    """The server is stopping; abandon this request."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for hanging/streaming handlers
    request_queue_size = 512
    allow_reuse_address = True

    fake: "FakeOpenAI"

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can do a slow reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, _Abort)):  # client went away, or we are stopping
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: _HTTPServer

    # -- lifecycle -----------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.fake.verbose:
            sys.stderr.write("fake-openai: " + (format % args) + "\n")

    # -- dispatch --------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake = self.server.fake
        raw = self._read_body()
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        route = self.path.split("?", 1)[0].rstrip("/")
        if route.startswith("/v1/") or route == "/v1":
            route = route[3:]
        is_chat = self.command == "POST" and route == "/chat/completions"

        rec = fake._begin(self, body, is_chat)
        try:
            if bad_json:
                self._send_error_json(400, "We could not parse the JSON body of your request.", "invalid_request_error", None)
            elif self.command == "GET" and route == "/models":
                self._send_json(200, {"object": "list", "data": [fake._model_obj()]})
            elif self.command == "GET" and route.startswith("/models/"):
                model_id = route[len("/models/"):]
                if model_id == fake.model:
                    self._send_json(200, fake._model_obj())
                else:
                    self._send_error_json(404, f"The model '{model_id}' does not exist", "invalid_request_error", "model_not_found")
            elif self.command == "GET" and route == "/_fake/stats":
                self._send_json(200, fake.stats())
            elif is_chat:
                self._chat(rec, body)
            else:
                self._send_error_json(404, f"Unknown request URL: {self.command} {self.path}.", "invalid_request_error", "unknown_url")
        except (OSError, _Abort):
            self.close_connection = True
        finally:
            fake._end(rec, getattr(self, "_status_sent", None))

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    # -- response helpers ------------------------------------------------------
    def _start(self, status: int, headers: dict) -> None:
        self._status_sent = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()

    def _send_json(self, status: int, obj: Any, headers: Optional[dict] = None) -> None:
        data = json.dumps(obj).encode()
        h = {
            "Content-Type": "application/json",
            "Content-Length": len(data),
            "x-request-id": self._request_id(),
            "openai-processing-ms": "1",
        }
        for k, v in (headers or {}).items():  # caller's headers override ours (case-insensitively)
            for existing in [e for e in h if e.lower() == k.lower()]:
                del h[existing]
            h[k] = v
        self._start(status, h)
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error_json(self, status: int, message: str, etype: Optional[str], code: Optional[str], headers: Optional[dict] = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": etype, "param": None, "code": code}}, headers)

    def _request_id(self) -> str:
        rec = getattr(self, "_rec_n", None)
        return f"req_fake_{rec if rec is not None else 0}"

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _sse(self, obj: Any) -> None:
        self._write_chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")

    def _drop(self) -> None:
        """Close the connection abruptly (FIN in the middle of the response)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- chat completions --------------------------------------------------------
    def _chat(self, rec: dict, body: Any) -> None:
        fake = self.server.fake
        self._rec_n = rec["n"]
        if not isinstance(body, dict):
            self._send_error_json(400, "A JSON object body is required.", "invalid_request_error", None)
            return
        behaviour = fake._next_behaviour()
        rec["behaviour"] = behaviour.kind if behaviour is not None else "default"

        if isinstance(behaviour, Hang):
            fake._sleep(behaviour.seconds)
            behaviour = None  # then answer normally

        if isinstance(behaviour, Error):
            fallback = (
                ("server_error", None, "The server had an error while processing your request.")
                if behaviour.status >= 500
                else ("invalid_request_error", None, "Request failed.")
            )
            etype, code, msg = _ERROR_DEFAULTS.get(behaviour.status, fallback)
            headers: dict = {}
            if behaviour.status == 429:
                headers = {"retry-after": "0", "retry-after-ms": "10"}
            headers.update(behaviour.headers or {})
            self._send_error_json(
                behaviour.status,
                behaviour.message if behaviour.message is not None else msg,
                behaviour.type if behaviour.type is not None else etype,
                behaviour.code if behaviour.code is not None else code,
                headers,
            )
            return

        # Snapshot the timing profile so that changes mid-request don't mix.
        ttft, token_delay, ntokens = fake.ttft, fake.token_delay, fake.tokens
        if isinstance(behaviour, Reply):
            tokens = tokenize(behaviour.text)
        elif isinstance(behaviour, Long):
            tokens = tokenize(_long_text(behaviour.chars))
        elif ntokens is not None:
            tokens = [f" word{i}" for i in range(1, int(ntokens) + 1)]
        else:
            tokens = tokenize(fake._default_text(body, rec["n"]))
        break_after = behaviour.after_tokens if isinstance(behaviour, BreakStream) else None
        self._finish_reason = behaviour.finish_reason if isinstance(behaviour, Reply) else "stop"
        self._end_after = behaviour.after_tokens if isinstance(behaviour, EndStream) else None
        self._trickle = behaviour.interval if isinstance(behaviour, Trickle) else None

        model = body.get("model") if isinstance(body.get("model"), str) else fake.model
        prompt_tokens = _prompt_tokens(body)
        cid = f"chatcmpl-fake{rec['n']}"
        created = int(time.time())

        if body.get("stream"):
            self._stream(rec, tokens, break_after, ttft, token_delay, model, cid, created, prompt_tokens, body)
            return

        if break_after is not None:
            self._drop()
            return
        if tokens:
            fake._sleep(ttft + token_delay * (len(tokens) - 1))
        now = time.monotonic()
        rec["token_times"].extend([now] * len(tokens))
        text = "".join(tokens)
        self._send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                        "logprobs": None,
                        "finish_reason": self._finish_reason,
                    }
                ],
                "usage": _usage(prompt_tokens, len(tokens)),
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
            },
        )

    def _stream(self, rec, tokens, break_after, ttft, token_delay, model, cid, created, prompt_tokens, body) -> None:
        fake = self.server.fake
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))

        def chunk(delta: dict, finish_reason: Optional[str] = None) -> dict:
            c = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                c["usage"] = None
            return c

        self._start(
            200,
            {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked",
                "x-request-id": f"req_fake_{rec['n']}",
                "openai-processing-ms": "1",
            },
        )
        self._sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        # Content chunks: encode the JSON once around a placeholder, splice each token in.
        marker = "\x00TOKEN\x00"
        head, tail = (
            b"data: " + json.dumps(chunk({"content": marker}), separators=(",", ":")).encode() + b"\n\n"
        ).split(json.dumps(marker).encode())
        t0 = time.monotonic()
        if self._trickle is not None:
            while True:  # until the client hangs up (the write fails) or the fake stops
                fake._sleep(self._trickle)
                self._write_chunk(head + json.dumps(" more").encode() + tail)
                rec["token_times"].append(time.monotonic())
        for i, tok in enumerate(tokens):
            if break_after is not None and i >= break_after:
                self._drop()
                return
            if self._end_after is not None and i >= self._end_after:
                break
            fake._wait_if_held(i)
            fake._sleep_until(t0 + ttft + token_delay * i)
            self._write_chunk(head + json.dumps(tok).encode() + tail)
            rec["token_times"].append(time.monotonic())
        if break_after is not None:  # fewer tokens than after_tokens: break before finishing
            self._drop()
            return
        if self._end_after is not None:  # a clean end of the body, but the model never finished
            self._write_chunk(b"")
            return
        self._sse(chunk({}, self._finish_reason))
        if include_usage:
            last = chunk({})
            last["choices"] = []
            last["usage"] = _usage(prompt_tokens, len(tokens))
            self._sse(last)
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # terminating zero-length chunk


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


# --------------------------------------------------------------------------- public class


class FakeOpenAI:
    """A fake OpenAI API on ``127.0.0.1``; see the module docstring."""

    error = staticmethod(error)
    hang = staticmethod(hang)
    reply = staticmethod(reply)
    long = staticmethod(long)
    break_stream = staticmethod(break_stream)
    end_stream = staticmethod(end_stream)
    trickle = staticmethod(trickle)

    def __init__(
        self,
        *,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        tokens: Optional[int] = None,
        default_reply: Optional[Callable[[dict], str]] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = MODEL_ID,
        record: bool = True,
        verbose: bool = False,
    ) -> None:
        self.ttft = ttft
        self.token_delay = token_delay
        self.tokens = tokens
        self.default_reply = default_reply
        self.host = host
        self.port = port
        self.model = model
        self.record = record
        self.verbose = verbose
        self._profile = {"ttft": ttft, "token_delay": token_delay, "tokens": tokens, "default_reply": default_reply}
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._script: collections.deque = collections.deque()
        self._chat_count = 0
        self._total = 0
        self._active = 0
        self._max_active = 0
        self._conns: set = set()
        self._stopping = threading.Event()
        # hold_before_token = i: every stream waits before its token i until release() (tests order
        # events with it instead of timing them); None: no hold.
        self.hold_before_token: Optional[int] = None
        self._released = threading.Event()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "FakeOpenAI":
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes sleeping hang/ttft/token waits
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}/v1"

    # -- scripting / records -------------------------------------------------------
    def script(self, *behaviours: Any) -> None:
        """Queue behaviours, consumed one per chat-completions request (FIFO)."""
        coerced = [_coerce_behaviour(b) for b in behaviours]
        with self._lock:
            self._script.extend(coerced)

    @property
    def script_remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def reset(self) -> None:
        """Clear the script, the records and the request counter; restore the constructor's
        ``ttft``, ``token_delay``, ``tokens`` and ``default_reply`` (so a shared fake starts fresh)."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self._chat_count = 0
            self.hold_before_token = None
            self._released.set()
            for name, value in self._profile.items():
                setattr(self, name, value)

    def hold(self, before_token: int = 0) -> None:
        """Make every stream wait before its content token `before_token` until release()."""
        self._released.clear()
        self.hold_before_token = before_token

    def release(self) -> None:
        """Let held streams go on (and stop holding new ones)."""
        self.hold_before_token = None
        self._released.set()

    def _wait_if_held(self, token_index: int) -> None:
        if self.hold_before_token == token_index:
            while not self._released.wait(0.05):
                if self._stopping.is_set():
                    raise _Abort()

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in list(self.requests) if r["n"] is not None]

    @property
    def last_request(self) -> Optional[dict]:
        reqs = list(self.requests)
        return reqs[-1] if reqs else None

    def wait_for_requests(self, count: int, timeout: float = 5.0, *, chat_only: bool = True) -> list[dict]:
        """Block until at least ``count`` (chat) requests were recorded; returns them."""
        deadline = time.monotonic() + timeout

        def got() -> list[dict]:
            return [r for r in self.requests if r["n"] is not None] if chat_only else list(self.requests)

        with self._recorded:
            while len(got()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {count} requests, got {len(got())}")
                self._recorded.wait(left)
            return got()

    def stats(self) -> dict:
        with self._lock:
            return {
                "requests": self._total,
                "chat_requests": self._chat_count,
                "active": self._active,
                "max_active": self._max_active,
            }

    # -- internals used by the handler ----------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _begin(self, handler: _Handler, body: Any, is_chat: bool) -> dict:
        rec = {
            "n": None,
            "method": handler.command,
            "path": handler.path,
            "headers": {k.lower(): v for k, v in handler.headers.items()},
            "json": body,
            "body": body,
            "behaviour": None,
            "status": None,
            "started": time.monotonic(),
            "finished": None,
            "token_times": [],
        }
        with self._lock:
            self._total += 1
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            if is_chat:
                self._chat_count += 1
                rec["n"] = self._chat_count
            if self.record:
                self.requests.append(rec)
                self._recorded.notify_all()
        return rec

    def _end(self, rec: dict, status: Optional[int]) -> None:
        rec["status"] = status
        rec["finished"] = time.monotonic()
        with self._lock:
            self._active -= 1

    def _next_behaviour(self) -> Optional[Behaviour]:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            if seconds <= 0.25:
                time.sleep(seconds)  # cheaper than Event.wait for the many short token delays
            elif self._stopping.wait(seconds):  # long waits (hang, ttft) are interrupted by stop()
                raise _Abort()
        if self._stopping.is_set():
            raise _Abort()

    def _sleep_until(self, deadline: float) -> None:
        self._sleep(deadline - time.monotonic())

    def _default_text(self, body: dict, n: int) -> str:
        if self.default_reply is not None:
            return str(self.default_reply(body))
        schema = _list_schema(body)
        if schema is not None:  # structured output: as many short items as the schema asks for
            count = int(schema.get("minItems") or 3)
            return json.dumps({"items": [f"Item {i} #{n}" for i in range(1, count + 1)]})
        return f"Variant copy for: {_last_user_text(body)[:40]} #{n}"

    def _model_obj(self) -> dict:
        return {"id": self.model, "object": "model", "created": 1700000000, "owned_by": "copydeck-tests"}

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"<FakeOpenAI {where} ttft={self.ttft} token_delay={self.token_delay} tokens={self.tokens}>"


# --------------------------------------------------------------------------- CLI


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.openai_server", description="Fake OpenAI-compatible server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first content token")
    p.add_argument("--token-ms", type=float, default=0.0, help="delay between content tokens")
    p.add_argument("--tokens", type=int, default=None, help="reply with exactly N tokens ' word1' ... (default: derived text)")
    p.add_argument("--model", default=MODEL_ID)
    p.add_argument("--record", action="store_true", help="keep request records in memory (off by default)")
    p.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = p.parse_args(argv)

    fake = FakeOpenAI(
        ttft=args.ttft_ms / 1000.0,
        token_delay=args.token_ms / 1000.0,
        tokens=args.tokens,
        host=args.host,
        port=args.port,
        model=args.model,
        record=args.record,
        verbose=args.verbose,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    fake.start()
    print(fake.base_url, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
