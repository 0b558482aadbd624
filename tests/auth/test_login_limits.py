"""Failed log-ins are limited per account (and client) as well as per IP, without letting an
attacker lock other people out. Addresses are set per request through REMOTE_ADDR."""
from __future__ import annotations

import pytest
import time_machine

from app.auth import throttle

PASSWORD = "correct-horse-battery"
PER_CLIENT, PER_ACCOUNT = 3, 6


@pytest.fixture(autouse=True)
def small_limits(app):
    """Smaller budgets than the defaults keep the test quick (each wrong guess is a real hash check)."""
    saved = {k: app.config[k] for k in ("LOGIN_LIMIT_PER_CLIENT", "LOGIN_LIMIT_PER_ACCOUNT")}
    app.config.update(LOGIN_LIMIT_PER_CLIENT=f"{PER_CLIENT} per 15 minutes",
                      LOGIN_LIMIT_PER_ACCOUNT=f"{PER_ACCOUNT} per hour")
    yield
    app.config.update(saved)


def _attempt(client, address: str, password: str, ip: str):
    return client.post("/login", data={"email": address, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def test_guessing_one_account_from_one_address_stops_there_and_nowhere_else(app, make_user):
    make_user("victim@example.com")
    make_user("colleague@example.com")
    attacker = app.test_client()
    answers = [_attempt(attacker, "victim@example.com", f"guess-{n}", "10.0.0.1").status_code for n in range(18)]
    assert answers[:PER_CLIENT] == [422] * PER_CLIENT and set(answers[PER_CLIENT:]) == {429}
    locked = _attempt(attacker, "victim@example.com", PASSWORD, "10.0.0.1")
    assert locked.status_code == 429, "while locked, even the right password is not checked"
    assert "Too many failed log-ins for this account" in locked.get_data(as_text=True)
    # The case: another user behind the same address logs in fine.
    assert _attempt(app.test_client(), "colleague@example.com", PASSWORD, "10.0.0.1").status_code == 302
    # The victim, from their own address, is not locked out.
    assert _attempt(app.test_client(), "victim@example.com", PASSWORD, "192.0.2.7").status_code == 302


def test_guessing_one_account_from_many_addresses_is_capped(app, make_user):
    make_user("victim@example.com")
    statuses = [_attempt(app.test_client(), "victim@example.com", f"guess-{n}", f"10.1.{n}.1").status_code
                for n in range(PER_ACCOUNT + 2)]
    assert statuses[:PER_ACCOUNT] == [422] * PER_ACCOUNT and set(statuses[PER_ACCOUNT:]) == {429}
    # An unknown browser waits for the window, even with the right password...
    assert _attempt(app.test_client(), "victim@example.com", PASSWORD, "192.0.2.7").status_code == 429


def test_a_browser_that_logged_in_before_is_never_locked_out_by_others(app, make_user):
    make_user("victim@example.com")
    laptop = app.test_client()
    assert _attempt(laptop, "victim@example.com", PASSWORD, "192.0.2.7").status_code == 302
    assert laptop.get_cookie(throttle.DEVICE_COOKIE) is not None
    laptop.post("/logout")
    for n in range(PER_ACCOUNT + 1):
        _attempt(app.test_client(), "victim@example.com", f"guess-{n}", f"10.1.{n}.1")
    # Same address as an attacker, account-wide lock on: the device cookie still gets the owner in.
    assert _attempt(laptop, "victim@example.com", PASSWORD, "10.1.0.1").status_code == 302


def test_a_device_cookie_has_its_own_small_budget_and_only_for_its_account(app, make_user):
    make_user("victim@example.com")
    make_user("other@example.com")
    browser = app.test_client()
    assert _attempt(browser, "victim@example.com", PASSWORD, "192.0.2.7").status_code == 302
    browser.post("/logout")
    statuses = [_attempt(browser, "victim@example.com", f"guess-{n}", f"10.2.{n}.1").status_code
                for n in range(PER_CLIENT + 2)]
    assert statuses[:PER_CLIENT] == [422] * PER_CLIENT and set(statuses[PER_CLIENT:]) == {429}
    # The cookie names one account: for another account this browser is an unknown client.
    with app.test_request_context(headers={"Cookie": f"{throttle.DEVICE_COOKIE}="
                                                     f"{browser.get_cookie(throttle.DEVICE_COOKIE).value}"}):
        assert throttle.client_for("victim@example.com").trusted
        assert not throttle.client_for("other@example.com").trusted
    with app.test_request_context(headers={"Cookie": f"{throttle.DEVICE_COOKIE}=forged"}):
        assert not throttle.client_for("victim@example.com").trusted


def test_the_lock_ends_with_the_window(app, make_user):
    make_user("victim@example.com")
    with time_machine.travel("2026-12-02 10:00:00Z", tick=False) as clock:
        for n in range(PER_CLIENT):
            _attempt(app.test_client(), "victim@example.com", f"guess-{n}", "10.0.0.1")
        assert _attempt(app.test_client(), "victim@example.com", PASSWORD, "10.0.0.1").status_code == 429
        clock.shift(16 * 60)
        assert _attempt(app.test_client(), "victim@example.com", PASSWORD, "10.0.0.1").status_code == 302


def test_a_password_reset_lifts_the_account_wide_lock(app, client, make_user):
    user_id = make_user("victim@example.com")
    for n in range(PER_ACCOUNT):
        _attempt(app.test_client(), "victim@example.com", f"guess-{n}", f"10.1.{n}.1")
    assert _attempt(app.test_client(), "victim@example.com", PASSWORD, "192.0.2.7").status_code == 429
    from app.auth import services
    from app.auth.models import User
    from app.extensions import db
    with app.app_context():
        token = services.make_reset_token(db.session.get(User, user_id))
    client.post(f"/reset/{token}", data={"password": "brand-new-password", "confirm": "brand-new-password"},
                environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert _attempt(app.test_client(), "victim@example.com", "brand-new-password", "192.0.2.7").status_code == 302


def test_unknown_emails_are_limited_like_real_ones(app):
    statuses = [_attempt(app.test_client(), "nobody@example.com", "whatever-1", "10.0.0.1").status_code
                for _ in range(PER_CLIENT + 1)]
    assert statuses == [422] * PER_CLIENT + [429]


@pytest.fixture
def limited_app(app, make_app):
    """The app with Flask-Limiter on (the session's app has it off): the per-IP limit."""
    from app.extensions import limiter
    limited = make_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True,
                          "LOGIN_LIMIT_PER_IP": "4 per 10 minutes"})
    yield limited
    limiter.enabled = False  # the Limiter object is shared; the session's app runs with it off
    from app.extensions import db
    with limited.app_context():
        db.engine.dispose()


def test_per_ip_limit_counts_failures_across_accounts_and_spares_known_browsers(limited_app, make_user):
    for n in range(6):
        make_user(f"user{n}@example.com")
    known = limited_app.test_client()
    assert _attempt(known, "user5@example.com", PASSWORD, "10.3.0.1").status_code == 302
    known.post("/logout")
    stuffer = limited_app.test_client()
    statuses = [_attempt(stuffer, f"user{n}@example.com", "wrong-password", "10.3.0.1").status_code
                for n in range(5)]
    assert statuses[:4] == [422] * 4 and statuses[4] == 429
    assert _attempt(limited_app.test_client(), "user4@example.com", PASSWORD, "10.3.0.1").status_code == 429
    assert _attempt(known, "user5@example.com", PASSWORD, "10.3.0.1").status_code == 302
