"""How often a list template's answer has exactly N items within the limit, with and without structured output.

    .venv/bin/python -m bench.list_compliance [--base-url URL --model NAME] [--runs 20] [--dialect llama_cpp]

Without --base-url it runs against the fake OpenAI server (which only shows the plumbing: the fake
follows any schema it is given). The prompt is the seed template google-ads-headlines ("exactly 10
headlines of at most 30 characters") with sample inputs, rendered as the app renders it; each answer
is cleaned exactly as the job cleans it (app/generation/output.py). Prints one line per mode and a
JSON summary last.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml
from jinja2.sandbox import SandboxedEnvironment

from app.generation.rules import (JsonItemsDecoder, check, clean_output, expected_items, items_from_json,
                                  list_schema, response_format_for)
from app.llm import LLMError, LLMSettings, stream_chat

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = {"product": "Copydeck, the AI copywriter for teams", "benefits": "On-brand copy in seconds, 40+ templates, "
          "team workspaces, free trial", "keywords": "ai copywriter", "audience": "Small marketing teams",
          "tone": "Friendly", "language": "English", "variant_count": 1, "brand_voice": ""}


def messages_for(slug: str) -> tuple[list[dict], int | None, int | None]:
    spec = yaml.safe_load((ROOT / "app" / "catalog" / "seed" / f"{slug}.yaml").read_text())
    env = SandboxedEnvironment()
    system = env.from_string(spec["system_prompt"]).render(**SAMPLE)
    user = env.from_string(spec["user_prompt"]).render(**SAMPLE)
    return ([{"role": "system", "content": system}, {"role": "user", "content": user}],
            expected_items(system + "\n" + user), spec["output"].get("max_chars"))


def run(settings: LLMSettings, runs: int, dialect: str | None, slug: str) -> dict:
    messages, count, limit = messages_for(slug)
    response_format = response_format_for(dialect, list_schema(count, limit)) if dialect else None
    exact = within = both = failed = 0
    seconds = 0.0
    for _ in range(runs):
        decoder, shown = JsonItemsDecoder(), []
        started = time.monotonic()
        try:
            completion = stream_chat(settings, messages, temperature=0.7, deadline_at=time.monotonic() + 120,
                                     on_token=(lambda p, shown=shown, decoder=decoder: shown.append(decoder.feed(p))) if response_format else None,
                                     response_format=response_format)
        except LLMError:
            failed += 1
            continue
        seconds += time.monotonic() - started
        raw = completion.text
        if response_format:
            items = items_from_json(raw)
            raw = "\n".join(items) if items is not None else "".join(shown)
        text = clean_output(raw, "list", tuple(SAMPLE), plain=True)
        lines = [line for line in text.splitlines() if line.strip()]
        ok_count = count is None or len(lines) == count
        ok_limit = check(text, "list", limit).ok
        exact += ok_count
        within += ok_limit
        both += ok_count and ok_limit
    done = runs - failed
    return {"mode": dialect or "plain", "runs": runs, "failed": failed, "exact_count": exact, "within_limit": within,
            "both": both, "mean_seconds": round(seconds / done, 2) if done else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dialect", default="llama_cpp", choices=("llama_cpp", "openai"))
    parser.add_argument("--slug", default="google-ads-headlines")
    parser.add_argument("--max-tokens", type=int, default=300)
    args = parser.parse_args()
    fake = None
    base_url = args.base_url
    if base_url is None:
        from tests.fakes.openai_server import FakeOpenAI
        fake = FakeOpenAI().start()
        base_url = fake.base_url
    settings = LLMSettings(base_url=base_url, api_key="local", model=args.model, request_timeout=120,
                           max_attempts=1, deadline=120, max_tokens=args.max_tokens)
    try:
        results = [run(settings, args.runs, None, args.slug), run(settings, args.runs, args.dialect, args.slug)]
    finally:
        if fake is not None:
            fake.stop()
    for r in results:
        print(f"{r['mode']:10s} {r['both']}/{r['runs']} exactly N items all within the limit "
              f"(count {r['exact_count']}, limit {r['within_limit']}, failed {r['failed']}, {r['mean_seconds']} s each)")
    print(json.dumps({"server": "fake" if fake else base_url, "model": args.model, "results": results}))


if __name__ == "__main__":
    main()
