"""Who sees what: region scope, shares, counts-only leaders, separated administrators, clearances.

Every test has a user in scope, a colleague and an outsider (the demo accounts of conftest.py).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shouhu.audit.models import Action, AuditEvent
from shouhu.org.models import Organization, Region, Role, User, UserRole
from shouhu.registry.demo import DEMO_PASSWORD
from shouhu.registry.models import Child, ChildShare
from shouhu.registry.selectors import children_visible_to

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client(REMOTE_ADDR="10.0.1.7")
    client.force_login(user)
    return client


def _detail(child: Child) -> str:
    return reverse("registry:child_detail", args=[child.pk])


def _api(child: Child) -> str:
    return f"/api/v1/children/{child.pk}"


def _other_village(village: Region) -> Region:
    other = Region.objects.filter(parent=village.parent, level=5).exclude(code=village.code).order_by("code").first()
    assert other is not None
    return other


def _share(child: Child, organization: Organization, *, expires_at: Any = None) -> ChildShare:
    return ChildShare.objects.create(child=child, organization=organization, reason="转介", expires_at=expires_at)


# ----- region scope ------------------------------------------------------------------------------


def test_village_director_cannot_see_other_village(users, hutang_village, make_child):
    child = make_child(hutang_village, name="湖塘娃")
    outsider = users["village_niutang"]
    client = _client(outsider)

    assert client.get(_detail(child)).status_code == 404
    assert client.get(_api(child)).status_code == 404
    assert client.get(reverse("registry:child_edit", args=[child.pk])).status_code == 404
    assert "湖塘娃" not in client.get(reverse("registry:ledger")).content.decode()
    denied = AuditEvent.objects.filter(action=Action.DENIED, actor_id=outsider.pk, object_id=str(child.pk))
    assert denied.count() == 3  # the page, the API and the edit page: every refusal is on record

    # ... while the village's own director sees the child.
    assert _client(users["village_hutang"]).get(_detail(child)).status_code == 200


def test_village_director_cannot_see_a_neighbouring_village_of_the_same_town(users, hutang_village, make_child):
    neighbour = make_child(_other_village(hutang_village), name="邻村娃")
    assert _client(users["village_hutang"]).get(_detail(neighbour)).status_code == 404


def test_a_missing_child_and_a_child_out_of_scope_answer_the_same(users, hutang_village, make_child):
    child = make_child(hutang_village)
    client = _client(users["village_niutang"])
    missing_url = reverse("registry:child_detail", args=["00000000-0000-4000-8000-000000000000"])
    hidden, missing = client.get(_detail(child)), client.get(missing_url)
    assert hidden.status_code == missing.status_code == 404
    assert _neutral(hidden.content, _detail(child)) == _neutral(missing.content, missing_url)


def _neutral(content: bytes, url: str) -> bytes:
    """The page without its CSRF tokens (new on every response), its print header's minute (two
    requests may straddle one) and its own URL."""
    content = content.replace(url.encode(), b"URL")
    content = re.sub(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", b"TIME", content)
    return re.sub(rb'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]*', rb"\1", content)


def test_town_supervisor_sees_the_whole_town(users, hutang_village, niutang_village, make_child):
    here = make_child(hutang_village, name="湖塘甲")
    there = make_child(_other_village(hutang_village), name="湖塘乙")
    elsewhere = make_child(niutang_village, name="牛塘丙")
    supervisor = users["town_hutang"]
    client = _client(supervisor)

    assert client.get(_detail(here)).status_code == 200
    assert client.get(_detail(there)).status_code == 200
    assert client.get(reverse("registry:child_edit", args=[there.pk])).status_code == 200
    assert client.get(_detail(elsewhere)).status_code == 404
    visible = children_visible_to(supervisor)
    assert set(visible.filter(pk__in=[here.pk, there.pk, elsewhere.pk])) == {here, there}
    assert all(c.region_id.startswith("320412100") for c in visible)
    # The supervisor's ledger lists the whole town, by any of its villages.
    page = client.get(reverse("registry:ledger"), {"status": "all", "sort": "updated"}).content.decode()
    assert "湖塘甲" in page and "湖塘乙" in page and "牛塘丙" not in page


def test_district_sees_all(users, hutang_village, niutang_village, make_child):
    children = [make_child(hutang_village), make_child(niutang_village)]
    client = _client(users["district"])
    for child in children:
        assert client.get(_detail(child)).status_code == 200
        assert client.get(_api(child)).status_code == 200
    assert children_visible_to(users["district"]).count() == Child.objects.count()
    assert client.get("/api/v1/children", {"status": "all"}).json()["count"] == Child.objects.count()


# ----- member units and shares -------------------------------------------------------------------


def test_member_unit_sees_nothing_until_a_child_is_shared_then_reads_only(users, hutang_village, make_child):
    child = make_child(hutang_village, name="共享娃")
    staff = users["education"]
    client = _client(staff)

    assert children_visible_to(staff).count() == 0
    assert client.get(reverse("registry:ledger")).status_code == 200
    assert client.get("/api/v1/children", {"status": "all"}).json()["count"] == 0
    assert client.get(_detail(child)).status_code == 404
    assert client.get(_api(child)).status_code == 404

    _share(child, staff.organization)
    assert list(children_visible_to(staff)) == [child]
    assert client.get(_detail(child)).status_code == 200
    assert client.get(_api(child)).json()["name"] == "共享娃"
    assert "共享娃" in client.get(reverse("registry:ledger")).content.decode()
    assert client.get("/api/v1/children").json()["count"] == 1
    # Read-only: member units hold no edit capability at all.
    assert client.get(reverse("registry:child_edit", args=[child.pk])).status_code == 403
    assert (
        client.patch(_api(child), {"version": child.version, "note": "x"}, content_type="application/json").status_code
        == 403
    )
    # The share is with the organisation, not with the unit's other sub-organisations.
    assert _client(users["school_hutang"]).get(_detail(child)).status_code == 404


def test_a_shared_child_is_read_only_even_for_a_role_that_edits(users, hutang_village, make_child):
    """A share opens the record to read; editing needs the child in the actor's own regions (404)."""
    child = make_child(hutang_village)
    director = users["village_niutang"]
    _share(child, director.organization)
    client = _client(director)

    assert client.get(_detail(child)).status_code == 200
    assert client.get(reverse("registry:child_edit", args=[child.pk])).status_code == 404
    assert client.post(reverse("registry:child_exit", args=[child.pk]), {}).status_code == 404
    assert client.post(reverse("registry:unmask", args=[child.pk]), {"field": "child.id_number"}).status_code == 404
    assert (
        client.patch(_api(child), {"version": child.version, "note": "x"}, content_type="application/json").status_code
        == 404
    )
    child.refresh_from_db()
    assert child.version == 1
    assert AuditEvent.objects.filter(
        action=Action.DENIED, actor_id=director.pk, object_id=str(child.pk), detail__why="shared_read_only"
    ).exists()


def test_an_expired_share_grants_nothing(users, hutang_village, make_child):
    child = make_child(hutang_village)
    staff = users["police"]
    _share(child, staff.organization, expires_at=timezone.now() - timedelta(minutes=1))
    client = _client(staff)
    assert children_visible_to(staff).count() == 0
    assert client.get(_detail(child)).status_code == 404
    assert client.get(_api(child)).status_code == 404

    ChildShare.objects.filter(child=child).update(expires_at=timezone.now() + timedelta(days=1))
    assert _client(staff).get(_detail(child)).status_code == 200


# ----- leaders: numbers only ---------------------------------------------------------------------


def test_leader_gets_counts_only(users, hutang_village, make_child):
    child = make_child(hutang_village, name="统计娃")
    client = _client(users["leader"])

    stats = client.get(reverse("stats"))
    assert stats.status_code == 200
    html = stats.content.decode()
    total = Child.objects.filter(status="active").count()
    assert f">{total}<" in html  # the district total
    assert "湖塘镇" in html
    assert "统计娃" not in html and "/children/" not in html
    names = set(Child.objects.values_list("name", flat=True))
    assert not [name for name in names if name in html]
    home = client.get(reverse("home")).content.decode()
    assert not [name for name in names if name in home]

    assert client.get(reverse("registry:ledger")).status_code == 403
    assert client.get(_detail(child)).status_code == 403
    assert client.get("/api/v1/children").status_code == 403
    assert client.get(_api(child)).status_code == 403
    assert client.post("/api/v1/children/search", {"q": "统计娃"}, content_type="application/json").status_code == 403


# ----- separated administrators (三员分立) --------------------------------------------------------


def _cannot_read_children(client: Client, child: Child) -> None:
    assert client.get(reverse("registry:ledger")).status_code == 403
    assert client.get(_detail(child)).status_code == 403
    assert client.get("/api/v1/children").status_code == 403
    assert client.get(_api(child)).status_code == 403


def test_system_admin_manages_organisations_and_users_but_not_audit_or_children(users, hutang_village, make_child):
    child = make_child(hutang_village)
    client = _client(users["admin"])

    assert client.get(reverse("admin:org_organization_changelist")).status_code == 200
    assert client.get(reverse("admin:org_user_changelist")).status_code == 200
    response = client.post(
        reverse("admin:org_organization_add"),
        {
            "name": "武进区示例社工站",
            "short_name": "",
            "kind": "social_work",
            "code": "",
            "parent": "",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    org = Organization.objects.get(name="武进区示例社工站")
    assert AuditEvent.objects.filter(
        action=Action.ADMIN_CHANGE, actor_id=users["admin"].pk, object_id=str(org.pk)
    ).exists()

    assert client.get(reverse("audit:log")).status_code == 403
    _cannot_read_children(client, child)
    # Neither the audit log nor the ledger is in the admin at all.
    assert client.get("/admin/audit/auditevent/").status_code == 404
    assert client.get("/admin/registry/child/").status_code == 404


def test_administrator_sent_to_log_in_from_the_admin_lands_in_the_admin(users):
    client = Client(REMOTE_ADDR="10.0.1.8")
    response = client.get(reverse("admin:index"), follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    login_url = response.redirect_chain[-1][0]
    next_url = login_url.split("next=", 1)[1]
    response = client.post(
        login_url, {"username": "admin", "password": DEMO_PASSWORD, "next": unquote(next_url)}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:index")


def test_system_admin_cannot_grant_roles(users):
    leader = users["leader"]
    client = _client(users["admin"])
    client.post(reverse("admin:org_user_change", args=[leader.pk]), _role_formset(leader, add=Role.DISTRICT_OFFICER))
    assert set(UserRole.objects.filter(user=leader).values_list("role", flat=True)) == {Role.LEADER}


def _role_formset(user: User, *, add: str) -> dict[str, str]:
    roles = list(UserRole.objects.filter(user=user).order_by("id"))
    data = {
        "username": user.username,
        "full_name": user.full_name,
        "organization": str(user.organization_id or ""),
        "email": "",
        "is_active": "on",
        "roles-TOTAL_FORMS": str(len(roles) + 1),
        "roles-INITIAL_FORMS": str(len(roles)),
        "roles-MIN_NUM_FORMS": "0",
        "roles-MAX_NUM_FORMS": "1000",
    }
    for i, role in enumerate(roles):
        data |= {f"roles-{i}-id": str(role.pk), f"roles-{i}-user": str(user.pk), f"roles-{i}-role": role.role}
    n = len(roles)
    data |= {f"roles-{n}-id": "", f"roles-{n}-user": str(user.pk), f"roles-{n}-role": add}
    return data


def test_security_admin_edits_roles_and_nothing_else(users, hutang_village, make_child):
    child = make_child(hutang_village)
    leader = users["leader"]
    security = users["security"]
    client = _client(security)

    response = client.post(
        reverse("admin:org_user_change", args=[leader.pk]), _role_formset(leader, add=Role.UNIT_STAFF)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert set(UserRole.objects.filter(user=leader).values_list("role", flat=True)) == {Role.LEADER, Role.UNIT_STAFF}
    event = AuditEvent.objects.get(action=Action.ROLE_CHANGE, actor_id=security.pk, object_id=str(leader.pk))
    assert event.detail["added"] == [Role.UNIT_STAFF]

    assert client.get(reverse("admin:org_organization_changelist")).status_code == 403
    assert client.get(reverse("admin:org_user_add")).status_code == 403
    assert client.get(reverse("admin:auth_user_password_change", args=[leader.pk])).status_code == 403
    assert client.get(reverse("audit:log")).status_code == 403
    _cannot_read_children(client, child)


def test_audit_admin_reads_the_audit_log_but_no_child_data(users, hutang_village, make_child):
    child = make_child(hutang_village, name="审计娃")
    _client(users["village_hutang"]).get(_detail(child))  # a view to be audited
    client = _client(users["auditor"])

    log = client.get(reverse("audit:log"), {"action": "view"})
    assert log.status_code == 200
    html = log.content.decode()
    assert "village_hutang" in html and str(child.pk) in html
    assert "审计娃" not in html  # events name objects by id, never by a child's name
    _cannot_read_children(client, child)
    admin = client.get(reverse("admin:index"), follow=True)
    assert admin.status_code == 403


# ----- sensitivity labels ------------------------------------------------------------------------


def _child_with_imprisoned_father(region: Region, actor: User) -> Child:
    from shouhu.lib.idnumber import make_id_number, parse_id_number
    from shouhu.registry import services

    id_number = make_id_number("320481", date(2013, 9, 1), 777)
    info = parse_id_number(id_number)
    return services.child_create(
        actor=actor,
        data={
            "name": "司法娃",
            "id_number": id_number,
            "gender": info.gender,
            "birth_date": info.birth_date,
            "region": region,
            "school_stage": "primary",
            "ethnicity": "汉族",
            "hukou_type": "rural",
            "health": "healthy",
            "guardianship_type": "parent_incapable",
        },
        household={"address": "武进区湖塘镇示例路2号"},
        members=[
            {
                "relation": "father",
                "name": "司大山",
                "is_guardian": True,
                "capacity": "none",
                "situations": [{"kind": "imprisoned", "since": date(2021, 6, 1)}],
            },
            {
                "relation": "mother",
                "name": "林小芳",
                "is_guardian": True,
                "capacity": "full",
                "situations": [{"kind": "out_for_work", "since": date(2022, 2, 1)}],
            },
        ],
    )


def _father(detail: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in detail["family"] if m["relation"] == "father")


def test_imprisoned_parent_is_hidden_without_clearance(users, hutang_village):
    child = _child_with_imprisoned_father(hutang_village, users["village_hutang"])
    staff = users["police_hutang"]  # unit staff: no judicial clearance
    _share(child, staff.organization)
    cleared, uncleared = _client(users["village_hutang"]), _client(staff)

    for tab in ("family", "history"):
        seen = cleared.get(_detail(child), {"tab": tab}).content.decode()
        hidden = uncleared.get(_detail(child), {"tab": tab}).content.decode()
        assert "服刑在押" in seen, tab
        assert "服刑在押" not in hidden and "imprisoned" not in hidden, tab
    assert "外出务工" in uncleared.get(_detail(child), {"tab": "family"}).content.decode()
    assert "受限信息" in uncleared.get(_detail(child), {"tab": "family"}).content.decode()

    father = _father(uncleared.get(_api(child)).json())
    assert [s["kind"] for s in father["situations"]] == [] and father["restricted_situations"] == 1
    father = _father(cleared.get(_api(child)).json())
    assert [s["kind"] for s in father["situations"]] == ["imprisoned"] and father["restricted_situations"] == 0


def test_policy_explanations_quoting_a_judicial_fact_are_hidden_without_clearance(users, hutang_village):
    """The engine's explanations quote the facts ("父亲服刑在押 …"): withheld like the facts themselves."""
    from shouhu.policy.models import CATEGORY_CHOICES, Proposal

    child = _child_with_imprisoned_father(hutang_village, users["village_hutang"])
    Proposal.objects.create(
        child=child,
        kind="add",
        code=CATEGORY_CHOICES[0][0],
        as_of=date.today(),
        explanation="父亲服刑在押（2021-06-01 起，已满6个月）",
    )
    staff = users["police_hutang"]
    _share(child, staff.organization)
    url = reverse("policy:child", args=[child.pk])

    assert "服刑在押" in _client(users["village_hutang"]).get(url).content.decode()
    hidden = _client(staff).get(url)
    assert hidden.status_code == 200
    assert "服刑在押" not in hidden.content.decode() and "受限信息" in hidden.content.decode()


def test_task_detail_quoting_a_judicial_fact_is_hidden_without_clearance(users, hutang_village):
    from shouhu.tasks.models import Task

    child = _child_with_imprisoned_father(hutang_village, users["village_hutang"])
    for username in ("police_hutang", "village_hutang"):
        Task.objects.create(
            owner=users[username].organization,
            child=child,
            kind="entitlement_gap",
            title="落实待遇",
            detail="父亲服刑在押，母亲外出务工",
            due_at=timezone.now() + timedelta(days=5),
            source_type="test",
            source_id=username,
        )
    hidden = _client(users["police_hutang"]).get(reverse("tasks:inbox")).content.decode()
    assert "落实待遇" in hidden and "服刑在押" not in hidden
    assert "服刑在押" in _client(users["village_hutang"]).get(reverse("tasks:inbox")).content.decode()


# ----- the project's own lint --------------------------------------------------------------------


def test_no_bare_child_manager_in_views_or_api():
    """Reads go through `children_visible_to` / `child_get_for`, never `Child.objects`, in a view or the API."""
    root = Path(__file__).resolve().parents[2]  # the shouhu package
    files = [p for p in root.rglob("*.py") if p.name in {"views.py", "api.py"} or "views" in p.parent.parts]
    assert any(p.name == "views.py" for p in files) and any(p.name == "api.py" for p in files)
    offenders = [
        f"{p.relative_to(root.parent)}:{n}"
        for p in files
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "Child.objects" in line or "Child._default_manager" in line
    ]
    assert offenders == []
