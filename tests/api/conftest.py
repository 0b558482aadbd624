"""API fixtures: a Business workspace (API access) with keys, and a Bearer client."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db


class ApiWorld:
    """The team's workspace on Business, and helpers to make keys and call the API."""

    def __init__(self, app, team):
        from app.workspaces import services as teams
        self.app, self.team = app, team
        with app.app_context():
            teams.set_seats(team.workspace_id, 5, generations_per_seat=10, plan="business")
            db.session.commit()
        self.client = app.test_client()
        self.owner_id = self.user_id("owner@example.com")
        self.key = self.make_key()

    def user_id(self, email: str) -> int:
        from app.auth.models import User
        with self.app.app_context():
            return db.session.scalar(select(User.id).where(User.email == email))

    def make_key(self, scopes=("generate", "read"), workspace_id: int | None = None, charge_user_id: int | None = None,
                 expires_at=None) -> str:
        from app.api import keys
        from app.auth.models import User
        from app.workspaces.models import Workspace
        with self.app.app_context():
            workspace = db.session.get(Workspace, workspace_id or self.team.workspace_id)
            actor = db.session.get(User, charge_user_id or self.owner_id)
            made = keys.create(workspace, actor, name="test key", scopes=list(scopes),
                               charge_user_id=charge_user_id or self.owner_id, expires_at=expires_at)
            db.session.commit()
            return made.secret

    def stranger_key(self, make_user) -> str:
        """A key of another Business workspace (a stranger's)."""
        from app.workspaces import services as teams
        from app.workspaces.models import Membership
        stranger = make_user("stranger@example.com")
        with self.app.app_context():
            workspace_id = db.session.scalar(select(Membership.workspace_id).where(Membership.user_id == stranger))
            teams.set_seats(workspace_id, 1, plan="business")
            db.session.commit()
        return self.make_key(workspace_id=workspace_id, charge_user_id=stranger)

    def headers(self, key: str | None = None, **extra) -> dict:
        return {"Authorization": f"Bearer {key or self.key}", **extra}

    def get(self, path: str, key: str | None = None, **kw):
        return self.client.get(path, headers=self.headers(key, **kw.pop("headers", {})), **kw)

    def post(self, path: str, json=None, key: str | None = None, **kw):
        return self.client.post(path, json=json, headers=self.headers(key, **kw.pop("headers", {})), **kw)

    def body(self, slug: str = "x-post", variants: int = 2, **overrides) -> dict:
        from app.catalog.models import Template
        with self.app.app_context():
            template = db.session.scalars(select(Template).where(Template.slug == slug)).one()
            fields = {}
            for spec in template.published_version.fields:
                if spec["type"] == "select":
                    fields[spec["name"]] = spec["options"][0]
                elif spec["type"] == "number":
                    fields[spec["name"]] = spec.get("min", 1)
                else:
                    fields[spec["name"]] = f"Copydeck {spec['name']}"[: spec.get("max_length", 200)]
        body = {"template": slug, "fields": fields, "tone": "Friendly", "variants": variants}
        body.update(overrides)
        return body


@pytest.fixture
def api(app, team):
    return ApiWorld(app, team)


def counts(app) -> dict:
    """Rows that a refused request must not have written."""
    from app.api.models import ApiGeneration, IdempotencyRecord
    from app.generation.models import Generation
    from app.quota.models import QuotaCharge, QuotaLedger
    with app.app_context():
        reserved = db.session.scalar(select(db.func.coalesce(db.func.sum(QuotaLedger.reserved), 0)))
        return {name: db.session.scalar(select(db.func.count()).select_from(model))
                for name, model in (("generations", Generation), ("charges", QuotaCharge),
                                    ("links", ApiGeneration), ("idempotency", IdempotencyRecord))} | {"reserved": reserved}


@pytest.fixture
def run_bulk_worker(app):
    from rq import Queue, SimpleWorker

    def run() -> None:
        with app.app_context():
            redis = app.extensions["redis"]
            queues = [Queue(app.config["RQ_QUEUE"], connection=redis),
                      Queue(app.config["BULK_QUEUE"], connection=redis)]
            SimpleWorker(queues, connection=redis).work(burst=True, with_scheduler=False)
    return run


def bulk_counts(app) -> dict:
    """Bulk rows that a refused request must not have written (drafts and remembered mappings included)."""
    from app.api.models import IdempotencyRecord
    from app.bulk.models import BulkMapping, BulkRow, BulkRun
    from app.quota.models import QuotaLedger
    with app.app_context():
        reserved = db.session.scalar(select(func.coalesce(func.sum(QuotaLedger.reserved), 0)))
        return {name: db.session.scalar(select(func.count()).select_from(model))
                for name, model in (("runs", BulkRun), ("rows", BulkRow), ("mappings", BulkMapping),
                                    ("idempotency", IdempotencyRecord))
                } | {"reserved": reserved}


@pytest.fixture
def bulk_key(api):
    return api.make_key(scopes=("bulk",))


# A real worker pool in a subprocess, for tests where the request itself waits for the job (?wait=,
# streams): the browser tests' fixture, reused.
from tests.browser.conftest import worker_process  # noqa: E402,F401
