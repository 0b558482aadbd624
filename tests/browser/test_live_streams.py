"""Live streams in the browser: through the separate stream server (another port, with the
session cookie), and the polling fallback when a stream is refused (429)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_journey import (FINAL_CARDS, GENERATION_TIMEOUT, GENERATION_URL, STREAMING_PROBE,
                                        fill_generate_form, no_js_errors, sign_up)
from tests.stream_server import running_stream_server

pytestmark = pytest.mark.browser


def _submit_slowly_streamed(page: Page, fake_llm, address: str) -> None:
    fake_llm.ttft = 0.3
    fake_llm.token_delay = 0.1
    sign_up(page, address)
    page.goto("/write/product-description")
    fill_generate_form(page, {}, variants=2)
    page.click("#generate-form button[type=submit]")
    expect(page).to_have_url(GENERATION_URL)


def test_the_page_streams_from_the_stream_server_on_its_own_port(page: Page, app, base_env, tmp_root,
                                                                 worker_process, fake_llm, monkeypatch):
    with running_stream_server(base_env, tmp_root) as stream_url:
        monkeypatch.setitem(app.config, "STREAM_PORT", stream_url.rsplit(":", 1)[1])
        streams = []
        page.on("response", lambda r: streams.append((r.url, r.status)) if r.url.endswith("/stream") else None)
        _submit_slowly_streamed(page, fake_llm, "gevent@example.com")
        probe = page.wait_for_function(STREAMING_PROBE, polling="raf", timeout=GENERATION_TIMEOUT).json_value()
        assert probe["final"] is False, "no streamed text was seen before the final render"
        expect(page.locator(FINAL_CARDS)).to_have_count(2, timeout=GENERATION_TIMEOUT)
    assert streams and all(url.startswith(stream_url) and status == 200 for url, status in streams), streams
    no_js_errors(page)


def test_a_refused_stream_falls_back_to_polling(page: Page, app, worker_process, fake_llm, monkeypatch):
    monkeypatch.setitem(app.config, "STREAM_MAX_PER_USER", 0)  # every stream is over the bound
    refused = []
    page.on("response", lambda r: refused.append(r.status) if r.url.endswith("/stream") else None)
    _submit_slowly_streamed(page, fake_llm, "polling@example.com")
    expect(page.locator('#results[hx-trigger="every 2s"]')).to_have_count(1, timeout=GENERATION_TIMEOUT)
    expect(page.locator(FINAL_CARDS)).to_have_count(2, timeout=GENERATION_TIMEOUT)
    assert refused and set(refused) == {429}
    no_js_errors(page)
