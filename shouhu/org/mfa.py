"""Two-factor login (TOTP, django-otp) for privileged roles.

A user with a confirmed authenticator must enter its code after the password, always. Users of
privileged roles (administrators and the district office) must enrol one before anything else
when `SHOUHU_MFA_REQUIRED` is on (the default outside demo mode).
"""

from __future__ import annotations

import base64

import segno
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.access import PRIVILEGED_ROLES, public

MFA_URL_NAMES = frozenset({"mfa_verify", "mfa_setup", "logout", "login", "set_language"})


def otp_verified(request: HttpRequest) -> bool:
    """Whether this session passed its second factor (`is_verified`, which django_otp's
    OTPMiddleware adds to request.user)."""
    return bool(getattr(request.user, "is_verified", lambda: False)())


def mfa_pending(request: HttpRequest) -> bool:
    """True when the logged-in user must still pass (or enrol) the second factor."""
    user = request.user
    if not user.is_authenticated or otp_verified(request):
        return False
    if user_has_device(user, confirmed=True):
        return True
    return settings.SHOUHU_MFA_REQUIRED and bool(user.role_set & PRIVILEGED_ROLES)


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


def _clean_token(raw: str) -> str:
    return "".join(ch for ch in raw if ch.isdigit())[:8]


@public
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not user_has_device(request.user, confirmed=True):
        return redirect("mfa_setup")
    error = ""
    if request.method == "POST":
        token = _clean_token(request.POST.get("token", ""))
        device = next(
            (
                d
                for d in TOTPDevice.objects.devices_for_user(request.user, confirmed=True)
                if token and d.verify_token(token)
            ),
            None,
        )
        if device is not None:
            otp_login(request, device)
            record(
                actor=request.user,
                action=Action.LOGIN,
                object_type="user",
                object_id=request.user.pk,
                request=request,
                detail={"factor": "totp"},
            )
            return redirect(_next(request))
        record(
            actor=request.user,
            action=Action.LOGIN_FAILED,
            object_type="user",
            object_id=request.user.pk,
            request=request,
            detail={"factor": "totp"},
        )
        error = _("验证码不正确或已过期，请查看身份验证器中最新的6位数字。")
    return render(
        request, "registration/mfa_verify.html", {"error": error, "next": _next(request)}, status=400 if error else 200
    )


@public
@require_http_methods(["GET", "POST"])
def mfa_setup(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if user_has_device(request.user, confirmed=True) and not otp_verified(request):
        return redirect("mfa_verify")
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
        if device is None:
            device = TOTPDevice.objects.create(user=request.user, name="authenticator", confirmed=False)
    error = ""
    if request.method == "POST":
        token = _clean_token(request.POST.get("token", ""))
        if token and device.verify_token(token):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            record(
                actor=request.user,
                action=Action.ADMIN_CHANGE,
                object_type="user",
                object_id=request.user.pk,
                request=request,
                detail={"op": "mfa_enrolled"},
            )
            return redirect(_next(request))
        error = _("验证码不正确，请确认手机时间准确后重试。")
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#1d2733")
    return render(
        request,
        "registration/mfa_setup.html",
        {
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "qr_svg": qr_svg,
            "error": error,
            "next": _next(request),
        },
        status=400 if error else 200,
    )
