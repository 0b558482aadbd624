"""The hand-made evaluation set keeps the claims check at precision and recall >= 0.9."""
from __future__ import annotations

from app.checks.evaluation import load_cases, score


def test_eval_set_is_large_enough_and_bilingual():
    cases = load_cases()
    assert len(cases) >= 40
    assert {c["language"] for c in cases} >= {"English", "German"}
    assert sum(1 for c in cases if c["unsupported"]) >= 20 and sum(1 for c in cases if not c["unsupported"]) >= 10


def test_claims_precision_and_recall_stay_at_least_0_9():
    result = score(load_cases())
    assert result["precision"] >= 0.9 and result["recall"] >= 0.9, result["misses"]


def test_scoring_counts_misses_and_false_alarms():
    cases = [{"id": "a", "sources": "Price $10", "variant": "Now $12, was $10.", "unsupported": []},
             {"id": "b", "sources": "", "variant": "Organic tea.", "unsupported": ["Organic", "tea"]}]
    result = score(cases)
    assert (result["tp"], result["fp"], result["fn"]) == (1, 1, 1)
