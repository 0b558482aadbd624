"""Output rules: per-variant character limits, single block or list, checked on the server."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleCheck:
    ok: bool
    length: int          # characters of the whole variant, or of its longest line for lists
    limit: int | None
    offending_lines: tuple[int, ...] = ()


def clean_output(text: str, fmt: str) -> str:
    """Tidy model output without changing its words: trim, drop wrapping quotes, list markers."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“":
        text = text[1:-1].strip()
    if fmt == "list":
        lines = []
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            stripped = line.lstrip("-*•").strip()
            head, sep, rest = stripped.partition(". ")
            if sep and head.isdigit():
                stripped = rest.strip()
            lines.append(stripped.strip('"'))
        text = "\n".join(lines)
    return text


def check(text: str, fmt: str, limit: int | None) -> RuleCheck:
    """Whether a variant keeps its template's limit (each line, for lists)."""
    if fmt == "list":
        lines = [line for line in text.splitlines() if line.strip()]
        lengths = [len(line) for line in lines] or [0]
        longest = max(lengths)
        if limit is None:
            return RuleCheck(True, longest, None)
        offending = tuple(i for i, n in enumerate(lengths) if n > limit)
        return RuleCheck(not offending, longest, limit, offending)
    length = len(text)
    return RuleCheck(limit is None or length <= limit, length, limit)


def repair_instruction(fmt: str, limit: int, result: RuleCheck) -> str:
    """The follow-up message asking the model to bring a variant within its limit."""
    if fmt == "list":
        lines = ", ".join(str(i + 1) for i in result.offending_lines)
        return (
            f"Line(s) {lines} are longer than {limit} characters. Rewrite the list so that every "
            f"line has at most {limit} characters. Keep one item per line. Output only the list."
        )
    return (
        f"That is {result.length} characters; the limit is {limit}. Rewrite it to at most "
        f"{limit} characters, keeping the message. Output only the rewritten copy."
    )
