"""Mandatory reports through the API (school and hospital systems report directly).
Mounted on the API in shouhu/api/api.py.

* `POST /reports` — REPORT_FILE; an `Idempotency-Key` header makes a retried submission return
  the first report (200) instead of a second one (201);
* `GET /reports/{report_id}` — what the caller may see of a report it is concerned by (the
  selectors' `view_of`); any other report is a 404, as missing as a report that does not exist.

The organisation's tasks (`GET /tasks` and the answers) are in shouhu/tasks/api.py.
"""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Field, Header, Path, Schema
from ninja.responses import Status

from shouhu.api.auth import AuthedRequest, GuardedRouter
from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.i18n import lazy_str
from shouhu.org.access import Cap, allow
from shouhu.safeguarding import services
from shouhu.safeguarding.models import Report, Source
from shouhu.safeguarding.selectors import report_get_for

router = GuardedRouter(tags=["reports"])

MAX_ID = 9223372036854775807  # BigAutoField


def _form_errors(errors: dict[str, list[str]]) -> Exception:
    from shouhu.api.api import FormErrors  # the API module mounts this router: imported late

    return FormErrors(errors)


# ----- schemas -------------------------------------------------------------------------------------


class ChildIn(Schema):
    id: UUID | None = Field(
        None, description=lazy_str(gettext_lazy("台账儿童编号（须为调用方可见的儿童）；提供时其余字段不用填"))
    )
    name: str | None = Field(None, max_length=40)
    sex: Literal["M", "F"] | None = None
    age: int | None = Field(None, ge=0, le=17, description=lazy_str(gettext_lazy("大致年龄")))
    id_number: str | None = Field(None, max_length=30)


class ReportIn(Schema):
    situations: list[Annotated[int, Field(ge=1, le=9)]] = Field(
        ...,
        min_length=1,
        max_length=9,
        description=lazy_str(
            gettext_lazy("《关于建立侵害未成年人案件强制报告制度的意见（试行）》第四条的情形，1-9，可多选")
        ),
    )
    child: ChildIn
    found_at: datetime = Field(..., description=lazy_str(gettext_lazy("发现时间，ISO 8601；不带时区按北京时间")))
    place_region_code: str = Field(
        ..., pattern=r"^[0-9]{12}$", description=lazy_str(gettext_lazy("发现地点的12位区划代码（镇/街道即可）"))
    )
    place: str = Field("", max_length=200)
    description: str = Field(..., min_length=1, max_length=4000)
    danger_now: bool = False


class ReportCreated(Schema):
    id: int
    status: str
    receipt_code: str
    urgent: bool
    created_at: datetime


class ReportDetails(Schema):
    situations: list[int]
    danger_now: bool
    child_id: UUID | None
    child_name: str
    child_sex: str
    child_age: int | None
    found_at: datetime
    place_region_code: str
    place_region_name: str
    place: str
    description: str
    police_station: str | None
    officer: str


class ReportOut(Schema):
    id: int
    status: str
    status_label: str
    urgent: bool
    receipt_code: str | None = Field(None, description=lazy_str(gettext_lazy("仅报告单位和区民政局可见")))
    created_at: datetime
    accepted_at: datetime | None
    dispatched_at: datetime | None
    town_notified_at: datetime | None
    closed_at: datetime | None
    outcome: str
    details: ReportDetails | None = Field(
        None, description=lazy_str(gettext_lazy("儿童、地点与情况；仅处置单位、属地镇（街道）和区民政局可见"))
    )


# ----- operations ----------------------------------------------------------------------------------


def _created(report: Report) -> dict[str, Any]:
    return {
        "id": report.pk,
        "status": report.status,
        "receipt_code": report.receipt_code,
        "urgent": report.urgent,
        "created_at": report.created_at,
    }


@router.post(
    "/reports", response={200: ReportCreated, 201: ReportCreated}, summary=lazy_str(gettext_lazy("提交强制报告"))
)
@allow(Cap.REPORT_FILE)
def submit_report(
    request: AuthedRequest,
    payload: ReportIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,80}$",
        description=lazy_str(gettext_lazy("重试时带同一个值，返回第一次提交的报告")),
    ),
) -> Status:
    from shouhu.registry.selectors import children_visible_to

    actor = request.auth
    found_at = payload.found_at
    if not 2000 <= found_at.year <= 2100:
        raise _form_errors({"found_at": [_("发现时间不正确。")]})
    if timezone.is_naive(found_at):
        found_at = timezone.make_aware(found_at)
    region = services.report_place(payload.place_region_code)
    if region is None:
        raise _form_errors({"place_region_code": [_("未找到该镇（街道）或村（社区）的区划代码。")]})
    data: dict[str, Any] = {
        "situations": payload.situations,
        "found_at": found_at,
        "place_region": region,
        "place": payload.place,
        "description": payload.description,
        "danger_now": payload.danger_now,
    }
    child_in = payload.child
    if child_in.id is not None:
        child = children_visible_to(actor).filter(pk=child_in.id).first()
        if child is None:
            raise _form_errors({"child.id": [_("未找到该儿童，或您无权查看。")]})
        data["child"] = child
    elif child_in.name and child_in.name.strip():
        data.update(
            child_name=child_in.name,
            child_sex=child_in.sex or "",
            child_age=child_in.age,
            child_id_number=child_in.id_number or "",
        )
    else:
        raise _form_errors({"child": [_("请提供台账儿童编号，或儿童姓名（性别、大致年龄）。")]})
    try:
        report, created = services.report_submit(
            actor=actor, data=data, source=Source.API, idempotency_key=idempotency_key or "", request=request
        )
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        rename = {
            "place_region": "place_region_code",
            "child_name": "child.name",
            "child_age": "child.age",
            "child_sex": "child.sex",
            "child_id_number": "child.id_number",
        }
        raise _form_errors({rename.get(k, k): v for k, v in errors.items()}) from None
    return Status(201 if created else 200, _created(report))


@router.get("/reports/{report_id}", response=ReportOut, summary=lazy_str(gettext_lazy("强制报告办理情况")))
@allow(Cap.REPORT_FILE, Cap.REPORTS_HANDLE, Cap.REPORTS_TOWN, Cap.REPORTS_ALL, Cap.REPORTS_SUPERVISE)
def get_report(request: AuthedRequest, report_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    report, view = report_get_for(request.auth, report_id)
    record(
        actor=request.auth,
        action=Action.VIEW,
        object_type="report",
        object_id=report.pk,
        request=request,
        detail={"via": "api", "details": view.details},
    )
    out: dict[str, Any] = {
        "id": report.pk,
        "status": report.status,
        "status_label": report.get_status_display(),
        "urgent": report.urgent,
        "receipt_code": report.receipt_code if (view.own or view.district) else None,
        "created_at": report.created_at,
        "accepted_at": report.accepted_at,
        "dispatched_at": report.dispatched_at,
        "town_notified_at": report.town_notified_at,
        "closed_at": report.closed_at,
        "outcome": report.outcome,
        "details": None,
    }
    if view.details:
        out["details"] = {
            "situations": report.situations,
            "danger_now": report.danger_now,
            "child_id": report.child_id,
            "child_name": report.child_name,
            "child_sex": report.child_sex,
            "child_age": report.child_age,
            "found_at": report.found_at,
            "place_region_code": report.place_region_id,
            "place_region_name": report.place_region.name,
            "place": report.place,
            "description": report.description,
            "police_station": report.police_station.name if report.police_station else None,
            "officer": report.officer,
        }
    return out
