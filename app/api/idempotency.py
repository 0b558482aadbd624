"""Idempotency-Key on POST requests, with Stripe's semantics.

The first request with a key records the key and a fingerprint of the request (method, path and
the JSON body in canonical form; for a multipart upload, its text fields and each file's name and
bytes) **in the same transaction as its effect** (for a generation: the row, its quota reservation
and its job), then stores its response. A retry with the same key and
the same request gets that response again, with `Idempotent-Replayed: true`, and changes nothing;
with another request it is a 422; while the first is still running it is a 409. Two requests
racing with one key cannot both commit: the unique (api key, key) constraint lets one win and the
other's whole transaction rolls back. Only requests that did something are remembered: one that
was refused (validation, quota, ...) wrote nothing, so its retry simply runs again.
Records live API_IDEMPOTENCY_TTL_HOURS (24) and are swept lazily.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

from flask import Response, current_app, request
from sqlalchemy import delete, select

from app.api.models import IdempotencyRecord
from app.api.problems import Problem
from app.core import required, utcnow
from app.extensions import db

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
IGNORED_QUERY = {"wait"}  # how long to wait does not change what the request does


def fingerprint() -> str:
    body = request.get_json(silent=True)
    query = sorted((k, v) for k, v in request.args.items(multi=True) if k not in IGNORED_QUERY)
    request_parts = [request.method, request.path, query, body]
    if request.form or request.files:  # a multipart upload: its text fields, and each file's name and bytes
        request_parts += [sorted(request.form.items(multi=True)),
                          sorted((name, part.filename or "", _digest(part.stream))
                                 for name, part in request.files.items(multi=True))]
    canonical = json.dumps(request_parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _digest(stream) -> str:
    """SHA-256 of an uploaded file, read in chunks and rewound for the view."""
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1 << 16), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


class Guard:
    """One POST's idempotency: `replay()` first, `claim()` inside the effect's transaction,
    `store()` after it committed. The view owns the transaction: it commits the effect (with the
    claim), and again after `store()`."""

    def __init__(self, api_key):
        self.api_key_id = api_key.id
        self.key = request.headers.get(HEADER)
        self.record: IdempotencyRecord | None = None
        if self.key is not None and not KEY_RE.match(self.key):
            raise Problem("bad-request", f"{HEADER} must be 1 to 255 visible ASCII characters.",
                          errors={HEADER: ["1 to 255 visible ASCII characters"]})
        self.fingerprint = fingerprint() if self.key else ""

    def _find(self) -> IdempotencyRecord | None:
        return db.session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == self.api_key_id, IdempotencyRecord.key == self.key))

    def replay(self) -> Response | None:
        """The stored response of an earlier identical request, or None to go ahead."""
        if not self.key:
            return None
        found = self._find()
        if found is not None and found.expires_at <= utcnow():
            # Swept lazily, in the request's transaction: a request refused after this keeps the rows
            # for the next one to sweep.
            db.session.execute(delete(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == self.api_key_id, IdempotencyRecord.expires_at <= utcnow()))
            return None
        if found is None:
            return None
        if found.fingerprint != self.fingerprint:
            raise Problem("idempotency-key-reused",
                          f"This {HEADER} was used for a different request. Use a new key for a new request.")
        if found.status_code is None:
            raise Problem("idempotency-in-progress",
                          f"A request with this {HEADER} is still running. Retry in a moment.",
                          headers={"Retry-After": "1"})
        response = Response(found.response_body, status=found.status_code, mimetype="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        if found.location:
            response.headers["Location"] = found.location
        return response

    def claim(self, status: int | None = None, body: str | None = None, location: str | None = None) -> None:
        """Add the record to the current transaction (call from within the effect's transaction),
        with the response when it is already known (then no second write is needed)."""
        if not self.key:
            return
        ttl = timedelta(hours=current_app.config["API_IDEMPOTENCY_TTL_HOURS"])
        self.record = IdempotencyRecord(api_key_id=self.api_key_id, key=self.key, fingerprint=self.fingerprint,
                                        expires_at=utcnow() + ttl, status_code=status, response_body=body,
                                        location=location)
        db.session.add(self.record)

    def store(self, status: int, body: str, location: str | None = None) -> None:
        """Keep the response for replays (after the effect committed); the caller commits it."""
        if self.record is None:
            return
        record = required(db.session.get(IdempotencyRecord, self.record.id), "idempotency record")
        record.status_code, record.response_body, record.location = status, body, location

    def after_conflict(self) -> Response:
        """The effect's commit lost the race for this key: answer as the winner would be replayed."""
        db.session.rollback()
        return self.replay() or _raise_in_progress()


def _raise_in_progress():
    raise Problem("idempotency-in-progress", f"A request with this {HEADER} is still running. Retry in a moment.",
                  headers={"Retry-After": "1"})
