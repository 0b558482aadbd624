"""Team management: members, invitations, roles, caps, ownership, usage, switching."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.auth.views import log_in
from app.bounds import whole_number
from app import mail
from app.auth import services as auth
from app.extensions import db, limiter
from app.teams import usage
from app.teams.forms import (CapForm, DeleteWorkspaceForm, InvitationSignupForm, InviteForm, QuotaModeForm,
                             RoleForm, TransferForm, WorkspaceForm)
from app.web import manager_required, owner_required, workspace_required
from app.workspaces import services as teams
from app.workspaces.models import Invitation, Membership

bp = Blueprint("teams", __name__)


def _invitation_or_404(invitation_id: int) -> Invitation:
    return teams.get_in_workspace_or_404(Invitation, invitation_id, g.workspace.id)


def _send_invitation(invitation: Invitation) -> None:
    mail.send(invitation.email, "invitation", invitation=invitation, workspace=invitation.workspace,
              inviter=current_user, accept_url=url_for("teams.invitation", token=teams.invitation_token(invitation),
                                                       _external=True))


def _members_page(invite_form=None, status=200):
    workspace = g.workspace
    memberships = db.session.scalars(select(Membership).where(Membership.workspace_id == workspace.id)
                                     .options(joinedload(Membership.user))
                                     .order_by(Membership.created_at)).all()
    invitations = [i for i in db.session.scalars(select(Invitation).where(Invitation.workspace_id == workspace.id)
                                                 .order_by(Invitation.created_at.desc())) if i.accepted_at is None
                   and i.revoked_at is None]
    members, pending = teams.seat_usage(workspace)
    transfer = TransferForm()
    transfer.membership_id.choices = [(m.id, m.user.email) for m in memberships if m.role != "owner"]
    # One rule for the members and usage pages: members see only their own usage, managers see all.
    report = usage.build(workspace, only_user_id=_usage_subject())
    used_by = {row.user_id: row for row in report.members}
    return render_template(
        "teams/members.html", memberships=memberships, invitations=invitations, members_count=members,
        pending_count=pending, invite_form=invite_form or InviteForm(), transfer_form=transfer,
        used_by=used_by, max_cap=teams.max_cap(workspace), now=teams.utcnow(),
    ), status


@bp.route("/workspace/members")
@workspace_required
def members():
    return _members_page()


@bp.route("/workspace/invitations", methods=["POST"])
@workspace_required
@manager_required
@limiter.limit("30 per hour")
def invite():
    form = InviteForm()
    if not form.validate_on_submit():
        return _members_page(form, 422)
    try:
        invitation = teams.invite(g.workspace.id, current_user, form.email.data, form.role.data)
    except teams.TeamError as exc:
        form.email.errors.append(str(exc))
        return _members_page(form, 422)
    db.session.commit()  # the invitation exists before its link is mailed
    _send_invitation(invitation)
    flash(f"Invitation sent to {invitation.email}.", "success")
    return redirect(url_for("teams.members"))


@bp.route("/workspace/invitations/<int:invitation_id>/resend", methods=["POST"])
@workspace_required
@manager_required
def resend(invitation_id: int):
    invitation = _invitation_or_404(invitation_id)
    try:
        teams.resend(invitation)
    except teams.TeamError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        _send_invitation(invitation)
        flash(f"Invitation sent again to {invitation.email}.", "success")
    return redirect(url_for("teams.members"))


@bp.route("/workspace/invitations/<int:invitation_id>/revoke", methods=["POST"])
@workspace_required
@manager_required
def revoke(invitation_id: int):
    invitation = _invitation_or_404(invitation_id)
    try:
        teams.revoke(invitation)
    except teams.TeamError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Invitation for {invitation.email} revoked; its seat is free.", "info")
    return redirect(url_for("teams.members"))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@limiter.limit("30 per hour", methods=["POST"])
def invitation(token: str):
    """Accept an invitation: log in first, or sign up on the spot with the invited email."""
    try:
        invitation = teams.invitation_for_token(token)
    except teams.TeamError as exc:
        return render_template("teams/invitation.html", error=str(exc), invitation=None), 410
    form = InvitationSignupForm()
    existing = auth.find_by_email(invitation.email)
    if current_user.is_authenticated:
        if request.method == "POST":
            try:
                teams.accept(invitation, current_user)
                db.session.commit()
                session["workspace_id"] = invitation.workspace_id
            except teams.TeamError as exc:
                flash(str(exc), "error")
                return render_template("teams/invitation.html", invitation=invitation, form=None,
                                       existing=existing), 409
            flash(f"Welcome to {invitation.workspace.name}!", "success")
            return redirect(url_for("catalog.index"))
        return render_template("teams/invitation.html", invitation=invitation, form=None, existing=existing)
    if request.method == "POST" and existing is None:
        if form.validate_on_submit():
            try:
                user = auth.sign_up(invitation.email, form.password.data, personal_workspace=False)
            except auth.EmailTaken:
                flash("An account with this email exists already: log in to accept.", "error")
                return redirect(url_for("auth.login", next=request.path))
            log_in(user)  # commits the account and its login: they stand even if the invitation cannot be used
            try:
                teams.accept(invitation, user)
                db.session.commit()
                session["workspace_id"] = invitation.workspace_id
            except teams.TeamError as exc:
                db.session.rollback()
                teams.create_personal_workspace(user)  # not let in: they still get a workspace of their own
                db.session.commit()
                flash(str(exc), "error")
                return redirect(url_for("catalog.index"))
            flash(f"Welcome to {invitation.workspace.name}!", "success")
            return redirect(url_for("catalog.index"))
        return render_template("teams/invitation.html", invitation=invitation, form=form, existing=None), 422
    return render_template("teams/invitation.html", invitation=invitation, form=form, existing=existing)


def _target(membership_id: int) -> Membership:
    return teams.membership_in(g.workspace, membership_id)


@bp.route("/workspace/members/<int:membership_id>/role", methods=["POST"])
@workspace_required
@manager_required
def change_role(membership_id: int):
    target = _target(membership_id)
    form = RoleForm()
    role = request.form.get("role", "")
    try:
        if not form.validate_on_submit():
            raise teams.TeamError("Choose a role: admin or member.")
        teams.change_role(g.membership, target, role)
        db.session.commit()
    except teams.TeamError as exc:
        flash(str(exc), "error")
        return _members_page(status=422)
    flash(f"{target.user.email} is now {role}.", "success")
    return redirect(url_for("teams.members"))


@bp.route("/workspace/members/<int:membership_id>/cap", methods=["POST"])
@workspace_required
@manager_required
def set_cap(membership_id: int):
    target = _target(membership_id)
    form = CapForm()
    try:
        if not form.validate_on_submit():
            raise teams.TeamError("The cap must be a whole number of 0 or more, or empty for no cap.")
        teams.set_cap(g.membership, target, form.cap.data)
        db.session.commit()
    except teams.TeamError as exc:
        flash(str(exc), "error")
        return _members_page(status=422)
    flash(f"Cap for {target.user.email}: {'none' if form.cap.data is None else form.cap.data}.", "success")
    return redirect(url_for("teams.members"))


@bp.route("/workspace/members/<int:membership_id>/remove", methods=["POST"])
@workspace_required
@manager_required
def remove(membership_id: int):
    target = _target(membership_id)
    workspace = g.workspace
    try:
        user = teams.remove_member(g.membership, target)
        db.session.commit()
    except teams.TeamError as exc:
        flash(str(exc), "error")
        return _members_page(status=422)
    mail.send(user.email, "removed", user=user, workspace=workspace, remover=current_user)
    flash(f"{user.email} was removed; their seat is free and their work stays in the workspace.", "success")
    return redirect(url_for("teams.members"))


@bp.route("/workspace/leave", methods=["POST"])
@workspace_required
def leave():
    name = g.workspace.name
    try:
        teams.leave(g.membership)
        db.session.commit()
        session.pop("workspace_id", None)
    except teams.TeamError as exc:
        flash(str(exc), "error")
        return redirect(url_for("teams.settings"))
    flash(f"You left {name}.", "info")
    return redirect(url_for("catalog.index"))


@bp.route("/workspace/transfer", methods=["POST"])
@workspace_required
@owner_required
def transfer():
    form = TransferForm()
    form.membership_id.choices = [(m.id, m.user.email) for m in g.workspace.memberships if m.role != "owner"]
    if not form.validate_on_submit():
        flash("Choose a member of this workspace.", "error")
        return _members_page(status=422)
    target = _target(form.membership_id.data)
    try:
        teams.transfer_ownership(g.membership, target)
        db.session.commit()
    except teams.TeamError as exc:
        flash(str(exc), "error")
        return _members_page(status=422)
    flash(f"{target.user.email} now owns this workspace; you are an admin.", "success")
    return redirect(url_for("teams.members"))


@bp.route("/workspace/settings", methods=["GET", "POST"])
@workspace_required
def settings():
    workspace = g.workspace
    name_form = WorkspaceForm(prefix="ws", data={"name": workspace.name})
    mode_form = QuotaModeForm(prefix="quota", data={"quota_mode": workspace.quota_mode})
    delete_form = DeleteWorkspaceForm(prefix="del")
    status = 200
    if request.method == "POST":
        if g.membership.role != "owner":
            abort(403)
        try:
            if "ws-name" in request.form:
                if not name_form.validate_on_submit():
                    raise teams.TeamError(" ".join(name_form.name.errors))
                teams.rename(workspace, name_form.name.data)
            elif "quota-quota_mode" in request.form:
                if not mode_form.validate_on_submit():
                    raise teams.TeamError("Choose per-seat or pooled quotas.")
                teams.set_quota_mode(workspace, mode_form.quota_mode.data)
            else:
                raise teams.TeamError("Nothing to save.")
            db.session.commit()
        except teams.TeamError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            flash("Saved.", "success")
            return redirect(url_for("teams.settings"))
    return render_template("teams/settings.html", name_form=name_form, mode_form=mode_form,
                           delete_form=delete_form), status


@bp.route("/workspace/delete", methods=["POST"])
@workspace_required
@owner_required
def delete():
    form = DeleteWorkspaceForm(prefix="del")
    name = g.workspace.name
    try:
        if not form.validate_on_submit():
            raise teams.TeamError("Type the workspace's name to confirm. Nothing was deleted.")
        teams.delete_workspace(g.workspace, form.confirm_name.data)
        db.session.commit()
    except teams.TeamError as exc:
        flash(str(exc), "error")
        return redirect(url_for("teams.settings"))
    flash(f"{name} and all its work were deleted.", "info")
    return redirect(url_for("index"))


@bp.route("/workspaces/switch", methods=["POST"])
@workspace_required
def switch():
    workspace_id = request.form.get("workspace_id", type=whole_number)
    if workspace_id is None:
        abort(404)
    membership = teams.membership_of(current_user, workspace_id)
    session["workspace_id"] = membership.workspace_id
    flash(f"Now working in {membership.workspace.name}.", "info")
    return redirect(url_for("catalog.index"))


@bp.route("/workspaces/new", methods=["POST"])
@login_required
@limiter.limit("10 per hour")
def create():
    form = WorkspaceForm(prefix="new")
    if not form.validate_on_submit():
        flash("Give the new workspace a name (up to 120 characters).", "error")
        return redirect(url_for("teams.settings"))
    workspace = teams.create_workspace(current_user, form.name.data)
    db.session.commit()
    session["workspace_id"] = workspace.id
    flash(f"Created {workspace.name}. Invite your team from Members. It starts with no Free generations "
          "(your Free allowance stays with your personal workspace): choose a plan in Billing to generate here.",
          "success")
    return redirect(url_for("teams.members"))


def _usage_subject() -> int | None:
    """Whose usage the current member may see: everyone's (None) for managers, else only their own."""
    return None if g.membership.can_manage else current_user.id


@bp.route("/workspace/usage")
@workspace_required
def usage_page():
    period = usage.parse_period(request.args.get("period"))
    report = usage.build(g.workspace, period, only_user_id=_usage_subject())
    return render_template("teams/usage.html", report=report, chart=usage.daily_chart_svg(report),
                           managing=g.membership.can_manage)


@bp.route("/workspace/usage.csv")
@workspace_required
@manager_required
def usage_csv():
    report = usage.build(g.workspace, usage.parse_period(request.args.get("period")))
    filename = f"copydeck-usage-{report.period_start.isoformat()}.csv"
    return Response(usage.as_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
