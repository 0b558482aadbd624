"""Run every check on one variant, and build the one repair request that covers them all.

`CheckContext` is a plain snapshot (style rules, claim sources, language, hold choice)
built once per generation before the job's threads start; `run_checks` is pure.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.checks.claims import Sources, unsupported_claims
from app.checks.findings import Finding, sort_findings
from app.checks.language import check_language
from app.checks.style import StyleRules, check_reading_level, check_style
from app.generation.rules import RuleCheck, repair_instruction as limit_instruction

log = logging.getLogger(__name__)

MAX_LISTED = 12  # findings named in one repair request; the rest are summarised


@dataclass(frozen=True)
class CheckContext:
    rules: StyleRules = field(default_factory=StyleRules)
    sources: Sources = field(default_factory=lambda: Sources.of([]))
    language: str = "English"
    claims: bool = True
    hold: bool = False       # the workspace holds flagged variants until a person checks them


def run_checks(text: str, context: CheckContext) -> list[Finding]:
    """Every style, claim, language and reading-level finding for `text`, in text order.

    A check that crashes is logged and skipped: a bug in a check must not fail a paid generation.
    """
    found: list[Finding] = []
    checks = [lambda: check_style(text, context.rules),
              lambda: unsupported_claims(text, context.sources) if context.claims else [],
              lambda: check_language(text, context.language),
              lambda: check_reading_level(text, context.rules.max_grade, context.language)]
    for run in checks:
        try:
            found += run()
        except Exception:  # noqa: BLE001 - see the docstring
            log.exception("a check failed; the variant is stored without its findings")
    return sort_findings(found)


def repair_instruction(fmt: str, limit: int | None, verdict: RuleCheck, findings: list[Finding],
                       language: str) -> str:
    """One follow-up message naming every rule the variant broke (limit, style, claims, language)."""
    parts = []
    if limit is not None and not verdict.ok:
        parts.append(limit_instruction(fmt, limit, verdict))
    language_issue = any(f.kind == "language" for f in findings)
    if language_issue:
        parts.append(f"It must be written in {language}; rewrite all of it in {language}.")
    lines = []
    for f in findings[:MAX_LISTED]:
        if f.kind == "style":
            fix = f" (use: {f.suggestion})" if f.suggestion else ""
            lines.append(f"- Do not use “{f.text}”: {f.reason}{fix}")
        elif f.kind == "claim":
            lines.append(f"- “{f.text}” is not in the facts you were given: remove it or use a figure from them.")
        elif f.kind == "reading_level":
            lines.append(f"- {f.reason} Use shorter sentences and plainer words.")
    if len(findings) > MAX_LISTED:
        lines.append(f"- … and {len(findings) - MAX_LISTED} more of the same kinds.")
    if lines:
        parts.append("Fix these problems:\n" + "\n".join(lines))
    parts.append("Keep the message and the format. Output only the rewritten copy.")
    return "\n\n".join(parts)


def variant_fields(findings: list[Finding], hold: bool) -> dict:
    """The variant's columns from its findings: the findings, summary flags for figures
    (counted in SQL), and whether it is held until a person marks it checked."""
    kinds = {f.kind for f in findings}
    return {
        "held": hold and bool(findings),
        "findings": [f.as_dict() for f in findings],
        "style_flagged": bool(kinds & {"style", "reading_level"}),
        "claims_flagged": "claim" in kinds,
        "wrong_language": "language" in kinds,
    }
