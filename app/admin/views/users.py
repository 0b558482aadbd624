"""Users and workspaces: search, view, suspend and reactivate, site-admin role, plan and seats."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.bounds import page_arg
from app.admin import services
from app.admin.forms import SizeWorkspaceForm
from app.admin.views import bp
from app.auth.models import User
from app.core import required
from app.extensions import db
from app.workspaces.models import Workspace
from app.workspaces.services import seat_usage
from app.web import site_admin_required


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users")
@site_admin_required
def users():
    query, status = request.args.get("q", "")[:254], request.args.get("status", "")
    page = services.search_users(query, status, page_arg())
    return render_template("admin/users.html", page=page, query=query, status=status)


@bp.route("/users/<int:user_id>")
@site_admin_required
def user(user_id: int):
    target = _user_or_404(user_id)
    return render_template("admin/user.html", target=target, memberships=services.memberships_of_user(target))


def _user_action(user_id: int, action) -> object:
    target = _user_or_404(user_id)
    try:
        message = action(target)
    except services.AdminError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.route("/users/<int:user_id>/suspend", methods=["POST"])
@site_admin_required
def suspend(user_id: int):
    def act(target: User) -> str:
        services.set_suspended(current_user, target, True)
        return f"{target.email} is suspended and logged out everywhere."
    return _user_action(user_id, act)


@bp.route("/users/<int:user_id>/reactivate", methods=["POST"])
@site_admin_required
def reactivate(user_id: int):
    def act(target: User) -> str:
        services.set_suspended(current_user, target, False)
        return f"{target.email} can log in again."
    return _user_action(user_id, act)


@bp.route("/users/<int:user_id>/site-admin", methods=["POST"])
@site_admin_required
def site_admin(user_id: int):
    grant = request.form.get("grant") == "1"

    def act(target: User) -> str:
        services.set_site_admin(current_user, target, grant)
        return f"{target.email} {'is now a site admin' if grant else 'is no longer a site admin'}."
    return _user_action(user_id, act)


@bp.route("/workspaces")
@site_admin_required
def workspaces():
    query = request.args.get("q", "")[:120]
    page = services.search_workspaces(query, page_arg())
    return render_template("admin/workspaces.html", page=page, query=query)


def _workspace_page(workspace: Workspace, form: SizeWorkspaceForm, status: int = 200):
    members, pending = seat_usage(workspace)
    return render_template("admin/workspace.html", target=workspace, form=form, members=services.members_of(workspace),
                           members_count=members, pending_count=pending,
                           billing_enabled=services.billing_enabled()), status


@bp.route("/workspaces/<int:workspace_id>", methods=["GET", "POST"])
@site_admin_required
def workspace(workspace_id: int):
    target = db.session.get(Workspace, workspace_id)
    if target is None:
        abort(404)
    form = SizeWorkspaceForm(data={"plan": target.plan, "seats": target.seats,
                                   "generations_per_seat": target.generations_per_seat}
                             if request.method == "GET" else None)
    if request.method == "POST":
        if services.billing_enabled():
            flash("Billing is on: plans and seats follow the Stripe subscription.", "error")
            return redirect(url_for("admin.workspace", workspace_id=target.id))
        if not form.validate_on_submit():
            return _workspace_page(target, form, 422)
        try:
            services.size_workspace(current_user, target.id, plan=form.plan.data, seats=form.seats.data,
                                    generations_per_seat=form.generations_per_seat.data, force=form.force.data)
            db.session.commit()
        except services.AdminError as exc:
            db.session.rollback()  # let go of the workspace's lock; nothing was written
            form.seats.errors.append(str(exc))
            target = required(db.session.get(Workspace, workspace_id), f"workspace {workspace_id}")
            return _workspace_page(target, form, 422)
        flash(f"{target.name}: {target.seats} seats × {target.generations_per_seat} generations ({target.plan}).",
              "success")
        return redirect(url_for("admin.workspace", workspace_id=target.id))
    return _workspace_page(target, form)
