"""The first hour's actions on results: refund a flagged variant, star a list item, Stop, the cost line.

Rules live here (views stay thin); each raises a typed error or returns what the view shows.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy.orm.attributes import flag_modified

from app.generation.models import Generation, Variant
from app.generation.stop import STOPPED_BEFORE_START, request_stop
from app.generation.streams import GenerationStream
from app.quota import services as quota
from app.quota.services import NotRefundable  # noqa: F401 - the views catch it from here

MAX_ITEMS = 50


class StopUnavailable(Exception):
    """The Stop flag could not be set (Redis unreachable) while the generation is running."""


def refund(variant: Variant, user_id: int) -> None:
    """Refund one flagged variant (quota.refund_variant); the caller commits."""
    if variant.generation.status != "succeeded":
        raise NotRefundable()
    quota.refund_variant(variant, user_id)


def toggle_item_favourite(variant: Variant, index: int) -> bool:
    """Star or unstar item `index` (by its text, so edits that keep a line keep its star). False: no such item.

    Starring a line also stars the list (so it is found under History's favourites); the list's own
    star stays the user's to clear."""
    items = variant.items
    if variant.generation.template_version.format != "list" or not 0 <= index < min(len(items), MAX_ITEMS):
        return False
    starred = [item for item in (variant.favourite_items or []) if item in items]
    item = items[index]
    if item in starred:
        starred = [s for s in starred if s != item]
    else:
        starred = starred + [item]
        variant.is_favourite = True  # a list with a starred line shows under History's favourites
    variant.favourite_items = starred
    flag_modified(variant, "favourite_items")
    return True


def stop(generation: Generation) -> None:
    """Set the Stop flag the job watches; a generation still queued is failed and refunded right here."""
    from app.generation.tasks import fail_and_refund

    if generation.is_finished:
        return
    redis = current_app.extensions["redis"]
    config = current_app.config
    try:
        request_stop(redis, generation.id, ttl=config["JOB_TIMEOUT"] * 2)
    except RedisError as exc:
        if generation.status != "queued":
            raise StopUnavailable() from exc
    if generation.status == "queued":
        stream = GenerationStream(redis, generation.id, config["STREAM_TTL_SECONDS"])
        fail_and_refund(generation.id, STOPPED_BEFORE_START, stream, ("queued",))


@dataclass(frozen=True)
class CostLine:
    per_run: int
    remaining: int

    @property
    def enough(self) -> bool:
        return self.per_run <= self.remaining


def cost_line(workspace, user_id: int, form) -> CostLine:
    """"This will use 3 of your 12 left": what the form as filled in costs, against the tightest allowance."""
    allowance = quota.remaining(workspace, user_id)
    try:
        count = int(form.variant_count.data or 0)
    except (TypeError, ValueError):
        count = 0
    return CostLine(max(count, 1), allowance.remaining if allowance else 0)
