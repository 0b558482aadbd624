# Copydeck: `make run` sets up and runs everything; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: setup dev run lint test bench bench-scale scale-demo worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed  ## create the virtualenv and install the app

dev: $(VENV)/.installed-dev  ## also install the test tools

run: setup  ## migrate, seed, and run web + worker (+ embedded Redis and local model)
	$(BIN)/python scripts/run.py

lint: dev  ## ruff (likely bugs) on all Python code, then mypy (types) on app/ and workers/
	$(BIN)/ruff check app workers tests bench scripts
	$(BIN)/mypy

test: dev lint  ## lint, the whole test suite (embedded Redis + SQLite unless REDIS_URL/DATABASE_URL are set), coverage floor
	$(BIN)/python -m pytest --cov --cov-report=term
	$(BIN)/python -m scripts.coverage_floor

bench: dev  ## benchmarks against the fake LLM; figures go to bench/README.md
	$(BIN)/python -m bench.run

bench-scale: dev  ## pages at 1,000,000 generations, on the empty scratch PostgreSQL database named by DATABASE_URL
	nice -n 10 $(BIN)/python -m bench.scale

scale-demo: dev  ## 2 web + 2 worker hosts on one PostgreSQL and Redis; one worker host SIGKILLed mid-burst
	$(BIN)/python -m scripts.scale_demo

clean:
	rm -rf $(VENV) instance/Procfile.run
