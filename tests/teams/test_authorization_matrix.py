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
from app.catalog import tasks as test_runs
from app.catalog import versions
from tests.generation.helpers import submit


def template_data(slug: str) -> dict:
    """A small valid template in the data format."""
    return {"slug": slug, "name": f"Template {slug}", "category": "Ads", "description": "For the matrix",
            "fields": [{"name": "topic", "label": "Topic", "type": "text", "required": True}],
            "output": {"variants": 1, "max_chars": 200, "format": "single"},
            "system_prompt": "You write ads in {{ language }}.", "user_prompt": "Topic: {{ topic }}"}

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
SITE_ADMIN = (L, F, F, F, F, A)     # site admins only, whatever their workspace role
SITE_ADMIN_MISSING = (L, F, F, F, F, N)  # site admins only; the id does not exist
OWN_JOB = (L, F, A, N, N, N)        # a workspace test run: only the team admin who started it
OWNERS_RUN = (L, N, A, A, N, N)     # a bulk run the owner started: managers see every run, members their own
NO_COOKIES = (A,) * 6               # /api/v1: a 401 for every visitor, signed in or not

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
    ("health.ready", "GET"): ("/up/ready", PUBLIC, None),
    ("health.metrics", "GET"): ("/metrics", PUBLIC, None),  # the test client calls from loopback
    ("catalog.index", "GET"): ("/templates", WORKSPACE, None),
    ("generation.write", "GET"): ("/write/x-post", WORKSPACE, None),
    ("generation.write", "POST"): ("/write/x-post", WORKSPACE, {"variant_count": "9"}),
    ("history.index", "GET"): ("/history", WORKSPACE, None),
    ("generation.show", "GET"): ("/generations/{generation}", TEAM_OBJECT, None),
    ("exports.generation", "GET"): ("/generations/{generation}/export.csv", TEAM_OBJECT, None),
    # Another workspace's ids are simply not there: a redirect back to History with a message, no data.
    ("exports.history", "GET"): ("/history/export?format=csv&ids={generation}", WORKSPACE, None),
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
    # issue 14: a usable variant is not refundable (422), a single block has no lines to star (422),
    # a finished generation has nothing to stop (302 back to it).
    ("generation.refund", "POST"): ("/variants/{variant}/refund", TEAM_OBJECT, {}),
    ("generation.favourite_item", "POST"): ("/variants/{variant}/items/0/favourite", TEAM_OBJECT, {}),
    ("generation.stop", "POST"): ("/generations/{generation}/stop", TEAM_OBJECT, {}),
    ("brand.index", "GET"): ("/brand-voices", WORKSPACE, None),
    ("brand.create", "GET"): ("/brand-voices/new", MANAGER, None),
    ("brand.create", "POST"): ("/brand-voices/new", MANAGER, {"name": ""}),
    ("brand.edit", "GET"): ("/brand-voices/{voice}/edit", TEAM_MANAGER, None),
    ("brand.edit", "POST"): ("/brand-voices/{voice}/edit", TEAM_MANAGER, {"name": ""}),
    ("brand.delete", "POST"): ("/brand-voices/{deletable_voice}/delete", TEAM_MANAGER, {}),
    ("knowledge.index", "GET"): ("/knowledge", WORKSPACE, None),
    ("knowledge.create", "GET"): ("/knowledge/new", MANAGER, None),
    ("knowledge.create", "POST"): ("/knowledge/new", MANAGER, {"title": ""}),
    ("knowledge.upload", "GET"): ("/knowledge/upload", MANAGER, None),
    ("knowledge.upload", "POST"): ("/knowledge/upload", MANAGER, {}),
    ("knowledge.show", "GET"): ("/knowledge/{knowledge_item}", TEAM_OBJECT, None),
    ("knowledge.edit", "GET"): ("/knowledge/{knowledge_item}/edit", TEAM_MANAGER, None),
    ("knowledge.edit", "POST"): ("/knowledge/{knowledge_item}/edit", TEAM_MANAGER, {"title": ""}),
    ("knowledge.archive", "POST"): ("/knowledge/{knowledge_item}/archive", TEAM_MANAGER, {}),
    ("knowledge.delete", "POST"): ("/knowledge/{deletable_knowledge}/delete", TEAM_MANAGER, {}),
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
    ("checks.style_guide", "GET"): ("/workspace/style-guide", WORKSPACE, None),
    ("checks.add_entry", "POST"): ("/workspace/style-guide/entries", MANAGER, {"e-kind": "banned", "e-phrase": ""}),
    ("checks.remove_entry", "POST"): ("/workspace/style-guide/entries/{style_entry}/delete", TEAM_MANAGER, {}),
    ("checks.save_settings", "POST"): ("/workspace/style-guide/settings", MANAGER, {"s-flag_action": "nope"}),
    ("checks.voice_grade", "POST"): ("/workspace/style-guide/voices/{voice}", TEAM_MANAGER, {"v-max_grade": "99"}),
    ("checks.mark_checked", "POST"): ("/variants/{variant}/checked", TEAM_OBJECT, {}),
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
    # Workspace templates: owners and admins, and only their own workspace's templates.
    ("workspace_templates.index", "GET"): ("/workspace/templates", MANAGER, None),
    ("workspace_templates.new", "GET"): ("/workspace/templates/new", MANAGER, None),
    ("workspace_templates.new", "POST"): ("/workspace/templates/new", MANAGER, {"name": ""}),
    ("workspace_templates.preview", "POST"): ("/workspace/templates/preview", MANAGER, {"user_prompt": "Hi"}),
    ("workspace_templates.test_run", "POST"): ("/workspace/templates/test-run", MANAGER, {}),
    ("workspace_templates.test_result", "GET"): ("/workspace/templates/test-runs/{ws_job}", OWN_JOB, None),
    ("workspace_templates.edit", "GET"): ("/workspace/templates/{ws_template}/edit", TEAM_MANAGER, None),
    ("workspace_templates.edit", "POST"): ("/workspace/templates/{ws_template}/edit", TEAM_MANAGER, {"name": ""}),
    ("workspace_templates.versions", "GET"): ("/workspace/templates/{ws_template}/versions", TEAM_MANAGER, None),
    ("workspace_templates.compare", "GET"): ("/workspace/templates/{ws_template}/compare?a=1&b=2", TEAM_MANAGER, None),
    ("workspace_templates.export", "GET"): ("/workspace/templates/{ws_template}/export", TEAM_MANAGER, None),
    ("workspace_templates.publish", "POST"): ("/workspace/templates/{ws_template}/versions/1/publish", TEAM_MANAGER, {}),
    ("workspace_templates.unpublish", "POST"): ("/workspace/templates/{ws_template}/unpublish", TEAM_MANAGER, {}),
    # Team -> Webhooks (the team is on Pro: managers get the upgrade page, 402, and change nothing).
    ("bulk.index", "GET"): ("/bulk", WORKSPACE, None),
    ("bulk.upload", "GET"): ("/bulk/new/x-post", WORKSPACE, None),
    ("bulk.upload", "POST"): ("/bulk/new/x-post", WORKSPACE, {}),
    ("bulk.mapping", "GET"): ("/bulk/{bulk_run}/map", OWNERS_RUN, None),
    ("bulk.mapping", "POST"): ("/bulk/{bulk_run}/map", OWNERS_RUN, {}),
    ("bulk.check", "GET"): ("/bulk/{bulk_run}/check", OWNERS_RUN, None),
    ("bulk.check", "POST"): ("/bulk/{bulk_run}/check", OWNERS_RUN, {}),
    ("bulk.errors", "GET"): ("/bulk/{bulk_run}/errors.csv", OWNERS_RUN, None),
    ("bulk.show", "GET"): ("/bulk/{bulk_run}", OWNERS_RUN, None),
    ("bulk.progress", "GET"): ("/bulk/{bulk_run}/progress", OWNERS_RUN, None),
    ("bulk.steer", "POST"): ("/bulk/{bulk_run}/pause", OWNERS_RUN, {}),
    ("bulk.results", "GET"): ("/bulk/{bulk_run}/results.csv", OWNERS_RUN, None),
    ("webhooks.index", "GET"): ("/workspace/webhooks", MANAGER, None),
    ("webhooks.create", "POST"): ("/workspace/webhooks", MANAGER, {"url": ""}),
    ("webhooks.show", "GET"): ("/workspace/webhooks/{hook}", TEAM_MANAGER, None),
    ("webhooks.update", "POST"): ("/workspace/webhooks/{hook}/settings", TEAM_MANAGER, {"url": ""}),
    ("webhooks.rotate", "POST"): ("/workspace/webhooks/{hook}/rotate", TEAM_MANAGER, {}),
    ("webhooks.send_test", "POST"): ("/workspace/webhooks/{hook}/test", TEAM_MANAGER, {}),
    ("webhooks.redeliver", "POST"): ("/workspace/webhooks/{hook}/deliveries/{hook_delivery}/redeliver",
                                     TEAM_MANAGER, {}),
    ("webhooks.delete", "POST"): ("/workspace/webhooks/{deletable_hook}/delete", TEAM_MANAGER, {}),
    # The site admin console.
    ("admin.index", "GET"): ("/admin", SITE_ADMIN, None),
    ("template_admin.index", "GET"): ("/admin/templates", SITE_ADMIN, None),
    ("template_admin.new", "GET"): ("/admin/templates/new", SITE_ADMIN, None),
    ("template_admin.new", "POST"): ("/admin/templates/new", SITE_ADMIN, {"name": ""}),
    ("template_admin.preview", "POST"): ("/admin/templates/preview", SITE_ADMIN, {"user_prompt": "Hi"}),
    ("template_admin.test_run", "POST"): ("/admin/templates/test-run", SITE_ADMIN, {}),
    ("template_admin.test_result", "GET"): ("/admin/templates/test-runs/{site_job}", SITE_ADMIN, None),
    ("template_admin.edit", "GET"): ("/admin/templates/{site_template}/edit", SITE_ADMIN, None),
    ("template_admin.edit", "POST"): ("/admin/templates/{site_template}/edit", SITE_ADMIN, {"name": ""}),
    ("template_admin.versions", "GET"): ("/admin/templates/{site_template}/versions", SITE_ADMIN, None),
    ("template_admin.compare", "GET"): ("/admin/templates/{site_template}/compare?a=1&b=2", SITE_ADMIN, None),
    ("template_admin.export", "GET"): ("/admin/templates/{site_template}/export", SITE_ADMIN, None),
    ("template_admin.publish", "POST"): ("/admin/templates/{site_template}/versions/1/publish", SITE_ADMIN, {}),
    ("template_admin.unpublish", "POST"): ("/admin/templates/{site_template}/unpublish", SITE_ADMIN, {}),
    ("admin.import_templates", "GET"): ("/admin/templates/import", SITE_ADMIN, None),
    ("admin.import_templates", "POST"): ("/admin/templates/import", SITE_ADMIN, {}),
    ("admin.export_templates", "GET"): ("/admin/templates/export.zip", SITE_ADMIN, None),
    ("admin.template_stats", "GET"): ("/admin/templates/stats?days=30", SITE_ADMIN, None),
    ("admin.users", "GET"): ("/admin/users?q=example", SITE_ADMIN, None),
    ("admin.user", "GET"): ("/admin/users/{victim}", SITE_ADMIN, None),
    ("admin.suspend", "POST"): ("/admin/users/{victim}/suspend", SITE_ADMIN, {}),
    ("admin.reactivate", "POST"): ("/admin/users/{victim}/reactivate", SITE_ADMIN, {}),
    ("admin.site_admin", "POST"): ("/admin/users/{victim}/site-admin", SITE_ADMIN, {"grant": "1"}),
    ("admin.workspaces", "GET"): ("/admin/workspaces", SITE_ADMIN, None),
    ("admin.workspace", "GET"): ("/admin/workspaces/{workspace}", SITE_ADMIN, None),
    ("admin.workspace", "POST"): ("/admin/workspaces/{workspace}", SITE_ADMIN, {"plan": ""}),
    ("admin.llm", "GET"): ("/admin/llm", SITE_ADMIN, None),
    ("admin.llm", "POST"): ("/admin/llm", SITE_ADMIN, {"default_model": ""}),
    ("admin.llm_test", "POST"): ("/admin/llm/test", SITE_ADMIN, {}),
    ("admin.workspace_models", "POST"): ("/admin/llm/workspace-models", SITE_ADMIN, {"models": ""}),
    ("admin.queues_page", "GET"): ("/admin/queues", SITE_ADMIN, None),
    ("admin.failed_job", "GET"): ("/admin/queues/test-generations/failed/no-such-job", SITE_ADMIN_MISSING, None),
    ("admin.requeue", "POST"): ("/admin/queues/test-generations/failed/no-such-job/requeue", SITE_ADMIN, {}),
    ("admin.audit", "GET"): ("/admin/audit?action=user", SITE_ADMIN, None),
    # Team -> API keys (app/api): managers only; the revoke of a key that is not theirs is a 404.
    ("apikeys.index", "GET"): ("/workspace/api-keys", MANAGER, None),
    ("apikeys.index", "POST"): ("/workspace/api-keys", MANAGER, {"name": ""}),
    ("apikeys.revoke", "POST"): ("/workspace/api-keys/999999/revoke", (L, F, N, N, N, N), {}),
    # /api/v1: cookies never authenticate it, so every visitor gets a 401 problem (tests/api has the rest).
    **{(f"api_v1.{name}", method): (url, NO_COOKIES, {} if method == "POST" else None) for name, method, url in (
        ("templates_list", "GET", "/api/v1/templates"), ("templates_get", "GET", "/api/v1/templates/x-post"),
        ("generations_create", "POST", "/api/v1/generations"), ("generations_list", "GET", "/api/v1/generations"),
        ("generations_get", "GET", "/api/v1/generations/{generation}"),
        ("generations_stream", "GET", "/api/v1/generations/{generation}/stream"),
        ("variants_favourite", "POST", "/api/v1/variants/{variant}/favourite"),
        ("variants_rate", "POST", "/api/v1/variants/{variant}/rating"),
        ("variants_edit", "POST", "/api/v1/variants/{variant}/text"), ("usage", "GET", "/api/v1/usage"),
        ("bulk_runs_create", "POST", "/api/v1/bulk-runs"), ("bulk_runs_upload", "POST", "/api/v1/bulk-runs/upload"),
        ("bulk_runs_get", "GET", "/api/v1/bulk-runs/1"),
        ("bulk_runs_results_csv", "GET", "/api/v1/bulk-runs/1/results.csv"),
        ("bulk_runs_results_xlsx", "GET", "/api/v1/bulk-runs/1/results.xlsx"),
        ("webhook_endpoints_list", "GET", "/api/v1/webhook-endpoints"),
        ("webhook_endpoints_create", "POST", "/api/v1/webhook-endpoints"),
        ("webhook_endpoints_get", "GET", "/api/v1/webhook-endpoints/1"),
        ("webhook_endpoints_delete", "DELETE", "/api/v1/webhook-endpoints/1"),
        ("webhook_deliveries_list", "GET", "/api/v1/webhook-endpoints/1/deliveries"),
        ("webhook_deliveries_redeliver", "POST", "/api/v1/webhook-endpoints/1/deliveries/1/redeliver"))},
    **{("api_v1_fallback.not_found", method): ("/api/v1/no-such-thing", (N,) * 6, None)
       for method in ("GET", "POST", "PUT", "PATCH", "DELETE")},
    ("api-v1-api-docs.openapi_json", "GET"): ("/api/v1/openapi.json", PUBLIC, None),
    ("api_docs.docs", "GET"): ("/api/v1/docs", PUBLIC, None),
    # Last: these end the visitor's membership or session.
    ("teams.leave", "POST"): ("/workspace/leave", WORKSPACE, {}),
    ("auth.account", "GET"): ("/account", WORKSPACE, None),  # signed in; one's own sessions only
    ("auth.logout_others", "POST"): ("/account/logout-others", WORKSPACE, {}),
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
    team_admin_id = team.add("admin@example.com", "admin")
    owner = team.client("owner@example.com")
    generation = submit(owner, app, "x-post", 1)
    deletable = submit(owner, app, "x-post", 3)
    run_worker()
    make_user("other@example.com")
    site_admin_id = make_user("root@example.com")
    victim_id = make_user("victim@example.com")
    member_membership = team.membership_id("member@example.com")
    owner_membership = team.membership_id("owner@example.com")
    with app.app_context():
        db.session.get(User, site_admin_id).is_site_admin = True
        from app.generation.models import Variant
        variant_id = db.session.scalars(select(Variant.id).where(Variant.generation_id == generation)).one()
        deletable_variants = db.session.scalars(select(Variant.id).where(Variant.generation_id == deletable)).all()
        voices = [BrandVoice(workspace_id=team.workspace_id, name=f"Voice {i}") for i in range(3)]
        projects = [Project(workspace_id=team.workspace_id, name=f"P{i}") for i in range(6)]
        from app.knowledge.models import KnowledgeItem
        knowledge = [KnowledgeItem(workspace_id=team.workspace_id, kind="faq", title=f"K{i}", body="Fact", tags=[])
                     for i in range(3)]
        db.session.add_all(voices + projects + knowledge)
        db.session.flush()
        # Project 0 for reading; 1-2 to delete; 3-5 each hold an item to remove.
        items = [ProjectItem(project_id=projects[i].id, variant_id=variant_id) for i in (0, 3, 4, 5)]
        db.session.add_all(items)
        invitation = Invitation(workspace_id=team.workspace_id, email="invitee@example.com", role="member",
                                expires_at=__import__("datetime").datetime(2099, 1, 1))
        db.session.add(invitation)
        from app.checks.models import StyleEntry
        style_entries = [StyleEntry(workspace_id=team.workspace_id, kind="banned", phrase=f"w{i}", phrase_key=f"w{i}")
                         for i in range(3)]
        db.session.add_all(style_entries)
        db.session.commit()
        from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
        hooks = [WebhookEndpoint(workspace_id=team.workspace_id, url=f"https://example.com/{i}",
                                 events=["quota.exhausted"], secret=f"whsec_{i}") for i in range(3)]
        hook_event = WebhookEvent(public_id="evt_matrix", workspace_id=team.workspace_id, type="quota.exhausted",
                                  payload={})
        db.session.add_all(hooks + [hook_event])
        db.session.flush()
        hook_delivery = WebhookDelivery(workspace_id=team.workspace_id, event_id=hook_event.id,
                                        endpoint_id=hooks[0].id, status="failed")
        db.session.add(hook_delivery)
        db.session.commit()
        hook_ids, hook_delivery_id = [h.id for h in hooks], hook_delivery.id
        from app.bulk.models import BulkRun
        from app.catalog.services import get_published
        x_post = get_published("x-post")
        owner_user_id = db.session.get(Membership, owner_membership).user_id
        bulk_run = BulkRun(workspace_id=team.workspace_id, user_id=owner_user_id, template_id=x_post.id,
                           template_version_id=x_post.published_version_id, status="finished", filename="sheet.csv",
                           columns=["product"], mapping={}, total_rows=0)
        db.session.add(bulk_run)
        db.session.commit()
        bulk_run_id = bulk_run.id
        site_admin = db.session.get(User, site_admin_id)
        site_template = versions.create_template(template_data("matrix-site"), author=site_admin, workspace_id=None,
                                                 publish_now=True)
        db.session.commit()
        versions.save_version(site_template, template_data("matrix-site"), author=site_admin, message="v2",
                              publish_now=True)
        db.session.commit()
        ws_template = versions.create_template(template_data("matrix-team"), author=site_admin,
                                               workspace_id=team.workspace_id, publish_now=True)
        db.session.commit()
        versions.save_version(ws_template, template_data("matrix-team"), author=site_admin, message="v2",
                              publish_now=True)
        db.session.commit()
        payload = {"system_prompt": "s", "user_prompt": "u", "format": "single", "max_chars": None, "variants": 1}
        site_job = test_runs.enqueue(payload, user_id=site_admin_id, scope="template_admin")
        ws_job = test_runs.enqueue(payload, user_id=team_admin_id, scope="workspace_templates")
        ids = {
            "site_template": site_template.id, "ws_template": ws_template.id, "victim": victim_id,
            "site_job": site_job, "ws_job": ws_job,
            "workspace": team.workspace_id, "generation": generation, "variant": variant_id,
            "voice": voices[0].id, "project": projects[0].id, "invitation": invitation.id,
            "knowledge_item": knowledge[0].id,
            "member_membership": member_membership, "owner_membership": owner_membership,
            "hook": hook_ids[0], "hook_delivery": hook_delivery_id, "bulk_run": bulk_run_id,
            "per_role": {
                "member": {"deletable_variant": deletable_variants[0], "deletable_voice": voices[1].id,
                           "style_entry": style_entries[0].id, "deletable_knowledge": knowledge[1].id,
                           "deletable_project": projects[1].id, "item": items[1].id,
                           "item_project": projects[3].id},
                "admin": {"deletable_variant": deletable_variants[1], "deletable_voice": voices[1].id,
                          "style_entry": style_entries[1].id, "deletable_knowledge": knowledge[1].id,
                          "deletable_project": projects[1].id, "item": items[2].id,
                          "item_project": projects[4].id},
                "owner": {"deletable_variant": deletable_variants[2], "deletable_voice": voices[2].id,
                          "style_entry": style_entries[2].id, "deletable_knowledge": knowledge[2].id,
                          "deletable_project": projects[2].id, "item": items[3].id,
                          "item_project": projects[5].id},
            },
        }
    for role, index in (("member", 1), ("admin", 1), ("owner", 2)):  # members are refused; admin deletes 1
        ids["per_role"][role]["deletable_hook"] = hook_ids[index]
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
        for role, want in zip(ROLES, expected, strict=False):
            values = {**{k: v for k, v in ids.items() if k != "per_role"},
                      **ids["per_role"].get(role, ids["per_role"]["owner"])}
            target = url.format(**values)
            form = {k: str(v).format(**values) for k, v in (data or {}).items()}
            response = clients[role].open(target, method=method, data=form if method == "POST" else None)
            assert response.status_code < 500, (endpoint, method, role, response.status_code)
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
                assert "Template matrix-team" not in body, (endpoint, role)
    assert not failures, "\n".join(failures)
