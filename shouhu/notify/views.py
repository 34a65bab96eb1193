"""The in-app inbox: a user's own notifications, nobody else's."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from shouhu.notify.models import validate_relative_url
from shouhu.notify.selectors import inbox_for, notification_get_for
from shouhu.notify.services import mark_all_read, mark_read
from shouhu.org.access import Cap, allow


def _safe_target(url: str) -> str | None:
    """The notification's link if it is a path on this site; else None (never an open redirect)."""
    try:
        validate_relative_url(url)
    except Exception:  # noqa: BLE001 — a stored row that predates a rule: treated as unsafe
        return None
    if not url or not url_has_allowed_host_and_scheme(url, allowed_hosts=None, require_https=False):
        return None
    return url


@allow(Cap.NOTIFICATIONS)
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    qs = inbox_for(request.user)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "notify/inbox.html",
        {
            "page": page,
            "unread_only": unread_only,
            "querystring": "unread=1" if unread_only else "",
        },
    )


@allow(Cap.NOTIFICATIONS)
@require_GET
def open_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Open a notification: it becomes read, and the user goes to its link (a platform path only)."""
    notification = notification_get_for(request.user, notification_id)
    if notification is None:
        raise Http404
    mark_read(actor=request.user, notification_id=notification.pk)
    return redirect(_safe_target(notification.url) or "notify:inbox")


@allow(Cap.NOTIFICATIONS)
@require_POST
def read(request: HttpRequest, notification_id: int) -> HttpResponse:
    if not mark_read(actor=request.user, notification_id=notification_id):
        raise Http404
    return redirect("notify:inbox")


@allow(Cap.NOTIFICATIONS)
@require_POST
def read_all(request: HttpRequest) -> HttpResponse:
    count = mark_all_read(actor=request.user)
    if count:
        messages.success(request, _("已将 %(n)s 条通知标为已读。") % {"n": count})
    return redirect("notify:inbox")
