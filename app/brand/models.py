"""Brand voices: how a workspace sounds."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core import utcnow
from app.extensions import db


class BrandVoice(db.Model):
    """How a workspace sounds; its text reaches prompts as `brand_voice`."""

    __tablename__ = "brand_voices"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    tone_rules: Mapped[str] = mapped_column(Text, default="")
    words_to_use: Mapped[str] = mapped_column(Text, default="")
    words_to_avoid: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(Text, default="")
    key_facts: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    def as_prompt_text(self) -> str:
        """The voice as plain text for the prompt (the template decides where it goes)."""
        parts = [f"Brand voice: {self.name}."]
        for label, value in (
            ("About the brand", self.description), ("Tone rules", self.tone_rules),
            ("Words to use", self.words_to_use), ("Words to avoid", self.words_to_avoid),
            ("Audience", self.audience), ("Key product facts", self.key_facts),
        ):
            if value and value.strip():
                parts.append(f"{label}: {value.strip()}")
        return "\n".join(parts)
