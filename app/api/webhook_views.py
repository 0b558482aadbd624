"""/api/v1/webhook-endpoints: register, list, get and delete webhook endpoints, list an endpoint's
deliveries and redeliver one. Scope `webhooks`; like Team → Webhooks, only owners and admins (the key's
charged member's role) manage them. Everything goes through app/webhooks/services.py: the same SSRF
guard at registration, the same audit records, the same delivery jobs."""
from __future__ import annotations

from flask import current_app, g, url_for
from sqlalchemy import select

from app.api import auth, schemas
from app.api.idempotency import Guard
from app.api.problems import Problem
from app.api.views import COMMON, _aware, bp, problems
from app.billing.services import has_feature
from app.extensions import db
from app.webhooks import services as webhooks
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.workspaces.models import Membership


def _manager() -> None:
    """Webhooks are the workspace's: the key's member must be an owner or admin, and the plan must have them."""
    membership = db.session.scalar(select(Membership).where(Membership.workspace_id == g.api_workspace.id,
                                                            Membership.user_id == g.api_user.id))
    if membership is None or not membership.can_manage:
        raise Problem("role-required", "Only keys charged to a workspace owner or admin manage webhooks.")
    if not has_feature(g.api_workspace, webhooks.FEATURE):
        raise Problem("plan-required", "This workspace's plan does not include webhooks.")


def endpoint_doc(endpoint: WebhookEndpoint, secret: bool = False) -> dict:
    doc = {"id": endpoint.id, "url": endpoint.url, "description": endpoint.description or "",
           "events": list(endpoint.events), "enabled": endpoint.enabled, "created_at": _aware(endpoint.created_at)}
    if secret:
        doc["secret"] = endpoint.secret
    return doc


def delivery_doc(delivery: WebhookDelivery) -> dict:
    return {"id": delivery.id, "event_id": delivery.event.public_id, "event_type": delivery.event.type,
            "status": delivery.status, "attempts": delivery.attempts, "status_code": delivery.status_code,
            "response_ms": delivery.response_ms, "response_excerpt": delivery.response_excerpt,
            "error": delivery.error, "redelivery_of": delivery.redelivery_of_id,
            "created_at": _aware(delivery.created_at), "last_attempt_at": _aware(delivery.last_attempt_at),
            "next_attempt_at": _aware(delivery.next_attempt_at)}


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id,
                                                               WebhookEndpoint.workspace_id == g.api_workspace.id))
    if endpoint is None:
        raise Problem("not-found", f"No webhook endpoint {endpoint_id} in this workspace.")
    return endpoint


@bp.route("/webhook-endpoints")
@auth.scope("webhooks")
@bp.response(200, schemas.WebhookEndpointListSchema)
@problems(*COMMON)
def webhook_endpoints_list():
    """The workspace's webhook endpoints (secrets are never shown again)."""
    _manager()
    return {"data": [endpoint_doc(e) for e in webhooks.endpoints_of(g.api_workspace.id)]}


@bp.route("/webhook-endpoints", methods=["POST"])
@auth.scope("webhooks")
@bp.arguments(schemas.WebhookEndpointCreateSchema)
@bp.response(201, schemas.WebhookEndpointSchema, description="Registered; `secret` is shown only here")
@problems(*COMMON, 400, 409, 413, 415, 422)
def webhook_endpoints_create(body: dict):
    """Register an endpoint: the URL must not resolve to a private, loopback or link-local address.
    Honours `Idempotency-Key`."""
    _manager()
    guard = Guard(g.api_key)
    replayed = guard.replay()
    if replayed is not None:
        return replayed
    try:
        endpoint = webhooks.create_endpoint(g.api_workspace, g.api_user, body["url"], body["events"],
                                            body["description"])
    except webhooks.InvalidEndpoint as exc:
        db.session.rollback()
        raise Problem("validation-failed", str(exc), errors={exc.field: [str(exc)]}) from exc
    except webhooks.WebhookError as exc:
        db.session.rollback()
        raise Problem("webhook-refused", str(exc)) from exc
    location = url_for("api_v1.webhook_endpoints_get", endpoint_id=endpoint.id, _external=True)
    document = schemas.WebhookEndpointSchema().dumps(endpoint_doc(endpoint, secret=True))
    guard.claim(201, document, location)
    db.session.commit()
    return current_app.response_class(document, status=201, mimetype="application/json",
                                      headers={"Location": location})


@bp.route("/webhook-endpoints/<int:endpoint_id>")
@auth.scope("webhooks")
@bp.response(200, schemas.WebhookEndpointSchema)
@problems(*COMMON, 404)
def webhook_endpoints_get(endpoint_id: int):
    """One endpoint."""
    _manager()
    return endpoint_doc(_endpoint_or_404(endpoint_id))


@bp.route("/webhook-endpoints/<int:endpoint_id>", methods=["DELETE"])
@auth.scope("webhooks")
@bp.response(204)
@problems(*COMMON, 404)
def webhook_endpoints_delete(endpoint_id: int):
    """Delete an endpoint: no more deliveries to it."""
    _manager()
    webhooks.delete_endpoint(_endpoint_or_404(endpoint_id), g.api_user)
    db.session.commit()
    return ""


@bp.route("/webhook-endpoints/<int:endpoint_id>/deliveries")
@auth.scope("webhooks")
@bp.response(200, schemas.WebhookDeliveryListSchema)
@problems(*COMMON, 404)
def webhook_deliveries_list(endpoint_id: int):
    """The endpoint's latest 50 deliveries: status code, response time and body excerpt."""
    _manager()
    return {"data": [delivery_doc(d) for d in webhooks.deliveries_of(_endpoint_or_404(endpoint_id))]}


@bp.route("/webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@auth.scope("webhooks")
@bp.response(202, schemas.WebhookDeliverySchema, description="A new delivery of the same event, queued")
@problems(*COMMON, 404, 422)
def webhook_deliveries_redeliver(endpoint_id: int, delivery_id: int):
    """Send the same event (same `evt_` id) to the endpoint again, as a new delivery."""
    _manager()
    endpoint = _endpoint_or_404(endpoint_id)
    delivery = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                               WebhookDelivery.endpoint_id == endpoint.id))
    if delivery is None:
        raise Problem("not-found", f"No delivery {delivery_id} of this endpoint.")
    try:
        again = webhooks.redeliver(delivery, g.api_user)
    except webhooks.WebhookError as exc:
        db.session.rollback()
        raise Problem("webhook-refused", str(exc)) from exc
    db.session.commit()
    return delivery_doc(again)
