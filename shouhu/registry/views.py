"""Ledger pages: thin views over forms, services and scoped selectors."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.lib.http import HtmxUserRequest
from shouhu.org.access import Cap, allow, scope_for
from shouhu.org.models import Region, RegionLevel
from shouhu.policy.engine import JIANGSU_NAMES
from shouhu.policy.rules import CATEGORY_NAMES
from shouhu.registry import forms as f
from shouhu.registry import services
from shouhu.registry.history import child_history
from shouhu.registry.models import (
    ELIGIBILITY_FIELDS,
    Child,
    Entrustment,
    EntrustmentScan,
    FamilyMember,
    GuardianshipType,
    Health,
    Household,
    Relation,
    SchoolStage,
)
from shouhu.registry.selectors import (
    AGE_BANDS,
    AgreementFact,
    EntrustmentFacts,
    LedgerFilters,
    ParentSituationFact,
    apply_filters,
    apply_search,
    child_get_for,
    children_visible_to,
    entrustment_findings,
    left_behind_filter,
    looks_like_id_number,
)

PAGE_SIZE = 50
SEARCH_SLOTS = 8


def _region_choices(request: HttpRequest) -> list[tuple[str, str]]:
    """Towns and villages inside the actor's regions, for the ledger's region filter."""
    scope = scope_for(request.user)
    regions = Region.objects.filter(level__in=[RegionLevel.TOWN, RegionLevel.VILLAGE]).only("code", "name", "level")
    return [
        (r.code, ("　" if r.level == RegionLevel.VILLAGE else "") + r.name)
        for r in regions.order_by("code")
        if scope.covers_region(r.code)
    ]


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def ledger(request: HtmxUserRequest) -> HttpResponse:
    filters = LedgerFilters.from_mapping(request.GET)
    qs = apply_filters(children_visible_to(request.user), filters)
    token = request.GET.get("s", "")[:32]
    query = request.session.get("ledger_search", {}).get(token, "") if token else ""
    if query:
        qs = apply_search(qs, query)
    paginator = Paginator(
        qs.select_related("region", "region__parent").only(
            "id",
            "name",
            "gender",
            "birth_date",
            "school_stage",
            "guardianship_type",
            "status",
            "health",
            "region__name",
            "region__parent__name",
            "region__code",
            "region__level",
            "region__parent__code",
            "region__parent__level",
            "updated_at",
        ),
        PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "query": query,
        "token": token,
        "querystring": params.urlencode(),
        # The export keeps the page's filters and search token (shouhu.intake.views.ledger_xlsx).
        "export_params": [(key, value) for key, value in params.items() if key != "unmasked"],
        "region_choices": _region_choices(request),
        "age_bands": list(AGE_BANDS),
        "school_stages": SchoolStage.choices,
        "healths": Health.choices,
        "guardianship_types": GuardianshipType.choices,
        "categories": list(CATEGORY_NAMES.items()),
        "jiangsu_classes": [
            (str(n), _("第%(n)d类：%(name)s") % {"n": n, "name": name}) for n, name in JIANGSU_NAMES.items()
        ],
        "today": timezone.localdate(),
    }
    template = (
        "registry/_ledger_table.html"
        if request.htmx and request.htmx.target == "ledger-table"
        else "registry/ledger.html"
    )
    return render(request, template, context)


@allow(Cap.LEDGER_VIEW)
@require_POST
def ledger_search(request: HttpRequest) -> HttpResponse:
    """Search terms (names, ID numbers) travel in a POST body and live in the session, never in a URL."""
    query = (request.POST.get("q") or "").strip()[:40]
    params = request.GET.copy()
    params.pop("page", None)
    params.pop("s", None)
    if query:
        slots: dict[str, str] = request.session.get("ledger_search", {})
        if len(slots) >= SEARCH_SLOTS:
            slots = dict(list(slots.items())[-(SEARCH_SLOTS - 1) :])
        token = secrets.token_urlsafe(6)
        slots[token] = query
        request.session["ledger_search"] = slots
        params["s"] = token
        record(
            actor=request.user,
            action=Action.SEARCH,
            object_type="child",
            request=request,
            detail={"by": "id_number" if looks_like_id_number(query) else "name"},
        )
    url = reverse("registry:ledger")
    return redirect(f"{url}?{params.urlencode()}" if params else url)


def _member_forms(request: HttpRequest | None, relation: str) -> tuple[f.FamilyMemberForm, Any]:
    data = request.POST if request is not None else None
    form = f.FamilyMemberForm(data, prefix=relation, initial={"relation": relation, "is_guardian": True})
    form.fields["relation"].widget = f.forms.HiddenInput()
    formset = f.SituationFormSet(data, prefix=f"{relation}-sit", instance=FamilyMember())
    form.fields["name"].required = False
    form.fields["relation"].required = False
    return form, formset


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def child_create(request: HttpRequest) -> HttpResponse:
    post = request.POST if request.method == "POST" else None
    child_form = f.ChildForm(post, actor=request.user)
    household_form = f.HouseholdForm(post, prefix="hh")
    father_form, father_sits = _member_forms(request if post else None, Relation.FATHER)
    mother_form, mother_sits = _member_forms(request if post else None, Relation.MOTHER)
    carer_form = f.EntrustmentForm(post, prefix="carer")
    carer_form.fields["carer_name"].required = False
    carer_form.fields["carer_relation"].required = False
    # The scan and the eligibility checklist are the entrustment's own page (multipart, a checklist).
    for name in ("agreement_scan", *ELIGIBILITY_FIELDS, "eligibility_checked_on"):
        del carer_form.fields[name]
    if post is not None:
        forms_ok = all(
            [
                child_form.is_valid(),
                household_form.is_valid(),
                father_form.is_valid(),
                mother_form.is_valid(),
                father_sits.is_valid(),
                mother_sits.is_valid(),
                carer_form.is_valid(),
            ]
        )
        carer_data = carer_form.cleaned_data if carer_form.is_valid() else {}
        if forms_ok and carer_data.get("carer_name") and not carer_data.get("carer_relation"):
            carer_form.add_error("carer_relation", _("请选择受委托人与儿童的关系。"))
            forms_ok = False
        if forms_ok:
            members = []
            for relation, form, sits in (
                (Relation.FATHER, father_form, father_sits),
                (Relation.MOTHER, mother_form, mother_sits),
            ):
                if not form.cleaned_data.get("name"):
                    continue
                data = {**form.cleaned_data, "relation": relation}
                data["situations"] = [s for s in _situations(sits)]
                members.append(data)
            try:
                child = services.child_create(
                    actor=request.user,
                    data=child_form.cleaned_data,
                    household=household_form.cleaned_data,
                    members=members,
                    entrustment=carer_data if carer_data.get("carer_name") else None,
                    request=request,
                )
            except ValidationError as exc:
                _attach(child_form, exc)
            else:
                messages.success(request, _("已登记：%(name)s") % {"name": child.name})
                return redirect("registry:child_detail", pk=child.pk)
    return render(
        request,
        "registry/child_create.html",
        {
            "child_form": child_form,
            "household_form": household_form,
            "parents": [(_("父亲"), father_form, father_sits), (_("母亲"), mother_form, mother_sits)],
            "carer_form": carer_form,
            # One summary for an error in any section, parents' situations included.
            "has_errors": post is not None
            and (
                any(form.errors for form in (child_form, household_form, father_form, mother_form, carer_form))
                or any(sits.total_error_count() for sits in (father_sits, mother_sits))
            ),
        },
        status=400 if post is not None else 200,
    )


def _situations(formset: Any) -> list[dict[str, Any]]:
    result = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None) or {}
        if not data or data.get("DELETE") or not data.get("kind"):
            continue
        result.append({k: data.get(k) for k in services.SITUATION_FIELDS})
    return result


def _attach(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def child_detail(request: HttpRequest, pk: str) -> HttpResponse:
    child = child_get_for(request.user, pk, request=request)
    scope = scope_for(request.user)
    record(actor=request.user, action=Action.VIEW, object_type="child", object_id=child.pk, request=request)
    family = list(child.family.prefetch_related("situations"))
    for member in family:
        member.visible_situations = [s for s in member.situations.all() if scope.cleared(s.label)]
        member.hidden_situations = len(member.situations.all()) - len(member.visible_situations)
    today = timezone.localdate()
    entrustments = list(
        child.entrustments.annotate(has_scan=Exists(EntrustmentScan.objects.filter(entrustment=OuterRef("pk"))))
    )
    facts = EntrustmentFacts(
        today=today,
        school_stage=child.school_stage,
        agreements=tuple(AgreementFact.of(e) for e in entrustments),
        situations=tuple(
            ParentSituationFact(m.relation, s.kind, s.since, s.until)
            for m in family
            if m.relation in (Relation.FATHER, Relation.MOTHER)
            for s in m.situations.all()
        ),
    )
    current = facts.current_agreement()
    findings = entrustment_findings(facts)
    if not children_visible_to(request.user).filter(pk=child.pk).filter(left_behind_filter(today)).exists():
        # Not left-behind: no agreement is required, but one in force must still be in order.
        findings = findings if current is not None else []
    return render(
        request,
        "registry/child_detail.html",
        {
            "child": child,
            "age": child.age_on(timezone.localdate()),
            "family": family,
            "entrustments": entrustments,
            "current_entrustment_id": current.pk if current else None,
            "entrustment_findings": findings,
            "history": child_history(child, scope),
            "can_edit": scope.can(Cap.LEDGER_EDIT) and scope.covers_region(child.region_id),
            "can_unmask": scope.can(Cap.UNMASK) and scope.covers_region(child.region_id),
            "exit_form": f.ExitForm(initial={"version": child.version, "exit_date": timezone.localdate()}),
            "reenter_form": f.ReenterForm(initial={"version": child.version}),
            "tab": request.GET.get("tab", "basic"),
        },
    )


def _editable_child(request: HttpRequest, pk: str) -> Child:
    """A child the actor may edit: in scope *and* in the actor's own regions (shares are read-only)."""
    child = child_get_for(request.user, pk, request=request)
    if not scope_for(request.user).covers_region(child.region_id):
        record(
            actor=request.user,
            action=Action.DENIED,
            object_type="child",
            object_id=child.pk,
            request=request,
            detail={"path": request.path[:200], "why": "shared_read_only"},
        )
        from django.http import Http404

        raise Http404
    return child


def _shown(form_field: Any, value: Any, key: Any, mask: Callable[[str], str] | None) -> str:
    """A value as the conflict table shows it: masked identifiers, labels for coded values."""
    if value in ("", None, []):
        return "—"
    if mask is not None:
        return mask(str(value))
    choices = dict(getattr(form_field, "flatchoices", None) or getattr(form_field, "choices", None) or [])
    if isinstance(value, list):
        return "、".join(str(choices.get(v, v)) for v in value)
    if isinstance(value, bool):
        return _("是") if value else _("否")
    return str(choices.get(key, value))


def _rebase_after_conflict(form: Any, exc: services.StaleEdit, latest: Any) -> list[dict[str, str]]:
    """After a refused stale save: list where the saved record now differs from what the user typed,
    and move the form to the newest version. The user's text stays in the form; saving again — now
    with the other person's changes in view — applies it. Nothing is lost, nothing is overwritten
    without the user having seen what it overwrites."""
    conflicts: list[dict[str, str]] = []
    masks = getattr(form, "masked_fields", {})
    for name, form_field in form.fields.items():
        if name == "version" or name not in form.cleaned_data or not hasattr(latest, name):
            continue
        mine, theirs = form.cleaned_data[name], getattr(latest, name)
        mine_key, theirs_key = getattr(mine, "pk", mine), getattr(theirs, "pk", theirs)
        if (mine_key in ("", None) and theirs_key in ("", None)) or mine_key == theirs_key:
            continue
        mask = masks.get(name)
        conflicts.append(
            {
                "label": str(form_field.label),
                "theirs": _shown(form_field, theirs, theirs_key, mask),
                "mine": _shown(form_field, mine, mine_key, mask),
            }
        )
    data = form.data.copy()
    data[form.add_prefix("version")] = str(exc.current_version)
    form.data = data
    return conflicts


@dataclass
class EditOutcome:
    saved: bool = False
    stale: bool = False
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def status(self, request: HttpRequest) -> int:
        return 409 if self.stale else (400 if request.method == "POST" else 200)


def _save_edit(
    request: HttpRequest,
    form: Any,
    save: Callable[[dict[str, Any]], Any],
    latest: Callable[[], Any],
    *,
    also_valid: bool = True,
) -> EditOutcome:
    """The one edit flow of the ledger's forms: validate, save through the service, and on a stale
    version keep the user's input and show what the other person changed."""
    if request.method != "POST" or not (form.is_valid() and also_valid):
        return EditOutcome()
    try:
        save(form.cleaned_data)
    except services.StaleEdit as exc:
        form.add_error(None, exc.message)
        return EditOutcome(stale=True, conflicts=_rebase_after_conflict(form, exc, latest()))
    except ValidationError as exc:
        _attach(form, exc)
        return EditOutcome()
    messages.success(request, _("已保存。"))
    return EditOutcome(saved=True)


_T = TypeVar("_T")


def _existing(value: _T | None) -> _T:
    """The record a stale edit was made to: `latest` is called only after a StaleEdit, which only
    the update of an existing record raises."""
    assert value is not None
    return value


def _family_tab(child: Child) -> HttpResponse:
    return redirect(reverse("registry:child_detail", args=[child.pk]) + "?tab=family")


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def child_edit(request: HttpRequest, pk: str) -> HttpResponse:
    child = _editable_child(request, pk)
    form = f.ChildForm(request.POST or None, actor=request.user, instance=child)
    outcome = _save_edit(
        request,
        form,
        lambda data: services.child_update(
            actor=request.user, child=child, data=data, version=data.get("version"), request=request
        ),
        lambda: children_visible_to(request.user).get(pk=child.pk),
    )
    if outcome.saved:
        return redirect("registry:child_detail", pk=child.pk)
    return render(
        request,
        "registry/child_edit.html",
        {
            "form": form,
            "child": child,
            "stale": outcome.stale,
            "conflicts": outcome.conflicts,
        },
        status=outcome.status(request),
    )


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def household_edit(request: HttpRequest, pk: str) -> HttpResponse:
    child = _editable_child(request, pk)
    form = f.HouseholdForm(request.POST or None, instance=child.household)
    outcome = _save_edit(
        request,
        form,
        lambda data: services.household_update(
            actor=request.user, child=child, data=data, version=data.get("version"), request=request
        ),
        lambda: Household.objects.get(pk=_existing(child.household_id)),
    )
    if outcome.saved:
        return _family_tab(child)
    return render(
        request,
        "registry/simple_form.html",
        {
            "form": form,
            "child": child,
            "title": _("编辑家庭信息"),
            "stale": outcome.stale,
            "conflicts": outcome.conflicts,
        },
        status=outcome.status(request),
    )


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def member_edit(request: HttpRequest, pk: str, member_id: int | None = None) -> HttpResponse:
    child = _editable_child(request, pk)
    member = get_object_or_404(FamilyMember, pk=member_id, child=child) if member_id else None
    post = request.POST if request.method == "POST" else None
    form = f.FamilyMemberForm(post, instance=member)
    formset = f.SituationFormSet(post, prefix="sit", instance=member or FamilyMember())
    scope = scope_for(request.user)
    if member is not None and not scope.cleared("judicial") and any(s.label for s in member.situations.all()):
        # Editing would reveal (and could silently drop) facts the user is not cleared to see.
        return render(request, "403.html", {"message": _("该家庭成员含受限信息，您的角色无权编辑。")}, status=403)

    def save(data: dict[str, Any]) -> None:
        if member is None:
            services.member_create(
                actor=request.user, child=child, data={**data, "situations": _situations(formset)}, request=request
            )
        else:
            services.member_update(
                actor=request.user,
                member=member,
                data=data,
                version=data.get("version"),
                situations=_situations(formset),
                request=request,
            )

    outcome = _save_edit(
        request,
        form,
        save,
        lambda: FamilyMember.objects.get(pk=_existing(member).pk),
        also_valid=post is not None and formset.is_valid(),
    )
    if outcome.saved:
        return _family_tab(child)
    return render(
        request,
        "registry/member_form.html",
        {
            "form": form,
            "formset": formset,
            "child": child,
            "member": member,
            "stale": outcome.stale,
            "conflicts": outcome.conflicts,
        },
        status=outcome.status(request),
    )


@allow(Cap.LEDGER_EDIT)
@require_POST
def member_delete(request: HttpRequest, pk: str, member_id: int) -> HttpResponse:
    child = _editable_child(request, pk)
    member = get_object_or_404(FamilyMember, pk=member_id, child=child)
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        return HttpResponseBadRequest(_("缺少版本号。"))
    try:
        services.member_delete(actor=request.user, member=member, version=version, request=request)
    except services.StaleEdit as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已删除家庭成员。"))
    return redirect(reverse("registry:child_detail", args=[child.pk]) + "?tab=family")


def _entrustment_page(
    request: HttpRequest,
    child: Child,
    form: f.EntrustmentForm,
    *,
    title: str,
    entrustment: Entrustment | None,
    renewing: Entrustment | None = None,
    outcome: EditOutcome | None = None,
) -> HttpResponse:
    outcome = outcome or EditOutcome()
    scan = None
    if entrustment is not None:
        scan = (
            EntrustmentScan.objects.filter(entrustment=entrustment)
            .only("id", "content_type", "size", "uploaded_at")
            .first()
        )
    return render(
        request,
        "registry/entrustment_form.html",
        {
            "form": form,
            "child": child,
            "title": title,
            "entrustment": entrustment,
            "renewing": renewing,
            "scan": scan,
            "eligibility": [form[name] for name in ELIGIBILITY_FIELDS],
            "stale": outcome.stale,
            "conflicts": outcome.conflicts,
        },
        status=outcome.status(request),
    )


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def entrustment_edit(request: HttpRequest, pk: str, entrustment_id: int | None = None) -> HttpResponse:
    child = _editable_child(request, pk)
    ent = get_object_or_404(Entrustment, pk=entrustment_id, child=child) if entrustment_id else None
    post = request.method == "POST"
    form = f.EntrustmentForm(request.POST if post else None, request.FILES if post else None, instance=ent)
    outcome = _save_edit(
        request,
        form,
        lambda data: services.entrustment_save(
            actor=request.user, child=child, data=data, entrustment=ent, version=data.get("version"), request=request
        ),
        lambda: Entrustment.objects.get(pk=_existing(ent).pk),
    )
    if outcome.saved:
        return _family_tab(child)
    return _entrustment_page(request, child, form, title=_("委托监护"), entrustment=ent, outcome=outcome)


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET", "POST"])
def entrustment_renew(request: HttpRequest, pk: str, entrustment_id: int) -> HttpResponse:
    """“新的委托”: a new agreement replaces this one, which ends the day before the new one starts."""
    child = _editable_child(request, pk)
    old = get_object_or_404(Entrustment, pk=entrustment_id, child=child)
    post = request.method == "POST"
    form = f.EntrustmentForm(
        request.POST if post else None,
        request.FILES if post else None,
        initial={
            "carer_name": old.carer_name,
            "carer_relation": old.carer_relation,
            "carer_birth_date": old.carer_birth_date,
            "since": timezone.localdate(),
            "version": old.version,
        },
    )
    form.fields["since"].required = True
    outcome = _save_edit(
        request,
        form,
        lambda data: services.entrustment_renew(
            actor=request.user, child=child, previous=old, data=data, version=data.get("version"), request=request
        ),
        lambda: Entrustment.objects.get(pk=old.pk),
    )
    if outcome.saved:
        return _family_tab(child)
    return _entrustment_page(request, child, form, title=_("新的委托"), entrustment=None, renewing=old, outcome=outcome)


@allow(Cap.UNMASK)
@require_http_methods(["GET"])
def entrustment_scan(request: HttpRequest, pk: str, entrustment_id: int) -> HttpResponse:
    """The scan of a signed agreement: it shows identifiers and signatures in full, so it is served
    like an unmasked identifier — to a role that may unmask, for a child in its own regions, each
    download an audit event. The same 404 for a missing scan and one out of scope."""
    child = _editable_child(request, pk)
    scan = get_object_or_404(EntrustmentScan, entrustment_id=entrustment_id, entrustment__child=child)
    record(
        actor=request.user,
        action=Action.EXPORT,
        object_type="child",
        object_id=child.pk,
        request=request,
        detail={"entrustment_scan": entrustment_id, "content_type": scan.content_type},
    )
    extension = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}[scan.content_type]
    response = HttpResponse(scan.file_bytes(), content_type=scan.content_type)
    response["Content-Disposition"] = f'attachment; filename="entrustment-{entrustment_id}.{extension}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@allow(Cap.LEDGER_EDIT)
@require_POST
def child_exit(request: HttpRequest, pk: str) -> HttpResponse:
    child = _editable_child(request, pk)
    form = f.ExitForm(request.POST)
    _run_action(
        request,
        form,
        lambda data: services.child_exit(
            actor=request.user,
            child=child,
            reason=data["reason"],
            exit_date=data["exit_date"],
            note=data["note"],
            version=data["version"],
            request=request,
        ),
        _("已退出台账。"),
    )
    return redirect("registry:child_detail", pk=child.pk)


@allow(Cap.LEDGER_EDIT)
@require_POST
def child_reenter(request: HttpRequest, pk: str) -> HttpResponse:
    child = _editable_child(request, pk)
    form = f.ReenterForm(request.POST)
    _run_action(
        request,
        form,
        lambda data: services.child_reenter(
            actor=request.user, child=child, note=data["note"], version=data["version"], request=request
        ),
        _("已重新纳入台账。"),
    )
    return redirect("registry:child_detail", pk=child.pk)


def _run_action(request: HttpRequest, form: Any, run: Callable[[dict[str, Any]], Any], success: str) -> None:
    """A one-click action from the child's page: the outcome, or why not, as a message."""
    if not form.is_valid():
        messages.error(request, "；".join(str(e) for errs in form.errors.values() for e in errs))
        return
    try:
        run(form.cleaned_data)
    except services.StaleEdit as exc:
        messages.error(request, exc.message)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        messages.success(request, success)


UNMASKABLE = {
    "child.id_number": (None, "id_number"),
    "member.id_number": (FamilyMember, "id_number"),
    "member.phone": (FamilyMember, "phone"),
    "carer.id_number": (Entrustment, "carer_id_number"),
    "carer.phone": (Entrustment, "carer_phone"),
    "household.address": (None, "address"),
}


@allow(Cap.UNMASK)
@require_POST
def unmask(request: HttpRequest, pk: str) -> HttpResponse:
    """Show one identifier in full (one click, audited); answers an htmx fragment."""
    child = _editable_child(request, pk)
    what = request.POST.get("field", "")
    if what not in UNMASKABLE:
        return HttpResponseBadRequest(_("无法显示该字段。"))
    model, attr = UNMASKABLE[what]
    if what == "child.id_number":
        value, obj_label = child.id_number, "child"
    elif what == "household.address":
        value, obj_label = (child.household.address if child.household else ""), "household"
    else:
        try:
            obj_id = int(request.POST.get("object", ""))
        except ValueError:
            return HttpResponseBadRequest(_("无法显示该字段。"))
        if model is None:  # only the child's ID number and the household's address have no model of their own
            return HttpResponseBadRequest(_("无法显示该字段。"))
        obj = get_object_or_404(model, pk=obj_id, child=child)
        value, obj_label = getattr(obj, attr), f"{what.split('.')[0]}:{obj_id}"
    with transaction.atomic():
        record(
            actor=request.user,
            action=Action.UNMASK,
            object_type="child",
            object_id=child.pk,
            request=request,
            detail={"field": what, "of": obj_label},
        )
    return render(request, "registry/_unmasked.html", {"value": value})
