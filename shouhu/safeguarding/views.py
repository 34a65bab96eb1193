"""Report pages: the two-minute report form, one list whose content follows the role, a report
with its timeline, clocks and the steps the viewer may record.

Every rule lives in `services` (who may act, what must come first) and `selectors` (who sees
which report and how much of it); these views only shape input and output. A report out of
view is a 404 (`report_get_for`); a step the role may not record is a 403.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.text import mask_id_number
from shouhu.org.access import Cap, allow, scope_for
from shouhu.org.models import Organization, OrgKind, RegionLevel
from shouhu.registry.selectors import apply_search, children_visible_to
from shouhu.safeguarding import forms as f
from shouhu.safeguarding import services
from shouhu.safeguarding.models import (
    SHORT,
    SITUATIONS,
    DeadlineKind,
    EventKind,
    Placement,
    Report,
    ReportAttachment,
    ReportDeadline,
    ReportStatus,
)
from shouhu.safeguarding.selectors import (
    View,
    clocks,
    overdue_reports,
    report_get_for,
    reports_visible_to,
    station_response_times,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _Flags(TypedDict):
        is_overdue: bool
        is_escalated: bool

    FlaggedReport: TypeAlias = WithAnnotations[Report, _Flags]  # a report of _annotate_flags

REPORT_CAPS = (Cap.REPORT_FILE, Cap.REPORTS_HANDLE, Cap.REPORTS_TOWN, Cap.REPORTS_ALL, Cap.REPORTS_SUPERVISE)

# What a reporting organisation is told: four states, nothing of the police's work in between.
REPORTER_STATUS: dict[str, str] = {
    ReportStatus.RECEIVED: _("已接收"),
    ReportStatus.ACCEPTED: _("已受理"),
    ReportStatus.DISPATCHED: _("已受理"),
    ReportStatus.HANDLED: _("已处置"),
    ReportStatus.CLOSED: _("已办结"),
}
REPORTER_CLOCKS = (DeadlineKind.FEEDBACK, DeadlineKind.RESULT)
KEY_RE = re.compile(r"^[0-9a-f]{32}$")


def _error_text(exc: ValidationError) -> str:
    return "；".join(exc.messages)


def _form_errors(form: forms.Form) -> str:
    return "；".join(str(e) for errors in form.errors.values() for e in errors)


def duration_text(seconds: float) -> str:
    """ "2小时5分钟", "3天4小时", "8分钟": the same words the countdown script writes."""
    minutes = max(int(abs(seconds)) // 60, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)d天%(h)d小时") % {"d": days, "h": hours}
    if hours:
        return _("%(h)d小时%(m)d分钟") % {"h": hours, "m": mins}
    return _("%(m)d分钟") % {"m": mins}


def _minutes(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    return duration_text((end - start).total_seconds())


def _role_mode(request: HttpRequest) -> str:
    """The list a role sees first: the widest of its report capabilities."""
    scope = scope_for(request.user)
    for cap, mode in (
        (Cap.REPORTS_ALL, "district"),
        (Cap.REPORTS_SUPERVISE, "supervise"),
        (Cap.REPORTS_HANDLE, "police"),
        (Cap.REPORTS_TOWN, "town"),
    ):
        if scope.can(cap):
            return mode
    return "own"


def _mode(request: HttpRequest) -> str:
    """`?mine=1` shows the reports the user's own organisation filed, to any role that files."""
    if request.GET.get("mine") == "1" and scope_for(request.user).can(Cap.REPORT_FILE):
        return "own"
    return _role_mode(request)


def _annotate_flags(qs: QuerySet[Report], now: datetime) -> QuerySet[FlaggedReport]:
    late = ReportDeadline.objects.filter(report=OuterRef("pk"), met_at__isnull=True, due_at__lt=now)
    escalated = ReportDeadline.objects.filter(report=OuterRef("pk"), escalated_at__isnull=False)
    return qs.annotate(is_overdue=Exists(late), is_escalated=Exists(escalated))


# ----- the list ------------------------------------------------------------------------------------


@allow(*REPORT_CAPS)
@require_http_methods(["GET"])
def report_list(request: HttpRequest) -> HttpResponse:
    """One list; its rows and columns follow the role (see `_mode`)."""
    now = timezone.now()
    mode = _mode(request)
    scope = scope_for(request.user)
    qs = reports_visible_to(request.user).select_related("police_station", "place_region__parent", "reporter_org")
    context: dict[str, Any] = {
        "mode": mode,
        "now": now,
        "can_file": scope.can(Cap.REPORT_FILE),
        "role_mode": _role_mode(request),
    }
    params = request.GET.copy()
    params.pop("page", None)
    if mode == "own":
        org_id = scope.organization_id
        qs = qs.filter(Q(reporter_org_id=org_id) if org_id else Q(reporter_id=request.user.pk))
    elif mode == "police":
        which = request.GET.get("show", "open")
        if which == "open":
            qs = qs.exclude(status=ReportStatus.CLOSED)
        context["which"] = which
        accept_due = ReportDeadline.objects.filter(report=OuterRef("pk"), kind=DeadlineKind.ACCEPT).values("due_at")[:1]
        qs = qs.annotate(
            accept_due=Subquery(accept_due),
            closed_last=Case(
                When(status=ReportStatus.CLOSED, then=Value(1)), default=Value(0), output_field=IntegerField()
            ),
            accepted_last=Case(
                When(accepted_at__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
        ).order_by("closed_last", "accepted_last", "-urgent", "accept_due", "-created_at")
    elif mode in ("district", "supervise"):
        qs, filters = _filters(request, _annotate_flags(qs, now), now)
        context["filters"] = filters
        context["figures"] = station_response_times(qs, now)
        if mode == "supervise":
            qs = qs.order_by("-is_overdue", "-is_escalated", "-created_at")
    page = Paginator(qs.prefetch_related("deadlines"), 50).get_page(request.GET.get("page"))
    rows = []
    for report in page.object_list:
        report_clocks = clocks(report, now)
        if mode == "own":
            report_clocks = [c for c in report_clocks if c.kind in REPORTER_CLOCKS]
        else:  # a list shows what is still to be done; the report shows every clock
            report_clocks = [c for c in report_clocks if c.met_at is None]
        colour = (
            "red"
            if any(c.colour == "red" for c in report_clocks)
            else ("yellow" if any(c.colour == "yellow" for c in report_clocks) else "")
        )
        rows.append(
            {
                "report": report,
                "clocks": _clock_rows(report_clocks, now),
                "colour": colour,
                "status": REPORTER_STATUS.get(report.status, report.get_status_display()),
                "accept_time": _minutes(report.created_at, report.accepted_at),
                "dispatch_time": _minutes(report.created_at, report.dispatched_at),
            }
        )
    context.update(page=page, rows=rows, querystring=params.urlencode())
    return render(request, "safeguarding/list.html", context)


def _filters(
    request: HttpRequest, qs: QuerySet[FlaggedReport], now: datetime
) -> tuple[QuerySet[FlaggedReport], dict[str, Any]]:
    g = request.GET
    status = g.get("status", "")
    if status in ReportStatus.values:
        qs = qs.filter(status=status)
    station = g.get("station", "")
    if station.isdigit():
        qs = qs.filter(police_station_id=int(station))
    town = g.get("town", "")
    if len(town) == 12 and town.isdigit():
        qs = qs.filter(town_code=town)
    if g.get("urgent") == "1":
        qs = qs.filter(urgent=True)
    if g.get("overdue") == "1":
        qs = overdue_reports(qs, now)
    if g.get("escalated") == "1":
        qs = qs.filter(is_escalated=True)
    period = g.get("days", "")
    if period.isdigit() and 0 < int(period) <= 3660:
        qs = qs.filter(created_at__gte=now - timedelta(days=int(period)))
    code = re.sub(r"[^0-9A-Za-z]", "", g.get("code", ""))[:12].upper()
    if code:
        qs = qs.filter(receipt_code=code)
    return qs, {
        "status": status,
        "station": station,
        "town": town,
        "urgent": g.get("urgent") == "1",
        "overdue": g.get("overdue") == "1",
        "escalated": g.get("escalated") == "1",
        "days": period,
        "code": code,
        "statuses": ReportStatus.choices,
        "towns": f.district_towns(),
        "stations": Organization.objects.filter(kind=OrgKind.POLICE_STATION).order_by("name"),
    }


def _clock_rows(report_clocks: list[Any], now: datetime) -> list[dict[str, Any]]:
    out = []
    for c in report_clocks:
        left = (c.due_at - now).total_seconds()
        out.append({"clock": c, "open": c.met_at is None, "left": duration_text(left), "due_iso": c.due_at.isoformat()})
    return out


# ----- filing a report -----------------------------------------------------------------------------


def _initial_town(user: Any) -> str:
    org = getattr(user, "organization", None)
    if org is None:
        return ""
    region = org.regions.filter(level__in=(RegionLevel.TOWN, RegionLevel.VILLAGE)).order_by("code").first()
    return region.code[:9] + "000" if region else ""


def _attachments(request: HttpRequest) -> list[bytes]:
    files = request.FILES.getlist("attachments")[: services.ATTACHMENTS_MAX + 1]
    return [item.read(services.ATTACHMENT_MAX_BYTES + 1) for item in files]


def _form_page(request: HttpRequest, form: f.ReportForm, key: str, status: int = 200) -> HttpResponse:
    picked = None
    child_id = form.data.get("child") if form.is_bound else None
    if child_id:
        try:
            picked = children_visible_to(request.user).filter(pk=uuid.UUID(str(child_id))).first()
        except ValueError:
            picked = None
    return render(
        request,
        "safeguarding/form.html",
        {
            "form": form,
            "key": key,
            "situations": [(n, SITUATIONS[n], SHORT[n]) for n in SITUATIONS],
            "checked": {str(v) for v in form.data.getlist("situations")} if form.is_bound else set(),
            "danger": form.data.get("danger_now", "") if form.is_bound else "",
            "picked": picked,
            "can_pick": scope_for(request.user).can(Cap.LEDGER_VIEW),
        },
        status=status,
    )


@allow(Cap.REPORT_FILE)
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    """The report form. Its key is chosen when the form is opened: the same form sent twice (a
    double tap, a dropped connection) is one report."""
    if request.method == "GET":
        form = f.ReportForm(initial={"found_at": f.now_local(), "place_town": _initial_town(request.user)})
        return _form_page(request, form, uuid.uuid4().hex)
    key = request.POST.get("key", "")
    form = f.ReportForm(request.POST)
    if not KEY_RE.match(key):
        form.is_valid()
        form.add_error(None, _("表单已过期，请核对后再提交一次。"))
        return _form_page(request, form, uuid.uuid4().hex, status=400)
    if not form.is_valid():
        return _form_page(request, form, key, status=400)
    child = None
    if form.cleaned_data.get("child"):
        child = children_visible_to(request.user).filter(pk=form.cleaned_data["child"]).first()
        if child is None:
            form.add_error(None, _("所选儿童不在您可查看的范围内，请改为填写儿童信息。"))
            return _form_page(request, form, key, status=400)
    if form.cleaned_data.get("place_region") is None:
        form.add_error("place_town", _("请选择发现地点所在的镇（街道）。"))
        return _form_page(request, form, key, status=400)
    try:
        report, created = services.report_submit(
            actor=request.user,
            data=form.report_data(child),
            idempotency_key=key,
            attachments=_attachments(request),
            request=request,
        )
    except ValidationError as exc:
        form.add_error(None, _error_text(exc))
        return _form_page(request, form, key, status=400)
    if not created:
        messages.info(request, _("这份报告此前已经提交，没有重复提交。"))
    return redirect("safeguarding:receipt", report_id=report.pk)


@allow(Cap.REPORT_FILE)
@require_http_methods(["GET"])
def receipt(request: HttpRequest, report_id: int) -> HttpResponse:
    report, view = report_get_for(request.user, report_id)
    if not view.own:
        raise Http404
    return render(request, "safeguarding/receipt.html", {"report": report})


@allow(Cap.REPORT_FILE)
@require_http_methods(["GET"])
def lookup_villages(request: HttpRequest) -> HttpResponse:
    """The village options of a town (the form's second select, swapped in by htmx)."""
    town = request.GET.get("place_town", "")
    return render(request, "safeguarding/_village_options.html", {"villages": f.villages_of(town)})


@allow(Cap.REPORT_FILE, Cap.REPORTS_TOWN)
@require_POST
def lookup_children(request: HttpRequest) -> HttpResponse:
    """A few children the user may see, matching a name or ID number (POST: no names in URLs)."""
    query = (request.POST.get("q") or "").strip()[:40]
    children: list[Any] = []
    if query:
        qs = apply_search(children_visible_to(request.user), query).select_related("region__parent")
        children = list(qs.order_by("name")[:10])
        record(
            actor=request.user,
            action=Action.SEARCH,
            object_type="child",
            request=request,
            detail={"page": "report_child_pick", "found": len(children)},
        )
    return render(request, "safeguarding/_child_options.html", {"children": children, "query": query})


# ----- one report ----------------------------------------------------------------------------------


def _timeline(report: Report, view: View) -> list[dict[str, Any]]:
    rows = []
    for event in report.events.select_related("actor", "organization").order_by("at", "id"):
        hidden = event.kind == EventKind.RECEIVED and not view.reporter
        if view.details:
            note = event.note
        elif event.kind in (EventKind.ESCALATED, EventKind.PLACEMENT):
            note = event.note  # a deadline's or a placement kind's name, nothing about the child
        else:
            note = ""
        rows.append(
            {
                "event": event,
                "escalated": event.kind == EventKind.ESCALATED,
                "note": note,
                "measure": event.get_measure_display() if event.measure else "",
                "who": _("报告人信息保密") if hidden else (str(event.actor) if event.actor else ""),
                "org": "" if hidden else (event.organization.name if event.organization else ""),
                "system": event.kind == EventKind.ESCALATED,
            }
        )
    return rows


@allow(*REPORT_CAPS)
@require_http_methods(["GET"])
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report, view = report_get_for(request.user, report_id)
    now = timezone.now()
    if view.details:
        record(
            actor=request.user,
            action=Action.VIEW,
            object_type="report",
            object_id=report.pk,
            request=request,
            detail={"page": "report", "reporter": view.reporter},
        )
    full = view.details or view.supervise
    report_clocks = clocks(report, now)
    if not full:
        report_clocks = [c for c in report_clocks if c.kind in REPORTER_CLOCKS]
    context: dict[str, Any] = {
        "report": report,
        "view": view,
        "full": full,
        "now": now,
        "status": REPORTER_STATUS.get(report.status, report.get_status_display()),
        "clocks": _clock_rows(report_clocks, now),
        "timeline": _timeline(report, view) if full else [],
        "accept_time": _minutes(report.created_at, report.accepted_at),
        "dispatch_time": _minutes(report.created_at, report.dispatched_at),
        "situations_full": [(n, SITUATIONS.get(int(n), n)) for n in report.situations],
    }
    if view.details:
        context["child_id_masked"] = mask_id_number(report.child_id_number) if report.child_id_number else ""
        context["attachments"] = list(report.attachments.only("pk", "content_type", "size", "report_id"))
        context["child_visible"] = (
            report.child_id is not None and children_visible_to(request.user).filter(pk=report.child_id).exists()
        )
    if view.district or view.details:
        context["placements"] = list(report.placements.all())
    if view.handle:
        now_local = f.now_local()
        context.update(
            accept_form=f.AcceptForm(initial={"at": now_local}),
            dispatch_form=f.DispatchForm(initial={"at": now_local}),
            measure_form=f.MeasureForm(initial={"at": now_local}),
            notify_form=f.NoteForm(),
            result_form=f.ResultForm(initial={"outcome": report.outcome, "close": True}),
        )
    if view.town:
        context["assess_form"] = f.AssessForm()
        context["help_form"] = f.HelpForm()
        context["assessed"] = report.deadlines.filter(kind=DeadlineKind.ASSESSMENT, met_at__isnull=False).exists()
        context["town_task"] = report.deadlines.filter(kind=DeadlineKind.ASSESSMENT).exists()
    if view.district:
        context.update(
            placement_form=f.PlacementForm(initial={"received_at": f.now_local()}),
            end_form=f.PlacementEndForm(initial={"ended_at": f.now_local()}),
            commend_form=f.CommendForm(),
        )
    return render(request, "safeguarding/detail.html", context)


@allow(Cap.REPORTS_HANDLE, Cap.REPORTS_TOWN, Cap.REPORTS_ALL)
@require_http_methods(["GET"])
def attachment(request: HttpRequest, report_id: int, attachment_id: int) -> HttpResponse:
    """An attachment, to those who see the report's details; every view audited."""
    report, view = report_get_for(request.user, report_id)
    item = ReportAttachment.objects.filter(pk=attachment_id, report=report).first()
    if item is None or not view.details:
        raise Http404
    record(
        actor=request.user,
        action=Action.VIEW,
        object_type="report_attachment",
        object_id=item.pk,
        request=request,
        detail={"report": report.pk},
    )
    response = HttpResponse(base64.b64decode(item.content), content_type=item.content_type)
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline" if item.content_type.startswith("image/") else "attachment"
    return response


def _step(
    request: HttpRequest,
    report_id: int,
    form_class: type[forms.Form],
    run: Callable[[Report, dict[str, Any]], Any],
    done: str,
) -> HttpResponse:
    """Validate a step's form, run its service, come back to the report with a message. A
    missing or invisible report is a 404; a step the service refuses to this user is a 403."""
    report, _view = report_get_for(request.user, report_id)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _("未保存：%(e)s") % {"e": _form_errors(form)})
    else:
        try:
            run(report, form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, _("未保存：%(e)s") % {"e": _error_text(exc)})
        else:
            messages.success(request, done)
    return redirect("safeguarding:detail", report_id=report.pk)


@allow(Cap.REPORTS_HANDLE)
@require_POST
def accept(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.AcceptForm,
        lambda r, d: services.report_accept(
            actor=request.user, report=r, officer=d["officer"], at=d["at"], request=request
        ),
        _("已受理。"),
    )


@allow(Cap.REPORTS_HANDLE)
@require_POST
def dispatch(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.DispatchForm,
        lambda r, d: services.report_dispatch(actor=request.user, report=r, at=d["at"], request=request),
        _("已登记出警。"),
    )


@allow(Cap.REPORTS_HANDLE)
@require_POST
def measure(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.MeasureForm,
        lambda r, d: services.report_measure(
            actor=request.user, report=r, measure=d["measure"], note=d["note"], at=d["at"], request=request
        ),
        _("已登记处置措施。"),
    )


@allow(Cap.REPORTS_HANDLE)
@require_POST
def notify_town(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.NoteForm,
        lambda r, d: services.report_notify_town(actor=request.user, report=r, note=d["note"], request=request),
        _("已通报镇（街道）政府，并向其派发评估帮扶任务。"),
    )


@allow(Cap.REPORTS_HANDLE)
@require_POST
def result(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.ResultForm,
        lambda r, d: services.report_result(
            actor=request.user, report=r, outcome=d["outcome"], close=d["close"], request=request
        ),
        _("处理结果已反馈报告单位。"),
    )


@allow(Cap.REPORTS_TOWN)
@require_POST
def assess(request: HttpRequest, report_id: int) -> HttpResponse:
    def run(report: Report, data: dict[str, Any]) -> Any:
        child = None
        if data.get("child"):
            child = children_visible_to(request.user).filter(pk=data["child"]).first()
            if child is None:
                raise ValidationError(_("所选儿童不在您可查看的范围内。"))
        return services.report_assessed(
            actor=request.user, report=report, note=data["note"], child=child, request=request
        )

    return _step(request, report_id, f.AssessForm, run, _("评估帮扶情况已记录。"))


@allow(Cap.REPORTS_TOWN, Cap.REPORTS_ALL)
@require_POST
def help_request(request: HttpRequest, report_id: int) -> HttpResponse:
    """Ask the unit the duty catalogue names for a need (treatment, injury assessment, legal aid …)."""
    return _step(
        request,
        report_id,
        f.HelpForm,
        lambda r, d: services.report_help(
            actor=request.user, report=r, need_code=d["need"], note=d["note"], request=request
        ),
        _("已转交成员单位办理，见其待办事项。"),
    )


@allow(Cap.REPORTS_ALL)
@require_POST
def placement_start(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.PlacementForm,
        lambda r, d: services.placement_start(
            actor=request.user,
            report=r,
            kind=d["kind"],
            ground=d["ground"],
            where=d["where"],
            received_at=d["received_at"],
            request=request,
        ),
        _("已登记临时监护安置。"),
    )


@allow(Cap.REPORTS_ALL)
@require_POST
def placement_end(request: HttpRequest, report_id: int, placement_id: int) -> HttpResponse:
    def run(report: Report, data: dict[str, Any]) -> Any:
        placement = Placement.objects.filter(pk=placement_id, report=report).first()
        if placement is None:
            raise Http404
        return services.placement_end(
            actor=request.user, placement=placement, note=data["note"], ended_at=data["ended_at"], request=request
        )

    return _step(request, report_id, f.PlacementEndForm, run, _("安置已结束。"))


@allow(Cap.REPORTS_ALL)
@require_POST
def commend(request: HttpRequest, report_id: int) -> HttpResponse:
    return _step(
        request,
        report_id,
        f.CommendForm,
        lambda r, d: services.report_commend(actor=request.user, report=r, note=d["note"], request=request),
        _("已记录表扬奖励。"),
    )
