"""Team fixtures: an owner's workspace with seats, and helpers to add people to it."""
from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.extensions import db
from app.workspaces import services as teams
from app.workspaces.models import Membership


class Team:
    def __init__(self, app, make_user):
        self.app = app
        self.make_user = make_user
        self.clients: dict[str, object] = {}
        owner_id = make_user("owner@example.com")
        with app.app_context():
            self.workspace_id = db.session.scalars(
                select(Membership.workspace_id).where(Membership.user_id == owner_id)).one()
            teams.set_seats(self.workspace_id, 5, generations_per_seat=10, plan="pro")
        self.client("owner@example.com")

    def client(self, address: str, password: str = "correct-horse-battery"):
        """A logged-in test client for this address, working in the team's workspace."""
        if address not in self.clients:
            c = self.app.test_client()
            response = c.post("/login", data={"email": address, "password": password})
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
            c.post("/workspaces/switch", data={"workspace_id": self.workspace_id})
            self.clients[address] = c
        return self.clients[address]

    def add(self, address: str, role: str = "member") -> int:
        """Create a user and make them a member directly (bypassing invitations)."""
        user_id = self.make_user(address)
        with self.app.app_context():
            db.session.add(Membership(workspace_id=self.workspace_id, user_id=user_id, role=role))
            db.session.commit()
        self.client(address)
        return user_id

    def membership_id(self, address: str) -> int:
        with self.app.app_context():
            return db.session.scalars(select(Membership.id).join(User, User.id == Membership.user_id).where(
                Membership.workspace_id == self.workspace_id, User.email == address)).one()

    def mails(self, to: str | None = None) -> list[email.message.EmailMessage]:
        outbox = Path(self.app.config["MAIL_OUTBOX"])
        messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                    for p in sorted(outbox.glob("*.eml"), key=lambda p: p.name)]
        return [m for m in messages if to is None or m["To"] == to]

    def invite_link(self, to: str) -> str:
        body = self.mails(to)[-1].get_body(("plain",)).get_content()
        return re.search(r"http://localhost(/invitations/\S+)", body).group(1)


@pytest.fixture
def team(app, make_user):
    outbox = Path(app.config["MAIL_OUTBOX"])
    for old in outbox.glob("*.eml"):
        old.unlink()
    return Team(app, make_user)
