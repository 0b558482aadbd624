"""What each event's `data` holds, built from our rows: the one place payloads are shaped.

Called from the places where things happen (the generation job, the quota alerts, bulk runs), inside
their transaction, through `services.emit`. Documented in the README ("Webhooks").
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


from app.core import AnySession, utcnow
from app.webhooks.services import emit


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat().replace("+00:00", "Z")


def generation_data(generation) -> dict[str, Any]:
    """A generation as receivers see it (variants with their text and flags when it succeeded)."""
    template = generation.template
    return {"generation": {
        "id": generation.id,
        "status": generation.status,
        "template": {"id": template.id, "slug": template.slug, "name": template.name} if template else None,
        "user_id": generation.user_id,
        "language": generation.language,
        "tone": generation.tone,
        "variant_count": generation.variant_count,
        "model": generation.model,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "error_message": generation.error_message,
        "created_at": _iso(generation.created_at),
        "finished_at": _iso(generation.finished_at),
        "path": f"/generations/{generation.id}",
        "variants": [
            {"id": v.id, "position": v.position, "text": v.text, "characters": len(v.text),
             "over_limit": v.over_limit, "cut_off": v.cut_off, "repaired": v.repaired}
            for v in sorted(generation.variants, key=lambda v: v.position)
        ] if generation.status == "succeeded" else [],
    }}


def generation_completed(session: AnySession, generation) -> None:
    emit(session, generation.workspace_id, "generation.completed", generation_data(generation))


def generation_failed(session: AnySession, generation_id: int, message: str) -> None:
    """Called where a generation is failed (the job, RQ's abandoned-job callback, recovery)."""
    from app.generation.models import Generation

    generation = session.get(Generation, generation_id)
    if generation is None:
        return
    data = generation_data(generation)
    data["generation"].update(status="failed", error_message=message, variants=[],
                              finished_at=_iso(generation.finished_at or utcnow()))
    emit(session, generation.workspace_id, "generation.failed", data)


def quota_alert(session: AnySession, ledger, threshold: int) -> None:
    """80% -> quota.threshold_reached, 100% -> quota.exhausted (once per ledger and threshold)."""
    event_type = "quota.exhausted" if threshold >= 100 else "quota.threshold_reached"
    subject = ledger.subject
    emit(session, ledger.workspace_id, event_type, {"quota": {
        "threshold_percent": threshold,
        "scope": "pool" if subject == "pool" else "member",
        "user_id": int(subject.split(":", 1)[1]) if subject.startswith("user:") else None,
        "allowance": ledger.allowance,
        "used": ledger.used,
        "remaining": ledger.remaining,
        "period_start": ledger.period_start.isoformat(),
        "period_kind": ledger.period_kind,
    }})


def bulk_run_completed(session: AnySession, workspace_id: int, *, run_id: int, status: str, rows: int,
                       succeeded: int, failed: int, created_at: datetime | None, finished_at: datetime | None,
                       results_path: str | None) -> None:
    """For bulk runs' finish function (wired by the lead when merging): the payload the README documents."""
    emit(session, workspace_id, "bulk_run.completed", {"bulk_run": {
        "id": run_id, "status": status, "rows": rows, "succeeded": succeeded, "failed": failed,
        "created_at": _iso(created_at), "finished_at": _iso(finished_at), "results_path": results_path,
    }})
