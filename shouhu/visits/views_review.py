"""The town's review of visits (走访督导): coverage and a quality hint per village (per town for the
district, with a drill-down), each village director's workload, and the latest submitted visits to
open and, if need be, return."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.access import Cap, allow
from shouhu.visits.review import QUALITY_DAYS, RETURNED_DAYS, review_for


@allow(Cap.VISIT_REVIEW)
@require_http_methods(["GET"])
def review(request: HttpRequest) -> HttpResponse:
    town_code = (request.GET.get("town") or "").strip()[:12] or None
    data = review_for(request.user, town_code=town_code)
    if data.latest:
        # The numbers are not personal data; the latest-visits list names children: a view.
        record(
            actor=request.user,
            action=Action.VIEW,
            object_type="visit_review",
            object_id=data.town.code if data.town else "",
            request=request,
            detail={
                "page": "visit_review",
                "children": sorted({str(v.child_id) for v in data.latest}),
                "visits": [v.pk for v in data.latest],
            },
        )
    return render(
        request, "visits/review.html", {"review": data, "returned_days": RETURNED_DAYS, "quality_days": QUALITY_DAYS}
    )
