"""Audit of logins, failures and lockouts. Role changes are audited where they are made (admin)."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from shouhu.audit.models import Action
from shouhu.audit.services import record


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs):  # noqa: ANN001
    if request is not None and hasattr(request, "session"):
        import time

        request.session["shouhu_login_at"] = int(time.time())
    record(actor=user, action=Action.LOGIN, object_type="user", object_id=user.pk, request=request)


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs):  # noqa: ANN001
    if user is not None:
        record(actor=user, action=Action.LOGOUT, object_type="user", object_id=user.pk, request=request)


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):  # noqa: ANN001
    username = str((credentials or {}).get("username", ""))[:150]
    record(actor=None, actor_name=username, action=Action.LOGIN_FAILED, object_type="user", request=request)


@receiver(user_locked_out, dispatch_uid="audit_lockout")
def _locked_out(sender, request, username, ip_address, **kwargs):  # noqa: ANN001
    record(actor=None, actor_name=str(username or "")[:150], action=Action.LOCKOUT, object_type="user", request=request)
