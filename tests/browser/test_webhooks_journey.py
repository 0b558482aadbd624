"""Team -> Webhooks in the browser: add an endpoint, read its secret, send a test event that the real worker
pool (`python -m workers`) delivers to a receiver on 127.0.0.1, see the delivery, redeliver it."""
from __future__ import annotations

import json
import os
import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.workspaces import services as teams
from app.workspaces.models import Membership
from tests.browser.test_journey import sign_up
from tests.webhooks.conftest import _start
from tests.webhooks.helpers import readme_verify

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _allow_loopback_in_the_worker():
    """The worker pool reads its settings from the environment when the module's pool starts."""
    previous = os.environ.get("WEBHOOK_ALLOWED_HOSTS")
    os.environ["WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    yield
    if previous is None:
        os.environ.pop("WEBHOOK_ALLOWED_HOSTS", None)
    else:
        os.environ["WEBHOOK_ALLOWED_HOSTS"] = previous


def _wait_until_recorded(app, timeout: float = 30.0) -> None:
    from app.webhooks.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            statuses = list(db.session.scalars(select(WebhookDelivery.status)))
            db.session.remove()
        if statuses and "pending" not in statuses:
            return
        assert time.monotonic() < deadline, statuses
        time.sleep(0.05)


def test_owner_adds_an_endpoint_and_sees_its_deliveries(app, browser, live_server, worker_process, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1"])  # the web side's check
    receiver = _start()
    context = browser.new_context(base_url=live_server)
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        sign_up(page, "hooks@example.com")
        with app.app_context():
            workspace_id = db.session.scalars(select(Membership.workspace_id)).one()
            teams.set_seats(workspace_id, 2, generations_per_seat=10, plan="business")
            db.session.commit()
            db.session.remove()

        page.click("nav.mainnav >> text=Team")
        page.click("nav.subnav >> text=Webhooks")
        expect(page.locator("h2", has_text="Add an endpoint")).to_be_visible()
        page.click("form[action$='/workspace/webhooks'] button[type=submit]")  # empty: told what is missing
        expect(page.locator(".error", has_text="Enter the endpoint's URL.")).to_be_visible()
        page.fill("input[name=url]", receiver.url)
        page.fill("input[name=description]", "Our CMS")
        page.check("input[value='generation.completed']")
        page.check("input[value='quota.exhausted']")
        page.click("form[action$='/workspace/webhooks'] button[type=submit]")
        expect(page.locator(".flash-success")).to_contain_text("Endpoint added")

        page.click("[data-testid=secret] summary")
        expect(page.locator("[data-testid=secret] code").first).to_be_visible()
        secret = page.locator("[data-testid=secret] code").first.inner_text()
        assert secret.startswith("whsec_")

        page.click("button:has-text('Send test event')")
        got = receiver.next(timeout=30)
        assert readme_verify()(secret, got.body, got.headers["Copydeck-Signature"])
        event_id = json.loads(got.body)["id"]
        _wait_until_recorded(app)  # the worker records the answer just after the receiver saw it
        page.reload()
        row = page.locator("[data-testid=deliveries] tr", has_text=event_id).first
        expect(row).to_contain_text("Delivered")
        expect(row.locator("[data-testid=status-code]")).to_have_text("200")
        expect(row).to_contain_text(re.compile(r"\d+ ms"))

        row.locator("button:has-text('Redeliver')").click()
        expect(page.locator(".flash-success")).to_contain_text(f"Event {event_id} queued for redelivery")
        again = receiver.next(timeout=30)
        assert again.headers["Copydeck-Event-Id"] == event_id
    finally:
        context.close()
        receiver.server.shutdown()
        receiver.server.server_close()
