"""Survey import and ledger export pages."""

from __future__ import annotations

import re
import tempfile

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods

from shouhu.intake.export import XLSX_CONTENT_TYPE, export_ledger, export_stats
from shouhu.intake.template import template_bytes
from shouhu.org.access import Cap, allow, scope_for
from shouhu.org.models import Region
from shouhu.registry.selectors import LedgerFilters


def _attachment(stream: tempfile.SpooledTemporaryFile, name: str) -> FileResponse:  # type: ignore[type-arg]
    stream.seek(0)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = FileResponse(stream, as_attachment=True, filename=f"{name}_{stamp}.xlsx",
                            content_type=XLSX_CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


@allow(Cap.LEDGER_VIEW)
@require_http_methods(["GET"])
def ledger_xlsx(request: HttpRequest) -> FileResponse:
    """The ledger list the user sees (same filters, same search token) as a workbook."""
    filters = LedgerFilters.from_mapping(request.GET)
    token = request.GET.get("s", "")[:32]
    query = request.session.get("ledger_search", {}).get(token, "") if token else ""
    stream = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    export_ledger(stream, actor=request.user, filters=filters, query=query,
                  unmasked=request.GET.get("unmasked") == "1", request=request)
    return _attachment(stream, "儿童台账")


@allow(Cap.STATS_VIEW)
@require_http_methods(["GET"])
def stats_xlsx(request: HttpRequest) -> FileResponse:
    """The standard statistics tables: numbers only."""
    stream = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    export_stats(stream, actor=request.user, request=request)
    return _attachment(stream, "困境儿童统计报表")


@allow(Cap.LEDGER_EDIT)
@require_http_methods(["GET"])
def survey_template(request: HttpRequest) -> HttpResponse:
    """The 摸底排查 template for a region in the user's scope (a village director: their village)."""
    scope = scope_for(request.user)
    code = re.sub(r"\D", "", request.GET.get("region", ""))[:12]
    if not code and scope.prefixes:
        code = scope.prefixes[0].ljust(12, "0") if len(scope.prefixes) == 1 else ""
    region = Region.objects.filter(code=code).first() if code else None
    if region is not None and not scope.covers_region(region.code):
        raise Http404
    response = HttpResponse(template_bytes(region), content_type=XLSX_CONTENT_TYPE)
    name = f"摸底排查表_{region.name}" if region is not None else "摸底排查表"
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.xlsx")
    response["Cache-Control"] = "no-store"
    return response
