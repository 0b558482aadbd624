"""Split an item's text into passages: by headings and paragraphs, each at most MAX_PASSAGE_CHARS.

Paragraphs under the same heading are packed together up to the bound; a paragraph longer than the
bound is cut at sentence ends, and a sentence longer than the bound at a space (or hard). Each passage
keeps the heading it sits under, which is indexed and shown with it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PASSAGE_CHARS = 1000
HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Piece:
    heading: str
    text: str


def split(text: str, max_chars: int = MAX_PASSAGE_CHARS) -> list[Piece]:
    """The passages of a text, in order."""
    pieces: list[Piece] = []
    heading = ""
    paragraphs: list[str] = []

    def flush() -> None:
        buffer = ""
        for paragraph in paragraphs:
            for chunk in _bounded(paragraph, max_chars):
                if buffer and len(buffer) + 2 + len(chunk) > max_chars:
                    pieces.append(Piece(heading, buffer))
                    buffer = ""
                buffer = f"{buffer}\n\n{chunk}" if buffer else chunk
        if buffer:
            pieces.append(Piece(heading, buffer))
        paragraphs.clear()

    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().split("\n")
        current: list[str] = []
        for line in lines:
            match = HEADING_RE.match(line.strip())
            if match:
                if current:
                    paragraphs.append("\n".join(current).strip())
                    current = []
                flush()
                heading = match.group(2).strip()[:200]
            elif line.strip():
                current.append(line.rstrip())
        if current:
            paragraphs.append("\n".join(current).strip())
    flush()
    return pieces


def _bounded(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph as chunks of at most max_chars, cut at sentence ends where possible."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    chunks: list[str] = []
    buffer = ""
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            if buffer:
                chunks.append(buffer)
                buffer = ""
            chunks.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if buffer and len(buffer) + 1 + len(sentence) > max_chars:
            chunks.append(buffer)
            buffer = ""
        buffer = f"{buffer} {sentence}" if buffer else sentence
    if buffer:
        chunks.append(buffer)
    return [c for c in chunks if c]
