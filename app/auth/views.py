"""Sign up, log in, log out, forgotten password."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import services
from app.auth.forms import ForgotPasswordForm, LoginForm, ResetPasswordForm, SignupForm
from app.extensions import limiter
from app import mail

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("catalog.index")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("catalog.index"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = services.sign_up(form.email.data, form.password.data)
        except services.EmailTaken:
            form.email.errors.append("An account with this email already exists. Log in instead.")
        else:
            login_user(user)
            session.pop("workspace_id", None)
            flash("Welcome to Copydeck! Pick a template to write your first copy.", "success")
            return redirect(url_for("catalog.index"))
    return render_template("auth/signup.html", form=form), (422 if form.errors else 200)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per 10 minutes", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("catalog.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None:
            form.password.errors.append("Wrong email or password.")
        elif not user.is_active:
            form.email.errors.append("This account is suspended. Contact support.")
        else:
            login_user(user, remember=form.remember.data)
            session.pop("workspace_id", None)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form), (422 if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit("5 per 15 minutes", methods=["POST"])
def forgot():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = services.find_by_email(form.email.data)
        if user is not None:
            token = services.make_reset_token(user)
            mail.send(user.email, "password_reset", user=user,
                      reset_url=url_for("auth.reset", token=token, _external=True))
        # Same answer either way, so the form does not reveal who has an account.
        flash("If an account exists for that email, we have sent a link to reset its password.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form), (422 if form.errors else 200)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    try:
        user = services.user_for_reset_token(token)
    except services.InvalidResetToken as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.forgot"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.reset_password(user, form.password.data)
        flash("Your password is changed. Log in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, token=token), (422 if form.errors else 200)
