"""Request plumbing shared by every feature: login, the active workspace,
htmx helpers, error pages and the values every page shows (remaining quota)."""
from __future__ import annotations

from functools import wraps

from flask import Flask, abort, g, has_request_context, make_response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
import werkzeug.exceptions

from app.core import NotFound
from app.extensions import db, login_manager


def is_htmx() -> bool:
    """A partial is wanted: an htmx request that is not a boosted navigation."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def htmx_redirect(url: str):
    """Redirect that works for both htmx requests and plain form posts."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)


def _load_active_workspace():
    """Set g.my_memberships (for the switcher) and, if any, g.membership / g.workspace."""
    from app.workspaces.services import current_membership, memberships_of
    g.my_memberships = memberships_of(current_user)
    membership = current_membership(current_user, session.get("workspace_id"), g.my_memberships)
    if membership is not None:
        if session.get("workspace_id") != membership.workspace_id:
            session["workspace_id"] = membership.workspace_id  # the one asked for is gone: remember the fallback
        g.membership, g.workspace = membership, membership.workspace
    return membership


def workspace_required(view):
    """Login required, and g.workspace / g.membership set to the active workspace."""
    @login_required
    @wraps(view)
    def wrapper(*args, **kwargs):
        membership = _load_active_workspace()
        if membership is None:
            return render_template("errors/no_workspace.html"), 403
        from app.billing.services import enforce_grace
        enforce_grace(g.workspace)
        return view(*args, **kwargs)
    return wrapper


def site_admin_required(view):
    """Site admins only (a role separate from workspace roles); others get 403.

    The active workspace, if the admin has one, is loaded too, so the header
    shows it; admin pages never depend on it.
    """
    @login_required
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_site_admin:
            abort(403)
        _load_active_workspace()
        return view(*args, **kwargs)
    return wrapper


def manager_required(view):
    """Owner or admin of the active workspace; others get 403."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not g.membership.can_manage:
            abort(403)
        return view(*args, **kwargs)
    return wrapper


def owner_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.membership.role != "owner":
            abort(403)
        return view(*args, **kwargs)
    return wrapper


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(identity: str):
        # A live server-side login session of an active user, else anonymous (app.auth.sessions).
        from app.auth import sessions
        return sessions.load(identity)

    @app.context_processor
    def page_values():
        if not has_request_context():  # e.g. emails rendered by a worker
            return {}
        values = {
            "local_draft_model": app.config["LLM_LOCAL_DRAFT"],
            "llm_model": app.config["OPENAI_MODEL"],
            "allowance": None,
            "is_htmx": is_htmx(),
        }
        workspace = getattr(g, "workspace", None)
        if workspace is not None and current_user.is_authenticated:
            from app.projects.services import projects_of
            from app.quota.services import remaining
            values["allowance"] = remaining(workspace, current_user.id)
            values["workspace"] = workspace
            values["membership"] = g.membership
            values["my_memberships"] = g.my_memberships

            def workspace_projects():
                """The projects, loaded once per request however many variant cards ask."""
                if "workspace_projects" not in g:
                    g.workspace_projects = projects_of(workspace.id)
                return g.workspace_projects

            values["workspace_projects"] = workspace_projects
            from app.billing.services import grace_ends
            values["billing_grace_ends"] = grace_ends(workspace)
        return values

    @app.template_filter("icon")
    def icon_filter(name: str) -> str:
        from app.catalog.services import ICONS
        return ICONS.get(name, "✨")

    def error_page(status: int, title: str, message: str):
        if is_htmx():
            return render_template("partials/_error.html", title=title, message=message), status
        return render_template("errors/error.html", status=status, title=title, message=message), status

    @app.errorhandler(404)
    def not_found(_e):
        return error_page(404, "Not found", "There is nothing here, or it belongs to another workspace.")

    @app.errorhandler(NotFound)
    def missing(_e):
        """A service's NotFound is a 404, answered by the blueprint's own 404 handler (HTML or an API's JSON)."""
        return app.handle_http_exception(werkzeug.exceptions.NotFound())

    @app.errorhandler(403)
    def forbidden(_e):
        return error_page(403, "Not allowed", "Your role does not allow that. Ask your workspace's owner or an admin (or a site admin for site pages).")

    @app.errorhandler(405)
    def not_allowed(_e):
        return error_page(405, "Not allowed", "That action cannot be done this way.")

    @app.errorhandler(CSRFError)
    def csrf_failed(e):
        return error_page(400, "Form expired", "Your form expired or was sent from elsewhere. Reload the page and try again; nothing was saved.")

    @app.errorhandler(400)
    def bad_request(e):
        from app.bounds import NulByteRejected
        message = e.description if isinstance(e, NulByteRejected) else (
            "That request could not be understood. Nothing was saved.")
        return error_page(400, "Bad request", message)

    @app.errorhandler(413)
    def too_large(_e):
        limit = request.max_content_length or app.config["MAX_CONTENT_LENGTH"]
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        return error_page(413, "Too large", f"That request is larger than this page accepts ({size}). Nothing was saved.")

    @app.errorhandler(429)
    def too_many(_e):
        return error_page(429, "Slow down", "Too many requests in a short time. Wait a minute and try again.")

    @app.errorhandler(500)
    def server_error(_e):
        db.session.rollback()
        from app.observability import record_error
        record_error("http_500")
        return error_page(500, "Something went wrong", "An unexpected error happened and nothing was saved. Please try again.")

    @app.route("/")
    def index():
        if current_user.is_authenticated:
            return redirect(url_for("catalog.index"))
        return render_template("landing.html")
