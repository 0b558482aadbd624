"""Team -> Webhooks: owners and admins register endpoints, see their secret and deliveries, redeliver."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from flask_login import current_user

from app.billing.services import has_feature
from app.extensions import db, limiter
from app.web import manager_required, workspace_required
from app.webhooks import services
from app.webhooks.forms import EndpointForm
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.workspaces.services import get_in_workspace_or_404

bp = Blueprint("webhooks", __name__, url_prefix="/workspace/webhooks")


def _upgrade():
    """What webhooks bring and how to upgrade, for plans without api_access (402)."""
    return render_template("webhooks/upgrade.html"), 402


def plan_required(view):
    """The plan's api_access, or the upgrade page."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not has_feature(g.workspace, services.FEATURE):
            return _upgrade()
        return view(*args, **kwargs)
    return wrapper


def endpoint_view(view):
    """Load this workspace's endpoint (another workspace's id is a 404, whatever the plan), then the plan
    gate; the view gets the endpoint."""
    @wraps(view)
    def wrapper(endpoint_id: int, **kwargs):
        endpoint = _endpoint(endpoint_id)
        if not has_feature(g.workspace, services.FEATURE):
            return _upgrade()
        return view(endpoint, **kwargs)
    return wrapper


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    return get_in_workspace_or_404(WebhookEndpoint, endpoint_id, g.workspace.id)


def _index(form: EndpointForm, status: int = 200):
    return render_template("webhooks/index.html", form=form,
                           endpoints=services.endpoints_of(g.workspace.id)), status


@bp.route("", methods=["GET"])
@workspace_required
@manager_required
@plan_required
def index():
    return _index(EndpointForm(formdata=None))


@bp.route("", methods=["POST"])
@workspace_required
@manager_required
@plan_required
def create():
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            endpoint = services.create_endpoint(g.workspace, current_user, form.url.data, form.events.data,
                                                form.description.data)
        except services.InvalidEndpoint as exc:
            db.session.rollback()
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            flash("Endpoint added. Copy its signing secret below into your receiver.", "success")
            return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))
    return _index(form, 422)


def _show(endpoint: WebhookEndpoint, form: EndpointForm, status: int = 200):
    return render_template("webhooks/show.html", endpoint=endpoint, form=form,
                           deliveries=services.deliveries_of(endpoint)), status


@bp.route("/<int:endpoint_id>", methods=["GET"])
@workspace_required
@manager_required
@endpoint_view
def show(endpoint: WebhookEndpoint):
    return _show(endpoint, EndpointForm(obj=endpoint))


@bp.route("/<int:endpoint_id>/settings", methods=["POST"])  # its own path: see tests/test_bounds.py
@workspace_required
@manager_required
@endpoint_view
def update(endpoint: WebhookEndpoint):
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            services.update_endpoint(endpoint, current_user, form.url.data, form.events.data,
                                     form.description.data, form.enabled.data)
        except services.InvalidEndpoint as exc:
            db.session.rollback()
            getattr(form, exc.field).errors.append(str(exc))
        else:
            db.session.commit()
            flash("Endpoint saved.", "success")
            return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))
    return _show(endpoint, form, 422)


@bp.route("/<int:endpoint_id>/rotate", methods=["POST"])
@workspace_required
@manager_required
@endpoint_view
def rotate(endpoint: WebhookEndpoint):
    return _act(endpoint, services.rotate_secret,
                "New signing secret created. The previous one keeps signing alongside it for 24 hours.")


def _act(endpoint: WebhookEndpoint, action, message: str):
    """Run one service action on the endpoint, commit, and go back to its page."""
    action(endpoint, current_user)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))


@bp.route("/<int:endpoint_id>/test", methods=["POST"])
@limiter.limit("30 per minute")  # each one is an outbound call
@workspace_required
@manager_required
@endpoint_view
def send_test(endpoint: WebhookEndpoint):
    return _act(endpoint, services.send_test, "Test event queued. Its delivery appears below in a few seconds.")


@bp.route("/<int:endpoint_id>/delete", methods=["POST"])
@workspace_required
@manager_required
def delete(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    services.delete_endpoint(endpoint, current_user)
    db.session.commit()
    flash("Endpoint deleted.", "success")
    return redirect(url_for("webhooks.index"))


@bp.route("/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@limiter.limit("30 per minute")  # each one is an outbound call
@workspace_required
@manager_required
@endpoint_view
def redeliver(endpoint: WebhookEndpoint, delivery_id: int):
    delivery = get_in_workspace_or_404(WebhookDelivery, delivery_id, g.workspace.id)
    if delivery.endpoint_id != endpoint.id:
        abort(404)
    try:
        services.redeliver(delivery, current_user)
    except services.WebhookError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Event {delivery.event.public_id} queued for redelivery.", "success")
    return redirect(url_for("webhooks.show", endpoint_id=endpoint.id))
