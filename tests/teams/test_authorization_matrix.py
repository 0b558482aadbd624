"""Every route, visited as every kind of visitor, answers as expected.

Visitors: anonymous, a member, an admin and the owner of the team workspace,
a member of another workspace (owner of their own), and a site admin who is
not in the team. Ids belong to the team workspace, so outsiders must get 404
and no data. A route added without an entry here fails the test.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.models import User
from app.brand.models import BrandVoice
from app.extensions import db
from app.projects.models import Project, ProjectItem
from app.workspaces.models import Invitation, Membership
from tests.generation.helpers import submit

ROLES = ("anon", "member", "admin", "owner", "other", "site_admin")

P = "public"           # allowed for everyone, anonymous included
L = "login"            # anonymous: redirected to log in
F = "forbidden"        # 403
N = "not_found"        # 404
A = "allowed"          # anything else below 500

WORKSPACE = (L, A, A, A, A, A)      # any signed-in user, in their own active workspace
TEAM_OBJECT = (L, A, A, A, N, N)    # an id from the team workspace
MANAGER = (L, F, A, A, A, A)        # owner/admin of their active workspace
TEAM_MANAGER = (L, F, A, A, N, N)   # owner/admin, on a team id
OWNER = (L, F, F, A, A, A)          # owner of their active workspace
PUBLIC = (P,) * 6

# (endpoint, method): (url template, expectations per role, form data)
MATRIX = {
    ("index", "GET"): ("/", PUBLIC, None),
    ("auth.login", "GET"): ("/login", PUBLIC, None),
    ("auth.login", "POST"): ("/login", PUBLIC, {"email": "nobody@example.com", "password": "wrong-password"}),
    ("auth.signup", "GET"): ("/signup", PUBLIC, None),
    ("auth.signup", "POST"): ("/signup", PUBLIC, {"email": "bad"}),
    ("auth.forgot", "GET"): ("/forgot", PUBLIC, None),
    ("auth.forgot", "POST"): ("/forgot", PUBLIC, {"email": "bad"}),
    ("auth.reset", "GET"): ("/reset/forged-token", PUBLIC, None),
    ("auth.reset", "POST"): ("/reset/forged-token", PUBLIC, {"password": "x"}),
    ("teams.invitation", "GET"): ("/invitations/forged-token", PUBLIC, None),
    ("teams.invitation", "POST"): ("/invitations/forged-token", PUBLIC, {}),
    ("health.up", "GET"): ("/up", PUBLIC, None),
    ("catalog.index", "GET"): ("/templates", WORKSPACE, None),
    ("generation.write", "GET"): ("/write/x-post", WORKSPACE, None),
    ("generation.write", "POST"): ("/write/x-post", WORKSPACE, {"variant_count": "9"}),
    ("history.index", "GET"): ("/history", WORKSPACE, None),
    ("generation.show", "GET"): ("/generations/{generation}", TEAM_OBJECT, None),
    ("generation.stream", "GET"): ("/generations/{generation}/stream", TEAM_OBJECT, None),
    ("generation.variants", "GET"): ("/generations/{generation}/variants", TEAM_OBJECT, None),
    ("generation.regenerate", "POST"): ("/generations/{generation}/regenerate", TEAM_OBJECT, {}),
    ("generation.variant", "GET"): ("/variants/{variant}", TEAM_OBJECT, None),
    ("generation.edit", "GET"): ("/variants/{variant}/edit", TEAM_OBJECT, None),
    ("generation.edit", "POST"): ("/variants/{variant}/edit", TEAM_OBJECT, {"text": "Edited"}),
    ("generation.favourite", "POST"): ("/variants/{variant}/favourite", TEAM_OBJECT, {}),
    ("generation.rate", "POST"): ("/variants/{variant}/rate", TEAM_OBJECT, {"value": "up"}),
    ("generation.more", "POST"): ("/variants/{variant}/more", TEAM_OBJECT, {}),
    ("generation.delete", "POST"): ("/variants/{deletable_variant}/delete", TEAM_OBJECT, {}),
    ("brand.index", "GET"): ("/brand-voices", WORKSPACE, None),
    ("brand.create", "GET"): ("/brand-voices/new", MANAGER, None),
    ("brand.create", "POST"): ("/brand-voices/new", MANAGER, {"name": ""}),
    ("brand.edit", "GET"): ("/brand-voices/{voice}/edit", TEAM_MANAGER, None),
    ("brand.edit", "POST"): ("/brand-voices/{voice}/edit", TEAM_MANAGER, {"name": ""}),
    ("brand.delete", "POST"): ("/brand-voices/{deletable_voice}/delete", TEAM_MANAGER, {}),
    ("projects.index", "GET"): ("/projects", WORKSPACE, None),
    ("projects.index", "POST"): ("/projects", WORKSPACE, {"name": ""}),
    ("projects.show", "GET"): ("/projects/{project}", TEAM_OBJECT, None),
    ("projects.delete", "POST"): ("/projects/{deletable_project}/delete", (L, F, A, A, N, N), {}),
    ("projects.file_variant", "POST"): ("/variants/{variant}/file", TEAM_OBJECT, {"project_id": "{project}"}),
    ("projects.remove_item", "POST"): ("/projects/{item_project}/items/{item}/remove", TEAM_OBJECT, {}),
    ("teams.members", "GET"): ("/workspace/members", WORKSPACE, None),
    ("teams.invite", "POST"): ("/workspace/invitations", MANAGER, {"email": "bad"}),
    ("teams.resend", "POST"): ("/workspace/invitations/{invitation}/resend", TEAM_MANAGER, {}),
    ("teams.revoke", "POST"): ("/workspace/invitations/{invitation}/revoke", TEAM_MANAGER, {}),
    ("teams.change_role", "POST"): ("/workspace/members/{member_membership}/role", TEAM_MANAGER, {"role": "member"}),
    ("teams.set_cap", "POST"): ("/workspace/members/{member_membership}/cap", TEAM_MANAGER, {"cap": "2"}),
    ("teams.remove", "POST"): ("/workspace/members/{owner_membership}/remove", TEAM_MANAGER, {}),
    ("teams.transfer", "POST"): ("/workspace/transfer", OWNER, {"membership_id": "0"}),
    ("teams.settings", "GET"): ("/workspace/settings", WORKSPACE, None),
    ("teams.settings", "POST"): ("/workspace/settings", OWNER, {"ws-name": ""}),
    ("teams.delete", "POST"): ("/workspace/delete", OWNER, {"del-confirm_name": "not the name"}),
    ("teams.switch", "POST"): ("/workspaces/switch", TEAM_OBJECT, {"workspace_id": "{workspace}"}),
    ("teams.create", "POST"): ("/workspaces/new", WORKSPACE, {"new-name": ""}),
    ("teams.usage_page", "GET"): ("/workspace/usage", WORKSPACE, None),
    ("teams.usage_csv", "GET"): ("/workspace/usage.csv", MANAGER, None),
    ("billing.index", "GET"): ("/billing", OWNER, None),
    ("billing.checkout", "POST"): ("/billing/checkout", OWNER, {"plan": "pro", "seats": "1"}),
    ("billing.success", "GET"): ("/billing/success?session_id=cs_x", OWNER, None),
    ("billing.portal", "POST"): ("/billing/portal", OWNER, {}),
    ("billing.seats_preview", "GET"): ("/billing/seats/preview?seats=2", OWNER, None),
    ("billing.change_seats", "POST"): ("/billing/seats", OWNER, {"seats": "2"}),
    # Stripe's webhook: no session, verified by signature; with billing off (here) it does not exist.
    ("billing.webhook", "POST"): ("/billing/webhook", (N,) * 6, {}),
    # Last: these end the visitor's membership or session.
    ("teams.leave", "POST"): ("/workspace/leave", WORKSPACE, {}),
    ("auth.logout", "POST"): ("/logout", PUBLIC, {}),  # to /login either way
}
NOT_IN_MATRIX = {("static", "GET")}  # public files


def _outcome(response) -> str:
    if response.status_code == 302 and "/login" in response.headers.get("Location", ""):
        return L
    return {403: F, 404: N}.get(response.status_code, A)


def test_every_route_is_in_the_matrix(app):
    routes = {(rule.endpoint, method) for rule in app.url_map.iter_rules()
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - NOT_IN_MATRIX == set(MATRIX)


@pytest.fixture
def visitors(app, team, run_worker, make_user):
    team.add("member@example.com", "member")
    team.add("admin@example.com", "admin")
    owner = team.client("owner@example.com")
    generation = submit(owner, app, "x-post", 1)
    deletable = submit(owner, app, "x-post", 3)
    run_worker()
    make_user("other@example.com")
    site_admin_id = make_user("root@example.com")
    member_membership = team.membership_id("member@example.com")
    owner_membership = team.membership_id("owner@example.com")
    with app.app_context():
        db.session.get(User, site_admin_id).is_site_admin = True
        from app.generation.models import Variant
        variant_id = db.session.scalars(select(Variant.id).where(Variant.generation_id == generation)).one()
        deletable_variants = db.session.scalars(select(Variant.id).where(Variant.generation_id == deletable)).all()
        voices = [BrandVoice(workspace_id=team.workspace_id, name=f"Voice {i}") for i in range(3)]
        projects = [Project(workspace_id=team.workspace_id, name=f"P{i}") for i in range(6)]
        db.session.add_all(voices + projects)
        db.session.flush()
        # Project 0 for reading; 1-2 to delete; 3-5 each hold an item to remove.
        items = [ProjectItem(project_id=projects[i].id, variant_id=variant_id) for i in (0, 3, 4, 5)]
        db.session.add_all(items)
        invitation = Invitation(workspace_id=team.workspace_id, email="invitee@example.com", role="member",
                                expires_at=__import__("datetime").datetime(2099, 1, 1))
        db.session.add(invitation)
        db.session.commit()
        ids = {
            "workspace": team.workspace_id, "generation": generation, "variant": variant_id,
            "voice": voices[0].id, "project": projects[0].id, "invitation": invitation.id,
            "member_membership": member_membership, "owner_membership": owner_membership,
            "per_role": {
                "member": {"deletable_variant": deletable_variants[0], "deletable_voice": voices[1].id,
                           "deletable_project": projects[1].id, "item": items[1].id,
                           "item_project": projects[3].id},
                "admin": {"deletable_variant": deletable_variants[1], "deletable_voice": voices[1].id,
                          "deletable_project": projects[1].id, "item": items[2].id,
                          "item_project": projects[4].id},
                "owner": {"deletable_variant": deletable_variants[2], "deletable_voice": voices[2].id,
                          "deletable_project": projects[2].id, "item": items[3].id,
                          "item_project": projects[5].id},
            },
        }
    clients = {"anon": app.test_client(), "member": team.client("member@example.com"),
               "admin": team.client("admin@example.com"), "owner": owner}
    for role, address in (("other", "other@example.com"), ("site_admin", "root@example.com")):
        client = app.test_client()
        assert client.post("/login", data={"email": address, "password": "correct-horse-battery"}).status_code == 302
        clients[role] = client
    return clients, ids


def test_authorization_matrix(app, visitors):
    app.config["RATELIMIT_ENABLED"] = False
    clients, ids = visitors
    failures = []
    for (endpoint, method), (url, expected, data) in MATRIX.items():
        for role, want in zip(ROLES, expected):
            values = {**{k: v for k, v in ids.items() if k != "per_role"},
                      **ids["per_role"].get(role, ids["per_role"]["owner"])}
            target = url.format(**values)
            form = {k: str(v).format(**values) for k, v in (data or {}).items()}
            response = clients[role].open(target, method=method, data=form if method == "POST" else None)
            healthy_or_not = endpoint == "health.up" and response.status_code == 503  # no worker running here
            assert response.status_code < 500 or healthy_or_not, (endpoint, method, role, response.status_code)
            got = _outcome(response)
            if want == P:
                ok = got == A or (got == L and endpoint == "auth.logout")
            else:
                ok = got == want
            if not ok:
                failures.append(f"{method} {target} as {role}: expected {want}, got {got} ({response.status_code})")
            if got == N:
                body = response.get_data(as_text=True)
                assert "Variant copy for" not in body and "Voice 0" not in body, (endpoint, role)
    assert not failures, "\n".join(failures)
