"""Errors of /api/v1 as application/problem+json (RFC 9457).

Every problem has a stable `type` (a URI reference into the API docs page: `/api/v1/docs#<code>`),
a short `title`, the HTTP `status` and a human `detail`; validation problems add `errors`
(field name -> messages). The codes are listed in TYPES, which the docs page renders.
"""
from __future__ import annotations

import json
from typing import Any

from flask import Response

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "/api/v1/docs#"

# code -> (status, title): the stable list; the docs page documents each.
TYPES: dict[str, tuple[int, str]] = {
    "missing-key": (401, "API key missing"),
    "malformed-key": (401, "API key malformed"),
    "invalid-key": (401, "API key unknown"),
    "revoked-key": (401, "API key revoked"),
    "expired-key": (401, "API key expired"),
    "insufficient-scope": (403, "Scope missing"),
    "plan-required": (403, "Plan without API access"),
    "role-required": (403, "Owners and admins only"),
    "no-seat": (402, "Member without a seat"),
    "quota-exhausted": (402, "Quota exhausted"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "idempotency-in-progress": (409, "Request with this Idempotency-Key in progress"),
    "template-unavailable": (409, "Template not published"),
    "body-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "Send JSON"),
    "unreadable-file": (415, "Not a CSV or XLSX file we can read"),
    "validation-failed": (422, "Validation failed"),
    "idempotency-key-reused": (422, "Idempotency-Key reused with another request"),
    "template-refused": (422, "Template refused these inputs"),
    "bulk-refused": (422, "Bulk run refused"),
    "webhook-refused": (422, "Webhook request refused"),
    "rate-limited": (429, "Too many requests"),
    "too-many-streams": (429, "Too many live streams"),
    "bad-request": (400, "Bad request"),
    "busy": (503, "Busy"),
    "internal": (500, "Internal error"),
}


class Problem(Exception):
    """Raised by API views; answered as problem+json by the blueprint's error handler."""

    def __init__(self, code: str, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(detail)
        self.code, self.detail = code, detail
        self.status = status or TYPES[code][0]
        self.headers = headers or {}
        self.extra = extra


def body(code: str, detail: str, status: int | None = None, **extra: Any) -> dict[str, Any]:
    default_status, title = TYPES.get(code, (status or 500, code))
    document = {"type": TYPE_BASE + code, "title": title, "status": status or default_status, "detail": detail}
    document.update({k: v for k, v in extra.items() if v is not None})
    return document


def response(code: str, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None,
             **extra: Any) -> Response:
    document = body(code, detail, status, **extra)
    return Response(json.dumps(document), status=document["status"], mimetype=CONTENT_TYPE,
                    headers=headers or {})


def from_problem(problem: Problem) -> Response:
    return response(problem.code, problem.detail, status=problem.status, headers=problem.headers, **problem.extra)
