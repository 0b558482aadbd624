"""Login sessions end on the server: logout, log out of other sessions, password reset, suspension.

An attacker's copy of a cookie is simulated by a second test client that is given only the
copied cookie's value.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.auth import services, sessions
from app.auth.models import LoginSession, User
from app.extensions import db

PASSWORD = "correct-horse-battery"


def _login(app, address: str, remember: bool = False):
    client = app.test_client()
    data = {"email": address, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    assert client.post("/login", data=data, headers={"User-Agent": "TestBrowser/1.0"}).status_code == 302
    return client


def _replay(app, client, name: str):
    """A fresh client holding only a copy of the named cookie, as a thief would."""
    thief = app.test_client()
    thief.set_cookie(name, client.get_cookie(name).value)
    return thief


def _logged_in(client) -> bool:
    return client.get("/history").status_code == 200


def test_a_session_cookie_copied_before_logout_is_dead_after_it(app, make_user):
    make_user("me@example.com")
    browser = _login(app, "me@example.com")
    thief = _replay(app, browser, "session")
    assert _logged_in(thief)
    assert browser.post("/logout").status_code == 302
    assert not _logged_in(browser)
    assert not _logged_in(thief)


def test_a_remember_cookie_copied_before_logout_is_dead_after_it(app, make_user):
    make_user("me@example.com")
    browser = _login(app, "me@example.com", remember=True)
    thief = _replay(app, browser, "remember_token")
    assert _logged_in(thief)
    browser.post("/logout")
    assert not _logged_in(thief)


def test_password_reset_ends_every_session_and_remember_cookie(app, make_user):
    user_id = make_user("me@example.com")
    browser = _login(app, "me@example.com", remember=True)
    remembered = _replay(app, browser, "remember_token")
    assert _logged_in(remembered)
    with app.app_context():
        token = services.make_reset_token(db.session.get(User, user_id))
    fresh = app.test_client()
    assert fresh.post(f"/reset/{token}", data={"password": "a-new-password", "confirm": "a-new-password"}
                      ).status_code == 302
    assert not _logged_in(browser)
    assert not _logged_in(remembered)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginSession)) == 0


def test_log_out_of_all_other_sessions_keeps_this_one(app, make_user):
    make_user("me@example.com")
    laptop = _login(app, "me@example.com")
    phone = _login(app, "me@example.com", remember=True)
    phone_remembered = _replay(app, phone, "remember_token")
    other_user = make_user("other@example.com")
    other = _login(app, "other@example.com")

    page = laptop.get("/account").get_data(as_text=True)
    assert page.count("TestBrowser/1.0") == 2 and "This browser" in page
    response = laptop.post("/account/logout-others", follow_redirects=True)
    assert "Logged out of 1 other session" in response.get_data(as_text=True)
    assert _logged_in(laptop)
    assert not _logged_in(phone)
    assert not _logged_in(phone_remembered)
    assert _logged_in(other), "another account's sessions are not touched"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginSession)
                                 .where(LoginSession.user_id == other_user)) == 1


def test_suspension_ends_sessions_and_reactivation_does_not_revive_them(app, make_user):
    from app.admin.services import set_suspended
    admin_id, user_id = make_user("root@example.com"), make_user("me@example.com")
    browser = _login(app, "me@example.com", remember=True)
    remembered = _replay(app, browser, "remember_token")
    with app.app_context():
        admin, user = db.session.get(User, admin_id), db.session.get(User, user_id)
        set_suspended(admin, user, True)
        db.session.commit()
        set_suspended(admin, user, False)
        db.session.commit()
    assert not _logged_in(browser)
    assert not _logged_in(remembered)
    assert _logged_in(_login(app, "me@example.com"))


def test_still_valid_tells_a_long_response_when_its_login_ended(app, make_user):
    make_user("me@example.com")
    browser = _login(app, "me@example.com")
    with browser.session_transaction() as flask_session:
        identity = flask_session["_user_id"]
    with app.app_context():
        assert sessions.still_valid(identity)
        assert not sessions.still_valid(identity[:-1] + ("A" if identity[-1] != "A" else "B"))
        assert not sessions.still_valid("garbage")
    browser.post("/logout")
    with app.app_context():
        assert not sessions.still_valid(identity)


def test_an_expired_login_is_anonymous(app, make_user):
    make_user("me@example.com")
    browser = _login(app, "me@example.com", remember=True)
    assert _logged_in(browser)
    with app.app_context():
        db.session.execute(update(LoginSession).values(expires_at=LoginSession.created_at - timedelta(seconds=1)))
        db.session.commit()
    assert not _logged_in(browser)


def test_remember_cookie_is_lax_http_only_and_lasts_14_days(app, make_user):
    make_user("me@example.com")
    client = app.test_client()
    response = client.post("/login", data={"email": "me@example.com", "password": PASSWORD, "remember": "y"})
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token="))
    assert "SameSite=Lax" in header and "HttpOnly" in header
    assert app.config["REMEMBER_COOKIE_DURATION"] == timedelta(days=14)
    with app.app_context():
        login = db.session.scalars(select(LoginSession)).one()
        assert login.remember and login.expires_at - login.created_at == timedelta(days=14)


def test_a_user_agent_with_control_bytes_is_stored_clean(app, make_user):
    make_user("me@example.com")
    client = app.test_client()
    response = client.post("/login", data={"email": "me@example.com", "password": PASSWORD},
                           headers={"User-Agent": "Evil\x00Agent\x07/1"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(LoginSession.user_agent)).one() == "EvilAgent/1"


def test_old_cookies_with_a_bare_user_id_are_anonymous(app, make_user):
    make_user("me@example.com")
    client = app.test_client()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = "1"
    assert not _logged_in(client)
