"""Sign-up, log-in, log-out and the emailed password reset."""
from __future__ import annotations

import email
import re
from pathlib import Path

from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.workspaces.models import Membership


def _latest_mail(app) -> email.message.EmailMessage:
    outbox = Path(app.config["MAIL_OUTBOX"])
    newest = max(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    return email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)


def test_signup_creates_account_and_free_personal_workspace(app, client):
    response = client.post("/signup", data={"email": "New@Example.com", "password": "a-good-password",
                                             "confirm": "a-good-password"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/templates")
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert user.email == "new@example.com"
        assert user.password_hash != "a-good-password"
        membership = db.session.scalars(select(Membership)).one()
        assert membership.role == "owner" and membership.workspace.plan == "free"
        assert membership.workspace.generations_per_seat == 20
    page = client.get("/templates").get_data(as_text=True)
    assert 'data-testid="quota-remaining">20<' in page


def test_signup_bad_input(app, client, make_user):
    make_user("taken@example.com")
    cases = [
        ({"email": "not-an-email", "password": "long-enough", "confirm": "long-enough"}, "Invalid email"),
        ({"email": "a@example.com", "password": "short", "confirm": "short"}, "8 to 128"),
        ({"email": "a@example.com", "password": "long-enough", "confirm": "different!"}, "do not match"),
        ({"email": "TAKEN@example.com", "password": "long-enough", "confirm": "long-enough"}, "already exists"),
    ]
    for data, message in cases:
        response = client.post("/signup", data=data)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1


def test_login_logout(client, make_user):
    make_user("me@example.com", "right-password")
    bad = client.post("/login", data={"email": "me@example.com", "password": "wrong-password"})
    assert bad.status_code == 422 and "Wrong email or password" in bad.get_data(as_text=True)
    ok = client.post("/login?next=/history", data={"email": "ME@example.com", "password": "right-password"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/history"
    assert client.get("/history").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/history").status_code == 302


def test_login_never_redirects_off_site(client, make_user):
    make_user("me@example.com", "right-password")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post(f"/login?next={target}", data={"email": "me@example.com", "password": "right-password"})
        assert "evil" not in response.headers["Location"] or response.headers["Location"].startswith("/\\") is False
        assert not response.headers["Location"].startswith(("http", "//"))
        client.post("/logout")


def test_suspended_user_cannot_log_in(app, client, make_user):
    user_id = make_user("s@example.com", "right-password")
    with app.app_context():
        db.session.get(User, user_id).is_suspended = True
        db.session.commit()
    response = client.post("/login", data={"email": "s@example.com", "password": "right-password"})
    assert response.status_code == 422 and "suspended" in response.get_data(as_text=True)


def test_password_reset_by_emailed_single_use_link(app, client, make_user):
    make_user("forgetful@example.com", "old-password")
    response = client.post("/forgot", data={"email": "forgetful@example.com"})
    assert response.status_code == 302
    message = _latest_mail(app)
    assert message["To"] == "forgetful@example.com"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = re.search(r"http://localhost(/reset/\S+)", text).group(1)
    assert link in html

    assert client.get(link).status_code == 200
    mismatch = client.post(link, data={"password": "new-password-1", "confirm": "nope"})
    assert mismatch.status_code == 422
    assert client.post(link, data={"password": "new-password-1", "confirm": "new-password-1"}).status_code == 302
    assert client.post("/login", data={"email": "forgetful@example.com", "password": "new-password-1"}).status_code == 302
    client.post("/logout")

    reused = client.get(link, follow_redirects=True)
    assert "already been used" in reused.get_data(as_text=True)


def test_reset_links_expire_and_cannot_be_forged(app, client, make_user):
    user_id = make_user("x@example.com")
    from app.auth import services
    with app.app_context():
        token = services.make_reset_token(db.session.get(User, user_id))
    app.config["PASSWORD_RESET_MAX_AGE"] = -1
    try:
        expired = client.get(f"/reset/{token}", follow_redirects=True)
    finally:
        app.config["PASSWORD_RESET_MAX_AGE"] = 3600
    assert "expired" in expired.get_data(as_text=True)
    forged = client.get(f"/reset/{token[:-4]}abcd", follow_redirects=True)
    assert "not valid" in forged.get_data(as_text=True)


def test_forgot_password_does_not_reveal_accounts(app, client):
    response = client.post("/forgot", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert "If an account exists" in response.get_data(as_text=True)
    assert not list(Path(app.config["MAIL_OUTBOX"]).glob("*.eml")) or all(
        "nobody@example.com" not in p.read_text() for p in Path(app.config["MAIL_OUTBOX"]).glob("*.eml"))
