"""Edit conflicts resolved knowingly, and identifiers masked in edit forms."""

from __future__ import annotations

import re

from django.urls import reverse

from shouhu.audit.models import AuditEvent
from shouhu.registry.tests.test_views import child_edit_post


def _version_in(html: str) -> str:
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def test_after_a_conflict_the_form_shows_what_changed_and_a_second_save_applies_the_users_text(
    client, users, hutang_village, make_child
):
    client.force_login(users["village_hutang"])
    child = make_child(hutang_village)
    url = reverse("registry:child_edit", args=[child.pk])
    assert client.post(url, child_edit_post(child, grade="三年级")).status_code == 302
    mine = child_edit_post(child, grade="四年级", note="家访时了解到的情况")  # typed at version 1
    refused = client.post(url, mine)
    assert refused.status_code == 409
    html = refused.content.decode()
    # The other person's value and the user's, side by side; the form now carries the newest version.
    assert "他人保存的值" in html and "三年级" in html and "四年级" in html
    assert _version_in(html) == "2"
    child.refresh_from_db()
    assert child.grade == "三年级"  # nothing written by the refused save
    again = client.post(url, {**mine, "version": _version_in(html)})
    assert again.status_code == 302
    child.refresh_from_db()
    assert (child.grade, child.note, child.version) == ("四年级", "家访时了解到的情况", 3)


def test_edit_form_masks_the_id_number_and_keeps_it_when_unchanged(client, users, hutang_village, make_child):
    client.force_login(users["village_hutang"])
    child = make_child(hutang_village)
    url = reverse("registry:child_edit", args=[child.pk])
    views_before = AuditEvent.objects.filter(action="unmask").count()
    html = client.get(url).content.decode()
    assert child.id_number not in html and child.id_number_masked in html
    response = client.post(url, child_edit_post(child, id_number=child.id_number_masked, grade="五年级"))
    assert response.status_code == 302
    child.refresh_from_db()
    assert child.grade == "五年级" and child.id_number_masked in html and len(child.id_number) == 18
    assert AuditEvent.objects.filter(action="unmask").count() == views_before


def test_member_form_masks_phone_and_id(client, users, hutang_village, make_child):
    from shouhu.registry import services

    client.force_login(users["village_hutang"])
    child = make_child(hutang_village)
    member = services.member_create(
        actor=users["village_hutang"],
        child=child,
        data={
            "relation": "mother",
            "name": "李梅",
            "id_number": "",
            "phone": "13912345678",
            "work_place": "",
            "is_guardian": True,
            "capacity": "full",
            "birth_date": None,
            "situations": [],
        },
    )
    html = client.get(reverse("registry:member_edit", args=[child.pk, member.pk])).content.decode()
    assert "13912345678" not in html and "139****5678" in html


def test_a_child_loaded_in_bulk_without_a_registrar_can_be_edited(client, users):
    from shouhu.registry.models import Child
    from shouhu.registry.selectors import children_visible_to

    client.force_login(users["district"])
    child = children_visible_to(users["district"]).filter(registered_by__isnull=True).first()
    assert child is not None  # the fixture world is bulk-inserted, like demo data and imports
    url = reverse("registry:child_edit", args=[child.pk])
    response = client.post(url, child_edit_post(child, id_number=child.id_number_masked, note="走访补充"))
    assert response.status_code == 302, response.content.decode()[:500]
    assert Child.objects.get(pk=child.pk).note == "走访补充"
