"""Benchmarks for Copydeck against the fake LLM (tests/fakes/openai_server.py).

`make bench` (= `python -m bench.run`) starts its own stack the way `make run`
does and prints the figures; see bench/README.md. Not part of `make test`.
"""
