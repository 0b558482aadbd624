"""Tests of the fake OpenAI server, exercised through the real ``openai`` client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from .openai_server import FakeOpenAI, break_stream, end_stream, error, hang, long, reply, tokenize, trickle

MESSAGES = [
    {"role": "system", "content": "You write ad copy."},
    {"role": "user", "content": "Write three taglines for our new waterproof hiking boots please"},
]


@pytest.fixture
def fake():
    with FakeOpenAI() as f:
        yield f


@pytest.fixture
def client(fake):
    c = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
    yield c
    c.close()


def _stream(client, messages=MESSAGES, **kw):
    return client.chat.completions.create(model="fake-model", messages=messages, stream=True, **kw)


def _content(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_base_url_and_models(fake, client):
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    models = client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]
    assert client.models.retrieve("fake-model").id == "fake-model"


def test_streaming_reply_with_usage_chunk(fake, client):
    chunks = list(_stream(client, stream_options={"include_usage": True}))

    first, *content, finish, usage_chunk = chunks
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert all(c.choices[0].delta.content for c in content)
    assert all(c.choices[0].finish_reason is None for c in [first, *content])
    assert finish.choices[0].finish_reason == "stop"
    assert finish.choices[0].delta.content is None
    assert usage_chunk.choices == []

    text = _content(chunks)
    assert text == "Variant copy for: " + MESSAGES[-1]["content"][:40] + " #1"
    assert [c.choices[0].delta.content for c in content] == tokenize(text)
    assert content[1].choices[0].delta.content == " copy"  # tokens keep their leading space
    usage = usage_chunk.usage
    assert usage.completion_tokens == len(content)
    assert usage.prompt_tokens == sum(len(m["content"].split()) for m in MESSAGES)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_include_usage_has_no_usage_chunk(client):
    chunks = list(_stream(client))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)


def test_non_streaming_reply(fake, client):
    r1 = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    r2 = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert r1.object == "chat.completion"
    assert r1.choices[0].message.role == "assistant"
    assert r1.choices[0].finish_reason == "stop"
    assert r1.choices[0].message.content == "Variant copy for: " + MESSAGES[-1]["content"][:40] + " #1"
    assert r2.choices[0].message.content.endswith(" #2")
    assert r1.usage.completion_tokens == len(tokenize(r1.choices[0].message.content))
    assert r1.usage.prompt_tokens == 14
    assert r1.usage.total_tokens == r1.usage.prompt_tokens + r1.usage.completion_tokens


def test_tokens_profile_and_first_token_arrives_before_last_is_sent(fake, client):
    fake.tokens = 5
    fake.token_delay = 0.01
    fake.hold(before_token=1)  # the server sends token 1, then waits for release()
    chunks = []
    sent_when_first_arrived = None
    for c in _stream(client):
        chunks.append(c)
        if sent_when_first_arrived is None and c.choices and c.choices[0].delta.content:
            # Incremental parsing: the client has token 1 while the server has sent only that one.
            sent_when_first_arrived = len(fake.chat_requests[0]["token_times"])
            fake.release()
    assert sent_when_first_arrived <= 1  # (the server records token 1 just after writing it)
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == [f" word{i}" for i in range(1, 6)]
    sent = fake.chat_requests[0]["token_times"]
    assert len(sent) == 5
    # Token i is scheduled token_delay * i after the stream began (a lower bound: the fake waits for it).
    assert sent[-1] - fake.chat_requests[0]["started"] >= 4 * 0.01


def test_ttft_applies_before_first_content_token(fake, client):
    fake.ttft = 0.3
    fake.tokens = 2
    fake.hold(before_token=0)
    stream = _stream(client)
    first = next(iter(stream))  # the role chunk is sent before any content token
    assert first.choices[0].delta.role == "assistant"
    assert fake.chat_requests[0]["token_times"] == []
    fake.release()
    rest = list(stream)
    assert _content(rest) == " word1 word2"
    record = fake.chat_requests[0]
    assert record["token_times"][0] - record["started"] >= 0.3  # the fake waited ttft first


def test_429_raises_rate_limit_error(fake, client):
    fake.script(error(429, "Slow down"))
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    err = ei.value
    assert err.status_code == 429
    assert "Slow down" in str(err)
    assert err.code == "rate_limit_exceeded"
    assert err.response.headers["retry-after"] == "0"
    assert err.response.headers["retry-after-ms"] == "10"
    assert err.body["message"] == "Slow down"


def test_429_retry_is_fast_with_client_retries(fake):
    fake.script(error(429), error(429))
    c = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=2)
    r = c.chat.completions.create(model="fake-model", messages=MESSAGES)
    # Each 429 says retry-after-ms: 10 (the client honours it: see test_429_raises_rate_limit_error).
    assert r.choices[0].message.content.endswith(" #3")
    assert [q["status"] for q in fake.chat_requests] == [429, 429, 200]


def test_500_raises_internal_server_error_streaming_too(fake, client):
    fake.script(error(500, "boom"), error(503))
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert ei.value.status_code == 500 and ei.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as ei:
        _stream(client)
    assert ei.value.status_code == 503
    # script exhausted: back to the default reply
    assert client.chat.completions.create(model="fake-model", messages=MESSAGES).choices[0].message.content


def test_hang_triggers_client_timeout_without_blocking_others(fake, client):
    fake.script(hang(5))
    errors = []

    def hung():
        try:
            client.chat.completions.create(model="fake-model", messages=MESSAGES, timeout=1.5)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=hung)
    t.start()
    fake.wait_for_requests(1, timeout=5)
    # Another request is served while the first one still hangs.
    r = client.chat.completions.create(model="fake-model", messages=MESSAGES, timeout=5)
    assert r.choices[0].message.content.endswith(" #2")
    assert t.is_alive() and not errors
    t.join(10)
    assert len(errors) == 1 and isinstance(errors[0], openai.APITimeoutError)
    # The hung handler is still asleep (5 s); stop() interrupts it and nothing is left in flight.
    assert fake.stats()["active"] == 1
    fake.stop()
    assert fake.stats()["active"] == 0


def test_hang_then_answers_normally(fake, client):
    fake.script(hang(0.2))
    text = _content(_stream(client))
    record = fake.chat_requests[0]
    assert record["token_times"][0] - record["started"] >= 0.2  # it hung first, then answered
    assert text.startswith("Variant copy for:")


def test_long_gives_exact_length(fake, client):
    fake.script(long(200), long(200), long(0))
    r = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    text = r.choices[0].message.content
    assert len(text) == 200
    assert set(text) <= set("abcdefghijklmnopqrstuvwxyz ")
    assert not text.startswith(" ") and not text.endswith(" ")
    assert r.usage.completion_tokens == len(text.split())
    assert _content(_stream(client)) == text
    assert client.chat.completions.create(model="fake-model", messages=MESSAGES).choices[0].message.content == ""


def test_reply_exact_text_streamed_and_not(fake, client):
    text = "Hello,  world!\nSecond line "
    fake.script(reply(text), reply(text))
    assert client.chat.completions.create(model="fake-model", messages=MESSAGES).choices[0].message.content == text
    chunks = list(_stream(client))
    assert _content(chunks) == text
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == ["Hello,", "  world!", "\nSecond", " line "]


def test_break_stream_raises_mid_iteration(fake, client):
    fake.script(break_stream(3))
    received = []
    with pytest.raises(openai.APIConnectionError):
        for c in _stream(client, stream_options={"include_usage": True}):
            if c.choices and c.choices[0].delta.content:
                received.append(c.choices[0].delta.content)
    assert received == ["Variant", " copy", " for:"]
    assert fake.chat_requests[0]["behaviour"] == "break_stream"
    # the server is fine afterwards
    assert _content(_stream(client)).endswith(" #2")


def test_break_stream_on_non_streaming_request(fake, client):
    fake.script(break_stream(0))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="fake-model", messages=MESSAGES)


def test_requests_are_recorded_and_reset(fake, client):
    client.models.list()
    list(_stream(client, stream_options={"include_usage": True}, temperature=0.7))
    assert len(fake.requests) == 2
    get, post = fake.requests
    assert get["method"] == "GET" and get["path"] == "/v1/models" and get["n"] is None
    assert post["method"] == "POST" and post["path"] == "/v1/chat/completions"
    assert post["n"] == 1 and post["status"] == 200 and post["behaviour"] == "default"
    assert post["headers"]["authorization"] == "Bearer test"
    assert post["headers"]["content-type"] == "application/json"
    assert all(k == k.lower() for k in post["headers"])
    assert post["json"]["messages"] == MESSAGES
    assert post["json"]["model"] == "fake-model"
    assert post["json"]["stream"] is True
    assert post["json"]["temperature"] == 0.7
    assert post["body"] is post["json"]
    assert post["started"] <= post["finished"]
    assert fake.chat_requests == [post]

    fake.script(error(500))
    fake.reset()
    assert fake.requests == [] and fake.script_remaining == 0
    r = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert r.choices[0].message.content.endswith(" #1")  # counter reset, script cleared


def test_script_fifo_with_dicts_and_strings(fake, client):
    fake.script({"kind": "reply", "text": "one"}, "two", {"kind": "error", "status": 400, "message": "bad"})
    fake.script(FakeOpenAI.reply("three"))
    assert fake.script_remaining == 4
    got = [client.chat.completions.create(model="fake-model", messages=MESSAGES).choices[0].message.content for _ in range(2)]
    assert got == ["one", "two"]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert _content(_stream(client)) == "three"
    with pytest.raises(ValueError):
        fake.script({"kind": "nope"})


def test_reset_restores_constructor_profile():
    with FakeOpenAI(ttft=0.01, tokens=3) as fake:
        fake.ttft, fake.token_delay, fake.tokens = 1.0, 1.0, None
        fake.default_reply = lambda body: "x"
        fake.reset()
        assert (fake.ttft, fake.token_delay, fake.tokens, fake.default_reply) == (0.01, 0.0, 3, None)


def test_custom_default_reply(fake, client):
    fake.default_reply = lambda body: f"{len(body['messages'])} messages seen"
    assert client.chat.completions.create(model="fake-model", messages=MESSAGES).choices[0].message.content == (
        "2 messages seen"
    )


def test_unknown_path_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-unknown")


def test_50_concurrent_streams_overlap():
    with FakeOpenAI(ttft=0.2, token_delay=0.02, tokens=10) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0)

        def one(i):
            chunks = list(_stream(client, messages=[{"role": "user", "content": f"m{i}"}], stream_options={"include_usage": True}))
            return chunks[-1].usage.completion_tokens

        fake.hold(before_token=0)  # no stream may finish before all 50 are in flight
        with ThreadPoolExecutor(50) as pool:
            futures = [pool.submit(one, i) for i in range(50)]
            fake.wait_for_requests(50, timeout=60)
            fake.release()
            results = [future.result() for future in futures]

        assert results == [10] * 50
        reqs = fake.chat_requests
        assert len(reqs) == 50
        # All 50 were held in flight at once before any finished: the server serves them concurrently.
        assert max(r["started"] for r in reqs) < min(r["finished"] for r in reqs)
        assert fake.stats()["max_active"] == 50
        client.close()


def test_standalone_cli():
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--ttft-ms", "10", "--tokens", "3", "--token-ms", "5"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    ) as proc:
        try:
            base_url = proc.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            with openai.OpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
                chunks = list(_stream(client, stream_options={"include_usage": True}))
            assert _content(chunks) == " word1 word2 word3"
            assert chunks[-1].usage.completion_tokens == 3
        finally:
            proc.terminate()
            assert proc.wait(timeout=5) == 0


def _raw_lines(client, **kwargs) -> list[str]:
    with client.chat.completions.with_streaming_response.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True, **kwargs) as response:
        return [line for line in response.iter_lines() if line]


def test_end_stream_ends_cleanly_without_finish_reason_or_done(fake, client):
    fake.script(end_stream(2))
    lines = _raw_lines(client)
    assert len(lines) == 3  # the role chunk and two tokens, nothing after
    assert "[DONE]" not in lines[-1] and '"finish_reason":null' in lines[-1]


def test_reply_with_finish_reason_length(fake, client):
    fake.script(reply("Cut here", finish_reason="length"))
    lines = _raw_lines(client)
    assert '"finish_reason":"length"' in lines[-2] and lines[-1] == "data: [DONE]"


def test_trickle_sends_a_token_every_interval_until_the_client_leaves(fake, client):
    fake.script(trickle(0.05))
    with client.chat.completions.with_streaming_response.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True) as response:
        tokens = 0
        for line in response.iter_lines():
            tokens += '" more"' in line
            if tokens == 3:
                break
    assert tokens == 3
