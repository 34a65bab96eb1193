"""The API's own access edges: capabilities before the body, and who may read the schema."""

from __future__ import annotations

from shouhu.api.auth import issue_token


def test_a_role_without_the_capability_gets_403_whatever_body_it_sends(client, users):
    token = issue_token(users["leader"])
    response = client.post(
        "/api/v1/children", data="{not json", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 403
    assert "无权" in response.json()["detail"]


def test_the_schema_is_served_to_a_bearer_token_and_not_to_strangers(client, users):
    token = issue_token(users["district"])
    assert client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    anonymous = client.get("/api/v1/openapi.json")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_the_schema_waits_for_the_second_factor(client, users, settings):
    settings.SHOUHU_MFA_REQUIRED = True
    client.force_login(users["district"])
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 302 and "/login/verify/" in response["Location"]
