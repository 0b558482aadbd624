"""Style-guide checks: banned phrases, required spellings, AI tells, reading level.

Pure functions over a `StyleRules` snapshot (built from the workspace's style guide
before the job's threads start), so they are cheap to test and safe to run in threads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from app.checks.findings import Finding

# The AI tells every workspace starts with (on by default, editable on the style-guide page).
# Each is (phrase, suggested replacement or None). A phrase is matched as whole words,
# case-insensitively; the two patterns below are matched as patterns.
DEFAULT_AI_TELLS: tuple[tuple[str, str | None], ...] = (
    ("delve", "look at, explore"),
    ("delves", "looks at"),
    ("seamlessly", "smoothly, or say what actually happens"),
    ("seamless", "smooth, or say what actually happens"),
    ("in today's fast-paced world", None),
    ("unlock the power of", "use"),
    ("unleash", "use, start"),
    ("game-changer", "say what changes"),
    ("elevate your", "improve your"),
    ("tapestry", None),
    ("navigate the complexities", None),
    ("it's important to note", None),
    ("look no further", None),
    ("whether you're a", None),
    ("embark on a journey", None),
    ("revolutionize", "change, improve"),
    ("cutting-edge", "new, or name the feature"),
    ("harness the power", "use"),
    ("it's not just X, it's Y", "say the one thing plainly"),
    ("em-dash chains", "use a full stop or a comma"),
)
NOT_JUST_PATTERN = "it's not just X, it's Y"
EM_DASH_PATTERN = "em-dash chains"

_NOT_JUST = re.compile(
    r"\b(?:it|this|that|they|we|he|she)(?:'s|’s|'re|’re| is| are)\s+not\s+(?:just|only|merely|simply)\b"
    r"[^.!?\n]{1,100}?[,;:—–-]\s*(?:it|this|that|they|we|he|she)(?:'s|’s|'re|’re| is| are)\b",
    re.IGNORECASE,
)
# Two or more em dashes (or spaced double hyphens) inside one sentence.
_EM_DASH_CHAIN = re.compile(r"(?:—|\s--\s)[^.!?\n]*?(?:—|\s--\s)")


@dataclass(frozen=True)
class StyleRules:
    banned: tuple[tuple[str, str | None], ...] = ()      # (phrase, suggestion)
    spellings: tuple[str, ...] = ()                      # required spelling of names
    ai_tells: tuple[tuple[str, str | None], ...] = DEFAULT_AI_TELLS
    max_grade: float | None = None                       # target reading level (grade), English only


@lru_cache(maxsize=2048)
def _phrase_pattern(phrase: str) -> re.Pattern:
    """Whole-word, case-insensitive; straight and curly apostrophes and any run of spaces match."""
    parts = []
    for ch in phrase.strip():
        if ch in "'’":
            parts.append("['’]")
        elif ch.isspace():
            parts.append(r"\s+")
        elif ch == "-":
            parts.append(r"[-\s]?")
        else:
            parts.append(re.escape(ch))
    body = "".join(parts).replace(r"\s+\s+", r"\s+")
    head = r"\b" if phrase[:1].isalnum() else ""
    tail = r"\b" if phrase[-1:].isalnum() else ""
    return re.compile(head + body + tail, re.IGNORECASE)


@lru_cache(maxsize=1024)
def _spelling_pattern(name: str) -> re.Pattern:
    """The name in any capitalisation, also split by a space or hyphen ("Copy deck", "copy-deck")."""
    letters = [re.escape(ch) for ch in name if not ch.isspace() and ch != "-"]
    return re.compile(r"\b" + r"[\s-]?".join(letters) + r"\b", re.IGNORECASE)


def check_style(text: str, rules: StyleRules) -> list[Finding]:
    """Every style-guide violation in `text`, with its span."""
    found: list[Finding] = []
    for phrase, suggestion in rules.banned:
        for m in _phrase_pattern(phrase).finditer(text):
            found.append(Finding("banned", "style", m.start(), m.end(), m.group(0),
                                 f"“{phrase}” is on your style guide's banned list.", suggestion))
    for name in rules.spellings:
        for m in _spelling_pattern(name).finditer(text):
            if m.group(0) != name:
                found.append(Finding("spelling", "style", m.start(), m.end(), m.group(0),
                                     f"Your style guide spells this “{name}”.", name))
    for phrase, suggestion in rules.ai_tells:
        if phrase == NOT_JUST_PATTERN:
            matches = _NOT_JUST.finditer(text)
            reason = "The “it's not just X, it's Y” construction reads as AI-written."
        elif phrase == EM_DASH_PATTERN:
            matches = _EM_DASH_CHAIN.finditer(text)
            reason = "Chains of em dashes read as AI-written; use a full stop or a comma."
        else:
            matches = _phrase_pattern(phrase).finditer(text)
            reason = f"“{phrase}” is on your list of AI tells."
        for m in matches:
            found.append(Finding("ai_tell", "style", m.start(), m.end(), m.group(0), reason, suggestion))
    return found


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade of English text (textstat; its CMU dictionary ships in a package)."""
    from textstat.textstat import textstatistics  # a fresh instance: set_lang state is not shared
    return float(textstatistics().flesch_kincaid_grade(text))


MIN_WORDS_FOR_GRADE = 20  # below this a grade score says little


def check_reading_level(text: str, max_grade: float | None, language: str) -> list[Finding]:
    """The whole variant, if it reads above the target grade (English copy of 20 words or more)."""
    if max_grade is None or language != "English" or len(text.split()) < MIN_WORDS_FOR_GRADE:
        return []
    grade = reading_grade(text)
    if grade <= max_grade:
        return []
    return [Finding("reading_level", "reading_level", 0, 0, "",  # the whole text: listed, not marked
                    f"Reads at grade {grade:.1f}; the target is {max_grade:g} or below.",
                    "Shorter sentences and plainer words.")]
