"""Knowledge rules: store items as passages within the plan's limits, and choose the passages a
generation's prompt receives within a token budget.

Services flush and raise KnowledgeError (with the sentence a marketer reads); the request commits.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from jinja2 import meta
from sqlalchemy import delete, func, select

from app.core import utcnow
from app.billing.models import KNOWLEDGE_LIMITS
from app.billing.services import current_plan, has_feature
from app.catalog import prompt_sandbox
from app.catalog.rendering import render_prompt
from app.extensions import db
from app.knowledge import retrieval, splitting
from app.knowledge.extraction import ExtractionError, extract
from app.knowledge.models import KINDS, KnowledgeItem, KnowledgePassage

FEATURE = "knowledge"
MAX_TITLE = 200
MAX_BODY_CHARS = 200_000  # one item, typed or extracted
MAX_TAGS = 10
MAX_TAG_CHARS = 40
MAX_ITEMS = 2000
TAG_RE = re.compile(r"^[\w][\w .&+-]*$")
DEFAULT_TOKEN_BUDGET = 1200  # tokens of facts per prompt, estimated as characters / 4
MAX_PASSAGES_PER_PROMPT = 12
AUTO_CANDIDATES = 20
FACTS_SECTION = (
    "### Facts from {{ workspace_name }}'s knowledge base\n"
    "Use these facts where they help. State no price, number, date, certification or superlative that is "
    "not in these facts or the inputs above.\n\n"
    "{{ knowledge }}\n"
    "### End of facts"
)


class KnowledgeError(ValueError):
    """Refused knowledge input; the message says why and what to do."""


class UpgradeRequired(KnowledgeError):
    """The workspace's plan does not include the knowledge base."""


def estimate_tokens(text: str) -> int:
    """A deliberately simple token estimate: one token per 4 characters (English averages ~4)."""
    return math.ceil(len(text) / 4)


def size_label(n: int) -> str:
    """Bytes as a marketer reads them: 2 MB, 512 KB."""
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n / 1024:g} KB"


def limits_for(workspace) -> dict[str, int]:
    """The plan's knowledge limits; a plan with the feature but no entry (hand-set) gets the largest."""
    plan = current_plan(workspace)
    largest = max(KNOWLEDGE_LIMITS.values(), key=lambda limits: limits["total_chars"])
    return KNOWLEDGE_LIMITS.get(plan.key if plan else "", largest)


def require_feature(workspace) -> None:
    if not has_feature(workspace, FEATURE):
        raise UpgradeRequired("The knowledge base comes with the Pro and Business plans.")


# --- Items -------------------------------------------------------------------------------------------

def items_of(workspace_id: int, *, archived: bool | None = False) -> list[KnowledgeItem]:
    """The workspace's items, newest first; archived=None for all."""
    query = select(KnowledgeItem).where(KnowledgeItem.workspace_id == workspace_id)
    if archived is not None:
        query = query.where(KnowledgeItem.archived == archived)
    return list(db.session.scalars(query.order_by(KnowledgeItem.updated_at.desc(), KnowledgeItem.id.desc())))


def tags_of(items: list[KnowledgeItem]) -> list[str]:
    return sorted({tag for item in items for tag in (item.tags or [])})


def stored_chars(workspace_id: int, exclude_item_id: int | None = None) -> int:
    query = select(func.coalesce(func.sum(func.length(KnowledgeItem.body)), 0)).where(
        KnowledgeItem.workspace_id == workspace_id)
    if exclude_item_id is not None:
        query = query.where(KnowledgeItem.id != exclude_item_id)
    return int(db.session.scalar(query) or 0)


def parse_tags(raw: str | None) -> list[str]:
    """Comma-separated tags, trimmed and lower-cased; KnowledgeError if one is too long or odd."""
    tags: list[str] = []
    for part in (raw or "").split(","):
        tag = " ".join(part.split()).lower()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_TAG_CHARS:
            raise KnowledgeError(f"A tag can be at most {MAX_TAG_CHARS} characters: “{tag[:MAX_TAG_CHARS]}…”.")
        if not TAG_RE.match(tag):
            raise KnowledgeError(f"The tag “{tag}” has characters a tag cannot have. Use letters, digits, "
                                 "spaces, and . & + -")
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise KnowledgeError(f"An item can have at most {MAX_TAGS} tags.")
    return tags


def _check(workspace, kind: str, title: str, body: str, exclude_item_id: int | None = None) -> None:
    require_feature(workspace)
    if kind not in KINDS:
        raise KnowledgeError("Choose what kind of knowledge this is.")
    if not title.strip():
        raise KnowledgeError("Give the item a title.")
    if len(title) > MAX_TITLE:
        raise KnowledgeError(f"The title can be at most {MAX_TITLE} characters.")
    if not body.strip():
        raise KnowledgeError("The item has no text.")
    if len(body) > MAX_BODY_CHARS:
        raise KnowledgeError(f"One item can hold at most {MAX_BODY_CHARS:,} characters; this one has "
                             f"{len(body):,}. Split it into several items.")
    limit = limits_for(workspace)["total_chars"]
    total = stored_chars(workspace.id, exclude_item_id) + len(body)
    if total > limit:
        raise KnowledgeError(f"Your plan's knowledge base holds {limit:,} characters; with this item it would hold "
                             f"{total:,}. Archive or delete items you no longer need, or upgrade your plan.")


def _resplit(item: KnowledgeItem) -> None:
    """Replace the item's passages with a fresh split of its body (the index follows: triggers/generated)."""
    if item.id is not None:
        db.session.execute(delete(KnowledgePassage).where(KnowledgePassage.item_id == item.id))
        db.session.expire(item, ["passages"])
    for position, piece in enumerate(splitting.split(item.body)):
        db.session.add(KnowledgePassage(item=item, workspace_id=item.workspace_id, position=position,
                                        heading=piece.heading, text=piece.text))


def create_item(workspace, user, *, kind: str, title: str, body: str, tags: list[str], source: str = "typed",
                filename: str | None = None) -> KnowledgeItem:
    """Store a new item and its passages (flushed, not committed)."""
    body = body.strip()
    title = title.strip()
    _check(workspace, kind, title, body)
    count = db.session.scalar(select(func.count()).select_from(KnowledgeItem)
                              .where(KnowledgeItem.workspace_id == workspace.id))
    if (count or 0) >= MAX_ITEMS:
        raise KnowledgeError(f"A workspace can keep at most {MAX_ITEMS:,} knowledge items.")
    item = KnowledgeItem(workspace_id=workspace.id, kind=kind, title=title, body=body, tags=tags, source=source,
                         filename=filename, created_by_id=user.id if user else None)
    db.session.add(item)
    db.session.flush()
    _resplit(item)
    db.session.flush()
    return item


def upload_item(workspace, user, *, kind: str, title: str, tags: list[str], filename: str, data: bytes) -> KnowledgeItem:
    """Store an uploaded file as an item; KnowledgeError (nothing stored) if it is refused."""
    require_feature(workspace)
    limit = limits_for(workspace)["file_bytes"]
    if len(data) > limit:
        raise KnowledgeError(f"The file is larger than your plan accepts: files up to {size_label(limit)}. "
                             "Upload a smaller file, or split it.")
    try:
        source, body = extract(data, filename)
    except ExtractionError as exc:
        raise KnowledgeError(str(exc)) from None
    name = re.sub(r"\.[A-Za-z]+$", "", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip()
    return create_item(workspace, user, kind=kind, title=(title or name or "Untitled")[:MAX_TITLE], body=body,
                       tags=tags, source=source, filename=filename[:255])


def update_item(workspace, item: KnowledgeItem, *, kind: str, title: str, body: str, tags: list[str]) -> None:
    """Edit an item; a changed text is split again."""
    body = body.strip()
    title = title.strip()
    _check(workspace, kind, title, body, exclude_item_id=item.id)
    changed = body != item.body
    item.kind, item.title, item.body, item.tags = kind, title, body, tags
    item.updated_at = utcnow()
    if changed:
        _resplit(item)
    db.session.flush()


def set_archived(item: KnowledgeItem, archived: bool) -> None:
    item.archived = archived
    item.updated_at = utcnow()
    db.session.flush()


def delete_item(item: KnowledgeItem) -> None:
    db.session.delete(item)
    db.session.flush()


# --- Choosing passages for a generation --------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """What the generate form asked for: "none", "auto" (retrieve by the inputs), "pick" (these items or
    tags), or "stored" (the passages of an earlier generation, for regenerate and more-like-this)."""

    mode: str = "none"
    item_ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    stored: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def again(cls, generation) -> "Choice":
        passages = getattr(generation, "knowledge_passages", None) or []
        return cls(mode="stored", stored=tuple(passages)) if passages else cls()


def query_text(values: dict[str, Any]) -> str:
    """The retrieval query of a generation: its input values (the words the marketer typed)."""
    return " ".join(str(v) for v in values.values() if v not in (None, "") and not isinstance(v, bool))


def passages_for(workspace, choice: Choice | None, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The passages for a generation's prompt, within the token budget, as stored on the generation."""
    if choice is None or choice.mode == "none" or not has_feature(workspace, FEATURE):
        return []
    if choice.mode == "stored":
        return [dict(p) for p in choice.stored]
    query = query_text(values)
    if choice.mode == "auto":
        hits = retrieval.search(workspace.id, query, limit=AUTO_CANDIDATES)
        return fit(hits)
    if choice.mode != "pick":
        return []
    wanted = set(choice.item_ids)
    tags = set(choice.tags)
    items = [item for item in items_of(workspace.id)
             if item.id in wanted or tags.intersection(item.tags or [])]
    if not items:
        return []
    ids = [item.id for item in items]
    ranked = retrieval.search(workspace.id, query, item_ids=ids, limit=200)
    seen = {hit.passage_id for hit in ranked}
    titles = {item.id: item.title for item in items}
    rest = db.session.scalars(select(KnowledgePassage).where(KnowledgePassage.item_id.in_(ids))
                              .order_by(KnowledgePassage.item_id, KnowledgePassage.position))
    ordered = ranked + [retrieval.Hit(p.id, p.item_id, titles[p.item_id], p.heading, p.text, 0.0)
                        for p in rest if p.id not in seen]
    return fit(ordered)


def fit(hits: list[retrieval.Hit]) -> list[dict[str, Any]]:
    """The hits, best first, that fit the token budget (a passage that does not fit is skipped, a
    smaller later one may still fit), at most MAX_PASSAGES_PER_PROMPT."""
    budget = current_app.config.get("KNOWLEDGE_TOKEN_BUDGET", DEFAULT_TOKEN_BUDGET)
    chosen: list[dict[str, Any]] = []
    used = 0
    for hit in hits:
        entry: dict[str, Any] = {"item_id": hit.item_id, "passage_id": hit.passage_id,
                 "title": f"{hit.title} › {hit.heading}" if hit.heading and hit.heading != hit.title else hit.title,
                 "text": hit.text}
        cost = estimate_tokens(entry["title"]) + estimate_tokens(entry["text"])
        if used + cost > budget:
            continue
        chosen.append(entry)
        used += cost
        if len(chosen) == MAX_PASSAGES_PER_PROMPT:
            break
    return chosen


def facts_text(passages: list[dict[str, Any]]) -> str:
    """The passages as the prompt's `knowledge` variable: one titled block each."""
    return "\n\n".join(f"[{p['title']}]\n{p['text']}" for p in passages)


def uses_knowledge(*sources: str) -> bool:
    """Does any of these prompt templates use the `knowledge` variable? (parsing only; nothing runs)"""
    for source in sources:
        try:
            if "knowledge" in meta.find_undeclared_variables(prompt_sandbox.env.parse(source)):
                return True
        except Exception:  # a template that does not parse fails at render time with its own message
            continue
    return False


def with_facts(version, user_prompt: str, facts: str, workspace_name: str) -> str:
    """The user prompt, with a delimited facts section appended (rendered in the sandbox) when there are
    facts and the template's prompts do not place `knowledge` themselves."""
    if not facts or uses_knowledge(version.system_prompt, version.user_prompt):
        return user_prompt
    section = render_prompt(FACTS_SECTION, {"knowledge": facts, "workspace_name": workspace_name})
    return f"{user_prompt}\n\n{section}"
