"""Team -> Webhooks: who may use it, bad input, another workspace's ids, the plan gate."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import add_endpoint


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(db.func.count(model.id)))


def test_bad_input_is_refused_with_a_message_and_nothing_written(app, hooks_team, allow_loopback):
    owner = hooks_team.client("owner@example.com")
    cases = [
        ({"url": "not a url", "events": ["generation.completed"]}, "must not contain spaces"),
        ({"url": "ftp://127.0.0.1/x", "events": ["generation.completed"]}, "must start with https://"),
        ({"url": "https://user:pw@127.0.0.1/x", "events": ["generation.completed"]}, "no user name or password"),
        ({"url": "https://" + "a" * 2000 + ".com/", "events": ["generation.completed"]}, "2000 characters"),
        ({"url": "", "events": ["generation.completed"]}, "Enter the endpoint"),
        ({"url": "http://127.0.0.1:9/x"}, "Choose at least one event"),
        ({"url": "http://127.0.0.1:9/x", "events": ["generation.deleted"]}, "is not a valid choice"),
        ({"url": "http://does-not-exist.invalid/x", "events": ["generation.completed"]}, "could not be resolved"),
    ]
    for data, message in cases:
        response = owner.post("/workspace/webhooks", data=data)
        assert response.status_code == 422, data
        assert message in response.get_data(as_text=True), (data, message)
    assert _count(app, WebhookEndpoint) == 0


def test_another_workspaces_endpoint_and_delivery_are_404(app, hooks_team, allow_loopback, make_user, run_worker):
    from app.workspaces.models import Membership
    from app.workspaces import services as teams

    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, "http://127.0.0.1:9/hook")
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    with app.app_context():
        delivery_id = db.session.scalars(select(WebhookDelivery.id)).one()

    stranger_id = make_user("stranger@example.com")
    with app.app_context():
        workspace_id = db.session.scalars(select(Membership.workspace_id)
                                          .where(Membership.user_id == stranger_id)).one()
        teams.set_seats(workspace_id, 2, generations_per_seat=10, plan="business")
        db.session.commit()
    stranger = app.test_client()
    stranger.post("/login", data={"email": "stranger@example.com", "password": "correct-horse-battery"})
    own_id = add_endpoint(stranger, "http://127.0.0.1:9/mine")
    assert stranger.get(f"/workspace/webhooks/{own_id}").status_code == 200
    assert stranger.get(f"/workspace/webhooks/{endpoint_id}").status_code == 404
    for path in (f"/workspace/webhooks/{endpoint_id}/settings", f"/workspace/webhooks/{endpoint_id}/rotate",
                 f"/workspace/webhooks/{endpoint_id}/test", f"/workspace/webhooks/{endpoint_id}/delete",
                 f"/workspace/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
                 f"/workspace/webhooks/{own_id}/deliveries/{delivery_id}/redeliver"):
        assert stranger.post(path, data={"url": "http://127.0.0.1:9/x", "events": ["quota.exhausted"]}
                             ).status_code == 404, path
    assert "/hook" not in stranger.get("/workspace/webhooks").get_data(as_text=True)
    with app.app_context():
        endpoint = db.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint.url == "http://127.0.0.1:9/hook" and endpoint.events == ["generation.completed"]
    assert _count(app, WebhookDelivery) == 1


def test_members_cannot_manage_webhooks(app, hooks_team):
    hooks_team.add("member@example.com")
    member = hooks_team.client("member@example.com")
    assert member.get("/workspace/webhooks").status_code == 403
    assert member.post("/workspace/webhooks", data={"url": "https://example.com/x",
                                                    "events": ["quota.exhausted"]}).status_code == 403
    assert "Webhooks" not in member.get("/workspace/members").get_data(as_text=True)


def test_plans_without_api_access_see_what_they_would_get(app, team):
    owner = team.client("owner@example.com")  # the Pro plan: no api_access
    response = owner.get("/workspace/webhooks")
    assert response.status_code == 402
    page = response.get_data(as_text=True)
    assert "Business plan" in page and "See plans" in page
    assert owner.post("/workspace/webhooks", data={"url": "https://example.com/x",
                                                   "events": ["quota.exhausted"]}).status_code == 402
    assert _count(app, WebhookEndpoint) == 0


def test_owner_sees_secret_and_can_delete(app, hooks_team, allow_loopback):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, "http://127.0.0.1:9/hook", ["quota.exhausted"], description="CMS")
    with app.app_context():
        secret = db.session.get(WebhookEndpoint, endpoint_id).secret
    page = owner.get(f"/workspace/webhooks/{endpoint_id}").get_data(as_text=True)
    assert secret in page
    assert "CMS" in owner.get("/workspace/webhooks").get_data(as_text=True)
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    assert _count(app, WebhookDelivery) == 1
    assert owner.post(f"/workspace/webhooks/{endpoint_id}/delete").status_code == 302
    assert _count(app, WebhookEndpoint) == 0 and _count(app, WebhookDelivery) == 0


def test_the_endpoint_page_costs_the_same_statements_for_2_or_20_deliveries(app, hooks_team, allow_loopback):
    from sqlalchemy import event

    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, "http://127.0.0.1:9/hook")

    def statements() -> int:
        seen = []
        with app.app_context():
            engine = db.engine
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert owner.get(f"/workspace/webhooks/{endpoint_id}").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    for _ in range(2):
        owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    few = statements()
    for _ in range(18):
        owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    assert _count(app, WebhookDelivery) == 20
    assert statements() == few


def test_redelivering_to_a_disabled_endpoint_is_refused_with_a_message(app, hooks_team, allow_loopback):
    owner = hooks_team.client("owner@example.com")
    endpoint_id = add_endpoint(owner, "http://127.0.0.1:9/hook")
    owner.post(f"/workspace/webhooks/{endpoint_id}/test")
    with app.app_context():
        delivery_id = db.session.scalars(select(WebhookDelivery.id)).one()
    owner.post(f"/workspace/webhooks/{endpoint_id}/settings", data={"url": "http://127.0.0.1:9/hook",
                                                           "events": ["generation.completed"]})
    response = owner.post(f"/workspace/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
                          follow_redirects=True)
    assert "This endpoint is disabled" in response.get_data(as_text=True)
    assert _count(app, WebhookDelivery) == 1
