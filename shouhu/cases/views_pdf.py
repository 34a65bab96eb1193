"""Printable case documents (PDF): the case summary and one assessment's report.

Reached exactly like the case page — through the child's scope, 404 outside it — and shown to the
same readers. Identifiers are always masked (unmasking is an audited act of its own on the child's
page, never a side effect of printing); each download is one audit event (export), without
personal data; every page carries the viewer's name, organisation and time.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from shouhu.audit.models import Action as AuditAction
from shouhu.audit.services import record
from shouhu.cases import rules, selectors
from shouhu.cases.models import Assessment, Case
from shouhu.lib.pdf import pdf_response, render_pdf
from shouhu.lib.workbook import Watermark
from shouhu.org.access import Cap, allow

SCALE_NAMES = dict(rules.SCALE)


def _domain_rows(assessment: Assessment, before: Assessment | None) -> list[dict[str, Any]]:
    evidence = assessment.evidence
    rows = []
    for key, label in rules.DOMAINS:
        score = assessment.scores.get(key)
        rows.append(
            {
                "label": label,
                "score": score,
                "scale": SCALE_NAMES.get(score, ""),
                "before": before.scores.get(key) if before else None,
                "evidence": evidence.get(key, ""),
            }
        )
    return rows


def _child_facts(case: Case) -> dict[str, Any]:
    child = case.child
    today = timezone.localdate()
    return {
        "child": child,
        "age": child.age_on(today),
        "village": child.region,
        "town": child.region.parent if child.region_id else None,
    }


def _record(request: HttpRequest, case: Case, document: str, **extra: Any) -> None:
    record(
        actor=request.user,
        action=AuditAction.EXPORT,
        object_type="case",
        object_id=case.pk,
        request=request,
        detail={"document": document, "format": "pdf", "via": "web", **extra},
    )


def _stamp() -> str:
    return timezone.localtime().strftime("%Y%m%d-%H%M")


@allow(Cap.CASES)
@require_http_methods(["GET"])
def summary_pdf(request: HttpRequest, case_id: int) -> HttpResponse:
    case = selectors.case_get_for(request.user, case_id, request=request)
    file = selectors.case_file(case)
    latest = file.latest
    context = {
        **_child_facts(case),
        "case": case,
        "latest": latest,
        "latest_rows": _domain_rows(latest, file.before(latest)) if latest else [],
        "assessments": file.assessments,
        "plan": [(g, list(g.actions.all())) for g in file.goals],
        "referrals": [(a, t) for a in file.actions for t in file.referrals.get(a.pk, [])],
        "services": file.services,
        "reviews": file.reviews,
        "events": file.events,
    }
    data = render_pdf("cases/pdf/summary.html", context, viewer=Watermark.for_actor(request.user))
    _record(request, case, "case_summary")
    return pdf_response(
        data,
        filename=_("个案摘要_%(id)s_%(at)s.pdf") % {"id": case.pk, "at": _stamp()},
        ascii_filename=f"case-{case.pk}-summary-{_stamp()}.pdf",
    )


@allow(Cap.CASES)
@require_http_methods(["GET"])
def assessment_pdf(request: HttpRequest, case_id: int, assessment_id: int) -> HttpResponse:
    case = selectors.case_get_for(request.user, case_id, request=request)
    assessments = list(case.assessments.select_related("assessor"))
    index = next((n for n, a in enumerate(assessments) if a.pk == assessment_id), None)
    if index is None:
        raise Http404
    assessment = assessments[index]
    before = assessments[index + 1] if index + 1 < len(assessments) else None
    context = {
        **_child_facts(case),
        "case": case,
        "assessment": assessment,
        "before": before,
        "rows": _domain_rows(assessment, before),
        "scale": rules.SCALE,
        "rule_version": rules.RULE_VERSION,
    }
    data = render_pdf("cases/pdf/assessment.html", context, viewer=Watermark.for_actor(request.user))
    _record(request, case, "assessment_report", assessment=assessment.pk)
    stamp = timezone.localtime(assessment.assessed_at).strftime("%Y%m%d")
    return pdf_response(
        data,
        filename=_("调查评估报告_%(id)s_%(at)s.pdf") % {"id": case.pk, "at": stamp},
        ascii_filename=f"case-{case.pk}-assessment-{assessment.pk}-{stamp}.pdf",
    )
