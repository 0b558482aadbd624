"""Output rules: per-variant character limits, single block or list, checked on the server."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RuleCheck:
    ok: bool
    length: int          # characters of the whole variant, or of its longest line for lists
    limit: int | None
    offending_lines: tuple[int, ...] = ()


# Chatter a model puts around the copy. Only whole lines at the start or end are dropped, and only
# when they match one of these shapes, so copy that merely starts with "Sure" stays.
_PREAMBLE = re.compile(
    r"^(?:(?:sure|certainly|of course|absolutely|okay|ok|great|alright)\s*[!.,:]\s*"
    r"(?:(?:here|below)\b[^\n]*|[^\n]{0,60}\b(?:i|i'd|i'll|i've|happy|glad|help)\b[^\n]{0,60})?$"
    r"|here(?:'s| is| are)\b[^\n]{0,120}(?::|\.\.\.|…)$"
    r"|here(?:'s| is| are) (?:a|an|the|some|your|my|\d+)\b[^\n]{0,80}\b(?:version|headlines?|options?|variants?"
    r"|taglines?|slogans?|subject lines?|list|ideas?|rewrite|descriptions?|captions?)\b[^\n]{0,60}$"
    r"|(?:below|following) (?:is|are)\b[^\n]{0,120}:$)",
    re.IGNORECASE,
)
_OUTRO = re.compile(
    r"^(?:(?:i hope|hope) (?:this|these|that)\b|let me know\b|feel free to\b|(?:would|do) you (?:like|want)\b"
    r"|if you(?:'d| would)? (?:like|need|want)\b|these (?:headlines|taglines|options|variants)\b[^\n]*\b(?:should|will)\b"
    r"|note:)",
    re.IGNORECASE,
)
# Labels a model echoes from the prompt ("Headline: ...", "Option 2: ..."), besides the template's own field labels.
_OUTPUT_LABELS = ("headline", "headlines", "subject line", "subject", "tagline", "slogan", "description", "copy",
                  "answer", "output", "result", "rewritten version", "rewritten text", "text", "caption", "post")
_NUMBERED_LABEL = re.compile(r"^(?:option|variant|version|headline|tagline|idea)\s*#?\d{1,2}\s*[:.)-]\s*", re.IGNORECASE)
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)\s]+)\)")
_MD_CODE = re.compile(r"`([^`]+)`")
_LIST_MARKER = re.compile(r"^(?:[-*•–]\s+|\d{1,2}[.)]\s+)")


def _strip_quotes(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“":
        return text[1:-1].strip()
    if len(text) >= 2 and text[0] == "“" and text[-1] == "”":
        return text[1:-1].strip()
    return text


def strip_markdown(line: str) -> str:
    """Markdown syntax out of one line of plain copy: headings, emphasis, links, code (words kept)."""
    line = _MD_HEADING.sub("", line)
    line = _MD_LINK.sub(r"\1", line)
    line = _MD_CODE.sub(r"\1", line)
    return _MD_EMPHASIS.sub(lambda m: m.group(2) or m.group(3), line)


def _drop_label(line: str, labels: tuple[str, ...]) -> str:
    """"Product: Copydeck" -> "Copydeck" when "Product" is a field label or an output label (whole word, at the start)."""
    line = _NUMBERED_LABEL.sub("", line)
    bare = strip_markdown(line)
    head, sep, rest = bare.partition(":")
    if sep and rest.strip() and head.strip().lower() in labels:
        return rest.strip()
    return line


def clean_output(text: str, fmt: str, labels: tuple[str, ...] = (), plain: bool | None = None) -> str:
    """Tidy model output without changing its words.

    Drops a preamble line ("Sure! Here are 10 headlines:") and a closing line of chatter ("Let me know
    if..."), labels echoed from the form ("Product: ..."), wrapping quotes, list markers and, for plain
    copy (lists, and any template with a character limit: `plain`), markdown syntax. Long single blocks
    keep their markdown; it is rendered, sanitised, on display (`render_markdown`).
    """
    plain = (fmt == "list") if plain is None else plain
    known = tuple({label.strip().lower() for label in labels if label} | set(_OUTPUT_LABELS))
    original = [line.rstrip() for line in text.strip().splitlines()]
    lines = list(original)
    while lines and (not lines[0].strip() or _PREAMBLE.match(strip_markdown(lines[0].strip()))):
        lines.pop(0)
    while lines and (not lines[-1].strip() or _OUTRO.match(strip_markdown(lines[-1].strip()))):
        lines.pop()
    if lines and lines[-1].strip() in ("---", "***"):
        lines.pop()
    if not any(line.strip() for line in lines):
        lines = original  # it was all "chatter": better to keep it than to store nothing
    if fmt == "list":
        items = []
        for line in lines:
            line = line.strip()
            if not line or line in ("---", "***"):
                continue
            line = _LIST_MARKER.sub("", line).strip()
            line = _drop_label(line, known)
            line = _strip_quotes(strip_markdown(line).strip())
            line = _LIST_MARKER.sub("", line).strip()
            if line:
                items.append(line)
        return "\n".join(items)
    if lines:
        lines[0] = _drop_label(lines[0].strip(), known)
    if plain:
        lines = [strip_markdown(line) for line in lines]
    return _strip_quotes("\n".join(lines).strip())


# Copy with a limit up to this many characters (ads, posts, subject lines) is pasted into a field as plain
# text, so markdown syntax is stripped; longer forms (emails, press releases) keep it and it is rendered.
PLAIN_LIMIT = 500


def is_plain(fmt: str, limit: int | None) -> bool:
    """Whether a template's copy is plain text (no markdown kept): lists and short limited copy."""
    return fmt == "list" or (limit is not None and limit <= PLAIN_LIMIT)


def list_items(text: str) -> list[str]:
    """The items of a list variant: one per non-empty line of the stored text."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def expected_items(prompt: str) -> int | None:
    """How many items a list template asks for, read from its rendered prompt ("Write exactly 10 ...")."""
    match = re.search(r"\bexactly\s+(\d{1,2})\b", prompt, re.IGNORECASE)
    if match and 1 <= int(match.group(1)) <= 50:
        return int(match.group(1))
    return None


def list_schema(count: int | None, limit: int | None) -> dict:
    """The JSON schema a list variant must follow: {"items": [N strings]} (OpenAI json_schema; llama.cpp grammar)."""
    item: dict = {"type": "string"}
    if limit:
        item["maxLength"] = limit
    items: dict = {"type": "array", "items": item, "minItems": count or 1, "maxItems": count or 30}
    return {"type": "object", "properties": {"items": items}, "required": ["items"], "additionalProperties": False}


def items_from_json(text: str) -> list[str] | None:
    """The items of a structured answer, or None when it is not a complete {"items": [...]} object."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict):
        data = data.get("items")
    if not isinstance(data, list):
        return None
    return [str(item).strip() for item in data if str(item).strip()]


STRUCTURED_MODES = ("openai", "llama_cpp", "off")


def structured_mode(config) -> str:
    """Which structured-output dialect the model server speaks (LLM_STRUCTURED_OUTPUT).

    auto: OpenAI itself (no base URL) takes json_schema; the bundled llama-cpp-python server takes
    json_object with a schema (compiled to a grammar); other servers are left alone unless the
    operator says which one they speak.
    """
    mode = str(config.get("LLM_STRUCTURED_OUTPUT") or "auto").strip().lower()
    if mode == "auto":
        if config.get("LLM_LOCAL_DRAFT"):
            return "llama_cpp"
        return "off" if config.get("OPENAI_BASE_URL") else "openai"
    return mode if mode in STRUCTURED_MODES else "off"


def response_format_for(mode: str, schema: dict) -> dict | None:
    """The request's response_format for a list's schema in that server's dialect."""
    if mode == "openai":
        return {"type": "json_schema", "json_schema": {"name": "copy_list", "strict": True, "schema": schema}}
    if mode == "llama_cpp":
        return {"type": "json_object", "schema": schema}
    return None


class JsonItemsDecoder:
    """Turns a streamed {"items": ["a", "b"]} answer into the text "a\nb" as it arrives.

    Only the characters inside the array's strings pass (escapes decoded); a newline goes between
    items. The live view so shows lines, not JSON, while the model writes.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escape = ""
        self.items_seen = 0

    def feed(self, piece: str) -> str:
        out = []
        for ch in piece:
            if self.in_string:
                if self.escape:
                    self.escape += ch
                    if self.escape[1] == "u" and len(self.escape) < 6:
                        continue
                    if self.depth == 2:
                        try:
                            out.append(json.loads(f'"{self.escape}"'))
                        except ValueError:
                            pass
                    self.escape = ""
                elif ch == "\\":
                    self.escape = ch
                elif ch == '"':
                    self.in_string = False
                elif self.depth == 2:
                    out.append(" " if ch in "\r\n" else ch)
                continue
            if ch == '"':
                self.in_string = True
                if self.depth == 2:
                    if self.items_seen:
                        out.append("\n")
                    self.items_seen += 1
            elif ch in "[{":
                self.depth += 1
            elif ch in "]}":
                self.depth -= 1
        return "".join(out)


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
