import io

from django.urls import reverse
from openpyxl import load_workbook


def test_village_director_downloads_the_template_for_their_village(client, users, hutang_village):
    client.force_login(users["village_hutang"])
    response = client.get(reverse("intake:template"))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "attachment" in response["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.content))
    cells = [str(c.value) for row in workbook.worksheets[0].iter_rows(max_row=6) for c in row if c.value]
    assert any(hutang_village.name in c for c in cells)


def test_a_region_out_of_scope_is_404_and_leaders_get_403(client, users, niutang_village):
    client.force_login(users["village_hutang"])
    assert client.get(reverse("intake:template"), {"region": niutang_village.code}).status_code == 404
    client.force_login(users["leader"])
    assert client.get(reverse("intake:template")).status_code == 403
