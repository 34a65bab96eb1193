"""The audit log, for the audit administrator and the district office."""

from __future__ import annotations

from datetime import date, datetime, time

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_http_methods

from shouhu.audit.models import Action, AuditEvent
from shouhu.org.access import Cap, allow


def _date(value: str) -> date | None:
    try:
        return parse_date(value[:10]) if value else None
    except ValueError:
        return None


@allow(Cap.AUDIT_VIEW)
@require_http_methods(["GET"])
def audit_log(request: HttpRequest) -> HttpResponse:
    qs = AuditEvent.objects.all()
    action = request.GET.get("action", "")
    if action in Action.values:
        qs = qs.filter(action=action)
    actor = request.GET.get("actor", "").strip()[:150]
    if actor:
        qs = qs.filter(actor_name=actor)
    object_id = request.GET.get("object", "").strip()[:64]
    if object_id:
        qs = qs.filter(object_id=object_id)
    tz = timezone.get_current_timezone()
    start = _date(request.GET.get("from", ""))
    if start:
        qs = qs.filter(at__gte=datetime.combine(start, time.min, tzinfo=tz))
    end = _date(request.GET.get("to", ""))
    if end:
        qs = qs.filter(at__lte=datetime.combine(end, time.max, tzinfo=tz))
    page = Paginator(qs.order_by("-seq"), 100).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "audit/log.html",
        {
            "page": page,
            "actions": Action.choices,
            "params": request.GET,
            "querystring": params.urlencode(),
        },
    )
