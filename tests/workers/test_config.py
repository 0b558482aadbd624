"""The start-up check of the job's time budget, for every configuration `make run` produces."""
from __future__ import annotations

import pytest

from scripts import run


def _defaults() -> dict:
    from app import config
    return {key: config.load()[key] for key in ("LLM_DEADLINE", "JOB_TIMEOUT", "LLM_REQUEST_TIMEOUT")}


@pytest.mark.parametrize("model", ["configured", "bundled local model"])
def test_every_make_run_configuration_passes_the_time_budget_check(model, make_app, monkeypatch):
    for key in ("LLM_DEADLINE", "JOB_TIMEOUT", "LLM_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    overrides = _defaults()
    if model != "configured":
        overrides.update({key: float(value) for key, value in run.LOCAL_MODEL_SETTINGS.items()})
    make_app(overrides)  # raises if the budget does not fit
    # The deadline is a hard total (tests/generation/test_cut_off.py), so the per-request timeout does
    # not add to it: the local model's 60 s request timeout + 150 s deadline still fits in 180 s.
    assert overrides["LLM_DEADLINE"] + 20 <= overrides["JOB_TIMEOUT"]


def test_a_deadline_that_does_not_fit_the_job_timeout_is_refused(make_app):
    with pytest.raises(RuntimeError, match="LLM_DEADLINE"):
        make_app({"LLM_DEADLINE": 170.0, "JOB_TIMEOUT": 180})
