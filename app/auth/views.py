"""Sign up, log in, log out, forgotten password."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import services, sessions, throttle
from app.auth.forms import ForgotPasswordForm, LoginForm, ResetPasswordForm, SignupForm
from app.extensions import db, limiter
from app import mail

bp = Blueprint("auth", __name__)


def log_in(user, remember: bool = False) -> None:
    """Start a server-side login session for this browser and set Flask-Login's cookies.

    Commits the request's work with it (a sign-up is the account and its first login, together)."""
    sessions.start(user, remember=remember, user_agent=request.headers.get("User-Agent", ""))
    db.session.commit()
    login_user(user, remember=remember)
    session.pop("workspace_id", None)


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
            log_in(user)
            flash("Welcome to Copydeck! Pick a template to write your first copy.", "success")
            return redirect(url_for("catalog.index"))
    return render_template("auth/signup.html", form=form), (422 if form.errors else 200)


def _wrong_password(response) -> bool:
    return response.status_code == 422


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_IP"], methods=["POST"], deduct_when=_wrong_password,
               exempt_when=throttle.has_device_cookie)
def login():
    """Log in. Failed attempts are limited per account as well as per IP (app/auth/throttle.py)."""
    if current_user.is_authenticated:
        return redirect(url_for("catalog.index"))
    form = LoginForm()
    status = 422
    if form.validate_on_submit():
        client = throttle.client_for(form.email.data)
        wait = throttle.seconds_locked(client)
        user = None if wait else services.authenticate(form.email.data, form.password.data)
        if wait:
            minutes = -(-wait // 60)
            form.password.errors.append(
                f"Too many failed log-ins for this account. Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
                "or reset your password by email.")
            status = 429
        elif user is None:
            throttle.failed(client)
            form.password.errors.append("Wrong email or password.")
        elif not user.is_active:
            form.email.errors.append("This account is suspended. Contact support.")
        else:
            log_in(user, remember=form.remember.data)
            response = redirect(_safe_next(request.args.get("next")))
            throttle.succeeded(client, response)
            return response
    return render_template("auth/login.html", form=form), (status if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    sessions.end(current_user)
    db.session.commit()
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
        db.session.commit()
        throttle.forget_account(user.email)
        flash("Your password is changed. Log in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, token=token), (422 if form.errors else 200)


@bp.route("/account")
@login_required
def account():
    """The user's own settings: their live login sessions, and ending the others."""
    return render_template("auth/account.html", logins=sessions.active(current_user))


@bp.route("/account/logout-others", methods=["POST"])
@login_required
def logout_others():
    ended = sessions.end_all(current_user, keep_current=True)
    db.session.commit()
    flash(f"Logged out of {ended} other session{'s' if ended != 1 else ''}. This one stays logged in.", "success")
    return redirect(url_for("auth.account"))
