"""The variant card's marked text, built from escaped segments (never |safe on model text)."""
from __future__ import annotations

from markupsafe import Markup, escape

RULE_LABELS = {
    "banned": "Banned phrase", "spelling": "Spelling", "ai_tell": "AI tell",
    "unsupported_claim": "Unsupported claim", "wrong_language": "Wrong language", "reading_level": "Reading level",
}


def spans(text: str, findings: list[dict] | None) -> list[dict]:
    """Findings that still mark their text (an edit may have moved it), without overlaps, in order."""
    kept, last_end = [], 0
    for f in sorted(findings or [], key=lambda f: (f.get("start", 0), -f.get("end", 0))):
        start, end = f.get("start"), f.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            continue
        if text[start:end] != f.get("text") or start < last_end:
            continue
        kept.append(f)
        last_end = end
    return kept


def highlight(text: str, findings: list[dict] | None) -> Markup:
    """`text` escaped, with each finding's span wrapped in <mark> naming the rule and reason."""
    out, pos = [], 0
    for f in spans(text, findings):
        out.append(escape(text[pos:f["start"]]))
        label = RULE_LABELS.get(f.get("rule", ""), f.get("rule", ""))
        title = f"{label}: {f.get('reason', '')}"
        if f.get("suggestion"):
            title += f" Suggestion: {f['suggestion']}"
        out.append(Markup('<mark class="finding finding-{}" data-rule="{}" title="{}">{}</mark>').format(
            f.get("kind", ""), f.get("rule", ""), title, text[f["start"]:f["end"]]))
        pos = f["end"]
    out.append(escape(text[pos:]))
    return Markup("").join(out)
