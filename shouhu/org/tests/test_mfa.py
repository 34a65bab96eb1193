import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from shouhu.audit.models import AuditEvent


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


@pytest.fixture
def mfa_required(settings):
    settings.SHOUHU_MFA_REQUIRED = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp delays a retry after a failure; not here
    return settings


def test_privileged_role_must_enrol_before_anything(client, users, mfa_required):
    client.force_login(users["district"])
    response = client.get(reverse("registry:ledger"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("mfa_verify"))
    response = client.get(reverse("mfa_verify"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("mfa_setup")
    assert "启用二次验证" in response.content.decode()


def test_enrolment_with_a_wrong_code_is_refused_then_a_right_code_opens_the_ledger(client, users, mfa_required):
    client.force_login(users["district"])
    client.get(reverse("mfa_setup"))
    device = TOTPDevice.objects.get(user=users["district"])
    bad = client.post(reverse("mfa_setup"), {"token": "000000" if _code(device) != "000000" else "111111"})
    assert bad.status_code == 400 and "验证码不正确" in bad.content.decode()
    good = client.post(reverse("mfa_setup"), {"token": _code(device), "next": reverse("registry:ledger")})
    assert good.status_code == 302 and good["Location"] == reverse("registry:ledger")
    assert client.get(reverse("registry:ledger")).status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_enrolled_user_must_verify_each_login_and_failures_are_audited(client, users, mfa_required):
    user = users["district"]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    assert client.get(reverse("home"))["Location"].startswith(reverse("mfa_verify"))
    assert client.post(reverse("mfa_verify"), {"token": "12"}).status_code == 400
    assert AuditEvent.objects.filter(action="login_failed", actor_id=user.pk, detail__factor="totp").exists()
    response = client.post(reverse("mfa_verify"), {"token": _code(device), "next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get(reverse("home")).status_code == 200


def test_unverified_session_cannot_use_the_api(client, users, mfa_required):
    client.force_login(users["district"])
    assert client.get("/api/v1/children").status_code == 401


def test_front_line_roles_are_not_forced_to_enrol(client, users, mfa_required):
    client.force_login(users["village_hutang"])
    assert client.get(reverse("registry:ledger")).status_code == 200


def test_failed_codes_are_throttled(client, users, settings):
    settings.SHOUHU_MFA_REQUIRED = True
    user = users["district"]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    client.post(reverse("mfa_verify"), {"token": "000001"})
    # Right after a failure even the right code is refused: guessing 10^6 codes is not practical.
    assert client.post(reverse("mfa_verify"), {"token": _code(device)}).status_code == 400
