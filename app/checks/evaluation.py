"""Precision and recall of the claims check on the hand-made set in tests/checks/claims_eval.yaml.

A found unsupported claim is a true positive when its span overlaps an expected one (each
expected claim counts once); a found claim that overlaps none is a false positive; an
expected claim that no finding overlaps is a false negative. Used by `make bench` and a test.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from app.checks.claims import Sources, unsupported_claims

EVAL_SET = Path(__file__).resolve().parents[2] / "tests" / "checks" / "claims_eval.yaml"


def load_cases(path: Path = EVAL_SET) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def score(cases: list[dict]) -> dict:
    tp = fp = fn = 0
    misses: list[str] = []
    for case in cases:
        text = case["variant"]
        expected = []
        for claim in case.get("unsupported") or []:
            start = text.find(claim)
            if start < 0:
                raise ValueError(f"{case['id']}: {claim!r} is not in the variant")
            expected.append((start, start + len(claim)))
        found = [(f.start, f.end) for f in unsupported_claims(text, Sources.of([case["sources"]]))]
        matched = set()
        for s, e in found:
            hit = next((i for i, (xs, xe) in enumerate(expected) if s < xe and xs < e and i not in matched), None)
            if hit is None:
                fp += 1
                misses.append(f"{case['id']}: false positive {text[s:e]!r}")
            else:
                matched.add(hit)
                tp += 1
        for i, (xs, xe) in enumerate(expected):
            if i not in matched:
                fn += 1
                misses.append(f"{case['id']}: missed {text[xs:xe]!r}")
    return {
        "cases": len(cases), "tp": tp, "fp": fp, "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "misses": misses,
    }
