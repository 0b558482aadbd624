"""CPU per model stream: app.llm.stream_chat against a bare openai client, both reading the fake LLM.

    .venv/bin/python scripts/llm_cpu.py [--calls 200] [--tokens 50]

Starts tests/fakes/openai_server.py in its own process (no delays, so the run is quick) and
reports the CPU time this process spends per call (user + system, all threads).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(label: str, calls: int, one) -> None:
    one()  # warm the connection pool and imports
    start = cpu()
    for _ in range(calls):
        one()
    print(f"{label}: {(cpu() - start) * 1000 / calls:.2f} ms CPU per call")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args()
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--tokens", str(args.tokens)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        base_url = fake.stdout.readline().strip()
        import openai

        from app.llm import LLMSettings, stream_chat

        messages = [{"role": "user", "content": "Write a tagline"}]
        client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)

        def bare() -> None:
            stream = client.chat.completions.create(model="m", messages=messages, stream=True,
                                                    stream_options={"include_usage": True})
            for chunk in stream:
                for choice in chunk.choices:
                    _ = choice.delta.content

        settings = LLMSettings(base_url=base_url, api_key="x", model="m")

        def ours() -> None:
            stream_chat(settings, messages, temperature=0.7, deadline_at=time.monotonic() + 30,
                        on_token=lambda piece: None)

        measure("bare openai client (parsed chunks)", args.calls, bare)
        measure("app.llm.stream_chat", args.calls, ours)
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
