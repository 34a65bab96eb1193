"""REST API under /api/v1/ (OpenAPI at /api/v1/openapi.json).

Same forms (validation), services (writes), selectors (scope) and audit as the pages.
"""

import re
from datetime import date
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import Field, NinjaAPI, Query, Schema
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.responses import Status

from shouhu.api.auth import ActiveSessionAuth, AuthedRequest, BearerAuth, GuardedRouter, docs_access
from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.i18n import lazy_str
from shouhu.org.access import Cap, allow, scope_for
from shouhu.registry import services
from shouhu.registry.forms import (
    ChildForm,
    EntrustmentForm,
    FamilyMemberForm,
    HouseholdForm,
    SituationForm,
)
from shouhu.registry.models import Child
from shouhu.registry.selectors import (
    LedgerFilters,
    apply_filters,
    apply_search,
    child_get_for,
    children_visible_to,
    looks_like_id_number,
    page_rows,
)

api = NinjaAPI(
    title=lazy_str(gettext_lazy("守护 Shouhu API")),
    version="1",
    description=lazy_str(
        gettext_lazy(
            "困境儿童（留守儿童）关爱保护信息平台接口。认证：`Authorization: Bearer <token>`（`manage.py issue_token`）或登录会话。"
        )
    ),
    urls_namespace="api",
    auth=[BearerAuth(), ActiveSessionAuth()],
    default_router=GuardedRouter(),
    docs_decorator=docs_access,
)


class ErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]] = {}


PYDANTIC_MESSAGES = {
    "missing": gettext_lazy("缺少必填字段"),
    "string_type": gettext_lazy("应为文本"),
    "string_too_long": gettext_lazy("文本过长"),
    "int_parsing": gettext_lazy("应为整数"),
    "int_type": gettext_lazy("应为整数"),
    "bool_parsing": gettext_lazy("应为 true 或 false"),
    "bool_type": gettext_lazy("应为 true 或 false"),
    "date_parsing": gettext_lazy("日期格式应为 YYYY-MM-DD"),
    "date_from_datetime_parsing": gettext_lazy("日期格式应为 YYYY-MM-DD"),
    "date_type": gettext_lazy("日期格式应为 YYYY-MM-DD"),
    "uuid_parsing": gettext_lazy("编号格式不正确"),
    "json_invalid": gettext_lazy("请求体不是有效的 JSON"),
    "list_type": gettext_lazy("应为列表"),
    "model_attributes_type": gettext_lazy("应为对象"),
    "dict_type": gettext_lazy("应为对象"),
    "greater_than_equal": gettext_lazy("数值过小"),
    "less_than_equal": gettext_lazy("数值过大"),
    "literal_error": gettext_lazy("取值不在允许范围内"),
    "extra_forbidden": gettext_lazy("不认识的字段"),
}


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        loc = [str(p) for p in error.get("loc", []) if p not in ("body", "query", "path", "payload", "data")]
        key = ".".join(loc) or "__all__"
        errors.setdefault(key, []).append(str(PYDANTIC_MESSAGES.get(error.get("type", ""), _("格式不正确"))))
    return api.create_response(request, {"detail": _("请求内容有误，请按字段说明修改。"), "errors": errors}, status=422)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": _("未找到该记录。")}, status=404)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


class FormErrors(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@api.exception_handler(FormErrors)
def _form_errors(request: HttpRequest, exc: FormErrors) -> HttpResponse:
    return api.create_response(
        request, {"detail": _("请求内容有误，请按字段说明修改。"), "errors": exc.errors}, status=422
    )


# ----- schemas -------------------------------------------------------------------------------


class SituationOut(Schema):
    kind: str
    since: date | None
    until: date | None


class MemberOut(Schema):
    id: int
    relation: str
    name: str
    id_number_masked: str
    phone_masked: str
    birth_date: date | None
    work_place: str
    is_guardian: bool
    capacity: str
    version: int
    situations: list[SituationOut]
    restricted_situations: int = Field(0, description=lazy_str(gettext_lazy("当前角色无权查看的受限情形数量")))


class EntrustmentOut(Schema):
    id: int
    carer_name: str
    carer_relation: str
    carer_phone_masked: str
    since: date | None
    until: date | None
    agreement_signed: bool
    agreement_date: date | None
    village_informed: bool
    school_informed: bool
    version: int


class HouseholdOut(Schema):
    economic_status: str
    housing: str
    income_sources: list[str]
    assistance_received: list[str]
    version: int


class ChildListItem(Schema):
    id: UUID
    name: str
    gender: str
    birth_date: date
    age: int
    region_code: str
    region_name: str
    town_name: str
    school_stage: str
    health: str
    guardianship_type: str
    status: str


class ChildPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[ChildListItem]


class ChildDetail(ChildListItem):
    id_number_masked: str
    ethnicity: str
    hukou_registered: bool
    hukou_type: str
    hukou_place: str
    disability_type: str
    disability_grade: int | None
    illness: str
    school_name: str
    grade: str
    boarding: bool
    lives_with_parents: bool
    street_child: bool
    guardianship_assessment: str
    exit_reason: str
    exit_date: date | None
    note: str
    version: int
    household: HouseholdOut | None
    family: list[MemberOut]
    entrustments: list[EntrustmentOut]


class SituationIn(Schema):
    kind: str = Field(..., max_length=30)
    since: date | None = None
    until: date | None = None
    disability_grade: int | None = Field(None, ge=1, le=4)
    disability_type: str = Field("", max_length=20)
    note: str = Field("", max_length=200)


class MemberIn(Schema):
    relation: str = Field(..., max_length=20)
    name: str = Field(..., max_length=40)
    id_number: str = Field("", max_length=30)
    birth_date: date | None = None
    phone: str = Field("", max_length=30)
    work_place: str = Field("", max_length=100)
    is_guardian: bool = False
    capacity: str = Field("full", max_length=10)
    situations: list[SituationIn] = Field(default_factory=list, max_length=8)


class HouseholdIn(Schema):
    address: str = Field("", max_length=200)
    economic_status: str = Field("ordinary", max_length=20)
    housing: str = Field("", max_length=100)
    income_sources: list[str] = Field(default_factory=list, max_length=10)
    assistance_received: list[str] = Field(default_factory=list, max_length=10)


class EntrustmentIn(Schema):
    carer_name: str = Field(..., max_length=40)
    carer_relation: str = Field(..., max_length=20)
    carer_id_number: str = Field("", max_length=30)
    carer_phone: str = Field("", max_length=30)
    carer_birth_date: date | None = None
    since: date | None = None
    until: date | None = None
    agreement_signed: bool = False
    agreement_date: date | None = None
    village_informed: bool = False
    school_informed: bool = False


class ChildFields(Schema):
    name: str | None = Field(None, max_length=40)
    gender: str | None = Field(None, max_length=1)
    birth_date: date | None = None
    ethnicity: str | None = Field(None, max_length=20)
    hukou_registered: bool | None = None
    hukou_type: str | None = Field(None, max_length=10)
    hukou_place: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=12, description=lazy_str(gettext_lazy("所在村（社区）的12位区划代码")))
    health: str | None = Field(None, max_length=10)
    disability_type: str | None = Field(None, max_length=20)
    disability_grade: int | None = Field(None, ge=1, le=4)
    illness: str | None = Field(None, max_length=100)
    school_stage: str | None = Field(None, max_length=20)
    school_name: str | None = Field(None, max_length=100)
    grade: str | None = Field(None, max_length=20)
    boarding: bool | None = None
    lives_with_parents: bool | None = None
    street_child: bool | None = None
    guardianship_type: str | None = Field(None, max_length=20)
    guardianship_assessment: str | None = Field(None, max_length=10)
    note: str | None = Field(None, max_length=2000)


class ChildCreate(ChildFields):
    name: str = Field(..., max_length=40)
    id_number: str = Field(..., max_length=30)
    region: str = Field(..., max_length=12)
    school_stage: str = Field(..., max_length=20)
    household: HouseholdIn | None = None
    family: list[MemberIn] = Field(default_factory=list, max_length=10)
    entrustment: EntrustmentIn | None = None


class ChildPatch(ChildFields):
    version: int = Field(..., ge=1, description=lazy_str(gettext_lazy("读取记录时的版本号；过期返回 409")))
    id_number: str | None = Field(None, max_length=30)


class SearchIn(Schema):
    q: str = Field(..., max_length=40, description=lazy_str(gettext_lazy("姓名、全拼、拼音首字母或身份证号")))
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(50, ge=1, le=100)


class Filters(Schema):
    region: str = Field("", max_length=12)
    status: str = Field("active", max_length=10)
    age_band: str = Field("", max_length=10)
    school_stage: str = Field("", max_length=20)
    health: str = Field("", max_length=10)
    guardianship_type: str = Field("", max_length=20)
    gender: str = Field("", max_length=1)
    sort: str = Field("name", max_length=10)
    q: str = Field(
        "",
        max_length=40,
        description=lazy_str(gettext_lazy("姓名、全拼或拼音首字母（身份证号请用 POST /children/search）")),
    )
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(50, ge=1, le=100)


# ----- helpers -------------------------------------------------------------------------------


def _form_data(values: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            data[key] = ""
        elif isinstance(value, date):
            data[key] = value.isoformat()
        else:
            data[key] = value
    return data


def _with_model_defaults(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A field the client left out takes the model's default, as on the page (a bound form
    would read a missing value as blank: `ethnicity` required, `hukou_registered` false)."""
    out = dict(values)
    for name, value in values.items():
        if value is None:
            field = model._meta.get_field(name)
            if field.has_default():
                out[name] = field.get_default()
    return out


def _plain(message: Any) -> str:
    """The pages' messages may carry a link to a record; an API client gets text with the path."""
    return strip_tags(re.sub(r'<a href="([^"]+)">([^<]*)</a>', r"\2（\1）", str(message)))


def _validated(form: Any, prefix: str = "") -> dict[str, Any]:
    if not form.is_valid():
        raise FormErrors(
            {
                (f"{prefix}{k}" if k != "__all__" else (prefix.rstrip(".") or "__all__")): [_plain(m) for m in v]
                for k, v in form.errors.items()
            }
        )
    return form.cleaned_data


def _list_item(child: Child, today: date) -> dict[str, Any]:
    region = child.region
    return {
        "id": child.pk,
        "name": child.name,
        "gender": child.gender,
        "birth_date": child.birth_date,
        "age": child.age_on(today),
        "region_code": region.code,
        "region_name": region.name,
        "town_name": region.parent.name if region.parent else "",
        "school_stage": child.school_stage,
        "health": child.health,
        "guardianship_type": child.guardianship_type,
        "status": child.status,
    }


def _detail(request: AuthedRequest, child: Child) -> dict[str, Any]:
    scope = scope_for(request.auth)
    out = _list_item(child, timezone.localdate())
    for name in (
        "ethnicity",
        "hukou_registered",
        "hukou_type",
        "hukou_place",
        "disability_type",
        "disability_grade",
        "illness",
        "school_name",
        "grade",
        "boarding",
        "lives_with_parents",
        "street_child",
        "guardianship_assessment",
        "exit_reason",
        "exit_date",
        "note",
        "version",
    ):
        out[name] = getattr(child, name)
    out["id_number_masked"] = child.id_number_masked
    hh = child.household
    out["household"] = (
        None
        if hh is None
        else {
            "economic_status": hh.economic_status,
            "housing": hh.housing,
            "income_sources": hh.income_sources,
            "assistance_received": hh.assistance_received,
            "version": hh.version,
        }
    )
    family = []
    for member in child.family.prefetch_related("situations"):
        situations = list(member.situations.all())
        visible = [s for s in situations if scope.cleared(s.label)]
        family.append(
            {
                "id": member.pk,
                "relation": member.relation,
                "name": member.name,
                "id_number_masked": member.id_number_masked,
                "phone_masked": member.phone_masked,
                "birth_date": member.birth_date,
                "work_place": member.work_place,
                "is_guardian": member.is_guardian,
                "capacity": member.capacity,
                "version": member.version,
                "situations": [{"kind": s.kind, "since": s.since, "until": s.until} for s in visible],
                "restricted_situations": len(situations) - len(visible),
            }
        )
    out["family"] = family
    out["entrustments"] = [
        {
            "id": e.pk,
            "carer_name": e.carer_name,
            "carer_relation": e.carer_relation,
            "carer_phone_masked": e.carer_phone_masked,
            "since": e.since,
            "until": e.until,
            "agreement_signed": e.agreement_signed,
            "agreement_date": e.agreement_date,
            "village_informed": e.village_informed,
            "school_informed": e.school_informed,
            "version": e.version,
        }
        for e in child.entrustments.all()
    ]
    return out


def _page(request: AuthedRequest, qs: Any, page: int, page_size: int) -> dict[str, Any]:
    total = qs.count()
    start = (page - 1) * page_size
    rows = page_rows(qs, start, page_size, total).select_related("region", "region__parent")
    today = timezone.localdate()
    return {"count": total, "page": page, "page_size": page_size, "items": [_list_item(c, today) for c in rows]}


# ----- operations ----------------------------------------------------------------------------


@api.get(
    "/children", response=ChildPage, summary=lazy_str(gettext_lazy("台账列表（筛选、检索、分页）")), tags=["children"]
)
@allow(Cap.LEDGER_VIEW)
def list_children(request: AuthedRequest, filters: Query[Filters]) -> dict[str, Any]:
    if filters.q and looks_like_id_number(filters.q):
        raise HttpError(400, _("身份证号不能出现在网址中，请使用 POST /api/v1/children/search。"))
    qs = apply_filters(children_visible_to(request.auth), LedgerFilters.from_mapping(filters.dict()))
    if filters.q:
        qs = apply_search(qs, filters.q)
    return _page(request, qs, filters.page, filters.page_size)


@api.post(
    "/children/search",
    response=ChildPage,
    summary=lazy_str(gettext_lazy("按姓名、拼音或身份证号检索")),
    tags=["children"],
)
@allow(Cap.LEDGER_VIEW)
def search_children(request: AuthedRequest, payload: SearchIn, filters: Query[Filters]) -> dict[str, Any]:
    qs = apply_filters(children_visible_to(request.auth), LedgerFilters.from_mapping(filters.dict()))
    qs = apply_search(qs, payload.q)
    record(
        actor=request.auth,
        action=Action.SEARCH,
        object_type="child",
        request=request,
        detail={"by": "id_number" if looks_like_id_number(payload.q) else "name", "via": "api"},
    )
    return _page(request, qs, payload.page, payload.page_size)


@api.get("/children/{child_id}", response=ChildDetail, summary=lazy_str(gettext_lazy("儿童详情")), tags=["children"])
@allow(Cap.LEDGER_VIEW)
def get_child(request: AuthedRequest, child_id: UUID) -> dict[str, Any]:
    child = child_get_for(request.auth, child_id, request=request)
    record(
        actor=request.auth,
        action=Action.VIEW,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"via": "api"},
    )
    return _detail(request, child)


@api.post("/children", response={201: ChildDetail}, summary=lazy_str(gettext_lazy("登记儿童")), tags=["children"])
@allow(Cap.LEDGER_EDIT)
def create_child(request: AuthedRequest, payload: ChildCreate) -> Status:
    body = payload.dict()
    child_data = _validated(
        ChildForm(
            _form_data(_with_model_defaults(Child, {k: body.get(k) for k in ChildForm.Meta.fields})), actor=request.auth
        )
    )
    household = (
        _validated(HouseholdForm(_form_data(body["household"])), "household.") if body.get("household") else None
    )
    members = []
    for i, member in enumerate(body.get("family") or []):
        data = _validated(
            FamilyMemberForm(_form_data({k: v for k, v in member.items() if k != "situations"})), f"family.{i}."
        )
        data["situations"] = [
            _validated(SituationForm(_form_data(s)), f"family.{i}.situations.{j}.")
            for j, s in enumerate(member.get("situations") or [])
        ]
        members.append(data)
    entrustment = (
        _validated(EntrustmentForm(_form_data(body["entrustment"])), "entrustment.")
        if body.get("entrustment")
        else None
    )
    try:
        child = services.child_create(
            actor=request.auth,
            data=child_data,
            household=household,
            members=members,
            entrustment=entrustment,
            request=request,
        )
    except ValidationError as exc:
        raise FormErrors(exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}) from None
    return Status(201, _detail(request, child_get_for(request.auth, child.pk, request=request)))


@api.patch(
    "/children/{child_id}",
    response={200: ChildDetail, 409: ErrorOut},
    summary=lazy_str(gettext_lazy("修改儿童信息")),
    tags=["children"],
)
@allow(Cap.LEDGER_EDIT)
def patch_child(request: AuthedRequest, child_id: UUID, payload: ChildPatch) -> Any:
    child = child_get_for(request.auth, child_id, request=request)
    if not scope_for(request.auth).covers_region(child.region_id):
        # Shared with the organisation but outside its regions: readable, not editable (as on the pages).
        record(
            actor=request.auth,
            action=Action.DENIED,
            object_type="child",
            object_id=child.pk,
            request=request,
            detail={"path": request.path[:200], "why": "shared_read_only"},
        )
        raise Http404
    current = model_to_dict(child, fields=ChildForm.Meta.fields)
    current["id_number"] = child.id_number
    changes = payload.dict(exclude_unset=True)
    version = changes.pop("version")
    if "id_number" in changes:
        # A new ID number brings its own birth date and sex: derive them unless the client sent them,
        # rather than cross-check the new number against the stored ones.
        for derived in ("birth_date", "gender"):
            if derived not in changes:
                current[derived] = None
    merged = {**current, **{k: v for k, v in changes.items() if k in current}}
    data = _validated(ChildForm(_form_data(merged), actor=request.auth, instance=child))
    try:
        updated = services.child_update(actor=request.auth, child=child, data=data, version=version, request=request)
    except services.StaleEdit as exc:
        return Status(
            409, {"detail": exc.message, "errors": {"version": [_("当前版本为 %(v)d") % {"v": exc.current_version}]}}
        )
    except ValidationError as exc:
        raise FormErrors(exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}) from None
    return Status(200, _detail(request, child_get_for(request.auth, updated.pk, request=request)))


# ----- other apps' operations (each router a GuardedRouter) ------------------------------------

from shouhu.safeguarding.api import router as safeguarding_router  # noqa: E402

api.add_router("", safeguarding_router)

from shouhu.tasks.api import router as tasks_router  # noqa: E402

api.add_router("", tasks_router)
