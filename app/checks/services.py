"""Style-guide rules (what may be saved), the check context of a generation, and the hold/check flow.

Services raise StyleGuideError with a message for the user; views turn it into a flash.
Every query is scoped to the workspace it is given.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app.core import utcnow
from app.brand.models import BrandVoice
from app.checks.checker import CheckContext
from app.checks.claims import Sources
from app.checks.models import ENTRY_KINDS, FLAG_ACTIONS, ReadingTarget, StyleEntry, StyleGuide
from app.checks.style import DEFAULT_AI_TELLS, StyleRules
from app.extensions import db
from app.generation.models import Generation, Variant

MAX_PHRASE = 80
MAX_ENTRIES = 200       # entries of all kinds per workspace
MIN_GRADE, MAX_GRADE = 1, 18
KIND_LABELS = {"banned": "banned phrase", "spelling": "required spelling", "ai_tell": "AI tell"}


class StyleGuideError(Exception):
    """A style-guide change that cannot be saved; the message says why."""


class NotHeld(Exception):
    """Marking checked a variant that is not held (or already checked)."""


def _key(phrase: str) -> str:
    return re.sub(r"\s+", " ", phrase.strip()).lower()


def get_guide(workspace_id: int) -> StyleGuide | None:
    return db.session.scalars(select(StyleGuide).where(StyleGuide.workspace_id == workspace_id)).first()


def ensure_guide(workspace_id: int, user_id: int | None) -> StyleGuide:
    """The workspace's style guide, made on first save with the default AI tells as editable entries."""
    guide = get_guide(workspace_id)
    if guide is None:
        guide = StyleGuide(workspace_id=workspace_id, updated_by_id=user_id)
        db.session.add(guide)
        for phrase, suggestion in DEFAULT_AI_TELLS:
            db.session.add(StyleEntry(workspace_id=workspace_id, kind="ai_tell", phrase=phrase,
                                      phrase_key=_key(phrase), replacement=suggestion))
        db.session.flush()
    return guide


def entries(workspace_id: int, guide: StyleGuide | None = None) -> list[StyleEntry]:
    """The workspace's entries; `guide`, when the caller already read it, saves a query."""
    guide = guide or get_guide(workspace_id)
    if guide is None:  # not saved yet: show the defaults as they will be kept
        return [StyleEntry(kind="ai_tell", phrase=p, replacement=s) for p, s in DEFAULT_AI_TELLS]
    return list(db.session.scalars(select(StyleEntry).where(StyleEntry.workspace_id == workspace_id)
                                   .order_by(StyleEntry.kind, StyleEntry.phrase_key)))


def add_entry(workspace_id: int, user_id: int, kind: str, phrase: str | None, replacement: str | None) -> StyleEntry:
    """Add one entry; empty, duplicated or over-long entries are refused with the reason."""
    if kind not in ENTRY_KINDS:
        raise StyleGuideError("Choose banned phrase, required spelling or AI tell.")
    phrase = re.sub(r"\s+", " ", (phrase or "").strip())
    replacement = re.sub(r"\s+", " ", (replacement or "").strip()) or None
    label = KIND_LABELS[kind]
    if not phrase:
        raise StyleGuideError(f"The {label} is empty.")
    if len(phrase) > MAX_PHRASE:
        raise StyleGuideError(f"The {label} is {len(phrase)} characters; the limit is {MAX_PHRASE}.")
    if replacement and len(replacement) > MAX_PHRASE:
        raise StyleGuideError(f"The replacement is {len(replacement)} characters; the limit is {MAX_PHRASE}.")
    if kind == "spelling" and replacement:
        raise StyleGuideError("A required spelling is the replacement itself: leave the second box empty.")
    if not any(ch.isalnum() for ch in phrase):
        raise StyleGuideError(f"The {label} needs at least one letter or digit.")
    guide = ensure_guide(workspace_id, user_id)
    existing = db.session.scalars(select(StyleEntry).where(StyleEntry.workspace_id == workspace_id)).all()
    if len(existing) >= MAX_ENTRIES:
        raise StyleGuideError(f"A style guide holds at most {MAX_ENTRIES} entries; remove some first.")
    if any(e.kind == kind and e.phrase_key == _key(phrase) for e in existing):
        raise StyleGuideError(f"“{phrase}” is already a {label}.")
    entry = StyleEntry(workspace_id=workspace_id, kind=kind, phrase=phrase, phrase_key=_key(phrase),
                       replacement=replacement)
    db.session.add(entry)
    guide.updated_by_id, guide.updated_at = user_id, utcnow()
    db.session.flush()
    return entry


def remove_entry(workspace_id: int, user_id: int, entry_id: int) -> None:
    ensure_guide(workspace_id, user_id)
    entry = db.session.scalars(select(StyleEntry).where(StyleEntry.id == entry_id,
                                                        StyleEntry.workspace_id == workspace_id)).first()
    if entry is None:
        raise LookupError(entry_id)
    db.session.delete(entry)


def save_settings(workspace_id: int, user_id: int, *, ai_tells: bool, claims: bool, flag_action: str,
                  max_grade: int | None) -> StyleGuide:
    if flag_action not in FLAG_ACTIONS:
        raise StyleGuideError("Choose whether flags are shown or hold the variant.")
    if max_grade is not None and not MIN_GRADE <= max_grade <= MAX_GRADE:
        raise StyleGuideError(f"A reading level is a grade from {MIN_GRADE} to {MAX_GRADE}.")
    guide = ensure_guide(workspace_id, user_id)
    guide.ai_tells_enabled, guide.claims_enabled = ai_tells, claims
    guide.flag_action, guide.max_grade = flag_action, max_grade
    guide.updated_by_id, guide.updated_at = user_id, utcnow()
    return guide


def workspace_voice(workspace_id: int, brand_voice_id: int) -> BrandVoice:
    """One of this workspace's brand voices; another workspace's is a LookupError (a 404)."""
    voice = db.session.scalars(select(BrandVoice).where(BrandVoice.id == brand_voice_id,
                                                        BrandVoice.workspace_id == workspace_id)).first()
    if voice is None:
        raise LookupError(brand_voice_id)
    return voice


def set_voice_grade(workspace_id: int, user_id: int, brand_voice_id: int, max_grade: int | None) -> None:
    """Set (or clear, with None) the target reading level of one of this workspace's brand voices."""
    voice = workspace_voice(workspace_id, brand_voice_id)
    if max_grade is not None and not MIN_GRADE <= max_grade <= MAX_GRADE:
        raise StyleGuideError(f"A reading level is a grade from {MIN_GRADE} to {MAX_GRADE}.")
    target = db.session.scalars(select(ReadingTarget).where(ReadingTarget.brand_voice_id == voice.id)).first()
    if max_grade is None:
        if target is not None:
            db.session.delete(target)
    elif target is None:
        db.session.add(ReadingTarget(workspace_id=workspace_id, brand_voice_id=voice.id, max_grade=max_grade))
    else:
        target.max_grade = max_grade
    ensure_guide(workspace_id, user_id).updated_by_id = user_id


def voice_grades(workspace_id: int) -> dict[int, int]:
    return dict(db.session.execute(select(ReadingTarget.brand_voice_id, ReadingTarget.max_grade)
                                   .where(ReadingTarget.workspace_id == workspace_id)).tuples().all())


# --------------------------------------------------------------------------- the job's snapshot

def _input_texts(value) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _input_texts(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _input_texts(v)]
    return [str(value)] if value is not None else []


@dataclass(frozen=True)
class Subject:
    """What the checks need to know about a generation, copied from its row while the job has it
    loaded, so the checks' own reads can run after the model call has started (off the path to the
    first token) without reading the generation again."""
    workspace_id: int
    brand_voice_id: int | None
    language: str
    texts: tuple[str, ...]       # inputs, rendered prompts: what the writer was given
    passages: tuple[str, ...]    # the retrieved knowledge, "title\ntext"

    @classmethod
    def of(cls, generation: Generation) -> "Subject":
        passages = getattr(generation, "knowledge_passages", None) or []
        # The rendered prompts carry the inputs and brand voice, and the template's own figures
        # ("at most 280 characters", "3 hashtags"): those were given to the writer, not invented.
        texts = _input_texts(generation.inputs) + [generation.system_prompt or "", generation.user_prompt or ""]
        return cls(workspace_id=generation.workspace_id, brand_voice_id=generation.brand_voice_id,
                   language=generation.language, texts=tuple(texts),
                   passages=tuple(f"{p.get('title', '')}\n{p.get('text', '')}" for p in passages if isinstance(p, dict)))


def context_for(subject: Subject) -> CheckContext:
    """Everything the checks need about a generation: the workspace's rules (read here) and what the
    writer was given (the claims' sources, copied from the row by Subject.of)."""
    workspace_id = subject.workspace_id
    guide = get_guide(workspace_id)
    rows = entries(workspace_id, guide)
    voice = db.session.get(BrandVoice, subject.brand_voice_id) if subject.brand_voice_id else None
    max_grade = guide.max_grade if guide else None
    if voice is not None:
        max_grade = voice_grades(workspace_id).get(voice.id, max_grade)
    ai_tells_on = guide.ai_tells_enabled if guide else True
    rules = StyleRules(
        banned=tuple((e.phrase, e.replacement) for e in rows if e.kind == "banned"),
        spellings=tuple(e.phrase for e in rows if e.kind == "spelling"),
        ai_tells=tuple((e.phrase, e.replacement) for e in rows if e.kind == "ai_tell") if ai_tells_on else (),
        max_grade=max_grade,
    )
    texts = list(subject.texts) + ([voice.as_prompt_text()] if voice is not None else []) + list(subject.passages)
    return CheckContext(rules=rules, sources=Sources.of(texts), language=subject.language,
                        claims=guide.claims_enabled if guide else True,
                        hold=bool(guide and guide.flag_action == "hold"))


# --------------------------------------------------------------------------- hold / check

def mark_checked(variant: Variant, user_id: int) -> Variant:
    """A person looked at a held variant: copy and export open again; who and when are kept."""
    if not variant.held or variant.checked_at is not None:
        raise NotHeld()
    variant.checked_by_id, variant.checked_at = user_id, utcnow()
    return variant
