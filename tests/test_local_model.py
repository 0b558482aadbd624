"""End to end against the bundled local model (SmolLM2-135M via llama-cpp-python).

Runs when `make run` has built the model into this virtualenv; checks structure
only (the small model's wording is not the point): non-empty variants, within
their limits or flagged, stored and charged.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request

import pytest

from scripts.run import gguf_path
from tests.generation.helpers import load, submit
from workers.embedded_redis import free_port

pytestmark = pytest.mark.local_model

if importlib.util.find_spec("llama_cpp") is None or gguf_path() is None:
    pytest.skip("the bundled local model is not built here (run `make run` once to build it)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def local_llm():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1",
         "--port", str(port), "--model_alias", "smollm2", "--verbose", "False", "--interrupt_requests", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base_url + "/models", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the local model server did not start")
            time.sleep(0.3)
    yield base_url
    proc.terminate()
    proc.wait(10)


def test_generation_with_the_local_model(app, client, login, run_worker, local_llm):
    saved = {k: app.config[k] for k in ("OPENAI_BASE_URL", "OPENAI_MODEL", "LLM_REQUEST_TIMEOUT", "LLM_MAX_TOKENS")}
    app.config.update(OPENAI_BASE_URL=local_llm, OPENAI_MODEL="smollm2", LLM_REQUEST_TIMEOUT=15, LLM_MAX_TOKENS=120)
    try:
        login()
        generation_id = submit(client, app, "google-ads-headlines", variants=2)
        run_worker()
    finally:
        app.config.update(saved)
    generation = load(app, generation_id)
    assert generation.status == "succeeded", generation.error_message
    assert len(generation.variants) == 2
    for variant in generation.variants:
        assert variant.text.strip()
        lines = [line for line in variant.text.splitlines() if line.strip()]
        assert variant.over_limit == any(len(line) > 30 for line in lines)
    assert generation.prompt_tokens > 0 and generation.completion_tokens > 0
