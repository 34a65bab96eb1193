"""The chain from a report of harm to the police at the door, with its clocks.

Every service takes `actor=` first (None for the public entrance), runs in one transaction and
writes its audit event and timeline event there. Notifications (shouhu.notify) are stored in the
same transaction and delivered after commit by the outbox, retried until sent: a channel that is
down never loses a report. The one exception is a new report, the busiest write: its transaction
stores the report, its clocks, its timeline and its audit event, and the worker fans out its
notifications right after the commit (`announce_reports`; `announced_at` is the outbox marker, so
nothing is lost while the worker is down). Notifications carry a link and a neutral sentence,
never the details.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib import refcache
from shouhu.org.models import Organization, OrgKind, Region, RegionLevel, Role
from shouhu.safeguarding.models import (
    URGENT_SITUATIONS,
    DeadlineKind,
    EventKind,
    Measure,
    Placement,
    Report,
    ReportAttachment,
    ReportDeadline,
    ReportEvent,
    ReportStatus,
    Source,
    new_receipt_code,
)

logger = logging.getLogger(__name__)

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
ATTACHMENTS_MAX = 5
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))


def _params(day: Any = None) -> Any:
    from shouhu.policy.selectors import params_on

    return params_on(day or timezone.localdate())


def _org(actor: Any) -> Organization | None:
    return getattr(actor, "organization", None) if getattr(actor, "is_authenticated", False) else None


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


# ----- routing -------------------------------------------------------------------------------------


def town_of(region: Region) -> str:
    """The 12-digit code of the town (镇/街道) of a town or village region."""
    return region.code[:9] + "000"


def station_for(town_code: str) -> Organization | None:
    """The police station whose jurisdiction covers the town (organisation regions, the foundation);
    memoised per process for a few seconds (shouhu/lib/refcache.py): callers only read it."""
    return refcache.memo(
        "station_for",
        town_code,
        lambda: (
            Organization.objects.filter(kind=OrgKind.POLICE_STATION, is_active=True, regions__code=town_code)
            .order_by("pk")
            .first()
        ),
    )


def report_place(code: str) -> Region | None:
    """The town or village region of a 12-digit code, for a report's place (memoised like
    `station_for`)."""
    return refcache.memo(
        "report_place",
        code,
        lambda: Region.objects.filter(code=code, level__in=[RegionLevel.TOWN, RegionLevel.VILLAGE]).first(),
    )


def district_police() -> Organization | None:
    return Organization.objects.filter(code="public_security").first()


def district_office() -> Organization | None:
    return Organization.objects.filter(code="civil_affairs").first()


def town_government(town_code: str) -> Organization | None:
    return Organization.objects.filter(kind=OrgKind.TOWN_GOVERNMENT, regions__code=town_code).first()


# ----- submitting ----------------------------------------------------------------------------------


def clean_situations(values: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValidationError({"situations": [_("情形应为1至9的数字。")]}) from None
        if not 1 <= number <= 9:
            raise ValidationError({"situations": [_("情形应为1至9的数字。")]})
        if number not in out:
            out.append(number)
    if not out:
        raise ValidationError({"situations": [_("请至少选择一种情形。")]})
    return sorted(out)


def _check_attachment(data: bytes) -> str:
    if len(data) > ATTACHMENT_MAX_BYTES:
        raise ValidationError(
            {"attachments": [_("附件不能超过%(n)d MB。") % {"n": ATTACHMENT_MAX_BYTES // (1024 * 1024)}]}
        )
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    raise ValidationError({"attachments": [_("附件只能是 JPG、PNG 图片或 PDF 文件。")]})


def report_submit(
    *,
    actor: Any,
    data: dict[str, Any],
    source: str = Source.ORGANIZATION,
    idempotency_key: str = "",
    attachments: list[bytes] | None = None,
    request: Any = None,
) -> tuple[Report, bool]:
    """Store a report, route it, start its clocks; who must know is told right after the commit.
    Returns (report, created).

    `data`: situations (1-9), child (a Child the actor may see) or child_name/child_sex/child_age/
    child_id_number, found_at, place_region (a Region: a town is enough), place, description,
    danger_now, reporter_contact (public only). The same `idempotency_key` from the same reporter
    returns the first report (created False), whatever else is sent.

    One transaction commits the report (its receipt code), its deadlines, its timeline and its audit
    event. The notifications (the station, the district police, the town, the district office, the
    reporter's receipt) are fanned out by the worker right after the commit (`announce_reports`):
    the report is stored with `announced_at` empty, which the immediate task and the minute sweep
    both pick up, so a worker or queue that is down delays the notifications and loses none.
    """
    user = _user(actor)
    key = (idempotency_key or "")[:80] if user is not None else ""
    try:
        report = _new_report(actor=actor, user=user, data=data, source=source, key=key)
        report.full_clean(
            exclude=["reporter", "reporter_org", "child", "police_station", "place_region"], validate_unique=False
        )  # the receipt code's uniqueness is the database's (a retry below)
        blobs = attachments or []
        if len(blobs) > ATTACHMENTS_MAX:
            raise ValidationError({"attachments": [_("最多上传%(n)d个附件。") % {"n": ATTACHMENTS_MAX}]})
        checked = [(_check_attachment(blob), blob) for blob in blobs]
    except ValidationError:
        # A retry of a stored submission returns it whatever else it sends (checked only on this
        # path: the first submission, the usual case, costs no look-up).
        existing = _existing(user, key)
        if existing is None:
            raise
        return existing, False
    for attempt in range(3):
        try:
            with transaction.atomic():
                _store(report, checked, actor=actor, user=user, request=request)
        except IntegrityError:
            # The same key sent twice (or at once): the second finds the first. Else a receipt code
            # drawn twice (32^10 codes): draw again.
            existing = _existing(user, key)
            if existing is not None:
                return existing, False
            if attempt == 2 or not Report.objects.filter(receipt_code=report.receipt_code).exists():
                raise
            report.pk, report.receipt_code = None, new_receipt_code()
            continue
        break
    transaction.on_commit(_announce_soon)
    return report, True


def _existing(user: Any, key: str) -> Report | None:
    return Report.objects.filter(reporter=user, idempotency_key=key).first() if key and user is not None else None


def _new_report(*, actor: Any, user: Any, data: dict[str, Any], source: str, key: str) -> Report:
    situations = clean_situations(data.get("situations") or [])
    region: Region | None = data.get("place_region")
    if region is None or region.level not in (RegionLevel.TOWN, RegionLevel.VILLAGE):
        raise ValidationError({"place_region": [_("请选择发现地点所在的镇（街道）或村（社区）。")]})
    description = (data.get("description") or "").strip()
    if not description:
        raise ValidationError({"description": [_("请简要写明看到的情况。")]})
    found_at = data.get("found_at") or timezone.now()
    if found_at > timezone.now() + timedelta(minutes=5):
        raise ValidationError({"found_at": [_("发现时间不能晚于现在。")]})
    child = data.get("child")
    danger_now = bool(data.get("danger_now"))
    town_code = town_of(region)
    return Report(
        source=source,
        reporter=user,
        reporter_org=_org(actor),
        idempotency_key=key,
        reporter_contact=(data.get("reporter_contact") or "").strip()[:100],
        situations=situations,
        urgent=danger_now or bool(set(situations) & URGENT_SITUATIONS),
        danger_now=danger_now,
        child=child,
        child_name=(data.get("child_name") or (child.name if child else "")).strip()[:40],
        child_sex=data.get("child_sex") or (child.gender if child else ""),
        child_age=data.get("child_age"),
        child_id_number=(data.get("child_id_number") or "").strip()[:30],
        found_at=found_at,
        place_region=region,
        place=(data.get("place") or "").strip()[:200],
        description=description[:4000],
        police_station=station_for(town_code),
        town_code=town_code,
    )


def _store(report: Report, attachments: list[tuple[str, bytes]], *, actor: Any, user: Any, request: Any) -> None:
    """The submission's writes, inside its transaction: the report, its attachments, its three
    clocks, its two timeline events, the child shared with the station, the audit event (last)."""
    params = _params()
    report.save(force_insert=True)
    if attachments:
        ReportAttachment.objects.bulk_create(
            [
                ReportAttachment(
                    report=report,
                    content_type=content_type,
                    size=len(blob),
                    content=base64.b64encode(blob).decode("ascii"),
                )
                for content_type, blob in attachments
            ]
        )
    now = timezone.now()
    accept_in = (
        timedelta(minutes=int(params.report_accept_urgent_minutes))
        if report.urgent
        else timedelta(hours=int(params.report_accept_hours))
    )
    ReportDeadline.objects.bulk_create(
        [
            ReportDeadline(report=report, kind=DeadlineKind.ACCEPT, due_at=now + accept_in),
            ReportDeadline(
                report=report, kind=DeadlineKind.FEEDBACK, due_at=now + timedelta(days=int(params.report_feedback_days))
            ),
            ReportDeadline(
                report=report, kind=DeadlineKind.RESULT, due_at=now + timedelta(days=int(params.report_result_days))
            ),
        ]
    )
    station = report.police_station
    ReportEvent.objects.bulk_create(
        [
            ReportEvent(
                report=report, kind=EventKind.RECEIVED, at=report.created_at, actor=user, organization=_org(actor)
            ),
            ReportEvent(
                report=report,
                kind=EventKind.ROUTED,
                at=report.created_at,
                organization=station,
                note="" if station else _("未找到管辖派出所：已转区公安分局指挥中心。"),
            ),
        ]
    )
    if report.child is not None and station is not None:
        from shouhu.registry.models import ChildShare

        ChildShare.objects.get_or_create(
            child=report.child,
            organization=station,
            source_type="report",
            source_id=str(report.pk),
            defaults={"reason": _("强制报告")},
        )
    # Last: the audit chain's head row is locked from here to the commit, not for the whole
    # submission (bench/reports.py: 20 clients queued on it).
    record(
        actor=actor,
        action=Action.CREATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        actor_name=_("公众") if user is None else "",
        detail={
            "source": report.source,
            "urgent": report.urgent,
            "situations": report.situations,
            "station": station.pk if station else None,
        },
    )


def _recipients_of(org: Organization | None, roles: Iterable[str]) -> list[Any]:
    if org is None:
        return []
    from shouhu.org.models import User

    return list(User.objects.filter(organization=org, is_active=True, roles__role__in=list(roles)).distinct())


def _notify(users: list[Any], *, kind: str, title: str, url: str, dedupe: str) -> None:
    from shouhu.notify.services import notify

    if users:
        notify(
            recipients=users,
            kind=kind,
            title=title[:120],
            body=_("请登录平台查看，详情不在通知中显示。"),
            url=url,
            dedupe_key=dedupe,
        )


# ----- telling who must know (after the commit, in the worker) --------------------------------------

ANNOUNCE_BATCH = 200
ANNOUNCE_WINDOW_SECONDS = 0.25


class _Announcer:
    """Hands the worker one announcement task for the reports this server process committed in the
    last moment (`ANNOUNCE_WINDOW_SECONDS`), from a thread of its own: the request does not wait
    for the queue, and a busy minute reaches the worker as a few batches, not a task per report.
    Safe because the task announces every report still waiting when it runs: a report committed
    before a hand-over is in that task's batch or an earlier one. A process that dies between a
    commit and its hand-over leaves the report waiting for the minute sweep."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid: int | None = None

    def poke(self) -> None:
        if self._pid != os.getpid():  # first use in this process (or a forked server worker)
            with self._lock:
                if self._pid != os.getpid():
                    self._wake = threading.Event()
                    threading.Thread(target=self._run, name="shouhu-announcer", daemon=True).start()
                    self._pid = os.getpid()
        self._wake.set()

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            time.sleep(ANNOUNCE_WINDOW_SECONDS)  # the reports committed meanwhile join this batch
            wake.clear()  # a report committed after this is handed over by the next round
            _enqueue_announcement()


_announcer = _Announcer()


def _enqueue_announcement() -> None:
    try:
        from shouhu.safeguarding.tasks import announce_new_reports

        announce_new_reports()
    except Exception:  # noqa: BLE001 — the report is stored with announced_at empty; the sweep retries
        logger.warning("could not enqueue the announcement of new reports; the minute sweep will", exc_info=True)


def _announce_soon() -> None:
    """After a submission's commit: have the worker announce it (with whatever else is waiting).
    If the queue is down, the minute sweep (`announce_missed_reports`) does it. With huey in
    immediate mode (tests) the announcement runs here and now."""
    from huey.contrib.djhuey import HUEY

    if HUEY.immediate:
        _enqueue_announcement()
    else:
        _announcer.poke()


def announce_reports(*, report_ids: Iterable[int] | None = None, limit: int = ANNOUNCE_BATCH) -> int:
    """Tell who must know of every stored report not yet announced (or only of `report_ids`), the
    oldest first, at most `limit`: claimed (`announced_at` set) and notified in one transaction, so
    each report is announced exactly once — a failure rolls both back for the next run, and two
    workers never announce the same report (row locks; on SQLite one writer at a time). Several
    reports waiting (a busy minute) go out as one batch: one recipient query, one duplicate check,
    one insert of notifications and of deliveries, one hand-over to the delivery worker. Returns
    how many reports were announced."""
    with transaction.atomic():
        pending = Report.objects.filter(announced_at__isnull=True)
        if report_ids is not None:
            pending = pending.filter(pk__in=list(report_ids))
        pending = pending.select_for_update(of=("self",)).select_related("reporter").order_by("pk")
        reports = list(pending[:limit])
        if not reports:
            return 0
        Report.objects.filter(pk__in=[r.pk for r in reports]).update(announced_at=timezone.now())
        _tell_new_reports(reports)
    return len(reports)


def announce_all_pending() -> int:
    """Announce every waiting report, batch after batch (the minute sweep, `manage.py check_deadlines`)."""
    total = 0
    while count := announce_reports():
        total += count
        if count < ANNOUNCE_BATCH:
            break
    return total


def _new_report_audiences(reports: list[Report]) -> dict[int, dict[str, list[Any]]]:
    """Who hears of each new report, in two queries for any number of reports: the station's police
    (or, without a station, the district police's), the district police, the town's supervisors,
    the district office."""
    from django.db.models import Q

    from shouhu.org.models import User

    towns = {r.town_code for r in reports}
    town_orgs: dict[int, set[str]] = {}
    for org_id, code in Organization.objects.filter(kind=OrgKind.TOWN_GOVERNMENT, regions__code__in=towns).values_list(
        "pk", "regions__code"
    ):
        town_orgs.setdefault(org_id, set()).add(code)
    stations = {r.police_station_id for r in reports if r.police_station_id}
    q = Q(organization__code="public_security", roles__role=Role.POLICE) | Q(
        organization__code="civil_affairs", roles__role=Role.DISTRICT_OFFICER
    )
    if town_orgs:
        q |= Q(organization_id__in=list(town_orgs), roles__role=Role.TOWN_SUPERVISOR)
    if stations:
        q |= Q(organization_id__in=list(stations), roles__role=Role.POLICE)
    people = list(User.objects.filter(q, is_active=True).select_related("organization").distinct().order_by("id"))
    out: dict[int, dict[str, list[Any]]] = {}
    for report in reports:
        who: dict[str, list[Any]] = {"station": [], "district_police": [], "town": [], "office": []}
        for user in people:
            org = user.organization
            if org is None:  # not selected: every clause of `q` names an organisation
                continue
            if report.police_station_id and org.pk == report.police_station_id:
                who["station"].append(user)
            elif org.code == "public_security":
                who["district_police"].append(user)
            elif org.code == "civil_affairs":
                who["office"].append(user)
            elif org.kind == OrgKind.TOWN_GOVERNMENT and report.town_code in town_orgs.get(org.pk, ()):
                who["town"].append(user)
        if not report.police_station_id:  # no station covers the place: the district police handle it
            who["station"], who["district_police"] = who["district_police"], []
        out[report.pk] = who
    return out


def _tell_new_reports(reports: list[Report]) -> None:
    """The station (or, without one, the district police), the district police, the town and the
    district office are told, and the reporter gets a receipt: one batch of notifications."""
    from shouhu.notify.services import Message, notify_many

    body = _("请登录平台查看，详情不在通知中显示。")
    audiences = _new_report_audiences(reports)
    messages = []
    for report in reports:
        url = f"/reports/{report.pk}/"
        urgent = _("【紧急】") if report.urgent else ""
        key = f"report_new:{report.pk}"
        who = audiences[report.pk]
        messages += [
            Message(tuple(who["station"]), "report_new", urgent + _("收到一份强制报告，请立即处置"), url, body, key),
            Message(tuple(who["district_police"]), "report_new", urgent + _("辖区收到一份强制报告"), url, body, key),
            Message(tuple(who["town"]), "report_new", urgent + _("本镇（街道）收到一份强制报告"), url, body, key),
            Message(tuple(who["office"]), "report_new", urgent + _("收到一份强制报告"), url, body, key),
        ]
        if report.reporter_id:
            messages.append(
                Message(
                    (report.reporter,),
                    "report_receipt",
                    _("您的强制报告已送达，回执码 %(c)s") % {"c": report.receipt_code},
                    url,
                    body,
                    f"report_receipt:{report.pk}",
                )
            )
    notify_many(messages)


# ----- the police response ---------------------------------------------------------------------------


def _locked(report: Report) -> Report:
    return Report.objects.select_for_update().get(pk=report.pk)


def _meet(report: Report, kind: str, at: datetime) -> None:
    ReportDeadline.objects.filter(report=report, kind=kind, met_at__isnull=True).update(met_at=at)


def _may_handle(actor: Any, report: Report) -> None:
    from shouhu.org.access import Cap, scope_for

    scope = scope_for(actor)
    org = _org(actor)
    if not scope.can(Cap.REPORTS_HANDLE) or org is None:
        raise PermissionDenied
    if report.police_station_id != org.pk and org.code != "public_security":
        raise PermissionDenied


def _event(report: Report, kind: str, actor: Any, at: datetime, *, measure: str = "", note: str = "") -> ReportEvent:
    return ReportEvent.objects.create(
        report=report, kind=kind, at=at, actor=_user(actor), organization=_org(actor), measure=measure, note=note[:2000]
    )


def _check_at(at: datetime | None, report: Report) -> datetime:
    now = timezone.now()
    at = at or now
    if at > now + timedelta(minutes=5):
        raise ValidationError({"at": [_("时间不能晚于现在。")]})
    if at < report.created_at - timedelta(days=1):
        raise ValidationError({"at": [_("时间不能早于报告接收时间。")]})
    if report.created_at - timedelta(minutes=1) < at < report.created_at:
        # The forms give times to the minute: a step recorded "at 09:01" on a report received at
        # 09:01:40 happened at the receipt, not 40 seconds before it (timeline order, response times).
        at = report.created_at
    return at


@transaction.atomic
def report_accept(
    *, actor: Any, report: Report, officer: str, at: datetime | None = None, request: Any = None
) -> Report:
    report = _locked(report)
    _may_handle(actor, report)
    if report.accepted_at is not None:
        raise ValidationError(_("该报告已受理。"))
    officer = (officer or "").strip()
    if not officer:
        raise ValidationError({"officer": [_("请填写受理民警。")]})
    at = _check_at(at, report)
    report.accepted_at, report.officer, report.status = at, officer[:40], ReportStatus.ACCEPTED
    if report.police_station_id is None and _org(actor) is not None:
        report.police_station = _org(actor)
    report.version += 1
    report.save()
    _meet(report, DeadlineKind.ACCEPT, at)
    _meet(report, DeadlineKind.FEEDBACK, at)  # the reporter sees "已受理" at once (status page + notice)
    _event(report, EventKind.ACCEPTED, actor, at, note=officer)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "accepted"},
    )
    if report.reporter_id:
        _notify(
            [report.reporter],
            kind="report_status",
            title=_("您的强制报告已被公安机关受理"),
            url=f"/reports/{report.pk}/",
            dedupe=f"report_accepted:{report.pk}",
        )
    return report


@transaction.atomic
def report_dispatch(*, actor: Any, report: Report, at: datetime | None = None, request: Any = None) -> Report:
    report = _locked(report)
    _may_handle(actor, report)
    if report.accepted_at is None:
        raise ValidationError(_("请先受理，再登记出警。"))
    if report.dispatched_at is not None:
        raise ValidationError(_("已登记出警。"))
    at = _check_at(at, report)
    report.dispatched_at, report.status = at, ReportStatus.DISPATCHED
    report.version += 1
    report.save()
    ReportDeadline.objects.get_or_create(
        report=report,
        kind=DeadlineKind.TOWN_NOTIFY,
        defaults={"due_at": at + timedelta(hours=int(_params().report_town_notify_hours))},
    )
    _event(report, EventKind.DISPATCHED, actor, at)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "dispatched"},
    )
    return report


@transaction.atomic
def report_measure(
    *, actor: Any, report: Report, measure: str, note: str = "", at: datetime | None = None, request: Any = None
) -> ReportEvent:
    report = _locked(report)
    _may_handle(actor, report)
    if measure not in Measure.values:
        raise ValidationError({"measure": [_("请选择处置措施。")]})
    if report.accepted_at is None:
        raise ValidationError(_("请先受理，再登记处置措施。"))
    at = _check_at(at, report)
    if report.status in (ReportStatus.ACCEPTED, ReportStatus.DISPATCHED):
        report.status = ReportStatus.HANDLED
        report.version += 1
        report.save()
    ReportDeadline.objects.get_or_create(
        report=report,
        kind=DeadlineKind.TOWN_NOTIFY,
        defaults={"due_at": at + timedelta(hours=int(_params().report_town_notify_hours))},
    )
    event = _event(report, EventKind.MEASURE, actor, at, measure=measure, note=note)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "measure", "measure": measure},
    )
    if measure == Measure.ESCORT:
        _notify(
            _recipients_of(district_office(), [Role.DISTRICT_OFFICER]),
            kind="report_escort",
            title=_("公安机关护送儿童，请民政部门接收安置"),
            url=f"/reports/{report.pk}/",
            dedupe=f"report_escort:{report.pk}:{event.pk}",
        )
    return event


@transaction.atomic
def report_notify_town(*, actor: Any, report: Report, note: str = "", request: Any = None) -> Any:
    """通报: the police tell the town government; the town gets an assessment task with a deadline."""
    from shouhu.lib.workdays import workday_deadline
    from shouhu.tasks.models import TaskKind
    from shouhu.tasks.services import task_open

    report = _locked(report)
    _may_handle(actor, report)
    if report.accepted_at is None:
        raise ValidationError(_("请先受理，再通报镇（街道）政府。"))
    if report.town_notified_at is not None:
        raise ValidationError(_("已通报镇（街道）政府。"))
    now = timezone.now()
    report.town_notified_at = now
    report.version += 1
    report.save()
    _meet(report, DeadlineKind.TOWN_NOTIFY, now)
    due = workday_deadline(int(_params().report_assessment_working_days))
    ReportDeadline.objects.get_or_create(report=report, kind=DeadlineKind.ASSESSMENT, defaults={"due_at": due})
    _event(report, EventKind.TOWN_NOTIFIED, actor, now, note=note)
    task = None
    town = town_government(report.town_code)
    if town is not None:
        task = task_open(
            actor=actor,
            owner=town,
            kind=TaskKind.REPORT,
            child=report.child,
            title=_("公安通报：请评估儿童安全、监护和身心健康状况并帮扶"),
            detail=_("请在平台上查看报告处置情况，完成评估帮扶。"),
            due_at=due,
            source_type="report_assessment",
            source_id=str(report.pk),
        )
        _notify(
            _recipients_of(town, [Role.TOWN_SUPERVISOR]),
            kind="report_town",
            title=_("公安机关通报一起侵害未成年人案事件，请评估帮扶"),
            url=f"/reports/{report.pk}/",
            dedupe=f"report_town:{report.pk}",
        )
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "town_notified", "task": task.pk if task else None},
    )
    return task


@transaction.atomic
def report_result(*, actor: Any, report: Report, outcome: str, close: bool = True, request: Any = None) -> Report:
    """The result the reporting organisation is told (art. 11); closes the police's part."""
    report = _locked(report)
    _may_handle(actor, report)
    outcome = (outcome or "").strip()
    if not outcome:
        raise ValidationError({"outcome": [_("请填写反馈给报告单位的处理结果。")]})
    if report.accepted_at is None:
        raise ValidationError(_("请先受理。"))
    now = timezone.now()
    report.outcome = outcome[:500]
    if close:
        report.status, report.closed_at = ReportStatus.CLOSED, now
    report.version += 1
    report.save()
    _meet(report, DeadlineKind.RESULT, now)
    _event(report, EventKind.FEEDBACK, actor, now)
    if close:
        _event(report, EventKind.CLOSED, actor, now)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "result", "closed": close},
    )
    if report.reporter_id:
        _notify(
            [report.reporter],
            kind="report_status",
            title=_("您的强制报告有了处理结果"),
            url=f"/reports/{report.pk}/",
            dedupe=f"report_result:{report.pk}",
        )
    return report


# ----- the town, the district office ---------------------------------------------------------------


@transaction.atomic
def report_assessed(*, actor: Any, report: Report, note: str, child: Any = None, request: Any = None) -> Report:
    """The town's assessment of safety, guardianship and health (评估帮扶) is done."""
    from shouhu.org.access import Cap, scope_for
    from shouhu.tasks.models import OPEN_STATES, Task, TaskState

    report = _locked(report)
    scope = scope_for(actor)
    if not (scope.can(Cap.REPORTS_TOWN) and scope.covers_region(report.town_code)):
        raise PermissionDenied
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": [_("请填写评估帮扶情况。")]})
    now = timezone.now()
    if child is not None and report.child_id is None:
        report.child = child
        report.version += 1
        report.save()
    _meet(report, DeadlineKind.ASSESSMENT, now)
    _event(report, EventKind.ASSESSED, actor, now, note=note)
    from shouhu.tasks.services import task_close

    for task in Task.objects.filter(source_type="report_assessment", source_id=str(report.pk), state__in=OPEN_STATES):
        task_close(actor=actor, task=task, state=TaskState.DONE, outcome=_("已完成评估帮扶"), version=None)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "assessed", "child": str(report.child_id) if report.child_id else None},
    )
    return report


# The needs a report's follow-up commonly asks member units for (the duty catalogue routes each).
HELP_NEEDS = (
    "medical_treatment",
    "injury_assessment",
    "health_assessment",
    "counselling",
    "legal_aid",
    "placement",
    "guardianship_appointment",
    "social_assistance",
    "schooling",
    "family_education",
    "rehabilitation",
)


@transaction.atomic
def report_help(*, actor: Any, report: Report, need_code: str, note: str = "", request: Any = None) -> Any:
    """The town (or the district office) asks the unit the duty catalogue names for a need — hospital
    treatment and injury assessment → health, legal aid → justice … — as a task in its inbox,
    linked to the report (and to the child, shared with the unit, when the report has one)."""
    from shouhu.lib.workdays import workday_deadline
    from shouhu.org.access import Cap, scope_for
    from shouhu.org.models import NeedType
    from shouhu.policy.selectors import routes
    from shouhu.tasks.models import TaskKind
    from shouhu.tasks.services import task_open

    scope = scope_for(actor)
    if not (scope.can(Cap.REPORTS_ALL) or (scope.can(Cap.REPORTS_TOWN) and scope.covers_region(report.town_code))):
        raise PermissionDenied
    need = NeedType.objects.filter(code=need_code).first()
    if need is None or need_code not in HELP_NEEDS:
        raise ValidationError({"need": [_("请选择需要帮助的事项。")]})
    unit_code = routes().get(need_code, "civil_affairs")
    owner = Organization.objects.filter(code=unit_code).first()
    if owner is None:
        raise ValidationError(
            {"need": [_("目录中没有承办“%(n)s”的单位，请联系区民政局（联席办）。") % {"n": need.name}]}
        )
    due = workday_deadline(5 if report.urgent else 15)
    task = task_open(
        actor=actor,
        owner=owner,
        kind=TaskKind.REFERRAL,
        child=report.child,
        need_type=need,
        title=_("强制报告后续：%(n)s") % {"n": need.name},
        detail=(note or "").strip()[:1000],
        due_at=due,
        source_type="report_help",
        source_id=f"{report.pk}:{need_code}",
    )
    ReportEvent.objects.create(
        report=report,
        kind=EventKind.HELP,
        at=timezone.now(),
        actor=_user(actor),
        organization=_org(actor),
        note=_("请%(u)s协助：%(n)s") % {"u": owner.name, "n": need.name},
    )
    record(
        actor=actor,
        action=Action.CREATE,
        object_type="task",
        object_id=task.pk,
        request=request,
        detail={"report": report.pk, "need": need_code, "owner": owner.pk},
    )
    return task


def _may_place(actor: Any) -> None:
    from shouhu.org.access import Cap, scope_for

    if not scope_for(actor).can(Cap.REPORTS_ALL):
        raise PermissionDenied


@transaction.atomic
def placement_start(
    *,
    actor: Any,
    report: Report,
    kind: str,
    ground: str,
    where: str = "",
    received_at: datetime | None = None,
    request: Any = None,
) -> Placement:
    _may_place(actor)
    report = _locked(report)
    at = _check_at(received_at, report)
    placement = Placement(
        report=report,
        kind=kind,
        ground=(ground or "").strip()[:200],
        where=(where or "")[:200],
        received_at=at,
        recorded_by=_user(actor),
    )
    placement.full_clean()
    placement.save()
    _event(report, EventKind.PLACEMENT, actor, at, note=placement.get_kind_display())
    record(
        actor=actor,
        action=Action.CREATE,
        object_type="placement",
        object_id=placement.pk,
        request=request,
        detail={"report": report.pk, "kind": kind},
    )
    return placement


@transaction.atomic
def placement_end(
    *, actor: Any, placement: Placement, note: str, ended_at: datetime | None = None, request: Any = None
) -> Placement:
    _may_place(actor)
    current = Placement.objects.select_for_update().get(pk=placement.pk)
    if current.ended_at is not None:
        raise ValidationError(_("该安置已结束。"))
    current.ended_at = _check_at(ended_at, current.report)
    current.end_note = (note or "").strip()[:300]
    current.full_clean()
    current.save()
    _event(current.report, EventKind.PLACEMENT_END, actor, current.ended_at, note=current.end_note)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="placement",
        object_id=current.pk,
        request=request,
        detail={"report": current.report_id, "ended": True},
    )
    return current


@transaction.atomic
def report_commend(*, actor: Any, report: Report, note: str, request: Any = None) -> Report:
    _may_place(actor)
    report = _locked(report)
    report.commended = True
    report.version += 1
    report.save()
    _event(report, EventKind.COMMENDED, actor, timezone.now(), note=note)
    record(
        actor=actor,
        action=Action.UPDATE,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"step": "commended"},
    )
    return report


# ----- deadlines -----------------------------------------------------------------------------------


def check_deadlines(now: datetime | None = None) -> dict[str, int]:
    """Escalate every step past its deadline exactly once: the station's superior (district police)
    and the district office are told, the timeline says so, and the report appears on the
    procuratorate's supervision view. Safe to run concurrently (each escalation is claimed by a
    conditional UPDATE). Returns counts."""
    now = now or timezone.now()
    counts = {"checked": 0, "escalated": 0}
    late = list(
        ReportDeadline.objects.filter(met_at__isnull=True, escalated_at__isnull=True, due_at__lt=now)
        .select_related("report")
        .order_by("due_at")[:1000]
    )
    for deadline in late:
        counts["checked"] += 1
        with transaction.atomic():
            claimed = ReportDeadline.objects.filter(
                pk=deadline.pk, met_at__isnull=True, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not claimed:
                continue
            report = deadline.report
            ReportEvent.objects.create(
                report=report, kind=EventKind.ESCALATED, at=now, note=str(DeadlineKind(deadline.kind).label)
            )
            record(
                actor=None,
                action=Action.UPDATE,
                object_type="report",
                object_id=report.pk,
                actor_name="system",
                detail={"step": "escalated", "deadline": deadline.kind},
            )
            title = _("强制报告“%(k)s”环节已超时，请督办") % {"k": DeadlineKind(deadline.kind).label}
            url = f"/reports/{report.pk}/"
            _notify(
                _recipients_of(district_police(), [Role.POLICE]),
                kind="report_escalated",
                title=title,
                url=url,
                dedupe=f"report_escalated:{deadline.pk}",
            )
            _notify(
                _recipients_of(district_office(), [Role.DISTRICT_OFFICER]),
                kind="report_escalated",
                title=title,
                url=url,
                dedupe=f"report_escalated:{deadline.pk}",
            )
            counts["escalated"] += 1
    return counts
