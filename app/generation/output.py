"""How a generation's variants are asked for and cleaned, decided once per job.

List templates ask for exactly N items through structured output when the model server supports it
(rules.structured_mode): the answer is {"items": [...]}, streamed to the browser as plain lines
(JsonItemsDecoder) and stored as one item per line. Everything else streams as written. Either way
the stored text goes through rules.clean_output (chatter, echoed labels, markdown syntax).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.generation.rules import (JsonItemsDecoder, clean_output, expected_items, is_plain, items_from_json,
                                  list_schema, response_format_for, structured_mode)

if TYPE_CHECKING:
    from app.generation.stop import StopWatch
    from app.generation.streams import GenerationStream


@dataclass
class LiveText:
    """One variant's token callback: decodes structured output, forwards text, honours Stop."""

    position: int
    stream: GenerationStream
    stop_watch: StopWatch
    structured: bool
    decoder: JsonItemsDecoder = field(default_factory=JsonItemsDecoder)
    shown: list[str] = field(default_factory=list)

    def token(self, piece: str) -> None:
        self.stop_watch.check()
        text = self.decoder.feed(piece) if self.structured else piece
        if text:
            self.shown.append(text)
            self.stream.token(self.position, text)

    def reset(self) -> None:
        self.decoder = JsonItemsDecoder()
        self.shown.clear()
        self.stream.reset(self.position)

    @property
    def text(self) -> str:
        return "".join(self.shown)


@dataclass(frozen=True)
class OutputShape:
    fmt: str
    limit: int | None
    labels: tuple[str, ...]
    response_format: dict | None = None
    items: int | None = None

    @classmethod
    def for_generation(cls, generation, config) -> "OutputShape":
        version = generation.template_version
        labels = tuple(str(f.get(key) or "") for f in version.fields for key in ("label", "name"))
        fmt, limit = version.format, version.max_chars
        if fmt != "list":
            return cls(fmt, limit, labels)
        items = expected_items(f"{generation.system_prompt}\n{generation.user_prompt}")
        response_format = response_format_for(structured_mode(config), list_schema(items, limit))
        return cls(fmt, limit, labels, response_format, items)

    @property
    def structured(self) -> bool:
        return self.response_format is not None

    @property
    def plain(self) -> bool:
        """Lists and short copy with a character limit are pasted as plain text: no markdown syntax."""
        return is_plain(self.fmt, self.limit)

    def live(self, position: int, stream, stop_watch) -> LiveText:
        return LiveText(position, stream, stop_watch, self.structured)

    def clean(self, raw: str, live: LiveText) -> str:
        """The text to store: the structured items (or, if the JSON was cut short, what was decoded), cleaned."""
        if self.structured:
            items = items_from_json(raw)
            raw = "\n".join(items) if items is not None else live.text
        return clean_output(raw, self.fmt, self.labels, plain=self.plain)

    def as_answer(self, text: str) -> str:
        """The model's previous answer, replayed in its own form for the repair request."""
        if self.structured:
            return json.dumps({"items": [line for line in text.splitlines() if line.strip()]}, ensure_ascii=False)
        return text
