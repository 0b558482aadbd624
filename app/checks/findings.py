"""What a check reports: one finding per span of a variant that breaks a rule.

Pure data, no Flask, no database: the checker functions return these, the job
stores them as JSON on the variant (`variants.findings`) and the card marks them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("style", "claim", "language", "reading_level")


@dataclass(frozen=True)
class Finding:
    rule: str            # e.g. "banned", "spelling", "ai_tell", "unsupported_claim", "wrong_language"
    kind: str            # one of KINDS
    start: int           # character offsets into the variant text; [start, end)
    end: int
    text: str            # the offending text, text[start:end]
    reason: str          # why, in words a marketer understands
    suggestion: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.start, f.end, f.rule))
